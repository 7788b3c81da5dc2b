"""Torch collate functions for the datasets' items (torch is imported inside the functions only).

The datasets are plain map-style sequences, so ``torch.utils.data.DataLoader(dataset, collate_fn=...)``
works directly::

    loader = DataLoader(make_split("train", "detect"), batch_size=16, collate_fn=detection_collate)
    images, targets = next(iter(loader))   # list of (3, H, W) float tensors, list of {"boxes", "labels"}
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ._common import detection_item

__all__ = ["image_to_tensor", "to_torch_detection_batch", "detection_collate", "classification_collate"]


def image_to_tensor(image: np.ndarray, *, rgb: bool = True) -> Any:
    """BGR uint8 (H, W, 3) -> float32 tensor (3, H, W) in [0, 1] (RGB order when ``rgb``)."""
    import torch

    arr = np.ascontiguousarray(image[:, :, ::-1] if rgb else image)
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


def to_torch_detection_batch(items: Sequence, *, rgb: bool = True, label_offset: int = 0,
                             device: Optional[Any] = None) -> tuple:
    """Detection items to torchvision's detection format.

    Args:
        items: sequence of ``(image, boxes, class_ids)`` (uint8 BGR (H, W, 3), float32 (N, 4) xyxy, int64 (N,)).
        rgb: convert BGR to RGB (torchvision models are trained on RGB).
        label_offset: added to class ids (1 for torchvision SSD / Faster R-CNN, whose label 0 is background).
        device: optional torch device to move the tensors to.

    Returns:
        ``(images, targets)``: a list of float32 tensors (3, H, W) in [0, 1] (sizes may differ) and a list of
        ``{"boxes": float32 (N, 4), "labels": int64 (N,)}``.

    Raises:
        ValueError: for a malformed item.
    """
    import torch

    images, targets = [], []
    for i, item in enumerate(items):
        image, boxes, class_ids = detection_item(item, i)
        t = image_to_tensor(image, rgb=rgb)
        target = {"boxes": torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
                  "labels": torch.from_numpy(class_ids + int(label_offset))}
        if device is not None:
            t = t.to(device)
            target = {k: v.to(device) for k, v in target.items()}
        images.append(t)
        targets.append(target)
    return images, targets


def detection_collate(items: Sequence) -> tuple:
    """``collate_fn`` for detection items: :func:`to_torch_detection_batch` with its defaults."""
    return to_torch_detection_batch(items)


def classification_collate(items: Sequence, *, rgb: bool = True) -> tuple:
    """``collate_fn`` for ``(image, class_id)`` items of one size.

    Returns:
        ``(images, labels)``: float32 tensor (B, 3, H, W) in [0, 1] and int64 tensor (B,).

    Raises:
        ValueError: when the images differ in size (resize them in the dataset's transform first).
    """
    import torch

    shapes = {np.shape(it[0]) for it in items}
    if len(shapes) > 1:
        raise ValueError(f"classification_collate: expected images of one size, got {sorted(shapes)[:4]}")
    images = torch.stack([image_to_tensor(np.asarray(it[0]), rgb=rgb) for it in items])
    labels = torch.tensor([int(it[1]) for it in items], dtype=torch.int64)
    return images, labels
