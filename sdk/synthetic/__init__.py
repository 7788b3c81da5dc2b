"""Deterministic synthetic vision data (numpy + OpenCV only): shapes to detect, classify and verify.

Used to train the reference models (``converters``), by the runtime's ``synthetic://shapes`` camera
source, and for live accuracy checks on devices. Everything is a pure function of a seed.

Public API::

    CLASSES                                   # ("circle", "square", ..., "arrow"); order is part of the contract
    make_detection_sample(rng_or_seed, size_hw=(320, 320), *, min_objects=1, max_objects=8,
                          min_size=12, max_size=200, min_visible=0.4, classes=None, style=None)
        -> (image uint8 (H, W, 3), boxes float32 (N, 4) xyxy, class_ids int64 (N,))
    compose_detection(...) -> Composition     # same, with label map, visible fractions, full boxes
    make_classification_sample(rng_or_seed, size=64, *, class_id=None, classes=None, style=None)
        -> (image uint8 (size, size, 3), class_id)
    make_identity_sample(identity_id, rng_or_seed, size=96, *, max_rotation=40.0, style=None) -> image
    identity_ids("train" | "test", n) -> range; HELDOUT_IDENTITY_START = 100000; identity_template(id)
    DetectionDataset, ClassificationDataset, IdentityDataset, IdentityPairDataset, IdentityTripletDataset
    ShapesScene(size_hw=(720, 1280), seed=0, n_objects=8, ...).render(t) / .frame(index, fps)
    Style() / Style.easy() / Style.clean()    # nuisance knobs

Conventions:

* Images are BGR uint8. Boxes are ``x1, y1, x2, y2`` float32 in the pixel-edge convention: a box covers
  pixels ``x1 <= x < x2``, ``y1 <= y < y2`` (``x2`` is the last column + 1), tight to the *visible*
  pixels of the object's mask, so exact to the pixel (before blur, which spreads colour, not labels).
* An object is labelled iff its visible fraction (pixels inside the image and not covered by later
  objects, over its full mask's pixels) is ``>= min_visible`` (0.4). Samples never leave an unlabelled
  fragment; a moving scene may (see :attr:`Composition.ignore_boxes`).
* Object *size* is the longer side of the full (unoccluded, untruncated) object's tight box.
* Determinism: identical bytes for the same seed with the same numpy and OpenCV builds; dataset item
  ``i`` comes from ``np.random.default_rng(np.random.SeedSequence([seed, i]))``. Different library
  versions may change a few pixel values (OpenCV's resize and blur rounding), not the labels' meaning.
* Identity ids ``0 .. 99999`` are for training, ids ``>= 100000`` are held out.
"""
from __future__ import annotations

from .compose import Composition
from .datasets import (ClassificationDataset, DetectionDataset, IdentityDataset, IdentityPairDataset,
                       IdentityTripletDataset)
from .identity import HELDOUT_IDENTITY_START, identity_ids, identity_template, make_identity_sample
from .samples import compose_detection, make_classification_sample, make_detection_sample
from .scene import ShapesScene
from .shapes import CLASSES
from .style import Style

__all__ = [
    "CLASSES",
    "Style",
    "Composition",
    "make_detection_sample",
    "compose_detection",
    "make_classification_sample",
    "make_identity_sample",
    "identity_template",
    "identity_ids",
    "HELDOUT_IDENTITY_START",
    "DetectionDataset",
    "ClassificationDataset",
    "IdentityDataset",
    "IdentityPairDataset",
    "IdentityTripletDataset",
    "ShapesScene",
]
