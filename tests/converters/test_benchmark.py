"""`edgesdk benchmark`: converts, gates, profiles, and writes one table (JSON + Markdown)."""
from __future__ import annotations

import json

import pytest

from sdk.cli import main


@pytest.mark.slow
def test_benchmark_table_has_every_artifact_with_accuracy_and_latency(tmp_path, capsys):
    out = tmp_path / "bench"
    rc = main(["benchmark", "mobilenet", "--input-size", "64", "--to", "onnx,openvino", "--precision", "fp32,int8",
               "--out", str(out), "--val-count", "40", "--calib-count", "20", "--frames", "5", "--warmup", "1"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    doc = json.loads((out / "benchmark.json").read_text())
    assert {(r["format"], r["precision"]) for r in doc["rows"]} == {("onnx", "fp32"), ("onnx", "int8"),
                                                                   ("openvino", "fp32"), ("openvino", "int8")}
    for r in doc["rows"]:
        assert r["metric"] == "top1" and 0.0 <= r["value"] <= 1.0
        assert r["e2e_p50_ms"] >= r["infer_p50_ms"] > 0 and r["fps"] > 0
        assert r["backend"] == {"onnx": "onnxruntime", "openvino": "openvino"}[r["format"]]
    int8 = {r["format"]: r["size_mb"] for r in doc["rows"] if r["precision"] == "int8"}
    fp32 = {r["format"]: r["size_mb"] for r in doc["rows"] if r["precision"] == "fp32"}
    assert all(int8[f] < 0.5 * fp32[f] for f in int8)
    assert "| onnx | int8 |" in (out / "benchmark.md").read_text()


def test_benchmark_bad_input(tmp_path, capsys):
    assert main(["benchmark", "resnet", "--out", str(tmp_path / "b")]) == 2
    assert "expected a zoo family" in capsys.readouterr().err
    assert main(["benchmark", "mobilenet", "--frames", "0", "--out", str(tmp_path / "c")]) == 2
