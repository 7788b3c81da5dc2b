"""Buffering policies between a source's reader thread and its consumer.

* ``latest`` (default for live sources): keep only the newest frame; an unread frame is replaced and
  counted in ``dropped``. The consumer always gets the freshest frame, at most one frame period old
  plus its own processing.
* ``queue(N)``: keep the newest N frames; when full the oldest is dropped (and counted). Smooths bursts at
  the price of up to N frame periods of age.
* ``every``: never drop; when the consumer lags the reader waits (back-pressure on the camera or the
  decoder, whose own buffers then fill or drop). For files this reads ahead a few frames.
"""
from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

__all__ = ["Policy", "parse_policy", "FrameBuffer"]

_QUEUE_RE = re.compile(r"^queue\s*[\(:]\s*(\d+)\s*\)?$")
_EVERY_CAPACITY = 4


@dataclass(frozen=True)
class Policy:
    """A parsed buffering policy.

    Attributes:
        kind: ``"latest"``, ``"queue"`` or ``"every"``.
        size: frames kept (1 for latest, N for queue, the read-ahead for every).
    """

    kind: str
    size: int

    def __str__(self) -> str:
        return f"queue({self.size})" if self.kind == "queue" else self.kind


def parse_policy(policy: Union[str, Policy, None], default: str = "latest") -> Policy:
    """Parse ``"latest"``, ``"queue(N)"`` (also ``"queue:N"``), ``"every"`` or a :class:`Policy`.

    Raises:
        ValueError: anything else, or N < 1.
    """
    if policy is None:
        policy = default
    if isinstance(policy, Policy):
        return policy
    if not isinstance(policy, str):
        raise ValueError(f"policy: expected 'latest', 'queue(N)' or 'every', got {type(policy).__name__} {policy!r}")
    text = policy.strip().lower()
    if text == "latest":
        return Policy("latest", 1)
    if text == "every":
        return Policy("every", _EVERY_CAPACITY)
    m = _QUEUE_RE.match(text)
    if m:
        size = int(m.group(1))
        if size < 1:
            raise ValueError(f"policy: expected queue(N) with N >= 1, got {policy!r}")
        return Policy("queue", size)
    raise ValueError(f"policy: expected 'latest', 'queue(N)' or 'every', got {policy!r}")


class FrameBuffer:
    """A thread-safe, bounded hand-over of items from one producer to one or more consumers.

    Memory stays fixed: at most ``policy.size`` items are held.

    Args:
        policy: the buffering policy.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._error: Optional[BaseException] = None
        self.dropped = 0
        self.put_count = 0

    def put(self, item: Any, stop: Optional[threading.Event] = None) -> bool:
        """Hand over ``item``; returns False when the buffer was closed (the item is discarded).

        ``latest``/``queue`` never block (they drop the oldest); ``every`` waits for room until ``stop`` is set.
        """
        with self._cond:
            if self.policy.kind == "every":
                while len(self._items) >= self.policy.size and not self._closed and not (stop and stop.is_set()):
                    self._cond.wait(0.05)
            if self._closed or (stop is not None and stop.is_set()):
                return False
            while len(self._items) >= self.policy.size:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: Optional[float] = None, *, keep_waiting: Optional[Callable[[], bool]] = None) -> Any:
        """Take the oldest held item (the only one under ``latest``).

        Args:
            timeout: seconds to wait for an item (None: forever).
            keep_waiting: called when ``timeout`` runs out; when it returns True the wait starts again
                (a source that is reconnecting is not stalled).

        Returns:
            The item, or None once the buffer is closed without error and empty.

        Raises:
            TimeoutError: nothing came within ``timeout``.
            BaseException: the error the producer closed the buffer with (after the held items).
        """
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    if keep_waiting is not None and keep_waiting():
                        deadline = time.monotonic() + timeout
                        continue
                    raise TimeoutError(f"no item within {timeout:g} s")
                self._cond.wait(0.1 if remaining is None else min(remaining, 0.1))
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._error is not None:
                raise self._error
            return None

    def poll(self) -> Any:
        """The newest held item without waiting or taking it (None when empty)."""
        with self._cond:
            return self._items[-1] if self._items else None

    def close(self, error: Optional[BaseException] = None) -> None:
        """No more items: consumers get what is held, then None (or ``error`` raised)."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self._error = error
            self._cond.notify_all()

    def clear(self) -> None:
        """Drop the held items (they are not counted as dropped)."""
        with self._cond:
            self._items.clear()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)
