"""Model zoo: the four reference families, built offline with keyword-only arguments.

::

    from converters.zoo import build_model, load_weights, save_checkpoint

    model = build_model("yolo_nano", num_classes=8, input_size=320, seed=0)
    spec = model.contract_spec()              # task, input, decoder, outputs, labels, postprocess
    graph = model.export_module()             # what torch.onnx.export / litert-torch convert

Families (:data:`FAMILIES`) and their builders:

* ``"mobilenet"`` → :func:`converters.zoo.mobilenet.build_mobilenet` (MobileNetV2 / V3-Small / V3-Large
  classifiers; decoder ``classifier``);
* ``"ssdlite"`` → :func:`converters.zoo.ssdlite.build_ssdlite` (torchvision SSDLite on MobileNetV3-Large
  or MobileNetV2; decoder ``ssd``);
* ``"yolo_nano"`` → :func:`converters.zoo.yolo_nano.build_yolo_nano` (the project's anchor-free nano
  YOLO, optional NMS-free head; decoders ``yolo`` / ``yolo_end2end``);
* ``"siamese"`` → :func:`converters.zoo.siamese.build_siamese` (MobileNet embedding network;
  decoder ``embedding``).

Every model has ``family``, ``config`` (the builder arguments: ``build_model(m.family, **m.config)``
rebuilds it), ``input_hw``, ``labels``, ``output_names``, ``contract_spec(**kw)``, ``export_module()``,
``example_input()``, ``freeze_backbone()``. Nothing is downloaded: torchvision parts are always built
with ``weights=None``; weights come from local files (:mod:`converters.zoo.weights`).
"""
from __future__ import annotations

import difflib
import importlib
from typing import Any, Dict, Optional, Tuple

from torch import nn

__all__ = ["FAMILIES", "build_model", "load_weights", "save_checkpoint", "load_checkpoint", "load_model",
           "WeightsError", "LoadReport", "YoloNanoLoss", "ContrastiveLoss", "TripletLoss", "SSDLiteExport",
           "YoloNanoExport"]

FAMILIES: Tuple[str, ...] = ("mobilenet", "ssdlite", "yolo_nano", "siamese")

#: family → "module:builder" (imported on first use)
_BUILDERS: Dict[str, str] = {
    "mobilenet": "converters.zoo.mobilenet:build_mobilenet",
    "ssdlite": "converters.zoo.ssdlite:build_ssdlite",
    "yolo_nano": "converters.zoo.yolo_nano:build_yolo_nano",
    "siamese": "converters.zoo.siamese:build_siamese",
}

_LAZY = {
    "load_weights": "converters.zoo.weights",
    "save_checkpoint": "converters.zoo.weights",
    "load_checkpoint": "converters.zoo.weights",
    "load_model": "converters.zoo.weights",
    "WeightsError": "converters.zoo.weights",
    "LoadReport": "converters.zoo.weights",
    "YoloNanoLoss": "converters.zoo.yolo_loss",
    "ContrastiveLoss": "converters.zoo.siamese",
    "TripletLoss": "converters.zoo.siamese",
    "SSDLiteExport": "converters.zoo.ssdlite",
    "YoloNanoExport": "converters.zoo.yolo_nano",
}


def build_model(family: str, *, seed: Optional[int] = None, **kwargs: Any) -> nn.Module:
    """Build a zoo model by family name.

    Args:
        family: one of :data:`FAMILIES`.
        seed: when given, the weights are initialised from this seed without touching the global RNG
            (two builds with the same seed and arguments are identical).
        **kwargs: keyword arguments of the family's builder (see the module docstring).

    Returns:
        The model, in training mode.

    Raises:
        ValueError: an unknown family (the message lists the known ones and a close match) or a bad
            builder argument.
        TypeError: an argument the family's builder does not take.
    """
    if not isinstance(family, str) or family not in _BUILDERS:
        close = difflib.get_close_matches(str(family), FAMILIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model family {family!r}{hint}; known families: {', '.join(FAMILIES)}")
    module_name, builder_name = _BUILDERS[family].split(":")
    builder = getattr(importlib.import_module(module_name), builder_name)
    if seed is None:
        return builder(**kwargs)
    import torch

    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int or None, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(**kwargs)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
