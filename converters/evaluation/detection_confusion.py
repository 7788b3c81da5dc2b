"""Detection confusion matrix: which classes a detector confuses, what it misses and what it invents.

COCO mAP says *how much* a detector loses, not *where*. This matrix splits the loss three ways, at one
operating point (a confidence threshold, as deployed):

* row ``k``, column ``j`` (``j != k``): objects of class ``k`` found at the right place but called ``j``;
* last column ("missed"): objects of class ``k`` no detection matched (recall loss);
* last row ("background"): detections of class ``j`` that matched no object (false positives).

Matching is class-agnostic and one-to-one per image: detection/object pairs with IoU >= ``iou`` are taken in
decreasing IoU order, each detection and each object at most once (the rule of Ultralytics'
``ConfusionMatrix``). Rows are the true class, columns the predicted one, as in the classification matrix.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from sdk.ops.boxes import box_iou
from sdk.results import Detections

__all__ = ["detection_confusion_matrix", "confusion_summary"]


def _match(iou: np.ndarray, thr: float) -> tuple:
    """One-to-one pairs ``(gt_idx, det_idx)`` with IoU >= thr, greedily by decreasing IoU."""
    gi, di = np.nonzero(iou >= thr)
    if gi.size == 0:
        return gi, di
    order = np.argsort(-iou[gi, di], kind="stable")
    gi, di = gi[order], di[order]
    used_g = np.zeros(iou.shape[0], bool)
    used_d = np.zeros(iou.shape[1], bool)
    keep = np.zeros(gi.size, bool)
    for n, (g, d) in enumerate(zip(gi.tolist(), di.tolist())):  # pairs above thr: a handful per object
        if not used_g[g] and not used_d[d]:
            used_g[g] = used_d[d] = keep[n] = True
    return gi[keep], di[keep]


def detection_confusion_matrix(ground_truth: Sequence, predictions: Sequence[tuple], num_classes: int, *,
                               conf: float = 0.25, iou: float = 0.45) -> np.ndarray:
    """Count matched, confused, missed and invented boxes over a set of images.

    Args:
        ground_truth: per image, ``(boxes, class_ids)``: float (N, 4) xyxy pixels and int (N,) in ``0..C-1``.
        predictions: per image, a :class:`~sdk.results.Detections` or ``(boxes (M, 4), scores (M,),
            class_ids (M,))``; boxes scoring below ``conf`` are ignored.
        num_classes: C.
        conf: confidence threshold of the operating point, in [0, 1].
        iou: IoU a detection needs with an object to count as found, in (0, 1].

    Returns:
        int64 array of shape (C + 1, C + 1): rows true class then "background", columns predicted class then
        "missed"; ``[C, C]`` is always 0.

    Raises:
        ValueError: thresholds out of range, mismatched lengths, non-finite predictions or class ids outside
            ``0..C-1``.
    """
    if not 0.0 <= float(conf) <= 1.0:
        raise ValueError(f"conf: expected a confidence in [0, 1], got {conf!r}")
    if not 0.0 < float(iou) <= 1.0:
        raise ValueError(f"iou: expected an IoU in (0, 1], got {iou!r}")
    if len(ground_truth) != len(predictions):
        raise ValueError(f"expected one prediction per image, got {len(predictions)} for {len(ground_truth)} images")
    c = int(num_classes)
    cm = np.zeros((c + 1, c + 1), np.int64)
    for i, (gt, pred) in enumerate(zip(ground_truth, predictions)):
        gboxes = np.asarray(gt[0], np.float32).reshape(-1, 4)
        gcls = np.asarray(gt[1], np.int64).reshape(-1)
        if isinstance(pred, Detections):
            pred = (pred.xyxy, pred.confidence, pred.class_id)
        pboxes, scores, pcls = (np.asarray(a) for a in pred)
        pboxes = pboxes.astype(np.float32).reshape(-1, 4)
        scores = scores.astype(np.float32).reshape(-1)
        pcls = pcls.astype(np.int64).reshape(-1)
        if not pboxes.shape[0] == scores.shape[0] == pcls.shape[0]:
            raise ValueError(f"prediction {i}: expected boxes (M, 4), scores (M,), class_ids (M,), got "
                             f"{pboxes.shape}, {scores.shape}, {pcls.shape}")
        if not (np.isfinite(pboxes).all() and np.isfinite(scores).all()):
            raise ValueError(f"prediction {i}: expected finite boxes and scores, got NaN/Inf")
        keep = scores >= conf
        pboxes, pcls = pboxes[keep], pcls[keep]
        for name, ids in (("ground truth", gcls), ("prediction", pcls)):
            if ids.size and (ids.min() < 0 or ids.max() >= c):
                raise ValueError(f"{name} {i}: expected class ids in 0..{c - 1}, got {sorted(set(ids.tolist()))}")
        if gcls.size and pcls.size:
            gi, di = _match(box_iou(gboxes, pboxes), float(iou))
        else:
            gi = di = np.zeros(0, np.int64)
        np.add.at(cm, (gcls[gi], pcls[di]), 1)
        missed = np.ones(gcls.size, bool)
        missed[gi] = False
        np.add.at(cm, (gcls[missed], c), 1)
        invented = np.ones(pcls.size, bool)
        invented[di] = False
        np.add.at(cm, (c, pcls[invented]), 1)
    return cm


def confusion_summary(cm: Any) -> dict:
    """Split a detection confusion matrix into the fractions that explain lost mAP.

    Args:
        cm: a (C + 1, C + 1) matrix from :func:`detection_confusion_matrix`.

    Returns:
        ``{"objects", "found_right_class", "found_wrong_class", "missed", "detections", "false_positives"}``:
        counts of objects and kept detections, and fractions of objects (the first three) and of detections.
    """
    m = np.asarray(cm, np.int64)
    c = m.shape[0] - 1
    objects = int(m[:c].sum())
    detections = int(m[:, :c].sum())
    right = int(np.trace(m[:c, :c]))
    found = int(m[:c, :c].sum())

    def frac(a: int, b: int) -> float:
        return round(a / b, 4) if b else 0.0

    return {"objects": objects, "found_right_class": frac(right, objects),
            "found_wrong_class": frac(found - right, objects), "missed": frac(int(m[:c, c].sum()), objects),
            "detections": detections, "false_positives": frac(int(m[c, :c].sum()), detections)}
