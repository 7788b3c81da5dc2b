"""Ultralytics-style YOLO heads: anchor-free v8/11 (and v5 with objectness), and NMS-free end-to-end heads.

Spec ``{"type": "yolo"}`` keys:
    version: ``"v8"`` (default; v8, v9, v11 and other anchor-free heads: ``[1, 4 + nc, N]`` with box
        ``cx, cy, w, h`` and per-class scores already through a sigmoid) or ``"v5"`` (``[1, N, 5 + nc]``:
        box, objectness, class scores; the score is ``objectness * class score``).
    num_classes: number of classes (default ``len(labels)``; with neither, the smaller axis is taken
        as the channel axis). It identifies the channel axis: the one of size ``4 + nc`` (``5 + nc``
        for v5). When both axes have that size the layout is ambiguous and channels-first is assumed
        (what Ultralytics exports).
    normalized: ``true`` when coordinates are in 0..1 of the input (multiplied by the input size).
    output: name of the output to read (default: the first output whose shape fits).

Spec ``{"type": "yolo_end2end"}`` (YOLOv10 / YOLO26 style ``[1, K, 6]`` rows ``x1, y1, x2, y2, score,
class``, sorted or not; ``[1, 6, K]`` is accepted too) keys: ``normalized``, ``output``. No NMS is run.

Both follow Ultralytics' ``non_max_suppression`` (single label per box): confidence filter (strictly
greater), class filter, ``max_nms`` cap on the best candidates, NMS per class (or agnostic), ``max_det``.
Boxes come back in network-input pixels.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from sdk.errors import DecodeError, ModelContractError
from sdk.results import Detections

from ._base import BaseDecoder, finish_detections, shape_str
from .options import PostprocessOptions

__all__ = ["YoloDecoder", "YoloEnd2EndDecoder"]


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(K, 4) cx, cy, w, h → (K, 4) float32 x1, y1, x2, y2."""
    out = np.empty((b.shape[0], 4), np.float32)
    half_w, half_h = b[:, 2] * 0.5, b[:, 3] * 0.5
    out[:, 0] = b[:, 0] - half_w
    out[:, 1] = b[:, 1] - half_h
    out[:, 2] = b[:, 0] + half_w
    out[:, 3] = b[:, 1] + half_h
    return out


def _matrix(arr: np.ndarray) -> Optional[np.ndarray]:
    """(1, A, B) or (A, B) → (A, B); None for anything else."""
    if arr.ndim == 3 and arr.shape[0] == 1:
        return arr[0]
    if arr.ndim == 2:
        return arr
    return None


class YoloDecoder(BaseDecoder):
    """Decoder for anchor-free YOLO heads (``[1, 4 + nc, N]`` or ``[1, N, 4 + nc]``) and v5 heads."""

    type_name = "yolo"
    task = "detect"
    spec_keys = ("version", "num_classes", "normalized", "output")

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        super().__init__(spec, output_names=output_names, labels=labels)
        self.version = self._choice("version", ("v8", "v5"), "v8")
        nc = self.spec.get("num_classes", len(self.labels) or None)
        if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 1):
            raise ModelContractError(f"contract.decoder.num_classes: expected an int >= 1, got {nc!r}")
        self.num_classes: Optional[int] = nc
        self.normalized = self._bool("normalized", False)
        self._name = self._output_name()
        self._extra = 4 if self.version == "v8" else 5
        self._layouts: Dict[Tuple[int, int], Union[Tuple[bool, int], str]] = {}

    # -- layout ------------------------------------------------------------------------------------------
    def _expected(self) -> str:
        if self.num_classes:
            c = self._extra + self.num_classes
            return (f"[1, {c}, N] or [1, N, {c}] ({self.version}: {self._extra} + {self.num_classes} classes)")
        return f"[1, {self._extra} + nc, N] or [1, N, {self._extra} + nc]"

    def _layout(self, ab: Tuple[int, int]) -> Union[Tuple[bool, int], str]:
        """(channels_first, nc) for a (A, B) output, or an error message."""
        cached = self._layouts.get(ab)
        if cached is not None:
            return cached
        a, b = ab
        result: Union[Tuple[bool, int], str]
        if self.num_classes:
            c = self._extra + self.num_classes
            if a == c:                       # also when a == b == c: channels-first (Ultralytics) wins
                result = (True, self.num_classes)
            elif b == c:
                result = (False, self.num_classes)
            else:
                other = 5 if self._extra == 4 else 4
                hint = ""
                if self.num_classes + other in ab:
                    hint = (f"; an axis of {self.num_classes + other} suggests a "
                            f"{'v5 (objectness)' if other == 5 else 'v8 (anchor-free)'} head: set decoder.version")
                elif len(self.labels) and "num_classes" not in self.spec:
                    hint = f"; are the labels ({len(self.labels)}) those of this model? or set decoder.num_classes"
                result = f"expected {self._expected()}, got [1, {a}, {b}]{hint}"
        else:
            small = min(a, b)
            if small <= self._extra:
                result = f"expected {self._expected()} with nc >= 1, got [1, {a}, {b}]"
            else:
                result = (a <= b, small - self._extra)
        self._layouts[ab] = result
        return result

    def _fits(self, arr: np.ndarray) -> bool:
        m = _matrix(arr)
        return m is not None and not isinstance(self._layout(m.shape), str)

    def _select(self, outputs: Mapping[str, np.ndarray]) -> Tuple[np.ndarray, bool]:
        """(the head as a (A, B) matrix, channels_first) from the named output, else the first that fits.

        Raises:
            DecodeError: expected vs got.
        """
        if self._name is not None:
            arr = self._pick(outputs, self._name)
        else:
            ordered = self._ordered(outputs)
            fitting = [a for a in map(np.asarray, ordered.values()) if self._fits(a)]
            arr = fitting[0] if fitting else np.asarray(next(iter(ordered.values())))
        m = _matrix(arr)
        if m is None:
            raise DecodeError(f"decoder 'yolo': expected {self._expected()}, got {shape_str(arr)}"
                              + ("" if len(outputs) == 1 else f" (outputs: {self._shapes(outputs)})"))
        layout = self._layout(m.shape)
        if isinstance(layout, str):
            raise DecodeError(f"decoder 'yolo': {layout}"
                              + ("" if len(outputs) == 1 else f" (outputs: {self._shapes(outputs)})"))
        return m, layout[0]

    @staticmethod
    def _shapes(outputs: Mapping[str, np.ndarray]) -> str:
        return ", ".join(f"{n} {shape_str(a)}" for n, a in outputs.items())

    # -- decoding ----------------------------------------------------------------------------------------
    def __call__(self, outputs: Mapping[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Detections:
        """Decode one frame's YOLO output.

        Args:
            outputs: name → float array; the head is ``[1, 4 + nc, N]`` / ``[1, N, 4 + nc]`` (v8) or
                ``[1, N, 5 + nc]`` / ``[1, 5 + nc, N]`` (v5).
            input_hw: network input (height, width), used when ``normalized``.
            options: thresholds and limits.

        Returns:
            Detections in network-input pixels, best first.

        Raises:
            DecodeError: no output has a YOLO shape (message: expected vs got).
        """
        m, channels_first = self._select(outputs)
        x = np.asarray(m, dtype=np.float32)
        if self.version == "v8" and not channels_first:
            # the per-row class max is ~2x faster on the channels-first layout, even with the transpose
            x, channels_first = cv2.transpose(np.ascontiguousarray(x)), True
        with np.errstate(invalid="ignore", over="ignore"):
            rows, conf, cls = (self._v8 if self.version == "v8" else self._v5)(x, channels_first, options)
        if rows.shape[0] == 0:
            return Detections.empty(self.labels)
        box = rows[:, :4]
        if self.normalized:
            h, w = input_hw
            box = box * np.array([w, h, w, h], np.float32)
        return finish_detections(_cxcywh_to_xyxy(box), conf, cls, options, self.labels)

    def _drop_bad(self, x: np.ndarray, channels_first: bool, score: np.ndarray) -> None:
        """Count rows whose box or ``score`` is NaN/Inf and set their ``score`` to -inf (so they are dropped).

        ``score`` is the per-row best class score (v8; NaN/+Inf in any class score propagate into it) or the
        objectness (v5, whose class scores are checked on the candidates). A -Inf class score that is not
        the row's best changes nothing and is not counted.
        """
        box = x[:4] if channels_first else x[:, :4].T
        box_sum = box[0] + box[1] + box[2] + box[3]
        bad = np.flatnonzero(~(np.isfinite(box_sum) & np.isfinite(score)))
        if bad.size:
            # a finite box can overflow the sum: confirm exactly on the few flagged rows
            really = ~(np.isfinite(box[:, bad]).all(axis=0) & np.isfinite(score[bad]))
            bad = bad[really]
            self._count_nonfinite(bad.size)
            score[bad] = -np.inf

    @staticmethod
    def _gather(x: np.ndarray, channels_first: bool, idx: np.ndarray) -> np.ndarray:
        """Candidate rows (K, C) from the head."""
        return x[:, idx].T if channels_first else x[idx]

    def _v8(self, x: np.ndarray, channels_first: bool,
            options: PostprocessOptions) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        scores = x[4:] if channels_first else x[:, 4:]
        best = scores.max(axis=0 if channels_first else 1)
        self._drop_bad(x, channels_first, best)
        idx = np.flatnonzero(best > options.conf_threshold)
        rows = self._gather(x, channels_first, idx)
        cls = rows[:, 4:].argmax(axis=1).astype(np.int64)
        return rows, best[idx], cls

    def _v5(self, x: np.ndarray, channels_first: bool,
            options: PostprocessOptions) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        obj = np.array(x[4] if channels_first else x[:, 4], dtype=np.float32)
        self._drop_bad(x, channels_first, obj)
        idx = np.flatnonzero(obj > options.conf_threshold)          # class scores <= 1: a cheap pre-filter
        rows = self._gather(x, channels_first, idx)
        finite = np.isfinite(rows[:, 5:]).all(axis=1)
        if not finite.all():
            self._count_nonfinite(int(finite.size - np.count_nonzero(finite)))
            rows = rows[finite]
        cls_scores = rows[:, 5:] * rows[:, 4:5]
        cls = cls_scores.argmax(axis=1).astype(np.int64)
        conf = cls_scores[np.arange(cls.size), cls].astype(np.float32)
        keep = conf > options.conf_threshold
        return rows[keep], conf[keep], cls[keep]


class YoloEnd2EndDecoder(BaseDecoder):
    """Decoder for NMS-free heads: ``[1, K, 6]`` rows ``x1, y1, x2, y2, score, class``."""

    type_name = "yolo_end2end"
    task = "detect"
    spec_keys = ("normalized", "output")

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        super().__init__(spec, output_names=output_names, labels=labels)
        self.normalized = self._bool("normalized", False)
        self._name = self._output_name()

    @staticmethod
    def _rows(arr: np.ndarray) -> Optional[np.ndarray]:
        m = _matrix(arr)
        if m is None:
            return None
        if m.shape[1] == 6:
            return m
        if m.shape[0] == 6:
            return m.T
        return None

    def __call__(self, outputs: Mapping[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Detections:
        """Decode one frame's end-to-end output.

        Args:
            outputs: name → float array of shape (1, K, 6) (or (K, 6), (1, 6, K)).
            input_hw: network input (height, width), used when ``normalized``.
            options: ``conf_threshold``, ``classes``, ``max_det`` apply (no NMS).

        Returns:
            Detections in network-input pixels, best first.

        Raises:
            DecodeError: no output has shape (1, K, 6).
        """
        arr = self._pick(outputs, self._name, lambda a: self._rows(a) is not None, "[1, K, 6]")
        rows = self._rows(arr)
        if rows is None:
            raise DecodeError(f"decoder 'yolo_end2end': expected [1, K, 6] (x1, y1, x2, y2, score, class), "
                              f"got {shape_str(arr)}")
        rows = np.asarray(rows, dtype=np.float32)
        finite = np.isfinite(rows).all(axis=1)
        self._count_nonfinite(int(rows.shape[0] - np.count_nonzero(finite)))
        with np.errstate(invalid="ignore"):
            keep = finite & (rows[:, 4] > options.conf_threshold)
        rows = rows[keep]
        xyxy = np.ascontiguousarray(rows[:, :4])
        if self.normalized:
            h, w = input_hw
            xyxy *= np.array([w, h, w, h], np.float32)
        cls = np.rint(rows[:, 5]).astype(np.int64)
        return finish_detections(xyxy, rows[:, 4].copy(), cls, options, self.labels, run_nms=False)
