"""sdk.latency.LatencyStats: exact while in the window, within resolution after, fixed memory."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sdk.latency import LatencyStats


def test_exact_within_window():
    rng = np.random.default_rng(0)
    x = rng.lognormal(1.0, 0.6, 1000)
    s = LatencyStats(window=1000)
    for v in x:
        s.add(v)
    for q in (0, 50, 90, 99, 100):
        assert s.percentile(q) == pytest.approx(np.percentile(x, q), rel=1e-12)
    assert s.mean == pytest.approx(x.mean(), rel=1e-12)
    assert s.std == pytest.approx(x.std(), rel=1e-9)
    assert (s.min, s.max) == (x.min(), x.max())
    np.testing.assert_array_equal(s.recent(), x)


def test_histogram_percentiles_and_fixed_memory():
    rng = np.random.default_rng(1)
    s = LatencyStats(window=256, resolution=200)
    before = s.nbytes()
    x = np.concatenate([rng.lognormal(0.5, 0.4, 60000), rng.uniform(40, 60, 2000)])  # with a slow tail
    rng.shuffle(x)
    for v in x:
        s.add(v)
    assert s.nbytes() == before                          # memory does not grow with samples
    for q in (50, 90, 99):
        assert s.percentile(q) == pytest.approx(np.percentile(x, q), rel=0.01)
    np.testing.assert_array_equal(s.recent(), x[-256:])   # ring buffer keeps the newest, oldest first
    summ = s.summary()
    assert summ["count"] == len(x) and summ["p99_ms"] >= summ["p90_ms"] >= summ["p50_ms"]


def test_rejects_bad_samples_and_empty_summary():
    s = LatencyStats()
    for bad in (float("nan"), -1.0, float("inf")):
        s.add(bad)
    assert s.count == 0 and s.rejected == 3
    assert s.summary()["p50_ms"] is None and math.isnan(s.percentile(50))
    with pytest.raises(ValueError, match=r"q: expected a percentile in \[0, 100\], got 101"):
        s.percentile(101)
    with pytest.raises(ValueError, match="window"):
        LatencyStats(window=0)
