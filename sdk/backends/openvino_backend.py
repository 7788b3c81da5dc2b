"""OpenVINO backend for IR (``.xml`` + ``.bin``) and, when asked, ``.onnx`` files.

Metadata: the model's ``rt_info`` is flattened into ``dict[str, str]`` with nested keys joined by
``"."`` (``["conversion_parameters", "framework"]`` -> ``"conversion_parameters.framework"``). The SDK
contract may be stored either at the top-level key ``"edgesdk_contract"`` or at the path
``["edgesdk", "contract"]``; both are read, and the nested one is also exposed as
``metadata["edgesdk_contract"]`` when the top-level key is absent, so callers look in one place. For
an ``.onnx`` file read by OpenVINO, ONNX ``metadata_props`` (which OpenVINO puts under
``rt_info["framework"]``) are also exposed under their own keys.

One ``InferRequest`` is created and reused; outputs are numpy copies, so the next :meth:`infer` call
cannot overwrite arrays already handed out.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from sdk.backends.base import CONTRACT_KEY, BackendBase, TensorSpec, check_model_file
from sdk.errors import BackendError, BackendUnavailable, ModelFileError

__all__ = ["OpenVINOBackend", "flatten_rt_info"]

logger = logging.getLogger(__name__)

#: rt_info path of the contract, as an alternative to the top-level key ``"edgesdk_contract"``.
CONTRACT_RT_PATH = ("edgesdk", "contract")
_VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")
_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
_PRECISIONS = ("f32", "bf16", "f16")


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:
        from sdk.backends import INSTALL_HINTS

        raise BackendUnavailable(f"the openvino backend needs the openvino package, which is not importable ({exc}); "
                                 f"install it with: {INSTALL_HINTS['openvino']}") from exc
    return openvino


def _any_to_str(value: Any) -> str:
    for attempt in (lambda v: v.astype(str), lambda v: str(v.value)):
        try:
            return attempt(value)
        except Exception:  # noqa: BLE001 - OVAny conversions differ across versions
            continue
    return str(value)


def flatten_rt_info(info: Any, prefix: str = "") -> Dict[str, str]:
    """Flatten an OpenVINO ``rt_info`` map (nested dicts of ``OVAny``) into ``{"a.b": "text"}``.

    Args:
        info: ``model.get_rt_info()`` or a nested part of it.
        prefix: key prefix for recursion.

    Returns:
        One string value per leaf.
    """
    out: Dict[str, str] = {}
    keys = list(info.keys()) if hasattr(info, "keys") else []
    for key in keys:
        value = info[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) or (hasattr(value, "keys") and not hasattr(value, "astype")):
            out.update(flatten_rt_info(value, name + "."))
        else:
            out[name] = _any_to_str(value)
    return out


class OpenVINOBackend(BackendBase):
    """Run a model with OpenVINO.

    Args:
        path: IR ``.xml`` (its weights ``.bin`` next to it, same stem) or an ``.onnx`` file.
        device: ``"CPU"`` (default), ``"GPU"``, ``"NPU"``, ``"AUTO"``, ``"GPU.1"``, ``"AUTO:GPU,CPU"`` ...
            A device not in ``Core().available_devices`` raises ``BackendError`` listing those that are.
        performance_hint: ``"LATENCY"`` or ``"THROUGHPUT"`` (or ``"CUMULATIVE_THROUGHPUT"``).
        num_streams: parallel inference streams (int, or ``"AUTO"``).
        inference_num_threads: CPU threads for inference (CPU device only).
        cache_dir: compiled-model cache directory (speeds up the second load, large win on GPU/NPU).
        weights: explicit ``.bin`` path for an ``.xml`` whose weights are elsewhere.
        inference_precision: precision of the float parts of the graph: ``"f32"``, ``"bf16"``, ``"f16"``,
            or ``"default"`` (OpenVINO's choice: bf16 on CPUs with AVX512-BF16 or AMX, f16 on GPUs).
            None (the default) means ``"f32"`` on the CPU device, so an FP32 or FP16-compressed model
            computes what it was checked to compute; other devices keep OpenVINO's choice. bf16 is
            faster on such CPUs and costs accuracy: opt in from the device config.
        config: extra ``compile_model`` properties (``{"ENABLE_CPU_PINNING": False}``); they win over
            the options above.

    Raises:
        BackendUnavailable: openvino is not installed.
        ModelFileError: the file is missing, empty or unreadable, or the ``.bin`` is missing/truncated.
        BackendError: unknown device, bad option, or the model failed to compile for the device.
    """

    name = "openvino"

    def __init__(
        self,
        path: "str | os.PathLike",
        *,
        device: str = "CPU",
        performance_hint: Optional[str] = None,
        num_streams: Any = None,
        inference_num_threads: Optional[int] = None,
        cache_dir: "str | os.PathLike | None" = None,
        weights: "str | os.PathLike | None" = None,
        inference_precision: Optional[str] = None,
        config: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(Path(path))
        self._closed = True  # until the request exists
        check_model_file(self.path, "an OpenVINO IR (.xml + .bin) or ONNX model")
        ov = _import_openvino()
        self._ov = ov
        core = ov.Core()
        self._device = self._check_device(core, str(device))

        weights_path = self._weights_path(weights)
        if cache_dir is not None:
            Path(cache_dir).expanduser().mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(Path(cache_dir).expanduser())})
        try:
            model = core.read_model(str(self.path), str(weights_path)) if weights_path else core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises RuntimeError with a C++ trace
            raise self._read_error(exc, weights_path) from exc

        props: Dict[str, Any] = {}
        if performance_hint is not None:
            hint = str(performance_hint).upper()
            if hint not in _HINTS:
                raise BackendError(f"performance_hint: expected one of {list(_HINTS)}, got {performance_hint!r}")
            props["PERFORMANCE_HINT"] = hint
        if num_streams is not None:
            props["NUM_STREAMS"] = str(num_streams).upper() if isinstance(num_streams, str) else int(num_streams)
        if inference_num_threads is not None:
            props["INFERENCE_NUM_THREADS"] = int(inference_num_threads)
        precision = self._precision(inference_precision, self._device)
        if precision is not None:
            props["INFERENCE_PRECISION_HINT"] = precision
        props.update(dict(config or {}))
        self._props = props
        try:
            self._compiled = core.compile_model(model, self._device, props)
            self._request = self._compiled.create_infer_request()
        except Exception as exc:
            raise BackendError(f"OpenVINO {ov.__version__} could not compile {self.path.name} for device "
                               f"{self._device!r} with {props}: {str(exc).strip()}") from exc

        self.inputs = [self._spec(port, f"input_{i}") for i, port in enumerate(self._compiled.inputs)]
        self.outputs = [self._spec(port, f"output_{i}") for i, port in enumerate(self._compiled.outputs)]
        self.metadata = self._read_metadata(model)
        self._closed = False
        logger.info("OpenVINO %s loaded %s on %s (%s)", ov.__version__, self.path.name, self._device, props)

    @classmethod
    def from_compiled(cls, compiled: Any, *, path: "str | os.PathLike" = "compiled-model",
                      metadata: Optional[Mapping[str, str]] = None) -> "OpenVINOBackend":
        """Wrap a model OpenVINO has already compiled (``ov.CompiledModel``), e.g. the one NNCF hands to a
        validation function during accuracy-aware quantisation.

        Args:
            compiled: the compiled model.
            path: a name for messages (nothing is read from it).
            metadata: the backend's ``metadata`` (a compiled model carries no ``rt_info``).
        """
        self = cls.__new__(cls)
        BackendBase.__init__(self, Path(path))
        self._ov = _import_openvino()
        self._device = ",".join(compiled.get_property("EXECUTION_DEVICES")) or "CPU"
        self._props = {}
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self.inputs = [self._spec(port, f"input_{i}") for i, port in enumerate(compiled.inputs)]
        self.outputs = [self._spec(port, f"output_{i}") for i, port in enumerate(compiled.outputs)]
        self.metadata = dict(metadata or {})
        return self

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _check_device(core: Any, device: str) -> str:
        available = list(core.available_devices)
        base = device.split(":", 1)[0].upper()
        if base in _VIRTUAL_DEVICES:
            wanted = [d for d in device.split(":", 1)[1].split(",") if d] if ":" in device else []
        else:
            wanted = [device]
        families = {d.split(".")[0].upper() for d in available}
        missing = [d for d in wanted if d.upper() not in {a.upper() for a in available}
                   and not ("." not in d and d.upper() in families)]
        if missing:
            raise BackendError(f"OpenVINO device {device!r}: expected one of the available devices {available} "
                               f"(or AUTO, MULTI:..., HETERO:...), got {', '.join(missing)} which is not available")
        return device

    @staticmethod
    def _precision(value: Optional[str], device: str) -> Optional[str]:
        """The ``INFERENCE_PRECISION_HINT`` to set (None: leave OpenVINO's default)."""
        if value is None:
            return "f32" if device.split(".")[0].upper() == "CPU" else None
        v = str(value).lower()
        if v == "default":
            return None
        if v not in _PRECISIONS:
            raise BackendError(f"inference_precision: expected one of {sorted(_PRECISIONS)} or 'default', "
                               f"got {value!r}")
        return v

    def _weights_path(self, weights: "str | os.PathLike | None") -> Optional[Path]:
        if weights is not None:
            w = Path(weights)
            check_model_file(w, f"the OpenVINO weights file for {self.path.name}")
            return w
        if self.path.suffix.lower() != ".xml":
            return None
        w = self.path.with_suffix(".bin")
        if not w.is_file():
            raise ModelFileError(f"OpenVINO IR {self.path} expects its weights at {w}, but that file does not exist; "
                                 f"copy the .bin next to the .xml (same name) or pass weights=...")
        return w

    def _read_error(self, exc: Exception, weights: Optional[Path]) -> ModelFileError:
        text = str(exc).strip()
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Exception from")]
        detail = " ".join(lines)[:400] or text[:400]
        size = self.path.stat().st_size
        what = "OpenVINO IR (.xml + .bin)" if self.path.suffix.lower() == ".xml" else f"{self.path.suffix} model for OpenVINO"
        wsize = f", weights {weights.name} {weights.stat().st_size} bytes" if weights and weights.exists() else ""
        return ModelFileError(f"{self.path} is not a valid {what} ({size} bytes{wsize}): {detail}; the files may be "
                              f"truncated or corrupt (the .xml and .bin must come from the same export): re-export them "
                              f"or download them again")

    def _spec(self, port: Any, fallback: str) -> TensorSpec:
        try:
            name = port.get_any_name()
        except RuntimeError:
            name = fallback
        pshape = port.get_partial_shape()
        if pshape.rank.is_dynamic:
            raise BackendError(f"{self.path.name}: tensor {name!r} has a dynamic rank, which this backend does not support")
        shape = tuple(d.get_length() if d.is_static else None for d in pshape)
        try:
            dtype = np.dtype(port.get_element_type().to_dtype())
        except Exception:  # noqa: BLE001 - e.g. bf16 without a numpy equivalent
            dtype = np.dtype(object)
        return TensorSpec(name, shape, dtype)

    def _read_metadata(self, model: Any) -> Dict[str, str]:
        try:
            meta = flatten_rt_info(model.get_rt_info())
        except Exception:  # noqa: BLE001
            logger.debug("could not read rt_info of %s", self.path.name, exc_info=True)
            meta = {}
        if self.path.suffix.lower() == ".onnx":
            # OpenVINO's ONNX frontend puts metadata_props under rt_info["framework"]; older releases
            # do not, and then the onnx package (when installed) reads them.
            props = {k[len("framework."):]: v for k, v in meta.items() if k.startswith("framework.")}
            if not props:
                props = _onnx_metadata_props(self.path)
            for key, value in props.items():
                meta.setdefault(key, value)
        nested = ".".join(CONTRACT_RT_PATH)
        if CONTRACT_KEY not in meta and nested in meta:
            meta[CONTRACT_KEY] = meta[nested]
        return meta

    # -- hooks -------------------------------------------------------------------------------------
    def _run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        request = self._request
        try:
            for i, spec in enumerate(self.inputs):
                request.set_input_tensor(i, self._ov.Tensor(np.ascontiguousarray(feeds[spec.name])))
            request.infer()
            return {spec.name: np.array(request.get_output_tensor(i).data, copy=True)
                    for i, spec in enumerate(self.outputs)}
        except Exception as exc:
            raise BackendError(f"OpenVINO failed to run {self.path.name} on {self._device}: {type(exc).__name__}: "
                               f"{str(exc).strip()}") from exc

    def _close(self) -> None:
        self._request = None
        self._compiled = None

    def _describe(self) -> dict:
        info: Dict[str, Any] = {"runtime": "openvino", "runtime_version": self._ov.__version__,
                                "device": self._device, "config": dict(self._props)}
        if self._compiled is not None:
            for prop in ("EXECUTION_DEVICES", "PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS",
                         "INFERENCE_PRECISION_HINT"):
                try:
                    value = self._compiled.get_property(prop)
                except Exception:  # noqa: BLE001 - not every device reports every property
                    continue
                if hasattr(value, "get_type_name"):  # an ov.Type: "f32", "bf16", "f16"
                    value = value.get_type_name()
                info[prop.lower()] = value if isinstance(value, (int, float, str, list)) else str(value)
        return info


def _onnx_metadata_props(path: Path) -> Dict[str, str]:
    """ONNX ``metadata_props`` of ``path`` (needs the ``onnx`` package; empty dict without it)."""
    try:
        import onnx
    except ImportError:
        logger.info("onnx is not installed: metadata_props of %s are not read by the openvino backend", path.name)
        return {}
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - OpenVINO already read the file; metadata is best effort
        return {}
    return {p.key: p.value for p in proto.metadata_props}
