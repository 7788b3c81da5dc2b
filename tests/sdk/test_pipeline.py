"""Tests of sdk.Pipeline (iterator and callback modes, latest(), stats, drops, shutdown) and `edgesdk run`,
with the small real test models on the synthetic source."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

import sdk
from sdk.cli import main as cli_main
from sdk.errors import SDKError, SourceError

SMALL = "synthetic://shapes?size=96x64&objects=3"


def edgesdk_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("edgesdk")]


@pytest.fixture(scope="module")
def detector(test_models_dir):
    model = sdk.load(test_models_dir / "detector.onnx")
    yield model
    model.close()


def same_detections(a, b) -> bool:
    return (np.array_equal(a.xyxy, b.xyxy) and np.array_equal(a.confidence, b.confidence)
            and np.array_equal(a.class_id, b.class_id))


def test_iterator_mode_gives_every_file_frame_with_the_models_own_result(detector):
    pipeline = sdk.Pipeline(f"{SMALL}&frames=12", detector)
    got = list(pipeline)
    assert [f.index for f, _ in got] == list(range(12))
    scene = sdk.synthetic.ShapesScene(size_hw=(64, 96), seed=0, n_objects=3, min_size=16, max_size=32)
    for frame, dets in got:
        assert isinstance(dets, sdk.Detections)
        assert np.array_equal(frame.image, scene.frame(frame.index, 30.0)[0])
        assert same_detections(dets, detector(frame.image))     # reference: the model called directly
        assert frame.meta["age_ms"] >= 0 and set(frame.meta["timings_ms"]) >= {"infer", "total", "capture"}
    stats = pipeline.stats()
    assert stats["frames"] == 12 and stats["dropped"] == 0 and stats["backend"] == "synthetic"
    for stage in ("capture", "preprocess", "infer", "postprocess", "total"):
        s = stats["latency_ms"][stage]
        assert 0 <= s["p50"] <= s["p90"] <= s["max"]
    assert stats["latency_ms"]["track"]["p50"] is None
    assert stats["latency_ms"]["total"]["max"] >= stats["latency_ms"]["infer"]["max"]
    assert not pipeline.running and not edgesdk_threads()


def test_latest_is_none_before_start_then_the_newest_result(detector):
    pipeline = sdk.Pipeline(f"{SMALL}&frames=5", detector)
    assert pipeline.latest() is None
    last = None
    for last in pipeline:
        pass
    frame, dets = pipeline.latest()
    assert frame.index == 4 and frame is last[0] and dets is last[1]


def test_callback_mode_and_join(detector):
    seen = []
    pipeline = sdk.Pipeline(f"{SMALL}&frames=8", detector, on_result=lambda f, r: seen.append((f.index, len(r))))
    pipeline.start()
    pipeline.join(timeout=60)
    assert [i for i, _ in seen] == list(range(8))
    assert [n for _, n in seen] == [len(detector(f.image)) for f in sdk.open_source(f"{SMALL}&frames=8")]
    assert not pipeline.running and not edgesdk_threads()
    with pytest.raises(ValueError, match="callback mode"):
        iter(pipeline).__next__()


def test_callback_error_stops_the_pipeline_and_reaches_join(detector):
    def on_result(frame, result):
        if frame.index >= 2:
            raise KeyError("actuator offline")

    pipeline = sdk.Pipeline(f"{SMALL}&realtime=1&fps=100", detector, on_result=on_result)
    pipeline.start()
    with pytest.raises(SDKError, match="actuator offline"):
        pipeline.join(timeout=60)
    assert not edgesdk_threads() and pipeline.source.closed


def test_model_error_reaches_the_consumer(detector):
    calls = []

    def flaky(image):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("bad tensor")
        return detector(image)

    with pytest.raises(SDKError, match="bad tensor"):
        for _ in sdk.Pipeline(f"{SMALL}&frames=10", flaky):
            pass
    assert not edgesdk_threads()


def test_live_source_with_a_slow_consumer_gets_fresh_frames_and_counts_drops(detector):
    pipeline = sdk.Pipeline(f"{SMALL}&realtime=1&fps=100", detector)
    indices = []
    for frame, _ in pipeline:
        indices.append(frame.index)
        time.sleep(0.05)     # 5 frame periods
        if len(indices) == 6:
            break
    stats = pipeline.stats()
    assert max(np.diff(indices)) > 1 and stats["dropped"] > 0
    assert stats["dropped"] == stats["source_dropped"] + stats["results_dropped"]
    assert not edgesdk_threads() and pipeline.source.closed


def test_consumer_raising_mid_stream_stops_everything(detector):
    with pytest.raises(RuntimeError, match="consumer"):
        with sdk.Pipeline(f"{SMALL}&realtime=1&fps=60", detector) as pipeline:
            for frame, _ in pipeline:
                if frame.index >= 2:
                    raise RuntimeError("consumer crashed")
    assert not edgesdk_threads() and pipeline.source.closed


def test_memory_stays_bounded(detector):
    pipeline = sdk.Pipeline(f"{SMALL}&frames=120", detector, stats_window=8)
    n = sum(1 for _ in pipeline)
    assert n == 120 and pipeline.stats()["frames"] == 120
    assert all(len(d) <= 8 for d in pipeline._stage.values()) and len(pipeline._age) <= 8
    assert len(pipeline._out) <= pipeline._out.policy.size


def test_max_frames_and_stop_from_another_thread(detector):
    assert sum(1 for _ in sdk.Pipeline(SMALL, detector, max_frames=7)) == 7
    pipeline = sdk.Pipeline(f"{SMALL}&realtime=1&fps=50", detector).start()
    threading.Timer(0.3, pipeline.stop).start()
    list(pipeline)                                   # ends when stop() is called
    assert not pipeline.running
    pipeline.stop()                                  # idempotent
    assert not edgesdk_threads()


def test_tracker_hook_is_applied(detector):
    class CountingTracker:
        def __init__(self):
            self.next_id = 0

        def update(self, dets):
            ids = np.arange(self.next_id, self.next_id + len(dets))
            self.next_id += len(dets)
            return sdk.Detections(dets.xyxy, dets.confidence, dets.class_id, tracker_id=ids, labels=dets.labels)

    tracker = CountingTracker()
    results = [r for _, r in sdk.Pipeline(f"{SMALL}&frames=3", detector, tracker=tracker)]
    assert np.array_equal(np.concatenate([r.tracker_id for r in results]), np.arange(tracker.next_id))


def test_model_path_and_classifier(test_models_dir):
    pipeline = sdk.Pipeline(f"{SMALL}&frames=3", test_models_dir / "classifier.onnx")
    results = [r for _, r in pipeline]
    assert len(results) == 3 and all(isinstance(r, sdk.Classification) for r in results)


def test_source_object_and_queue_policy(detector):
    source = sdk.open_source(f"{SMALL}&realtime=1&fps=100", policy="queue(3)")
    pipeline = sdk.Pipeline(source, detector, max_frames=5)
    assert pipeline.source is source
    indices = [f.index for f, _ in pipeline]
    assert len(indices) == 5 and indices == sorted(set(indices))
    assert str(pipeline._out.policy) == "queue(3)" and source.closed


@pytest.mark.parametrize("kwargs, words", [
    ({"policy": "newest"}, "policy"), ({"max_frames": 0}, "max_frames"), ({"on_result": 3}, "on_result"),
    ({"tracker": 5}, "tracker"), ({"stats_window": 1}, "stats_window"),
])
def test_bad_arguments(detector, kwargs, words):
    with pytest.raises(ValueError, match=words):
        sdk.Pipeline(SMALL, detector, **kwargs)


def test_bad_model_and_source(detector, tmp_path):
    with pytest.raises(ValueError, match="model"):
        sdk.Pipeline(SMALL, 42)
    with pytest.raises(ValueError, match="source"):
        sdk.Pipeline(None, detector)
    with pytest.raises(sdk.ModelFileError):
        sdk.Pipeline(SMALL, tmp_path / "missing.onnx")
    with pytest.raises(SourceError, match="no such file"):
        sdk.Pipeline(str(tmp_path / "nope.mp4"), detector).start()


# ----------------------------------------------------------------------------------------------- CLI

def test_cli_run_json_lines_and_save(test_models_dir, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    rc = cli_main(["run", str(test_models_dir / "detector.onnx"), "--source", SMALL, "--frames", "4", "--json",
                   "--save", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["index"] for r in lines] == [0, 1, 2, 3]
    assert all({"t_capture", "age_ms", "detections", "ground_truth"} <= set(r) for r in lines)
    summary = json.loads(captured.err.strip().splitlines()[-1])["summary"]
    assert summary["frames"] == 4 and summary["backend"] == "synthetic"
    import cv2

    cap = cv2.VideoCapture(str(out))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert count == 4


def test_cli_run_errors(test_models_dir, capsys):
    model = str(test_models_dir / "detector.onnx")
    assert cli_main(["run", model, "--source", SMALL, "--frames", "0"]) == 2
    assert cli_main(["run", model, "--source", SMALL, "--policy", "nope"]) == 2
    assert cli_main(["run", model, "--source", "/dev/video97"]) == 1
    err = capsys.readouterr().err
    assert "--frames: expected an int >= 1" in err and "SourceError" in err and "/dev/video97" in err
