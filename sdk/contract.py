"""The model contract: what an exported artifact needs to say so that ``sdk.load(path)`` runs it.

The contract is JSON (schema version :data:`SCHEMA_VERSION`). It is stored inside the model file where
the format allows (ONNX ``metadata_props``, OpenVINO ``rt_info``, TFLite metadata, always under the key
:data:`METADATA_KEY`) and as a sidecar ``<model file>.json`` (``yolo.onnx.json``) or ``<stem>.json``.
A sidecar wins over embedded metadata, so a user can override what a file carries.

Minimal example (a foreign YOLOv8 ONNX model)::

    {"schema_version": 1, "task": "detect", "labels": ["person", "car"],
     "input": {"shape": [1, 3, 640, 640], "layout": "NCHW", "resize": "letterbox"},
     "decoder": {"type": "yolo"}}

Every field is validated; a bad field raises :class:`~sdk.errors.ModelContractError` naming it,
what was expected and what came. Nothing read from a model is ever evaluated or unpickled.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from sdk.errors import ModelContractError

__all__ = [
    "SCHEMA_VERSION",
    "METADATA_KEY",
    "TASKS",
    "DECODERS",
    "InputContract",
    "ModelContract",
    "sidecar_paths",
]

SCHEMA_VERSION = 1
METADATA_KEY = "edgesdk_contract"
TASKS = ("detect", "classify", "embed")
DECODERS = {
    "yolo": "detect",
    "yolo_end2end": "detect",
    "ssd": "detect",
    "tf_od_api": "detect",
    "classifier": "classify",
    "embedding": "embed",
}
LAYOUTS = ("NCHW", "NHWC")
DTYPES = ("float32", "float16", "uint8", "int8")
COLORS = ("RGB", "BGR")
RESIZES = ("letterbox", "stretch", "center_crop")
PRECISIONS = ("fp32", "fp16", "int8", "mixed")
POSTPROCESS_KEYS = ("conf_threshold", "iou_threshold", "max_det", "max_nms", "agnostic", "classes", "top_k")


def _suggest(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _fail(path: str, expected: str, got: Any) -> ModelContractError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ModelContractError(f"contract.{path}: expected {expected}, got {shown}")


def _check_keys(section: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    for key in section:
        if key not in allowed:
            raise ModelContractError(
                f"contract{'.' + path if path else ''}: unknown key {key!r}{_suggest(key, allowed)}; "
                f"known keys: {', '.join(allowed)}")


def _choice(value: Any, options: Sequence[str], path: str) -> str:
    if not isinstance(value, str) or value not in options:
        hint = _suggest(value, options) if isinstance(value, str) else ""
        raise ModelContractError(f"contract.{path}: expected one of {', '.join(options)}, got {value!r}{hint}")
    return value


def _number(value: Any, path: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(path, "a number", value)
    if positive and not value > 0:
        raise _fail(path, "a number > 0", value)
    return float(value)


def _triple(value: Any, path: str, *, positive: bool = False) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value] * 3
    if not isinstance(value, (list, tuple)) or len(value) not in (1, 3):
        raise _fail(path, "a number or a list of 1 or 3 numbers", value)
    nums = tuple(_number(v, f"{path}[{i}]", positive=positive) for i, v in enumerate(value))
    return nums * 3 if len(nums) == 1 else nums


@dataclass(frozen=True)
class InputContract:
    """How to turn a BGR uint8 frame into the network input.

    ``x = (pixel * scale - mean) / std`` per channel (in the model's colour order), then, for integer
    ``dtype`` with ``quantization`` ``(scale, zero_point)``: ``q = round(x / scale) + zero_point``.
    An integer dtype with no quantization and identity normalisation means raw pixel bytes.
    ``shape`` is the full input shape, batch first, e.g. ``(1, 3, 320, 320)`` (NCHW) or
    ``(1, 320, 320, 3)`` (NHWC); ``None`` marks a dynamic dimension.
    """

    shape: tuple
    layout: str = "NCHW"
    name: Optional[str] = None
    dtype: str = "float32"
    color: str = "RGB"
    resize: str = "letterbox"
    pad_value: int = 114
    stride: Optional[int] = None
    scale: float = 1.0 / 255.0
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    crop_fraction: float = 0.875
    quantization: Optional[tuple] = None

    @property
    def size_hw(self) -> tuple:
        """Network input (height, width); raises ModelContractError when they are dynamic."""
        h, w = (self.shape[2], self.shape[3]) if self.layout == "NCHW" else (self.shape[1], self.shape[2])
        if h is None or w is None:
            raise ModelContractError(f"contract.input.shape: expected a static height and width, got {list(self.shape)}")
        return int(h), int(w)

    @property
    def channels(self) -> Optional[int]:
        return self.shape[1] if self.layout == "NCHW" else self.shape[3]

    @classmethod
    def from_dict(cls, data: Any) -> "InputContract":
        if not isinstance(data, Mapping):
            raise _fail("input", "an object", data)
        _check_keys(data, [f.name for f in fields(cls)], "input")
        if "shape" not in data:
            raise ModelContractError("contract.input.shape: required field is missing (e.g. [1, 3, 320, 320])")
        shape = data["shape"]
        if not isinstance(shape, (list, tuple)) or len(shape) != 4:
            raise _fail("input.shape", "a list of 4 dimensions (batch first)", shape)
        dims = []
        for i, d in enumerate(shape):
            if d is None or d == -1 or isinstance(d, str):
                dims.append(None)
            elif isinstance(d, int) and not isinstance(d, bool) and d > 0:
                dims.append(d)
            else:
                raise _fail(f"input.shape[{i}]", "a positive integer, -1 or null", d)
        layout = _choice(data.get("layout", "NCHW"), LAYOUTS, "input.layout")
        ch = dims[1] if layout == "NCHW" else dims[3]
        if ch not in (None, 3):
            raise _fail("input.shape", f"3 channels in layout {layout} (channel axis {1 if layout == 'NCHW' else 3})",
                        shape)
        quant = data.get("quantization")
        if quant is not None:
            if isinstance(quant, Mapping):
                _check_keys(quant, ["scale", "zero_point"], "input.quantization")
                if "scale" not in quant or "zero_point" not in quant:
                    raise _fail("input.quantization", "{scale, zero_point}", quant)
                q_scale, q_zp = quant["scale"], quant["zero_point"]
            elif isinstance(quant, (list, tuple)) and len(quant) == 2:
                q_scale, q_zp = quant
            else:
                raise _fail("input.quantization", "{scale, zero_point} or null", quant)
            if isinstance(q_zp, bool) or not isinstance(q_zp, int):
                raise _fail("input.quantization.zero_point", "an integer", q_zp)
            quant = (_number(q_scale, "input.quantization.scale", positive=True), int(q_zp))
        stride = data.get("stride")
        if stride is not None and (isinstance(stride, bool) or not isinstance(stride, int) or stride <= 0):
            raise _fail("input.stride", "a positive integer or null", stride)
        pad = data.get("pad_value", 114)
        if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad <= 255:
            raise _fail("input.pad_value", "an integer in 0..255", pad)
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise _fail("input.name", "a string or null", name)
        crop = _number(data.get("crop_fraction", 0.875), "input.crop_fraction", positive=True)
        if crop > 1:
            raise _fail("input.crop_fraction", "a number in (0, 1]", crop)
        return cls(
            shape=tuple(dims), layout=layout, name=name,
            dtype=_choice(data.get("dtype", "float32"), DTYPES, "input.dtype"),
            color=_choice(data.get("color", "RGB"), COLORS, "input.color"),
            resize=_choice(data.get("resize", "letterbox"), RESIZES, "input.resize"),
            pad_value=pad, stride=stride,
            scale=_number(data.get("scale", 1.0 / 255.0), "input.scale", positive=True),
            mean=_triple(data.get("mean", 0.0), "input.mean"),
            std=_triple(data.get("std", 1.0), "input.std", positive=True),
            crop_fraction=crop, quantization=quant,
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["quantization"] = (None if self.quantization is None
                             else {"scale": self.quantization[0], "zero_point": self.quantization[1]})
        return d


@dataclass(frozen=True)
class ModelContract:
    """Everything needed to run an artifact. See the module docstring for the JSON form.

    Attributes:
        task: ``detect``, ``classify`` or ``embed``.
        input: pre-processing and input tensor description.
        decoder: ``{"type": <one of DECODERS>, ...decoder options}``.
        labels: class names, index = class id.
        outputs: output tensor names in the order the decoder reads them (empty: the backend's order).
        postprocess: defaults for :class:`sdk.decoders.PostprocessOptions` (``conf_threshold`` ...).
        family, format, precision, converter, weights_sha256: provenance.
        float_layers: layers kept in float in a quantised model.
        accuracy: the conversion's accuracy report (reference vs converted metric).
        extra: free-form data the SDK ignores.
    """

    task: str
    input: InputContract
    decoder: dict
    labels: tuple = ()
    outputs: tuple = ()
    postprocess: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    family: Optional[str] = None
    format: Optional[str] = None
    precision: Optional[str] = None
    converter: dict = field(default_factory=dict)
    weights_sha256: Optional[str] = None
    float_layers: tuple = ()
    accuracy: Optional[dict] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> "ModelContract":
        """Validate a parsed JSON object.

        Raises:
            ModelContractError: naming the first bad field.
        """
        if not isinstance(data, Mapping):
            raise _fail("", "a JSON object", data)
        _check_keys(data, [f.name for f in fields(cls)], "")
        version = data.get("schema_version")
        if isinstance(version, bool) or not isinstance(version, int):
            raise _fail("schema_version", f"an integer (this SDK reads version {SCHEMA_VERSION})", version)
        if version > SCHEMA_VERSION:
            raise ModelContractError(
                f"contract.schema_version: this SDK reads contracts up to version {SCHEMA_VERSION}, got {version}; "
                f"upgrade edgesdk (pip install -U edgesdk)")
        if version < 1:
            raise _fail("schema_version", "1 or more", version)
        if "task" not in data:
            raise ModelContractError(f"contract.task: required field is missing (one of {', '.join(TASKS)})")
        task = _choice(data["task"], TASKS, "task")
        decoder = data.get("decoder")
        if not isinstance(decoder, Mapping) or "type" not in decoder:
            raise _fail("decoder", f"an object with a 'type' (one of {', '.join(DECODERS)})", decoder)
        dtype = _choice(decoder["type"], list(DECODERS), "decoder.type")
        if DECODERS[dtype] != task:
            raise ModelContractError(f"contract.decoder.type: decoder {dtype!r} produces task {DECODERS[dtype]!r}, "
                                     f"but contract.task is {task!r}")
        labels = data.get("labels", [])
        if isinstance(labels, Mapping):  # {"0": "person", ...}
            try:
                items = sorted((int(k), v) for k, v in labels.items())
            except (TypeError, ValueError):
                raise _fail("labels", "a list of names or an object of {class id: name}", labels) from None
            n = items[-1][0] + 1 if items else 0
            names = [str(i) for i in range(n)]
            for k, v in items:
                names[k] = v
            labels = names
        if not isinstance(labels, (list, tuple)) or not all(isinstance(s, str) for s in labels):
            raise _fail("labels", "a list of strings", labels)
        outputs = data.get("outputs", [])
        if isinstance(outputs, (list, tuple)):
            outputs = [o.get("name") if isinstance(o, Mapping) else o for o in outputs]
        if not isinstance(outputs, (list, tuple)) or not all(isinstance(s, str) for s in outputs):
            raise _fail("outputs", "a list of output names", data.get("outputs"))
        post = data.get("postprocess", {})
        if not isinstance(post, Mapping):
            raise _fail("postprocess", "an object", post)
        _check_keys(post, POSTPROCESS_KEYS, "postprocess")
        for key in ("conf_threshold", "iou_threshold"):
            if key in post:
                v = _number(post[key], f"postprocess.{key}")
                if not 0.0 <= v <= 1.0:
                    raise _fail(f"postprocess.{key}", "a number in [0, 1]", v)
        for key in ("max_det", "max_nms", "top_k"):
            if key in post and (isinstance(post[key], bool) or not isinstance(post[key], int) or post[key] <= 0):
                raise _fail(f"postprocess.{key}", "a positive integer", post[key])
        precision = data.get("precision")
        if precision is not None:
            _choice(precision, PRECISIONS, "precision")
        for key in ("family", "format", "weights_sha256"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise _fail(key, "a string", data[key])
        for key in ("converter", "extra"):
            if not isinstance(data.get(key, {}), Mapping):
                raise _fail(key, "an object", data[key])
        if data.get("accuracy") is not None and not isinstance(data["accuracy"], Mapping):
            raise _fail("accuracy", "an object or null", data["accuracy"])
        float_layers = data.get("float_layers", [])
        if not isinstance(float_layers, (list, tuple)):
            raise _fail("float_layers", "a list of layer names", float_layers)
        return cls(
            task=task, input=InputContract.from_dict(data.get("input")), decoder=dict(decoder),
            labels=tuple(labels), outputs=tuple(outputs), postprocess=dict(post), schema_version=version,
            family=data.get("family"), format=data.get("format"), precision=precision,
            converter=dict(data.get("converter", {})), weights_sha256=data.get("weights_sha256"),
            float_layers=tuple(float_layers), accuracy=data.get("accuracy"), extra=dict(data.get("extra", {})),
        )

    @classmethod
    def from_json(cls, text: "str | bytes", *, source: str = "contract") -> "ModelContract":
        """Parse and validate JSON text (never evaluated)."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelContractError(f"{source}: expected a JSON model contract, got unparseable text ({exc})") from exc
        try:
            return cls.from_dict(data)
        except ModelContractError as exc:
            raise ModelContractError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: "str | Path") -> "ModelContract":
        path = Path(path)
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise ModelContractError(f"cannot read contract file {path}: {exc}") from exc
        return cls.from_json(text, source=str(path))

    def to_dict(self) -> dict:
        return {
            "schema_version": self.schema_version, "task": self.task, "family": self.family,
            "format": self.format, "precision": self.precision, "labels": list(self.labels),
            "input": self.input.to_dict(), "outputs": list(self.outputs), "decoder": dict(self.decoder),
            "postprocess": dict(self.postprocess), "converter": dict(self.converter),
            "weights_sha256": self.weights_sha256, "float_layers": list(self.float_layers),
            "accuracy": self.accuracy, "extra": dict(self.extra),
        }

    def to_json(self, *, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    def save(self, path: "str | Path") -> Path:
        """Write the contract as JSON to ``path`` and return it."""
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    def with_updates(self, **changes: Any) -> "ModelContract":
        """Return a copy with top-level fields replaced (re-validated)."""
        data = self.to_dict()
        data.update(changes)
        return ModelContract.from_dict(data)


def sidecar_paths(model_path: "str | Path") -> list:
    """Candidate sidecar files for a model, in order of preference: ``m.onnx.json`` then ``m.json``."""
    p = Path(model_path)
    return [p.with_name(p.name + ".json"), p.with_suffix(".json")]

