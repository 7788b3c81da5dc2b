"""The reader protocol every backend implements, and the error that means "the stream broke, try again".

A *reader* does the blocking I/O of one backend (a V4L2 device through OpenCV, a gst-launch-1.0 or
ffmpeg subprocess, image files, the synthetic scene). :class:`sdk.sources.source.Source` wraps a reader
with the reader thread, the buffering policy, frame numbering, time stamps and reconnection.
"""
from __future__ import annotations

from typing import Any, Optional, Protocol, Tuple

import numpy as np

from sdk.errors import SourceError

__all__ = ["Reader", "SourceInterrupted", "RawFrame", "to_bgr"]

#: What :meth:`Reader.read` returns: a BGR uint8 (H, W, 3) image and optional extras (``boxes``,
#: ``class_ids``, ``track_ids``, ``meta``).
RawFrame = Tuple[np.ndarray, Optional[dict]]


class SourceInterrupted(SourceError):
    """The stream broke (disconnect, device gone, subprocess died, stall); a reconnect may help."""


class Reader(Protocol):
    """One backend's blocking I/O.

    Attributes:
        backend: name of the capture path actually used (``"gst-launch"``, ``"ffmpeg"``, ``"opencv-v4l2"``,
            ``"opencv-ffmpeg"``, ``"opencv-gstreamer"``, ``"picamera2"``, ``"images"``, ``"synthetic"``).
        live: frames come at the camera's pace whether read or not (camera, RTSP, live pipeline).
        reconnectable: a broken stream can be reopened (RTSP, pipelines, USB cameras).
        fps: nominal frame rate when known (used by ``realtime=True``), else None.
    """

    backend: str
    live: bool
    reconnectable: bool
    fps: Optional[float]

    def open(self) -> None:
        """Start capturing. Raises SourceInterrupted (worth retrying) or SourceError (will not work)."""

    def read(self) -> Optional[RawFrame]:
        """Block for the next frame; None at the end of the stream. Raises SourceInterrupted when it broke."""

    def interrupt(self) -> None:
        """Make a blocked :meth:`read` return soon (called from another thread before :meth:`close`)."""

    def close(self) -> None:
        """Release everything (idempotent; the reader may be opened again)."""

    def describe(self) -> dict:
        """What is being run: backend, command line or pipeline, frame size."""


def to_bgr(image: Any) -> np.ndarray:
    """Convert a decoded image to BGR uint8 (H, W, 3): grayscale and BGRA are converted, others pass.

    Raises:
        SourceError: not a 2-D/3-D uint8 image with 1, 3 or 4 channels.
    """
    import cv2

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or image.size == 0:
        got = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
               else type(image).__name__)
        raise SourceError(f"expected a decoded uint8 image (H, W[, C]), got {got}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    raise SourceError(f"expected an image with 1, 3 or 4 channels, got {channels}")
