"""What a source yields: :class:`Frame`, and what it reports: :class:`SourceEvent`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

__all__ = ["Frame", "SourceEvent", "EVENT_KINDS"]

#: Kinds of :class:`SourceEvent`, in the order they usually happen.
EVENT_KINDS = ("opened", "disconnected", "reconnecting", "reconnected", "gave_up", "end", "closed")


@dataclass
class Frame:
    """One captured frame.

    Attributes:
        image: BGR uint8 array of shape (H, W, 3).
        index: capture sequence number from 0 (frames the consumer never saw still used their number, so
            gaps show drops).
        t_capture: ``time.monotonic()`` seconds when the frame's last byte arrived from the camera/decoder.
        source: the URI of the source.
        boxes: ground truth from the synthetic source, float32 (N, 4) xyxy in frame pixels; None elsewhere.
        class_ids: ground-truth classes, int64 (N,); None where there is no ground truth.
        track_ids: ground-truth object identities, int64 (N,); None where there is none.
        meta: anything else the source knows (file name of an image, position in a video...).
    """

    image: np.ndarray
    index: int
    t_capture: float
    source: str
    boxes: Optional[np.ndarray] = None
    class_ids: Optional[np.ndarray] = None
    track_ids: Optional[np.ndarray] = None
    meta: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple:
        """``(H, W, 3)`` of the image."""
        return tuple(self.image.shape)

    def age(self, now: Optional[float] = None) -> float:
        """Seconds since capture (``now`` defaults to ``time.monotonic()``)."""
        import time

        return (time.monotonic() if now is None else now) - self.t_capture

    def ground_truth(self) -> Any:
        """The ground truth as :class:`sdk.results.Detections` (confidence 1), or None when the source has none."""
        if self.boxes is None:
            return None
        from sdk.results import Detections

        labels: tuple = ()
        if self.meta.get("labels"):
            labels = tuple(self.meta["labels"])
        return Detections(self.boxes, np.ones(len(self.boxes), np.float32), self.class_ids, labels=labels,
                          tracker_id=self.track_ids)

    def __repr__(self) -> str:
        gt = "" if self.boxes is None else f", ground_truth={len(self.boxes)}"
        return f"Frame(index={self.index}, shape={self.shape}, source={self.source!r}{gt})"


@dataclass(frozen=True)
class SourceEvent:
    """Something that happened to a source, for the app to see (``source.events`` / ``on_event``).

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        t: ``time.monotonic()`` when it happened.
        source: the source URI.
        message: details (the error behind a disconnect, the delay before a retry...).
        attempt: the reconnection attempt (1, 2, ...) for ``reconnecting``/``reconnected``/``gave_up``, else 0.
    """

    kind: str
    t: float
    source: str
    message: str = ""
    attempt: int = 0
