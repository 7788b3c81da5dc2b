"""``sdk.Pipeline``: capture → inference → (tracker) → your code, on threads that overlap, with live stats.

::

    for frame, result in sdk.Pipeline("rtsp://cam/stream", "detector.tflite", device="rpi5"):
        robot.act(result)                      # iterator mode

    pipe = sdk.Pipeline(0, model, on_result=handle)   # callback mode (handle runs on its own thread)
    pipe.start(); ...; pipe.stop()

    pipe.latest()                              # newest (frame, result) or None, never blocks (control loops)
    pipe.stats()                               # fps, per-stage latency p50/p90, frame age at inference, drops

Three stages run concurrently: the source's reader thread (capture; keeps the newest frame of a live
source), the inference thread (model, then tracker) and the consumer (your loop or the callback thread).
Between inference and the consumer the same policy applies as at the source: under ``latest`` a consumer
slower than inference gets the newest result and older ones are counted as dropped. Memory stays fixed
however long it runs: every buffer and statistics window is bounded.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator, Optional, Tuple

import numpy as np

from sdk.errors import SDKError, SourceError

__all__ = ["Pipeline", "STAGES"]

logger = logging.getLogger(__name__)

#: Stages timed by :meth:`Pipeline.stats` (milliseconds). ``capture`` is the time the inference thread waited
#: for a frame; ``total`` runs from the frame's capture to its result being ready.
STAGES = ("capture", "preprocess", "infer", "postprocess", "track", "total")


def _percentiles(values: Any) -> dict:
    if not values:
        return {"p50": None, "p90": None, "max": None}
    arr = np.asarray(values, np.float64)
    p50, p90 = np.percentile(arr, [50, 90])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "max": round(float(arr.max()), 3)}


class Pipeline:
    """Run a model on the frames of a source, the newest frame first.

    Args:
        source: a URI for :func:`sdk.open_source` (``0``, ``"rtsp://..."``, ``"synthetic://shapes"``, a file...)
            or an already built :class:`sdk.sources.Source`. The pipeline closes it when it stops.
        model: a loaded :class:`sdk.Model` (or anything callable on a BGR frame with an optional
            ``last_timings`` dict), or a path given to :func:`sdk.load`.
        tracker: optional; ``tracker.update(result)`` (or ``tracker(result)``) returns the result to deliver.
        on_result: callback mode: called as ``on_result(frame, result)`` on the pipeline's consumer thread.
        device: device config for :func:`sdk.load` when ``model`` is a path.
        policy: buffering at the source and between inference and the consumer: ``"latest"`` (the default
            for live sources), ``"queue(N)"``, or ``"every"`` (the default for files: no frame skipped).
        max_frames: stop after this many results (None: until the source ends or :meth:`stop`).
        warmup: run the model on a blank frame before starting (first runs are slow on most runtimes).
        stats_window: how many recent frames the statistics cover.
        source_options: extra keyword arguments for :func:`sdk.open_source` when ``source`` is a URI.

    Raises:
        SourceError: the source cannot be opened (raised by :meth:`start`).
        ValueError: bad arguments (expected vs got).
    """

    def __init__(self, source: Any, model: Any, *, tracker: Any = None,
                 on_result: Optional[Callable[[Any, Any], Any]] = None, device: Any = None,
                 policy: Optional[str] = None, max_frames: Optional[int] = None, warmup: bool = True,
                 stats_window: int = 512, source_options: Optional[dict] = None) -> None:
        from sdk.sources import Source, parse_policy

        if on_result is not None and not callable(on_result):
            raise ValueError(f"on_result: expected a callable(frame, result), got {type(on_result).__name__}")
        if tracker is not None and not (callable(getattr(tracker, "update", None)) or callable(tracker)):
            raise ValueError(f"tracker: expected an object with update(result) or a callable, got {type(tracker).__name__}")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
            raise ValueError(f"max_frames: expected an int >= 1 or None, got {max_frames!r}")
        if isinstance(stats_window, bool) or not isinstance(stats_window, int) or stats_window < 2:
            raise ValueError(f"stats_window: expected an int >= 2, got {stats_window!r}")
        if policy is not None:
            parse_policy(policy)  # validate now, not at start()
        if isinstance(source, Source):
            self._source: Any = source
            self._source_spec: Any = None
        elif source is None or isinstance(source, bool):
            raise ValueError(f"source: expected a URI or a Source, got {source!r}")
        else:
            self._source, self._source_spec = None, source
        self._source_options = dict(source_options or {})
        self._owns_model = isinstance(model, (str, os.PathLike))
        if self._owns_model:
            import sdk

            model = sdk.load(model, device=device)
        elif not callable(model):
            raise ValueError(f"model: expected an sdk.Model, a callable or a model path, got {type(model).__name__}")
        self.model = model
        self.tracker = tracker
        self.on_result = on_result
        self.policy = policy
        self.max_frames = max_frames
        self.warmup = warmup
        self._window = stats_window
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stop_done = threading.Event()
        self._threads: list = []
        self._out: Any = None
        self._latest: Optional[Tuple[Any, Any]] = None
        self._error: Optional[BaseException] = None
        self._started = False
        self._stopped = False
        self._processed = 0
        self._results_dropped = 0
        self._t_start: Optional[float] = None
        self._stage: dict = {name: deque(maxlen=stats_window) for name in STAGES}
        self._age: deque = deque(maxlen=stats_window)
        self._done_t: deque = deque(maxlen=stats_window)
        self._capture_t: deque = deque(maxlen=stats_window)

    # ------------------------------------------------------------------------------------------ lifecycle
    @property
    def source(self) -> Any:
        """The :class:`sdk.sources.Source` (None before :meth:`start` when built from a URI)."""
        return self._source

    @property
    def running(self) -> bool:
        return self._started and not self._stopped and any(t.is_alive() for t in self._threads)

    def start(self) -> "Pipeline":
        """Open the source (if given as a URI) and start the threads. Idempotent.

        Raises:
            SourceError: the source cannot be opened.
        """
        from sdk.sources import FrameBuffer, open_source, parse_policy

        with self._lock:
            if self._started:
                return self
            self._started = True
        if self.warmup and callable(getattr(self.model, "warmup", None)):
            self.model.warmup(1)
        if self._source is None:
            options = dict(self._source_options)
            options.setdefault("threaded", True)
            if self.policy is not None:
                options.setdefault("policy", self.policy)
            self._source = open_source(self._source_spec, **options)
        elif not self._source._opened:
            self._source.open()
        out_policy = parse_policy(self.policy, default=str(self._source.policy))
        self._out = FrameBuffer(out_policy)
        self._t_start = time.monotonic()
        logger.info("pipeline: source %s (backend %s, policy %s), model %r", self._source.uri, self._source.backend,
                    self._source.policy, self.model)
        worker = threading.Thread(target=self._infer_loop, daemon=True, name="edgesdk-pipeline-infer")
        self._threads = [worker]
        if self.on_result is not None:
            self._threads.append(threading.Thread(target=self._callback_loop, daemon=True,
                                                  name="edgesdk-pipeline-callback"))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop capture and inference, close the source (and the model if the pipeline loaded it). Idempotent.

        Safe to call from any thread, including from ``on_result``.
        """
        with self._lock:
            first, self._stopped = not self._stopped, True
        if not first:  # another thread is stopping it: wait until it is done (unless we are a pipeline thread)
            if threading.current_thread() not in self._threads:
                self._stop_done.wait(30.0)
            return
        self._stop.set()
        if self._source is not None:
            self._source.close()
        if self._out is not None:
            self._out.close()
        me = threading.current_thread()
        for t in self._threads:
            if t is not me:
                t.join(10.0)
                if t.is_alive():
                    logger.warning("pipeline: thread %s did not stop within 10 s", t.name)
        if self._owns_model and callable(getattr(self.model, "close", None)):
            self.model.close()
        self._stop_done.set()

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait until the source ends, ``max_frames`` are done or :meth:`stop` is called; re-raise a failure.

        Raises:
            SDKError: whatever stopped the pipeline (a source that gave up, a model error, a callback error).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            if t is threading.current_thread():
                continue
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if all(not t.is_alive() for t in self._threads):
            self.stop()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "Pipeline":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ threads
    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, SDKError):
            wrapped = SDKError(f"pipeline failed: {type(exc).__name__}: {exc}")
            wrapped.__cause__ = exc
            exc = wrapped
        with self._lock:
            if self._error is None:
                self._error = exc
        self._stop.set()

    def _run_model(self, frame: Any) -> Tuple[Any, dict]:
        t0 = time.perf_counter()
        result = self.model(frame.image)
        elapsed = (time.perf_counter() - t0) * 1e3
        timings = dict(getattr(self.model, "last_timings", None) or {})
        stages = {"preprocess": timings.get("preprocess_ms"), "infer": timings.get("infer_ms", elapsed if not timings else None),
                  "postprocess": timings.get("postprocess_ms")}
        t1 = time.perf_counter()
        if self.tracker is not None:
            update = getattr(self.tracker, "update", None)
            result = update(result) if callable(update) else self.tracker(result)
            stages["track"] = (time.perf_counter() - t1) * 1e3
        return result, stages

    def _infer_loop(self) -> None:
        source, out = self._source, self._out
        try:
            while not self._stop.is_set():
                t_wait = time.monotonic()
                frame = source.read()
                if frame is None:
                    break
                t_got = time.monotonic()
                age_ms = (t_got - frame.t_capture) * 1e3
                result, stages = self._run_model(frame)
                t_done = time.monotonic()
                stages["capture"] = (t_got - t_wait) * 1e3
                stages["total"] = (t_done - frame.t_capture) * 1e3
                frame.meta["age_ms"] = age_ms
                frame.meta["timings_ms"] = {k: v for k, v in stages.items() if v is not None}
                with self._lock:
                    for name, value in stages.items():
                        if value is not None:
                            self._stage[name].append(value)
                    self._age.append(age_ms)
                    self._done_t.append(t_done)
                    self._capture_t.append(frame.t_capture)
                    self._processed += 1
                    self._latest = (frame, result)
                    done = self.max_frames is not None and self._processed >= self.max_frames
                before = out.dropped
                if not out.put((frame, result), self._stop):
                    break
                if out.dropped != before:
                    with self._lock:
                        self._results_dropped += out.dropped - before
                if done:
                    break
        except SourceError as exc:
            if not self._stop.is_set():
                self._fail(exc)
        except BaseException as exc:  # a model error must reach the consumer
            logger.exception("pipeline: inference failed")
            self._fail(exc)
        finally:
            out.close(self._error)

    def _callback_loop(self) -> None:
        try:
            while True:
                item = self._out.get(None)
                if item is None:
                    break
                self.on_result(*item)
        except BaseException as exc:
            if exc is self._error:
                return  # the inference thread's error, already recorded
            logger.exception("pipeline: on_result raised; stopping")
            self._fail(exc)
            if self._source is not None:
                self._source.close()
            self._out.close()

    # ------------------------------------------------------------------------------------------ consumer
    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        """``for frame, result in pipeline``; leaving the loop stops the pipeline.

        Raises:
            ValueError: the pipeline runs in callback mode.
            SDKError: what stopped it (source gave up, model error), after the results already delivered.
        """
        if self.on_result is not None:
            raise ValueError("pipeline: expected iterator mode, got on_result set (callback mode); use join()")
        self.start()
        try:
            while True:
                item = self._out.get(None)
                if item is None:
                    break
                yield item
            self._raise_error()
        finally:
            self.stop()

    def latest(self) -> Optional[Tuple[Any, Any]]:
        """The newest ``(frame, result)`` (None before the first), without blocking. Thread-safe."""
        with self._lock:
            return self._latest

    def stats(self) -> dict:
        """Live statistics over the last ``stats_window`` frames.

        Returns:
            ``{"frames", "fps", "source_fps", "latency_ms": {stage: {"p50", "p90", "max"}}, "age_ms": {...},
            "dropped", "source_dropped", "results_dropped", "reconnects", "backend", "running", "uptime_s"}``;
            ``age_ms`` is the frame age at inference (``now - frame.t_capture``), ``fps`` the results rate.
        """
        with self._lock:
            stages = {name: list(values) for name, values in self._stage.items()}
            age = list(self._age)
            done = list(self._done_t)
            captured = list(self._capture_t)
            processed, results_dropped = self._processed, self._results_dropped

        def rate(ts: list) -> Optional[float]:
            return round((len(ts) - 1) / (ts[-1] - ts[0]), 3) if len(ts) >= 2 and ts[-1] > ts[0] else None

        src = self._source
        source_dropped = src.dropped if src is not None else 0
        return {"frames": processed, "fps": rate(done), "source_fps": rate(sorted(captured)),
                "latency_ms": {name: _percentiles(values) for name, values in stages.items()},
                "age_ms": _percentiles(age), "dropped": source_dropped + results_dropped,
                "source_dropped": source_dropped, "results_dropped": results_dropped,
                "reconnects": src.reconnects if src is not None else 0,
                "backend": src.backend if src is not None else None, "running": self.running,
                "uptime_s": round(time.monotonic() - self._t_start, 3) if self._t_start else 0.0}

    def __repr__(self) -> str:
        uri = self._source.uri if self._source is not None else self._source_spec
        return f"Pipeline(source={uri!r}, model={self.model!r}, running={self.running})"
