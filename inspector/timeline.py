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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inspector.events import Event
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
#: Frame bytes kept for the hex view (frames past this budget show no bytes).
FRAME_BYTES_BUDGET = 256 << 20

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
        return len(s["requests"])
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


class CaptureModel:
    """One capture's connections, events and rows; fed by a source thread, read by the UI."""

    def __init__(self, keylog: KeyLog | None = None) -> None:
        self.keylog = keylog if keylog is not None else KeyLog()
        # The pipeline (and the decoders it imports: a good part of a second) is made by the
        # worker on the first frame, so the UI is on screen before the decoders are loaded.
        self.pipe: Any = None
        #: events of each connection, by connection id, in the order the pipeline produced them
        self.events: list[list[Event]] = []
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
        #: captured bytes of each frame (index = frame number - 1), while the budget lasts
        self.frames_data: list[bytes] = []
        self._budget = FRAME_BYTES_BUDGET

    # -------------------------------------------------------------- worker side

    def _on_event(self, e: Event) -> None:
        c = e.conn
        if c is None:
            self.capture_events.append(e)
            return
        evs = self.events
        if c >= len(evs):
            for _ in range(c + 1 - len(evs)):
                evs.append([])
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
        if self._budget > 0:
            keep = self.frames_data
            for p in packets:
                keep.append(p[2])
                self._budget -= len(p[2])
        with self.lock:
            self.pipe.run(packets)

    def finish(self) -> None:
        with self.lock:
            if self.pipe is not None:
                self.pipe.finish()
                self._dirty.update(range(len(self.pipe.connections)))
                self._due.clear()
            self.done = True
        self.publish(force=True)

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
                    s = connection_summary(conns[cid], registry)
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
        """The captured bytes of frame ``frame`` (numbered from 1), if still kept."""
        data = self.frames_data
        return data[frame - 1] if 0 < frame <= len(data) else None

    def events_of(self, cid: int) -> list[Event]:
        return self.events[cid] if 0 <= cid < len(self.events) else []

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
