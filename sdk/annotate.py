"""Show what a model saw: draw results on frames, save MP4, print JSON lines, show a window.

::

    canvas = sdk.annotate.draw(frame.image, result, fps=pipe.stats()["fps"], age_ms=frame.meta.get("age_ms"))
    with sdk.annotate.VideoWriter("out.mp4", fps=30) as video:
        video.write(canvas)
    print(json.dumps(sdk.annotate.result_record(frame, result)))      # one object per frame
    if sdk.annotate.has_display(): sdk.annotate.show(canvas)

Drawing never modifies the frame it is given (it draws on a copy).
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence, TextIO

import numpy as np

from sdk.errors import SDKError

__all__ = ["draw", "draw_detections", "draw_text", "color_for", "result_record", "JsonLinesWriter", "VideoWriter",
           "has_display", "show", "close_windows"]

logger = logging.getLogger(__name__)

_PALETTE = ((56, 56, 255), (151, 157, 255), (31, 112, 255), (29, 178, 255), (49, 210, 207), (10, 249, 72),
            (23, 204, 146), (134, 219, 61), (211, 188, 0), (209, 85, 0), (255, 149, 0), (255, 55, 22),
            (168, 0, 146), (199, 55, 255), (255, 255, 0), (0, 180, 255))


def color_for(class_id: int) -> tuple:
    """A stable BGR colour per class id."""
    return _PALETTE[int(class_id) % len(_PALETTE)]


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image: expected a BGR uint8 array (H, W, 3), got {got}")
    return image


def draw_text(image: np.ndarray, text: str, origin: tuple, *, color: tuple = (255, 255, 255),
              background: Optional[tuple] = (0, 0, 0), scale: float = 0.5, thickness: int = 1) -> np.ndarray:
    """Draw ``text`` with its top-left corner at ``origin`` (in place) on a filled background box."""
    import cv2

    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = int(origin[0]), int(origin[1])
    if background is not None:
        cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 4), background, cv2.FILLED)
    cv2.putText(image, text, (x + 2, y + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
    return image


def draw_detections(image: np.ndarray, detections: Any, *, labels: Optional[Sequence[str]] = None,
                    thickness: int = 2, show_scores: bool = True) -> np.ndarray:
    """Draw boxes with ``label score`` (and ``#track``) captions, in place.

    Args:
        image: BGR uint8 (H, W, 3).
        detections: :class:`sdk.Detections` in the image's pixels.
        labels: class names (default: the detections' own).
    """
    import cv2

    h, w = image.shape[:2]
    names = list(labels) if labels is not None else None
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(float(v))) for v in detections.xyxy[i])
        x1, y1, x2, y2 = max(0, min(x1, w - 1)), max(0, min(y1, h - 1)), max(0, min(x2, w - 1)), max(0, min(y2, h - 1))
        cid = int(detections.class_id[i])
        color = color_for(cid)
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
        name = names[cid] if names is not None and 0 <= cid < len(names) else detections.label[i]
        caption = f"{name} {float(detections.confidence[i]):.2f}" if show_scores else name
        if detections.tracker_id is not None:
            caption += f" #{int(detections.tracker_id[i])}"
        draw_text(image, caption, (x1, max(0, y1 - 18)), color=(255, 255, 255), background=color, scale=0.45)
    return image


def draw(image: np.ndarray, result: Any = None, *, fps: Optional[float] = None, age_ms: Optional[float] = None,
         labels: Optional[Sequence[str]] = None, extra: Optional[str] = None) -> np.ndarray:
    """A copy of ``image`` with ``result`` drawn on it and a status line (FPS, frame age).

    Args:
        image: BGR uint8 (H, W, 3).
        result: :class:`sdk.Detections` (boxes), :class:`sdk.Classification` (top classes), a
            :class:`sdk.Match` or anything with ``name``/``distance`` (verification), an
            :class:`sdk.Embedding` (its size), or None.
        fps, age_ms: shown top-left when given.
        extra: one more line of text.

    Returns:
        BGR uint8 (H, W, 3), a new array.

    Raises:
        ValueError: ``image`` is not BGR uint8 (H, W, 3).
    """
    from sdk.results import Classification, Detections, Embedding

    canvas = _check_image(image).copy()
    lines = []
    if isinstance(result, Detections):
        draw_detections(canvas, result, labels=labels)
        lines.append(f"{len(result)} objects")
    elif isinstance(result, Classification):
        for name, score in list(zip(result.label, result.confidence))[:3]:
            lines.append(f"{name} {float(score):.2f}")
    elif isinstance(result, Embedding):
        lines.append(f"embedding ({len(result)})")
    elif result is not None and hasattr(result, "distance"):
        name = getattr(result, "name", None)
        ok = getattr(result, "accepted", None)
        lines.append(f"{name or 'unknown'} d={float(result.distance):.3f}" + ("" if ok is None else (" OK" if ok else " REJECT")))
    status = []
    if fps is not None:
        status.append(f"{fps:.1f} FPS")
    if age_ms is not None:
        status.append(f"age {age_ms:.0f} ms")
    if status:
        lines.insert(0, "  ".join(status))
    if extra:
        lines.append(extra)
    y = 4
    for line in lines:
        draw_text(canvas, line, (4, y), scale=0.5)
        y += 20
    return canvas


def result_record(frame: Any, result: Any, *, age_ms: Optional[float] = None) -> dict:
    """One JSON-ready object per frame: ``index``, ``t_capture``, ``age_ms``, ``source`` and the result.

    Detections go under ``detections`` (list of ``{"xyxy", "confidence", "class_id", "label"}``), a
    classification under ``classes``, an embedding under ``embedding``; pipeline timings under ``timings_ms``.
    """
    from sdk.results import Classification, Detections, Embedding

    meta = getattr(frame, "meta", {}) or {}
    age = age_ms if age_ms is not None else meta.get("age_ms")
    record = {"index": int(frame.index), "t_capture": round(float(frame.t_capture), 6),
              "age_ms": None if age is None else round(float(age), 3), "source": frame.source}
    if isinstance(result, Detections):
        record["detections"] = result.to_dicts()
    elif isinstance(result, Classification):
        record["classes"] = result.to_dicts()
    elif isinstance(result, Embedding):
        record["embedding"] = [round(float(v), 6) for v in result.vector]
    elif result is not None and hasattr(result, "distance"):
        record["match"] = {"name": getattr(result, "name", None), "distance": round(float(result.distance), 6),
                           "accepted": bool(getattr(result, "accepted", False))}
    if meta.get("timings_ms"):
        record["timings_ms"] = {k: round(float(v), 3) for k, v in meta["timings_ms"].items()}
    if getattr(frame, "boxes", None) is not None:
        record["ground_truth"] = frame.ground_truth().to_dicts()
    return record


class JsonLinesWriter:
    """Write :func:`result_record` objects, one JSON line per frame, flushed each time (for other processes).

    Args:
        stream: a text stream (default ``sys.stdout``) or a path to append to.
    """

    def __init__(self, stream: "TextIO | str | os.PathLike | None" = None) -> None:
        self._own = isinstance(stream, (str, os.PathLike))
        self._stream = open(stream, "a", encoding="utf-8") if self._own else (stream or sys.stdout)
        self.count = 0

    def write(self, frame: Any, result: Any, **kwargs: Any) -> dict:
        record = result_record(frame, result, **kwargs)
        self._stream.write(json.dumps(record) + "\n")
        self._stream.flush()
        self.count += 1
        return record

    def close(self) -> None:
        if self._own:
            self._stream.close()

    def __enter__(self) -> "JsonLinesWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class VideoWriter:
    """Save frames as an MP4 file (OpenCV's ``mp4v`` codec); opened on the first frame, at its size.

    Args:
        path: output file (``.mp4``); its folder is created.
        fps: frame rate written in the file.

    Raises:
        ValueError: a non-positive fps, or frames of different sizes.
        SDKError: OpenCV cannot open the file for writing.
    """

    def __init__(self, path: "str | os.PathLike", fps: float = 30.0) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
            raise ValueError(f"fps: expected a number > 0, got {fps!r}")
        self.path = Path(path)
        self.fps = float(fps)
        self.size: Optional[tuple] = None
        self.frames = 0
        self._writer: Any = None

    def write(self, image: np.ndarray) -> None:
        """Append one BGR uint8 (H, W, 3) frame."""
        import cv2

        _check_image(image)
        h, w = image.shape[:2]
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not writer.isOpened():
                raise SDKError(f"could not open {self.path} for writing an mp4v video of {w}x{h}")
            self._writer, self.size = writer, (w, h)
        elif (w, h) != self.size:
            raise ValueError(f"image: expected {self.size[0]}x{self.size[1]} like the first frame, got {w}x{h}")
        self._writer.write(np.ascontiguousarray(image))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            logger.info("wrote %d frames to %s", self.frames, self.path)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def has_display() -> bool:
    """True when a window can be shown (``DISPLAY`` or ``WAYLAND_DISPLAY`` set, or not Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def show(image: np.ndarray, window: str = "edgesdk", *, wait_ms: int = 1) -> Optional[int]:
    """Show ``image`` in a window when a display exists; returns the key pressed (-1 for none).

    Returns None without doing anything when there is no display (headless device, CI) or when the
    installed OpenCV has no GUI (``opencv-python-headless``).
    """
    import cv2

    if not has_display():
        return None
    try:
        cv2.imshow(window, _check_image(image))
        return int(cv2.waitKey(wait_ms))
    except cv2.error as exc:
        logger.warning("cannot show a window (%s); is this opencv-python-headless?", str(exc).strip()[:120])
        return None


def close_windows() -> None:
    """Close the windows opened by :func:`show` (no-op without a display)."""
    import cv2

    if has_display():
        try:
            cv2.destroyAllWindows()
        except cv2.error:
            pass
