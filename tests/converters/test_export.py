"""The export matrix: 4 zoo families x ONNX / TFLite / OpenVINO x FP32 / FP16 / INT8, on small models.

One ``converters.export`` run per family (module-scoped), then every artifact is checked against real
references: ``sdk.load`` with no flags on its own backend, the embedded contract equals the sidecar,
FP32 outputs against the PyTorch module (logits/embeddings within 1e-4, detections one-to-one at IoU >=
0.99), INT8 / FP16 weights really stored in that precision and outputs close to FP32, and the report
rows. Random (seeded) weights: the accuracy gate itself is tested in test_export_gate.py.
"""
from __future__ import annotations

import json
from typing import Any, Dict

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")

import sdk  # noqa: E402
from converters.data import make_split  # noqa: E402
from converters.export.parity import match_detections  # noqa: E402
from converters.export.sources import VAL_TASKS, synthetic_kwargs  # noqa: E402
from converters.zoo import FAMILIES, build_model  # noqa: E402
from sdk.contract import METADATA_KEY, ModelContract  # noqa: E402
from sdk.results import Classification, Detections, Embedding  # noqa: E402

pytestmark = pytest.mark.slow

SMALL = {
    "mobilenet": {"input_size": 64, "width_mult": 0.25},
    "ssdlite": {"input_size": 64, "width_mult": 0.25},
    "yolo_nano": {"input_size": 64, "width_mult": 0.125},
    "siamese": {"input_size": 64, "width_mult": 0.25, "embedding_dim": 32},
}
FORMATS = ("onnx", "tflite", "openvino")
PRECISIONS = ("fp32", "fp16", "int8")
BACKENDS = {"onnx": "onnxruntime", "tflite": "tflite", "openvino": "openvino"}
RESULT = {"classify": Classification, "detect": Detections, "embed": Embedding}


@pytest.fixture(scope="module", params=FAMILIES)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    import converters

    family = request.param
    torch.set_num_threads(2)
    model = build_model(family, seed=0, **SMALL[family]).eval()
    out = tmp_path_factory.mktemp(f"export_{family}")
    # max_drop=1: random weights make metrics noisy; the gate's verdicts are tested on their own
    result = converters.export(model, to=list(FORMATS), precision=list(PRECISIONS), out=out, calib_count=8,
                               val_count=8, parity_frames=2, latency_runs=2, max_drop=1.0, progress=False)
    spec = model.contract_spec()
    vt = VAL_TASKS[spec["task"]]
    frames = [np.asarray(make_split("test", vt, 3, **synthetic_kwargs(vt, model.input_hw))[i][0]) for i in range(3)]
    return {"family": family, "model": model, "module": model.export_module(), "result": result, "spec": spec,
            "frames": frames}


def _torch_outputs(module: Any, tensor: np.ndarray) -> list:
    with torch.no_grad():
        out = module(torch.from_numpy(np.ascontiguousarray(tensor, np.float32)))
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o.numpy() for o in out]


def _nchw(model: Any, frame: np.ndarray) -> np.ndarray:
    """The PyTorch model's input for ``frame`` (the artifact's pre-processing, moved to NCHW float)."""
    x, _ = model.preprocess(frame)
    if model.contract.input.layout == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    if model.contract.input.quantization is not None:
        scale, zp = model.contract.input.quantization
        x = (x.astype(np.float32) - zp) * scale
    return x


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_loads_with_embedded_contract(exported: Dict[str, Any], fmt: str, precision: str) -> None:
    path = exported["result"].artifact(fmt, precision)
    sidecar = path.with_name(path.name + ".json")
    assert path.is_file() and sidecar.is_file()
    with sdk.load(path) as model:                              # no flags
        assert model.backend.name == BACKENDS[fmt]
        embedded = ModelContract.from_json(model.backend.metadata[METADATA_KEY])
        result = model(exported["frames"][0])
    on_disk = ModelContract.from_file(sidecar)
    assert embedded.to_dict() == on_disk.to_dict()
    assert (on_disk.format, on_disk.precision, on_disk.family) == (fmt, precision, exported["family"])
    assert on_disk.accuracy["verdict"] == "accepted"
    assert on_disk.weights_sha256 and len(on_disk.weights_sha256) == 64
    assert on_disk.input.layout == ("NHWC" if fmt == "tflite" else "NCHW")
    assert isinstance(result, RESULT[exported["spec"]["task"]])


@pytest.mark.parametrize("fmt", FORMATS)
def test_fp32_matches_pytorch(exported: Dict[str, Any], fmt: str) -> None:
    module, task = exported["module"], exported["spec"]["task"]
    with sdk.load(exported["result"].artifact(fmt, "fp32")) as model:
        for frame in exported["frames"]:
            x = _nchw(model, frame)
            ref = _torch_outputs(module, x)
            got = model.infer(model.preprocess(frame)[0])
            names = list(model.contract.outputs)
            if task in ("classify", "embed"):
                for name, r in zip(names, ref):
                    assert np.max(np.abs(got[name] - r)) <= 1e-4, name
            else:
                conf = model.options.conf_threshold
                _, transform = model.preprocess(frame)
                ref_det = model.postprocess(dict(zip(names, ref)), transform)
                got_det = model.postprocess(got, transform)
                matched, unmatched, worst = match_detections(ref_det, got_det, min_iou=0.99, conf_threshold=conf)
                assert unmatched == 0 and worst >= 0.99


@pytest.mark.parametrize("fmt", FORMATS)
def test_int8_is_integer_smaller_and_close_to_fp32(exported: Dict[str, Any], fmt: str) -> None:
    result = exported["result"]
    fp32, int8 = result.artifact(fmt, "fp32"), result.artifact(fmt, "int8")
    contract = ModelContract.from_file(int8.with_name(int8.name + ".json"))
    assert contract.float_layers, "the output tail is kept in float and recorded"
    if fmt == "onnx":
        import onnx

        ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    elif fmt == "openvino":
        assert "FakeQuantize" in int8.read_text() or "FakeConvert" in int8.read_text()
    else:
        assert contract.input.dtype == "int8" and contract.input.quantization is not None
    # OpenVINO: the weights (.bin); the .xml graph text grows with the FakeQuantize nodes
    size = {p: (p.with_suffix(".bin") if fmt == "openvino" else p).stat().st_size for p in (fp32, int8)}
    assert size[int8] < size[fp32]
    errors = []
    with sdk.load(fp32) as m32, sdk.load(int8) as m8:
        for frame in exported["frames"]:
            a = m32.infer(m32.preprocess(frame)[0])
            b = m8.infer(m8.preprocess(frame)[0])
            for name in a:
                x, y = a[name].ravel().astype(np.float64), b[name].ravel().astype(np.float64)
                errors.append(np.mean(np.abs(x - y)) / max(float(np.abs(x).max()), 1e-6))
    # 8 calibration images and random weights: a loose bound, but a wrong conversion is ~1
    assert float(np.mean(errors)) < 0.25, errors


@pytest.mark.parametrize("fmt", FORMATS)
def test_fp16_stores_half_precision_weights(exported: Dict[str, Any], fmt: str) -> None:
    path = exported["result"].artifact(fmt, "fp16")
    if fmt == "onnx":
        import onnx

        types = {i.data_type for i in onnx.load(str(path)).graph.initializer}
        assert onnx.TensorProto.FLOAT16 in types
    elif fmt == "openvino":
        assert 'element_type="f16"' in path.read_text()
    else:
        from ai_edge_litert import schema_py_generated as schema

        m = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
        assert schema.TensorType.FLOAT16 in {t.type for t in m.subgraphs[0].tensors}
    with sdk.load(path) as m16, sdk.load(exported["result"].artifact(fmt, "fp32")) as m32:
        frame = exported["frames"][0]
        a, b = m32.infer(m32.preprocess(frame)[0]), m16.infer(m16.preprocess(frame)[0])
        for name in a:
            scale = max(float(np.abs(a[name]).max()), 1e-6)
            assert float(np.max(np.abs(a[name] - b[name]))) / scale < 0.05, name


def test_report_has_one_row_per_artifact(exported: Dict[str, Any]) -> None:
    result = exported["result"]
    report = json.loads(result.report["json"].read_text())
    rows = report["rows"]
    assert sorted((r["format"], r["precision"]) for r in rows) == sorted((f, p) for f in FORMATS for p in PRECISIONS)
    md = result.report["md"].read_text()
    for r in rows:
        path = result.out / r["file"]
        size = path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)
        assert r["bytes"] == size
        assert r["latency"]["p50_ms"] > 0
        gate = r["gate"]
        assert gate["metric"] == {"classify": "top1", "detect": "map50", "embed": "verification_accuracy"}[report["task"]]
        assert gate["drop"] == pytest.approx(gate["reference"] - gate["converted"], abs=2e-6)  # each rounded to 1e-6
        assert gate["reference"] == pytest.approx(report["reference"]["value"], abs=1e-6)
        assert r["file"] in md
    assert report["warnings"] and "8 images" in report["warnings"][0]     # < 100 calibration images
    # INT8 vs FP32 per format, timed in alternating rounds, with a reason wherever INT8 is not faster
    comparison = {c["format"]: c for c in report["int8_vs_fp32"]}
    assert set(comparison) == set(FORMATS)
    for c in comparison.values():
        assert c["interleaved"] and c["fp32_p50_ms"] > 0 and c["int8_p50_ms"] > 0
        assert c["latency_ratio"] == pytest.approx(c["int8_p50_ms"] / c["fp32_p50_ms"], abs=1e-3)
        assert c["faster"] == (c["latency_ratio"] <= 0.8) and (c["why"] is None) == c["faster"]
        assert f"- {c['format']}: size x{c['size_ratio']}" in md
    assert report["weights_sha256"] and report["weights_sha256"] in md
    assert result.ok
