"""Tests of ``sdk.backends``: the same networks in ONNX, OpenVINO IR and TFLite against torch references.

The models come from the session fixture ``test_models_dir`` (built by ``tests/fixtures/build_models.py``
in the full environment, or prebuilt and pointed at by ``EDGESDK_TEST_MODELS`` in the lean one). This
module imports no torch/onnx/openvino at import time; tests needing a runtime skip when it is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest

from sdk.backends import (
    BACKENDS,
    EXTENSIONS,
    Backend,
    FeedError,
    TensorSpec,
    available_backends,
    backend_for_path,
    create_backend,
    get_backend_class,
    known_backends,
    register_backend,
)
from sdk.backends.base import PerAxisQuantization, format_shape, validate_feeds
from sdk.backends.tflite_metadata import decode_text_metadata, read_metadata, verify_model
from sdk.errors import BackendError, BackendUnavailable, ModelFileError

REPO = Path(__file__).resolve().parents[2]

#: Artifacts the fixture builder writes (manifest "artifacts" keys).
ARTIFACTS = [
    "classifier_onnx",
    "classifier_dynamic_onnx",
    "detector_onnx",
    "classifier_openvino",
    "detector_openvino",
    "classifier_tflite",
    "classifier_dynamic_tflite",
    "detector_tflite",
    "classifier_int8_tflite",
]
#: One float classifier per backend, for tests of behaviour shared by all backends.
CLASSIFIERS = ["classifier_onnx", "classifier_openvino", "classifier_tflite"]
BACKEND_PIP = {
    "onnxruntime": ['pip install "edgesdk[onnx]"', "pip install onnxruntime"],
    "tflite": ['pip install "edgesdk[tflite]"', "pip install ai-edge-litert", "pip install tflite-runtime"],
    "openvino": ['pip install "edgesdk[openvino]"', "pip install openvino"],
}
RUNTIME_MODULES = {"onnxruntime": ["onnxruntime"], "openvino": ["openvino"],
                   "tflite": ["ai_edge_litert", "tflite_runtime", "tensorflow"]}


# -- helpers ----------------------------------------------------------------------------------------
def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version_tuple(text: str) -> Tuple[int, ...]:
    parts = []
    for p in str(text).split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def require_runtime(backend: str, artifact: Dict[str, Any] = None) -> None:
    """Skip unless the runtime for ``backend`` is installed (and new enough for ``artifact``)."""
    if backend == "tflite":
        if not any(_has(m) for m in RUNTIME_MODULES["tflite"]):
            pytest.skip("no TFLite interpreter installed (ai-edge-litert, tflite-runtime or tensorflow)")
        from sdk.backends.tflite_backend import import_tflite_runtime

        rt = import_tflite_runtime()
        need = (artifact or {}).get("min_runtime_version")
        # min_runtime_version uses TensorFlow's numbering; LiteRT (ai_edge_litert) is newer than all of it.
        if need and rt.package != "ai_edge_litert" and _version_tuple(rt.version) < _version_tuple(need):
            pytest.skip(f"{artifact['file']} needs TFLite runtime >= {need} (ops {artifact.get('ops')}), "
                        f"installed {rt.package} {rt.version}")
    else:
        pytest.importorskip(RUNTIME_MODULES[backend][0])


@pytest.fixture(scope="session")
def manifest(test_models_dir: Path) -> Dict[str, Any]:
    return json.loads((test_models_dir / "manifest.json").read_text())


def _art(manifest: Dict[str, Any], key: str) -> Dict[str, Any]:
    return manifest["artifacts"][key]


def _open(test_models_dir: Path, manifest: Dict[str, Any], key: str, **options: Any) -> Backend:
    art = _art(manifest, key)
    require_runtime(art["backend"], art)
    return create_backend(art["backend"], test_models_dir / art["file"], **options)


def _references(test_models_dir: Path, manifest: Dict[str, Any], network: str) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
    net = manifest["networks"][network]
    images = np.load(test_models_dir / net["inputs"]["images"], allow_pickle=False)
    outputs = {name: np.load(test_models_dir / f, allow_pickle=False) for name, f in net["outputs"].items()}
    return images, outputs


def _prepare(art: Dict[str, Any], x_nchw: np.ndarray) -> np.ndarray:
    """NCHW float reference input -> what the artifact takes (layout, dtype, quantisation)."""
    spec = art["inputs"][0]
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1)) if spec["layout"] == "NHWC" else x_nchw
    if spec["quantization"]:
        scale, zp = spec["quantization"]
        info = np.iinfo(spec["dtype"])
        x = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(spec["dtype"])
    return x


def _dequantize(value: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.quantization is None:
        return value.astype(np.float32)
    scale, zp = spec.quantization
    return (value.astype(np.float32) - zp) * scale


def _tiny_backend_file(tmp_path: Path, suffix: str) -> Path:
    p = tmp_path / f"model{suffix}"
    p.write_bytes(b"\x00" * 64)
    return p


# -- the same network in every format ---------------------------------------------------------------
@pytest.mark.runtime
def test_manifest_lists_expected_artifacts(manifest: Dict[str, Any], test_models_dir: Path) -> None:
    assert sorted(manifest["artifacts"]) == sorted(ARTIFACTS)
    for art in manifest["artifacts"].values():
        for f in art["files"]:
            assert (test_models_dir / f).is_file(), f


@pytest.mark.runtime
@pytest.mark.parametrize("key", ARTIFACTS)
def test_outputs_match_reference(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    images, refs = _references(test_models_dir, manifest, art["network"])
    atol = art["tolerance"]["atol"]
    with _open(test_models_dir, manifest, key) as backend:
        assert [o.name for o in backend.outputs] == [o["name"] for o in art["outputs"]]
        worst = 0.0
        for k in range(len(images)):
            out = backend.infer({"images": _prepare(art, images[k])})
            assert list(out) == [o.name for o in backend.outputs]
            for spec in backend.outputs:
                got = _dequantize(out[spec.name], spec)
                assert out[spec.name].dtype == spec.dtype
                assert got.shape == refs[spec.name][k].shape
                diff = float(np.max(np.abs(got - refs[spec.name][k])))
                worst = max(worst, diff)
                assert diff <= atol, f"{key} sample {k} output {spec.name}: max abs diff {diff:.3g} > {atol:.3g}"
    print(f"{key}: max abs diff {worst:.3g} (tolerance {atol:.3g})")


@pytest.mark.runtime
def test_int8_model_has_int8_io(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, "classifier_int8_tflite")
    assert art["int8_io"], "ai-edge-quantizer did not produce int8 input/output"
    with _open(test_models_dir, manifest, "classifier_int8_tflite") as backend:
        (inp,), (out,) = backend.inputs, backend.outputs
        assert inp.dtype == np.int8 and out.dtype == np.int8
        assert inp.quantization is not None and out.quantization is not None
        assert inp.quantization == pytest.approx(tuple(art["inputs"][0]["quantization"]))
        assert out.quantization == pytest.approx(tuple(art["outputs"][0]["quantization"]))
        assert inp.per_axis is None
        # the tolerance is stated in quantisation steps of the output
        assert art["tolerance"]["atol"] == pytest.approx(art["tolerance"]["atol_steps"] * out.quantization[0])
        with pytest.raises(FeedError, match="expected dtype int8"):
            backend.infer({"images": np.zeros((1, 32, 32, 3), np.float32)})


@pytest.mark.runtime
@pytest.mark.parametrize("key", ARTIFACTS)
def test_tensor_specs_match_manifest(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    with _open(test_models_dir, manifest, key) as backend:
        assert isinstance(backend, Backend)
        assert backend.name == art["backend"]
        for specs, expected in ((backend.inputs, art["inputs"]), (backend.outputs, art["outputs"])):
            assert [s.name for s in specs] == [e["name"] for e in expected]
            for s, e in zip(specs, expected):
                # None in the manifest: dynamic, and the runtime may report the allocated size instead
                assert len(s.shape) == len(e["shape"]), f"{s.name}: {s.shape} vs {e['shape']}"
                assert all(w is None or g == w for g, w in zip(s.shape, e["shape"])), f"{s.name}: {s.shape} vs {e['shape']}"
                assert s.dtype == np.dtype(e["dtype"])
                if e["quantization"] is None:
                    assert s.quantization is None
                else:
                    assert s.quantization == pytest.approx(tuple(e["quantization"]))


@pytest.mark.runtime
@pytest.mark.parametrize("key", ARTIFACTS)
def test_metadata_roundtrip(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    with _open(test_models_dir, manifest, key) as backend:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in backend.metadata.items())
        for name, value in art["metadata"].items():
            assert backend.metadata.get(name) == value, f"{key}: metadata {name!r}"
        contract = json.loads(backend.metadata["edgesdk_contract"])
        assert contract["input"]["layout"] == art["inputs"][0]["layout"]


@pytest.mark.runtime
@pytest.mark.parametrize("key", ["classifier_dynamic_onnx", "classifier_dynamic_tflite"])
def test_dynamic_batch(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    images, refs = _references(test_models_dir, manifest, "classifier")
    with _open(test_models_dir, manifest, key) as backend:
        assert backend.inputs[0].shape[0] is None and backend.inputs[0].is_dynamic
        for batch in (3, 1, 4):
            x = np.concatenate([_prepare(art, images[k]) for k in range(batch)])
            out = backend.infer({"images": x})["logits"]
            want = np.concatenate([refs["logits"][k] for k in range(batch)])
            assert out.shape == want.shape
            assert np.max(np.abs(out - want)) <= art["tolerance"]["atol"]
        with pytest.raises(FeedError, match=r"expected shape \(\?, "):
            backend.infer({"images": np.zeros((2, 3, 3, 3), np.float32)})


# -- feed validation, lifecycle, describe -----------------------------------------------------------
@pytest.mark.runtime
@pytest.mark.parametrize("key", CLASSIFIERS)
def test_feed_validation(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    shape = tuple(art["inputs"][0]["shape"])
    good = np.zeros(shape, np.float32)
    with _open(test_models_dir, manifest, key) as backend:
        with pytest.raises(FeedError, match=r"missing \['images'\]"):
            backend.infer({})
        with pytest.raises(FeedError, match=r"unexpected \['extra'\]"):
            backend.infer({"images": good, "extra": good})
        with pytest.raises(FeedError, match=r"expected dtype float32, got float64"):
            backend.infer({"images": good.astype(np.float64)})
        bad_shape = shape[:-1] + (shape[-1] + 1,)
        with pytest.raises(FeedError, match=rf"expected shape {format_shape(shape)}.*got {bad_shape}".replace("(", r"\(").replace(")", r"\)")):
            backend.infer({"images": np.zeros(bad_shape, np.float32)})
        with pytest.raises(ValueError, match="expected shape"):  # FeedError is a ValueError too
            backend.infer({"images": np.zeros(shape[1:], np.float32)})
        with pytest.raises(FeedError, match="expected a dict"):
            backend.infer([good])  # type: ignore[arg-type]
        assert backend.infer({"images": good})["logits"].shape == (1, 10)


@pytest.mark.runtime
@pytest.mark.parametrize("key", CLASSIFIERS + ["detector_openvino", "detector_tflite"])
def test_outputs_are_not_overwritten_by_next_call(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    images, _ = _references(test_models_dir, manifest, art["network"])
    with _open(test_models_dir, manifest, key) as backend:
        first = backend.infer({"images": _prepare(art, images[0])})
        kept = {k: v.copy() for k, v in first.items()}
        second = backend.infer({"images": _prepare(art, images[1])})
        for name in first:
            assert np.array_equal(first[name], kept[name]), f"{name} was overwritten by the next infer()"
            assert not np.array_equal(first[name], second[name])


@pytest.mark.runtime
@pytest.mark.parametrize("key", CLASSIFIERS)
def test_close_and_context_manager(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    backend = _open(test_models_dir, manifest, key)
    with backend as b:
        assert b is backend
        assert "closed" in backend.describe() and not backend.describe()["closed"]
    with pytest.raises(BackendError, match="closed"):
        backend.infer({"images": np.zeros(tuple(_art(manifest, key)["inputs"][0]["shape"]), np.float32)})
    backend.close()  # idempotent
    assert "TensorSpec" not in repr(backend) and backend.path.name in repr(backend)


@pytest.mark.runtime
def test_describe_onnxruntime(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    with _open(test_models_dir, manifest, "classifier_onnx", intra_op_num_threads=1,
               graph_optimization_level="basic") as backend:
        info = backend.describe()
        import onnxruntime

        assert info["runtime"] == "onnxruntime" and info["runtime_version"] == onnxruntime.__version__
        assert info["providers"] == ["CPUExecutionProvider"]
        assert info["intra_op_num_threads"] == 1
        assert info["graph_optimization_level"] == "ORT_ENABLE_BASIC"
        json.dumps(info, default=str)


@pytest.mark.runtime
def test_onnxruntime_unavailable_providers_are_skipped(test_models_dir: Path, manifest: Dict[str, Any],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    require_runtime("onnxruntime")
    import onnxruntime

    missing = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
               if p not in onnxruntime.get_available_providers()]
    if not missing:
        pytest.skip("this onnxruntime build has TensorRT and CUDA providers")
    providers = [("TensorrtExecutionProvider", {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                                "trt_engine_cache_path": "~/.cache/edgesdk/trt"}),
                 "CUDAExecutionProvider", ["CPUExecutionProvider", {}]]
    path = test_models_dir / _art(manifest, "classifier_onnx")["file"]
    with caplog.at_level("WARNING"):
        with create_backend("onnxruntime", path, providers=providers) as backend:
            info = backend.describe()
    assert info["providers"] == ["CPUExecutionProvider"]
    assert set(missing) <= set(info["providers_skipped"])
    assert any("not in this onnxruntime build" in r.getMessage() for r in caplog.records)
    with pytest.raises(BackendError, match="strict_providers"):
        create_backend("onnxruntime", path, providers=providers, strict_providers=True)
    with pytest.raises(BackendError, match="graph_optimization_level"):
        create_backend("onnxruntime", path, graph_optimization_level="turbo")
    with pytest.raises(BackendError, match="providers: expected each entry"):
        create_backend("onnxruntime", path, providers=[42])
    with create_backend("onnxruntime", path, providers="CPUExecutionProvider", graph_optimization_level=0,
                        enable_cpu_mem_arena=False, execution_mode="parallel", inter_op_num_threads=1) as backend:
        assert backend.describe()["graph_optimization_level"] == "ORT_DISABLE_ALL"


@pytest.mark.runtime
def test_tflite_options(test_models_dir: Path, manifest: Dict[str, Any], tmp_path: Path) -> None:
    art = _art(manifest, "classifier_tflite")
    images, refs = _references(test_models_dir, manifest, "classifier")
    with _open(test_models_dir, manifest, "classifier_tflite", num_threads=1, use_xnnpack=False) as backend:
        info = backend.describe()
        assert info["num_threads"] == 1 and info["use_xnnpack"] is False
        if "delegated_partitions" in info:          # the runtime exposes its execution plan
            assert info["delegated_partitions"] == 0
        assert info["runtime"] in ("ai_edge_litert", "tflite_runtime", "tensorflow")
        out = backend.infer({"images": _prepare(art, images[0])})["logits"]
        assert np.max(np.abs(out - refs["logits"][0])) <= art["tolerance"]["atol"]
    with pytest.raises(BackendError, match="could not load TFLite delegate"):
        create_backend("tflite", test_models_dir / art["file"], delegates=[str(tmp_path / "libnope.so")])
    with pytest.raises(BackendError, match="delegates: expected"):
        create_backend("tflite", test_models_dir / art["file"], delegates=[42])


@pytest.mark.runtime
def test_openvino_options(test_models_dir: Path, manifest: Dict[str, Any], tmp_path: Path) -> None:
    art = _art(manifest, "classifier_openvino")
    path = test_models_dir / art["file"]
    with _open(test_models_dir, manifest, "classifier_openvino", device="CPU", performance_hint="latency",
               num_streams=1, inference_num_threads=1, cache_dir=tmp_path / "ovcache") as backend:
        info = backend.describe()
        assert info["execution_devices"] == ["CPU"]
        assert info["performance_hint"] == "LATENCY"
        assert info["num_streams"] == 1 and info["inference_num_threads"] == 1
    with pytest.raises(BackendError, match=r"available devices \['CPU'"):
        create_backend("openvino", path, device="NOPE")
    with pytest.raises(BackendError, match="performance_hint"):
        create_backend("openvino", path, performance_hint="FAST")
    with create_backend("openvino", path, device="AUTO") as backend:
        assert backend.inputs[0].shape == (1, 3, 32, 32)


@pytest.mark.runtime
def test_openvino_computes_in_f32_on_cpu_unless_asked(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    """OpenVINO's CPU default is bf16 on CPUs with AVX512-BF16/AMX: an FP32 artifact would silently lose
    accuracy. The backend pins f32 on CPU; bf16 is an explicit opt-in."""
    require_runtime("openvino")
    import openvino as ov

    art = _art(manifest, "classifier_openvino")
    path = test_models_dir / art["file"]
    images, refs = _references(test_models_dir, manifest, "classifier")
    with create_backend("openvino", path) as backend:
        assert backend.describe()["inference_precision_hint"] == "f32"
        out = backend.infer({"images": _prepare(art, images[0])})["logits"]
        assert np.max(np.abs(out - refs["logits"][0])) <= art["tolerance"]["atol"]
    with pytest.raises(BackendError, match="inference_precision: expected one of"):
        create_backend("openvino", path, inference_precision="int4")
    if "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with create_backend("openvino", path, inference_precision="bf16") as backend:
            assert backend.describe()["inference_precision_hint"] == "bf16"
    with create_backend("openvino", path, inference_precision="default") as backend:
        assert "INFERENCE_PRECISION_HINT" not in backend.describe()["config"]


@pytest.mark.runtime
def test_openvino_reads_onnx_when_asked(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    require_runtime("openvino")
    art = _art(manifest, "classifier_onnx")
    images, refs = _references(test_models_dir, manifest, "classifier")
    with create_backend("openvino", test_models_dir / art["file"]) as backend:
        assert backend.name == "openvino"
        assert [s.name for s in backend.inputs] == ["images"]
        out = backend.infer({"images": images[0]})["logits"]
        assert np.max(np.abs(out - refs["logits"][0])) <= art["tolerance"]["atol"]
        assert backend.metadata["edgesdk_contract"] == art["metadata"]["edgesdk_contract"]


# -- broken files -----------------------------------------------------------------------------------
def _corruptions(data: bytes) -> Dict[str, bytes]:
    rng = random.Random(0)
    return {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "header-only": data[:40],
        "garbage": bytes(rng.randrange(256) for _ in range(len(data))),
        "text": b"<html>404 Not Found</html>\n" * 20,
    }


@pytest.mark.runtime
@pytest.mark.parametrize("key", ["classifier_onnx", "classifier_tflite", "classifier_int8_tflite", "classifier_openvino"])
def test_corrupt_files_raise_model_file_error(key: str, test_models_dir: Path, manifest: Dict[str, Any],
                                              tmp_path: Path) -> None:
    art = _art(manifest, key)
    require_runtime(art["backend"], art)
    src = test_models_dir / art["file"]
    for label, data in _corruptions(src.read_bytes()).items():
        bad = tmp_path / f"{label}{src.suffix}"
        bad.write_bytes(data)
        if "weights" in art:
            (tmp_path / f"{label}.bin").write_bytes((test_models_dir / art["weights"]).read_bytes())
        with pytest.raises(ModelFileError) as err:
            create_backend(art["backend"], bad)
        msg = str(err.value)
        assert bad.name in msg, msg
        if label == "empty":
            assert "empty (0 bytes)" in msg
        else:
            assert "re-export" in msg and str(len(data)) in msg, msg
    with pytest.raises(ModelFileError, match="does not exist"):
        create_backend(art["backend"], tmp_path / f"missing{src.suffix}")


@pytest.mark.runtime
def test_onnx_error_says_not_a_valid_onnx_model(test_models_dir: Path, manifest: Dict[str, Any], tmp_path: Path) -> None:
    require_runtime("onnxruntime")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes((test_models_dir / "classifier.onnx").read_bytes()[:1000])
    with pytest.raises(ModelFileError, match=r"not a valid ONNX model .*1000 bytes.*re-export it or download it again"):
        create_backend("onnxruntime", bad)


@pytest.mark.runtime
def test_openvino_missing_or_truncated_bin(test_models_dir: Path, manifest: Dict[str, Any], tmp_path: Path) -> None:
    require_runtime("openvino")
    xml = tmp_path / "classifier.xml"
    xml.write_bytes((test_models_dir / "classifier.xml").read_bytes())
    with pytest.raises(ModelFileError, match=r"expects its weights at .*classifier\.bin.*does not exist"):
        create_backend("openvino", xml)
    (tmp_path / "classifier.bin").write_bytes((test_models_dir / "classifier.bin").read_bytes()[:100])
    with pytest.raises(ModelFileError, match="not a valid OpenVINO IR"):
        create_backend("openvino", xml)
    # a .bin elsewhere can be named explicitly
    with create_backend("openvino", xml, weights=test_models_dir / "classifier.bin") as backend:
        assert backend.outputs[0].name == "logits"


@pytest.mark.runtime
def test_tflite_metadata_reader_never_crashes_on_garbage(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    """Truncations and random byte flips give ModelFileError or a result, never IndexError/struct.error."""
    data = (test_models_dir / _art(manifest, "classifier_int8_tflite")["file"]).read_bytes()
    for n in range(0, len(data), 13):
        with pytest.raises(ModelFileError):
            verify_model(data[:n])
    rng = random.Random(1)
    for _ in range(1500):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 16)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        for fn in (verify_model, read_metadata):
            try:
                fn(bytes(mutated))
            except ModelFileError:
                pass


@pytest.mark.runtime
def test_tflite_metadata_reader(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, "detector_tflite")
    raw = read_metadata(test_models_dir / art["file"])
    assert raw["edgesdk_contract"] == art["metadata"]["edgesdk_contract"].encode()
    assert "min_runtime_version" in raw
    text = decode_text_metadata(raw)
    assert text["min_runtime_version"] == art["min_runtime_version"]
    assert decode_text_metadata({"bin": b"\x01\x02\xff", "ctl": b"a\x00b", "ok": b"x\n"}) == {"ok": "x\n"}
    summary = verify_model(test_models_dir / art["file"])
    assert summary["subgraphs"] == 1 and summary["metadata"] == len(raw)
    with pytest.raises(ModelFileError, match="identifier"):
        read_metadata(b"\x10\x00\x00\x00NOPE" + b"\x00" * 32)


# -- registry ---------------------------------------------------------------------------------------
@pytest.mark.runtime
def test_backend_for_path() -> None:
    assert backend_for_path("a/model.onnx") == "onnxruntime"
    assert backend_for_path("model.TFLITE") == "tflite"
    assert backend_for_path(Path("ir/model.xml")) == "openvino"
    with pytest.raises(ModelFileError, match=r"expected extension one of \.onnx.*\.tflite.*\.xml.*got '\.pt'"):
        backend_for_path("yolo.pt")
    with pytest.raises(ModelFileError, match="no extension"):
        backend_for_path("model")


@pytest.mark.runtime
def test_unknown_extension_and_backend_name(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="expected extension one of"):
        create_backend(None, _tiny_backend_file(tmp_path, ".engine"))
    with pytest.raises(BackendError, match=r"unknown backend 'tensorrt'; known backends: onnxruntime, openvino, tflite"):
        create_backend("tensorrt", _tiny_backend_file(tmp_path, ".onnx"))
    with pytest.raises(BackendError, match="known backends"):
        get_backend_class("nope")
    assert known_backends() == ["onnxruntime", "openvino", "tflite"]
    assert set(available_backends()) <= set(known_backends())


@pytest.mark.runtime
def test_auto_backend_and_aliases(test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, "classifier_onnx")
    require_runtime("onnxruntime")
    for name in (None, "auto", "onnx", "ORT", "onnxruntime"):
        with create_backend(name, test_models_dir / art["file"]) as backend:
            assert backend.name == "onnxruntime"


class _DummyBackend:
    name = "dummy"

    def __init__(self, path: Any, *, scale: float = 1.0) -> None:
        self.path = Path(path)
        self.scale = scale
        self.inputs = [TensorSpec("x", (None, 2), np.float32)]
        self.outputs = [TensorSpec("y", (None, 2), np.float32)]
        self.metadata: Dict[str, str] = {}

    def infer(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        return {"y": validate_feeds(self.inputs, feeds)["x"] * self.scale}

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"backend": self.name}

    def __enter__(self) -> "_DummyBackend":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@pytest.mark.runtime
def test_register_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("sdk.backends.BACKENDS", dict(BACKENDS))
    monkeypatch.setattr("sdk.backends.EXTENSIONS", dict(EXTENSIONS))
    register_backend("dummy", "tests.sdk.test_backends:_DummyBackend", extensions=(".dummy",))
    path = _tiny_backend_file(tmp_path, ".dummy")
    assert backend_for_path(path) == "dummy"
    with create_backend(None, path, scale=2.0) as backend:
        assert isinstance(backend, Backend)
        np.testing.assert_array_equal(backend.infer({"x": np.ones((3, 2), np.float32)})["y"], 2 * np.ones((3, 2)))
    with pytest.raises(ValueError, match="module:Class"):
        register_backend("bad", "no_colon")
    register_backend("broken", "tests.sdk.test_backends:NoSuchClass")
    with pytest.raises(BackendError, match="has no class 'NoSuchClass'"):
        get_backend_class("broken")


@pytest.mark.runtime
@pytest.mark.parametrize("backend", ["onnxruntime", "tflite", "openvino"])
def test_missing_runtime_raises_backend_unavailable_with_pip_line(backend: str, monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    for module in RUNTIME_MODULES[backend]:
        for name in list(sys.modules):
            if name == module or name.startswith(module + "."):
                monkeypatch.delitem(sys.modules, name)
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
        if backend == "tflite":
            monkeypatch.setitem(sys.modules, module + (".lite" if module == "tensorflow" else ".interpreter"), None)
    path = _tiny_backend_file(tmp_path, {"onnxruntime": ".onnx", "tflite": ".tflite", "openvino": ".xml"}[backend])
    if backend == "openvino":
        path.with_suffix(".bin").write_bytes(b"\x00")
    with pytest.raises(BackendUnavailable) as err:
        create_backend(backend, path)
    assert isinstance(err.value, ImportError)
    for line in BACKEND_PIP[backend]:
        assert line in str(err.value), str(err.value)


# -- imports ----------------------------------------------------------------------------------------
def _run_python(code: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=str(REPO), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


HEAVY = ["onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime", "tensorflow", "torch", "onnx", "flatbuffers"]


@pytest.mark.runtime
def test_import_is_lazy() -> None:
    out = _run_python(f"""
        import json, sys
        before = set(sys.modules)
        import sdk.backends
        import sdk.backends.onnxruntime_backend, sdk.backends.tflite_backend, sdk.backends.openvino_backend
        import sdk.backends.tflite_metadata
        heavy = {HEAVY!r}
        new = [m for m in set(sys.modules) - before if m.split(".")[0] in heavy]
        print(json.dumps(sorted(new)))
    """)
    assert json.loads(out) == []


@pytest.mark.runtime
@pytest.mark.parametrize("key", ["classifier_onnx", "classifier_tflite"])
def test_running_a_model_does_not_import_torch(key: str, test_models_dir: Path, manifest: Dict[str, Any]) -> None:
    art = _art(manifest, key)
    require_runtime(art["backend"], art)
    shape = tuple(art["inputs"][0]["shape"])
    out = _run_python(f"""
        import json, sys
        import numpy as np
        from sdk.backends import create_backend
        with create_backend({art['backend']!r}, {str(test_models_dir / art['file'])!r}) as b:
            b.infer({{"images": np.zeros({shape!r}, np.float32)}})
        print(json.dumps(sorted(m for m in ("torch", "onnx", "tensorflow") if m in sys.modules)))
    """)
    assert json.loads(out) == []


# -- TensorSpec / validate_feeds ---------------------------------------------------------------------
@pytest.mark.runtime
def test_tensor_spec() -> None:
    spec = TensorSpec("images", [None, 3, 320, 320], "float32")
    assert spec.shape == (None, 3, 320, 320) and spec.dtype == np.dtype(np.float32)
    assert spec.is_dynamic and spec.accepts_shape((4, 3, 320, 320)) and not spec.accepts_shape((4, 3, 320))
    assert str(spec) == "images: (?, 3, 320, 320) float32"
    with pytest.raises(Exception):
        spec.name = "other"  # type: ignore[misc]  # frozen
    q = TensorSpec("x", (1, 4), np.int8, quantization=(np.float32(0.5), np.int64(-3)))
    assert q.quantization == (0.5, -3) and isinstance(q.quantization[1], int)
    assert hash(q) == hash(TensorSpec("x", (1, 4), np.int8, quantization=(0.5, -3)))
    pa = TensorSpec("w", (2, 4), np.int8, per_axis=PerAxisQuantization((0.1, 0.2), (0, 0), 0))
    assert pa.quantization is None and pa.per_axis.axis == 0
    assert format_shape((5,)) == "(5,)"


@pytest.mark.runtime
def test_validate_feeds_messages() -> None:
    specs = [TensorSpec("a", (1, 2), np.float32), TensorSpec("b", (None,), np.int8, quantization=(0.1, 0))]
    feeds = {"b": np.zeros(5, np.int8), "a": np.zeros((1, 2), np.float32)}
    assert list(validate_feeds(specs, feeds)) == ["a", "b"]
    with pytest.raises(FeedError, match=r"expected dtype int8 quantised with \(scale, zero_point\)=\(0\.1, 0\), got float32"):
        validate_feeds(specs, {"a": np.zeros((1, 2), np.float32), "b": np.zeros(5, np.float32)})
    with pytest.raises(FeedError, match=r"input 'a': expected shape \(1, 2\), got \(2, 2\)"):
        validate_feeds(specs, {"a": np.zeros((2, 2), np.float32), "b": np.zeros(5, np.int8)})
    assert issubclass(FeedError, ValueError) and issubclass(FeedError, BackendError)
    # lists are accepted as arrays, but their dtype must still match
    with pytest.raises(FeedError, match="float32, got float64|got int64"):
        validate_feeds(specs[:1], {"a": [[1.0, 2.0]]})


# -- converters.tflite_metadata -----------------------------------------------------------------------
def test_add_metadata_roundtrip(test_models_dir: Path, manifest: Dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("flatbuffers")
    from converters.tflite_metadata import add_metadata, load_schema_module

    try:
        load_schema_module()
    except ImportError as exc:
        pytest.skip(str(exc))
    art = _art(manifest, "classifier_int8_tflite")
    src = test_models_dir / art["file"]
    data = add_metadata(src, {"labels": "cat\ndog", "edgesdk_contract": b'{"v": 2}', "blob": b"\x00\xff\x10"})
    data = add_metadata(data, {"labels": b"cat\ndog\nbird"})
    entries = read_metadata(data)
    assert entries["labels"] == b"cat\ndog\nbird"
    assert entries["edgesdk_contract"] == b'{"v": 2}' and entries["blob"] == b"\x00\xff\x10"
    assert list(entries).count("labels") == 1 and "min_runtime_version" in entries
    verify_model(data)
    with pytest.raises(ValueError, match="expected a TFLite flatbuffer"):
        add_metadata(b"not a model at all", {"a": b"b"})
    with pytest.raises(ValueError, match="expected bytes or str"):
        add_metadata(src, {"a": 3})  # type: ignore[dict-item]
    out = tmp_path / "with_meta.tflite"
    out.write_bytes(data)
    require_runtime("tflite", art)
    images, refs = _references(test_models_dir, manifest, "classifier")
    with create_backend("tflite", out) as backend:
        assert backend.metadata["labels"] == "cat\ndog\nbird" and "blob" not in backend.metadata
        got = _dequantize(backend.infer({"images": _prepare(art, images[0])})["logits"], backend.outputs[0])
        assert np.max(np.abs(got - refs["logits"][0])) <= art["tolerance"]["atol"]
