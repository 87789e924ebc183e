"""The TLS record layer: split one direction's byte stream into records.

A record is a 5-byte header (content type, legacy version, length) and a
payload of at most 2^14 + 2048 bytes (RFC 5246 §6.2.3, the largest any
version allows for protected records).  :class:`RecordSplitter` buffers at
most one partial record; a header that cannot be a TLS record ends the
splitting with a :class:`~inspector.errors.DecodeError` (in ``error``)
because the stream cannot be re-framed from there.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ...errors import DecodeError

HEADER = struct.Struct("!BHH")
HEADER_LEN = 5
#: TLSCiphertext.length limit (RFC 5246 §6.2.3; TLS 1.3 allows 2^14 + 256).
MAX_RECORD_PAYLOAD = (1 << 14) + 2048
#: Content types a record header may carry (change_cipher_spec .. heartbeat).
VALID_TYPES = frozenset({20, 21, 22, 23, 24})


class Record(NamedTuple):
    """One record; ``start``/``end`` are stream offsets of its first byte and just past its last."""

    type: int
    version: int
    header: bytes
    payload: bytes | memoryview
    start: int
    end: int


def check_header(ctype: int, version: int, length: int, offset: int) -> None:
    """Raise DecodeError if these header fields cannot be a TLS record."""
    if ctype not in VALID_TYPES:
        raise DecodeError(f"not a TLS record: content type {ctype}", offset)
    if not 0x0300 <= version <= 0x0304:
        raise DecodeError(f"not a TLS record: version 0x{version:04x}", offset)
    if length > MAX_RECORD_PAYLOAD:
        raise DecodeError(f"TLS record length {length} exceeds {MAX_RECORD_PAYLOAD}", offset)


def looks_like_record(data: bytes | memoryview, pos: int = 0) -> bool:
    """Whether a plausible record header starts at ``pos`` (for resynchronising after a gap)."""
    if len(data) - pos < HEADER_LEN:
        return False
    ctype, version, length = HEADER.unpack_from(data, pos)
    return ctype in VALID_TYPES and 0x0300 <= version <= 0x0304 and length <= MAX_RECORD_PAYLOAD


class RecordSplitter:
    """Turns in-order stream bytes into whole records; need-more-data stays buffered."""

    __slots__ = ("_buf", "_buf_start", "next_offset", "error")

    def __init__(self) -> None:
        #: set when a header could not be a record: the records before it were returned, nothing after
        self.error: DecodeError | None = None
        self._buf = bytearray()
        self._buf_start = 0  # stream offset of _buf[0]
        self.next_offset = 0  # stream offset the next fed byte must have

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record held."""
        return len(self._buf)

    @property
    def pending_start(self) -> int:
        """Stream offset of the first held byte (== next_offset when nothing is held)."""
        return self._buf_start if self._buf else self.next_offset

    def reset(self, offset: int) -> None:
        """Drop held bytes and continue at ``offset`` (after a gap)."""
        self._buf.clear()
        self._buf_start = offset
        self.next_offset = offset

    def feed(self, data: bytes | memoryview, offset: int) -> list[Record]:
        """Records completed by ``data`` (which starts at stream ``offset``).

        At a header that cannot be a record, the records before it are
        returned and :attr:`error` is set; the splitter takes nothing more.
        """
        if self.error is not None:
            return []
        self.next_offset = offset + len(data)
        if self._buf:
            self._buf += data
            view = memoryview(bytes(self._buf))
            base = self._buf_start
        else:
            view = memoryview(data)
            base = offset
        out: list[Record] = []
        pos = 0
        n = len(view)
        unpack = HEADER.unpack_from
        while n - pos >= HEADER_LEN:
            ctype, version, length = unpack(view, pos)
            if ctype not in VALID_TYPES or not 0x0300 <= version <= 0x0304 or length > MAX_RECORD_PAYLOAD:
                try:
                    check_header(ctype, version, length, base + pos)
                except DecodeError as exc:
                    self.error = exc
                    self._buf = bytearray()
                    return out
            end = pos + HEADER_LEN + length
            if end > n:
                break
            out.append(
                Record(ctype, version, bytes(view[pos : pos + HEADER_LEN]), view[pos + HEADER_LEN : end], base + pos, base + end)
            )
            pos = end
        if pos < n:
            rest = view[pos:]
            self._buf = bytearray(rest)
            self._buf_start = base + pos
        else:
            self._buf = bytearray()
            self._buf_start = base + n
        return out
