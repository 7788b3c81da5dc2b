"""Greedy non-maximum suppression with the exact results of ``torchvision.ops.nms``, in numpy.

Semantics (identical to torchvision's CPU kernel):
    * candidates are visited by falling score; equal scores keep their input order (stable sort);
    * a visited box that was not suppressed is kept and suppresses every later box whose IoU with it
      is strictly greater than ``iou_threshold``;
    * IoU is computed in the boxes' floating dtype with torchvision's arithmetic:
      ``area = (x2 - x1) * (y2 - y1)``, ``inter = max(0, xx2 - xx1) * max(0, yy2 - yy1)``,
      ``iou = inter / (area_i + area_j - inter)``, so borderline decisions (IoU exactly at the
      threshold, float32 rounding) match bit for bit.

How it is fast without a per-box Python loop: candidates are processed in blocks of the ``_BLOCK``
best remaining boxes. For a block, the ``B x B`` suppression matrix is computed with vectorised numpy
and the block's greedy result is resolved exactly with machine-word bitsets (one Python step per block
row, no per-pair work); the boxes kept in the block then suppress the rest of the candidates in one
vectorised ``K x R`` evaluation and the survivors are compacted. Every kept box is compared with every
later surviving box exactly as in the sequential greedy algorithm, only in a different order, so the
result is the same set in the same order.
"""
from __future__ import annotations

import logging
import math
import threading
from numbers import Real
from typing import Any, Optional

import numpy as np

from sdk.ops.boxes import as_boxes, as_real_array

__all__ = ["nms", "batched_nms"]

logger = logging.getLogger(__name__)

# Block size (<= 64: the in-block greedy then uses one 64-bit word per row).
_BLOCK = 64
# When at most this many candidates remain, they form one last block (one square evaluation).
_FINAL = 128
# At most this many pairs: evaluate the block's rows against all remaining boxes in one pass.
_SINGLE_PASS_PAIRS = 12288
# Largest pair matrix evaluated at once (bounds the per-thread workspace: about 30 bytes per pair).
_CHUNK_PAIRS = 32768
# torchvision.ops.batched_nms switches from the coordinate trick to per-class NMS above this
# ``boxes.numel()`` on CPU; batched_nms follows the same switch to give the same results.
_TV_BATCHED_NUMEL = 4000
# Above this size, float32 scores are ordered with one int64 sort instead of a stable argsort.
_KEY_SORT_MIN = 1024

_SIGN = {dt: np.array([1, 1, -1, -1], dtype=dt)[:, None] for dt in (np.float32, np.float64)}


class _Workspace(threading.local):
    """Per-thread scratch buffers, allocated on first use and reused (no page faults per call)."""

    def __init__(self) -> None:
        self.buffers: dict = {}

    def get(self, dtype: np.dtype) -> tuple:
        bufs = self.buffers.get(dtype)
        if bufs is None:
            bufs = (
                np.empty(5 * _CHUNK_PAIRS, dtype),
                np.zeros(2 * _CHUNK_PAIRS, dtype),
                np.empty(_CHUNK_PAIRS, bool),
                np.empty(_CHUNK_PAIRS, bool),
            )
            self.buffers[dtype] = bufs
        return bufs


_WORKSPACE = _Workspace()


# ----------------------------------------------------------------------------------------------
# Input handling


def _check_threshold(iou_threshold: Any) -> float:
    if isinstance(iou_threshold, (bool, np.bool_)) or not isinstance(iou_threshold, (Real, np.number)):
        raise ValueError(f"iou_threshold: expected a real number, got {iou_threshold!r}")
    thr = float(iou_threshold)
    if thr != thr:
        raise ValueError("iou_threshold: expected a real number, got nan")
    return thr


def _check_max_output(max_output: Optional[int]) -> Optional[int]:
    if max_output is None:
        return None
    if isinstance(max_output, (bool, np.bool_)) or not isinstance(max_output, (int, np.integer)):
        raise ValueError(f"max_output: expected a non-negative int or None, got {max_output!r}")
    if max_output < 0:
        raise ValueError(f"max_output: expected a non-negative int or None, got {max_output}")
    return int(max_output)


def _check_inputs(boxes: Any, scores: Any) -> tuple:
    """Validate ``boxes`` (N, 4) and ``scores`` (N,); returns them as arrays."""
    b = as_boxes(boxes)
    s = as_real_array(scores, "scores")
    if s.ndim != 1 or s.shape[0] != b.shape[0]:
        raise ValueError(f"scores: expected shape ({b.shape[0]},) to match boxes {b.shape}, got {s.shape}")
    if b.shape[0]:
        # One sum detects any NaN/inf cheaply (an overflowing sum of finite values is re-checked).
        if not math.isfinite(b.sum()):
            bad = int(b.size - np.count_nonzero(np.isfinite(b)))
            if bad:
                raise ValueError(f"boxes: expected finite coordinates, got {bad} non-finite value(s) "
                                 f"(NaN or inf)")
        if s.dtype.kind == "f" and math.isnan(s.sum()):
            bad = int(np.count_nonzero(np.isnan(s)))
            if bad:
                raise ValueError(f"scores: expected no NaN, got {bad} NaN value(s); "
                                 f"drop or replace them before NMS")
    return b, s


def _descending_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` by falling value, equal values in input order (a stable sort).

    Same order as ``torch.sort(scores, descending=True, stable=True)``; ``-0.0`` equals ``0.0``.
    """
    n = scores.shape[0]
    if scores.dtype == np.float32 and _KEY_SORT_MIN <= n < 2**31:
        # One int64 sort of (order-preserving integer image of the score, index): unique keys, so
        # any sort algorithm yields the stable order, and numpy's int64 sort is much faster.
        bits = (scores + np.float32(0.0)).view(np.int32).astype(np.int64)  # + 0.0 maps -0.0 to 0.0
        bits ^= (bits >> 31) & 0x7FFFFFFF  # negative floats: flip magnitude bits -> monotone ints
        key = ~bits
        key <<= 32
        key |= np.arange(n, dtype=np.int64)
        key.sort()
        key &= 0xFFFFFFFF
        return key
    return (n - 1 - np.argsort(scores[::-1], kind="stable"))[::-1]


def _threshold_in(dtype: np.dtype, thr: float) -> np.floating:
    """The largest ``dtype`` value ``t`` with ``t <= thr``: then ``iou > t`` in ``dtype`` is exactly
    torchvision's test ``(double) iou > thr``."""
    t = dtype.type(thr)
    if float(t) > thr:
        t = np.nextafter(t, dtype.type(-np.inf))
    return t


# ----------------------------------------------------------------------------------------------
# Kernel


def _suppression_matrix(rows: np.ndarray, cols: np.ndarray, thr: np.floating, ws: tuple,
                        rows_cls: Optional[np.ndarray] = None,
                        cols_cls: Optional[np.ndarray] = None, n_clip: int = 2) -> np.ndarray:
    """``iou(rows[i], cols[j]) > thr`` for every pair, with torchvision's float arithmetic.

    Args:
        rows: (5, K) array ``[x1, y1, -x2, -y2, area]``.
        cols: (5, M) array, same layout and dtype; ``K * M <= _CHUNK_PAIRS``.
        thr: threshold from :func:`_threshold_in`.
        ws: workspace buffers for this dtype.
        rows_cls, cols_cls: optional (K,) and (M,) class ids; pairs of different classes never
            suppress each other.
        n_clip: 2 clamps both intersection sides at 0 like torchvision. 1 clamps only the width,
            which gives the same decisions when every box has ``x2 >= x1``, ``y2 >= y1`` and the
            threshold is >= 0 (a negative height then makes the IoU negative instead of 0).

    Returns:
        (K, M) bool view into the workspace (valid until the next call).
    """
    buf, zeros, out, eq = ws
    k = rows.shape[1]
    m = cols.shape[1]
    km = k * m
    p = buf[: 5 * km].reshape(5, k, m)
    p[...] = rows[:, :, None]
    # max(x1_i, x1_j), max(y1_i, y1_j), -min(x2_i, x2_j), -min(y2_i, y2_j): one call for four planes.
    np.maximum(p[:4], cols[:4, None, :], out=p[:4])
    wh = p[:2]
    np.add(wh, p[2:4], wh)  # -(xx2 - xx1), -(yy2 - yy1): exact negations of torchvision's values
    clip = p[:n_clip]
    np.minimum(clip, zeros[: n_clip * km].reshape(clip.shape), out=clip)  # -max(0, w), -max(0, h)
    inter = p[0]
    np.multiply(inter, p[1], inter)  # (-w) * (-h) == w * h bit for bit
    union = p[4]
    np.add(union, cols[4], union)  # area_i + area_j
    np.subtract(union, inter, union)
    np.divide(inter, union, union)
    g = np.greater(union, thr, out[:km].reshape(k, m))
    if rows_cls is not None:
        same = np.equal(rows_cls[:, None], cols_cls[None, :], eq[:km].reshape(k, m))
        np.logical_and(g, same, g)
    return g


def _block_greedy(g: np.ndarray, b: int) -> list:
    """Greedy resolution inside one block, with one Python step per row and machine-word bitsets.

    Args:
        g: (b, >=b) suppression matrix whose first b columns are the block's own boxes, in rank
            order.
        b: block size.

    Returns:
        Kept row indices, increasing.
    """
    packed = np.packbits(g[:, :b], axis=1, bitorder="little")
    width = packed.shape[1]
    if width & 7:
        padded = np.zeros((b, (width + 7) & ~7), np.uint8)
        padded[:, :width] = packed
        packed = padded
    words = packed.view("<u8")
    n_words = words.shape[1]
    kept = []
    if n_words == 1:
        rows = words.ravel().tolist()
        suppressed = 0
        for i in range(b):
            if not (suppressed >> i) & 1:
                kept.append(i)
                suppressed |= rows[i]
        return kept
    # Several 64-bit words per row: word w holds the suppression bits of columns 64w..64w+63.
    columns = [words[:, w].tolist() for w in range(n_words)]
    suppressed = [0] * n_words
    for w in range(n_words):
        later = range(w, n_words)
        for i in range(64 * w, min(b, 64 * w + 64)):
            if not (suppressed[w] >> (i - 64 * w)) & 1:
                kept.append(i)
                for v in later:
                    suppressed[v] |= columns[v][i]
    return kept


def _greedy_nms(boxes: np.ndarray, order: np.ndarray, thr: float, max_output: Optional[int],
                classes: Optional[np.ndarray] = None) -> np.ndarray:
    """Greedy NMS of ``boxes`` (N, 4) visited in ``order``; returns kept indices (int64)."""
    n = order.shape[0]
    dtype = boxes.dtype
    limit = n if max_output is None else min(max_output, n)
    if n == 0 or limit == 0:
        return np.empty(0, np.int64)
    if n == 1:
        return np.zeros(1, np.int64)
    t = _threshold_in(dtype, thr)
    ws = _WORKSPACE.get(dtype)
    state = np.empty((5, n), dtype)
    np.multiply(boxes[order].T, _SIGN[dtype.type], state[:4])
    wh = state[2:4] + state[:2]  # -(x2 - x1), -(y2 - y1)
    np.multiply(wh[0], wh[1], state[4])  # torchvision's (x2 - x1) * (y2 - y1)
    n_clip = 1 if thr >= 0 and wh.max() <= 0 else 2
    index = order
    cls = None if classes is None else classes[order]
    kept_parts = []
    n_kept = 0
    # 0/0 (two zero-area boxes) is NaN and never suppresses, exactly as in torchvision.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while True:
            if n <= _FINAL:
                g = _suppression_matrix(state, state, t, ws, cls, cls, n_clip)
                kept_parts.append(index[_block_greedy(g, n)])
                break
            b = _BLOCK
            single = b * n <= _SINGLE_PASS_PAIRS
            block = state[:, :b]
            cb = None if cls is None else cls[:b]
            g = _suppression_matrix(block, state if single else block, t, ws, cb,
                                    cls if single else cb, n_clip)
            kept = _block_greedy(g, b)
            kept_parts.append(index[kept])
            n_kept += len(kept)
            if n_kept >= limit:
                break
            if single:
                alive = g[kept, b:].any(axis=0)
            else:
                rows = state[:, kept]
                rows_cls = None if cls is None else cls[kept]
                rest = n - b
                step = max(1, _CHUNK_PAIRS // len(kept))
                alive = np.empty(rest, bool)
                for lo in range(0, rest, step):
                    hi = min(rest, lo + step)
                    sub_cls = None if cls is None else cls[b + lo: b + hi]
                    g = _suppression_matrix(rows, state[:, b + lo: b + hi], t, ws, rows_cls, sub_cls,
                                            n_clip)
                    g.any(axis=0, out=alive[lo:hi])
            np.logical_not(alive, out=alive)
            state = state[:, b:][:, alive]
            index = index[b:][alive]
            if cls is not None:
                cls = cls[b:][alive]
            n = index.shape[0]
            if n == 0:
                break
    keep = np.concatenate(kept_parts) if len(kept_parts) > 1 else kept_parts[0]
    return np.ascontiguousarray(keep[:limit], dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Public API


def nms(boxes: Any, scores: Any, iou_threshold: float, *, max_output: Optional[int] = None) -> np.ndarray:
    """Greedy non-maximum suppression, same result as ``torchvision.ops.nms``.

    Boxes are visited by falling score (equal scores in input order); each kept box suppresses the
    later boxes whose IoU with it is strictly greater than ``iou_threshold``. IoU is computed in the
    boxes' dtype (float32 or float64) with torchvision's arithmetic, so results match bit for bit,
    including IoU exactly at the threshold and zero-area boxes.

    Args:
        boxes: (N, 4) ``xyxy`` boxes. float32 and float64 are used as they are; float16 and 8/16-bit
            integers are computed in float32, wider integers in float64.
        scores: (N,) scores, any real dtype (ranking uses the scores' own dtype; unlike torchvision
            they need not share the boxes' dtype).
        iou_threshold: suppress when IoU > this value.
        max_output: stop once this many boxes are kept (the result is then the first ``max_output``
            indices of the full result).

    Returns:
        int64 array of shape (K,): indices into ``boxes`` of the kept boxes, by falling score.

    Raises:
        ValueError: on a wrong shape or dtype ("boxes: expected shape (N, 4), got (3, 5)"), NaN
            scores (the message gives the count), non-finite box coordinates, a NaN threshold or a
            negative ``max_output``.
    """
    thr = _check_threshold(iou_threshold)
    limit = _check_max_output(max_output)
    b, s = _check_inputs(boxes, scores)
    if b.shape[0] == 0:
        return np.empty(0, np.int64)
    return _greedy_nms(b, _descending_order(s), thr, limit)


def _check_class_ids(class_ids: Any, n: int) -> np.ndarray:
    c = as_real_array(class_ids, "class_ids")
    if c.ndim != 1 or c.shape[0] != n:
        raise ValueError(f"class_ids: expected shape ({n},) to match boxes, got {c.shape}")
    if c.dtype.kind == "f":
        if n and not np.array_equal(c, np.round(c)):
            raise ValueError("class_ids: expected integer values, got non-integral floats")
        c = c.astype(np.int64)
    return c


def batched_nms(boxes: Any, scores: Any, class_ids: Any, iou_threshold: float, *,
                max_output: Optional[int] = None) -> np.ndarray:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Same result as ``torchvision.ops.batched_nms``. torchvision runs one NMS over class-offset boxes
    (``box + class_id * (boxes.max() + 1)``) when ``boxes.size <= 4000`` and a per-class NMS above;
    this function makes the same choice and reproduces the offset arithmetic, so the kept set is
    identical even where the float rounding of the offset boxes flips an IoU sitting on the threshold.

    Deviation: above 4000 coordinates torchvision orders the kept boxes with an unstable sort, so
    boxes with exactly equal scores may come out in a different relative order there; this function
    always breaks score ties by input order. The kept set is the same.

    Args:
        boxes: (N, 4) ``xyxy`` boxes (dtype rules as in :func:`nms`).
        scores: (N,) scores.
        class_ids: (N,) integer class of each box (integral floats are accepted).
        iou_threshold: suppress when IoU > this value, within a class.
        max_output: stop once this many boxes are kept (the first ``max_output`` of the full result).

    Returns:
        int64 array of shape (K,): indices of the kept boxes, by falling score.

    Raises:
        ValueError: on wrong shapes or dtypes, NaN scores, non-finite boxes, non-integral class ids.
    """
    thr = _check_threshold(iou_threshold)
    limit = _check_max_output(max_output)
    b, s = _check_inputs(boxes, scores)
    c = _check_class_ids(class_ids, b.shape[0])
    if b.shape[0] == 0:
        return np.empty(0, np.int64)
    order = _descending_order(s)
    if b.size > _TV_BATCHED_NUMEL:
        return _greedy_nms(b, order, thr, limit, classes=c)
    # torchvision's coordinate trick, in the same dtype and operation order.
    one = b.dtype.type(1)
    offsets = c.astype(b.dtype) * (b.max() + one)
    return _greedy_nms(b + offsets[:, None], order, thr, limit)
