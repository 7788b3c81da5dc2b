"""YOLO-nano: the project's own nano-scale anchor-free detector (strides 8/16/32, optional 4; decoupled heads).

::

    model = build_yolo_nano(num_classes=8, input_size=320)          # ~1.7 M parameters
    raw = model(x)                            # {"one2many": [B, 4 + nc, H/s, W/s] for s in 8, 16, 32}
    loss, parts = model.loss()(raw, targets)  # targets: [{"boxes": [n, 4] xyxy px, "labels": [n]}, ...]
    y = model.export_mode(True)(x)            # [B, 4 + nc, N]: cx, cy, w, h (input px), sigmoid scores

Architecture (YOLOv8-like, sized for a 2-core CPU and int8):

* backbone: a stride-2 3x3 stem, then four stages of (stride-2 3x3 conv, CSP block) with base widths
  64/128/256/512/512 x ``width_mult`` (stride 32 kept at the stride-16 width: plenty for a few
  classes, and half the parameters of YOLOv8n's 1024) and depths 3/6/6/3 x ``depth_mult``; an SPPF
  block at stride 32;
* neck: PAN (top-down FPN path, then a bottom-up path) of CSP blocks, giving P3/P4/P5;
* head: per level, two decoupled branches of two 3x3 convs: box (4 channels) and class (``nc``).

``p2=True`` adds a stride-4 level for objects a few pixels wide (a 6 px object is under one stride-8 cell):
the top-down path goes on from P3 to the stem stage's stride-4 features (one more CSP block) and a head
of its own width reads it. The level comes *last* (strides ``8, 16, 32, 4``), and the P3-P5 outputs are
computed exactly as without it, so a P2 model loads a plain model's weights unchanged and starts from its
predictions (the new level's class bias starts at the same low prior). Cost at 320x320: 6,400 more
anchors (8,500 in all) and the stride-4 convolutions.

Activations default to ReLU (fuses into conv and quantises without a lookup table on every runtime);
``act="silu"`` is available.

Box regression — ``ltrb`` distances with stride scaling, no DFL: the box branch predicts four raw
values per anchor point ``p`` (cell centre, grid units); the box is ``x1, y1 = (p - relu(l, t)) * s``,
``x2, y2 = (p + relu(r, b)) * s``. Chosen because (a) the decode in the graph is a ReLU, a multiply and
an add — no DFL softmax over 16 bins per side, whose int8 quantisation and 4x wider box branch are the
usual pain points of edge YOLO exports (YOLO26 dropped DFL for the same reason); (b) it trains fast
on CPU with CIoU plus an L1 term on the raw distances (the L1 keeps gradients alive where the ReLU is
closed); (c) distances are bounded by object size in strides (about 0..15), an easy int8 range, and
``export_mode(normalized=True)`` divides boxes by the input size so boxes and scores share a 0..1
range in the concatenated output (Ultralytics does the same for int8 TFLite).

``end2end=True`` adds a YOLOv10-style one-to-one head (its own box and class branches, fed with
detached neck features): the one-to-many head is trained with a top-10 task-aligned assignment, the
one-to-one head with top-1, and the one-to-one head is exported with top-K selection in the graph:
``[B, K, 6]`` rows ``x1, y1, x2, y2, score, class`` → decoder ``yolo_end2end`` (no NMS).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ._common import SizeArg, ZooModel, choice, positive_float, positive_int, resolve_classes, size_hw

__all__ = ["YoloNano", "YoloNanoExport", "build_yolo_nano", "STRIDES", "STRIDES_P2", "ACTIVATIONS", "make_anchors",
           "decode_ltrb", "flatten_levels"]

STRIDES: Tuple[int, int, int] = (8, 16, 32)
STRIDES_P2: Tuple[int, int, int, int] = (8, 16, 32, 4)   #: with ``p2``: the stride-4 level comes last
ACTIVATIONS = ("relu", "relu6", "silu")
_BASE_WIDTHS = (64, 128, 256, 512, 512)
_BASE_DEPTHS = (3, 6, 6, 3)
HEADS = ("one2many", "one2one")


def _width(c: int, mult: float) -> int:
    """Channels scaled by ``mult``, rounded to a multiple of 8 (at least 8)."""
    return max(8, int(math.ceil(c * mult / 8) * 8))


def _depth(n: int, mult: float) -> int:
    return max(1, round(n * mult))


def _act(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU}[name](inplace=True)


class ConvBNAct(nn.Sequential):
    """``Conv2d(k, stride, padding=k // 2, bias=False)`` → ``BatchNorm2d`` → activation."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, *, act: str = "relu") -> None:
        super().__init__(nn.Conv2d(c1, c2, k, s, k // 2, bias=False), nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03),
                         _act(act))


class Bottleneck(nn.Module):
    """Two 3x3 convs, with a residual connection when ``shortcut`` (and widths match)."""

    def __init__(self, c: int, *, shortcut: bool, act: str) -> None:
        super().__init__()
        self.cv1 = ConvBNAct(c, c, 3, act=act)
        self.cv2 = ConvBNAct(c, c, 3, act=act)
        self.add = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class CSPBlock(nn.Module):
    """C2f-style cross-stage-partial block: 1x1 split into two halves, ``n`` bottlenecks on one half, every
    intermediate output concatenated, 1x1 fuse. ``[B, c1, H, W]`` → ``[B, c2, H, W]``."""

    def __init__(self, c1: int, c2: int, n: int, *, shortcut: bool, act: str) -> None:
        super().__init__()
        self.c = c2 // 2
        self.cv1 = ConvBNAct(c1, 2 * self.c, 1, act=act)
        self.cv2 = ConvBNAct((2 + n) * self.c, c2, 1, act=act)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut=shortcut, act=act) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained 5x5 max-pools, concatenated. Same shape in/out."""

    def __init__(self, c1: int, c2: int, *, act: str) -> None:
        super().__init__()
        c = c1 // 2
        self.cv1 = ConvBNAct(c1, c, 1, act=act)
        self.cv2 = ConvBNAct(4 * c, c2, 1, act=act)
        self.pool = nn.MaxPool2d(5, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, 1))


class Backbone(nn.Module):
    """CSP backbone: ``[B, 3, H, W]`` → ``(P3, P4, P5)`` at strides 8, 16, 32 (then P2, stride 4, with ``p2``).

    Attributes:
        out_channels: widths of P3, P4, P5 (and P2).
    """

    def __init__(self, widths: Sequence[int], depths: Sequence[int], *, act: str, p2: bool = False) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = widths
        self.stem = ConvBNAct(3, c0, 3, 2, act=act)

        def stage(c_in: int, c_out: int, n: int) -> List[nn.Module]:
            return [ConvBNAct(c_in, c_out, 3, 2, act=act), CSPBlock(c_out, c_out, n, shortcut=True, act=act)]

        self.stage1 = nn.Sequential(*stage(c0, c1, depths[0]))
        self.stage2 = nn.Sequential(*stage(c1, c2, depths[1]))
        self.stage3 = nn.Sequential(*stage(c2, c3, depths[2]))
        self.stage4 = nn.Sequential(*stage(c3, c4, depths[3]), SPPF(c4, c4, act=act))
        self.p2 = p2
        self.out_channels = (c2, c3, c4, c1) if p2 else (c2, c3, c4)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stage1(self.stem(x))
        p3 = self.stage2(x)
        p4 = self.stage3(p3)
        p5 = self.stage4(p4)
        return [p3, p4, p5, x] if self.p2 else [p3, p4, p5]


class PAN(nn.Module):
    """PAN neck: top-down then bottom-up fusion. ``(P3, P4, P5)`` → ``(N3, N4, N5)``, same widths.

    Given a fourth (stride-4) input, the top-down path goes on from N3 to it: ``(P3, P4, P5, P2)`` →
    ``(N3, N4, N5, N2)``, with N3-N5 unchanged by it.
    """

    def __init__(self, channels: Sequence[int], n: int, *, act: str) -> None:
        super().__init__()
        c3, c4, c5 = channels[:3]
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.td4 = CSPBlock(c5 + c4, c4, n, shortcut=False, act=act)
        self.td3 = CSPBlock(c4 + c3, c3, n, shortcut=False, act=act)
        self.down3 = ConvBNAct(c3, c3, 3, 2, act=act)
        self.bu4 = CSPBlock(c3 + c4, c4, n, shortcut=False, act=act)
        self.down4 = ConvBNAct(c4, c4, 3, 2, act=act)
        self.bu5 = CSPBlock(c4 + c5, c5, n, shortcut=False, act=act)
        self.td2: Optional[CSPBlock] = None
        if len(channels) == 4:
            c2 = channels[3]
            self.td2 = CSPBlock(c3 + c2, c2, n, shortcut=False, act=act)

    def forward(self, feats: List[torch.Tensor]) -> List[torch.Tensor]:
        p3, p4, p5 = feats[:3]
        t4 = self.td4(torch.cat([self.up(p5), p4], 1))
        n3 = self.td3(torch.cat([self.up(t4), p3], 1))
        n4 = self.bu4(torch.cat([self.down3(n3), t4], 1))
        n5 = self.bu5(torch.cat([self.down4(n4), p5], 1))
        if self.td2 is None:
            return [n3, n4, n5]
        return [n3, n4, n5, self.td2(torch.cat([self.up(n3), feats[3]], 1))]


class DetectHead(nn.Module):
    """Decoupled head, one pair of branches per level.

    Returns per level ``[B, 4 + nc, H, W]``: channels 0..3 are raw ``l, t, r, b`` (grid units, before the
    ReLU), channels 4.. are class logits.

    ``box_width`` / ``cls_width``: the branches' widths, one for all levels or one per level.
    """

    def __init__(self, channels: Sequence[int], num_classes: int, *, box_width: Union[int, Sequence[int]],
                 cls_width: Union[int, Sequence[int]], act: str, strides: Sequence[int],
                 input_hw: Tuple[int, int]) -> None:
        super().__init__()
        self.num_classes = num_classes

        def branch(c_in: int, width: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(ConvBNAct(c_in, width, 3, act=act), ConvBNAct(width, width, 3, act=act),
                                 nn.Conv2d(width, c_out, 1))

        def per_level(w: Union[int, Sequence[int]]) -> List[int]:
            return [int(w)] * len(channels) if isinstance(w, int) else [int(v) for v in w]

        self.box = nn.ModuleList(branch(c, w, 4) for c, w in zip(channels, per_level(box_width)))
        self.cls = nn.ModuleList(branch(c, w, num_classes) for c, w in zip(channels, per_level(cls_width)))
        self._init_bias(strides, input_hw)

    def _init_bias(self, strides: Sequence[int], input_hw: Tuple[int, int]) -> None:
        """Box bias 1 (boxes start 2 strides wide); class prior ~5 objects per image (as YOLOv8)."""
        area = float(input_hw[0] * input_hw[1])
        for box, cls, s in zip(self.box, self.cls, strides):
            nn.init.constant_(box[-1].bias, 1.0)
            nn.init.constant_(cls[-1].bias, math.log(5.0 / self.num_classes / (area / s ** 2)))

    def forward(self, feats: List[torch.Tensor]) -> List[torch.Tensor]:
        return [torch.cat([b(x), c(x)], 1) for x, b, c in zip(feats, self.box, self.cls)]


# -- decoding (shared by the export graph, predict() and the loss) -----------------------------------------


def make_anchors(shapes: Sequence[Tuple[int, int]], strides: Sequence[int], *, dtype: torch.dtype = torch.float32,
                 device: Optional[torch.device] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Anchor points of the flattened levels.

    Args:
        shapes: per level (H, W) of the feature map.
        strides: per level stride in input pixels.

    Returns:
        ``points`` ``[N, 2]`` cell centres ``(x + 0.5, y + 0.5)`` in grid units and ``stride`` ``[N, 1]``,
        N = sum of H * W, in row-major order level by level.
    """
    points, stride_col = [], []
    for (h, w), s in zip(shapes, strides):
        ys = torch.arange(h, dtype=dtype, device=device) + 0.5
        xs = torch.arange(w, dtype=dtype, device=device) + 0.5
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        points.append(torch.stack([xx, yy], -1).reshape(-1, 2))
        stride_col.append(torch.full((h * w, 1), float(s), dtype=dtype, device=device))
    return torch.cat(points), torch.cat(stride_col)


def flatten_levels(levels: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-level ``[B, C, H, W]`` → ``[B, C, N]`` (concatenated along N)."""
    return torch.cat([x.flatten(2) for x in levels], 2)


def decode_ltrb(raw: torch.Tensor, points: torch.Tensor, stride: torch.Tensor) -> torch.Tensor:
    """Raw box channels → ``x1, y1, x2, y2`` in input pixels.

    Args:
        raw: ``[B, N, 4]`` raw ``l, t, r, b`` (grid units, before the ReLU).
        points: ``[N, 2]`` anchor points (grid units).
        stride: ``[N, 1]`` strides.

    Returns:
        ``[B, N, 4]`` boxes ``x1, y1, x2, y2`` (pixels).
    """
    d = F.relu(raw)
    return torch.cat([(points - d[..., :2]) * stride, (points + d[..., 2:]) * stride], -1)


class YoloNano(ZooModel, nn.Module):
    """The nano anchor-free YOLO (see the module docstring).

    Args:
        num_classes: classes.
        labels: class names or empty.
        input_hw: network input (height, width), multiples of 32.
        width_mult: width multiplier on 64/128/256/512/512.
        depth_mult: depth multiplier on 3/6/6/3 bottlenecks.
        act: ``"relu"``, ``"relu6"`` or ``"silu"``.
        end2end: add the one-to-one (NMS-free) head.
        max_det: K, the rows of the end-to-end export output.
        p2: add the stride-4 level (see the module docstring).

    Attributes:
        strides: (8, 16, 32), or (8, 16, 32, 4) with ``p2``: the order of the levels everywhere.
        backbone, neck, head, one2one_head (None without ``end2end``).
    """

    family = "yolo_nano"
    output_names = ("output0",)

    def __init__(self, *, num_classes: int, labels: Sequence[str], input_hw: Tuple[int, int], width_mult: float,
                 depth_mult: float, act: str, end2end: bool, max_det: int, p2: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.labels = tuple(labels)
        self.input_hw = input_hw
        self.strides: Tuple[int, ...] = STRIDES_P2 if p2 else STRIDES
        self.end2end = end2end
        self.max_det = max_det
        widths = [_width(c, width_mult) for c in _BASE_WIDTHS]
        depths = [_depth(n, depth_mult) for n in _BASE_DEPTHS]
        self.backbone = Backbone(widths, depths, act=act, p2=p2)
        chs = self.backbone.out_channels
        self.neck = PAN(chs, depths[0], act=act)
        # independent of num_classes: only the last 1x1 conv depends on it; P3-P5 share P3's widths, and the
        # stride-4 level (16x the cells of P3) gets its own, narrower ones
        box_width = [max(16, chs[0] // 2)] * 3 + [max(16, c // 2) for c in chs[3:]]
        cls_width = [max(16, chs[0])] * 3 + [max(16, c) for c in chs[3:]]

        def make_head() -> DetectHead:
            return DetectHead(chs, num_classes, box_width=box_width, cls_width=cls_width, act=act,
                              strides=self.strides, input_hw=input_hw)

        self.head = make_head()
        self.one2one_head: Optional[DetectHead] = make_head() if end2end else None
        self._export = False
        self._export_head = "one2one" if end2end else "one2many"
        self._export_normalized = False
        self._anchor_cache: Dict[Tuple[Any, ...], Tuple[torch.Tensor, torch.Tensor]] = {}
        self.config: Dict[str, Any] = {"num_classes": num_classes, "labels": list(labels),
                                       "input_size": list(input_hw), "width_mult": width_mult,
                                       "depth_mult": depth_mult, "act": act, "end2end": end2end,
                                       "max_det": max_det}
        if p2:  # only when on: checkpoints of plain models keep their config
            self.config["p2"] = True

    # -- forward ---------------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Neck outputs ``[B, C_i, H / s_i, W / s_i]`` for s in :attr:`strides`."""
        return self.neck(self.backbone(x))

    def forward(self, x: torch.Tensor) -> Any:
        """Raw outputs (for the loss), or the decoded export layout in export mode.

        Args:
            x: ``[B, 3, H, W]`` float32 RGB in 0..1 (``pixel / 255``), H and W multiples of 32.

        Returns:
            Normally ``{"one2many": [B, 4 + nc, H/s, W/s] per level}`` (plus ``"one2one"`` with
            ``end2end``; its features are detached, as YOLOv10). In export mode (:meth:`export_mode`):
            ``[B, 4 + nc, N]`` (``cx, cy, w, h`` + sigmoid class scores) or, for the one-to-one head,
            ``[B, K, 6]`` (``x1, y1, x2, y2, score, class``).
        """
        feats = self.features(x)
        if self._export:
            return self._export_forward(feats, self._export_head, self._export_normalized, x.shape[-2:])
        out = {"one2many": self.head(feats)}
        if self.one2one_head is not None:
            out["one2one"] = self.one2one_head([f.detach() for f in feats])
        return out

    def anchors_for(self, levels: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(points [N, 2], stride [N, 1])`` for per-level outputs (cached by shape, dtype and device)."""
        shapes = tuple((int(t.shape[-2]), int(t.shape[-1])) for t in levels)
        key = (shapes, levels[0].dtype, levels[0].device)
        if key not in self._anchor_cache:
            self._anchor_cache[key] = make_anchors(shapes, self.strides, dtype=levels[0].dtype,
                                                   device=levels[0].device)
        return self._anchor_cache[key]

    def decode(self, outputs: Any, head: str = "one2many") -> torch.Tensor:
        """Raw outputs → the ``v8`` layout.

        Args:
            outputs: what :meth:`forward` returns outside export mode (or one head's list of levels).
            head: ``"one2many"`` or ``"one2one"``.

        Returns:
            ``[B, 4 + nc, N]``: ``cx, cy, w, h`` in input pixels, then sigmoid class scores.
        """
        levels = outputs[choice(head, HEADS, "head")] if isinstance(outputs, dict) else outputs
        points, stride = self.anchors_for(levels)
        x = flatten_levels(levels)                                   # [B, 4 + nc, N]
        d = F.relu(x[:, :4])
        p, s = points.T.unsqueeze(0), stride.T.unsqueeze(0)          # [1, 2, N], [1, 1, N]
        lt, rb = d[:, :2], d[:, 2:]
        cxcy = (p + (rb - lt) * 0.5) * s
        wh = (lt + rb) * s
        return torch.cat([cxcy, wh, x[:, 4:].sigmoid()], 1)

    def predict(self, x: torch.Tensor, head: Optional[str] = None) -> torch.Tensor:
        """Decoded ``[B, 4 + nc, N]`` predictions in any mode (default head: the export head)."""
        levels = self._head_levels(self.features(x), head or self._export_head)
        return self.decode(levels)

    def _head_levels(self, feats: List[torch.Tensor], head: str) -> List[torch.Tensor]:
        if choice(head, HEADS, "head") == "one2one":
            if self.one2one_head is None:
                raise ValueError("head: 'one2one' needs a model built with end2end=True")
            return self.one2one_head(feats)
        return self.head(feats)

    def _export_forward(self, feats: List[torch.Tensor], head: str, normalized: bool,
                        hw: Sequence[int]) -> torch.Tensor:
        y = self.decode(self._head_levels(feats, head))              # [B, 4 + nc, N]
        if head == "one2one":
            return self._topk(y, normalized, hw)
        if normalized:
            h, w = int(hw[0]), int(hw[1])
            scale = torch.tensor([1.0 / w, 1.0 / h, 1.0 / w, 1.0 / h], dtype=y.dtype, device=y.device).view(1, 4, 1)
            y = torch.cat([y[:, :4] * scale, y[:, 4:]], 1)
        return y

    def _topk(self, y: torch.Tensor, normalized: bool, hw: Sequence[int]) -> torch.Tensor:
        """``[B, 4 + nc, N]`` → ``[B, K, 6]`` top-K anchors by best class score (one label per anchor)."""
        y = y.transpose(1, 2)                                        # [B, N, 4 + nc]
        box, scores = y[..., :4], y[..., 4:]
        xyxy = torch.cat([box[..., :2] - box[..., 2:] * 0.5, box[..., :2] + box[..., 2:] * 0.5], -1)
        if normalized:
            h, w = int(hw[0]), int(hw[1])
            xyxy = xyxy * torch.tensor([1.0 / w, 1.0 / h, 1.0 / w, 1.0 / h], dtype=y.dtype, device=y.device)
        conf, cls = scores.max(-1)                                   # [B, N]
        k = min(self.max_det, int(conf.shape[1]))
        top, idx = conf.topk(k, dim=1)                               # [B, K], sorted
        boxes = xyxy.gather(1, idx.unsqueeze(-1).expand(-1, -1, 4))
        labels = cls.gather(1, idx).to(y.dtype)
        return torch.cat([boxes, top.unsqueeze(-1), labels.unsqueeze(-1)], -1)

    # -- export / zoo protocol ---------------------------------------------------------------------------
    def export_mode(self, enabled: bool = True, *, head: Optional[str] = None,
                    normalized: bool = False) -> "YoloNano":
        """Switch :meth:`forward` to the decoded export layout (and the model to eval mode when enabled).

        Args:
            enabled: on or off.
            head: ``"one2many"`` (``[B, 4 + nc, N]`` → decoder ``yolo``) or ``"one2one"``
                (``[B, K, 6]`` → decoder ``yolo_end2end``); default: ``one2one`` when built with
                ``end2end``.
            normalized: boxes divided by the input size (0..1), for int8 exports.

        Returns:
            self.
        """
        head = head or ("one2one" if self.end2end else "one2many")
        self._head_levels_check(head)
        self._export, self._export_head, self._export_normalized = bool(enabled), head, bool(normalized)
        if enabled:
            self.eval()
        return self

    def _head_levels_check(self, head: str) -> None:
        if choice(head, HEADS, "head") == "one2one" and self.one2one_head is None:
            raise ValueError("head: 'one2one' needs a model built with end2end=True")

    def export_module(self, *, head: Optional[str] = None, normalized: bool = False) -> "YoloNanoExport":
        """A :class:`YoloNanoExport` wrapper (eval mode; the model itself is not switched)."""
        return YoloNanoExport(self, head=head or ("one2one" if self.end2end else "one2many"),
                              normalized=normalized).eval()

    def loss(self, **kwargs: Any) -> nn.Module:
        """A :class:`converters.zoo.yolo_loss.YoloNanoLoss` for this model (``kwargs`` go to it)."""
        from .yolo_loss import YoloNanoLoss

        return YoloNanoLoss(num_classes=self.num_classes, strides=self.strides, **kwargs)

    def backbone_modules(self) -> List[nn.Module]:
        """``[backbone]`` (the neck and heads stay trainable)."""
        return [self.backbone]

    def head_state_prefixes(self) -> Tuple[str, ...]:
        n = len(self.strides)
        heads = ("head.",) + (("one2one_head.",) if self.end2end else ())
        return tuple(f"{h}cls.{i}.2." for h in heads for i in range(n))

    def classes_in_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> Optional[int]:
        w = state_dict.get("head.cls.0.2.weight")
        return int(w.shape[0]) if isinstance(w, torch.Tensor) and w.ndim == 4 else None

    def contract_spec(self, *, head: Optional[str] = None, normalized: Optional[bool] = None,
                      labels: Optional[Sequence[str]] = None, batch: Optional[int] = 1, layout: str = "NCHW",
                      postprocess: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Contract fields for an export with ``head`` / ``normalized`` (default: the current export settings).

        Returns:
            A dict that ``sdk.contract.ModelContract.from_dict`` accepts. Decoder
            ``{"type": "yolo", "version": "v8", "num_classes": nc, "output": "output0"}`` (one-to-many) or
            ``{"type": "yolo_end2end", "output": "output0"}`` (one-to-one), with ``"normalized": true``
            when boxes are divided by the input size. Input: RGB, letterbox (pad 114), ``pixel / 255``.
        """
        head = head or self._export_head
        self._head_levels_check(head)
        normalized = self._export_normalized if normalized is None else bool(normalized)
        if head == "one2one":
            decoder: Dict[str, Any] = {"type": "yolo_end2end", "output": self.output_names[0]}
            defaults: Dict[str, Any] = {"conf_threshold": 0.25, "max_det": int(self.max_det)}
        else:
            decoder = {"type": "yolo", "version": "v8", "num_classes": self.num_classes,
                       "output": self.output_names[0]}
            defaults = {"conf_threshold": 0.25, "iou_threshold": 0.45, "max_det": 300}
        if normalized:
            decoder["normalized"] = True
        return self._contract(task="detect", decoder=decoder, resize="letterbox", mean=(0.0, 0.0, 0.0),
                              std=(1.0, 1.0, 1.0), labels=labels, batch=batch, layout=layout, postprocess=postprocess,
                              defaults=defaults, extra_input={"pad_value": 114, "stride": max(self.strides)})


class YoloNanoExport(nn.Module):
    """Export wrapper of a :class:`YoloNano` (shares its modules).

    Args:
        model: the detector.
        head: ``"one2many"`` or ``"one2one"``.
        normalized: boxes in 0..1 of the input instead of pixels.
    """

    def __init__(self, model: YoloNano, *, head: str, normalized: bool) -> None:
        super().__init__()
        model._head_levels_check(head)
        self.model = model
        self.head = head
        self.normalized = normalized
        self.output_names = model.output_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` (RGB, ``pixel / 255``) → ``[B, 4 + nc, N]`` or ``[B, K, 6]`` (see :class:`YoloNano`)."""
        return self.model._export_forward(self.model.features(x), self.head, self.normalized, x.shape[-2:])


def build_yolo_nano(*, num_classes: Optional[int] = None, labels: Optional[Sequence[str]] = None,
                    input_size: SizeArg = 320, width_mult: float = 0.25, depth_mult: float = 0.34,
                    act: str = "relu", end2end: bool = False, max_det: int = 100, p2: bool = False) -> YoloNano:
    """Build a YOLO-nano detector (random weights).

    Args:
        num_classes: classes (default: ``len(labels)``, or the 8 synthetic shape classes).
        labels: class names.
        input_size: ``int`` or ``(h, w)``, multiples of 32, >= 64.
        width_mult: width multiplier (0.25: 1.7 M parameters, 2.1 M with ``end2end``; 0.375: 3.8 M; 0.5: 6.7 M).
        depth_mult: depth multiplier (0.34: 1/2/2/1 bottlenecks per stage).
        act: ``"relu"`` (default), ``"relu6"`` or ``"silu"``.
        end2end: add the NMS-free one-to-one head (exported by default).
        max_det: K, rows of the end-to-end output.
        p2: add a stride-4 level for objects a few pixels wide (levels ordered 8, 16, 32, 4; loads the
            weights of a model without it).

    Returns:
        A :class:`YoloNano` in training mode.

    Raises:
        ValueError: an out-of-range argument (expected-vs-got).
    """
    num_classes, labels_t = resolve_classes(num_classes, labels)
    hw = size_hw(input_size, multiple=32, minimum=64)
    width_mult = positive_float(width_mult, "width_mult")
    depth_mult = positive_float(depth_mult, "depth_mult")
    act = choice(act, ACTIVATIONS, "act")
    if not isinstance(end2end, bool):
        raise ValueError(f"end2end: expected True or False, got {end2end!r}")
    if not isinstance(p2, bool):
        raise ValueError(f"p2: expected True or False, got {p2!r}")
    max_det = positive_int(max_det, "max_det")
    return YoloNano(num_classes=num_classes, labels=labels_t, input_hw=hw, width_mult=width_mult,
                    depth_mult=depth_mult, act=act, end2end=end2end, max_det=max_det, p2=p2)
