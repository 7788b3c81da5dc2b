"""ONNX → OpenVINO IR (FP32, FP16) and INT8 with NNCF.

* FP32 / FP16: ``openvino.convert_model`` of the FP32 ONNX file (the graph the ONNX artifact was
  checked with), ``openvino.save_model(compress_to_fp16=...)``; FP16 compresses weights, I/O stays
  float32 and the CPU plugin picks its inference precision.
* INT8: ``nncf.quantize`` with an ``nncf.Dataset`` of tensors made by the SDK's pre-processing
  (preset ``PERFORMANCE``: symmetric activations, per-channel weights), the output tail kept in float
  through ``nncf.IgnoredScope(names=...)``.

The contract goes into ``rt_info`` under :data:`sdk.contract.METADATA_KEY` when the artifact is written
(:func:`converters.export.contracts.write_contract`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List

import numpy as np

from ._offline import no_telemetry
from ._quiet import quiet
from .errors import ExportError

__all__ = ["openvino_from_onnx", "openvino_int8"]

logger = logging.getLogger(__name__)


def _convert(onnx_path: Path) -> Any:
    no_telemetry()
    import openvino as ov

    try:
        with quiet():
            return ov.convert_model(str(onnx_path))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"openvino: convert_model of {onnx_path.name} failed: {exc}") from exc


def openvino_from_onnx(onnx_path: Path, xml_path: Path, *, fp16: bool) -> Path:
    """Convert an FP32 ONNX model to IR ``xml_path`` (+ ``.bin``), FP16-compressed when ``fp16``.

    Raises:
        ExportError: conversion or saving fails.
    """
    import openvino as ov

    model = _convert(onnx_path)
    try:
        ov.save_model(model, str(xml_path), compress_to_fp16=fp16)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"openvino: save_model to {xml_path} failed: {exc}") from exc
    return xml_path


def openvino_int8(onnx_path: Path, xml_path: Path, *, calibration: np.ndarray, keep_float: bool = True,
                  progress: bool = True) -> List[str]:
    """INT8 IR with NNCF post-training quantisation.

    Args:
        onnx_path: FP32 ONNX model.
        xml_path: output IR.
        calibration: ``(N, 1, 3, H, W)`` float32 pre-processed tensors.
        keep_float: keep the output tail (:func:`converters.export.float_layers.openvino_tail`) in float.
        progress: tqdm bar while calibrating.

    Returns:
        Friendly names of the nodes kept in float.

    Raises:
        ExportError: NNCF or saving fails.
    """
    no_telemetry()
    import nncf
    import openvino as ov

    from .float_layers import openvino_tail
    from .progress import bar

    model = _convert(onnx_path)
    names = openvino_tail(model) if keep_float else []
    progress_bar = bar(total=len(calibration), desc="calibrate openvino int8", enabled=progress)

    def transform(x: np.ndarray) -> np.ndarray:
        progress_bar.update(1)
        return np.ascontiguousarray(x, np.float32)

    nncf.set_log_level(logging.ERROR)
    try:
        with quiet():
            q = nncf.quantize(model, nncf.Dataset(list(calibration), transform), preset=nncf.QuantizationPreset.PERFORMANCE,
                              subset_size=len(calibration),
                              ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"openvino int8: nncf.quantize of {onnx_path.name} failed: {exc}") from exc
    finally:
        progress_bar.close()
    ov.save_model(q, str(xml_path), compress_to_fp16=False)
    return names
