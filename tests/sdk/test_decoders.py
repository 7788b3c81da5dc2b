"""Tests of sdk.decoders against hand-built outputs and slow reference implementations.

Imports without torch; the torchvision comparisons skip themselves when torch is missing.
"""
from __future__ import annotations

import logging
import math
import subprocess
import sys
import types

import numpy as np
import pytest

from sdk.decoders import DECODERS, PostprocessOptions, get_decoder, known_decoders
from sdk.errors import DecodeError, ModelContractError
from sdk.results import Classification, Detections, Embedding

HW = (640, 640)


# --------------------------------------------------------------------------------------------------
# Reference NMS (torchvision semantics), used to check the decoders and, until sdk.ops exists, as its stand-in
# --------------------------------------------------------------------------------------------------


def ref_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def ref_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        order = order[1:][ref_iou(boxes[i], boxes[order[1:]]) <= iou_threshold]
    return np.asarray(keep, np.int64)


def ref_batched_nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float) -> np.ndarray:
    keep = []
    for c in np.unique(class_ids):
        idx = np.flatnonzero(class_ids == c)
        keep.extend(idx[ref_nms(boxes[idx], scores[idx], iou_threshold)])
    keep = np.asarray(keep, np.int64)
    return keep[np.argsort(-np.asarray(scores)[keep], kind="stable")]


@pytest.fixture(autouse=True)
def _ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use sdk.ops when it exists; otherwise a temporary stand-in (test-only) with the same API."""
    try:
        from sdk.ops import batched_nms, nms  # noqa: F401
    except ImportError:
        fake = types.ModuleType("sdk.ops")
        fake.nms = ref_nms  # type: ignore[attr-defined]
        fake.batched_nms = ref_batched_nms  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "sdk.ops", fake)


def opts(**kw) -> PostprocessOptions:
    return PostprocessOptions().merged(**kw)


# --------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------


def yolo_v8_output(boxes_cxcywh, class_ids, scores, *, nc: int = 3, n: int = 100, low: float = 0.01,
                   seed: int = 0) -> np.ndarray:
    """[1, 4 + nc, n] with the given rows at the start and low background scores elsewhere."""
    rng = np.random.default_rng(seed)
    out = np.zeros((1, 4 + nc, n), np.float32)
    out[0, :4] = rng.uniform(50, 600, (4, n)).astype(np.float32)
    out[0, 4:] = rng.uniform(0, low, (nc, n)).astype(np.float32)
    for i, (b, c, s) in enumerate(zip(boxes_cxcywh, class_ids, scores)):
        out[0, :4, i] = b
        out[0, 4 + c, i] = s
    return out


def cxcywh_to_xyxy(b) -> np.ndarray:
    b = np.asarray(b, np.float32).reshape(-1, 4)
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def realistic_yolo(nc: int = 80, n: int = 8400, objects: int = 20, per_object: int = 15, seed: int = 0) -> np.ndarray:
    """Detector-like [1, 4 + nc, n]: tiny scores everywhere, clusters of high scores around a few objects."""
    rng = np.random.default_rng(seed)
    out = np.empty((1, 4 + nc, n), np.float32)
    out[0, 0:2] = rng.uniform(0, 640, (2, n))
    out[0, 2:4] = rng.uniform(4, 200, (2, n))
    out[0, 4:] = 1 / (1 + np.exp(-rng.normal(-9, 1.5, (nc, n))))
    cols = rng.choice(n, objects * per_object, replace=False).reshape(objects, per_object)
    for k in range(objects):
        c = rng.integers(nc)
        center = rng.uniform(50, 590, 2)
        size = rng.uniform(20, 200, 2)
        for j in cols[k]:
            out[0, 0:2, j] = center + rng.normal(0, 3, 2)
            out[0, 2:4, j] = size * rng.uniform(0.9, 1.1, 2)
            out[0, 4 + c, j] = rng.uniform(0.2, 0.95)
    return out


def reference_yolo_v8(out: np.ndarray, options: PostprocessOptions) -> Detections:
    """Straightforward port of Ultralytics' non_max_suppression (single label) on [1, 4 + nc, N]."""
    x = out[0].T.astype(np.float64)
    conf = x[:, 4:].max(1)
    cls = x[:, 4:].argmax(1)
    keep = np.isfinite(x).all(1) & (conf > options.conf_threshold)
    x, conf, cls = x[keep], conf[keep], cls[keep]
    if options.classes is not None:
        k = np.isin(cls, options.classes)
        x, conf, cls = x[k], conf[k], cls[k]
    order = np.argsort(-conf, kind="stable")[:options.max_nms]
    x, conf, cls = x[order], conf[order], cls[order]
    boxes = cxcywh_to_xyxy(x[:, :4])
    if options.agnostic:
        k = ref_nms(boxes, conf, options.iou_threshold)
    else:
        k = ref_batched_nms(boxes, conf, cls, options.iou_threshold)
    k = k[:options.max_det]
    return Detections(boxes[k], conf[k], cls[k])


# --------------------------------------------------------------------------------------------------
# Registry and options
# --------------------------------------------------------------------------------------------------


def test_registry_lists_known_types_on_unknown_type():
    assert set(known_decoders()) == set(DECODERS) == {"yolo", "yolo_end2end", "ssd", "tf_od_api",
                                                     "classifier", "embedding"}
    with pytest.raises(ModelContractError, match=r"expected one of yolo, yolo_end2end, ssd.*got 'yolov8'.*'yolo'"):
        get_decoder({"type": "yolov8"}, output_names=[], labels=[])
    with pytest.raises(ModelContractError, match="got None"):
        get_decoder({}, output_names=[], labels=[])
    with pytest.raises(ModelContractError, match="expected an object"):
        get_decoder("yolo", output_names=[], labels=[])  # type: ignore[arg-type]


def test_unknown_spec_key_suggests():
    with pytest.raises(ModelContractError, match=r"unknown key 'num_class'.*did you mean 'num_classes'"):
        get_decoder({"type": "yolo", "num_class": 3}, output_names=[], labels=[])
    with pytest.raises(ModelContractError, match=r"expected one of 'v8', 'v5', got 'v7'"):
        get_decoder({"type": "yolo", "version": "v7"}, output_names=[], labels=[])


def test_decoder_tasks():
    tasks = {}
    for kind in known_decoders():
        spec = {"type": kind}
        if kind == "ssd":
            spec["anchors"] = [[0.5, 0.5, 0.2, 0.2]]
        tasks[kind] = get_decoder(spec, output_names=["out"], labels=["a"]).task
    assert tasks == {"yolo": "detect", "yolo_end2end": "detect", "ssd": "detect", "tf_od_api": "detect",
                     "classifier": "classify", "embedding": "embed"}


def test_postprocess_options():
    o = PostprocessOptions()
    assert (o.conf_threshold, o.iou_threshold, o.max_det, o.max_nms, o.agnostic, o.classes, o.top_k) == \
        (0.25, 0.45, 300, 30000, False, None, 5)
    m = o.merged(conf_threshold=0.5, classes=[0, 2])
    assert m.conf_threshold == 0.5 and m.classes == (0, 2) and o.conf_threshold == 0.25
    assert o.merged() is o
    with pytest.raises(ValueError, match=r"unknown post-processing option 'conf'.*did you mean 'conf_threshold'"):
        o.merged(conf=0.3)
    with pytest.raises(ValueError, match=r"iou_threshold: expected a number in \[0, 1\], got 1.5"):
        o.merged(iou_threshold=1.5)
    with pytest.raises(ValueError, match="max_det: expected an int >= 1, got 0"):
        o.merged(max_det=0)
    with pytest.raises(ValueError, match="classes"):
        o.merged(classes=["person"])


def test_sdk_decoders_and_preprocess_import_without_torch():
    code = ("import sys, sdk.decoders, sdk.preprocess\n"
            "from sdk.decoders import yolo, ssd, tf_od_api, classifier, embedding\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------
# YOLO v8 / v11
# --------------------------------------------------------------------------------------------------

BOXES = [[100, 100, 40, 60], [300, 200, 80, 40], [500, 400, 20, 20]]
CLASSES = [0, 2, 1]
SCORES = [0.9, 0.8, 0.6]


def test_yolo_known_boxes_come_back_exactly():
    out = yolo_v8_output(BOXES, CLASSES, SCORES)
    dec = get_decoder({"type": "yolo"}, output_names=["output0"], labels=["a", "b", "c"])
    dets = dec({"output0": out}, input_hw=HW, options=opts())
    assert isinstance(dets, Detections)
    np.testing.assert_array_equal(dets.xyxy, cxcywh_to_xyxy(BOXES))
    np.testing.assert_array_equal(dets.confidence, np.float32(SCORES))
    np.testing.assert_array_equal(dets.class_id, CLASSES)
    assert dets.labels == ("a", "b", "c") and dets.label == ["a", "c", "b"]
    assert dec.nonfinite_dropped == 0


def test_yolo_transposed_layout_matches():
    out = yolo_v8_output(BOXES, CLASSES, SCORES)
    dec = get_decoder({"type": "yolo", "num_classes": 3}, output_names=["o"], labels=[])
    a = dec({"o": out}, input_hw=HW, options=opts())
    b = dec({"o": np.ascontiguousarray(out.transpose(0, 2, 1))}, input_hw=HW, options=opts())
    c = dec({"o": out[0]}, input_hw=HW, options=opts())           # no batch axis
    for d in (b, c):
        np.testing.assert_array_equal(a.xyxy, d.xyxy)
        np.testing.assert_array_equal(a.class_id, d.class_id)
        np.testing.assert_array_equal(a.confidence, d.confidence)


def test_yolo_infers_classes_without_labels_and_prefers_channels_first_when_square():
    out = yolo_v8_output(BOXES, CLASSES, SCORES)
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=[])
    assert len(dec({"o": out}, input_hw=HW, options=opts())) == 3
    # 4 + nc == N: ambiguous; channels-first (Ultralytics' layout) is assumed
    square = yolo_v8_output(BOXES, CLASSES, SCORES, nc=3, n=7)
    dec = get_decoder({"type": "yolo", "num_classes": 3}, output_names=["o"], labels=[])
    dets = dec({"o": square}, input_hw=HW, options=opts())
    np.testing.assert_array_equal(dets.xyxy, cxcywh_to_xyxy(BOXES))


def test_yolo_normalized_coordinates():
    out = yolo_v8_output(BOXES, CLASSES, SCORES)
    out[0, 0] /= 640
    out[0, 2] /= 640
    out[0, 1] /= 480
    out[0, 3] /= 480
    dec = get_decoder({"type": "yolo", "normalized": True}, output_names=["o"], labels=["a", "b", "c"])
    dets = dec({"o": out}, input_hw=(480, 640), options=opts())
    np.testing.assert_allclose(dets.xyxy, cxcywh_to_xyxy(BOXES), atol=1e-3)


def test_yolo_threshold_is_strict_and_class_filter_and_max_det():
    out = yolo_v8_output(BOXES, CLASSES, [0.9, 0.8, 0.25])
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=["a", "b", "c"])
    assert len(dec({"o": out}, input_hw=HW, options=opts(conf_threshold=0.25))) == 2
    dets = dec({"o": out}, input_hw=HW, options=opts(conf_threshold=0.1, classes=[1, 2]))
    assert sorted(dets.class_id.tolist()) == [1, 2]
    dets = dec({"o": out}, input_hw=HW, options=opts(conf_threshold=0.1, max_det=1))
    assert len(dets) == 1 and dets.confidence[0] == np.float32(0.9)
    assert len(dec({"o": out}, input_hw=HW, options=opts(classes=[7]))) == 0


def test_yolo_agnostic_vs_class_aware():
    # two heavily overlapping boxes of different classes
    out = yolo_v8_output([[200, 200, 100, 100], [205, 205, 100, 100]], [0, 1], [0.9, 0.8])
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=["a", "b", "c"])
    aware = dec({"o": out}, input_hw=HW, options=opts())
    agnostic = dec({"o": out}, input_hw=HW, options=opts(agnostic=True))
    assert aware.class_id.tolist() == [0, 1]
    assert agnostic.class_id.tolist() == [0] and agnostic.confidence[0] == np.float32(0.9)
    # same class: suppressed either way
    out = yolo_v8_output([[200, 200, 100, 100], [205, 205, 100, 100]], [0, 0], [0.9, 0.8])
    assert len(dec({"o": out}, input_hw=HW, options=opts())) == 1


def test_yolo_max_nms_keeps_the_best_candidates():
    boxes = [[40 + 60 * i, 300, 30, 30] for i in range(10)]            # disjoint
    scores = [0.3 + 0.05 * i for i in range(10)]
    out = yolo_v8_output(boxes, [0] * 10, scores)
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=["a", "b", "c"])
    dets = dec({"o": out}, input_hw=HW, options=opts(max_nms=3))
    np.testing.assert_allclose(dets.confidence, sorted(scores, reverse=True)[:3])


def test_yolo_matches_reference_on_realistic_output():
    out = realistic_yolo()
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=[str(i) for i in range(80)])
    for o in (opts(), opts(agnostic=True), opts(conf_threshold=0.5, max_det=7), opts(classes=[1, 5, 9, 40]),
              opts(max_nms=50)):
        got = dec({"o": out}, input_hw=HW, options=o)
        ref = reference_yolo_v8(out, o)
        assert len(got) > 0 or o.classes is not None
        np.testing.assert_allclose(got.xyxy, ref.xyxy, atol=1e-3)
        np.testing.assert_allclose(got.confidence, ref.confidence, rtol=1e-6)
        np.testing.assert_array_equal(got.class_id, ref.class_id)


def test_yolo_nan_and_inf_rows_are_dropped_counted_and_warned_once(caplog: pytest.LogCaptureFixture):
    out = yolo_v8_output(BOXES + [[50, 50, 10, 10]] * 3, CLASSES + [0, 1, 2], SCORES + [0.99, 0.99, 0.99])
    out[0, 0, 3] = np.nan                 # NaN box with a high score
    out[0, 4 + 1, 4] = np.inf             # Inf score
    out[0, 4 + 2, 5] = np.nan             # NaN score
    out[0, 4 + 0, 50] = -np.inf           # -Inf on a background row's non-best class: harmless, not counted
    out[0, 2, 60] = np.inf                # Inf box on a background row
    out[0, 4:, 70] = -np.inf              # all scores -Inf
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=["a", "b", "c"])
    with caplog.at_level(logging.WARNING, logger="sdk.decoders"):
        dets = dec({"o": out}, input_hw=HW, options=opts())
        dec({"o": out}, input_hw=HW, options=opts())
    np.testing.assert_array_equal(dets.xyxy, cxcywh_to_xyxy(BOXES))
    assert dec.nonfinite_dropped == 10                        # 5 rows, twice
    warnings = [r for r in caplog.records if "NaN/Inf" in r.getMessage()]
    assert len(warnings) == 1
    # all-NaN output: no crash, nothing detected
    assert len(dec({"o": np.full_like(out, np.nan)}, input_hw=HW, options=opts())) == 0


def test_yolo_huge_finite_values_are_not_counted_as_nonfinite():
    out = yolo_v8_output(BOXES, CLASSES, SCORES)
    out[0, :4, 60] = 3e38                 # the row sum overflows, the values do not
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=["a", "b", "c"])
    dec({"o": out}, input_hw=HW, options=opts())
    assert dec.nonfinite_dropped == 0


def test_yolo_wrong_shapes_raise_decode_error():
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=[str(i) for i in range(80)])
    with pytest.raises(DecodeError, match=r"expected \[1, 84, N\] or \[1, N, 84\].*got .*\[1, 85, 8400\].*v5"):
        dec({"o": np.zeros((1, 85, 8400), np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match=r"got .*\[2, 84, 8400\]"):
        dec({"o": np.zeros((2, 84, 8400), np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match=r"got .*\[84\]"):
        dec({"o": np.zeros(84, np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match="expected an output named 'nope'"):
        get_decoder({"type": "yolo", "output": "nope"}, output_names=["o"], labels=[])(
            {"o": np.zeros((1, 84, 10), np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match="expected at least one model output"):
        dec({}, input_hw=HW, options=opts())


def test_yolo_picks_the_fitting_output_among_several():
    out = yolo_v8_output(BOXES, CLASSES, SCORES)
    extra = np.zeros((1, 32, 160, 160), np.float32)
    dec = get_decoder({"type": "yolo"}, output_names=["protos", "output0"], labels=["a", "b", "c"])
    dets = dec({"protos": extra, "output0": out}, input_hw=HW, options=opts())
    assert len(dets) == 3
    named = get_decoder({"type": "yolo", "output": "output0"}, output_names=["protos", "output0"],
                        labels=["a", "b", "c"])
    assert len(named({"protos": extra, "output0": out}, input_hw=HW, options=opts())) == 3


def test_yolo_empty_when_nothing_passes():
    out = yolo_v8_output([], [], [])
    dec = get_decoder({"type": "yolo"}, output_names=["o"], labels=["a", "b", "c"])
    dets = dec({"o": out}, input_hw=HW, options=opts())
    assert len(dets) == 0 and dets.xyxy.shape == (0, 4) and dets.labels == ("a", "b", "c")


# --------------------------------------------------------------------------------------------------
# YOLO v5
# --------------------------------------------------------------------------------------------------


def test_yolo_v5_objectness_times_class():
    nc, n = 3, 50
    out = np.zeros((1, n, 5 + nc), np.float32)
    out[0, :, :4] = [320, 320, 10, 10]
    out[0, :, 4] = 0.01
    out[0, :, 5:] = 0.5
    out[0, 0] = [100, 100, 40, 60, 0.9, 0.1, 0.8, 0.2]        # 0.72, class 1
    out[0, 1] = [300, 200, 80, 40, 0.2, 0.99, 0.0, 0.0]       # obj too low: 0.198
    out[0, 2] = [500, 400, 20, 20, 0.5, 0.0, 0.0, 0.7]        # 0.35, class 2
    dec = get_decoder({"type": "yolo", "version": "v5"}, output_names=["o"], labels=["a", "b", "c"])
    dets = dec({"o": out}, input_hw=HW, options=opts())
    np.testing.assert_allclose(dets.confidence, [0.72, 0.35], rtol=1e-6)
    assert dets.class_id.tolist() == [1, 2]
    np.testing.assert_array_equal(dets.xyxy, cxcywh_to_xyxy([[100, 100, 40, 60], [500, 400, 20, 20]]))
    # channels-first v5 is recognised too
    dets_t = dec({"o": np.ascontiguousarray(out.transpose(0, 2, 1))}, input_hw=HW, options=opts())
    np.testing.assert_array_equal(dets_t.xyxy, dets.xyxy)
    # NaN objectness row and a candidate with a NaN class score: dropped and counted
    out[0, 3, 4] = np.nan
    out[0, 4] = [10, 10, 5, 5, 0.9, np.nan, 0.9, 0.1]
    dets = dec({"o": out}, input_hw=HW, options=opts())
    assert dec.nonfinite_dropped == 2 and len(dets) == 2
    with pytest.raises(DecodeError, match=r"\[1, 8, N\] or \[1, N, 8\].*got \[1, 50, 7\].*v8"):
        dec({"o": np.zeros((1, 50, 7), np.float32)}, input_hw=HW, options=opts())


# --------------------------------------------------------------------------------------------------
# End-to-end (NMS-free) heads
# --------------------------------------------------------------------------------------------------


def test_yolo_end2end():
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = [10, 20, 30, 40, 0.5, 2]
    rows[0, 1] = [50, 60, 70, 80, 0.9, 0]
    rows[0, 2] = [15, 25, 35, 45, 0.7, 1]         # overlaps row 0: no NMS, both kept
    rows[0, 3] = [1, 2, 3, 4, 0.2, 1]             # below threshold
    rows[0, 4] = [np.nan, 2, 3, 4, 0.99, 1]       # NaN
    dec = get_decoder({"type": "yolo_end2end"}, output_names=["o"], labels=["a", "b", "c"])
    dets = dec({"o": rows}, input_hw=HW, options=opts())
    np.testing.assert_array_equal(dets.xyxy, [[50, 60, 70, 80], [15, 25, 35, 45], [10, 20, 30, 40]])
    np.testing.assert_array_equal(dets.confidence, np.float32([0.9, 0.7, 0.5]))
    assert dets.class_id.tolist() == [0, 1, 2] and dec.nonfinite_dropped == 1
    assert dec({"o": rows}, input_hw=HW, options=opts(classes=[2])).class_id.tolist() == [2]
    assert len(dec({"o": rows}, input_hw=HW, options=opts(max_det=2))) == 2
    dets_t = dec({"o": rows.transpose(0, 2, 1)}, input_hw=HW, options=opts())
    np.testing.assert_array_equal(dets_t.xyxy, dets.xyxy)
    norm = rows.copy()
    norm[0, :, :4] /= 640
    dec_n = get_decoder({"type": "yolo_end2end", "normalized": True}, output_names=["o"], labels=[])
    np.testing.assert_allclose(dec_n({"o": norm}, input_hw=HW, options=opts()).xyxy, dets.xyxy, atol=1e-3)
    with pytest.raises(DecodeError, match=r"expected an output of shape \[1, K, 6\], got o \[1, 300, 7\]"):
        dec({"o": np.zeros((1, 300, 7), np.float32)}, input_hw=HW, options=opts())


# --------------------------------------------------------------------------------------------------
# SSD
# --------------------------------------------------------------------------------------------------


def make_anchors(n: int = 50, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0.1, 0.9, (n, 2)), rng.uniform(0.05, 0.4, (n, 2))], 1).astype(np.float32)


def test_ssd_zero_regression_returns_anchor_and_drops_background():
    anchors = make_anchors()
    n, c = len(anchors), 4                              # background + 3 classes
    reg = np.zeros((1, n, 4), np.float32)
    logits = np.full((1, n, c), -10.0, np.float32)
    logits[0, :, 0] = 10                                # background everywhere...
    logits[0, 7] = [-10, -10, 10, -10]                  # ...except anchor 7: column 2
    logits[0, 9] = [10, -10, -10, -10]
    spec = {"type": "ssd", "anchors": anchors.tolist()}
    dec = get_decoder(spec, output_names=["boxes", "scores"], labels=["cat", "dog", "car"])
    dets = dec({"boxes": reg, "scores": logits}, input_hw=(300, 400), options=opts())
    a = anchors[7]
    expected = [(a[0] - a[2] / 2) * 400, (a[1] - a[3] / 2) * 300, (a[0] + a[2] / 2) * 400, (a[1] + a[3] / 2) * 300]
    np.testing.assert_allclose(dets.xyxy, [np.clip(expected, 0, [400, 300, 400, 300])], atol=1e-3)
    assert dets.class_id.tolist() == [1] and dets.label == ["dog"]      # foreground index: column 2 → 1
    # labels that include the background: the score column is the class id
    dec_bg = get_decoder(spec, output_names=["boxes", "scores"], labels=["__background__", "cat", "dog", "car"])
    assert dec_bg({"boxes": reg, "scores": logits}, input_hw=(300, 400), options=opts()).label == ["dog"]
    # output order does not matter; with C == 4 too, the names tell boxes from scores
    dets2 = dec({"scores": logits, "boxes": reg}, input_hw=(300, 400), options=opts())
    np.testing.assert_array_equal(dets2.xyxy, dets.xyxy)
    with pytest.raises(DecodeError, match=r"exactly one output with last axis 4.*decoder.outputs"):
        dec({"out0": reg, "out1": logits}, input_hw=(300, 400), options=opts())


def test_ssd_matches_torchvision_box_coder():
    torch = pytest.importorskip("torch")
    from torchvision.models.detection._utils import BoxCoder
    from torchvision.ops import batched_nms as tv_batched_nms

    rng = np.random.default_rng(3)
    anchors = make_anchors(200, seed=4)
    h, w = 320, 320
    n, c = len(anchors), 6
    reg = rng.normal(0, 1.0, (1, n, 4)).astype(np.float32)
    reg[0, :5, 2:] = 40.0                                 # exercises the exp clamp
    logits = rng.normal(0, 2.0, (1, n, c)).astype(np.float32)
    dec = get_decoder({"type": "ssd", "anchors": anchors.tolist(), "variances": [0.1, 0.1, 0.2, 0.2]},
                      output_names=["b", "s"], labels=[])
    anchors_px = torch.tensor(cxcywh_to_xyxy(anchors) * np.float32([w, h, w, h]))
    coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    ref = coder.decode_single(torch.from_numpy(reg[0]), anchors_px).numpy()
    mine = dec.decode_boxes(reg[0], anchors, (h, w))
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-2)

    # the whole post-processing vs torchvision's SSD recipe (softmax, per-class threshold, clip, batched NMS)
    scores = torch.softmax(torch.from_numpy(logits[0]), -1)
    boxes = torch.from_numpy(ref).clamp(min=0)
    boxes[:, 0::2] = boxes[:, 0::2].clamp(max=w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(max=h)
    all_b, all_s, all_l = [], [], []
    for label in range(1, c):
        keep = scores[:, label] > 0.3
        all_b.append(boxes[keep])
        all_s.append(scores[keep, label])
        all_l.append(torch.full((int(keep.sum()),), label - 1))
    b, s, lab = torch.cat(all_b), torch.cat(all_s), torch.cat(all_l)
    keep = tv_batched_nms(b, s, lab, 0.45)[:100]
    got = dec({"b": reg, "s": logits}, input_hw=(h, w), options=opts(conf_threshold=0.3, max_det=100))
    assert len(got) == len(keep)
    np.testing.assert_allclose(got.xyxy, b[keep].numpy(), atol=1e-2)
    np.testing.assert_allclose(got.confidence, s[keep].numpy(), rtol=1e-5)
    np.testing.assert_array_equal(got.class_id, lab[keep].numpy())


def test_ssd_exp_is_clamped_like_torchvision():
    anchors = np.array([[0.5, 0.5, 0.1, 0.1]], np.float32)
    dec = get_decoder({"type": "ssd", "anchors": anchors.tolist()}, output_names=[], labels=[])
    box = dec.decode_boxes(np.array([[0, 0, 1000.0, 0]], np.float32), anchors, (100, 100))
    assert box[0, 2] - box[0, 0] == pytest.approx(10 * 1000 / 16, rel=1e-4)


def test_ssd_tf_order_sigmoid_and_named_outputs():
    anchors = make_anchors(20)
    yxhw = anchors[:, [1, 0, 3, 2]]
    reg_xywh = np.zeros((20, 4), np.float32)
    reg_xywh[3] = [1.0, -2.0, 0.5, -0.5]
    logits = np.full((1, 20, 3), -8.0, np.float32)
    logits[0, 3, 2] = 3.0
    spec = {"type": "ssd", "anchors": yxhw.tolist(), "anchor_order": "yxhw", "box_order": "yxhw",
            "score": "sigmoid", "background_class": None, "outputs": {"boxes": "loc", "scores": "cls"}}
    dec = get_decoder(spec, output_names=["loc", "cls"], labels=["a", "b", "c"])
    dets = dec({"loc": reg_xywh[None][:, :, [1, 0, 3, 2]], "cls": logits}, input_hw=(200, 200), options=opts())
    ref = get_decoder({"type": "ssd", "anchors": anchors.tolist()}, output_names=[], labels=[]).decode_boxes(
        reg_xywh[3:4], anchors[3:4], (200, 200))
    np.testing.assert_allclose(dets.xyxy, np.clip(ref, 0, 200), atol=1e-4)
    assert dets.class_id.tolist() == [2]
    np.testing.assert_allclose(dets.confidence, [1 / (1 + math.exp(-3))], rtol=1e-6)


def test_ssd_errors_and_nonfinite():
    with pytest.raises(ModelContractError, match="anchors"):
        get_decoder({"type": "ssd"}, output_names=[], labels=[])
    with pytest.raises(ModelContractError, match=r"expected shape \(N, 4\).*got \[3, 3\]"):
        get_decoder({"type": "ssd", "anchors": [[0, 0, 1]] * 3}, output_names=[], labels=[])
    with pytest.raises(ModelContractError, match="variances"):
        get_decoder({"type": "ssd", "anchors": [[0.5, 0.5, 1, 1]], "variances": [0.1, 0.2]}, output_names=[], labels=[])
    anchors = make_anchors(10)
    dec = get_decoder({"type": "ssd", "anchors": anchors.tolist()}, output_names=[], labels=[])
    with pytest.raises(DecodeError, match=r"expected boxes of shape \[1, 10, 4\] \(10 anchors\), got \[1, 12, 4\]"):
        dec({"b": np.zeros((1, 12, 4), np.float32), "s": np.zeros((1, 12, 3), np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match="expected two outputs"):
        dec({"b": np.zeros((1, 10, 4), np.float32)}, input_hw=HW, options=opts())
    reg = np.zeros((1, 10, 4), np.float32)
    logits = np.full((1, 10, 3), -5.0, np.float32)
    logits[0, :, 1] = 5
    reg[0, 2, 0] = np.nan
    logits[0, 4, 2] = np.inf
    dets = dec({"b": reg, "s": logits}, input_hw=HW, options=opts())
    assert len(dets) > 0 and dec.nonfinite_dropped == 2


# --------------------------------------------------------------------------------------------------
# TF Object Detection API (already post-processed)
# --------------------------------------------------------------------------------------------------


def tf_outputs(n: int = 10):
    boxes = np.zeros((1, n, 4), np.float32)
    boxes[0, 0] = [0.1, 0.2, 0.5, 0.6]       # ymin, xmin, ymax, xmax
    boxes[0, 1] = [0.3, 0.3, 0.9, 0.8]
    boxes[0, 2] = [0.0, 0.0, 0.1, 0.1]
    classes = np.zeros((1, n), np.float32)
    classes[0, :3] = [3, 1, 2]
    scores = np.zeros((1, n), np.float32)
    scores[0, :3] = [0.9, 0.6, 0.2]
    num = np.array([3.0], np.float32)
    return boxes, classes, scores, num


def test_tf_od_api_by_shape_in_any_order():
    boxes, classes, scores, num = tf_outputs()
    # TF2 → TFLite often scrambles the order: scores, boxes, num, classes
    outputs = {"StatefulPartitionedCall:0": scores, "StatefulPartitionedCall:1": boxes,
               "StatefulPartitionedCall:2": num, "StatefulPartitionedCall:3": classes}
    dec = get_decoder({"type": "tf_od_api"}, output_names=list(outputs), labels=list("abcd"))
    dets = dec(outputs, input_hw=(300, 400), options=opts())
    np.testing.assert_allclose(dets.xyxy, [[80, 30, 240, 150], [120, 90, 320, 270]], atol=1e-4)
    assert dets.class_id.tolist() == [3, 1]
    np.testing.assert_array_equal(dets.confidence, np.float32([0.9, 0.6]))
    dec1 = get_decoder({"type": "tf_od_api", "label_offset": 1}, output_names=list(outputs), labels=list("abc"))
    assert dec1(outputs, input_hw=(300, 400), options=opts()).class_id.tolist() == [2, 0]


def test_tf_od_api_by_name_num_detections_and_filters():
    boxes, classes, scores, num = tf_outputs()
    num = np.array(2.0, np.float32)                     # scalar, and fewer than the rows with scores
    scores[0, 2] = 0.8
    outputs = {"detection_scores": scores, "detection_boxes": boxes, "num_detections": num,
               "detection_classes": classes}
    dec = get_decoder({"type": "tf_od_api"}, output_names=[], labels=[])
    assert len(dec(outputs, input_hw=HW, options=opts())) == 2
    assert dec(outputs, input_hw=HW, options=opts(classes=[1])).class_id.tolist() == [1]
    assert len(dec(outputs, input_hw=HW, options=opts(max_det=1))) == 1


def test_tf_od_api_explicit_names_and_errors():
    boxes, classes, scores, num = tf_outputs()
    spec = {"type": "tf_od_api", "outputs": {"boxes": "b", "classes": "c", "scores": "s", "num_detections": "n"}}
    dec = get_decoder(spec, output_names=[], labels=[])
    assert len(dec({"b": boxes, "c": classes, "s": scores, "n": num}, input_hw=HW, options=opts())) == 2
    with pytest.raises(DecodeError, match="expected an output named 'n'"):
        dec({"b": boxes, "c": classes, "s": scores}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match=r"expected classes of shape \[1, 10\].*got \[1, 9\]"):
        dec({"b": boxes, "c": classes[:, :9], "s": scores, "n": num}, input_hw=HW, options=opts())
    with pytest.raises(ModelContractError, match="outputs"):
        get_decoder({"type": "tf_od_api", "outputs": {"boxes": "b"}}, output_names=[], labels=[])
    auto = get_decoder({"type": "tf_od_api"}, output_names=[], labels=[])
    with pytest.raises(DecodeError, match=r"expected boxes \[1, N, 4\].*got"):
        auto({"x": scores, "y": classes}, input_hw=HW, options=opts())


def test_tf_od_api_nonfinite_rows():
    boxes, classes, scores, num = tf_outputs()
    boxes[0, 1, 0] = np.nan
    dec = get_decoder({"type": "tf_od_api"}, output_names=[], labels=[])
    dets = dec({"a": boxes, "b": classes, "c": scores, "d": num}, input_hw=HW, options=opts())
    assert len(dets) == 1 and dec.nonfinite_dropped == 1


# --------------------------------------------------------------------------------------------------
# Classifier and embedding
# --------------------------------------------------------------------------------------------------


def test_classifier_softmax_top_k():
    logits = np.array([[1.0, 3.0, 0.5, 2.0, -1.0, 2.5]], np.float32)
    dec = get_decoder({"type": "classifier"}, output_names=["o"], labels=list("abcdef"))
    res = dec({"o": logits}, input_hw=(224, 224), options=opts(top_k=3))
    assert isinstance(res, Classification)
    assert res.class_id.tolist() == [1, 5, 3] and res.label == ["b", "f", "d"]
    e = np.exp(logits[0] - logits.max())
    np.testing.assert_allclose(res.confidence, (e / e.sum())[[1, 5, 3]], rtol=1e-6)
    assert len(dec({"o": logits[0]}, input_hw=(224, 224), options=opts(top_k=100))) == 6


def test_classifier_sigmoid_none_and_errors():
    logits = np.array([[0.0, 2.0, -2.0]], np.float32)
    sig = get_decoder({"type": "classifier", "activation": "sigmoid"}, output_names=[], labels=[])
    np.testing.assert_allclose(sig({"o": logits}, input_hw=HW, options=opts(top_k=1)).confidence,
                               [1 / (1 + math.exp(-2))], rtol=1e-6)
    raw = get_decoder({"type": "classifier", "activation": "none"}, output_names=[], labels=[])
    np.testing.assert_array_equal(raw({"o": logits}, input_hw=HW, options=opts(top_k=3)).confidence, [2, 0, -2])
    bad = logits.copy()
    bad[0, 1] = np.nan
    with pytest.raises(DecodeError, match=r"produced NaN/Inf.*quantisation"):
        sig({"o": bad}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match=r"expected logits of shape \[1, C\].*got \[2, 3\]"):
        sig({"o": np.zeros((2, 3), np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(ModelContractError, match="softmax"):
        get_decoder({"type": "classifier", "activation": "softmx"}, output_names=[], labels=[])


def test_embedding():
    dec = get_decoder({"type": "embedding"}, output_names=["e"], labels=[])
    emb = dec({"e": np.array([[3.0, 4.0]], np.float32)}, input_hw=HW, options=opts())
    assert isinstance(emb, Embedding) and dec.task == "embed"
    np.testing.assert_allclose(emb.vector, [0.6, 0.8])
    assert len(dec({"e": np.ones((1, 8, 1, 1), np.float32)}, input_hw=HW, options=opts())) == 8
    with pytest.raises(DecodeError, match="produced NaN"):
        dec({"e": np.array([[np.nan, 1.0]], np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match="non-zero"):
        dec({"e": np.zeros((1, 4), np.float32)}, input_hw=HW, options=opts())
    with pytest.raises(DecodeError, match=r"got \[2, 4\]"):
        dec({"e": np.ones((2, 4), np.float32)}, input_hw=HW, options=opts())
