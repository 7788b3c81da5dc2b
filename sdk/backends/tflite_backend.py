"""TFLite / LiteRT backend for ``.tflite`` files.

The interpreter comes from the first importable of ``ai_edge_litert.interpreter`` (LiteRT, numpy 2),
``tflite_runtime.interpreter`` (the classic Raspberry Pi wheel, numpy < 2) and ``tensorflow.lite``.

Tensor names: for a model with exactly one signature (what litert-torch and the TF converter write)
inputs and outputs are named by their signature names (``"args_0"``, ``"boxes"``); otherwise by the
tensor names. The order of :attr:`inputs`/:attr:`outputs` is always the model's own tensor order.

Before the interpreter sees the file, :func:`sdk.backends.tflite_metadata.verify_model` checks its
structure, because ``tflite-runtime`` 2.14 crashes the process on a truncated flatbuffer.
"""
from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from sdk.backends.base import BackendBase, PerAxisQuantization, TensorSpec, check_model_file
from sdk.backends.tflite_metadata import decode_text_metadata, read_metadata, verify_model
from sdk.errors import BackendError, BackendUnavailable, ModelFileError

__all__ = ["TFLiteBackend", "DelegateSpec", "import_tflite_runtime"]

logger = logging.getLogger(__name__)

#: An external delegate: a library path, ``(path, options)``, or ``{"library": path, "options": {...}}``.
DelegateSpec = Union[str, Tuple[str, Mapping[str, Any]], Mapping[str, Any]]

_RUNTIMES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)

_FILE_ERROR_MARKERS = ("flatbuffer", "model identifier", "no subgraph", "mmap", "could not open", "allocation is null")


class _Runtime:
    """The interpreter API found: its package name, version, Interpreter class and helpers."""

    def __init__(self, package: str, version: str, interpreter_cls: Any, load_delegate: Any,
                 op_resolver_type: Any) -> None:
        self.package = package
        self.version = version
        self.Interpreter = interpreter_cls
        self.load_delegate = load_delegate
        self.OpResolverType = op_resolver_type


def import_tflite_runtime(preferred: Optional[str] = None) -> _Runtime:
    """Import the first available TFLite interpreter.

    Args:
        preferred: ``"ai_edge_litert"``, ``"tflite_runtime"`` or ``"tensorflow"`` to force one.

    Returns:
        The runtime found.

    Raises:
        BackendUnavailable: none is importable (the message has the ``pip install`` line).
        BackendError: ``preferred`` is not one of the three names.
    """
    import importlib

    order = list(_RUNTIMES)
    if preferred is not None:
        order = [r for r in _RUNTIMES if r[0] == preferred]
        if not order:
            raise BackendError(f"runtime: expected one of {[r[0] for r in _RUNTIMES]}, got {preferred!r}")
    errors = []
    for package, module_name in order:
        try:
            module = importlib.import_module(module_name)
            top = importlib.import_module(package)
        except ImportError as exc:
            errors.append(f"{module_name}: {exc}")
            continue
        if package == "tensorflow":
            interpreter_cls = module.Interpreter
            load_delegate = module.experimental.load_delegate
            op_resolver = getattr(module.experimental, "OpResolverType", None)
        else:
            interpreter_cls = module.Interpreter
            load_delegate = getattr(module, "load_delegate", None)
            op_resolver = getattr(module, "OpResolverType", None)
        version = str(getattr(top, "__version__", "unknown"))
        return _Runtime(package, version, interpreter_cls, load_delegate, op_resolver)
    from sdk.backends import INSTALL_HINTS

    raise BackendUnavailable("the tflite backend needs a TFLite interpreter, but none is importable ("
                             + "; ".join(errors) + f"); install one with: {INSTALL_HINTS['tflite']}")


def _normalise_delegates(delegates: Optional[Sequence[DelegateSpec]]) -> List[Tuple[str, Dict[str, Any]]]:
    out = []
    for d in delegates or []:
        if isinstance(d, (str, os.PathLike)):
            out.append((os.path.expanduser(os.fspath(d)), {}))
        elif isinstance(d, Mapping) and "library" in d:
            out.append((os.path.expanduser(os.fspath(d["library"])), dict(d.get("options") or {})))
        elif isinstance(d, (tuple, list)) and len(d) == 2 and isinstance(d[1], Mapping):
            out.append((os.path.expanduser(os.fspath(d[0])), dict(d[1])))
        else:
            raise BackendError(f"delegates: expected each entry to be a library path, (path, options) or "
                               f"{{'library': path, 'options': {{...}}}}, got {d!r}")
    return out


def _spec(detail: Mapping[str, Any], name: str) -> TensorSpec:
    sig = detail.get("shape_signature")
    dims = sig if sig is not None and len(sig) == len(detail["shape"]) else detail["shape"]
    shape = tuple(None if int(d) < 0 else int(d) for d in dims)
    dtype = np.dtype(detail["dtype"])
    quant = None
    per_axis = None
    params = detail.get("quantization_parameters") or {}
    scales = np.asarray(params.get("scales", []), dtype=np.float64).reshape(-1)
    zps = np.asarray(params.get("zero_points", []), dtype=np.int64).reshape(-1)
    if scales.size == 1 and scales[0] != 0:
        quant = (float(scales[0]), int(zps[0]) if zps.size else 0)
    elif scales.size > 1:
        zero_points = tuple(int(z) for z in zps) if zps.size == scales.size else (0,) * scales.size
        per_axis = PerAxisQuantization(tuple(float(s) for s in scales), zero_points,
                                       int(params.get("quantized_dimension", 0)))
    elif scales.size == 0:
        scale, zp = detail.get("quantization", (0.0, 0)) or (0.0, 0)
        if scale:
            quant = (float(scale), int(zp))
    return TensorSpec(name, shape, dtype, quant, per_axis)


class TFLiteBackend(BackendBase):
    """Run a ``.tflite`` model with LiteRT / tflite-runtime / tf.lite.

    Not thread-safe: use one backend per thread.

    Args:
        path: ``.tflite`` file.
        num_threads: CPU threads for the interpreter and XNNPACK (``None``: runtime default).
        use_xnnpack: keep the runtime's default XNNPACK delegate (default True). False selects
            ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`` where the interpreter supports it.
        delegates: external delegates loaded with ``load_delegate``, e.g.
            ``["libedgetpu.so.1"]`` or ``[("libedgetpu.so.1", {"device": "usb"})]``.
        runtime: force ``"ai_edge_litert"``, ``"tflite_runtime"`` or ``"tensorflow"``.

    Raises:
        BackendUnavailable: no TFLite interpreter is installed.
        ModelFileError: the file is missing, empty, truncated or not a TFLite flatbuffer.
        BackendError: a delegate failed to load, or the runtime cannot run the model (e.g. an op
            version newer than the installed runtime).
    """

    name = "tflite"

    def __init__(
        self,
        path: "str | os.PathLike",
        *,
        num_threads: Optional[int] = None,
        use_xnnpack: bool = True,
        delegates: Optional[Sequence[DelegateSpec]] = None,
        runtime: Optional[str] = None,
    ) -> None:
        super().__init__(Path(path))
        self._closed = True  # until the interpreter exists
        check_model_file(self.path, "a TFLite model (.tflite)")
        rt = import_tflite_runtime(runtime)
        self._rt = rt
        verify_model(self.path)
        self.metadata = decode_text_metadata(read_metadata(self.path))

        kwargs: Dict[str, Any] = {"model_path": str(self.path)}
        if num_threads is not None:
            if int(num_threads) < -1 or int(num_threads) == 0:
                raise BackendError(f"num_threads: expected a positive int or -1 (runtime default), got {num_threads}")
            kwargs["num_threads"] = int(num_threads)
        self._op_resolver = "AUTO"
        if not use_xnnpack:
            resolver = getattr(rt.OpResolverType, "BUILTIN_WITHOUT_DEFAULT_DELEGATES", None) if rt.OpResolverType else None
            accepts = "experimental_op_resolver_type" in inspect.signature(rt.Interpreter.__init__).parameters
            if resolver is not None and accepts:
                kwargs["experimental_op_resolver_type"] = resolver
                self._op_resolver = "BUILTIN_WITHOUT_DEFAULT_DELEGATES"
            else:
                logger.warning("%s %s cannot disable the default XNNPACK delegate; use_xnnpack=False ignored",
                               rt.package, rt.version)
        self._delegate_specs = _normalise_delegates(delegates)
        loaded = []
        for library, options in self._delegate_specs:
            if os.sep in library and not Path(library).expanduser().is_file():
                raise BackendError(f"could not load TFLite delegate {library!r}: expected a shared library at that "
                                   f"path, but the file does not exist")
            if rt.load_delegate is None:
                raise BackendError(f"{rt.package} {rt.version} has no load_delegate; cannot load {library}")
            try:
                loaded.append(rt.load_delegate(library, options))
            except (ValueError, OSError, RuntimeError) as exc:
                raise BackendError(f"could not load TFLite delegate {library!r} with options {options}: {exc}. "
                                   f"Is the library installed and the device attached (e.g. Coral: libedgetpu1-std, "
                                   f"a model compiled with edgetpu_compiler)?") from exc
        if loaded:
            kwargs["experimental_delegates"] = loaded
        self._use_xnnpack = bool(use_xnnpack)
        self._num_threads = num_threads

        try:
            interp = rt.Interpreter(**kwargs)
        except Exception as exc:  # the runtimes raise ValueError, RuntimeError, even UnicodeDecodeError
            raise self._load_error(exc) from exc
        try:
            interp.allocate_tensors()
        except Exception as exc:
            raise BackendError(f"{rt.package} {rt.version} could not prepare {self.path.name}: {exc}") from exc
        self._interp = interp

        in_details = interp.get_input_details()
        out_details = interp.get_output_details()
        in_names, out_names = self._signature_names(interp, in_details, out_details)
        self.inputs = [_spec(d, n) for d, n in zip(in_details, in_names)]
        self.outputs = [_spec(d, n) for d, n in zip(out_details, out_names)]
        self._in_index = {s.name: int(d["index"]) for s, d in zip(self.inputs, in_details)}
        self._out_index = [(s.name, int(d["index"])) for s, d in zip(self.outputs, out_details)]
        self._current_shape = {s.name: tuple(int(x) for x in d["shape"]) for s, d in zip(self.inputs, in_details)}
        self._closed = False
        logger.info("%s %s loaded %s (threads=%s, xnnpack=%s, delegates=%s)", rt.package, rt.version,
                    self.path.name, num_threads, use_xnnpack, [d for d, _ in self._delegate_specs])

    # -- helpers -----------------------------------------------------------------------------------
    def _load_error(self, exc: Exception) -> Exception:
        text = str(exc).strip()
        size = self.path.stat().st_size
        if isinstance(exc, UnicodeDecodeError) or any(m in text.lower() for m in _FILE_ERROR_MARKERS):
            return ModelFileError(f"{self.path} is not a valid TFLite model ({size} bytes; {self._rt.package} says: "
                                  f"{type(exc).__name__}: {text}); re-export it or download it again")
        hint = ""
        if "didn't find op" in text.lower() or "op builtin_code" in text.lower():
            hint = (" (the model uses an op or op version newer than this runtime: upgrade the runtime, e.g. "
                    "pip install -U ai-edge-litert, or re-convert the model for the older runtime)")
        return BackendError(f"{self._rt.package} {self._rt.version} could not load {self.path.name}: {text}{hint}")

    @staticmethod
    def _signature_names(interp: Any, in_details: List[dict], out_details: List[dict]) -> Tuple[List[str], List[str]]:
        in_names = [str(d["name"]) for d in in_details]
        out_names = [str(d["name"]) for d in out_details]
        try:
            full = interp._get_full_signature_list()  # {key: {"inputs": {name: index}, "outputs": {...}}}
        except Exception:  # noqa: BLE001 - private API; tensor names are a fine fallback
            return in_names, out_names
        if not full or len(full) != 1:
            return in_names, out_names
        sig = next(iter(full.values()))
        by_index_in = {int(i): n for n, i in (sig.get("inputs") or {}).items()}
        by_index_out = {int(i): n for n, i in (sig.get("outputs") or {}).items()}
        idx_in = [int(d["index"]) for d in in_details]
        idx_out = [int(d["index"]) for d in out_details]
        if sorted(by_index_in) != sorted(idx_in) or sorted(by_index_out) != sorted(idx_out):
            return in_names, out_names
        return [by_index_in[i] for i in idx_in], [by_index_out[i] for i in idx_out]

    # -- hooks -------------------------------------------------------------------------------------
    def _run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        interp = self._interp
        try:
            resized = [name for name, value in feeds.items() if value.shape != self._current_shape[name]]
            for name in resized:
                self._current_shape[name] = ()  # unknown until allocate_tensors succeeds
                interp.resize_tensor_input(self._in_index[name], list(feeds[name].shape), strict=True)
            if resized:
                interp.allocate_tensors()
                for name in resized:
                    self._current_shape[name] = tuple(feeds[name].shape)
            for name, value in feeds.items():
                interp.set_tensor(self._in_index[name], np.ascontiguousarray(value))
            interp.invoke()
            # get_tensor returns a copy, so the next invoke() cannot overwrite what we hand out.
            return {name: interp.get_tensor(index) for name, index in self._out_index}
        except Exception as exc:
            raise BackendError(f"{self._rt.package} failed to run {self.path.name}: {type(exc).__name__}: {exc}") from exc

    def _close(self) -> None:
        self._interp = None

    def _describe(self) -> dict:
        info = {
            "runtime": self._rt.package,
            "runtime_version": self._rt.version,
            "num_threads": self._num_threads if self._num_threads is not None else "runtime default",
            "use_xnnpack": self._use_xnnpack,
            "op_resolver": self._op_resolver,
            "delegates": [{"library": lib, "options": opts} for lib, opts in self._delegate_specs],
        }
        info.update(self._partitions())
        return info

    def _partitions(self) -> dict:
        """``delegated_partitions``: how many subgraphs a delegate such as XNNPACK took over. One means the
        whole graph; more means ops it has no kernel for (e.g. some int8 ops) run on the built-in kernels
        between the partitions. Empty when the runtime does not expose its nodes."""
        details = getattr(self._interp, "_get_ops_details", None)
        if details is None:
            return {}
        try:
            names = [op.get("op_name", "") for op in details()]
        except Exception:  # noqa: BLE001 - a private API of the interpreter; best effort
            return {}
        return {"delegated_partitions": sum(1 for n in names if n == "DELEGATE")}
