"""Result types returned by models: :class:`Detections`, :class:`Classification`, :class:`Embedding`.

All coordinates are in the pixels of the frame that was passed to the model (not the letterboxed
network input).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

__all__ = ["Detections", "Classification", "Embedding"]

Index = Union[int, slice, Sequence[int], np.ndarray]


def _as_array(value: Any, dtype: Any, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected an array convertible to {np.dtype(dtype).name}, "
                         f"got {type(value).__name__} ({exc})") from exc


@dataclass
class Detections:
    """Boxes found in one frame.

    Attributes:
        xyxy: float32 array of shape (N, 4), ``x1, y1, x2, y2`` in frame pixels.
        confidence: float32 array of shape (N,).
        class_id: int64 array of shape (N,).
        tracker_id: optional int64 array of shape (N,), filled by a tracker.
        labels: class names indexed by ``class_id`` (shared, not per box).
        data: optional extra per-box arrays, each with first dimension N (e.g. ``{"keypoints": ...}``).

    Raises:
        ValueError: when a field has the wrong shape ("expected shape (N, 4), got (3, 5)").
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    tracker_id: Optional[np.ndarray] = None
    labels: Sequence[str] = ()
    data: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.xyxy = _as_array(self.xyxy, np.float32, "xyxy")
        if self.xyxy.size == 0:
            self.xyxy = self.xyxy.reshape(0, 4)
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"Detections.xyxy: expected shape (N, 4), got {self.xyxy.shape}")
        n = self.xyxy.shape[0]
        self.confidence = _as_array(self.confidence, np.float32, "confidence").reshape(-1)
        self.class_id = _as_array(self.class_id, np.int64, "class_id").reshape(-1)
        for name, arr in (("confidence", self.confidence), ("class_id", self.class_id)):
            if arr.shape != (n,):
                raise ValueError(f"Detections.{name}: expected shape ({n},) to match xyxy, got {arr.shape}")
        if self.tracker_id is not None:
            self.tracker_id = _as_array(self.tracker_id, np.int64, "tracker_id").reshape(-1)
            if self.tracker_id.shape != (n,):
                raise ValueError(f"Detections.tracker_id: expected shape ({n},), got {self.tracker_id.shape}")
        self.labels = tuple(self.labels)
        for key, arr in self.data.items():
            arr = np.asarray(arr)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(f"Detections.data[{key!r}]: expected first dimension {n}, got shape {arr.shape}")
            self.data[key] = arr

    @classmethod
    def empty(cls, labels: Sequence[str] = ()) -> "Detections":
        """Return detections with no boxes (shapes (0, 4), (0,), (0,))."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), labels=labels)

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def is_empty(self) -> bool:
        """True when there are no boxes."""
        return len(self) == 0

    def __getitem__(self, index: Index) -> "Detections":
        """Select boxes with an int, a slice, an index array or a boolean mask of shape (N,)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == bool and index.shape != (len(self),):
            raise IndexError(f"boolean mask: expected shape ({len(self)},), got {index.shape}")
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            tracker_id=None if self.tracker_id is None else self.tracker_id[index],
            labels=self.labels,
            data={k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator["Detections"]:
        for i in range(len(self)):
            yield self[i]

    @property
    def label(self) -> list:
        """Class names of each box (``str(class_id)`` where no label is known)."""
        return [self.labels[c] if 0 <= c < len(self.labels) else str(int(c)) for c in self.class_id]

    @property
    def area(self) -> np.ndarray:
        """Box areas, shape (N,)."""
        return (self.xyxy[:, 2] - self.xyxy[:, 0]).clip(0) * (self.xyxy[:, 3] - self.xyxy[:, 1]).clip(0)

    def to_dicts(self) -> list:
        """One JSON-ready dict per box: ``{"xyxy": [...], "confidence", "class_id", "label"[, "tracker_id"]}``."""
        out = []
        for i, name in enumerate(self.label):
            d = {"xyxy": [round(float(v), 2) for v in self.xyxy[i]],
                 "confidence": round(float(self.confidence[i]), 4),
                 "class_id": int(self.class_id[i]), "label": name}
            if self.tracker_id is not None:
                d["tracker_id"] = int(self.tracker_id[i])
            out.append(d)
        return out

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, labels={len(self.labels)})"


@dataclass
class Classification:
    """Top-k classes of one frame.

    Attributes:
        class_id: int64 array of shape (K,), best first.
        confidence: float32 array of shape (K,), scores (probabilities when the model emits them).
        labels: class names indexed by class id.
    """

    class_id: np.ndarray
    confidence: np.ndarray
    labels: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.class_id = _as_array(self.class_id, np.int64, "class_id").reshape(-1)
        self.confidence = _as_array(self.confidence, np.float32, "confidence").reshape(-1)
        if self.class_id.shape != self.confidence.shape:
            raise ValueError(f"Classification: expected class_id and confidence of the same shape, "
                             f"got {self.class_id.shape} and {self.confidence.shape}")
        self.labels = tuple(self.labels)

    def __len__(self) -> int:
        return int(self.class_id.shape[0])

    @property
    def top1(self) -> int:
        """Best class id (raises IndexError when empty)."""
        return int(self.class_id[0])

    @property
    def label(self) -> list:
        """Names of the top-k classes."""
        return [self.labels[c] if 0 <= c < len(self.labels) else str(int(c)) for c in self.class_id]

    def to_dicts(self) -> list:
        return [{"class_id": int(c), "label": n, "confidence": round(float(s), 4)}
                for c, n, s in zip(self.class_id, self.label, self.confidence)]


@dataclass
class Embedding:
    """An L2-normalised embedding vector of shape (D,).

    The constructor normalises ``vector``; a zero or non-finite vector raises ``ValueError``.
    """

    vector: np.ndarray

    def __post_init__(self) -> None:
        v = _as_array(self.vector, np.float32, "vector").reshape(-1)
        if v.size == 0:
            raise ValueError("Embedding: expected a non-empty vector, got shape (0,)")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"Embedding: expected finite values, got {int((~np.isfinite(v)).sum())} NaN/Inf")
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            raise ValueError("Embedding: expected a non-zero vector, got all zeros")
        self.vector = v / norm

    def __len__(self) -> int:
        return int(self.vector.shape[0])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.vector if dtype is None else self.vector.astype(dtype)
