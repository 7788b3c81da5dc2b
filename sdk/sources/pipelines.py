"""Pure builders of GStreamer pipeline descriptions and ffmpeg command lines (no I/O, unit tested).

Each ``*_pipeline`` function returns a pipeline *body* that ends in ``video/x-raw,format=BGR``; a sink is
added by :func:`with_appsink` (OpenCV built with GStreamer) or :func:`gst_launch_argv` (a gst-launch-1.0
subprocess writing raw frames to a pipe).
"""
from __future__ import annotations

import re
import shlex
from typing import Optional, Sequence

from sdk.errors import SourceError

__all__ = ["jetson_csi_pipeline", "libcamera_pipeline", "rtsp_gst_pipeline", "user_gst_pipeline", "with_appsink",
           "gst_launch_argv", "ffmpeg_argv", "rtsp_ffmpeg_input", "quote_gst", "SINK_NAME", "FLIP_METHODS"]

#: Name given to the fdsink, so its negotiated caps can be found in gst-launch's ``-v`` output.
SINK_NAME = "edgesdk_sink"
#: nvvidconv ``flip-method`` values.
FLIP_METHODS = {0: "none", 1: "counterclockwise", 2: "rotate-180", 3: "clockwise", 4: "horizontal-flip",
                5: "upper-right-diagonal", 6: "vertical-flip", 7: "upper-left-diagonal"}
_TO_BGR = "videoconvert ! video/x-raw,format=BGR"
_SINK_RE = re.compile(r"!\s*(appsink|fdsink|autovideosink|fakesink|xvimagesink|ximagesink|glimagesink)\b[^!]*$")


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SourceError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def _fraction(fps: float) -> str:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        raise SourceError(f"fps: expected a number > 0, got {fps!r}")
    if float(fps).is_integer():
        return f"{int(fps)}/1"
    return f"{int(round(fps * 1000))}/1000"


def quote_gst(value: str) -> str:
    """Quote a property value for a pipeline description (``"`` and ``\\`` escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jetson_csi_pipeline(sensor_id: int = 0, *, width: int = 1280, height: int = 720, fps: float = 30,
                        sensor_mode: Optional[int] = None, flip: int = 0) -> str:
    """A Jetson CSI camera through Argus: NVMM NV12 → nvvidconv (flip, to BGRx) → videoconvert → BGR.

    Args:
        sensor_id: the camera (``csi://N``).
        width, height, fps: capture size and rate (must be one the sensor mode offers).
        sensor_mode: Argus sensor mode (``nvarguscamerasrc sensor-mode``); None lets Argus pick.
        flip: nvvidconv ``flip-method`` 0..7 (see :data:`FLIP_METHODS`; 2 rotates by 180 degrees).

    Raises:
        SourceError: out-of-range values.
    """
    sensor_id = _positive_int("sensor_id", sensor_id, 0)
    width, height = _positive_int("width", width), _positive_int("height", height)
    if isinstance(flip, bool) or flip not in FLIP_METHODS:
        raise SourceError(f"flip: expected an nvvidconv flip-method 0..7 ({FLIP_METHODS}), got {flip!r}")
    src = f"nvarguscamerasrc sensor-id={sensor_id}"
    if sensor_mode is not None:
        src += f" sensor-mode={_positive_int('sensor_mode', sensor_mode, 0)}"
    return (f"{src} ! video/x-raw(memory:NVMM),width={width},height={height},framerate={_fraction(fps)},format=NV12"
            f" ! nvvidconv flip-method={flip} ! video/x-raw,format=BGRx ! {_TO_BGR}")


def libcamera_pipeline(camera_name: Optional[str] = None, *, width: int = 1280, height: int = 720,
                       fps: float = 30) -> str:
    """A Raspberry Pi CSI camera through libcamera's GStreamer element.

    Args:
        camera_name: libcamera's camera id (``libcamera-hello --list-cameras`` shows it); None takes the first.
        width, height, fps: capture size and rate.

    Raises:
        SourceError: out-of-range values.
    """
    width, height = _positive_int("width", width), _positive_int("height", height)
    src = "libcamerasrc" if camera_name is None else f"libcamerasrc camera-name={quote_gst(camera_name)}"
    return f"{src} ! video/x-raw,width={width},height={height},framerate={_fraction(fps)} ! {_TO_BGR}"


def rtsp_gst_pipeline(url: str, *, transport: str = "tcp", latency_ms: int = 0) -> str:
    """An RTSP client tuned for low latency: no jitter buffer (``latency=0``), late packets dropped.

    Args:
        url: ``rtsp://...``.
        transport: ``"tcp"`` (robust, the default) or ``"udp"`` (lowest latency on a clean network).
        latency_ms: rtspsrc jitter-buffer size; 0 for the newest frame at the cost of smoothness.

    Raises:
        SourceError: unknown transport or negative latency.
    """
    if transport not in ("tcp", "udp"):
        raise SourceError(f"transport: expected 'tcp' or 'udp', got {transport!r}")
    latency_ms = _positive_int("latency_ms", latency_ms, 0)
    return (f"rtspsrc location={quote_gst(url)} protocols={transport} latency={latency_ms} drop-on-latency=true"
            f" ! decodebin ! {_TO_BGR}")


def user_gst_pipeline(pipeline: str) -> str:
    """A user's ``gst:`` pipeline made to end in BGR: a trailing sink element is removed, BGR conversion added.

    Raises:
        SourceError: an empty pipeline.
    """
    body = pipeline.strip().rstrip("!").strip()
    if not body:
        raise SourceError("gst: expected a pipeline ending in raw video, got an empty string")
    body = _SINK_RE.sub("", body).strip()
    if not body:
        raise SourceError(f"gst: expected a pipeline with a source element, got only a sink: {pipeline!r}")
    return f"{body} ! {_TO_BGR}"


def with_appsink(body: str) -> str:
    """The body with an appsink that keeps only the newest buffer (for ``cv2.VideoCapture(..., CAP_GSTREAMER)``)."""
    return f"{body} ! appsink drop=true max-buffers=1 sync=false"


def gst_launch_argv(body: str, fd: int, *, tool: str = "gst-launch-1.0") -> list:
    """gst-launch-1.0 command line writing BGR frames to file descriptor ``fd``.

    ``-v`` prints the negotiated caps (frame size) on stdout, which is why frames go to a separate fd.
    gst-launch-1.0 escapes each argument as one token, so the description is split shell-style (quotes
    group a value with spaces); no shell ever runs it.

    Raises:
        SourceError: unbalanced quotes in the description.
    """
    try:
        tokens = shlex.split(body)
    except ValueError as exc:
        raise SourceError(f"pipeline: expected balanced quotes, got {body!r} ({exc})") from None
    return [tool, "-v", *tokens, "!", "fdsink", f"name={SINK_NAME}", f"fd={int(fd)}", "sync=false"]


def rtsp_ffmpeg_input(url: str, *, transport: str = "tcp") -> list:
    """ffmpeg input options for a low-latency RTSP client (no input buffering, low-delay decoding)."""
    if transport not in ("tcp", "udp"):
        raise SourceError(f"transport: expected 'tcp' or 'udp', got {transport!r}")
    return ["-rtsp_transport", transport, "-fflags", "nobuffer", "-flags", "low_delay", "-i", url]


def ffmpeg_argv(input_args: Sequence[str], *, tool: str = "ffmpeg", realtime: bool = False,
                size: Optional[tuple] = None) -> list:
    """ffmpeg command line decoding ``input_args`` to raw BGR frames on stdout.

    Args:
        input_args: e.g. ``["-i", "clip.mp4"]`` or :func:`rtsp_ffmpeg_input`.
        realtime: read the input at its native rate (``-re``).
        size: optional ``(width, height)`` to scale to.
    """
    argv = [tool, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"]
    if realtime:
        argv.append("-re")
    argv += list(input_args) + ["-an", "-sn", "-map", "0:v:0"]
    if size is not None:
        argv += ["-vf", f"scale={int(size[0])}:{int(size[1])}"]
    return argv + ["-f", "rawvideo", "-pix_fmt", "bgr24", "pipe:1"]
