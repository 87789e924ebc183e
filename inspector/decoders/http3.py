"""HTTP/3 (RFC 9114) and QPACK (RFC 9204) over the QUIC decoder's in-order stream bytes.

The QUIC decoder hands each stream's bytes on once they are deliverable,
with the stream's :class:`~inspector.flows.streamindex.StreamIndex` (arrival
and delivery times per byte).  Here a stream is split into frames (DATA
payloads are counted as they pass, never buffered whole), unidirectional
streams are told apart by their type, and field sections are decoded with
pylsqpack: one QPACK decoder per direction, sized by the *peer's* SETTINGS
(the Required Insert Count encoding depends on that capacity), fed by the
sender's encoder stream.  A field section that references inserts not yet
seen waits (blocked, as at the real receiver) and is decoded when the
encoder stream catches up.

Requests are kept with the fields and timings of HTTP/2's: stream, method,
path, authority, status, request/response/end times and response body bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pylsqpack

from ..errors import DecodeError
from ..events import DIRECTIONS, Event, Http3Frame, Http3Stream, Malformed, Note
from ..flows.streamindex import StreamIndex
from .base import DecodeContext
from .http_exchange import HttpExchange, header_value

C2S, S2C = 0, 1

#: HTTP/3 frame names by type (RFC 9114 §7.2)
FRAME_NAMES = {
    0x00: "DATA",
    0x01: "HEADERS",
    0x03: "CANCEL_PUSH",
    0x04: "SETTINGS",
    0x05: "PUSH_PROMISE",
    0x07: "GOAWAY",
    0x0D: "MAX_PUSH_ID",
}
#: HTTP/2 frame types that must not appear in HTTP/3 (RFC 9114 §7.2.8)
H2_ONLY = {0x02: "PRIORITY", 0x06: "PING", 0x08: "WINDOW_UPDATE", 0x09: "CONTINUATION"}

#: HTTP/2 settings with no HTTP/3 meaning; receiving one is an error (RFC 9114 §7.2.4.1)
H2_SETTINGS = frozenset({0x00, 0x02, 0x03, 0x04, 0x05})

#: unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2)
STREAM_TYPES = {0x00: "control", 0x01: "push", 0x02: "qpack_encoder", 0x03: "qpack_decoder"}

#: settings names (RFC 9114 §7.2.4.1, RFC 9204 §5, RFC 9220, RFC 9297)
SETTING_NAMES = {
    0x01: "QPACK_MAX_TABLE_CAPACITY",
    0x06: "MAX_FIELD_SECTION_SIZE",
    0x07: "QPACK_BLOCKED_STREAMS",
    0x08: "ENABLE_CONNECT_PROTOCOL",
    0x33: "H3_DATAGRAM",
}

#: HTTP/3 error codes (RFC 9114 §8.1, RFC 9204 §6) by value, for reset streams
ERROR_NAMES = {
    0x100: "H3_NO_ERROR", 0x101: "H3_GENERAL_PROTOCOL_ERROR", 0x102: "H3_INTERNAL_ERROR",
    0x103: "H3_STREAM_CREATION_ERROR", 0x104: "H3_CLOSED_CRITICAL_STREAM", 0x105: "H3_FRAME_UNEXPECTED",
    0x106: "H3_FRAME_ERROR", 0x107: "H3_EXCESSIVE_LOAD", 0x108: "H3_ID_ERROR", 0x109: "H3_SETTINGS_ERROR",
    0x10A: "H3_MISSING_SETTINGS", 0x10B: "H3_REQUEST_REJECTED", 0x10C: "H3_REQUEST_CANCELLED",
    0x10D: "H3_REQUEST_INCOMPLETE", 0x10E: "H3_MESSAGE_ERROR", 0x10F: "H3_CONNECT_ERROR",
    0x110: "H3_VERSION_FALLBACK", 0x200: "QPACK_DECOMPRESSION_FAILED", 0x201: "QPACK_ENCODER_STREAM_ERROR",
    0x202: "QPACK_DECODER_STREAM_ERROR",
}

#: limits that keep memory bounded on hostile input
MAX_FIELD_SECTION = 1 << 18  #: bytes of one HEADERS/PUSH_PROMISE payload
MAX_CONTROL_FRAME = 1 << 14  #: bytes of a SETTINGS/GOAWAY/... payload
MAX_TABLE_CAPACITY = 1 << 20  #: QPACK dynamic table we agree to mirror
MAX_ENCODER_BACKLOG = 1 << 16  #: encoder-stream bytes held before the peer's SETTINGS
RAW_DATA_KEPT = 256  #: bytes of DATA payload kept for the hex view
MAX_BUFFERED = 1 << 25  #: partial frames buffered across all streams of a connection


def is_reserved(code: int) -> bool:
    """Reserved (GREASE) frame and stream types: 0x1f * N + 0x21 (RFC 9114 §7.2.8, §6.2.3)."""
    return code >= 0x21 and (code - 0x21) % 0x1F == 0


def frame_name(code: int) -> str:
    return FRAME_NAMES.get(code) or f"UNKNOWN_0x{code:02x}"


def _varint(buf: bytearray | bytes, pos: int) -> tuple[int, int] | None:
    """A QUIC variable-length integer at ``pos``: (value, next position), or None if incomplete."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    size = 1 << (first >> 6)
    if pos + size > len(buf):
        return None
    value = first & 0x3F
    for i in range(1, size):
        value = (value << 8) | buf[pos + i]
    return value, pos + size


@dataclass(slots=True)
class _Stream:
    """Parsing state of one direction of one HTTP/3 stream."""

    direction: int
    stream_id: int
    kind: str | None  #: "request", "push", "control", "qpack_encoder", "qpack_decoder", "ignored"
    buf: bytearray = field(default_factory=bytearray)
    pos: int = 0  #: stream offset of ``buf[0]``
    frame_type: int | None = None  #: a frame whose payload is being streamed (DATA, unknown)
    frame_start: int = 0
    frame_left: int = 0
    frame_length: int = 0
    frame_raw: bytearray = field(default_factory=bytearray)
    frames: int = 0
    poisoned: bool = False  #: framing lost: later bytes are ignored
    counted: int = 0  #: bytes of ``buf`` counted in the decoder's buffer total


@dataclass(slots=True)
class _Blocked:
    """A field section waiting for QPACK encoder-stream inserts."""

    code: int
    stream: int
    length: int
    arrival: float
    raw: bytes
    detail: dict[str, Any] | None


class Http3Decoder:
    """HTTP/3 frames, QPACK headers and requests of one QUIC connection (sans-IO)."""

    def __init__(self, ctx: DecodeContext) -> None:
        self.conn = ctx.conn
        self.streams: dict[tuple[int, int], _Stream] = {}
        self.settings: list[dict[int, int] | None] = [None, None]  #: per sender
        self._qpack: list[pylsqpack.Decoder | None] = [None, None]  #: decodes field sections sent in a direction
        self._qpack_capacity = [0, 0]
        self._encoder_backlog = [bytearray(), bytearray()]
        self._encoder_fed = [False, False]
        self._blocked: dict[tuple[int, int], _Blocked] = {}
        self.requests: dict[int, HttpExchange] = {}  #: by request (or push) stream id
        #: PUSH_PROMISE headers and times by push id
        self._promises: dict[int, tuple[list[list[str]], float | None, float | None, int | None]] = {}
        self._push_ids: dict[int, int] = {}  #: push stream id -> push id
        self.goaway: dict[str, int] = {}
        self.control_streams: list[int | None] = [None, None]
        self._noted: set[str] = set()
        self._last = (0, 0.0)  # the last frame that delivered stream bytes (for end-of-capture notes)
        self._buffered = 0  # bytes of partial frames held, all streams

    # ------------------------------------------------------------------ input

    def stream_data(self, direction: int, stream_id: int, data: bytes, offset: int, fin: bool, index: StreamIndex,
                    frame: int, ts: float) -> list[Event]:
        """Take the next in-order ``data`` of a stream (starting at stream ``offset``)."""
        events: list[Event] = []
        self._last = (frame, ts)
        st = self.streams.get((direction, stream_id))
        if st is None:
            st = self.streams[(direction, stream_id)] = _Stream(direction, stream_id, self._initial_kind(stream_id))
            st.pos = offset
            if st.kind == "request" and stream_id % 4 == 1:
                self._note(events, frame, ts, direction, f"bidi-{stream_id}",
                           f"server-initiated bidirectional stream {stream_id}: not defined by HTTP/3")
        if st.poisoned or st.kind == "ignored":
            return events
        st.buf += data
        try:
            self._parse(st, index, frame, ts, events)
            if self._buffered + len(st.buf) - st.counted > MAX_BUFFERED:
                raise DecodeError(f"partial HTTP/3 frames exceed {MAX_BUFFERED} bytes across streams")
        except DecodeError as exc:
            st.poisoned = True
            st.buf.clear()
            events.append(Malformed(frame=frame, ts=ts, conn=self.conn, layer="http3",
                                    reason=f"stream {stream_id}: {exc.reason}", direction=DIRECTIONS[direction]))
        self._buffered += len(st.buf) - st.counted
        st.counted = len(st.buf)
        if fin:
            self._stream_end(st, frame, ts, events)
        index.release(st.pos)
        return events

    def stream_reset(self, direction: int, stream_id: int, error: int, frame: int, ts: float) -> list[Event]:
        """The sender abandoned a stream (RESET_STREAM)."""
        req = self.requests.get(stream_id)
        if req is not None and req.end_ts is None:
            req.error = ERROR_NAMES.get(error, f"0x{error:x}")
            req.end_ts = ts
            req.end_frame = frame
        st = self.streams.get((direction, stream_id))
        if st is not None:
            st.poisoned = True
            st.buf.clear()
            self._buffered -= st.counted
            st.counted = 0
        return []

    @staticmethod
    def _initial_kind(stream_id: int) -> str | None:
        return "request" if stream_id % 4 in (0, 1) else None  # uni streams: type comes first

    # ------------------------------------------------------------------ framing

    def _parse(self, st: _Stream, index: StreamIndex, frame: int, ts: float, events: list[Event]) -> None:
        buf = st.buf
        pos = 0
        if st.kind is None:
            got = _varint(buf, 0)
            if got is None:
                return
            code, pos = got
            if code == 0x01:  # a push stream names its push id next
                got = _varint(buf, pos)
                if got is None:
                    return
                pos = got[1]
                self._push_ids[st.stream_id] = got[0]
            st.kind = STREAM_TYPES.get(code) or "ignored"
            name = STREAM_TYPES.get(code) or ("reserved" if is_reserved(code) else f"unknown_0x{code:02x}")
            events.append(Http3Stream(frame=frame, ts=ts, conn=self.conn, direction=DIRECTIONS[st.direction],
                                      stream=st.stream_id, stream_type=name))
            del buf[:pos]
            st.pos += pos
            pos = 0
            if st.kind == "control":
                if self.control_streams[st.direction] is not None:
                    raise DecodeError("a second control stream (H3_STREAM_CREATION_ERROR)")
                self.control_streams[st.direction] = st.stream_id
            elif st.kind == "push" and st.direction != S2C:
                raise DecodeError("push stream opened by the client (H3_STREAM_CREATION_ERROR)")
            elif st.kind == "ignored":
                st.pos += len(buf)
                buf.clear()
                return
        if st.kind == "qpack_encoder":
            self._encoder(st, bytes(buf[pos:]), frame, ts, events)
            st.pos += len(buf)
            buf.clear()
            return
        if st.kind == "qpack_decoder":
            # acknowledgements from the peer's decoder: nothing to show beyond their existence
            st.pos += len(buf)
            buf.clear()
            return
        while True:
            if st.frame_type is not None:
                take = min(st.frame_left, len(buf) - pos)
                if st.frame_type == 0x00:
                    if len(st.frame_raw) < RAW_DATA_KEPT:
                        st.frame_raw += buf[pos : pos + min(take, RAW_DATA_KEPT - len(st.frame_raw))]
                    self._body_bytes(st, take)
                st.frame_left -= take
                pos += take
                if st.frame_left:
                    break
                self._streamed_frame_done(st, st.pos + pos, index, events)
                continue
            got = _varint(buf, pos)
            if got is None:
                break
            code, p = got
            got = _varint(buf, p)
            if got is None:
                break
            length, p = got
            start = st.pos + pos
            if code == 0x00 or (code not in FRAME_NAMES and code not in H2_ONLY):
                # DATA and unknown frames: stream the payload through
                st.frame_type, st.frame_start, st.frame_left, st.frame_length = code, start, length, length
                st.frame_raw = bytearray()
                pos = p
                self._check_order(st, code, frame, ts, events)
                if length == 0:
                    self._streamed_frame_done(st, st.pos + pos, index, events)
                continue
            limit = MAX_FIELD_SECTION if code in (0x01, 0x05) else MAX_CONTROL_FRAME
            if length > limit:
                raise DecodeError(f"{frame_name(code)} frame of {length} bytes exceeds the {limit}-byte limit")
            if len(buf) - p < length:
                break
            payload = bytes(buf[p : p + length])
            pos = p + length
            self._frame(st, code, payload, start, st.pos + pos, index, frame, ts, events)
        if pos:
            del buf[:pos]
            st.pos += pos

    def _streamed_frame_done(self, st: _Stream, end: int, index: StreamIndex, events: list[Event]) -> None:
        code = st.frame_type
        assert code is not None
        st.frame_type = None
        span = index.locate(max(end - 1, st.frame_start))
        detail = None
        if code != 0x00:
            detail = {"code": code, "reserved": is_reserved(code)}
        events.append(Http3Frame(frame=span.frame, ts=span.delivered, conn=self.conn, type=frame_name(code),
                                 direction=DIRECTIONS[st.direction], stream=st.stream_id, length=st.frame_length,
                                 detail=detail, arrival=span.arrival, raw=bytes(st.frame_raw)))
        st.frames += 1

    def _body_bytes(self, st: _Stream, n: int) -> None:
        """Count body bytes as they are delivered (a reset stream keeps what came before)."""
        if n and st.kind in ("request", "push"):
            req = self.requests.get(st.stream_id)
            if req is not None:
                if st.direction == S2C:
                    req.bytes += n
                else:
                    req.request_bytes += n

    def _check_order(self, st: _Stream, code: int, frame: int, ts: float, events: list[Event]) -> None:
        if st.kind == "control" and code in (0x00, 0x01, 0x05):
            raise DecodeError(f"{frame_name(code)} frame on the control stream (H3_FRAME_UNEXPECTED)")
        if st.kind in ("request", "push") and code in (0x03, 0x04, 0x07, 0x0D):
            raise DecodeError(f"{frame_name(code)} frame on a request stream (H3_FRAME_UNEXPECTED)")
        if st.kind == "control" and st.frames == 0 and code != 0x04:
            raise DecodeError("the control stream does not start with SETTINGS (H3_MISSING_SETTINGS)")

    def _frame(self, st: _Stream, code: int, payload: bytes, start: int, end: int, index: StreamIndex, frame: int,
               ts: float, events: list[Event]) -> None:
        span = index.locate(end - 1)
        if code in H2_ONLY:
            raise DecodeError(f"HTTP/2 {H2_ONLY[code]} frame type 0x{code:02x} on HTTP/3 (H3_FRAME_UNEXPECTED)")
        self._check_order(st, code, frame, ts, events)
        detail: dict[str, Any] | None = None
        headers = None
        if code == 0x04:
            if st.frames:
                raise DecodeError("a second SETTINGS frame (H3_FRAME_UNEXPECTED)")
            settings = self._settings(payload)
            detail = {"settings": {SETTING_NAMES.get(k, f"0x{k:x}"): v for k, v in settings.items()}}
            self.settings[st.direction] = settings
            self._peer_settings_known(1 - st.direction, span.frame, span.delivered, events)
        elif code in (0x03, 0x07, 0x0D):
            got = _varint(payload, 0)
            if got is None or got[1] != len(payload):
                raise DecodeError(f"{frame_name(code)} payload is not one integer")
            key = {0x03: "push_id", 0x07: "id", 0x0D: "push_id"}[code]
            detail = {key: got[0]}
            if code == 0x07:
                self.goaway[DIRECTIONS[st.direction]] = got[0]
        elif code in (0x01, 0x05):
            block = payload
            if code == 0x05:
                got = _varint(payload, 0)
                if got is None:
                    raise DecodeError("PUSH_PROMISE without a push id")
                detail = {"push_id": got[0]}
                block = payload[got[1] :]
            st.frames += 1
            decoder = self._decoder(st.direction)
            try:
                _, raw_headers = decoder.feed_header(st.stream_id, block)
            except pylsqpack.StreamBlocked:
                self._blocked[(st.direction, st.stream_id)] = _Blocked(code, st.stream_id, len(payload), span.arrival,
                                                                       payload, detail)
                return
            except (pylsqpack.DecompressionFailed, pylsqpack.DecoderStreamError, pylsqpack.EncoderStreamError) as exc:
                raise DecodeError(f"QPACK could not decode the field section: {type(exc).__name__}") from None
            except ValueError as exc:
                # pylsqpack holds one blocked field section per stream and raises ValueError for a
                # second one sent before the first could be decoded (found by fuzzing)
                raise DecodeError(f"{frame_name(code)} on stream {st.stream_id}: {exc} (the previous one "
                                  "still waits for QPACK encoder instructions)") from None
            headers = _headers(raw_headers)
            self._headers_event(st.direction, st.stream_id, code, len(payload), headers, detail, span.frame,
                                span.delivered, span.arrival, payload, events)
            return
        st.frames += 1
        events.append(Http3Frame(frame=span.frame, ts=span.delivered, conn=self.conn, type=frame_name(code),
                                 direction=DIRECTIONS[st.direction], stream=st.stream_id, length=len(payload),
                                 headers=headers, detail=detail, arrival=span.arrival, raw=payload))

    @staticmethod
    def _settings(payload: bytes) -> dict[int, int]:
        out: dict[int, int] = {}
        pos = 0
        while pos < len(payload):
            key = _varint(payload, pos)
            if key is None:
                raise DecodeError("truncated SETTINGS identifier")
            value = _varint(payload, key[1])
            if value is None:
                raise DecodeError("truncated SETTINGS value")
            if key[0] in out:
                raise DecodeError(f"SETTINGS repeats identifier 0x{key[0]:x} (H3_SETTINGS_ERROR)")
            if key[0] in H2_SETTINGS:
                raise DecodeError(f"SETTINGS carries HTTP/2 setting 0x{key[0]:x} (H3_SETTINGS_ERROR)")
            out[key[0]] = value[0]
            pos = value[1]
        return out

    # ------------------------------------------------------------------ QPACK

    def _decoder(self, direction: int) -> pylsqpack.Decoder:
        """The QPACK decoder for field sections sent in ``direction``."""
        decoder = self._qpack[direction]
        if decoder is None:
            peer = self.settings[1 - direction] or {}
            capacity = min(peer.get(0x01, 0), MAX_TABLE_CAPACITY)
            # blocked-stream limit: generous, since an observer's view of stream order may differ from the peer's
            blocked = max(peer.get(0x07, 0), 100)
            decoder = self._qpack[direction] = pylsqpack.Decoder(capacity, blocked)
            self._qpack_capacity[direction] = capacity
        return decoder

    def _peer_settings_known(self, direction: int, frame: int, ts: float, events: list[Event]) -> None:
        """The SETTINGS that size the decoder of ``direction`` arrived: (re)build it and drain the backlog."""
        peer = self.settings[1 - direction] or {}
        if self._qpack[direction] is not None and not self._encoder_fed[direction]:
            if min(peer.get(0x01, 0), MAX_TABLE_CAPACITY) != self._qpack_capacity[direction]:
                self._qpack[direction] = None  # only static-table sections so far: safe to resize
        if peer.get(0x01, 0) > MAX_TABLE_CAPACITY:
            self._note(events, frame, ts, direction, "qpack-cap",
                       f"QPACK table capacity {peer[0x01]} above the {MAX_TABLE_CAPACITY} bytes mirrored here")
        backlog = self._encoder_backlog[direction]
        if backlog:
            data = bytes(backlog)
            backlog.clear()
            self._feed_encoder(direction, data, frame, ts, events)

    def _encoder(self, st: _Stream, data: bytes, frame: int, ts: float, events: list[Event]) -> None:
        if not data:
            return
        if self.settings[1 - st.direction] is None:
            backlog = self._encoder_backlog[st.direction]
            if len(backlog) + len(data) > MAX_ENCODER_BACKLOG:
                raise DecodeError("QPACK encoder stream data before the peer's SETTINGS exceeds the buffer")
            backlog += data
            return
        self._feed_encoder(st.direction, data, frame, ts, events)

    def _feed_encoder(self, direction: int, data: bytes, frame: int, ts: float, events: list[Event]) -> None:
        decoder = self._decoder(direction)
        self._encoder_fed[direction] = True
        try:
            unblocked = decoder.feed_encoder(data)
        except (pylsqpack.EncoderStreamError, pylsqpack.DecompressionFailed) as exc:
            raise DecodeError(f"QPACK encoder stream: {type(exc).__name__}") from None
        for stream_id in unblocked:
            pending = self._blocked.pop((direction, stream_id), None)
            if pending is None:
                continue
            try:
                _, raw_headers = decoder.resume_header(stream_id)
            except (pylsqpack.DecompressionFailed, pylsqpack.StreamBlocked) as exc:
                events.append(Malformed(frame=frame, ts=ts, conn=self.conn, layer="http3", direction=DIRECTIONS[direction],
                                        reason=f"stream {stream_id}: QPACK could not decode the field section: "
                                               f"{type(exc).__name__}"))
                continue
            self._headers_event(direction, stream_id, pending.code, pending.length, _headers(raw_headers),
                                pending.detail, frame, ts, pending.arrival, pending.raw, events)

    # ------------------------------------------------------------------ requests

    def _headers_event(self, direction: int, stream_id: int, code: int, length: int, headers: list[list[str]],
                       detail: dict[str, Any] | None, frame: int, ts: float, arrival: float, raw: bytes,
                       events: list[Event]) -> None:
        events.append(Http3Frame(frame=frame, ts=ts, conn=self.conn, type=frame_name(code),
                                 direction=DIRECTIONS[direction], stream=stream_id, length=length, headers=headers,
                                 detail=detail, arrival=arrival, raw=raw))
        if code == 0x05 and detail is not None:
            self._promises[detail["push_id"]] = (headers, ts, arrival, frame)
            return
        if code != 0x01:
            return
        push_id = self._push_ids.get(stream_id)
        if stream_id % 4 != 0 and push_id is None:
            return
        req = self.requests.get(stream_id)
        if req is None:
            req = self.requests[stream_id] = HttpExchange(stream=stream_id)
            if push_id is not None:
                # a pushed response: its request is the PUSH_PROMISE's
                req.pushed = True
                promised, req.request_ts, req.request_arrival, req.request_frame = self._promises.get(
                    push_id, ([], None, None, None))
                req.method = header_value(promised, ":method")
                req.path = header_value(promised, ":path")
                req.authority = header_value(promised, ":authority")
                req.scheme = header_value(promised, ":scheme")
                req.request_headers = promised
        if direction == C2S:
            if req.request_ts is None:
                req.method = header_value(headers, ":method")
                req.path = header_value(headers, ":path")
                req.authority = header_value(headers, ":authority")
                req.scheme = header_value(headers, ":scheme")
                req.protocol = header_value(headers, ":protocol")
                req.request_content_type = header_value(headers, "content-type")
                req.request_headers = headers
                req.request_ts, req.request_arrival, req.request_frame = ts, arrival, frame
            else:
                req.trailers = headers
            return
        status = header_value(headers, ":status")
        value = int(status) if status and status.isdigit() else None
        if req.response_ts is None:
            req.response_ts, req.response_arrival, req.response_frame = ts, arrival, frame
        if value is not None and value < 200:
            req.interim.append(value)
        elif req.status is None and not req.response_headers:
            req.status = value
            req.response_headers = headers
            req.content_type = header_value(headers, "content-type")
        else:
            req.trailers = headers

    def _stream_end(self, st: _Stream, frame: int, ts: float, events: list[Event]) -> None:
        if st.buf or st.frame_type is not None:
            events.append(Malformed(frame=frame, ts=ts, conn=self.conn, layer="http3", direction=DIRECTIONS[st.direction],
                                    reason=f"stream {st.stream_id} ended inside a frame (H3_FRAME_ERROR)"))
        if st.kind == "control":
            events.append(Malformed(frame=frame, ts=ts, conn=self.conn, layer="http3", direction=DIRECTIONS[st.direction],
                                    reason="control stream closed (H3_CLOSED_CRITICAL_STREAM)"))
        if st.kind in ("request", "push"):
            req = self.requests.get(st.stream_id)
            if req is not None:
                if st.direction == S2C and req.end_ts is None:
                    req.end_ts, req.end_frame = ts, frame
                elif st.direction == C2S and req.request_end_ts is None:
                    req.request_end_ts = ts

    def _note(self, events: list[Event], frame: int, ts: float, direction: int, key: str, message: str) -> None:
        if key in self._noted:
            return
        self._noted.add(key)
        events.append(Note(frame=frame, ts=ts, conn=self.conn, layer="http3", message=message,
                           direction=DIRECTIONS[direction]))

    def finish(self) -> list[Event]:
        events: list[Event] = []
        for (direction, stream_id), pending in sorted(self._blocked.items()):
            events.append(Note(frame=self._last[0], ts=self._last[1], conn=self.conn, layer="http3", severity="warning",
                               direction=DIRECTIONS[direction],
                               message=f"stream {stream_id}: {frame_name(pending.code)} never decoded: the QPACK "
                                       "encoder-stream inserts it refers to were not captured"))
        self._blocked.clear()
        return events

    def summary(self) -> dict[str, Any]:
        """``requests`` as HTTP/2 reports them."""
        return {"requests": [r.summary() for _, r in sorted(self.requests.items())]}


def _headers(raw: list[tuple[bytes, bytes]]) -> list[list[str]]:
    return [[name.decode("utf-8", "replace"), value.decode("utf-8", "replace")] for name, value in raw]
