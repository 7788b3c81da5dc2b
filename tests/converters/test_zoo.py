"""Tests of converters.zoo: builders, export graphs, contracts, losses and weights loading.

References: torchvision's own SSD post-processing for the SSD-Lite split, ``torchvision.ops`` for box IoU,
onnxruntime for every exported graph, brute-force loops for the metric-learning losses.
Small inputs keep the whole file well under a minute and a half on two cores.
"""
from __future__ import annotations

import io
import logging
import sys
import types
import warnings
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

from converters.zoo import FAMILIES, build_model  # noqa: E402
from converters.zoo.siamese import ContrastiveLoss, TripletLoss  # noqa: E402
from converters.zoo.weights import (LoadReport, WeightsError, WeightsFileNotFoundError, load_checkpoint,  # noqa: E402
                                    load_model, load_weights, save_checkpoint)
from converters.zoo.yolo_loss import TaskAlignedAssigner, bbox_iou  # noqa: E402
from sdk.contract import ModelContract  # noqa: E402
from sdk.decoders import PostprocessOptions, get_decoder  # noqa: E402


@pytest.fixture(autouse=True)
def _ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use sdk.ops when it exists; otherwise a test-only stand-in built on torchvision.ops (same API)."""
    try:
        from sdk.ops import batched_nms, nms  # noqa: F401
    except ImportError:
        from torchvision.ops import batched_nms as tv_batched_nms, nms as tv_nms

        fake = types.ModuleType("sdk.ops")
        def nms(b: np.ndarray, s: np.ndarray, t: float) -> np.ndarray:
            return tv_nms(torch.as_tensor(b), torch.as_tensor(s), float(t)).numpy()

        def batched_nms(b: np.ndarray, s: np.ndarray, c: np.ndarray, t: float) -> np.ndarray:
            return tv_batched_nms(torch.as_tensor(b), torch.as_tensor(s), torch.as_tensor(c), float(t)).numpy()

        fake.nms, fake.batched_nms = nms, batched_nms  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "sdk.ops", fake)


@pytest.fixture(autouse=True, scope="module")
def _threads() -> Any:
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, old))
    yield
    torch.set_num_threads(old)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------

#: small configurations of every family (fast on CPU)
SMALL: Dict[str, Dict[str, Any]] = {
    "mobilenet": dict(variant="v3_small", num_classes=5, input_size=64),
    "mobilenet_v2": dict(variant="v2", num_classes=5, input_size=64, width_mult=0.5),
    "ssdlite": dict(variant="v3_large", num_classes=3, input_size=128),
    "ssdlite_v2": dict(variant="v2", num_classes=3, input_size=128),
    "yolo_nano": dict(num_classes=3, input_size=64),
    "yolo_nano_e2e": dict(num_classes=3, input_size=64, end2end=True),
    "siamese": dict(input_size=64, embedding_dim=32),
}


def family_of(case: str) -> str:
    return next(f for f in FAMILIES if case.startswith(f))


def calibrate_bn(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``x`` (one train-mode pass, no grad).

    Freshly initialised networks in eval mode collapse to near-constant outputs; calibrated ones give
    varied activations, so export comparisons and decoders see realistic, non-degenerate values.
    """
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    was = model.training
    model.train()
    with torch.no_grad():
        if getattr(model, "family", "") == "ssdlite":
            model.backbone(x)
        else:
            model(x)
    model.train(was)


def build_small(case: str, seed: int = 0) -> torch.nn.Module:
    model = build_model(family_of(case), seed=seed, **SMALL[case])
    torch.manual_seed(seed)
    calibrate_bn(model, model.example_input(4) * 2 - 0.5)
    return model.eval()


def export_onnx(module: torch.nn.Module, x: torch.Tensor, output_names: List[str], *, dynamic: bool = True) -> bytes:
    buf = io.BytesIO()
    axes = {"images": {0: "batch"}, **{n: {0: "batch"} for n in output_names}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buf, input_names=["images"], output_names=output_names, opset_version=17,
                          dynamic_axes=axes, dynamo=False)
    return buf.getvalue()


def run_onnx(blob: bytes, x: np.ndarray) -> Tuple[List[str], List[np.ndarray]]:
    import onnxruntime as ort

    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["images"]
    return [o.name for o in sess.get_outputs()], sess.run(None, {"images": x})


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return torchvision.ops.box_iou(torch.as_tensor(a, dtype=torch.float64),
                                   torch.as_tensor(b, dtype=torch.float64)).numpy()


# --------------------------------------------------------------------------------------------------
# registry and builders
# --------------------------------------------------------------------------------------------------


def test_families_and_unknown_family_lists_known_ones():
    assert FAMILIES == ("mobilenet", "ssdlite", "yolo_nano", "siamese")
    with pytest.raises(ValueError, match=r"unknown model family 'yolo_nan' \(did you mean 'yolo_nano'\?\); "
                                         r"known families: mobilenet, ssdlite, yolo_nano, siamese"):
        build_model("yolo_nan")
    with pytest.raises(TypeError):
        build_model("mobilenet", no_such_argument=1)
    with pytest.raises(TypeError):                               # keyword-only builders
        from converters.zoo.mobilenet import build_mobilenet
        build_mobilenet("v2")  # type: ignore[misc]


@pytest.mark.parametrize("family, kwargs, message", [
    ("mobilenet", dict(variant="v4_small"),
     r"variant: expected one of .* got 'v4_small' \(did you mean 'v3_small'\?\)"),
    ("mobilenet", dict(width_mult=0), r"width_mult: expected a number > 0, got 0"),
    ("mobilenet", dict(num_classes=3, labels=["a", "b"]), r"labels: expected 3 names"),
    ("ssdlite", dict(input_size=32), r"input_size: expected sides >= 64"),
    ("ssdlite", dict(anchor_scales=(0.5, 0.2)), r"anchor_scales: expected \(min_ratio, max_ratio\) with 0 < min"),
    ("ssdlite", dict(anchor_scales=[0.1]), r"anchor_scales: expected .* got \[0.1\]"),
    ("yolo_nano", dict(input_size=300), r"input_size: expected sides >= 64 and multiples of 32, got 300"),
    ("yolo_nano", dict(act="gelu"), r"act: expected one of"),
    ("yolo_nano", dict(max_det=0), r"max_det: expected an int >= 1, got 0"),
    ("siamese", dict(loss="arcface"), r"loss: expected one of 'contrastive', 'triplet'"),
])
def test_builder_argument_errors(family: str, kwargs: Dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        build_model(family, **kwargs)


@pytest.mark.parametrize("family, kwargs, lo, hi", [
    ("yolo_nano", {}, 1.0e6, 3.0e6),                  # the nano target at the default width (0.25)
    ("yolo_nano", {"end2end": True}, 1.0e6, 3.0e6),
    ("mobilenet", {"variant": "v3_small"}, 0.9e6, 1.7e6),
    ("mobilenet", {"variant": "v2"}, 2.0e6, 2.5e6),
    ("ssdlite", {}, 2.0e6, 2.6e6),                    # torchvision's 3.44 M is with 91 classes
    ("ssdlite", {"variant": "v2"}, 2.8e6, 3.5e6),
    ("siamese", {}, 0.8e6, 1.2e6),
])
def test_parameter_counts(family: str, kwargs: Dict[str, Any], lo: float, hi: float):
    model = build_model(family, **kwargs)
    assert lo <= model.num_parameters <= hi, model.num_parameters


def test_default_labels_are_the_synthetic_shapes():
    from sdk.synthetic import CLASSES

    model = build_model("yolo_nano", input_size=64)
    assert model.num_classes == len(CLASSES) and model.labels == tuple(CLASSES)
    assert build_model("mobilenet", num_classes=3, input_size=64).labels == ()
    assert build_model("ssdlite", labels=["a", "b"], input_size=64).num_classes == 2


def test_config_rebuilds_the_same_architecture():
    for case in ("mobilenet", "ssdlite_v2", "yolo_nano_e2e", "siamese"):
        model = build_model(family_of(case), seed=1, **SMALL[case])
        again = build_model(model.family, seed=1, **model.config)
        a, b = model.state_dict(), again.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), case


def test_seeded_builds_are_deterministic_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    m1 = build_model("yolo_nano", seed=7, input_size=64)
    assert torch.equal(torch.rand(3), expected)               # fork_rng: global stream untouched
    m2 = build_model("yolo_nano", seed=7, input_size=64)
    m3 = build_model("yolo_nano", seed=8, input_size=64)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(m1.eval().predict(x), m2.eval().predict(x))


def test_mobilenet_keys_match_torchvision_and_head_reset():
    model = build_model("mobilenet", variant="v3_small", num_classes=4, input_size=64)
    ref = torchvision.models.mobilenet_v3_small(weights=None, num_classes=4)
    assert list(model.state_dict()) == list(ref.state_dict())
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    model.reset_classifier(7, labels=[str(i) for i in range(7)])
    assert model(torch.rand(2, 3, 64, 64)).shape == (2, 7) and model.config["num_classes"] == 7


def test_ssdlite_v3_is_weight_for_weight_torchvision_ssdlite320():
    from torchvision.models.detection import ssdlite320_mobilenet_v3_large

    model = build_model("ssdlite", seed=0, num_classes=4)
    torch.manual_seed(0)
    ref = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=5)
    a, b = model.state_dict(), ref.state_dict()
    assert list(a) == list(b)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert model.num_anchors == 3234 and model.grid_sizes[0] == (20, 20)


def test_freeze_backbone_keeps_batchnorm_in_eval():
    model = build_model("yolo_nano", input_size=64)
    model.freeze_backbone()
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    assert not model.backbone.training and model.neck.training
    model.freeze_backbone(False)
    assert all(p.requires_grad for p in model.parameters()) and model.backbone.training


# --------------------------------------------------------------------------------------------------
# shapes in training and export modes
# --------------------------------------------------------------------------------------------------


def test_output_shapes_train_and_export():
    x = torch.rand(2, 3, 64, 64)
    # classifier
    cls = build_model("mobilenet", **SMALL["mobilenet"])
    assert cls(x).shape == (2, 5) and cls.export_module()(x).shape == (2, 5)
    # siamese: unit-norm embeddings
    sia = build_model("siamese", **SMALL["siamese"]).eval()
    emb = sia(x)
    assert emb.shape == (2, 32) and torch.allclose(emb.norm(dim=1), torch.ones(2), atol=1e-5)
    a, b = sia.forward_pair(x, x.flip(0))
    assert torch.allclose(a, emb, atol=1e-6) and torch.allclose(b, emb.flip(0), atol=1e-6)
    # yolo: raw levels in training, decoded layouts in export mode
    yolo = build_model("yolo_nano", **SMALL["yolo_nano_e2e"])
    raw = yolo.train()(x)
    assert set(raw) == {"one2many", "one2one"}
    assert [tuple(t.shape) for t in raw["one2many"]] == [(2, 7, 8, 8), (2, 7, 4, 4), (2, 7, 2, 2)]
    assert yolo.decode(raw).shape == (2, 7, 84)
    yolo.export_mode(True)
    assert not yolo.training and yolo(x).shape == (2, 84, 6)            # K = min(max_det, N)
    assert yolo.export_mode(True, head="one2many")(x).shape == (2, 7, 84)
    assert yolo.export_module(head="one2one")(x).shape == (2, 84, 6)
    yolo.export_mode(False)
    assert isinstance(yolo(x), dict)
    with pytest.raises(ValueError, match="end2end=True"):
        build_model("yolo_nano", input_size=64).export_mode(True, head="one2one")
    # ssd: export split and torchvision training losses
    ssd = build_model("ssdlite", **SMALL["ssdlite"])
    reg, logits = ssd.export_module()(torch.rand(2, 3, 128, 128))
    n = ssd.num_anchors
    assert reg.shape == (2, n, 4) and logits.shape == (2, n, 4) and ssd.anchors_cxcywh().shape == (n, 4)
    ssd.train()
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]]), "labels": torch.tensor([2])}] * 2
    losses = ssd(list(torch.rand(2, 3, 128, 128)), targets)
    assert set(losses) == {"bbox_regression", "classification"} and all(torch.isfinite(v) for v in losses.values())


# --------------------------------------------------------------------------------------------------
# ONNX export and contracts
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(SMALL))
def test_onnx_export_matches_torch_and_loads_with_sdk(case: str, tmp_path):
    import json

    import onnx

    import sdk

    model = build_small(case)
    module = model.export_module()
    x = model.example_input(2)
    names = list(model.output_names)
    blob = export_onnx(module, x[:1], names)
    out_names, got = run_onnx(blob, x.numpy())                                  # traced at batch 1, run at 2
    # the contract embedded in the file is all sdk.load needs
    proto = onnx.load_from_string(blob)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "edgesdk_contract", json.dumps(model.contract_spec())
    onnx.save(proto, str(tmp_path / "model.onnx"))
    result = sdk.load(tmp_path / "model.onnx")(np.random.default_rng(0).integers(0, 256, (90, 120, 3), np.uint8))
    assert type(result).__name__ == {"detect": "Detections", "classify": "Classification",
                                     "embed": "Embedding"}[model.contract_spec()["task"]]
    with torch.no_grad():
        ref = module(x)
    ref = [t.numpy() for t in (ref if isinstance(ref, tuple) else (ref,))]
    assert out_names == names
    assert [g.shape for g in got] == [r.shape for r in ref]
    if case.startswith("yolo_nano"):
        size = float(max(model.input_hw))
        g, r = got[0], ref[0]
        if case.endswith("e2e"):
            # K = N here, so both hold every anchor; rows may swap order on near-equal scores: match them
            g, r = g.reshape(-1, 6), r.reshape(-1, 6)
            d = np.abs(g[:, None, :4] - r[None, :, :4]).max(-1) / size + np.abs(g[:, None, 4] - r[None, :, 4])
            j = d.argmin(1)
            assert len(set(j.tolist())) == len(j)
            r = r[j]
            np.testing.assert_array_equal(g[:, 5], r[:, 5])
            box_axis, score_axis = (slice(None), slice(0, 4)), (slice(None), slice(4, 5))
        else:
            box_axis, score_axis = (slice(None), slice(0, 4)), (slice(None), slice(4, None))
        # boxes are in input pixels: 1e-4 of the input size; scores 1e-4
        np.testing.assert_allclose(g[box_axis] / size, r[box_axis] / size, atol=1e-4, rtol=0)
        np.testing.assert_allclose(g[score_axis], r[score_axis], atol=1e-4, rtol=0)
    else:
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r, atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", list(SMALL))
def test_contract_spec_validates_and_builds_its_decoder(case: str):
    model = build_model(family_of(case), **SMALL[case])
    spec = model.contract_spec()
    contract = ModelContract.from_dict(spec)
    assert contract.outputs == model.output_names and contract.input.name == "images"
    assert contract.input.size_hw == model.input_hw and contract.input.layout == "NCHW"
    assert contract.extra["zoo"]["family"] == model.family
    decoder = get_decoder(contract.decoder, output_names=contract.outputs, labels=contract.labels)
    expected = {"mobilenet": ("classify", "classifier", "stretch"), "siamese": ("embed", "embedding", "stretch"),
                "ssdlite": ("detect", "ssd", "stretch"), "yolo_nano": ("detect", "yolo", "letterbox")}[model.family]
    task, dec, resize = expected
    if case == "yolo_nano_e2e":
        dec = "yolo_end2end"
    assert (contract.task, contract.decoder["type"], contract.input.resize) == (task, dec, resize)
    assert decoder.task == task
    if model.family == "ssdlite":
        assert len(contract.decoder["anchors"]) == model.num_anchors
        assert contract.input.mean == (0.5, 0.5, 0.5) and contract.input.std == (0.5, 0.5, 0.5)
    if model.family in ("mobilenet", "siamese"):
        assert contract.input.mean == (0.485, 0.456, 0.406)
    # NHWC / dynamic batch variants for converters that put the transpose in the graph
    nhwc = ModelContract.from_dict(model.contract_spec(layout="NHWC", batch=None))
    assert nhwc.input.shape == (None, *model.input_hw, 3)


def test_yolo_contract_variants():
    model = build_model("yolo_nano", **SMALL["yolo_nano_e2e"])
    assert model.contract_spec()["decoder"] == {"type": "yolo_end2end", "output": "output0"}
    spec = model.contract_spec(head="one2many", normalized=True)
    assert spec["decoder"] == {"type": "yolo", "version": "v8", "num_classes": 3, "output": "output0",
                               "normalized": True}
    ModelContract.from_dict(spec)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        px = model.export_module(head="one2many")(x)
        norm = model.export_module(head="one2many", normalized=True)(x)
    torch.testing.assert_close(norm[:, :4] * 64, px[:, :4], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(norm[:, 4:], px[:, 4:])


# --------------------------------------------------------------------------------------------------
# SSD-Lite: torchvision's post-processing vs sdk's ssd decoder on the export split
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant, size, scales, stride8", [("v3_large", 320, (0.2, 0.95), False),
                                                            ("v2", 256, (0.2, 0.95), False),
                                                            ("v3_large", 320, (0.05, 0.7), False),
                                                            ("v3_large", 320, (0.05, 0.7), True),
                                                            ("v3_large", 320, (0.05, 0.7), "topdown")])
def test_ssdlite_export_decoded_by_sdk_matches_torchvision(variant: str, size: int, scales, stride8):
    """The contract's anchors are the model's own default boxes, whatever its anchor scales and maps."""
    from sdk.preprocess import PreprocessConfig, Preprocessor

    model = build_model("ssdlite", seed=0, variant=variant, num_classes=3, input_size=size, anchor_scales=scales,
                        stride8=stride8)
    assert model.config["anchor_scales"] == list(scales) and model.config.get("stride8", False) == stride8
    assert build_model("ssdlite", **model.config).anchors_cxcywh().equal(model.anchors_cxcywh())
    torch.manual_seed(0)
    calibrate_bn(model, torch.rand(4, 3, size, size) * 2 - 1)
    with torch.no_grad():                          # random heads with a real spread of scores and box offsets
        for block in model.head.classification_head.module_list:
            block[1].weight.mul_(25.0)
        for block in model.head.regression_head.module_list:
            block[1].weight.mul_(30.0)
    score_thresh, nms_thresh = 0.6, 0.5
    model.eval()
    model.score_thresh, model.nms_thresh, model.detections_per_img = score_thresh, nms_thresh, 1000
    model.topk_candidates = model.num_anchors      # torchvision caps candidates per class; sdk caps overall

    frame = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)   # BGR, network size
    with torch.no_grad():
        ref = model([torch.from_numpy(frame[..., ::-1].copy()).permute(2, 0, 1).float() / 255.0])[0]

    contract = ModelContract.from_dict(model.contract_spec())
    inp = contract.input
    pre = Preprocessor(PreprocessConfig(size_hw=inp.size_hw, resize=inp.resize, color=inp.color, scale=inp.scale,
                                        mean=inp.mean, std=inp.std))
    x, _ = pre(frame)
    with torch.no_grad():
        reg, logits = model.export_module()(torch.from_numpy(x))
    decoder = get_decoder(contract.decoder, output_names=contract.outputs, labels=contract.labels)
    dets = decoder({"bbox_regression": reg.numpy(), "cls_logits": logits.numpy()}, input_hw=inp.size_hw,
                   options=PostprocessOptions(conf_threshold=score_thresh, iou_threshold=nms_thresh, max_det=1000))

    n_ref = len(ref["boxes"])
    assert 50 <= n_ref < 1000, n_ref               # enough detections to mean something, below the cap
    assert len(dets) == n_ref
    iou = iou_matrix(dets.xyxy, ref["boxes"].numpy())
    same_class = (dets.class_id[:, None] + 1) == ref["labels"].numpy()[None, :]   # torchvision labels are 1..C
    close_score = np.abs(dets.confidence[:, None] - ref["scores"].numpy()[None, :]) < 1e-4
    match = np.where(same_class & close_score, iou, 0.0)
    best = match.argmax(1)
    assert len(set(best.tolist())) == n_ref        # one-to-one
    assert match[np.arange(n_ref), best].min() >= 0.99


# --------------------------------------------------------------------------------------------------
# YOLO-nano: loss pieces, overfit sanity check, end-to-end head
# --------------------------------------------------------------------------------------------------


def test_bbox_iou_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 100
    a = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    xy = torch.rand(50, 2, generator=g) * 100
    b = torch.cat([xy, xy + 5 + torch.rand(50, 2, generator=g) * 50], 1)
    ops = torchvision.ops
    torch.testing.assert_close(bbox_iou(a, b, kind="iou"), ops.box_iou(a, b).diagonal(), atol=1e-5, rtol=0)
    torch.testing.assert_close(bbox_iou(a, b, kind="giou"), ops.generalized_box_iou(a, b).diagonal(), atol=1e-5, rtol=0)
    torch.testing.assert_close(bbox_iou(a, b, kind="ciou"), ops.complete_box_iou(a, b).diagonal(), atol=1e-4, rtol=0)
    assert torch.allclose(bbox_iou(a, a), torch.ones(50), atol=1e-5)


def test_task_aligned_assigner_picks_inside_anchors_and_topk():
    points = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="xy"), -1).reshape(-1, 2) * 8 + 4
    n = len(points)
    gt = torch.tensor([[[0.0, 0.0, 32.0, 32.0], [40.0, 40.0, 64.0, 56.0]]])
    labels = torch.tensor([[1, 0]])
    pd_boxes = torch.cat([points - 6, points + 6], 1)[None]
    pd_scores = torch.full((1, n, 2), 0.5)
    for topk, per_box in ((10, (10, 6)), (1, (1, 1))):
        boxes, scores, fg = TaskAlignedAssigner(2, topk=topk)(pd_scores, pd_boxes, points, labels, gt,
                                                             torch.ones(1, 2, dtype=torch.bool))
        pos = points[fg[0]]
        in1 = (pos < 32).all(1)
        in2 = (pos[:, 0] > 40) & (pos[:, 1] > 40) & (pos[:, 1] < 56)
        assert bool((in1 | in2).all())                                # only anchors inside a box
        assert (int(in1.sum()), int(in2.sum())) == per_box            # box 2 has 6 inside anchors
        assert bool((scores[0, fg[0]].argmax(1) == torch.where(in1, 1, 0)).all())
        assert float(scores.max()) <= 1.0 and bool((scores[0, ~fg[0]] == 0).all())
    empty = TaskAlignedAssigner(2)(pd_scores, pd_boxes, points, labels[:, :0], gt[:, :0],
                                   torch.ones(1, 0, dtype=torch.bool))
    assert not bool(empty[2].any())


def test_task_aligned_assigner_gives_tiny_boxes_a_candidate():
    """A 4 px object between stride-8 anchor centres contains none: the strict rule never learns it; min_box
    widens it about its centre for the candidate test only (the target stays the true box)."""
    points = torch.stack(torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="xy"), -1).reshape(-1, 2) * 8 + 4
    n = len(points)
    gt = torch.tensor([[[13.0, 13.0, 17.0, 17.0], [32.0, 32.0, 64.0, 64.0]]])   # tiny box between 12 and 20
    labels = torch.tensor([[0, 1]])
    pd_boxes = torch.cat([points - 3, points + 3], 1)[None]
    pd_scores = torch.full((1, n, 2), 0.5)
    real = torch.ones(1, 2, dtype=torch.bool)
    strict = TaskAlignedAssigner(2, topk=1)(pd_scores, pd_boxes, points, labels, gt, real)
    widened = TaskAlignedAssigner(2, topk=1, min_box=10.0)(pd_scores, pd_boxes, points, labels, gt, real)
    tiny_strict = strict[0][0][strict[2][0]]
    assert not bool((tiny_strict == gt[0, 0]).all(1).any())            # the strict rule: no anchor for it
    tb, fg = widened[0][0], widened[2][0]
    hit = (tb == gt[0, 0]).all(1) & fg
    assert int(hit.sum()) == 1 and points[hit].tolist() == [[12.0, 12.0]]   # the nearest centre, true box target
    assert bool(((tb == gt[0, 1]).all(1) & fg).any())                  # the big box is assigned as before
    with pytest.raises(ValueError, match="min_box"):
        TaskAlignedAssigner(2, min_box=-1.0)


def test_yolo_p2_adds_a_stride4_level_and_loads_plain_weights(tmp_path):
    """p2: a stride-4 level appended after P3-P5, which stay exactly as without it, so a plain model's weights
    load into it (only the new modules are missing) and its predictions carry over; the ONNX export, the
    loss (tiny boxes reach the new level) and the checkpoint round trip all see four levels."""
    plain = build_small("yolo_nano_e2e")
    path = save_checkpoint(tmp_path / "plain.pt", plain)
    p2 = build_model("yolo_nano", seed=1, p2=True, **SMALL["yolo_nano_e2e"])
    assert p2.strides == (8, 16, 32, 4) and p2.config["p2"] is True and "p2" not in plain.config
    report = load_weights(p2, path, strict=False)
    new = ("neck.td2.", "head.box.3.", "head.cls.3.", "one2one_head.box.3.", "one2one_head.cls.3.")
    assert report.missing and all(k.startswith(new) for k in report.missing) and not report.unexpected
    assert not report.skipped
    x = plain.example_input(2)
    with torch.no_grad():
        a, b = plain(x), p2.eval()(x)
    for head in ("one2many", "one2one"):
        assert [tuple(t.shape[-2:]) for t in b[head]] == [(8, 8), (4, 4), (2, 2), (16, 16)]
        for la, lb in zip(a[head], b[head][:3]):
            torch.testing.assert_close(la, lb, rtol=0, atol=0)
        # the untrained level starts at the class prior: it adds no confident detections
        assert float(b[head][3][:, 4:].sigmoid().max()) < 0.01
    module = p2.export_module(head="one2many")
    _, (got,) = run_onnx(export_onnx(module, x, ["output0"]), x.numpy())
    with torch.no_grad():
        ref = module(x).numpy()
    assert got.shape == ref.shape == (2, 4 + 3, 64 + 16 + 4 + 256)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)          # boxes in pixels, scores in 0..1
    # a 3 px object: the loss reaches the stride-4 level's box branch through its assigned anchor
    loss_fn = p2.loss()
    assert loss_fn.strides == (8, 16, 32, 4)
    p2.train()
    loss, _ = loss_fn(p2(x), [{"boxes": torch.tensor([[30.0, 30.0, 33.0, 33.0]]), "labels": torch.tensor([1])}] * 2)
    loss.backward()
    assert float(p2.head.box[3][2].weight.grad.abs().sum()) > 0
    # the checkpoint says p2, so load_model rebuilds the four levels
    back = load_model(save_checkpoint(tmp_path / "p2.pt", p2.eval())).eval()
    assert back.strides == (8, 16, 32, 4)
    with torch.no_grad():
        torch.testing.assert_close(back.predict(x), p2.predict(x))
    with pytest.raises(ValueError, match="p2: expected True or False"):
        build_model("yolo_nano", p2="yes", **SMALL["yolo_nano"])


def test_yolo_loss_handles_images_without_objects_and_bad_targets():
    model = build_model("yolo_nano", seed=0, **SMALL["yolo_nano_e2e"])
    loss_fn = model.loss()
    out = model.train()(torch.rand(2, 3, 64, 64))
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
               {"boxes": torch.tensor([[8.0, 8.0, 40.0, 30.0]]), "labels": torch.tensor([2])}]
    loss, parts = loss_fn(out, targets)
    loss.backward()
    assert torch.isfinite(loss) and {"box", "l1", "cls", "o2o_box", "o2o_cls", "loss"} <= set(parts)
    assert model.one2one_head.cls[0][2].weight.grad is not None
    assert model.backbone.stem[0].weight.grad is not None
    with pytest.raises(ValueError, match=r"targets\[0\]: expected boxes \[n, 4\] and labels \[n\]"):
        loss_fn(model(torch.rand(1, 3, 64, 64)), [{"boxes": torch.zeros(2, 4), "labels": torch.zeros(3)}])
    with pytest.raises(ValueError, match="expected 2 entries"):
        loss_fn(out, targets[:1])


def _toy_batch(size: int) -> Tuple[torch.Tensor, List[Dict[str, torch.Tensor]]]:
    """Two images with coloured rectangles (class = colour) on a dark noisy background."""
    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, size, size, generator=g) * 0.3
    colours = torch.tensor([[1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.1, 0.1, 1.0]])
    boxes = [[[8, 10, 40, 48], [54, 16, 88, 80]], [[24, 24, 72, 56], [4, 62, 32, 94], [70, 70, 94, 92]]]
    labels = [[0, 1], [2, 0, 1]]
    targets = []
    for i, (bx, lb) in enumerate(zip(boxes, labels)):
        for (x1, y1, x2, y2), c in zip(bx, lb):
            images[i, :, y1:y2, x1:x2] = colours[c][:, None, None]
        targets.append({"boxes": torch.tensor(bx, dtype=torch.float32), "labels": torch.tensor(lb)})
    return images, targets


def test_yolo_overfits_one_batch_and_sdk_decodes_the_boxes():
    size = 96
    images, targets = _toy_batch(size)
    model = build_model("yolo_nano", seed=0, num_classes=3, input_size=size)
    loss_fn = model.loss()
    opt = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.0)
    model.train()
    first = None
    for _ in range(60):
        loss, parts = loss_fn(model(images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = parts["loss"] if first is None else first
    assert parts["loss"] < 0.25 * first
    calibrate_bn(model, images)                    # running statistics of this batch (60 steps are too few)
    model.export_mode(True)
    with torch.no_grad():
        out = model(images).numpy()                # [2, 4 + 3, N]
    contract = ModelContract.from_dict(model.contract_spec(labels=["red", "green", "blue"]))
    decoder = get_decoder(contract.decoder, output_names=contract.outputs, labels=contract.labels)
    for i, t in enumerate(targets):
        dets = decoder({"output0": out[i:i + 1]}, input_hw=(size, size),
                       options=PostprocessOptions(conf_threshold=0.3, iou_threshold=0.5))
        gt = t["boxes"].numpy()
        assert len(dets) >= len(gt)
        iou = iou_matrix(gt, dets.xyxy)
        same = t["labels"].numpy()[:, None] == dets.class_id[None, :]
        assert (np.where(same, iou, 0).max(1) > 0.5).all(), (iou, dets.class_id)


def test_yolo_end2end_export_shapes_and_decoder():
    model = build_small("yolo_nano_e2e")
    model.max_det = 10
    x = model.example_input(1)
    module = model.export_module()
    names, (got,) = run_onnx(export_onnx(module, x, ["output0"], dynamic=False), x.numpy())
    with torch.no_grad():
        ref = module(x).numpy()
    assert got.shape == ref.shape == (1, 10, 6)
    assert (np.diff(ref[0, :, 4]) <= 0).all()                  # sorted by score
    assert set(np.unique(ref[0, :, 5])) <= {0.0, 1.0, 2.0}
    np.testing.assert_allclose(got[0, :, 4], ref[0, :, 4], atol=1e-4)
    contract = ModelContract.from_dict(model.contract_spec())
    decoder = get_decoder(contract.decoder, output_names=contract.outputs, labels=contract.labels)
    dets = decoder({"output0": ref}, input_hw=(64, 64), options=PostprocessOptions(conf_threshold=0.0))
    assert len(dets) == 10
    np.testing.assert_allclose(dets.xyxy, ref[0, :, :4], atol=1e-5)


@pytest.mark.slow
def test_yolo_end2end_converts_with_litert_torch(tmp_path):
    """The NMS-free export (top-K and gather inside the graph) converts to TFLite and matches torch."""
    litert_torch = pytest.importorskip("litert_torch")
    model = build_small("yolo_nano_e2e")
    model.max_det = 20
    module = model.export_module()
    x = model.example_input(1)
    logging.getLogger("absl").setLevel(logging.ERROR)
    edge = litert_torch.convert(module, (x,))
    got = np.asarray(edge(x))
    with torch.no_grad():
        ref = module(x).numpy()
    assert got.shape == ref.shape == (1, 20, 6)
    np.testing.assert_allclose(got[..., 4], ref[..., 4], atol=1e-4)
    np.testing.assert_allclose(got[..., :4] / 64, ref[..., :4] / 64, atol=1e-4)
    edge.export(str(tmp_path / "yolo_e2e.tflite"))
    assert (tmp_path / "yolo_e2e.tflite").stat().st_size > 0


# --------------------------------------------------------------------------------------------------
# Siamese losses
# --------------------------------------------------------------------------------------------------


def _embeddings(seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(8, 6, generator=g), dim=1), torch.tensor([0, 0, 1, 1, 1, 2, 2, 3])


def test_contrastive_loss_matches_brute_force():
    emb, labels = _embeddings()
    margin = 1.2
    pos, neg = [], []
    for i in range(8):
        for j in range(i + 1, 8):
            d = float((emb[i] - emb[j]).norm())
            if labels[i] == labels[j]:
                pos.append(d ** 2)
            else:
                neg.append(max(0.0, margin - d) ** 2)
    loss = ContrastiveLoss(margin)(emb, labels)
    assert abs(float(loss) - (np.mean(pos) + np.mean(neg))) < 1e-5
    same = torch.tensor([1, 0, 1, 0])
    a, b = emb[:4], emb[4:]
    d = (a - b).norm(dim=1)
    expected = (same * d ** 2 + (1 - same) * torch.relu(margin - d) ** 2).mean()
    assert torch.allclose(ContrastiveLoss(margin).pairs(a, b, same), expected, atol=1e-6)


@pytest.mark.parametrize("batch_hard", [False, True])
def test_triplet_loss_matches_brute_force(batch_hard: bool):
    emb, labels = _embeddings(1)
    margin = 0.3
    d = torch.cdist(emb, emb).numpy()
    n = len(labels)
    if batch_hard:
        values = []
        for a in range(n):
            p = [j for j in range(n) if j != a and labels[j] == labels[a]]
            q = [j for j in range(n) if labels[j] != labels[a]]
            if p and q:
                values.append(max(0.0, max(d[a, p]) - min(d[a, q]) + margin))
        expected = np.mean(values)
    else:
        values = [max(0.0, d[a, p] - d[a, q] + margin) for a in range(n) for p in range(n) for q in range(n)
                  if p != a and labels[p] == labels[a] and labels[q] != labels[a]]
        active = [v for v in values if v > 1e-12]
        expected = np.mean(active)
    loss = TripletLoss(margin, batch_hard=batch_hard)(emb.requires_grad_(), labels)
    assert abs(float(loss.detach()) - expected) < 1e-5
    loss.backward()
    assert emb.grad is not None and torch.isfinite(emb.grad).all()


def test_siamese_losses_edge_cases_and_selection():
    emb = torch.nn.functional.normalize(torch.randn(4, 8), dim=1).requires_grad_()
    singles = torch.arange(4)                                  # no positive pair: triplet loss is 0, with a graph
    for loss in (TripletLoss(0.2)(emb, singles), TripletLoss(0.2, batch_hard=True)(emb, singles)):
        assert float(loss.detach()) == 0.0
        loss.backward()
    with pytest.raises(ValueError, match=r"labels: expected shape \[4\]"):
        ContrastiveLoss()(emb, torch.zeros(3))
    assert isinstance(build_model("siamese", loss="contrastive", input_size=64).criterion, ContrastiveLoss)
    tri = build_model("siamese", loss="triplet", margin=0.5, batch_hard=False, input_size=64).criterion
    assert isinstance(tri, TripletLoss) and tri.margin == 0.5 and not tri.batch_hard
    with pytest.raises(ValueError, match="margin: expected a number > 0"):
        build_model("siamese", margin=-1.0)


# --------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    model = build_small("yolo_nano")
    path = save_checkpoint(tmp_path / "run" / "last.pt", model, epoch=3, metrics={"map50": 0.5},
                           optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict(),
                           note="ok", seed=None, tags=["a", "b"])
    ckpt = torch.load(path, map_location="cpu", weights_only=True)       # loadable with weights_only
    assert ckpt["family"] == "yolo_nano" and ckpt["epoch"] == 3 and ckpt["config"]["input_size"] == [64, 64]
    other = build_model("yolo_nano", seed=5, **SMALL["yolo_nano"])
    report = load_weights(other, path)
    assert isinstance(report, LoadReport) and report.complete and report.meta["metrics"] == {"map50": 0.5}
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other.eval().predict(x), model.eval().predict(x))
        rebuilt = load_model(path)
        torch.testing.assert_close(rebuilt.predict(x), model.predict(x))
    assert not rebuilt.training
    assert load_checkpoint(path)["note"] == "ok"


def test_save_checkpoint_rejects_unloadable_meta(tmp_path):
    model = build_model("mobilenet", **SMALL["mobilenet"])
    with pytest.raises(TypeError, match=r"meta\['opt'\]: .* got SGD \(pass its .state_dict\(\)\)"):
        save_checkpoint(tmp_path / "a.pt", model, opt=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match=r"meta\['m'\]\['x'\]: .* got float64 \(convert with .item\(\)"):
        save_checkpoint(tmp_path / "a.pt", model, m={"x": np.float64(1.0)})
    with pytest.raises(TypeError, match="'family' is reserved"):
        save_checkpoint(tmp_path / "a.pt", model, family="x")
    assert not (tmp_path / "a.pt").exists()


def test_torchvision_checkpoint_into_classifier_with_other_class_count(tmp_path):
    path = tmp_path / "mobilenet_v3_small.pth"
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), path)   # ImageNet layout
    model = build_model("mobilenet", variant="v3_small", num_classes=6, input_size=64)
    with pytest.raises(WeightsError, match="checkpoint has 1000 classes, model has 6; pass num_classes=1000 "
                                           "or strict=False to re-initialise the head"):
        load_weights(model, path)
    report = load_weights(model, path, strict=False)
    assert [k for k, _, _ in report.skipped] == ["classifier.3.weight", "classifier.3.bias"]
    assert report.skipped[0][1:] == ((6, 1024), (1000, 1024))
    assert not report.missing and not report.unexpected and len(report.loaded) == len(model.state_dict()) - 2
    ref = torch.load(path, weights_only=True)
    assert torch.equal(model.state_dict()["features.0.0.weight"], ref["features.0.0.weight"])
    assert "classifier.3.weight" in str(report)
    # the same file, matching class count: strict load works
    load_weights(build_model("mobilenet", variant="v3_small", num_classes=1000, input_size=64), path)


def test_weights_errors_name_keys_and_shapes(tmp_path, caplog):
    src = build_model("yolo_nano", num_classes=80, input_size=64)
    save_checkpoint(tmp_path / "y80.pt", src)
    with pytest.raises(WeightsError, match="checkpoint has 80 classes, model has 6; pass num_classes=80 or "
                                           "strict=False to re-initialise the head"):
        load_weights(build_model("yolo_nano", num_classes=6, input_size=64), tmp_path / "y80.pt")
    report = load_weights(build_model("yolo_nano", num_classes=6, input_size=64), tmp_path / "y80.pt", strict=False)
    assert {k for k, _, _ in report.skipped} == {f"head.cls.{i}.2.{p}" for i in range(3) for p in ("weight", "bias")}
    # another width: shape mismatches, named with both shapes
    wide = build_model("yolo_nano", num_classes=80, input_size=64, width_mult=0.5)
    with pytest.raises(WeightsError, match=r"backbone.stem.0.weight: model expects \[32, 3, 3, 3\], checkpoint has "
                                           r"\[16, 3, 3, 3\].*checkpoint config differs: \{'width_mult': 0.25\}"):
        load_weights(wide, tmp_path / "y80.pt")
    with caplog.at_level(logging.WARNING, logger="converters.zoo.weights"):
        load_weights(wide, tmp_path / "y80.pt", strict=False)
    assert "outside the class head" in caplog.text
    # missing / unexpected keys (a raw state dict with extra and absent entries)
    state = src.state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["neck.td4.cv1.0.weight"]
    torch.save(state, tmp_path / "raw.pt")
    with pytest.raises(WeightsError, match=r"1 model keys missing from the checkpoint: neck.td4.cv1.0.weight; "
                                           r"1 unexpected checkpoint keys: extra.weight"):
        load_weights(build_model("yolo_nano", num_classes=80, input_size=64), tmp_path / "raw.pt")
    report = load_weights(build_model("yolo_nano", num_classes=80, input_size=64), tmp_path / "raw.pt", strict=False)
    assert report.missing == ["neck.td4.cv1.0.weight"] and report.unexpected == ["extra.weight"]
    # another family entirely
    with pytest.raises(WeightsError, match="saved from a 'yolo_nano' model, this is a 'siamese' model"):
        load_weights(build_model("siamese", input_size=64), tmp_path / "y80.pt")
    with pytest.raises(WeightsError, match="no tensor of the checkpoint matches the model"):
        load_weights(build_model("siamese", input_size=64), tmp_path / "y80.pt", strict=False)
    # DataParallel-style prefixes are unwrapped
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, tmp_path / "dp.pt")
    assert load_weights(build_model("yolo_nano", num_classes=80, input_size=64), tmp_path / "dp.pt").complete


@pytest.mark.parametrize("variant", ["v3_large", "v2"])
def test_ssdlite_stride8_map_loads_plain_weights_and_trains(tmp_path, variant: str):
    """stride8: a seventh map at stride 8 appended last (features, heads, anchors), so the plain model's
    weights load (only the new head is missing), its rows and anchors come first unchanged, the new level
    starts near-silent (background prior) and a small object trains its head."""
    plain = build_model("ssdlite", seed=0, variant=variant, num_classes=3, input_size=128,
                        anchor_scales=(0.05, 0.7)).eval()
    path = save_checkpoint(tmp_path / "plain.pt", plain)
    fine = build_model("ssdlite", seed=1, variant=variant, num_classes=3, input_size=128, anchor_scales=(0.05, 0.7),
                       stride8=True)
    report = load_weights(fine, path, strict=False)
    assert report.missing and all(k.startswith(("head.classification_head.module_list.6.",
                                                "head.regression_head.module_list.6.")) for k in report.missing)
    assert not report.unexpected and not report.skipped
    fine.eval()
    assert fine.grid_sizes == plain.grid_sizes + ((16, 16),)
    assert fine.anchor_generator.num_anchors_per_location() == [6] * 6 + [4]
    n = plain.num_anchors
    assert fine.num_anchors == n + 16 * 16 * 4
    anchors = fine.anchors_cxcywh()
    assert torch.equal(anchors[:n], plain.anchors_cxcywh())
    np.testing.assert_allclose(anchors[n, 2:].numpy(), [0.025, 0.025], rtol=1e-6)    # half the first map's 0.05
    np.testing.assert_allclose(anchors[n, :2].numpy(), [1 / 32, 1 / 32], rtol=1e-6)  # a stride-8 cell centre
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        (ra, la), (rb, lb) = plain.export_module()(x), fine.export_module()(x)
    torch.testing.assert_close(rb[:, :n], ra, rtol=0, atol=0)
    torch.testing.assert_close(lb[:, :n], la, rtol=0, atol=0)
    assert float(lb[:, n:].softmax(-1)[..., 1:].max()) < 0.01       # near-silent until trained
    contract = ModelContract.from_dict(fine.contract_spec())
    assert len(contract.decoder["anchors"]) == fine.num_anchors
    fine.train()
    box = {"boxes": torch.tensor([[60.0, 60.0, 64.0, 64.0]]), "labels": torch.tensor([2])}   # a 4 px object
    losses = fine([torch.rand(3, 128, 128), torch.rand(3, 128, 128)], [box, box])
    sum(losses.values()).backward()
    assert float(fine.head.classification_head.module_list[6][1].weight.grad.abs().sum()) > 0
    back = load_model(save_checkpoint(tmp_path / "fine.pt", fine.eval())).eval()
    assert back.config["stride8"] is True and torch.equal(back.anchors_cxcywh(), anchors)
    for bad in (1, "fpn", None):
        with pytest.raises(ValueError, match="stride8: expected one of False, True, 'topdown'"):
            build_model("ssdlite", stride8=bad, **SMALL["ssdlite"])


@pytest.mark.parametrize("variant, size", [("v3_large", 296), ("v2", 128)])
def test_ssdlite_topdown_stride8_map_merges_the_stride16_map_and_loads_plain_weights(tmp_path, variant: str,
                                                                                    size: int):
    """stride8="topdown": the seventh map is the stride-8 tap merged with the upsampled stride-16 map
    (64 channels), appended last, so plain weights load (the merge and the new head are missing), the first
    six maps' rows are unchanged, the stride-16 features reach the new map (its output moves when only
    map "0" changes) and a small object's loss trains both branches of the merge. 296 is not a multiple of
    16: the upsampled map has 38 rows for the tap's 37 and is trimmed."""
    from converters.zoo.ssdlite import TOPDOWN_CHANNELS

    kw = dict(variant=variant, num_classes=3, input_size=size, anchor_scales=(0.05, 0.7))
    plain = build_model("ssdlite", seed=0, **kw).eval()
    path = save_checkpoint(tmp_path / "plain.pt", plain)
    td = build_model("ssdlite", seed=1, stride8="topdown", **kw)
    report = load_weights(td, path, strict=False)
    assert report.missing and not report.unexpected and not report.skipped
    assert all(k.startswith(("head.classification_head.module_list.6.", "head.regression_head.module_list.6.",
                             "backbone.topdown.")) for k in report.missing)
    assert any(k.startswith("backbone.topdown.top.") for k in report.missing)
    td.eval()
    g8 = -(-size // 8)
    assert td.grid_sizes == plain.grid_sizes + ((g8, g8),)
    feats = td.backbone(torch.rand(1, 3, size, size) * 2 - 1)
    assert tuple(feats["6"].shape) == (1, TOPDOWN_CHANNELS, g8, g8)
    n = plain.num_anchors
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        (ra, la), (rb, lb) = plain.export_module()(x), td.export_module()(x)
    torch.testing.assert_close(rb[:, :n], ra, rtol=0, atol=0)
    torch.testing.assert_close(lb[:, :n], la, rtol=0, atol=0)
    assert float(lb[:, n:].softmax(-1)[..., 1:].max()) < 0.01       # near-silent until trained
    with torch.no_grad():                                            # the deep map feeds the new one
        fine = torch.rand(1, td.backbone.topdown.lateral[0].in_channels, g8, g8)
        coarse = torch.rand(1, td.backbone.topdown.top[0].in_channels, -(-g8 // 2), -(-g8 // 2))
        a = td.backbone.topdown(fine, coarse)
        b = td.backbone.topdown(fine, coarse * 2)
    assert a.shape == (1, TOPDOWN_CHANNELS, g8, g8) and not torch.allclose(a, b)
    td.train()
    box = {"boxes": torch.tensor([[60.0, 60.0, 64.0, 64.0]]), "labels": torch.tensor([2])}   # a 4 px object
    losses = td([torch.rand(3, size, size), torch.rand(3, size, size)], [box, box])
    sum(losses.values()).backward()
    for branch in (td.backbone.topdown.lateral, td.backbone.topdown.top):
        assert float(branch[0].weight.grad.abs().sum()) > 0
    back = load_model(save_checkpoint(tmp_path / "td.pt", td.eval())).eval()
    assert back.config["stride8"] == "topdown"
    with torch.no_grad():
        torch.testing.assert_close(back.export_module()(x)[1], td.export_module()(x)[1])


def test_ssd_class_count_error(tmp_path):
    save_checkpoint(tmp_path / "s.pt", build_model("ssdlite", num_classes=80, input_size=64))
    with pytest.raises(WeightsError, match="checkpoint has 80 classes, model has 6"):
        load_weights(build_model("ssdlite", num_classes=6, input_size=64), tmp_path / "s.pt")


def test_classifier_trunk_transfers_into_ssdlite_and_siamese(tmp_path):
    """A MobileNet classifier (e.g. trained on the synthetic crops) seeds the detector's / embedder's trunk."""
    for variant, ssd_kw in (("v2", {}), ("v3_large", {"reduced_tail": False})):
        clf = build_model("mobilenet", seed=1, variant=variant, input_size=64)
        path = save_checkpoint(tmp_path / f"{variant}.pt", clf)
        ssd = build_model("ssdlite", variant=variant, input_size=64, **ssd_kw)
        with pytest.raises(WeightsError, match="unexpected checkpoint keys: classifier"):
            load_weights(ssd, path)
        report = load_weights(ssd, path, strict=False)
        n_trunk = sum(1 for k in clf.state_dict() if k.startswith("features."))
        assert len(report.loaded) == n_trunk and not report.skipped
        assert all(k.startswith("classifier.") for k in report.unexpected)
        assert all(k.startswith(("backbone.extra.", "head.")) for k in report.missing)
        with torch.no_grad():                        # the first feature map is the classifier's trunk up to C4
            x = torch.rand(1, 3, 64, 64)
            c4 = ssd.eval().backbone.features[0](x)
            ref = clf.eval().features[:len(ssd.backbone.features[0]) - 1](x)
            ref = ssd.backbone.features[0][-1](ref)
        torch.testing.assert_close(c4, ref)
    siamese = build_model("siamese", backbone="v3_small", input_size=64)
    report = load_weights(siamese, save_checkpoint(tmp_path / "s.pt", build_model("mobilenet", input_size=64)),
                          strict=False)
    assert report.missing == ["projection.weight", "projection.bias"]


def test_bad_weight_files(tmp_path):
    model = build_model("mobilenet", **SMALL["mobilenet"])
    with pytest.raises(WeightsFileNotFoundError, match="weights file not found: .*nope.pt"):
        load_weights(model, tmp_path / "nope.pt")
    assert issubclass(WeightsFileNotFoundError, FileNotFoundError) and issubclass(WeightsError, ValueError)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(WeightsError, match="is empty"):
        load_weights(model, tmp_path / "empty.pt")
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint" * 8)
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_weights(model, tmp_path / "garbage.pt")
    good = save_checkpoint(tmp_path / "good.pt", model).read_bytes()
    (tmp_path / "truncated.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_weights(model, tmp_path / "truncated.pt")
    torch.save({"model": model.state_dict(), "object": _Opaque()}, tmp_path / "pickled.pt")
    with pytest.raises(WeightsError, match="holds Python objects besides tensors, which are never unpickled"):
        load_weights(model, tmp_path / "pickled.pt")
    torch.save({"epoch": 1, "lr": 0.1}, tmp_path / "nostate.pt")
    with pytest.raises(WeightsError, match=r"expected a state dict .* got keys \['epoch', 'lr'\]"):
        load_weights(model, tmp_path / "nostate.pt")
    torch.save(model.state_dict(), tmp_path / "raw.pt")
    with pytest.raises(WeightsError, match="does not say which architecture"):
        load_model(tmp_path / "raw.pt")


class _Opaque:
    """A class weights_only loading must refuse."""
