"""Embedding heads: ``[1, D]`` → L2-normalised :class:`~sdk.results.Embedding`.

Spec ``{"type": "embedding"}`` keys:
    output: name of the output to read (default: the first).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, Tuple

import numpy as np

from sdk.errors import DecodeError
from sdk.results import Embedding

from ._base import BaseDecoder
from .classifier import flat_vector
from .options import PostprocessOptions

__all__ = ["EmbeddingDecoder"]


class EmbeddingDecoder(BaseDecoder):
    """One embedding vector from a ``[1, D]`` output."""

    type_name = "embedding"
    task = "embed"
    spec_keys = ("output",)

    def __init__(self, spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> None:
        super().__init__(spec, output_names=output_names, labels=labels)
        self._name = self._output_name()

    def __call__(self, outputs: Mapping[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Embedding:
        """Decode one frame's embedding.

        Args:
            outputs: name → float array of shape (1, D) (or (D,), (1, D, 1, 1)).
            input_hw: unused.
            options: unused.

        Returns:
            Embedding of shape (D,), L2-normalised.

        Raises:
            DecodeError: wrong shape, NaN/Inf values (a broken model or quantisation) or an all-zero vector.
        """
        vector = flat_vector(self._pick(outputs, self._name), "an embedding", self.type_name)
        if not np.isfinite(vector).all():
            bad = int((~np.isfinite(vector)).sum())
            raise DecodeError(f"decoder 'embedding': the model produced NaN/Inf in {bad} of {vector.size} values; "
                              f"expected finite values (likely a broken quantisation or an fp16 overflow)")
        if not np.any(vector):
            raise DecodeError(f"decoder 'embedding': expected a non-zero vector, got {vector.size} zeros "
                              f"(a dead or badly quantised model?)")
        return Embedding(vector)
