"""The YOLO-nano backbone as a classifier, to pre-train it on the synthetic classification crops.

::

    net = build_yolo_backbone_classifier(width_mult=0.25, depth_mult=0.34, input_size=64)
    logits = net(x)                                    # [B, 3, 64, 64] (pixel / 255) → [B, 8]
    load_weights(build_model("yolo_nano", width_mult=0.25, ...), "pretrain/best.pt", strict=False)

Its trunk is exactly :class:`converters.zoo.yolo_nano.Backbone` under the attribute ``backbone``, so its
state-dict keys (``backbone.*``) are YOLO-nano's and the checkpoint transfers into a detector with
``load_weights(..., strict=False)`` (the ``classifier.*`` keys are reported as unused). Input
normalisation is YOLO-nano's (RGB, ``pixel / 255``), so the transferred features see the same values.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from converters.zoo._common import SizeArg, ZooModel, positive_float, resolve_classes, size_hw
from converters.zoo.yolo_nano import _BASE_DEPTHS, _BASE_WIDTHS, Backbone, _depth, _width

__all__ = ["YoloBackboneClassifier", "build_yolo_backbone_classifier"]


class YoloBackboneClassifier(ZooModel, nn.Module):
    """YOLO-nano's CSP backbone → global average pool of P5 → dropout → linear.

    Args:
        num_classes: classes.
        labels: class names.
        input_hw: (height, width) recorded in the contract.
        width_mult, depth_mult, act: as :func:`converters.zoo.yolo_nano.build_yolo_nano` (must match the
            detector the weights go to).
        dropout: before the linear layer.
    """

    family = "yolo_backbone"
    output_names = ("logits",)

    def __init__(self, *, num_classes: int, labels: Sequence[str], input_hw: Tuple[int, int], width_mult: float,
                 depth_mult: float, act: str, dropout: float) -> None:
        super().__init__()
        widths = [_width(c, width_mult) for c in _BASE_WIDTHS]
        depths = [_depth(n, depth_mult) for n in _BASE_DEPTHS]
        self.backbone = Backbone(widths, depths, act=act)
        c5 = self.backbone.out_channels[-1]
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c5, num_classes))
        self.num_classes, self.labels, self.input_hw = num_classes, tuple(labels), input_hw
        self.config: Dict[str, Any] = {"num_classes": num_classes, "labels": list(labels),
                                       "input_size": list(input_hw), "width_mult": width_mult,
                                       "depth_mult": depth_mult, "act": act, "dropout": dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` RGB ``pixel / 255`` → ``[B, num_classes]`` logits."""
        p5 = self.backbone(x)[-1]
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(p5, 1), 1))

    def export_module(self) -> nn.Module:
        return self.eval()

    def backbone_modules(self) -> List[nn.Module]:
        return [self.backbone]

    def head_state_prefixes(self) -> Tuple[str, ...]:
        return ("classifier.1.",)

    def contract_spec(self, *, batch: Optional[int] = 1, layout: str = "NCHW",
                      postprocess: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Classifier contract: RGB, stretched, ``pixel / 255`` (YOLO-nano's normalisation)."""
        return self._contract(task="classify", decoder={"type": "classifier", "activation": "softmax"},
                              resize="stretch", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), labels=None, batch=batch,
                              layout=layout, postprocess=postprocess, defaults={"top_k": min(5, self.num_classes)})


def build_yolo_backbone_classifier(*, num_classes: Optional[int] = None, labels: Optional[Sequence[str]] = None,
                                   input_size: SizeArg = 64, width_mult: float = 0.25, depth_mult: float = 0.34,
                                   act: str = "relu", dropout: float = 0.1) -> YoloBackboneClassifier:
    """Build the backbone classifier (random weights).

    Raises:
        ValueError: an out-of-range argument.
    """
    from converters.zoo._common import choice
    from converters.zoo.yolo_nano import ACTIVATIONS

    num_classes, labels_t = resolve_classes(num_classes, labels)
    return YoloBackboneClassifier(num_classes=num_classes, labels=labels_t, input_hw=size_hw(input_size, minimum=32),
                                  width_mult=positive_float(width_mult, "width_mult"),
                                  depth_mult=positive_float(depth_mult, "depth_mult"),
                                  act=choice(act, ACTIVATIONS, "act"), dropout=float(dropout))
