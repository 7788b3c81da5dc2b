"""Raspberry Pi CSI cameras through Picamera2 (libcamera's Python API), when it is installed."""
from __future__ import annotations

import logging
from typing import Any, Optional

from sdk.errors import SourceError

from .base import RawFrame, SourceInterrupted

__all__ = ["Picamera2Reader"]

logger = logging.getLogger(__name__)


class Picamera2Reader:
    """``Picamera2(camera_num)`` in a video configuration giving BGR frames.

    Picamera2's ``"RGB888"`` format is laid out B, G, R in memory (libcamera names formats by word order),
    which is what OpenCV calls BGR.

    Args:
        camera_num: the sensor (``csi://N``).
        uri: the source URI.
        width, height, fps: capture mode.
        hflip, vflip: sensor flips.
    """

    backend = "picamera2"
    live = True
    reconnectable = True

    def __init__(self, camera_num: int, *, uri: str, width: int = 1280, height: int = 720, fps: float = 30.0,
                 hflip: bool = False, vflip: bool = False) -> None:
        self.camera_num = int(camera_num)
        self.uri = uri
        self.size = (int(width), int(height))
        self.fps: Optional[float] = float(fps)
        self.flips = (bool(hflip), bool(vflip))
        self._cam: Any = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError as exc:
            raise SourceError(f"{self.uri}: picamera2 is not importable ({exc}); on Raspberry Pi OS: "
                              f"sudo apt install python3-picamera2") from exc
        self.close()
        try:
            cam = Picamera2(camera_num=self.camera_num)
            controls = {"FrameRate": self.fps}
            config = cam.create_video_configuration(main={"size": self.size, "format": "RGB888"}, controls=controls,
                                                    buffer_count=2)
            if any(self.flips):
                from libcamera import Transform

                config["transform"] = Transform(hflip=self.flips[0], vflip=self.flips[1])
            cam.configure(config)
            cam.start()
        except Exception as exc:  # picamera2 raises plain RuntimeError/IndexError for missing cameras
            raise SourceInterrupted(f"{self.uri}: Picamera2 could not start camera {self.camera_num}: {exc}") from exc
        self._cam = cam

    def read(self) -> Optional[RawFrame]:
        if self._cam is None:
            raise SourceError(f"{self.uri}: read() before open()")
        try:
            image = self._cam.capture_array("main")
        except Exception as exc:
            raise SourceInterrupted(f"{self.uri}: Picamera2 capture failed: {exc}") from exc
        return image[:, :, :3].copy() if image.ndim == 3 and image.shape[2] == 4 else image, None

    def interrupt(self) -> None:
        """capture_array returns within a frame period."""

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            except Exception as exc:
                logger.warning("%s: Picamera2 close failed: %s", self.uri, exc)
            self._cam = None

    def describe(self) -> dict:
        return {"backend": self.backend, "camera_num": self.camera_num, "size": self.size, "fps": self.fps}
