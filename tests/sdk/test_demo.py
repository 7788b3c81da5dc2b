"""`edgesdk demo` / `make demo`'s command: annotated video, profile report, per-stage table, live mAP."""
from __future__ import annotations

import json

import cv2
import pytest

from sdk.cli import main
from sdk.demo import DEMO_MODELS, default_models


def test_demo_runs_a_detector_and_writes_video_and_report(test_models_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "--model", str(test_models_dir / "detector.onnx"), "--source", "synthetic://shapes?size=320x240",
               "--frames", "6", "--warmup", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    rep = json.loads((out / "report.json").read_text())
    entry = rep["models"][0]
    assert entry["frames"] == 6
    video = cv2.VideoCapture(entry["video"])
    try:
        n = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, image = video.read()
    finally:
        video.release()
    assert ok and image.shape == (240, 320, 3) and n == 8          # warm-up frames are written too
    for word in ("stage", "p50 ms", "p90 ms", "p99 ms", "preprocess", "infer", "total", "report:"):
        assert word in printed


def test_demo_without_models_says_what_is_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sdk.demo._models_dir", lambda: tmp_path)
    assert default_models() == []
    assert main(["demo", "--out", str(tmp_path / "o")]) == 2
    msg = capsys.readouterr().out
    assert "shipped models are missing" in msg and DEMO_MODELS[0] in msg


@pytest.mark.slow
def test_shipped_demo_models_run_with_live_map(tmp_path, capsys):
    models = default_models()
    if len(models) != len(DEMO_MODELS):
        pytest.fail(f"shipped demo models missing: expected {DEMO_MODELS} in examples/models, got "
                    f"{[m.name for m in models]}")
    rc = main(["demo", "--frames", "20", "--warmup", "2", "--out", str(tmp_path / "d"), "--no-video"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    rep = json.loads((tmp_path / "d" / "report.json").read_text())
    for entry in rep["models"]:
        assert entry["precision"] == "int8"
        # the shipped YOLO-nano is still training (see its card): the live mAP must exist and be real, not high
        assert entry["accuracy"] is not None and 0.0 < entry["accuracy"]["map50"] <= 1.0, entry["accuracy"]
    assert "live accuracy" in printed
