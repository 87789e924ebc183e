"""What the UI shows, kept apart from how it is drawn (no Textual here).

A :class:`CaptureModel` wraps one :class:`~inspector.pipeline.Pipeline`: a
source (file, live socket, memory) feeds it frames in a worker thread, and it
files every event under its connection and turns each connection's
``summary --json`` record into a :class:`ConnRow` (stack, names, setup cost,
badges).  The UI thread only reads: lists are append-only and rows are
replaced whole, so reads need no lock under the GIL.  Everything here can be
printed without a terminal (see the UI tests).
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from inspector.events import Event, Http2Frame, TcpSegment, TlsApplicationData
from inspector.keylog import KeyLog

Packet = tuple[float, int, bytes, int]

#: Event types that go to the annotation panel as they are (expert notes and analysis results).
ANNOTATION_TYPES = frozenset({"note", "malformed", "loss", "flow_control_stall", "gap", "hol", "ledger"})
#: Layers whose every event is an annotation (RTT ledger and HOL analysis, issue 7).
ANNOTATION_LAYERS = frozenset({"analysis", "hol", "ledger"})
#: TCP analysis flags worth an annotation each (dup ACKs and window updates are left to the timeline).
TCP_NOTABLE = frozenset({"lost_segment", "retransmission", "fast_retransmission", "spurious_retransmission",
                         "out_of_order", "zero_window", "reused_ports", "ack_lost_segment"})
#: At most this many annotations are kept per connection (a very lossy capture has thousands).
MAX_ANNOTATIONS = 5000
#: Frame bytes kept in memory for the hex view when they cannot be read back from the file
#: (pcapng, gzip, live): frames past this budget show no bytes.
FRAME_BYTES_BUDGET = 64 << 20
#: Unit bytes (``raw``: decrypted HTTP/2 frames...) kept for the compactly stored events of a
#: capture; past it the hex view shows the unit's frame instead.
RAW_BYTES_BUDGET = 32 << 20
#: A row's summary record keeps this many requests (a connection can carry 500,000); the
#: connection filter asks for the whole record (:meth:`CaptureModel.full_summary`).
ROW_REQUESTS = 1000

APP_LABELS = {
    "http/1.1": "HTTP/1.1", "http/1.0": "HTTP/1.0", "h2": "h2", "h2c": "h2c", "h3": "h3",
    "grpc": "h2 › gRPC", "dns": "DNS", "quic": "", "tls": "", "tcp": "", "udp": "",
}


@dataclass(slots=True)
class ConnRow:
    """One line of the connection list, derived from the connection's summary record."""

    id: int
    summary: dict[str, Any]
    stack: str
    client: str
    server: str
    name: str  #: SNI, else the first request's authority, else the DNS name asked
    alpn: str
    start: float
    duration_ms: float
    packets: int
    bytes: int
    requests: int | None
    setup: str  #: round trips before data, per layer: "1+1" is TCP 1 + TLS 1
    setup_rtts: int | None
    rtt_ms: float | None
    badges: list[tuple[str, str]] = field(default_factory=list)  #: (text, severity)
    annotations: int = 0

    def sort_key(self, column: str) -> Any:
        value = getattr(self, column, None)
        if column == "badges":
            return len(self.badges)
        if value is None:
            return (1, 0)
        return (0, value)


def stack_label(s: dict[str, Any]) -> str:
    """"TCP › TLS 1.3 › h2", "UDP › QUIC › h3", "TCP › HTTP/1.1 › WebSocket"..."""
    parts = [str(s.get("transport", "")).upper()]
    tls = s.get("tls")
    if isinstance(tls, dict):
        parts.append(f"TLS {tls['version']}" if tls.get("version") else "TLS")
    quic = s.get("quic")
    if isinstance(quic, dict):
        parts.append("QUIC")
    app = str(s.get("app") or "")
    if app == "websocket":
        parts.append("h2 › WebSocket" if "http2" in s and "http1" not in s else "HTTP/1.1 › WebSocket")
    else:
        label = APP_LABELS.get(app, app)
        if label:
            parts.append(label)
    if s.get("sse"):
        parts.append("SSE")
    return " › ".join(p for p in parts if p)


def _name(s: dict[str, Any]) -> str:
    for key in ("tls", "quic"):
        sub = s.get(key)
        if isinstance(sub, dict) and sub.get("sni"):
            return str(sub["sni"])
    for req in s.get("requests") or ():
        if req.get("authority"):
            return str(req["authority"])
    dns = s.get("dns")
    if isinstance(dns, dict):
        for lookup in dns.get("lookups") or ():
            if lookup.get("qname"):
                return str(lookup["qname"])
    look = s.get("dns_lookup")
    if isinstance(look, dict):
        return str(look.get("qname") or look.get("name") or "")
    return ""


def _alpn(s: dict[str, Any]) -> str:
    for key in ("tls", "quic"):
        sub = s.get(key)
        if isinstance(sub, dict) and sub.get("alpn"):
            alpn = sub["alpn"]
            return ",".join(alpn) if isinstance(alpn, list) else str(alpn)
    return ""


def _requests(s: dict[str, Any]) -> int | None:
    if s.get("requests"):
        return s.get("requests_total") or len(s["requests"])
    ws = s.get("websocket")
    if isinstance(ws, dict) and isinstance(ws.get("messages"), dict):
        return sum(v for v in ws["messages"].values() if isinstance(v, int))
    dns = s.get("dns")
    if isinstance(dns, dict) and isinstance(dns.get("queries"), int):
        return dns["queries"]
    return None


def setup_cost(s: dict[str, Any]) -> tuple[str, int | None]:
    """Round trips spent setting up before application data: ("1+1", 2) for TCP + TLS 1.3."""
    ledger = s.get("ledger")
    if isinstance(ledger, list) and ledger:
        # the RTT ledger (inspector.analysis): every step before the first request
        steps = [st.get("rtts") for st in ledger if isinstance(st, dict) and st.get("step") != "request"]
        steps = [x for x in steps if isinstance(x, (int, float))]
        if steps:
            return "+".join(f"{x:g}" for x in steps), sum(steps)
    parts: list[int] = []
    tcp = s.get("tcp")
    if isinstance(tcp, dict) and tcp.get("handshake") == "complete":
        parts.append(1)
    tls = s.get("tls")
    if isinstance(tls, dict) and isinstance(tls.get("handshake_rtts"), int):
        parts.append(tls["handshake_rtts"])
    quic = s.get("quic")
    if isinstance(quic, dict) and isinstance(quic.get("handshake_rtts"), int):
        parts.append(quic["handshake_rtts"])
    if not parts:
        return "", None
    return "+".join(str(p) for p in parts), sum(parts)


def badges(s: dict[str, Any], hol: bool = False) -> list[tuple[str, str]]:
    """Short markers of what went wrong (or notably right) on a connection, with a severity."""
    out: list[tuple[str, str]] = []
    if hol or s.get("hol"):
        out.append(("HOL", "error"))
    tcp = s.get("tcp")
    if isinstance(tcp, dict):
        analysis = tcp.get("analysis") or {}
        if analysis.get("lost_segment"):
            out.append((f"L{analysis['lost_segment']}", "error"))
        if tcp.get("retransmissions"):
            out.append((f"R{tcp['retransmissions']}", "warning"))
        if tcp.get("gaps"):
            out.append((f"gap{tcp['gaps']}", "error"))
        if analysis.get("zero_window"):
            out.append(("ZW", "warning"))
        if tcp.get("closed_by") == "reset":
            out.append(("RST", "warning"))
    quic = s.get("quic")
    if isinstance(quic, dict):
        if quic.get("lost_packets"):
            out.append((f"L{quic['lost_packets']}", "error"))
        if quic.get("decrypted") is False:
            out.append(("nokey", "warning"))
        if quic.get("zero_rtt") == "accepted":
            out.append(("0-RTT", "good"))
    h2 = s.get("http2")
    if isinstance(h2, dict) and h2.get("flow_control_stalls"):
        out.append(("FC", "warning"))
    tls = s.get("tls")
    if isinstance(tls, dict):
        dec = tls.get("decryption")
        if dec and dec not in ("decrypted", "no encrypted records"):
            out.append(("nokey" if dec != "partial" else "partkey", "warning"))
        alerts = [a for a in tls.get("alerts") or () if "close_notify" not in str(a)]
        if alerts:
            out.append(("alert", "error"))
        if tls.get("resumed"):
            out.append(("resumed", "good"))
        if tls.get("early_data") == "accepted":
            out.append(("0-RTT", "good"))
    if s.get("malformed"):
        out.append((f"M{s['malformed']}", "error"))
    return out


def make_row(s: dict[str, Any], annotations: int = 0, hol: bool = False) -> ConnRow:
    setup, rtts = setup_cost(s)
    tcp = s.get("tcp") if isinstance(s.get("tcp"), dict) else {}
    quic = s.get("quic") if isinstance(s.get("quic"), dict) else {}
    rtt = tcp.get("irtt_ms") if tcp else None
    if rtt is None and quic:
        rtt = quic.get("rtt_ms")
    return ConnRow(
        id=s["id"], summary=s, stack=stack_label(s), client=s.get("client", ""), server=s.get("server", ""),
        name=_name(s), alpn=_alpn(s), start=s.get("start") or 0.0, duration_ms=s.get("duration_ms") or 0.0,
        packets=s.get("packets", 0), bytes=s.get("bytes", 0), requests=_requests(s), setup=setup,
        setup_rtts=rtts, rtt_ms=rtt, badges=badges(s, hol), annotations=annotations,
    )


def is_annotation(e: Event) -> bool:
    """Does this event belong in the annotation panel?"""
    if e.type in ANNOTATION_TYPES or e.layer in ANNOTATION_LAYERS:
        return True
    analysis = getattr(e, "analysis", None)
    return bool(analysis) and not TCP_NOTABLE.isdisjoint(analysis)


def is_hol(e: Event) -> bool:
    return e.layer == "hol" or "hol" in e.type.lower().split("_")


# --------------------------------------------------------------------------- compact event storage

_NAN = float("nan")
_OBJ, _SEG, _APP, _H2 = 0, 1, 2, 3


class _Interner:
    """Small tuples of repeated values (direction, flags, analysis names...) as 16-bit codes."""

    __slots__ = ("codes", "values")

    def __init__(self) -> None:
        self.codes: dict[tuple[Any, ...], int] = {}
        self.values: list[tuple[Any, ...]] = []

    def code(self, value: tuple[Any, ...]) -> int:
        c = self.codes.get(value)
        if c is None:
            c = len(self.values)
            if c > 0xFFFF:
                raise OverflowError("too many distinct values")  # the event is kept as an object
            self.values.append(value)
            self.codes[value] = c
        return c


class EventLog(Sequence[Event]):
    """One connection's events, in order, in a few bytes each.

    A million-packet capture makes millions of events; as objects they take
    ~300 bytes each.  The three that come by the million (TCP segments, TLS
    application-data records and HTTP/2 frames) are kept here as columns of
    machine numbers (``array``) and small interned tuples, and are rebuilt as
    equal event objects when read (``log[i]``); every other event is kept as
    it is.  ``raw`` bytes of the compact ones are kept while the model's
    :data:`RAW_BYTES_BUDGET` lasts.  Appends (the worker) and reads (the UI)
    need no lock: an event is visible once its entry in ``_ref`` exists,
    written after its columns, and reordering swaps ``_ref`` whole.
    """

    def __init__(self, conn: int, model: CaptureModel | None = None) -> None:
        self.conn = conn
        self._model = model
        self._codes = model.interner if model is not None else _Interner()
        self._ref = array("I")  # per event: slot << 2 | kind
        self._obj: list[Event] = []
        # TCP segments
        self._s_frame = array("q")
        self._s_ts = array("d")
        self._s_seq = array("q")
        self._s_ack = array("q")
        self._s_len = array("q")
        self._s_win = array("q")
        self._s_rtt = array("d")
        self._s_code = array("H")  # (direction, flags, analysis)
        # TLS application data
        self._a_frame = array("q")
        self._a_ts = array("d")
        self._a_len = array("q")
        self._a_plain = array("q")  # -1: None
        self._a_code = array("H")  # (direction, early)
        # HTTP/2 frames
        self._h_frame = array("q")
        self._h_ts = array("d")
        self._h_arrival = array("d")
        self._h_stream = array("q")
        self._h_flags = array("q")
        self._h_len = array("q")
        self._h_code = array("H")  # (type, direction, flag_names, headers_reliable)
        self._h_refs: list[tuple[Any, Any] | None] = []  # (headers, detail) when either is set
        self._raw: dict[int, bytes] = {}  # ref -> raw bytes of a compact event

    # ------------------------------------------------------------------ writing (worker)

    def append(self, e: Event) -> None:
        cls = type(e)
        ref = -1
        try:
            if cls is TcpSegment and e.conn == self.conn and e.layer == "tcp" and e.type == "segment":
                ref = self._seg(e)  # type: ignore[arg-type]
            elif cls is Http2Frame and e.conn == self.conn and e.layer == "http2":
                ref = self._h2(e)  # type: ignore[arg-type]
            elif (cls is TlsApplicationData and e.conn == self.conn and e.layer == "tls"
                  and e.type == "ApplicationData"):
                ref = self._app(e)  # type: ignore[arg-type]
        except (OverflowError, TypeError, ValueError):
            ref = -1  # a value that does not fit a column: kept as the object
        if ref < 0:
            self._obj.append(e)
            ref = (len(self._obj) - 1) << 2 | _OBJ
        self._ref.append(ref)

    def _keep_raw(self, ref: int, raw: bytes) -> None:
        model = self._model
        if raw and model is not None and model.raw_budget >= len(raw):
            model.raw_budget -= len(raw)
            self._raw[ref] = raw

    def _seg(self, e: TcpSegment) -> int:
        slot = len(self._s_frame)
        code = self._codes.code((e.direction, e.flags, e.analysis))
        rtt = e.ack_rtt
        self._s_seq.append(e.seq)
        self._s_ack.append(e.ack)
        self._s_len.append(e.len)
        self._s_win.append(e.window)
        self._s_rtt.append(_NAN if rtt is None else rtt)
        self._s_code.append(code)
        self._s_ts.append(e.ts)
        self._s_frame.append(e.frame)
        return slot << 2 | _SEG

    def _app(self, e: TlsApplicationData) -> int:
        slot = len(self._a_frame)
        code = self._codes.code((e.direction, e.early))
        plain = e.plaintext_len
        self._a_len.append(e.length)
        self._a_plain.append(-1 if plain is None else plain)
        self._a_code.append(code)
        self._a_ts.append(e.ts)
        self._a_frame.append(e.frame)
        ref = slot << 2 | _APP
        self._keep_raw(ref, e.raw)
        return ref

    def _h2(self, e: Http2Frame) -> int:
        slot = len(self._h_frame)
        code = self._codes.code((e.type, e.direction, e.flag_names, e.headers_reliable))
        self._h_arrival.append(e.arrival)
        self._h_stream.append(e.stream)
        self._h_flags.append(e.flags)
        self._h_len.append(e.length)
        self._h_code.append(code)
        self._h_refs.append((e.headers, e.detail) if e.headers is not None or e.detail is not None else None)
        self._h_ts.append(e.ts)
        self._h_frame.append(e.frame)
        ref = slot << 2 | _H2
        self._keep_raw(ref, e.raw)
        return ref

    def order_by_frame(self, start: int, layer: str = "analysis") -> list[int] | None:
        """Move the events of ``layer`` from index ``start`` on (the pipeline's analyses emit
        theirs at the end) to where each completed: after every event of its frame or an
        earlier one, and after every event up to its time (a setup step's ``frame`` is the
        connection's first frame while its ``ts`` is when the step completed).
        Returns the new index of each old index, or None when nothing moved."""
        refs = self._ref
        n = len(refs)
        moving = [i for i in range(start, n) if refs[i] & 3 == _OBJ and self._obj[refs[i] >> 2].layer == layer]
        if not moving:
            return None
        moved = set(moving)
        rest = [i for i in range(n) if i not in moved]
        frames = [self.frame_at(i) for i in rest]
        times = [self.ts_at(i) for i in rest]
        # the rest is in capture order (a decoder's flush at the end may break that: then by position)
        by_frame = all(frames[k] <= frames[k + 1] for k in range(len(frames) - 1))
        by_time = all(times[k] <= times[k + 1] for k in range(len(times) - 1))
        places = []
        for i in moving:
            e = self._obj[refs[i] >> 2]
            at = bisect_right(frames, e.frame) if by_frame else len(rest)
            if by_time and by_frame:
                at = max(at, bisect_right(times, e.ts))
            places.append((at, i))
        places.sort(key=lambda p: p[0])  # stable: the analyses' own order among equals
        order: list[int] = []
        k = 0
        for at, i in places:
            order.extend(rest[k:at])
            k = max(k, at)
            order.append(i)
        order.extend(rest[k:])
        new_index = [0] * n
        for new, old in enumerate(order):
            new_index[old] = new
        self._ref = array("I", (refs[i] for i in order))  # one swap: readers see the old or the new order
        return new_index

    # ------------------------------------------------------------------ reading (any thread)

    def __len__(self) -> int:
        return len(self._ref)

    def frame_at(self, i: int) -> int:
        """The frame of event ``i`` without building the event."""
        ref = self._ref[i]
        kind, slot = ref & 3, ref >> 2
        if kind == _SEG:
            return self._s_frame[slot]
        if kind == _APP:
            return self._a_frame[slot]
        if kind == _H2:
            return self._h_frame[slot]
        return self._obj[slot].frame

    def ts_at(self, i: int) -> float:
        """The time of event ``i`` without building the event."""
        ref = self._ref[i]
        kind, slot = ref & 3, ref >> 2
        if kind == _SEG:
            return self._s_ts[slot]
        if kind == _APP:
            return self._a_ts[slot]
        if kind == _H2:
            return self._h_ts[slot]
        return self._obj[slot].ts

    def segment_at(self, i: int) -> tuple[str, str, tuple[str, ...], float, int] | None:
        """(direction, flags, analysis, ts, len) of event ``i`` if it is a TCP segment, without building it."""
        ref = self._ref[i]
        if ref & 3 != _SEG:
            return None
        slot = ref >> 2
        direction, flags, analysis = self._codes.values[self._s_code[slot]]
        return direction, flags, analysis, self._s_ts[slot], self._s_len[slot]

    def light(self, i: int) -> tuple[Any, ...] | None:
        """What a timeline draws of event ``i`` if it is kept in columns, without building it:
        ``(1, code, len, ts)`` for a TCP segment (``code``: see :meth:`segment_code`),
        ``(2, direction, ts)`` for TLS application data, ``(3, type, direction, flag_names, stream,
        ts)`` for an HTTP/2 frame; None for an event kept as an object."""
        ref = self._ref[i]
        kind, slot = ref & 3, ref >> 2
        if kind == _SEG:
            return 1, self._s_code[slot], self._s_len[slot], self._s_ts[slot]
        if kind == _APP:
            return 2, self._codes.values[self._a_code[slot]][0], self._a_ts[slot]
        if kind == _H2:
            type_, direction, flag_names, _ = self._codes.values[self._h_code[slot]]
            return 3, type_, direction, flag_names, self._h_stream[slot], self._h_ts[slot]
        return None

    def segment_code(self, code: int) -> tuple[str, str, tuple[str, ...]]:
        """(direction, flags, analysis) of a TCP segment's ``code`` from :meth:`light`."""
        return self._codes.values[code]

    def _build(self, ref: int) -> Event:
        kind, slot = ref & 3, ref >> 2
        if kind == _OBJ:
            return self._obj[slot]
        values = self._codes.values
        if kind == _SEG:
            direction, flags, analysis = values[self._s_code[slot]]
            rtt = self._s_rtt[slot]
            return TcpSegment(frame=self._s_frame[slot], ts=self._s_ts[slot], conn=self.conn, direction=direction,
                              flags=flags, seq=self._s_seq[slot], ack=self._s_ack[slot], len=self._s_len[slot],
                              window=self._s_win[slot], analysis=analysis, ack_rtt=None if rtt != rtt else rtt)
        if kind == _APP:
            direction, early = values[self._a_code[slot]]
            plain = self._a_plain[slot]
            return TlsApplicationData(frame=self._a_frame[slot], ts=self._a_ts[slot], conn=self.conn,
                                      direction=direction, length=self._a_len[slot],
                                      plaintext_len=None if plain < 0 else plain, early=early,
                                      raw=self._raw.get(ref, b""))
        type_, direction, flag_names, reliable = values[self._h_code[slot]]
        refs = self._h_refs[slot]
        headers, detail = refs if refs is not None else (None, None)
        return Http2Frame(frame=self._h_frame[slot], ts=self._h_ts[slot], conn=self.conn, type=type_,
                          direction=direction, stream=self._h_stream[slot], flags=self._h_flags[slot],
                          flag_names=flag_names, length=self._h_len[slot], headers=headers,
                          headers_reliable=reliable, detail=detail, arrival=self._h_arrival[slot],
                          raw=self._raw.get(ref, b""))

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            refs = self._ref[i]
            return [self._build(r) for r in refs]
        return self._build(self._ref[i])

    def __iter__(self) -> Iterator[Event]:
        build = self._build
        for r in self._ref[:]:  # a copy: the worker may append meanwhile
            yield build(r)

    def nbytes(self) -> int:
        """Bytes held by the columns (not the objects or raw bytes they refer to)."""
        return sum(a.itemsize * len(a) for a in vars(self).values() if isinstance(a, array))


class FrameStore:
    """Each frame's captured bytes for the hex view, numbered from 1.

    For a plain pcap file only each record's offset is kept (8 bytes a frame)
    and the bytes are read back from the file when asked; otherwise (pcapng,
    gzip, live) the bytes themselves while :data:`FRAME_BYTES_BUDGET` lasts.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._offsets = array("q")  # start of each frame's data in the file
        self._next = 24  # after the pcap file header
        self._kept: list[bytes] = []
        self._budget = FRAME_BYTES_BUDGET
        self._lengths = array("I")
        self._file: Any = None
        self._lock = threading.Lock()

    def add(self, packets: Sequence[Packet]) -> None:
        if self.path is not None:
            offsets, lengths, at = self._offsets, self._lengths, self._next
            for p in packets:
                n = len(p[2])
                offsets.append(at + 16)
                lengths.append(n)
                at += 16 + n
            self._next = at
        elif self._budget > 0:
            keep = self._kept
            for p in packets:
                keep.append(p[2])
                self._budget -= len(p[2])

    def get(self, frame: int) -> bytes | None:
        if self.path is None:
            data = self._kept
            return data[frame - 1] if 0 < frame <= len(data) else None
        if not 0 < frame <= len(self._lengths):
            return None
        with self._lock:
            try:
                if self._file is None:
                    self._file = open(self.path, "rb")
                self._file.seek(self._offsets[frame - 1])
                return self._file.read(self._lengths[frame - 1])
            except OSError:
                return None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class CaptureModel:
    """One capture's connections, events and rows; fed by a source thread, read by the UI."""

    def __init__(self, keylog: KeyLog | None = None, capture_path: str | None = None) -> None:
        self.keylog = keylog if keylog is not None else KeyLog()
        # The pipeline (and the decoders it imports: a good part of a second) is made by the
        # worker on the first frame, so the UI is on screen before the decoders are loaded.
        self.pipe: Any = None
        #: events of each connection, by connection id, in the order the pipeline produced them
        #: (the analyses' events, made at the end, moved to their frame's place)
        self.events: list[EventLog] = []
        self.interner = _Interner()
        self.raw_budget = RAW_BYTES_BUDGET
        #: bumps when finish() reorders events: index-based views of the events are to be rebuilt
        self.layout = 0
        #: per reordered connection, the new index of each old one
        self.remap: dict[int, list[int]] = {}
        #: annotation events of each connection as (index in its event list, event)
        self.annotations: list[list[tuple[int, Event]]] = []
        #: events with no connection (unsupported link types, bad IP headers)
        self.capture_events: list[Event] = []
        self.rows: list[ConnRow] = []
        self.hol: set[int] = set()
        self.version = 0  #: bumps at each publish
        self.done = False
        self.lock = threading.RLock()
        self._dirty: set[int] = set()
        self.publish_cost = 0.0  #: seconds the last publish took
        self.first_ts: float | None = None
        self._due: dict[int, float] = {}  # connection -> when its costly summary may be made again
        #: captured bytes of each frame, for the hex view
        self.frame_store = FrameStore(capture_path if capture_path and _plain_pcap(capture_path) else None)

    # -------------------------------------------------------------- worker side

    def _on_event(self, e: Event) -> None:
        c = e.conn
        if c is None:
            self.capture_events.append(e)
            return
        evs = self.events
        if c >= len(evs):
            for n in range(len(evs), c + 1):
                evs.append(EventLog(n, self))
                self.annotations.append([])
        evs[c].append(e)
        self._dirty.add(c)
        if e.type != "segment" or e.analysis:  # type: ignore[attr-defined]
            if is_annotation(e):
                notes = self.annotations[c]
                if len(notes) < MAX_ANNOTATIONS:
                    notes.append((len(evs[c]) - 1, e))
                if is_hol(e):
                    self.hol.add(c)

    def feed(self, packets: Sequence[Packet]) -> None:
        """Decode packets (worker thread)."""
        if not packets:
            return
        if self.pipe is None:
            from inspector.pipeline import Pipeline

            self.pipe = Pipeline(keylog=self.keylog, on_event=self._on_event, segments=True)
        if self.first_ts is None:
            self.first_ts = packets[0][0]
        self.frame_store.add(packets)
        with self.lock:
            self.pipe.run(packets)

    def finish(self) -> None:
        with self.lock:
            if self.pipe is not None:
                before = [len(evs) for evs in self.events]
                self.pipe.finish()
                self._order_analysis(before)
                self._dirty.update(range(len(self.pipe.connections)))
                self._due.clear()
            self.done = True
        self.publish(force=True)

    def _order_analysis(self, before: list[int]) -> None:
        """The analyses run at the end: put their events at the frame where each completed."""
        moved = False
        for cid, evs in enumerate(self.events):
            new_index = evs.order_by_frame(before[cid] if cid < len(before) else 0)
            if new_index is None:
                continue
            moved = True
            self.remap[cid] = new_index
            notes = self.annotations[cid]
            notes[:] = sorted(((new_index[i], e) for i, e in notes), key=lambda p: p[0])
        if moved:
            self.layout += 1

    def analyze(self) -> float:
        """Run the end-of-capture analyses (RTT ledger, HOL) on what has arrived so far (live capture).

        Results go to the connections' records, so rows and annotations show
        them at the next :meth:`publish`; their events are emitted once, by
        :meth:`finish`.  Returns the seconds it took."""
        if self.pipe is None or self.done:
            return 0.0
        from inspector.analysis import analyze, summary_keys

        t0 = time.perf_counter()
        with self.lock:
            conns = self.pipe.connections
            before = [summary_keys(c) for c in conns]
            analyze(self.pipe)
            self._dirty.update(c.id for c, old in zip(conns, before) if summary_keys(c) != old)
        return time.perf_counter() - t0

    def publish(self, force: bool = False) -> None:
        """Bring the rows of changed connections up to date (worker thread).

        A connection whose summary is costly (thousands of requests) is summarised
        again only after twenty times that cost has passed, unless ``force``."""
        if self.pipe is None:
            return
        from inspector.output.summary import connection_summary

        t0 = time.perf_counter()
        with self.lock:
            conns = self.pipe.connections
            rows = self.rows
            dirty = self._dirty
            self._dirty = set()
            dirty.update(range(len(rows), len(conns)))
            registry = self.pipe.registry
            new: dict[int, ConnRow] = {}
            due = self._due
            for cid in dirty:
                if cid >= len(conns):
                    continue
                if not force and cid < len(rows) and due.get(cid, 0.0) > t0:
                    self._dirty.add(cid)  # summarised recently and costly: later
                    continue
                started = time.perf_counter()
                try:
                    s = _trimmed(connection_summary(conns[cid], registry))
                except Exception as e:  # noqa: BLE001 - a summary bug must not stop the view
                    s = {"id": cid, "transport": conns[cid].transport, "client": conns[cid].client,
                         "server": conns[cid].server, "error": f"{type(e).__name__}: {e}"}
                notes = len(self.annotations[cid]) if cid < len(self.annotations) else 0
                new[cid] = make_row(s, notes, cid in self.hol)
                cost = time.perf_counter() - started
                if cost > 0.005 and cid < len(rows):
                    # a connection with thousands of requests: spend at most ~5% of the time on its row
                    due[cid] = started + cost * 20
        for cid in sorted(new):
            if cid < len(rows):
                rows[cid] = new[cid]
            elif cid == len(rows):
                rows.append(new[cid])
        self.version += 1
        self.publish_cost = time.perf_counter() - t0

    # -------------------------------------------------------------- UI side

    @property
    def frames(self) -> int:
        return self.pipe.frame if self.pipe is not None else 0

    def frame_bytes(self, frame: int) -> bytes | None:
        """The captured bytes of frame ``frame`` (numbered from 1), if kept."""
        return self.frame_store.get(frame)

    def full_summary(self, cid: int) -> dict[str, Any] | None:
        """Connection ``cid``'s whole summary record (a row keeps at most :data:`ROW_REQUESTS` requests)."""
        row = self.row(cid)
        if row is None or "requests_total" not in row.summary or self.pipe is None:
            return row.summary if row is not None else None
        from inspector.output.summary import connection_summary

        with self.lock:
            return connection_summary(self.pipe.connections[cid], self.pipe.registry)

    def events_of(self, cid: int) -> EventLog:
        return self.events[cid] if 0 <= cid < len(self.events) else EventLog(cid)

    def annotations_of(self, cid: int) -> list[tuple[int, Event]]:
        return self.annotations[cid] if 0 <= cid < len(self.annotations) else []

    def row(self, cid: int) -> ConnRow | None:
        rows = self.rows
        return rows[cid] if 0 <= cid < len(rows) else None

    def needs_keys(self) -> bool:
        """Is some TLS/QUIC connection not (fully) decrypted?  (Then new secrets are worth a replay.)"""
        for row in self.rows:
            tls = row.summary.get("tls")
            if isinstance(tls, dict) and tls.get("decryption") not in ("decrypted", "no encrypted records", None):
                return True
            quic = row.summary.get("quic")
            if isinstance(quic, dict) and (quic.get("decrypted") is False or quic.get("undecrypted")):
                return True
        return False


def _trimmed(s: dict[str, Any]) -> dict[str, Any]:
    """A summary record with at most :data:`ROW_REQUESTS` requests (and their number in ``requests_total``)."""
    requests = s.get("requests")
    if isinstance(requests, list) and len(requests) > ROW_REQUESTS:
        s["requests_total"] = len(requests)
        s["requests"] = requests[:ROW_REQUESTS]
    return s


def _plain_pcap(path: str) -> bool:
    """Is ``path`` an uncompressed pcap file (whose frames can be read back by offset)?"""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
