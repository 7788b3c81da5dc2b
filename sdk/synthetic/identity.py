"""Identities for one-shot verification (the Siamese model): parametric badges rendered under nuisances.

An *identity* is a badge drawn from the identity's own seed: a plate (circle, square, hexagon or triangle)
with a colour and a pattern, carrying 2-4 shapes with fixed classes, colours, sizes, rotations and layout.
:func:`make_identity_sample` renders it under random pose (rotation, scale, aspect, shear, position),
lighting, blur, noise, JPEG, background and foreground clutter, so two renders of one identity differ
but stay recognisable.

Splits (a convention every trainer and evaluator uses): identity ids ``0 .. HELDOUT_IDENTITY_START - 1``
are for training, ids ``>= HELDOUT_IDENTITY_START`` (100000) are held out; :func:`identity_ids` returns
either range. An identity's look depends only on its id, never on the sample seed.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import cv2
import numpy as np

from .compose import Fill, Placed, paint_object
from .samples import MIN_IMAGE_SIDE, RngLike, as_rng, check_int
from .shapes import CLASSES, rasterize, sample_geometry
from .style import Style, draw_clutter, apply_camera, check_style, contrasting_color, make_background

__all__ = ["HELDOUT_IDENTITY_START", "identity_ids", "identity_template", "make_identity_sample"]

#: First held-out identity id: ids below it are for training, ids from it on are never trained on.
HELDOUT_IDENTITY_START = 100_000
_SALT = 0x1D5EED  # keeps identity looks independent of any dataset seed
_RES = 128        # template resolution
_PLATES = ("circle", "square", "hexagon", "triangle")


def identity_ids(split: str, n: int) -> range:
    """The first ``n`` identity ids of a split.

    Args:
        split: ``"train"`` (ids from 0) or ``"test"`` / ``"heldout"`` (ids from :data:`HELDOUT_IDENTITY_START`).
        n: how many (``train`` allows at most 100000).

    Raises:
        ValueError: for an unknown split or a bad ``n``.
    """
    n = check_int("n", n, 1)
    if split == "train":
        if n > HELDOUT_IDENTITY_START:
            raise ValueError(f"n: expected <= {HELDOUT_IDENTITY_START} train identities, got {n}")
        return range(n)
    if split in ("test", "heldout"):
        return range(HELDOUT_IDENTITY_START, HELDOUT_IDENTITY_START + n)
    raise ValueError(f"split: expected 'train', 'test' or 'heldout', got {split!r}")


@functools.lru_cache(maxsize=512)
def identity_template(identity_id: int) -> tuple:
    """The canonical, pose-free badge of one identity (cached; read-only arrays).

    Args:
        identity_id: int >= 0.

    Returns:
        ``(bgr, alpha)``: uint8 arrays of shapes (128, 128, 3) and (128, 128), alpha 0 or 255.
    """
    identity_id = check_int("identity_id", identity_id, 0)
    rng = np.random.default_rng(np.random.SeedSequence([_SALT, identity_id]))
    canvas = np.zeros((_RES, _RES, 3), np.uint8)
    alpha = np.zeros((_RES, _RES), np.uint8)
    c = (_RES - 1) / 2

    plate_geom = sample_geometry(CLASSES.index(_PLATES[int(rng.integers(len(_PLATES)))]), rng)
    plate = Placed(plate_geom.class_id, *rasterize(plate_geom, 0.47 * _RES, rng.uniform(0, 2 * math.pi), c, c))
    plate_color = tuple(int(v) for v in rng.integers(0, 256, 3))
    pattern = ("solid", "stripes", "shaded", "outline")[int(rng.integers(4))]
    fill = Fill(plate_color, pattern, contrasting_color(rng, np.array(plate_color, float), 50.0),
                angle=float(rng.uniform(0, math.pi)), period=float(rng.uniform(6, 20)),
                shade=tuple(float(v) for v in rng.uniform(0.6, 1.2, 4)), thickness=int(rng.integers(3, 9)))
    paint_object(canvas, plate, fill)
    _stamp(alpha, plate)

    for _ in range(int(rng.integers(2, 5))):
        geom = sample_geometry(int(rng.integers(len(CLASSES))), rng)
        r, t = rng.uniform(0, 0.27 * _RES), rng.uniform(0, 2 * math.pi)
        part = Placed(geom.class_id, *rasterize(geom, rng.uniform(0.1, 0.2) * _RES, rng.uniform(0, 2 * math.pi),
                                               c + r * math.cos(t), c + r * math.sin(t)))
        color = contrasting_color(rng, np.array(plate_color, float), 110.0)
        kind = "outline" if rng.random() < 0.25 else "solid"
        paint_object(canvas, part, Fill(color, kind, contrasting_color(rng, np.array(color, float), 80.0),
                                        thickness=int(rng.integers(2, 5))))
        _stamp(alpha, part)
    canvas.setflags(write=False)
    alpha.setflags(write=False)
    return canvas, alpha


def _stamp(alpha: np.ndarray, placed: Placed) -> None:
    win = placed.window(*alpha.shape)
    if win is not None:
        (iy, ix), (my, mx) = win
        cv2.copyTo(np.full(placed.mask[my, mx].shape, 255, np.uint8), placed.mask[my, mx], alpha[iy, ix])


def make_identity_sample(identity_id: int, rng_or_seed: RngLike, size: int = 96, *,
                         max_rotation: float = 40.0, style: Optional[Style] = None) -> np.ndarray:
    """Render one identity under random nuisances.

    Args:
        identity_id: which badge (see :func:`identity_ids` for the train / held-out split).
        rng_or_seed: an int seed, a ``numpy.random.Generator`` (consumed) or a ``SeedSequence``.
        size: image side in pixels (>= 16).
        max_rotation: largest in-plane rotation in degrees (either way).
        style: nuisance knobs (background, clutter, lighting, blur, noise, JPEG).

    Returns:
        uint8 BGR array of shape (size, size, 3); the badge spans 55-95 % of it.

    Raises:
        ValueError: for a negative id or ``size < 16``.
    """
    bgr, alpha = identity_template(identity_id)
    size = check_int("size", size, MIN_IMAGE_SIDE)
    style = check_style(style)
    rng = as_rng(rng_or_seed)

    image = make_background(rng, size, size, style)
    diameter = size * rng.uniform(0.55, 0.95)
    scale = diameter / (0.94 * _RES)
    rot = math.radians(rng.uniform(-max_rotation, max_rotation))
    aspect = math.exp(rng.uniform(-0.14, 0.14))
    shear = rng.uniform(-0.15, 0.15)
    centre = size / 2 + rng.uniform(-1, 1, 2) * (size - diameter) / 2 * 0.8
    cr, sr = math.cos(rot), math.sin(rot)
    linear = np.array([[cr, -sr], [sr, cr]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([aspect, 1 / aspect]) * scale
    offset = centre - linear @ np.array([(_RES - 1) / 2, (_RES - 1) / 2])
    m = np.hstack([linear, offset[:, None]]).astype(np.float64)

    premult = bgr.astype(np.float32) * (alpha[:, :, None].astype(np.float32) / 255.0)
    cover = alpha.astype(np.float32) / 255.0
    if scale < 0.8:  # shrink with area averaging first, so the warp does not alias
        res = max(8, int(round(_RES * scale)))
        premult = cv2.resize(premult, (res, res), interpolation=cv2.INTER_AREA)
        cover = cv2.resize(cover, (res, res), interpolation=cv2.INTER_AREA)
        k = _RES / res  # template pixel p = (q + 0.5) * k - 0.5 for small-template pixel q
        m[:, 2] += m[:, :2] @ np.array([0.5 * k - 0.5, 0.5 * k - 0.5])
        m[:, :2] *= k
    fg = cv2.warpAffine(premult, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)
    a = cv2.warpAffine(cover, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                       borderValue=0)
    out = image.astype(np.float32) * (1.0 - a[:, :, None]) + fg
    image = np.clip(out, 0, 255).astype(np.uint8)
    if style.max_clutter > 0 and rng.random() < 0.4 * style.p_clutter:  # foreground clutter occludes a little
        draw_clutter(rng, image, int(rng.integers(1, 3)))
    return apply_camera(image, rng, style)


