"""Frames through ``cv2.VideoCapture``: V4L2 cameras, video files, and GStreamer pipelines when OpenCV has GStreamer.

For cameras the driver queue is cut to one buffer (``CAP_PROP_BUFFERSIZE=1``) so a read returns a recent
frame, and the reader thread on top keeps only the newest one.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

from sdk.errors import SourceError

from .base import RawFrame, SourceInterrupted, to_bgr
from .platform import list_video_devices

__all__ = ["OpenCVReader", "FOURCCS"]

logger = logging.getLogger(__name__)

FOURCCS = ("MJPG", "YUYV")


class OpenCVReader:
    """One ``cv2.VideoCapture``.

    Args:
        target: device index/path, file path or a GStreamer pipeline with an appsink.
        api: ``"v4l2"``, ``"ffmpeg"``, ``"gstreamer"`` or ``"any"``.
        uri: the source URI (for messages).
        live: a camera or network stream (a failed read is a disconnect, not the end).
        reconnectable: reopen after a disconnect.
        device_path: the ``/dev/videoN`` node of a camera, to tell "unplugged" from other failures.
        width, height, fps: requested capture mode (cameras; None keeps the driver's).
        fourcc: ``"MJPG"`` or ``"YUYV"`` (cameras).
        buffer_size: driver buffers (cameras); 1 keeps latency lowest.
    """

    def __init__(self, target: Any, api: str, *, uri: str, live: bool, reconnectable: bool,
                 device_path: Optional[str] = None, width: Optional[int] = None, height: Optional[int] = None,
                 fps: Optional[float] = None, fourcc: Optional[str] = None, buffer_size: int = 1) -> None:
        if api not in ("v4l2", "ffmpeg", "gstreamer", "any"):
            raise SourceError(f"api: expected v4l2, ffmpeg, gstreamer or any, got {api!r}")
        if fourcc is not None and str(fourcc).upper() not in FOURCCS:
            raise SourceError(f"fourcc: expected one of {', '.join(FOURCCS)}, got {fourcc!r}")
        self.target = target
        self.api = api
        self.backend = f"opencv-{api}"
        self.uri = uri
        self.live = live
        self.reconnectable = reconnectable
        self.device_path = device_path
        self.requested = {"width": width, "height": height, "fps": fps,
                          "fourcc": None if fourcc is None else str(fourcc).upper()}
        self.buffer_size = buffer_size
        self.fps: Optional[float] = fps
        self._cap: Any = None
        self.actual: dict = {}

    def open(self) -> None:
        import cv2

        self.close()
        api = {"v4l2": cv2.CAP_V4L2, "ffmpeg": cv2.CAP_FFMPEG, "gstreamer": cv2.CAP_GSTREAMER,
               "any": cv2.CAP_ANY}[self.api]
        if self.device_path is not None and not os.path.exists(self.device_path):
            raise self._missing_device()
        cap = cv2.VideoCapture(self.target, api)
        if not cap.isOpened():
            cap.release()
            if self.device_path is not None:
                raise SourceInterrupted(f"{self.uri}: {self.device_path} exists but OpenCV (V4L2) could not open it "
                                        f"(busy in another program, or not a capture node?); video devices: "
                                        f"{', '.join(list_video_devices()) or 'none'}")
            error = SourceInterrupted if self.live and self.reconnectable else SourceError
            raise error(f"{self.uri}: OpenCV ({self.api}) could not open {self.target!r}")
        req = self.requested
        if self.live and self.device_path is not None:
            if req["fourcc"]:
                cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*req["fourcc"]))
            if req["width"]:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, req["width"])
            if req["height"]:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, req["height"])
            if req["fps"]:
                cap.set(cv2.CAP_PROP_FPS, req["fps"])
            cap.set(cv2.CAP_PROP_BUFFERSIZE, self.buffer_size)
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else self.fps
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
        self.actual = {"width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                       "fps": self.fps, "fourcc": "".join(chr((code >> 8 * i) & 0xFF) for i in range(4)) if code else None}
        if self.device_path is not None:
            for key in ("width", "height"):
                if req[key] and self.actual[key] != req[key]:
                    logger.warning("%s: asked for %s=%s, the camera gives %s", self.uri, key, req[key], self.actual[key])
        self._cap = cap

    def _missing_device(self) -> SourceError:
        present = list_video_devices()
        return SourceError(f"{self.uri}: expected a camera at {self.device_path}, got no such device; video devices "
                           f"present: {', '.join(present) if present else 'none'}")

    def read(self) -> Optional[RawFrame]:
        if self._cap is None:
            raise SourceError(f"{self.uri}: read() before open()")
        ok, image = self._cap.read()
        if ok and image is not None:
            return to_bgr(image), None
        if not self.live:
            return None
        if self.device_path is not None and not os.path.exists(self.device_path):
            present = list_video_devices()
            raise SourceInterrupted(f"{self.uri}: camera {self.device_path} vanished mid-stream (unplugged?); video "
                                    f"devices now: {', '.join(present) if present else 'none'}")
        raise SourceInterrupted(f"{self.uri}: OpenCV ({self.api}) read failed (stream broke)")

    def interrupt(self) -> None:
        """Nothing to do: OpenCV reads time out by themselves (V4L2 select timeout)."""

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def describe(self) -> dict:
        return {"backend": self.backend, "target": self.target if isinstance(self.target, (int, str)) else repr(self.target),
                "requested": {k: v for k, v in self.requested.items() if v}, "actual": dict(self.actual)}
