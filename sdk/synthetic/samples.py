"""Single samples: detection images with exact boxes, and classification crops."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from .compose import DEFAULT_MIN_VISIBLE, Composition, LabelLayers, Placed, draw_fill, paint_object
from .shapes import CLASSES, rasterize_to_size, sample_geometry
from .style import Style, apply_camera, check_style, make_background

__all__ = ["as_rng", "compose_detection", "make_detection_sample", "make_classification_sample"]

RngLike = Union[int, np.integer, np.random.Generator, np.random.SeedSequence]

MIN_IMAGE_SIDE = 16
MIN_OBJECT_SIZE = 4
_P_TRUNCATED = 0.15      # chance an object may cross the image border (at most 30 % of its box outside)
_TRIES = 6               # placements tried for an optional object before it is skipped
_TRIES_REQUIRED = 60     # placements tried for each of the first `min_objects` objects


def as_rng(rng_or_seed: RngLike) -> np.random.Generator:
    """Return a ``numpy.random.Generator``: the one given, or a new one from an int seed or a SeedSequence.

    Raises:
        ValueError: for a negative seed.
        TypeError: for anything else.
    """
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    if isinstance(rng_or_seed, np.random.SeedSequence):
        return np.random.default_rng(rng_or_seed)
    if isinstance(rng_or_seed, (int, np.integer)) and not isinstance(rng_or_seed, bool):
        if rng_or_seed < 0:
            raise ValueError(f"seed: expected an int >= 0, got {rng_or_seed}")
        return np.random.default_rng(int(rng_or_seed))
    raise TypeError(f"rng_or_seed: expected an int seed, numpy.random.Generator or SeedSequence, "
                    f"got {type(rng_or_seed).__name__}")


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int, or raise ValueError/TypeError naming the argument."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    return int(value)


def check_size_hw(size_hw: object, minimum: int = MIN_IMAGE_SIDE) -> tuple:
    """Validate an image size ``(height, width)``."""
    if not isinstance(size_hw, (tuple, list)) or len(size_hw) != 2:
        raise ValueError(f"size_hw: expected (height, width), got {size_hw!r}")
    h, w = size_hw
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (h, w)) \
            or min(h, w) < minimum:
        raise ValueError(f"size_hw: expected (height, width) ints both >= {minimum}, got {tuple(size_hw)!r}")
    return int(h), int(w)


def check_classes(classes: Optional[Sequence[int]]) -> tuple:
    """Validate a subset of class ids (None means all of :data:`CLASSES`)."""
    if classes is None:
        return tuple(range(len(CLASSES)))
    out = tuple(classes)
    if not out or not all(isinstance(c, (int, np.integer)) and 0 <= c < len(CLASSES) for c in out):
        raise ValueError(f"classes: expected a non-empty sequence of class ids in [0, {len(CLASSES)}), got {classes!r}")
    return tuple(int(c) for c in out)


def check_detection_args(size_hw: object, min_objects: int, max_objects: int, min_size: int, max_size: int,
                         min_visible: float) -> tuple:
    """Validate :func:`make_detection_sample`'s arguments; return ``(h, w, max_size_clamped)``."""
    h, w = check_size_hw(size_hw)
    check_int("min_objects", min_objects, 0)
    check_int("max_objects", max_objects, 0)
    if max_objects < min_objects:
        raise ValueError(f"max_objects: expected >= min_objects ({min_objects}), got {max_objects}")
    check_int("min_size", min_size, MIN_OBJECT_SIZE)
    check_int("max_size", max_size, MIN_OBJECT_SIZE)
    if max_size < min_size:
        raise ValueError(f"max_size: expected >= min_size ({min_size}), got {max_size}")
    if min_size > min(h, w):
        raise ValueError(f"min_size: expected <= the image's shorter side ({min(h, w)} px), got {min_size}")
    if min_objects * min_size * min_size > h * w // 2:
        raise ValueError(f"min_objects: {min_objects} objects of >= {min_size} px do not fit a {h}x{w} image "
                         f"(expected min_objects * min_size**2 <= {h * w // 2}, got {min_objects * min_size ** 2})")
    if not isinstance(min_visible, (int, float)) or not 0.0 < min_visible <= 1.0:
        raise ValueError(f"min_visible: expected a fraction in (0, 1], got {min_visible!r}")
    return h, w, min(max_size, h, w)


def _log_uniform_int(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))))


def compose_detection(rng_or_seed: RngLike, size_hw: tuple = (320, 320), *, min_objects: int = 1,
                      max_objects: int = 8, min_size: int = 12, max_size: int = 200,
                      min_visible: float = DEFAULT_MIN_VISIBLE, classes: Optional[Sequence[int]] = None,
                      style: Optional[Style] = None) -> Composition:
    """Like :func:`make_detection_sample`, returning the full :class:`Composition` (masks, visibility)."""
    h, w, max_size = check_detection_args(size_hw, min_objects, max_objects, min_size, max_size, min_visible)
    class_pool = check_classes(classes)
    style = check_style(style)
    rng = as_rng(rng_or_seed)

    canvas = make_background(rng, h, w, style)
    layers = LabelLayers(h, w)
    n = int(rng.integers(min_objects, max_objects + 1))
    for j in range(n):
        required = j < min_objects
        for attempt in range(_TRIES_REQUIRED if required else _TRIES):
            hi = max_size
            if attempt >= 10:  # crowded: shrink the largest allowed size step by step
                hi = max(min_size, int(max_size * 0.6 ** ((attempt - 5) // 5)))
            size = _log_uniform_int(rng, min_size, hi)
            geom = sample_geometry(class_pool[int(rng.integers(len(class_pool)))], rng)
            angle = rng.uniform(0, 2 * math.pi)
            margin = -0.3 * size if rng.random() < _P_TRUNCATED else 0.0
            cx = rng.uniform(size / 2 + margin, w - size / 2 - margin)
            cy = rng.uniform(size / 2 + margin, h - size / 2 - margin)
            mask, x0, y0 = rasterize_to_size(geom, size, angle, cx, cy)
            if layers.add(Placed(geom.class_id, mask, x0, y0, len(layers.objects)), min_visible):
                break
        if required and len(layers.objects) <= j:
            raise RuntimeError(f"compose_detection: could not place object {j + 1} of min_objects={min_objects} "
                               f"in {_TRIES_REQUIRED} tries; lower min_objects or min_size")
    for placed in layers.objects:
        win = placed.window(h, w)
        (iy, ix), (my, mx) = win
        under = np.array(cv2.mean(canvas[iy, ix], mask=placed.mask[my, mx])[:3])
        paint_object(canvas, placed, draw_fill(rng, under, style, max(placed.mask.shape)))
    image = apply_camera(canvas, rng, style)
    return Composition.from_layers(image, layers, min_visible)


def make_detection_sample(rng_or_seed: RngLike, size_hw: tuple = (320, 320), *, min_objects: int = 1,
                          max_objects: int = 8, min_size: int = 12, max_size: int = 200,
                          min_visible: float = DEFAULT_MIN_VISIBLE, classes: Optional[Sequence[int]] = None,
                          style: Optional[Style] = None) -> tuple:
    """Draw one detection image: several shapes on a cluttered background, with exact ground truth.

    Object sizes (the longer side of an object's full, unoccluded tight box) are log-uniform in
    ``[min_size, min(max_size, H, W)]``, exact to the pixel. Objects overlap and may cross the border;
    placements that would leave any object with a visible fraction below ``min_visible`` are redrawn or
    skipped, so every shape fragment in the image is labelled (see :mod:`sdk.synthetic.compose` for the rule).

    Args:
        rng_or_seed: an int seed, a ``numpy.random.Generator`` (consumed) or a ``SeedSequence``.
        size_hw: image ``(height, width)``, both >= 16.
        min_objects: fewest objects (honoured; must fit: ``min_objects * min_size**2 <= H * W / 2``).
        max_objects: most objects.
        min_size: smallest object size in pixels (>= 4).
        max_size: largest object size in pixels (clamped to the image's shorter side).
        min_visible: labelling threshold on the visible fraction, in (0, 1].
        classes: class ids to draw from (default: all of :data:`CLASSES`).
        style: nuisance knobs (default: :class:`Style` ``()``, the hard mix).

    Returns:
        ``(image, boxes, class_ids)``: uint8 BGR array of shape (H, W, 3); float32 array of shape (N, 4),
        ``x1, y1, x2, y2`` tight boxes of the visible pixels, pixel-edge convention (``x2`` = last column + 1);
        int64 array of shape (N,).

    Raises:
        ValueError: for a size below the minimum, ``min_size > max_size``, negative counts, and so on
            (the message says what was expected and what came).
        TypeError: for a non-integer count or size, or a bad ``rng_or_seed``.
        RuntimeError: when ``min_objects`` objects cannot be placed (only near the fit limit).
    """
    comp = compose_detection(rng_or_seed, size_hw, min_objects=min_objects, max_objects=max_objects,
                             min_size=min_size, max_size=max_size, min_visible=min_visible, classes=classes,
                             style=style)
    return comp.image, comp.boxes, comp.class_ids


def make_classification_sample(rng_or_seed: RngLike, size: int = 64, *, class_id: Optional[int] = None,
                               classes: Optional[Sequence[int]] = None, style: Optional[Style] = None) -> tuple:
    """Draw one classification crop: a dominant shape on a cluttered background.

    The shape's size is 40-90 % of the crop, fully inside it, any rotation; with probability
    ``0.5 * style.p_clutter`` one or two smaller (<= 30 % of the crop) shapes of *other* classes sit under it
    near the crop's border, as in a detector's crop of a crowded scene.

    Args:
        rng_or_seed: an int seed, a ``numpy.random.Generator`` (consumed) or a ``SeedSequence``.
        size: crop side in pixels (>= 16).
        class_id: the class to draw (default: uniform over ``classes``).
        classes: class ids to draw from (default: all of :data:`CLASSES`).
        style: nuisance knobs.

    Returns:
        ``(image, class_id)``: uint8 BGR array of shape (size, size, 3) and an int.

    Raises:
        ValueError: for ``size < 16`` or a class id out of range.
    """
    size = check_int("size", size, MIN_IMAGE_SIDE)
    pool = check_classes(classes)
    if class_id is not None:
        class_id = check_classes([class_id])[0]
    style = check_style(style)
    rng = as_rng(rng_or_seed)
    if class_id is None:
        class_id = pool[int(rng.integers(len(pool)))]

    canvas = make_background(rng, size, size, style)
    objects = []
    if rng.random() < 0.5 * style.p_clutter:
        others = [c for c in range(len(CLASSES)) if c != class_id]
        for _ in range(int(rng.integers(1, 3))):
            s = max(4, int(size * rng.uniform(0.15, 0.3)))
            side = rng.integers(4)
            along = rng.uniform(0, size)
            edge = rng.uniform(-0.2, 0.35) * s
            cx, cy = [(edge, along), (size - edge, along), (along, edge), (along, size - edge)][int(side)]
            geom = sample_geometry(others[int(rng.integers(len(others)))], rng)
            objects.append(Placed(geom.class_id, *rasterize_to_size(geom, s, rng.uniform(0, 2 * math.pi), cx, cy)))
    s = int(round(size * rng.uniform(0.4, 0.9)))
    slack = (size - s) / 2
    cx, cy = size / 2 + rng.uniform(-slack, slack, 2) * 0.9
    geom = sample_geometry(class_id, rng)
    objects.append(Placed(class_id, *rasterize_to_size(geom, s, rng.uniform(0, 2 * math.pi), cx, cy)))
    for placed in objects:
        win = placed.window(size, size)
        if win is None:
            continue
        (iy, ix), (my, mx) = win
        under = np.array(cv2.mean(canvas[iy, ix], mask=placed.mask[my, mx])[:3])
        paint_object(canvas, placed, draw_fill(rng, under, style, max(placed.mask.shape)))
    return apply_camera(canvas, rng, style), int(class_id)
