"""Latency of an artifact on this host, through ``sdk`` (pre-processing + inference + decoding)."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["measure_latency", "interleaved_p50"]


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


def interleaved_p50(models: Dict[str, Any], frame: Optional[np.ndarray] = None, *, runs: int = 20,
                    warmup: int = 3) -> Dict[str, float]:
    """Median ms of ``model(frame)`` for several models timed in alternating rounds (the order rotates each
    round), so that a busy machine slows them alike: what a ratio between them should be computed from.

    Args:
        models: name → ``sdk.Model`` (same input size).
        frame: BGR uint8 image (default: mid-grey at the first model's input size).
        runs: timed rounds.
        warmup: untimed calls of each first.

    Returns:
        name → p50 in ms.
    """
    names = list(models)
    if frame is None:
        h, w = models[names[0]].contract.input.size_hw
        frame = np.full((h, w, 3), 114, np.uint8)
    for name in names:
        for _ in range(max(0, warmup)):
            models[name](frame)
    times: Dict[str, list] = {name: [] for name in names}
    for r in range(max(1, runs)):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            t0 = time.perf_counter()
            models[name](frame)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: round(float(np.median(v)), 3) for name, v in times.items()}
