"""The contract each artifact carries: built from the model's spec, embedded in the file and written as a sidecar.

::

    data = artifact_contract(spec, fmt="tflite", precision="int8", layout="NHWC", ...)
    write_contract(Path("out/yolo_nano_int8.tflite"), data)   # embedded + out/yolo_nano_int8.tflite.json

Embedding: ONNX ``metadata_props``, OpenVINO ``rt_info`` and TFLite metadata, all under
:data:`sdk.contract.METADATA_KEY`; the sidecar is ``<model file>.json`` (``sdk.contract.sidecar_paths``).
Every contract is validated with :class:`sdk.contract.ModelContract` before it is written.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from sdk.contract import METADATA_KEY, ModelContract, sidecar_paths

from .errors import ExportError

__all__ = ["artifact_contract", "with_layout", "write_contract", "embed_contract", "weights_sha256",
           "converter_info"]

logger = logging.getLogger(__name__)

CONVERTER_NAME = "edgesdk.converters.export"


def converter_info(fmt: str) -> Dict[str, str]:
    """Converter name, version and the versions of the packages that made a ``fmt`` artifact."""
    from importlib import metadata

    dists = {"onnx": ("torch", "onnx", "onnxruntime"), "tflite": ("torch", "litert-torch", "ai-edge-quantizer"),
             "openvino": ("torch", "onnx", "openvino", "nncf")}[fmt]
    info = {"name": CONVERTER_NAME}
    try:
        info["version"] = metadata.version("edgesdk")
    except metadata.PackageNotFoundError:  # running from a source tree
        info["version"] = "0+source"
    for dist in dists:
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[dist] = "missing"
    return info


def weights_sha256(module: Any) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes, in key order)."""
    import torch

    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.dtype == torch.bfloat16:
            t = t.float()
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def with_layout(spec: Mapping[str, Any], layout: str) -> Dict[str, Any]:
    """A copy of a contract dict with its input in ``layout`` (``"NCHW"`` or ``"NHWC"``), shape permuted."""
    data = copy.deepcopy(dict(spec))
    inp = dict(data.get("input") or {})
    old = inp.get("layout", "NCHW")
    shape = list(inp.get("shape") or [])
    if old != layout and len(shape) == 4:
        shape = [shape[0], shape[2], shape[3], shape[1]] if layout == "NHWC" else [shape[0], shape[3], shape[1],
                                                                                    shape[2]]
    inp.update(layout=layout, shape=shape)
    data["input"] = inp
    return data


def artifact_contract(spec: Mapping[str, Any], *, fmt: str, precision: str, layout: str = "NCHW",
                      input_dtype: str = "float32", input_quantization: Optional[Sequence[float]] = None,
                      float_layers: Sequence[str] = (), weights_hash: Optional[str] = None,
                      accuracy: Optional[Mapping[str, Any]] = None, extra: Optional[Mapping[str, Any]] = None
                      ) -> Dict[str, Any]:
    """The validated contract dict of one artifact.

    Args:
        spec: the model's contract fields (``model.contract_spec()`` or a user's dict).
        fmt: ``"onnx"``, ``"tflite"`` or ``"openvino"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        layout: input layout of this artifact.
        input_dtype: input tensor dtype (``"int8"`` for a full-integer TFLite model).
        input_quantization: ``(scale, zero_point)`` of an integer input.
        float_layers: layers kept in float in a quantised model.
        weights_hash: SHA-256 of the weights.
        accuracy: the conversion's accuracy report.
        extra: merged into the contract's ``extra``.

    Returns:
        A JSON-ready dict that :meth:`sdk.contract.ModelContract.from_dict` accepts.

    Raises:
        ExportError: the resulting contract is invalid (names the field).
    """
    data = with_layout(spec, layout)
    data["input"]["dtype"] = input_dtype
    data["input"]["quantization"] = (None if input_quantization is None else
                                     {"scale": float(input_quantization[0]),
                                      "zero_point": int(input_quantization[1])})
    data.update(format=fmt, precision=precision, converter=converter_info(fmt), float_layers=list(float_layers),
                accuracy=dict(accuracy) if accuracy is not None else None)
    if weights_hash is not None:
        data["weights_sha256"] = weights_hash
    merged = dict(data.get("extra") or {})
    merged.update(extra or {})
    data["extra"] = merged
    data.setdefault("schema_version", 1)
    try:
        return ModelContract.from_dict(data).to_dict()
    except Exception as exc:
        raise ExportError(f"the contract for the {fmt} {precision} artifact is invalid: {exc}") from exc


def embed_contract(path: Path, text: str) -> None:
    """Store the contract JSON inside a model file under :data:`METADATA_KEY` (replacing an older one).

    Raises:
        ExportError: unknown file type.
    """
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        import onnx

        proto = onnx.load(str(path))
        kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
        del proto.metadata_props[:]
        proto.metadata_props.extend(kept)
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, text
        onnx.save(proto, str(path))
    elif suffix == ".xml":
        from ._offline import no_telemetry

        no_telemetry()
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        model.set_rt_info(text, METADATA_KEY)
        tmp = path.with_name(path.stem + ".tmp.xml")
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        del model
        tmp.replace(path)
        tmp.with_suffix(".bin").replace(path.with_suffix(".bin"))
    elif suffix == ".tflite":
        from converters.tflite_metadata import add_metadata

        path.write_bytes(add_metadata(path, {METADATA_KEY: text.encode("utf-8")}))
    else:
        raise ExportError(f"cannot embed a contract in {path.name}: expected .onnx, .xml or .tflite")


def write_contract(path: Path, data: Mapping[str, Any], *, embed: bool = True) -> Path:
    """Embed the contract in ``path`` (unless ``embed`` is False) and write its sidecar ``<path>.json``.

    Returns:
        The sidecar path.
    """
    text = json.dumps(dict(data), sort_keys=False)
    ModelContract.from_json(text, source=f"contract of {path.name}")
    if embed:
        embed_contract(path, text)
    sidecar = sidecar_paths(path)[0]
    sidecar.write_text(json.dumps(dict(data), indent=2) + "\n", encoding="utf-8")
    return sidecar
