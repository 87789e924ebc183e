"""QUIC frames (RFC 9000 §19, RFC 9221 DATAGRAM) parsed from a decrypted payload.

One parser per frame type, chosen by a dict from type code.  A frame type we
do not know has no length field, so the rest of the payload cannot be
framed: the frame is kept as ``UNKNOWN_0x..`` and parsing stops with a
reason.  Runs of PADDING bytes become one frame, as tshark shows them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aioquic.buffer import Buffer, BufferReadError

#: names of the frame types (``QuicPacket.frames``), by type code
FRAME_NAMES: dict[int, str] = {
    0x00: "PADDING",
    0x01: "PING",
    0x02: "ACK",
    0x03: "ACK_ECN",
    0x04: "RESET_STREAM",
    0x05: "STOP_SENDING",
    0x06: "CRYPTO",
    0x07: "NEW_TOKEN",
    **{code: "STREAM" for code in range(0x08, 0x10)},
    0x10: "MAX_DATA",
    0x11: "MAX_STREAM_DATA",
    0x12: "MAX_STREAMS",
    0x13: "MAX_STREAMS",
    0x14: "DATA_BLOCKED",
    0x15: "STREAM_DATA_BLOCKED",
    0x16: "STREAMS_BLOCKED",
    0x17: "STREAMS_BLOCKED",
    0x18: "NEW_CONNECTION_ID",
    0x19: "RETIRE_CONNECTION_ID",
    0x1A: "PATH_CHALLENGE",
    0x1B: "PATH_RESPONSE",
    0x1C: "CONNECTION_CLOSE",
    0x1D: "CONNECTION_CLOSE",
    0x1E: "HANDSHAKE_DONE",
    0x30: "DATAGRAM",
    0x31: "DATAGRAM",
}

#: frames that do not make the receiver send an ACK (RFC 9000 §13.2)
NOT_ACK_ELICITING = frozenset({0x00, 0x02, 0x03, 0x1C, 0x1D})

#: cap on the bytes of reason phrases and tokens kept for display
_TEXT_MAX = 256


@dataclass(slots=True)
class Frame:
    """One frame: its name, type code, fields for display, and payload bytes where it has some."""

    name: str
    code: int
    fields: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""  #: STREAM/CRYPTO/DATAGRAM payload (not exported)

    def to_dict(self) -> dict[str, Any]:
        """Frame fields for the export (payload bytes as a length only)."""
        return {"type": self.name, **self.fields}


class FrameError(Exception):
    """A payload that cannot be framed to its end; ``frames`` are those parsed before."""

    def __init__(self, reason: str, frames: list[Frame]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.frames = frames


def _ack(buf: Buffer, code: int) -> Frame:
    largest = buf.pull_uint_var()
    delay = buf.pull_uint_var()
    count = buf.pull_uint_var()
    first = buf.pull_uint_var()
    if first > largest:
        raise ValueError("ACK first range below packet number 0")
    ranges = [(largest - first, largest)]
    smallest = largest - first
    for _ in range(count):
        gap = buf.pull_uint_var()
        length = buf.pull_uint_var()
        high = smallest - gap - 2
        low = high - length
        if low < 0:
            raise ValueError("ACK range below packet number 0")
        ranges.append((low, high))
        smallest = low
    fields: dict[str, Any] = {"largest": largest, "delay": delay, "ranges": ranges}
    if code == 0x03:
        fields["ecn"] = (buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var())
    return Frame(FRAME_NAMES[code], code, fields)


def _reset_stream(buf: Buffer, code: int) -> Frame:
    stream, error, final = buf.pull_uint_var(), buf.pull_uint_var(), buf.pull_uint_var()
    return Frame("RESET_STREAM", code, {"stream": stream, "error": error, "final_size": final})


def _stop_sending(buf: Buffer, code: int) -> Frame:
    stream, error = buf.pull_uint_var(), buf.pull_uint_var()
    return Frame("STOP_SENDING", code, {"stream": stream, "error": error})


def _crypto(buf: Buffer, code: int) -> Frame:
    offset = buf.pull_uint_var()
    data = buf.pull_bytes(buf.pull_uint_var())
    return Frame("CRYPTO", code, {"offset": offset, "length": len(data)}, data)


def _new_token(buf: Buffer, code: int) -> Frame:
    token = buf.pull_bytes(buf.pull_uint_var())
    return Frame("NEW_TOKEN", code, {"length": len(token)})


def _stream(buf: Buffer, code: int) -> Frame:
    stream = buf.pull_uint_var()
    offset = buf.pull_uint_var() if code & 0x04 else 0
    if code & 0x02:
        data = buf.pull_bytes(buf.pull_uint_var())
    else:
        data = buf.pull_bytes(buf.capacity - buf.tell())
    fin = bool(code & 0x01)
    if offset + len(data) >= 1 << 62:
        raise ValueError("STREAM frame ends past 2^62")
    return Frame("STREAM", code, {"stream": stream, "offset": offset, "length": len(data), "fin": fin}, data)


def _one_value(name: str, key: str) -> Callable[[Buffer, int], Frame]:
    def parse(buf: Buffer, code: int) -> Frame:
        return Frame(name, code, {key: buf.pull_uint_var()})

    return parse


def _max_stream_data(buf: Buffer, code: int) -> Frame:
    stream, limit = buf.pull_uint_var(), buf.pull_uint_var()
    return Frame("MAX_STREAM_DATA", code, {"stream": stream, "limit": limit})


def _streams(name: str) -> Callable[[Buffer, int], Frame]:
    def parse(buf: Buffer, code: int) -> Frame:
        kind = "bidi" if code % 2 == 0 else "uni"
        return Frame(name, code, {"kind": kind, "limit": buf.pull_uint_var()})

    return parse


def _stream_data_blocked(buf: Buffer, code: int) -> Frame:
    stream, limit = buf.pull_uint_var(), buf.pull_uint_var()
    return Frame("STREAM_DATA_BLOCKED", code, {"stream": stream, "limit": limit})


def _new_connection_id(buf: Buffer, code: int) -> Frame:
    sequence = buf.pull_uint_var()
    retire = buf.pull_uint_var()
    length = buf.pull_uint8()
    if not 1 <= length <= 20:
        raise ValueError(f"NEW_CONNECTION_ID length {length} outside 1..20")
    cid = buf.pull_bytes(length)
    buf.pull_bytes(16)  # stateless reset token
    if retire > sequence:
        raise ValueError("NEW_CONNECTION_ID retire_prior_to above sequence number")
    return Frame("NEW_CONNECTION_ID", code, {"sequence": sequence, "retire_prior_to": retire, "cid": cid.hex()}, cid)


def _path(name: str) -> Callable[[Buffer, int], Frame]:
    def parse(buf: Buffer, code: int) -> Frame:
        return Frame(name, code, {"data": buf.pull_bytes(8).hex()})

    return parse


def _connection_close(buf: Buffer, code: int) -> Frame:
    error = buf.pull_uint_var()
    fields: dict[str, Any] = {"application": code == 0x1D, "error": error}
    if code == 0x1C:
        fields["frame_type"] = buf.pull_uint_var()
    reason = buf.pull_bytes(buf.pull_uint_var())
    fields["reason"] = reason[:_TEXT_MAX].decode("utf-8", "replace")
    return Frame("CONNECTION_CLOSE", code, fields)


def _handshake_done(buf: Buffer, code: int) -> Frame:
    return Frame("HANDSHAKE_DONE", code)


def _ping(buf: Buffer, code: int) -> Frame:
    return Frame("PING", code)


def _datagram(buf: Buffer, code: int) -> Frame:
    if code & 0x01:
        data = buf.pull_bytes(buf.pull_uint_var())
    else:
        data = buf.pull_bytes(buf.capacity - buf.tell())
    return Frame("DATAGRAM", code, {"length": len(data)}, data)


_PARSERS: dict[int, Callable[[Buffer, int], Frame]] = {
    0x01: _ping,
    0x02: _ack,
    0x03: _ack,
    0x04: _reset_stream,
    0x05: _stop_sending,
    0x06: _crypto,
    0x07: _new_token,
    **{code: _stream for code in range(0x08, 0x10)},
    0x10: _one_value("MAX_DATA", "limit"),
    0x11: _max_stream_data,
    0x12: _streams("MAX_STREAMS"),
    0x13: _streams("MAX_STREAMS"),
    0x14: _one_value("DATA_BLOCKED", "limit"),
    0x15: _stream_data_blocked,
    0x16: _streams("STREAMS_BLOCKED"),
    0x17: _streams("STREAMS_BLOCKED"),
    0x18: _new_connection_id,
    0x19: _one_value("RETIRE_CONNECTION_ID", "sequence"),
    0x1A: _path("PATH_CHALLENGE"),
    0x1B: _path("PATH_RESPONSE"),
    0x1C: _connection_close,
    0x1D: _connection_close,
    0x1E: _handshake_done,
    0x30: _datagram,
    0x31: _datagram,
}


def parse_frames(payload: bytes) -> list[Frame]:
    """Every frame of a decrypted packet payload, in order.

    Raises :class:`FrameError` (holding the frames parsed so far) when a
    frame is truncated, invalid or of an unknown type, or the payload is
    empty (RFC 9000 §12.4).
    """
    if not payload:
        raise FrameError("packet has no frames", [])
    buf = Buffer(data=payload)
    end = len(payload)
    frames: list[Frame] = []
    while buf.tell() < end:
        start = buf.tell()
        try:
            code = buf.pull_uint_var()
        except BufferReadError:
            raise FrameError(f"truncated frame type at payload offset {start}", frames) from None
        if code == 0x00:
            # a run of PADDING bytes is one frame
            pos = start + 1
            while pos < end and payload[pos] == 0:
                pos += 1
            frames.append(Frame("PADDING", 0, {"length": pos - start}))
            buf.seek(pos)
            continue
        parser = _PARSERS.get(code)
        if parser is None:
            frames.append(Frame(f"UNKNOWN_0x{code:02x}", code))
            raise FrameError(f"unknown frame type 0x{code:x}: rest of the packet cannot be framed", frames)
        try:
            frames.append(parser(buf, code))
        except BufferReadError:
            raise FrameError(f"truncated {FRAME_NAMES[code]} frame at payload offset {start}", frames) from None
        except ValueError as exc:
            raise FrameError(f"invalid {FRAME_NAMES[code]} frame: {exc}", frames) from None
    return frames


def ack_eliciting(frames: list[Frame]) -> bool:
    """Whether a packet with these frames asks for an acknowledgement."""
    return any(f.code not in NOT_ACK_ELICITING for f in frames)
