"""``synthetic://shapes``: moving shapes from :class:`sdk.synthetic.ShapesScene`, with exact ground truth per frame.

Query options (all optional): ``fps`` (30), ``size`` (``1280x720``), ``seed`` (0), ``objects`` (8),
``frames`` (unlimited), ``noise`` (1), ``realtime`` (0: as fast as the consumer reads; 1: paced like a
camera at ``fps``, with latest-frame dropping).
"""
from __future__ import annotations

from typing import Mapping, Optional

from sdk.errors import SourceError

from .base import RawFrame
from .uri import parse_size

__all__ = ["SyntheticReader", "SCENES", "parse_synthetic_options"]

SCENES = ("shapes",)
_KEYS = ("fps", "size", "seed", "objects", "frames", "noise", "realtime")


def _number(options: Mapping, key: str, kind: type, minimum: float, default):
    value = options.get(key, default)
    if value is None:
        return None
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise SourceError(f"synthetic://: {key}: expected {'an int' if kind is int else 'a number'} >= {minimum}, "
                          f"got {value!r}") from None
    if out < minimum:
        raise SourceError(f"synthetic://: {key}: expected >= {minimum}, got {value!r}")
    return out


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SourceError(f"synthetic://: expected a flag 0/1/true/false, got {value!r}")


def parse_synthetic_options(options: Mapping) -> dict:
    """Validate the query options of a synthetic URI (see the module docstring).

    Raises:
        SourceError: unknown keys or bad values (expected vs got).
    """
    unknown = sorted(set(options) - set(_KEYS))
    if unknown:
        raise SourceError(f"synthetic://: unknown option(s) {unknown}; expected some of {', '.join(_KEYS)}")
    width, height = parse_size(options.get("size", "1280x720"), "synthetic:// size")
    fps = _number(options, "fps", float, 0.001, 30.0)
    return {"size_hw": (height, width), "fps": fps, "seed": _number(options, "seed", int, 0, 0),
            "objects": _number(options, "objects", int, 0, 8), "frames": _number(options, "frames", int, 1, None),
            "noise": _flag(options.get("noise", True)), "realtime": _flag(options.get("realtime", False))}


class SyntheticReader:
    """Renders frame ``k`` of the scene at time ``k / fps``.

    Args:
        scene: scene name (``"shapes"``).
        uri: the source URI.
        size_hw, fps, seed, objects, frames, noise: see the module docstring.
    """

    backend = "synthetic"
    live = False
    reconnectable = False

    def __init__(self, scene: str, *, uri: str, size_hw: tuple, fps: float, seed: int, objects: int,
                 frames: Optional[int], noise: bool) -> None:
        if scene not in SCENES:
            raise SourceError(f"{uri}: unknown synthetic scene {scene!r}; expected one of {', '.join(SCENES)}")
        from sdk.synthetic import CLASSES, ShapesScene

        try:
            short = min(int(v) for v in size_hw)
            self.scene = ShapesScene(size_hw=size_hw, seed=seed, n_objects=objects, noise=noise,
                                     min_size=max(4, min(24, short // 4)), max_size=max(8, min(200, short // 2)))
        except (TypeError, ValueError) as exc:
            raise SourceError(f"{uri}: {exc}") from exc
        self.labels = tuple(CLASSES)
        self.uri = uri
        self.fps = float(fps)
        self.frames = frames
        self._k = 0

    def open(self) -> None:
        self._k = 0

    def read(self) -> Optional[RawFrame]:
        if self.frames is not None and self._k >= self.frames:
            return None
        image, boxes, class_ids, track_ids = self.scene.frame(self._k, self.fps, return_track_ids=True)
        extras = {"boxes": boxes, "class_ids": class_ids, "track_ids": track_ids,
                  "meta": {"scene_time": self._k / self.fps, "labels": self.labels}}
        self._k += 1
        return image, extras

    def interrupt(self) -> None:
        """Reads do not block."""

    def close(self) -> None:
        """Nothing held open."""

    def describe(self) -> dict:
        h, w = self.scene.size_hw
        return {"backend": self.backend, "size": (w, h), "fps": self.fps, "seed": self.scene.seed,
                "objects": self.scene.n_objects, "frames": self.frames}
