"""Streaming latency statistics in fixed memory: percentiles, mean, std, min, max.

A profiler that runs for hours on a Raspberry Pi must not keep every sample. :class:`LatencyStats`
keeps

* exact count, mean and standard deviation (Welford's update), min and max;
* a histogram with log-spaced buckets (``1 + 1/resolution`` ratio between bucket edges, 1 µs to
  1000 s): percentiles are exact to within that relative error (0.5 % by default) however many
  samples arrive;
* the most recent ``window`` samples in a ring buffer (for "latency over time" plots and for exact
  percentiles while fewer than ``window`` samples have arrived).

Memory is ``O(buckets + window)``, independent of the number of samples.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import numpy as np

__all__ = ["LatencyStats", "PERCENTILES"]

#: Percentiles reported by :meth:`LatencyStats.summary`.
PERCENTILES: Sequence[int] = (50, 90, 99)

_MIN_MS = 1e-3          # 1 µs: smaller values land in the first bucket
_MAX_MS = 1e6           # 1000 s: larger values land in the last bucket


class LatencyStats:
    """Fixed-memory statistics of a stream of durations in milliseconds.

    Args:
        window: number of most recent samples kept verbatim (>= 1).
        resolution: buckets per factor ``e`` of the histogram; relative percentile error is about
            ``1 / (2 * resolution)`` (200 -> 0.25 %).

    Raises:
        ValueError: for a window < 1 or a resolution < 1.
    """

    def __init__(self, window: int = 4096, resolution: int = 200) -> None:
        if int(window) < 1:
            raise ValueError(f"window: expected an int >= 1, got {window!r}")
        if int(resolution) < 1:
            raise ValueError(f"resolution: expected an int >= 1, got {resolution!r}")
        self.window = int(window)
        self._res = float(resolution)
        n_buckets = int(math.ceil(math.log(_MAX_MS / _MIN_MS) * self._res)) + 1
        self._hist = np.zeros(n_buckets, np.int64)
        self._ring = np.zeros(self.window, np.float64)
        self._pos = 0
        self.count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self.rejected = 0

    # ------------------------------------------------------------------------------------------
    def add(self, ms: float) -> None:
        """Record one duration (milliseconds). NaN and negative values are counted in
        :attr:`rejected` and otherwise ignored (a clock that went backwards must not poison the stats)."""
        x = float(ms)
        if not x >= 0.0 or x == math.inf:
            self.rejected += 1
            return
        self.count += 1
        delta = x - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (x - self._mean)
        if x < self.min:
            self.min = x
        if x > self.max:
            self.max = x
        self._hist[self._bucket(x)] += 1
        self._ring[self._pos] = x
        self._pos = (self._pos + 1) % self.window

    def _bucket(self, x: float) -> int:
        if x <= _MIN_MS:
            return 0
        return min(len(self._hist) - 1, int(math.log(x / _MIN_MS) * self._res) + 1)

    def _bucket_value(self, i: int) -> float:
        """Geometric centre of bucket ``i`` (bucket ``i >= 1`` covers ``[edge(i-1), edge(i))``)."""
        if i == 0:
            return _MIN_MS
        return _MIN_MS * math.exp((i - 0.5) / self._res)

    # ------------------------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        """Mean of all samples (NaN when empty)."""
        return self._mean if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation of all samples (NaN when empty)."""
        return math.sqrt(self._m2 / self.count) if self.count else math.nan

    def recent(self) -> np.ndarray:
        """The last ``min(count, window)`` samples, oldest first: float64 array (K,)."""
        if self.count < self.window:
            return self._ring[: self.count].copy()
        return np.concatenate([self._ring[self._pos:], self._ring[: self._pos]])

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of all samples.

        Exact (linear interpolation, as ``numpy.percentile``) while every sample is still in the
        window; from the histogram afterwards, within its relative resolution, clamped to [min, max].
        NaN when empty.
        """
        if not 0.0 <= float(q) <= 100.0:
            raise ValueError(f"q: expected a percentile in [0, 100], got {q!r}")
        if self.count == 0:
            return math.nan
        if self.count <= self.window:
            return float(np.percentile(self._ring[: self.count], q))
        rank = q / 100.0 * (self.count - 1)
        cum = np.cumsum(self._hist)
        i = int(np.searchsorted(cum, rank + 1, side="left"))
        return float(min(self.max, max(self.min, self._bucket_value(i))))

    def summary(self) -> Dict[str, Optional[float]]:
        """``{"count", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms"}``
        (floats rounded to µs; None for an empty stream, so the dict is JSON-safe)."""
        if self.count == 0:
            out: Dict[str, Optional[float]] = {"count": 0}
            out.update({k: None for k in ("mean_ms", "std_ms", "min_ms", "max_ms")})
            out.update({f"p{q}_ms": None for q in PERCENTILES})
            return out
        out = {"count": self.count, "mean_ms": round(self.mean, 4), "std_ms": round(self.std, 4),
               "min_ms": round(self.min, 4), "max_ms": round(self.max, 4)}
        out.update({f"p{q}_ms": round(self.percentile(q), 4) for q in PERCENTILES})
        return out

    def nbytes(self) -> int:
        """Bytes held by the buffers (constant for the lifetime of the object)."""
        return int(self._hist.nbytes + self._ring.nbytes)
