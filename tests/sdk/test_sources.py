"""Tests of sdk.sources without external processes: URIs, policies, pipeline builders, the synthetic source,
image folders, OpenCV video files, missing cameras, and the Source's reconnection logic."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import sdk
from sdk.errors import SourceError
from sdk.sources import (FrameBuffer, Policy, Source, SourceInterrupted, open_source, parse_policy, parse_uri)
from sdk.sources.pipe import parse_ffmpeg_size, parse_gst_caps
from sdk.sources.pipelines import (gst_launch_argv, ffmpeg_argv, jetson_csi_pipeline, libcamera_pipeline,
                                   rtsp_ffmpeg_input, rtsp_gst_pipeline, user_gst_pipeline, with_appsink)
from sdk.sources.platform import detect_board
from sdk.synthetic import CLASSES, ShapesScene


def edgesdk_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("edgesdk")]


# ----------------------------------------------------------------------------------------------- URIs

@pytest.mark.parametrize("uri, kind, target", [
    (0, "v4l2", "/dev/video0"), ("2", "v4l2", "/dev/video2"), ("/dev/video10", "v4l2", "/dev/video10"),
    ("csi://1", "csi", 1), ("csi://", "csi", 0), ("rtsp://user:pw@10.0.0.2:554/live?x=1", "rtsp",
                                                  "rtsp://user:pw@10.0.0.2:554/live?x=1"),
    ("gst:videotestsrc ! video/x-raw", "gst", "videotestsrc ! video/x-raw"),
    ("synthetic://shapes?fps=10", "synthetic", "shapes"), ("http://127.0.0.1:8080/stream.mjpg", "stream",
                                                            "http://127.0.0.1:8080/stream.mjpg"),
])
def test_parse_uri_kinds(uri, kind, target):
    spec = parse_uri(uri)
    assert (spec.kind, spec.target) == (kind, target)


def test_parse_uri_query_options_for_csi_and_synthetic():
    assert dict(parse_uri("csi://0?width=1920&height=1080&sensor-mode=2").options) == {
        "width": "1920", "height": "1080", "sensor_mode": "2"}
    assert dict(parse_uri("synthetic://shapes?fps=30&size=1280x720&seed=0").options) == {
        "fps": "30", "size": "1280x720", "seed": "0"}


def test_parse_uri_files_folders_globs(tmp_path):
    for name in ("b.png", "a.jpg", "c.txt"):
        (tmp_path / name).write_bytes(b"x")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x")
    assert parse_uri(str(tmp_path)).target == (str(tmp_path / "a.jpg"), str(tmp_path / "b.png"))
    assert parse_uri(str(tmp_path / "*.png")).target == (str(tmp_path / "b.png"),)
    assert parse_uri(tmp_path / "a.jpg").kind == "images"
    assert parse_uri(f"file://{video}").kind == "video"
    assert parse_uri(str(video)) == parse_uri(Path(video)) and parse_uri(str(video)).kind == "video"


@pytest.mark.parametrize("bad, words", [
    ("", "empty"), (None, "expected"), (True, "expected"), (-1, ">= 0"), ("/dev/videoX", "number"),
    ("foo://bar", "unknown scheme"), ("/no/such/path.mp4", "no such file"), ("gst:", "pipeline"),
    ("rtsp:///path", "no host"), ("csi://abc", "sensor number"), (3.5, "float"),
    ("synthetic://shapes?fps", "query"),
])
def test_parse_uri_bad(bad, words):
    with pytest.raises(SourceError, match=words):
        parse_uri(bad)


def test_parse_uri_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SourceError, match="image files .* got none"):
        parse_uri(str(tmp_path))
    with pytest.raises(SourceError, match="matching"):
        parse_uri(str(tmp_path / "*.png"))


# ----------------------------------------------------------------------------------------------- policies

def test_parse_policy():
    assert parse_policy("latest") == Policy("latest", 1)
    assert parse_policy("queue(30)") == Policy("queue", 30) == parse_policy(" Queue:30 ")
    assert parse_policy("every").kind == "every"
    assert parse_policy(None, default="every").kind == "every"
    assert str(parse_policy("queue(3)")) == "queue(3)"
    for bad in ("queue(0)", "newest", "queue()", 5):
        with pytest.raises(ValueError, match="policy"):
            parse_policy(bad)


def test_latest_buffer_keeps_the_newest_and_counts_drops():
    buf = FrameBuffer(parse_policy("latest"))
    for i in range(5):
        assert buf.put(i)
    assert buf.dropped == 4 and len(buf) == 1
    assert buf.get(0.1) == 4
    with pytest.raises(TimeoutError):
        buf.get(0.01)


def test_queue_buffer_keeps_the_newest_n():
    buf = FrameBuffer(parse_policy("queue(3)"))
    for i in range(7):
        buf.put(i)
    assert [buf.get(0.1) for _ in range(3)] == [4, 5, 6] and buf.dropped == 4


def test_every_buffer_applies_backpressure_and_drops_nothing():
    buf = FrameBuffer(parse_policy("every"))
    capacity = buf.policy.size
    producer = threading.Thread(target=lambda: [buf.put(i) for i in range(capacity + 3)], daemon=True)
    producer.start()
    deadline = time.monotonic() + 10
    while buf.put_count < capacity and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert buf.put_count == capacity and producer.is_alive()   # blocked, waiting for room
    got = [buf.get(5.0) for _ in range(capacity + 3)]
    producer.join(5.0)
    assert got == list(range(capacity + 3)) and buf.dropped == 0


def test_buffer_close_delivers_held_items_then_end_or_error():
    buf = FrameBuffer(parse_policy("queue(4)"))
    buf.put("a")
    buf.close()
    assert buf.get(0.1) == "a" and buf.get(0.1) is None and not buf.put("b")
    failed = FrameBuffer(parse_policy("latest"))
    failed.put("x")
    failed.close(SourceError("boom"))
    assert failed.get(0.1) == "x"
    with pytest.raises(SourceError, match="boom"):
        failed.get(0.1)


def test_buffer_keep_waiting_extends_the_timeout():
    buf = FrameBuffer(parse_policy("latest"))
    calls = []

    def keep_waiting():
        calls.append(1)
        if len(calls) == 2:
            buf.put("late")
        return len(calls) < 3

    assert buf.get(0.01, keep_waiting=keep_waiting) == "late"


# ----------------------------------------------------------------------------------------------- builders

def test_jetson_csi_pipeline_matches_the_nvargus_reference():
    assert jetson_csi_pipeline(0) == (
        "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1,format=NV12"
        " ! nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR")
    assert jetson_csi_pipeline(1, width=1920, height=1080, fps=59.94, sensor_mode=2, flip=2) == (
        "nvarguscamerasrc sensor-id=1 sensor-mode=2 ! video/x-raw(memory:NVMM),width=1920,height=1080,"
        "framerate=59940/1000,format=NV12 ! nvvidconv flip-method=2 ! video/x-raw,format=BGRx ! videoconvert"
        " ! video/x-raw,format=BGR")


@pytest.mark.parametrize("kwargs, words", [({"flip": 8}, "flip-method"), ({"width": 0}, "width"),
                                           ({"fps": 0}, "fps"), ({"sensor_mode": -1}, "sensor_mode"),
                                           ({"flip": True}, "flip")])
def test_jetson_csi_pipeline_bad_values(kwargs, words):
    with pytest.raises(SourceError, match=words):
        jetson_csi_pipeline(0, **kwargs)


def test_libcamera_pipeline():
    assert libcamera_pipeline(width=640, height=480, fps=15) == (
        "libcamerasrc ! video/x-raw,width=640,height=480,framerate=15/1 ! videoconvert ! video/x-raw,format=BGR")
    assert libcamera_pipeline("/base/soc/i2c0mux/i2c@1/imx708@1a").startswith(
        'libcamerasrc camera-name="/base/soc/i2c0mux/i2c@1/imx708@1a" ! video/x-raw,width=1280,height=720')


def test_rtsp_pipelines_are_low_latency():
    body = rtsp_gst_pipeline("rtsp://h/s", transport="udp")
    assert body == ('rtspsrc location="rtsp://h/s" protocols=udp latency=0 drop-on-latency=true ! decodebin'
                    " ! videoconvert ! video/x-raw,format=BGR")
    assert rtsp_ffmpeg_input("rtsp://h/s") == ["-rtsp_transport", "tcp", "-fflags", "nobuffer", "-flags",
                                                "low_delay", "-i", "rtsp://h/s"]
    with pytest.raises(SourceError, match="transport"):
        rtsp_gst_pipeline("rtsp://h/s", transport="sctp")


def test_user_pipeline_sink_is_replaced():
    assert user_gst_pipeline("videotestsrc ! appsink drop=1") == "videotestsrc ! videoconvert ! video/x-raw,format=BGR"
    assert user_gst_pipeline("v4l2src ! video/x-raw ! ") == "v4l2src ! video/x-raw ! videoconvert ! video/x-raw,format=BGR"
    assert with_appsink("x").endswith("appsink drop=true max-buffers=1 sync=false")
    with pytest.raises(SourceError, match="source element"):
        user_gst_pipeline("! fakesink")


def test_gst_launch_argv_is_tokenised_without_a_shell():
    argv = gst_launch_argv('filesrc location="/a b/c.mp4" ! decodebin', 7, tool="gst")
    assert argv == ["gst", "-v", "filesrc", "location=/a b/c.mp4", "!", "decodebin", "!", "fdsink",
                    "name=edgesdk_sink", "fd=7", "sync=false"]
    with pytest.raises(SourceError, match="quotes"):
        gst_launch_argv('filesrc location="oops', 3)


def test_ffmpeg_argv():
    argv = ffmpeg_argv(["-i", "in.mp4"], tool="ff", realtime=True, size=(64, 48))
    assert argv[:6] == ["ff", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]
    assert argv[6] == "-re" and argv[7:9] == ["-i", "in.mp4"]
    assert argv[argv.index("-vf") + 1] == "scale=64:48" and argv[-1] == "pipe:1"
    assert argv[argv.index("-pix_fmt") + 1] == "bgr24"


def test_log_parsers_on_real_tool_output():
    line = ("/GstPipeline:pipeline0/GstFdSink:edgesdk_sink.GstPad:sink: caps = video/x-raw, width=(int)320, "
            "height=(int)240, interlace-mode=(string)progressive, framerate=(fraction)30000/1001, format=(string)BGR")
    fmt, w, h, fps = parse_gst_caps(line, "edgesdk_sink")
    assert (fmt, w, h) == ("BGR", 320, 240) and fps == pytest.approx(29.97, abs=0.01)
    assert parse_gst_caps(line.replace("edgesdk_sink", "other"), "edgesdk_sink") is None
    log = ["Input #0, rtsp, from 'rtsp://127.0.0.1:18554/test':",
           "  Stream #0:0: Video: h264 (Constrained Baseline), yuv420p(tv, smpte170m, progressive), 640x360 [SAR 1:1]",
           "Output #0, rawvideo, to 'pipe:1':",
           "  Stream #0:0: Video: rawvideo (BGR[24] / 0x18524742), bgr24(pc, gbr/smpte170m/smpte170m, progressive), "
           "320x240 [SAR 1:1 DAR 4:3], q=2-31, 55296 kb/s, 30 fps, 30 tbn"]
    assert parse_ffmpeg_size(log) == (320, 240)
    assert parse_ffmpeg_size(log[:2]) is None


def test_detect_board():
    assert detect_board({"nv_tegra_release": "# R35 (release), REVISION: 3.1", "device_tree_model": ""}) == "jetson"
    assert detect_board({"nv_tegra_release": "", "device_tree_model": "Raspberry Pi 5 Model B Rev 1.0"}) == "raspberry-pi"
    assert detect_board({"nv_tegra_release": "", "device_tree_model": ""}) == "other"


# ----------------------------------------------------------------------------------------------- synthetic

def test_synthetic_frames_equal_the_shared_generator():
    scene = ShapesScene(size_hw=(120, 160), seed=3, n_objects=5)
    with open_source("synthetic://shapes?size=160x120&seed=3&objects=5&fps=10&frames=6") as source:
        frames = list(source)
        assert source.backend == "synthetic" and not source.live and source.describe()["policy"] == "every"
    assert [f.index for f in frames] == list(range(6))
    assert all(b.t_capture >= a.t_capture for a, b in zip(frames, frames[1:]))
    for f in frames:
        image, boxes, class_ids = scene.frame(f.index, 10.0)
        assert np.array_equal(f.image, image) and np.array_equal(f.boxes, boxes)
        assert np.array_equal(f.class_ids, class_ids)
        gt = f.ground_truth()
        assert gt.labels == CLASSES and np.array_equal(gt.xyxy, boxes) and f.source.startswith("synthetic://")
    assert source.closed


def test_synthetic_options_from_keywords_override_the_query():
    with open_source("synthetic://shapes?size=64x48&frames=2", width=80, height=40, fps=5) as source:
        frame = source.read()
    assert frame.image.shape == (40, 80, 3) and source.fps == 5


@pytest.mark.parametrize("uri, words", [
    ("synthetic://shapes?fps=0", "fps"), ("synthetic://shapes?size=big", "WIDTHxHEIGHT"),
    ("synthetic://shapes?colour=red", "unknown option"), ("synthetic://cubes", "unknown synthetic scene"),
    ("synthetic://shapes?realtime=maybe", "flag"), ("synthetic://shapes?size=8x8", "size_hw"),
])
def test_synthetic_bad_options(uri, words):
    with pytest.raises(SourceError, match=words):
        open_source(uri)


def test_realtime_latest_source_drops_for_a_slow_consumer():
    with open_source("synthetic://shapes?size=64x48&fps=200&realtime=1&objects=1") as source:
        assert source.live and source.threaded and str(source.policy) == "latest"
        frames = []
        for _ in range(6):
            frames.append(source.read())
            time.sleep(0.05)   # 10 frame periods
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and max(np.diff(indices)) > 1 and source.dropped > 0
    assert not edgesdk_threads()


def test_realtime_every_source_drops_nothing():
    with open_source("synthetic://shapes?size=64x48&fps=500&realtime=1&frames=20", policy="every") as source:
        indices = [f.index for f in source]
    assert indices == list(range(20)) and source.dropped == 0


def test_consumer_raising_stops_the_reader_thread():
    source = open_source("synthetic://shapes?size=64x48&fps=100&realtime=1")
    with pytest.raises(RuntimeError, match="consumer"):
        with source:
            for frame in source:
                if frame.index >= 2:
                    raise RuntimeError("consumer failed")
    assert source.closed and not edgesdk_threads()
    assert source.events[-1].kind == "closed"


def test_leaving_the_loop_closes_the_source():
    source = open_source("synthetic://shapes?size=64x48&fps=100&realtime=1")
    it = iter(source)
    next(it)
    it.close()
    assert source.closed and not edgesdk_threads() and source.read() is None


# ----------------------------------------------------------------------------------------------- files

def test_image_folder_in_name_order_skipping_unreadable(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (20 + i, 30, 3), dtype=np.uint8) for i in range(3)]
    for i, img in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), img)
    (tmp_path / "01b.png").write_bytes(b"not a png")
    gray = rng.integers(0, 255, (10, 10), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "03.png"), gray)
    with open_source(str(tmp_path)) as source:
        frames = list(source)
    assert len(frames) == 4 and [f.index for f in frames] == [0, 1, 2, 3]
    for f, img in zip(frames, images):
        assert np.array_equal(f.image, img)
    assert np.array_equal(frames[3].image, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert frames[0].meta["path"].endswith("00.png") and source.reader.skipped == [str(tmp_path / "01b.png")]
    with open_source(str(tmp_path / "0[12].png")) as source:
        assert [Path(f.meta["path"]).name for f in source] == ["01.png", "02.png"]


def _write_video(path: Path, n: int, size=(64, 48)) -> list:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    frames = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), (i * 20) % 255, np.uint8)
        img[:, : size[0] // 2] = (0, 0, 200)
        writer.write(img)
        frames.append(img)
    writer.release()
    return frames


def test_video_file_through_opencv(tmp_path):
    if not sdk.sources.platform.opencv_has_ffmpeg():
        pytest.skip("this OpenCV has no FFmpeg")
    written = _write_video(tmp_path / "clip.avi", 8)
    with open_source(str(tmp_path / "clip.avi")) as source:
        assert source.backend == "opencv-ffmpeg" and source.fps == pytest.approx(10.0)
        frames = list(source)
    assert len(frames) == 8
    for f, ref in zip(frames, written):   # MJPG is lossy: compare to the written frames within JPEG error
        assert f.image.shape == ref.shape and np.abs(f.image.astype(int) - ref).mean() < 4


def test_camera_vanishing_mid_stream_is_a_clear_error(tmp_path):
    """A 'camera' whose device node disappears: the OpenCV reader is fed a video file while a stand-in device
    node exists, then the node is removed; the consumer must get a SourceError, not a hang."""
    if not sdk.sources.platform.opencv_has_ffmpeg():
        pytest.skip("this OpenCV has no FFmpeg")
    from sdk.sources.opencv_reader import OpenCVReader

    _write_video(tmp_path / "cam.avi", 5)
    node = tmp_path / "video9"
    node.write_bytes(b"")

    class Unplugged(OpenCVReader):
        """Removes the device node after its 2nd frame, in the capture thread itself. (Removing it from the
        consumer raced with the capture thread reaching the file's end first, a plain read failure.)"""

        reads = 0

        def read(self):  # noqa: ANN201
            out = super().read()
            Unplugged.reads += 1
            if Unplugged.reads == 2:
                node.unlink(missing_ok=True)
            return out

    reader = Unplugged(str(tmp_path / "cam.avi"), "any", uri="/dev/video9", live=True, reconnectable=True,
                       device_path=str(node))
    source = Source(reader, uri="/dev/video9", kind="v4l2", max_retries=2, backoff=0.01)
    got = []
    with pytest.raises(SourceError, match="no such device"):
        with source.open():
            for frame in source:
                got.append(frame.index)
    assert not node.exists() and Unplugged.reads >= 2
    kinds = [e.kind for e in source.events]
    assert "disconnected" in kinds and "gave_up" in kinds and "vanished" in source.events[kinds.index("disconnected")].message
    assert not edgesdk_threads()


# ----------------------------------------------------------------------------------------------- devices

def test_missing_camera_lists_the_devices_present():
    present = sdk.sources.list_video_devices()
    missing = next(f"/dev/video{i}" for i in range(90, 200) if f"/dev/video{i}" not in present)
    with pytest.raises(SourceError, match="no such device; video devices present: ") as info:
        open_source(missing)
    assert missing in str(info.value)
    assert (", ".join(present) if present else "none") in str(info.value)


def test_csi_on_a_host_that_is_neither_jetson_nor_pi():
    if detect_board() != "other":
        pytest.skip("this host is a Jetson or a Raspberry Pi")
    with pytest.raises(SourceError, match="Jetson .* Raspberry Pi"):
        open_source("csi://0")
    with pytest.raises(SourceError, match="unknown option"):
        open_source("csi://0?zoom=2", board="jetson")


@pytest.mark.parametrize("kwargs, words", [
    ({"backend": "picamera2"}, "cannot read"), ({"backend": "nonsense"}, "expected one of"),
    ({"transport": "sctp"}, "transport"), ({"policy": "newest"}, "policy"), ({"max_retries": -1}, "max_retries"),
    ({"fps": -5}, "fps"), ({"size": "10x"}, "WIDTHxHEIGHT"), ({"board": "pc"}, "board"),
    ({"backoff": 0}, "backoff"),
])
def test_bad_options(kwargs, words):
    with pytest.raises((SourceError, ValueError), match=words):
        open_source("synthetic://shapes?size=64x48&frames=1", **kwargs)


def test_read_before_open_and_after_end():
    from sdk.sources.synthetic import SyntheticReader

    reader = SyntheticReader("shapes", uri="s", size_hw=(48, 64), fps=10, seed=0, objects=1, frames=1, noise=False)
    source = Source(reader, uri="s")
    with pytest.raises(SourceError, match="before open"):
        source.read()
    source.open()
    assert source.read() is not None and source.read() is None and source.read() is None
    source.close()


# ----------------------------------------------------------------------------------------------- reconnection

class ScriptedReader:
    """A reader following a script: ints are frames, "cut" breaks the stream, "refuse" fails an open."""

    backend = "scripted"
    live = True
    reconnectable = True
    fps = None

    def __init__(self, reads: list, opens: list) -> None:
        self.reads, self.opens = list(reads), list(opens)
        self.open_calls = 0

    def open(self):
        self.open_calls += 1
        if self.opens and self.opens.pop(0) == "refuse":
            raise SourceInterrupted("connection refused")

    def read(self):
        if not self.reads:
            return None
        step = self.reads.pop(0)
        if step == "cut":
            raise SourceInterrupted("connection reset")
        return np.full((4, 4, 3), step, np.uint8), None

    def interrupt(self):
        pass

    def close(self):
        pass

    def describe(self):
        return {"backend": self.backend}


def test_reconnects_with_backoff_and_reports_events():
    seen = []
    reader = ScriptedReader([1, 2, "cut", 3, 4], ["ok", "refuse", "refuse", "ok"])
    source = Source(reader, uri="scripted://", policy="every", max_retries=5, backoff=0.01, on_event=seen.append)
    with source.open():
        values = [int(f.image[0, 0, 0]) for f in source]
    assert values == [1, 2, 3, 4] and source.reconnects == 1 and reader.open_calls == 4
    kinds = [e.kind for e in source.events]
    assert kinds == ["opened", "disconnected", "reconnecting", "reconnecting", "reconnecting", "reconnected", "end",
                     "closed"]
    assert [e.attempt for e in source.events if e.kind == "reconnecting"] == [1, 2, 3]
    delays = [float(e.message.split()[1]) for e in source.events if e.kind == "reconnecting"]
    assert delays == [0.01, 0.02, 0.04]
    assert [e.kind for e in seen] == kinds


def test_gives_up_after_max_retries():
    reader = ScriptedReader([1, "cut"], ["ok", "refuse", "refuse", "refuse"])
    source = Source(reader, uri="scripted://", policy="every", max_retries=2, backoff=0.01)
    with pytest.raises(SourceError, match="gave up after 2 reconnection attempts; last error: connection refused"):
        with source.open():
            list(source)
    assert [e.kind for e in source.events][-2:] == ["gave_up", "closed"]


def test_initial_open_is_retried_for_reconnectable_sources():
    ok = Source(ScriptedReader([7], ["refuse", "ok"]), uri="s://", policy="every", backoff=0.01).open()
    assert int(ok.read().image[0, 0, 0]) == 7
    ok.close()
    with pytest.raises(SourceError, match="could not open s:// after 2 attempts"):
        Source(ScriptedReader([], ["refuse"] * 5), uri="s://", max_retries=1, backoff=0.01).open()


def test_read_timeout_is_a_clear_error():
    class Stuck(ScriptedReader):
        def __init__(self):
            super().__init__([], [])
            self.gate = threading.Event()

        def read(self):
            self.gate.wait(5.0)
            return None

        def interrupt(self):
            self.gate.set()

    source = Source(Stuck(), uri="stuck://", read_timeout=0.05).open()
    with pytest.raises(SourceError, match="no frame for 0.05 s"):
        source.read()
    source.close()
    assert not edgesdk_threads()
