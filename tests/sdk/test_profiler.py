"""sdk.profiler / sdk.report / `edgesdk profile`: stage timings, warm-up, reports, comparison, bad input."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import sdk
from sdk.profiler import Profiler, profile
from sdk.report import compare_reports, load_report, write_report


class _FakeModel:
    """preprocess/infer/postprocess that take known, distinct amounts of work."""

    def __init__(self) -> None:
        self.calls = 0

    def preprocess(self, image):
        return image.astype(np.float32), None

    def infer(self, tensor):
        self.calls += 1
        return {"y": tensor.sum()}

    def postprocess(self, outputs, transform, options=None):
        return float(outputs["y"])


def test_profiler_records_stages_excludes_warmup_and_sums_total():
    prof = Profiler(warmup=3, system_every_s=0)
    for i in range(10):
        prof.record({"capture": 1.0, "preprocess_ms": 2.0, "infer": 3.0 + i, "postprocess": 0.5}, age_ms=4.0)
    s = prof.summary()
    assert s["frames"] == 7 and s["warmup"] == 3
    assert s["stages"]["infer"]["min_ms"] == 6.0                    # the 3 warm-up frames (3, 4, 5 ms) are out
    assert s["stages"]["total"]["p50_ms"] == pytest.approx(1 + 2 + 9 + 0.5)
    assert s["frame_age"]["p50_ms"] == 4.0
    assert "track" not in s["stages"]                                 # never recorded: not reported
    assert s["overhead_pct"] is not None and s["overhead_pct"] >= 0
    with pytest.raises(ValueError, match=r"expected stages capture, .* got 'decode'"):
        prof.record({"decode": 1.0})
    with pytest.raises(ValueError, match="warmup"):
        Profiler(warmup=-1)


def test_profile_loop_on_frames_and_bare_images():
    model = _FakeModel()
    images = [np.full((8, 8, 3), i, np.uint8) for i in range(15)]
    seen = []
    prof = profile(model, images, count=10, profiler=Profiler(warmup=2, system_every_s=0),
                   tracker=lambda frame, result: result + 1, on_result=lambda f, r: seen.append(r))
    assert prof.frames == 10 and model.calls == 12 and len(seen) == 12
    assert seen[0] == 1.0                                             # tracker's output reaches on_result
    assert set(prof.summary()["stages"]) == {"capture", "preprocess", "infer", "postprocess", "track", "total"}
    short = profile(_FakeModel(), images[:4], count=10, profiler=Profiler(warmup=2, system_every_s=0))
    assert short.frames == 2                                           # the source ended early


def test_profile_real_model_on_synthetic_source_and_report(test_models_dir, tmp_path):
    model = sdk.load(test_models_dir / "detector.onnx")
    with model, sdk.open_source("synthetic://shapes?size=320x240") as src:
        prof = profile(model, src, count=12, profiler=Profiler(warmup=2))
    s = prof.summary()
    for stage in ("capture", "preprocess", "infer", "postprocess", "total"):
        assert s["stages"][stage]["count"] == 12
        assert s["stages"][stage]["p50_ms"] > 0
    parts = sum(s["stages"][k]["mean_ms"] for k in ("capture", "preprocess", "infer", "postprocess"))
    assert s["stages"]["total"]["mean_ms"] == pytest.approx(parts, rel=1e-3)
    assert s["frame_age"]["count"] == 12 and s["peak_rss_mb"] > 0
    entry = {"model": "detector.onnx", **s}
    rep = write_report(tmp_path / "a", [entry], host={"cpu_model": "x", "cores": 2}, source="synthetic://shapes",
                       series=[prof.series()])
    on_disk = load_report(tmp_path / "a")
    assert on_disk["models"][0]["stages"]["infer"]["p90_ms"] == s["stages"]["infer"]["p90_ms"]
    assert "report.md" in rep["files"]
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| detector.onnx | infer |" in md
    if "matplotlib" in sys.modules or _has("matplotlib"):
        assert {"stage_breakdown.png", "latency_over_time.png", "latency_cdf.png"} <= set(rep["files"])
    text = compare_reports([tmp_path / "a", tmp_path / "a" / "report.json"], tmp_path / "cmp")
    assert text.count("| infer |") == 2 and (tmp_path / "cmp" / "compare.md").is_file()


def _has(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_load_report_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"schema": "something/else"}))
    with pytest.raises(ValueError, match=r"expected a profile report with schema 'edgesdk.profile/1', got 'something/else'"):
        load_report(tmp_path / "x.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_report(tmp_path / "bad.json")


def test_profile_cli_end_to_end(test_models_dir, tmp_path, capsys):
    from sdk.cli import main

    out = tmp_path / "prof"
    rc = main(["profile", str(test_models_dir / "detector.onnx"), str(test_models_dir / "detector.tflite"),
               "--device", "x86-cpu", "--source", "synthetic://shapes?size=320x240", "--frames", "8",
               "--warmup", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    rep = json.loads((out / "report.json").read_text())
    assert [m["frames"] for m in rep["models"]] == [8, 8]
    assert rep["device"]["name"] == "x86-cpu" and rep["host"]["cores"] >= 1
    assert rep["models"][0]["backend"]["backend"] in ("onnxruntime", "openvino")
    assert rep["models"][1]["backend"]["backend"] == "tflite"
    for m in rep["models"]:
        assert set(m["stages"]["total"]) >= {"p50_ms", "p90_ms", "p99_ms", "mean_ms"}
        assert m["accuracy"] is None and "do not match the source" in m["accuracy_note"]   # 3 test classes
    assert "p50 ms" in printed and "report:" in printed
    assert main(["profile", "--compare", str(out / "report.json"), "--out", str(tmp_path / "c")]) == 0
    assert main(["profile"]) == 2
    assert main(["profile", str(test_models_dir / "detector.onnx"), "--frames", "0", "--out", str(tmp_path / "z")]) == 2


def test_profile_cli_bad_model_and_source(test_models_dir, tmp_path, capsys):
    from sdk.cli import main

    assert main(["profile", str(tmp_path / "missing.onnx"), "--frames", "2", "--out", str(tmp_path / "a")]) == 2
    assert "missing.onnx does not exist" in capsys.readouterr().out
    (tmp_path / "cut.onnx").write_bytes((test_models_dir / "detector.onnx").read_bytes()[:200])   # truncated file
    assert main(["profile", str(tmp_path / "cut.onnx"), "--frames", "2", "--out", str(tmp_path / "b")]) in (1, 2)
    capsys.readouterr()
    assert main(["profile", str(test_models_dir / "detector.onnx"), "--source", "rtsp-typo://x", "--frames", "2",
                 "--out", str(tmp_path / "c")]) == 1
    assert "unknown scheme 'rtsp-typo://'" in capsys.readouterr().err
    assert main(["demo", "--model", str(test_models_dir / "detector.onnx"), "--source", "/dev/video97",
                 "--frames", "2", "--out", str(tmp_path / "d")]) == 1
    assert "/dev/video97" in capsys.readouterr().err
