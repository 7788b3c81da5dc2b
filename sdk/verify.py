"""One-shot verification with embeddings from a Siamese model.

Distances between L2-normalised embeddings, and a :class:`Gallery` that enrols named identities and
matches a query against them::

    gallery = sdk.Gallery(metric="cosine", threshold=0.35)
    gallery.enroll("alice", model(alice_frame))
    match = gallery.match(model(frame))      # Match(name="alice", distance=0.12, accepted=True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Union

import numpy as np

from sdk.results import Embedding

__all__ = ["cosine_distance", "euclidean_distance", "Gallery", "Match"]

ArrayLike = Union[np.ndarray, Embedding, Iterable[float]]
METRICS = ("cosine", "euclidean")


def _matrix(x: "ArrayLike | list", name: str) -> np.ndarray:
    if isinstance(x, Embedding):
        x = x.vector
    elif isinstance(x, (list, tuple)) and x and isinstance(x[0], Embedding):
        x = np.stack([e.vector for e in x])
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected an embedding of shape (D,) or a batch (N, D), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN/Inf")
    return arr


def _normalise(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("expected non-zero embeddings, got an all-zero vector")
    return m / norms


def cosine_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """``1 - cos(a, b)`` in [0, 2].

    Args:
        a: (D,) or (N, D). b: (D,) or (M, D).

    Returns:
        float32 array (N, M); a scalar-shaped () array when both inputs are single vectors.
    """
    ma, mb = _matrix(a, "a"), _matrix(b, "b")
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"expected embeddings of the same dimension, got {ma.shape[1]} and {mb.shape[1]}")
    d = (1.0 - _normalise(ma) @ _normalise(mb).T).clip(0.0, 2.0).astype(np.float32)
    return d.reshape(()) if d.size == 1 and np.ndim(a) == 1 and np.ndim(b) == 1 else d


def euclidean_distance(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Euclidean distance between (L2-normalised) embeddings, in [0, 2].

    Args:
        a: (D,) or (N, D). b: (D,) or (M, D).

    Returns:
        float32 array (N, M) (a () array for two single vectors).
    """
    ma, mb = _normalise(_matrix(a, "a")), _normalise(_matrix(b, "b"))
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"expected embeddings of the same dimension, got {ma.shape[1]} and {mb.shape[1]}")
    sq = (ma * ma).sum(1)[:, None] + (mb * mb).sum(1)[None, :] - 2.0 * ma @ mb.T
    d = np.sqrt(sq.clip(0.0)).astype(np.float32)
    return d.reshape(()) if d.size == 1 and np.ndim(a) == 1 and np.ndim(b) == 1 else d


@dataclass(frozen=True)
class Match:
    """Result of :meth:`Gallery.match`: the nearest identity, its distance and the decision."""

    name: Optional[str]
    distance: float
    accepted: bool


class Gallery:
    """Named embeddings to verify queries against.

    An identity may be enrolled with several embeddings; its distance to a query is the smallest.

    Args:
        metric: ``"cosine"`` or ``"euclidean"``.
        threshold: accept a match when distance <= threshold (calibrate it on held-out pairs for the
            false-accept rate you need).
    """

    def __init__(self, *, metric: str = "cosine", threshold: float = 0.5) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
        if not np.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold: expected a finite number >= 0, got {threshold!r}")
        self.metric = metric
        self.threshold = float(threshold)
        self._names: list = []
        self._vectors: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(set(self._names))

    @property
    def names(self) -> list:
        """Enrolled identity names, in enrolment order."""
        return list(dict.fromkeys(self._names))

    def enroll(self, name: str, embedding: "ArrayLike | list") -> None:
        """Add one embedding (D,) or several (N, D) for ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"name: expected a non-empty string, got {name!r}")
        m = _normalise(_matrix(embedding, "embedding"))
        if self._vectors is not None and m.shape[1] != self._vectors.shape[1]:
            raise ValueError(f"embedding: expected dimension {self._vectors.shape[1]} like the gallery, got {m.shape[1]}")
        self._vectors = m if self._vectors is None else np.vstack([self._vectors, m])
        self._names.extend([name] * m.shape[0])

    def remove(self, name: str) -> None:
        """Forget every embedding of ``name`` (KeyError if it is not enrolled)."""
        if name not in self._names:
            raise KeyError(f"{name!r} is not enrolled; enrolled: {self.names}")
        keep = np.array([n != name for n in self._names])
        self._names = [n for n in self._names if n != name]
        self._vectors = self._vectors[keep] if keep.any() else None

    def distances(self, query: ArrayLike) -> dict:
        """Distance from ``query`` (D,) to each identity (its nearest enrolled embedding)."""
        if self._vectors is None:
            return {}
        dist_fn = cosine_distance if self.metric == "cosine" else euclidean_distance
        d = np.asarray(dist_fn(_matrix(query, "query"), self._vectors)).reshape(-1)
        out: dict = {}
        for name, value in zip(self._names, d):
            out[name] = min(out.get(name, np.inf), float(value))
        return out

    def match(self, query: ArrayLike) -> Match:
        """Nearest identity to ``query``; ``accepted`` when its distance <= threshold.

        An empty gallery returns ``Match(None, inf, False)``.
        """
        dists = self.distances(query)
        if not dists:
            return Match(None, float("inf"), False)
        name = min(dists, key=dists.get)
        return Match(name, dists[name], dists[name] <= self.threshold)

    def verify(self, name: str, query: ArrayLike) -> Match:
        """Is ``query`` the claimed identity ``name``? (one-to-one verification)."""
        dists = self.distances(query)
        if name not in dists:
            raise KeyError(f"{name!r} is not enrolled; enrolled: {self.names}")
        return Match(name, dists[name], dists[name] <= self.threshold)
