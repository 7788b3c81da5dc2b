"""YOLO txt detection datasets: one ``.txt`` per image, one ``class cx cy w h`` line per object.

Layout (Ultralytics)::

    dataset/
      data.yaml            # path: ., train: images/train, val: images/val, names: [a, b] or {0: a, 1: b}
      images/train/0001.jpg ...
      labels/train/0001.txt ...   # "3 0.51 0.40 0.20 0.10": class id, box centre x, y, width, height,
                                  # all normalised by the image width / height

An image without a label file (or with an empty one) has no objects. Labels are parsed and validated when
the dataset is built, images are read on indexing.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from ._common import IMAGE_EXTENSIONS, DatasetError, PathLike, check_index, list_images, read_image

__all__ = ["YoloDetectionDataset", "parse_yolo_labels", "read_names"]

logger = logging.getLogger(__name__)

Names = Union[None, Sequence[str], Mapping[int, str], PathLike]


def read_names(names: Names) -> Optional[tuple]:
    """Class names from a list, a ``{id: name}`` mapping, or a ``data.yaml`` path (its ``names`` key).

    Returns:
        A tuple indexed by class id, or None when ``names`` is None.

    Raises:
        DatasetError: for a YAML file that is missing, unreadable or has no usable ``names``.
        ValueError: for a mapping whose keys are not exactly ``0 .. C-1``.
    """
    if names is None:
        return None
    if isinstance(names, (str, Path)) or hasattr(names, "__fspath__"):
        import yaml

        path = Path(names)  # type: ignore[arg-type]
        if not path.is_file():
            raise DatasetError(path, "names: expected a data.yaml file, got a path that does not exist")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise DatasetError(path, f"invalid YAML: {exc}", None if mark is None else mark.line + 1) from exc
        if not isinstance(data, dict) or "names" not in data:
            raise DatasetError(path, "expected a mapping with a 'names' key (list or {id: name})")
        try:
            return read_names(data["names"])
        except ValueError as exc:
            raise DatasetError(path, str(exc)) from exc
    if isinstance(names, Mapping):
        try:
            keyed = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"names: expected integer class ids as keys, got {list(names)[:5]!r}") from exc
        if sorted(keyed) != list(range(len(keyed))):
            raise ValueError(f"names: expected class ids 0..{len(keyed) - 1} as keys, got {sorted(keyed)[:10]}")
        return tuple(keyed[i] for i in range(len(keyed)))
    if isinstance(names, Sequence) and not isinstance(names, bytes):
        return tuple(str(n) for n in names)
    raise ValueError(f"names: expected a list of names, a {{id: name}} mapping or a data.yaml path, "
                     f"got {type(names).__name__}")


def parse_yolo_labels(path: PathLike, *, num_classes: Optional[int] = None, tolerance: float = 0.01) -> tuple:
    """Parse and validate one YOLO label file.

    Args:
        path: the ``.txt`` file.
        num_classes: number of known classes (ids must be below it); None accepts any id >= 0.
        tolerance: how far (as a fraction of the image side) box edges may stick out of ``[0, 1]``;
            boxes are clipped to the image when converted to pixels.

    Returns:
        ``(cxcywh, class_ids)``: float32 array of shape (N, 4), normalised ``cx, cy, w, h``; int64 array (N,).

    Raises:
        DatasetError: naming the file and the 1-based line: wrong column count, non-numeric or non-finite
            values, a non-integer, negative or unknown class id, non-positive width or height, or a box
            outside ``[0, 1]`` by more than ``tolerance``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"expected a UTF-8 text label file, got undecodable bytes ({exc.reason})") from exc
    boxes, classes = [], []
    lo, hi = -tolerance, 1.0 + tolerance
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        tokens = line.split()
        if len(tokens) != 5:
            hint = ""
            if len(tokens) > 5 and (len(tokens) - 1) % 2 == 0:
                hint = " (this looks like a segmentation polygon; detection labels have one box per line)"
            raise DatasetError(path, f"expected 5 columns 'class cx cy w h', got {len(tokens)}: {line!r}{hint}",
                               lineno)
        values = []
        for tok in tokens:
            try:
                values.append(float(tok))
            except ValueError:
                raise DatasetError(path, f"expected numbers 'class cx cy w h', got non-numeric value {tok!r} "
                                         f"in {line!r}", lineno) from None
        if not all(math.isfinite(v) for v in values):
            raise DatasetError(path, f"expected finite numbers, got {line!r}", lineno)
        c, cx, cy, w, h = values
        if c != int(c) or c < 0:
            raise DatasetError(path, f"expected a class id that is an integer >= 0, got {tokens[0]!r}", lineno)
        if num_classes is not None and c >= num_classes:
            raise DatasetError(path, f"unknown class id {int(c)}: expected 0..{num_classes - 1} "
                                     f"({num_classes} names)", lineno)
        if w <= 0 or h <= 0:
            raise DatasetError(path, f"expected a box with positive width and height, got w={tokens[3]}, "
                                     f"h={tokens[4]}", lineno)
        edges = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not all(lo <= v <= hi for v in (cx, cy, w, h, *edges)):
            hint = (" (these look like pixel coordinates; YOLO labels are normalised by the image width and "
                    "height)" if max(cx, cy, w, h) > 1.5 else "")
            raise DatasetError(path, f"box out of range: expected normalised values in [0, 1] (tolerance "
                                     f"{tolerance}), got cx={tokens[1]} cy={tokens[2]} w={tokens[3]} "
                                     f"h={tokens[4]}, edges x1={edges[0]:.4g} y1={edges[1]:.4g} "
                                     f"x2={edges[2]:.4g} y2={edges[3]:.4g}{hint}", lineno)
        boxes.append((cx, cy, w, h))
        classes.append(int(c))
    return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(classes, np.int64))


def cxcywh_to_xyxy_pixels(cxcywh: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised ``cx, cy, w, h`` (N, 4) to pixel ``x1, y1, x2, y2`` (N, 4) float32, clipped to the image."""
    b = np.asarray(cxcywh, np.float64).reshape(-1, 4)
    scale = np.array([width, height, width, height], np.float64)
    xyxy = np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1) * scale
    return np.clip(xyxy, 0, scale).astype(np.float32)


def _default_labels_dir(images_dir: Path) -> Path:
    parts = images_dir.parts
    if "images" in parts:
        i = len(parts) - 1 - parts[::-1].index("images")
        candidate = Path(*parts[:i], "labels", *parts[i + 1:])
        if candidate.is_dir():
            return candidate
    return images_dir


class YoloDetectionDataset:
    """Detection images with YOLO txt labels.

    Args:
        images_dir: folder of images (searched recursively).
        labels_dir: folder of ``.txt`` labels mirroring ``images_dir``'s layout. Default: the Ultralytics
            convention (the last ``images`` path component replaced by ``labels``) when that folder exists,
            else ``images_dir`` itself (labels next to the images).
        names: class names: a list, a ``{id: name}`` mapping, or the path of a ``data.yaml``. When None,
            ids are not checked against a class list and names are ``"0", "1", ...`` up to the largest id.
        tolerance: how far box edges may stick out of ``[0, 1]`` (fraction of the image side) before a label
            counts as malformed; boxes are clipped to the image.
        extensions: image suffixes to accept.

    Items are ``(image, boxes, class_ids)`` -- the format of :class:`sdk.synthetic.DetectionDataset`: uint8 BGR
    (H, W, 3); float32 (N, 4) ``x1, y1, x2, y2`` in pixels (pixel-edge convention: a box covering columns
    ``0..9`` has ``x1=0, x2=10``); int64 (N,).

    Raises:
        DatasetError (a ``ValueError``) naming the file (and line): no images; no label files at all; a
            label file without an image ("missing image"); two images with the same name stem; any malformed
            label line (see :func:`parse_yolo_labels`). Indexing raises it for an unreadable image.
    """

    def __init__(self, images_dir: PathLike, labels_dir: Optional[PathLike] = None, names: Names = None, *,
                 tolerance: float = 0.01, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
        self.images_dir = Path(images_dir)
        images = list_images(self.images_dir, extensions=extensions)
        self.labels_dir = Path(labels_dir) if labels_dir is not None else _default_labels_dir(self.images_dir)
        if not self.labels_dir.is_dir():
            raise DatasetError(self.labels_dir, "expected a directory of YOLO label files (*.txt), got " +
                               ("a file" if self.labels_dir.exists() else "a path that does not exist"))
        names_t = read_names(names)
        self.tolerance = float(tolerance)

        by_stem: dict = {}
        for p in images:
            key = p.relative_to(self.images_dir).with_suffix("").as_posix()
            if key in by_stem:
                raise DatasetError(p, f"two images share the name stem {key!r} (the other is {by_stem[key]}); "
                                      f"a label file could belong to either")
            by_stem[key] = p
        label_files = sorted(p for p in self.labels_dir.rglob("*.txt")
                             if p.is_file() and p.name != "classes.txt"
                             and not any(s.startswith(".") for s in p.relative_to(self.labels_dir).parts))
        if not label_files:
            raise DatasetError(self.labels_dir, f"expected YOLO label files (*.txt) in {self.labels_dir}, found "
                                                f"none; pass labels_dir= (images are in {self.images_dir})")
        labels_by_stem = {}
        for lf in label_files:
            key = lf.relative_to(self.labels_dir).with_suffix("").as_posix()
            if key not in by_stem:
                raise DatasetError(lf, f"missing image: no image named {key}.* "
                                       f"({', '.join(e[1:] for e in extensions[:4])}, ...) in {self.images_dir}")
            labels_by_stem[key] = lf

        num_classes = None if names_t is None else len(names_t)
        self.samples: list = []
        """``(image_path, label_path or None, cxcywh float32 (N, 4), class_ids int64 (N,))`` per image."""
        max_id = -1
        for key, image_path in by_stem.items():
            lf = labels_by_stem.get(key)
            if lf is None:
                cxcywh, cls = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
            else:
                cxcywh, cls = parse_yolo_labels(lf, num_classes=num_classes, tolerance=self.tolerance)
            if cls.size:
                max_id = max(max_id, int(cls.max()))
            self.samples.append((image_path, lf, cxcywh, cls))
        if names_t is None:
            names_t = tuple(str(i) for i in range(max_id + 1))
            logger.info("%s: no class names given; using %d numeric names", self.images_dir, len(names_t))
        self._names = names_t
        unlabeled = sum(1 for s in self.samples if s[1] is None)
        if unlabeled:
            logger.info("%s: %d of %d images have no label file (no objects)", self.images_dir, unlabeled,
                        len(self.samples))

    @classmethod
    def from_yaml(cls, data_yaml: PathLike, split: str = "val", **kwargs: Any) -> "YoloDetectionDataset":
        """Open one split of an Ultralytics ``data.yaml`` (``path`` + ``train``/``val``/``test`` folders, ``names``).

        Args:
            data_yaml: the YAML file.
            split: which key names the images folder.
            **kwargs: passed to the constructor (``tolerance``, ``extensions``, ``labels_dir``).

        Raises:
            DatasetError: the YAML lacks ``split`` or names something other than one images folder.
        """
        import yaml

        data_yaml = Path(data_yaml)
        if not data_yaml.is_file():
            raise DatasetError(data_yaml, "expected a data.yaml file, got a path that does not exist")
        data = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict) or not isinstance(data.get(split), str):
            raise DatasetError(data_yaml, f"expected key {split!r} naming one images folder, got "
                                          f"{data.get(split) if isinstance(data, dict) else data!r}")
        root = Path(data.get("path") or ".")
        if not root.is_absolute():
            root = data_yaml.parent / root
        images = Path(data[split])
        images = images if images.is_absolute() else root / images
        if images.suffix == ".txt":
            raise DatasetError(data_yaml, f"split {split!r}: image list files ({images.name}) are not supported; "
                                          f"point it at a folder of images")
        return cls(images, names=data_yaml, **kwargs)

    @property
    def class_names(self) -> tuple:
        """Class names, ``class_names[class_id]``."""
        return self._names

    @property
    def num_classes(self) -> int:
        return len(self._names)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple:
        image_path, _, cxcywh, cls = self.samples[check_index(index, len(self))]
        image = read_image(image_path)
        h, w = image.shape[:2]
        return image, cxcywh_to_xyxy_pixels(cxcywh, w, h), cls.copy()

    def __iter__(self) -> Iterator[tuple]:
        for i in range(len(self)):
            yield self[i]

    def image_path(self, index: int) -> Path:
        """The image file of item ``index``."""
        return self.samples[check_index(index, len(self))][0]

    def verify_images(self) -> None:
        """Read every image once.

        Raises:
            DatasetError: naming the first unreadable image.
        """
        for s in self.samples:
            read_image(s[0])

    def __repr__(self) -> str:
        n_obj = sum(len(s[3]) for s in self.samples)
        return (f"YoloDetectionDataset(images_dir={str(self.images_dir)!r}, n={len(self)}, objects={n_obj}, "
                f"classes={len(self._names)})")
