"""Tests for the box utilities in ``sdk.ops.boxes`` (torchvision is the reference where installed)."""
from __future__ import annotations

import numpy as np
import pytest

import sdk.ops as ops

FORMATS = ("xyxy", "xywh", "cxcywh")


def random_boxes(seed: int, n: int, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-50, 500, (n, 2))
    wh = rng.uniform(0, 120, (n, 2))
    wh[rng.random(n) < 0.1] = 0  # some zero-area boxes
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


def python_iou(a, b) -> float:
    """IoU of two boxes in plain Python floats (0 when the union is 0)."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union != 0 else 0.0


# ----------------------------------------------------------------------------------------------
# box_area / box_iou


def test_box_area() -> None:
    boxes = np.array([[0, 0, 2, 3], [1, 1, 1, 5], [4, 4, 2, 2], [0, 0, 3, 1]], np.float32)
    area = ops.box_area(boxes)
    np.testing.assert_array_equal(area, [6, 0, 4, 3])  # inverted boxes are not clamped (torchvision)
    assert area.dtype == np.float32
    assert ops.box_area(boxes.reshape(2, 2, 4)).shape == (2, 2)
    assert ops.box_area(np.zeros((0, 4))).shape == (0,)
    assert ops.box_area([[0, 0, 2, 2]]).dtype == np.float64


def test_box_iou_matches_python_reference() -> None:
    a = random_boxes(0, 40, np.float64)
    b = random_boxes(1, 30, np.float64)
    iou = ops.box_iou(a, b)
    assert iou.shape == (40, 30) and iou.dtype == np.float64
    expected = np.array([[python_iou(x, y) for y in b] for x in a])
    np.testing.assert_allclose(iou, expected, rtol=1e-12, atol=1e-15)


def test_box_iou_known_values_and_zero_area() -> None:
    a = np.array([[0, 0, 2, 1], [5, 5, 5, 5]], np.float32)
    b = np.array([[0, 0, 1, 1], [5, 5, 5, 5], [10, 10, 11, 11], [0, 0, 2, 1]], np.float32)
    iou = ops.box_iou(a, b)
    np.testing.assert_array_equal(iou, [[0.5, 0, 0, 1], [0, 0, 0, 0]])  # point vs point: 0, not NaN
    assert not np.isnan(iou).any()
    assert ops.box_iou(np.zeros((0, 4)), b).shape == (0, 4)
    assert ops.box_iou(a, np.zeros((0, 4))).shape == (2, 0)


def test_box_iou_dtypes() -> None:
    a32 = random_boxes(2, 5)
    assert ops.box_iou(a32, a32).dtype == np.float32
    assert ops.box_iou(a32, a32.astype(np.float64)).dtype == np.float64
    assert ops.box_iou(a32.astype(np.float16), a32.astype(np.float16)).dtype == np.float32
    assert ops.box_iou(a32.astype(np.int32), a32.astype(np.int32)).dtype == np.float64


def test_box_iou_matches_torchvision() -> None:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    for seed in range(20):
        for dtype in (np.float32, np.float64):
            a, b = random_boxes(seed, 60, dtype), random_boxes(seed + 100, 45, dtype)
            expected = torchvision.ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
            nan = np.isnan(expected)  # torchvision: 0/0 for two zero-area boxes
            got = ops.box_iou(a, b)
            np.testing.assert_array_equal(got[~nan], expected[~nan])
            np.testing.assert_array_equal(got[nan], 0)
            np.testing.assert_array_equal(ops.box_area(a), torchvision.ops.box_area(torch.from_numpy(a)))


# ----------------------------------------------------------------------------------------------
# Format conversions


def test_conversions_known_values() -> None:
    xyxy = np.array([[10, 20, 30, 60]], np.float32)
    np.testing.assert_array_equal(ops.xyxy_to_xywh(xyxy), [[10, 20, 20, 40]])
    np.testing.assert_array_equal(ops.xyxy_to_cxcywh(xyxy), [[20, 40, 20, 40]])
    np.testing.assert_array_equal(ops.xywh_to_xyxy([[10, 20, 20, 40]]), xyxy)
    np.testing.assert_array_equal(ops.cxcywh_to_xyxy([[20, 40, 20, 40]]), xyxy)


@pytest.mark.parametrize("in_fmt", FORMATS)
@pytest.mark.parametrize("out_fmt", FORMATS)
def test_box_convert_round_trip(in_fmt: str, out_fmt: str) -> None:
    boxes = random_boxes(3, 50, np.float64)
    converted = ops.box_convert(boxes, in_fmt, out_fmt)
    assert converted.shape == boxes.shape and converted.dtype == boxes.dtype
    assert converted is not boxes
    np.testing.assert_allclose(ops.box_convert(converted, out_fmt, in_fmt), boxes, rtol=1e-12, atol=1e-9)


def test_conversions_keep_shape_dtype_and_input() -> None:
    boxes = random_boxes(4, 12).reshape(3, 4, 4)
    original = boxes.copy()
    for fn in (ops.xyxy_to_xywh, ops.xywh_to_xyxy, ops.xyxy_to_cxcywh, ops.cxcywh_to_xyxy,
               lambda b: ops.box_convert(b, "xyxy", "xyxy")):
        out = fn(boxes)
        assert out.shape == (3, 4, 4) and out.dtype == np.float32
        assert not np.shares_memory(out, boxes)
    np.testing.assert_array_equal(boxes, original)
    assert ops.xyxy_to_xywh([[0, 0, 3, 3]]).dtype == np.float64
    assert ops.xyxy_to_cxcywh(np.zeros((0, 4), np.float32)).shape == (0, 4)


def test_box_convert_matches_torchvision() -> None:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    boxes = random_boxes(5, 200)
    for in_fmt in FORMATS:
        for out_fmt in FORMATS:
            expected = torchvision.ops.box_convert(torch.from_numpy(boxes), in_fmt, out_fmt).numpy()
            np.testing.assert_array_equal(ops.box_convert(boxes, in_fmt, out_fmt), expected,
                                          err_msg=f"{in_fmt}->{out_fmt}")


# ----------------------------------------------------------------------------------------------
# clip_boxes


def test_clip_boxes() -> None:
    boxes = np.array([[-5, -5, 20, 30], [3, 4, 5, 6], [50, 60, 70, 80]], np.float32)
    clipped = ops.clip_boxes(boxes, (25, 10))
    np.testing.assert_array_equal(clipped, [[0, 0, 10, 25], [3, 4, 5, 6], [10, 25, 10, 25]])
    assert clipped.dtype == np.float32
    np.testing.assert_array_equal(ops.clip_boxes(boxes, np.zeros((25, 10, 3)).shape), clipped)
    assert ops.clip_boxes(boxes.reshape(1, 3, 4), (25, 10)).shape == (1, 3, 4)
    assert boxes[0, 0] == -5  # input untouched


def test_clip_boxes_matches_torchvision() -> None:
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    boxes = random_boxes(6, 100)
    expected = torchvision.ops.clip_boxes_to_image(torch.from_numpy(boxes), (300, 200)).numpy()
    np.testing.assert_array_equal(ops.clip_boxes(boxes, (300, 200)), expected)


# ----------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize("fn", [ops.box_area, ops.xyxy_to_xywh, ops.xywh_to_xyxy, ops.cxcywh_to_xyxy,
                                ops.xyxy_to_cxcywh, lambda b: ops.clip_boxes(b, (10, 10)),
                                lambda b: ops.box_convert(b, "xyxy", "xywh")])
def test_bad_boxes_raise_value_error(fn) -> None:
    with pytest.raises(ValueError, match=r"boxes: expected shape \(\.\.\., 4\), got \(3, 5\)"):
        fn(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"boxes: expected a real numeric dtype .*got complex128"):
        fn(np.zeros((3, 4), complex))
    with pytest.raises(ValueError, match="boxes: expected a real numeric dtype"):
        fn([["a", "b", "c", "d"]])


def test_box_iou_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"boxes1: expected shape \(N, 4\), got \(4,\)"):
        ops.box_iou(np.zeros(4), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"boxes2: expected shape \(N, 4\), got \(2, 3\)"):
        ops.box_iou(np.zeros((1, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"boxes2: expected a real numeric dtype .*got bool"):
        ops.box_iou(np.zeros((1, 4)), np.zeros((1, 4), bool))


def test_bad_formats_and_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="in_fmt: expected one of xyxy, xywh, cxcywh, got 'xxyy'"):
        ops.box_convert(np.zeros((1, 4)), "xxyy", "xyxy")
    with pytest.raises(ValueError, match="out_fmt: expected one of xyxy, xywh, cxcywh, got 'XYWH'"):
        ops.box_convert(np.zeros((1, 4)), "xyxy", "XYWH")
    for shape in ((10,), (10, -1), "10x10", None, (1, 2, 3, 4)):
        with pytest.raises(ValueError, match=r"shape_hw: expected \(height, width\)"):
            ops.clip_boxes(np.zeros((1, 4)), shape)
