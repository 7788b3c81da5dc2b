"""Post-processing options shared by every decoder."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from typing import Any, Optional, Sequence, Tuple

__all__ = ["PostprocessOptions"]


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi:
        raise ValueError(f"PostprocessOptions.{name}: expected a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and int(value) >= 1
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"PostprocessOptions.{name}: expected an int >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PostprocessOptions:
    """Thresholds and limits applied after the network.

    Attributes:
        conf_threshold: keep detections whose score is strictly greater (0..1).
        iou_threshold: NMS suppresses boxes whose IoU with a kept box is strictly greater (0..1).
        max_det: at most this many detections per frame, best first.
        max_nms: at most this many top-scoring candidates enter NMS (guards against slow frames
            when a broken model scores everything high).
        agnostic: one NMS over all classes instead of one per class.
        classes: keep only these class ids (None: all).
        top_k: classes returned by classifiers.

    Raises:
        ValueError: a value is out of range (expected-vs-got).
    """

    conf_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_det: int = 300
    max_nms: int = 30000
    agnostic: bool = False
    classes: Optional[Tuple[int, ...]] = None
    top_k: int = 5

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "conf_threshold", _number("conf_threshold", self.conf_threshold, 0.0, 1.0))
        put(self, "iou_threshold", _number("iou_threshold", self.iou_threshold, 0.0, 1.0))
        put(self, "max_det", _count("max_det", self.max_det))
        put(self, "max_nms", _count("max_nms", self.max_nms))
        put(self, "top_k", _count("top_k", self.top_k))
        if not isinstance(self.agnostic, bool):
            raise ValueError(f"PostprocessOptions.agnostic: expected True or False, got {self.agnostic!r}")
        if self.classes is not None:
            classes: Sequence[Any] = (self.classes,) if isinstance(self.classes, int) else self.classes
            try:
                ids = tuple(int(c) for c in classes)
            except (TypeError, ValueError):
                raise ValueError(f"PostprocessOptions.classes: expected None or a list of class ids, "
                                 f"got {self.classes!r}") from None
            if any(isinstance(c, bool) or int(c) != c for c in classes):
                raise ValueError(f"PostprocessOptions.classes: expected integer class ids, got {self.classes!r}")
            put(self, "classes", ids)

    def merged(self, **overrides: Any) -> "PostprocessOptions":
        """Return a copy with ``overrides`` applied (None values are ignored, except for ``classes``).

        Raises:
            ValueError: an unknown option name (with the closest known one) or a bad value.
        """
        names = [f.name for f in fields(self)]
        for key in overrides:
            if key not in names:
                close = [n for n in names if n.startswith(key)] or difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown post-processing option {key!r}{hint}; known options: {', '.join(names)}")
        changes = {k: v for k, v in overrides.items() if v is not None or k == "classes"}
        return replace(self, **changes) if changes else self
