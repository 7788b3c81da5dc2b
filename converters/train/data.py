"""Training and validation data for a run: ``synthetic`` splits or a user's folders / files.

``--data`` is ``synthetic`` or a path:

========== ======================================================================================
family     path
========== ======================================================================================
mobilenet  an ImageFolder root (``root/<class>/*.jpg``); ``root/train`` + ``root/val`` are used when
           both exist, else every 10th image of each class is held out for validation
detectors  a YOLO ``data.yaml`` (``train`` / ``val`` keys), a folder holding one, a folder with
           ``images/`` + ``labels/`` (YOLO txt; 10 % held out), or a COCO ``.json`` (images next to it
           or in ``images/``; 10 % held out)
siamese    identity folders (``root/<identity>/*.jpg``); ``root/train`` + ``root/val`` when both exist,
           else every 5th identity is held out (validation identities are never trained on)
========== ======================================================================================

Synthetic data is fresh every epoch (epoch ``e`` reads items ``e * n .. (e + 1) * n - 1`` of the ``train``
split), validation uses the ``val`` split; ``test`` is left for the model cards.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from converters.data import (CocoDetectionDataset, DatasetError, IdentityFolderDataset, ImageFolderDataset,
                             YoloDetectionDataset, make_split)

__all__ = ["TrainData", "open_data", "Subset", "MixedDataset", "SceneFrames", "SCENE_SEEDS", "SYNTHETIC_TRAIN_LENGTH"]

logger = logging.getLogger(__name__)

#: Length of the synthetic ``train`` split a run reads from (fresh images every epoch).
SYNTHETIC_TRAIN_LENGTH = 10 ** 8


class Subset:
    """Items ``indices`` of ``dataset`` (``class_names`` / ``num_classes`` passed through)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(int(i) for i in indices)
        for name in ("class_names", "num_classes"):
            if hasattr(dataset, name):
                setattr(self, name, getattr(dataset, name))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]


class MixedDataset:
    """Interleaves datasets: item ``i`` is item ``i // k`` of dataset ``i % k`` (same item format)."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        if not datasets:
            raise ValueError("MixedDataset: expected at least one dataset, got none")
        self.datasets = list(datasets)
        first = self.datasets[0]
        for name in ("class_names", "num_classes", "split"):
            if hasattr(first, name):
                setattr(self, name, getattr(first, name))

    def __len__(self) -> int:
        return min(len(d) for d in self.datasets) * len(self.datasets)

    def __getitem__(self, i: int) -> Any:
        n = len(self)
        if not -n <= int(i) < n:  # the longer datasets' tail is not part of the mix
            raise IndexError(f"index: expected {-n} <= index < {n}, got {i}")
        i = int(i) % n
        k = len(self.datasets)
        return self.datasets[i % k][i // k]


#: Scene seeds of the splits (disjoint from each other and from the demo's small seeds).
SCENE_SEEDS = {"train": 1_000_000, "val": 2_000_000, "test": 3_000_000}


class SceneFrames:
    """Frames of moving ``sdk.synthetic.ShapesScene`` videos (1280x720, what ``synthetic://shapes`` shows).

    Item ``i`` is frame ``i % per_scene`` (``step`` seconds apart) of scene ``SCENE_SEEDS[split] + i // per_scene``,
    so a split's scenes never appear in another split. Items are ``(image, boxes, class_ids)`` as the
    detection datasets.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        length: number of frames.
        per_scene: frames taken from one scene (its background is fixed).
        step: seconds between those frames.
        size_hw: frame size.
    """

    def __init__(self, split: str, length: int, *, per_scene: int = 10, step: float = 0.9,
                 size_hw: Tuple[int, int] = (720, 1280)) -> None:
        from sdk.synthetic import CLASSES

        if split not in SCENE_SEEDS:
            raise ValueError(f"split: expected one of {sorted(SCENE_SEEDS)}, got {split!r}")
        self.split, self.length, self.per_scene, self.step = split, int(length), int(per_scene), float(step)
        self.size_hw = tuple(size_hw)
        self.class_names = tuple(CLASSES)
        self.num_classes = len(CLASSES)
        self._scene: Any = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple:
        from sdk.synthetic import ShapesScene

        if not 0 <= int(i) < self.length:
            raise IndexError(f"index: expected 0 <= index < {self.length}, got {i}")
        seed = SCENE_SEEDS[self.split] + int(i) // self.per_scene
        if self._scene is None or self._scene.seed != seed:
            self._scene = ShapesScene(self.size_hw, seed=seed)
        return self._scene.render((int(i) % self.per_scene) * self.step)


@dataclass
class TrainData:
    """Datasets of one run.

    Attributes:
        train: training items (``(image, class_id)``, ``(image, boxes, class_ids)`` or ``(image, identity)``).
        val: validation items (identity runs: ``(image_a, image_b, same)`` pairs or ``(image, identity)``).
        class_names: class names (empty for identities).
        synthetic: the data is the synthetic generator (fresh images every epoch).
        identities: synthetic training identity ids (Siamese), else None.
        description: for logs and model cards.
    """

    train: Any
    val: Any
    class_names: Tuple[str, ...]
    synthetic: bool
    identities: Optional[Sequence[int]] = None
    description: str = ""


def _synthetic_detect(split: str, length: int, options: Dict[str, Any]) -> Any:
    """Synthetic detection data: ``size_hw`` may list several sizes and ``scenes: true`` adds
    :class:`SceneFrames`; several parts are interleaved (:class:`MixedDataset`, equal shares)."""
    opts = dict(options)
    sizes = opts.pop("size_hw", None)
    scenes = bool(opts.pop("scenes", False))
    if sizes is not None and isinstance(sizes, (list, tuple)) and sizes and isinstance(sizes[0], (list, tuple)):
        size_list = [tuple(s) for s in sizes]
    else:
        size_list = [tuple(sizes)] if sizes is not None else [None]
    parts = len(size_list) + int(scenes)
    per = max(length // parts, 1)
    if parts == 1:
        per = length
    datasets = [make_split(split, "detect", per, **({"size_hw": s} if s is not None else {}), **opts)
                for s in size_list]
    if scenes:
        datasets.append(SceneFrames(split, per))
    return datasets[0] if len(datasets) == 1 else MixedDataset(datasets)


def open_data(task: str, data: str, *, val_images: int, input_size: int, options: Optional[Dict[str, Any]] = None,
              seed: int = 0) -> TrainData:
    """Open the training and validation data of a run.

    Args:
        task: ``"classify"``, ``"detect"`` or ``"identity"``.
        data: ``"synthetic"`` or a path (see the module docstring).
        val_images: validation size (synthetic), or the cap on a user's validation set.
        input_size: network input side (synthetic crops are rendered at this size).
        options: synthetic generator keyword arguments, or ``{"val_fraction": f}`` for a user's data.
        seed: the seed of the hold-out split of a user's data.

    Returns:
        A :class:`TrainData`.

    Raises:
        DatasetError: a missing or malformed dataset (naming the file), or too little data to hold out
            a validation set.
        ValueError: an unknown task.
    """
    options = dict(options or {})
    if task not in ("classify", "detect", "identity"):
        raise ValueError(f"task: expected 'classify', 'detect' or 'identity', got {task!r}")
    if data == "synthetic":
        return _synthetic(task, val_images, input_size, options)
    path = Path(data)
    if not path.exists():
        raise DatasetError(path, "expected 'synthetic' or a dataset path, got a path that does not exist")
    val_fraction = float(options.pop("val_fraction", 0.1 if task != "identity" else 0.2))
    if not 0 < val_fraction < 1:
        raise ValueError(f"data_options.val_fraction: expected a fraction in (0, 1), got {val_fraction}")
    if task == "classify":
        return _image_folder(path, val_fraction, val_images, seed)
    if task == "detect":
        return _detection(path, val_fraction, val_images, seed)
    return _identities(path, val_fraction, val_images, seed)


def _synthetic(task: str, val_images: int, input_size: int, options: Dict[str, Any]) -> TrainData:
    if task == "classify":
        opts = {"size": input_size, **options}
        train = make_split("train", "classify", SYNTHETIC_TRAIN_LENGTH, **opts)
        val = make_split("val", "classify", val_images, **opts)
        names = tuple(train.class_names)
        desc = f"synthetic classification crops {opts}"
        return TrainData(train, val, names, True, description=desc)
    if task == "detect":
        train = _synthetic_detect("train", SYNTHETIC_TRAIN_LENGTH, options)
        val = _synthetic_detect("val", val_images, options)
        return TrainData(train, val, tuple(train.class_names), True, description=f"synthetic detection {options}")
    opts = dict(options)
    n_ids = int(opts.pop("train_identities", 1000))
    size = int(opts.pop("size", input_size))
    train = make_split("train", "identity", SYNTHETIC_TRAIN_LENGTH, identities=n_ids, size=size, **opts)
    val = make_split("val", "pairs", val_images, size=size, **opts)
    return TrainData(train, val, (), True, identities=train.identities,
                     description=f"synthetic identities ({n_ids} training ids, size {size}) {opts}")


def _holdout(n: int, fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    order = np.random.default_rng(np.random.SeedSequence([seed, 77])).permutation(n)
    n_val = max(1, int(round(n * fraction)))
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _cap(ds: Any, n: int) -> Any:
    return ds if len(ds) <= n else Subset(ds, np.linspace(0, len(ds) - 1, n).round().astype(int).tolist())


def _image_folder(path: Path, fraction: float, cap: int, seed: int) -> TrainData:
    if (path / "train").is_dir() and (path / "val").is_dir():
        train, val = ImageFolderDataset(path / "train"), ImageFolderDataset(path / "val")
        if train.class_names != val.class_names:
            raise DatasetError(path / "val", f"expected the same class folders as {path / 'train'} "
                                             f"{list(train.class_names)}, got {list(val.class_names)}")
        return TrainData(train, _cap(val, cap), tuple(train.class_names), False,
                         description=f"ImageFolder {path}/train + {path}/val")
    full = ImageFolderDataset(path)
    labels = full.labels
    tr, va = [], []
    for c in range(full.num_classes):
        idx = np.flatnonzero(labels == c).tolist()
        if len(idx) < 2:
            if idx:
                raise DatasetError(full.image_path(idx[0]).parent, f"class {full.class_names[c]!r}: expected "
                                   f">= 2 images to hold one out for validation, got {len(idx)}")
            continue
        a, b = _holdout(len(idx), fraction, seed + c)
        tr += [idx[i] for i in a]
        va += [idx[i] for i in b]
    if not tr:
        raise DatasetError(path, "expected at least one class with >= 2 images, got none")
    return TrainData(Subset(full, tr), _cap(Subset(full, va), cap), tuple(full.class_names), False,
                     description=f"ImageFolder {path} ({len(tr)} train / {len(va)} val images)")


def _detection(path: Path, fraction: float, cap: int, seed: int) -> TrainData:
    if path.is_dir() and (path / "data.yaml").is_file():
        path = path / "data.yaml"
    if path.suffix in (".yaml", ".yml"):
        import yaml

        meta = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        train = YoloDetectionDataset.from_yaml(path, split="train")
        if isinstance(meta, dict) and isinstance(meta.get("val"), str):
            val = YoloDetectionDataset.from_yaml(path, split="val")
            return TrainData(train, _cap(val, cap), tuple(train.class_names), False, description=f"YOLO {path}")
        full, desc = train, f"YOLO {path} (no 'val' key: 10 % held out)"
    elif path.suffix == ".json":
        images = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
        full, desc = CocoDetectionDataset(images, path), f"COCO {path}"
    elif path.is_dir() and (path / "images").is_dir():
        full, desc = YoloDetectionDataset(path / "images"), f"YOLO folders {path}"
    else:
        raise DatasetError(path, "expected a YOLO data.yaml, a folder with data.yaml or images/ + labels/, or a "
                                 "COCO .json file")
    if len(full) < 2:
        raise DatasetError(path, f"expected >= 2 images to hold some out for validation, got {len(full)}")
    tr, va = _holdout(len(full), fraction, seed)
    return TrainData(Subset(full, tr), _cap(Subset(full, va), cap), tuple(full.class_names), False,
                     description=f"{desc} ({len(tr)} train / {len(va)} val images)")


def _identities(path: Path, fraction: float, cap: int, seed: int) -> TrainData:
    if (path / "train").is_dir() and (path / "val").is_dir():
        train, val = IdentityFolderDataset(path / "train"), IdentityFolderDataset(path / "val")
        _check_identity_set(train, path / "train")
        _check_identity_set(val, path / "val")
        return TrainData(train, _cap(val, cap), (), False, description=f"identity folders {path}/train + val")
    full = IdentityFolderDataset(path)
    _check_identity_set(full, path)
    labels = full.labels
    ids = sorted(set(labels.tolist()))
    if len(ids) < 4:
        raise DatasetError(path, f"expected >= 4 identity folders (validation identities are held out), "
                                 f"got {len(ids)}")
    a, b = _holdout(len(ids), fraction, seed)
    val_ids = {ids[i] for i in b}
    if len(val_ids) < 2:
        val_ids = {ids[i] for i in b} | {ids[a.pop()]}
    tr = [i for i, lab in enumerate(labels.tolist()) if lab not in val_ids]
    va = [i for i, lab in enumerate(labels.tolist()) if lab in val_ids]
    return TrainData(Subset(full, tr), _cap(Subset(full, va), cap), (), False,
                     description=f"identity folders {path} ({len(ids) - len(val_ids)} train / "
                                 f"{len(val_ids)} held-out identities)")


def _check_identity_set(ds: IdentityFolderDataset, where: Path) -> None:
    counts = np.bincount(ds.labels, minlength=ds.num_identities)
    if (counts >= 2).sum() < 2:
        raise DatasetError(where, f"expected >= 2 identities with >= 2 images each, got "
                                  f"{int((counts >= 2).sum())} (of {ds.num_identities} identity folders)")
