"""Shared helpers of the data readers: the error type, image listing and image reading."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

__all__ = ["DatasetError", "IMAGE_EXTENSIONS", "list_images", "read_image", "check_index", "PathLike"]

PathLike = Union[str, "os.PathLike[str]"]

#: File extensions the readers treat as images (matched case-insensitively).
IMAGE_EXTENSIONS: tuple = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class DatasetError(ValueError):
    """A dataset on disk is malformed: the message starts with ``file[:line]:`` and says what was expected.

    Attributes:
        path: the offending file (or folder).
        line: 1-based line number in ``path`` where it applies (None for whole-file problems).
    """

    def __init__(self, path: PathLike, message: str, line: Optional[int] = None) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {message}")


def _extensions_hint(extensions: Sequence[str]) -> str:
    shown = ", ".join(f"*{e}" for e in extensions[:3])
    return f"{shown}, ..." if len(extensions) > 3 else shown


def list_images(folder: Path, *, recursive: bool = True, extensions: Sequence[str] = IMAGE_EXTENSIONS,
                required: bool = True) -> list:
    """Image files under ``folder``, sorted by their path relative to it (hidden files skipped).

    Args:
        folder: directory to search.
        recursive: also search sub-folders.
        extensions: lower-case suffixes with the dot.
        required: raise when nothing is found.

    Returns:
        Sorted list of ``Path``.

    Raises:
        DatasetError: when ``folder`` is not a directory, or (``required``) holds no image files
            ("expected image files (*.jpg, *.jpeg, *.png, ...) in X, found none").
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, "expected a directory of images, got " +
                           ("a file" if folder.exists() else "a path that does not exist"))
    exts = tuple(e.lower() for e in extensions)
    pattern: Iterable[Path] = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted((p for p in pattern
                    if p.suffix.lower() in exts and not any(part.startswith(".") for part in
                                                             p.relative_to(folder).parts) and p.is_file()),
                   key=lambda p: p.relative_to(folder).as_posix())
    if required and not files:
        raise DatasetError(folder, f"expected image files ({_extensions_hint(exts)}) in {folder}, found none")
    return files


def read_image(path: PathLike) -> np.ndarray:
    """Read an image as BGR uint8 with OpenCV (grey and 16-bit images are converted, alpha dropped).

    Args:
        path: image file.

    Returns:
        uint8 array of shape (H, W, 3), BGR.

    Raises:
        DatasetError: when the file is missing, or OpenCV cannot decode it (corrupt or unsupported).
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, "missing image: the file does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        size = path.stat().st_size
        raise DatasetError(path, f"unreadable image: OpenCV could not decode it ({size} bytes; corrupt, "
                                 f"truncated or an unsupported format)")
    if image.dtype != np.uint8:  # pragma: no cover - IMREAD_COLOR already gives 8-bit
        image = (image / (np.iinfo(image.dtype).max / 255.0)).round().astype(np.uint8)
    return image


def check_index(index: object, length: int) -> int:
    """Normalise a dataset index (negative counts from the end).

    Raises:
        TypeError: when it is not an int.
        IndexError: when it is out of range.
    """
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"index: expected an int, got {type(index).__name__}")
    i = int(index) + (length if index < 0 else 0)
    if not 0 <= i < length:
        raise IndexError(f"index: expected -{length} <= index < {length}, got {index}")
    return i


def progress(iterable: Iterable, *, total: Optional[int] = None, desc: str = "", enabled: bool = True) -> Iterable:
    """Wrap ``iterable`` in a tqdm bar when ``enabled``, stderr is a terminal and tqdm is installed."""
    import sys

    if not enabled or not getattr(sys.stderr, "isatty", lambda: False)():
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the convert and dev extras
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def detection_item(item: object, index: int) -> tuple:
    """Check a detection item ``(image, boxes, class_ids, ...)``; return the first three as arrays.

    Returns:
        ``(image uint8 (H, W, 3), boxes float32 (N, 4), class_ids int64 (N,))``.

    Raises:
        ValueError: naming the item index and what was expected.
    """
    if not isinstance(item, (tuple, list)) or len(item) < 3:
        raise ValueError(f"item {index}: expected (image, boxes, class_ids), got {type(item).__name__}"
                         + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""))
    image = np.asarray(item[0])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"item {index}: expected a BGR uint8 image of shape (H, W, 3), got {image.dtype} "
                         f"{image.shape}")
    boxes = np.asarray(item[1], np.float32).reshape(-1, 4) if np.size(item[1]) else np.zeros((0, 4), np.float32)
    class_ids = np.asarray(item[2], np.int64).reshape(-1)
    if class_ids.shape[0] != boxes.shape[0]:
        raise ValueError(f"item {index}: expected one class id per box, got {boxes.shape[0]} boxes and "
                         f"{class_ids.shape[0]} class ids")
    return image, boxes, class_ids
