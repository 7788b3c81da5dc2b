"""ONNX Runtime backend for ``.onnx`` files.

Execution providers come from the caller (normally the device config): for a Jetson
``[("TensorrtExecutionProvider", {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
"trt_engine_cache_path": "~/.cache/edgesdk/trt"}), "CUDAExecutionProvider", "CPUExecutionProvider"]``;
by default only ``CPUExecutionProvider``. Providers the installed build lacks are skipped with a
warning (``strict_providers=True`` raises instead); :meth:`describe` reports what is really in use.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from sdk.backends.base import BackendBase, TensorSpec, check_model_file
from sdk.errors import BackendError, BackendUnavailable, ModelFileError

__all__ = ["OnnxRuntimeBackend", "ProviderSpec"]

logger = logging.getLogger(__name__)

#: A provider name, or ``(name, options)`` (a 2-item list from YAML is accepted too).
ProviderSpec = Union[str, Tuple[str, Mapping[str, Any]]]

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}

_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "disable_all": "ORT_DISABLE_ALL",
    "none": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",  # ORT >= 1.22; older builds fall back to "all"
    "all": "ORT_ENABLE_ALL",
}

# Load errors that mean "this file is not a readable ONNX model" rather than "the runtime cannot run it".
_FILE_ERROR_MARKERS = (
    "protobuf parsing failed",
    "no graph was found",
    "modelproto does not have a graph",
    "external data",
    "external initializer",
    "cannot open",
    "no such file",
)


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        from sdk.backends import INSTALL_HINTS

        raise BackendUnavailable(f"the onnxruntime backend needs the onnxruntime package, which is not importable "
                                 f"({exc}); install it with: {INSTALL_HINTS['onnxruntime']}") from exc
    return onnxruntime


def _normalise_providers(providers: Optional[Sequence[ProviderSpec]]) -> List[Tuple[str, Dict[str, Any]]]:
    if providers is None:
        return [("CPUExecutionProvider", {})]
    if isinstance(providers, str) or (isinstance(providers, tuple) and len(providers) == 2
                                      and isinstance(providers[0], str) and isinstance(providers[1], Mapping)):
        providers = [providers]  # a single provider
    out = []
    for p in providers:
        if isinstance(p, str):
            out.append((p, {}))
        elif isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], Mapping):
            opts = {k: (os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v) for k, v in p[1].items()}
            out.append((p[0], opts))
        else:
            raise BackendError(f"providers: expected each entry to be a name or (name, options dict), got {p!r}")
    if not out:
        raise BackendError("providers: expected at least one execution provider, got an empty list")
    return out


class OnnxRuntimeBackend(BackendBase):
    """Run an ONNX model with ONNX Runtime.

    Args:
        path: ``.onnx`` file (external-data files next to it are found by ONNX Runtime).
        providers: execution providers in priority order; each a name or ``(name, options)``.
            Default ``["CPUExecutionProvider"]``.
        strict_providers: raise :class:`~sdk.errors.BackendError` when a requested provider is not in
            this build (or ONNX Runtime drops it at session creation) instead of warning and skipping.
        intra_op_num_threads: threads inside one operator (0 = ONNX Runtime default: physical cores).
        inter_op_num_threads: threads across operators (parallel execution mode only; 0 = default).
        graph_optimization_level: ``"disable"``, ``"basic"``, ``"extended"``, ``"layout"``, ``"all"``
            (default), an int 0/1/2/99, or an ``onnxruntime.GraphOptimizationLevel``.
        enable_cpu_mem_arena: keep ONNX Runtime's CPU memory arena (default True; False saves RAM
            on small boards at some speed cost).
        enable_mem_pattern: pre-plan memory for fixed shapes (default True).
        execution_mode: ``"sequential"`` (default) or ``"parallel"``.
        log_severity_level: 0 verbose .. 4 fatal (default 3, errors only).
        optimized_model_filepath: save the optimised graph here (debugging).
        session_config: extra ``SessionOptions.add_session_config_entry`` key/values.

    Raises:
        BackendUnavailable: onnxruntime is not installed.
        ModelFileError: the file is missing, empty, or not a valid ONNX model.
        BackendError: a provider problem under ``strict_providers`` or a model ONNX Runtime cannot run.
    """

    name = "onnxruntime"

    def __init__(
        self,
        path: "str | os.PathLike",
        *,
        providers: Optional[Sequence[ProviderSpec]] = None,
        strict_providers: bool = False,
        intra_op_num_threads: int = 0,
        inter_op_num_threads: int = 0,
        graph_optimization_level: Any = "all",
        enable_cpu_mem_arena: bool = True,
        enable_mem_pattern: bool = True,
        execution_mode: str = "sequential",
        log_severity_level: int = 3,
        optimized_model_filepath: Optional[str] = None,
        session_config: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(Path(path))
        self._closed = True  # until the session exists
        check_model_file(self.path, "an ONNX model (.onnx)")
        ort = _import_onnxruntime()
        self._ort = ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = int(intra_op_num_threads)
        so.inter_op_num_threads = int(inter_op_num_threads)
        so.graph_optimization_level = self._opt_level(ort, graph_optimization_level)
        so.enable_cpu_mem_arena = bool(enable_cpu_mem_arena)
        so.enable_mem_pattern = bool(enable_mem_pattern)
        so.log_severity_level = int(log_severity_level)
        mode = str(execution_mode).lower()
        if mode not in ("sequential", "parallel"):
            raise BackendError(f"execution_mode: expected 'sequential' or 'parallel', got {execution_mode!r}")
        so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if mode == "parallel" else ort.ExecutionMode.ORT_SEQUENTIAL
        if optimized_model_filepath:
            so.optimized_model_filepath = str(optimized_model_filepath)
        for key, value in (session_config or {}).items():
            so.add_session_config_entry(str(key), str(value))
        self._settings = {
            "intra_op_num_threads": so.intra_op_num_threads,
            "inter_op_num_threads": so.inter_op_num_threads,
            "graph_optimization_level": str(so.graph_optimization_level).split(".")[-1],
            "enable_cpu_mem_arena": so.enable_cpu_mem_arena,
            "execution_mode": mode,
        }

        requested = _normalise_providers(providers)
        self._requested = [n for n, _ in requested]
        chosen, self._skipped = self._select_providers(ort, requested, strict_providers)
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=so,
                providers=[n for n, _ in chosen], provider_options=[o for _, o in chosen],
            )
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise self._load_error(exc) from exc

        in_use = self._session.get_providers()
        dropped = [n for n, _ in chosen if n not in in_use]
        if dropped:
            msg = (f"onnxruntime could not initialise provider(s) {dropped} for {self.path.name} (missing CUDA/TensorRT "
                   f"libraries?); running with {in_use}")
            if strict_providers:
                raise BackendError(msg + "; strict_providers=True")
            logger.warning(msg)
            self._skipped.extend(dropped)

        self.inputs = [self._spec(a) for a in self._session.get_inputs()]
        self.outputs = [self._spec(a) for a in self._session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]
        meta = self._session.get_modelmeta()
        self.metadata = {str(k): str(v) for k, v in (meta.custom_metadata_map or {}).items()}
        self._closed = False
        logger.info("onnxruntime %s loaded %s with providers %s", ort.__version__, self.path.name, in_use)

    # -- helpers -----------------------------------------------------------------------------------
    @staticmethod
    def _opt_level(ort: Any, level: Any) -> Any:
        enum = ort.GraphOptimizationLevel
        if isinstance(level, enum):
            return level
        if isinstance(level, bool):
            raise BackendError(f"graph_optimization_level: expected one of {sorted(_OPT_LEVELS)} or 0/1/2/99, got {level!r}")
        if isinstance(level, int):
            by_int = {0: "disable", 1: "basic", 2: "extended", 99: "all"}
            if level not in by_int:
                raise BackendError(f"graph_optimization_level: expected 0, 1, 2 or 99, got {level}")
            level = by_int[level]
        key = str(level).lower().replace("ort_enable_", "").replace("ort_", "")
        if key not in _OPT_LEVELS:
            raise BackendError(f"graph_optimization_level: expected one of {sorted(_OPT_LEVELS)}, got {level!r}")
        value = getattr(enum, _OPT_LEVELS[key], None)
        if value is None:  # e.g. ORT_ENABLE_LAYOUT on an older onnxruntime
            logger.warning("graph_optimization_level %r is not in onnxruntime %s; using 'all'", level, ort.__version__)
            value = enum.ORT_ENABLE_ALL
        return value

    def _select_providers(self, ort: Any, requested: List[Tuple[str, Dict[str, Any]]],
                          strict: bool) -> Tuple[List[Tuple[str, Dict[str, Any]]], List[str]]:
        available = list(ort.get_available_providers())
        chosen = [(n, o) for n, o in requested if n in available]
        skipped = [n for n, _ in requested if n not in available]
        if skipped:
            msg = (f"execution provider(s) {skipped} requested for {self.path.name} are not in this onnxruntime build "
                   f"({ort.__version__}); available: {available}")
            if strict:
                raise BackendError(msg + "; strict_providers=True")
            logger.warning(msg + "; skipping them")
        if not chosen:
            if strict:  # pragma: no cover - raised above already
                raise BackendError(f"none of the requested providers {[n for n, _ in requested]} is available")
            logger.warning("no requested provider is available for %s; falling back to CPUExecutionProvider", self.path.name)
            chosen = [("CPUExecutionProvider", {})]
        return chosen, skipped

    def _load_error(self, exc: Exception) -> Exception:
        text = str(exc)
        kind = type(exc).__name__
        size = self.path.stat().st_size if self.path.exists() else 0
        if kind in ("InvalidProtobuf", "NoSuchFile") or any(m in text.lower() for m in _FILE_ERROR_MARKERS):
            return ModelFileError(
                f"{self.path} is not a valid ONNX model (expected an ONNX protobuf, got {size} bytes that onnxruntime "
                f"cannot parse: {kind}: {text.strip()}); the file may be truncated or corrupt: re-export it or "
                f"download it again")
        return BackendError(f"onnxruntime {self._ort.__version__} could not load {self.path.name} ({kind}: {text.strip()})")

    @staticmethod
    def _spec(arg: Any) -> TensorSpec:
        dtype = _ORT_TYPES.get(arg.type)
        if dtype is None:
            logger.warning("ONNX tensor %r has type %s, which has no numpy equivalent; reporting dtype object",
                           arg.name, arg.type)
            dtype = np.object_
        shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in (arg.shape or []))
        return TensorSpec(arg.name, shape, np.dtype(dtype))

    # -- hooks -------------------------------------------------------------------------------------
    def _run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        try:
            values = self._session.run(self._output_names, feeds)
        except Exception as exc:
            raise BackendError(f"onnxruntime failed to run {self.path.name}: {type(exc).__name__}: {exc}") from exc
        return {name: np.asarray(v) for name, v in zip(self._output_names, values)}

    def _close(self) -> None:
        self._session = None

    def _describe(self) -> dict:
        info: Dict[str, Any] = {
            "runtime": "onnxruntime",
            "runtime_version": self._ort.__version__,
            "device": self._ort.get_device(),
            "providers_requested": list(self._requested),
            "providers_skipped": list(self._skipped),
        }
        if self._session is not None:
            info["providers"] = self._session.get_providers()
            info["provider_options"] = self._session.get_provider_options()
        info.update(self._settings)
        return info
