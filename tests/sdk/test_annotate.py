"""Tests of sdk.annotate: drawing, MP4 writing (read back), JSON lines, display detection."""
from __future__ import annotations

import io
import json

import cv2
import numpy as np
import pytest

import sdk
from sdk import annotate
from sdk.sources import Frame
from sdk.verify import Match


def dets(boxes, classes=None, scores=None, labels=("cat", "dog")):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(boxes)
    return sdk.Detections(boxes, np.full(n, 0.9) if scores is None else scores,
                          np.zeros(n, np.int64) if classes is None else classes, labels=labels)


def test_draw_boxes_on_a_copy_in_the_class_colour():
    image = np.zeros((100, 120, 3), np.uint8)
    out = annotate.draw(image, dets([[20, 30, 80, 90], [5, 5, 15, 15]], classes=[0, 1]))
    assert not image.any() and out.shape == image.shape and out is not image
    assert tuple(out[60, 20]) == annotate.color_for(0)        # left edge of box 0, below its caption
    assert tuple(out[60, 80]) == annotate.color_for(0)
    assert tuple(out[90, 50]) == annotate.color_for(0)
    assert annotate.color_for(0) != annotate.color_for(1)
    assert not out[45:75, 35:65].any()                          # the inside stays untouched


def test_draw_clips_boxes_outside_the_frame_and_handles_empty():
    image = np.zeros((50, 60, 3), np.uint8)
    out = annotate.draw(image, dets([[-30, -30, 500, 500]]))
    assert tuple(out[40, 59]) == annotate.color_for(0) == tuple(out[40, 0])
    assert np.array_equal(annotate.draw(image, sdk.Detections.empty())[30:, :], image[30:, :])


def test_draw_status_and_other_results_write_text():
    image = np.full((100, 300, 3), 128, np.uint8)
    for result in (sdk.Classification([3, 1], [0.7, 0.2], labels=[str(i) for i in range(5)]),
                   sdk.Embedding(np.ones(8)), Match("alice", 0.12, True), None):
        out = annotate.draw(image, result, fps=29.97, age_ms=12.0)
        assert (out[:20, :100] != 128).any()                   # text drawn top-left
        assert np.array_equal(out[75:], image[75:])


@pytest.mark.parametrize("bad", [None, np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((10, 10, 4), np.uint8)])
def test_draw_bad_image(bad):
    with pytest.raises(ValueError, match=r"BGR uint8 array \(H, W, 3\)"):
        annotate.draw(bad)


def test_video_writer_round_trip(tmp_path):
    path = tmp_path / "sub" / "out.mp4"
    frames = [np.full((48, 64, 3), v, np.uint8) for v in (30, 120, 220)]
    with annotate.VideoWriter(path, fps=10) as video:
        for f in frames:
            video.write(f)
        with pytest.raises(ValueError, match="64x48 like the first frame, got 32x48"):
            video.write(np.zeros((48, 32, 3), np.uint8))
    assert video.frames == 3 and path.stat().st_size > 0
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    back = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        back.append(img)
    cap.release()
    assert len(back) == 3
    for got, ref in zip(back, frames):
        assert got.shape == ref.shape and abs(float(got.mean()) - float(ref.mean())) < 6
    with pytest.raises(ValueError, match="fps"):
        annotate.VideoWriter(path, fps=0)


def test_json_lines_records():
    frame = Frame(np.zeros((8, 8, 3), np.uint8), index=7, t_capture=12.5, source="cam",
                  meta={"age_ms": 3.25, "timings_ms": {"infer": 1.0}})
    result = dets([[1, 2, 3, 4]])
    stream = io.StringIO()
    writer = annotate.JsonLinesWriter(stream)
    writer.write(frame, result)
    writer.write(frame, sdk.Classification([1], [0.5], labels=["a", "b"]))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0] == {"index": 7, "t_capture": 12.5, "age_ms": 3.25, "source": "cam",
                        "detections": result.to_dicts(), "timings_ms": {"infer": 1.0}}
    assert lines[1]["classes"] == [{"class_id": 1, "label": "b", "confidence": 0.5}] and writer.count == 2


def test_json_record_of_a_synthetic_frame_carries_ground_truth():
    with sdk.open_source("synthetic://shapes?size=96x64&frames=1") as source:
        frame = source.read()
    record = annotate.result_record(frame, sdk.Embedding(np.ones(4)), age_ms=1.0)
    assert record["ground_truth"] == frame.ground_truth().to_dicts() and len(record["embedding"]) == 4
    assert record["age_ms"] == 1.0


def test_json_lines_to_a_file(tmp_path):
    frame = Frame(np.zeros((8, 8, 3), np.uint8), index=0, t_capture=1.0, source="s")
    with annotate.JsonLinesWriter(tmp_path / "out.jsonl") as writer:
        writer.write(frame, Match(None, float("inf"), False))
    record = json.loads((tmp_path / "out.jsonl").read_text())
    assert record["match"] == {"name": None, "distance": float("inf"), "accepted": False}


def test_display_detection(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(annotate.sys, "platform", "linux")
    assert not annotate.has_display()
    assert annotate.show(np.zeros((4, 4, 3), np.uint8)) is None
    annotate.close_windows()
    monkeypatch.setenv("DISPLAY", ":0")
    assert annotate.has_display()
