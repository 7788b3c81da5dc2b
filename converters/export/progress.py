"""tqdm progress bars for calibration and evaluation (silent when stderr is not a terminal or disabled)."""
from __future__ import annotations

import sys
from typing import Any, Optional

__all__ = ["bar"]


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def bar(*, total: Optional[int], desc: str, enabled: bool = True) -> Any:
    """A tqdm bar (``update``/``close``) when enabled and stderr is a terminal, else a no-op object."""
    if not enabled or not getattr(sys.stderr, "isatty", lambda: False)():
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the convert extra
        return _NoBar()
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)
