"""Per-stage latency profiling of the whole path: capture, preprocess, infer, postprocess, track, total.

::

    prof = sdk.Profiler(warmup=20)
    with sdk.open_source("synthetic://shapes") as src:
        result = sdk.profiler.profile(model, src, frames=300, profiler=prof)
    prof.summary()["stages"]["infer"]["p90_ms"]

A :class:`Profiler` holds one :class:`~sdk.latency.LatencyStats` per stage (fixed memory however
long it runs), frame age at inference (now - the frame's capture timestamp), FPS, CPU % of this
process, peak RSS, and, where the kernel exposes them, temperatures, CPU clocks and the Jetson power
mode, sampled every few seconds. The first ``warmup`` frames are excluded. The profiler times its own
bookkeeping and reports it as ``overhead_pct`` of the total.
"""
from __future__ import annotations

import logging
import resource
import sys
import time
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

import numpy as np

from sdk.latency import LatencyStats

__all__ = ["Profiler", "profile", "STAGES"]

logger = logging.getLogger(__name__)

#: Stages in path order; ``total`` is their sum for each frame.
STAGES: Sequence[str] = ("capture", "preprocess", "infer", "postprocess", "track", "total")


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def _current_rss_mb() -> Optional[float]:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * resource.getpagesize() / (1024.0 * 1024.0)
    except (OSError, ValueError, IndexError):
        return None


class Profiler:
    """Collects per-frame stage timings into fixed-memory statistics.

    Args:
        warmup: frames to ignore at the start (runtimes are slow on their first runs).
        window: recent samples kept per stage (for latency-over-time plots).
        system_every_s: how often to sample temperatures and clocks (0 disables).

    Raises:
        ValueError: a negative warmup.
    """

    def __init__(self, *, warmup: int = 10, window: int = 4096, system_every_s: float = 2.0) -> None:
        if int(warmup) < 0:
            raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")
        self.warmup = int(warmup)
        self.stages: Dict[str, LatencyStats] = {name: LatencyStats(window) for name in STAGES}
        self.frame_age = LatencyStats(window)
        self.frames_seen = 0
        self.dropped = 0
        self._system_every = float(system_every_s)
        self._next_system = 0.0
        self._temps: Dict[str, list] = {}
        self._clocks: list = []
        self._overhead_s = 0.0
        self._measured_s = 0.0
        self._t_start: Optional[float] = None
        self._cpu_start = 0.0
        self._t_last: Optional[float] = None
        self._cpu_last = 0.0
        self._rss_start: Optional[float] = None

    # ------------------------------------------------------------------------------------------
    def record(self, timings: Mapping[str, float], *, age_ms: Optional[float] = None, dropped: int = 0) -> None:
        """Record one frame.

        Args:
            timings: stage -> milliseconds; keys ``capture``, ``preprocess``, ``infer``,
                ``postprocess``, ``track`` (any subset; ``sdk.Model.last_timings``' ``*_ms`` keys are
                accepted too). ``total`` is the sum unless given.
            age_ms: frame age when inference started (now - frame capture time), if known.
            dropped: frames the source dropped since the previous record.

        Raises:
            ValueError: an unknown stage name.
        """
        t0 = time.perf_counter()
        self.frames_seen += 1
        if self.frames_seen <= self.warmup:
            if self.frames_seen == self.warmup:
                self._begin()
            self._overhead_s += time.perf_counter() - t0
            return
        if self._t_start is None:
            self._begin()
        total = 0.0
        for key, ms in timings.items():
            name = key[:-3] if key.endswith("_ms") else key
            stats = self.stages.get(name)
            if stats is None:
                raise ValueError(f"timings: expected stages {', '.join(STAGES)}, got {key!r}")
            if name != "total":
                stats.add(ms)
                total += float(ms)
        self.stages["total"].add(float(timings.get("total", timings.get("total_ms", total))))
        self._measured_s += total / 1e3
        if age_ms is not None:
            self.frame_age.add(age_ms)
        self.dropped += int(dropped)
        now = time.monotonic()
        if self._system_every > 0 and now >= self._next_system:
            self._sample_system()
            self._next_system = now + self._system_every
        self._t_last = time.perf_counter()
        self._cpu_last = time.process_time()
        self._overhead_s += time.perf_counter() - t0

    def _begin(self) -> None:
        self._t_start = time.perf_counter()
        self._cpu_start = time.process_time()
        self._rss_start = _current_rss_mb()

    def _sample_system(self) -> None:
        from sdk.hostinfo import cpu_clocks, thermal_c

        for zone, c in thermal_c().items():
            self._temps.setdefault(zone, []).append(c)
            if len(self._temps[zone]) > 1024:           # fixed memory: keep a thinned history
                self._temps[zone] = self._temps[zone][::2]
        mhz = cpu_clocks().get("cur_mhz")
        if mhz is not None:
            self._clocks.append(mhz)
            if len(self._clocks) > 1024:
                self._clocks = self._clocks[::2]

    # ------------------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        """Frames measured (after warm-up)."""
        return self.stages["total"].count

    def summary(self) -> Dict[str, Any]:
        """JSON-ready summary: ``stages.<name>.{count, mean_ms, std_ms, min_ms, max_ms, p50_ms, p90_ms,
        p99_ms}``, ``frame_age``, ``frames``, ``warmup``, ``fps``, ``cpu_percent``, ``peak_rss_mb``,
        ``rss_growth_mb``, ``dropped``, ``overhead_pct``, ``system`` (temperatures, clocks, power mode)."""
        from sdk.hostinfo import cpu_clocks, power_mode

        wall = (self._t_last - self._t_start) if (self._t_last and self._t_start) else 0.0
        cpu = (self._cpu_last - self._cpu_start) if self._t_start else 0.0
        stages = {name: s.summary() for name, s in self.stages.items() if s.count or name != "track"}
        rss_now = _current_rss_mb()
        measured = self._measured_s
        return {
            "frames": self.frames,
            "warmup": self.warmup,
            "stages": stages,
            "frame_age": self.frame_age.summary(),
            "fps": round(self.frames / wall, 3) if wall > 0 else None,
            "throughput_fps_from_total": (round(1e3 / self.stages["total"].mean, 3)
                                          if self.stages["total"].count else None),
            "cpu_percent": round(100.0 * cpu / wall, 1) if wall > 0 else None,
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "rss_growth_mb": (round(rss_now - self._rss_start, 2)
                              if rss_now is not None and self._rss_start is not None else None),
            "dropped": self.dropped,
            "overhead_pct": round(100.0 * self._overhead_s / measured, 4) if measured > 0 else None,
            "system": {
                "temperature_c": {k: {"min": min(v), "max": max(v), "last": v[-1]} for k, v in self._temps.items()},
                "cpu_mhz": ({"min": min(self._clocks), "max": max(self._clocks)} if self._clocks else None),
                "cpu_clocks": cpu_clocks(),
                "power_mode": power_mode(),
            },
        }

    def series(self) -> Dict[str, np.ndarray]:
        """The recent samples of every stage (oldest first), for plots: stage -> float64 (K,)."""
        return {name: s.recent() for name, s in self.stages.items() if s.count}


def _frame_parts(item: Any) -> tuple:
    """(image, t_capture or None, item) from an ``sdk.Frame``-like object or a bare image."""
    image = getattr(item, "image", None)
    if image is None:
        return item, None, item
    return image, getattr(item, "t_capture", None), item


def profile(model: Any, frames: Iterable[Any], *, count: int = 300, profiler: Optional[Profiler] = None,
            tracker: Optional[Callable[[Any, Any], Any]] = None,
            on_result: Optional[Callable[[Any, Any], None]] = None, progress: bool = False) -> Profiler:
    """Run ``model`` on ``count`` frames from ``frames`` (plus the profiler's warm-up), timing every stage.

    The capture stage is the time spent waiting for the next frame (``next(iterator)``); preprocess,
    infer and postprocess are timed around :meth:`sdk.Model.preprocess` / ``infer`` /
    ``postprocess``; ``track`` around ``tracker(frame, result)`` when given.

    Args:
        model: an ``sdk.Model`` (anything with ``preprocess``, ``infer``, ``postprocess``).
        frames: an iterable of ``sdk.Frame`` (``.image``, ``.t_capture`` monotonic seconds) or of BGR
            images (H, W, 3) uint8.
        count: frames to measure after warm-up (the run stops earlier when ``frames`` ends).
        profiler: the Profiler to fill (a new one with ``warmup=10`` by default).
        tracker: optional ``tracker(frame, result) -> result``.
        on_result: optional ``on_result(frame, result)`` called after each frame (not timed).
        progress: show a tqdm progress bar when tqdm is installed.

    Returns:
        The profiler.
    """
    prof = profiler or Profiler()
    total = prof.warmup + int(count)
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, desc="profiling", unit="frame", leave=False, disable=None)  # off when not a TTY
        except ImportError:
            bar = None
    it = iter(frames)
    dropped_before = int(getattr(frames, "dropped", 0) or 0)
    try:
        for _ in range(total):
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                break
            t1 = time.perf_counter()
            image, t_capture, frame = _frame_parts(item)
            age = (time.monotonic() - t_capture) * 1e3 if t_capture is not None else None
            tensor, transform = model.preprocess(image)
            t2 = time.perf_counter()
            outputs = model.infer(tensor)
            t3 = time.perf_counter()
            result = model.postprocess(outputs, transform)
            t4 = time.perf_counter()
            timings = {"capture": (t1 - t0) * 1e3, "preprocess": (t2 - t1) * 1e3, "infer": (t3 - t2) * 1e3,
                       "postprocess": (t4 - t3) * 1e3}
            if tracker is not None:
                result = tracker(frame, result)
                timings["track"] = (time.perf_counter() - t4) * 1e3
            dropped_now = int(getattr(frames, "dropped", 0) or 0)
            prof.record(timings, age_ms=age, dropped=dropped_now - dropped_before)
            dropped_before = dropped_now
            if on_result is not None:
                on_result(frame, result)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if prof.frames == 0:
        logger.warning("profile: no frame measured (the source gave %d frames, warm-up is %d)",
                       prof.frames_seen, prof.warmup)
    return prof
