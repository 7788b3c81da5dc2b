"""``open_source(uri, **options)``: pick the capture path for a URI on this host and open it.

Which path (the ``backend``) is used, in order of preference where several can work:

================  ==============================================================================
kind              backends
================  ==============================================================================
V4L2 camera       ``opencv-v4l2`` (``CAP_PROP_BUFFERSIZE=1``, MJPG/YUYV, size, fps)
csi:// Jetson     ``opencv-gstreamer`` (OpenCV built with GStreamer, as in JetPack), ``gst-launch``
csi:// Pi         ``picamera2`` (when importable), ``opencv-gstreamer``, ``gst-launch`` (libcamerasrc)
rtsp://           ``opencv-gstreamer``, ``gst-launch`` (rtspsrc latency=0), ``ffmpeg`` (nobuffer,
                  low_delay), ``opencv-ffmpeg``
gst:<pipeline>    ``opencv-gstreamer``, ``gst-launch``
video file        ``opencv-ffmpeg``, ``ffmpeg``
http/rtmp/udp     ``ffmpeg``, ``opencv-ffmpeg``
================  ==============================================================================

pip's ``opencv-python`` has no GStreamer, so on a plain PC ``gst-launch`` (or ``ffmpeg``) runs as a
subprocess piping raw BGR frames. The choice is logged and exposed as ``source.backend``.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Any, Callable, Optional, Union

from sdk.errors import SourceError

from . import platform as plat
from .opencv_reader import OpenCVReader
from .pipe import PipeReader
from .pipelines import (ffmpeg_argv, gst_launch_argv, jetson_csi_pipeline, libcamera_pipeline, rtsp_ffmpeg_input,
                        rtsp_gst_pipeline, user_gst_pipeline, with_appsink)
from .policy import Policy
from .source import Source
from .uri import SourceSpec, parse_size, parse_uri

__all__ = ["open_source", "backend_candidates", "BACKENDS"]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "opencv-v4l2", "opencv-any", "opencv-gstreamer", "opencv-ffmpeg", "gst-launch", "ffmpeg",
            "picamera2", "images", "synthetic")
_CSI_KEYS = ("width", "height", "fps", "flip", "sensor_mode", "camera_name", "size")


def _available(backend: str) -> Optional[str]:
    """None when ``backend`` can run here, else why not (with the fix)."""
    if backend == "opencv-gstreamer":
        return None if plat.opencv_has_gstreamer() else (
            "this OpenCV has no GStreamer (pip's wheels never do; JetPack's and distribution builds do)")
    if backend == "opencv-ffmpeg":
        return None if plat.opencv_has_ffmpeg() else "this OpenCV was built without FFmpeg"
    if backend == "gst-launch":
        return None if plat.find_tool("gst-launch-1.0") else (
            "gst-launch-1.0 is not installed (Debian/Ubuntu: sudo apt install gstreamer1.0-tools "
            "gstreamer1.0-plugins-base gstreamer1.0-plugins-good)")
    if backend == "ffmpeg":
        return None if plat.find_tool("ffmpeg") else "ffmpeg is not installed (sudo apt install ffmpeg)"
    if backend == "picamera2":
        return None if plat.picamera2_available() else "picamera2 is not importable (sudo apt install python3-picamera2)"
    return None


def backend_candidates(kind: str, board: str) -> list:
    """Backends that can serve ``kind`` on ``board``, in order of preference (availability not checked)."""
    if kind == "v4l2":
        return ["opencv-v4l2" if sys.platform.startswith("linux") else "opencv-any"]
    if kind == "csi":
        if board == "jetson":
            return ["opencv-gstreamer", "gst-launch"]
        if board == "raspberry-pi":
            return ["picamera2", "opencv-gstreamer", "gst-launch"]
        return []
    if kind == "rtsp":
        return ["opencv-gstreamer", "gst-launch", "ffmpeg", "opencv-ffmpeg"]
    if kind == "gst":
        return ["opencv-gstreamer", "gst-launch"]
    if kind == "video":
        return ["opencv-ffmpeg", "ffmpeg"]
    if kind == "stream":
        return ["ffmpeg", "opencv-ffmpeg"]
    if kind == "images":
        return ["images"]
    if kind == "synthetic":
        return ["synthetic"]
    raise SourceError(f"unknown source kind {kind!r}")


def _choose(spec: SourceSpec, backend: str, board: str) -> list:
    if backend not in BACKENDS:
        raise SourceError(f"backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    candidates = backend_candidates(spec.kind, board)
    if spec.kind == "csi" and not candidates:
        raise SourceError(f"{spec.uri}: CSI cameras need a Jetson (nvarguscamerasrc) or a Raspberry Pi (libcamera); "
                          f"this host is neither (no /etc/nv_tegra_release, device-tree model not a Raspberry Pi). "
                          f"For a USB camera use 0 or /dev/video0; on such a board pass board='jetson' or "
                          f"'raspberry-pi' if detection failed")
    if backend != "auto":
        if backend not in candidates:
            raise SourceError(f"{spec.uri}: backend {backend!r} cannot read a {spec.kind} source; expected one of "
                              f"{', '.join(candidates)} (or 'auto')")
        why = _available(backend)
        if why:
            raise SourceError(f"{spec.uri}: backend {backend!r} is not usable here: {why}")
        return [backend]
    usable = [b for b in candidates if _available(b) is None]
    if spec.kind == "rtsp" and "gst-launch" in usable and not plat.gst_has_element("rtspsrc"):
        usable.remove("gst-launch")
    if not usable:
        reasons = "; ".join(f"{b}: {_available(b) or 'GStreamer rtspsrc element missing (gstreamer1.0-plugins-good)'}"
                            for b in candidates)
        raise SourceError(f"{spec.uri}: no capture path for a {spec.kind} source on this host ({reasons})")
    return usable


def _int_option(name: str, value: Any, minimum: int) -> Optional[int]:
    if value is None:
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise SourceError(f"{name}: expected an int >= {minimum}, got {value!r}") from None
    if out < minimum or (isinstance(value, float) and not value.is_integer()):
        raise SourceError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return out


def _float_option(name: str, value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise SourceError(f"{name}: expected a number > 0, got {value!r}") from None
    if not out > 0:
        raise SourceError(f"{name}: expected a number > 0, got {value!r}")
    return out


def _make_reader(spec: SourceSpec, backend: str, opts: dict) -> Any:
    uri = spec.uri
    pipe_kw = {"open_timeout": opts["open_timeout"], "stall_timeout": opts["stall_timeout"]}
    if spec.kind == "v4l2":
        target: Union[int, str] = spec.target
        if backend == "opencv-any" and str(spec.target).startswith("/dev/video"):
            target = int(str(spec.target)[len("/dev/video"):])
        return OpenCVReader(target, backend.split("-", 1)[1], uri=uri, live=True, reconnectable=True,
                            device_path=spec.target if backend == "opencv-v4l2" else None, width=opts["width"],
                            height=opts["height"], fps=opts["fps"], fourcc=opts["fourcc"],
                            buffer_size=opts["buffer_size"])
    if spec.kind == "csi":
        w, h, fps = opts["width"] or 1280, opts["height"] or 720, opts["fps"] or 30.0
        if backend == "picamera2":
            from .picamera import Picamera2Reader

            flip = opts["flip"] or 0
            return Picamera2Reader(spec.target, uri=uri, width=w, height=h, fps=fps, hflip=flip in (2, 4),
                                   vflip=flip in (2, 6))
        if opts["board"] == "jetson":
            body = jetson_csi_pipeline(spec.target, width=w, height=h, fps=fps, sensor_mode=opts["sensor_mode"],
                                       flip=opts["flip"] or 0)
        else:
            body = libcamera_pipeline(opts["camera_name"], width=w, height=h, fps=fps)
        return _gst_reader(body, backend, uri, live=True, reconnectable=True, fps=fps, pipe_kw=pipe_kw)
    if spec.kind == "gst":
        return _gst_reader(user_gst_pipeline(spec.target), backend, uri, live=True, reconnectable=True,
                           fps=opts["fps"], pipe_kw=pipe_kw)
    if spec.kind == "rtsp":
        transport = opts["transport"]
        if backend in ("opencv-gstreamer", "gst-launch"):
            body = rtsp_gst_pipeline(spec.target, transport=transport, latency_ms=opts["latency_ms"])
            return _gst_reader(body, backend, uri, live=True, reconnectable=True, fps=opts["fps"], pipe_kw=pipe_kw,
                               end_is_disconnect=True)
        if backend == "ffmpeg":
            tool = plat.find_tool("ffmpeg") or "ffmpeg"
            argv = ffmpeg_argv(rtsp_ffmpeg_input(spec.target, transport=transport), tool=tool)
            return PipeReader("ffmpeg", lambda _fd: argv, uri=uri, live=True, reconnectable=True,
                              end_is_disconnect=True, fps=opts["fps"], **pipe_kw)
        os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS",
                              f"rtsp_transport;{transport}|fflags;nobuffer|flags;low_delay")
        return OpenCVReader(spec.target, "ffmpeg", uri=uri, live=True, reconnectable=True, fps=opts["fps"])
    if spec.kind == "stream":
        if backend == "ffmpeg":
            argv = ffmpeg_argv(["-fflags", "nobuffer", "-flags", "low_delay", "-i", spec.target],
                               tool=plat.find_tool("ffmpeg") or "ffmpeg")
            return PipeReader("ffmpeg", lambda _fd: argv, uri=uri, live=True, reconnectable=True,
                              end_is_disconnect=True, fps=opts["fps"], **pipe_kw)
        return OpenCVReader(spec.target, "ffmpeg", uri=uri, live=True, reconnectable=True, fps=opts["fps"])
    if spec.kind == "video":
        if backend == "ffmpeg":
            argv = ffmpeg_argv(["-i", spec.target], tool=plat.find_tool("ffmpeg") or "ffmpeg")
            return PipeReader("ffmpeg", lambda _fd: argv, uri=uri, live=False, reconnectable=False,
                              fps=opts["fps"], open_timeout=opts["open_timeout"], stall_timeout=opts["open_timeout"])
        return OpenCVReader(spec.target, "ffmpeg", uri=uri, live=False, reconnectable=False, fps=opts["fps"])
    if spec.kind == "images":
        from .files import ImageFilesReader

        return ImageFilesReader(spec.target, uri=uri, fps=opts["fps"])
    if spec.kind == "synthetic":
        from .synthetic import SyntheticReader, parse_synthetic_options

        query = dict(spec.options)
        if opts["fps"] is not None:
            query["fps"] = opts["fps"]
        if opts["width"] or opts["height"]:
            if not (opts["width"] and opts["height"]):
                raise SourceError(f"{uri}: expected width and height together, got width={opts['width']} "
                                  f"height={opts['height']}")
            query["size"] = f"{opts['width']}x{opts['height']}"
        parsed = parse_synthetic_options(query)
        opts["realtime"] = opts["realtime"] or parsed.pop("realtime")
        parsed.pop("realtime", None)
        return SyntheticReader(spec.target, uri=uri, size_hw=parsed["size_hw"], fps=parsed["fps"],
                               seed=parsed["seed"], objects=parsed["objects"], frames=parsed["frames"],
                               noise=parsed["noise"])
    raise SourceError(f"unknown source kind {spec.kind!r}")  # pragma: no cover


def _gst_reader(body: str, backend: str, uri: str, *, live: bool, reconnectable: bool, fps: Optional[float],
                pipe_kw: dict, end_is_disconnect: bool = False) -> Any:
    if backend == "opencv-gstreamer":
        return OpenCVReader(with_appsink(body), "gstreamer", uri=uri, live=live, reconnectable=reconnectable, fps=fps)
    tool = plat.find_tool("gst-launch-1.0") or "gst-launch-1.0"
    make: Callable[[Optional[int]], list] = lambda fd: gst_launch_argv(body, fd, tool=tool)  # noqa: E731
    return PipeReader("gst-launch", make, uri=uri, live=live, reconnectable=reconnectable,
                      end_is_disconnect=end_is_disconnect, fps=fps, **pipe_kw)


def open_source(uri: Any, *, policy: Union[str, Policy, None] = None, realtime: bool = False,
                threaded: Optional[bool] = None, backend: str = "auto", width: Optional[int] = None,
                height: Optional[int] = None, size: Any = None, fps: Optional[float] = None,
                fourcc: Optional[str] = None, buffer_size: int = 1, transport: str = "tcp", latency_ms: int = 0,
                sensor_mode: Optional[int] = None, flip: Optional[int] = None, camera_name: Optional[str] = None,
                board: Optional[str] = None, max_retries: int = 10, backoff: float = 0.1, backoff_max: float = 2.0,
                read_timeout: float = 10.0, open_timeout: float = 10.0, stall_timeout: float = 5.0,
                on_event: Optional[Callable] = None) -> Source:
    """Open a frame source: an iterator of :class:`~sdk.sources.Frame` and a context manager.

    Args:
        uri: ``0`` / ``"/dev/video0"``, ``"csi://0"``, ``"rtsp://..."``, ``"gst:<pipeline>"``,
            ``"synthetic://shapes?fps=30&size=1280x720"``, a video file, an image folder or glob.
        policy: ``"latest"`` (default for live sources), ``"queue(N)"`` or ``"every"`` (default for files).
        realtime: deliver a file or the synthetic scene at its frame rate, like a camera.
        threaded: read in a background thread (default: live and realtime sources).
        backend: ``"auto"`` or one of :data:`BACKENDS` (must suit the URI's kind).
        width, height, size, fps, fourcc, buffer_size: capture mode of cameras (``fourcc`` ``MJPG``/``YUYV``);
            ``fps`` is also the pace of ``realtime`` image folders.
        transport, latency_ms: RTSP transport (``tcp``/``udp``) and jitter buffer (0 = newest frame).
        sensor_mode, flip, camera_name: CSI cameras (Argus sensor mode, nvvidconv flip-method 0..7,
            libcamera camera name).
        board: ``"jetson"`` / ``"raspberry-pi"`` to override board detection for ``csi://``.
        max_retries, backoff, backoff_max: reconnection after a disconnect (live sources).
        read_timeout: seconds ``read()`` waits for a frame before raising SourceError.
        open_timeout: seconds a subprocess has to deliver its first frame description.
        stall_timeout: seconds without data after which a subprocess stream counts as broken.
        on_event: callback receiving each :class:`~sdk.sources.SourceEvent`.

    Raises:
        SourceError: a bad URI or option (expected vs got), a missing device (the message lists the
            ``/dev/video*`` present), no usable backend, or a source that cannot be opened.
    """
    spec = parse_uri(uri)
    if size is not None:
        if width is not None or height is not None:
            raise SourceError(f"expected size or width/height, got both (size={size!r}, width={width}, height={height})")
        width, height = parse_size(size)
    if spec.kind == "csi":
        unknown = sorted(set(spec.options) - set(_CSI_KEYS))
        if unknown:
            raise SourceError(f"{spec.uri}: unknown option(s) {unknown}; expected some of {', '.join(_CSI_KEYS)}")
        q = spec.options
        if "size" in q and width is None and height is None:
            width, height = parse_size(q["size"])
        width = width if width is not None else q.get("width")
        height = height if height is not None else q.get("height")
        fps = fps if fps is not None else q.get("fps")
        flip = flip if flip is not None else q.get("flip")
        sensor_mode = sensor_mode if sensor_mode is not None else q.get("sensor_mode")
        camera_name = camera_name if camera_name is not None else q.get("camera_name")
    if board is not None and board not in ("jetson", "raspberry-pi", "other"):
        raise SourceError(f"board: expected 'jetson', 'raspberry-pi' or 'other', got {board!r}")
    if board is None and spec.kind == "csi":
        board = plat.detect_board()
    opts = {"width": _int_option("width", width, 1), "height": _int_option("height", height, 1),
            "fps": _float_option("fps", fps), "fourcc": fourcc, "buffer_size": _int_option("buffer_size", buffer_size, 1),
            "transport": transport, "latency_ms": _int_option("latency_ms", latency_ms, 0),
            "sensor_mode": _int_option("sensor_mode", sensor_mode, 0), "flip": _int_option("flip", flip, 0),
            "camera_name": camera_name, "board": board, "realtime": bool(realtime),
            "open_timeout": _float_option("open_timeout", open_timeout),
            "stall_timeout": _float_option("stall_timeout", stall_timeout)}
    if opts["transport"] not in ("tcp", "udp"):
        raise SourceError(f"transport: expected 'tcp' or 'udp', got {transport!r}")
    if spec.kind == "v4l2" and sys.platform.startswith("linux") and not os.path.exists(spec.target):
        present = plat.list_video_devices()
        raise SourceError(f"{spec.uri}: expected a camera at {spec.target}, got no such device; video devices "
                          f"present: {', '.join(present) if present else 'none'}")
    backends = _choose(spec, backend, board or "other")
    errors = []
    for name in backends:
        reader = _make_reader(spec, name, opts)
        source = Source(reader, uri=spec.uri, kind=spec.kind, policy=policy, realtime=opts["realtime"],
                        threaded=threaded, max_retries=max_retries, backoff=backoff, backoff_max=backoff_max,
                        read_timeout=read_timeout, on_event=on_event)
        try:
            return source.open()
        except SourceError as exc:
            source.close()
            if spec.kind != "video" or name == backends[-1]:
                if errors:
                    raise SourceError(f"{exc} (also tried: {'; '.join(errors)})") from exc
                raise
            errors.append(f"{name}: {exc}")
            logger.info("%s: backend %s failed (%s); trying %s", spec.uri, name, exc, backends[backends.index(name) + 1])
    raise SourceError(f"{spec.uri}: could not open")  # pragma: no cover
