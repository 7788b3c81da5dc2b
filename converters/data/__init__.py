"""Datasets for training and evaluation: readers for users' data, synthetic splits, writers, torch collation.

Item formats (the same as :mod:`sdk.synthetic`'s datasets, so trainers and evaluators take either):

* detection: ``(image, boxes, class_ids)`` -- uint8 BGR (H, W, 3); float32 (N, 4) ``x1, y1, x2, y2`` pixels,
  pixel-edge convention (``x2`` = last covered column + 1, so ``w = x2 - x1``); int64 (N,);
* classification: ``(image, class_id)``; identities: ``(image, identity)``; pairs: ``(image_a, image_b, same)``.

Readers (torch-free; labels validated when built, images read with ``cv2.imread`` on indexing)::

    ImageFolderDataset(root)                          # root/<class>/*.jpg, class ids = sorted folder names
    YoloDetectionDataset(images_dir, labels_dir=None, names=None | [..] | {id: name} | "data.yaml")
    YoloDetectionDataset.from_yaml("data.yaml", split="val")
    CocoDetectionDataset(images_dir, annotations_json) # category ids -> contiguous 0..C-1 (.category_ids)
    IdentityFolderDataset(root)                        # root/<identity>/*.jpg

Malformed data raises :class:`DatasetError` (a ``ValueError``) whose message starts with ``file[:line]:``.

Synthetic splits with fixed, disjoint seeds (train = training and calibration; val = gates; test = reports)::

    make_split("train" | "val" | "test", task="detect" | "classify" | "identity" | "pairs" | "triplets", length)

Writers: :func:`write_yolo_dataset`, :func:`write_coco_json`. Torch (imported lazily):
:func:`to_torch_detection_batch`, :func:`detection_collate`, :func:`classification_collate`.
"""
from __future__ import annotations

from ._common import IMAGE_EXTENSIONS, DatasetError, list_images, read_image
from .coco import CocoDetectionDataset
from .folders import IdentityFolderDataset, ImageFolderDataset
from .synthetic import (DEFAULT_LENGTHS, SPLIT_SEEDS, SPLITS, TASK_SEED_OFFSETS, TASKS, SyntheticClassificationDataset,
                        SyntheticDetectionDataset, SyntheticIdentityDataset, SyntheticPairDataset,
                        SyntheticTripletDataset, make_split, split_identities, split_seed)
from .torch_adapters import classification_collate, detection_collate, image_to_tensor, to_torch_detection_batch
from .writers import write_coco_json, write_yolo_dataset
from .yolo import YoloDetectionDataset, parse_yolo_labels, read_names

__all__ = [
    "DatasetError", "IMAGE_EXTENSIONS", "list_images", "read_image",
    "ImageFolderDataset", "IdentityFolderDataset", "YoloDetectionDataset", "CocoDetectionDataset",
    "parse_yolo_labels", "read_names",
    "SPLITS", "TASKS", "SPLIT_SEEDS", "TASK_SEED_OFFSETS", "DEFAULT_LENGTHS", "make_split", "split_seed",
    "split_identities", "SyntheticDetectionDataset", "SyntheticClassificationDataset", "SyntheticIdentityDataset",
    "SyntheticPairDataset", "SyntheticTripletDataset",
    "write_yolo_dataset", "write_coco_json",
    "image_to_tensor", "to_torch_detection_batch", "detection_collate", "classification_collate",
]
