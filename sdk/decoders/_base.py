"""Helpers shared by the decoders: spec checking, output lookup, NaN/Inf accounting, filtering and NMS."""
from __future__ import annotations

import difflib
import logging
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from sdk.errors import DecodeError, ModelContractError
from sdk.results import Detections

from .options import PostprocessOptions

__all__ = ["BaseDecoder", "finish_detections", "shape_str"]


def shape_str(arr: Any) -> str:
    """``[1, 84, 8400]``-style text for an array's shape."""
    return str(list(np.shape(arr)))


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class BaseDecoder:
    """Common state of a decoder: its spec, output names, labels and the NaN/Inf counter.

    Subclasses set ``type_name``, ``task`` and ``spec_keys`` (allowed keys besides ``type``) and
    implement ``__call__(outputs, *, input_hw, options)``.

    Attributes:
        nonfinite_dropped: output rows containing NaN/Inf dropped so far (detection decoders).
    """

    type_name = "?"
    task = "detect"
    spec_keys: Tuple[str, ...] = ()

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        allowed = ("type",) + tuple(self.spec_keys)
        for key in spec:
            if key not in allowed:
                raise ModelContractError(
                    f"contract.decoder: unknown key {key!r} for decoder {self.type_name!r}{_suggest(key, allowed)}; "
                    f"known keys: {', '.join(allowed)}")
        self.spec = dict(spec)
        self.output_names = list(output_names)
        self.labels = tuple(labels)
        self.nonfinite_dropped = 0
        self._logger = logging.getLogger(type(self).__module__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    # -- spec helpers ----------------------------------------------------------------------------------
    def _choice(self, key: str, options: Sequence[Any], default: Any) -> Any:
        value = self.spec.get(key, default)
        if value not in options:
            hint = _suggest(value, [str(o) for o in options]) if isinstance(value, str) else ""
            raise ModelContractError(f"contract.decoder.{key}: expected one of "
                                     f"{', '.join(repr(o) for o in options)}, got {value!r}{hint}")
        return value

    def _bool(self, key: str, default: bool) -> bool:
        value = self.spec.get(key, default)
        if not isinstance(value, bool):
            raise ModelContractError(f"contract.decoder.{key}: expected true or false, got {value!r}")
        return value

    def _output_name(self, key: str = "output") -> Optional[str]:
        name = self.spec.get(key)
        if name is not None and not isinstance(name, str):
            raise ModelContractError(f"contract.decoder.{key}: expected an output name (string), got {name!r}")
        return name

    # -- outputs ---------------------------------------------------------------------------------------
    def _ordered(self, outputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Outputs in ``output_names`` order first, then any others."""
        if not outputs:
            raise DecodeError(f"decoder {self.type_name!r}: expected at least one model output, got none")
        ordered = {n: outputs[n] for n in self.output_names if n in outputs}
        ordered.update({n: a for n, a in outputs.items() if n not in ordered})
        return ordered

    def _pick(self, outputs: Mapping[str, np.ndarray], name: Optional[str],
              fits: Optional[Callable[[np.ndarray], bool]] = None, expected: str = "") -> np.ndarray:
        """The output called ``name``, else the first (in ``output_names`` order) for which ``fits`` holds."""
        if name is not None:
            if name not in outputs:
                raise DecodeError(f"decoder {self.type_name!r}: expected an output named {name!r}, got "
                                  f"{sorted(outputs)}{_suggest(name, list(outputs))}")
            return np.asarray(outputs[name])
        ordered = self._ordered(outputs)
        if fits is None:
            return np.asarray(next(iter(ordered.values())))
        for arr in ordered.values():
            arr = np.asarray(arr)
            if fits(arr):
                return arr
        got = ", ".join(f"{n} {shape_str(a)}" for n, a in ordered.items())
        raise DecodeError(f"decoder {self.type_name!r}: expected an output of shape {expected}, got {got}")

    # -- NaN / Inf -------------------------------------------------------------------------------------
    def _count_nonfinite(self, n: int) -> None:
        """Record ``n`` rows dropped for NaN/Inf; warn the first time."""
        if n <= 0:
            return
        if self.nonfinite_dropped == 0:
            self._logger.warning(
                "decoder %r dropped %d output rows containing NaN/Inf (a broken quantisation or an fp16 "
                "overflow?); later drops are only counted in .nonfinite_dropped", self.type_name, n)
        self.nonfinite_dropped += int(n)


def finish_detections(xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray, options: PostprocessOptions,
                      labels: Sequence[str], *, run_nms: bool = True) -> Detections:
    """Class filter, ``max_nms`` cap, NMS (per class or agnostic) and ``max_det`` on decoded candidates.

    Args:
        xyxy: (K, 4) float32 boxes in input pixels.
        conf: (K,) float32 scores, already above the confidence threshold.
        cls: (K,) int64 class ids.
        options: thresholds and limits.
        labels: class names attached to the result.
        run_nms: run NMS (False for NMS-free heads: just sort by score).

    Returns:
        Detections sorted by decreasing confidence (at most ``options.max_det``).
    """
    if options.classes is not None and len(cls):
        keep = np.isin(cls, np.asarray(options.classes, np.int64))
        xyxy, conf, cls = xyxy[keep], conf[keep], cls[keep]
    n = len(conf)
    if n == 0:
        return Detections.empty(labels)
    if n > options.max_nms:
        top = np.argpartition(-conf, options.max_nms - 1)[:options.max_nms]
        xyxy, conf, cls = xyxy[top], conf[top], cls[top]
    if run_nms and n > 1:
        from sdk.ops import batched_nms, nms

        if options.agnostic:
            keep = nms(xyxy, conf, options.iou_threshold)
        else:
            keep = batched_nms(xyxy, conf, cls, options.iou_threshold)
        keep = np.asarray(keep, np.int64)
    elif n > 1:
        keep = np.argsort(-conf, kind="stable")
    else:
        keep = np.zeros(1, np.int64)
    keep = keep[:options.max_det]
    return Detections(xyxy=xyxy[keep], confidence=conf[keep], class_id=cls[keep], labels=labels)
