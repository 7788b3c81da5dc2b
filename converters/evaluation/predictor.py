"""The one interface every evaluator calls: ``predictor(image_bgr_uint8) -> Detections | Classification | Embedding``.

A model loaded with ``sdk.load`` already is a :class:`Predictor`; a PyTorch model (or anything else) becomes one
through a function wrapped in :class:`CallablePredictor`, so exported artifacts and their PyTorch reference go
through exactly the same evaluation code.
"""
from __future__ import annotations

from typing import Callable, Optional, Protocol, Tuple, Type, Union, runtime_checkable

import numpy as np

from sdk.results import Classification, Detections, Embedding

__all__ = ["Predictor", "CallablePredictor", "Result", "check_result"]

Result = Union[Detections, Classification, Embedding]
_RESULT_TYPES = (Detections, Classification, Embedding)


@runtime_checkable
class Predictor(Protocol):
    """Anything called on one BGR uint8 image (H, W, 3) that returns a result in that image's pixels.

    ``sdk.Model`` satisfies it. For detection mAP, run models with a low confidence threshold (e.g.
    ``lambda im: model(im, conf_threshold=0.001)`` in a :class:`CallablePredictor`): COCO AP integrates over
    all scores, and a high threshold cuts the tail of the precision/recall curve.
    """

    def __call__(self, image: np.ndarray) -> Result:  # pragma: no cover - protocol
        ...


class CallablePredictor:
    """Make a :class:`Predictor` from a function, checking what it returns.

    Args:
        fn: ``fn(image_bgr_uint8) -> Detections | Classification | Embedding``.
        name: shown in reports and error messages (default: the function's name).

    Raises:
        TypeError (when called): ``fn`` returned something other than a result type.
    """

    def __init__(self, fn: Callable[[np.ndarray], Result], *, name: Optional[str] = None) -> None:
        if not callable(fn):
            raise TypeError(f"CallablePredictor: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, image: np.ndarray) -> Result:
        out = self.fn(image)
        if not isinstance(out, _RESULT_TYPES):
            raise TypeError(f"predictor {self.name!r}: expected Detections, Classification or Embedding, "
                            f"got {type(out).__name__}")
        return out

    def __repr__(self) -> str:
        return f"CallablePredictor({self.name})"


def check_result(out: object, expected: Union[Type, Tuple[Type, ...]], index: int) -> Result:
    """Return ``out`` when it is an ``expected`` result, else raise TypeError naming the item index."""
    if not isinstance(out, expected):
        want = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
        raise TypeError(f"item {index}: expected the predictor to return {want}, got {type(out).__name__}")
    return out  # type: ignore[return-value]


def predictor_name(predictor: object) -> str:
    """A short description of a predictor for reports."""
    name = getattr(predictor, "name", None)
    if isinstance(name, str):
        return name
    path = getattr(predictor, "path", None)
    return str(path) if path is not None else type(predictor).__name__
