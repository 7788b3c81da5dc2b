"""The training package's error: :class:`TrainError`."""
from __future__ import annotations

from sdk.errors import SDKError

__all__ = ["TrainError"]


class TrainError(SDKError, RuntimeError):
    """A run cannot start or continue (no checkpoint to resume, a diverging loss, no such device, ...)."""
