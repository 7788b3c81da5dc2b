"""Pieces shared by the model-zoo families: argument checks, the :class:`ZooModel` mixin, contract helpers."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

__all__ = [
    "ZooModel",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "size_hw",
    "resolve_classes",
    "positive_float",
    "positive_int",
    "choice",
]

IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)
#: ``contract.schema_version`` the specs are written for (``sdk.contract.SCHEMA_VERSION``).
CONTRACT_SCHEMA_VERSION = 1

SizeArg = Union[int, Sequence[int]]


def size_hw(value: SizeArg, name: str = "input_size", *, multiple: int = 1, minimum: int = 1) -> Tuple[int, int]:
    """``320`` or ``(h, w)`` → ``(h, w)``.

    Raises:
        ValueError: not a positive int / pair, smaller than ``minimum`` or not a multiple of ``multiple``.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected an int or (height, width), got {value!r}")
    if isinstance(value, int):
        hw = (value, value)
    else:
        try:
            hw = tuple(int(v) for v in value)  # type: ignore[union-attr]
            ok = len(hw) == 2 and all(int(v) == v for v in value)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{name}: expected an int or (height, width), got {value!r}")
    if min(hw) < minimum or any(v % multiple for v in hw):
        need = f">= {minimum}" + (f" and multiples of {multiple}" if multiple > 1 else "")
        raise ValueError(f"{name}: expected sides {need}, got {value!r}")
    return hw  # type: ignore[return-value]


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else ValueError (expected-vs-got)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def positive_float(value: Any, name: str) -> float:
    """``value`` as a float > 0, else ValueError (expected-vs-got)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {value!r}")
    return float(value)


def choice(value: Any, options: Sequence[str], name: str) -> str:
    """``value`` if it is one of ``options``, else ValueError naming them (with a close match)."""
    if not isinstance(value, str) or value not in options:
        import difflib

        close = difflib.get_close_matches(str(value), list(options), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name}: expected one of {', '.join(repr(o) for o in options)}, got {value!r}{hint}")
    return value


def default_labels() -> Tuple[str, ...]:
    """The synthetic shapes classes (``sdk.synthetic.CLASSES``), the project's reference label set."""
    try:
        from sdk.synthetic import CLASSES
    except ImportError:  # pragma: no cover - sdk.synthetic ships with sdk
        return ("circle", "square", "triangle", "star", "hexagon", "cross", "ring", "arrow")
    return tuple(CLASSES)


def resolve_classes(num_classes: Optional[int], labels: Optional[Sequence[str]]) -> Tuple[int, Tuple[str, ...]]:
    """Settle ``(num_classes, labels)`` from the two optional builder arguments.

    Neither given: the synthetic shapes classes. Only ``labels``: their count. Only ``num_classes``:
    no labels. Both: they must agree.

    Raises:
        ValueError: labels that are not strings, a bad count, or a count that disagrees with the labels.
    """
    if labels is not None and not isinstance(labels, str) and len(labels) == 0:
        if num_classes is None:
            raise ValueError("labels: expected class names (or pass num_classes), got an empty list")
        labels = None
    if labels is not None:
        if isinstance(labels, str) or not all(isinstance(s, str) for s in labels):
            raise ValueError(f"labels: expected a list of class names, got {labels!r}")
        labels = tuple(labels)
        if num_classes is None:
            num_classes = len(labels)
        if len(labels) != num_classes:
            raise ValueError(f"labels: expected {num_classes} names (num_classes={num_classes}), "
                             f"got {len(labels)}")
    elif num_classes is None:
        labels = default_labels()
        num_classes = len(labels)
    else:
        labels = ()
    return positive_int(num_classes, "num_classes"), labels


class ZooModel:
    """What every model-zoo network offers besides ``forward`` (a mixin for ``nn.Module`` subclasses).

    Attributes:
        family: the registry name (``"mobilenet"``, ``"ssdlite"``, ``"yolo_nano"``, ``"siamese"``).
        config: the builder keyword arguments that rebuild this architecture
            (``build_model(model.family, **model.config)``); only ints, floats, strings, bools, None
            and lists of them, so it can go into a ``weights_only`` checkpoint and a JSON contract.
        input_hw: network input (height, width).
        labels: class names (may be empty).
        output_names: names of the exported graph's outputs, in order.

    Optional hooks used by :func:`converters.zoo.weights.load_weights`: ``head_state_prefixes()``,
    ``classes_in_state_dict(state_dict)`` (class-count checks) and ``remap_state_dict(state_dict)``
    (foreign key layouts, e.g. a classifier trunk into SSD-Lite).
    """

    family: str = "?"
    config: Dict[str, Any]
    input_hw: Tuple[int, int]
    labels: Tuple[str, ...] = ()
    output_names: Tuple[str, ...] = ()
    input_name: str = "images"
    _backbone_frozen: bool = False

    # -- export --------------------------------------------------------------------------------------
    def export_module(self) -> nn.Module:
        """The module to export (``torch.onnx.export`` / litert-torch): input ``[B, 3, H, W]`` float32
        normalised as :meth:`contract_spec` says, outputs named :attr:`output_names`, in eval mode."""
        raise NotImplementedError

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """A random ``[batch, 3, H, W]`` float32 input of the right size (for tracing/export)."""
        h, w = self.input_hw
        return torch.rand(batch, 3, h, w)

    def contract_spec(self, **kwargs: Any) -> Dict[str, Any]:
        """The parts of the ``sdk`` model contract this network determines (see each family)."""
        raise NotImplementedError

    def _contract(self, *, task: str, decoder: Dict[str, Any], resize: str, mean: Sequence[float],
                  std: Sequence[float], labels: Optional[Sequence[str]], batch: Optional[int], layout: str,
                  postprocess: Optional[Dict[str, Any]], defaults: Optional[Dict[str, Any]] = None,
                  extra_input: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Assemble a contract dict (schema version, task, labels, input, outputs, decoder, ...)."""
        layout = choice(layout, ("NCHW", "NHWC"), "layout")
        if batch is not None:
            positive_int(batch, "batch")
        h, w = self.input_hw
        shape: List[Optional[int]] = [batch, 3, h, w] if layout == "NCHW" else [batch, h, w, 3]
        inp: Dict[str, Any] = {
            "name": self.input_name, "shape": shape, "layout": layout, "dtype": "float32", "color": "RGB",
            "resize": resize, "scale": 1.0 / 255.0, "mean": [float(m) for m in mean],
            "std": [float(s) for s in std],
        }
        inp.update(extra_input or {})
        post = dict(defaults or {})
        post.update(postprocess or {})
        return {
            "schema_version": CONTRACT_SCHEMA_VERSION,
            "task": task,
            "family": self.family,
            "labels": list(self.labels if labels is None else labels),
            "input": inp,
            "outputs": list(self.output_names),
            "decoder": decoder,
            "postprocess": post,
            "extra": {"zoo": {"family": self.family, "config": _jsonable(self.config)}},
        }

    # -- fine-tuning helpers ---------------------------------------------------------------------------
    def backbone_modules(self) -> List[nn.Module]:
        """The modules :meth:`freeze_backbone` freezes (the feature extractor, not the neck or heads)."""
        raise NotImplementedError

    def freeze_backbone(self, frozen: bool = True) -> "ZooModel":
        """Freeze (or unfreeze) the backbone: no gradients, and its BatchNorm layers stay in eval mode
        (running statistics frozen) even when the model is in training mode.

        Returns:
            self.
        """
        self._backbone_frozen = bool(frozen)
        for module in self.backbone_modules():
            for p in module.parameters():
                p.requires_grad_(not frozen)
        self.train(self.training)  # type: ignore[attr-defined]
        return self

    def train(self, mode: bool = True) -> Any:  # noqa: D401 - nn.Module.train with frozen-BN handling
        """``nn.Module.train``, keeping a frozen backbone's BatchNorm layers in eval mode."""
        super().train(mode)  # type: ignore[misc]
        if mode and self._backbone_frozen:
            for module in self.backbone_modules():
                module.eval()
        return self

    # -- weights ---------------------------------------------------------------------------------------
    def head_state_prefixes(self) -> Tuple[str, ...]:
        """State-dict key prefixes of the class-dependent head (re-initialised on a class-count change)."""
        return ()

    def classes_in_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> Optional[int]:
        """The number of (foreground) classes a state dict of this architecture was trained for, if known."""
        return None

    @property
    def num_parameters(self) -> int:
        """Number of parameters (all, trainable or not)."""
        return sum(p.numel() for p in self.parameters())  # type: ignore[attr-defined]


def _jsonable(value: Any) -> Any:
    """Tuples → lists, recursively (so the config is JSON- and weights_only-friendly)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value

