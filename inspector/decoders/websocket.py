"""WebSocket (RFC 6455) watched from the side: frames, messages, permessage-deflate (RFC 7692).

The HTTP layer decodes the opening handshake (HTTP/1.1 ``Upgrade`` or an
RFC 8441 extended CONNECT stream) and hands the bytes that follow it to a
:class:`WebSocketDecoder`; :func:`check_handshake` verifies what the two
sides agreed on.  The decoder is layered like wsproto's frame protocol: a
frame-header parser (7/16/64-bit lengths, mask key), payload unmasking that
streams (a large frame is never held whole), and a message assembler
(continuations, incremental UTF-8 check, bounded inflate).  Protocol
violations that leave the framing intact become ``malformed`` events and
decoding goes on; a frame header that cannot be WebSocket (a reserved
opcode, a 64-bit length with its top bit set) ends that direction.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import struct
import zlib
from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from ..events import DIRECTIONS, Event, Malformed, Note, WsClose, WsFrame, WsHandshake, WsMessage, WsPong

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..flows.streamindex import Span, StreamIndex
    from .base import DecodeContext


class Opcode(IntEnum):
    """RFC 6455 §5.2 opcodes (§11.8 registry)."""

    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


OPCODE_NAMES = {int(op): op.name.lower() for op in Opcode}

#: RFC 6455 §1.3: the GUID the server appends to Sec-WebSocket-Key.
ACCEPT_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: RFC 7692 §7.2.2: the tail a sender strips from each compressed message.
_DEFLATE_TAIL = b"\x00\x00\xff\xff"

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

#: Close codes an endpoint may send (RFC 6455 §7.4.1; 1004-1006 and 1015 are never on the wire).
_SENDABLE_CLOSE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})

#: bytes of payload kept in a frame event's ``raw`` for the hex view
_RAW_PAYLOAD = 64
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
#: most bytes one zlib call may produce (keeps a single step's memory small whatever the message limit)
_INFLATE_STEP = 1 << 20
_MAX_PENDING_PINGS = 64
#: head-of-line marks kept per connection (see WebSocketDecoder.hol_marks)
_MAX_HOL_MARKS = 4096
#: runs (and message names) remembered per direction for a sender-side view of a loss (see
#: WebSocketDecoder.hol_resent): at least as many as the TCP spans the reassembler remembers for it, at
#: most twice that (lists cut in halves)
_RECENT_RUNS = 128
_MAX_RTT_SAMPLES = 10_000


def accept_key(key: str | bytes) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2 step 5.4)."""
    if isinstance(key, str):
        key = key.encode("latin-1")
    return base64.b64encode(hashlib.sha1(key.strip() + ACCEPT_GUID).digest()).decode("ascii")


# --------------------------------------------------------------------------- handshake


@dataclass(slots=True)
class DeflateParams:
    """Negotiated permessage-deflate parameters (RFC 7692 §7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_no_context_takeover": self.server_no_context_takeover,
            "client_no_context_takeover": self.client_no_context_takeover,
            "server_max_window_bits": self.server_max_window_bits,
            "client_max_window_bits": self.client_max_window_bits,
        }


@dataclass(slots=True)
class Handshake:
    """What the opening handshake settled, and what was wrong with it."""

    transport: str
    accept_ok: bool | None
    subprotocol: str | None
    extensions: list[str]
    deflate: DeflateParams | None
    problems: list[str]
    #: estimated size of one plain HTTP/1.1 request / response between the same peers
    #: (the handshake's headers without the upgrade-specific ones): the basis of the HTTP comparison
    http_request_bytes: int
    http_response_bytes: int


def _text(v: str | bytes) -> str:
    return v.decode("latin-1") if isinstance(v, (bytes, bytearray)) else v


def _collect(headers: Iterable[tuple[str | bytes, str | bytes]]) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    pairs = [(_text(n), _text(v)) for n, v in headers]
    by_name: dict[str, list[str]] = {}
    for n, v in pairs:
        by_name.setdefault(n.lower(), []).append(v)
    return pairs, by_name


def _tokens(values: list[str]) -> list[str]:
    return [t.strip().lower() for v in values for t in v.split(",") if t.strip()]


def parse_extensions(values: Iterable[str]) -> list[tuple[str, dict[str, str | None]]]:
    """Parse ``Sec-WebSocket-Extensions`` values (RFC 6455 §9.1) into (name, params) in order."""
    out: list[tuple[str, dict[str, str | None]]] = []
    for value in values:
        for item in _split_outside_quotes(value, ","):
            parts = _split_outside_quotes(item, ";")
            name = parts[0].strip().lower()
            if not name:
                continue
            params: dict[str, str | None] = {}
            for p in parts[1:]:
                k, eq, v = p.partition("=")
                k = k.strip().lower()
                if not k:
                    continue
                v = v.strip()
                if len(v) >= 2 and v[0] == v[-1] == '"':
                    v = v[1:-1]
                params[k] = v if eq else None
            out.append((name, params))
    return out


def _split_outside_quotes(s: str, sep: str) -> list[str]:
    parts, cur, quoted = [], [], False
    for ch in s:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _deflate_params(params: dict[str, str | None], problems: list[str]) -> DeflateParams:
    """RFC 7692 §7.1: the server's response parameters."""
    d = DeflateParams()
    for k, v in params.items():
        if k in ("server_no_context_takeover", "client_no_context_takeover"):
            if v is not None:
                problems.append(f"permessage-deflate: {k} takes no value")
            setattr(d, k, True)
        elif k in ("server_max_window_bits", "client_max_window_bits"):
            if v is None or not v.isdigit() or not 8 <= int(v) <= 15:
                problems.append(f"permessage-deflate: bad {k} {v!r}")
            else:
                setattr(d, k, int(v))
        else:
            problems.append(f"permessage-deflate: unknown parameter {k!r}")
    return d


#: headers that exist only because of the upgrade (left out of the HTTP cost estimate)
_UPGRADE_ONLY = ("upgrade", "connection", "sec-websocket-", ":protocol")


def _http_estimate(pairs: list[tuple[str, str]], start_line: str) -> int:
    """Bytes of an HTTP/1.1 message head with ``start_line`` and the non-upgrade headers of ``pairs``."""
    size = len(start_line) + 2 + 2
    for n, v in pairs:
        ln = n.lower()
        if ln.startswith(_UPGRADE_ONLY) or ln.startswith(":"):
            continue
        size += len(n) + 2 + len(v) + 2
    return size


def check_handshake(
    request_headers: Iterable[tuple[str | bytes, str | bytes]],
    response_headers: Iterable[tuple[str | bytes, str | bytes]],
    *,
    transport: str = "http/1.1",
) -> Handshake:
    """Check an opening handshake that succeeded (101, or 200 for RFC 8441's extended CONNECT).

    ``transport`` is "http/1.1" (RFC 6455 §4.1-4.2: Upgrade/Connection tokens,
    Sec-WebSocket-Key and its Accept, version 13) or "h2" (RFC 8441 §4-5:
    ``:protocol websocket``, no key).  Subprotocol and extensions are checked
    against what the client offered; permessage-deflate parameters are parsed.
    """
    req_pairs, req = _collect(request_headers)
    resp_pairs, resp = _collect(response_headers)
    problems: list[str] = []
    accept_ok: bool | None = None
    if transport == "h2":
        if [p.lower() for p in req.get(":protocol", [])] != ["websocket"]:
            problems.append("extended CONNECT without ':protocol: websocket'")
    else:
        if "websocket" not in _tokens(req.get("upgrade", [])):
            problems.append("request Upgrade lacks 'websocket'")
        if "upgrade" not in _tokens(req.get("connection", [])):
            problems.append("request Connection lacks 'Upgrade'")
        if "websocket" not in _tokens(resp.get("upgrade", [])):
            problems.append("response Upgrade lacks 'websocket'")
        if "upgrade" not in _tokens(resp.get("connection", [])):
            problems.append("response Connection lacks 'Upgrade'")
        keys = req.get("sec-websocket-key", [])
        accepts = resp.get("sec-websocket-accept", [])
        if len(keys) != 1:
            problems.append("request needs exactly one Sec-WebSocket-Key")
        else:
            try:
                if len(base64.b64decode(keys[0].strip(), validate=True)) != 16:
                    problems.append("Sec-WebSocket-Key is not 16 bytes of base64")
            except ValueError:
                problems.append("Sec-WebSocket-Key is not base64")
        if len(keys) == 1 and len(accepts) == 1:
            accept_ok = accepts[0].strip() == accept_key(keys[0])
            if not accept_ok:
                problems.append(f"Sec-WebSocket-Accept {accepts[0].strip()!r} != {accept_key(keys[0])!r}")
        else:
            accept_ok = False
            if len(accepts) != 1:
                problems.append("response needs exactly one Sec-WebSocket-Accept")
    if [v.strip() for v in req.get("sec-websocket-version", [])] != ["13"]:
        problems.append("request Sec-WebSocket-Version is not 13")

    offered_protocols = [t.strip() for v in req.get("sec-websocket-protocol", []) for t in v.split(",") if t.strip()]
    chosen = [t.strip() for v in resp.get("sec-websocket-protocol", []) for t in v.split(",") if t.strip()]
    subprotocol = chosen[0] if chosen else None
    if len(chosen) > 1:
        problems.append("server selected more than one subprotocol")
    if subprotocol is not None and subprotocol not in offered_protocols:
        problems.append(f"server selected subprotocol {subprotocol!r} the client did not offer")

    offered_ext = {name for name, _ in parse_extensions(req.get("sec-websocket-extensions", []))}
    accepted = parse_extensions(resp.get("sec-websocket-extensions", []))
    deflate: DeflateParams | None = None
    for name, params in accepted:
        if name not in offered_ext:
            problems.append(f"server accepted extension {name!r} the client did not offer")
        if name == "permessage-deflate":
            if deflate is not None:
                problems.append("permessage-deflate accepted twice")
            deflate = _deflate_params(params, problems)
        else:
            problems.append(f"extension {name!r} is not decoded: frames with RSV bits stay compressed/opaque")

    if transport == "h2":
        path = (req.get(":path") or ["/"])[0]
        authority = (req.get(":authority") or [""])[0]
        req_pairs = [("Host", authority), *req_pairs]
    else:
        path = "/"
    return Handshake(
        transport=transport,
        accept_ok=accept_ok,
        subprotocol=subprotocol,
        extensions=[name for name, _ in accepted],
        deflate=deflate,
        problems=problems,
        http_request_bytes=_http_estimate(req_pairs, f"GET {path} HTTP/1.1"),
        http_response_bytes=_http_estimate(resp_pairs, "HTTP/1.1 200 OK"),
    )


# --------------------------------------------------------------------------- frames and messages


def unmask(data: bytes | memoryview, mask: bytes, phase: int = 0) -> bytes:
    """XOR ``data`` with the 4-byte ``mask`` starting at mask byte ``phase`` (RFC 6455 §5.3)."""
    n = len(data)
    if not n:
        return b""
    if phase:
        mask = mask[phase:] + mask[:phase]
    # One big-integer XOR runs in C at memory speed; a per-byte Python loop would not.
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


class _Message:
    """A data message being assembled from its frames."""

    __slots__ = (
        "kind", "compressed", "frames", "wire_size", "size", "parts", "kept", "truncated",
        "utf8", "bad", "invalid", "first_frame", "start_ts", "held", "lost",
    )

    def __init__(self, kind: str, compressed: bool, first_frame: int, start_ts: float) -> None:
        self.kind = kind
        self.compressed = compressed
        self.frames = 0
        self.wire_size = 0
        self.size: int | None = 0
        self.parts: list[str] = []
        self.kept = 0
        self.truncated = False
        self.utf8 = _Utf8Decoder("strict") if kind == "text" else None
        self.bad: str | None = None  # why the content is unknown (bomb, zlib error, gap)
        self.invalid: str | None = None  # why a text message is not valid UTF-8 (its size is still known)
        self.first_frame = first_frame
        self.start_ts = start_ts
        self.held: Span | None = None  # the run of its bytes that waited longest behind missing TCP bytes
        self.lost: Span | None = None  # the run that filled that hole held some of its bytes


class _Side:
    """One direction's decoding state and counters."""

    __slots__ = (
        "dead", "pos", "hbuf",
        "in_frame", "opcode", "fin", "rsv", "masked", "mask", "length", "done", "header_len", "raw",
        "frame_start", "ctrl", "msg", "inflater", "inflate_broken", "closed", "last",
        "frames", "header_bytes", "payload_bytes", "control_bytes", "data_header_bytes", "messages", "message_bytes",
        "pings", "run_span", "run_done", "hol_frame", "recent", "names", "sent_upto",
    )

    def __init__(self) -> None:
        self.dead = False
        self.pos: int | None = None  # stream offset of the next byte expected
        self.hbuf = bytearray()  # a frame header split across feeds
        self.in_frame = False
        self.opcode = 0
        self.fin = True
        self.rsv = 0
        self.masked = False
        self.mask = b""
        self.length = 0
        self.done = 0  # payload bytes of the current frame seen so far
        self.header_len = 0
        self.raw = b""
        self.frame_start = 0
        self.ctrl = bytearray()
        self.msg: _Message | None = None
        self.inflater: Any = None
        self.inflate_broken: str | None = None
        self.closed = False  # this side sent a close frame
        self.last: tuple[int, float] = (0, 0.0)  # frame and time of the last bytes fed
        self.frames = 0
        self.header_bytes = 0
        self.payload_bytes = 0
        self.control_bytes = 0
        self.data_header_bytes = 0
        self.messages = 0
        self.message_bytes = 0
        # pings this side sent and the other side has not answered: (payload, frame, ts)
        self.pings: deque[tuple[bytes, int, float]] = deque(maxlen=_MAX_PENDING_PINGS)
        # head-of-line marks: the previous run's span, the messages completed in it, the last held frame
        self.run_span: Span | None = None
        self.run_done: list[tuple[str, str]] = []
        self.hol_frame = 0
        # for hol_resent: (span, first, last message number with bytes in it) per run fed, the
        # (number, key, unit) of the messages completed last, and the stream offset of the last run noted
        self.recent: list[tuple[Span, int, int]] = []
        self.names: list[tuple[int, str, str]] = []
        self.sent_upto = -1


def _keep(recent: list[Any], item: Any) -> None:
    """Append to a list of recent items that keeps the last _RECENT_RUNS to 2 * _RECENT_RUNS."""
    recent.append(item)
    if len(recent) > 2 * _RECENT_RUNS:
        del recent[:_RECENT_RUNS]


def _size(n: int) -> str:
    return f"{n} B" if n < 1000 else f"{n / 1000:.1f} KB"


def _where(index: StreamIndex, offset: int) -> tuple[int, float]:
    try:
        span = index.locate(offset)
    except LookupError:
        return 0, 0.0
    return span.frame, span.delivered


class WebSocketDecoder:
    """Decode the WebSocket frames of both directions after the opening handshake.

    ``handshake`` (from :func:`check_handshake`) says whether permessage-deflate
    was negotiated and with which parameters; without it (handshake not seen)
    a frame with RSV1 is still inflated with RFC 7692's defaults.  Inflated
    messages stop at ``max_message`` bytes (a compression bomb is reported,
    not expanded); text kept for export stops at ``max_text`` characters.
    """

    def __init__(
        self,
        ctx: DecodeContext,
        handshake: Handshake | None = None,
        *,
        max_message: int = 64 << 20,
        max_text: int = 1 << 20,
    ) -> None:
        self.ctx = ctx
        self.handshake = handshake
        self.max_message = max_message
        self.max_text = max_text
        self._sides = (_Side(), _Side())
        self._pending: list[Event] = []
        self._close: dict[str, Any] | None = None
        self._rtts: list[dict[str, Any]] = []
        self._unanswered_pongs = 0
        self._opened = False
        self._held: Span | None = None  # the run being fed, when it waited behind missing TCP bytes
        #: (key, unit, direction, frame, ts, arrival) head-of-line marks, see hol_marks
        self._hol: list[tuple[str, str, int, int, float, float]] = []
        #: (direction, message number, frame, ts, arrival) of runs sent before a retransmission (see
        #: hol_resent), and the names of those messages ((direction, number) -> (key, unit)) once known
        self._sent: list[tuple[int, int, int, float, float]] = []
        self._sent_names: dict[tuple[int, int], tuple[str, str]] = {}
        self._sent_unnamed: set[tuple[int, int]] = set()  # noted while still in progress
        if handshake is not None:
            hs = handshake
            self._pending.append(WsHandshake(
                frame=0, ts=0.0, conn=ctx.conn, transport=hs.transport, accept_ok=hs.accept_ok,
                subprotocol=hs.subprotocol, extensions=list(hs.extensions),
                deflate=hs.deflate.as_dict() if hs.deflate else None, problems=list(hs.problems)))
            for problem in hs.problems:
                self._pending.append(Note(frame=0, ts=0.0, conn=ctx.conn, layer="websocket",
                                          severity="warning", message=f"handshake: {problem}"))

    #: the pipeline names malformed events after this
    layer = "websocket"

    # ------------------------------------------------------------------ StreamDecoder

    def opened(self, frame: int, ts: float) -> list[Event]:
        """The handshake's events, placed at the response that completed it (the HTTP layer calls this).

        If it is never called, they come out with the first WebSocket bytes instead.
        """
        self._opened = True
        out, self._pending = self._pending, []
        for ev in out:
            ev.frame, ev.ts = frame, ts
        return out

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        """Decode the next in-order bytes of ``direction``."""
        out: list[Event] = []
        if not self._opened:
            out = self.opened(*_where(index, offset))
        side = self._sides[direction]
        if side.dead or not data:
            return out
        self._runs(side, direction, offset + len(data), index)
        first = side.messages + 1  # the number of the message in progress, or of the next one
        if side.pos is None:
            side.pos = offset
        elif offset != side.pos:
            out.extend(self.gap(direction, side.pos, offset - side.pos, index))
            if side.dead:
                return out
            side.pos = offset
        mv = memoryview(data)
        p, n = 0, len(data)
        while p < n:
            if not side.in_frame:
                used = self._header(side, direction, mv, p, index, out)
                if used < 0:  # incomplete header: buffered
                    break
                p += used
                if side.dead:
                    break
                if side.length == 0:
                    self._frame_done(side, direction, index, out)
                continue
            take = min(side.length - side.done, n - p)
            chunk = mv[p:p + take]
            if side.done == 0:
                side.raw += bytes(chunk[:_RAW_PAYLOAD])
            if side.masked:
                chunk = unmask(chunk, side.mask, side.done & 3)
            side.done += take
            side.pos += take
            p += take
            if side.opcode >= 8:
                if len(side.ctrl) < 4096:
                    side.ctrl += chunk[: 4096 - len(side.ctrl)]
            elif side.msg is not None:
                self._payload(side, direction, chunk, index, out)
            if side.done == side.length:
                self._frame_done(side, direction, index, out)
        side.last = _where(index, offset + n - 1)
        last = side.messages + (side.msg is not None)
        if last >= first and side.run_span is not None:  # the run carried message bytes (not only control frames)
            _keep(side.recent, (side.run_span, first, last))
        index.release(side.pos - len(side.hbuf))
        return out

    def hol_resent(self, direction: int, since: int, frame: int, ts: float) -> None:
        """TCP sent again (in ``frame``) bytes it first sent in frame ``since``: a sender's view of a loss.
        The receiver could use nothing sent from then on before the retransmission arrived: note each
        message with bytes in a run fed from frame ``since`` on, with when that run was sent (the
        pipeline calls this at retransmissions only; see :meth:`hol_sent_marks`)."""
        side = self._sides[direction]
        names = {no: (key, unit) for no, key, unit in side.names}
        upto = side.sent_upto
        for span, first, last in side.recent:
            f = span.frame
            if f < since or span.start <= upto:
                continue
            upto = span.start
            for no in range(first, last + 1):
                if len(self._sent) >= _MAX_HOL_MARKS:
                    break
                self._sent.append((direction, no, f, span.delivered, span.arrival))
                if no in names:
                    self._sent_names[(direction, no)] = names[no]
                else:
                    self._sent_unnamed.add((direction, no))
        side.sent_upto = upto

    def hol_sent_marks(self) -> list[tuple[str, str, int, int, float, float]]:
        """Marks like :meth:`hol_marks` for the messages with bytes sent between a lost segment's original
        and its retransmission, each at the time that run was sent (see :meth:`hol_resent`)."""
        out = []
        for d, no, frame, ts, arrival in self._sent:
            key, unit = self._sent_names.get((d, no)) or (f"ws:{d}:{no}", f"ws message #{no} {DIRECTIONS[d]} (incomplete)")
            out.append((key, unit, d, frame, ts, arrival))
        return out

    def hol_marks(self) -> list[tuple[str, str, int, int, float, float]]:
        """Head-of-line marks (see :mod:`inspector.analysis.units`): each message some of whose bytes
        were delivered later than they arrived (held behind missing TCP bytes), with its longest wait,
        and each message with bytes in the run that filled the hole (the messages whose bytes were lost,
        delivered as they arrived)."""
        return list(self._hol)

    def _runs(self, side: _Side, direction: int, end: int, index: StreamIndex) -> None:
        """Head-of-line bookkeeping per run fed: whether it waited, and whether the run before it
        (completed by the same frame without waiting) filled the hole it waited behind."""
        span = index.last
        held = span if span is not None and span.end == end and span.delivered > span.arrival else None
        if held is not None and side.hol_frame != held.frame:
            side.hol_frame = held.frame
            prev = side.run_span
            if prev is not None and prev.frame == held.frame and prev.delivered <= prev.arrival:
                for key, unit in side.run_done:
                    self._mark(key, unit, direction, prev)
                if side.msg is not None:
                    side.msg.lost = prev
        self._held = held
        side.run_span = span
        if side.run_done:
            side.run_done = []

    def _mark(self, key: str, unit: str, direction: int, span: Span) -> None:
        if len(self._hol) < _MAX_HOL_MARKS:
            self._hol.append((key, unit, direction, span.frame, span.delivered, span.arrival))

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        """Missing bytes: skipped if they fall inside a frame's payload, else this direction stops."""
        side = self._sides[direction]
        if side.dead or length <= 0:
            return []
        frame, ts = _where(index, offset)
        name = DIRECTIONS[direction]
        if side.pos is None:
            side.pos = offset
        if side.in_frame and not side.hbuf and length <= side.length - side.done:
            side.done += length
            side.pos += length
            msg = side.msg
            if side.opcode < 8 and msg is not None and msg.bad is None:
                msg.bad = f"{length} bytes missing from the capture"
                if msg.compressed:
                    self._lose_context(side)
            ev = [Note(frame=frame, ts=ts, conn=self.ctx.conn, layer="websocket", severity="warning",
                       direction=name, message=f"{length} payload bytes missing from the capture; message incomplete")]
            if side.done == side.length:
                self._frame_done(side, direction, index, ev)
            return ev
        side.dead = True
        return [Note(frame=frame, ts=ts, conn=self.ctx.conn, layer="websocket", severity="warning", direction=name,
                     message=f"{length} bytes missing from the capture at a frame boundary: framing lost, "
                             f"{name} not decoded further")]

    def finish(self) -> list[Event]:
        """Say what the capture cut off: a frame or message in flight."""
        out, self._pending = self._pending, []  # a handshake with no bytes after it
        for d, side in enumerate(self._sides):
            if side.dead:
                continue
            frame, ts = side.last  # the last bytes seen in that direction
            if side.in_frame or side.hbuf:
                out.append(Note(frame=frame, ts=ts, conn=self.ctx.conn, layer="websocket", severity="note",
                                direction=DIRECTIONS[d], message="capture ended inside a frame"))
            elif side.msg is not None:
                out.append(Note(frame=frame, ts=ts, conn=self.ctx.conn, layer="websocket", severity="note",
                                direction=DIRECTIONS[d], message="capture ended inside a fragmented message"))
        return out

    def summary(self) -> dict[str, Any]:
        """``app`` "websocket" with messages, ping round trips, close and overhead per direction."""
        hs = self.handshake
        ws: dict[str, Any] = {
            "transport": hs.transport if hs else None,
            "accept_ok": hs.accept_ok if hs else None,
            "subprotocol": hs.subprotocol if hs else None,
            "extensions": list(hs.extensions) if hs else [],
            "deflate": hs.deflate.as_dict() if hs and hs.deflate else None,
            "messages": {DIRECTIONS[d]: s.messages for d, s in enumerate(self._sides)},
            "frames": {DIRECTIONS[d]: s.frames for d, s in enumerate(self._sides)},
            "pings": list(self._rtts),
            "unsolicited_pongs": self._unanswered_pongs,
            "close": dict(self._close) if self._close else None,
            "overhead": self._overhead(),
        }
        return {"app": "websocket", "websocket": ws}

    # ------------------------------------------------------------------ internals

    def _overhead(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for d, s in enumerate(self._sides):
            wire = s.header_bytes + s.payload_bytes
            out[DIRECTIONS[d]] = {
                "frames": s.frames,
                "header_bytes": s.header_bytes,
                "payload_bytes": s.payload_bytes,
                "control_bytes": s.control_bytes,
                "message_bytes": s.message_bytes,
                "framing_pct": round(100.0 * s.header_bytes / wire, 2) if wire else None,
            }
        hs = self.handshake
        if hs is not None:
            per = hs.http_request_bytes + hs.http_response_bytes
            http: dict[str, Any] = {
                "basis": "each message as one HTTP/1.1 request and response carrying the handshake's "
                         "headers without the upgrade-specific ones",
                "request_head_bytes": hs.http_request_bytes,
                "response_head_bytes": hs.http_response_bytes,
            }
            for d, s in enumerate(self._sides):
                http[DIRECTIONS[d]] = {
                    "messages": s.messages,
                    "websocket_framing_bytes": s.data_header_bytes,  # the data frames' headers
                    "http_head_bytes": s.messages * per,
                }
            out["http_equivalent"] = http
        return out

    def _header(self, side: _Side, direction: int, mv: memoryview, p: int, index: StreamIndex,
                out: list[Event]) -> int:
        """Parse a frame header at ``mv[p:]`` (after any buffered part); bytes used, or -1 if incomplete."""
        held = len(side.hbuf)
        h = bytes(side.hbuf) + bytes(mv[p:p + 14 - held]) if held else mv[p:p + 14]
        if len(h) < 2:
            side.hbuf += mv[p:]
            side.pos += len(mv) - p
            return -1
        b0, b1 = h[0], h[1]
        masked = b1 >> 7
        length = b1 & 0x7F
        need = 2 + (2 if length == 126 else 8 if length == 127 else 0) + (4 if masked else 0)
        if len(h) < need:
            side.hbuf += mv[p:]
            side.pos += len(mv) - p
            return -1
        side.frame_start = side.pos - held
        used = need - held
        side.pos += used
        side.hbuf.clear()
        if length == 126:
            length = _U16.unpack_from(h, 2)[0]
            minimal = length > 125
        elif length == 127:
            length = _U64.unpack_from(h, 2)[0]
            minimal = length > 0xFFFF
            if length >> 63:
                self._fatal(side, direction, index, out, "64-bit payload length with its most significant bit set")
                return used
        else:
            minimal = True
        opcode = b0 & 0x0F
        side.in_frame = True
        side.opcode = opcode
        side.fin = bool(b0 >> 7)
        side.rsv = (b0 >> 4) & 7
        side.masked = bool(masked)
        side.mask = bytes(h[need - 4:need]) if masked else b""
        side.length = length
        side.done = 0
        side.header_len = need
        side.raw = bytes(h[:need])
        side.ctrl.clear()
        if opcode not in OPCODE_NAMES:
            self._fatal(side, direction, index, out, f"reserved opcode 0x{opcode:x}")
            return used
        problems = []
        if not minimal:
            problems.append(f"payload length {length} not in its minimal encoding (RFC 6455 §5.2)")
        if bool(masked) != (direction == 0):
            problems.append("client frame not masked (RFC 6455 §5.3)" if direction == 0
                            else "server frame masked (RFC 6455 §5.1)")
        if opcode >= 8:
            if not side.fin:
                problems.append("fragmented control frame (RFC 6455 §5.5)")
            if length > 125:
                problems.append(f"control frame payload {length} > 125 bytes (RFC 6455 §5.5)")
            if side.rsv:
                problems.append("RSV bits on a control frame")
        else:
            self._data_header(side, direction, index, problems)
        if problems:
            frame, ts = _where(index, side.pos - 1)
            for reason in problems:
                out.append(Malformed(frame=frame, ts=ts, conn=self.ctx.conn, layer="websocket",
                                     direction=DIRECTIONS[direction], reason=reason))
        return used

    def _data_header(self, side: _Side, direction: int, index: StreamIndex, problems: list[str]) -> None:
        """Start or continue a message for a data frame's header."""
        hs = self.handshake
        deflate_ok = hs is None or hs.deflate is not None
        rsv = side.rsv
        if side.opcode == Opcode.CONTINUATION:
            if side.msg is None:
                problems.append("continuation frame without a message to continue (RFC 6455 §5.4)")
            if rsv:
                problems.append(f"RSV bits 0x{rsv:x} on a continuation frame")
        else:
            if side.msg is not None:
                problems.append("new data frame while a fragmented message is unfinished (RFC 6455 §5.4)")
                side.msg = None
            if rsv & 3:
                problems.append(f"RSV2/RSV3 set (0x{rsv:x}) without an extension defining them")
            compressed = bool(rsv & 4)
            if compressed and not deflate_ok:
                problems.append("RSV1 set but permessage-deflate was not negotiated")
                compressed = False
            frame, ts = _where(index, side.frame_start)
            side.msg = _Message("text" if side.opcode == Opcode.TEXT else "binary", compressed, frame, ts)
            # a message that ended with a final deflate block ended the stream: a new one starts
            # (RFC 7692 §7.2.3.4)
            if compressed and side.inflate_broken is None and (side.inflater is None or side.inflater.eof):
                side.inflater = self._new_inflater(direction)
        if side.msg is not None:
            side.msg.frames += 1
            side.msg.wire_size += side.length

    def _new_inflater(self, direction: int) -> Any:
        d = self.handshake.deflate if self.handshake and self.handshake.deflate else DeflateParams()
        bits = d.client_max_window_bits if direction == 0 else d.server_max_window_bits
        # zlib refuses a raw window of 8 bits for deflate and widens it to 9; inflate with at least 9 too
        return zlib.decompressobj(wbits=-max(bits, 9))

    def _no_takeover(self, direction: int) -> bool:
        d = self.handshake.deflate if self.handshake and self.handshake.deflate else None
        if d is None:
            return False
        return d.client_no_context_takeover if direction == 0 else d.server_no_context_takeover

    def _lose_context(self, side: _Side, why: str = "") -> None:
        side.inflater = None
        if not self._no_takeover(self._sides.index(side)):
            side.inflate_broken = why or "a compressed message was not fully decompressed"

    def _payload(self, side: _Side, direction: int, chunk: bytes | memoryview, index: StreamIndex,
                 out: list[Event]) -> None:
        msg = side.msg
        assert msg is not None
        held = self._held
        if held is not None and (msg.held is None or held.delivered - held.arrival > msg.held.delivered - msg.held.arrival):
            msg.held = held
        if msg.bad is not None:
            return
        if not msg.compressed:
            self._content(msg, chunk)
            return
        self._inflate(side, msg, chunk)

    def _inflate(self, side: _Side, msg: _Message, chunk: bytes | memoryview) -> None:
        if side.inflate_broken is not None:
            msg.bad = f"cannot decompress: {side.inflate_broken}"
            return
        d = side.inflater
        if d.eof:  # bytes after a final block (the stripped empty block's remains) carry nothing
            return
        # Inflate in bounded steps: neither a step nor the message may exceed its limit.
        data = chunk
        while True:
            step = min(self.max_message - (msg.size or 0), _INFLATE_STEP)
            if step <= 0:
                msg.bad = f"decompression bomb: message inflates to the {self.max_message}-byte limit"
                self._lose_context(side, "an earlier message was a decompression bomb")
                return
            try:
                out = d.decompress(data, step)
            except zlib.error as exc:
                msg.bad = f"permessage-deflate: {exc}"
                self._lose_context(side, f"zlib error in an earlier message ({exc})")
                return
            self._content(msg, out)
            data = d.unconsumed_tail
            if not data and len(out) < step:
                return

    def _content(self, msg: _Message, data: bytes | memoryview) -> None:
        msg.size = (msg.size or 0) + len(data)
        if msg.utf8 is not None:
            try:
                text = msg.utf8.decode(data)
            except UnicodeDecodeError as exc:
                msg.utf8 = None
                msg.invalid = f"invalid UTF-8 in text message ({exc.reason})"
                msg.parts = []
                return
            room = self.max_text - msg.kept
            if room > 0 and text:
                piece = text[:room]
                msg.parts.append(piece)
                msg.kept += len(piece)
            if len(text) > max(room, 0):
                msg.truncated = True

    def _frame_done(self, side: _Side, direction: int, index: StreamIndex, out: list[Event]) -> None:
        last = side.frame_start + side.header_len + side.length - 1
        frame, ts = _where(index, last)
        name = DIRECTIONS[direction]
        conn = self.ctx.conn
        opcode = side.opcode
        side.in_frame = False
        side.frames += 1
        side.header_bytes += side.header_len
        side.payload_bytes += side.length
        if opcode >= 8:
            common = dict(frame=frame, ts=ts, conn=conn, type=OPCODE_NAMES[opcode], direction=name, opcode=opcode,
                          fin=side.fin, rsv=side.rsv, masked=side.masked, payload_len=side.length,
                          header_len=side.header_len, raw=side.raw)
            side.control_bytes += side.header_len + side.length
            payload = bytes(side.ctrl)
            if opcode == Opcode.CLOSE:
                out.append(self._close_frame(direction, payload, common, out))
                side.closed = True
            elif opcode == Opcode.PING:
                side.pings.append((payload, frame, ts))
                out.append(WsFrame(**common))
            else:
                out.append(self._pong(direction, payload, common))
            return
        side.data_header_bytes += side.header_len
        out.append(WsFrame(frame=frame, ts=ts, conn=conn, type=OPCODE_NAMES[opcode], direction=name, opcode=opcode,
                           fin=side.fin, rsv=side.rsv, masked=side.masked, payload_len=side.length,
                           header_len=side.header_len, raw=side.raw))
        if side.closed:
            out.append(Malformed(frame=frame, ts=ts, conn=conn, layer="websocket", direction=name,
                                 reason="data frame after this side sent close (RFC 6455 §5.5.1)"))
        msg = side.msg
        if msg is None or not side.fin:
            return
        side.msg = None
        if msg.compressed and msg.bad is None:
            self._inflate(side, msg, _DEFLATE_TAIL)
            if self._no_takeover(direction):
                side.inflater = None
        if msg.utf8 is not None and msg.bad is None:
            try:
                msg.utf8.decode(b"", True)
            except UnicodeDecodeError as exc:
                msg.invalid = f"invalid UTF-8 in text message ({exc.reason})"
        problem = msg.bad or msg.invalid
        if problem is not None:
            out.append(Malformed(frame=frame, ts=ts, conn=conn, layer="websocket", direction=name, reason=problem))
        known = msg.bad is None
        side.messages += 1
        if known and msg.size is not None:
            side.message_bytes += msg.size
        size = _size(msg.size) if known and msg.size is not None else "size unknown"
        key, unit = f"ws:{direction}:{side.messages}", f"ws message #{side.messages} {name} ({msg.kind}, {size})"
        if msg.lost is not None or msg.held is not None:
            self._mark(key, unit, direction, msg.lost or msg.held)
        side.run_done.append((key, unit))
        _keep(side.names, (side.messages, key, unit))
        if self._sent_unnamed and (direction, side.messages) in self._sent_unnamed:
            self._sent_unnamed.discard((direction, side.messages))
            self._sent_names[(direction, side.messages)] = (key, unit)  # noted by hol_resent while in progress
        out.append(WsMessage(
            frame=frame, ts=ts, conn=conn, direction=name, kind=msg.kind,
            size=msg.size if known else None,
            text="".join(msg.parts) if msg.kind == "text" and problem is None else None,
            truncated=msg.truncated, wire_size=msg.wire_size, frames=msg.frames, compressed=msg.compressed,
            first_frame=msg.first_frame, start_ts=msg.start_ts,
        ))

    def _close_frame(self, direction: int, payload: bytes, common: dict[str, Any], out: list[Event]) -> WsClose:
        """RFC 6455 §5.5.1 / §7.4: code and reason; the first close starts the closing handshake."""
        code: int | None = None
        reason = ""
        problems = []
        if len(payload) == 1:
            problems.append("close payload of 1 byte (RFC 6455 §5.5.1)")
        elif len(payload) >= 2:
            code = _U16.unpack_from(payload)[0]
            if not (code in _SENDABLE_CLOSE or 3000 <= code <= 4999):
                problems.append(f"close code {code} may not be sent (RFC 6455 §7.4)")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                reason = payload[2:].decode("utf-8", "replace")
                problems.append("close reason is not UTF-8 (RFC 6455 §5.5.1)")
        for p in problems:
            out.append(Malformed(frame=common["frame"], ts=common["ts"], conn=self.ctx.conn, layer="websocket",
                                 direction=common["direction"], reason=p))
        who = ("client", "server")[direction]
        initiator = self._close is None
        if initiator:
            self._close = {"by": who, "code": code, "reason": reason, "frame": common["frame"], "ts": common["ts"],
                           "reply_code": None, "reply_frame": None, "closing_ms": None}
        elif self._close["by"] != who and self._close["reply_frame"] is None:
            self._close["reply_code"] = code
            self._close["reply_frame"] = common["frame"]
            self._close["closing_ms"] = round((common["ts"] - self._close["ts"]) * 1000.0, 3)
        return WsClose(**common, code=code, reason=reason, initiator=initiator)

    def _pong(self, direction: int, payload: bytes, common: dict[str, Any]) -> WsPong:
        """Match a pong with the other side's oldest unanswered ping of the same payload."""
        pings = self._sides[1 - direction].pings
        for i, (data, frame, ts) in enumerate(pings):
            if data == payload:
                del pings[i]
                rtt = round((common["ts"] - ts) * 1000.0, 3)
                if len(self._rtts) < _MAX_RTT_SAMPLES:
                    self._rtts.append({"from": ("client", "server")[1 - direction], "ping_frame": frame,
                                       "pong_frame": common["frame"], "rtt_ms": rtt})
                return WsPong(**common, rtt_ms=rtt, ping_frame=frame)
        self._unanswered_pongs += 1
        return WsPong(**common, rtt_ms=None, ping_frame=None)

    def _fatal(self, side: _Side, direction: int, index: StreamIndex, out: list[Event], reason: str) -> None:
        frame, ts = _where(index, side.pos - 1)
        side.dead = True
        side.in_frame = False
        out.append(Malformed(frame=frame, ts=ts, conn=self.ctx.conn, layer="websocket",
                             direction=DIRECTIONS[direction], reason=f"{reason}: framing lost"))


def upgrade_factory(
    ctx: DecodeContext, protocol: str, request_headers: list[list[Any]], response_headers: list[list[Any]]
) -> WebSocketDecoder | None:
    """The HTTP decoders' ``upgrade_factory`` hook: a checked WebSocket decoder for a "websocket" switch.

    Over HTTP/2 (RFC 8441) the request has a ``:protocol`` pseudo-header; over
    HTTP/1.1 it is an ``Upgrade: websocket`` answered by 101.
    """
    if protocol != "websocket":
        return None
    h2 = any(n == ":protocol" for n, _ in request_headers)
    return WebSocketDecoder(ctx, check_handshake(
        [(n, v or "") for n, v in request_headers], [(n, v or "") for n, v in response_headers],
        transport="h2" if h2 else "http/1.1"))
