"""EdgeSDK converters.

``converters.export(model, ...)`` (imported on first use) exports and quantises a PyTorch model; see
:mod:`converters.export`.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["export"]


def __getattr__(name: str) -> Any:
    if name == "export":
        return importlib.import_module("converters.export")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
