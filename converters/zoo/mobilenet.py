"""MobileNet classifiers (torchvision MobileNetV2 / V3-Small / V3-Large) with the two MobileNet knobs:
width multiplier and input resolution.

::

    model = build_mobilenet(variant="v3_small", num_classes=8, width_mult=0.75, input_size=96)
    logits = model(x)                       # x [B, 3, 96, 96] normalised → [B, 8]

The state-dict keys are torchvision's (``features.*``, ``classifier.*``), so a torchvision ImageNet
checkpoint of the same variant and width loads with :func:`converters.zoo.weights.load_weights`
(``strict=False`` re-initialises the class-dependent last layer when the class count differs).

Export: the graph is the network itself; output ``logits`` ``[B, C]`` → decoder
``{"type": "classifier", "activation": "softmax"}``. Input: RGB, stretched to ``input_size``,
``(pixel / 255 - ImageNet mean) / ImageNet std`` (what torchvision's ImageNet weights expect and what
the synthetic crop set is trained with).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import IMAGENET_MEAN, IMAGENET_STD, SizeArg, ZooModel, choice, positive_float, resolve_classes, size_hw

__all__ = ["VARIANTS", "MobileNetClassifier", "build_mobilenet"]

VARIANTS = ("v3_small", "v3_large", "v2")


def _torchvision_mobilenet(variant: str, *, num_classes: int, width_mult: float, dropout: float) -> nn.Module:
    from torchvision import models

    if variant == "v2":
        return models.mobilenet_v2(weights=None, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
    builder = models.mobilenet_v3_small if variant == "v3_small" else models.mobilenet_v3_large
    return builder(weights=None, num_classes=num_classes, width_mult=width_mult, dropout=dropout)


class MobileNetClassifier(ZooModel, nn.Module):
    """A torchvision MobileNet classifier with the zoo's contract/export helpers.

    Args:
        variant: ``"v3_small"``, ``"v3_large"`` or ``"v2"``.
        num_classes: output classes.
        labels: class names (``len(labels) == num_classes``) or empty.
        width_mult: channel multiplier (torchvision's ``width_mult``).
        input_hw: network input (height, width); any size >= 32 works (global pooling), this one goes
            into the contract.
        dropout: dropout before the last linear layer (training only).

    Attributes:
        features: the convolutional trunk, ``[B, 3, H, W]`` → ``[B, F, H/32, W/32]``.
        classifier: ``[B, F]`` → ``[B, num_classes]``.
    """

    family = "mobilenet"
    output_names = ("logits",)

    def __init__(self, *, variant: str, num_classes: int, labels: Sequence[str], width_mult: float,
                 input_hw: Tuple[int, int], dropout: float) -> None:
        super().__init__()
        self.variant = variant
        self.num_classes = num_classes
        self.labels = tuple(labels)
        self.input_hw = input_hw
        net = _torchvision_mobilenet(variant, num_classes=num_classes, width_mult=width_mult, dropout=dropout)
        self.features = net.features
        self.classifier = net.classifier
        self.config: Dict[str, Any] = {"variant": variant, "num_classes": num_classes, "labels": list(labels),
                                       "width_mult": width_mult, "input_size": list(input_hw),
                                       "dropout": dropout}

    @property
    def last_layer(self) -> nn.Linear:
        """The class-dependent final ``nn.Linear``."""
        return self.classifier[-1]  # type: ignore[return-value]

    @property
    def num_features(self) -> int:
        """Width of the pooled feature vector (input of :attr:`classifier`)."""
        return int(self.classifier[0].in_features if self.variant != "v2" else self.classifier[1].in_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features.

        Args:
            x: ``[B, 3, H, W]`` normalised images.

        Returns:
            ``[B, F]`` globally average-pooled features.
        """
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            x: ``[B, 3, H, W]`` float32, RGB, ``(pixel / 255 - mean) / std`` (ImageNet mean/std).

        Returns:
            ``[B, num_classes]`` logits (no softmax).
        """
        return self.classifier(self.forward_features(x))

    def reset_classifier(self, num_classes: int, labels: Optional[Sequence[str]] = None) -> None:
        """Replace the last layer with a freshly initialised one for ``num_classes`` classes.

        Raises:
            ValueError: a bad count, or labels that do not match it.
        """
        num_classes, labels_t = resolve_classes(num_classes, labels)
        old = self.last_layer
        new = nn.Linear(old.in_features, num_classes)
        nn.init.normal_(new.weight, 0, 0.01)
        nn.init.zeros_(new.bias)
        self.classifier[-1] = new
        self.num_classes, self.labels = num_classes, labels_t
        self.config.update(num_classes=num_classes, labels=list(labels_t))

    # -- zoo protocol ----------------------------------------------------------------------------------
    def export_module(self) -> nn.Module:
        """The classifier itself (eval mode): ``[B, 3, H, W]`` → ``logits`` ``[B, C]``."""
        return self.eval()

    def backbone_modules(self) -> List[nn.Module]:
        """``[features]`` (the classifier MLP stays trainable)."""
        return [self.features]

    def head_state_prefixes(self) -> Tuple[str, ...]:
        n = len(self.classifier) - 1
        return (f"classifier.{n}.",)

    def classes_in_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> Optional[int]:
        w = state_dict.get(f"{self.head_state_prefixes()[0]}weight")
        return int(w.shape[0]) if isinstance(w, torch.Tensor) and w.ndim == 2 else None

    def contract_spec(self, *, labels: Optional[Sequence[str]] = None, batch: Optional[int] = 1,
                      layout: str = "NCHW", postprocess: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Contract fields for the exported classifier.

        Args:
            labels: override the model's labels.
            batch: batch dimension of the input shape (None: dynamic).
            layout: ``"NCHW"`` or ``"NHWC"`` (when the converter puts the transpose in the graph).
            postprocess: overrides of the post-processing defaults (``top_k``).

        Returns:
            A dict that ``sdk.contract.ModelContract.from_dict`` accepts.
        """
        return self._contract(task="classify", decoder={"type": "classifier", "activation": "softmax"},
                              resize="stretch", mean=IMAGENET_MEAN, std=IMAGENET_STD, labels=labels, batch=batch,
                              layout=layout, postprocess=postprocess,
                              defaults={"top_k": min(5, self.num_classes)})


def build_mobilenet(*, variant: str = "v3_small", num_classes: Optional[int] = None,
                    labels: Optional[Sequence[str]] = None, width_mult: float = 1.0, input_size: SizeArg = 224,
                    dropout: float = 0.2) -> MobileNetClassifier:
    """Build a MobileNet classifier (random weights; nothing is downloaded).

    Args:
        variant: ``"v3_small"`` (default), ``"v3_large"`` or ``"v2"``.
        num_classes: output classes (default: ``len(labels)``, or the 8 synthetic shape classes).
        labels: class names.
        width_mult: channel multiplier (0.25 .. 2.0 are sensible).
        input_size: ``int`` or ``(h, w)``, >= 32; recorded in the contract and used for example inputs.
        dropout: dropout probability before the last layer.

    Returns:
        A :class:`MobileNetClassifier` in training mode.

    Raises:
        ValueError: an unknown variant or an out-of-range argument (expected-vs-got).
    """
    variant = choice(variant, VARIANTS, "variant")
    num_classes, labels_t = resolve_classes(num_classes, labels)
    width_mult = positive_float(width_mult, "width_mult")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"dropout: expected a number in [0, 1), got {dropout!r}")
    hw = size_hw(input_size, minimum=32)
    return MobileNetClassifier(variant=variant, num_classes=num_classes, labels=labels_t, width_mult=width_mult,
                               input_hw=hw, dropout=float(dropout))

