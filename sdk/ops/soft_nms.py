"""Soft-NMS (Bodla et al., "Soft-NMS -- Improving Object Detection With One Line of Code", ICCV 2017).

Instead of removing the boxes that overlap a selected box, Soft-NMS lowers their scores:

* ``"linear"``: ``s_i *= 1 - iou`` when ``iou > iou_threshold`` (unchanged otherwise);
* ``"gaussian"``: ``s_i *= exp(-iou**2 / sigma)`` for every remaining box (``iou_threshold`` unused).

The highest current score is selected next (ties: the lowest index); boxes whose score is below
``score_threshold`` -- initially or after a decay -- are dropped.
"""
from __future__ import annotations

from numbers import Real
from typing import Any, Tuple

import numpy as np

from sdk.ops.nms import _check_inputs

__all__ = ["soft_nms"]

_METHODS = ("gaussian", "linear")


def _real(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (Real, np.number)):
        raise ValueError(f"{name}: expected a real number, got {value!r}")
    out = float(value)
    if out != out:
        raise ValueError(f"{name}: expected a real number, got nan")
    return out


def soft_nms(
    boxes: Any,
    scores: Any,
    iou_threshold: float = 0.3,
    sigma: float = 0.5,
    method: str = "gaussian",
    score_threshold: float = 0.001,
) -> Tuple[np.ndarray, np.ndarray]:
    """Soft-NMS: decay the scores of boxes overlapping each selected box instead of removing them.

    IoU uses the arithmetic of :func:`sdk.ops.box_iou` in the boxes' dtype; scores are decayed in
    float64. The cost is O(N^2) with one vectorised step per selected box.

    Args:
        boxes: (N, 4) ``xyxy`` boxes.
        scores: (N,) scores (not modified).
        iou_threshold: ``"linear"`` decays boxes with IoU strictly greater than this.
        sigma: ``"gaussian"`` decay width, > 0.
        method: ``"gaussian"`` or ``"linear"``.
        score_threshold: boxes whose (decayed) score falls below this are dropped.

    Returns:
        ``(keep, new_scores)``: int64 array (K,) of indices into ``boxes`` in selection order, and the
        (K,) decayed scores of those boxes at selection time (non-increasing), in the scores' floating
        dtype (float32 for float32 or float16 input, float64 otherwise).

    Raises:
        ValueError: on a wrong shape or dtype, NaN scores, non-finite boxes, an unknown ``method``,
            a non-positive ``sigma`` or NaN thresholds.
    """
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {', '.join(_METHODS)}, got {method!r}")
    thr = _real(iou_threshold, "iou_threshold")
    sig = _real(sigma, "sigma")
    if method == "gaussian" and not sig > 0:
        raise ValueError(f"sigma: expected a positive number, got {sigma!r}")
    min_score = _real(score_threshold, "score_threshold")
    b, s = _check_inputs(boxes, scores)
    out_dtype = np.result_type(s.dtype, np.float32)
    if out_dtype == np.float16:
        out_dtype = np.dtype(np.float32)

    current = s.astype(np.float64)
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    zero = b.dtype.type(0)
    alive = np.flatnonzero(current >= min_score)
    keep = []
    kept_scores = []
    while alive.size:
        j = int(np.argmax(current[alive]))
        i = int(alive[j])
        keep.append(i)
        kept_scores.append(current[i])
        alive = np.delete(alive, j)
        if not alive.size:
            break
        w = np.maximum(np.minimum(x2[i], x2[alive]) - np.maximum(x1[i], x1[alive]), zero)
        h = np.maximum(np.minimum(y2[i], y2[alive]) - np.maximum(y1[i], y1[alive]), zero)
        inter = w * h
        union = areas[i] + areas[alive] - inter
        iou = np.zeros_like(inter)
        np.divide(inter, union, out=iou, where=union != 0)
        iou = iou.astype(np.float64)
        if method == "gaussian":
            current[alive] *= np.exp(-(iou * iou) / sig)
        else:
            current[alive] *= np.where(iou > thr, 1.0 - iou, 1.0)
        alive = alive[current[alive] >= min_score]
    return np.asarray(keep, dtype=np.int64), np.asarray(kept_scores, dtype=out_dtype)
