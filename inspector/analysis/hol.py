"""Head-of-line blocking: data that had arrived but had to wait for other data.

Four kinds of episode:

``tcp``
    TCP delivers one byte stream in order, so bytes that arrive behind a
    missing segment wait for its retransmission, whatever application unit
    they belong to.  *Receiver-side captures* show it directly: the
    reassembler records the runs delivered while a hole was open (the bytes
    that filled it and the bytes held behind it, see
    :mod:`inspector.flows.reassembly`).  *Sender-side captures* show the
    original segment and later its retransmission; the receiver's view is
    inferred: everything sent after the original and before the
    retransmission is taken to have arrived and waited for it (constant
    one-way delay, the retransmission not spurious); the decoders note, at
    the retransmission, the units of what they decoded since the original
    (``hol_resent``), each victim waiting from when its first bytes after the
    lost ones were sent.  The cause is the unit
    whose bytes were lost; the victims are the *other* units that became
    deliverable only when the hole filled, each with its own wait (delivery
    minus the arrival of the bytes that completed it: over TLS the whole
    record, which is only usable once complete).
``http1``
    A pipelined response waiting behind the one ahead of it on the same
    connection, and requests that waited for a free connection because every
    connection the client had open to the host was busy.
``flow-control``
    An HTTP/2 sender at a zero window (stream or connection) until the
    WINDOW_UPDATE reached it: the decoder's stalls, moved to the sender (the
    update travels to it, the exhausting DATA came from it).
``quic``
    QUIC orders bytes per stream: a lost packet blocks only the streams
    whose data it carried.  Each such stream is a victim with its own wait;
    the other streams that received data meanwhile are listed as not blocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..flows.reassembly import HOL_FILL, HOL_GAP, HOL_HELD
from ..flows.streamindex import Span
from ..flows.tcp_analysis import M32
from .rtt import RttUnit
from .units import C2S, S2C, Mark, Units, http2_of, layers, name, quic_of, tls_of, websocket_of

DIRS = ("c2s", "s2c")
#: victims listed per episode when units are only known as byte runs
MAX_BYTE_VICTIMS = 16
#: two float times closer than this are the same instant (they are copies of one capture timestamp)
SAME = 1e-7


@dataclass(slots=True)
class Episode:
    kind: str
    direction: int | None
    start: float
    end: float
    duration: float  #: seconds
    cause: str
    victims: list[tuple[str, float]]  #: (unit, seconds blocked)
    frame: int  #: where the episode ended
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "direction": DIRS[self.direction] if self.direction is not None else None,
            "start": self.start,
            "end": self.end,
            "duration_ms": _ms(self.duration),
            "cause": self.cause,
            "victims": [{"unit": u, "blocked_ms": _ms(b)} for u, b in self.victims],
        }
        out.update(self.detail)
        return out


# --------------------------------------------------------------------------- tcp


def tcp_episodes(conn: Any, rtt: RttUnit | None, units: Units) -> list[Episode]:
    """Bytes held behind missing TCP segments, per direction, at the receiver (seen or inferred)."""
    tcp = conn.tcp
    if tcp is None:
        return []
    out: list[Episode] = []
    point = rtt.capture_point if rtt else "unknown"
    # An opaque connection (TLS 1.3 without keys) is reassembled to the end only when every event is
    # wanted: read it from TCP's sequence analysis in every mode so that the summary does not depend on it.
    opaque = any(getattr(layer, "idle", False) is True for layer in layers(conn.decoder))
    for d, r in enumerate(tcp.reasm):
        if r is not None and not opaque:
            records, resent = r.hol, r.resent
        else:
            records, resent = _from_analysis(tcp, d)
        seen = _receiver_view(conn, d, records, units)
        out += seen
        # at the receiver of this direction a retransmission of bytes it had is spurious, not a loss
        at_receiver = (point == "client" and d == S2C) or (point == "server" and d == C2S)
        if not at_receiver and not (seen and point in ("local", "unknown")):
            out += _sender_view(conn, d, resent, units)
    return out


def _from_analysis(tcp: Any, d: int) -> tuple[list[tuple[int, Span]], list[tuple]]:
    """The reassembler's HOL records, rebuilt from what TCP's sequence analysis kept at each
    retransmitted or out-of-order segment (see :func:`inspector.flows.reassembly.record_fill`).

    A segment whose bytes an earlier unacknowledged segment already carried is a retransmission
    of something the capture saw (a sender's view: a ``resent`` record); otherwise the capture
    never had those bytes, and the segment delivers, at its own time, what had arrived behind
    the hole (a receiver's view: FILL and HELD runs).  An acknowledged original left the list:
    a spurious retransmission delivers nothing and has no episode."""
    isn = tcp.an[d].base_seq
    fin = tcp.fin_seq[d]
    # the analysis counts a FIN as one sequence number (a SYN is never in these lists): not a byte
    last = (fin - isn - 1) & M32 if fin is not None else M32

    def off(seq: int) -> int:
        return min((seq - isn - 1) & M32, last)

    records: list[tuple[int, Span]] = []
    resent: list[tuple] = []
    reached = 0  # the in-order point the earlier fills of this direction took the receiver to
    for frame, ts, seq, end, base, entries in tcp.fills[d]:
        start_off, end_off = off(seq), off(end)
        others = [(off(a), off(b), t, f) for a, b, t, f in entries if f != frame]
        if any(a <= start_off < b for a, b, _, _ in others):
            spans = tuple(Span(a, b, f, t, t, f) for a, b, t, f in others if b > start_off)
            resent.append((start_off, end_off, frame, ts, max((b for _, b, _, _ in others), default=end_off), spans))
            continue
        # the in-order frontier before this segment: what the peer acknowledged, or where the earlier
        # fills took it when their ACKs are not back yet (retransmissions in a burst, captured on the
        # path), then what followed it.  Retransmissions are not in the unacknowledged list, so the
        # walk below cannot see the holes they filled.
        frontier = max(off(base), reached)
        others.sort()
        for a, b, _, _ in others:
            if a > frontier:
                break
            frontier = max(frontier, b)
        if start_off > frontier or end_off <= frontier:
            continue  # another hole before it (its bytes wait too), or nothing new
        records.append((HOL_FILL, Span(frontier, end_off, frame, ts, ts, frame)))
        frontier = end_off
        for a, b, t, f in others:
            if a > frontier:
                break
            if b > frontier:
                records.append((HOL_HELD, Span(frontier, b, frame, t, ts, f)))
                frontier = b
        reached = frontier
    return records, resent


def _receiver_view(conn: Any, d: int, records: list[tuple[int, Any]], units: Units) -> list[Episode]:
    out: list[Episode] = []
    n = len(records)
    i = 0
    while i < n:
        kind, span = records[i]
        if kind != HOL_HELD:
            i += 1
            continue
        key = (span.frame, span.delivered)
        j = i
        while j + 1 < n and records[j + 1][0] == HOL_HELD and (records[j + 1][1].frame, records[j + 1][1].delivered) == key:
            j += 1
        held = [records[k][1] for k in range(i, j + 1)]
        pieces = []
        k = i - 1
        nxt = held[0].start
        while k >= 0 and records[k][0] in (HOL_FILL, HOL_GAP) and records[k][1].end == nxt:
            pieces.append(records[k])
            nxt = records[k][1].start
            k -= 1
        pieces.reverse()
        i = j + 1
        if any(kind == HOL_GAP for kind, _ in pieces):
            continue  # bytes the capture never had (or the capture ended first): not a loss we can time
        episode = _held_episode(conn, d, held, [p for _, p in pieces], units)
        out.append(episode)
    return out


def _held_episode(conn: Any, d: int, held: list[Any], pieces: list[Any], units: Units) -> Episode:
    fill_frame, end = held[0].frame, held[0].delivered
    start = min(min(s.arrival for s in held), end)  # (frames out of time order in the file)
    here = [m for m in units.marks(fill_frame, fill_frame) if m.direction == d]
    # a unit completed by the bytes that filled the hole owned them (over TLS: shared their record)
    cause_units = _unique(m.unit for m in here if m.arrival >= m.ts - SAME)
    cause_keys = {m.key for m in here if m.arrival >= m.ts - SAME}
    if not cause_units:
        # the unit the lost bytes belonged to goes on past the fill: it is the one already under way
        flying = _in_flight(units, d, end)
        cause_units = [unit for _, unit in flying]
        cause_keys = {key for key, _ in flying}
    victims = _victims_from_marks([m for m in here if m.key not in cause_keys], lambda m: m.ts - m.arrival)
    if not here:
        # no unit completed when the hole filled (a WebSocket stream, or no application decoder)
        victims = _byte_victims(conn, held, lambda s: end - s.arrival)
    lost_start = pieces[0].start if pieces else held[0].start
    lost_end = pieces[-1].end if pieces else held[0].start
    detail = {
        "view": f"receiver: bytes arrived out of order and waited at the capture point for the retransmission "
                f"(frame {fill_frame})",
        "lost": {"offset": lost_start, "bytes": lost_end - lost_start,
                 "resent_frames": sorted({p.arrival_frame for p in pieces})},
        "held_bytes": sum(s.end - s.start for s in held),
        "held_frames": [held[0].arrival_frame, held[-1].arrival_frame],
    }
    return Episode("tcp", d, start, end, end - start, _cause_text(cause_units, lost_start, lost_end - lost_start, d, conn),
                   victims, fill_frame, detail)


def _sender_view(conn: Any, d: int, resent: list[tuple], units: Units) -> list[Episode]:
    by_start: dict[int, list[tuple]] = {}
    for rec in resent:
        start, end, _frame, _ts, frontier, _spans = rec
        if end - start <= 1 and end == frontier:
            continue  # keep-alive or window probe: one old byte, not a lost segment
        by_start.setdefault(start, []).append(rec)
    lost = [(recs[0][0], recs[0][1]) for recs in by_start.values()]
    out: list[Episode] = []
    for start, recs in sorted(by_start.items()):
        first, last = recs[0], recs[-1]
        end_off = first[1]
        spans = first[5]
        fill_frame, fill = last[2], last[3]  # a retransmission sent again: the last one got through
        orig = [s for s in spans if s.start < end_off and s.end > start]
        others = [(a, b) for a, b in lost if a != start]
        after = [s for s in spans if s.start >= end_off and s.arrival < first[3]
                 and not any(a < s.end and s.start < b for a, b in others)]
        t_orig = min((s.arrival for s in orig), default=None)
        orig_frame = orig[0].frame if orig else None
        ep_start = min((s.arrival for s in after), default=t_orig if t_orig is not None else fill)
        ep_start = min(ep_start, fill)  # (frames out of time order in the file)
        cause_units: list[str] = []
        victims: list[tuple[str, float]] = []
        mine = [m for m in units.marks(orig_frame, max(fill_frame, orig_frame))
                + units.sent_marks(orig_frame, max(fill_frame, orig_frame)) if m.direction == d] \
            if orig_frame is not None else []
        if mine:
            # units complete in stream order: the first one completed from the original on held the lost bytes
            cause_frame = min(m.frame for m in mine)
            cause = [m for m in mine if m.frame == cause_frame]
            cause_units = _unique(m.unit for m in cause)
            keys = {m.key for m in cause}
            frames = {s.frame for s in after}
            victims = _victims_from_marks(
                [m for m in mine if m.frame in frames and m.key not in keys and m.ts < fill], lambda m: fill - m.ts)
        if not cause_units and not victims:
            # no decoder named the units sent around the loss (none claimed the bytes, or TLS without keys)
            victims = _byte_victims(conn, after, lambda s: fill - s.arrival)
        if not cause_units:
            cause_units = [unit for _, unit in _in_flight(units, d, fill)]
        detail: dict[str, Any] = {
            "view": (f"sender: the original (frame {orig_frame}) was captured and sent again in frame {fill_frame}; "
                     "the receiver is taken to have got what was sent in between and held it until the "
                     "retransmission arrived (constant one-way delay, a real loss); times are the sender's, "
                     "one one-way delay before the receiver's"),
            "lost": {"offset": start, "bytes": end_off - start, "original_frame": orig_frame,
                     "resent_frames": [r[2] for r in recs]},
            "held_bytes": sum(s.end - s.start for s in after),
        }
        if not orig or spans[0].start > start:
            detail["partial"] = f"only the last {len(spans)} segments before the retransmission were remembered"
        out.append(Episode("tcp", d, ep_start, fill, fill - ep_start,
                           _cause_text(cause_units, start, end_off - start, d, conn), victims, fill_frame, detail))
    return out


def _victims_from_marks(marks: list[Mark], blocked: Any) -> list[tuple[str, float]]:
    """One victim per unit: its longest wait, in the order the units arrived."""
    best: dict[str, tuple[float, float, str]] = {}
    for m in marks:
        b = blocked(m)
        if b <= SAME:
            continue
        old = best.get(m.key)
        if old is None or b > old[0]:
            best[m.key] = (b, m.arrival, m.unit)
    return [(unit, b) for b, _, unit in sorted(best.values(), key=lambda v: v[1])]


def _byte_victims(conn: Any, spans: list[Any], blocked: Any) -> list[tuple[str, float]]:
    """Units known only as byte runs (no decoder names them): one victim per run that waited."""
    what = _data_label(conn)
    out = [(f"{what}, bytes {s.start}-{s.end} (frame {s.arrival_frame})", blocked(s)) for s in spans]
    out = [(u, b) for u, b in out if b > SAME]
    if len(out) > MAX_BYTE_VICTIMS:
        rest = out[MAX_BYTE_VICTIMS:]
        out = out[:MAX_BYTE_VICTIMS] + [(f"{len(rest)} more runs of {what}", max(b for _, b in rest))]
    return out


def _data_label(conn: Any) -> str:
    if websocket_of(conn.decoder) is not None:
        return "WebSocket data"
    return "TLS data" if tls_of(conn.decoder) is not None else "TCP data"


def _in_flight(units: Units, d: int, when: float) -> list[tuple[str, str]]:
    """(key, name) of the units in direction ``d`` that had started before ``when`` and were not done by
    then: whose bytes a hole filled at ``when`` interrupted."""
    out = []
    for i, (proto, ex) in enumerate(units.exchanges, 1):
        if d == S2C:
            first, last = ex.response_ts, ex.end_ts
        else:
            first, last = ex.request_ts, ex.request_end_ts
        if first is not None and first < when - SAME and (last is None or last >= when - SAME):
            out.append((f"{proto}:{ex.stream if ex.stream is not None else i}", name(proto, ex, i)))
    return out


def _cause_text(units: list[str], offset: int, length: int, d: int, conn: Any) -> str:
    where = f"{length} bytes lost at {DIRS[d]} stream offset {offset}"
    if tls_of(conn.decoder) is not None:
        where += " (inside a TLS record: the whole record waited)"
    if not units:
        return f"{_data_label(conn)}: {where}"
    who = units[0] if len(units) == 1 else "one of " + ", ".join(units)
    return f"{who}: {where}"


# --------------------------------------------------------------------------- quic


def quic_episodes(conn: Any, units: Units) -> list[Episode]:
    """Per lost packet: the streams whose data it carried, their waits, and the streams not blocked."""
    quic = quic_of(conn.decoder)
    if quic is None or not quic.losses:
        return []
    out: list[Episode] = []
    for loss in quic.losses:
        if loss.space != "application" or not loss.streams or not loss.resent:
            continue
        d = 0 if loss.direction == "c2s" else 1
        receiver_view = loss.detected == "unacknowledged"
        frames = {r["frame"] for r in loss.resent}
        fill = max(r["ts"] for r in loss.resent)
        fill_frame = max(loss.resent, key=lambda r: r["ts"])["frame"]
        victims: list[tuple[str, float]] = []
        arrivals = []
        for sid in loss.streams:
            chunks = quic.stream_chunks(d, sid, receiver_view=receiver_view)
            held = [c for c in chunks if c.frame in frames and c.delivered_ts > c.arrival_ts + SAME]
            arrivals += [c.arrival_ts for c in held]
            victims.append((units.stream_name(sid, f"QUIC stream {sid}"),
                            max((c.delivered_ts - c.arrival_ts for c in held), default=0.0)))
        start = min(arrivals, default=loss.ts)
        lost = set(loss.streams)
        not_blocked = []
        for (direction, sid) in sorted(quic.streams):
            if direction != d or sid in lost or (units.exchanges and units.stream_name(sid, "") == ""):
                continue  # only request streams when the application is known
            chunks = quic.stream_chunks(d, sid, receiver_view=receiver_view)
            if any(start <= c.arrival_ts <= fill for c in chunks):
                not_blocked.append(units.stream_name(sid, f"QUIC stream {sid}"))
        where = ("never captured: lost before the capture point" if loss.detected == "missing"
                 else "captured, never acknowledged: lost after the capture point (receiver's view inferred)")
        carried = ", ".join(units.stream_name(s, f"QUIC stream {s}") for s in loss.streams)
        detail = {
            "view": "per stream: only the streams whose data the lost packet carried waited",
            "lost": {"packet": loss.pn, "detected": loss.detected, "frame": loss.frame,
                     "resent_frames": sorted(frames)},
            "not_blocked": not_blocked,
        }
        out.append(Episode("quic", d, start, fill, fill - start,
                           f"QUIC packet {loss.pn} ({where}) carried data of {carried}", victims, fill_frame, detail))
    return out


# --------------------------------------------------------------------------- http/2 flow control


def flow_control_episodes(conn: Any, rtt: RttUnit | None, units: Units) -> list[Episode]:
    """The HTTP/2 decoder's zero-window stalls, as long as the sender waited."""
    h2 = http2_of(conn.decoder)
    if h2 is None or not (h2.stall_log or any(side.stalls for side in h2.sides)):
        return []
    # the summary adds the stalls still open at the end of the capture to the decoder's log
    stalls = h2.summary().get("http2", {}).get("flow_control_stalls", [])
    out: list[Episode] = []
    for st in stalls:
        d = 0 if st["direction"] == "c2s" else 1
        sender, receiver = ("client", "server") if d == C2S else ("server", "client")
        # the exhausting DATA reached the capture point after leaving the sender, the update reached
        # the sender after passing it: add the round trip between the capture point and the sender
        extra = 0.0
        if rtt is not None:
            extra = rtt.to_client() if d == C2S else rtt.server_part()
        start = st["start"]
        end = st["end"]
        detail: dict[str, Any] = {"stream": st["stream"], "start_frame": st["start_frame"]}
        if end is None:
            end = conn.end
            detail["reopened"] = False
        measured = end - start
        detail["measured_ms"] = _ms(measured)
        detail["sender_side_ms"] = _ms(extra)
        duration = measured + extra
        sid = st["stream"]
        if sid:
            victims = [(units.stream_name(sid, f"HTTP/2 stream {sid}"), duration)]
            cause = (f"HTTP/2 stream {sid} send window at zero: the {sender} waited for the {receiver}'s "
                     "WINDOW_UPDATE")
        else:
            victims = []
            for proto, ex in units.exchanges:
                if ex.stream is None:
                    continue
                label = name(proto, ex, 0)
                first, last = (ex.response_ts, ex.end_ts) if d == S2C else (ex.request_ts, ex.request_end_ts)
                if first is not None and first <= end and (last is None or last >= start):
                    victims.append((label, duration))
            cause = (f"HTTP/2 connection send window at zero: the {sender} waited for the {receiver}'s "
                     "WINDOW_UPDATE on stream 0")
        frame = conn.last_frame
        out.append(Episode("flow-control", d, start, end, duration, cause, victims, frame, detail))
    return out


# --------------------------------------------------------------------------- http/1.1


def pipelining_episodes(conn: Any, rtt: RttUnit | None, units: Units) -> list[Episode]:
    """Responses that waited behind an earlier response on the same connection (pipelined requests)."""
    exs = [(p, ex) for p, ex in units.exchanges if p == "HTTP/1.1" and ex.request_ts is not None]
    to_client = rtt.to_client() if rtt else 0.0
    server_part = rtt.server_part() if rtt else 0.0
    out: list[Episode] = []
    i = 0
    while i < len(exs):
        head = exs[i][1]
        if head.response_ts is None or head.end_ts is None:
            i += 1
            continue
        # the head's own service time, to say when a later response could have started
        service = max(head.response_ts - head.request_ts - server_part, 0.0)
        victims: list[tuple[str, float]] = []
        j = i + 1
        prev_end = head.end_ts
        while j < len(exs):
            ex = exs[j][1]
            # pipelined: the client sent it before the previous response had reached it
            if ex.response_ts is None or ex.request_ts >= prev_end + to_client:
                break
            could = ex.request_ts + server_part + service
            wait = ex.response_ts - max(could, head.response_ts)
            if wait > SAME:
                victims.append((name("HTTP/1.1", ex, j + 1), wait))
            prev_end = ex.end_ts if ex.end_ts is not None else prev_end
            j += 1
        if victims:
            last = exs[j - 1][1]
            start = head.response_ts
            end = last.response_ts
            out.append(Episode(
                "http1", S2C, start, end, end - start,
                f"{name('HTTP/1.1', head, i + 1)} ({head.bytes} body bytes) ahead on the same connection: "
                "pipelined responses come back in request order",
                victims, last.response_frame or conn.last_frame,
                {"view": "pipelining: each later response could have started one round trip after its request "
                         "(plus the head response's server time)"}))
        i = j if j > i + 1 else i + 1
    return out


def connection_wait_episodes(connections: list[Any], rtts: dict[int, RttUnit | None],
                             units: dict[int, Units]) -> list[tuple[Any, Episode]]:
    """Requests sent on a reused connection the moment it freed up, while every connection the client
    had open to that host was busy: they waited for a free connection."""
    hosts: dict[tuple, list[tuple[Any, list[Any]]]] = {}
    for conn in connections:
        if conn.transport != "tcp" or conn.decoder is None or conn.id not in units:
            continue
        exs = [ex for p, ex in units[conn.id].exchanges if p == "HTTP/1.1" and ex.request_ts is not None]
        if not exs:
            continue
        host = (conn.addrs[1], conn.ports[1], exs[0].authority)
        hosts.setdefault(host, []).append((conn, exs))
    out: list[tuple[Any, Episode]] = []
    for (_, _, authority), conns in hosts.items():
        if len(conns) < 2:
            continue
        busy = sorted(((c, [(ex.request_ts, ex.end_ts if ex.end_ts is not None else c.end) for ex in exs])
                       for c, exs in conns), key=lambda cb: cb[0].start)
        found: dict[float, list[tuple[Any, Any, float]]] = {}
        for conn, exs in conns:
            rtt = rtts.get(conn.id)
            to_client = rtt.to_client() if rtt else 0.0
            slack = max(0.002, 0.1 * (rtt.seconds or 0.0)) if rtt else 0.002
            for prev, ex in zip(exs, exs[1:]):
                if prev.end_ts is None or ex.request_ts - prev.end_ts > to_client + slack:
                    continue
                t = _all_busy(busy, prev.request_ts, prev.end_ts)
                if t is not None:
                    found.setdefault(t, []).append((conn, ex, ex.request_ts - t))
        for t, victims in sorted(found.items()):
            open_conns = sorted({c.id for c, spans in busy if c.start <= t <= c.end})
            last = max(victims, key=lambda v: v[1].request_ts)
            end = last[1].request_ts
            label = authority or conns[0][0].server
            cause = (f"all {len(open_conns)} connections to {label} busy (connections "
                     f"{', '.join(map(str, open_conns))}): no free connection for the request")
            listed = [(f"{v[1].method or '?'} {v[1].path or ''} (connection {v[0].id})", v[2]) for v in victims]
            ep = Episode("http1", C2S, t, end, end - t, cause, listed, last[1].request_frame or last[0].first_frame,
                         {"view": "connection limit: each request is taken to have been ready when the last "
                                  "connection became busy (the capture cannot show when the client queued it)"})
            out.append((last[0], ep))
    return out


def _all_busy(busy: list[tuple[Any, list[tuple[float, float]]]], lo: float, hi: float) -> float | None:
    """The first moment in ``[lo, hi]`` when at least two connections were open and all were busy
    (``busy`` is sorted by connection start)."""
    near = []
    for c, spans in busy:
        if c.start > hi:
            break
        if c.end >= lo:
            near.append((c, spans))
    if len(near) < 2:
        return None
    candidates = sorted({s for _, spans in near for s, _ in spans if lo <= s <= hi} | {lo})
    for t in candidates:
        open_ = [spans for c, spans in near if c.start <= t <= c.end]
        if len(open_) >= 2 and all(any(s <= t <= e for s, e in spans) for spans in open_):
            return t
    return None


def _unique(items: Any) -> list[str]:
    out: list[str] = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
