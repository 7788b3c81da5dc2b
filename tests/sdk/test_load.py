"""sdk.load end to end: contract resolution, foreign models, errors, device configs, lazy imports."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.errors import BackendError, ModelContractError, ModelFileError
from tests.conftest import has_module

needs_ort = pytest.mark.skipif(not has_module("onnxruntime"), reason="onnxruntime not installed")
needs_tflite = pytest.mark.skipif(not (has_module("ai_edge_litert") or has_module("tflite_runtime")),
                                  reason="no TFLite interpreter installed")

NAMES = ["person", "bi'cycle", "car"]
FRAME = np.zeros((96, 128, 3), np.uint8)  # letterboxed into 64x64: ratio 0.5, 8 px pad top and bottom


def copy_model(src_dir: Path, name: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_dir / name, dst / name)
    return dst / name


@needs_ort
def test_ultralytics_onnx_runs_without_sidecar(foreign_models_dir):
    model = sdk.load(foreign_models_dir / "ultralytics_like.onnx")
    assert model.labels == tuple(NAMES) and model.task == "detect"
    assert model.contract.family == "ultralytics" and model.contract.decoder["type"] == "yolo"
    dets = model(FRAME)
    order = np.argsort(-dets.confidence)
    np.testing.assert_allclose(dets.confidence[order], [0.9, 0.8, 0.6], atol=1e-6)
    assert dets.label == [dets.labels[c] for c in dets.class_id]
    # head rows (cx, cy, w, h) in 64x64 input pixels -> frame pixels: x / 0.5, (y - 8) / 0.5
    expected = np.array([[44, 38, 84, 58], [46, 38, 86, 58], [12, 0, 28, 16]], np.float32)
    np.testing.assert_allclose(dets.xyxy[order], expected, atol=1e-3)
    assert list(dets.class_id[order]) == [0, 1, 2]
    assert set(model.last_timings) == {"preprocess_ms", "infer_ms", "postprocess_ms"}


@needs_ort
def test_overrides_per_call_and_at_load(foreign_models_dir):
    path = foreign_models_dir / "ultralytics_like.onnx"
    model = sdk.load(path)
    assert len(model(FRAME, agnostic=True)) == 2          # the class-1 box overlaps the class-0 box
    assert len(model(FRAME, conf_threshold=0.7)) == 2
    assert list(model(FRAME, classes=[2]).class_id) == [2]
    assert len(model(FRAME, max_det=1)) == 1
    assert len(sdk.load(path, conf_threshold=0.85)(FRAME)) == 1
    with pytest.raises((TypeError, ValueError), match="conf_treshold"):
        model(FRAME, conf_treshold=0.5)


@needs_ort
def test_sidecar_overrides_embedded_metadata(foreign_models_dir, tmp_path):
    path = copy_model(foreign_models_dir, "ultralytics_like.onnx", tmp_path)
    contract = sdk.load(path).contract.to_dict()
    contract["labels"] = ["a", "b", "c"]
    contract["postprocess"] = {"conf_threshold": 0.85}
    (tmp_path / "ultralytics_like.onnx.json").write_text(json.dumps(contract))
    model = sdk.load(path)
    assert model.labels == ("a", "b", "c") and len(model(FRAME)) == 1


@needs_ort
def test_contract_that_does_not_fit_the_file(foreign_models_dir, tmp_path):
    path = copy_model(foreign_models_dir, "ultralytics_like.onnx", tmp_path)
    contract = sdk.load(path).contract.to_dict()
    contract["input"]["shape"], contract["input"]["layout"] = [1, 64, 64, 3], "NHWC"
    (tmp_path / "ultralytics_like.json").write_text(json.dumps(contract))
    with pytest.raises(ModelContractError, match=r"has shape \[1, 3, 64, 64\].*layout \(NHWC\)"):
        sdk.load(path)
    contract = sdk.load(foreign_models_dir / "ultralytics_like.onnx").contract.to_dict()
    contract["outputs"] = ["boxes"]
    (tmp_path / "ultralytics_like.json").write_text(json.dumps(contract))
    with pytest.raises(ModelContractError, match=r"outputs \['output0'\], got unknown names \['boxes'\]"):
        sdk.load(path)
    (tmp_path / "ultralytics_like.json").write_text('{"schema_version": 1, "task": "detect"')
    with pytest.raises(ModelContractError, match="unparseable"):
        sdk.load(path)


@needs_ort
def test_nan_and_inf_outputs_are_dropped_and_counted(foreign_models_dir):
    model = sdk.load(foreign_models_dir / "nan_outputs.onnx")
    dets = model(FRAME)
    assert np.all(np.isfinite(dets.xyxy)) and np.all(np.isfinite(dets.confidence))
    assert list(np.sort(dets.confidence)) == pytest.approx([0.9])
    assert model.nonfinite_dropped == 2


@needs_tflite
def test_tf_od_api_tflite_with_sidecar(foreign_models_dir, tmp_path):
    name = "tf_od_api_like.tflite"
    if not (foreign_models_dir / name).is_file():
        pytest.skip("TF OD API-like model could not be built here")
    path = copy_model(foreign_models_dir, name, tmp_path)
    with pytest.raises(ModelContractError, match=r"no model contract found.*tf_od_api_like.tflite.json"):
        sdk.load(path)
    (tmp_path / "tf_od_api_like.json").write_text(json.dumps({
        "schema_version": 1, "task": "detect", "labels": ["cat", "dog"],
        "input": {"shape": [1, 48, 48, 3], "layout": "NHWC", "dtype": "uint8", "resize": "stretch", "scale": 1.0},
        "decoder": {"type": "tf_od_api", "label_offset": 0}}))
    model = sdk.load(path)
    dets = model(np.zeros((48, 96, 3), np.uint8))
    order = np.argsort(-dets.confidence)
    # normalised ymin, xmin, ymax, xmax -> frame xyxy (stretch: x * 96, y * 48)
    np.testing.assert_allclose(dets.xyxy[order], [[19.2, 4.8, 57.6, 24.0], [48.0, 24.0, 67.2, 43.2]], atol=1e-3)
    assert dets.label[order[0]] == "dog" and len(dets) == 2


@needs_ort
@pytest.mark.parametrize("frame, message", [
    (None, "None"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((1, 10, 10, 3), np.uint8), "rank|ndim|dimensions"),
    (np.zeros((10, 10, 5), np.uint8), "channel"),
])
def test_bad_frames_are_explained(foreign_models_dir, frame, message):
    model = sdk.load(foreign_models_dir / "ultralytics_like.onnx")
    with pytest.raises(ValueError, match=f"(?i){message}"):
        model(frame)


@needs_ort
def test_grayscale_and_bgra_frames_are_accepted(foreign_models_dir):
    model = sdk.load(foreign_models_dir / "ultralytics_like.onnx")
    assert len(model(np.zeros((96, 128), np.uint8))) == 3
    assert len(model(np.zeros((96, 128, 4), np.uint8))) == 3


def test_file_errors(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        sdk.load(tmp_path / "nope.onnx")
    (tmp_path / "model.pt").write_bytes(b"abc")
    with pytest.raises(ModelFileError, match=r"unknown model extension '.pt'.*\.onnx, \.tflite, \.xml"):
        sdk.load(tmp_path / "model.pt")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        sdk.load(tmp_path / "empty.onnx")
    with pytest.raises(ModelFileError, match="directory"):
        sdk.load(tmp_path)


@needs_ort
def test_corrupt_and_truncated_files(foreign_models_dir, tmp_path):
    data = (foreign_models_dir / "ultralytics_like.onnx").read_bytes()
    (tmp_path / "trunc.onnx").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.onnx").write_bytes(b"\x00\xff" * 300)
    for name in ("trunc.onnx", "garbage.onnx"):
        with pytest.raises(ModelFileError):
            sdk.load(tmp_path / name)


def test_backend_format_mismatch(foreign_models_dir):
    with pytest.raises(BackendError, match=r"backend 'tflite' cannot read .onnx files"):
        sdk.load(foreign_models_dir / "ultralytics_like.onnx", backend="tflite")


@needs_ort
def test_device_config_picks_backend_and_falls_back(foreign_models_dir):
    model = sdk.load(foreign_models_dir / "ultralytics_like.onnx", device="x86-cpu")
    expected = "openvino" if has_module("openvino") else "onnxruntime"   # x86-cpu prefers OpenVINO
    assert model.backend.name == expected
    assert len(model(FRAME)) == 3
    assert sdk.load(foreign_models_dir / "ultralytics_like.onnx", device="rpi5").backend.name == "onnxruntime"


@needs_ort
def test_no_torch_after_loading_and_running(foreign_models_dir, test_models_dir):
    """`import sdk`, load and run ONNX, TFLite and OpenVINO models: torch must never be imported."""
    script = f"""
import sys, json, shutil, tempfile, pathlib
import numpy as np
import sdk
ran = []
d = pathlib.Path({str(foreign_models_dir)!r})
frame = np.zeros((96, 128, 3), np.uint8)
sdk.load(d / "ultralytics_like.onnx")(frame); ran.append("onnx")
try:
    import openvino  # noqa
    sdk.load(d / "ultralytics_like.onnx", backend="openvino")(frame); ran.append("openvino")
except ImportError:
    pass
if (d / "tf_od_api_like.tflite").is_file():
    t = pathlib.Path(tempfile.mkdtemp())
    shutil.copy(d / "tf_od_api_like.tflite", t / "m.tflite")
    (t / "m.json").write_text(json.dumps({{"schema_version": 1, "task": "detect",
        "input": {{"shape": [1, 48, 48, 3], "layout": "NHWC", "dtype": "uint8", "resize": "stretch", "scale": 1.0}},
        "decoder": {{"type": "tf_od_api"}}}}))
    sdk.load(t / "m.tflite")(frame); ran.append("tflite")
print(json.dumps({{"ran": ran, "torch": "torch" in sys.modules}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    assert "onnx" in result["ran"]
    if has_module("openvino"):
        assert "openvino" in result["ran"]


def test_import_sdk_is_light():
    code = ("import sys, sdk; heavy = [m for m in ('torch', 'onnxruntime', 'openvino', 'ai_edge_litert', "
            "'tflite_runtime', 'cv2') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def _classifier_frame(test_models_dir: Path, i: int = 0) -> np.ndarray:
    """Reference image i (NCHW float in [0, 1]) as the BGR uint8 frame a camera would give."""
    images = np.load(test_models_dir / "classifier.images.npy", allow_pickle=False)
    rgb = np.round(images[i, 0].transpose(1, 2, 0) * 255).astype(np.uint8)
    return np.ascontiguousarray(rgb[..., ::-1])


def _available(backend: str) -> bool:
    return {"onnxruntime": has_module("onnxruntime"), "openvino": has_module("openvino"),
            "tflite": has_module("ai_edge_litert") or has_module("tflite_runtime")}[backend]


@pytest.mark.parametrize("name, backend", [("classifier.onnx", "onnxruntime"), ("classifier.xml", "openvino"),
                                           ("classifier.tflite", "tflite")])
def test_same_classifier_in_three_formats_agrees(test_models_dir, name, backend):
    """Embedded contracts only (no sidecar): every format gives the same probabilities as a manual run."""
    if not _available(backend):
        pytest.skip(f"{backend} not installed")
    frame = _classifier_frame(test_models_dir)
    model = sdk.load(test_models_dir / name, top_k=10)
    assert model.backend.name == backend and model.task == "classify"
    result = model(frame)
    # manual reference: the same pixels through the ONNX-exported torch network's reference path
    x = frame[..., ::-1].astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    if model.contract.input.layout == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    logits = model.backend.infer({model.backend.inputs[0].name: np.ascontiguousarray(x)})
    logits = next(iter(logits.values())).reshape(-1).astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    ref_order = np.argsort(-probs, kind="stable")
    assert list(result.class_id) == list(ref_order[:10])
    np.testing.assert_allclose(result.confidence, probs[ref_order[:10]], atol=1e-5)
    assert len(result.labels) == 10


def test_int8_tflite_matches_fp32(test_models_dir):
    if not _available("tflite"):
        pytest.skip("no TFLite interpreter")
    fp32 = sdk.load(test_models_dir / "classifier.tflite", top_k=3)
    int8 = sdk.load(test_models_dir / "classifier_int8.tflite", top_k=3)
    assert int8.backend.inputs[0].dtype == np.int8 and int8.contract.input.quantization is not None
    agree = 0
    for i in range(4):
        frame = _classifier_frame(test_models_dir, i)
        a, b = fp32(frame), int8(frame)
        agree += int(a.top1 == b.top1)
        assert abs(float(a.confidence[0]) - float(b.confidence[list(b.class_id).index(a.top1)]
                                                  if a.top1 in b.class_id else 0.0)) < 0.05
    assert agree >= 3


@pytest.mark.parametrize("name", ["detector.onnx", "detector.xml", "detector.tflite"])
def test_detector_with_ssd_contract_runs_in_every_format(test_models_dir, name):
    backend = {".onnx": "onnxruntime", ".xml": "openvino", ".tflite": "tflite"}[Path(name).suffix]
    if not _available(backend):
        pytest.skip(f"{backend} not installed")
    frame = _classifier_frame(test_models_dir, 1)
    results = sdk.load(test_models_dir / name, conf_threshold=0.0, max_det=5)(frame)
    assert isinstance(results, sdk.Detections) and len(results) == 5
    assert np.all(results.xyxy[:, 2] <= 32) and np.all(results.xyxy >= 0)
    ref = sdk.load(test_models_dir / "detector.onnx", conf_threshold=0.0, max_det=5)(frame)
    np.testing.assert_allclose(results.confidence, ref.confidence, atol=1e-4)
    np.testing.assert_allclose(results.xyxy, ref.xyxy, atol=1e-3)
