"""Keep the OpenVINO / NNCF toolchain offline.

Their telemetry (``openvino_telemetry``) starts a process that posts usage events over the network,
some of them queued from background threads or at exit. EdgeSDK never reaches the network at run time,
so :func:`no_telemetry` replaces the GA4 sender with a no-op for the rest of the process the first time
an OpenVINO conversion runs (nothing happens at import).
"""
from __future__ import annotations

import logging
from typing import Any

__all__ = ["no_telemetry"]

logger = logging.getLogger(__name__)
_DISABLED = False


def _drop(self: Any, message: Any) -> None:
    logger.debug("openvino telemetry event dropped (EdgeSDK stays offline)")


def no_telemetry() -> None:
    """Make sure ``openvino_telemetry`` sends nothing (process-wide, from the first call on); call it
    before importing ``openvino`` or ``nncf``."""
    global _DISABLED
    if not _DISABLED:
        try:
            from openvino_telemetry.backend import backend_ga4
        except ImportError:  # no telemetry package: nothing to silence
            pass
        else:
            backend_ga4.GA4Backend.send = _drop  # type: ignore[method-assign]
        _DISABLED = True
