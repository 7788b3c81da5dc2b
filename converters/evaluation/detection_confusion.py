"""Detection confusion matrix: which classes a detector confuses, what it misses and what it invents.

COCO mAP says *how much* a detector loses, not *where*. This matrix splits the loss three ways, at one
operating point (a confidence threshold, as deployed):

* row ``k``, column ``j`` (``j != k``): objects of class ``k`` found at the right place but called ``j``;
* last column ("missed"): objects of class ``k`` no detection matched (recall loss);
* last row ("background"): detections of class ``j`` that matched no object (false positives).

Matching is class-agnostic and one-to-one per image: detection/object pairs with IoU >= ``iou`` are taken in
decreasing IoU order, each detection and each object at most once (the rule of Ultralytics'
``ConfusionMatrix``). Rows are the true class, columns the predicted one, as in the classification matrix.

:func:`recall_by_size` splits the same outcomes by object size at the network input, which says what a
larger input (or a finer feature level) would buy: objects a few pixels wide at the input are where
small-input detectors lose most.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from sdk.contract import RESIZES
from sdk.ops.boxes import box_iou
from sdk.results import Detections

__all__ = ["detection_confusion_matrix", "confusion_summary", "recall_by_size", "SIZE_EDGES"]

#: Default bin edges of :func:`recall_by_size`, object side in pixels (the last bin is open).
SIZE_EDGES: Tuple[float, ...] = (0, 8, 16, 32, 64, 128)


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


def _check_point(conf: float, iou: float, n_gt: int, n_pred: int) -> None:
    if not 0.0 <= float(conf) <= 1.0:
        raise ValueError(f"conf: expected a confidence in [0, 1], got {conf!r}")
    if not 0.0 < float(iou) <= 1.0:
        raise ValueError(f"iou: expected an IoU in (0, 1], got {iou!r}")
    if n_gt != n_pred:
        raise ValueError(f"expected one prediction per image, got {n_pred} for {n_gt} images")


def _image_outcome(gt: Any, pred: Any, i: int, c: int, conf: float, iou: float) -> tuple:
    """One image: ``(gt_classes (N,), kept_pred_classes (M,), matched gt indices, matched pred indices)``."""
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
    if gboxes.shape[0] != gcls.shape[0]:
        raise ValueError(f"ground truth {i}: expected boxes (N, 4) and class_ids (N,), got {gboxes.shape}, "
                         f"{gcls.shape}")
    keep = scores >= conf
    pboxes, pcls = pboxes[keep], pcls[keep]
    for name, ids in (("ground truth", gcls), ("prediction", pcls)):
        if ids.size and (ids.min() < 0 or ids.max() >= c):
            raise ValueError(f"{name} {i}: expected class ids in 0..{c - 1}, got {sorted(set(ids.tolist()))}")
    if gcls.size and pcls.size:
        gi, di = _match(box_iou(gboxes, pboxes), iou)
    else:
        gi = di = np.zeros(0, np.int64)
    return gcls, pcls, gi, di


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
    return _confusion(_outcomes(ground_truth, predictions, num_classes, conf, iou), int(num_classes))


def _outcomes(ground_truth: Sequence, predictions: Sequence, num_classes: int, conf: float, iou: float) -> list:
    """Validated per-image :func:`_image_outcome` of a whole set (the matching both summaries count)."""
    _check_point(conf, iou, len(ground_truth), len(predictions))
    return [_image_outcome(gt, pred, i, int(num_classes), float(conf), float(iou))
            for i, (gt, pred) in enumerate(zip(ground_truth, predictions))]


def _confusion(outcomes: list, c: int) -> np.ndarray:
    cm = np.zeros((c + 1, c + 1), np.int64)
    for gcls, pcls, gi, di in outcomes:
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


def _input_scale(size_hw: Sequence[int], input_hw: Sequence[int], resize: str, crop_fraction: float) -> float:
    """Linear scale of an object's side from the image to the network input (letterbox: the fit; center_crop:
    the fill, divided by the crop fraction, as ``sdk.preprocess.center_crop``; stretch: the geometric mean of
    the two axes' scales)."""
    h, w = (float(v) for v in size_hw)
    ih, iw = (float(v) for v in input_hw)
    if resize == "letterbox":
        return min(ih / h, iw / w)
    if resize == "center_crop":
        return max(ih / h, iw / w) / float(crop_fraction)
    return float(np.sqrt((ih / h) * (iw / w)))


def recall_by_size(ground_truth: Sequence, predictions: Sequence, num_classes: int, *,
                   image_sizes: Optional[Sequence] = None, input_hw: Optional[Sequence[int]] = None,
                   resize: str = "letterbox", crop_fraction: float = 1.0, edges: Sequence[float] = SIZE_EDGES,
                   conf: float = 0.25, iou: float = 0.45) -> Dict[str, Any]:
    """Found / confused / missed objects by size, at the operating point of :func:`detection_confusion_matrix`.

    An object's size is its side ``sqrt(w * h)``; with ``input_hw`` (and ``image_sizes``) it is measured at
    the network input (each image scaled as ``resize`` does it), else in image pixels.

    Args:
        ground_truth, predictions, num_classes, conf, iou: as :func:`detection_confusion_matrix`.
        image_sizes: per image ``(height, width)``; needed with ``input_hw``.
        input_hw: the network input ``(height, width)``.
        resize: how the runtime fits an image to the input (``sdk.contract.RESIZES``): ``"letterbox"``,
            ``"center_crop"`` or ``"stretch"``.
        crop_fraction: with ``center_crop``, the fraction of the resized image kept (the contract's).
        edges: increasing bin edges in pixels, starting at 0; the last bin is open-ended.

    Returns:
        ``{"measure": "input px" | "image px", "bins": [{"min_px", "max_px" (None: open), "objects",
        "found_right_class", "found_wrong_class", "missed"}, ...]}``: counts of objects and fractions of
        them (0.0 for an empty bin).

    Raises:
        ValueError: as :func:`detection_confusion_matrix`; bad edges, ``resize``, or ``input_hw`` without
            ``image_sizes`` (or of another length).
    """
    outcomes = _outcomes(ground_truth, predictions, num_classes, conf, iou)
    return _by_size(outcomes, ground_truth, image_sizes=image_sizes, input_hw=input_hw, resize=resize,
                    crop_fraction=crop_fraction, edges=edges, conf=conf, iou=iou)


def _by_size(outcomes: list, ground_truth: Sequence, *, image_sizes: Optional[Sequence],
             input_hw: Optional[Sequence[int]], resize: str, crop_fraction: float, edges: Sequence[float],
             conf: float, iou: float) -> Dict[str, Any]:
    """:func:`recall_by_size` from the matching already done (:func:`_outcomes`)."""
    e = np.asarray(list(edges), np.float64)
    if e.ndim != 1 or e.size < 1 or e[0] != 0 or (np.diff(e) <= 0).any():
        raise ValueError(f"edges: expected increasing pixel sizes starting at 0, got {list(edges)!r}")
    if resize not in RESIZES:
        raise ValueError(f"resize: expected one of {', '.join(RESIZES)}, got {resize!r}")
    if not 0.0 < float(crop_fraction) <= 1.0:
        raise ValueError(f"crop_fraction: expected 0 < crop_fraction <= 1, got {crop_fraction!r}")
    if input_hw is not None and (image_sizes is None or len(image_sizes) != len(ground_truth)):
        raise ValueError(f"image_sizes: expected one (height, width) per image with input_hw, got "
                         f"{None if image_sizes is None else len(image_sizes)} for {len(ground_truth)} images")
    n = e.size
    counts = np.zeros((n, 3), np.int64)          # right class, wrong class, missed
    for i, (gt, (gcls, pcls, gi, di)) in enumerate(zip(ground_truth, outcomes)):
        if not gcls.size:
            continue
        boxes = np.asarray(gt[0], np.float64).reshape(-1, 4)
        side = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
        if input_hw is not None:
            side = side * _input_scale(image_sizes[i], input_hw, resize, crop_fraction)
        outcome = np.full(gcls.size, 2)
        outcome[gi] = np.where(gcls[gi] == pcls[di], 0, 1)
        np.add.at(counts, (np.searchsorted(e, side, side="right") - 1, outcome), 1)
    bins: List[Dict[str, Any]] = []
    for k in range(n):
        total = int(counts[k].sum())
        fr = [round(float(v) / total, 4) if total else 0.0 for v in counts[k]]
        bins.append({"min_px": float(e[k]), "max_px": float(e[k + 1]) if k + 1 < n else None, "objects": total,
                     "found_right_class": fr[0], "found_wrong_class": fr[1], "missed": fr[2]})
    return {"measure": "input px" if input_hw is not None else "image px", "conf": float(conf), "iou": float(iou),
            "bins": bins}
