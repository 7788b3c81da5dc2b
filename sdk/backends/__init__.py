"""Inference backends behind one small protocol, loaded lazily by name.

::

    from sdk.backends import create_backend, backend_for_path

    with create_backend("onnxruntime", "model.onnx", providers=["CPUExecutionProvider"]) as b:
        print(b.inputs)                       # [TensorSpec(name='images', shape=(1, 3, 320, 320), ...)]
        out = b.infer({"images": x})          # {"output0": array(...)} in the model's own dtypes

Importing this package imports no runtime: each backend module is imported by :func:`create_backend`
from its ``"module:Class"`` string, and each imports its runtime (onnxruntime, ai-edge-litert /
tflite-runtime, OpenVINO) only when a backend is created. A missing runtime raises
:class:`~sdk.errors.BackendUnavailable` whose message carries the ``pip install`` line.

Built-in backends:

=============  =====================================  ==============================================
name           files                                  runtime
=============  =====================================  ==============================================
onnxruntime    ``.onnx``                              ``onnxruntime`` (or ``onnxruntime-gpu``)
tflite         ``.tflite``                            ``ai_edge_litert`` > ``tflite_runtime`` > ``tensorflow``
openvino       ``.xml`` + ``.bin`` (also ``.onnx``)   ``openvino``
=============  =====================================  ==============================================
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Dict, List

from sdk.backends.base import CONTRACT_KEY, Backend, BackendBase, FeedError, PerAxisQuantization, TensorSpec
from sdk.errors import BackendError, BackendUnavailable, ModelFileError

__all__ = [
    "Backend",
    "BackendBase",
    "TensorSpec",
    "PerAxisQuantization",
    "FeedError",
    "CONTRACT_KEY",
    "BACKENDS",
    "ALIASES",
    "EXTENSIONS",
    "INSTALL_HINTS",
    "create_backend",
    "backend_for_path",
    "get_backend_class",
    "register_backend",
    "available_backends",
    "known_backends",
]

logger = logging.getLogger(__name__)

#: Registry: backend name -> ``"module:Class"`` (imported on first use).
BACKENDS: Dict[str, str] = {
    "onnxruntime": "sdk.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "tflite": "sdk.backends.tflite_backend:TFLiteBackend",
    "openvino": "sdk.backends.openvino_backend:OpenVINOBackend",
}

#: Other spellings accepted by :func:`create_backend`.
ALIASES: Dict[str, str] = {"onnx": "onnxruntime", "ort": "onnxruntime", "litert": "tflite", "ov": "openvino"}

#: Default backend for each model file extension.
EXTENSIONS: Dict[str, str] = {".onnx": "onnxruntime", ".tflite": "tflite", ".xml": "openvino"}

#: Importable module that proves a runtime is installed, per backend (checked without importing).
RUNTIME_MODULES: Dict[str, tuple] = {
    "onnxruntime": ("onnxruntime",),
    "tflite": ("ai_edge_litert", "tflite_runtime", "tensorflow"),
    "openvino": ("openvino",),
}

#: What to run when a runtime is missing.
INSTALL_HINTS: Dict[str, str] = {
    "onnxruntime": 'pip install "edgesdk[onnx]"  (or: pip install onnxruntime; on Jetson install the '
                   "onnxruntime-gpu wheel for your JetPack from NVIDIA's Jetson AI Lab index)",
    "tflite": 'pip install "edgesdk[tflite]"  (or: pip install ai-edge-litert; on a Raspberry Pi or with '
              "numpy<2: pip install tflite-runtime)",
    "openvino": 'pip install "edgesdk[openvino]"  (or: pip install openvino)',
}


def known_backends() -> List[str]:
    """Registered backend names, sorted."""
    return sorted(BACKENDS)


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise BackendError(f"backend name: expected a string, one of {known_backends()}, got {name!r}")
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; known backends: {', '.join(known_backends())}"
                           f" (aliases: {', '.join(f'{a}={b}' for a, b in sorted(ALIASES.items()))})")
    return key


def register_backend(name: str, target: str, *, install_hint: str = "", extensions: tuple = ()) -> None:
    """Add (or replace) a backend in the registry.

    Args:
        name: registry name, lower case.
        target: ``"package.module:ClassName"``; imported on first use.
        install_hint: the ``pip install`` line shown when the runtime is missing.
        extensions: file extensions (``".engine"``) for which this backend becomes the default.

    Raises:
        ValueError: ``target`` is not of the form ``"module:Class"``.
    """
    if ":" not in target or target.startswith(":") or target.endswith(":"):
        raise ValueError(f"backend target: expected 'module:Class', got {target!r}")
    key = name.strip().lower()
    BACKENDS[key] = target
    if install_hint:
        INSTALL_HINTS[key] = install_hint
    for ext in extensions:
        EXTENSIONS[ext.lower() if ext.startswith(".") else "." + ext.lower()] = key


def get_backend_class(name: str) -> type:
    """Import and return the class registered under ``name``.

    Raises:
        BackendError: unknown name (the message lists the known ones) or a broken registry entry.
        BackendUnavailable: the backend module could not be imported because a dependency is missing.
    """
    key = _canonical(name)
    module_name, _, class_name = BACKENDS[key].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = INSTALL_HINTS.get(key, "")
        raise BackendUnavailable(f"backend {key!r} cannot be imported ({exc})" + (f"; install it with: {hint}" if hint else "")) from exc
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise BackendError(f"backend {key!r}: module {module_name} has no class {class_name!r}") from exc


def backend_for_path(path: "str | os.PathLike") -> str:
    """Name of the default backend for a model file, from its extension.

    ``.onnx`` -> ``"onnxruntime"``, ``.tflite`` -> ``"tflite"``, ``.xml`` (OpenVINO IR with its ``.bin``)
    -> ``"openvino"``. To run an ``.onnx`` file with OpenVINO pass ``"openvino"`` to :func:`create_backend`.

    Raises:
        ModelFileError: the extension is not one a backend reads (the message lists the supported ones).
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in EXTENSIONS:
        supported = ", ".join(f"{e} ({b})" for e, b in EXTENSIONS.items())
        raise ModelFileError(f"cannot tell the backend for {p.name!r}: expected extension one of {supported}, "
                             f"got {ext or 'no extension'!r}")
    return EXTENSIONS[ext]


def create_backend(name: "str | None", path: "str | os.PathLike", **options: Any) -> Backend:
    """Load ``path`` with the backend called ``name``.

    Args:
        name: ``"onnxruntime"``, ``"tflite"``, ``"openvino"`` (aliases ``onnx``, ``ort``, ``litert``,
            ``ov``), or ``None``/``"auto"`` to pick by extension with :func:`backend_for_path`.
        path: model file (``.onnx``, ``.tflite``, or OpenVINO ``.xml`` next to its ``.bin``).
        **options: backend options, e.g. ``providers=[...]``, ``intra_op_num_threads=4`` (onnxruntime);
            ``num_threads=4, use_xnnpack=True, delegates=[...]`` (tflite); ``device="CPU",
            performance_hint="LATENCY"`` (openvino). See each backend class.

    Returns:
        A ready backend (use it as a context manager or call ``close()``).

    Raises:
        BackendError: unknown backend name, or the runtime failed to load the model.
        BackendUnavailable: the runtime is not installed (message has the ``pip install`` line).
        ModelFileError: missing, empty, truncated or corrupt file, or unknown extension.
        TypeError: an option the backend does not accept.
    """
    key = backend_for_path(path) if name is None or str(name).lower() == "auto" else _canonical(name)
    cls = get_backend_class(key)
    logger.debug("creating %s backend for %s with options %s", key, path, options)
    return cls(path, **options)


def available_backends() -> List[str]:
    """Names of backends whose runtime looks installed (checked with ``find_spec``, nothing imported)."""
    found = []
    for key in known_backends():
        mods = RUNTIME_MODULES.get(key)
        if mods is None or any(_has_module(m) for m in mods):
            found.append(key)
    return found


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
