"""Tests for ``sdk.ops.nms``, ``sdk.ops.batched_nms`` and ``sdk.ops.soft_nms``.

References:
    * ``torchvision.ops`` where it is installed (each such test calls ``pytest.importorskip``);
    * everywhere (also the lean numpy<2 environment without torch): slow greedy references written
      below as a direct transcription of torchvision's CPU kernel.
"""
from __future__ import annotations

import subprocess
import sys
from typing import Optional

import numpy as np
import pytest

import sdk.ops as ops

THRESHOLDS = (0.0, 0.3, 0.45, 0.5, 0.7, 0.9)


# ----------------------------------------------------------------------------------------------
# Slow references


def stable_desc_order(scores: np.ndarray) -> list:
    """Falling score, ties in input order (Python's sort is stable, also with ``reverse``;
    -0.0 == 0.0)."""
    return sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)


def compute_dtype(boxes: np.ndarray) -> np.dtype:
    return np.dtype(np.float64) if boxes.dtype == np.float64 else np.dtype(np.float32)


def reference_nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """torchvision's CPU kernel, one Python step per visited box (vectorised over later boxes).

    IoU is computed in the boxes' dtype in torchvision's operation order and compared in float64
    with the (double) threshold, as the C++ code does.
    """
    boxes = np.asarray(boxes)
    dtype = compute_dtype(boxes)
    boxes = boxes.astype(dtype).reshape(-1, 4)
    scores = np.asarray(scores)
    x1, y1, x2, y2 = (boxes[:, k].copy() for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    zero = dtype.type(0)
    order = stable_desc_order(scores)
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for pos, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(i)
            later = np.asarray(order[pos + 1:], dtype=np.int64)
            later = later[~suppressed[later]]
            if later.size == 0:
                continue
            w = np.maximum(zero, np.minimum(x2[i], x2[later]) - np.maximum(x1[i], x1[later]))
            h = np.maximum(zero, np.minimum(y2[i], y2[later]) - np.maximum(y1[i], y1[later]))
            inter = w * h
            ovr = inter / (areas[i] + areas[later] - inter)
            suppressed[later[ovr.astype(np.float64) > iou_threshold]] = True
    return np.asarray(keep, dtype=np.int64)


def scalar_reference_nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Fully scalar transcription (one numpy scalar op at a time); slow, used on tiny inputs to
    validate :func:`reference_nms` itself."""
    boxes = np.asarray(boxes)
    dtype = compute_dtype(boxes)
    b = [[dtype.type(v) for v in row] for row in boxes.astype(dtype).reshape(-1, 4)]
    areas = [(r[2] - r[0]) * (r[3] - r[1]) for r in b]
    order = stable_desc_order(np.asarray(scores))
    suppressed = [False] * len(b)
    keep = []
    zero = dtype.type(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for pos, i in enumerate(order):
            if suppressed[i]:
                continue
            keep.append(i)
            for j in order[pos + 1:]:
                if suppressed[j]:
                    continue
                w = max(zero, min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]))
                h = max(zero, min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]))
                inter = w * h
                ovr = inter / (areas[i] + areas[j] - inter)
                if float(ovr) > iou_threshold:
                    suppressed[j] = True
    return np.asarray(keep, dtype=np.int64)


def reference_batched_nms(boxes, scores, class_ids, iou_threshold: float) -> np.ndarray:
    """torchvision.ops.batched_nms: offset trick up to 4000 coordinates, per-class NMS above."""
    boxes = np.asarray(boxes)
    dtype = compute_dtype(boxes)
    boxes = boxes.astype(dtype).reshape(-1, 4)
    class_ids = np.asarray(class_ids)
    scores = np.asarray(scores)
    if boxes.size == 0:
        return np.empty(0, np.int64)
    if boxes.size <= 4000:
        offsets = class_ids.astype(dtype) * (boxes.max() + dtype.type(1))
        return reference_nms(boxes + offsets[:, None], scores, iou_threshold)
    kept = []
    for c in np.unique(class_ids):
        idx = np.flatnonzero(class_ids == c)
        kept.extend(idx[reference_nms(boxes[idx], scores[idx], iou_threshold)])
    kept = np.sort(np.asarray(kept, dtype=np.int64))
    # Falling score, ties by index (torchvision uses an unstable sort here: ties are unordered).
    return kept[stable_desc_order(scores[kept])]


# ----------------------------------------------------------------------------------------------
# Data


def uniform_boxes(rng: np.random.Generator, n: int, size: float = 100.0, max_wh: float = 40.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(0.5, max_wh, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32), rng.random(n).astype(np.float32)


def clustered_boxes(rng: np.random.Generator, n: int, n_obj: Optional[int] = None):
    """Detector-like candidates: jittered copies of a few object boxes, scores falling with jitter."""
    n_obj = n_obj or max(1, n // 25)
    wh = np.exp(rng.uniform(np.log(8), np.log(200), (n_obj, 2)))
    centre = rng.uniform(0, 400, (n_obj, 2))
    obj = rng.integers(0, n_obj, n)
    jitter = rng.normal(0, 0.12, (n, 2)) * wh[obj]
    scale = np.exp(rng.normal(0, 0.15, (n, 2)))
    c = centre[obj] + jitter
    half = wh[obj] * scale / 2
    boxes = np.concatenate([c - half, c + half], axis=1)
    dist = np.linalg.norm(jitter / wh[obj], axis=1) + np.abs(np.log(scale)).sum(1)
    scores = rng.uniform(0.3, 1.0, n_obj)[obj] * np.exp(-2 * dist) * rng.uniform(0.8, 1.0, n)
    return boxes.astype(np.float32), scores.astype(np.float32)


def grid_boxes(rng: np.random.Generator, n: int):
    """Small-integer boxes with few distinct scores: many equal IoUs, IoU exactly at thresholds,
    duplicate boxes, zero-area and score ties."""
    xy = rng.integers(0, 8, (n, 2))
    wh = rng.integers(0, 5, (n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = (rng.integers(0, 4, n) / 4).astype(np.float32)
    return boxes, scores


def degenerate_boxes(rng: np.random.Generator, n: int):
    """Inverted (x2 < x1), zero-width, zero-height, points, negative coordinates."""
    boxes = rng.uniform(-20, 20, (n, 4)).astype(np.float32)
    kind = rng.integers(0, 4, n)
    boxes[kind == 1, 2] = boxes[kind == 1, 0]
    boxes[kind == 2, 3] = boxes[kind == 2, 1]
    boxes[kind == 3, 2:] = boxes[kind == 3, :2]
    return boxes, rng.random(n).astype(np.float32)


GENERATORS = {
    "uniform": uniform_boxes,
    "clustered": clustered_boxes,
    "grid": grid_boxes,
    "degenerate": degenerate_boxes,
}


def random_case(kind: str, seed: int, max_n: int = 300):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, max_n + 1))
    boxes, scores = GENERATORS[kind](rng, n)
    thr = float(rng.choice(THRESHOLDS))
    return boxes, scores, thr, rng


def assert_same(got: np.ndarray, expected: np.ndarray, context: str = "") -> None:
    assert got.dtype == np.int64, context
    assert got.ndim == 1, context
    np.testing.assert_array_equal(got, expected, err_msg=context)


def assert_same_up_to_tied_order(got: np.ndarray, expected: np.ndarray, scores: np.ndarray,
                                 context: str = "") -> None:
    """Same kept set and same score sequence: only boxes with equal scores may be permuted (the
    order torchvision's per-class batched_nms leaves undefined)."""
    assert got.dtype == np.int64, context
    np.testing.assert_array_equal(np.sort(got), np.sort(expected), err_msg=context)
    np.testing.assert_array_equal(scores[got], scores[expected], err_msg=context)


# ----------------------------------------------------------------------------------------------
# Against the slow references (run everywhere)


def test_vectorised_reference_matches_scalar_reference() -> None:
    for seed in range(150):
        for kind in GENERATORS:
            boxes, scores, thr, _ = random_case(kind, seed, max_n=25)
            for dtype in (np.float32, np.float64):
                b = boxes.astype(dtype)
                assert_same(reference_nms(b, scores, thr), scalar_reference_nms(b, scores, thr),
                            f"{kind} seed={seed} {dtype.__name__}")


@pytest.mark.parametrize("kind", sorted(GENERATORS))
@pytest.mark.parametrize("chunk", range(2))
def test_nms_matches_reference(kind: str, chunk: int) -> None:
    for seed in range(chunk * 50, chunk * 50 + 50):
        boxes, scores, thr, _ = random_case(kind, seed)
        for dtype in (np.float32, np.float64):
            b = boxes.astype(dtype)
            assert_same(ops.nms(b, scores, thr), reference_nms(b, scores, thr),
                        f"{kind} seed={seed} thr={thr} {dtype.__name__}")


@pytest.mark.parametrize("n", [49, 96, 97, 145, 257, 1000, 2500])
def test_nms_block_boundaries_match_reference(n: int) -> None:
    """Sizes around the internal block sizes, where the blocked algorithm changes strategy."""
    for seed in range(3):
        rng = np.random.default_rng(1000 + seed)
        boxes, scores = clustered_boxes(rng, n)
        assert_same(ops.nms(boxes, scores, 0.5), reference_nms(boxes, scores, 0.5), f"seed={seed}")
        boxes, scores = uniform_boxes(rng, n, size=300.0)
        assert_same(ops.nms(boxes, scores, 0.3), reference_nms(boxes, scores, 0.3), f"seed={seed}")


@pytest.mark.parametrize("block, final, single, chunk", [(5, 7, 30, 64), (3, 3, 0, 40), (64, 64, 0, 200),
                                                       (100, 150, 30000, 32768)])
def test_nms_internal_strategies_match_reference(monkeypatch, block, final, single, chunk) -> None:
    """Tiny (and oversized) blocks, final blocks, single-pass and chunk limits: every code path of
    the blocked algorithm (multi-chunk suppression, multi-word bitsets) on small inputs."""
    impl = sys.modules["sdk.ops.nms"]
    monkeypatch.setattr(impl, "_BLOCK", block)
    monkeypatch.setattr(impl, "_FINAL", final)
    monkeypatch.setattr(impl, "_SINGLE_PASS_PAIRS", single)
    monkeypatch.setattr(impl, "_CHUNK_PAIRS", chunk)  # <= the scratch size (32768 pairs)
    for seed in range(24):
        kind = sorted(GENERATORS)[seed % len(GENERATORS)]
        boxes, scores, thr, rng = random_case(kind, seed, max_n=120)
        assert_same(ops.nms(boxes, scores, thr), reference_nms(boxes, scores, thr), f"seed={seed}")
        if seed % 6 == 0:  # class-aware path (> 1000 boxes)
            boxes, scores = clustered_boxes(rng, 1100)
            classes = rng.integers(0, 3, 1100)
            assert_same(ops.batched_nms(boxes, scores, classes, thr),
                        reference_batched_nms(boxes, scores, classes, thr), f"seed={seed}")


def test_nms_chain_of_suppressions_across_blocks() -> None:
    """A sliding chain: each box overlaps only its neighbours, so kept/suppressed alternates and
    every block decision depends on the previous block's."""
    n = 700
    x = np.arange(n, dtype=np.float32) * 0.25
    boxes = np.stack([x, np.zeros(n, np.float32), x + 1, np.ones(n, np.float32)], axis=1)
    scores = np.linspace(1, 0, n, dtype=np.float32)
    expected = reference_nms(boxes, scores, 0.5)
    assert_same(ops.nms(boxes, scores, 0.5), expected)
    # Reversed scores: the chain is walked from the other end.
    assert_same(ops.nms(boxes, scores[::-1].copy(), 0.5), reference_nms(boxes, scores[::-1], 0.5))


def test_batched_nms_matches_reference() -> None:
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(0, 1400))  # both sides of torchvision's 4000-coordinate switch
        boxes, scores = (clustered_boxes if seed % 2 else uniform_boxes)(rng, n)
        classes = rng.integers(0, int(rng.integers(1, 12)), n)
        thr = float(rng.choice(THRESHOLDS))
        assert_same(ops.batched_nms(boxes, scores, classes, thr),
                    reference_batched_nms(boxes, scores, classes, thr), f"seed={seed}")


def test_batched_nms_is_nms_per_class_on_exact_coordinates() -> None:
    """With small integer coordinates the offset trick is exact, so both torchvision paths equal a
    plain per-class NMS."""
    for seed in range(60):
        rng = np.random.default_rng(seed)
        boxes, scores = grid_boxes(rng, int(rng.integers(1, 1500)))
        classes = rng.integers(0, 5, len(boxes))
        got = ops.batched_nms(boxes, scores, classes, 0.5)
        expected = []
        for c in np.unique(classes):
            idx = np.flatnonzero(classes == c)
            expected.extend(idx[ops.nms(boxes[idx], scores[idx], 0.5)])
        expected = np.asarray(sorted(expected, key=lambda i: (-scores[i], i)), np.int64)
        assert_same(got, expected, f"seed={seed}")


def test_max_output_is_a_prefix() -> None:
    for seed in range(40):
        boxes, scores, thr, rng = random_case("clustered" if seed % 2 else "uniform", seed, 1200)
        full = ops.nms(boxes, scores, thr)
        for k in (0, 1, 5, len(full) // 2, len(full), len(full) + 3):
            assert_same(ops.nms(boxes, scores, thr, max_output=k), full[:k], f"seed={seed} k={k}")
        classes = rng.integers(0, 3, len(boxes))
        full = ops.batched_nms(boxes, scores, classes, thr)
        k = len(full) // 3
        assert_same(ops.batched_nms(boxes, scores, classes, thr, max_output=k), full[:k])


# ----------------------------------------------------------------------------------------------
# Edge cases with known answers


def test_empty_and_single_box() -> None:
    for empty in (np.zeros((0, 4), np.float32), [], np.zeros((0, 4), np.int64)):
        for keep in (ops.nms(empty, [], 0.5), ops.batched_nms(empty, [], [], 0.5),
                     ops.soft_nms(empty, [])[0]):
            assert keep.dtype == np.int64 and keep.shape == (0,)
    assert ops.soft_nms([], [])[1].shape == (0,)
    for keep in (ops.nms([[0, 0, 1, 1]], [0.3], 0.5), ops.batched_nms([[0, 0, 1, 1]], [0.3], [7], 0.5),
                 ops.nms([[5, 5, 5, 5]], [0.0], 0.5)):
        assert keep.dtype == np.int64
        np.testing.assert_array_equal(keep, [0])


def test_iou_exactly_at_threshold_is_not_suppressed() -> None:
    # inter 1, union 2: IoU is exactly 0.5 in float32 and float64.
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    for dtype in (np.float32, np.float64):
        b = boxes.astype(dtype)
        np.testing.assert_array_equal(ops.nms(b, scores, 0.5), [0, 1])
        np.testing.assert_array_equal(ops.nms(b, scores, np.nextafter(0.5, 0)), [0])
        np.testing.assert_array_equal(ops.nms(b, scores, np.nextafter(np.float32(0.5), np.float32(0))),
                                      [0])


def test_float32_iou_compared_with_double_threshold() -> None:
    """float32(3/10) = 0.30000001 > 0.3 (double): torchvision suppresses. Comparing against
    float32(0.3) (== 0.30000001) would wrongly keep the box."""
    boxes = np.array([[0, 0, 10, 1], [0, 0, 3, 1]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.3), [0])
    np.testing.assert_array_equal(ops.nms(boxes.astype(np.float64), scores, 0.3), [0, 1])
    np.testing.assert_array_equal(ops.nms(boxes, scores, float(np.float32(0.3))), [0, 1])


def test_float32_and_float64_can_differ_like_torchvision() -> None:
    """IoU is computed in the input dtype: find pairs whose float32 and float64 IoU fall on
    different sides of the threshold and check each dtype against its own reference."""
    rng = np.random.default_rng(7)
    found = 0
    while found < 20:
        a = rng.uniform(0, 1000, 2)
        wh = rng.uniform(1, 50, 2)
        box_a = np.concatenate([a, a + wh])
        box_b = box_a + rng.uniform(-1, 1, 4) * wh[[0, 1, 0, 1]] * 0.3
        boxes = np.stack([box_a, box_b]).astype(np.float32)
        iou32 = ops.box_iou(boxes[:1], boxes[1:])[0, 0]
        iou64 = ops.box_iou(boxes[:1].astype(np.float64), boxes[1:].astype(np.float64))[0, 0]
        thr = float(iou64)
        if (float(iou32) > thr) != (iou64 > thr):
            found += 1
            scores = np.array([1.0, 0.5], np.float32)
            for dtype in (np.float32, np.float64):
                b = boxes.astype(dtype)
                assert_same(ops.nms(b, scores, thr), reference_nms(b, scores, thr))


def test_score_ties_keep_input_order() -> None:
    # Disjoint boxes: nothing is suppressed, so the result is the visiting order.
    n = 3000
    x = np.arange(n, dtype=np.float32) * 3
    boxes = np.stack([x, x, x + 1, x + 1], axis=1)
    rng = np.random.default_rng(0)
    for scores in (np.zeros(n, np.float32), rng.integers(0, 5, n).astype(np.float32),
                   np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(np.float32),
                   rng.integers(0, 5, n).astype(np.float64), rng.integers(0, 5, n).astype(np.int64),
                   rng.integers(0, 5, n).astype(np.uint8)):
        expected = np.asarray(stable_desc_order(scores), np.int64)
        for m in (n, 20, 1500):
            assert_same(ops.nms(boxes[:m], scores[:m], 0.5), expected[expected < m],
                        f"{scores.dtype} m={m}")


def test_special_score_values_order() -> None:
    """inf, -inf, denormals, -0.0 and ties, on both sides of the size where float32 scores switch
    to a key sort."""
    special = np.array([np.inf, -np.inf, 1e-45, -1e-45, 0.0, -0.0, 1.0, -1.0, 3.4e38, -3.4e38],
                       np.float32)
    for n in (50, 5000):
        rng = np.random.default_rng(n)
        scores = rng.choice(special, n).astype(np.float32)
        x = np.arange(n, dtype=np.float32) * 3
        boxes = np.stack([x, x, x + 1, x + 1], axis=1)
        expected = np.asarray(stable_desc_order(scores), np.int64)
        assert_same(ops.nms(boxes, scores, 0.5), expected, f"n={n}")
        assert_same(ops.nms(boxes, scores.astype(np.float64), 0.5), expected, f"n={n} float64")


def test_large_degenerate_sets_match_reference() -> None:
    for seed in range(1):
        rng = np.random.default_rng(seed)
        boxes, scores = degenerate_boxes(rng, 2100)
        for thr in (0.0, 0.5):
            assert_same(ops.nms(boxes, scores, thr), reference_nms(boxes, scores, thr))


def test_duplicates_zero_area_and_degenerate() -> None:
    boxes = np.array([
        [0, 0, 10, 10], [0, 0, 10, 10],  # duplicates: IoU 1
        [5, 5, 5, 5], [5, 5, 5, 5],  # identical points: 0/0 is NaN, never suppress
        [20, 0, 20, 10],  # zero width
        [30, 30, 25, 25],  # inverted
        [0, 0, 10, 10],
    ], np.float32)
    scores = np.array([0.5, 0.9, 0.3, 0.8, 0.1, 0.7, 0.9], np.float32)
    for thr in (0.0, 0.5, 0.99, -0.5, 1.0):
        for dtype in (np.float32, np.float64):
            b = boxes.astype(dtype)
            assert_same(ops.nms(b, scores, thr), reference_nms(b, scores, thr), f"thr={thr}")
    # 1 suppresses its duplicates 6 and 0; the points (0/0 = NaN) and the degenerate boxes survive.
    np.testing.assert_array_equal(ops.nms(boxes, scores, 0.5), [1, 3, 5, 2, 4])


def test_extreme_thresholds() -> None:
    rng = np.random.default_rng(3)
    boxes, scores = clustered_boxes(rng, 400)
    order = np.asarray(stable_desc_order(scores), np.int64)
    assert_same(ops.nms(boxes, scores, 1.0), order)  # IoU never exceeds 1 here
    assert_same(ops.nms(boxes, scores, float("inf")), order)
    assert_same(ops.nms(boxes, scores, -1.0), reference_nms(boxes, scores, -1.0))
    assert_same(ops.nms(boxes, scores, -1.0), order[:1])  # every pair has IoU >= 0 > -1


def test_input_dtypes() -> None:
    rng = np.random.default_rng(5)
    boxes, scores = grid_boxes(rng, 300)
    expected = reference_nms(boxes, scores, 0.5)
    for b in (boxes.astype(np.int64), boxes.astype(np.int16), boxes.astype(np.float16),
              boxes.tolist()):
        assert_same(ops.nms(b, scores, 0.5), expected)
    assert_same(ops.nms(boxes, scores.astype(np.float16), 0.5), expected)
    assert_same(ops.nms(boxes, scores.tolist(), np.float32(0.5)), expected)


def test_inputs_are_not_modified() -> None:
    rng = np.random.default_rng(6)
    boxes, scores = clustered_boxes(rng, 500)
    b, s = boxes.copy(), scores.copy()
    classes = rng.integers(0, 3, 500)
    ops.nms(boxes, scores, 0.5)
    ops.batched_nms(boxes, scores, classes, 0.5)
    ops.soft_nms(boxes, scores)
    np.testing.assert_array_equal(boxes, b)
    np.testing.assert_array_equal(scores, s)


def test_threads_do_not_share_scratch_buffers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    cases = []
    for seed in range(16):
        rng = np.random.default_rng(seed)
        boxes, scores = clustered_boxes(rng, 1500)
        cases.append((boxes.astype(np.float64) if seed % 2 else boxes, scores))
    expected = [ops.nms(b, s, 0.5) for b, s in cases]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda c: ops.nms(c[0], c[1], 0.5), cases * 3))
    for i, got in enumerate(results):
        assert_same(got, expected[i % len(cases)])


# ----------------------------------------------------------------------------------------------
# Input validation


@pytest.mark.parametrize("boxes, scores, message", [
    (np.zeros((3, 5)), np.zeros(3), r"boxes: expected shape \(N, 4\), got \(3, 5\)"),
    (np.zeros(4), np.zeros(1), r"boxes: expected shape \(N, 4\), got \(4,\)"),
    (np.zeros((2, 2, 4)), np.zeros(2), r"boxes: expected shape \(N, 4\), got \(2, 2, 4\)"),
    (np.zeros((3, 4)), np.zeros(4), r"scores: expected shape \(3,\) to match boxes \(3, 4\), got \(4,\)"),
    (np.zeros((3, 4)), np.zeros((3, 1)), r"scores: expected shape \(3,\) .*got \(3, 1\)"),
    (np.zeros((3, 4), complex), np.zeros(3), r"boxes: expected a real numeric dtype .*got complex128"),
    (np.zeros((3, 4), bool), np.zeros(3), r"boxes: expected a real numeric dtype .*got bool"),
    (np.zeros((1, 4)), np.array(["a"]), r"scores: expected a real numeric dtype .*got <U1"),
    ([[0, 0, 1, "x"]], [1.0], r"boxes: expected a real numeric dtype"),
    (np.zeros((3, 4)), np.array([0.1, np.nan, np.nan]), r"scores: expected no NaN, got 2 NaN value"),
    (np.array([[0, 0, 1, np.inf], [0, 0, np.nan, 1]]), np.zeros(2),
     r"boxes: expected finite coordinates, got 2 non-finite value"),
])
def test_bad_inputs_raise_value_error(boxes, scores, message) -> None:
    with pytest.raises(ValueError, match=message):
        ops.nms(boxes, scores, 0.5)
    with pytest.raises(ValueError, match=message):
        ops.batched_nms(boxes, scores, np.zeros(len(scores), np.int64), 0.5)
    with pytest.raises(ValueError, match=message):
        ops.soft_nms(boxes, scores)


def test_bad_arguments_raise_value_error() -> None:
    boxes = np.array([[0, 0, 1, 1]], np.float32)
    scores = np.array([0.5], np.float32)
    for thr in (float("nan"), "0.5", None, True):
        with pytest.raises(ValueError, match="iou_threshold: expected a real number"):
            ops.nms(boxes, scores, thr)
    for k in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="max_output: expected a non-negative int or None"):
            ops.nms(boxes, scores, 0.5, max_output=k)
    with pytest.raises(ValueError, match=r"class_ids: expected shape \(1,\) to match boxes, got \(2,\)"):
        ops.batched_nms(boxes, scores, [0, 1], 0.5)
    with pytest.raises(ValueError, match="class_ids: expected integer values"):
        ops.batched_nms(boxes, scores, [0.5], 0.5)
    np.testing.assert_array_equal(ops.batched_nms(boxes, scores, [2.0], 0.5), [0])
    with pytest.raises(ValueError, match="method: expected one of gaussian, linear, got 'hard'"):
        ops.soft_nms(boxes, scores, method="hard")
    with pytest.raises(ValueError, match="sigma: expected a positive number"):
        ops.soft_nms(boxes, scores, sigma=0.0)
    with pytest.raises(ValueError, match="score_threshold: expected a real number, got nan"):
        ops.soft_nms(boxes, scores, score_threshold=float("nan"))


# ----------------------------------------------------------------------------------------------
# Soft-NMS


def reference_soft_nms(boxes, scores, iou_threshold=0.3, sigma=0.5, method="gaussian",
                       score_threshold=0.001):
    """Bodla et al. 2017, Algorithm 1, one box pair at a time in plain Python floats."""
    boxes = [[float(v) for v in row] for row in np.asarray(boxes, np.float64).reshape(-1, 4)]
    s = [float(v) for v in scores]
    alive = [i for i in range(len(s)) if s[i] >= score_threshold]
    keep, kept_scores = [], []

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union != 0 else 0.0

    while alive:
        m = max(alive, key=lambda i: (s[i], -i))  # highest score, lowest index on ties
        keep.append(m)
        kept_scores.append(s[m])
        alive.remove(m)
        for i in alive:
            ov = iou(boxes[m], boxes[i])
            if method == "gaussian":
                s[i] *= float(np.exp(-(ov * ov) / sigma))
            elif ov > iou_threshold:
                s[i] *= 1.0 - ov
        alive = [i for i in alive if s[i] >= score_threshold]
    return np.asarray(keep, np.int64), np.asarray(kept_scores)


@pytest.mark.parametrize("method", ["gaussian", "linear"])
def test_soft_nms_matches_reference(method: str) -> None:
    for seed in range(40):
        rng = np.random.default_rng(seed)
        boxes, scores = (clustered_boxes if seed % 2 else grid_boxes)(rng, int(rng.integers(0, 120)))
        boxes = boxes.astype(np.float64)
        scores = scores.astype(np.float64)
        kwargs = dict(iou_threshold=float(rng.choice([0.3, 0.5])), sigma=float(rng.choice([0.5, 0.1])),
                      method=method, score_threshold=float(rng.choice([0.001, 0.2])))
        keep, new_scores = ops.soft_nms(boxes, scores, **kwargs)
        ref_keep, ref_scores = reference_soft_nms(boxes, scores, **kwargs)
        np.testing.assert_array_equal(keep, ref_keep, err_msg=f"seed={seed}")
        np.testing.assert_allclose(new_scores, ref_scores, rtol=1e-12, atol=0)
        assert keep.dtype == np.int64 and new_scores.dtype == np.float64
        assert np.all(np.diff(new_scores) <= 1e-12)


def test_soft_nms_known_values() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    # IoU(box0, box1) = 0.5.
    keep, s = ops.soft_nms(boxes, scores, method="linear", iou_threshold=0.3)
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(s, [0.9, 0.7, 0.4], rtol=1e-6)
    assert s.dtype == np.float32
    keep, s = ops.soft_nms(boxes, scores, method="gaussian", sigma=0.5)
    np.testing.assert_array_equal(keep, [0, 2, 1])
    np.testing.assert_allclose(s, [0.9, 0.7, 0.8 * np.exp(-0.25 / 0.5)], rtol=1e-6)
    # A decayed score below the threshold drops the box; so does a low initial score.
    keep, _ = ops.soft_nms(boxes, scores, method="linear", iou_threshold=0.3, score_threshold=0.5)
    np.testing.assert_array_equal(keep, [0, 2])
    keep, _ = ops.soft_nms(boxes, np.array([0.9, 0.8, 0.0005], np.float32))
    np.testing.assert_array_equal(keep, [0, 1])
    # Linear soft-NMS with a threshold of 1 never decays: it is a sort.
    keep, s = ops.soft_nms(boxes, scores, method="linear", iou_threshold=1.0)
    np.testing.assert_array_equal(keep, [0, 1, 2])
    np.testing.assert_array_equal(s, scores)


def test_soft_nms_ties_pick_lowest_index() -> None:
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [10, 10, 11, 11]], np.float64)
    keep, _ = ops.soft_nms(boxes, np.array([0.5, 0.9, 0.9]))
    np.testing.assert_array_equal(keep, [1, 2, 0])


# ----------------------------------------------------------------------------------------------
# Against torchvision (skipped where torchvision is not installed)


def _tv():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    return torch, torchvision


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_nms_matches_torchvision_random(kind: str) -> None:
    torch, torchvision = _tv()
    for seed in range(300):
        boxes, scores, thr, _ = random_case(kind, seed, max_n=300)
        for dtype in (np.float32, np.float64):
            b, s = boxes.astype(dtype), scores.astype(dtype)
            expected = torchvision.ops.nms(torch.from_numpy(b), torch.from_numpy(s), thr).numpy()
            assert_same(ops.nms(b, s, thr), expected, f"{kind} seed={seed} thr={thr} {dtype.__name__}")


@pytest.mark.parametrize("n", [999, 1000, 1001, 3000, 8400])
def test_nms_and_batched_nms_match_torchvision_large(n: int) -> None:
    torch, torchvision = _tv()
    for seed in range(3):
        rng = np.random.default_rng(seed)
        boxes, scores = clustered_boxes(rng, n, n_obj=max(10, n // 80))
        classes = rng.integers(0, 20, n)
        tb, ts, tc = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes)
        for thr in (0.45, 0.7):
            assert_same(ops.nms(boxes, scores, thr), torchvision.ops.nms(tb, ts, thr).numpy())
            expected = torchvision.ops.batched_nms(tb, ts, tc, thr).numpy()
            got = ops.batched_nms(boxes, scores, classes, thr)
            if n <= 1000:
                assert_same(got, expected)
            else:  # per-class path: torchvision orders equal scores with an unstable sort
                assert_same_up_to_tied_order(got, expected, scores)


def test_batched_nms_per_class_path_on_a_low_threshold_detector_output() -> None:
    """An SSD decoded at conf 0.001 gives tens of thousands of weak, mostly kept candidates: the
    per-class path (one NMS per class) must equal torchvision there, with classes of one box, and
    with ``max_output`` cutting across classes."""
    torch, torchvision = _tv()
    rng = np.random.default_rng(7)
    boxes, scores = uniform_boxes(rng, 6000)
    classes = rng.integers(0, 8, 6000)
    classes[:3] = [20, 21, 22]  # classes with a single box
    tb, ts, tc = torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes)
    for thr in (0.3, 0.55):
        expected = torchvision.ops.batched_nms(tb, ts, tc, thr).numpy()
        got = ops.batched_nms(boxes, scores, classes, thr)
        assert_same_up_to_tied_order(got, expected, scores)
        assert set(range(3)) <= set(got.tolist()) and len(got) > 1000  # mostly kept
        assert_same(ops.batched_nms(boxes, scores, classes, thr, max_output=777), got[:777])


def test_batched_nms_matches_torchvision_random() -> None:
    torch, torchvision = _tv()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(0, 1100))  # both sides of the 4000-coordinate switch
        boxes, scores = (clustered_boxes, uniform_boxes, grid_boxes)[seed % 3](rng, n)
        classes = rng.integers(0, int(rng.integers(1, 40)), n)
        thr = float(rng.choice(THRESHOLDS))
        expected = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                               torch.from_numpy(classes), thr).numpy()
        got = ops.batched_nms(boxes, scores, classes, thr)
        if boxes.size > 4000:
            # torchvision orders per-class results with an unstable sort: with tied scores only
            # the kept set and the score sequence are defined.
            assert_same_up_to_tied_order(got, expected, scores, f"seed={seed}")
        else:
            assert_same(got, expected, f"seed={seed}")


def test_batched_nms_reproduces_offset_rounding_of_torchvision() -> None:
    """Large class ids make ``box + class_id * (max + 1)`` lose float32 precision, which moves IoU
    values; torchvision's result depends on that rounding and so must ours."""
    torch, torchvision = _tv()
    differs = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        boxes, scores = clustered_boxes(rng, 200, n_obj=4)
        classes = rng.integers(5000, 5003, 200)
        expected = torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                               torch.from_numpy(classes), 0.5).numpy()
        assert_same(ops.batched_nms(boxes, scores, classes, 0.5), expected, f"seed={seed}")
        per_class = reference_batched_nms(boxes.astype(np.float64), scores, classes, 0.5)
        differs += not np.array_equal(np.sort(per_class), np.sort(expected))
    assert differs > 0  # the rounding really matters in these cases


def test_ties_and_threshold_edges_match_torchvision() -> None:
    torch, torchvision = _tv()
    for seed in range(150):
        rng = np.random.default_rng(seed)
        boxes, scores = grid_boxes(rng, int(rng.integers(1, 200)))
        for thr in (0.0, 1 / 3, 0.5, 2 / 3, 0.25, 1.0, -0.1):
            expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr)
            assert_same(ops.nms(boxes, scores, thr), expected.numpy(), f"seed={seed} thr={thr}")


# ----------------------------------------------------------------------------------------------
# Packaging


def test_import_does_not_load_torch() -> None:
    code = ("import sys, numpy as np, sdk.ops as ops; "
            "ops.nms(np.zeros((2, 4)), np.zeros(2), 0.5); ops.soft_nms(np.zeros((2, 4)), np.ones(2)); "
            "assert 'torch' not in sys.modules and 'torchvision' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
