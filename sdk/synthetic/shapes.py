"""Shape classes of the synthetic data: unit outlines and exact rasterisation to masks.

Every shape is a polygon (a ring is a polygon with a polygonal hole) in *unit* coordinates: centred near
the origin with circumradius 1, so a scene can rotate it without its size "breathing". Rasterising gives
a hard-edged ``uint8`` 0/1 mask cropped to its tight box plus the mask's offset in the image, which is
what makes every ground-truth box exact to the pixel.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

__all__ = ["CLASSES", "ShapeGeometry", "sample_geometry", "rasterize", "rasterize_to_size"]

#: Class names, indexed by class id. The order is part of the data contract of every model trained on
#: this data: append new classes at the end, never reorder.
CLASSES: tuple = ("circle", "square", "triangle", "star", "hexagon", "cross", "ring", "arrow")

_SHIFT = 4  # fillPoly fractional bits: vertices are placed to 1/16 px, so motion is sub-pixel smooth
_CIRCLE_POINTS = 96


@dataclass(frozen=True)
class ShapeGeometry:
    """Outline of one shape instance in unit coordinates (circumradius 1, centred near the origin).

    Attributes:
        class_id: index into :data:`CLASSES`.
        outer: float64 array of shape (P, 2), the outline's ``x, y`` vertices.
        hole: optional float64 array of shape (Q, 2), a hole cut out of the outline (the ring's).
    """

    class_id: int
    outer: np.ndarray
    hole: Optional[np.ndarray] = None

    def rotated(self, angle: float) -> tuple:
        """Return ``(outer, hole)`` rotated by ``angle`` radians (counter-clockwise on screen is negative y)."""
        c, s = math.cos(angle), math.sin(angle)
        rot = np.array([[c, s], [-s, c]])
        return self.outer @ rot, (None if self.hole is None else self.hole @ rot)


@functools.lru_cache(maxsize=16)
def _unit_regular(n: int, phase: float) -> np.ndarray:
    a = phase + np.arange(n) * (2 * math.pi / n)
    out = np.stack([np.cos(a), np.sin(a)], axis=1)
    out.setflags(write=False)
    return out


def _regular(n: int, radius: float = 1.0, phase: float = -math.pi / 2) -> np.ndarray:
    """Vertices of a regular n-gon (a fresh array; the unit one is cached)."""
    return _unit_regular(n, phase) * radius


def _normalised(points: np.ndarray) -> np.ndarray:
    points = points - (points.max(0) + points.min(0)) / 2
    return points / np.sqrt((points ** 2).sum(1)).max()


def sample_geometry(class_id: int, rng: np.random.Generator) -> ShapeGeometry:
    """Draw one instance of a shape class, with small class-preserving jitter of its proportions.

    Args:
        class_id: index into :data:`CLASSES`.
        rng: random generator (consumed).

    Returns:
        The instance's :class:`ShapeGeometry`.

    Raises:
        ValueError: when ``class_id`` is out of range.
    """
    name = CLASSES[_check_class_id(class_id)]
    hole = None
    if name == "circle":
        outer = _regular(_CIRCLE_POINTS)
    elif name == "square":
        outer = _regular(4, phase=math.pi / 4)
    elif name == "triangle":
        a = -math.pi / 2 + np.arange(3) * (2 * math.pi / 3) + rng.uniform(-0.12, 0.12, 3)
        r = rng.uniform(0.9, 1.0, 3)
        outer = _normalised(np.stack([r * np.cos(a), r * np.sin(a)], axis=1))
    elif name == "star":
        outer = _regular(10)
        outer[1::2] *= rng.uniform(0.38, 0.5)
    elif name == "hexagon":
        outer = _regular(6)
    elif name == "cross":
        w = rng.uniform(0.24, 0.34)
        p = np.array([[w, -1], [w, -w], [1, -w], [1, w], [w, w], [w, 1],
                      [-w, 1], [-w, w], [-1, w], [-1, -w], [-w, -w], [-w, -1]])
        outer = _normalised(p)
    elif name == "ring":
        outer = _regular(_CIRCLE_POINTS)
        hole = _regular(_CIRCLE_POINTS, radius=rng.uniform(0.45, 0.62))
    elif name == "arrow":
        a, b, h = rng.uniform(0.16, 0.26), rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.3)
        outer = _normalised(np.array([[-1, -a], [h, -a], [h, -b], [1, 0], [h, b], [h, a], [-1, a]]))
    else:  # pragma: no cover - CLASSES and this table are edited together
        raise AssertionError(name)
    return ShapeGeometry(int(class_id), outer.astype(np.float64), hole)


def _check_class_id(class_id: int) -> int:
    if not isinstance(class_id, (int, np.integer)) or not 0 <= int(class_id) < len(CLASSES):
        raise ValueError(f"class_id: expected an int in [0, {len(CLASSES)}), got {class_id!r}")
    return int(class_id)


def rasterize(geometry: ShapeGeometry, scale: float, angle: float, cx: float, cy: float) -> tuple:
    """Fill a shape into a hard-edged mask.

    Args:
        geometry: the shape instance.
        scale: circumradius in pixels.
        angle: rotation in radians.
        cx, cy: image position (pixels; pixel centres are at integers) of the unit origin.

    Returns:
        ``(mask, x0, y0)``: ``mask`` is a uint8 array of shape (h, w) holding 0/1, cropped to the tight box
        of its set pixels (so ``x0, y0, x0 + w, y0 + h`` is the full object's exact box, in image pixels,
        possibly outside the image); never empty.
    """
    outer, hole = geometry.rotated(angle)
    outer = outer * scale + (cx, cy)
    x0 = int(math.floor(outer[:, 0].min())) - 1
    y0 = int(math.floor(outer[:, 1].min())) - 1
    w = int(math.ceil(outer[:, 0].max())) - x0 + 2
    h = int(math.ceil(outer[:, 1].max())) - y0 + 2
    mask = np.zeros((h, w), np.uint8)
    origin = np.array([x0, y0], np.float64)
    cv2.fillPoly(mask, [np.round((outer - origin) * (1 << _SHIFT)).astype(np.int32)], 1, cv2.LINE_8, _SHIFT)
    if hole is not None:
        hole = hole * scale + (cx, cy)
        cv2.fillPoly(mask, [np.round((hole - origin) * (1 << _SHIFT)).astype(np.int32)], 0, cv2.LINE_8, _SHIFT)
    cols = np.flatnonzero(mask.any(0))
    rows = np.flatnonzero(mask.any(1))
    if cols.size == 0:  # degenerate (sub-pixel) shape: keep its centre pixel
        return np.ones((1, 1), np.uint8), int(round(cx)), int(round(cy))
    mask = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return np.ascontiguousarray(mask), x0 + int(cols[0]), y0 + int(rows[0])


def rasterize_to_size(geometry: ShapeGeometry, size: int, angle: float, cx: float, cy: float) -> tuple:
    """Fill a shape so that its mask's tight box has ``max(w, h) == size`` pixels (exact).

    ``cx, cy`` is the centre of the object's box. Returns ``(mask, x0, y0)`` as :func:`rasterize`.
    """
    outer, _ = geometry.rotated(angle)
    lo, hi = outer.min(0), outer.max(0)
    extent = float((hi - lo).max())
    centre = (lo + hi) / 2
    scale = max(size - 1, 0.5) / extent
    for _ in range(4):
        mask, x0, y0 = rasterize(geometry, scale, angle, cx - centre[0] * scale, cy - centre[1] * scale)
        got = max(mask.shape)
        if got == size:
            break
        scale *= max(size - 1, 0.5) / max(got - 1, 0.5) if got > 1 else 1.5
    return mask, x0, y0
