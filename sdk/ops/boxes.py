"""Axis-aligned box utilities with ``torchvision.ops`` semantics, in plain numpy.

Formats:
    ``xyxy``: ``(x1, y1, x2, y2)`` corners (the format every other function expects).
    ``xywh``: ``(x1, y1, w, h)``, top-left corner and size.
    ``cxcywh``: ``(cx, cy, w, h)``, centre and size.

Every function takes array-likes, never modifies its input and returns a new floating array: floating
inputs keep their dtype (float16 is widened to float32), integer inputs become float64 (float32 for
8/16-bit integers), following ``np.result_type(dtype, np.float32)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "box_area",
    "box_iou",
    "box_convert",
    "xyxy_to_xywh",
    "xywh_to_xyxy",
    "cxcywh_to_xyxy",
    "xyxy_to_cxcywh",
    "clip_boxes",
]

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


_COMPUTE_DTYPES: dict = {}


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The floating dtype box arithmetic runs in: float32 or float64 (float16 is widened)."""
    out = _COMPUTE_DTYPES.get(dtype)
    if out is None:
        out = np.result_type(dtype, np.float32)
        if out == np.float16:
            out = np.dtype(np.float32)
        _COMPUTE_DTYPES[dtype] = out
    return out


def as_real_array(value: Any, name: str) -> np.ndarray:
    """``np.asarray(value)``, checking that it holds real numbers (integer or floating, not bool).

    Raises:
        ValueError: for bool, complex, object or string data ("expected a real numeric dtype, got ...").
    """
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a numeric array, got {type(value).__name__} ({exc})") from exc
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected a real numeric dtype (integer or floating), got {arr.dtype}")
    return arr


def as_boxes(value: Any, name: str = "boxes", *, batch: bool = False) -> np.ndarray:
    """Validate boxes and return them as a floating array (a view when no conversion is needed).

    Args:
        value: array-like of shape (N, 4), or (..., 4) when ``batch`` is true. An empty sequence is
            accepted as shape (0, 4).
        name: argument name used in error messages.
        batch: accept any number of leading dimensions.

    Returns:
        Array of shape (N, 4) (or (..., 4)) in :func:`compute_dtype` of the input.

    Raises:
        ValueError: on a wrong shape or dtype ("boxes: expected shape (N, 4), got (3, 5)").
    """
    arr = as_real_array(value, name)
    if arr.size == 0 and arr.ndim == 1:
        arr = arr.reshape(0, 4)
    if batch:
        if arr.ndim < 1 or arr.shape[-1] != 4:
            raise ValueError(f"{name}: expected shape (..., 4), got {arr.shape}")
    elif arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4), got {arr.shape}")
    dtype = compute_dtype(arr.dtype)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def box_area(boxes: Any) -> np.ndarray:
    """Area of ``xyxy`` boxes, ``(x2 - x1) * (y2 - y1)`` like ``torchvision.ops.box_area``.

    Degenerate boxes (``x2 < x1`` or ``y2 < y1``) are not clamped, exactly as in torchvision, so their
    area can be zero or negative.

    Args:
        boxes: array-like of shape (..., 4) in ``xyxy`` format.

    Returns:
        Array of shape (...,).

    Raises:
        ValueError: if the last dimension is not 4 or the dtype is not real numeric.
    """
    b = as_boxes(boxes, batch=True)
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def box_iou(boxes1: Any, boxes2: Any) -> np.ndarray:
    """Pairwise intersection over union of two sets of ``xyxy`` boxes.

    The arithmetic is torchvision's (``inter / (area1 + area2 - inter)`` with the intersection's width
    and height clamped at 0, in the inputs' floating dtype), except that a pair whose union is exactly 0
    (two zero-area boxes) gets IoU 0 where torchvision returns NaN.

    Args:
        boxes1: array-like of shape (N, 4).
        boxes2: array-like of shape (M, 4).

    Returns:
        Array of shape (N, M), dtype ``np.result_type(boxes1, boxes2, np.float32)``.

    Raises:
        ValueError: on a wrong shape or a non-numeric dtype.
    """
    a = as_boxes(boxes1, "boxes1")
    b = as_boxes(boxes2, "boxes2")
    dtype = np.result_type(a.dtype, b.dtype)
    a = a.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.maximum(rb - lt, dtype.type(0))
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union != 0)
    return out


def _check_fmt(fmt: str, name: str) -> str:
    if fmt not in BOX_FORMATS:
        raise ValueError(f"{name}: expected one of {', '.join(BOX_FORMATS)}, got {fmt!r}")
    return fmt


def xyxy_to_xywh(boxes: Any) -> np.ndarray:
    """``(x1, y1, x2, y2)`` to ``(x1, y1, w, h)``.

    Args:
        boxes: array-like of shape (..., 4).

    Returns:
        Array of shape (..., 4).

    Raises:
        ValueError: if the last dimension is not 4 or the dtype is not real numeric.
    """
    b = as_boxes(boxes, batch=True)
    out = b.copy()
    out[..., 2:] -= b[..., :2]
    return out


def xywh_to_xyxy(boxes: Any) -> np.ndarray:
    """``(x1, y1, w, h)`` to ``(x1, y1, x2, y2)``.

    Args:
        boxes: array-like of shape (..., 4).

    Returns:
        Array of shape (..., 4).

    Raises:
        ValueError: if the last dimension is not 4 or the dtype is not real numeric.
    """
    b = as_boxes(boxes, batch=True)
    out = b.copy()
    out[..., 2:] += b[..., :2]
    return out


def cxcywh_to_xyxy(boxes: Any) -> np.ndarray:
    """``(cx, cy, w, h)`` to ``(x1, y1, x2, y2)``, computed as ``cx -/+ 0.5 * w`` like torchvision.

    Args:
        boxes: array-like of shape (..., 4).

    Returns:
        Array of shape (..., 4).

    Raises:
        ValueError: if the last dimension is not 4 or the dtype is not real numeric.
    """
    b = as_boxes(boxes, batch=True)
    half = b[..., 2:] * b.dtype.type(0.5)
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes: Any) -> np.ndarray:
    """``(x1, y1, x2, y2)`` to ``(cx, cy, w, h)``, computed as ``(x1 + x2) / 2`` like torchvision.

    Args:
        boxes: array-like of shape (..., 4).

    Returns:
        Array of shape (..., 4).

    Raises:
        ValueError: if the last dimension is not 4 or the dtype is not real numeric.
    """
    b = as_boxes(boxes, batch=True)
    centre = (b[..., :2] + b[..., 2:]) / b.dtype.type(2)
    return np.concatenate([centre, b[..., 2:] - b[..., :2]], axis=-1)


_TO_XYXY = {"xyxy": None, "xywh": xywh_to_xyxy, "cxcywh": cxcywh_to_xyxy}
_FROM_XYXY = {"xyxy": None, "xywh": xyxy_to_xywh, "cxcywh": xyxy_to_cxcywh}


def box_convert(boxes: Any, in_fmt: str, out_fmt: str) -> np.ndarray:
    """Convert boxes between ``xyxy``, ``xywh`` and ``cxcywh`` like ``torchvision.ops.box_convert``.

    Conversions between two non-``xyxy`` formats go through ``xyxy``, as in torchvision.

    Args:
        boxes: array-like of shape (..., 4) in ``in_fmt``.
        in_fmt: one of ``"xyxy"``, ``"xywh"``, ``"cxcywh"``.
        out_fmt: one of ``"xyxy"``, ``"xywh"``, ``"cxcywh"``.

    Returns:
        New array of shape (..., 4) in ``out_fmt``.

    Raises:
        ValueError: on an unknown format, a wrong shape or a non-numeric dtype.
    """
    _check_fmt(in_fmt, "in_fmt")
    _check_fmt(out_fmt, "out_fmt")
    b = as_boxes(boxes, batch=True)
    if in_fmt == out_fmt:
        return b.copy()
    to_xyxy = _TO_XYXY[in_fmt]
    from_xyxy = _FROM_XYXY[out_fmt]
    xyxy = b if to_xyxy is None else to_xyxy(b)
    return xyxy.copy() if from_xyxy is None else from_xyxy(xyxy)


def clip_boxes(boxes: Any, shape_hw: Sequence[int]) -> np.ndarray:
    """Clip ``xyxy`` boxes to an image: x to ``[0, width]``, y to ``[0, height]``.

    Same rule as ``torchvision.ops.clip_boxes_to_image``.

    Args:
        boxes: array-like of shape (..., 4) in ``xyxy`` format.
        shape_hw: ``(height, width)``; an image's ``shape`` ``(height, width, channels)`` also works.

    Returns:
        New array of shape (..., 4).

    Raises:
        ValueError: if ``shape_hw`` is not two non-negative sizes, or on a wrong box shape or dtype.
    """
    try:
        height, width = (float(v) for v in tuple(shape_hw)[:2])
        ok = len(tuple(shape_hw)) in (2, 3)
    except (TypeError, ValueError):
        ok = False
    if not ok or not (height >= 0 and width >= 0):
        raise ValueError(f"shape_hw: expected (height, width) with non-negative sizes, got {shape_hw!r}")
    b = as_boxes(boxes, batch=True)
    upper = np.array([width, height, width, height], dtype=b.dtype)
    return np.clip(b, b.dtype.type(0), upper)
