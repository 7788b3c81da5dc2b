"""Export and quantisation: PyTorch → ONNX / TFLite / OpenVINO × FP32 / FP16 / INT8, checked and gated.

::

    import converters
    result = converters.export(model, example_input=x, contract=spec, to=["onnx", "tflite", "openvino"],
                               precision=["fp32", "fp16", "int8"], out="exports/", calib="synthetic",
                               val="synthetic")

``converters.export`` is this package and is callable: calling it runs
:func:`converters.export.pipeline.export`. The command line is ``edgesdk convert`` (:mod:`.cli`).

Modules (one concept each): :mod:`.pipeline` (the orchestration), :mod:`.onnx_export`,
:mod:`.tflite_export`, :mod:`.openvino_export` (one per format), :mod:`.float_layers` (which layers INT8
keeps in float), :mod:`.contracts` (embedded + sidecar contract), :mod:`.sources` (calibration and
validation data), :mod:`.reference` (the PyTorch reference as an ``sdk.Model``), :mod:`.parity` (FP32
vs PyTorch), :mod:`.gate` (accuracy gate), :mod:`.latency`, :mod:`.report`, :mod:`.operators`
(unsupported-operator diagnosis), :mod:`.host` (CPU int8 capabilities), :mod:`.errors`.
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["export", "ExportResult", "FORMATS", "PRECISIONS", "ExportError", "UnsupportedOperatorError",
           "CalibrationError", "InputSizeError", "OutputExistsError", "DEFAULT_MAX_DROP"]

_LAZY = {
    "export": "converters.export.pipeline",
    "ExportResult": "converters.export.pipeline",
    "FORMATS": "converters.export.pipeline",
    "PRECISIONS": "converters.export.pipeline",
    "DEFAULT_MAX_DROP": "converters.export.gate",
    "ExportError": "converters.export.errors",
    "UnsupportedOperatorError": "converters.export.errors",
    "CalibrationError": "converters.export.errors",
    "InputSizeError": "converters.export.errors",
    "OutputExistsError": "converters.export.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """Lets ``converters.export(model, ...)`` work although ``converters.export`` is a package."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from converters.export.pipeline import export as _export

        return _export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
