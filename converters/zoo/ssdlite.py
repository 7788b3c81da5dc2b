"""SSD-Lite detectors: torchvision's SSDLite with a MobileNetV3-Large backbone, and the classic MobileNetV2
one, at a configurable input size.

::

    model = build_ssdlite(variant="v3_large", num_classes=8, input_size=320)
    losses = model(images, targets)              # training: torchvision's SSD API (images in 0..1)
    detections = model.eval()(images)            # torchvision post-processing (reference)
    reg, logits = SSDLiteExport(model)(x)        # export graph: backbone + heads only

Construction follows ``torchvision.models.detection.ssdlite320_mobilenet_v3_large(weights=None,
weights_backbone=None)`` step by step (same modules, same initialisation order, same state-dict keys),
so at ``input_size=320`` and ``variant="v3_large"`` a seeded build is weight-for-weight identical to
torchvision's. torchvision fixes that builder's size at 320; here the size is a parameter (the anchors
follow the feature-map grid of that size).

``variant="v2"`` builds SSDLite on MobileNetV2 the way the MobileNetV2 paper (section 6.2) and
torchvision's MobileNetV3 extractor do it: the first feature map is the expansion layer of the first
stride-32 block (C4, output stride 16), the second is the end of the trunk (stride 32), followed by the
same four depthwise "extra" blocks (512, 256, 256, 128) and SSDLite prediction heads. torchvision has no
builder for it; this one uses torchvision's building blocks (``_extra_block``, ``SSDLiteHead``,
``DefaultBoxGenerator``) with the same six-scale anchor set as the V3 model.

``stride8=True`` adds a seventh feature map at output stride 8 (the end of the trunk's stride-8 stage, tapped
inside the first feature block), for objects a few pixels wide at the input: the first standard map is at
stride 16, where a 10 px object is well under one cell. It gets its own SSDLite head and default boxes of
half the first map's scale (aspect ratios 1 and 2), and comes *last* in the maps, the heads and the anchors,
so the other six are computed exactly as without it: a model with the map loads the weights of a model
without it (only the new head is missing) and starts from its predictions.

``stride8="topdown"`` builds the same seventh map from both ends, as an FPN level (Lin et al., 2017) or
YOLO-nano's PAN top-down path do: the stride-16 map (``"0"``, the deep features that already tell the
classes apart) is projected to :data:`TOPDOWN_CHANNELS` channels by a 1x1 convolution, upsampled 2x (nearest)
and added to a 1x1 projection of the stride-8 tap, then mixed by a depthwise-separable 3x3 block. The plain
tap (``stride8=True``) has the trunk's early channels only (24 for MobileNetV3-Large), which know edges, not
shapes. The merge's modules (``backbone.topdown.*``) are new, like the seventh head, so this model also loads
a plain model's weights and starts from its predictions on the first six maps.

``num_classes`` counts foreground classes; the head has ``num_classes + 1`` score columns, column 0 is
the background (torchvision's convention).

Export split (:class:`SSDLiteExport`): input ``[B, 3, H, W]`` RGB, ``(pixel / 255 - 0.5) / 0.5`` (what
torchvision's ``GeneralizedRCNNTransform`` does with ``image_mean = image_std = 0.5``), stretched to
``H x W`` — torchvision resizes bilinearly to the fixed size, sdk's ``stretch`` does the same with
OpenCV, so pixels agree when the frame already has the network size and differ only by interpolation
otherwise. Outputs ``bbox_regression`` ``[B, N, 4]`` (``dx, dy, dw, dh`` for torchvision's
``BoxCoder(weights=(10, 10, 5, 5))``) and ``cls_logits`` ``[B, N, C + 1]``. The anchors (normalised
``cx, cy, w, h`` from ``DefaultBoxGenerator``) and variances ``[0.1, 0.1, 0.2, 0.2]`` go into the
contract's ``ssd`` decoder.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ._common import SizeArg, ZooModel, choice, positive_float, resolve_classes, size_hw

try:  # torchvision is a converters dependency; keep import errors readable
    from torchvision.models import mobilenet_v2, mobilenet_v3_large
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator
    from torchvision.models.detection.ssd import SSD
    from torchvision.models.detection.ssdlite import (SSDLiteFeatureExtractorMobileNet, SSDLiteHead,
                                                      _extra_block, _normal_init)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(f"converters.zoo.ssdlite needs torchvision ({exc}); "
                      f"install the converters extra: pip install 'edgesdk[convert]'") from exc

__all__ = ["VARIANTS", "SSDLite", "SSDLiteExport", "SSDLiteFeatureExtractorMobileNetV2", "build_ssdlite",
           "VARIANCES", "STRIDE8_MODES", "TOPDOWN_CHANNELS"]

VARIANTS = ("v3_large", "v2")
#: SSD box-coder variances, the inverses of torchvision's ``BoxCoder`` weights (10, 10, 5, 5).
VARIANCES = (0.1, 0.1, 0.2, 0.2)
#: Anchor aspect ratios / scale range of torchvision's SSDLite320 (six feature maps).
ASPECT_RATIOS = [[2, 3] for _ in range(6)]
MIN_RATIO, MAX_RATIO = 0.2, 0.95
#: Channels of the ``stride8="topdown"`` map (the plain tap has the trunk's own: 24 for MobileNetV3-Large).
TOPDOWN_CHANNELS = 64
#: Accepted ``stride8`` values: no seventh map, the plain stride-8 tap, or the tap merged with the stride-16 map.
STRIDE8_MODES = (False, True, "topdown")
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)


def _stage_indices(features: nn.Sequential) -> List[int]:
    """torchvision's C0..Cn positions: the first block, every strided block, the last block."""
    return [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]


class SSDLiteFeatureExtractorMobileNetV2(nn.Module):
    """SSDLite feature extractor on a torchvision MobileNetV2 trunk (MobileNetV2 paper, section 6.2).

    Mirrors torchvision's ``SSDLiteFeatureExtractorMobileNet`` (same attribute names: ``features``,
    ``extra``), with MobileNetV2's ``InvertedResidual.conv`` in place of MobileNetV3's ``.block``.

    Args:
        backbone: ``mobilenet_v2().features``.
        c4_pos: index of the first stride-32 block; its expansion layer gives the first feature map.
        norm_layer: normalisation layer of the extra blocks.
        width_mult: multiplier of the extra blocks' widths (512, 256, 256, 128).
        min_depth: smallest extra-block width.

    Raises:
        ValueError: the block at ``c4_pos`` has a residual connection (it cannot be split).
    """

    def __init__(self, backbone: nn.Sequential, c4_pos: int, norm_layer: Callable[..., nn.Module],
                 width_mult: float = 1.0, min_depth: int = 16) -> None:
        super().__init__()
        block = backbone[c4_pos]
        if block.use_res_connect:
            raise ValueError(f"backbone[{c4_pos}]: expected a strided block without residual connection")
        self.features = nn.Sequential(
            nn.Sequential(*backbone[:c4_pos], block.conv[0]),       # up to C4's 1x1 expansion (stride 16)
            nn.Sequential(block.conv[1:], *backbone[c4_pos + 1:]),  # C4's depthwise to the end (stride 32)
        )

        def depth(d: int) -> int:
            return max(min_depth, int(d * width_mult))

        extra = nn.ModuleList([
            _extra_block(backbone[-1].out_channels, depth(512), norm_layer),
            _extra_block(depth(512), depth(256), norm_layer),
            _extra_block(depth(256), depth(256), norm_layer),
            _extra_block(depth(256), depth(128), norm_layer),
        ])
        _normal_init(extra)
        self.extra = extra

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Six feature maps, strides 16, 32, 64, 128, 256, 512 (``"0"`` .. ``"5"``)."""
        output = []
        for block in self.features:
            x = block(x)
            output.append(x)
        for block in self.extra:
            x = block(x)
            output.append(x)
        return OrderedDict([(str(i), v) for i, v in enumerate(output)])


def _feature_extractor(variant: str, *, width_mult: float, reduced_tail: bool,
                       norm_layer: Callable[..., nn.Module]) -> Tuple[nn.Module, Dict[str, str]]:
    """The SSDLite feature extractor and the map ``"features.<i>..."`` (the classifier's trunk keys) →
    extractor keys (``"features.0.<j>..."``, ``"features.1..."``) of the tensors it reuses."""
    if variant == "v3_large":
        trunk = mobilenet_v3_large(weights=None, norm_layer=norm_layer, reduced_tail=reduced_tail,
                                   width_mult=width_mult)
        _normal_init(trunk)
        features = trunk.features
        extractor: nn.Module = SSDLiteFeatureExtractorMobileNet(features, _stage_indices(features)[-2], norm_layer,
                                                                width_mult=width_mult)
    else:
        trunk = mobilenet_v2(weights=None, norm_layer=norm_layer, width_mult=width_mult)
        _normal_init(trunk)
        features = trunk.features
        extractor = SSDLiteFeatureExtractorMobileNetV2(features, _stage_indices(features)[-2], norm_layer,
                                                       width_mult=width_mult)
    by_id = {id(t): "features." + k for k, t in features.state_dict(keep_vars=True).items()}
    key_map = {by_id[id(t)]: k for k, t in extractor.state_dict(keep_vars=True).items() if id(t) in by_id}
    return extractor, key_map


class _TopDownMerge(nn.Module):
    """FPN-style merge of a stride-8 map with the stride-16 map above it.

    ``out = dwsep3x3(proj_fine(fine) + up2x(proj_coarse(coarse))[:, :, :H8, :W8])``; every convolution is
    followed by BatchNorm and ReLU6 (the activation of the SSDLite heads). Nearest 2x upsampling and a slice
    export as ``Resize`` + ``Slice`` to ONNX, TFLite and OpenVINO alike; the slice trims the extra row or
    column when the input side is not a multiple of 16.

    Args:
        fine_channels: channels of the stride-8 tap ``[B, Cf, H8, W8]``.
        coarse_channels: channels of the stride-16 map ``[B, Cc, H16, W16]``, ``H16 = ceil(H8 / 2)``.
        out_channels: channels of the merged map ``[B, out_channels, H8, W8]``.
        norm_layer: the detector's BatchNorm factory.
    """

    def __init__(self, fine_channels: int, coarse_channels: int, out_channels: int,
                 norm_layer: Callable[..., nn.Module]) -> None:
        super().__init__()

        def conv(cin: int, cout: int, k: int, groups: int = 1) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=False),
                                 norm_layer(cout), nn.ReLU6(inplace=True))

        self.lateral = conv(fine_channels, out_channels, 1)
        self.top = conv(coarse_channels, out_channels, 1)
        self.mix = nn.Sequential(conv(out_channels, out_channels, 3, groups=out_channels),
                                 conv(out_channels, out_channels, 1))

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """``fine`` ``[B, Cf, H8, W8]``, ``coarse`` ``[B, Cc, H16, W16]`` → ``[B, out_channels, H8, W8]``."""
        h, w = fine.shape[-2:]
        up = nn.functional.interpolate(self.top(coarse), scale_factor=2.0, mode="nearest")
        return self.mix(self.lateral(fine) + up[:, :, :h, :w])


class _Stride8Extractor(nn.Module):
    """An SSDLite feature extractor plus the stride-8 map, appended as the last output (``"6"``).

    Shares the wrapped extractor's ``features`` and ``extra`` modules under the same attribute names, so
    the state-dict keys are those of the extractor without the extra map.

    Args:
        base: a torchvision-style SSDLite extractor (``features`` = two Sequentials, ``extra``).
        tap: index in ``base.features[0]`` whose output is the stride-8 map.
        topdown: a :class:`_TopDownMerge` of the tap with map ``"0"`` (``stride8="topdown"``), or None for
            the tap itself.
    """

    def __init__(self, base: nn.Module, tap: int, topdown: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.features = base.features
        self.extra = base.extra
        self.tap = int(tap)
        self.topdown = topdown

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        """Seven feature maps: strides 16, 32, 64, 128, 256, 512 (``"0"`` .. ``"5"``), then 8 (``"6"``)."""
        fine = None
        for j, block in enumerate(self.features[0]):
            x = block(x)
            if j == self.tap:
                fine = x
        output = [x]
        for block in list(self.features[1:]) + list(self.extra):
            x = block(x)
            output.append(x)
        output.append(fine if self.topdown is None else self.topdown(fine, output[0]))
        return OrderedDict([(str(i), v) for i, v in enumerate(output)])


def _stride8_tap(first_block: nn.Sequential, h: int, w: int) -> Tuple[int, int]:
    """``(index, channels)`` of the last module of the first feature block whose output has stride 8."""
    was_training = first_block.training
    first_block.eval()
    found = None
    with torch.no_grad():
        x = torch.zeros(1, 3, h, w)
        for j, block in enumerate(first_block):
            x = block(x)
            if x.shape[-2] == -(-h // 8) and x.shape[-1] == -(-w // 8):
                found = (j, int(x.shape[1]))
    first_block.train(was_training)
    if found is None:
        raise ValueError(f"stride8: the backbone has no stride-8 feature map at input {h}x{w}")
    return found


def _stride8_extractor(base: nn.Module, mode: Any, h: int, w: int,
                       norm_layer: Callable[..., nn.Module]) -> _Stride8Extractor:
    """``base`` with the seventh map of ``stride8=mode`` (True: the tap; ``"topdown"``: merged)."""
    tap, fine_channels = _stride8_tap(base.features[0], h, w)
    topdown = None
    if mode == "topdown":
        coarse_channels = _feature_shapes(base, h, w)[0][1]
        topdown = _TopDownMerge(fine_channels, coarse_channels, TOPDOWN_CHANNELS, norm_layer)
        _normal_init(topdown)
    return _Stride8Extractor(base, tap, topdown)


class _Stride8BoxGenerator(DefaultBoxGenerator):
    """torchvision's six-map default boxes, plus a seventh map's at ``fine_scale`` (aspect ratios 1 and 2).

    The first six maps keep exactly the scales and boxes of ``DefaultBoxGenerator(aspect_ratios, min_ratio,
    max_ratio)``; the seventh's boxes are squares of ``fine_scale`` and ``sqrt(fine_scale * scales[0])`` and
    ``fine_scale`` at aspect ratios 2 and 1/2.
    """

    def __init__(self, aspect_ratios: List[List[int]], min_ratio: float, max_ratio: float, fine_scale: float) -> None:
        super().__init__(aspect_ratios, min_ratio=min_ratio, max_ratio=max_ratio)
        s, ratios = float(fine_scale), [2]
        self.fine_scale = s
        wh = [[s, s], [math.sqrt(s * self.scales[0])] * 2]
        for ar in ratios:
            wh.extend([[s * math.sqrt(ar), s / math.sqrt(ar)], [s / math.sqrt(ar), s * math.sqrt(ar)]])
        self.aspect_ratios = [list(r) for r in aspect_ratios] + [ratios]
        self._wh_pairs = list(self._wh_pairs) + [torch.as_tensor(wh, dtype=torch.float32)]


def _box_generator(anchor_scales: Tuple[float, float], stride8: bool) -> DefaultBoxGenerator:
    if not stride8:
        return DefaultBoxGenerator(ASPECT_RATIOS, min_ratio=anchor_scales[0], max_ratio=anchor_scales[1])
    return _Stride8BoxGenerator(ASPECT_RATIOS, anchor_scales[0], anchor_scales[1], anchor_scales[0] / 2)


class SSDLite(ZooModel, SSD):
    """torchvision ``SSD`` with an SSDLite head on a MobileNet backbone, plus the zoo's helpers.

    Training and torchvision-style inference are torchvision's (``model(images, targets)`` → losses,
    ``model.eval()(images)`` → list of ``{"boxes", "scores", "labels"}`` with labels ``1..C``).

    Args:
        variant: ``"v3_large"`` or ``"v2"``.
        num_classes: foreground classes (the head has ``num_classes + 1`` columns, background first).
        labels: foreground class names or empty.
        input_hw: network input (height, width).
        width_mult: backbone (and extra-block) width multiplier.
        reduced_tail: MobileNetV3's reduced last stage (torchvision uses it when the backbone is not
            ImageNet-pretrained; pass False to load an ImageNet MobileNetV3-Large trunk).
        score_thresh, nms_thresh, detections_per_img, topk_candidates: torchvision post-processing.
        anchor_scales: ``(min_ratio, max_ratio)`` of ``DefaultBoxGenerator``: the default-box sizes of
            the first and last feature maps, as fractions of the input side.
        stride8: one of :data:`STRIDE8_MODES`: False, True (the stride-8 tap) or ``"topdown"`` (the tap merged
            with the stride-16 map); see the module docstring.
    """

    family = "ssdlite"
    output_names = ("bbox_regression", "cls_logits")

    def __init__(self, *, variant: str, num_classes: int, labels: Sequence[str], input_hw: Tuple[int, int],
                 width_mult: float, reduced_tail: bool, score_thresh: float, nms_thresh: float,
                 detections_per_img: int, topk_candidates: int,
                 anchor_scales: Tuple[float, float] = (MIN_RATIO, MAX_RATIO), stride8: Any = False) -> None:
        norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
        backbone, trunk_keys = _feature_extractor(variant, width_mult=width_mult, reduced_tail=reduced_tail,
                                                  norm_layer=norm_layer)
        h, w = input_hw
        if stride8:
            backbone = _stride8_extractor(backbone, stride8, h, w, norm_layer)
        anchor_generator = _box_generator(anchor_scales, bool(stride8))
        shapes = _feature_shapes(backbone, h, w)
        out_channels = [s[1] for s in shapes]
        head = SSDLiteHead(out_channels, anchor_generator.num_anchors_per_location(), num_classes + 1, norm_layer)
        super().__init__(backbone, anchor_generator, (w, h), num_classes + 1, image_mean=list(IMAGE_MEAN),
                         image_std=list(IMAGE_STD), head=head, score_thresh=score_thresh, nms_thresh=nms_thresh,
                         detections_per_img=detections_per_img, topk_candidates=topk_candidates)
        self.variant = variant
        self.num_classes = num_classes
        self.labels = tuple(labels)
        self.input_hw = input_hw
        self.grid_sizes: Tuple[Tuple[int, int], ...] = tuple((int(s[2]), int(s[3])) for s in shapes)
        self._trunk_keys = {k: "backbone." + v for k, v in trunk_keys.items()}
        self.config: Dict[str, Any] = {
            "variant": variant, "num_classes": num_classes, "labels": list(labels), "input_size": list(input_hw),
            "width_mult": width_mult, "reduced_tail": reduced_tail, "score_thresh": score_thresh,
            "nms_thresh": nms_thresh, "detections_per_img": detections_per_img, "topk_candidates": topk_candidates,
            "anchor_scales": [float(anchor_scales[0]), float(anchor_scales[1])],
        }
        if stride8:  # only when on: checkpoints of models without it keep their config
            self.config["stride8"] = stride8
            self._background_prior(len(shapes) - 1)

    def _background_prior(self, level: int, foreground: float = 0.01) -> None:
        """Start one level's class scores at ``foreground`` in all (background ``1 - foreground``).

        torchvision's zero bias gives every class ``1 / (C + 1)`` (0.11 with 8 classes): thousands of
        untrained stride-8 boxes would enter every evaluation at that score. This is the focal-loss prior
        of RetinaNet, for a softmax: background logit ``log(C (1 - p) / p)``, the others 0.
        """
        conv = self.head.classification_head.module_list[level][-1]
        k = self.num_classes + 1
        with torch.no_grad():
            conv.bias.view(-1, k)[:, 0] = math.log(self.num_classes * (1 - foreground) / foreground)

    @property
    def num_anchors(self) -> int:
        """N, the number of anchors (rows of the exported outputs)."""
        per = self.anchor_generator.num_anchors_per_location()
        return sum(a * gh * gw for a, (gh, gw) in zip(per, self.grid_sizes))

    def anchors_cxcywh(self) -> torch.Tensor:
        """The default boxes, in the order of the head's rows.

        Returns:
            ``[N, 4]`` float32 ``cx, cy, w, h`` normalised to 0..1 of the input (torchvision's
            ``DefaultBoxGenerator`` before it scales them to pixels).
        """
        return self.anchor_generator._grid_default_boxes([list(g) for g in self.grid_sizes], list(self.input_hw),
                                                         dtype=torch.float32)

    # -- zoo protocol ----------------------------------------------------------------------------------
    def export_module(self) -> "SSDLiteExport":
        """:class:`SSDLiteExport` of this model (eval mode)."""
        return SSDLiteExport(self).eval()

    def backbone_modules(self) -> List[nn.Module]:
        """``[backbone.features]``: the MobileNet trunk (the extra blocks and heads stay trainable)."""
        return [self.backbone.features]

    def remap_state_dict(self, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Rename a MobileNet *classifier*'s trunk keys (``features.<i>...``: torchvision's ImageNet
        checkpoints, or the zoo's ``mobilenet`` family trained on synthetic crops) to this detector's
        backbone keys, so :func:`converters.zoo.weights.load_weights` can transfer a pre-trained trunk.
        Other keys (``classifier.*``) are kept as they are (reported as unexpected). Use the same variant
        and width; for ``v3_large`` build with ``reduced_tail=False`` to match a standard trunk.

        Args:
            state: a state dict.

        Returns:
            The renamed state dict (unchanged when it does not look like a classifier's).
        """
        if not any(k in self._trunk_keys for k in state):
            return state
        return {self._trunk_keys.get(k, k): v for k, v in state.items()}

    def head_state_prefixes(self) -> Tuple[str, ...]:
        n = len(self.grid_sizes)
        return tuple(f"head.classification_head.module_list.{i}.1." for i in range(n))

    def classes_in_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> Optional[int]:
        w = state_dict.get("head.classification_head.module_list.0.1.weight")
        per = self.anchor_generator.num_anchors_per_location()[0]
        if not isinstance(w, torch.Tensor) or w.ndim != 4 or w.shape[0] % per:
            return None
        return int(w.shape[0] // per) - 1

    def contract_spec(self, *, labels: Optional[Sequence[str]] = None, batch: Optional[int] = 1,
                      layout: str = "NCHW", postprocess: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Contract fields for the exported backbone + heads.

        Args:
            labels: override the model's (foreground) labels.
            batch: batch dimension of the input shape (None: dynamic).
            layout: ``"NCHW"`` or ``"NHWC"``.
            postprocess: overrides of the defaults (``conf_threshold`` 0.25, ``iou_threshold`` = the
                model's ``nms_thresh``, ``max_det`` = ``detections_per_img``).

        Returns:
            A dict that ``sdk.contract.ModelContract.from_dict`` accepts; the decoder is
            ``{"type": "ssd", "anchors": [[cx, cy, w, h], ...], "variances": [0.1, 0.1, 0.2, 0.2],
            "score": "softmax", "background_class": 0, "box_order": "xywh", "anchor_order": "xywh",
            "outputs": {"boxes": "bbox_regression", "scores": "cls_logits"}}``.
        """
        # 9 significant digits round-trip float32 exactly
        anchors = [[float(f"{v:.9g}") for v in row] for row in self.anchors_cxcywh().tolist()]
        decoder = {"type": "ssd", "anchors": anchors, "anchor_order": "xywh", "variances": list(VARIANCES),
                   "score": "softmax", "background_class": 0, "box_order": "xywh",
                   "outputs": {"boxes": self.output_names[0], "scores": self.output_names[1]}}
        mean = [float(m) for m in self.transform.image_mean]
        std = [float(s) for s in self.transform.image_std]
        return self._contract(task="detect", decoder=decoder, resize="stretch", mean=mean, std=std, labels=labels,
                              batch=batch, layout=layout, postprocess=postprocess,
                              defaults={"conf_threshold": 0.25, "iou_threshold": float(self.nms_thresh),
                                        "max_det": int(self.detections_per_img)})


class SSDLiteExport(nn.Module):
    """The exportable part of an :class:`SSDLite`: backbone + heads, no anchors, no post-processing.

    Args:
        model: the detector (its modules are shared, not copied).
    """

    def __init__(self, model: SSDLite) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.head = model.head
        self.output_names = model.output_names

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Raw head outputs.

        Args:
            x: ``[B, 3, H, W]`` float32 RGB, ``(pixel / 255 - 0.5) / 0.5``, already ``H x W``.

        Returns:
            ``bbox_regression`` ``[B, N, 4]`` (``dx, dy, dw, dh`` against the anchors, torchvision
            ``BoxCoder`` weights (10, 10, 5, 5)) and ``cls_logits`` ``[B, N, C + 1]`` (column 0 =
            background; softmax gives the scores).
        """
        features = list(self.backbone(x).values())
        out = self.head(features)
        return out["bbox_regression"], out["cls_logits"]


def _feature_shapes(backbone: nn.Module, h: int, w: int) -> List[Tuple[int, ...]]:
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        feats = backbone(torch.zeros(1, 3, h, w))
    backbone.train(was_training)
    return [tuple(f.shape) for f in feats.values()]


def build_ssdlite(*, variant: str = "v3_large", num_classes: Optional[int] = None,
                  labels: Optional[Sequence[str]] = None, input_size: SizeArg = 320, width_mult: float = 1.0,
                  reduced_tail: bool = True, score_thresh: float = 0.001, nms_thresh: float = 0.55,
                  detections_per_img: int = 300, topk_candidates: int = 300,
                  anchor_scales: Sequence[float] = (MIN_RATIO, MAX_RATIO), stride8: Any = False) -> SSDLite:
    """Build an SSD-Lite detector (random weights; nothing is downloaded).

    Args:
        variant: ``"v3_large"`` (default, torchvision's SSDLite320) or ``"v2"`` (classic SSDLite).
        num_classes: foreground classes (default: ``len(labels)``, or the 8 synthetic shape classes).
        labels: foreground class names.
        input_size: ``int`` or ``(h, w)``, >= 64 (320 default; 256 trains ~1.6x faster on CPU).
        width_mult: backbone width multiplier.
        reduced_tail: MobileNetV3-Large's reduced last stage (torchvision's choice without ImageNet
            weights); False matches an ImageNet MobileNetV3-Large trunk.
        score_thresh, nms_thresh, detections_per_img, topk_candidates: torchvision post-processing
            (torchvision's SSDLite320 defaults; used by the torch reference path only).
        anchor_scales: ``(min_ratio, max_ratio)``, 0 < min < max <= 1: default-box sizes of the first
            and last feature maps as fractions of the input (torchvision's SSDLite320: 0.2 and 0.95,
            i.e. 64 to 304 px at 320, made for COCO). Lower the first when most objects are smaller:
            SSD matches each object to its default boxes by IoU, and a 20 px object overlaps a 64 px
            box by at most 0.1.
        stride8: add a seventh feature map at stride 8 with default boxes of half the first map's scale
            (appended last; loads the weights of a model without it): True taps the trunk's stride-8 stage,
            ``"topdown"`` merges that tap with the stride-16 map (FPN-style, :data:`TOPDOWN_CHANNELS`
            channels); False (default) builds torchvision's six maps.

    Returns:
        An :class:`SSDLite` in training mode.

    Raises:
        ValueError: an unknown variant or an out-of-range argument (expected-vs-got).
    """
    variant = choice(variant, VARIANTS, "variant")
    num_classes, labels_t = resolve_classes(num_classes, labels)
    hw = size_hw(input_size, minimum=64)
    width_mult = positive_float(width_mult, "width_mult")
    if not isinstance(reduced_tail, bool):
        raise ValueError(f"reduced_tail: expected True or False, got {reduced_tail!r}")
    for name, value in (("score_thresh", score_thresh), ("nms_thresh", nms_thresh)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    for name, value in (("detections_per_img", detections_per_img), ("topk_candidates", topk_candidates)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    scales = _anchor_scales(anchor_scales)
    if not any(stride8 is m if isinstance(m, bool) else stride8 == m for m in STRIDE8_MODES):
        raise ValueError(f"stride8: expected one of False, True, 'topdown', got {stride8!r}")
    return SSDLite(variant=variant, num_classes=num_classes, labels=labels_t, input_hw=hw, width_mult=width_mult,
                   reduced_tail=reduced_tail, score_thresh=float(score_thresh), nms_thresh=float(nms_thresh),
                   detections_per_img=detections_per_img, topk_candidates=topk_candidates, anchor_scales=scales,
                   stride8=stride8)


def _anchor_scales(value: Any) -> Tuple[float, float]:
    """Validate ``(min_ratio, max_ratio)``: two numbers with 0 < min < max <= 1."""
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
    if not ok or not 0 < value[0] < value[1] <= 1:
        raise ValueError(f"anchor_scales: expected (min_ratio, max_ratio) with 0 < min < max <= 1, got {value!r}")
    return float(value[0]), float(value[1])
