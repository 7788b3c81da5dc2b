"""Decoders: raw (dequantised) model outputs → Detections / Classification / Embedding.

A decoder is built from the model contract's ``decoder`` spec with :func:`get_decoder`::

    decoder = get_decoder({"type": "yolo"}, output_names=["output0"], labels=names)
    dets = decoder({"output0": out}, input_hw=(640, 640), options=PostprocessOptions())

Detections come back in network-input pixels; map them to the frame with
:meth:`sdk.preprocess.Transform.boxes_to_frame`. Decoder modules are imported only when asked for.
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Dict, List, Mapping, Protocol, Sequence, Tuple, Union

import numpy as np

from sdk.errors import ModelContractError
from sdk.results import Classification, Detections, Embedding

from .options import PostprocessOptions

__all__ = ["Decoder", "PostprocessOptions", "get_decoder", "known_decoders", "DECODERS"]

#: decoder type → "module:Class" (imported lazily)
DECODERS: Dict[str, str] = {
    "yolo": "sdk.decoders.yolo:YoloDecoder",
    "yolo_end2end": "sdk.decoders.yolo:YoloEnd2EndDecoder",
    "ssd": "sdk.decoders.ssd:SSDDecoder",
    "tf_od_api": "sdk.decoders.tf_od_api:TFODAPIDecoder",
    "classifier": "sdk.decoders.classifier:ClassifierDecoder",
    "embedding": "sdk.decoders.embedding:EmbeddingDecoder",
}

Result = Union[Detections, Classification, Embedding]


class Decoder(Protocol):
    """What every decoder provides.

    Attributes:
        task: ``"detect"``, ``"classify"`` or ``"embed"``.
        nonfinite_dropped: output rows with NaN/Inf dropped so far (detection decoders).
    """

    task: str
    nonfinite_dropped: int

    def __call__(self, outputs: Dict[str, np.ndarray], *, input_hw: Tuple[int, int],
                 options: PostprocessOptions) -> Result:
        """Decode one frame's outputs (name → float array) into a result (boxes in input pixels)."""
        ...


def known_decoders() -> List[str]:
    """Names accepted as ``{"type": ...}``."""
    return list(DECODERS)


def get_decoder(spec: Mapping[str, Any], *, output_names: Sequence[str], labels: Sequence[str]) -> Decoder:
    """Build the decoder a contract's ``decoder`` spec asks for.

    Args:
        spec: ``{"type": <one of known_decoders()>, ...options of that decoder}``.
        output_names: the model's output names, in the order the decoder should prefer them.
        labels: class names (used by detection and classification results).

    Returns:
        A decoder instance.

    Raises:
        ModelContractError: the spec is not a mapping, has no or an unknown ``type`` (the message lists
            the known types), or has unknown or invalid keys for that type.
    """
    if not isinstance(spec, Mapping):
        raise ModelContractError(f"contract.decoder: expected an object like {{'type': 'yolo'}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in DECODERS:
        close = difflib.get_close_matches(str(kind), list(DECODERS), n=1) if isinstance(kind, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelContractError(f"contract.decoder.type: expected one of {', '.join(DECODERS)}, "
                                 f"got {kind!r}{hint}")
    module_name, class_name = DECODERS[kind].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(spec, output_names=list(output_names), labels=tuple(labels))
