"""Layering shapes onto an image: per-object masks, a label map, the visibility rule and exact boxes.

The visibility rule (used everywhere in :mod:`sdk.synthetic`):

* an object's *visible fraction* is the number of its pixels that lie inside the image and are not covered
  by an object drawn later, divided by the number of pixels of its full mask (on an unbounded canvas);
* an object is labelled iff its visible fraction is ``>= min_visible`` (default 0.4);
* its box is the tight box of its *visible* pixels, in the pixel-edge convention: pixels
  ``x1 <= x < x2, y1 <= y < y2`` (so ``x1`` is the first visible column and ``x2`` the last one plus 1,
  and ``x2 - x1`` counts pixels).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np

from .style import Style, contrasting_color, solid

if TYPE_CHECKING:  # pragma: no cover
    from ..results import Detections

__all__ = ["Placed", "Fill", "Composition", "LabelLayers", "draw_fill", "paint_object"]

DEFAULT_MIN_VISIBLE = 0.4


@dataclass
class Placed:
    """One object's full mask and where it lies in the image.

    Attributes:
        class_id: index into :data:`~sdk.synthetic.CLASSES`.
        mask: uint8 0/1 array of shape (h, w), cropped to the tight box of the full object.
        x0, y0: image position of ``mask[0, 0]`` (may be negative or past the image).
        object_id: identity of the object (a track id in a scene, the draw index in a sample).
    """

    class_id: int
    mask: np.ndarray
    x0: int
    y0: int
    object_id: int = -1

    @property
    def area(self) -> int:
        """Pixels of the full mask."""
        return int(cv2.countNonZero(self.mask))

    @property
    def full_box(self) -> tuple:
        """``(x1, y1, x2, y2)`` of the full mask, pixel-edge convention, possibly outside the image."""
        h, w = self.mask.shape
        return self.x0, self.y0, self.x0 + w, self.y0 + h

    def window(self, height: int, width: int) -> Optional[tuple]:
        """Image slice and mask slice of the part inside a (height, width) image, or None when outside.

        Returns:
            ``(image_slices, mask_slices)``, each a ``(slice_rows, slice_cols)`` tuple.
        """
        h, w = self.mask.shape
        ys, xs = max(self.y0, 0), max(self.x0, 0)
        ye, xe = min(self.y0 + h, height), min(self.x0 + w, width)
        if ye <= ys or xe <= xs:
            return None
        return ((slice(ys, ye), slice(xs, xe)),
                (slice(ys - self.y0, ye - self.y0), slice(xs - self.x0, xe - self.x0)))


@dataclass(frozen=True)
class Fill:
    """How an object is painted inside its mask (never outside, so boxes stay exact).

    Attributes:
        color: BGR main colour.
        kind: ``"solid"``, ``"shaded"`` (smooth light falloff), ``"stripes"`` or ``"outline"``.
        color2: second colour (stripes, outline).
        angle: stripe angle in radians.
        period: stripe period in pixels.
        shade: brightness factors at the 4 corners of the object's box (``"shaded"``).
        thickness: outline thickness in pixels.
    """

    color: tuple
    kind: str = "solid"
    color2: tuple = (0, 0, 0)
    angle: float = 0.0
    period: float = 8.0
    shade: tuple = (1.0, 1.0, 1.0, 1.0)
    thickness: int = 1


def draw_fill(rng: np.random.Generator, under: np.ndarray, style: Style, size: float) -> Fill:
    """Draw a fill whose colour contrasts with ``under`` (the mean BGR colour the object covers).

    Args:
        rng: random generator.
        under: float array of shape (3,).
        style: knobs (``min_contrast``, ``p_object_texture``).
        size: object size in pixels (stripe periods and outline widths scale with it).
    """
    color = contrasting_color(rng, under, style.min_contrast)
    if not rng.random() < style.p_object_texture or size < 10:
        return Fill(color)
    kind = ("shaded", "stripes", "outline")[int(rng.integers(3))]
    color2 = contrasting_color(rng, np.asarray(color, np.float64), 60.0)
    if kind == "shaded":
        return Fill(color, kind, shade=tuple(float(v) for v in rng.uniform(0.5, 1.3, 4)))
    if kind == "stripes":
        return Fill(color, kind, color2, angle=float(rng.uniform(0, math.pi)),
                    period=float(rng.uniform(3, max(4.0, size / 4))))
    return Fill(color, kind, color2, thickness=int(rng.integers(1, max(2, int(size) // 12) + 1)))


def paint_object(canvas: np.ndarray, placed: Placed, fill: Fill) -> None:
    """Paint ``placed`` onto ``canvas`` (uint8 (H, W, 3), in place), inside its mask only."""
    win = placed.window(*canvas.shape[:2])
    if win is None:
        return
    (iy, ix), (my, mx) = win
    sub = canvas[iy, ix]
    m = placed.mask[my, mx]
    h, w = m.shape
    if fill.kind == "solid":
        patch = solid(h, w, fill.color)
    elif fill.kind == "shaded":
        corners = np.array(fill.shade, np.float32).reshape(2, 2)
        gain = cv2.resize(corners, (placed.mask.shape[1], placed.mask.shape[0]), interpolation=cv2.INTER_LINEAR)
        gain = gain[my, mx]
        patch = np.clip(gain[:, :, None] * np.array(fill.color, np.float32), 0, 255).astype(np.uint8)
    elif fill.kind == "stripes":
        yy = np.arange(my.start, my.stop, dtype=np.float32)[:, None] * math.sin(fill.angle)
        xx = np.arange(mx.start, mx.stop, dtype=np.float32)[None, :] * math.cos(fill.angle)
        band = (np.floor((yy + xx) / fill.period) % 2).astype(bool)
        patch = solid(h, w, fill.color)
        patch[band] = fill.color2
    else:  # outline: a band along the inside of the full mask's border
        k = 2 * fill.thickness + 1
        inner = cv2.erode(placed.mask, np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
        patch = solid(h, w, fill.color2)
        cv2.copyTo(solid(h, w, fill.color), inner[my, mx], patch)
    cv2.copyTo(patch, m, sub)


class LabelLayers:
    """A label map of which object owns each visible pixel, with incremental visibility bookkeeping.

    Attributes:
        label_map: int16 array of shape (H, W), index of the visible object per pixel, -1 where none.
        objects: the :class:`Placed` objects, in drawing order (later ones on top).
    """

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width
        self.label_map = np.full((height, width), -1, np.int16)
        self.objects: list = []
        self._visible: list = []
        self._area: list = []

    def add(self, placed: Placed, min_visible: Optional[float] = None) -> bool:
        """Put ``placed`` on top of the others.

        Args:
            placed: the object.
            min_visible: when given, refuse (return False, change nothing) if the object itself, or any
                object already there, would end up with a visible fraction below it (including 0).

        Returns:
            True when the object was added.
        """
        win = placed.window(self.height, self.width)
        area = placed.area
        if win is None:
            if min_visible is not None:
                return False
            own, covered = 0, None
        else:
            (iy, ix), (my, mx) = win
            m = placed.mask[my, mx]
            sub = self.label_map[iy, ix]
            own = int(cv2.countNonZero(m))
            under = sub[m.view(bool)]
            under = under[under >= 0]
            covered = np.bincount(under, minlength=len(self.objects)) if under.size else None
            if min_visible is not None:
                if own < min_visible * area:
                    return False
                if covered is not None:
                    vis = np.asarray(self._visible) - covered
                    if np.any(vis < min_visible * np.asarray(self._area)):
                        return False
            k = len(self.objects)
            cv2.copyTo(np.full(m.shape, k, np.int16), m, sub)
        if covered is not None:
            for i in np.flatnonzero(covered):
                self._visible[i] -= int(covered[i])
        self.objects.append(placed)
        self._visible.append(own)
        self._area.append(area)
        return True

    def visibility(self) -> tuple:
        """Visible fraction and visible tight box of every object, measured on the label map.

        Returns:
            ``(fraction, boxes)``: float32 arrays of shapes (M,) and (M, 4); an invisible object's box is zeros.
        """
        m_count = len(self.objects)
        fraction = np.zeros(m_count, np.float32)
        boxes = np.zeros((m_count, 4), np.float32)
        for k, placed in enumerate(self.objects):
            win = placed.window(self.height, self.width)
            if win is None:
                continue
            (iy, ix), _ = win
            vis = self.label_map[iy, ix] == k
            cols = np.flatnonzero(vis.any(0))
            if cols.size == 0:
                continue
            rows = np.flatnonzero(vis.any(1))
            fraction[k] = np.count_nonzero(vis) / max(self._area[k], 1)
            boxes[k] = (ix.start + cols[0], iy.start + rows[0], ix.start + cols[-1] + 1, iy.start + rows[-1] + 1)
        return fraction, boxes


@dataclass
class Composition:
    """A rendered image with everything known about its objects (for tests, evaluation and debugging).

    Attributes:
        image: uint8 BGR array of shape (H, W, 3).
        label_map: int16 array of shape (H, W): index (into the per-object arrays) of the object visible at
            each pixel before camera effects, -1 for background.
        class_ids_all: int64 array of shape (M,), every drawn object's class, in drawing order.
        object_ids: int64 array of shape (M,): draw index in a sample, track id in a scene.
        visible_fraction: float32 array of shape (M,).
        visible_boxes: float32 array of shape (M, 4), tight boxes of visible pixels (zeros when invisible).
        full_boxes: float32 array of shape (M, 4), tight boxes of the full masks (may extend outside).
        min_visible: the labelling threshold.
    """

    image: np.ndarray
    label_map: np.ndarray
    class_ids_all: np.ndarray
    object_ids: np.ndarray
    visible_fraction: np.ndarray
    visible_boxes: np.ndarray
    full_boxes: np.ndarray
    min_visible: float = DEFAULT_MIN_VISIBLE

    @classmethod
    def from_layers(cls, image: np.ndarray, layers: LabelLayers, min_visible: float) -> "Composition":
        """Measure ``layers`` and bundle the result with ``image``."""
        fraction, boxes = layers.visibility()
        objs = layers.objects
        return cls(
            image=image,
            label_map=layers.label_map,
            class_ids_all=np.array([o.class_id for o in objs], np.int64),
            object_ids=np.array([o.object_id for o in objs], np.int64),
            visible_fraction=fraction,
            visible_boxes=boxes,
            full_boxes=np.array([o.full_box for o in objs], np.float32).reshape(-1, 4),
            min_visible=min_visible,
        )

    @property
    def keep(self) -> np.ndarray:
        """bool array of shape (M,): the objects that are labelled (visible fraction >= min_visible)."""
        return self.visible_fraction >= self.min_visible

    @property
    def boxes(self) -> np.ndarray:
        """float32 array of shape (N, 4): boxes of the labelled objects, xyxy, pixel-edge convention."""
        return self.visible_boxes[self.keep]

    @property
    def class_ids(self) -> np.ndarray:
        """int64 array of shape (N,): classes of the labelled objects."""
        return self.class_ids_all[self.keep]

    def to_detections(self) -> "Detections":
        """The labelled objects as :class:`sdk.results.Detections` (confidence 1, labels :data:`CLASSES`)."""
        from ..results import Detections
        from .shapes import CLASSES

        return Detections(self.boxes, np.ones(len(self.boxes), np.float32), self.class_ids, labels=CLASSES,
                          tracker_id=self.object_ids[self.keep])

    @property
    def ignore_boxes(self) -> np.ndarray:
        """float32 array of shape (K, 4): visible but unlabelled fragments (an evaluator may ignore them)."""
        return self.visible_boxes[(self.visible_fraction > 0) & ~self.keep]
