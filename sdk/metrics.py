"""Live detection accuracy on a device: COCO-style mAP without pycocotools.

The host side (``converters.evaluation``) computes reported metrics with pycocotools or
faster-coco-eval. A device running ``synthetic://shapes`` frames, which carry their ground truth,
needs the same numbers without those packages; :class:`DetectionAccumulator` reproduces the COCO
protocol for the plain case (no crowd annotations, all areas, ``maxDets=100``), and the tests check
it against pycocotools on the same data:

* per image and class, detections sorted by falling score (stable), at most ``max_dets`` kept;
  each is matched greedily to the unmatched ground-truth box of highest IoU ``>= t``;
* per class and IoU threshold ``t`` in 0.50:0.05:0.95, detections of all images sorted by falling
  score (stable merge), precision made monotone, sampled at 101 recall points;
* AP of a class with no ground truth is excluded from the mean.

Memory grows with the number of detections (a score and ten flags each), not with image size.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

__all__ = ["DetectionAccumulator", "IOU_THRESHOLDS"]

#: COCO's IoU thresholds 0.50, 0.55, ..., 0.95.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) ``xyxy`` boxes -> (N, M) float64 (COCO arithmetic: w * h areas)."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


class DetectionAccumulator:
    """Accumulates detections and ground truth image by image; :meth:`compute` gives COCO mAP.

    Args:
        num_classes: number of classes (class ids ``0 .. num_classes-1``).
        max_dets: detections kept per image and class (COCO: 100).

    Example::

        acc = DetectionAccumulator(num_classes=8)
        for frame, dets in pipeline:
            acc.add(dets.xyxy, dets.confidence, dets.class_id, frame.boxes, frame.class_ids)
        acc.compute()   # {"map": ..., "map50": ..., "map75": ..., "per_class_ap50": [...], "images": N}
    """

    def __init__(self, num_classes: int, *, max_dets: int = 100) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes: expected an int >= 1, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.max_dets = int(max_dets)
        self.images = 0
        self._scores: List[List[np.ndarray]] = [[] for _ in range(self.num_classes)]
        self._tp: List[List[np.ndarray]] = [[] for _ in range(self.num_classes)]
        self._npos = np.zeros(self.num_classes, np.int64)

    def add(self, boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, gt_boxes: np.ndarray,
            gt_class_ids: np.ndarray) -> None:
        """Add one image.

        Args:
            boxes: (N, 4) detected ``xyxy`` boxes in the same pixels as the ground truth.
            scores: (N,) confidences.
            class_ids: (N,) integer classes.
            gt_boxes: (M, 4) ground-truth ``xyxy`` boxes.
            gt_class_ids: (M,) integer classes.

        Raises:
            ValueError: shapes that do not match, or class ids outside ``0 .. num_classes-1``.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4) if np.size(gt_boxes) else np.zeros((0, 4))
        scores = np.asarray(scores, np.float64).reshape(-1)
        class_ids = np.asarray(class_ids).reshape(-1).astype(np.int64)
        gt_class_ids = np.asarray(gt_class_ids).reshape(-1).astype(np.int64)
        if not (len(boxes) == len(scores) == len(class_ids)):
            raise ValueError(f"expected boxes (N, 4), scores (N,) and class_ids (N,) of one length, got "
                             f"{len(boxes)}, {len(scores)}, {len(class_ids)}")
        if len(gt_boxes) != len(gt_class_ids):
            raise ValueError(f"expected gt_boxes (M, 4) and gt_class_ids (M,) of one length, got "
                             f"{len(gt_boxes)} and {len(gt_class_ids)}")
        for name, ids in (("class_ids", class_ids), ("gt_class_ids", gt_class_ids)):
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(f"{name}: expected values in 0..{self.num_classes - 1}, got "
                                 f"{int(ids.min())}..{int(ids.max())}")
        self.images += 1
        for c in np.union1d(class_ids, gt_class_ids):
            d = np.flatnonzero(class_ids == c)
            g = np.flatnonzero(gt_class_ids == c)
            self._npos[c] += len(g)
            if not len(d):
                continue
            d = d[np.argsort(-scores[d], kind="mergesort")][: self.max_dets]
            tp = np.zeros((len(d), len(IOU_THRESHOLDS)), bool)
            if len(g):
                ious = _iou(boxes[d], gt_boxes[g])
                for ti, t in enumerate(IOU_THRESHOLDS):
                    taken = np.zeros(len(g), bool)
                    thr = min(t, 1 - 1e-10)
                    for di in range(len(d)):
                        row = np.where(taken, -1.0, ious[di])
                        best = int(np.argmax(row))
                        if row[best] >= thr:
                            taken[best] = True
                            tp[di, ti] = True
            self._scores[c].append(scores[d])
            self._tp[c].append(tp)

    def compute(self) -> Dict[str, object]:
        """``{"map", "map50", "map75", "per_class_ap50", "per_class_map", "images", "ground_truth"}``;
        ``map*`` are NaN when no class has ground truth; per-class entries are None for such classes."""
        ap = np.full((self.num_classes, len(IOU_THRESHOLDS)), np.nan)
        for c in range(self.num_classes):
            if self._npos[c] == 0:
                continue
            if not self._scores[c]:
                ap[c] = 0.0
                continue
            scores = np.concatenate(self._scores[c])
            tp = np.concatenate(self._tp[c])[np.argsort(-scores, kind="mergesort")]
            tps = np.cumsum(tp, axis=0, dtype=np.float64)
            fps = np.cumsum(~tp, axis=0, dtype=np.float64)
            for ti in range(len(IOU_THRESHOLDS)):
                recall = tps[:, ti] / self._npos[c]
                precision = tps[:, ti] / (tps[:, ti] + fps[:, ti] + np.spacing(1))
                precision = np.maximum.accumulate(precision[::-1])[::-1]
                idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
                q = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
                ap[c, ti] = q.mean()
        has_gt = self._npos > 0

        def mean(values: np.ndarray) -> float:
            return float(np.mean(values)) if values.size else float("nan")

        def per_class(values: np.ndarray) -> List[Optional[float]]:
            return [None if np.isnan(v) else round(float(v), 6) for v in values]

        class_map = np.full(self.num_classes, np.nan)
        class_map[has_gt] = ap[has_gt].mean(axis=1)
        return {"map": mean(class_map[has_gt]), "map50": mean(ap[has_gt, 0]), "map75": mean(ap[has_gt, 5]),
                "per_class_ap50": per_class(ap[:, 0]), "per_class_map": per_class(class_map),
                "images": self.images, "ground_truth": int(self._npos.sum())}
