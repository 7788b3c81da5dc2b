"""Backgrounds, colours and camera effects ("nuisances") of the synthetic data, with their knobs.

:class:`Style` holds probabilities and ranges; the functions here draw everything from a
``numpy.random.Generator`` they are given, so a sample is a pure function of its seed.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from typing import Optional

import cv2
import numpy as np

__all__ = ["Style", "make_background", "apply_camera", "contrasting_color", "draw_clutter", "smooth_noise", "solid"]


@dataclass(frozen=True)
class Style:
    """How hard the images are: every nuisance is drawn with a probability and a range.

    The default is the hard, training-grade mix; :meth:`clean` turns every nuisance off (flat background,
    solid colours, no camera effects), :meth:`easy` is a milder mix for the first epochs of a curriculum.

    Attributes:
        flat_background: only a flat random colour as background (no gradients, textures, clutter).
        p_texture: probability of a texture layer on the background (gratings, checkers, fine noise).
        p_clutter: probability of clutter (lines, curves, arcs, irregular blobs, specks).
        max_clutter: most clutter items in one image.
        p_object_texture: probability that an object is shaded, striped or outlined instead of solid.
        min_contrast: least BGR distance (0..441) between an object's colour and the mean of what it covers.
        p_lighting: probability of brightness, contrast, gamma and white-balance changes.
        p_illumination: probability of an uneven, smooth illumination field (shadows, vignetting).
        p_blur: probability of gaussian, motion or down-and-up-sampling blur.
        max_blur_sigma: largest gaussian sigma in pixels (at 320 px; scaled with the image).
        max_motion: longest motion-blur streak in pixels (at 320 px; scaled with the image).
        p_noise: probability of sensor noise.
        max_noise_sigma: largest noise standard deviation in grey levels.
        p_jpeg: probability of a JPEG round trip.
        jpeg_quality: JPEG quality range ``(low, high)``.
    """

    flat_background: bool = False
    p_texture: float = 0.5
    p_clutter: float = 0.7
    max_clutter: int = 14
    p_object_texture: float = 0.5
    min_contrast: float = 70.0
    p_lighting: float = 0.8
    p_illumination: float = 0.4
    p_blur: float = 0.35
    max_blur_sigma: float = 1.6
    max_motion: int = 9
    p_noise: float = 0.5
    max_noise_sigma: float = 10.0
    p_jpeg: float = 0.3
    jpeg_quality: tuple = (25, 90)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"Style.{f.name}: expected a probability in [0, 1], got {value!r}")
        for name in ("max_clutter", "max_motion", "min_contrast", "max_blur_sigma", "max_noise_sigma"):
            if getattr(self, name) < 0:
                raise ValueError(f"Style.{name}: expected >= 0, got {getattr(self, name)!r}")
        lo, hi = self.jpeg_quality
        if not 1 <= lo <= hi <= 100:
            raise ValueError(f"Style.jpeg_quality: expected 1 <= low <= high <= 100, got {self.jpeg_quality!r}")

    @classmethod
    def hard(cls) -> "Style":
        """The default mix (every nuisance on, often)."""
        return cls()

    @classmethod
    def easy(cls) -> "Style":
        """A milder mix: fewer, weaker nuisances."""
        return cls(p_texture=0.3, p_clutter=0.4, max_clutter=5, p_object_texture=0.2, min_contrast=100.0,
                   p_lighting=0.5, p_illumination=0.2, p_blur=0.15, max_blur_sigma=1.0, max_motion=5,
                   p_noise=0.3, max_noise_sigma=5.0, p_jpeg=0.1, jpeg_quality=(60, 95))

    @classmethod
    def clean(cls) -> "Style":
        """No nuisance at all: flat background, solid objects, no camera effects (for tests and debugging)."""
        return cls(flat_background=True, p_texture=0.0, p_clutter=0.0, max_clutter=0, p_object_texture=0.0,
                   min_contrast=100.0, p_lighting=0.0, p_illumination=0.0, p_blur=0.0, p_noise=0.0, p_jpeg=0.0)

    def replace(self, **changes) -> "Style":
        """Return a copy with some fields changed (validated)."""
        return replace(self, **changes)


# ----------------------------------------------------------------------------------------------- colours

def solid(h: int, w: int, color: tuple) -> np.ndarray:
    """uint8 array of shape (h, w, 3) filled with ``color`` (faster than ``np.full`` for tuples)."""
    out = np.empty((h, w, 3), np.uint8)
    cv2.rectangle(out, (0, 0), (w - 1, h - 1), tuple(int(c) for c in color), -1)
    return out


def contrasting_color(rng: np.random.Generator, under: np.ndarray, min_distance: float, tries: int = 12) -> tuple:
    """A random BGR colour at least ``min_distance`` (Euclidean, grey levels) away from ``under``.

    Args:
        rng: random generator.
        under: float array of shape (3,), the mean colour the object will cover.
        min_distance: wanted distance. When none of ``tries`` uniform draws reaches it, the colour is pulled
            towards the RGB-cube corner farthest from ``under`` (at least 221 away).
        tries: uniform draws before falling back.

    Returns:
        A tuple of 3 ints in 0..255.
    """
    under = np.asarray(under, np.float64)
    cand = rng.uniform(0, 255, (tries, 3))
    dist = np.sqrt(((cand - under) ** 2).sum(1))
    ok = np.flatnonzero(dist >= min_distance)
    if ok.size:
        best = cand[ok[0]]
    else:
        best = 0.8 * np.where(under > 127.5, 0.0, 255.0) + 0.2 * cand[int(dist.argmax())]
    return tuple(int(v) for v in np.clip(np.round(best), 0, 255))


# ----------------------------------------------------------------------------------------------- backgrounds

def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: float, channels: int = 1) -> np.ndarray:
    """Low-frequency ("Perlin-like") noise: a coarse random grid, smoothly upsampled.

    Args:
        rng: random generator.
        h, w: output size.
        cells: grid cells along the longer side (2 = very smooth, 40 = fine).
        channels: 1 or 3.

    Returns:
        float32 array of shape (h, w) or (h, w, channels), values in about [0, 1].
    """
    gh = max(2, int(round(cells * h / max(h, w))) + 1)
    gw = max(2, int(round(cells * w / max(h, w))) + 1)
    grid = rng.random((gh, gw, channels), dtype=np.float32)
    if channels == 1:
        grid = grid[:, :, 0]
    return _upsample(grid, h, w)


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Smooth upsampling: cubic by at most 4x, then linear (one big cubic step costs ~10x more)."""
    mh, mw = min(h, grid.shape[0] * 4), min(w, grid.shape[1] * 4)
    mid = cv2.resize(grid, (mw, mh), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(mid, (w, h), interpolation=cv2.INTER_LINEAR) if (mh, mw) != (h, w) else mid


def _sine_lut() -> np.ndarray:
    return np.sin(np.arange(256) * (2 * math.pi / 256)).astype(np.float32)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A texture layer: uint8 array of shape (h, w) centred on 128 (add it, then subtract 128)."""
    kind = rng.integers(3)
    amp = rng.uniform(8, 35)
    if kind == 0:  # grating: stripes at a random angle and period (phase in 1/256 turns, via a table)
        theta = rng.uniform(0, math.pi)
        period = rng.uniform(3, 30)
        fx, fy = 256 * 64 * math.cos(theta) / period, 256 * 64 * math.sin(theta) / period
        phase = np.add.outer(np.round(np.arange(h) * fy).astype(np.int64),
                             np.round(np.arange(w) * fx).astype(np.int64)) >> 6
        table = np.clip(np.round(128 + amp * _sine_lut()), 0, 255).astype(np.uint8)
        return cv2.LUT((phase & 255).astype(np.uint8), table)
    if kind == 1:  # checker / tiles
        cell = int(rng.integers(4, 24))
        odd = np.add.outer(np.arange(h) // cell, np.arange(w) // cell) & 1
        return np.where(odd.astype(bool), np.uint8(128 + amp), np.uint8(128 - amp))
    fine = smooth_noise(rng, h, w, rng.uniform(20, 60))  # fine noise
    return np.clip(128 + amp * 2 * (fine - 0.5), 0, 255).astype(np.uint8)


def draw_clutter(rng: np.random.Generator, img: np.ndarray, n: int) -> None:
    """Distractors that look like none of the shape classes: lines, curves, open arcs, irregular blobs, specks."""
    h, w = img.shape[:2]
    scale = max(h, w)
    for _ in range(n):
        kind = rng.integers(5)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        thick = int(rng.integers(1, max(2, scale // 100) + 2))
        if kind == 0:
            p = rng.uniform(-0.1, 1.1, (2, 2)) * (w, h)
            cv2.line(img, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), color, thick, cv2.LINE_AA)
        elif kind == 1:  # smooth random curve
            k = int(rng.integers(4, 9))
            steps = np.cumsum(rng.normal(0, 0.08 * scale, (k, 2)), axis=0) + rng.uniform(0, 1, 2) * (w, h)
            cv2.polylines(img, [np.round(steps).astype(np.int32)], False, color, thick, cv2.LINE_AA)
        elif kind == 2:  # open arc (never a closed circle)
            c = tuple(int(v) for v in rng.uniform(0, 1, 2) * (w, h))
            ax = tuple(int(v) for v in rng.uniform(0.03, 0.25, 2) * scale)
            start = float(rng.uniform(0, 360))
            cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), start, start + float(rng.uniform(40, 220)),
                        color, thick, cv2.LINE_AA)
        elif kind == 3:  # irregular blob: a strongly perturbed radial outline
            r0 = rng.uniform(0.02, 0.12) * scale
            a = np.linspace(0, 2 * math.pi, 40, endpoint=False)
            rad = np.ones_like(a)
            for harmonic in range(2, 6):
                rad += rng.uniform(0.15, 0.35) * np.sin(harmonic * a + rng.uniform(0, 2 * math.pi))
            rad = np.maximum(rad, 0.25) * r0
            c = rng.uniform(0, 1, 2) * (w, h)
            pts = np.stack([c[0] + rad * np.cos(a), c[1] + rad * np.sin(a)], 1)
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], color, cv2.LINE_AA)
        else:  # specks
            for p in rng.uniform(0, 1, (int(rng.integers(5, 30)), 2)) * (w, h):
                cv2.circle(img, (int(p[0]), int(p[1])), int(rng.integers(1, 3)), color, -1)


def make_background(rng: np.random.Generator, h: int, w: int, style: Style) -> np.ndarray:
    """Draw a background: flat, 4-corner gradient or low-frequency colour noise, plus texture and clutter.

    Colour fields are mixed on coarse grids and upsampled once, so a 320x320 background costs well under
    a millisecond.

    Returns:
        uint8 BGR array of shape (h, w, 3).
    """
    color = tuple(int(v) for v in rng.integers(0, 256, 3))
    if style.flat_background:
        return solid(h, w, color)
    kind = rng.random()
    if kind < 0.15:
        img = solid(h, w, color)
    elif kind < 0.5:  # 4-corner gradient
        grid = np.clip(np.array(color) + rng.normal(0, 60, (2, 2, 3)), 0, 255).astype(np.uint8)
        img = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)
    else:  # blotchy colour field, two octaves, mixed on a quarter-resolution grid (clipping is cheap there)
        mh, mw = max(2, h // 4), max(2, w // 4)
        lo, hi = np.sort(rng.uniform(0, 255, (2, 3)), axis=0)
        hi = np.maximum(hi, lo + 40)
        coarse = smooth_noise(rng, mh, mw, rng.uniform(2, 8), 3)
        detail = smooth_noise(rng, mh, mw, rng.uniform(8, 20))
        mid = lo.astype(np.float32) + coarse * (hi - lo).astype(np.float32) + 60 * (detail - 0.5)[:, :, None]
        img = cv2.resize(np.clip(mid, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < style.p_texture:
        tex = _texture(rng, h, w)
        img = cv2.addWeighted(img, 1.0, cv2.merge([tex, tex, tex]), 1.0, -128.0)
    if style.max_clutter > 0 and rng.random() < style.p_clutter:
        draw_clutter(rng, img, int(rng.integers(1, style.max_clutter + 1)))
    return img


# ----------------------------------------------------------------------------------------------- camera

@functools.lru_cache(maxsize=1)
def _gauss_table() -> np.ndarray:
    """256 quantiles of the standard normal distribution (so noise costs one random byte per value)."""
    samples = np.sort(np.random.default_rng(20240607).standard_normal(256 * 256))
    table = samples.reshape(256, 256).mean(1).astype(np.float32)
    table.setflags(write=False)
    return table


def _lighting_lut(rng: np.random.Generator) -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.7)))
    contrast = rng.uniform(0.55, 1.35)
    brightness = rng.uniform(-0.2, 0.2)
    gains = rng.uniform(0.8, 1.2, 3)
    v = (x ** gamma - 0.5) * contrast + 0.5 + brightness
    lut = np.clip(np.round(v[:, None] * gains[None, :] * 255), 0, 255).astype(np.uint8)
    return lut.reshape(1, 256, 3)


def _motion_kernel(rng: np.random.Generator, length: int) -> np.ndarray:
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    a = rng.uniform(0, math.pi)
    dx, dy = math.cos(a) * c, math.sin(a) * c
    cv2.line(k, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return k / k.sum()


def apply_camera(img: np.ndarray, rng: np.random.Generator, style: Style) -> np.ndarray:
    """Apply lighting, uneven illumination, blur, sensor noise and JPEG artefacts (each with its probability).

    Args:
        img: uint8 BGR array of shape (H, W, 3); may be modified in place.
        rng: random generator.
        style: the knobs.

    Returns:
        uint8 BGR array of shape (H, W, 3) (possibly ``img`` itself).
    """
    h, w = img.shape[:2]
    rel = max(h, w) / 320.0
    if rng.random() < style.p_lighting:
        img = cv2.LUT(img, _lighting_lut(rng))
    if rng.random() < style.p_illumination:
        field = smooth_noise(rng, h, w, rng.uniform(1.5, 4))
        lo = rng.uniform(0.45, 0.85)
        field = (lo + field * (rng.uniform(1.05, 1.3) - lo)) * 128.0
        img = cv2.multiply(img, cv2.merge([field, field, field]), scale=1 / 128.0, dtype=cv2.CV_8U)
    if rng.random() < style.p_blur:
        kind = rng.integers(3)
        if kind == 0 and style.max_blur_sigma > 0:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, style.max_blur_sigma) * max(rel, 0.5))
        elif kind == 1 and style.max_motion >= 3:
            length = int(rng.integers(3, max(4, int(style.max_motion * max(rel, 0.5))) + 1))
            img = cv2.filter2D(img, -1, _motion_kernel(rng, length))
        else:  # low-resolution sensor: down then up
            f = rng.uniform(0.45, 0.8)
            small = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if style.max_noise_sigma > 0 and rng.random() < style.p_noise:
        sigma = rng.uniform(1.0, style.max_noise_sigma)
        table = np.clip(np.round(128 + _gauss_table() * sigma), 0, 255).astype(np.uint8)
        if rng.random() < 0.7:  # colour noise
            noise = cv2.LUT(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), table)
        else:  # luma-only noise
            luma = cv2.LUT(rng.integers(0, 256, (h, w), dtype=np.uint8), table)
            noise = cv2.merge([luma, luma, luma])
        img = cv2.addWeighted(img, 1.0, noise, 1.0, -128.0)
    if rng.random() < style.p_jpeg:
        q = int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


def check_style(style: Optional[Style]) -> Style:
    """Return ``style`` or the default :class:`Style`; raise TypeError for anything else."""
    if style is None:
        return Style()
    if not isinstance(style, Style):
        raise TypeError(f"style: expected sdk.synthetic.Style or None, got {type(style).__name__}")
    return style
