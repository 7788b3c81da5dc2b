"""Calibration images and validation sets: ``"synthetic"`` splits, user folders or in-memory sequences.

Calibration always comes from the ``train`` split (or the user's calibration folder); the accuracy gate
uses ``val`` (or the user's validation data), so the gate never sees a calibration image.

* calibration: ``"synthetic"`` → :func:`converters.data.make_split` ``("train", task)``; a folder →
  every image under it (recursive); a sequence of BGR uint8 images or of dataset items.
* validation: ``"synthetic"`` → ``make_split("val", task)`` (``pairs`` for embedding models); a folder →
  ``ImageFolderDataset`` (classify), ``YoloDetectionDataset`` (detect: an images folder with ``labels/``
  next to it, or a ``data.yaml``), ``IdentityFolderDataset`` (embed); or any dataset object.
"""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .errors import CalibrationError

__all__ = ["MIN_CALIBRATION_IMAGES", "calibration_images", "validation_dataset", "synthetic_kwargs",
           "CALIB_TASKS", "VAL_TASKS"]

logger = logging.getLogger(__name__)

#: Below this many calibration images a warning is given (INT8 ranges from few images are unreliable).
MIN_CALIBRATION_IMAGES = 100
#: Synthetic split task per model task, for calibration (train) and validation (val).
CALIB_TASKS = {"classify": "classify", "detect": "detect", "embed": "identity"}
VAL_TASKS = {"classify": "classify", "detect": "detect", "embed": "pairs"}


def synthetic_kwargs(task: str, input_hw: Tuple[int, int]) -> dict:
    """Dataset arguments that render synthetic images at the network's input size."""
    h, w = input_hw
    if task == "detect":
        side = min(h, w)
        return {"size_hw": (h, w), "min_size": max(4, min(12, side // 8)), "max_size": max(8, min(200, side * 3 // 4))}
    return {"size": int(min(h, w))}


def _read_folder(folder: Path, limit: Optional[int]) -> List[np.ndarray]:
    from converters.data import DatasetError, list_images, read_image

    if not folder.exists():
        raise CalibrationError(f"calibration folder {folder}: expected a folder of images, got a path that "
                               f"does not exist")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise CalibrationError(f"calibration folder {folder}: expected a readable folder, got one without read "
                               f"permission")
    try:
        files = list_images(folder)
    except DatasetError as exc:
        raise CalibrationError(f"calibration folder {folder}: {exc}") from exc
    images, bad = [], []
    for f in files[:limit] if limit else files:
        try:
            images.append(read_image(f))
        except DatasetError as exc:
            bad.append(str(exc))
    if bad:
        logger.warning("calibration: %d unreadable images skipped, e.g. %s", len(bad), bad[0])
    if not images:
        raise CalibrationError(f"calibration folder {folder}: expected readable images, got {len(files)} files "
                               f"that OpenCV cannot decode (e.g. {bad[0] if bad else '?'})")
    return images


def _as_image(item: Any, index: int) -> np.ndarray:
    image = item[0] if isinstance(item, (tuple, list)) else item
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise CalibrationError(f"calibration item {index}: expected a BGR uint8 image (H, W, 3) or a dataset "
                               f"item whose first element is one, got {image.dtype} {image.shape}")
    return image


def calibration_images(calib: Any, *, task: str, input_hw: Tuple[int, int], count: int = MIN_CALIBRATION_IMAGES,
                       min_images: int = MIN_CALIBRATION_IMAGES) -> List[np.ndarray]:
    """Load calibration images (BGR uint8).

    Args:
        calib: ``"synthetic"``, a folder path, or a sequence of images / dataset items.
        task: the model's task (``classify``, ``detect``, ``embed``).
        input_hw: network input size (synthetic images are rendered at it).
        count: how many synthetic images; for a folder or sequence, at most this many are used
            (``0``: all).
        min_images: warn below this many.

    Returns:
        List of uint8 (H, W, 3) BGR images.

    Raises:
        CalibrationError: a missing, unreadable or empty folder, an empty sequence, or bad items.
    """
    if isinstance(calib, str) and calib == "synthetic":
        from converters.data import make_split

        ds = make_split("train", CALIB_TASKS[task], max(1, count), **synthetic_kwargs(CALIB_TASKS[task], input_hw))
        images = [_as_image(ds[i], i) for i in range(len(ds))]
    elif isinstance(calib, (str, os.PathLike)):
        images = _read_folder(Path(calib), count or None)
    elif calib is None:
        raise CalibrationError("calibration: expected 'synthetic', a folder of images or a sequence of images, "
                               "got None (INT8 needs calibration data)")
    else:
        try:
            n = len(calib)
        except TypeError:
            raise CalibrationError(f"calibration: expected 'synthetic', a folder or a sequence of images, got "
                                   f"{type(calib).__name__}") from None
        if n == 0:
            raise CalibrationError("calibration: expected images, got an empty sequence")
        n = min(n, count) if count else n
        images = [_as_image(calib[i], i) for i in range(n)]
    if len(images) < min_images:
        msg = (f"calibrating with {len(images)} images; at least {min_images} are recommended for reliable INT8 "
               f"ranges")
        logger.warning(msg)
        warnings.warn(msg, stacklevel=3)
    return images


def tuning_dataset(tune: Any, *, task: str, input_hw: Tuple[int, int], count: int = 200,
                   labels: Sequence[str] = ()) -> Any:
    """Labelled items for accuracy-aware quantisation: never the gate's held-out items.

    ``"synthetic"``: the synthetic ``train`` split (the gate uses ``val``); a folder or dataset: as
    :func:`validation_dataset` reads it; None: None (no accuracy control).
    """
    if tune is None:
        return None
    if isinstance(tune, str) and tune == "synthetic":
        from converters.data import make_split

        vt = VAL_TASKS[task]
        return make_split("train", vt, max(2, count), **synthetic_kwargs(vt, input_hw))
    return validation_dataset(tune, task=task, input_hw=input_hw, count=count, labels=labels)


def validation_dataset(val: Any, *, task: str, input_hw: Tuple[int, int], count: int = 200,
                       labels: Sequence[str] = ()) -> Any:
    """The held-out dataset of the accuracy gate.

    Args:
        val: ``"synthetic"``, a folder / ``data.yaml`` path, or a dataset object (returned as is).
        task: the model's task.
        input_hw: network input size (synthetic images are rendered at it).
        count: number of synthetic items.
        labels: class names (detection folders without names use them).

    Returns:
        A sequence of items in the format of :mod:`converters.evaluation` for the task.

    Raises:
        CalibrationError: a missing or malformed folder.
    """
    if isinstance(val, str) and val == "synthetic":
        from converters.data import make_split

        vt = VAL_TASKS[task]
        return make_split("val", vt, max(2, count), **synthetic_kwargs(vt, input_hw))
    if isinstance(val, (str, os.PathLike)):
        from converters import data

        path = Path(val)
        try:
            if task == "classify":
                return data.ImageFolderDataset(path)
            if task == "embed":
                return data.IdentityFolderDataset(path)
            if path.suffix in (".yaml", ".yml"):
                return data.YoloDetectionDataset.from_yaml(path, split="val")
            return data.YoloDetectionDataset(path, names=list(labels) or None)
        except (data.DatasetError, OSError) as exc:
            raise CalibrationError(f"validation data {path}: {exc}") from exc
    if val is None:
        raise CalibrationError("validation: expected 'synthetic', a folder or a dataset, got None")
    if len(val) == 0:
        raise CalibrationError("validation: expected items, got an empty dataset")
    return val
