"""Writers: export a detection dataset (synthetic or read from disk) as YOLO txt or COCO JSON.

Both take any sequence of ``(image, boxes, class_ids)`` items (boxes float32 (N, 4) xyxy pixels), e.g.
:func:`~converters.data.make_split` ``("val")`` or a reader, so users can inspect synthetic data in their usual
tools and tests can round-trip the readers.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ._common import PathLike, detection_item, progress

__all__ = ["write_yolo_dataset", "write_coco_json"]

logger = logging.getLogger(__name__)

_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "bmp": ".bmp"}


def _ext(image_format: str) -> str:
    ext = _FORMATS.get(image_format.lower().lstrip("."))
    if ext is None:
        raise ValueError(f"image_format: expected one of {sorted(_FORMATS)}, got {image_format!r}")
    return ext


def _write_image(path: Path, image: np.ndarray, jpeg_quality: int) -> None:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"cv2.imwrite failed for {path}")


def _names(dataset: Sequence, class_names: Optional[Sequence[str]]) -> Optional[tuple]:
    if class_names is not None:
        return tuple(str(n) for n in class_names)
    names = getattr(dataset, "class_names", None)
    return tuple(names) if names is not None else None


def _clipped(boxes: np.ndarray, w: int, h: int, index: int) -> np.ndarray:
    out = np.clip(boxes, 0, [w, h, w, h]).astype(np.float64)
    bad = (out[:, 2] <= out[:, 0]) | (out[:, 3] <= out[:, 1])
    if bad.any():
        raise ValueError(f"item {index}: expected boxes with positive width and height inside the {w} x {h} "
                         f"image, got {boxes[bad][0].tolist()}")
    return out


def write_yolo_dataset(dataset: Sequence, out_dir: PathLike, *, class_names: Optional[Sequence[str]] = None,
                       split: Optional[str] = None, image_format: str = "png", jpeg_quality: int = 95,
                       progress_bar: bool = True) -> Path:
    """Write ``dataset`` in the Ultralytics YOLO layout.

    Writes ``out_dir/images[/split]/000000.png``, ``out_dir/labels[/split]/000000.txt`` (one
    ``class cx cy w h`` line per box, normalised, 6 decimals; an empty file for an image without boxes) and
    ``out_dir/data.yaml`` (``path``, the split's images folder under ``split`` -- or ``train`` and ``val`` when
    ``split`` is None -- and ``names``). Writing a second split into the same ``out_dir`` adds its key to
    ``data.yaml``.

    Args:
        dataset: sequence of ``(image, boxes, class_ids)`` items (boxes xyxy pixels, clipped to the image).
        out_dir: output folder (created).
        class_names: names for ``data.yaml`` (default: ``dataset.class_names``, else ``"0"..`` up to the
            largest id seen).
        split: sub-folder and ``data.yaml`` key (``"train"``, ``"val"``, ...), or None for flat folders.
        image_format: ``"png"`` (lossless, default), ``"jpg"`` or ``"bmp"``.
        jpeg_quality: JPEG quality when ``image_format="jpg"``.
        progress_bar: show a tqdm bar (when stderr is a terminal).

    Returns:
        The path of ``data.yaml``.

    Raises:
        ValueError: a malformed item (naming its index), a degenerate box, or class names that disagree with an
            existing ``data.yaml``.
    """
    import yaml

    ext = _ext(image_format)
    out_dir = Path(out_dir)
    sub = Path(split) if split else Path()
    names = _names(dataset, class_names)
    yaml_path = out_dir / "data.yaml"
    old_names: tuple = ()
    data: dict = {}
    if yaml_path.is_file():
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8")) or {}
        if split is None or any(data.get(k) == "images" for k in ("train", "val", "test")):
            raise ValueError(f"{out_dir}: already holds a YOLO dataset ({yaml_path.name}); write each split with "
                             f"split='train' / 'val' / ... into one folder, or use a new folder")
        old = data.get("names")
        old_names = tuple(old[k] for k in sorted(old)) if isinstance(old, dict) else tuple(old or ())
        if old_names and names is not None and old_names != names:
            raise ValueError(f"{yaml_path}: expected the existing class names {list(old_names)}, got {list(names)}")
    images_dir, labels_dir = out_dir / "images" / sub, out_dir / "labels" / sub
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    max_id = -1
    for i in progress(range(len(dataset)), total=len(dataset), desc="write yolo", enabled=progress_bar):
        image, boxes, class_ids = detection_item(dataset[i], i)
        h, w = image.shape[:2]
        b = _clipped(boxes, w, h, i)
        if class_ids.size:
            if class_ids.min() < 0 or (names is not None and class_ids.max() >= len(names)):
                raise ValueError(f"item {i}: expected class ids in 0..{len(names or ()) - 1}, got {class_ids.tolist()}")
            max_id = max(max_id, int(class_ids.max()))
        stem = f"{i:06d}"
        _write_image(images_dir / (stem + ext), image, jpeg_quality)
        lines = [f"{int(c)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
                 for c, (x1, y1, x2, y2) in zip(class_ids, b)]
        (labels_dir / (stem + ".txt")).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    if names is None:
        names = old_names if len(old_names) > max_id else tuple(str(k) for k in range(max_id + 1))
    if old_names and old_names != tuple(names):
        raise ValueError(f"{yaml_path}: expected the existing class names {list(old_names)}, got {list(names)}")
    data["path"] = "."
    rel = (Path("images") / sub).as_posix()
    for key in ([split] if split else ["train", "val"]):
        data[key] = rel
    data["names"] = {k: n for k, n in enumerate(names)}
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    logger.info("wrote %d images to %s", len(dataset), out_dir)
    return yaml_path


def write_coco_json(dataset: Sequence, out_path: PathLike, *, images_dir: Optional[PathLike] = None,
                    class_names: Optional[Sequence[str]] = None, category_ids: Optional[Sequence[int]] = None,
                    image_format: str = "png", jpeg_quality: int = 95, progress_bar: bool = True) -> Path:
    """Write ``dataset`` as COCO JSON plus its images.

    Images go to ``images_dir/000000.png`` ... (``file_name`` is relative to ``images_dir``); boxes become
    ``bbox: [x1, y1, x2 - x1, y2 - y1]`` with ``area = w * h`` and ``iscrowd = 0``.

    Args:
        dataset: sequence of ``(image, boxes, class_ids)`` items (boxes xyxy pixels, clipped to the image).
        out_path: the JSON file to write (its folder is created).
        images_dir: where to write the images (default: ``images`` next to ``out_path``).
        class_names: category names (default: ``dataset.class_names``, else ``"0"..``).
        category_ids: COCO category id of each class id (default: ``dataset.category_ids`` when the dataset
            has them, as :class:`~converters.data.CocoDetectionDataset` does, else ``class_id + 1``).
        image_format: ``"png"`` (default), ``"jpg"`` or ``"bmp"``.
        jpeg_quality: JPEG quality when ``image_format="jpg"``.
        progress_bar: show a tqdm bar (when stderr is a terminal).

    Returns:
        ``out_path``.

    Raises:
        ValueError: a malformed item, a degenerate box, or class ids outside the names / category ids.
    """
    ext = _ext(image_format)
    out_path = Path(out_path)
    images_dir = Path(images_dir) if images_dir is not None else out_path.parent / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    names = _names(dataset, class_names)
    cat_ids = category_ids if category_ids is not None else getattr(dataset, "category_ids", None)
    images, annotations = [], []
    max_id = -1
    for i in progress(range(len(dataset)), total=len(dataset), desc="write coco", enabled=progress_bar):
        image, boxes, class_ids = detection_item(dataset[i], i)
        h, w = image.shape[:2]
        b = _clipped(boxes, w, h, i)
        if class_ids.size:
            max_id = max(max_id, int(class_ids.max()))
            if class_ids.min() < 0 or (names is not None and max_id >= len(names)):
                raise ValueError(f"item {i}: expected class ids in 0..{len(names or ()) - 1}, got {class_ids.tolist()}")
        file_name = f"{i:06d}{ext}"
        _write_image(images_dir / file_name, image, jpeg_quality)
        images.append({"id": i + 1, "file_name": file_name, "width": int(w), "height": int(h)})
        for c, (x1, y1, x2, y2) in zip(class_ids, b):
            bw, bh = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(c),
                                "bbox": [round(float(x1), 4), round(float(y1), 4), round(float(bw), 4),
                                         round(float(bh), 4)],
                                "area": round(float(bw * bh), 4), "iscrowd": 0})
    if names is None:
        names = tuple(str(k) for k in range(max_id + 1))
    cat_ids = list(cat_ids) if cat_ids is not None else [k + 1 for k in range(len(names))]
    if len(cat_ids) != len(names) or len(set(cat_ids)) != len(cat_ids):
        raise ValueError(f"category_ids: expected {len(names)} distinct ids (one per class), got {cat_ids}")
    for ann in annotations:
        ann["category_id"] = int(cat_ids[ann["category_id"]])
    data = {"info": {"description": "exported by converters.data.write_coco_json"},
            "images": images, "annotations": annotations,
            "categories": [{"id": int(cid), "name": n, "supercategory": ""} for cid, n in zip(cat_ids, names)]}
    out_path.write_text(json.dumps(data), encoding="utf-8")
    logger.info("wrote %d images, %d annotations to %s", len(images), len(annotations), out_path)
    return out_path
