"""EdgeSDK lean runtime: run exported vision models on a Jetson, a Raspberry Pi or a plain CPU.

Public names (imported lazily, so ``import sdk`` is cheap and imports no inference runtime)::

    sdk.load(path, device=None, backend=None, **overrides) -> Model
    sdk.Detections, sdk.Classification, sdk.Embedding
    sdk.Gallery, sdk.cosine_distance, sdk.euclidean_distance
    sdk.ops.nms / batched_nms / soft_nms / box_iou
    sdk.open_source(uri, **options) -> Source; sdk.Frame
    sdk.Pipeline(source, model, ...) -> iterator of (Frame, result), live stats
    sdk.Profiler: per-stage latency percentiles
    sdk.ModelContract, sdk.load_device_config
    sdk.SDKError and its subclasses
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "sdk.model",
    "Model": "sdk.model",
    "Detections": "sdk.results",
    "Classification": "sdk.results",
    "Embedding": "sdk.results",
    "Gallery": "sdk.verify",
    "Match": "sdk.verify",
    "cosine_distance": "sdk.verify",
    "euclidean_distance": "sdk.verify",
    "ModelContract": "sdk.contract",
    "DeviceConfig": "sdk.device",
    "load_device_config": "sdk.device",
    "PostprocessOptions": "sdk.decoders",
    "SDKError": "sdk.errors",
    "BackendUnavailable": "sdk.errors",
    "BackendError": "sdk.errors",
    "ModelFileError": "sdk.errors",
    "ModelContractError": "sdk.errors",
    "DecodeError": "sdk.errors",
    "SourceError": "sdk.errors",
    "DeviceConfigError": "sdk.errors",
    "open_source": "sdk.sources",
    "Frame": "sdk.sources",
    "Pipeline": "sdk.pipeline",
    "Profiler": "sdk.profiler",
}
_SUBMODULES = ("ops", "preprocess", "decoders", "backends", "contract", "device", "results", "verify", "errors",
               "synthetic", "sources", "pipeline", "profiler", "annotate")

__all__ = sorted(set(_LAZY) | set(_SUBMODULES) | {"__version__"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"sdk.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sdk' has no attribute {name!r}")


def __dir__() -> list:
    return __all__
