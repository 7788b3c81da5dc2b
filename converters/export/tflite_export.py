"""PyTorch → TFLite (FP32, NHWC) with litert-torch; FP16 and INT8 with ai-edge-quantizer.

* FP32: the export module is wrapped so the graph takes **NHWC** input (the transpose is inside the
  graph; what TFLite delegates and Arm CPUs want) and returns named outputs, so the TFLite signature
  names the tensors as the contract does. ``litert_torch.convert(...).export(path)``.
* FP16: ai-edge-quantizer ``FLOAT_CASTING`` of the weights of convolutions and fully-connected layers to
  float16 (I/O stays float32; XNNPACK computes in fp32 or fp16 as the CPU allows).
* INT8: ai-edge-quantizer ``static_wi8_ai8`` (per-channel int8 weights, int8 activations, MinMax
  calibration on tensors from the SDK's pre-processing): full-integer, with int8 input (its scale and
  zero point go into the contract) and the output tail (:func:`converters.export.float_layers.tflite_tail`)
  kept in float, so outputs come out float32.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._quiet import quiet
from .errors import ExportError
from .operators import diagnose

__all__ = ["export_tflite", "tflite_fp16", "tflite_int8", "tflite_io"]

logger = logging.getLogger(__name__)

SIGNATURE = "serving_default"
_FP16_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D_TRANSPOSE")


def _nhwc_wrapper(module: Any, input_name: str, output_names: Sequence[str]) -> Any:
    from torch import nn

    class NHWCNamed(nn.Module):
        """NHWC ``[B, H, W, 3]`` input → the module (NCHW) → ``{name: tensor}``."""

        def __init__(self) -> None:
            super().__init__()
            self.net = module

        def forward(self, **kwargs: Any) -> Dict[str, Any]:
            out = self.net(kwargs[input_name].permute(0, 3, 1, 2))
            out = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [out]
            return dict(zip(output_names, out))

    return NHWCNamed().eval()


def export_tflite(module: Any, example: Any, path: Path, *, input_name: str, output_names: Sequence[str]) -> Path:
    """Convert ``module`` (NCHW, ``example`` ``[1, 3, H, W]``) to an NHWC FP32 ``.tflite``.

    Raises:
        UnsupportedOperatorError: an operator has no LiteRT lowering (names it and its module).
        ExportError: any other conversion failure.
    """
    import litert_torch

    wrapper = _nhwc_wrapper(module, input_name, output_names)
    nhwc = example.permute(0, 2, 3, 1).contiguous()
    try:
        with quiet():
            edge = litert_torch.convert(wrapper, sample_args=(), sample_kwargs={input_name: nhwc})
            edge.export(str(path))
    except Exception as exc:  # noqa: BLE001 - converters raise many types
        diagnosed = diagnose(exc, module, example, "tflite")
        if diagnosed is not None:
            raise diagnosed from exc
        raise ExportError(f"tflite: litert_torch.convert of {type(module).__name__} failed: "
                          f"{str(exc).strip()[:500]}") from exc
    return path


def tflite_io(path_or_bytes: "Path | bytes") -> Dict[str, Any]:
    """Input/output details of a ``.tflite`` model by signature name.

    Returns:
        ``{"inputs": {name: (dtype name, (scale, zero_point) or None)}, "outputs": {...}}``.
    """
    from ai_edge_litert.interpreter import Interpreter

    if isinstance(path_or_bytes, (bytes, bytearray)):
        it = Interpreter(model_content=bytes(path_or_bytes))
    else:
        it = Interpreter(model_path=str(path_or_bytes))
    sig = it.get_signature_runner(SIGNATURE)

    def specs(details: Dict[str, Any]) -> Dict[str, Any]:
        out = {}
        for name, d in details.items():
            scale, zp = d.get("quantization", (0.0, 0))
            out[name] = (np.dtype(d["dtype"]).name, (float(scale), int(zp)) if scale else None)
        return out

    return {"inputs": specs(sig.get_input_details()), "outputs": specs(sig.get_output_details())}


def tflite_fp16(src: Path, dst: Path) -> Path:
    """Float16 weights for convolutions and fully-connected layers (no calibration).

    Raises:
        ExportError: ai-edge-quantizer fails.
    """
    from ai_edge_quantizer import qtyping, quantizer, recipe_manager

    try:
        with quiet():
            q = quantizer.Quantizer(str(src))
            for op in _FP16_OPS:
                q.update_quantization_recipe(
                    regex=".*", operation_name=getattr(qtyping.TFLOperationName, op),
                    algorithm_key=recipe_manager.AlgorithmName.FLOAT_CASTING,
                    op_config=qtyping.OpQuantizationConfig(
                        weight_tensor_config=qtyping.TensorQuantizationConfig(
                            num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                        compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True))
            result = q.quantize()
        dst.write_bytes(bytes(result.quantized_model))
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"tflite fp16: ai-edge-quantizer on {src.name} failed: {exc}") from exc
    return dst


def tflite_int8(src: Path, dst: Path, *, input_name: str, calibration_nhwc: np.ndarray, keep_float: Union[bool, int] = True,
                progress: bool = True) -> Tuple[List[str], Optional[Tuple[float, int]]]:
    """Full-integer static INT8 (int8 input), the output tail in float.

    Args:
        src: FP32 NHWC ``.tflite``.
        dst: output path.
        input_name: the signature's input name.
        calibration_nhwc: ``(N, 1, H, W, 3)`` float32 pre-processed tensors.
        keep_float: keep the output tail in float; an int n >= 1 widens it to the n-th weighted layer on each
            output path (True: 1).
        progress: tqdm bar while calibrating.

    Returns:
        ``(float layers as "OP:tensor", input (scale, zero_point) or None when the input stayed float)``.

    Raises:
        ExportError: calibration or quantisation fails.
    """
    from ai_edge_quantizer import quantizer, recipe
    from ai_edge_quantizer import qtyping

    from .float_layers import tail_depth, tflite_tail
    from .progress import bar

    depth = tail_depth(keep_float)
    tail = tflite_tail(src.read_bytes(), depth) if depth else []
    progress_bar = bar(total=len(calibration_nhwc), desc="calibrate tflite int8", enabled=progress)

    class Samples:
        def __iter__(self):
            for x in calibration_nhwc:
                progress_bar.update(1)
                yield {input_name: np.ascontiguousarray(x, np.float32)}

        def __len__(self) -> int:
            return len(calibration_nhwc)

    try:
        with quiet():
            q = quantizer.Quantizer(str(src))
            q.load_quantization_recipe(recipe.static_wi8_ai8())
            for _, tensor in tail:
                q.update_quantization_recipe(regex="^" + re.escape(tensor) + ";$",  # scopes end with ";"
                                             operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                             algorithm_key=quantizer.AlgorithmName.NO_QUANTIZE)
            calib = q.calibrate({SIGNATURE: list(Samples())}, num_threads=1)
            result = q.quantize(calib)
        data = bytes(result.quantized_model)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"tflite int8: ai-edge-quantizer on {src.name} failed: {exc}") from exc
    finally:
        progress_bar.close()
    dst.write_bytes(data)
    io = tflite_io(dst)
    dtype, quant = io["inputs"][input_name]
    return [f"{op}:{tensor}" for op, tensor in tail], (quant if dtype in ("int8", "uint8") else None)
