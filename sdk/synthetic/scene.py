"""A moving scene for video: shapes bouncing around, or passing through, a fixed cluttered background.

Used by the runtime's ``synthetic://shapes`` camera source and by live accuracy checks: every frame comes
with exact boxes (the visibility rule of :mod:`sdk.synthetic.compose`) and per-object track ids.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from .compose import DEFAULT_MIN_VISIBLE, Composition, Fill, LabelLayers, Placed, draw_fill, paint_object
from .samples import check_int, check_size_hw
from .shapes import CLASSES, ShapeGeometry, rasterize, sample_geometry
from .style import Style, check_style, make_background

__all__ = ["ShapesScene"]

_SALT = 0x5CE4E
_PAD = 64  # noise field margin: each frame reads the field at a different offset


@dataclass(frozen=True)
class _Actor:
    """One object's look and path; ``start``/``end`` are centres in pixels, times in seconds."""

    geometry: ShapeGeometry
    fill: Fill
    radius: float     # circumradius in pixels, before pulsing
    pulse: float      # relative size change amplitude
    pulse_freq: float
    pulse_phase: float
    angle0: float
    spin: float       # rad/s
    start: np.ndarray
    velocity: np.ndarray  # px/s
    duration: float   # seconds on screen (pass), inf (bounce)
    track_id: int


def _reflect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Bounce ``x`` between ``lo`` and ``hi`` (a triangle wave: continuous, speed kept, direction flipped)."""
    span = np.maximum(hi - lo, 1e-9)
    u = np.mod(x - lo, 2 * span)
    return lo + np.where(u <= span, u, 2 * span - u)


class ShapesScene:
    """Shapes moving smoothly over a fixed background; ``render(t)`` is a pure function of ``(seed, t)``.

    About 60 % of the objects bounce off the image borders forever; the others pass through the image,
    entering from one border and leaving by another, then come back after a pause as a *new* object (new
    class, look, path and track id). Objects spin, pulse slightly in size, and occlude each other in a
    fixed depth order; an object's box is dropped while less than ``min_visible`` of it is visible.

    Args:
        size_hw: frame ``(height, width)``.
        seed: scene seed (>= 0).
        n_objects: object slots (>= 0).
        min_size, max_size: object size range in pixels (longest side of the unrotated, unpulsed shape).
        speed: ``(low, high)`` speed range in pixels per second.
        min_visible: labelling threshold on the visible fraction.
        noise: add per-frame sensor noise (about 1 ms at 1280x720).
        style: background style (only its background fields are used).

    Raises:
        ValueError: for bad sizes, counts or speeds.
    """

    def __init__(self, size_hw: tuple = (720, 1280), seed: int = 0, n_objects: int = 8, *, min_size: int = 24,
                 max_size: int = 200, speed: tuple = (40.0, 300.0), min_visible: float = DEFAULT_MIN_VISIBLE,
                 noise: bool = True, style: Optional[Style] = None) -> None:
        self.size_hw = check_size_hw(size_hw, 32)
        self.seed = check_int("seed", seed, 0)
        self.n_objects = check_int("n_objects", n_objects, 0)
        h, w = self.size_hw
        check_int("min_size", min_size, 4)
        check_int("max_size", max_size, 4)
        if max_size < min_size:
            raise ValueError(f"max_size: expected >= min_size ({min_size}), got {max_size}")
        if min_size > min(h, w) // 2:
            raise ValueError(f"min_size: expected <= half the frame's shorter side ({min(h, w) // 2}), got {min_size}")
        self.min_size, self.max_size = min_size, min(max_size, min(h, w) // 2)
        lo, hi = (float(v) for v in speed)
        if not 0 < lo <= hi:
            raise ValueError(f"speed: expected (low, high) with 0 < low <= high px/s, got {speed!r}")
        self.speed = (lo, hi)
        if not 0.0 < min_visible <= 1.0:
            raise ValueError(f"min_visible: expected a fraction in (0, 1], got {min_visible!r}")
        self.min_visible = float(min_visible)
        self.style = check_style(style)

        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _SALT]))
        self.background = make_background(rng, h, w, self.style)
        self.background.setflags(write=False)
        self._bg_mean = np.array(cv2.mean(self.background)[:3])
        self._noise = None
        if noise:
            sigma = rng.uniform(2.0, 5.0)
            field = np.clip(np.round(128 + rng.standard_normal((h + _PAD, w + _PAD, 3), np.float32) * sigma), 0, 255)
            self._noise = field.astype(np.uint8)
        self._slots = []
        for k in range(self.n_objects):
            srng = np.random.default_rng(np.random.SeedSequence([self.seed, _SALT, k]))
            bounce = srng.random() < 0.6
            spd = srng.uniform(*self.speed)
            gap = srng.uniform(0.5, 3.0)
            period = (math.hypot(h, w) + 2 * self.max_size * 1.2) / spd + gap
            self._slots.append((bounce, spd, period, srng.uniform(0, period)))
        self._cache: dict = {}

    def __repr__(self) -> str:
        return (f"ShapesScene(size_hw={self.size_hw}, seed={self.seed}, n_objects={self.n_objects}, "
                f"min_size={self.min_size}, max_size={self.max_size})")

    # ----------------------------------------------------------------------------------------- actors

    def _actor(self, k: int, cycle: int) -> _Actor:
        key = (k, cycle)
        actor = self._cache.get(key)
        if actor is not None:
            return actor
        bounce, spd, period, _ = self._slots[k]
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _SALT, k, cycle]))
        h, w = self.size_hw
        geom = sample_geometry(int(rng.integers(len(CLASSES))), rng)
        size = math.exp(rng.uniform(math.log(self.min_size), math.log(self.max_size + 1)))
        radius = min(size, self.max_size) / 2
        pulse = rng.uniform(0.0, 0.15)
        fill = draw_fill(rng, self._bg_mean, self.style, size)
        common = dict(geometry=geom, fill=fill, radius=radius, pulse=pulse, pulse_freq=rng.uniform(0.3, 1.5),
                      pulse_phase=rng.uniform(0, 2 * math.pi), angle0=rng.uniform(0, 2 * math.pi),
                      spin=rng.uniform(-1.5, 1.5), track_id=k + self.n_objects * cycle)
        heading = rng.uniform(0, 2 * math.pi)
        if bounce:
            r = radius * (1 + pulse)
            start = np.array([rng.uniform(r, max(r, w - r)), rng.uniform(r, max(r, h - r))])
            actor = _Actor(start=start, velocity=spd * np.array([math.cos(heading), math.sin(heading)]),
                           duration=math.inf, **common)
        else:  # from a point just outside one border to a point just outside another
            r = radius * (1 + pulse) + 1
            p0, p1 = self._border_point(rng, r), self._border_point(rng, r)
            while np.hypot(*(p1 - p0)) < 0.5 * min(h, w):
                p1 = self._border_point(rng, r)
            dist = float(np.hypot(*(p1 - p0)))
            duration = min(dist / spd, period)
            actor = _Actor(start=p0, velocity=(p1 - p0) / duration, duration=duration, **common)
        if len(self._cache) > 4 * max(self.n_objects, 1):
            self._cache.clear()
        self._cache[key] = actor
        return actor

    def _border_point(self, rng: np.random.Generator, r: float) -> np.ndarray:
        h, w = self.size_hw
        side, u = int(rng.integers(4)), rng.uniform(0, 1)
        return np.array([(-r, u * h), (w + r, u * h), (u * w, -r), (u * w, h + r)][side], np.float64)

    def _placements(self, t: float) -> list:
        h, w = self.size_hw
        out = []
        for k, (bounce, _, period, phase) in enumerate(self._slots):
            if bounce:
                actor, tau = self._actor(k, 0), t
            else:
                cycle = int((t + phase) // period)
                actor, tau = self._actor(k, cycle), t + phase - cycle * period
                if tau > actor.duration:
                    continue
            scale = actor.radius * (1 + actor.pulse * math.sin(actor.pulse_freq * tau + actor.pulse_phase))
            centre = actor.start + actor.velocity * tau
            if bounce:
                r = actor.radius * (1 + actor.pulse)
                centre = _reflect(centre, np.array([r, r]), np.array([w - r, h - r]))
            mask, x0, y0 = rasterize(actor.geometry, scale, actor.angle0 + actor.spin * tau, centre[0], centre[1])
            placed = Placed(actor.geometry.class_id, mask, x0, y0, actor.track_id)
            if placed.window(h, w) is not None:
                out.append((placed, actor.fill))
        return out

    # ----------------------------------------------------------------------------------------- frames

    def render_composition(self, t: float) -> Composition:
        """The frame at time ``t`` with everything known about it (label map, visibility, track ids).

        Raises:
            ValueError: for a negative or non-finite time.
        """
        if not isinstance(t, (int, float, np.floating, np.integer)) or not math.isfinite(t) or t < 0:
            raise ValueError(f"t: expected a finite time >= 0 in seconds, got {t!r}")
        t = float(t)
        h, w = self.size_hw
        canvas = self.background.copy()
        layers = LabelLayers(h, w)
        for placed, fill in self._placements(t):
            layers.add(placed)
            paint_object(canvas, placed, fill)
        if self._noise is not None:
            frng = np.random.default_rng(np.random.SeedSequence([self.seed, _SALT, 7, int(round(t * 1e6))]))
            dy, dx = (int(v) for v in frng.integers(0, _PAD, 2))
            canvas = cv2.addWeighted(canvas, 1.0, self._noise[dy:dy + h, dx:dx + w], 1.0, -128.0)
        return Composition.from_layers(canvas, layers, self.min_visible)

    def render(self, t: float, *, return_track_ids: bool = False) -> tuple:
        """The frame at time ``t`` seconds.

        Returns:
            ``(image, boxes, class_ids)`` (plus ``track_ids``, int64 (N,), when ``return_track_ids``):
            uint8 BGR (H, W, 3); float32 (N, 4) xyxy boxes of the visible pixels, pixel-edge convention;
            int64 (N,).
        """
        comp = self.render_composition(t)
        if return_track_ids:
            return comp.image, comp.boxes, comp.class_ids, comp.object_ids[comp.keep]
        return comp.image, comp.boxes, comp.class_ids

    def frame(self, index: int, fps: float = 30.0, **kwargs) -> tuple:
        """The frame ``index`` of a video at ``fps`` frames per second: ``render(index / fps)``."""
        index = check_int("index", index, 0)
        if not fps > 0:
            raise ValueError(f"fps: expected > 0, got {fps!r}")
        return self.render(index / float(fps), **kwargs)
