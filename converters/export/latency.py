"""Latency of an artifact on this host, through ``sdk`` (pre-processing + inference + decoding)."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["measure_latency"]


def measure_latency(model: Any, frame: Optional[np.ndarray] = None, *, runs: int = 20, warmup: int = 3) -> Dict[str, float]:
    """Median (p50) and p90 wall time of ``model(frame)``, plus the median of the inference stage.

    Args:
        model: an ``sdk.Model``.
        frame: BGR uint8 image (default: a mid-grey frame of the network's size).
        runs: timed calls.
        warmup: untimed calls first.

    Returns:
        ``{"p50_ms", "p90_ms", "p50_infer_ms", "runs"}``.
    """
    if frame is None:
        h, w = model.contract.input.size_hw
        frame = np.full((h, w, 3), 114, np.uint8)
    for _ in range(max(0, warmup)):
        model(frame)
    total, infer = [], []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        model(frame)
        total.append((time.perf_counter() - t0) * 1e3)
        infer.append(model.last_timings.get("infer_ms", float("nan")))
    return {"p50_ms": round(float(np.median(total)), 3), "p90_ms": round(float(np.percentile(total, 90)), 3),
            "p50_infer_ms": round(float(np.median(infer)), 3), "runs": len(total)}
