"""Errors raised by the exporter: each says what was expected, what came and what to do."""
from __future__ import annotations

from sdk.errors import SDKError

__all__ = ["ExportError", "UnsupportedOperatorError", "CalibrationError", "InputSizeError", "OutputExistsError"]


class ExportError(SDKError, ValueError):
    """A model cannot be exported or quantised as asked (bad argument, failed conversion, failed check)."""


class UnsupportedOperatorError(ExportError):
    """The converter for a format has no translation for an operator.

    Attributes:
        op: the operator (``"aten::fft_rfft2"``, ``"mylib::warp"``).
        module_path: dotted path of the submodule that called it (``"head.warp"``; ``""`` = the root
            module; None when it could not be located).
        target: the format (``"onnx"``, ``"tflite"``, ``"openvino"``).
    """

    def __init__(self, message: str, *, op: str, module_path: "str | None", target: str) -> None:
        super().__init__(message)
        self.op = op
        self.module_path = module_path
        self.target = target


class CalibrationError(ExportError):
    """The calibration or validation data is missing, empty, unreadable or unsuitable."""


class InputSizeError(ExportError):
    """The requested input size does not fit the model (e.g. not a multiple of its stride)."""


class OutputExistsError(ExportError, FileExistsError):
    """The output folder already exists and ``force`` was not given."""
