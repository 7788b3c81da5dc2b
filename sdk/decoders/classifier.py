"""Classifier heads: logits or probabilities ``[1, C]`` → top-k :class:`~sdk.results.Classification`.

Spec ``{"type": "classifier"}`` keys:
    activation: ``"softmax"`` (default), ``"sigmoid"`` (multi-label) or ``"none"`` (the model already
        outputs probabilities, or raw scores are wanted).
    output: name of the output to read (default: the first).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, Tuple

import numpy as np

from sdk.errors import DecodeError
from sdk.results import Classification

from ._base import BaseDecoder, shape_str
from .options import PostprocessOptions

__all__ = ["ClassifierDecoder", "softmax", "sigmoid"]


def softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (float32, same shape)."""
    x = np.asarray(x, np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Elementwise logistic function (float32, same shape), without overflow warnings."""
    x = np.asarray(x, np.float32)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def flat_vector(arr: np.ndarray, what: str, decoder: str) -> np.ndarray:
    """(1, C), (C,) or (1, C, 1, 1) → (C,); DecodeError otherwise."""
    arr = np.asarray(arr)
    lead = [d for d in arr.shape if d != 1]
    if arr.size == 0 or len(lead) > 1 or arr.ndim == 0 or (arr.ndim > 1 and arr.shape[0] != 1):
        raise DecodeError(f"decoder {decoder!r}: expected {what} of shape [1, C] (one frame), got {shape_str(arr)}")
    return arr.reshape(-1).astype(np.float32, copy=False)


class ClassifierDecoder(BaseDecoder):
    """Top-k classes from a ``[1, C]`` output."""

    type_name = "classifier"
    task = "classify"
    spec_keys = ("activation", "output")

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        super().__init__(spec, output_names=output_names, labels=labels)
        self.activation = self._choice("activation", ("softmax", "sigmoid", "none"), "softmax")
        self._name = self._output_name()

    def __call__(self, outputs: Mapping[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Classification:
        """Decode one frame's logits.

        Args:
            outputs: name → float array of shape (1, C) (or (C,)).
            input_hw: unused.
            options: ``top_k`` applies.

        Returns:
            Classification with ``min(top_k, C)`` classes, best first.

        Raises:
            DecodeError: wrong shape, or NaN/Inf logits (a broken model or quantisation).
        """
        logits = flat_vector(self._pick(outputs, self._name), "logits", self.type_name)
        if not np.isfinite(logits).all():
            bad = int((~np.isfinite(logits)).sum())
            raise DecodeError(f"decoder 'classifier': the model produced NaN/Inf in {bad} of {logits.size} "
                              f"logits; expected finite values (likely a broken quantisation or an fp16 "
                              f"overflow: check the conversion's accuracy report)")
        if self.activation == "softmax":
            probs = softmax(logits)
        elif self.activation == "sigmoid":
            probs = sigmoid(logits)
        else:
            probs = logits
        k = min(options.top_k, probs.size)
        if k < probs.size:
            top = np.argpartition(-probs, k - 1)[:k]
            top = top[np.argsort(-probs[top], kind="stable")]
        else:
            top = np.argsort(-probs, kind="stable")
        return Classification(class_id=top.astype(np.int64), confidence=probs[top], labels=self.labels)
