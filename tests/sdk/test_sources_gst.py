"""Real external capture paths: gst-launch-1.0 pipelines, ffmpeg-made video files and an RTSP server on 127.0.0.1
(gst-rtsp-server through Debian's python3-gi), including a server restart mid-stream.

Every test stops by itself (read/open timeouts) and talks only to 127.0.0.1. Tests skip only when the tool
they need is absent (gst-launch-1.0, ffmpeg, /usr/bin/python3 with GstRtspServer).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sdk
from sdk.errors import SourceError
from sdk.sources import open_source

pytestmark = pytest.mark.slow

GST = shutil.which("gst-launch-1.0")
FFMPEG = shutil.which("ffmpeg")
SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(sdk.__file__).parent / "sources" / "testserver.py"
needs_gst = pytest.mark.skipif(GST is None, reason="gst-launch-1.0 is not installed (gstreamer1.0-tools)")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


def _has_rtsp_server() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    code = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    try:
        return subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_rtsp = pytest.mark.skipif(not (GST and _has_rtsp_server()),
                                reason="gst-rtsp-server for the system Python (gir1.2-gst-rtsp-server-1.0, "
                                       "python3-gi) or gst-launch-1.0 is missing")


def edgesdk_threads() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("edgesdk")]


def assert_reaped(pids: list) -> None:
    assert pids
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)      # not our child any more: it was reaped
        assert not os.path.exists(f"/proc/{pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    """The project's test server (sdk/sources/testserver.py) as a subprocess of the system Python."""

    def __init__(self, port: int, codec: str = "h264") -> None:
        self.port, self.codec = port, codec
        self.proc = None
        self.url = f"rtsp://127.0.0.1:{port}/test"

    def start(self, timeout: float = 20.0) -> "RtspServer":
        deadline = time.monotonic() + timeout
        while True:
            self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), "--port", str(self.port), "--codec", self.codec,
                                          "--size", "320x240", "--fps", "30"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            line = self.proc.stdout.readline().strip()
            if line.startswith("READY"):
                self.t_ready = time.monotonic()
                return self
            self.stop()
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP test server did not start on port {self.port}: {line!r}")
            time.sleep(0.2)   # the port may still be held by the previous instance

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def rtsp_server():
    server = RtspServer(free_port()).start()
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------- gst-launch

@needs_gst
def test_videotestsrc_pixels_are_exact_bgr_with_row_padding_removed():
    # 0xAARRGGBB = 0xff112233 -> BGR (0x33, 0x22, 0x11); 101 px rows are padded to 304 bytes by GStreamer
    uri = ("gst:videotestsrc pattern=solid-color foreground-color=0xff112233 num-buffers=5 "
           "! video/x-raw,width=101,height=33,framerate=30/1")
    with open_source(uri, backend="gst-launch", policy="every") as source:
        assert source.backend == "gst-launch" and source.live
        frames = list(source)
        pids = list(source.reader.pids)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]       # end of stream ends the iteration cleanly
    for f in frames:
        assert f.image.shape == (33, 101, 3) and f.image.dtype == np.uint8 and f.image.flags["C_CONTIGUOUS"]
        assert np.all(f.image == np.array([0x33, 0x22, 0x11], np.uint8))
    assert source.fps == 30 and [e.kind for e in source.events][-2:] == ["end", "closed"]
    assert_reaped(pids)
    assert not edgesdk_threads()


@needs_gst
def test_live_videotestsrc_latest_policy_drops_for_a_slow_consumer():
    uri = "gst:videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=60/1"
    with open_source(uri) as source:
        indices = []
        for frame in source:
            indices.append(frame.index)
            time.sleep(0.1)      # 6 frame periods per frame
            if len(indices) == 5:
                break
    assert max(np.diff(indices)) > 1 and source.dropped > 0
    assert source.describe()["reader"]["argv"][0].endswith("gst-launch-1.0")


@needs_gst
def test_consumer_raising_kills_and_reaps_the_subprocess():
    source = open_source("gst:videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1")
    pid = source.reader.proc.pid
    with pytest.raises(RuntimeError, match="robot fell over"):
        with source:
            for frame in source:
                if frame.index >= 3:
                    raise RuntimeError("robot fell over")
    assert_reaped([pid])
    assert not edgesdk_threads()


@needs_gst
def test_generator_close_kills_the_subprocess():
    source = open_source("gst:videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=30/1")
    it = iter(source)
    next(it)
    pids = list(source.reader.pids)
    it.close()
    assert source.closed
    assert_reaped(pids)
    assert not edgesdk_threads()


@needs_gst
def test_bad_pipeline_is_a_clear_error_without_retries(caplog):
    caplog.set_level("INFO", logger="sdk.sources")
    with pytest.raises(SourceError, match="no element"):
        open_source("gst:nosuchelement_xyz ! video/x-raw", backoff=0.05)
    assert "retrying" not in caplog.text and caplog.text.count("started gst-launch") == 1   # fatal: not retried
    assert not edgesdk_threads()


@needs_gst
def test_jetson_pipeline_on_a_pc_fails_clearly():
    with pytest.raises(SourceError, match="nvarguscamerasrc"):
        open_source("csi://0?width=640&height=480", board="jetson", backend="gst-launch")


# ----------------------------------------------------------------------------------------------- files

@needs_ffmpeg
def test_ffmpeg_made_video_read_by_opencv_and_by_ffmpeg_pipe(tmp_path):
    """A lossless video made by ffmpeg, read through both paths, equals ffmpeg's own raw BGR decode."""
    clip = tmp_path / "testsrc.mkv"
    lavfi = ["-f", "lavfi", "-i", "testsrc=size=96x64:rate=25", "-frames:v", "12"]
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *lavfi, "-c:v", "ffv1", "-pix_fmt", "bgr0",
                    str(clip)], check=True, timeout=60)
    raw = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", *lavfi, "-f", "rawvideo", "-pix_fmt", "bgr24",
                          "pipe:1"], check=True, capture_output=True, timeout=60).stdout
    reference = np.frombuffer(raw, np.uint8).reshape(12, 64, 96, 3)
    backends = ["ffmpeg"] + (["opencv-ffmpeg"] if sdk.sources.platform.opencv_has_ffmpeg() else [])
    for backend in backends:
        with open_source(str(clip), backend=backend) as source:
            assert source.backend == backend and not source.live
            frames = list(source)
        assert len(frames) == 12, backend
        for f, ref in zip(frames, reference):
            assert np.array_equal(f.image, ref), backend
    assert not edgesdk_threads()


@needs_ffmpeg
def test_ffmpeg_realtime_file_is_paced_and_threaded(tmp_path):
    clip = tmp_path / "clip.mp4"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=50", "-frames:v", "10", "-pix_fmt", "yuv420p", str(clip)],
                   check=True, timeout=60)
    with open_source(str(clip), realtime=True, policy="every") as source:
        assert source.live and source.threaded
        frames = list(source)
    assert len(frames) == 10
    span = frames[-1].t_capture - frames[0].t_capture
    assert span >= 9 / 50 * 0.9   # paced at the file's 50 fps, not read at decoder speed


def test_corrupt_video_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(SourceError, match="broken.mp4"):
        open_source(str(bad))


# ----------------------------------------------------------------------------------------------- RTSP

@needs_rtsp
@pytest.mark.parametrize("backend", ["gst-launch", "ffmpeg"])
def test_rtsp_stream_flows(rtsp_server, backend):
    if backend == "ffmpeg" and FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    with open_source(rtsp_server.url, backend=backend, read_timeout=15) as source:
        frames = [source.read() for _ in range(10)]
        pids = list(source.reader.pids)
    assert all(f.image.shape == (240, 320, 3) for f in frames)
    assert [f.index for f in frames] == sorted({f.index for f in frames})
    assert source.backend == backend
    assert_reaped(pids)


@needs_rtsp
def test_rtsp_server_restart_mid_stream_reconnects(rtsp_server):
    events = []
    with open_source(rtsp_server.url, backend="gst-launch", on_event=events.append, read_timeout=20,
                     backoff=0.1, max_retries=20) as source:
        for _ in range(5):
            source.read()
        rtsp_server.stop()
        time.sleep(0.5)
        rtsp_server.start()
        after = []
        deadline = time.monotonic() + 30
        while len(after) < 5 and time.monotonic() < deadline:
            frame = source.read()
            if frame.t_capture > rtsp_server.t_ready:
                after.append(frame)
        pids = list(source.reader.pids)
    assert len(after) == 5 and all(f.image.shape == (240, 320, 3) for f in after)
    kinds = [e.kind for e in events]
    assert kinds.index("disconnected") < kinds.index("reconnecting") < kinds.index("reconnected")
    assert source.reconnects >= 1 and len(pids) >= 2
    assert_reaped(pids)
    assert not edgesdk_threads()


@needs_rtsp
def test_rtsp_server_gone_gives_up(rtsp_server):
    with open_source(rtsp_server.url, backend="gst-launch", backoff=0.05, max_retries=2, read_timeout=20) as source:
        source.read()
        rtsp_server.stop()
        with pytest.raises(SourceError, match="gave up after 2 reconnection attempts"):
            while True:
                source.read()
    assert [e.kind for e in source.events][-2:] == ["gave_up", "closed"]
    assert not edgesdk_threads()


@needs_gst
def test_rtsp_nothing_listening_fails_after_retries():
    url = f"rtsp://127.0.0.1:{free_port()}/none"
    with pytest.raises(SourceError, match="could not open .* after 2 attempts"):
        open_source(url, backend="gst-launch", max_retries=1, backoff=0.05, open_timeout=10)
    assert not edgesdk_threads()


@needs_gst
def test_no_file_descriptors_leak_across_open_close(tmp_path):
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    uris = ["gst:videotestsrc is-live=true ! video/x-raw,width=32,height=24",
            "gst:videotestsrc num-buffers=3 ! video/x-raw,width=32,height=24"]
    if FFMPEG:
        clip = tmp_path / "c.mp4"
        subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=32x24",
                        "-frames:v", "3", "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=60)
        uris.append(str(clip))

    def cycle() -> None:
        for uri in uris:
            with open_source(uri, backend="ffmpeg" if uri.endswith(".mp4") else "auto") as source:
                source.read()
        with pytest.raises(SourceError):
            open_source("gst:nosuchelement_xyz ! video/x-raw")

    cycle()
    before = open_fds()
    for _ in range(3):
        cycle()
    assert open_fds() == before
