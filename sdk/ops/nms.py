"""Greedy non-maximum suppression with the exact results of ``torchvision.ops.nms``, in numpy.

Semantics (identical to torchvision's CPU kernel):
    * candidates are visited by falling score; equal scores keep their input order (stable sort);
    * a visited box that was not suppressed is kept and suppresses every later box whose IoU with it
      is strictly greater than ``iou_threshold``;
    * IoU is computed in the boxes' floating dtype with torchvision's arithmetic:
      ``area = (x2 - x1) * (y2 - y1)``, ``inter = max(0, xx2 - xx1) * max(0, yy2 - yy1)``,
      ``iou = inter / (area_i + area_j - inter)``, and compared with the threshold as a double, so
      borderline decisions (IoU exactly at the threshold, float32 rounding) match bit for bit.

Algorithm (no per-box or per-pair Python work): the remaining candidates, in score order, are
processed in blocks of the ``_BLOCK`` best. For a block, the block x block suppression matrix is
computed with vectorised numpy and the greedy decisions inside the block are made exactly with
machine-word bitsets (one Python step per kept box); the kept boxes of the block then test all
remaining candidates at once (a K x R matrix), the suppressed ones are dropped, and the next block
starts. Why this equals the sequential algorithm: a box's fate depends only on the kept boxes ranked
before it; inside a block those are resolved in rank order, and every later box is tested against
every kept box of every earlier block before it is visited. Pairs are the same, only their order of
evaluation differs, and each pair's IoU test is computed with the same arithmetic.
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

# Tuning (measured on a 2-core x86 VM; any positive values give the same results):
# candidates are processed in blocks of the _BLOCK best remaining ones (<= 64 keeps each in-block
# bitset row in one machine word);
_BLOCK = 64
# when at most _FINAL candidates remain, they form one last block (one square evaluation);
_FINAL = 128
# while block x remaining <= _SINGLE_PASS_PAIRS, the block's rows are tested against all remaining
# candidates in one pass (no separate kept-rows pass);
_SINGLE_PASS_PAIRS = 16384
# the kept-rows pass is split so that no matrix exceeds _CHUNK_PAIRS pairs (the per-thread scratch
# holds about 30 bytes per pair: 1 MB for float32; it grows if a larger matrix is ever needed);
_CHUNK_PAIRS = 32768
# from _KEY_SORT_MIN float32 scores on, one int64 key sort replaces numpy's stable argsort;
_KEY_SORT_MIN = 768
# from _CLIP_CHECK_MIN boxes on, one reduction checks that every box is valid (x2 >= x1, y2 >= y1),
# which allows clamping only the intersection width.
_CLIP_CHECK_MIN = 2048
# matrices of at most _BROADCAST_MAX_PAIRS pairs are computed with fewer, slower numpy calls;
_BROADCAST_MAX_PAIRS = 4096
# torchvision.ops.batched_nms switches from the coordinate-offset trick to per-class NMS above this
# ``boxes.numel()`` on CPU; batched_nms makes the same switch to give the same results.
_TV_BATCHED_NUMEL = 4000


class _Scratch:
    """Scratch buffers for one dtype, and the reshaped views of them used for each matrix shape."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.capacity = 0
        self._views: dict = {}

    def _allocate(self, pairs: int) -> None:
        self.capacity = pairs
        self.values = np.empty(5 * pairs, self.dtype)
        self.zeros = np.zeros(2 * pairs, self.dtype)
        self.flags = np.empty(pairs, bool)
        self._views.clear()

    def views(self, k: int, m: int, n_clip: int) -> tuple:
        key = (k, m, n_clip)
        v = self._views.get(key)
        if v is None:
            km = k * m
            if km > self.capacity:
                self._allocate(max(km, _CHUNK_PAIRS))
            p = self.values[: 5 * km].reshape(5, k, m)
            v = (p, p[:4], p[:2], p[2:4], p[:n_clip], self.zeros[: n_clip * km].reshape(n_clip, k, m),
                 p[0], p[1], p[4], self.flags[:km].reshape(k, m))
            if len(self._views) > 512:
                self._views.clear()
            self._views[key] = v
        return v


class _Workspace(threading.local):
    """Per-thread scratch, allocated on first use and reused: no allocation (and, in a VM, no page
    faults) per call. About 30 bytes per pair of ``_CHUNK_PAIRS``: 1 MB for float32."""

    def __init__(self) -> None:
        self.scratch: dict = {}

    def get(self, dtype: np.dtype) -> _Scratch:
        scratch = self.scratch.get(dtype)
        if scratch is None:
            scratch = self.scratch[dtype] = _Scratch(dtype)
        return scratch


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
        with np.errstate(over="ignore", invalid="ignore"):
            box_sum = b.sum()
            score_sum = s.sum() if s.dtype.kind == "f" else 0.0
        if not math.isfinite(box_sum):
            bad = int(b.size - np.count_nonzero(np.isfinite(b)))
            if bad:
                raise ValueError(f"boxes: expected finite coordinates, got {bad} non-finite value(s) "
                                 f"(NaN or inf)")
        if math.isnan(score_sum):
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
    with np.errstate(over="ignore"):  # a huge threshold becomes inf, then the largest finite value
        t = dtype.type(thr)
    if float(t) > thr:
        t = np.nextafter(t, dtype.type(-np.inf))
    return t


# ----------------------------------------------------------------------------------------------
# Kernel


def _suppression_matrix(rows: np.ndarray, cols: np.ndarray, thr: np.floating, ws: _Scratch,
                        n_clip: int) -> np.ndarray:
    """``iou(rows[i], cols[j]) > thr`` for every pair, with torchvision's float arithmetic.

    Args:
        rows: (5, K) array ``[x1, y1, -x2, -y2, area]``.
        cols: (5, M) array, same layout and dtype; ``K * M <= _CHUNK_PAIRS``.
        thr: threshold from :func:`_threshold_in`.
        ws: scratch buffers for this dtype.
        n_clip: 2 clamps both intersection sides at 0 like torchvision. 1 clamps only the width,
            which gives the same decisions when every box has ``x2 >= x1``, ``y2 >= y1`` and the
            threshold is >= 0 (a negative height then makes the IoU negative instead of 0).

    Returns:
        (K, M) bool view into the scratch buffers (valid until the next call).
    """
    p, corners, wh, far, clip, zeros, inter, height, union, g = ws.views(
        rows.shape[1], cols.shape[1], n_clip)
    # max(x1_i, x1_j), max(y1_i, y1_j), -min(x2_i, x2_j), -min(y2_i, y2_j): one call for four planes.
    if g.size <= _BROADCAST_MAX_PAIRS:  # small: fewer calls beat faster loops
        np.maximum(rows[:4, :, None], cols[:4, None, :], out=corners)
        np.add(rows[4][:, None], cols[4], out=union)
    else:  # large: fill the rows' values, then contiguous-friendly broadcasting
        p[...] = rows[:, :, None]
        np.maximum(corners, cols[:4, None, :], out=corners)
        np.add(union, cols[4], out=union)  # area_i + area_j
    np.add(wh, far, out=wh)  # -(xx2 - xx1), -(yy2 - yy1): exact negations of torchvision's values
    np.minimum(clip, zeros, out=clip)  # -max(0, w), -max(0, h)
    np.multiply(inter, height, out=inter)  # (-w) * (-h) == w * h bit for bit
    np.subtract(union, inter, out=union)
    np.divide(inter, union, out=union)
    np.greater(union, thr, out=g)
    return g


_UPPER: dict = {}


def _strict_upper(b: int) -> np.ndarray:
    """(b, b) bool mask of the pairs ``i < j`` (cached per size)."""
    m = _UPPER.get(b)
    if m is None:
        m = _UPPER[b] = np.triu(np.ones((b, b), bool), 1)
    return m


def _block_greedy(g: np.ndarray, b: int) -> np.ndarray:
    """Exact greedy resolution inside one block.

    Two steps. Vectorised: a box that no earlier box of the block overlaps (a *leader*) is kept
    whatever the others do, and every box a leader overlaps is suppressed. Then the boxes still
    undecided are resolved in rank order with Python integers as bitsets: the next kept box is the
    lowest-ranked undecided box still alive (every box before it is decided), and keeping it clears
    the bits of the boxes it suppresses. The loop runs once per kept non-leader, so sparse blocks
    (few overlaps, many kept boxes) cost a few numpy calls.

    Args:
        g: (b, >=b) suppression matrix whose first b columns are the block's own boxes, in rank
            order (symmetric on those columns: IoU is).
        b: block size.

    Returns:
        int64 array of the kept row indices, increasing.
    """
    earlier = np.logical_and(g[:, :b], _strict_upper(b))  # earlier[i, j]: i < j and i suppresses j
    led = earlier.any(axis=0)
    if not led.any():
        return np.arange(b)
    keep = ~led
    hit = earlier[keep].any(axis=0)
    undecided = np.logical_and(led, ~hit, out=led)
    if not undecided.any():
        return np.flatnonzero(keep)
    alive = int.from_bytes(np.packbits(undecided, bitorder="little").tobytes(), "little")
    packed = np.packbits(earlier, axis=1, bitorder="little")
    if b <= 64:
        # All rows in one integer; row i is bits [stride * i, stride * (i + 1)).
        stride = 8 * packed.shape[1]
        bits = int.from_bytes(packed.tobytes(), "little")
        while alive:
            low = alive & -alive
            i = low.bit_length() - 1
            keep[i] = True
            alive &= ~((bits >> (stride * i)) | low)
        return np.flatnonzero(keep)
    width = packed.shape[1]
    if width & 7:
        padded = np.zeros((b, (width + 7) & ~7), np.uint8)
        padded[:, :width] = packed
        packed = padded
    rows = packed.view("<u8")
    while alive:
        low = alive & -alive
        i = low.bit_length() - 1
        keep[i] = True
        row = low
        for shift, word in enumerate(rows[i].tolist()):
            row |= word << (64 * shift)
        alive &= ~row
    return np.flatnonzero(keep)


def _prepare(boxes: np.ndarray, order: np.ndarray, thr: float) -> tuple:
    """The (5, N) working array ``[x1, y1, -x2, -y2, area]`` of ``boxes`` in ``order``, and ``n_clip``
    for :func:`_suppression_matrix`."""
    n = order.shape[0]
    state = np.empty((5, n), boxes.dtype)
    np.take(boxes.T, order, axis=1, out=state[:4])
    np.negative(state[2:4], out=state[2:4])
    wh = state[2:4] + state[:2]  # -(x2 - x1), -(y2 - y1)
    np.multiply(wh[0], wh[1], out=state[4])  # torchvision's (x2 - x1) * (y2 - y1)
    # Clamping one side only is exact for valid boxes and thr >= 0; checking costs a reduction,
    # worth it only for large inputs.
    n_clip = 1 if n >= _CLIP_CHECK_MIN and thr >= 0 and wh.max() <= 0 else 2
    return state, n_clip


def _greedy_nms(boxes: np.ndarray, order: np.ndarray, thr: float, max_output: Optional[int]) -> np.ndarray:
    """Greedy NMS of ``boxes`` (N, 4) in their compute dtype, visited in ``order``.

    Args:
        boxes: (N, 4) float32 or float64 ``xyxy`` boxes.
        order: (N,) visiting order (falling score).
        thr: IoU threshold (suppress when IoU > thr).
        max_output: stop after this many kept boxes (None: no limit).

    Returns:
        int64 array (K,) of kept indices in visiting order.
    """
    n = order.shape[0]
    dtype = boxes.dtype
    limit = n if max_output is None else min(max_output, n)
    if n == 0 or limit == 0:
        return np.empty(0, np.int64)
    if n == 1:
        return np.zeros(1, np.int64)
    t = _threshold_in(dtype, thr)
    ws = _WORKSPACE.get(dtype)
    state, n_clip = _prepare(boxes, order, thr)
    index = order
    kept_parts = []
    n_kept = 0
    # 0/0 (two zero-area boxes) is NaN and never suppresses, exactly as in torchvision.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while True:
            if n <= _FINAL:
                g = _suppression_matrix(state, state, t, ws, n_clip)
                kept_parts.append(index[_block_greedy(g, n)])
                break
            b = _BLOCK
            single = b * n <= _SINGLE_PASS_PAIRS
            g = _suppression_matrix(state[:, :b], state if single else state[:, :b], t, ws, n_clip)
            kept = _block_greedy(g, b)
            kept_parts.append(index[kept])
            n_kept += len(kept)
            if n_kept >= limit:
                break
            if single:
                alive = g[kept, b:].any(axis=0)
            else:
                rows = state[:, kept]
                rest = n - b
                step = max(1, _CHUNK_PAIRS // len(kept))
                alive = np.empty(rest, bool)
                for lo in range(0, rest, step):
                    hi = min(rest, lo + step)
                    g = _suppression_matrix(rows, state[:, b + lo: b + hi], t, ws, n_clip)
                    g.any(axis=0, out=alive[lo:hi])
            np.logical_not(alive, out=alive)
            state = state[:, b:][:, alive]
            index = index[b:][alive]
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
        if n and not (np.isfinite(c).all() and np.array_equal(c, np.round(c))):
            raise ValueError("class_ids: expected integer values, got non-integral floats")
        c = c.astype(np.int64)
    return c


def _per_class_nms(boxes: np.ndarray, order: np.ndarray, classes: np.ndarray, thr: float,
                   limit: Optional[int]) -> np.ndarray:
    """Class-aware greedy NMS as one NMS per class (torchvision's choice for large inputs).

    Per class, the pairs are the same as in one class-masked pass, but the IoU matrices hold only
    same-class pairs: with C classes about C times fewer. Measured here, this beat one masked pass
    from 15 boxes per class on average (1200 boxes, 80 classes: 2.5 vs 3.3 ms) up to 3000 per class (an
    SSD's 24,170 candidates at conf 0.001 in 8 classes: 74 ms vs 598 ms; torchvision 187 ms).

    Args:
        boxes: (N, 4) boxes in their compute dtype.
        order: (N,) indices by falling score (ties in input order).
        classes: (N,) int class ids.
        thr: IoU threshold.
        limit: stop after this many kept boxes overall (None: no limit).

    Returns:
        int64 (K,) kept indices by falling score (ties in input order).
    """
    ranked = classes[order]
    by_class = np.argsort(ranked, kind="stable")  # ranks grouped by class, score order inside each
    starts = np.flatnonzero(ranked[by_class[1:]] != ranked[by_class[:-1]]) + 1
    kept_ranks = []
    for group in np.split(by_class, starts):
        if group.shape[0] == 1:
            kept_ranks.append(group)
            continue
        # _greedy_nms returns the visited entries it keeps; visiting ranks gives ranks back.
        local = _greedy_nms(boxes[order[group]], np.arange(group.shape[0]), thr, limit)
        kept_ranks.append(group[local])
    ranks = np.concatenate(kept_ranks)
    ranks.sort()
    if limit is not None:
        ranks = ranks[:limit]
    return np.ascontiguousarray(order[ranks], dtype=np.int64)


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
        return _per_class_nms(b, order, c, thr, limit)
    # torchvision's coordinate trick, in the same dtype and operation order.
    one = b.dtype.type(1)
    offsets = c.astype(b.dtype) * (b.max() + one)
    return _greedy_nms(b + offsets[:, None], order, thr, limit)
