"""Silence converter chatter (progress printing, deprecation warnings) unless debugging."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from typing import Iterator

__all__ = ["quiet"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Capture stdout/stderr and warnings of third-party converters (shown at DEBUG level)."""
    buf = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                yield buf
        finally:
            if logger.isEnabledFor(logging.DEBUG) and buf.getvalue():
                logger.debug("converter output:\n%s", buf.getvalue()[-4000:])
