"""Contracts for models exported by other tools, built from the metadata they already carry.

Supported without a sidecar:

* Ultralytics YOLO exports (``yolo export format=onnx``): ONNX ``metadata_props`` hold ``names``
  (a Python dict literal such as ``{0: 'person', 1: 'bicycle'}``), ``imgsz``, ``stride``, ``task``
  and, for NMS-free heads, ``end2end``; OpenVINO exports put the same keys in ``metadata.yaml`` next
  to the ``.xml``. Their pre-processing is letterbox with pad 114, RGB, ``/255``.

The metadata is parsed with small literal parsers; it is never evaluated.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Mapping, Optional

from sdk.contract import SCHEMA_VERSION

__all__ = ["parse_names", "parse_int_list", "ultralytics_contract", "read_ultralytics_yaml"]

logger = logging.getLogger(__name__)

_NAME_ITEM = re.compile(r"""(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")


def parse_names(text: str) -> list:
    """Parse ``{0: 'person', 1: "bus"}`` (a dict literal of int → str) into a list of names.

    Missing ids are filled with their number as a string.

    Raises:
        ValueError: when the text is not such a literal.
    """
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        raise ValueError(f"expected a dict literal like {{0: 'person'}}, got {text[:60]!r}")
    items = {int(m.group(1)): (m.group(2) if m.group(2) is not None else m.group(3)) for m in _NAME_ITEM.finditer(stripped)}
    if not items and stripped[1:-1].strip():
        raise ValueError(f"expected a dict literal like {{0: 'person'}}, got {text[:60]!r}")
    names = [str(i) for i in range(max(items) + 1)] if items else []
    for k, v in items.items():
        names[k] = re.sub(r"\\(.)", r"\1", v)
    return names


def parse_int_list(text: str) -> list:
    """Parse ``[640, 640]`` or ``640`` into a list of ints (raises ValueError otherwise)."""
    nums = re.findall(r"-?\d+", text)
    if not nums or re.sub(r"[\s\[\]\(\),\d-]", "", text):
        raise ValueError(f"expected a list of integers like [640, 640], got {text[:60]!r}")
    return [int(n) for n in nums]


def read_ultralytics_yaml(path: Path) -> Optional[dict]:
    """Read an Ultralytics ``metadata.yaml`` safely into str-valued metadata, or None when absent."""
    if not path.is_file():
        return None
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, Mapping):
        return None
    meta = {}
    for key, value in data.items():
        if key == "names" and isinstance(value, Mapping):
            meta["names"] = "{" + ", ".join(f"{int(k)}: {str(v)!r}" for k, v in value.items()) + "}"
        else:
            meta[str(key)] = str(value)
    return meta


def ultralytics_contract(metadata: Mapping[str, str], *, input_layout: str = "NCHW",
                         output_shapes: Optional[list] = None) -> Optional[dict]:
    """Build a contract dict from Ultralytics export metadata, or None if it is not Ultralytics'.

    Args:
        metadata: the model file's string metadata (``names``, ``imgsz``, ``stride``, ``task``...).
        input_layout: the layout of the model input (``NHWC`` for TFLite exports).
        output_shapes: shapes of the outputs, used to spot NMS-free ``[1, K, 6]`` heads.
    """
    if "names" not in metadata or "imgsz" not in metadata:
        return None
    author = (metadata.get("author", "") + metadata.get("description", "")).lower()
    if "ultralytics" not in author and "stride" not in metadata:
        return None
    task = metadata.get("task", "detect")
    if task != "detect":
        logger.warning("Ultralytics task %r is not supported without a sidecar (only 'detect')", task)
        return None
    names = parse_names(metadata["names"])
    imgsz = parse_int_list(metadata["imgsz"])
    h, w = (imgsz[0], imgsz[-1])
    stride = parse_int_list(metadata.get("stride", "32"))[0]
    end2end = metadata.get("end2end", "False").strip().lower() == "true"
    if output_shapes and len(output_shapes) == 1 and len(output_shapes[0]) == 3 and output_shapes[0][-1] == 6:
        end2end = True
    shape = [1, 3, h, w] if input_layout == "NCHW" else [1, h, w, 3]
    return {
        "schema_version": SCHEMA_VERSION,
        "task": "detect",
        "family": "ultralytics",
        "labels": names,
        "input": {"shape": shape, "layout": input_layout, "dtype": "float32", "color": "RGB",
                  "resize": "letterbox", "pad_value": 114, "stride": stride, "scale": 1.0 / 255.0},
        "decoder": {"type": "yolo_end2end"} if end2end else {"type": "yolo", "version": "v8",
                                                              "num_classes": len(names)},
        "postprocess": {"conf_threshold": 0.25, "iou_threshold": 0.7, "max_det": 300},
        "extra": {"source": "ultralytics metadata", "ultralytics_version": metadata.get("version", "")},
    }
