"""Image folders and globs: one frame per image file, in name order."""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from sdk.errors import SourceError

from .base import RawFrame, to_bgr

__all__ = ["ImageFilesReader"]

logger = logging.getLogger(__name__)


class ImageFilesReader:
    """Reads image files one by one; unreadable files are skipped with a warning (counted in ``skipped``).

    Args:
        paths: image files in order.
        uri: the source URI.
        fps: rate used with ``realtime=True`` (default 30).
    """

    backend = "images"
    live = False
    reconnectable = False

    def __init__(self, paths: Sequence[str], *, uri: str, fps: Optional[float] = None) -> None:
        if not paths:
            raise SourceError(f"{uri}: expected at least one image file, got none")
        self.paths = tuple(paths)
        self.uri = uri
        self.fps = float(fps) if fps else 30.0
        self._next = 0
        self.skipped: list = []

    def open(self) -> None:
        self._next = 0
        self.skipped = []

    def read(self) -> Optional[RawFrame]:
        import cv2

        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                logger.warning("%s: skipping %s (not a readable image)", self.uri, path)
                self.skipped.append(path)
                continue
            return to_bgr(image), {"meta": {"path": path}}
        return None

    def interrupt(self) -> None:
        """Reads do not block."""

    def close(self) -> None:
        """Nothing held open."""

    def describe(self) -> dict:
        return {"backend": self.backend, "files": len(self.paths), "first": self.paths[0], "skipped": len(self.skipped)}
