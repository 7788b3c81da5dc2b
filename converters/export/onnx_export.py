"""PyTorch → ONNX (FP32), ONNX FP16, and ONNX INT8 (static QDQ with ONNX Runtime).

* FP32: ``torch.onnx.export`` with the TorchScript exporter (``dynamo=False``, opset :data:`OPSET`):
  it names nodes after the module path and is the path this project verifies; the model is checked
  with ``onnx.checker`` and run once in ONNX Runtime.
* FP16: ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)`` — weights and
  activations in float16, input and outputs stay float32 (what ``sdk`` feeds).
* INT8: ``onnxruntime.quantization.quant_pre_process`` (shape inference + graph optimisation), then
  ``quantize_static`` in QDQ format with per-channel symmetric int8 weights and, by default, asymmetric
  uint8 activations (U8S8), MinMax calibration (or percentile, ``method=``) from a
  :class:`TensorReader` fed with tensors the SDK's pre-processing made, and the output tail
  (:mod:`.float_layers`) left in float. U8S8 is what ONNX Runtime's x86 kernels are fastest with: S8S8
  (symmetric int8 activations, ``activations="int8"``) measured 2x slower than U8S8 on an AVX2-only CPU
  and 5x slower on an AVX512-VNNI one here (MobileNetV3-Small at 96), and dropped more top-1 there
  (0.006 vs 0.004); the accuracy gate checks either.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from ._quiet import quiet
from .errors import ExportError
from .operators import diagnose

__all__ = ["OPSET", "export_onnx", "check_onnx", "onnx_fp16", "onnx_int8", "TensorReader", "CALIBRATION_METHODS"]

logger = logging.getLogger(__name__)

OPSET = 17


def export_onnx(module: Any, example: Any, path: Path, *, input_name: str, output_names: Sequence[str]) -> Path:
    """Export ``module`` to ``path`` (FP32, opset :data:`OPSET`, static shapes) and check it.

    Raises:
        UnsupportedOperatorError: an operator has no ONNX translation (names it and its module).
        ExportError: any other export failure.
    """
    import torch

    try:
        with quiet(), torch.no_grad():
            torch.onnx.export(module, (example,), str(path), input_names=[input_name],
                              output_names=list(output_names), opset_version=OPSET, dynamo=False,
                              do_constant_folding=True)
    except Exception as exc:  # noqa: BLE001 - exporters raise many types
        diagnosed = diagnose(exc, module, example, "onnx")
        if diagnosed is not None:
            raise diagnosed from exc
        raise ExportError(f"onnx: torch.onnx.export of {type(module).__name__} failed: {exc}") from exc
    check_onnx(path, example=np.asarray(example.detach().cpu().numpy(), np.float32), input_name=input_name)
    return path


def check_onnx(path: Path, *, example: Optional[np.ndarray] = None, input_name: Optional[str] = None) -> None:
    """``onnx.checker.check_model`` and one ONNX Runtime run.

    Raises:
        ExportError: the checker or the runtime rejects the model.
    """
    import onnx
    import onnxruntime as ort

    try:
        onnx.checker.check_model(str(path))
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        if example is not None:
            feed_name = input_name or sess.get_inputs()[0].name
            sess.run(None, {feed_name: example})
    except Exception as exc:  # noqa: BLE001 - checker/runtime errors
        raise ExportError(f"onnx: {path.name} fails the ONNX checker / ONNX Runtime: {exc}") from exc


def onnx_fp16(src: Path, dst: Path) -> Path:
    """Convert an FP32 ONNX model to FP16 weights and activations, keeping float32 I/O.

    Raises:
        ExportError: the conversion or the check fails.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    try:
        with quiet():
            wrapped = OnnxModel(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True))
            wrapped.topological_sort()  # the converter appends the input casts at the end of the node list
        onnx.save(wrapped.model, str(dst))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"onnx fp16: conversion of {src.name} failed: {exc}") from exc
    check_onnx(dst)
    return dst


class TensorReader:
    """``onnxruntime.quantization.CalibrationDataReader`` over pre-processed tensors.

    Args:
        input_name: the model input.
        tensors: ``(N, 1, 3, H, W)`` float32 (from the SDK's pre-processing).
        bar: a progress bar (``update``/``close``), created before converter output is silenced.
    """

    def __init__(self, input_name: str, tensors: np.ndarray, *, bar: Any = None) -> None:
        self.input_name = input_name
        self.tensors = tensors
        self._it: Any = None
        self._bar = bar

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        if self._it is None:
            self._it = iter(self.tensors)
        x = next(self._it, None)
        if x is None:
            if self._bar is not None:
                self._bar.close()
            return None
        if self._bar is not None:
            self._bar.update(1)
        return {self.input_name: np.ascontiguousarray(x, np.float32)}

    def rewind(self) -> None:
        self._it = None


#: ``method=`` names of :func:`onnx_int8`. Entropy (KL) is not offered: ``quantize_static`` gives no way to set
#: its histogram sizes, and with its 128 bins / 128 quantised bins the KL search has a single candidate, the
#: full range, so it equals MinMax (onnxruntime#10261; measured here: the same SSD-Lite INT8 model to the bit).
CALIBRATION_METHODS = ("minmax", "percentile")


def onnx_int8(src: Path, dst: Path, *, input_name: str, calibration: np.ndarray, keep_float: Union[bool, int] = True,
              progress: bool = True, activations: str = "uint8", method: str = "minmax") -> List[str]:
    """Static INT8 QDQ quantisation.

    Args:
        src: FP32 ONNX model.
        dst: output path.
        input_name: the model input.
        calibration: ``(N, 1, 3, H, W)`` float32 pre-processed calibration tensors.
        keep_float: leave the output tail (:func:`converters.export.float_layers.onnx_tail`) in float; an int
            n >= 1 widens it to the n-th weighted layer on each output path (True: 1).
        progress: tqdm bar while calibrating.
        activations: ``"uint8"`` (U8S8, asymmetric; the default: ONNX Runtime's fast x86 path) or
            ``"int8"`` (S8S8, symmetric).
        method: how activation ranges come from the calibration tensors: ``"minmax"`` (the observed
            extremes; the default) or ``"percentile"`` (the 99.999th percentile of the absolute values: one
            rare outlier no longer widens the step for every value). MinMax ranges only widen with more
            calibration images; percentile ranges are steadier.

    Returns:
        Names of the nodes kept in float.

    Raises:
        ExportError: pre-processing, quantisation or the check fails.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .float_layers import onnx_tail, tail_depth
    from .progress import bar

    if activations not in ("int8", "uint8"):
        raise ExportError(f"onnx int8: activations: expected 'int8' or 'uint8', got {activations!r}")
    if method not in CALIBRATION_METHODS:
        raise ExportError(f"onnx int8: method: expected one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    calibrate = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}[method]
    symmetric = activations == "int8"

    with tempfile.TemporaryDirectory(prefix="edgesdk-onnx-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        try:
            with quiet():
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"onnx int8: quant_pre_process of {src.name} failed: {exc}") from exc
        depth = tail_depth(keep_float)
        excluded = onnx_tail(onnx.load(str(pre)), depth) if depth else []
        reader = TensorReader(input_name, calibration,
                              bar=bar(total=len(calibration), desc="calibrate onnx int8", enabled=progress))
        try:
            with quiet():
                quantize_static(str(pre), str(dst), reader,
                                quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                                weight_type=QuantType.QInt8, calibrate_method=calibrate,
                                nodes_to_exclude=excluded,
                                extra_options={"WeightSymmetric": True, "ActivationSymmetric": symmetric})
        except Exception as exc:  # noqa: BLE001
            hint = ""
            if method == "percentile" and "bins" in str(exc):
                hint = (" (percentile calibration histograms every tensor; one of them is (nearly) constant over the "
                        "calibration images, which happens with untrained weights: use method 'minmax')")
            raise ExportError(f"onnx int8: quantize_static of {src.name} failed: {exc}{hint}") from exc
    check_onnx(dst)
    return excluded
