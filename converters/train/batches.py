"""Where a run's tensors live and how its batches arrive: the device, and batches drawn ahead by workers.

::

    device = resolve_device("auto")                    # torch.device("cuda") when torch sees a GPU, else cpu
    for batch in batch_stream(task.batch, epoch, steps, workers=4, pin_memory=device.type == "cuda"):
        x, targets = to_device(batch, device)

A batch is a pure function of ``(seed, epoch, step)`` (:mod:`converters.train.tasks`), so drawing it in
a worker process gives exactly the batch the training process would have drawn: the number of workers
never changes the weights.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from typing import Any, Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from .errors import TrainError

__all__ = ["resolve_device", "describe_hardware", "to_device", "to_cpu", "batch_stream"]


def resolve_device(name: str) -> torch.device:
    """The ``torch.device`` of a :class:`~converters.train.TrainConfig` ``device`` value.

    Args:
        name: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available, else the CPU).

    Raises:
        TrainError: CUDA was asked for but torch sees no GPU (a CPU-only build, no driver) or not that
            many GPUs; the message says what torch sees.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (a CPU-only build)'}"
            raise TrainError(f"device: expected a CUDA GPU for {name!r}, got none visible to torch ({build}); "
                             f"use --device cpu or auto")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise TrainError(f"device: expected a GPU index below {count} (torch sees {count}), got {name!r}")
        if device.index is not None:  # pinned-memory copies and new tensors default to the current GPU
            torch.cuda.set_device(device)
    return device


def describe_hardware(device: torch.device, threads: int, workers: int) -> str:
    """What a run trains on, for its metrics log and model card.

    Returns:
        e.g. ``"CPU, 1 thread of 2 cores"`` or ``"CUDA NVIDIA H100 80GB HBM3, 8 batch workers"``.
    """
    feed = f", {workers} batch worker{'s' if workers != 1 else ''}" if workers else ""
    if device.type == "cuda":
        return f"CUDA {torch.cuda.get_device_name(device)}{feed}"
    cores = os.cpu_count() or 0
    return f"CPU, {threads} thread{'s' if threads != 1 else ''} of {cores} cores{feed}"


def to_device(obj: Any, device: torch.device, *, non_blocking: bool = False) -> Any:
    """``obj`` with every tensor in it (nested tuples, lists, dicts) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking=non_blocking) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device, non_blocking=non_blocking) for v in obj)
    return obj


def to_cpu(obj: Any) -> Any:
    """``obj`` with every tensor moved to the CPU (what a checkpoint stores)."""
    return to_device(obj, torch.device("cpu"))


class _Raised:
    """An exception raised while a worker drew a batch, carried back to be raised again as itself.

    torch re-raises a worker's error as ``type(exc)(message)``, which turns errors whose constructor takes
    other arguments (``DatasetError(path, message)``) into a bare RuntimeError; this keeps the type, the
    arguments and the attributes (``path``, ``line``), and the worker's traceback as a note.
    """

    def __init__(self, exc: BaseException) -> None:
        self.kind = type(exc)
        self.args, self.state = exc.args, dict(getattr(exc, "__dict__", {}))
        try:
            pickle.dumps((self.kind, self.args, self.state))
        except Exception:  # noqa: BLE001 - anything unpicklable travels as its message
            self.kind, self.args, self.state = RuntimeError, (f"{type(exc).__name__}: {exc}",), {}
        self.trace = traceback.format_exc()

    def rebuild(self) -> BaseException:
        err = self.kind.__new__(self.kind)
        err.args = self.args
        err.__dict__.update(self.state)
        if hasattr(err, "add_note"):  # Python 3.11+
            err.add_note("raised in a batch worker:\n" + self.trace.rstrip())
        return err


class _EpochBatches(Dataset):
    """Batch ``s`` of one epoch as dataset item ``s`` (the DataLoader adds no batching of its own)."""

    def __init__(self, make: Callable[[int, int], Any], epoch: int, steps: int) -> None:
        self.make, self.epoch, self.steps = make, epoch, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> Any:
        try:
            return self.make(self.epoch, step)
        except Exception as exc:  # noqa: BLE001 - raised again, as itself, in the training process
            return _Raised(exc)


def _as_is(batch: Any) -> Any:
    return batch


def batch_stream(make: Callable[[int, int], Any], epoch: int, steps: int, *, workers: int = 0,
                 pin_memory: bool = False, prefetch: int = 4) -> Iterator[Any]:
    """Yield ``make(epoch, 0) .. make(epoch, steps - 1)`` in order.

    Args:
        make: ``make(epoch, step) -> batch`` (:meth:`converters.train.tasks.Task.batch`).
        epoch: the epoch.
        steps: batches in the epoch.
        workers: worker processes drawing batches ahead (0: drawn here, one at a time, when asked for).
        pin_memory: page-lock the batches' tensors (faster copies to a GPU).
        prefetch: batches each worker draws ahead.

    Yields:
        The batches, in step order whatever the number of workers.

    Raises:
        Exception: what ``make`` raised, as itself (type, message, attributes), also from a worker. Close
            the generator (``contextlib.closing``) when leaving it early: that stops the workers at once.
    """
    if workers <= 0:
        for step in range(steps):
            yield make(epoch, step)
        return
    import cv2

    # fork: the workers share the task as it is (forkserver / spawn, the default elsewhere, would pickle it)
    context = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    loader = DataLoader(_EpochBatches(make, epoch, steps), batch_size=None, shuffle=False, num_workers=workers,
                        collate_fn=_as_is, pin_memory=pin_memory, prefetch_factor=prefetch,
                        multiprocessing_context=context,
                        generator=torch.Generator().manual_seed(epoch))  # not the global RNG: dropout draws from it
    # OpenCV's thread pool does not survive fork(): a worker that inherits it blocks in its first parallel
    # call (cv2.resize, cv2.setNumThreads). One thread while the workers are forked; each worker is one
    # process drawing one batch at a time (the DataLoader gives it one torch thread too).
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    it = iter(loader)
    try:
        for batch in it:
            if isinstance(batch, _Raised):
                raise batch.rebuild()
            yield batch
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:  # stop the workers now, not when the iterator is collected
            shutdown()
        cv2.setNumThreads(threads)
