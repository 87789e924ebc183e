"""gRPC over HTTP/2: length-prefixed messages, trailers and the call's kind.

A call is an HTTP/2 stream whose request ``content-type`` is
``application/grpc`` (or ``application/grpc+proto`` etc.); the HTTP/2 decoder
hands each direction's DATA bytes to a :class:`GrpcCallState`.  Messages are
``flag(1) length(4) bytes`` (gRPC's PROTOCOL-HTTP2.md "Length-Prefixed-Message"),
reassembled across DATA frames, decompressed when flagged (gzip/deflate per
``grpc-encoding``, bounded) and shown as a protobuf wire-format tree.

The call kind comes from the message pattern, since HTTP/2 carries no such
field: more than one message each way, or a request message sent after a
response message, is bidirectional; several requests and at most one
response is client streaming; one request and several responses is server
streaming; otherwise unary.  (A bidirectional call that happens to exchange
one message each way looks unary: the wire cannot tell them apart.)
"""

from __future__ import annotations

import struct
import zlib
from typing import Any
from urllib.parse import unquote

from ..events import C2S, DIRECTIONS, Event, GrpcCall, GrpcMessage, Malformed
from .protobuf_wire import try_parse

_PREFIX = struct.Struct(">BI")

#: A message larger than this is reported and not buffered (grpc's default limit is 4 MiB).
MAX_MESSAGE = 16 * 1024 * 1024
#: Decompressed messages are cut here (a compression bomb is reported, not expanded).
MAX_DECOMPRESSED = 16 * 1024 * 1024
#: How many message bytes an event keeps for the hex view.
RAW_KEEP = 64 * 1024


def is_grpc(content_type: str | None) -> bool:
    """Whether a request ``content-type`` announces gRPC."""
    return bool(content_type) and content_type.startswith("application/grpc")  # type: ignore[union-attr]


def _decompress(data: bytes, encoding: str | None) -> bytes | None:
    if encoding in ("gzip", "deflate"):
        wbits = 31 if encoding == "gzip" else 15
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data, MAX_DECOMPRESSED)
        except zlib.error:
            return None
        if d.unconsumed_tail:
            return None
        return out
    return None


class GrpcCallState:
    """One call's message reassembly and counts."""

    __slots__ = ("conn", "stream", "method", "encodings", "_bufs", "_dead", "counts",
                 "first_response_seen", "interleaved", "start_ts", "status", "message")

    def __init__(self, conn: int | None, stream: int, method: str, start_ts: float) -> None:
        self.conn = conn
        self.stream = stream
        self.method = method
        self.encodings: list[str | None] = [None, None]  # grpc-encoding per direction
        self._bufs = [bytearray(), bytearray()]
        self._dead = [False, False]
        self.counts = [0, 0]
        self.first_response_seen = False
        self.interleaved = False
        self.start_ts = start_ts
        self.status: int | None = None
        self.message: str | None = None

    def feed(self, direction: int, data: bytes, frame: int, ts: float) -> list[Event]:
        """DATA bytes of ``direction``; returns the messages they complete."""
        if self._dead[direction] or not data:
            return []
        buf = self._bufs[direction]
        buf += data
        out: list[Event] = []
        pos = 0
        n = len(buf)
        while n - pos >= 5:
            flag, length = _PREFIX.unpack_from(buf, pos)
            if length > MAX_MESSAGE:
                self._dead[direction] = True
                out.append(Malformed(frame=frame, ts=ts, conn=self.conn, layer="grpc", direction=DIRECTIONS[direction],
                                     reason=f"gRPC message of {length} bytes on stream {self.stream} exceeds "
                                            f"the {MAX_MESSAGE}-byte limit; rest of the direction not decoded"))
                buf.clear()
                return out
            end = pos + 5 + length
            if end > n:
                break
            body = bytes(buf[pos + 5:end])
            pos = end
            out.append(self._message(direction, flag, body, frame, ts))
        if pos:
            del buf[:pos]
        return out

    def _message(self, direction: int, flag: int, body: bytes, frame: int, ts: float) -> Event:
        self.counts[direction] += 1
        if direction == C2S:
            if self.first_response_seen:
                self.interleaved = True
        else:
            self.first_response_seen = True
        compressed = bool(flag & 1)
        plain = _decompress(body, self.encodings[direction]) if compressed else body
        tree = try_parse(plain) if plain is not None else None
        return GrpcMessage(frame=frame, ts=ts, conn=self.conn, direction=DIRECTIONS[direction], stream=self.stream,
                           method=self.method, compressed=compressed, length=len(body), fields=tree,
                           raw=body[:RAW_KEEP])

    def lost(self, direction: int) -> None:
        """Bytes of this direction are missing: message boundaries are gone."""
        self._dead[direction] = True
        self._bufs[direction].clear()

    def trailers(self, headers: list[list[str | None]]) -> None:
        """Response trailers (or a trailers-only response): grpc-status and grpc-message."""
        for name, value in headers:
            if name == "grpc-status" and value is not None:
                try:
                    self.status = int(value)
                except ValueError:
                    pass
            elif name == "grpc-message" and value is not None:
                self.message = unquote(value)

    @property
    def kind(self) -> str:
        """unary, server_streaming, client_streaming or bidirectional (see the module docstring)."""
        req, resp = self.counts
        if self.interleaved or (req > 1 and resp > 1):
            return "bidirectional"
        if req > 1:
            return "client_streaming"
        if resp > 1:
            return "server_streaming"
        return "unary"

    def end(self, frame: int, ts: float) -> GrpcCall:
        """The call's closing event."""
        return GrpcCall(frame=frame, ts=ts, conn=self.conn, stream=self.stream, method=self.method, kind=self.kind,
                        requests=self.counts[0], responses=self.counts[1], status=self.status,
                        message=self.message, start_ts=self.start_ts)

    def summary(self) -> dict[str, Any]:
        """The call's keys in a request's summary entry."""
        return {"kind": self.kind, "requests": self.counts[0], "responses": self.counts[1],
                "status": self.status, "message": self.message}
