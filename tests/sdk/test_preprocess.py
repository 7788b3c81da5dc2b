"""Tests of sdk.preprocess against straightforward references (Ultralytics' LetterBox, torchvision's
Resize + CenterCrop when torchvision is importable). Imports without torch."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from sdk.preprocess import (
    PreprocessConfig,
    Preprocessor,
    Transform,
    center_crop,
    dequantize,
    ensure_bgr,
    letterbox,
    normalize,
    quantize,
    stretch,
    to_layout,
)

IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def smooth_frame(h: int = 720, w: int = 1280, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(h // 16, 2), max(w // 16, 2), 3), np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def ultralytics_letterbox(img: np.ndarray, new_shape=(640, 640), auto=False, stride=32, scaleup=True,
                          color=(114, 114, 114)):
    """Ultralytics ``LetterBox.__call__`` (center=True), copied for reference."""
    shape = img.shape[:2]
    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    if not scaleup:
        r = min(r, 1.0)
    new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))
    dw, dh = new_shape[1] - new_unpad[0], new_shape[0] - new_unpad[1]
    if auto:
        dw, dh = np.mod(dw, stride), np.mod(dh, stride)
    dw /= 2
    dh /= 2
    if shape[::-1] != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)


def ultralytics_scale_boxes(img1_shape, boxes, img0_shape):
    """Ultralytics ``ops.scale_boxes`` (input pixels → frame pixels, clipped)."""
    gain = min(img1_shape[0] / img0_shape[0], img1_shape[1] / img0_shape[1])
    pad = (round((img1_shape[1] - img0_shape[1] * gain) / 2 - 0.1),
           round((img1_shape[0] - img0_shape[0] * gain) / 2 - 0.1))
    boxes = boxes.astype(np.float64).copy()
    boxes[:, [0, 2]] -= pad[0]
    boxes[:, [1, 3]] -= pad[1]
    boxes /= gain
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, img0_shape[1])
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, img0_shape[0])
    return boxes


FRAME_SIZES = [(720, 1280), (480, 640), (1080, 1920), (640, 640), (333, 517), (517, 333), (100, 150), (1, 7)]


# --------------------------------------------------------------------------------------------------
# ensure_bgr
# --------------------------------------------------------------------------------------------------


def test_ensure_bgr_passes_bgr_and_converts_gray_and_bgra():
    frame = smooth_frame(20, 30)
    assert ensure_bgr(frame) is frame
    gray = frame[:, :, 0].copy()
    for g in (gray, gray[:, :, None]):
        out = ensure_bgr(g)
        assert out.shape == (20, 30, 3) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[:, :, 1], gray)
    bgra = np.dstack([frame, np.full((20, 30), 7, np.uint8)])
    np.testing.assert_array_equal(ensure_bgr(bgra), frame)
    flipped = ensure_bgr(frame[:, ::-1])
    assert flipped.flags.c_contiguous
    np.testing.assert_array_equal(flipped, frame[:, ::-1])


@pytest.mark.parametrize("bad, message", [
    (None, r"expected a \(H, W, 3\) uint8 BGR image, got None"),
    ([[1, 2], [3, 4]], "expected a numpy.ndarray.*got list"),
    (np.zeros((0, 10, 3), np.uint8), r"expected a non-empty.*got shape \(0, 10, 3\)"),
    (np.zeros((4, 4, 3), np.float32), r"expected dtype uint8.*got float32.*astype\(np.uint8\)"),
    (np.zeros((4, 4, 3), np.uint16), r"expected dtype uint8.*got uint16"),
    (np.zeros((1, 4, 4, 3), np.uint8), r"expected a \(H, W, 3\) image \(rank 3\), got rank 4.*frame\[0\]"),
    (np.zeros((4, 4, 2), np.uint8), r"expected 1, 3 or 4 channels.*got shape \(4, 4, 2\)"),
    (np.zeros((3, 40, 40), np.uint8), r"expected 1, 3 or 4 channels.*channels-first"),
])
def test_ensure_bgr_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        ensure_bgr(bad)


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_hw", FRAME_SIZES)
@pytest.mark.parametrize("auto, scaleup", [(False, True), (True, True), (False, False)])
def test_letterbox_matches_ultralytics(frame_hw, auto, scaleup):
    frame = smooth_frame(*frame_hw)
    ref = ultralytics_letterbox(frame, (640, 640), auto=auto, scaleup=scaleup)
    out, t = letterbox(frame, (640, 640), auto=auto, scaleup=scaleup)
    np.testing.assert_array_equal(out, ref)
    assert t.input_hw == ref.shape[:2] and t.frame_hw == frame_hw
    pre = Preprocessor(PreprocessConfig(size_hw=(640, 640), auto=auto, stride=32, scaleup=scaleup))
    tensor, t2 = pre(frame)
    assert t2 == t
    expected = ref[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_allclose(tensor, expected, rtol=1e-6, atol=1e-7)


def test_letterbox_non_square_target_and_grayscale_image():
    frame = smooth_frame(480, 640)
    out, t = letterbox(frame, (320, 640))
    np.testing.assert_array_equal(out, ultralytics_letterbox(frame, (320, 640)))
    gray, _ = letterbox(frame[:, :, 0], (320, 320), pad_value=0)
    assert gray.shape == (320, 320)


@pytest.mark.parametrize("frame_hw", FRAME_SIZES[:-1])
def test_inverse_mapping_round_trips_and_matches_ultralytics_scale_boxes(frame_hw):
    h, w = frame_hw
    rng = np.random.default_rng(1)
    x1 = rng.uniform(0, w * 0.8, 50)
    y1 = rng.uniform(0, h * 0.8, 50)
    boxes = np.stack([x1, y1, x1 + rng.uniform(1, w * 0.2, 50), y1 + rng.uniform(1, h * 0.2, 50)], 1).astype(np.float32)
    for resize in ("letterbox", "stretch", "center_crop"):
        t = Preprocessor(PreprocessConfig(size_hw=(640, 640), resize=resize)).transform_for(frame_hw)
        back = t.boxes_to_frame(t.boxes_to_input(boxes), clip=False)
        np.testing.assert_allclose(back, boxes, atol=1e-3 * max(h, w))
    t = Preprocessor(PreprocessConfig(size_hw=(640, 640))).transform_for(frame_hw)
    in_boxes = t.boxes_to_input(boxes)
    np.testing.assert_allclose(t.boxes_to_frame(in_boxes), ultralytics_scale_boxes((640, 640), in_boxes, frame_hw),
                               atol=1.0)


def test_box_drawn_in_frame_is_found_back_within_one_pixel():
    frame = np.zeros((720, 1280, 3), np.uint8)
    box = (301, 157, 777, 533)                   # x1, y1, x2, y2 (exclusive)
    frame[box[1]:box[3], box[0]:box[2]] = 255
    for cfg in (PreprocessConfig(size_hw=(640, 640)), PreprocessConfig(size_hw=(480, 480), resize="stretch"),
                PreprocessConfig(size_hw=(224, 224), resize="center_crop", crop_fraction=1.0),
                PreprocessConfig(size_hw=(320, 320), layout="NHWC", dtype="uint8")):
        tensor, t = Preprocessor(cfg)(frame)
        plane = tensor[0, 0] if cfg.layout == "NCHW" else tensor[0, :, :, 0]
        bright = plane.astype(np.float32) > (0.5 if cfg.dtype == "float32" else 127)
        ys, xs = np.nonzero(bright)
        found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        mapped = t.boxes_to_frame(found)
        tol = 1.0 / min(t.ratio) + 1                  # one input pixel, in frame pixels
        np.testing.assert_allclose(mapped[0], box, atol=tol)


def test_boxes_to_frame_clips_and_validates():
    t = Transform(frame_hw=(100, 200), input_hw=(64, 64), ratio=(0.32, 0.32), pad=(0.0, 16.0))
    out = t.boxes_to_frame(np.array([[-10, 0, 70, 70]], np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0, 200, 100]])
    assert t.boxes_to_frame(np.zeros((0, 4))).shape == (0, 4)
    with pytest.raises(ValueError, match=r"expected shape \(N, 4\), got \(2, 3\)"):
        t.boxes_to_frame(np.zeros((2, 3)))
    pts = t.points_to_frame(np.array([[[32.0, 32.0]]]))
    np.testing.assert_allclose(pts, [[[100.0, 50.0]]])


def test_center_crop_geometry():
    frame = smooth_frame(480, 640)
    out, t = center_crop(frame, (224, 224))       # resize shorter side to int(224 / 0.875) = 256
    assert out.shape == (224, 224, 3) and out.flags.c_contiguous
    assert t.ratio == (341 / 640, 256 / 480) and t.crop == (58.0, 16.0)
    resized = cv2.resize(frame, (341, 256), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(out, resized[16:240, 58:282])
    full, t_full = center_crop(frame, (480, 480), crop_fraction=1.0)
    np.testing.assert_array_equal(full, frame[:, 80:560])
    assert t_full.crop == (80.0, 0.0)


@pytest.mark.parametrize("frame_hw", [(480, 640), (640, 480), (300, 300), (1080, 1920)])
def test_center_crop_matches_torchvision(frame_hw):
    pytest.importorskip("torch")
    torch = pytest.importorskip("torch")
    tvf = pytest.importorskip("torchvision.transforms.functional")
    frame = smooth_frame(*frame_hw)
    tensor = torch.from_numpy(frame.transpose(2, 0, 1).copy()).float()
    ref = tvf.center_crop(tvf.resize(tensor, 256, antialias=False), [224, 224]).numpy().transpose(1, 2, 0)
    mine, _ = center_crop(frame, (224, 224))
    assert mine.shape == ref.shape
    # OpenCV's fixed-point bilinear vs torch's float bilinear: same geometry, values within 1-2 levels
    diff = np.abs(mine.astype(np.float32) - ref)
    assert diff.max() <= 2.0 and diff.mean() < 0.6


def test_stretch():
    frame = smooth_frame(480, 640)
    out, t = stretch(frame, (320, 320))
    np.testing.assert_array_equal(out, cv2.resize(frame, (320, 320), interpolation=cv2.INTER_LINEAR))
    assert t.ratio == (0.5, 320 / 480) and t.pad == (0.0, 0.0)


# --------------------------------------------------------------------------------------------------
# Values: normalisation, layouts, dtypes, quantisation
# --------------------------------------------------------------------------------------------------


def reference_tensor(frame: np.ndarray, cfg: PreprocessConfig) -> np.ndarray:
    """Step-by-step pipeline with the public pure functions."""
    geo = {"letterbox": lambda: letterbox(frame, cfg.size_hw, pad_value=cfg.pad_value)[0],
           "stretch": lambda: stretch(frame, cfg.size_hw)[0],
           "center_crop": lambda: center_crop(frame, cfg.size_hw, crop_fraction=cfg.crop_fraction)[0]}[cfg.resize]()
    if cfg.color == "RGB":
        geo = geo[:, :, ::-1]
    if cfg.raw_pixels:
        values = geo.astype(cfg.dtype)
    else:
        x = normalize(geo, scale=cfg.scale, mean=cfg.mean, std=cfg.std)
        values = quantize(x, *cfg.quant, dtype=cfg.dtype) if cfg.quant else x.astype(cfg.dtype)
    return to_layout(values, cfg.layout)


CONFIGS = [
    dict(),
    dict(layout="NHWC"),
    dict(color="BGR", resize="stretch"),
    dict(**IMAGENET),
    dict(layout="NHWC", **IMAGENET),
    dict(dtype="float16"),
    dict(dtype="float16", layout="NHWC", **IMAGENET),
    dict(dtype="uint8", layout="NHWC"),
    dict(dtype="uint8", layout="NCHW", color="BGR", pad_value=0),
    dict(dtype="int8", quant=(1 / 255, -128)),
    dict(dtype="uint8", quant=(0.0186, 114), layout="NHWC", **IMAGENET),
    dict(dtype="int8", quant=(0.0186, -14), **IMAGENET),
    dict(size_hw=(224, 224), resize="center_crop", **IMAGENET),
    dict(size_hw=(256, 320), resize="letterbox", pad_value=0, scale=1.0, mean=(127.5,) * 3, std=(127.5,) * 3),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("frame_hw", [(720, 1280), (480, 360)])
def test_preprocessor_matches_step_by_step_reference(kw, frame_hw):
    cfg = PreprocessConfig(**{"size_hw": (320, 320), **kw})
    frame = smooth_frame(*frame_hw)
    tensor, t = Preprocessor(cfg)(frame)
    ref = reference_tensor(frame, cfg)
    assert tensor.shape == ref.shape and tensor.dtype == np.dtype(cfg.dtype) and tensor.flags.c_contiguous
    h, w = t.input_hw
    assert tensor.shape == ((1, 3, h, w) if cfg.layout == "NCHW" else (1, h, w, 3))
    if cfg.dtype in ("uint8", "int8"):
        # the fused path tabulates in float64; a value on a rounding boundary may differ by one step
        assert np.abs(tensor.astype(np.int16) - ref.astype(np.int16)).max() <= (0 if cfg.raw_pixels else 1)
    else:
        tol = 1e-3 if cfg.dtype == "float16" else 1e-5
        np.testing.assert_allclose(tensor.astype(np.float32), ref.astype(np.float32), rtol=tol, atol=tol)


def test_padding_value_is_normalised_like_pixels():
    frame = np.full((100, 200, 3), 114, np.uint8)
    tensor, t = Preprocessor(PreprocessConfig(size_hw=(64, 64), **IMAGENET))(frame)
    assert t.pad == (0.0, 16.0)
    expected = (114 / 255 - np.array(IMAGENET["mean"])) / np.array(IMAGENET["std"])
    np.testing.assert_allclose(tensor[0, :, 0, 0], expected, rtol=1e-5)
    np.testing.assert_allclose(tensor[0, :, 32, 32], expected, rtol=1e-5)


def test_quantize_dequantize_round_trip():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 1000).astype(np.float32)
    for dtype, zp in (("int8", 0), ("uint8", 128), ("int8", -3)):
        q = quantize(x, 1 / 120, zp, dtype)
        assert q.dtype == np.dtype(dtype)
        np.testing.assert_allclose(dequantize(q, 1 / 120, zp), x, atol=0.5 / 120 + 1e-6)
    assert quantize(np.array([10.0, -10.0]), 0.01, 0, "int8").tolist() == [127, -128]       # clipped
    assert quantize(np.array([0.5, 1.5, 2.5]), 1.0, 0, "uint8").tolist() == [0, 2, 2]        # half to even
    with pytest.raises(ValueError, match="expected dtype uint8 or int8, got float32"):
        quantize(x, 0.1, 0, "float32")


def test_quantised_input_dequantises_to_the_float_input():
    frame = smooth_frame()
    cfg_f = PreprocessConfig(size_hw=(320, 320), **IMAGENET)
    q_scale, zp = 0.0188, -14                      # [-2.12, 2.64] fits in -128..127
    cfg_q = PreprocessConfig(size_hw=(320, 320), dtype="int8", quant=(q_scale, zp), **IMAGENET)
    xf, _ = Preprocessor(cfg_f)(frame)
    xq, _ = Preprocessor(cfg_q)(frame)
    np.testing.assert_allclose(dequantize(xq, q_scale, zp), xf, atol=q_scale / 2 + 1e-5)


def test_normalize_and_to_layout():
    img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    x = normalize(img, scale=1.0, mean=(1, 2, 3), std=(2, 2, 2))
    np.testing.assert_allclose(x, (img - np.array([1, 2, 3])) / 2)
    assert to_layout(x, "NCHW").shape == (1, 3, 2, 4) and to_layout(x, "NCHW").flags.c_contiguous
    assert to_layout(x, "NHWC").shape == (1, 2, 4, 3)
    np.testing.assert_array_equal(to_layout(x, "NCHW")[0, 1], x[:, :, 1])
    with pytest.raises(ValueError, match="NCWH"):
        to_layout(x, "NCWH")


# --------------------------------------------------------------------------------------------------
# Buffers, frames of changing size, configuration errors
# --------------------------------------------------------------------------------------------------


def test_fresh_output_by_default_and_reused_buffer_on_request():
    a_frame, b_frame = smooth_frame(seed=1), smooth_frame(seed=2)
    pre = Preprocessor(PreprocessConfig(size_hw=(320, 320)))
    a, _ = pre(a_frame)
    keep = a.copy()
    b, _ = pre(b_frame)
    assert a is not b
    np.testing.assert_array_equal(a, keep)               # the first result was not overwritten
    reuse = Preprocessor(PreprocessConfig(size_hw=(320, 320)), reuse_output=True)
    c, _ = reuse(a_frame)
    d, _ = reuse(b_frame)
    assert c is d                                        # documented: the next call overwrites it
    np.testing.assert_array_equal(d, b)


@pytest.mark.parametrize("reuse", [False, True])
def test_changing_frame_sizes_refill_the_border(reuse):
    pre = Preprocessor(PreprocessConfig(size_hw=(256, 256), dtype="int8", quant=(1 / 255, -128)), reuse_output=reuse)
    fresh = Preprocessor(PreprocessConfig(size_hw=(256, 256), dtype="int8", quant=(1 / 255, -128)))
    for hw in [(720, 1280), (1280, 720), (720, 1280), (256, 256), (100, 300)]:
        frame = smooth_frame(*hw)
        got, t = pre(frame)
        want, t2 = fresh(frame)
        assert t == t2
        np.testing.assert_array_equal(got, want)


def test_strided_and_roi_frames():
    big = smooth_frame(800, 1400)
    roi = big[40:760, 60:1340]                    # a view with row padding
    pre = Preprocessor(PreprocessConfig(size_hw=(320, 320)))
    np.testing.assert_array_equal(pre(roi)[0], pre(roi.copy())[0])
    np.testing.assert_array_equal(pre(roi[::-1])[0], pre(np.ascontiguousarray(roi[::-1]))[0])


def test_config_validation():
    with pytest.raises(ValueError, match=r"layout: expected one of NCHW, NHWC, got 'NCWH' \(did you mean 'NCHW'\?\)"):
        PreprocessConfig(size_hw=(320, 320), layout="NCWH")
    with pytest.raises(ValueError, match=r"quant: expected \(scale, zero_point\) for dtype int8, got None"):
        PreprocessConfig(size_hw=(320, 320), dtype="int8")
    with pytest.raises(ValueError, match="expected dtype uint8 or int8 with quant"):
        PreprocessConfig(size_hw=(320, 320), quant=(0.1, 0))
    with pytest.raises(ValueError, match=r"zero_point in -128..127"):
        PreprocessConfig(size_hw=(320, 320), dtype="int8", quant=(0.1, 200))
    with pytest.raises(ValueError, match="identity mean/std for raw uint8"):
        PreprocessConfig(size_hw=(320, 320), dtype="uint8", **IMAGENET)
    with pytest.raises(ValueError, match=r"size_hw: expected \(height, width\)"):
        PreprocessConfig(size_hw=(320,))
    with pytest.raises(ValueError, match="std: expected numbers > 0"):
        PreprocessConfig(size_hw=(320, 320), std=(1, 0, 1))
    with pytest.raises(ValueError, match="auto"):
        PreprocessConfig(size_hw=(320, 320), resize="stretch", auto=True)
    with pytest.raises(ValueError, match=r"unknown key 'pad'.*'pad_value'"):
        PreprocessConfig.from_dict({"size_hw": [320, 320], "pad": 0})
    cfg = PreprocessConfig.from_dict({"size_hw": [320, 256], "mean": 0.5, "std": [0.25]})
    assert cfg.size_hw == (320, 256) and cfg.mean == (0.5,) * 3 and cfg.std == (0.25,) * 3
    with pytest.raises(ValueError, match="expected a PreprocessConfig"):
        Preprocessor({"size_hw": (320, 320)})  # type: ignore[arg-type]
