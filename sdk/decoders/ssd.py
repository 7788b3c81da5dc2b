"""SSD heads with anchors: box regressions ``[1, N, 4]`` + class scores ``[1, N, C]``.

Spec ``{"type": "ssd"}`` keys:
    anchors: ``[[cx, cy, w, h], ...]`` (N rows) normalised to 0..1 of the input (required).
    anchor_order: ``"xywh"`` (default: rows are ``cx, cy, w, h``) or ``"yxhw"`` (``cy, cx, h, w``, as
        TFLite anchor tensors are often stored).
    variances: 4 numbers, default ``[0.1, 0.1, 0.2, 0.2]``; torchvision's ``BoxCoder`` weights
        ``(10, 10, 5, 5)`` are their inverses.
    score: ``"softmax"`` (default, torchvision SSD) or ``"sigmoid"`` (TF SSD) applied to the logits.
    background_class: index of the background score column (default 0) or ``null`` for none.
    box_order: regression order, ``"xywh"`` (default: ``dx, dy, dw, dh``) or ``"yxhw"`` (TF:
        ``dy, dx, dh, dw``).
    outputs: ``{"boxes": name, "scores": name}`` (default: the output whose last axis is 4 is the boxes).

Decoding follows torchvision's ``BoxCoder.decode_single``: ``cx = dx * v0 * w_a + cx_a``,
``w = exp(min(dw * v2, log(1000 / 16))) * w_a``; boxes are clipped to the input like torchvision's SSD.
Every (anchor, class) pair above the threshold is a candidate (multi-label, as torchvision), then
``max_nms`` best, NMS per class (or agnostic), ``max_det``.

Class ids: the background column is removed, so id ``k`` is the k-th foreground class and ``labels``
list foreground classes only — unless ``labels`` has one entry per score column (background included,
like torchvision's COCO category list), in which case the score column index is the class id.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from sdk.errors import DecodeError, ModelContractError
from sdk.results import Detections

from ._base import BaseDecoder, finish_detections, shape_str
from .options import PostprocessOptions

__all__ = ["SSDDecoder"]

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _rows(arr: np.ndarray) -> Optional[np.ndarray]:
    """(1, N, K), (N, K) or (1, N, 1, K) → (N, K); None when more than one leading axis is not 1."""
    if arr.ndim < 2 or sum(1 for d in arr.shape[:-1] if d != 1) > 1:
        return None
    return arr.reshape(-1, arr.shape[-1])


class SSDDecoder(BaseDecoder):
    """Decoder for anchor-based SSD heads (see the module docstring for the spec)."""

    type_name = "ssd"
    task = "detect"
    spec_keys = ("anchors", "anchor_order", "variances", "score", "background_class", "box_order", "outputs")

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        super().__init__(spec, output_names=output_names, labels=labels)
        if "anchors" not in self.spec:
            raise ModelContractError("contract.decoder.anchors: expected [[cx, cy, w, h], ...] for an 'ssd' "
                                     "decoder, got nothing")
        try:
            anchors = np.asarray(self.spec["anchors"], dtype=np.float32)
        except (TypeError, ValueError):
            anchors = np.zeros((0,))
        if anchors.ndim != 2 or anchors.shape[1] != 4 or anchors.shape[0] == 0:
            raise ModelContractError(f"contract.decoder.anchors: expected shape (N, 4) ([[cx, cy, w, h], ...]), "
                                     f"got {shape_str(anchors)}")
        if not np.isfinite(anchors).all():
            raise ModelContractError("contract.decoder.anchors: expected finite numbers, got NaN/Inf")
        if self._choice("anchor_order", ("xywh", "yxhw"), "xywh") == "yxhw":
            anchors = anchors[:, [1, 0, 3, 2]]
        self.anchors = np.ascontiguousarray(anchors)                   # (N, 4) cx, cy, w, h
        variances = self.spec.get("variances", [0.1, 0.1, 0.2, 0.2])
        try:
            var = np.asarray(variances, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            var = np.zeros(0, np.float32)
        if var.shape != (4,) or not (var > 0).all():
            raise ModelContractError(f"contract.decoder.variances: expected 4 numbers > 0, got {variances!r}")
        self.variances = var
        self.score = self._choice("score", ("softmax", "sigmoid"), "softmax")
        bg = self.spec.get("background_class", 0)
        if bg is not None and (isinstance(bg, bool) or not isinstance(bg, int) or bg < 0):
            raise ModelContractError(f"contract.decoder.background_class: expected a class index >= 0 or null, "
                                     f"got {bg!r}")
        self.background_class: Optional[int] = bg
        self._yx = self._choice("box_order", ("xywh", "yxhw"), "xywh") == "yxhw"
        names = self.spec.get("outputs") or {}
        if not isinstance(names, Mapping) or set(names) - {"boxes", "scores"}:
            raise ModelContractError(f"contract.decoder.outputs: expected {{'boxes': name, 'scores': name}}, "
                                     f"got {names!r}")
        self._names = dict(names)

    # -- outputs -----------------------------------------------------------------------------------------
    def _split(self, outputs: Mapping[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        n = self.anchors.shape[0]
        if "boxes" in self._names or "scores" in self._names:
            boxes = self._pick(outputs, self._names.get("boxes"),
                               lambda a: a.shape[-1:] == (4,), f"[1, {n}, 4]")
            scores = self._pick(outputs, self._names.get("scores"),
                                lambda a: a is not boxes and a.ndim >= 2, f"[1, {n}, C]")
            return boxes, scores
        ordered = [np.asarray(a) for a in self._ordered(outputs).values()]
        four = [a for a in ordered if a.ndim >= 2 and a.shape[-1] == 4]
        if len(ordered) < 2:
            raise DecodeError(f"decoder 'ssd': expected two outputs (boxes [1, {n}, 4] and scores [1, {n}, C]), "
                              f"got {[shape_str(a) for a in ordered]}")
        if len(four) == 2 and len(ordered) == 2:      # C == 4 as well: tell them apart by name
            named = self._by_name(outputs)
            if named is not None:
                return named
        if len(four) != 1:
            raise DecodeError(f"decoder 'ssd': expected exactly one output with last axis 4 (the boxes), got "
                              f"{[shape_str(a) for a in ordered]}; name them in decoder.outputs "
                              f"{{'boxes': ..., 'scores': ...}}")
        boxes = four[0]
        scores = next(a for a in ordered if a is not boxes)
        return boxes, scores

    @staticmethod
    def _by_name(outputs: Mapping[str, np.ndarray]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        box_hints, score_hints = ("box", "loc", "reg"), ("score", "cls", "class", "conf", "logit")
        boxes = [n for n in outputs if any(h in n.lower() for h in box_hints)]
        scores = [n for n in outputs if any(h in n.lower() for h in score_hints)]
        if len(boxes) == 1 and len(scores) == 1 and boxes != scores:
            return np.asarray(outputs[boxes[0]]), np.asarray(outputs[scores[0]])
        return None

    # -- decoding ----------------------------------------------------------------------------------------
    def decode_boxes(self, regressions: np.ndarray, anchors: np.ndarray, input_hw: Tuple[int, int]) -> np.ndarray:
        """Decode regressions against anchors.

        Args:
            regressions: (K, 4) in the model's ``box_order``.
            anchors: (K, 4) normalised ``cx, cy, w, h``.
            input_hw: network input (height, width).

        Returns:
            (K, 4) float32 ``x1, y1, x2, y2`` in input pixels (not clipped).
        """
        reg = regressions[:, [1, 0, 3, 2]] if self._yx else regressions
        v = self.variances
        h, w = input_hw
        aw, ah = anchors[:, 2], anchors[:, 3]
        cx = reg[:, 0] * v[0] * aw + anchors[:, 0]
        cy = reg[:, 1] * v[1] * ah + anchors[:, 1]
        with np.errstate(over="ignore"):
            bw = np.exp(np.minimum(reg[:, 2] * v[2], BBOX_XFORM_CLIP)) * aw
            bh = np.exp(np.minimum(reg[:, 3] * v[3], BBOX_XFORM_CLIP)) * ah
        out = np.empty((reg.shape[0], 4), np.float32)
        out[:, 0] = (cx - 0.5 * bw) * w
        out[:, 1] = (cy - 0.5 * bh) * h
        out[:, 2] = (cx + 0.5 * bw) * w
        out[:, 3] = (cy + 0.5 * bh) * h
        return out

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        if self.score == "sigmoid":
            with np.errstate(over="ignore"):
                return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def __call__(self, outputs: Mapping[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Detections:
        """Decode one frame's SSD outputs.

        Args:
            outputs: name → float arrays: boxes (1, N, 4) and scores (1, N, C), N = number of anchors.
            input_hw: network input (height, width).
            options: thresholds and limits.

        Returns:
            Detections in network-input pixels, best first.

        Raises:
            DecodeError: missing outputs, or shapes that do not match the anchors.
        """
        n = self.anchors.shape[0]
        boxes_arr, scores_arr = self._split(outputs)
        reg, logits = _rows(boxes_arr), _rows(scores_arr)
        if reg is None or reg.shape != (n, 4):
            raise DecodeError(f"decoder 'ssd': expected boxes of shape [1, {n}, 4] ({n} anchors), "
                              f"got {shape_str(boxes_arr)}")
        if logits is None or logits.shape[0] != n:
            raise DecodeError(f"decoder 'ssd': expected scores of shape [1, {n}, C] ({n} anchors), "
                              f"got {shape_str(scores_arr)}")
        columns = logits.shape[1]
        bg = self.background_class
        if bg is not None and bg >= columns:
            raise DecodeError(f"decoder 'ssd': expected background_class < {columns} score columns, got {bg}")
        reg = np.asarray(reg, np.float32)
        logits = np.asarray(logits, np.float32)
        finite = np.isfinite(reg).all(axis=1) & np.isfinite(logits).all(axis=1)
        n_bad = int(n - np.count_nonzero(finite))
        if n_bad:
            self._count_nonfinite(n_bad)
            reg, logits, anchors = reg[finite], logits[finite], self.anchors[finite]
        else:
            anchors = self.anchors
        probs = self._probabilities(logits)
        col_ids = np.arange(columns, dtype=np.int64)
        if bg is not None:
            probs = np.delete(probs, bg, axis=1)
            col_ids = np.delete(col_ids, bg)
        # class id: foreground index, or the raw column when labels include the background
        class_of_col = col_ids if (bg is not None and len(self.labels) == columns) \
            else np.arange(col_ids.size, dtype=np.int64)
        a_idx, c_idx = np.nonzero(probs > options.conf_threshold)
        if a_idx.size == 0:
            return Detections.empty(self.labels)
        conf = probs[a_idx, c_idx]
        xyxy = self.decode_boxes(reg[a_idx], anchors[a_idx], input_hw)
        h, w = input_hw
        np.clip(xyxy[:, 0::2], 0, w, out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, h, out=xyxy[:, 1::2])
        return finish_detections(xyxy, conf, class_of_col[c_idx], options, self.labels)
