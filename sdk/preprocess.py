"""Frame → network input: resize (letterbox / stretch / centre crop), colour order, normalisation,
layout and quantisation, plus the inverse mapping of boxes and points back to frame pixels.

The high-level entry point is :class:`Preprocessor`::

    pre = Preprocessor(PreprocessConfig(size_hw=(640, 640)))
    tensor, transform = pre(frame)             # (1, 3, 640, 640) float32, Transform
    ...                                        # run the model, decode boxes in input pixels
    xyxy_frame = transform.boxes_to_frame(xyxy_input)

The pure functions (:func:`letterbox`, :func:`stretch`, :func:`center_crop`, :func:`normalize`,
:func:`to_layout`, :func:`quantize`, :func:`dequantize`) do the same steps one at a time, for users who
build their own pipeline. Only numpy and OpenCV are used.

Letterbox geometry follows Ultralytics' ``LetterBox`` exactly (``new_unpad = round(w * r), round(h * r)``;
``top = round(dh / 2 - 0.1)``, ``bottom = round(dh / 2 + 0.1)``, same for left/right; ``cv2.INTER_LINEAR``;
pad value 114), so an Ultralytics export sees the same pixels it saw at validation time.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, fields
from typing import Any, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = [
    "PreprocessConfig",
    "Transform",
    "Preprocessor",
    "ensure_bgr",
    "letterbox",
    "stretch",
    "center_crop",
    "normalize",
    "to_layout",
    "quantize",
    "dequantize",
]

LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "uint8", "int8")
COLORS = ("RGB", "BGR")
RESIZES = ("letterbox", "stretch", "center_crop")
INTERPOLATIONS = {
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}
_INT_RANGE = {"uint8": (0, 255), "int8": (-128, 127)}


def _choice(value: Any, options: Sequence[str], name: str) -> str:
    if not isinstance(value, str) or value not in options:
        close = difflib.get_close_matches(str(value), list(options), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"PreprocessConfig.{name}: expected one of {', '.join(options)}, got {value!r}{hint}")
    return value


def _triple(value: Any, name: str, *, positive: bool = False) -> Tuple[float, float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    try:
        nums = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"PreprocessConfig.{name}: expected a number or 1 or 3 numbers, got {value!r}") from None
    if len(nums) not in (1, 3):
        raise ValueError(f"PreprocessConfig.{name}: expected 1 or 3 numbers (one per channel), got {len(nums)}")
    if positive and not all(v > 0 for v in nums):
        raise ValueError(f"PreprocessConfig.{name}: expected numbers > 0, got {nums}")
    return nums * 3 if len(nums) == 1 else nums  # type: ignore[return-value]


def _size_hw(value: Any, name: str = "size_hw") -> Tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (height, width) as two positive ints, got {value!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{name}: expected (height, width) > 0, got {(h, w)}")
    return h, w


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreprocessConfig:
    """How a BGR uint8 frame becomes the network input.

    Pixels are normalised as ``x = (pixel * scale - mean) / std`` per channel, in the model's colour
    order; for an integer ``dtype`` with ``quant=(q_scale, zero_point)`` the result is then quantised:
    ``q = clip(round(x / q_scale) + zero_point)``. An integer ``dtype`` without ``quant`` means raw
    pixel bytes (``uint8`` only, e.g. TF Object Detection API models); ``scale`` is then ignored and
    ``mean``/``std`` must be the identity.

    Attributes:
        size_hw: network input (height, width). With ``auto=True`` it is the largest input size.
        layout: ``"NCHW"`` or ``"NHWC"``.
        dtype: ``"float32"``, ``"float16"``, ``"uint8"`` or ``"int8"``.
        color: channel order the model expects, ``"RGB"`` or ``"BGR"``.
        resize: ``"letterbox"`` (keep aspect, pad), ``"stretch"`` (ignore aspect) or ``"center_crop"``
            (resize the shorter side to ``size / crop_fraction``, then crop the centre; torchvision's
            classification eval transform).
        pad_value: letterbox padding, in pixel units (0..255) before normalisation.
        stride: network stride for ``auto`` letterboxing (default 32 when ``auto`` and not given).
        auto: letterbox to the minimum rectangle whose padding is a multiple of ``stride``
            (Ultralytics ``LetterBox(auto=True)``) — for dynamic-shape models only; the tensor is then
            smaller than ``size_hw`` on one side.
        scaleup: allow letterbox to enlarge frames smaller than ``size_hw`` (Ultralytics default True).
        scale: pixel multiplier (default 1/255).
        mean: per-channel mean in the scaled domain (model colour order).
        std: per-channel std in the scaled domain (model colour order).
        crop_fraction: for ``center_crop``; 0.875 resizes to 256 for a 224 crop.
        quant: ``(scale, zero_point)`` quantising the normalised input to ``uint8``/``int8``.
        interpolation: ``"linear"`` (default, as Ultralytics), ``"area"``, ``"nearest"`` or ``"cubic"``.

    Raises:
        ValueError: a field has an unknown value or the combination makes no sense (expected-vs-got).
    """

    size_hw: Tuple[int, int]
    layout: str = "NCHW"
    dtype: str = "float32"
    color: str = "RGB"
    resize: str = "letterbox"
    pad_value: int = 114
    stride: Optional[int] = None
    auto: bool = False
    scaleup: bool = True
    scale: float = 1.0 / 255.0
    mean: Tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop_fraction: float = 0.875
    quant: Optional[Tuple[float, int]] = None
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "size_hw", _size_hw(self.size_hw, "PreprocessConfig.size_hw"))
        _choice(self.layout, LAYOUTS, "layout")
        _choice(self.dtype, DTYPES, "dtype")
        _choice(self.color, COLORS, "color")
        _choice(self.resize, RESIZES, "resize")
        _choice(self.interpolation, list(INTERPOLATIONS), "interpolation")
        if isinstance(self.pad_value, bool) or not isinstance(self.pad_value, (int, np.integer)) \
                or not 0 <= int(self.pad_value) <= 255:
            raise ValueError(f"PreprocessConfig.pad_value: expected an int in 0..255, got {self.pad_value!r}")
        put(self, "pad_value", int(self.pad_value))
        if self.stride is not None:
            if isinstance(self.stride, bool) or int(self.stride) != self.stride or int(self.stride) <= 0:
                raise ValueError(f"PreprocessConfig.stride: expected a positive int or None, got {self.stride!r}")
            put(self, "stride", int(self.stride))
        if self.auto and self.resize != "letterbox":
            raise ValueError(f"PreprocessConfig.auto: expected auto=False with resize={self.resize!r}, got True "
                             f"(auto minimum-rectangle padding only exists for letterbox)")
        if not float(self.scale) > 0:
            raise ValueError(f"PreprocessConfig.scale: expected a number > 0, got {self.scale!r}")
        put(self, "scale", float(self.scale))
        put(self, "mean", _triple(self.mean, "mean"))
        put(self, "std", _triple(self.std, "std", positive=True))
        if not 0 < float(self.crop_fraction) <= 1:
            raise ValueError(f"PreprocessConfig.crop_fraction: expected 0 < crop_fraction <= 1, "
                             f"got {self.crop_fraction!r}")
        put(self, "crop_fraction", float(self.crop_fraction))
        if self.quant is not None:
            try:
                q_scale, q_zp = self.quant
                q_scale, q_zp_int = float(q_scale), int(q_zp)
            except (TypeError, ValueError):
                raise ValueError(f"PreprocessConfig.quant: expected (scale, zero_point), got {self.quant!r}") from None
            if q_zp_int != q_zp or not q_scale > 0:
                raise ValueError(f"PreprocessConfig.quant: expected (scale > 0, integer zero_point), "
                                 f"got {self.quant!r}")
            if self.dtype not in _INT_RANGE:
                raise ValueError(f"PreprocessConfig.quant: expected dtype uint8 or int8 with quant, got dtype "
                                 f"{self.dtype!r}; drop quant for float inputs")
            lo, hi = _INT_RANGE[self.dtype]
            if not lo <= q_zp_int <= hi:
                raise ValueError(f"PreprocessConfig.quant: expected zero_point in {lo}..{hi} for {self.dtype}, "
                                 f"got {q_zp_int}")
            put(self, "quant", (q_scale, q_zp_int))
        elif self.dtype == "int8":
            raise ValueError("PreprocessConfig.quant: expected (scale, zero_point) for dtype int8, got None "
                             "(int8 inputs are always quantised; take them from the model's input details)")
        elif self.dtype == "uint8" and (self.mean != (0.0, 0.0, 0.0) or self.std != (1.0, 1.0, 1.0)):
            raise ValueError(f"PreprocessConfig: expected identity mean/std for raw uint8 input (no quant), got "
                             f"mean={self.mean}, std={self.std}; give quant=(scale, zero_point) to quantise "
                             f"normalised values instead")

    @property
    def raw_pixels(self) -> bool:
        """True when the input is the raw pixel bytes (integer dtype, no quantisation)."""
        return self.dtype in _INT_RANGE and self.quant is None

    @property
    def effective_stride(self) -> int:
        """Stride used by ``auto`` letterboxing (``stride`` or 32)."""
        return self.stride if self.stride is not None else 32

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreprocessConfig":
        """Build from a plain dict (e.g. JSON); unknown keys raise ValueError with a suggestion."""
        names = [f.name for f in fields(cls)]
        for key in data:
            if key not in names:
                close = [n for n in names if n.startswith(str(key))] or \
                    difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"PreprocessConfig: unknown key {key!r}{hint}; known keys: {', '.join(names)}")
        return cls(**dict(data))


# --------------------------------------------------------------------------------------------------
# Frame checks
# --------------------------------------------------------------------------------------------------


def ensure_bgr(frame: Any) -> np.ndarray:
    """Return ``frame`` as a BGR uint8 image of shape (H, W, 3).

    Accepts BGR (H, W, 3) uint8 (returned as is, or made contiguous when its strides would trip OpenCV),
    grayscale (H, W) or (H, W, 1) and BGRA (H, W, 4) uint8 (converted).

    Raises:
        ValueError: ``frame`` is None, not an array, empty, not uint8, of the wrong rank or channel count.
    """
    if frame is None:
        raise ValueError("frame: expected a (H, W, 3) uint8 BGR image, got None "
                         "(a camera read that failed returns None: check the `ok` flag of cap.read())")
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame: expected a numpy.ndarray of shape (H, W, 3) and dtype uint8, got "
                         f"{type(frame).__name__} (convert PIL images with np.asarray(img)[:, :, ::-1])")
    if frame.size == 0:
        raise ValueError(f"frame: expected a non-empty (H, W, 3) uint8 image, got shape {frame.shape}")
    if frame.dtype != np.uint8:
        if frame.dtype.kind == "f":
            how = ("scale it yourself: (np.clip(frame, 0, 1) * 255).astype(np.uint8) for 0..1 data, "
                   "or np.clip(frame, 0, 255).astype(np.uint8) for 0..255 data")
        elif frame.dtype == np.uint16:
            how = "convert it with (frame >> 8).astype(np.uint8) or cv2.normalize(...)"
        else:
            how = "convert it with np.clip(frame, 0, 255).astype(np.uint8)"
        raise ValueError(f"frame: expected dtype uint8 (0..255 BGR), got {frame.dtype}; {how}")
    if frame.ndim == 2:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    if frame.ndim != 3:
        raise ValueError(f"frame: expected a (H, W, 3) image (rank 3), got rank {frame.ndim} shape {frame.shape}"
                         + ("; drop the batch axis with frame[0]" if frame.ndim == 4 and frame.shape[0] == 1 else ""))
    channels = frame.shape[2]
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    if channels != 3:
        hint = "; it looks channels-first, use frame.transpose(1, 2, 0)" if frame.shape[0] in (1, 3, 4) else ""
        raise ValueError(f"frame: expected 1, 3 or 4 channels in the last axis (H, W, C), got shape "
                         f"{frame.shape}{hint}")
    strides = frame.strides
    if strides[2] != 1 or strides[1] != 3 or strides[0] < 0:
        frame = np.ascontiguousarray(frame)
    return frame


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transform:
    """The geometric mapping from frame pixels to network-input pixels.

    A point maps as ``x_in = x_frame * ratio[0] + pad[0] - crop[0]`` (same with index 1 for y):
    the frame is resized by ``ratio`` (input pixels per frame pixel, per axis), then either padded by
    ``pad`` (letterbox: left, top) or cropped by ``crop`` (centre crop: x0, y0 in resized pixels).

    Attributes:
        frame_hw: (height, width) of the original frame.
        input_hw: (height, width) of the network input this transform produced.
        ratio: (rx, ry) resize factors.
        pad: (left, top) padding in input pixels.
        crop: (x0, y0) crop offset in resized pixels.

    For letterbox, ``ratio`` is the exact per-axis factor ``round(w * r) / w``; Ultralytics'
    ``scale_boxes`` divides by the unrounded gain ``r`` instead, which differs by well under a pixel.
    """

    frame_hw: Tuple[int, int]
    input_hw: Tuple[int, int]
    ratio: Tuple[float, float] = (1.0, 1.0)
    pad: Tuple[float, float] = (0.0, 0.0)
    crop: Tuple[float, float] = (0.0, 0.0)

    def _offset(self) -> Tuple[float, float]:
        return self.pad[0] - self.crop[0], self.pad[1] - self.crop[1]

    def points_to_frame(self, points: Any, *, clip: bool = False) -> np.ndarray:
        """Map points from input pixels to frame pixels.

        Args:
            points: array of shape (..., 2), ``x, y`` in input pixels.
            clip: clamp to ``[0, W] x [0, H]`` of the frame.

        Returns:
            float32 array of the same shape, in frame pixels.
        """
        pts = np.array(points, dtype=np.float32, copy=True)
        if pts.ndim == 0 or pts.shape[-1] != 2:
            raise ValueError(f"points: expected shape (..., 2), got {pts.shape}")
        ox, oy = self._offset()
        pts[..., 0] -= ox
        pts[..., 0] /= self.ratio[0]
        pts[..., 1] -= oy
        pts[..., 1] /= self.ratio[1]
        if clip:
            h, w = self.frame_hw
            np.clip(pts[..., 0], 0, w, out=pts[..., 0])
            np.clip(pts[..., 1], 0, h, out=pts[..., 1])
        return pts

    def boxes_to_frame(self, xyxy: Any, *, clip: bool = True) -> np.ndarray:
        """Map boxes from input pixels to frame pixels, clipped to the frame.

        Args:
            xyxy: array of shape (N, 4), ``x1, y1, x2, y2`` in input pixels.
            clip: clamp to the frame (default True).

        Returns:
            float32 array of shape (N, 4) in frame pixels.

        Raises:
            ValueError: ``xyxy`` is not of shape (N, 4).
        """
        boxes = np.asarray(xyxy, dtype=np.float32)
        if boxes.size == 0:
            return np.zeros((0, 4), np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"xyxy: expected shape (N, 4), got {boxes.shape}")
        return self.points_to_frame(boxes.reshape(-1, 2), clip=clip).reshape(-1, 4)

    def boxes_to_input(self, xyxy: Any) -> np.ndarray:
        """Map boxes (N, 4) from frame pixels to input pixels (float32, not clipped)."""
        boxes = np.array(xyxy, dtype=np.float32, copy=True).reshape(-1, 4)
        ox, oy = self._offset()
        boxes[:, 0::2] = boxes[:, 0::2] * self.ratio[0] + ox
        boxes[:, 1::2] = boxes[:, 1::2] * self.ratio[1] + oy
        return boxes


@dataclass(frozen=True)
class _Plan:
    """Per-frame-shape geometry: resize target, where the resized content lands, output size."""

    resized_wh: Tuple[int, int]              # cv2 dsize of the resize (w, h)
    content: Tuple[int, int, int, int]       # y0, y1, x0, x1 of the content in the output
    src_crop: Tuple[int, int, int, int]      # y0, y1, x0, x1 taken from the resized image
    out_hw: Tuple[int, int]
    transform: Transform


def _letterbox_plan(frame_hw: Tuple[int, int], size_hw: Tuple[int, int], *, auto: bool, stride: int,
                    scaleup: bool) -> _Plan:
    h, w = frame_hw
    big_h, big_w = size_hw
    r = min(big_h / h, big_w / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    dw, dh = big_w - new_w, big_h - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out_hw = (new_h + top + bottom, new_w + left + right)
    transform = Transform(frame_hw=(h, w), input_hw=out_hw, ratio=(new_w / w, new_h / h),
                          pad=(float(left), float(top)))
    return _Plan((new_w, new_h), (top, top + new_h, left, left + new_w), (0, new_h, 0, new_w), out_hw, transform)


def _stretch_plan(frame_hw: Tuple[int, int], size_hw: Tuple[int, int]) -> _Plan:
    h, w = frame_hw
    big_h, big_w = size_hw
    transform = Transform(frame_hw=(h, w), input_hw=(big_h, big_w), ratio=(big_w / w, big_h / h))
    return _Plan((big_w, big_h), (0, big_h, 0, big_w), (0, big_h, 0, big_w), (big_h, big_w), transform)


def _center_crop_plan(frame_hw: Tuple[int, int], size_hw: Tuple[int, int], crop_fraction: float) -> _Plan:
    # torchvision: Resize(int(S / crop_fraction)) resizes the shorter side to that size and the longer one
    # to int(short * long / short_orig); CenterCrop(S) starts at int(round((resized - S) / 2)).
    h, w = frame_hw
    big_h, big_w = size_hw
    target_h, target_w = int(big_h / crop_fraction), int(big_w / crop_fraction)
    if target_h / h >= target_w / w:      # height is the binding side (the shorter one for square inputs)
        new_h, new_w = target_h, int(target_h * w / h)
    else:
        new_w, new_h = target_w, int(target_w * h / w)
    new_h, new_w = max(new_h, big_h), max(new_w, big_w)
    y0, x0 = int(round((new_h - big_h) / 2.0)), int(round((new_w - big_w) / 2.0))
    transform = Transform(frame_hw=(h, w), input_hw=(big_h, big_w), ratio=(new_w / w, new_h / h),
                          crop=(float(x0), float(y0)))
    return _Plan((new_w, new_h), (0, big_h, 0, big_w), (y0, y0 + big_h, x0, x0 + big_w), (big_h, big_w), transform)


def _resize(image: np.ndarray, wh: Tuple[int, int], interpolation: int) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == wh:
        return image
    return cv2.resize(image, wh, interpolation=interpolation)


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        got = f"shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image: expected a non-empty (H, W) or (H, W, C) array, got {got}")
    return image


def letterbox(image: np.ndarray, size_hw: Tuple[int, int], *, pad_value: int = 114, auto: bool = False,
              stride: int = 32, scaleup: bool = True,
              interpolation: int = cv2.INTER_LINEAR) -> Tuple[np.ndarray, Transform]:
    """Resize keeping the aspect ratio and pad to ``size_hw`` (Ultralytics ``LetterBox`` rounding).

    Args:
        image: (H, W, C) or (H, W) array (any dtype OpenCV resizes).
        size_hw: target (height, width).
        pad_value: border value for every channel.
        auto: pad only to the minimum rectangle whose sides are multiples of ``stride`` away from
            ``size_hw`` (dynamic-shape models).
        stride: see ``auto``.
        scaleup: allow enlarging images smaller than ``size_hw``.
        interpolation: OpenCV interpolation flag.

    Returns:
        (padded image of shape (H', W'[, C]) — ``size_hw`` unless ``auto`` —, :class:`Transform`).
    """
    image = _check_image(image)
    plan = _letterbox_plan(image.shape[:2], _size_hw(size_hw), auto=auto, stride=int(stride), scaleup=scaleup)
    resized = _resize(image, plan.resized_wh, interpolation)
    top, bottom = plan.content[0], plan.out_hw[0] - plan.content[1]
    left, right = plan.content[2], plan.out_hw[1] - plan.content[3]
    channels = 1 if image.ndim == 2 else image.shape[2]
    value = (pad_value,) * min(channels, 4)
    out = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    if image.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out, plan.transform


def stretch(image: np.ndarray, size_hw: Tuple[int, int], *,
            interpolation: int = cv2.INTER_LINEAR) -> Tuple[np.ndarray, Transform]:
    """Resize to ``size_hw`` ignoring the aspect ratio.

    Args:
        image: (H, W, C) or (H, W) array.
        size_hw: target (height, width).
        interpolation: OpenCV interpolation flag.

    Returns:
        (resized image of shape (size_h, size_w[, C]), :class:`Transform`).
    """
    image = _check_image(image)
    plan = _stretch_plan(image.shape[:2], _size_hw(size_hw))
    out = _resize(image, plan.resized_wh, interpolation)
    if image.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out, plan.transform


def center_crop(image: np.ndarray, size_hw: Tuple[int, int], *, crop_fraction: float = 0.875,
                interpolation: int = cv2.INTER_LINEAR) -> Tuple[np.ndarray, Transform]:
    """Resize the binding (shorter, for square sizes) side to ``size / crop_fraction``, crop the centre.

    Matches torchvision's ``Resize(int(S / crop_fraction))`` + ``CenterCrop(S)`` geometry for square
    ``size_hw``; the pixels differ slightly because OpenCV's bilinear filter does not antialias (use
    ``interpolation=cv2.INTER_AREA`` for a closer match when shrinking a lot).

    Args:
        image: (H, W, C) or (H, W) array.
        size_hw: crop (height, width).
        crop_fraction: fraction of the resized image kept (0 < f <= 1).
        interpolation: OpenCV interpolation flag.

    Returns:
        (cropped image of shape (size_h, size_w[, C]), a contiguous copy; :class:`Transform`).
    """
    image = _check_image(image)
    if not 0 < crop_fraction <= 1:
        raise ValueError(f"crop_fraction: expected 0 < crop_fraction <= 1, got {crop_fraction!r}")
    plan = _center_crop_plan(image.shape[:2], _size_hw(size_hw), crop_fraction)
    resized = _resize(image, plan.resized_wh, interpolation)
    if image.ndim == 3 and resized.ndim == 2:
        resized = resized[:, :, None]
    y0, y1, x0, x1 = plan.src_crop
    return np.ascontiguousarray(resized[y0:y1, x0:x1]), plan.transform


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


def normalize(image: np.ndarray, *, scale: float = 1.0 / 255.0, mean: Sequence[float] = (0.0, 0.0, 0.0),
              std: Sequence[float] = (1.0, 1.0, 1.0), dtype: Any = np.float32) -> np.ndarray:
    """Return ``(image * scale - mean) / std`` per channel (the last axis).

    Args:
        image: (H, W, C) array, usually uint8, already in the model's colour order.
        scale: pixel multiplier.
        mean: C (or 1) values in the scaled domain.
        std: C (or 1) values in the scaled domain.
        dtype: output float dtype.

    Returns:
        Array of shape (H, W, C) and ``dtype``.
    """
    a = (np.float32(scale) / np.asarray(std, np.float32)).astype(np.float32)
    b = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)
    out = np.multiply(image, a, dtype=np.float32)
    if np.any(b):
        out -= b
    return out.astype(dtype, copy=False)


def to_layout(image: np.ndarray, layout: str = "NCHW") -> np.ndarray:
    """Add the batch axis and arrange (H, W, C) as ``layout``.

    Args:
        image: (H, W, C) array (or (H, W), treated as one channel).
        layout: ``"NCHW"`` → (1, C, H, W); ``"NHWC"`` → (1, H, W, C).

    Returns:
        C-contiguous array with a batch dimension.
    """
    _choice(layout, LAYOUTS, "layout")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"image: expected shape (H, W, C), got {image.shape}")
    if layout == "NCHW":
        return np.ascontiguousarray(image.transpose(2, 0, 1)[None])
    return np.ascontiguousarray(image[None])


def quantize(x: Any, scale: float, zero_point: int, dtype: Any = np.int8) -> np.ndarray:
    """Quantise floats: ``q = clip(round(x / scale) + zero_point, dtype range)``.

    Rounding is half-to-even (``np.rint``), like NumPy and most runtimes' reference kernels.

    Args:
        x: float array of any shape.
        scale: quantisation step (> 0).
        zero_point: integer offset.
        dtype: ``np.uint8`` or ``np.int8`` (or their names).

    Returns:
        Integer array of ``x``'s shape.
    """
    dt = np.dtype(dtype)
    if dt.name not in _INT_RANGE:
        raise ValueError(f"quantize: expected dtype uint8 or int8, got {dt.name}")
    if not float(scale) > 0:
        raise ValueError(f"quantize: expected scale > 0, got {scale!r}")
    lo, hi = _INT_RANGE[dt.name]
    q = np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, lo, hi).astype(dt)


def dequantize(q: Any, scale: float, zero_point: int) -> np.ndarray:
    """Return ``(q - zero_point) * scale`` as float32 (any shape)."""
    return ((np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# The fused pipeline
# --------------------------------------------------------------------------------------------------


class Preprocessor:
    """Turn BGR uint8 frames into network inputs according to a :class:`PreprocessConfig`.

    The work is fused: one ``cv2.resize`` of the frame to the content size, then one pass per channel
    that swaps colours, scales/normalises (or quantises, through a 256-entry lookup table) and writes
    straight into the NCHW/NHWC output; the letterbox border is written separately and only where it is.

    Buffers: by default every call returns a NEW tensor, safe to keep. With ``reuse_output=True`` the
    tensor is a preallocated internal buffer that the NEXT call overwrites (the border is then written
    once per frame size) — the fastest choice for a loop that feeds the tensor to the runtime at once
    and keeps nothing; copy it if you need it later. A Preprocessor keeps scratch buffers between calls
    and is not thread-safe: use one per thread.

    Args:
        config: the preprocessing recipe.
        reuse_output: return the internal buffer (see above) instead of a fresh array.
    """

    def __init__(self, config: PreprocessConfig, *, reuse_output: bool = False) -> None:
        if not isinstance(config, PreprocessConfig):
            raise ValueError(f"config: expected a PreprocessConfig, got {type(config).__name__}")
        self.config = config
        self.reuse_output = bool(reuse_output)
        self._interp = INTERPOLATIONS[config.interpolation]
        self._dtype = np.dtype(config.dtype)
        # model channel c takes BGR channel _src[c]
        self._src = (2, 1, 0) if config.color == "RGB" else (0, 1, 2)
        std = np.asarray(config.std, np.float64)
        self._a = (config.scale / std).astype(np.float32)
        self._b = (np.asarray(config.mean, np.float64) / std).astype(np.float32)
        self._has_b = bool(np.any(self._b))
        # How channel values are written: "raw" (copy bytes), "mul" (float32 multiply [+ subtract]),
        # "lut" (a 256-entry table per channel: quantised ints, float16, per-channel NHWC float32).
        uniform = bool(np.all(self._a == self._a[0]) and np.all(self._b == self._b[0]))
        if config.raw_pixels:
            self._mode = "raw"
        elif config.dtype == "float32" and (config.layout == "NCHW" or uniform):
            self._mode = "mul"
        else:
            self._mode = "lut"
        self._lut = self._make_lut() if self._mode == "lut" else None       # (3, 256), model channel order
        self._lut_hwc = None if self._lut is None else np.ascontiguousarray(self._lut.T[None])  # (1, 256, 3)
        self._pad = self._pad_values()
        self._plan_key: Optional[Tuple[int, int]] = None
        self._plan: Optional[_Plan] = None
        self._buffer: Optional[np.ndarray] = None
        self._buffer_key: Optional[Tuple[int, ...]] = None
        self._scratch: Optional[np.ndarray] = None

    def __repr__(self) -> str:
        return f"Preprocessor({self.config!r}, reuse_output={self.reuse_output})"

    def _make_lut(self) -> np.ndarray:
        """(3, 256) table: value of pixel p in model channel c, in the output dtype (ints as uint8 bits)."""
        c = self.config
        px = np.arange(256, dtype=np.float64)[None, :]
        x = (px * c.scale - np.asarray(c.mean)[:, None]) / np.asarray(c.std)[:, None]
        if c.quant is None:
            return np.ascontiguousarray(x.astype(self._dtype))
        q_scale, q_zp = c.quant
        lo, hi = _INT_RANGE[c.dtype]
        q = np.clip(np.rint(x / q_scale) + q_zp, lo, hi).astype(self._dtype)
        return np.ascontiguousarray(q.view(np.uint8))

    def _pad_values(self) -> np.ndarray:
        """Per-model-channel value of the border, (3,) in the output dtype."""
        p = self.config.pad_value
        if self._lut is not None:
            return self._lut[:, p].view(self._dtype).copy()
        if self._mode == "raw":
            return np.full(3, p, self._dtype)
        return (np.float32(p) * self._a - self._b).astype(self._dtype)

    def _geometry(self, frame_hw: Tuple[int, int]) -> _Plan:
        """Geometry for a frame of ``frame_hw`` (cached for the last frame size)."""
        key = (int(frame_hw[0]), int(frame_hw[1]))
        if key != self._plan_key:
            c = self.config
            if c.resize == "letterbox":
                self._plan = _letterbox_plan(key, c.size_hw, auto=c.auto, stride=c.effective_stride,
                                             scaleup=c.scaleup)
            elif c.resize == "stretch":
                self._plan = _stretch_plan(key, c.size_hw)
            else:
                self._plan = _center_crop_plan(key, c.size_hw, c.crop_fraction)
            self._plan_key = key
        return self._plan  # type: ignore[return-value]

    def transform_for(self, frame_hw: Tuple[int, int]) -> Transform:
        """The :class:`Transform` a frame of ``frame_hw`` gets, without processing one."""
        return self._geometry(frame_hw).transform

    def _output(self, plan: _Plan) -> np.ndarray:
        out_h, out_w = plan.out_hw
        shape = (1, 3, out_h, out_w) if self.config.layout == "NCHW" else (1, out_h, out_w, 3)
        if self.reuse_output and self._buffer is not None and self._buffer_key == (out_h, out_w) + plan.content:
            return self._buffer
        out = np.empty(shape, self._dtype)
        self._fill_border(out, plan)
        if self.reuse_output:
            self._buffer, self._buffer_key = out, (out_h, out_w) + plan.content
        return out

    def _fill_border(self, out: np.ndarray, plan: _Plan) -> None:
        y0, y1, x0, x1 = plan.content
        out_h, out_w = plan.out_hw
        if (y0, y1, x0, x1) == (0, out_h, 0, out_w):
            return
        nchw = self.config.layout == "NCHW"
        for c in range(3):
            plane = out[0, c] if nchw else out[0, :, :, c]
            v = self._pad[c]
            plane[:y0] = v
            plane[y1:] = v
            plane[y0:y1, :x0] = v
            plane[y0:y1, x1:] = v

    def __call__(self, frame: Any) -> Tuple[np.ndarray, Transform]:
        """Preprocess one frame.

        Args:
            frame: BGR uint8 (H, W, 3) (grayscale and BGRA are converted, see :func:`ensure_bgr`).

        Returns:
            (tensor, transform): the tensor is C-contiguous, of the config dtype, shape (1, 3, H, W) for
            NCHW or (1, H, W, 3) for NHWC (``size_hw`` unless ``auto``); ``transform`` maps boxes back.

        Raises:
            ValueError: the frame is not a usable image (see :func:`ensure_bgr`).
        """
        img = ensure_bgr(frame)
        plan = self._geometry(img.shape[:2])
        resized = self._resize(img, plan.resized_wh)
        sy0, sy1, sx0, sx1 = plan.src_crop
        if (sy0, sx0, sy1, sx1) != (0, 0, resized.shape[0], resized.shape[1]):
            resized = resized[sy0:sy1, sx0:sx1]
        out = self._output(plan)
        y0, y1, x0, x1 = plan.content
        if self.config.layout == "NCHW":
            self._write_nchw(resized, out[0, :, y0:y1, x0:x1])
        else:
            self._write_nhwc(resized, out[0, y0:y1, x0:x1])
        return out, plan.transform

    def _resize(self, img: np.ndarray, wh: Tuple[int, int]) -> np.ndarray:
        """Resize into a scratch buffer kept between calls (it never leaves the Preprocessor)."""
        if (img.shape[1], img.shape[0]) == wh:
            return img
        scratch = self._scratch
        if scratch is None or scratch.shape != (wh[1], wh[0], 3):
            scratch = self._scratch = np.empty((wh[1], wh[0], 3), np.uint8)
        out = cv2.resize(img, wh, dst=scratch, interpolation=self._interp)
        return out

    def _write_nchw(self, src: np.ndarray, dst: np.ndarray) -> None:
        """src: (h, w, 3) uint8 BGR; dst: (3, h, w) view of the output."""
        chans = cv2.split(src)
        if self._mode == "mul":
            for c in range(3):
                np.multiply(chans[self._src[c]], self._a[c], out=dst[c], casting="unsafe")
                if self._has_b:
                    np.subtract(dst[c], self._b[c], out=dst[c], casting="unsafe")
        elif self._mode == "raw":
            for c in range(3):
                dst[c] = chans[self._src[c]]
        else:
            table = dst.view(np.uint8) if self._lut.dtype == np.uint8 else dst  # type: ignore[union-attr]
            for c in range(3):
                _apply_lut(chans[self._src[c]], self._lut[c:c + 1], table[c])  # type: ignore[index]

    def _write_nhwc(self, src: np.ndarray, dst: np.ndarray) -> None:
        """src: (h, w, 3) uint8 BGR; dst: (h, w, 3) view of the output."""
        if self._src != (0, 1, 2):
            src = cv2.cvtColor(src, cv2.COLOR_BGR2RGB)
        if self._mode == "mul":       # uniform scale/offset: scalar ops are fast on interleaved data
            np.multiply(src, self._a[0], out=dst, casting="unsafe")
            if self._has_b:
                np.subtract(dst, self._b[0], out=dst, casting="unsafe")
        elif self._mode == "raw":
            dst[...] = src
        else:
            table = dst.view(np.uint8) if self._lut_hwc.dtype == np.uint8 else dst  # type: ignore[union-attr]
            _apply_lut(src, self._lut_hwc, table)  # type: ignore[arg-type]


def _apply_lut(src: np.ndarray, lut: np.ndarray, dst: np.ndarray) -> None:
    """``dst[...] = lut[src]`` per channel. src: (h, w[, C]) uint8; lut: (1, 256[, C]); dst like src."""
    try:
        res = cv2.LUT(src, lut, dst=dst)
    except cv2.error:    # older OpenCV without float16 tables
        if src.ndim == 2:
            dst[...] = lut[0][src]
        else:
            for c in range(src.shape[2]):
                dst[..., c] = lut[0, :, c][src[..., c]]
        return
    if res.ctypes.data != dst.ctypes.data:     # OpenCV did not write in place (e.g. a strided view)
        dst[...] = res.reshape(dst.shape)
