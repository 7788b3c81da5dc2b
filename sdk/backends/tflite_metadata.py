"""Read TFLite metadata, and check a ``.tflite`` file's structure, in pure Python (struct + offsets).

No flatbuffers package and no TFLite runtime are needed. Every read is bounds-checked, so garbage
raises :class:`~sdk.errors.ModelFileError`, never ``IndexError`` or ``struct.error``.

:func:`verify_model` walks the parts of the TFLite schema the interpreter dereferences first (root,
subgraphs, tensors, operators, buffers, metadata) and checks every offset, vector and index against
the file size. The classic ``tflite-runtime`` 2.14 does not verify flatbuffers and crashes the process
(SIGSEGV) on a truncated model; this check turns that into a clear error. It is a structural check,
not a full flatbuffer verifier: a deliberately crafted file can still get past it.

Flatbuffer layout used here (little endian)::

    file[0:4]   uoffset of the root table          file[4:8]  identifier b"TFL3"
    table T     int32 soffset at T; its vtable is at T - soffset
    vtable V    uint16 vtable size, uint16 table size, then one uint16 field offset per field (0 = absent)
    reference   uoffset stored at P points to P + value (strings, vectors, sub-tables)
    vector      uint32 length, then the elements (tables: one uoffset each)

TFLite schema fields read (field ids): Model{version 0, operator_codes 1, subgraphs 2, description 3,
buffers 4, metadata_buffer 5, metadata 6, signature_defs 7}; Metadata{name 0, buffer 1};
Buffer{data 0, offset 1, size 2} where ``offset > 1`` means the bytes live outside the flatbuffer at
that file offset; SubGraph{tensors 0, inputs 1, outputs 2, operators 3, name 4};
Tensor{shape 0, type 1, buffer 2, name 3, quantization 4}; Operator{opcode_index 0, inputs 1,
outputs 2, builtin_options 4, custom_options 5}; QuantizationParameters{scale 2, zero_point 3}.
"""
from __future__ import annotations

import mmap
import os
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from sdk.errors import ModelFileError

__all__ = ["read_metadata", "verify_model", "decode_text_metadata", "TFLITE_IDENTIFIER"]

TFLITE_IDENTIFIER = b"TFL3"

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


class _Bad(Exception):
    """Internal: a structural problem; converted to ModelFileError with the file's name."""


class _Buf:
    """Bounds-checked little-endian reads over a bytes-like object."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.size = len(data)

    def _need(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise _Bad(f"{what} at offset {pos} (+{n} bytes) lies outside the {self.size}-byte file")

    def u8(self, pos: int, what: str = "uint8") -> int:
        self._need(pos, 1, what)
        return self.data[pos]

    def u16(self, pos: int, what: str = "uint16") -> int:
        self._need(pos, 2, what)
        return struct.unpack_from("<H", self.data, pos)[0]

    def i32(self, pos: int, what: str = "int32") -> int:
        self._need(pos, 4, what)
        return struct.unpack_from("<i", self.data, pos)[0]

    def u32(self, pos: int, what: str = "uint32") -> int:
        self._need(pos, 4, what)
        return struct.unpack_from("<I", self.data, pos)[0]

    def u64(self, pos: int, what: str = "uint64") -> int:
        self._need(pos, 8, what)
        return struct.unpack_from("<Q", self.data, pos)[0]

    def bytes(self, pos: int, n: int, what: str = "bytes") -> bytes:
        self._need(pos, n, what)
        return bytes(self.data[pos:pos + n])


class _Table:
    """One flatbuffer table: field lookup through its vtable."""

    def __init__(self, buf: _Buf, pos: int, what: str) -> None:
        self.buf, self.pos, self.what = buf, pos, what
        vtable = pos - buf.i32(pos, f"{what} table")
        self.vt_size = buf.u16(vtable, f"{what} vtable")
        self.table_size = buf.u16(vtable + 2, f"{what} vtable")
        if self.vt_size < 4 or self.vt_size % 2:
            raise _Bad(f"{what} vtable at offset {vtable} has invalid size {self.vt_size}")
        buf._need(vtable, self.vt_size, f"{what} vtable")
        buf._need(pos, max(self.table_size, 4), f"{what} table")
        self.vtable = vtable

    def _offset(self, field: int) -> int:
        idx = 4 + 2 * field
        if idx >= self.vt_size:
            return 0
        off = self.buf.u16(self.vtable + idx, f"{self.what} vtable")
        if off and off >= self.table_size:
            raise _Bad(f"{self.what} field {field} offset {off} exceeds the table size {self.table_size}")
        return off

    def has(self, field: int) -> bool:
        return self._offset(field) != 0

    def scalar(self, field: int, fmt: str, default: int = 0) -> int:
        off = self._offset(field)
        if not off:
            return default
        size = struct.calcsize("<" + fmt)
        self.buf._need(self.pos + off, size, f"{self.what} field {field}")
        return struct.unpack_from("<" + fmt, self.buf.data, self.pos + off)[0]

    def _ref(self, field: int) -> Optional[int]:
        off = self._offset(field)
        if not off:
            return None
        at = self.pos + off
        return at + self.buf.u32(at, f"{self.what} field {field} reference")

    def vector(self, field: int, elem_size: int) -> Optional[Tuple[int, int]]:
        """(start of elements, count) of a vector field, bounds-checked; None when absent."""
        target = self._ref(field)
        if target is None:
            return None
        n = self.buf.u32(target, f"{self.what} field {field} vector length")
        self.buf._need(target + 4, n * elem_size, f"{self.what} field {field} vector of {n}")
        return target + 4, n

    def string(self, field: int) -> Optional[bytes]:
        vec = self.vector(field, 1)
        return None if vec is None else self.buf.bytes(vec[0], vec[1], f"{self.what} field {field} string")

    def tables(self, field: int, what: str) -> List["_Table"]:
        vec = self.vector(field, 4)
        if vec is None:
            return []
        start, n = vec
        return [_Table(self.buf, start + 4 * i + self.buf.u32(start + 4 * i, what), f"{what}[{i}]") for i in range(n)]

    def int32s(self, field: int) -> List[int]:
        vec = self.vector(field, 4)
        if vec is None:
            return []
        start, n = vec
        return list(struct.unpack_from(f"<{n}i", self.buf.data, start)) if n else []

    def sub_table(self, field: int, what: str) -> Optional["_Table"]:
        target = self._ref(field)
        return None if target is None else _Table(self.buf, target, what)


def _root(buf: _Buf) -> _Table:
    if buf.size < 8:
        raise _Bad(f"expected at least 8 bytes (root offset + identifier), got {buf.size}")
    ident = buf.bytes(4, 4)
    if ident != TFLITE_IDENTIFIER:
        raise _Bad(f"expected file identifier {TFLITE_IDENTIFIER!r} at bytes 4..8, got {ident!r}")
    return _Table(buf, buf.u32(0, "root offset"), "Model")


def _buffer_bytes(buf: _Buf, table: _Table, index: int) -> bytes:
    """Contents of Buffer ``index``: inline ``data`` or, when ``offset > 1``, ``size`` bytes at that file offset."""
    offset = table.scalar(1, "Q")
    if offset > 1:
        size = table.scalar(2, "Q")
        return buf.bytes(offset, size, f"buffers[{index}] external data")
    vec = table.vector(0, 1)
    return b"" if vec is None else buf.bytes(vec[0], vec[1], f"buffers[{index}] data")


@contextmanager
def _open(source: Source) -> Iterator[Tuple[_Buf, str]]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield _Buf(source), "<bytes>"
        return
    path = Path(source)
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelFileError(f"{path} is empty (0 bytes), expected a TFLite flatbuffer; re-export or download it again")
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            yield _Buf(mm), str(path)
    except OSError as exc:
        raise ModelFileError(f"cannot read TFLite model {path}: {exc}") from exc


def _fail(name: str, size: int, exc: Exception) -> ModelFileError:
    return ModelFileError(f"{name} is not a valid TFLite model ({size} bytes): {exc}; the file may be truncated or "
                          f"corrupt: re-export it or download it again")


def read_metadata(source: Source) -> Dict[str, bytes]:
    """Named metadata buffers of a TFLite model.

    Args:
        source: path to a ``.tflite`` file, or its bytes.

    Returns:
        ``{name: raw bytes}`` in file order (a later duplicate name wins). Includes entries the
        converter writes itself, such as ``min_runtime_version`` and ``CONVERSION_METADATA``.

    Raises:
        ModelFileError: the data is not a structurally valid TFLite flatbuffer.
    """
    with _open(source) as (buf, name):
        try:
            model = _root(buf)
            buffers = model.tables(4, "buffers")
            out: Dict[str, bytes] = {}
            for i, entry in enumerate(model.tables(6, "metadata")):
                raw_name = entry.string(0) or b""
                index = entry.scalar(1, "I")
                if index >= len(buffers):
                    raise _Bad(f"metadata[{i}] points to buffer {index}, but the model has {len(buffers)} buffers")
                out[raw_name.decode("utf-8", errors="replace")] = _buffer_bytes(buf, buffers[index], index)
            return out
        except _Bad as exc:
            raise _fail(name, buf.size, exc) from None


def verify_model(source: Source) -> Dict[str, int]:
    """Check a TFLite model's structure against its size (see the module docstring for the scope).

    Args:
        source: path to a ``.tflite`` file, or its bytes.

    Returns:
        A small summary: ``{"version", "subgraphs", "tensors", "operators", "buffers", "metadata"}``.

    Raises:
        ModelFileError: an offset, vector or index points outside the file or its tables.
    """
    with _open(source) as (buf, name):
        try:
            return _verify(buf)
        except _Bad as exc:
            raise _fail(name, buf.size, exc) from None


def _verify(buf: _Buf) -> Dict[str, int]:
    model = _root(buf)
    version = model.scalar(0, "I")
    opcodes = model.tables(1, "operator_codes")
    for op in opcodes:
        op.string(1)  # custom_code
    buffers = model.tables(4, "buffers")
    for i, b in enumerate(buffers):
        _buffer_length_check(buf, b, i)
    model.string(3)  # description
    n_tensors = n_ops = 0
    subgraphs = model.tables(2, "subgraphs")
    if not subgraphs:
        raise _Bad("the model has no subgraph")
    for s, sg in enumerate(subgraphs):
        tensors = sg.tables(0, f"subgraphs[{s}].tensors")
        n_tensors += len(tensors)
        for t, tensor in enumerate(tensors):
            tensor.vector(0, 4)  # shape
            if tensor.scalar(2, "I") >= max(len(buffers), 1):
                raise _Bad(f"subgraphs[{s}].tensors[{t}] points to buffer {tensor.scalar(2, 'I')} of {len(buffers)}")
            tensor.string(3)
            quant = tensor.sub_table(4, f"subgraphs[{s}].tensors[{t}].quantization")
            if quant is not None:
                quant.vector(2, 4)
                quant.vector(3, 8)
            tensor.vector(7, 4)  # shape_signature
        for kind, field in (("inputs", 1), ("outputs", 2)):
            for idx in sg.int32s(field):
                if not 0 <= idx < len(tensors):
                    raise _Bad(f"subgraphs[{s}].{kind} names tensor {idx}, but the subgraph has {len(tensors)}")
        operators = sg.tables(3, f"subgraphs[{s}].operators")
        n_ops += len(operators)
        for o, op in enumerate(operators):
            code = op.scalar(0, "I")
            if code >= len(opcodes):
                raise _Bad(f"subgraphs[{s}].operators[{o}] uses opcode {code}, but the model has {len(opcodes)}")
            for field in (1, 2):
                for idx in op.int32s(field):
                    if not -1 <= idx < len(tensors):
                        raise _Bad(f"subgraphs[{s}].operators[{o}] names tensor {idx} of {len(tensors)}")
            op.sub_table(4, f"subgraphs[{s}].operators[{o}].builtin_options")
            op.vector(5, 1)  # custom_options
        sg.string(4)
    metadata = model.tables(6, "metadata")
    for i, entry in enumerate(metadata):
        entry.string(0)
        if entry.scalar(1, "I") >= len(buffers):
            raise _Bad(f"metadata[{i}] points to buffer {entry.scalar(1, 'I')}, but the model has {len(buffers)}")
    for i, sig in enumerate(model.tables(7, "signature_defs")):
        for field in (0, 1):  # inputs, outputs: vectors of TensorMap{name 0, tensor_index 1}
            for tm in sig.tables(field, f"signature_defs[{i}].tensor_map"):
                tm.string(0)
        sig.string(2)
    return {"version": version, "subgraphs": len(subgraphs), "tensors": n_tensors, "operators": n_ops,
            "buffers": len(buffers), "metadata": len(metadata)}


def _buffer_length_check(buf: _Buf, table: _Table, index: int) -> None:
    offset = table.scalar(1, "Q")
    if offset > 1:
        buf._need(offset, table.scalar(2, "Q"), f"buffers[{index}] external data")
    else:
        table.vector(0, 1)


def decode_text_metadata(entries: Dict[str, bytes]) -> Dict[str, str]:
    """Keep the metadata entries that are text: UTF-8 without control characters once trailing NULs go.

    Binary entries (``CONVERSION_METADATA``, a TFLite Support ``TFLITE_METADATA`` flatbuffer) are dropped;
    ``min_runtime_version``'s NUL padding is stripped (``"1.5.0"``).

    Args:
        entries: the output of :func:`read_metadata`.

    Returns:
        ``{name: text}``.
    """
    out: Dict[str, str] = {}
    for key, raw in entries.items():
        try:
            text = raw.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
            continue
        out[key] = text
    return out
