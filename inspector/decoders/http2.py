"""HTTP/2 (RFC 9113) as a passive observer: frames, HPACK, streams, flow control.

:class:`Http2Decoder` is a :class:`~inspector.decoders.base.StreamDecoder`
for the two byte streams of one HTTP/2 connection: cleartext h2c (prior
knowledge, or handed over by the HTTP/1.1 decoder after an ``Upgrade: h2c``)
or the plaintext a TLS decoder produced for ALPN "h2".  It never answers and
never gives up on a peer's error: a frame that breaks the rules is still
shown, with a ``malformed`` event saying why, and decoding goes on wherever
the framing allows.

* Frames: one event per frame (``layer`` "http2", ``type`` the frame type
  name, or ``UNKNOWN_0xnn``), attributed to the frame that delivered its last
  byte.  Types 0x0-0x9 of RFC 9113, ALTSVC (RFC 7838), ORIGIN (RFC 8336) and
  PRIORITY_UPDATE (RFC 9218) are decoded into ``detail``.
* Headers: one :class:`~.hpack_observer.HpackObserver` per direction; blocks
  are assembled across CONTINUATION frames and shown on the frame that ended
  them.  SETTINGS_HEADER_TABLE_SIZE bounds the peer's table.  When a header
  block is missing from the capture (a gap), later headers are flagged
  unreliable and unseen entries show as ``None`` rather than being guessed.
* Streams: state per RFC 9113 §5.1 as a transition table; an impossible
  transition becomes a warning note.  Each stream is an
  :class:`~.http_exchange.HttpExchange` with its timings.
* Flow control: connection and stream send windows per side, from
  SETTINGS_INITIAL_WINDOW_SIZE and WINDOW_UPDATE.  A *stall* is a sender whose
  window reached zero on a stream it had not ended, reopened by a
  WINDOW_UPDATE, after which the sender did send more DATA (so it did have
  data waiting): it is reported with its duration (update time minus the time
  of the DATA frame that used the window up).
* gRPC calls (request content-type ``application/grpc*``) are decoded by
  :mod:`.grpc`; ``text/event-stream`` bodies and extended CONNECT tunnels are
  handed to the hooks described in :mod:`.http_exchange`.

Frame headers are parsed with one precompiled struct rather than hyperframe:
on 60k small HEADERS/DATA frames ``Frame.parse_frame_header`` + ``parse_body``
took 4.8 us per frame here against 0.8 us for the struct slice, and the
per-frame path is the hot one in the HTTP/2 benchmark.
"""

from __future__ import annotations

import struct
from typing import Any

from ..events import C2S, DIRECTIONS, S2C, Event, Http2Frame, Http2Stall, Malformed, Note
from ..flows.streamindex import Span, StreamIndex
from .base import DecodeContext, StreamDecoder
from .grpc import GrpcCallState, is_grpc
from .hpack_observer import HpackObserver
from .http_exchange import BodyObserverFactory, HttpExchange, UpgradeFactory
from ..errors import DecodeError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

_HDR = struct.Struct(">HBBBL")  # 24-bit length as 16+8, type, flags, R + stream id
_U32 = struct.Struct(">L")
_U16 = struct.Struct(">H")
_SETTING = struct.Struct(">HL")

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
ALTSVC, ORIGIN, PRIORITY_UPDATE = 0xA, 0xC, 0x10

FRAME_NAMES = {
    DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM", SETTINGS: "SETTINGS",
    PUSH_PROMISE: "PUSH_PROMISE", PING: "PING", GOAWAY: "GOAWAY", WINDOW_UPDATE: "WINDOW_UPDATE",
    CONTINUATION: "CONTINUATION", ALTSVC: "ALTSVC", ORIGIN: "ORIGIN", PRIORITY_UPDATE: "PRIORITY_UPDATE",
}

_FLAG_BITS = {
    DATA: ((0x1, "END_STREAM"), (0x8, "PADDED")),
    HEADERS: ((0x1, "END_STREAM"), (0x4, "END_HEADERS"), (0x8, "PADDED"), (0x20, "PRIORITY")),
    SETTINGS: ((0x1, "ACK"),),
    PUSH_PROMISE: ((0x4, "END_HEADERS"), (0x8, "PADDED")),
    PING: ((0x1, "ACK"),),
    CONTINUATION: ((0x4, "END_HEADERS"),),
}

ERROR_CODES = {
    0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR", 0x7: "REFUSED_STREAM",
    0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xA: "CONNECT_ERROR", 0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY", 0xD: "HTTP_1_1_REQUIRED",
}

SETTING_NAMES = {
    0x1: "HEADER_TABLE_SIZE", 0x2: "ENABLE_PUSH", 0x3: "MAX_CONCURRENT_STREAMS", 0x4: "INITIAL_WINDOW_SIZE",
    0x5: "MAX_FRAME_SIZE", 0x6: "MAX_HEADER_LIST_SIZE", 0x8: "ENABLE_CONNECT_PROTOCOL",
    0x9: "NO_RFC7540_PRIORITIES",
}

#: A header block assembled from CONTINUATION frames is abandoned beyond this size.
MAX_HEADER_BLOCK = 1024 * 1024
#: Decoded header lists are cut here (RFC 9113 §6.5.2 size); the table stays in sync.
MAX_HEADER_LIST = 256 * 1024
#: Bytes kept per frame event for the hex view.
RAW_KEEP = 64 * 1024
#: While resynchronising after a gap, at most this much unparsed data is kept.
_RESYNC_KEEP = 64 * 1024
#: streams noted as held behind missing TCP bytes (head-of-line marks), at most
MAX_HOL_MARKS = 4096
#: items remembered per direction for a sender-side view of a loss (see Http2Decoder.hol_resent): a flat
#: list of each run's streams then its span, cut in half past this size (as many runs as the TCP spans the
#: reassembler remembers for it, at one or two streams a run; a deque would cost 760 bytes per direction
#: even when nearly empty, and a tuple per run 0.2% more instructions)
RECENT_ITEMS = 512
#: frame types whose stream is an application unit's (HOL marks)
_STREAM_FRAMES = frozenset((0x0, 0x1, 0x9))  # DATA, HEADERS, CONTINUATION

#: Consumed stream bytes are released from the index once this many have accumulated.
RELEASE_STEP = 1 << 16
_DEFAULT_WINDOW = 65535

_flag_cache: dict[tuple[int, int], tuple[str, ...]] = {}


def flag_names(ftype: int, flags: int) -> tuple[str, ...]:
    """Names of the flags set, for the frame's type (unknown bits as ``0xNN``)."""
    key = (ftype, flags)
    names = _flag_cache.get(key)
    if names is None:
        out = []
        rest = flags
        for bit, name in _FLAG_BITS.get(ftype, ()):
            if flags & bit:
                out.append(name)
                rest &= ~bit
        if rest:
            out.append(f"0x{rest:02x}")
        names = _flag_cache[key] = tuple(out)
    return names


def frame_type_name(ftype: int) -> str:
    """``DATA`` ... ``PRIORITY_UPDATE``, or ``UNKNOWN_0xnn``."""
    return FRAME_NAMES.get(ftype) or f"UNKNOWN_0x{ftype:02x}"


def looks_like_h2(client_bytes: bytes) -> bool:
    """Whether a client's first bytes are (a prefix of) the HTTP/2 connection preface."""
    n = min(len(client_bytes), len(PREFACE))
    return n > 0 and client_bytes[:n] == PREFACE[:n]


def looks_like_h2_server(server_bytes: bytes) -> bool:
    """Whether a server's first bytes are an HTTP/2 server connection preface (a SETTINGS frame on
    stream 0, RFC 9113 §3.4).  h2c servers such as grpc's send it before the client's preface arrives."""
    if len(server_bytes) < 9:
        return False
    hi, lo, ftype, flags, sid = _HDR.unpack_from(server_bytes, 0)
    length = (hi << 8) | lo
    return ftype == SETTINGS and flags == 0 and sid == 0 and length % 6 == 0 and length <= 16384


# RFC 9113 §5.1 as seen from the wire: (state, input) -> next state.  Inputs are
# "cH"/"sH" (a header block from client/server), "cD"/"sD" (DATA), "cE"/"sE"
# (END_STREAM) and "PP" (the stream is promised).  RST_STREAM closes any state.
_TRANSITIONS: dict[tuple[str, str], str] = {
    ("idle", "cH"): "open",
    ("idle", "PP"): "reserved",
    ("reserved", "sH"): "half_closed_client",
    ("open", "cH"): "open",
    ("open", "sH"): "open",
    ("open", "cD"): "open",
    ("open", "sD"): "open",
    ("open", "cE"): "half_closed_client",
    ("open", "sE"): "half_closed_server",
    ("half_closed_client", "sH"): "half_closed_client",
    ("half_closed_client", "sD"): "half_closed_client",
    ("half_closed_client", "sE"): "closed",
    ("half_closed_server", "cH"): "half_closed_server",
    ("half_closed_server", "cD"): "half_closed_server",
    ("half_closed_server", "cE"): "closed",
}


#: Transitions that leave the state unchanged (the hot paths skip the call for them).
_TRANSITIONS_SAME = frozenset(k for k, v in _TRANSITIONS.items() if k[0] == v)


class _Side:
    """What one endpoint sent: its byte buffer, header state, settings and send windows."""

    __slots__ = ("direction", "name", "buf", "pos", "base", "started", "need_preface", "hpack", "block",
                 "skip_to", "resync", "settings", "pending_settings", "conn_window", "stream_windows",
                 "initial_window", "max_frame_size", "stalls", "reopened", "pings", "frames", "last",
                 "ready", "release_at", "hol_frame", "recent", "sent_upto")

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.name = DIRECTIONS[direction]
        self.buf = b""
        self.pos = 0
        self.base = 0  # stream offset of buf[0]
        self.started = False
        self.need_preface = direction == C2S
        self.hpack = HpackObserver(max_header_list_size=MAX_HEADER_LIST)  # blocks this side encoded
        # header block being assembled: [stream, type, flags, fragments, size, first_frame, promised]
        self.block: list[Any] | None = None
        self.skip_to = -1  # drop bytes before this offset (rest of a frame cut by a gap)
        self.resync = False  # framing lost after a gap: look for the next frame header
        self.settings: dict[str, int] = {}  # what this side announced (and the peer acknowledged)
        self.pending_settings: list[dict[int, int]] = []
        # this side as a sender
        self.conn_window = _DEFAULT_WINDOW
        self.stream_windows: dict[int, int] = {}
        self.initial_window = _DEFAULT_WINDOW  # set by the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self.max_frame_size = 16384  # set by the peer's SETTINGS_MAX_FRAME_SIZE
        # stream (0 = connection) -> (start ts, start frame, streams the sender had open then)
        self.stalls: dict[int, tuple[float, int, frozenset[int]]] = {}
        self.reopened: dict[int, tuple[float, float, int, frozenset[int]]] = {}  # adds the update's ts
        self.pings: dict[bytes, float] = {}  # opaque data -> ts of a PING awaiting its ACK
        self.frames = 0
        self.last: Span | None = None  # the span of the last frame seen
        # feed's hot path applies: started, preface seen, framing known, nothing to skip
        self.ready = False
        self.release_at = 0  # next stream offset at which to release the index
        self.hol_frame = 0  # the frame of the last run held behind missing bytes (see Http2Decoder._held)
        #: the last runs that completed DATA or HEADERS frames, each as its streams then its span (ints, then
        #: a Span: see Http2Decoder._frames and hol_resent)
        self.recent: list[int | Span] = []
        self.sent_upto = -1  # stream offset of the last run hol_resent noted


class Http2Decoder:
    """Observes one HTTP/2 connection (see the module docstring)."""

    def __init__(self, ctx: DecodeContext, *, upgrade_factory: UpgradeFactory | None = None,
                 body_observer_factory: BodyObserverFactory | None = None,
                 upgraded: HttpExchange | None = None, upgrade_settings: bytes | None = None) -> None:
        """``upgraded`` is the HTTP/1.1 request an ``Upgrade: h2c`` turned into stream 1, with
        ``upgrade_settings`` the decoded HTTP2-Settings payload it carried."""
        self.ctx = ctx
        self.conn = ctx.conn
        self.upgrade_factory = upgrade_factory
        self.body_observer_factory = body_observer_factory
        self.sides = (_Side(C2S), _Side(S2C))
        self.exchanges: list[HttpExchange] = []
        self.streams: dict[int, HttpExchange] = {}
        self.states: dict[int, str] = {}
        self.max_stream = [0, 0]  # highest stream id opened by client (odd) and server (even)
        self.goaway: list[dict[str, Any]] = []
        self.rst_count = 0
        self.stall_log: list[dict[str, Any]] = []
        self.malformed = 0
        self.tunnels: dict[int, list[Any]] = {}  # stream -> [decoder, [StreamIndex x2], [offset x2], pending]
        self.grpc = False
        #: (stream, direction, frame, ts, arrival) of runs held behind missing TCP bytes (see hol_marks)
        self.hol_held: list[tuple[int, int, int, float, float]] = []
        #: the same for runs sent before a retransmission of earlier bytes (see hol_resent)
        self.hol_sent: list[tuple[int, int, int, float, float]] = []
        # whether anyone reads per-frame events (the pipeline sets False for a summary)
        self._events = ctx.facts.get("events", True)
        # DATA and HEADERS are dispatched in _frames itself
        self._handlers = {
            PRIORITY: self._on_priority,
            RST_STREAM: self._on_rst, SETTINGS: self._on_settings, PUSH_PROMISE: self._on_push_promise,
            PING: self._on_ping, GOAWAY: self._on_goaway, WINDOW_UPDATE: self._on_window_update,
            CONTINUATION: self._on_continuation, ALTSVC: self._on_altsvc, ORIGIN: self._on_origin,
            PRIORITY_UPDATE: self._on_priority_update,
        }
        if upgraded is not None:
            upgraded.stream = 1
            self.streams[1] = upgraded
            self.exchanges.append(upgraded)
            self.states[1] = "half_closed_client"  # RFC 9113 §3.2: the upgrade request is complete
            self.max_stream[0] = 1
            if upgrade_settings:
                # RFC 7540 §3.2.1: the 101 acknowledges HTTP2-Settings implicitly
                self._apply_settings(self.sides[C2S], _parse_settings(upgrade_settings), acked=True)

    # ------------------------------------------------------------------ StreamDecoder

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        side = self.sides[direction]
        out: list[Event] = []
        held = index.last
        if held is not None and held[4] > held[3] and side.ready:  # delivered after it arrived
            self._held(side, data, offset, held)  # rare: only runs that waited behind a TCP hole
        if side.ready and offset == side.base + side.pos and side.pos == len(side.buf) and data:
            # hot path: everything before was consumed and these bytes follow on
            side.buf = bytes(data)
            side.base = offset
            side.pos = 0
            self._frames(side, index, out)
            consumed = offset + side.pos
            if consumed >= side.release_at:
                index.release(consumed)
                side.release_at = consumed + RELEASE_STEP
            return out
        if not data:
            return out
        if not side.started:
            side.started = True
            side.base = offset
        elif side.pos >= len(side.buf):
            side.base = side.base + len(side.buf)
            side.buf = b""
            side.pos = 0
        expected = side.base + len(side.buf)
        if offset != expected:
            if offset < expected:  # overlap: keep only the new part
                data = data[expected - offset:]
                offset = expected
                if not data:
                    return []
            else:  # a hole nobody told us about
                self.gap(direction, expected, offset - expected, index)
                side.base, side.buf, side.pos = offset, b"", 0
        if side.skip_to > offset:
            cut = side.skip_to - offset
            if cut >= len(data):
                side.base, side.buf, side.pos = offset + len(data), b"", 0
                return []
            data = data[cut:]
            offset += cut
            side.base, side.buf, side.pos = offset, b"", 0
        if side.pos < len(side.buf):
            side.base += side.pos
            side.buf = side.buf[side.pos:] + data
        else:
            side.base = offset
            side.buf = bytes(data)
        side.pos = 0
        if side.need_preface and not self._preface(side, index, out):
            return out
        if side.resync and not self._resync(side, out, index):
            return out
        side.ready = True  # preface seen, framing known, any cut frame skipped
        self._frames(side, index, out)
        index.release(side.base + side.pos)
        return out

    def hol_marks(self) -> list[tuple[str, str, int, int, float, float]]:
        """Head-of-line marks (see :mod:`inspector.analysis.units`): each stream with frames in a run
        delivered later than it arrived, with that run's wait, and each stream with frames in the run
        that filled the hole (delivered as it arrived: the streams whose bytes were lost)."""
        return [self._hol_mark(*m) for m in self.hol_held]

    def hol_resent(self, direction: int, since: int, frame: int, ts: float) -> None:
        """TCP sent again (in ``frame``) bytes it first sent in frame ``since``: a sender's view of a loss.
        The receiver could use nothing sent from then on before the retransmission arrived, so note the
        streams of every run completed from frame ``since`` on, with when it was sent (the pipeline calls
        this at retransmissions only; :meth:`hol_sent_marks` hands the notes to the analysis)."""
        side = self.sides[direction]
        marks = self.hol_sent
        upto = side.sent_upto
        sids: list[int] = []
        for item in side.recent:
            if type(item) is int:
                sids.append(item)
                continue
            f = item.frame
            if f >= since and item.start > upto:
                upto = item.start
                for sid in sids:
                    if sid and len(marks) < MAX_HOL_MARKS:
                        marks.append((sid, direction, f, item.delivered, item.arrival))
            sids = []
        side.sent_upto = upto

    def hol_sent_marks(self) -> list[tuple[str, str, int, int, float, float]]:
        """Marks like :meth:`hol_marks` for the streams with frames sent between a lost segment's original
        and its retransmission, each at the time its run was sent (see :meth:`hol_resent`)."""
        return [self._hol_mark(*m) for m in self.hol_sent]

    def _hol_mark(self, sid: int, d: int, frame: int, ts: float, arrival: float) -> tuple[str, str, int, int, float, float]:
        ex = self.streams.get(sid)
        what = f"{ex.method or '?'} {ex.path or ''}".rstrip() if ex is not None else "?"
        return (f"HTTP/2:{sid}", f"HTTP/2 stream {sid} ({what})", d, frame, ts, arrival)

    def _held(self, side: _Side, data: bytes, offset: int, span: Span) -> None:
        """A run whose bytes waited behind missing TCP bytes (over TLS: a record that did): note the
        streams of the frames it completes.  On the first such run of a fill, the run fed just before
        (completed by the same frame, not held) is the one that filled the hole: note its streams as
        the ones whose bytes were lost.  Runs are parsed for frame headers only, and only here."""
        marks = self.hol_held
        end = side.base + len(side.buf)
        if len(marks) >= MAX_HOL_MARKS or offset != end or len(data) != span.end - span.start:
            return  # full, or not the plain next run (a hole the decoder resyncs after)
        d = side.direction
        if side.hol_frame != span.frame:
            side.hol_frame = span.frame
            prev = side.last
            if prev is not None and prev.frame == span.frame and prev.delivered <= prev.arrival:
                for sid in _frame_streams(side.buf, 0, side.base, prev.start, prev.end):
                    marks.append((sid, d, prev.frame, prev.delivered, prev.arrival))
        pending = side.buf[side.pos:] + data if side.pos < len(side.buf) else data
        for sid in _frame_streams(pending, 0, offset - (len(pending) - len(data)), offset, offset + len(data)):
            marks.append((sid, d, span.frame, span.delivered, span.arrival))

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        side = self.sides[direction]
        side.ready = False
        out: list[Event] = []
        if not side.started:
            side.started = True
            side.base = offset + length
            side.need_preface = False
            side.resync = True  # we do not know where the first whole frame starts
            side.hpack.lose_sync()
            return out
        buffered_end = side.base + len(side.buf)
        start = side.base + side.pos  # first byte not yet consumed
        gap_end = offset + length
        flags = 0
        sid = 0
        if side.skip_to > start:
            frame_end = side.skip_to
            ftype = -1
        elif len(side.buf) - side.pos >= 9 and not side.need_preface and not side.resync:
            hi, lo, ftype, flags, sid = _HDR.unpack_from(side.buf, side.pos)
            frame_end = start + 9 + ((hi << 8) | lo)
            sid &= 0x7FFFFFFF
            missing = min(frame_end, gap_end) - offset
            self._cut_frame(side, ftype, flags, sid, frame_end - start - 9, offset, missing, index, out)
        else:
            frame_end = -1
            ftype = -1
        if frame_end >= gap_end and offset >= buffered_end:
            # the gap lies inside one frame whose header we have: framing survives
            side.skip_to = frame_end
            side.base, side.buf, side.pos = gap_end, b"", 0
            if ftype in (HEADERS, PUSH_PROMISE, CONTINUATION) or (ftype == -1 and side.block is not None):
                side.hpack.lose_sync()
                # swallow the CONTINUATION frames of the lost block quietly
                side.block = None if flags & 0x4 else [sid, ftype, flags, None, 0, 0, None]
            return out
        # a frame header is among the missing bytes: framing and header state are lost
        side.hpack.lose_sync()
        side.block = None
        side.need_preface = False
        side.resync = True
        side.skip_to = -1
        side.base, side.buf, side.pos = gap_end, b"", 0
        for ex in self.streams.values():
            if ex.grpc is not None:
                ex.grpc.lost(direction)
        return out

    def finish(self) -> list[Event]:
        out: list[Event] = []
        for side in self.sides:
            last = side.last
            frame, ts = (last.frame, last.delivered) if last is not None else (0, 0.0)
            if side.block is not None and side.block[3] is not None:
                blk = side.block
                out.append(self._malformed(side, frame, last, f"header block for stream {blk[0]} never completed "
                                                              "(CONTINUATION missing at end of capture)"))
            rest = len(side.buf) - side.pos
            if rest and not side.resync:
                out.append(Note(frame=frame, ts=ts, conn=self.conn, layer="http2", direction=side.name,
                                severity="note", message=f"{rest} bytes of an incomplete HTTP/2 frame at end of capture"))
        for entry in self.tunnels.values():
            dec = entry[0]
            if dec is not None:
                out += dec.finish()
        return out

    def summary(self) -> dict[str, Any]:
        c, s = self.sides
        enc = c.hpack.encoded_bytes + s.hpack.encoded_bytes
        plain = c.hpack.plain_bytes + s.hpack.plain_bytes
        stalls = list(self.stall_log)
        for side in self.sides:
            sending = ("open", "half_closed_server") if side.direction == C2S else ("open", "half_closed_client")
            for stream, (start, frame, waiting) in side.stalls.items():
                # still at zero when the capture ended: a stall only if a stream it blocked never finished
                if not any(self.states.get(k) in sending for k in waiting):
                    continue
                stalls.append({"direction": side.name, "stream": stream, "start": start, "end": None,
                               "duration_ms": None, "start_frame": frame})
        out: dict[str, Any] = {
            "app": "grpc" if self.grpc else "h2",
            "requests": [ex.summary() for ex in self.exchanges],
            "http2": {
                "frames": {"c2s": c.frames, "s2c": s.frames},
                "streams": len(self.exchanges),
                "hpack": {
                    "encoded_bytes": enc,
                    "plain_bytes": plain,
                    "savings_pct": round(100.0 * (1 - enc / plain), 1) if plain else None,
                    "c2s": _hpack_summary(c.hpack),
                    "s2c": _hpack_summary(s.hpack),
                },
                "flow_control_stalls": stalls,
                "settings": {"client": dict(c.settings), "server": dict(s.settings)},
                "rst_streams": self.rst_count,
                "goaway": self.goaway,
                "malformed": self.malformed,
            },
        }
        for entry in self.tunnels.values():
            if entry[0] is not None:
                out.update(entry[0].summary())
        return out

    # ------------------------------------------------------------------ framing

    def _preface(self, side: _Side, index: StreamIndex, out: list[Event]) -> bool:
        buf = side.buf
        n = min(len(buf), 24)
        if buf[:n] != PREFACE[:n]:
            # Garbage, or a capture that started mid-connection: look for frames, trust no header state.
            side.need_preface = False
            side.resync = True
            side.hpack.lose_sync()
            span = index.locate(side.base)
            out.append(self._malformed(side, span.frame, span, "client did not start with the HTTP/2 connection preface"))
            return True
        if len(buf) < 24:
            return False
        side.need_preface = False
        span = index.locate(side.base + 23)
        if self._events:
            out.append(Http2Frame(frame=span.frame, ts=span.delivered, conn=self.conn, type="PREFACE",
                                  direction=side.name, stream=0, flags=0, length=24, arrival=span.arrival,
                                  raw=PREFACE))
        side.pos = 24
        return True

    def _resync(self, side: _Side, out: list[Event], index: StreamIndex) -> bool:
        """Find the next frame header after lost framing: a plausible header followed by
        another plausible one (or ending exactly where our bytes end)."""
        buf = side.buf
        n = len(buf)
        pos = side.pos
        wait_from = -1
        while n - pos >= 9:
            end = _plausible(buf, pos)
            if end is not None:
                if end == n or (n - end >= 9 and _plausible(buf, end) is not None):
                    side.resync = False
                    side.pos = pos
                    span = index.locate(side.base + pos)
                    out.append(Note(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http2",
                                    direction=side.name, severity="warning",
                                    message=f"HTTP/2 framing resynchronised at stream offset {side.base + pos} "
                                            "after a capture gap; headers stay unreliable until the HPACK "
                                            "table is back in sync"))
                    return True
                if n - end < 9 and wait_from < 0:
                    wait_from = pos  # cannot check the next header yet
            pos += 1
        keep = wait_from if wait_from >= 0 else pos
        keep = max(keep, n - _RESYNC_KEEP)
        side.base += keep
        side.buf = buf[keep:]
        side.pos = 0
        return False

    def _frames(self, side: _Side, index: StreamIndex, out: list[Event]) -> None:
        buf = side.buf
        n = len(buf)
        pos = side.pos
        base = side.base
        unpack = _HDR.unpack_from
        handlers = self._handlers
        events = self._events
        max_frame = side.max_frame_size  # set by the peer's SETTINGS, which are not in this loop
        client = side.direction == C2S
        frames = 0
        span = None
        # the offsets of the span a frame's last byte is in (frames of one TLS record share it); to begin
        # with the index's last span, the run just added, which locate() answers for any offset from its
        # start on (one search less per run)
        last = index.last
        start, end_off = (last.start, last.end) if last is not None else (0, 0)
        recent = side.recent  # gets the streams of the DATA and HEADERS frames completed here (see hol_resent)
        prev = -1
        while n - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            body = pos + 9
            length = (hi << 8) | lo
            end = body + length
            if end > n:
                break
            if start <= end - 1 + base < end_off:
                span = last
            else:
                last = span = index.locate(end - 1 + base)
                start, end_off = span.start, span.end
            sid &= 0x7FFFFFFF
            if events:
                ev = self._frame_event(side, span, ftype, flags, sid, length, buf, pos, end)
                out.append(ev)
            else:
                ev = None
            frames += 1
            payload = buf[body:end]
            pos = end
            try:
                if side.block is not None and ftype != CONTINUATION:
                    blk = side.block
                    side.block = None
                    side.hpack.lose_sync()
                    raise DecodeError(f"{frame_type_name(ftype)} on stream {sid} while the header block of "
                                      f"stream {blk[0]} awaited CONTINUATION")
                if length > max_frame:
                    out.append(self._malformed(side, span.frame, span,
                                               f"{frame_type_name(ftype)} frame of {length} bytes exceeds the "
                                               f"peer's SETTINGS_MAX_FRAME_SIZE {max_frame}"))
                # DATA and HEADERS (nearly every frame) take the header fields and need no event
                if ftype == HEADERS:
                    if sid != prev:  # another stream than the frame before's (see hol_resent)
                        recent.append(sid)
                        prev = sid
                    if ev is None and flags & 0x2C == 0x4 and sid:
                        # a whole block, no padding or priority, no event: _block_done inlined
                        try:
                            headers, reliable, oversized, list_size, _ = side.hpack.decode_fields(payload)
                        except DecodeError:
                            side.hpack.lose_sync()
                            raise
                        if oversized:
                            out.append(self._malformed(side, span.frame, span,
                                                       f"header list of {list_size} bytes exceeds {MAX_HEADER_LIST}; "
                                                       f"{len(headers)} fields kept"))
                        if client:
                            self._client_headers(side, sid, headers, reliable, flags, span, out)
                        else:
                            self._server_headers(side, sid, headers, reliable, flags, span, out)
                    elif flags & 0x2C == 0x4 and sid:  # END_HEADERS, no padding or priority: the payload is the block
                        self._block_done(side, ev, sid, HEADERS, flags, payload, span, out, None)
                    else:
                        self._on_headers(side, ev, sid, flags, length, payload, span, out)
                elif ftype == DATA:
                    if sid != prev:
                        recent.append(sid)
                        prev = sid
                    self._on_data(side, ev, sid, flags, length, payload, span, out)
                else:
                    handler = handlers.get(ftype)
                    if handler is not None:
                        if ev is None:  # the other handlers read and fill an event; it is not emitted
                            ev = self._frame_event(side, span, ftype, flags, sid, length, buf, body - 9, end)
                        handler(side, ev, payload, span, out)
            except DecodeError as exc:
                out.append(self._malformed(side, span.frame, span, f"{frame_type_name(ftype)} frame: {exc.reason}"))
        side.pos = pos
        side.frames += frames
        if frames:
            side.last = span
            if prev >= 0:  # then the run those streams' frames completed in
                recent.append(span)
                if len(recent) > 512:  # RECENT_ITEMS (a constant: this runs once per run)
                    del recent[:256]

    def _frame_event(self, side: _Side, span: Span, ftype: int, flags: int, sid: int, length: int, buf: bytes,
                     pos: int, end: int) -> Http2Frame:
        """The event of the frame at ``buf[pos:end]``."""
        return Http2Frame(frame=span.frame, ts=span.delivered, conn=self.conn, type=frame_type_name(ftype),
                          direction=side.name, stream=sid, flags=flags,
                          flag_names=flag_names(ftype, flags) if flags else (), length=length, arrival=span.arrival,
                          raw=buf[pos:end] if length <= RAW_KEEP else buf[pos:pos + 9 + RAW_KEEP])

    def _cut_frame(self, side: _Side, ftype: int, flags: int, sid: int, length: int, offset: int, missing: int,
                   index: StreamIndex, out: list[Event]) -> None:
        """A frame some of whose bytes are missing: account what its header tells."""
        last = min(offset, side.base + len(side.buf)) - 1
        span = index.locate(max(last, side.base))
        if self._events:
            out.append(Http2Frame(frame=span.frame, ts=span.delivered, conn=self.conn, type=frame_type_name(ftype),
                                  direction=side.name, stream=sid, flags=flags, flag_names=flag_names(ftype, flags),
                                  length=length, arrival=span.arrival, detail={"missing_bytes": missing}))
        side.frames += 1
        if ftype == DATA and sid:
            self._consume_window(side, sid, length, bool(flags & 1), span, out)
            ex = self.streams.get(sid)
            if ex is not None:
                if ex.grpc is not None:
                    ex.grpc.lost(side.direction)
                if side.direction == C2S:
                    ex.request_bytes += length
                else:
                    ex.bytes += length
                    ex.error = ex.error or "response bytes missing from capture"
                if flags & 1:
                    self._end_stream(side, sid, span, out)

    def _malformed(self, side: _Side, frame: int, span: Span | None, reason: str) -> Malformed:
        self.malformed += 1
        return Malformed(frame=frame, ts=span.delivered if span is not None else 0.0, conn=self.conn, layer="http2",
                         direction=side.name, reason=reason)

    # ------------------------------------------------------------------ frame handlers

    def _on_data(self, side: _Side, ev: Http2Frame | None, sid: int, flags: int, length: int, payload: bytes,
                 span: Span, out: list[Event]) -> None:
        if sid == 0:
            raise DecodeError("DATA on stream 0")
        end_stream = bool(flags & 1)
        self._consume_window(side, sid, length, end_stream, span, out)
        if flags & 0x8:
            if length < 1:
                raise DecodeError("PADDED without a pad length")
            pad = payload[0]
            if pad >= length:
                raise DecodeError(f"padding {pad} not smaller than the payload {length}")
            if ev is not None:
                ev.detail = {"pad_length": pad}
            data = payload[1:length - pad]
        else:
            data = payload
        direction = side.direction
        inp = "cD" if direction == C2S else "sD"
        if (self.states.get(sid), inp) not in _TRANSITIONS:  # DATA never changes an allowed state
            self._transition(side, sid, inp, span, out)
        ex = self.streams.get(sid)
        if ex is not None:
            if direction == C2S:
                ex.request_bytes += len(data)
            else:
                ex.bytes += len(data)
                if ex.response_ts is None:
                    ex.response_ts, ex.response_arrival, ex.response_frame = span.delivered, span.arrival, span.frame
            if data:
                if ex.grpc is not None:
                    out += ex.grpc.feed(direction, data, span.frame, span.delivered)
                elif sid in self.tunnels:
                    self._tunnel_data(sid, direction, data, span, out)
                elif ex.observer is not None and direction == S2C:
                    more = ex.observer.feed_body(data, span.delivered, span.frame)
                    if more:
                        out += more
        if end_stream:
            self._end_stream(side, sid, span, out)

    def _on_headers(self, side: _Side, ev: Http2Frame | None, sid: int, flags: int, length: int, payload: bytes,
                    span: Span, out: list[Event]) -> None:
        if sid == 0:
            raise DecodeError("HEADERS on stream 0")
        if not flags & 0x28:  # neither PADDED nor PRIORITY: the payload is the block fragment
            self._block_start(side, ev, sid, HEADERS, flags, payload, span, out, None)
            return
        start = 0
        pad = 0
        detail: dict[str, Any] = {}
        if flags & 0x8:
            if length < 1:
                raise DecodeError("PADDED without a pad length")
            pad = payload[0]
            start = 1
            detail["pad_length"] = pad
        if flags & 0x20:
            if length < start + 5:
                raise DecodeError("PRIORITY flag but no room for the priority fields")
            dep, = _U32.unpack_from(payload, start)
            detail["exclusive"] = bool(dep >> 31)
            detail["depends_on"] = dep & 0x7FFFFFFF
            detail["weight"] = payload[start + 4] + 1
            start += 5
        if pad and start + pad > length:
            raise DecodeError(f"padding {pad} exceeds the payload {length}")
        if detail and ev is not None:
            ev.detail = detail
        fragment = payload[start:length - pad]
        self._block_start(side, ev, sid, HEADERS, flags, fragment, span, out, None)

    def _on_push_promise(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        sid = ev.stream
        if sid == 0:
            raise DecodeError("PUSH_PROMISE on stream 0")
        flags = ev.flags
        length = ev.length
        start = 0
        pad = 0
        if flags & 0x8:
            if length < 1:
                raise DecodeError("PADDED without a pad length")
            pad = payload[0]
            start = 1
        if length < start + 4 + pad:
            raise DecodeError("too short for the promised stream id and padding")
        promised = _U32.unpack_from(payload, start)[0] & 0x7FFFFFFF
        ev.detail = {"promised_stream": promised}
        if pad:
            ev.detail["pad_length"] = pad
        fragment = payload[start + 4:length - pad]
        self._block_start(side, ev, sid, PUSH_PROMISE, flags, fragment, span, out, promised)

    def _on_continuation(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        blk = side.block
        if blk is None:
            raise DecodeError(f"CONTINUATION on stream {ev.stream} without a header block in progress")
        if blk[3] is None:  # the block's start was lost in a capture gap
            if ev.flags & 0x4:
                side.block = None
            ev.headers_reliable = False
            return
        if blk[0] != ev.stream:
            side.block = None
            side.hpack.lose_sync()
            raise DecodeError(f"CONTINUATION on stream {ev.stream} but the header block is on stream {blk[0]}")
        blk[3].append(payload)
        blk[4] += len(payload)
        if blk[4] > MAX_HEADER_BLOCK:
            side.block = None
            side.hpack.lose_sync()
            raise DecodeError(f"header block larger than {MAX_HEADER_BLOCK} bytes; not decoded")
        if ev.flags & 0x4:
            side.block = None
            self._block_done(side, ev, blk[0], blk[1], blk[2], b"".join(blk[3]), span, out, blk[6])

    def _block_start(self, side: _Side, ev: Http2Frame | None, sid: int, ftype: int, flags: int, fragment: bytes,
                     span: Span, out: list[Event], promised: int | None) -> None:
        if flags & 0x4:
            self._block_done(side, ev, sid, ftype, flags, fragment, span, out, promised)
        else:
            side.block = [sid, ftype, flags, [fragment], len(fragment), span.frame, promised]

    def _block_done(self, side: _Side, ev: Http2Frame | None, sid: int, ftype: int, flags: int, block: bytes,
                    span: Span, out: list[Event], promised: int | None) -> None:
        try:
            headers, reliable, oversized, list_size, _ = side.hpack.decode_fields(block)
        except DecodeError:
            side.hpack.lose_sync()
            if ev is not None:
                ev.headers_reliable = False
            raise
        if ev is not None:
            ev.headers = headers
            ev.headers_reliable = reliable
        if oversized:
            out.append(self._malformed(side, span.frame, span,
                                       f"header list of {list_size} bytes exceeds {MAX_HEADER_LIST}; "
                                       f"{len(headers)} fields kept"))
        if ftype == PUSH_PROMISE:
            self._promise(side, sid, promised or 0, headers, reliable, span, out)
        elif side.direction == C2S:
            self._client_headers(side, sid, headers, reliable, flags, span, out)
        else:
            self._server_headers(side, sid, headers, reliable, flags, span, out)

    def _client_headers(self, side: _Side, sid: int, headers: list[list[str | None]], reliable: bool, flags: int,
                        span: Span, out: list[Event]) -> None:
        ex = self.streams.get(sid)
        if ex is None:
            if not sid & 1:
                out.append(self._malformed(side, span.frame, span, f"client opened even-numbered stream {sid}"))
            elif sid <= self.max_stream[0]:
                out.append(Note(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http2",
                                direction=side.name, severity="warning",
                                message=f"HEADERS opens stream {sid}, not above the last opened {self.max_stream[0]}"))
            ex = HttpExchange(stream=sid, request_ts=span.delivered, request_arrival=span.arrival,
                              request_frame=span.frame, headers_reliable=reliable)
            _fill_request(ex, headers)
            self.streams[sid] = ex
            self.states[sid] = "open"  # idle --cH--> open (_TRANSITIONS' first step, without the lookup)
            self.exchanges.append(ex)
            if sid & 1 and sid > self.max_stream[0]:
                self.max_stream[0] = sid
            if ex.request_content_type is not None and is_grpc(ex.request_content_type):
                self.grpc = True
                ex.grpc = GrpcCallState(self.conn, sid, ex.path or "", span.delivered)
                ex.grpc.encodings[C2S] = _get(headers, "grpc-encoding")
            elif flags & 0x1:
                # _end_stream for the stream just opened: open --cE--> half_closed_client
                if side.stalls:
                    side.stalls.pop(sid, None)
                if side.reopened:
                    side.reopened.pop(sid, None)
                if side.stream_windows:
                    side.stream_windows.pop(sid, None)
                self.states[sid] = "half_closed_client"
                ex.request_end_ts = span.delivered
                return
        else:
            if not reliable:
                ex.headers_reliable = False
            ex.trailers = headers  # request trailers
            self._transition(side, sid, "cH", span, out)
        if flags & 0x1:
            self._end_stream(side, sid, span, out)

    def _server_headers(self, side: _Side, sid: int, headers: list[list[str | None]], reliable: bool, flags: int,
                        span: Span, out: list[Event]) -> None:
        ex = self.streams.get(sid)
        if ex is None:  # a response whose request is not in the capture
            ex = HttpExchange(stream=sid, headers_reliable=reliable)
            self.streams[sid] = ex
            self.exchanges.append(ex)
            self.states.setdefault(sid, "half_closed_client")
        if not reliable:
            ex.headers_reliable = False
        # :status comes first (RFC 9113 §8.3); _get finds it anywhere
        status_text = headers[0][1] if headers and headers[0][0] == ":status" else _get(headers, ":status")
        status = None
        if status_text is not None:
            try:
                status = int(status_text)
            except ValueError:
                raise DecodeError(f"invalid :status {status_text!r} on stream {sid}") from None
        if status is not None and 100 <= status < 200:
            ex.interim.append(status)
            if ex.response_ts is None:
                ex.response_ts, ex.response_arrival, ex.response_frame = span.delivered, span.arrival, span.frame
        elif status is not None and ex.status is None:
            ex.status = status
            ex.response_headers = headers
            ex.content_type = _get(headers, "content-type")
            if ex.response_ts is None:
                ex.response_ts, ex.response_arrival, ex.response_frame = span.delivered, span.arrival, span.frame
            if ex.grpc is not None:
                ex.grpc.encodings[S2C] = _get(headers, "grpc-encoding")
                if flags & 0x1:  # trailers-only response
                    ex.grpc.trailers(headers)
            elif ex.method == "CONNECT" and 200 <= status < 300:
                self._open_tunnel(ex, sid, span, out)
            elif (self.body_observer_factory is not None and ex.content_type
                  and ex.content_type.startswith("text/event-stream")):
                ex.observer = self.body_observer_factory(self.ctx, ex)
        else:
            ex.trailers = headers
            if ex.grpc is not None:
                ex.grpc.trailers(headers)
        if (self.states.get(sid), "sH") not in _TRANSITIONS_SAME:  # else the state stays as it is
            self._transition(side, sid, "sH", span, out)
        if flags & 0x1:
            self._end_stream(side, sid, span, out)

    def _promise(self, side: _Side, sid: int, promised: int, headers: list[list[str | None]], reliable: bool,
                 span: Span, out: list[Event]) -> None:
        if side.direction == C2S:
            out.append(self._malformed(side, span.frame, span, "PUSH_PROMISE sent by the client"))
            return
        if promised == 0 or promised & 1:
            raise DecodeError(f"promised stream id {promised} is not a valid server stream")
        ex = HttpExchange(stream=promised, pushed=True, request_ts=span.delivered, request_arrival=span.arrival,
                          request_frame=span.frame, request_end_ts=span.delivered, headers_reliable=reliable)
        _fill_request(ex, headers)
        self.streams[promised] = ex
        self.states[promised] = "idle"
        self.exchanges.append(ex)
        if promised > self.max_stream[1]:
            self.max_stream[1] = promised
        self._transition(side, promised, "PP", span, out)

    def _end_stream(self, side: _Side, sid: int, span: Span, out: list[Event]) -> None:
        if side.stalls:
            side.stalls.pop(sid, None)
        if side.reopened:
            side.reopened.pop(sid, None)
        side.stream_windows.pop(sid, None)
        ex = self.streams.get(sid)
        states = self.states
        inp = "cE" if side.direction == C2S else "sE"
        nxt = _TRANSITIONS.get((states.get(sid), inp))
        if nxt is None:
            self._transition(side, sid, inp, span, out)  # unknown state or not allowed: the general path
        elif nxt == "closed":
            del states[sid]
        else:
            states[sid] = nxt
        if ex is None:
            return
        if side.direction == C2S:
            ex.request_end_ts = span.delivered
        else:
            self._response_done(ex, sid, span, out)

    def _response_done(self, ex: HttpExchange, sid: int, span: Span, out: list[Event]) -> None:
        if ex.end_ts is not None:
            return
        ex.end_ts, ex.end_arrival, ex.end_frame = span.delivered, span.arrival, span.frame
        if ex.grpc is not None:
            out.append(ex.grpc.end(span.frame, span.delivered))
        if ex.observer is not None:
            end_body = getattr(ex.observer, "end_body", None)
            if end_body is not None:
                more = end_body(span.delivered, span.frame)
                if more:
                    out += more

    def _transition(self, side: _Side, sid: int, inp: str, span: Span, out: list[Event]) -> None:
        states = self.states
        state = states.get(sid)
        if state is None:
            opener = 0 if sid & 1 else 1
            state = "idle" if sid > self.max_stream[opener] else "closed"
        nxt = _TRANSITIONS.get((state, inp))
        if nxt is None:
            ex = self.streams.get(sid)
            # frames in flight after a RST_STREAM are expected (RFC 9113 §5.4.2), not violations
            if state != "closed" or (ex is not None and ex.error is None and inp[1] != "D"):
                out.append(Note(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http2",
                                direction=side.name, severity="warning",
                                message=f"stream {sid}: {_INPUT_TEXT[inp]} in state {state}"))
            return
        if nxt == "closed":
            states.pop(sid, None)  # closed streams are those at or below max_stream with no state
        else:
            states[sid] = nxt

    def _on_priority(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length != 5:
            raise DecodeError(f"PRIORITY length {ev.length}, must be 5")
        if ev.stream == 0:
            raise DecodeError("PRIORITY on stream 0")
        dep, = _U32.unpack_from(payload, 0)
        ev.detail = {"exclusive": bool(dep >> 31), "depends_on": dep & 0x7FFFFFFF, "weight": payload[4] + 1}

    def _on_rst(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length != 4:
            raise DecodeError(f"RST_STREAM length {ev.length}, must be 4")
        sid = ev.stream
        if sid == 0:
            raise DecodeError("RST_STREAM on stream 0")
        code, = _U32.unpack_from(payload, 0)
        name = ERROR_CODES.get(code, f"0x{code:x}")
        ev.detail = {"error_code": code, "error": name}
        self.rst_count += 1
        self.states.pop(sid, None)
        for s in self.sides:
            s.stalls.pop(sid, None)
            s.reopened.pop(sid, None)
            s.stream_windows.pop(sid, None)
        ex = self.streams.get(sid)
        if ex is not None:
            if ex.error is None:
                ex.error = name
            self._response_done(ex, sid, span, out)

    def _on_settings(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.stream != 0:
            raise DecodeError(f"SETTINGS on stream {ev.stream}")
        if ev.flags & 0x1:
            if ev.length:
                raise DecodeError("SETTINGS ACK with a payload")
            peer = self.sides[1 - side.direction]
            if peer.pending_settings:
                acked = peer.pending_settings.pop(0)
                for ident, value in acked.items():
                    peer.settings[SETTING_NAMES.get(ident, f"0x{ident:x}")] = value
                if 0x1 in acked:  # the acknowledged table size now bounds this side's encoder exactly
                    side.hpack.set_max_allowed(acked[0x1])
            return
        if ev.length % 6:
            raise DecodeError(f"SETTINGS length {ev.length} is not a multiple of 6")
        values = _parse_settings(payload)
        ev.detail = {"settings": [[SETTING_NAMES.get(k, f"0x{k:x}"), v] for k, v in values]}
        problems = self._apply_settings(side, values)
        for p in problems:
            out.append(self._malformed(side, span.frame, span, f"SETTINGS: {p}"))

    def _apply_settings(self, side: _Side, values: list[tuple[int, int]], acked: bool = False) -> list[str]:
        """``side`` announced ``values``: they constrain the *peer* as a sender and encoder."""
        peer = self.sides[1 - side.direction]
        problems = []
        pending: dict[int, int] = {}
        for ident, value in values:
            pending[ident] = value
            if ident == 0x1:
                # The peer may use a larger table as soon as it has seen this; a smaller one binds at the ACK.
                if value > peer.hpack.max_allowed:
                    peer.hpack.max_allowed = value
            elif ident == 0x4:
                if value > 0x7FFFFFFF:
                    problems.append(f"INITIAL_WINDOW_SIZE {value} above 2^31-1")
                    continue
                delta = value - peer.initial_window
                peer.initial_window = value
                if delta:
                    w = peer.stream_windows
                    for k in w:
                        w[k] += delta
            elif ident == 0x5:
                if not 16384 <= value <= 16777215:
                    problems.append(f"MAX_FRAME_SIZE {value} outside 16384..16777215")
                    continue
                peer.max_frame_size = value
            elif ident == 0x2 and value > 1:
                problems.append(f"ENABLE_PUSH {value}, must be 0 or 1")
        if acked:
            for ident, value in pending.items():
                side.settings[SETTING_NAMES.get(ident, f"0x{ident:x}")] = value
                if ident == 0x1:
                    peer.hpack.set_max_allowed(value)
        else:
            side.pending_settings.append(pending)
        return problems

    def _on_ping(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length != 8:
            raise DecodeError(f"PING length {ev.length}, must be 8")
        if ev.stream != 0:
            raise DecodeError(f"PING on stream {ev.stream}")
        opaque = bytes(payload)
        detail: dict[str, Any] = {"opaque": opaque.hex()}
        if ev.flags & 0x1:
            sent = self.sides[1 - side.direction].pings.pop(opaque, None)
            if sent is not None:
                detail["rtt_ms"] = round((span.delivered - sent) * 1000, 3)
        else:
            if len(side.pings) < 64:
                side.pings[opaque] = span.delivered
        ev.detail = detail

    def _on_goaway(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length < 8:
            raise DecodeError(f"GOAWAY length {ev.length}, must be at least 8")
        if ev.stream != 0:
            raise DecodeError(f"GOAWAY on stream {ev.stream}")
        last, code = struct.unpack_from(">LL", payload, 0)
        last &= 0x7FFFFFFF
        debug = bytes(payload[8:8 + 1024])
        ev.detail = {"last_stream_id": last, "error_code": code, "error": ERROR_CODES.get(code, f"0x{code:x}"),
                     "debug_data": debug.decode("utf-8", "replace")}
        self.goaway.append({"from": "client" if side.direction == C2S else "server", "last_stream_id": last,
                            "error": ev.detail["error"], "frame": span.frame, "ts": span.delivered})

    def _on_window_update(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length != 4:
            raise DecodeError(f"WINDOW_UPDATE length {ev.length}, must be 4")
        inc = _U32.unpack_from(payload, 0)[0] & 0x7FFFFFFF
        ev.detail = {"increment": inc}
        if inc == 0:
            raise DecodeError("WINDOW_UPDATE with an increment of 0")
        sender = self.sides[1 - side.direction]  # whose send window opens
        sid = ev.stream
        if sid == 0:
            sender.conn_window += inc
            window = sender.conn_window
        else:
            if sid not in sender.stream_windows:
                opener = 0 if sid & 1 else 1
                if sid <= self.max_stream[opener] and sid not in self.states:
                    return  # a closed stream: the update no longer matters
            window = sender.stream_windows.get(sid, sender.initial_window) + inc
            sender.stream_windows[sid] = window
        if window > 0x7FFFFFFF:
            out.append(self._malformed(side, span.frame, span,
                                       f"WINDOW_UPDATE makes the {'connection' if sid == 0 else f'stream {sid}'} "
                                       f"window {window}, above 2^31-1 (FLOW_CONTROL_ERROR)"))
        if window > 0:
            stall = sender.stalls.pop(sid, None)
            if stall is not None:
                sender.reopened[sid] = (stall[0], span.delivered, stall[1], stall[2])

    def _on_altsvc(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length < 2:
            raise DecodeError("ALTSVC shorter than its origin length")
        olen, = _U16.unpack_from(payload, 0)
        if 2 + olen > ev.length:
            raise DecodeError("ALTSVC origin runs past the frame")
        ev.detail = {"origin": bytes(payload[2:2 + olen]).decode("ascii", "replace"),
                     "alt_svc": bytes(payload[2 + olen:]).decode("ascii", "replace")}

    def _on_origin(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        origins = []
        pos = 0
        n = ev.length
        while pos < n:
            if pos + 2 > n:
                raise DecodeError("ORIGIN entry cut off")
            olen, = _U16.unpack_from(payload, pos)
            if pos + 2 + olen > n:
                raise DecodeError("ORIGIN entry runs past the frame")
            origins.append(bytes(payload[pos + 2:pos + 2 + olen]).decode("ascii", "replace"))
            pos += 2 + olen
        ev.detail = {"origins": origins}

    def _on_priority_update(self, side: _Side, ev: Http2Frame, payload: bytes, span: Span, out: list[Event]) -> None:
        if ev.length < 4:
            raise DecodeError("PRIORITY_UPDATE shorter than 4 bytes")
        ev.detail = {"prioritized_stream": _U32.unpack_from(payload, 0)[0] & 0x7FFFFFFF,
                     "priority": bytes(payload[4:]).decode("ascii", "replace")}

    # ------------------------------------------------------------------ flow control

    def _consume_window(self, side: _Side, sid: int, length: int, end_stream: bool, span: Span,
                        out: list[Event]) -> None:
        if side.reopened:
            # DATA after a WINDOW_UPDATE that ended a zero-window period: the sender had data waiting.
            # For the connection window, only DATA on a stream that was already open at the start counts.
            for key in (sid, 0):
                entry = side.reopened.get(key)
                if entry is None or (key == 0 and sid not in entry[3]):
                    continue
                del side.reopened[key]
                start, end, start_frame, _ = entry
                dur = round((end - start) * 1000, 3)
                self.stall_log.append({"direction": side.name, "stream": key, "start": start, "end": end,
                                       "duration_ms": dur, "start_frame": start_frame})
                out.append(Http2Stall(frame=span.frame, ts=span.delivered, conn=self.conn, direction=side.name,
                                      stream=key, start=start, end=end, duration_ms=dur, start_frame=start_frame))
        if not length:
            return
        side.conn_window -= length
        w = side.stream_windows.get(sid, side.initial_window) - length
        side.stream_windows[sid] = w
        if side.conn_window <= 0 and 0 not in side.stalls:
            streams = _sending(self.states, side.direction)
            if end_stream:
                streams -= {sid}
            side.stalls[0] = (span.delivered, span.frame, streams)
        if w <= 0 and not end_stream:
            side.stalls.setdefault(sid, (span.delivered, span.frame, frozenset((sid,))))

    # ------------------------------------------------------------------ tunnels (RFC 8441)

    def _open_tunnel(self, ex: HttpExchange, sid: int, span: Span, out: list[Event]) -> None:
        dec: StreamDecoder | None = None
        if self.upgrade_factory is not None:
            proto = (ex.protocol or "connect").lower()
            dec = self.upgrade_factory(self.ctx, proto, ex.request_headers, ex.response_headers)
        self.tunnels[sid] = [dec, [StreamIndex(), StreamIndex()], [0, 0]]

    def _tunnel_data(self, sid: int, direction: int, data: bytes, span: Span, out: list[Event]) -> None:
        dec, indexes, offsets = self.tunnels[sid]
        if dec is None:
            return
        off = offsets[direction]
        idx = indexes[direction]
        idx.add(Span(off, off + len(data), span.frame, span.arrival, span.delivered, span.arrival_frame))
        offsets[direction] = off + len(data)
        out += dec.feed(direction, data, off, idx)


def _frame_streams(buf: bytes, pos: int, base: int, lo: int, hi: int) -> list[int]:
    """The streams of the DATA, HEADERS and CONTINUATION frames in ``buf`` (a frame header at ``pos``,
    stream offset ``base`` at ``buf[0]``) completed by stream bytes ``[lo, hi)``: a frame is usable,
    and its bytes delivered to its stream, once its last byte is there."""
    out: list[int] = []
    n = len(buf)
    while n - pos >= 9:
        hi16, lo8, ftype, _, sid = _HDR.unpack_from(buf, pos)
        pos += 9 + ((hi16 << 8) | lo8)
        end = base + pos
        if end > hi:
            break
        sid &= 0x7FFFFFFF
        if end > lo and sid and ftype in _STREAM_FRAMES and sid not in out:
            out.append(sid)
    return out


def _parse_settings(payload: bytes) -> list[tuple[int, int]]:
    return [_SETTING.unpack_from(payload, i) for i in range(0, len(payload) - len(payload) % 6, 6)]


def _plausible(buf: bytes, pos: int) -> int | None:
    """End of a plausible frame whose header is at ``pos`` (for resynchronising), else None."""
    hi, lo, ftype, flags, sid = _HDR.unpack_from(buf, pos)
    length = (hi << 8) | lo
    if ftype not in FRAME_NAMES or length > 16384 or sid >> 31:
        return None
    if ftype in (SETTINGS, PING, GOAWAY):
        if sid:
            return None
    elif ftype not in (WINDOW_UPDATE, ALTSVC) and not sid:
        return None
    allowed = 0
    for bit, _ in _FLAG_BITS.get(ftype, ()):
        allowed |= bit
    if flags & ~allowed:
        return None
    fixed = {PRIORITY: 5, RST_STREAM: 4, PING: 8, WINDOW_UPDATE: 4}.get(ftype)
    if fixed is not None and length != fixed:
        return None
    if ftype == SETTINGS and length % 6:
        return None
    return pos + 9 + length


def _sending(states: dict[int, str], direction: int) -> frozenset[int]:
    """The streams on which the ``direction`` side may send DATA (RFC 9113 §5.1)."""
    sending = ("open", "half_closed_server") if direction == C2S else ("open", "half_closed_client")
    return frozenset(k for k, st in states.items() if st in sending)


def _get(headers: list[list[str | None]], name: str) -> str | None:
    for n, v in headers:
        if n == name:
            return v
    return None


def _fill_request(ex: HttpExchange, headers: list[list[str | None]]) -> None:
    ex.request_headers = headers
    for n, v in headers:
        if n == ":method":
            ex.method = v
        elif n == ":path":
            ex.path = v
        elif n == ":authority":
            ex.authority = v
        elif n == ":scheme":
            ex.scheme = v
        elif n == ":protocol":
            ex.protocol = v
        elif n == "content-type":
            ex.request_content_type = v
        elif n == "host" and ex.authority is None:
            ex.authority = v


def _hpack_summary(h: HpackObserver) -> dict[str, Any]:
    return {"blocks": h.blocks, "encoded_bytes": h.encoded_bytes, "plain_bytes": h.plain_bytes,
            "savings_pct": round(100.0 * (1 - h.encoded_bytes / h.plain_bytes), 1) if h.plain_bytes else None}


_INPUT_TEXT = {
    "cH": "header block from the client", "sH": "header block from the server",
    "cD": "DATA from the client", "sD": "DATA from the server",
    "cE": "END_STREAM from the client", "sE": "END_STREAM from the server", "PP": "PUSH_PROMISE",
}
