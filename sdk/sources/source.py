"""The :class:`Source`: a reader wrapped with a reader thread, a buffering policy, time stamps and reconnection.

Live sources (cameras, RTSP, pipelines; files and the synthetic scene with ``realtime=True``) run a reader
thread that keeps only the newest frame by default, so the consumer never works on a stale one. Files are
read in the consumer's thread, as fast as it takes them (``threaded=True`` reads ahead in a thread).

A broken live stream is reopened with exponential back-off (``max_retries`` attempts); the app sees
``disconnected``/``reconnecting``/``reconnected``/``gave_up`` events in ``source.events`` and through
``on_event``. The end of a stream ends the iteration; giving up raises :class:`~sdk.errors.SourceError`.
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Iterator, Optional, Union

from sdk.errors import SourceError

from .base import Reader, SourceInterrupted
from .frame import Frame, SourceEvent
from .policy import FrameBuffer, Policy, parse_policy

__all__ = ["Source"]

logger = logging.getLogger(__name__)


def _finalize(reader: Reader, stop: threading.Event) -> None:
    """Last resort at garbage collection / interpreter exit: stop the thread and the subprocess."""
    stop.set()
    try:
        reader.interrupt()
        reader.close()
    except Exception:  # pragma: no cover - best effort at exit
        pass


class Source:
    """Frames from one reader. Build it with :func:`sdk.open_source`.

    Iterate (``for frame in source``; leaving the loop, by ``break``, an exception or the end of the stream,
    closes the source) or call :meth:`read`. Use it as a context manager to close it in every case.

    Args:
        reader: the backend (see :mod:`sdk.sources.base`).
        uri: the URI, for frames and messages.
        kind: the URI's kind (``v4l2``, ``rtsp``, ...).
        policy: ``"latest"`` (default for live sources), ``"queue(N)"`` or ``"every"`` (default otherwise).
        realtime: pace a file/synthetic source at its fps, as a camera would deliver it (implies a thread).
        threaded: read in a background thread (default: live or realtime sources).
        max_retries: reconnection attempts after a disconnect (0: none).
        backoff: first delay before reconnecting, seconds; doubled after each failed attempt.
        backoff_max: longest delay, seconds.
        read_timeout: seconds :meth:`read` waits for a frame before raising (not counted while reconnecting).
        on_event: called with each :class:`SourceEvent` (from the reader thread; keep it quick).
        max_events: events kept in ``events`` (oldest forgotten).

    Attributes:
        events: the most recent :class:`SourceEvent` objects (a bounded deque).
        backend: the capture path in use (also logged at open).
    """

    def __init__(self, reader: Reader, *, uri: str, kind: str = "", policy: Union[str, Policy, None] = None,
                 realtime: bool = False, threaded: Optional[bool] = None, max_retries: int = 10,
                 backoff: float = 0.1, backoff_max: float = 2.0, read_timeout: float = 10.0,
                 on_event: Optional[Callable[[SourceEvent], Any]] = None, max_events: int = 256) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise SourceError(f"max_retries: expected an int >= 0, got {max_retries!r}")
        for name, value in (("backoff", backoff), ("backoff_max", backoff_max), ("read_timeout", read_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise SourceError(f"{name}: expected a number of seconds > 0, got {value!r}")
        if on_event is not None and not callable(on_event):
            raise SourceError(f"on_event: expected a callable, got {type(on_event).__name__}")
        self.reader = reader
        self.uri = uri
        self.kind = kind
        self.realtime = bool(realtime)
        self.live = bool(reader.live) or self.realtime
        self.policy = parse_policy(policy, default="latest" if self.live else "every")
        self.threaded = self.live if threaded is None else bool(threaded)
        if self.realtime and not self.threaded:
            raise SourceError("realtime=True needs threaded reading; got threaded=False")
        self.max_retries = max_retries
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.read_timeout = float(read_timeout)
        self.on_event = on_event
        self.events: deque = deque(maxlen=max_events)
        self.reconnects = 0
        self._buffer = FrameBuffer(self.policy)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._count = 0
        self._reconnecting = False
        self._opened = False
        self._closed = False
        self._ended = False
        self._close_lock = threading.Lock()
        self._close_done = threading.Event()
        self._finalizer = weakref.finalize(self, _finalize, reader, self._stop)

    # ------------------------------------------------------------------------------------------ properties
    @property
    def backend(self) -> str:
        """The capture path in use: ``gst-launch``, ``ffmpeg``, ``opencv-v4l2``, ``opencv-gstreamer``, ..."""
        return self.reader.backend

    @property
    def fps(self) -> Optional[float]:
        """Nominal frame rate when known."""
        return self.reader.fps

    @property
    def dropped(self) -> int:
        """Frames captured but replaced before the consumer read them (``latest``/``queue(N)``)."""
        return self._buffer.dropped

    @property
    def frames_captured(self) -> int:
        """Frames read from the backend so far (delivered or dropped)."""
        return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    def describe(self) -> dict:
        """URI, kind, backend (and its command line or pipeline), policy, counters."""
        info = {"uri": self.uri, "kind": self.kind, "backend": self.backend, "live": self.live,
                "realtime": self.realtime, "threaded": self.threaded, "policy": str(self.policy), "fps": self.fps,
                "frames": self._count, "dropped": self.dropped, "reconnects": self.reconnects}
        info["reader"] = self.reader.describe()
        return info

    def __repr__(self) -> str:
        return f"Source({self.uri!r}, backend={self.backend!r}, policy={str(self.policy)!r}, live={self.live})"

    # ------------------------------------------------------------------------------------------ events
    def _event(self, kind: str, message: str = "", attempt: int = 0) -> None:
        event = SourceEvent(kind, time.monotonic(), self.uri, message, attempt)
        self.events.append(event)
        log = logger.warning if kind in ("disconnected", "gave_up") else logger.info
        log("%s: %s%s%s", self.uri, kind, f" (attempt {attempt})" if attempt else "", f": {message}" if message else "")
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("%s: on_event callback raised (ignored)", self.uri)

    # ------------------------------------------------------------------------------------------ lifecycle
    def open(self) -> "Source":
        """Open the reader (retrying a reconnectable source that is not up yet) and start the reader thread.

        Raises:
            SourceError: the source cannot be opened (after ``max_retries`` attempts where retrying makes sense).
        """
        if self._opened:
            return self
        delay, attempt = self.backoff, 0
        while True:
            try:
                self.reader.open()
                break
            except SourceInterrupted as exc:
                attempt += 1
                if not self.reader.reconnectable or attempt > self.max_retries:
                    self.reader.close()
                    tried = f" after {attempt} attempts" if attempt > 1 else ""
                    raise SourceError(f"could not open {self.uri}{tried}: {exc}") from exc
                logger.info("%s: not up yet (%s); retrying in %.2f s", self.uri, exc, delay)
                if self._stop.wait(delay):
                    raise SourceError(f"{self.uri}: closed while opening") from exc
                delay = min(delay * 2, self.backoff_max)
            except SourceError:
                self.reader.close()
                raise
        self._opened = True
        self._t0 = time.monotonic()
        logger.info("%s: opened with backend %s (%s, policy %s)", self.uri, self.backend,
                    "live" if self.live else "file", self.policy)
        self._event("opened", f"backend {self.backend}")
        if self.threaded:
            self._thread = threading.Thread(target=self._run, daemon=True, name=f"edgesdk-source[{self.uri[:40]}]")
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the reader thread and the backend (kill and reap a subprocess). Idempotent, thread-safe."""
        with self._close_lock:
            first, self._closed = not self._closed, True
        if not first:  # closing in another thread: wait for it (the reader thread itself must not wait)
            if threading.current_thread() is not self._thread:
                self._close_done.wait(30.0)
            return
        self._stop.set()
        self.reader.interrupt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10.0)
            if thread.is_alive():
                logger.warning("%s: reader thread did not stop within 10 s; leaving the backend open", self.uri)
                self._buffer.close()
                self._close_done.set()
                return
        self.reader.close()
        self._buffer.close()
        self._finalizer.detach()
        self._event("closed")
        self._close_done.set()

    def __enter__(self) -> "Source":
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ reading
    def _next_raw(self) -> Any:
        """One raw frame from the reader, reconnecting as needed; None at the end or when stopped."""
        while not self._stop.is_set():
            try:
                raw = self.reader.read()
            except SourceInterrupted as exc:
                if self._stop.is_set():
                    return None
                if not self._recover(exc):
                    return None
                continue
            if raw is None and self._stop.is_set():
                return None
            return raw
        return None

    def _make_frame(self, raw: Any) -> Frame:
        image, extras = raw
        t = time.monotonic()
        index = self._count
        self._count += 1
        extras = extras or {}
        return Frame(image=image, index=index, t_capture=t, source=self.uri, boxes=extras.get("boxes"),
                     class_ids=extras.get("class_ids"), track_ids=extras.get("track_ids"),
                     meta=dict(extras.get("meta") or {}))

    def _recover(self, exc: SourceInterrupted) -> bool:
        """Reopen after ``exc`` with back-off. True when reconnected, False when stopped meanwhile.

        Raises:
            SourceError: not reconnectable, or ``max_retries`` attempts failed (after a ``gave_up`` event).
        """
        self._event("disconnected", str(exc))
        if not self.reader.reconnectable or self.max_retries == 0:
            self._event("gave_up", "source is not reconnectable" if not self.reader.reconnectable else "max_retries=0")
            raise SourceError(str(exc)) from exc
        self._reconnecting = True
        delay, last = self.backoff, exc
        try:
            for attempt in range(1, self.max_retries + 1):
                self._event("reconnecting", f"in {delay:.2f} s", attempt)
                if self._stop.wait(delay):
                    return False
                self.reader.close()
                if self._stop.is_set():
                    return False
                try:
                    self.reader.open()
                except SourceInterrupted as err:
                    last = err
                    delay = min(delay * 2, self.backoff_max)
                    continue
                except SourceError as err:
                    self._event("gave_up", f"cannot reopen: {err}", attempt)
                    raise
                self.reconnects += 1
                self._event("reconnected", f"backend {self.backend}", attempt)
                return True
        finally:
            self._reconnecting = False
        self._event("gave_up", str(last), self.max_retries)
        raise SourceError(f"{self.uri}: gave up after {self.max_retries} reconnection attempts; last error: {last}")

    def _run(self) -> None:
        error: Optional[BaseException] = None
        fps = self.reader.fps
        try:
            while not self._stop.is_set():
                if self.realtime and fps:
                    due = self._t0 + self._count / fps
                    wait = due - time.monotonic()
                    if wait > 0 and self._stop.wait(wait):
                        break
                raw = self._next_raw()
                if raw is None:
                    if not self._stop.is_set():
                        self._event("end")
                    break
                self._buffer.put(self._make_frame(raw), self._stop)
        except SourceError as exc:
            error = exc
        except Exception as exc:  # a backend bug must reach the consumer, not die silently in a thread
            logger.exception("%s: reader thread failed", self.uri)
            error = SourceError(f"{self.uri}: reader failed: {type(exc).__name__}: {exc}")
        finally:
            self._buffer.close(error)

    def read(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame (the newest one under ``latest``), or None at the end of the stream.

        Args:
            timeout: seconds to wait (default ``read_timeout``); time spent reconnecting does not count.

        Raises:
            SourceError: the source failed (gave up reconnecting, a camera vanished, a backend error), or no
                frame came within the timeout, or the source was never opened.
        """
        if not self._opened:
            raise SourceError(f"{self.uri}: read() before open(); use sdk.open_source(...) or `with source:`")
        if self._ended or (self._closed and not self._buffer):
            return None
        if not self.threaded:
            raw = self._next_raw()
            if raw is None:
                self._ended = True
                if not self._stop.is_set():
                    self._event("end")
                return None
            return self._make_frame(raw)
        wait = self.read_timeout if timeout is None else float(timeout)
        try:
            frame = self._buffer.get(wait, keep_waiting=lambda: self._reconnecting)
        except TimeoutError:
            raise SourceError(f"{self.uri}: no frame for {wait:g} s from backend {self.backend} (camera stopped or "
                              f"vanished?); last events: {[e.kind for e in list(self.events)[-3:]]}") from None
        if frame is None:
            self._ended = True
        return frame

    def __iter__(self) -> Iterator[Frame]:
        if not self._opened:
            self.open()
        try:
            while True:
                frame = self.read()
                if frame is None:
                    return
                yield frame
        finally:
            self.close()
