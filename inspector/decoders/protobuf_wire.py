"""Protocol Buffers wire format as a generic tree, without a ``.proto``.

Each field becomes ``{"field": number, "wire_type": name, "value": ...}``
(https://protobuf.dev/programming-guides/encoding/).  Varints are shown as
unsigned integers (plus ``"sint"`` for their zigzag reading when that is
smaller), fixed32/fixed64 as unsigned integers, and length-delimited fields
as ``"text"`` when they are printable UTF-8, else a nested ``"message"`` when
their bytes parse completely as one, else ``"hex"``.  Recursion depth and
field counts are bounded, so hostile input costs bounded time and memory.
"""

from __future__ import annotations

import struct
from typing import Any

from ..errors import DecodeError

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

MAX_DEPTH = 8
MAX_FIELDS = 2000
_WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "len", 5: "fixed32"}


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise DecodeError("protobuf: varint cut off", pos)
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("protobuf: varint longer than 10 bytes", pos)


def parse_message(data: bytes, depth: int = 0, budget: list[int] | None = None) -> list[dict[str, Any]]:
    """The fields of one protobuf message; raises :class:`DecodeError` if ``data`` is not one."""
    if budget is None:
        budget = [MAX_FIELDS]
    out: list[dict[str, Any]] = []
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _varint(data, pos, end)
        number = key >> 3
        wire = key & 7
        if number == 0:
            raise DecodeError("protobuf: field number 0", pos)
        budget[0] -= 1
        if budget[0] < 0:
            raise DecodeError(f"protobuf: more than {MAX_FIELDS} fields", pos)
        if wire == 0:
            value, pos = _varint(data, pos, end)
            node: dict[str, Any] = {"field": number, "wire_type": "varint", "value": value}
            zig = (value >> 1) ^ -(value & 1)
            if value & 1 or abs(zig) < value // 2:
                node["sint"] = zig
        elif wire == 1:
            if pos + 8 > end:
                raise DecodeError("protobuf: fixed64 cut off", pos)
            node = {"field": number, "wire_type": "fixed64", "value": _U64.unpack_from(data, pos)[0]}
            pos += 8
        elif wire == 5:
            if pos + 4 > end:
                raise DecodeError("protobuf: fixed32 cut off", pos)
            node = {"field": number, "wire_type": "fixed32", "value": _U32.unpack_from(data, pos)[0]}
            pos += 4
        elif wire == 2:
            length, pos = _varint(data, pos, end)
            if pos + length > end:
                raise DecodeError("protobuf: length-delimited field runs past the message", pos)
            chunk = data[pos:pos + length]
            pos += length
            node = {"field": number, "wire_type": "len", "length": length}
            node.update(_len_value(chunk, depth, budget))
        else:
            raise DecodeError(f"protobuf: wire type {wire} (groups and invalid types are not decoded)", pos)
        out.append(node)
    return out


def _len_value(chunk: bytes, depth: int, budget: list[int]) -> dict[str, Any]:
    """Best reading of a length-delimited payload: text, sub-message or hex.

    Printable UTF-8 is shown as text first: real sub-messages almost never are
    (their tags and short lengths are control characters), while many strings
    happen to parse as some message.
    """
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and (not chunk or all(c.isprintable() or c in "\r\n\t" for c in text)):
        return {"text": text}
    if depth < MAX_DEPTH:
        saved = budget[0]
        try:
            return {"message": parse_message(chunk, depth + 1, budget)}
        except DecodeError:
            budget[0] = saved
    return {"hex": chunk.hex()}


def try_parse(data: bytes) -> list[dict[str, Any]] | None:
    """The tree, or None when ``data`` is not a protobuf message."""
    try:
        return parse_message(data)
    except DecodeError:
        return None
