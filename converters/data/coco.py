"""COCO JSON detection datasets (``images``, ``annotations`` with ``bbox: [x, y, w, h]`` in pixels, ``categories``).

Category ids (often 1-based and with gaps, as COCO's 1..90) are remapped to contiguous class ids
``0 .. C-1`` in order of increasing category id; :attr:`CocoDetectionDataset.category_ids` keeps the way back.
Crowd annotations (``iscrowd: 1``) are skipped. The JSON is parsed and validated when the dataset is built,
images are read on indexing.
"""
from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ._common import DatasetError, PathLike, check_index, read_image

__all__ = ["CocoDetectionDataset"]

logger = logging.getLogger(__name__)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


class CocoDetectionDataset:
    """Detection images with COCO JSON annotations.

    Args:
        images_dir: folder that the images' ``file_name`` entries are relative to.
        annotations_json: the COCO JSON file.
        tolerance: how far (fraction of the image side) a box may stick out of the image before it counts as
            malformed; boxes are clipped to the image.

    Items are ``(image, boxes, class_ids)`` -- the format of :class:`sdk.synthetic.DetectionDataset`: uint8 BGR
    (H, W, 3); float32 (N, 4) ``x1, y1, x2, y2`` pixels (``x2 = x + w``); int64 (N,) contiguous class ids.

    Raises:
        DatasetError (a ``ValueError``) naming the JSON file and the element (``annotations[12] (id 57)``), or
            the line for invalid JSON: missing keys, duplicate ids, an annotation whose image or category id is
            unknown, a bbox that is not 4 finite numbers, has non-positive width/height or lies outside its
            image, and images whose file is missing. Indexing raises it for an unreadable image or one whose
            size differs from the declared ``width`` x ``height``.
    """

    def __init__(self, images_dir: PathLike, annotations_json: PathLike, *, tolerance: float = 0.01) -> None:
        self.images_dir = Path(images_dir)
        self.annotations_json = path = Path(annotations_json)
        self.tolerance = float(tolerance)
        if not self.images_dir.is_dir():
            raise DatasetError(self.images_dir, "expected a directory of images, got " +
                               ("a file" if self.images_dir.exists() else "a path that does not exist"))
        if not path.is_file():
            raise DatasetError(path, "expected a COCO annotations JSON file, got a path that does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno) from exc
        except UnicodeDecodeError as exc:
            raise DatasetError(path, f"expected UTF-8 JSON, got undecodable bytes ({exc.reason})") from exc
        if not isinstance(data, dict):
            raise DatasetError(path, f"expected a JSON object with images, annotations, categories; got "
                                     f"{type(data).__name__}")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise DatasetError(path, f"expected key {key!r} holding a list, got "
                                         f"{type(data.get(key)).__name__ if key in data else 'nothing'}")

        cats = {}
        for k, c in enumerate(data["categories"]):
            if not isinstance(c, dict) or not _is_int(c.get("id")):
                raise DatasetError(path, f"categories[{k}]: expected an object with an integer 'id', got {c!r}")
            if c["id"] in cats:
                raise DatasetError(path, f"categories[{k}]: duplicate category id {c['id']}")
            cats[c["id"]] = str(c.get("name", c["id"]))
        if not cats:
            raise DatasetError(path, "expected at least one entry in 'categories', found none")
        self.category_ids: tuple = tuple(sorted(cats))
        """Original COCO category id of each contiguous class id: ``category_ids[class_id]``."""
        self.category_index: dict = {cid: i for i, cid in enumerate(self.category_ids)}
        """Contiguous class id of each COCO category id."""
        self._names = tuple(cats[cid] for cid in self.category_ids)

        images: dict = {}
        order = []
        for k, im in enumerate(data["images"]):
            where = f"images[{k}]"
            if not isinstance(im, dict) or not _is_int(im.get("id")) or not isinstance(im.get("file_name"), str):
                raise DatasetError(path, f"{where}: expected an object with integer 'id' and string 'file_name', "
                                         f"got {im!r}")
            if im["id"] in images:
                raise DatasetError(path, f"{where}: duplicate image id {im['id']}")
            for dim in ("width", "height"):
                if dim in im and not (_is_int(im[dim]) and im[dim] > 0):
                    raise DatasetError(path, f"{where} (id {im['id']}): expected a positive integer {dim!r}, "
                                             f"got {im[dim]!r}")
            file = self.images_dir / im["file_name"]
            if not file.is_file():
                raise DatasetError(path, f"{where} (id {im['id']}): missing image {file}")
            images[im["id"]] = (file, im.get("width"), im.get("height"), [], [])
            order.append(im["id"])
        if not images:
            raise DatasetError(path, "expected at least one entry in 'images', found none")

        crowd = 0
        for k, ann in enumerate(data["annotations"]):
            where = f"annotations[{k}]" + (f" (id {ann.get('id')})" if isinstance(ann, dict) and "id" in ann else "")
            if not isinstance(ann, dict):
                raise DatasetError(path, f"{where}: expected an object, got {type(ann).__name__}")
            if ann.get("image_id") not in images:
                raise DatasetError(path, f"{where}: unknown image_id {ann.get('image_id')!r} (not in 'images')")
            if ann.get("category_id") not in self.category_index:
                raise DatasetError(path, f"{where}: unknown category_id {ann.get('category_id')!r}; expected one "
                                         f"of {list(self.category_ids)[:20]}")
            bbox = ann.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_num(v) for v in bbox)):
                raise DatasetError(path, f"{where}: expected bbox [x, y, w, h] of 4 finite numbers, got {bbox!r}")
            x, y, w, h = (float(v) for v in bbox)
            if w <= 0 or h <= 0:
                raise DatasetError(path, f"{where}: expected a bbox with positive width and height, got {bbox}")
            file, iw, ih, boxes, classes = images[ann["image_id"]]
            if iw is not None and ih is not None:
                tx, ty = self.tolerance * iw, self.tolerance * ih
                if x < -tx or y < -ty or x + w > iw + tx or y + h > ih + ty:
                    raise DatasetError(path, f"{where}: box out of range: bbox {bbox} (x2={x + w:g}, y2={y + h:g}) "
                                             f"does not fit image {ann['image_id']} of {iw} x {ih} pixels")
            if ann.get("iscrowd", 0):
                crowd += 1
                continue
            boxes.append((x, y, x + w, y + h))
            classes.append(self.category_index[ann["category_id"]])
        if crowd:
            logger.info("%s: skipped %d crowd annotations", path, crowd)
        self.n_crowd_skipped = crowd
        self.samples: list = []
        """``(image_path, width or None, height or None, boxes float32 (N, 4) xyxy, class_ids int64 (N,), image_id)``."""
        for image_id in order:
            file, iw, ih, boxes, classes = images[image_id]
            self.samples.append((file, iw, ih, np.asarray(boxes, np.float32).reshape(-1, 4),
                                 np.asarray(classes, np.int64), image_id))

    @property
    def class_names(self) -> tuple:
        """Category names in contiguous class-id order."""
        return self._names

    @property
    def num_classes(self) -> int:
        return len(self._names)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple:
        i = check_index(index, len(self))
        file, iw, ih, boxes, classes, image_id = self.samples[i]
        image = read_image(file)
        h, w = image.shape[:2]
        if (iw is not None and iw != w) or (ih is not None and ih != h):
            raise DatasetError(file, f"expected an image of {iw} x {ih} pixels as {self.annotations_json.name} "
                                     f"declares (image id {image_id}), got {w} x {h}")
        if iw is None or ih is None:
            tx, ty = self.tolerance * w, self.tolerance * h
            bad = (boxes[:, 0] < -tx) | (boxes[:, 1] < -ty) | (boxes[:, 2] > w + tx) | (boxes[:, 3] > h + ty)
            if bad.any():
                raise DatasetError(self.annotations_json, f"image id {image_id}: box out of range: "
                                                          f"{boxes[bad][0].tolist()} (xyxy) does not fit {w} x {h}")
        out = boxes.copy()
        np.clip(out, 0, [w, h, w, h], out=out)
        return image, out, classes.copy()

    def __iter__(self) -> Iterator[tuple]:
        for i in range(len(self)):
            yield self[i]

    def image_path(self, index: int) -> Path:
        """The image file of item ``index``."""
        return self.samples[check_index(index, len(self))][0]

    def image_id(self, index: int) -> int:
        """The COCO image id of item ``index``."""
        return int(self.samples[check_index(index, len(self))][5])

    def verify_images(self) -> None:
        """Read every image once (and check declared sizes).

        Raises:
            DatasetError: naming the first unreadable or mis-sized image.
        """
        for i in range(len(self)):
            self[i]

    def __repr__(self) -> str:
        n_obj = sum(len(s[4]) for s in self.samples)
        return (f"CocoDetectionDataset(annotations_json={str(self.annotations_json)!r}, n={len(self)}, "
                f"objects={n_obj}, classes={len(self._names)})")
