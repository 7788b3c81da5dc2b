"""What every backend offers: :class:`TensorSpec` and the :class:`Backend` protocol.

A backend wraps one inference runtime around one model file. It reports its tensors as
:class:`TensorSpec` objects, takes and returns raw numpy arrays in the model's own dtypes (an int8
model takes int8 and returns int8; dequantise with :attr:`TensorSpec.quantization`) and exposes the
custom metadata stored inside the model file as ``dict[str, str]``.

Concrete backends subclass :class:`BackendBase`, which validates feeds, handles ``close`` and the
context-manager protocol, and leaves three hooks: ``_run``, ``_close`` and ``_describe``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

from sdk.errors import BackendError, ModelFileError

__all__ = [
    "TensorSpec",
    "PerAxisQuantization",
    "Backend",
    "BackendBase",
    "FeedError",
    "CONTRACT_KEY",
    "validate_feeds",
    "check_model_file",
    "format_shape",
]

logger = logging.getLogger(__name__)

#: Metadata key under which EdgeSDK stores its model contract (same as ``sdk.contract.METADATA_KEY``).
CONTRACT_KEY = "edgesdk_contract"


class FeedError(BackendError, ValueError):
    """A feed passed to :meth:`Backend.infer` has a wrong name, shape or dtype."""


@dataclass(frozen=True)
class PerAxisQuantization:
    """Per-channel (per-axis) affine quantisation of a tensor: ``real = scale[c] * (q - zero_point[c])``.

    Attributes:
        scales: one scale per channel along ``axis``, length C.
        zero_points: one zero point per channel, length C.
        axis: the quantised dimension.
    """

    scales: Tuple[float, ...]
    zero_points: Tuple[int, ...]
    axis: int


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape, dtype and quantisation of one model input or output.

    Attributes:
        name: tensor name as the backend reports it; feeds and outputs are keyed by it.
        shape: one entry per dimension; ``None`` where the dimension is dynamic (batch, H, W of a
            dynamic-shape model), e.g. ``(None, 3, 640, 640)``.
        dtype: numpy dtype of the tensor (``np.dtype("float32")``, ``np.dtype("int8")``, ...).
        quantization: per-tensor ``(scale, zero_point)`` with ``real = scale * (q - zero_point)``, or
            ``None`` for float tensors, unquantised integer tensors, and per-axis quantised tensors.
        per_axis: per-axis quantisation parameters when the runtime reports more than one scale (rare
            for model inputs and outputs); ``quantization`` is then ``None`` so code that assumes a
            single scale cannot silently use channel 0's.
    """

    name: str
    shape: Tuple[Optional[int], ...]
    dtype: np.dtype
    quantization: Optional[Tuple[float, int]] = None
    per_axis: Optional[PerAxisQuantization] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(None if d is None else int(d) for d in self.shape))
        if self.quantization is not None:
            scale, zero_point = self.quantization
            object.__setattr__(self, "quantization", (float(scale), int(zero_point)))

    @property
    def is_dynamic(self) -> bool:
        """True when at least one dimension is dynamic (``None``)."""
        return any(d is None for d in self.shape)

    def accepts_shape(self, shape: Sequence[int]) -> bool:
        """True when a concrete ``shape`` fits this spec (same rank, equal static dimensions)."""
        return len(shape) == len(self.shape) and all(d is None or d == s for d, s in zip(self.shape, shape))

    def __str__(self) -> str:
        quant = f", quantization={self.quantization}" if self.quantization else ""
        return f"{self.name}: {format_shape(self.shape)} {self.dtype.name}{quant}"


@runtime_checkable
class Backend(Protocol):
    """One model loaded in one inference runtime.

    Attributes:
        name: registry name of the backend (``"onnxruntime"``, ``"tflite"``, ``"openvino"``).
        inputs: input tensors in the model's order.
        outputs: output tensors in the model's order; :meth:`infer` returns them in this order.
        metadata: custom text metadata stored in the model file (ONNX ``metadata_props``, OpenVINO
            ``rt_info`` flattened, TFLite metadata buffers that hold UTF-8 text). The EdgeSDK contract,
            when present, is under :data:`CONTRACT_KEY`.
    """

    name: str
    inputs: List[TensorSpec]
    outputs: List[TensorSpec]
    metadata: Dict[str, str]

    def infer(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the model once.

        Args:
            feeds: one array per input, keyed by input name, with the input's dtype and a shape that
                fits its spec (e.g. ``{"images": float32 (1, 3, 640, 640)}``).

        Returns:
            Raw outputs keyed by output name in :attr:`outputs` order, in the model's own dtypes. The
            arrays are owned by the caller (never views of runtime buffers the next call overwrites).

        Raises:
            FeedError: a feed is missing or extra, or has the wrong shape or dtype (a ``ValueError``).
            BackendError: the runtime failed while running the model.
        """
        ...

    def close(self) -> None:
        """Release the runtime's resources; further :meth:`infer` calls raise ``BackendError``."""
        ...

    def describe(self) -> dict:
        """Runtime version and the settings actually in use (providers, device, threads, delegates)."""
        ...

    def __enter__(self) -> "Backend":
        ...

    def __exit__(self, *exc: Any) -> None:
        ...


def format_shape(shape: Sequence[Optional[int]]) -> str:
    """``(1, 3, 640, 640)`` with ``?`` for dynamic dimensions: ``(?, 3, 640, 640)``."""
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def validate_feeds(specs: Sequence[TensorSpec], feeds: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    """Check feeds against input specs; return them as numpy arrays in spec order.

    No dtype casting happens: feeding float64 to a float32 input or float32 to an int8 input is an
    error, because silent conversion hides pre-processing bugs (an int8 model needs quantised data).

    Args:
        specs: the backend's input specs.
        feeds: arrays keyed by input name.

    Returns:
        ``{name: array}`` in ``specs`` order.

    Raises:
        FeedError: missing or extra names, wrong rank or static dimension, or wrong dtype.
    """
    if not isinstance(feeds, Mapping):
        raise FeedError(f"feeds: expected a dict {{input name: array}}, got {type(feeds).__name__}")
    expected = [s.name for s in specs]
    missing = [n for n in expected if n not in feeds]
    extra = [n for n in feeds if n not in expected]
    if missing or extra:
        raise FeedError(f"feeds: expected inputs {expected}, got {list(feeds)}"
                        + (f" (missing {missing})" if missing else "") + (f" (unexpected {extra})" if extra else ""))
    out: Dict[str, np.ndarray] = {}
    for spec in specs:
        value = feeds[spec.name]
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        if value.dtype != spec.dtype:
            quant = f" quantised with (scale, zero_point)={spec.quantization}" if spec.quantization else ""
            raise FeedError(f"input {spec.name!r}: expected dtype {spec.dtype.name}{quant}, got {value.dtype.name}")
        if not spec.accepts_shape(value.shape):
            raise FeedError(f"input {spec.name!r}: expected shape {format_shape(spec.shape)}, got {tuple(value.shape)}")
        out[spec.name] = value
    return out


def check_model_file(path: "str | os.PathLike", expected: str) -> Path:
    """Fail early, with a clear message, on a missing, non-regular or empty model file.

    Args:
        path: model file path.
        expected: what the file should be, for messages (``"an ONNX model (.onnx)"``).

    Returns:
        The path as :class:`~pathlib.Path`.

    Raises:
        ModelFileError: the file does not exist, is a directory, or is empty.
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"expected {expected} at {p}, but the file does not exist")
    if not p.is_file():
        raise ModelFileError(f"expected {expected} at {p}, got a directory or special file")
    size = p.stat().st_size
    if size == 0:
        raise ModelFileError(f"{p} is empty (0 bytes), expected {expected}; re-export or download it again")
    return p


class BackendBase:
    """Shared behaviour of the built-in backends (feed validation, close, context manager).

    Subclasses set ``name``, ``path``, ``inputs``, ``outputs`` and ``metadata`` in ``__init__`` and
    implement :meth:`_run` (validated feeds → outputs), :meth:`_close` and :meth:`_describe`.
    """

    name: str = "base"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.inputs: List[TensorSpec] = []
        self.outputs: List[TensorSpec] = []
        self.metadata: Dict[str, str] = {}
        self._closed = False

    # -- public API --------------------------------------------------------------------------------
    def infer(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Validate ``feeds`` and run the model; see :meth:`Backend.infer`."""
        if self._closed:
            raise BackendError(f"{self.name} backend for {self.path.name} is closed; create a new one")
        checked = validate_feeds(self.inputs, feeds)
        return self._run(checked)

    def close(self) -> None:
        """Release the runtime's resources (idempotent)."""
        if not self._closed:
            self._closed = True
            try:
                self._close()
            except Exception:  # noqa: BLE001 - closing must not raise
                logger.debug("error while closing %s backend", self.name, exc_info=True)

    def describe(self) -> dict:
        """Backend name, model path, tensors, and the runtime's settings in use."""
        info: Dict[str, Any] = {
            "backend": self.name,
            "path": str(self.path),
            "inputs": [str(s) for s in self.inputs],
            "outputs": [str(s) for s in self.outputs],
            "closed": self._closed,
        }
        info.update(self._describe())
        return info

    def __enter__(self) -> "BackendBase":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001
            pass

    def __repr__(self) -> str:
        ins = ", ".join(str(s) for s in self.inputs)
        return f"{type(self).__name__}({self.path.name!r}, inputs=[{ins}])"

    # -- hooks -------------------------------------------------------------------------------------
    def _run(self, feeds: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _describe(self) -> dict:
        return {}
