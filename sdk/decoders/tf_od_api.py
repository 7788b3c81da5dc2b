"""Already post-processed detectors: TF Object Detection API / ``TFLite_Detection_PostProcess`` outputs.

Spec ``{"type": "tf_od_api"}`` keys:
    outputs: ``{"boxes": name, "classes": name, "scores": name, "num_detections": name}`` (optional).
        Without it, outputs are recognised by name (``box``, ``class``, ``score``, ``num`` in the name),
        else by shape: boxes ``[1, N, 4]``, num_detections ``[1]`` or a scalar, and of the two ``[1, N]``
        outputs the integral-valued one is the classes (when both are integral, the one with values
        above 1; when still ambiguous, the first in output order, as ``TFLite_Detection_PostProcess``
        emits boxes, classes, scores, num_detections).
    label_offset: subtracted from the class values (1 for label maps that start at 1; default 0).

Boxes arrive normalised ``ymin, xmin, ymax, xmax`` and come back as ``x1, y1, x2, y2`` in input
pixels; ``conf_threshold``, ``classes`` and ``max_det`` apply, no NMS is run.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from sdk.errors import DecodeError, ModelContractError
from sdk.results import Detections

from ._base import BaseDecoder, finish_detections, shape_str
from .options import PostprocessOptions

__all__ = ["TFODAPIDecoder"]

ROLES = ("boxes", "classes", "scores", "num_detections")
_NAME_HINTS = {"boxes": ("box",), "classes": ("class",), "scores": ("score",), "num_detections": ("num",)}
_TF_NAMES = {"boxes": "detection_boxes", "classes": "detection_classes", "scores": "detection_scores",
             "num_detections": "num_detections"}


def _vector(arr: np.ndarray) -> Optional[np.ndarray]:
    """(1, N) or (N,) → (N,)."""
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[0] == 1):
        return arr.reshape(-1)
    return None


def _integral(v: np.ndarray) -> bool:
    finite = v[np.isfinite(v)]
    return bool(np.all(finite == np.rint(finite)))


def _above_one(v: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return bool(np.any(v[np.isfinite(v)] > 1))


class TFODAPIDecoder(BaseDecoder):
    """Decoder for detectors that already ran NMS (boxes, classes, scores, num_detections)."""

    type_name = "tf_od_api"
    task = "detect"
    spec_keys = ("outputs", "label_offset")

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        super().__init__(spec, output_names=output_names, labels=labels)
        names = self.spec.get("outputs") or {}
        if not isinstance(names, Mapping) or set(names) - set(ROLES) \
                or not all(isinstance(v, str) for v in names.values()):
            raise ModelContractError(f"contract.decoder.outputs: expected a mapping of {', '.join(ROLES)} to "
                                     f"output names, got {names!r}")
        missing = [r for r in ("boxes", "classes", "scores") if names and r not in names]
        if missing:
            raise ModelContractError(f"contract.decoder.outputs: expected names for boxes, classes and scores, "
                                     f"got no name for {missing}")
        self._names: Dict[str, str] = dict(names)
        offset = self.spec.get("label_offset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise ModelContractError(f"contract.decoder.label_offset: expected an int (0 or 1), got {offset!r}")
        self.label_offset = offset

    # -- recognising the outputs --------------------------------------------------------------------------
    def _by_name(self, outputs: Mapping[str, np.ndarray]) -> Optional[Dict[str, str]]:
        found: Dict[str, str] = {}
        for role, hints in _NAME_HINTS.items():
            if _TF_NAMES[role] in outputs:       # the TF Object Detection API's own names
                found[role] = _TF_NAMES[role]
                continue
            hits = [n for n in outputs if any(h in n.lower() for h in hints)]
            if len(hits) == 1:
                found[role] = hits[0]
        if all(r in found for r in ("boxes", "classes", "scores")) and len(set(found.values())) == len(found):
            return found
        return None

    def _by_shape(self, outputs: Mapping[str, np.ndarray]) -> Tuple[Dict[str, str], bool]:
        """(role → name, unambiguous)."""
        ordered = self._ordered(outputs)
        shapes = ", ".join(f"{n} {shape_str(a)}" for n, a in ordered.items())
        expected = "boxes [1, N, 4], classes [1, N], scores [1, N] and optionally num_detections [1]"
        boxes = [n for n, a in ordered.items() if np.ndim(a) in (2, 3) and np.shape(a)[-1] == 4]
        nums = [n for n, a in ordered.items() if np.size(a) == 1 and n not in boxes]
        if len(boxes) != 1 or len(nums) > 1:
            raise DecodeError(f"decoder 'tf_od_api': expected {expected}, got {shapes}; name them in "
                              f"decoder.outputs if the shapes are ambiguous")
        rest: List[str] = [n for n in ordered if n not in boxes and n not in nums]
        if len(rest) != 2:
            raise DecodeError(f"decoder 'tf_od_api': expected {expected}, got {shapes}")
        a, b = (np.asarray(ordered[n], np.float32) for n in rest)
        int_a, int_b = _integral(a), _integral(b)
        sure = True
        if int_a != int_b:
            classes = rest[0] if int_a else rest[1]
        else:
            big_a, big_b = _above_one(a), _above_one(b)
            if int_a and big_a != big_b:
                classes = rest[0] if big_a else rest[1]
            else:
                classes, sure = rest[0], False
        found = {"boxes": boxes[0], "classes": classes, "scores": rest[1] if classes == rest[0] else rest[0]}
        if nums:
            found["num_detections"] = nums[0]
        return found, sure

    def _resolve(self, outputs: Mapping[str, np.ndarray]) -> Dict[str, str]:
        if self._names:
            for role, name in self._names.items():
                if name not in outputs:
                    raise DecodeError(f"decoder 'tf_od_api': expected an output named {name!r} ({role}), "
                                      f"got {sorted(outputs)}")
            return self._names
        found = self._by_name(outputs)
        if found is not None:
            self._names = found
            return found
        found, sure = self._by_shape(outputs)
        if sure:
            self._names = found
        return found

    # -- decoding ----------------------------------------------------------------------------------------
    def __call__(self, outputs: Mapping[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Detections:
        """Convert one frame's post-processed outputs.

        Args:
            outputs: name → float arrays: boxes (1, N, 4) normalised ymin, xmin, ymax, xmax; classes
                (1, N); scores (1, N); num_detections (1,) or scalar (optional).
            input_hw: network input (height, width).
            options: ``conf_threshold``, ``classes``, ``max_det`` apply.

        Returns:
            Detections in network-input pixels, best first.

        Raises:
            DecodeError: outputs missing or of inconsistent shapes.
        """
        names = self._resolve(outputs)
        boxes_arr = np.asarray(outputs[names["boxes"]])
        batch_ok = boxes_arr.ndim == 2 or (boxes_arr.ndim == 3 and boxes_arr.shape[0] == 1)
        if not (batch_ok and boxes_arr.shape[-1] == 4):
            raise DecodeError(f"decoder 'tf_od_api': expected boxes of shape [1, N, 4], got {shape_str(boxes_arr)}")
        boxes = boxes_arr.reshape(-1, 4).astype(np.float32, copy=False)
        n = boxes.shape[0]
        vectors = {}
        for role in ("classes", "scores"):
            arr = np.asarray(outputs[names[role]])
            v = _vector(arr)
            if v is None or v.shape[0] != n:
                raise DecodeError(f"decoder 'tf_od_api': expected {role} of shape [1, {n}] to match boxes "
                                  f"{shape_str(boxes_arr)}, got {shape_str(arr)}")
            vectors[role] = v.astype(np.float32, copy=False)
        count = n
        if "num_detections" in names:
            num = np.asarray(outputs[names["num_detections"]], np.float32)
            if num.size != 1:
                raise DecodeError(f"decoder 'tf_od_api': expected num_detections of shape [1], got {shape_str(num)}")
            value = float(num.reshape(-1)[0])
            if np.isfinite(value):
                count = int(min(max(round(value), 0), n))
        boxes, scores, classes = boxes[:count], vectors["scores"][:count], vectors["classes"][:count]
        finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & np.isfinite(classes)
        self._count_nonfinite(int(count - np.count_nonzero(finite)))
        with np.errstate(invalid="ignore"):
            keep = finite & (scores > options.conf_threshold)
        h, w = input_hw
        b = boxes[keep]
        xyxy = np.empty((b.shape[0], 4), np.float32)
        xyxy[:, 0] = b[:, 1] * w
        xyxy[:, 1] = b[:, 0] * h
        xyxy[:, 2] = b[:, 3] * w
        xyxy[:, 3] = b[:, 2] * h
        cls = np.rint(classes[keep]).astype(np.int64) - self.label_offset
        return finish_detections(xyxy, scores[keep].copy(), cls, options, self.labels, run_nms=False)
