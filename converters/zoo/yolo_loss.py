"""Loss of :mod:`converters.zoo.yolo_nano`: task-aligned assignment, CIoU + L1 box loss, BCE class loss.

::

    loss_fn = model.loss()                      # or YoloNanoLoss(num_classes=8)
    loss, parts = loss_fn(model(images), targets)
    loss.backward()

``targets`` is torchvision-style, one dict per image: ``{"boxes": [n, 4] float x1, y1, x2, y2 in input
pixels, "labels": [n] int64 in 0..nc-1}`` (``n`` may be 0).

Assignment (:class:`TaskAlignedAssigner`, TOOD / YOLOv8): among anchor points whose centre lies inside a
ground-truth box (a box under 1.25 finest strides on a side counts as that wide, so that objects smaller
than the anchor spacing still get a candidate), the ``topk`` with the largest alignment ``score ** alpha * CIoU ** beta`` are positives
(an anchor claimed by several boxes goes to the one it overlaps most). Class targets are soft: the
alignment normalised per box so its best anchor gets that box's best IoU (IoU-aware classification,
which lets one confidence threshold work without an objectness branch). The one-to-one head of an
``end2end`` model is assigned the same way with ``topk=1`` (YOLOv10's consistent dual assignment).

Losses, summed over positives and divided by the sum of the soft targets (so the scale does not depend
on the batch size or the number of objects): ``box_weight * (1 - CIoU)`` and ``l1_weight * |raw ltrb -
target ltrb|`` (grid units; weighted by the soft target) and ``cls_weight * BCE`` over all anchors.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .yolo_nano import STRIDES, decode_ltrb, flatten_levels, make_anchors

__all__ = ["YoloNanoLoss", "TaskAlignedAssigner", "bbox_iou", "pad_targets"]


def bbox_iou(box1: torch.Tensor, box2: torch.Tensor, *, kind: str = "ciou", eps: float = 1e-7) -> torch.Tensor:
    """IoU / GIoU / CIoU of broadcastable ``x1, y1, x2, y2`` boxes.

    Args:
        box1: ``[..., 4]``.
        box2: ``[..., 4]`` (broadcast against ``box1``).
        kind: ``"iou"``, ``"giou"`` or ``"ciou"``.
        eps: numerical guard.

    Returns:
        ``[...]`` the (generalised / complete) IoU; CIoU and GIoU lie in (-1, 1].
    """
    b1x1, b1y1, b1x2, b1y2 = box1.unbind(-1)
    b2x1, b2y1, b2x2, b2y2 = box2.unbind(-1)
    w1, h1 = (b1x2 - b1x1).clamp(min=0), (b1y2 - b1y1).clamp(min=0)
    w2, h2 = (b2x2 - b2x1).clamp(min=0), (b2y2 - b2y1).clamp(min=0)
    inter = ((torch.minimum(b1x2, b2x2) - torch.maximum(b1x1, b2x1)).clamp(min=0)
             * (torch.minimum(b1y2, b2y2) - torch.maximum(b1y1, b2y1)).clamp(min=0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    if kind == "iou":
        return iou
    cw = torch.maximum(b1x2, b2x2) - torch.minimum(b1x1, b2x1)
    ch = torch.maximum(b1y2, b2y2) - torch.minimum(b1y1, b2y1)
    if kind == "giou":
        c_area = cw * ch + eps
        return iou - (c_area - union) / c_area
    if kind != "ciou":
        raise ValueError(f"kind: expected 'iou', 'giou' or 'ciou', got {kind!r}")
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((b2x1 + b2x2 - b1x1 - b1x2) ** 2 + (b2y1 + b2y2 - b1y1 - b1y2) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def pad_targets(targets: Sequence[Mapping[str, torch.Tensor]], *, device: torch.device,
                dtype: torch.dtype = torch.float32) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image targets → padded batch tensors.

    Args:
        targets: one ``{"boxes": [n, 4], "labels": [n]}`` per image.

    Returns:
        ``boxes`` ``[B, M, 4]``, ``labels`` ``[B, M]`` (int64) and ``mask`` ``[B, M]`` (bool, real rows),
        M = the largest ``n`` (at least 1).

    Raises:
        ValueError: a target without ``boxes``/``labels`` or with mismatched shapes (names the image).
    """
    b = len(targets)
    counts = []
    for i, t in enumerate(targets):
        if not isinstance(t, Mapping) or "boxes" not in t or "labels" not in t:
            raise ValueError(f"targets[{i}]: expected {{'boxes': [n, 4], 'labels': [n]}}, got {type(t).__name__}"
                             f" with keys {sorted(t) if isinstance(t, Mapping) else '-'}")
        boxes, labels = torch.as_tensor(t["boxes"]), torch.as_tensor(t["labels"])
        if boxes.ndim != 2 or boxes.shape[-1] != 4 or labels.shape != boxes.shape[:1]:
            raise ValueError(f"targets[{i}]: expected boxes [n, 4] and labels [n], got boxes "
                             f"{list(boxes.shape)} and labels {list(labels.shape)}")
        counts.append(boxes.shape[0])
    m = max(counts + [1])
    out_boxes = torch.zeros(b, m, 4, dtype=dtype, device=device)
    out_labels = torch.zeros(b, m, dtype=torch.long, device=device)
    mask = torch.zeros(b, m, dtype=torch.bool, device=device)
    for i, (t, n) in enumerate(zip(targets, counts)):
        if n:
            out_boxes[i, :n] = torch.as_tensor(t["boxes"], dtype=dtype, device=device)
            out_labels[i, :n] = torch.as_tensor(t["labels"], device=device).long()
            mask[i, :n] = True
    return out_boxes, out_labels, mask


class TaskAlignedAssigner(nn.Module):
    """Task-aligned one-to-many (``topk`` > 1) or one-to-one (``topk`` = 1) assignment.

    Args:
        num_classes: classes.
        topk: positives per ground-truth box.
        alpha: exponent of the class score in the alignment metric.
        beta: exponent of the IoU.
        eps: numerical guard.
        min_box: when looking for candidate anchors, a box narrower (or shorter) than this many pixels counts
            as this wide (or tall) about its centre. With the finest stride ``s``, ``min_box > s`` gives every
            box at least one candidate: a 5 px object between stride-8 anchor centres otherwise contains none
            and is never learned. Targets and IoUs use the true box. 0 keeps the strict rule.
    """

    def __init__(self, num_classes: int, *, topk: int = 10, alpha: float = 0.5, beta: float = 6.0,
                 eps: float = 1e-9, min_box: float = 0.0) -> None:
        super().__init__()
        self.num_classes, self.topk, self.alpha, self.beta, self.eps = num_classes, topk, alpha, beta, eps
        if not min_box >= 0:
            raise ValueError(f"min_box: expected a size >= 0 pixels, got {min_box!r}")
        self.min_box = float(min_box)

    @torch.no_grad()
    def forward(self, pd_scores: torch.Tensor, pd_boxes: torch.Tensor, points: torch.Tensor, gt_labels: torch.Tensor,
                gt_boxes: torch.Tensor, gt_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Assign anchors to ground truth.

        Args:
            pd_scores: ``[B, N, C]`` predicted class probabilities (sigmoid).
            pd_boxes: ``[B, N, 4]`` predicted boxes ``x1, y1, x2, y2`` (pixels).
            points: ``[N, 2]`` anchor centres (pixels).
            gt_labels: ``[B, M]`` class ids.
            gt_boxes: ``[B, M, 4]`` boxes (pixels).
            gt_mask: ``[B, M]`` real (True) vs padding rows.

        Returns:
            ``target_boxes`` ``[B, N, 4]``, ``target_scores`` ``[B, N, C]`` (soft, 0 for background) and
            ``fg_mask`` ``[B, N]`` (bool).
        """
        b, n, c = pd_scores.shape
        m = gt_boxes.shape[1]
        if m == 0 or not bool(gt_mask.any()):
            return (torch.zeros_like(pd_boxes), torch.zeros_like(pd_scores),
                    torch.zeros(b, n, dtype=torch.bool, device=pd_scores.device))
        # anchor centres strictly inside the box (widened to min_box about its centre for tiny boxes)
        region = gt_boxes
        if self.min_box > 0:
            centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2
            half = (gt_boxes[..., 2:] - gt_boxes[..., :2]).clamp(min=self.min_box) / 2
            region = torch.cat([centre - half, centre + half], -1)
        lt = points.view(1, 1, n, 2) - region[:, :, None, :2]
        rb = region[:, :, None, 2:] - points.view(1, 1, n, 2)
        mask = (torch.cat([lt, rb], -1).amin(-1) > self.eps) & gt_mask[:, :, None]            # [B, M, N]
        overlaps = bbox_iou(gt_boxes[:, :, None, :], pd_boxes[:, None, :, :]).clamp(min=0) * mask  # [B, M, N]
        cls_idx = gt_labels.clamp(0, c - 1)[:, :, None].expand(-1, -1, n)
        scores = pd_scores.transpose(1, 2).gather(1, cls_idx) * mask                         # [B, M, N]
        align = scores.pow(self.alpha) * overlaps.pow(self.beta)
        # top-k per box among its inside anchors (a tiny bonus ranks inside anchors above outside ones)
        k = min(self.topk, n)
        top_idx = (align + mask * self.eps).topk(k, dim=-1).indices
        mask_pos = torch.zeros_like(mask).scatter_(-1, top_idx, True) & mask                   # [B, M, N]
        # an anchor claimed by several boxes keeps the one it overlaps most
        multi = mask_pos.sum(1) > 1                                                           # [B, N]
        if bool(multi.any()):
            best = F.one_hot(overlaps.argmax(1), m).transpose(1, 2).bool()                    # [B, M, N]
            mask_pos = torch.where(multi[:, None, :], best & mask, mask_pos)
        fg_mask = mask_pos.any(1)                                                             # [B, N]
        gt_idx = mask_pos.float().argmax(1)                                                   # [B, N]
        target_labels = gt_labels.gather(1, gt_idx)
        target_boxes = gt_boxes.gather(1, gt_idx[..., None].expand(-1, -1, 4))
        target_scores = F.one_hot(target_labels.clamp(0, c - 1), c).to(pd_scores.dtype) * fg_mask[..., None]
        align = align * mask_pos
        pos_align = align.amax(-1, keepdim=True)                                              # [B, M, 1]
        pos_overlap = (overlaps * mask_pos).amax(-1, keepdim=True)
        norm = (align * pos_overlap / (pos_align + self.eps)).amax(1)                         # [B, N]
        return target_boxes, target_scores * norm[..., None], fg_mask


class YoloNanoLoss(nn.Module):
    """Detection loss of :class:`converters.zoo.yolo_nano.YoloNano` (see the module docstring).

    Args:
        num_classes: classes.
        strides: per-level strides (the model's).
        box_weight: weight of ``1 - CIoU``.
        cls_weight: weight of the BCE class loss.
        l1_weight: weight of the L1 loss on raw ``l, t, r, b`` (grid units).
        topk: positives per box for the one-to-many head.
        alpha, beta: alignment metric exponents.
        one2one_weight: weight of the one-to-one head's loss (``end2end`` models).
        min_box_strides: tiny boxes count as at least this many finest strides wide when the assigner looks for
            candidate anchors (see :class:`TaskAlignedAssigner`'s ``min_box``); 0 for the strict YOLOv8 rule.
    """

    def __init__(self, *, num_classes: int, strides: Sequence[int] = STRIDES, box_weight: float = 7.5,
                 cls_weight: float = 1.0, l1_weight: float = 1.0, topk: int = 10, alpha: float = 0.5,
                 beta: float = 6.0, one2one_weight: float = 1.0, min_box_strides: float = 1.25) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.box_weight, self.cls_weight, self.l1_weight = box_weight, cls_weight, l1_weight
        self.one2one_weight = one2one_weight
        min_box = float(min_box_strides) * min(self.strides)
        self.assigners = nn.ModuleDict({
            "one2many": TaskAlignedAssigner(num_classes, topk=topk, alpha=alpha, beta=beta, min_box=min_box),
            "one2one": TaskAlignedAssigner(num_classes, topk=1, alpha=alpha, beta=beta, min_box=min_box),
        })

    def forward(self, outputs: Any,
                targets: Sequence[Mapping[str, torch.Tensor]]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Loss of a training-mode forward.

        Args:
            outputs: ``model(images)``: ``{"one2many": [B, 4 + nc, H, W] per level, ["one2one": ...]}``
                (a bare list of levels is read as ``one2many``).
            targets: one ``{"boxes": [n, 4] x1, y1, x2, y2 (input pixels), "labels": [n]}`` per image.

        Returns:
            The scalar loss (to ``backward()``) and its parts as floats (``box``, ``l1``, ``cls``, per head
            prefixed ``o2o_`` for the one-to-one head, and ``loss``).

        Raises:
            ValueError: malformed targets, or a batch size that differs from the outputs'.
        """
        heads = outputs if isinstance(outputs, Mapping) else {"one2many": outputs}
        total: torch.Tensor = torch.zeros(())
        parts: Dict[str, float] = {}
        for name, levels in heads.items():
            if name not in self.assigners:
                raise ValueError(f"outputs: expected keys 'one2many' / 'one2one', got {sorted(heads)}")
            loss, items = self._head_loss(levels, targets, self.assigners[name])
            weight = self.one2one_weight if name == "one2one" else 1.0
            total = total.to(loss.device) + weight * loss
            prefix = "o2o_" if name == "one2one" else ""
            parts.update({prefix + k: v for k, v in items.items()})
        parts["loss"] = float(total.detach())
        return total, parts

    def _head_loss(self, levels: List[torch.Tensor], targets: Sequence[Mapping[str, torch.Tensor]],
                   assigner: TaskAlignedAssigner) -> Tuple[torch.Tensor, Dict[str, float]]:
        x = flatten_levels(levels).transpose(1, 2)                              # [B, N, 4 + nc]
        b = x.shape[0]
        if len(targets) != b:
            raise ValueError(f"targets: expected {b} entries (one per image), got {len(targets)}")
        raw, logits = x[..., :4].float(), x[..., 4:].float()
        shapes = [(int(t.shape[-2]), int(t.shape[-1])) for t in levels]
        points, stride = make_anchors(shapes, self.strides[:len(levels)], device=x.device)
        pd_boxes = decode_ltrb(raw, points, stride)                             # [B, N, 4] pixels
        gt_boxes, gt_labels, gt_mask = pad_targets(targets, device=x.device)
        target_boxes, target_scores, fg = assigner(logits.detach().sigmoid(), pd_boxes.detach(), points * stride,
                                                   gt_labels, gt_boxes, gt_mask)
        norm = target_scores.sum().clamp(min=1.0)
        loss_cls = F.binary_cross_entropy_with_logits(logits, target_scores, reduction="sum") / norm
        if bool(fg.any()):
            weight = target_scores.sum(-1)[fg]                                  # [P]
            iou = bbox_iou(pd_boxes[fg], target_boxes[fg])
            loss_box = ((1.0 - iou) * weight).sum() / norm
            pts, st = points.expand(b, -1, -1)[fg], stride.expand(b, -1, -1)[fg]
            tb = target_boxes[fg] / st
            target_ltrb = torch.cat([pts - tb[:, :2], tb[:, 2:] - pts], -1)
            loss_l1 = ((raw[fg] - target_ltrb).abs().sum(-1) * weight).sum() / norm
        else:
            loss_box = loss_l1 = raw.sum() * 0.0
        loss = self.box_weight * loss_box + self.l1_weight * loss_l1 + self.cls_weight * loss_cls
        return loss, {"box": float(loss_box.detach()), "l1": float(loss_l1.detach()),
                      "cls": float(loss_cls.detach())}
