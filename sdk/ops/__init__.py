"""Box operations and non-maximum suppression in plain numpy, with ``torchvision.ops`` semantics.

``sdk.ops`` never imports torch; results of :func:`nms` and :func:`batched_nms` equal torchvision's.
"""
from __future__ import annotations

from sdk.ops.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes,
    cxcywh_to_xyxy,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from sdk.ops.nms import batched_nms, nms
from sdk.ops.soft_nms import soft_nms

__all__ = [
    "box_area",
    "box_convert",
    "box_iou",
    "clip_boxes",
    "cxcywh_to_xyxy",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
    "nms",
    "batched_nms",
    "soft_nms",
]
