"""Embed named metadata buffers (the EdgeSDK contract, labels, ...) into a ``.tflite`` flatbuffer.

::

    from converters.tflite_metadata import add_metadata
    data = add_metadata("model.tflite", {"edgesdk_contract": contract_json.encode()})
    Path("model.tflite").write_bytes(data)

The model is unpacked with the flatbuffers object API of the TFLite schema module shipped by an
installed package (``ai_edge_litert``, ``litert_converter`` or ``tensorflow``), a ``Buffer`` and a
``Metadata`` entry are appended per name (an existing entry with the same name is replaced), and the
model is repacked with file identifier ``b"TFL3"``. Buffer data stays 16-byte aligned as the schema's
``force_align: 16`` asks (the generated Python ``Pack`` ignores it). The SDK reads the entries back
with :func:`sdk.backends.tflite_metadata.read_metadata`, without any of these packages.
"""
from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Union

import numpy as np

__all__ = ["add_metadata", "load_schema_module"]

logger = logging.getLogger(__name__)

TFLITE_IDENTIFIER = b"TFL3"
_SCHEMA_MODULES = (
    "ai_edge_litert.schema_py_generated",
    "litert_converter.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
    "tflite_runtime.schema_py_generated",
)
_MAX_FLATBUFFER = 2**31 - 1


def load_schema_module() -> Any:
    """Import the first installed TFLite ``schema_py_generated`` module (flatbuffers object API).

    Raises:
        ImportError: none is installed, or the ``flatbuffers`` package is missing.
    """
    errors = []
    for name in _SCHEMA_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if hasattr(module, "ModelT") and hasattr(module, "MetadataT"):
            return module
        errors.append(f"{name}: no flatbuffers object API (ModelT/MetadataT)")
    raise ImportError("no TFLite flatbuffer schema module with the object API is installed ("
                      + "; ".join(errors) + '); install one with: pip install ai-edge-litert  (or "edgesdk[convert]")')


def _aligned_buffer_class(schema: Any) -> type:
    """A ``BufferT`` whose ``Pack`` aligns ``data`` to 16 bytes (schema ``force_align: 16``)."""

    class AlignedBufferT(schema.BufferT):
        def Pack(self, builder: Any) -> int:  # noqa: N802 - flatbuffers naming
            data_offset = None
            if self.data is not None:
                raw = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes() if not isinstance(self.data, (bytes, bytearray)) else bytes(self.data)
                builder.StartVector(1, len(raw), 16)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head:builder.head + len(raw)] = raw
                try:
                    data_offset = builder.EndVector()
                except TypeError:  # flatbuffers < 2.0 wants the element count
                    data_offset = builder.EndVector(len(raw))
            schema.BufferStart(builder)
            if data_offset is not None:
                schema.BufferAddData(builder, data_offset)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBufferT


def _as_aligned(cls: type, buf: Any) -> Any:
    out = cls()
    out.data, out.offset, out.size = buf.data, buf.offset, buf.size
    return out


def add_metadata(tflite: Union[str, "os.PathLike[str]", bytes, bytearray], entries: Mapping[str, bytes]) -> bytes:
    """Return a copy of a TFLite model with named metadata buffers added or replaced.

    Args:
        tflite: path to a ``.tflite`` file, or its bytes.
        entries: ``{name: bytes}``; ``str`` values are encoded as UTF-8. Names already present in the
            model are replaced (e.g. an older ``edgesdk_contract``); others are kept.

    Returns:
        The new model as bytes (write it to a ``.tflite`` file).

    Raises:
        ValueError: the input is not a TFLite flatbuffer, an entry is not bytes/str, or the result
            would exceed the 2 GiB flatbuffer limit.
        ImportError: no TFLite schema module is installed (see :func:`load_schema_module`).
    """
    import flatbuffers

    schema = load_schema_module()
    data = Path(tflite).read_bytes() if isinstance(tflite, (str, os.PathLike)) else bytes(tflite)
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ValueError(f"expected a TFLite flatbuffer (identifier {TFLITE_IDENTIFIER!r} at bytes 4..8), "
                         f"got {len(data)} bytes with {data[4:8]!r}")
    clean: Dict[str, bytes] = {}
    for name, value in entries.items():
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise ValueError(f"metadata {name!r}: expected bytes or str, got {type(value).__name__}")
        clean[str(name)] = bytes(value)

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    # Buffers stored outside the flatbuffer (offset > 1) are pulled inline; the repacked model has none.
    for buf in model.buffers or []:
        if buf.offset and buf.offset > 1:
            buf.data = np.frombuffer(data, dtype=np.uint8, count=buf.size, offset=buf.offset).copy()
            buf.offset, buf.size = 0, 0
    for sg in model.subgraphs or []:
        for op in sg.operators or []:
            if getattr(op, "largeCustomOptionsOffset", 0):
                start, size = op.largeCustomOptionsOffset, op.largeCustomOptionsSize
                op.customOptions = np.frombuffer(data, dtype=np.uint8, count=size, offset=start).copy()
                op.largeCustomOptionsOffset, op.largeCustomOptionsSize = 0, 0

    aligned = _aligned_buffer_class(schema)
    model.buffers = [_as_aligned(aligned, b) for b in (model.buffers or [])]
    model.metadata = list(model.metadata or [])
    existing = {}
    for i, md in enumerate(model.metadata):
        name = md.name.decode("utf-8", "replace") if isinstance(md.name, bytes) else str(md.name)
        existing[name] = i
    for name, value in clean.items():
        new_buf = aligned()
        new_buf.data = np.frombuffer(value, dtype=np.uint8).copy() if value else None
        new_buf.offset, new_buf.size = 0, 0
        model.buffers.append(new_buf)
        if name in existing:
            model.metadata[existing[name]].buffer = len(model.buffers) - 1
            logger.debug("replacing TFLite metadata %r (%d bytes)", name, len(value))
        else:
            md = schema.MetadataT()
            md.name = name
            md.buffer = len(model.buffers) - 1
            model.metadata.append(md)

    builder = flatbuffers.Builder(len(data) + sum(len(v) for v in clean.values()) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    out = bytes(builder.Output())
    if len(out) > _MAX_FLATBUFFER:
        raise ValueError(f"the model with metadata would be {len(out)} bytes, over the 2 GiB flatbuffer limit")
    return out
