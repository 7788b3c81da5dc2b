"""ONNX → OpenVINO IR (FP32, FP16) and INT8 with NNCF.

* FP32 / FP16: ``openvino.convert_model`` of the FP32 ONNX file (the graph the ONNX artifact was
  checked with), ``openvino.save_model(compress_to_fp16=...)``; FP16 compresses weights, I/O stays
  float32 and the CPU plugin picks its inference precision.
* INT8: ``nncf.quantize`` with an ``nncf.Dataset`` of tensors made by the SDK's pre-processing
  (preset ``PERFORMANCE``: symmetric activations, per-channel weights), the output tail kept in float
  through ``nncf.IgnoredScope(names=...)``.
* INT8 with accuracy control (:func:`openvino_int8_accuracy_control`): ``nncf.quantize_with_accuracy_control``,
  which quantises, measures the task metric on a *tuning* set (never the gate's held-out set) and
  reverts the layers that cost the most back to float until the drop is within ``max_drop``. The export
  pipeline uses it when plain INT8 fails the gate.

The contract goes into ``rt_info`` under :data:`sdk.contract.METADATA_KEY` when the artifact is written
(:func:`converters.export.contracts.write_contract`).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Tuple, Union

import numpy as np

from ._offline import no_telemetry
from ._quiet import quiet
from .errors import ExportError

__all__ = ["openvino_from_onnx", "openvino_int8", "openvino_int8_accuracy_control"]

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


def _quantisation_inputs(onnx_path: Path, calibration: np.ndarray, *, keep_float: Union[bool, int], desc: str,
                         progress: bool) -> Tuple[Any, List[str], Any, Any]:
    """What both INT8 paths start from: the converted model, the float-tail node names, the calibration
    ``nncf.Dataset`` (ticking a progress bar) and that bar (close it when done)."""
    no_telemetry()
    import nncf

    from .float_layers import openvino_tail, tail_depth
    from .progress import bar

    model = _convert(onnx_path)
    depth = tail_depth(keep_float)
    names = openvino_tail(model, depth) if depth else []
    progress_bar = bar(total=len(calibration), desc=desc, enabled=progress)

    def transform(x: np.ndarray) -> np.ndarray:
        progress_bar.update(1)
        return np.ascontiguousarray(x, np.float32)

    nncf.set_log_level(logging.ERROR)
    return model, names, nncf.Dataset(list(calibration), transform), progress_bar


def openvino_int8(onnx_path: Path, xml_path: Path, *, calibration: np.ndarray, keep_float: Union[bool, int] = True,
                  progress: bool = True) -> List[str]:
    """INT8 IR with NNCF post-training quantisation.

    Args:
        onnx_path: FP32 ONNX model.
        xml_path: output IR.
        calibration: ``(N, 1, 3, H, W)`` float32 pre-processed tensors.
        keep_float: keep the output tail (:func:`converters.export.float_layers.openvino_tail`) in float; an
            int n >= 1 widens it to the n-th weighted layer on each output path (True: 1).
        progress: tqdm bar while calibrating.

    Returns:
        Friendly names of the nodes kept in float.

    Raises:
        ExportError: NNCF or saving fails.
    """
    import nncf
    import openvino as ov

    model, names, calib_ds, progress_bar = _quantisation_inputs(onnx_path, calibration, keep_float=keep_float,
                                                                desc="calibrate openvino int8", progress=progress)
    try:
        with quiet():
            q = nncf.quantize(model, calib_ds, preset=nncf.QuantizationPreset.PERFORMANCE,
                              subset_size=len(calibration),
                              ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"openvino int8: nncf.quantize of {onnx_path.name} failed: {exc}") from exc
    finally:
        progress_bar.close()
    ov.save_model(q, str(xml_path), compress_to_fp16=False)
    return names


def openvino_int8_accuracy_control(onnx_path: Path, xml_path: Path, *, calibration: np.ndarray,
                                   tune_inputs: np.ndarray, metric_fn: Callable[[Any, List[int]], float],
                                   max_drop: float, keep_float: Union[bool, int] = True, max_iterations: int = 5,
                                   progress: bool = True) -> Dict[str, Any]:
    """INT8 IR with ``nncf.quantize_with_accuracy_control``.

    Args:
        onnx_path: FP32 ONNX model.
        xml_path: output IR.
        calibration: ``(N, 1, 3, H, W)`` float32 pre-processed calibration tensors.
        tune_inputs: ``(M, 1, 3, H, W)`` float32 pre-processed tensors of the tuning items (NNCF ranks the
            layers by how much quantising them changes these outputs).
        metric_fn: ``metric_fn(compiled_model, item_indices) -> metric`` (higher is better) on the tuning
            items with those indices; the model is an ``openvino.CompiledModel``.
        max_drop: largest absolute metric drop to reach.
        keep_float: keep the output tail in float from the start (as :func:`openvino_int8`).
        max_iterations: most layer groups NNCF reverts to float.
        progress: tqdm bar while calibrating.

    Returns:
        ``{"float_layers": [...], "evaluations": n}``: the tail kept in float up front, and how many times
        the tuning metric was computed.

    Raises:
        ExportError: NNCF or saving fails.
    """
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    model, names, calib_ds, progress_bar = _quantisation_inputs(
        onnx_path, calibration, keep_float=keep_float, desc="calibrate openvino int8 (accuracy control)",
        progress=progress)
    calls = {"n": 0}

    def validate(compiled: Any, indices: Iterable[Any]) -> Tuple[float, None]:
        calls["n"] += 1
        return float(metric_fn(compiled, [int(i) for i in indices])), None

    try:
        with quiet():
            q = nncf.quantize_with_accuracy_control(
                model, calib_ds,
                nncf.Dataset(list(range(len(tune_inputs))), lambda i: np.ascontiguousarray(tune_inputs[i], np.float32)),
                validate, max_drop=float(max_drop), drop_type=nncf.DropType.ABSOLUTE,
                preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(calibration),
                ignored_scope=nncf.IgnoredScope(names=names, validate=False) if names else None,
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    max_num_iterations=int(max_iterations)))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"openvino int8: nncf.quantize_with_accuracy_control of {onnx_path.name} failed: "
                          f"{exc}") from exc
    finally:
        progress_bar.close()
    ov.save_model(q, str(xml_path), compress_to_fp16=False)
    return {"float_layers": names, "evaluations": calls["n"]}
