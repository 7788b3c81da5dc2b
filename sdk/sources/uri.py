"""Parse a source URI into a :class:`SourceSpec` (a pure function of the string and the file system).

Accepted forms::

    0, "0", "/dev/video2"                    USB / V4L2 camera
    "csi://0?width=1280&height=720&fps=30&flip=2&sensor_mode=4"
                                             Jetson (nvarguscamerasrc) or Raspberry Pi (libcamera) CSI camera
    "rtsp://user:pw@host:554/stream"         RTSP (also rtsps://); the URL is passed on untouched
    "http://...", "rtmp://...", "udp://...", "tcp://..."   other network streams (through ffmpeg/OpenCV)
    "gst:videotestsrc is-live=true ! video/x-raw,width=640,height=480"
                                             any GStreamer pipeline ending in raw video
    "synthetic://shapes?fps=30&size=1280x720&seed=0&objects=8&frames=300&realtime=1&noise=1"
    "clip.mp4", "images/", "images/*.png"    a video file, an image folder, a glob of images (or one image)
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from sdk.errors import SourceError

__all__ = ["SourceSpec", "parse_uri", "parse_size", "IMAGE_EXTENSIONS", "KINDS", "query_options"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm")
KINDS = ("v4l2", "csi", "rtsp", "stream", "gst", "synthetic", "video", "images")
_STREAM_SCHEMES = ("http", "https", "rtmp", "rtmps", "udp", "tcp", "srt")
_FORMS = ("a camera index (0) or /dev/videoN, csi://N, rtsp://..., gst:<pipeline>, synthetic://shapes, "
          "a video file, an image folder or a glob")


@dataclass(frozen=True)
class SourceSpec:
    """A parsed URI.

    Attributes:
        kind: one of :data:`KINDS`.
        uri: the URI as given (as a string).
        target: what the backend opens: a device path, a sensor id (csi), a URL, a pipeline, a scene
            name (synthetic), a file path, or a tuple of image paths (images).
        options: options from the URI's query string (csi and synthetic only), values still strings.
    """

    kind: str
    uri: str
    target: Any
    options: Mapping[str, str] = field(default_factory=dict)


def parse_size(value: Any, name: str = "size") -> tuple:
    """``"1280x720"`` or ``(1280, 720)`` → ``(width, height)``.

    Raises:
        SourceError: anything else, or sides < 1.
    """
    try:
        if isinstance(value, str):
            w_text, h_text = value.lower().replace("*", "x").split("x")
            width, height = int(w_text), int(h_text)
        else:
            width, height = (int(v) for v in value)
    except (TypeError, ValueError):
        raise SourceError(f"{name}: expected WIDTHxHEIGHT like 1280x720, got {value!r}") from None
    if width < 1 or height < 1:
        raise SourceError(f"{name}: expected positive width and height, got {width}x{height}")
    return width, height


def query_options(query: str, uri: str) -> dict:
    """The ``key=value`` pairs of a query string (keys lower-cased, ``-`` read as ``_``)."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SourceError(f"{uri}: expected a query string like ?key=value&key2=value2, got {query!r}") from None
    return {k.lower().replace("-", "_"): v for k, v in pairs}


def _image_paths(pattern_or_dir: Path, is_glob: bool) -> tuple:
    if is_glob:
        found = [Path(p) for p in glob.glob(str(pattern_or_dir), recursive=True)]
    else:
        found = list(pattern_or_dir.iterdir())
    return tuple(sorted(str(p) for p in found if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS))


def parse_uri(uri: Any) -> SourceSpec:
    """Work out which kind of source ``uri`` names.

    Args:
        uri: an int camera index, a string URI or path, or an ``os.PathLike``.

    Raises:
        SourceError: empty or unknown URI, a missing file, a folder or glob with no images, a negative index.
    """
    if isinstance(uri, bool) or uri is None:
        raise SourceError(f"source: expected {_FORMS}, got {uri!r}")
    if isinstance(uri, int):
        if uri < 0:
            raise SourceError(f"source: expected a camera index >= 0, got {uri}")
        return SourceSpec("v4l2", str(uri), f"/dev/video{uri}")
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str):
        raise SourceError(f"source: expected {_FORMS}, got {type(uri).__name__} {uri!r}")
    text = uri.strip()
    if not text:
        raise SourceError(f"source: expected {_FORMS}, got an empty string")
    if text.isdigit():
        return SourceSpec("v4l2", text, f"/dev/video{int(text)}")
    if text.startswith("/dev/video"):
        if not text[len("/dev/video"):].isdigit():
            raise SourceError(f"source: expected /dev/videoN with a number N, got {text!r}")
        return SourceSpec("v4l2", text, text)
    if text.startswith("gst:"):
        pipeline = text[4:].strip()
        if not pipeline:
            raise SourceError("source: expected gst:<pipeline> with a pipeline after 'gst:', got nothing")
        return SourceSpec("gst", text, pipeline)
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme in ("rtsp", "rtsps", "rtspt"):
            if not parts.hostname:
                raise SourceError(f"source: expected rtsp://HOST[:PORT]/PATH, got {text!r} (no host)")
            return SourceSpec("rtsp", text, text)
        if scheme in _STREAM_SCHEMES:
            return SourceSpec("stream", text, text)
        if scheme == "csi":
            sensor = (parts.netloc + parts.path).strip("/") or "0"
            if not sensor.isdigit():
                raise SourceError(f"source: expected csi://N with a sensor number N, got {text!r}")
            return SourceSpec("csi", text, int(sensor), query_options(parts.query, text))
        if scheme == "synthetic":
            scene = (parts.netloc + parts.path).strip("/")
            return SourceSpec("synthetic", text, scene, query_options(parts.query, text))
        if scheme == "file":
            return parse_uri(parts.path)
        raise SourceError(f"source: unknown scheme {scheme + '://'!r} in {text!r}; expected rtsp://, csi://, "
                          f"synthetic://, gst:, file://, {', '.join(s + '://' for s in _STREAM_SCHEMES)}, "
                          f"a camera index or a path")
    path = Path(os.path.expanduser(text))
    if any(ch in text for ch in "*?["):
        paths = _image_paths(path, is_glob=True)
        if not paths:
            raise SourceError(f"source: expected image files ({', '.join(IMAGE_EXTENSIONS)}) matching {text!r}, "
                              f"got none")
        return SourceSpec("images", text, paths)
    if path.is_dir():
        paths = _image_paths(path, is_glob=False)
        if not paths:
            raise SourceError(f"source: expected image files ({', '.join(IMAGE_EXTENSIONS)}) in folder {text!r}, "
                              f"got none")
        return SourceSpec("images", text, paths)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return SourceSpec("images", text, (str(path),))
        return SourceSpec("video", text, str(path))
    raise SourceError(f"source: no such file or folder {text!r}; expected {_FORMS}")
