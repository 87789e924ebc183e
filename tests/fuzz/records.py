"""The fuzz input format: a list of typed records, serialized to one blob.

Every target reads the same container, so a saved finding is one file that
replays on its own (key logs and handshake headers travel inside it).  Each
record is ``kind`` (1 byte), ``length`` (4 bytes, big-endian), ``data``;
:func:`load` is lenient (a cut blob gives the records before the cut) since
the runner may also be handed arbitrary files.
"""

from __future__ import annotations

import struct

MAGIC = b"NIFZ\x01"
_HEAD = struct.Struct(">BI")

# record kinds
C2S, S2C = 0, 1  #: stream bytes or a datagram, per direction
GAP_C2S, GAP_S2C = 2, 3  #: bytes missing from a stream (data: 4-byte length)
KEYLOG = ord("K")  #: NSS key log text
UPGRADE = ord("H")  #: WebSocket handshake: JSON [request headers, response headers]
FRAME = ord("F")  #: a link-layer frame (data: 2-byte link type + frame)
FILE = ord("C")  #: a whole capture file
H3_DATA = ord("S")  #: HTTP/3 stream bytes (data: direction, 8-byte stream id, fin, bytes)
H3_RESET = ord("R")  #: HTTP/3 RESET_STREAM (data: direction, 8-byte stream id, 8-byte error)
EXCHANGE = ord("E")  #: SSE: JSON of the HTTP exchange whose body the stream is

Record = tuple[int, bytes]


def dump(records: list[Record]) -> bytes:
    """One blob for a list of records."""
    parts = [MAGIC]
    for kind, data in records:
        parts.append(_HEAD.pack(kind, len(data)))
        parts.append(data)
    return b"".join(parts)


def load(blob: bytes) -> list[Record]:
    """The records of a blob (up to the first incomplete one)."""
    if not blob.startswith(MAGIC):
        return [(FILE, blob)]  # a bare capture file (handy for the reader target)
    out: list[Record] = []
    pos = len(MAGIC)
    while pos + _HEAD.size <= len(blob):
        kind, n = _HEAD.unpack_from(blob, pos)
        pos += _HEAD.size
        out.append((kind, blob[pos : pos + n]))
        pos += n
    return out


def gap(direction: int, length: int) -> Record:
    return (GAP_C2S + direction, struct.pack(">I", length & 0xFFFFFFFF))
