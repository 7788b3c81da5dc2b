"""Raw BGR frames from a gst-launch-1.0 or ffmpeg subprocess (for OpenCV builds without GStreamer).

The subprocess is started from an argument list (never a shell). Frame size comes from the tool's own
log: gst-launch-1.0 ``-v`` prints the caps negotiated at the fdsink (frames then go to a separate pipe fd),
ffmpeg prints its output stream (frames go to stdout). GStreamer pads BGR rows to a multiple of 4 bytes;
the reader removes that padding. ``close()`` terminates, then kills, then reaps the process: no zombies.
"""
from __future__ import annotations

import logging
import os
import re
import select
import subprocess
import threading
import time
from collections import deque
from typing import Callable, List, Optional

import numpy as np

from sdk.errors import SourceError

from .base import RawFrame, SourceInterrupted

__all__ = ["PipeReader", "parse_gst_caps", "parse_ffmpeg_size"]

logger = logging.getLogger(__name__)

_GST_FORMAT_RE = re.compile(r"\bformat=\(string\)(\w+)")
_GST_WIDTH_RE = re.compile(r"\bwidth=\(int\)(\d+)")
_GST_HEIGHT_RE = re.compile(r"\bheight=\(int\)(\d+)")
_GST_FPS_RE = re.compile(r"framerate=\(fraction\)(\d+)/(\d+)")
_FF_SIZE_RE = re.compile(r"\s(\d{1,5})x(\d{1,5})[\s,\[]")
#: Log messages after which retrying cannot help (bad pipeline, missing plugin, bad file).
_FATAL_PATTERNS = ("no element", "syntax error", "could not link", "no such file", "invalid argument",
                   "unrecognized option", "no property", "could not parse", "erroneous pipeline",
                   "invalid data found", "does not contain any stream")


def parse_gst_caps(line: str, sink_name: str) -> Optional[tuple]:
    """``(format, width, height, fps or None)`` from a gst-launch ``-v`` line about the named sink's pad, else None."""
    if f"{sink_name}.GstPad:sink: caps" not in line:
        return None
    fmt, width, height = (r.search(line) for r in (_GST_FORMAT_RE, _GST_WIDTH_RE, _GST_HEIGHT_RE))
    if not (fmt and width and height):
        return None
    f = _GST_FPS_RE.search(line)
    fps = int(f.group(1)) / int(f.group(2)) if f and int(f.group(2)) and int(f.group(1)) else None
    return fmt.group(1), int(width.group(1)), int(height.group(1)), fps


def parse_ffmpeg_size(lines: List[str]) -> Optional[tuple]:
    """``(width, height)`` of ffmpeg's first output video stream, from its log lines, else None."""
    in_output = False
    for line in lines:
        if line.startswith("Output #0"):
            in_output = True
        elif in_output and "Stream #" in line and "Video:" in line:
            m = _FF_SIZE_RE.search(line.split("Video:", 1)[1] + " ")
            if m:
                return int(m.group(1)), int(m.group(2))
    return None


class PipeReader:
    """Frames from a subprocess writing raw BGR video to a pipe.

    Args:
        tool: ``"gst-launch"`` or ``"ffmpeg"`` (how the log is read, where frames come from).
        make_argv: builds the command line; gets the fd frames must be written to (gst) or None (ffmpeg).
        uri: the source URI (for messages).
        live: the process produces frames at the camera's pace.
        reconnectable: a broken stream may be reopened.
        end_is_disconnect: the process ending is a disconnect, not the end of the stream (RTSP).
        fps: nominal frame rate when known.
        open_timeout: seconds to wait for the first caps/stream description.
        stall_timeout: seconds without a byte after which the stream counts as broken (the process is
            killed and the read raises :class:`SourceInterrupted`).
    """

    def __init__(self, tool: str, make_argv: Callable[[Optional[int]], list], *, uri: str, live: bool,
                 reconnectable: bool, end_is_disconnect: bool = False, fps: Optional[float] = None,
                 open_timeout: float = 10.0, stall_timeout: float = 5.0) -> None:
        if tool not in ("gst-launch", "ffmpeg"):
            raise SourceError(f"tool: expected 'gst-launch' or 'ffmpeg', got {tool!r}")
        self.backend = tool
        self._make_argv = make_argv
        self.uri = uri
        self.live = live
        self.reconnectable = reconnectable
        self.end_is_disconnect = end_is_disconnect
        self.fps = fps
        self.open_timeout = float(open_timeout)
        self.stall_timeout = float(stall_timeout)
        self.argv: list = []
        self.proc: Optional[subprocess.Popen] = None
        self.pids: list = []          # every pid this reader started (tests check they were reaped)
        self._fd: Optional[int] = None
        self._log: deque = deque(maxlen=60)
        self._log_thread: Optional[threading.Thread] = None
        self._ready = threading.Event()
        self._size: Optional[tuple] = None   # (width, height, row stride in bytes)
        self._stopping = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ lifecycle
    def open(self) -> None:
        self.close()
        self._stopping = False
        self._ready.clear()
        self._size = None
        self._log.clear()
        write_fd = None
        try:
            if self.backend == "gst-launch":
                read_fd, write_fd = os.pipe()
                self.argv = self._make_argv(write_fd)
                proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, pass_fds=(write_fd,), close_fds=True)
                os.close(write_fd)
                write_fd = None
                self._fd, log_stream = read_fd, proc.stdout
            else:
                self.argv = self._make_argv(None)
                proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, close_fds=True, bufsize=0)
                self._fd, log_stream = proc.stdout.fileno(), proc.stderr
        except OSError as exc:
            if write_fd is not None:
                os.close(write_fd)
            raise SourceError(f"{self.uri}: could not start {self.argv[0] if self.argv else self.backend}: {exc}") from exc
        with self._lock:
            self.proc = proc
        self.pids.append(proc.pid)
        logger.info("%s: started %s (pid %d): %s", self.uri, self.backend, proc.pid, " ".join(self.argv))
        self._log_thread = threading.Thread(target=self._drain_log, args=(log_stream,), daemon=True,
                                            name=f"edgesdk-{self.backend}-log-{proc.pid}")
        self._log_thread.start()
        deadline = time.monotonic() + self.open_timeout
        while not self._ready.wait(0.05):
            if proc.poll() is not None:
                self._log_thread.join(2.0)
                message = self._failure_message(proc.returncode)
                self.close()
                raise self._classify(message)
            if time.monotonic() > deadline:
                self.close()
                raise SourceInterrupted(f"{self.uri}: {self.backend} produced no video within {self.open_timeout:g} s"
                                        f"{self._tail()}")

    def _drain_log(self, stream) -> None:
        lines: list = []
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                if not line:
                    continue
                self._log.append(line)
                if self._ready.is_set():
                    continue
                if self.backend == "gst-launch":
                    from .pipelines import SINK_NAME

                    caps = parse_gst_caps(line, SINK_NAME)
                    if caps is not None:
                        fmt, width, height, fps = caps
                        if fmt != "BGR":
                            self._log.append(f"edgesdk: expected BGR caps at the sink, got {fmt}")
                            continue
                        self._size = (width, height, (width * 3 + 3) & ~3)
                        if fps and not self.fps:
                            self.fps = fps
                        self._ready.set()
                else:
                    lines.append(line)
                    size = parse_ffmpeg_size(lines[-40:])
                    if size is not None:
                        self._size = (size[0], size[1], size[0] * 3)
                        self._ready.set()
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    def _tail(self, n: int = 6) -> str:
        lines = [ln for ln in list(self._log) if not ln.startswith("/GstPipeline")]
        return ("; log: " + " | ".join(lines[-n:])) if lines else ""

    def _failure_message(self, rc: Optional[int]) -> str:
        return f"{self.uri}: {self.backend} exited with status {rc}{self._tail()}"

    @staticmethod
    def _classify(message: str) -> SourceError:
        low = message.lower()
        if any(p in low for p in _FATAL_PATTERNS):
            return SourceError(message)
        return SourceInterrupted(message)

    # ------------------------------------------------------------------------------------------ frames
    @property
    def size(self) -> Optional[tuple]:
        """``(width, height)`` of the frames once open, else None."""
        return None if self._size is None else self._size[:2]

    def read(self) -> Optional[RawFrame]:
        if self.proc is None or self._size is None or self._fd is None:
            raise SourceError(f"{self.uri}: read() before open()")
        width, height, stride = self._size
        nbytes = stride * height
        buf = np.empty(nbytes, np.uint8)
        view = memoryview(buf)
        got = 0
        fd = self._fd
        while got < nbytes:
            ready, _, _ = select.select([fd], [], [], self.stall_timeout)
            if not ready:
                if self._stopping:
                    return None
                self.interrupt()
                raise SourceInterrupted(f"{self.uri}: no data from {self.backend} for {self.stall_timeout:g} s "
                                        f"(stream stalled){self._tail()}")
            try:
                n = os.readv(fd, [view[got:]])
            except OSError as exc:
                if self._stopping:
                    return None
                raise SourceInterrupted(f"{self.uri}: reading from {self.backend} failed: {exc}") from exc
            if n == 0:
                return self._at_eof(got)
            got += n
        if stride != width * 3:
            return np.ascontiguousarray(buf.reshape(height, stride)[:, :width * 3].reshape(height, width, 3)), None
        return buf.reshape(height, width, 3), None

    def _at_eof(self, got: int) -> None:
        proc = self.proc
        try:
            rc = proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.interrupt()
            rc = proc.wait()
        if self._log_thread is not None:
            self._log_thread.join(2.0)
        if self._stopping:
            return None
        if rc == 0 and not self.end_is_disconnect:
            if got:
                logger.warning("%s: stream ended inside a frame (%d bytes dropped)", self.uri, got)
            logger.info("%s: %s reached the end of the stream", self.uri, self.backend)
            return None
        raise SourceInterrupted(self._failure_message(rc))

    # ------------------------------------------------------------------------------------------ stop
    def interrupt(self) -> None:
        """Terminate the subprocess (a blocked read then sees the end of the pipe)."""
        self._stopping = True
        with self._lock:
            proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.terminate()
            except OSError:
                pass

    def close(self) -> None:
        """Terminate, kill if needed, and reap the subprocess; close the pipe."""
        with self._lock:
            proc, self.proc = self.proc, None
        self._stopping = True
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.terminate()
                    proc.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                except OSError:
                    pass
            proc.wait()
            if proc.stdout is not None and self.backend == "ffmpeg":
                try:
                    proc.stdout.close()
                except OSError:
                    pass
            self._fd = None if self.backend == "ffmpeg" else self._fd
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self._log_thread is not None:
            self._log_thread.join(2.0)
            self._log_thread = None

    def describe(self) -> dict:
        return {"backend": self.backend, "argv": list(self.argv), "size": self.size,
                "pid": self.proc.pid if self.proc is not None else None}
