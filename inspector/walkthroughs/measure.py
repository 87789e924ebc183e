"""Measurements several walkthroughs share, all taken from a :class:`~.decoded.Decoded` capture.

Round trips are counted two ways, and the narratives say which:

* *flights*: how many times the client had to wait for the server before a
  given packet could leave (runs of packets in one direction; with a path
  RTT far above the hosts' processing times, every client run after the
  first is one round trip spent waiting).  This counts what the protocol
  made the client wait for, whatever the server's CPU time.
* *elapsed / RTT*: the time in units of the connection's measured RTT
  (TCP's iRTT, QUIC's smoothed RTT).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..events import Event, Http2Frame, QuicPacket, TcpSegment
from .decoded import Decoded


def ms(seconds: float) -> float:
    return seconds * 1000.0


def ms_range(values: Iterable[float]) -> str:
    """``40.9 ms`` or ``40.1-41.2 ms``: the spread of measured times."""
    vals = sorted(values)
    if not vals:
        return "-"
    lo, hi = f"{vals[0]:.1f}", f"{vals[-1]:.1f}"
    return f"{lo} ms" if lo == hi else f"{lo}-{hi} ms"


def n_range(values: Iterable[int]) -> str:
    """``17`` or ``17-19``: the spread of measured counts."""
    vals = sorted(values)
    if not vals:
        return "-"
    return str(vals[0]) if vals[0] == vals[-1] else f"{vals[0]}-{vals[-1]}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 round trip``, ``2 round trips``: a measured count with its noun."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def flights_before(dec: Decoded, frame: int, conns: Iterable[int] | None = None) -> int:
    """Round trips the client waited before ``frame`` could leave (see the module docstring).

    Only frames of ``conns`` count (all connections when None), from the
    first of them up to ``frame``.
    """
    keep = None if conns is None else set(conns)
    runs: list[str] = []
    for f in sorted(dec.frame_dir):
        if f > frame:
            break
        conn, direction = dec.frame_dir[f]
        if keep is not None and conn not in keep:
            continue
        if not runs or runs[-1] != direction:
            runs.append(direction)
    if not runs or runs[0] != "c2s":
        raise ValueError(f"{dec.ref.name}: the client does not speak first before frame {frame}")
    return runs.count("c2s") - 1


def irtt_ms(dec: Decoded, conn: int) -> float:
    """The connection's initial RTT (TCP, as Wireshark measures it)."""
    value = (dec.conns[conn].get("tcp") or {}).get("irtt_ms")
    if value is None:
        raise LookupError(f"{dec.ref.name}: conn {conn} has no TCP handshake")
    return float(value)


def handshake(dec: Decoded, conn: int) -> dict[str, TcpSegment]:
    """SYN, SYN/ACK and the client's ACK of a TCP connection."""
    segs = [s for s in dec.segments(conn)]
    syn = next(s for s in segs if s.flags == "S")
    synack = next(s for s in segs if s.flags == "SA")
    ack = next(s for s in segs if s.frame > synack.frame and s.direction == "c2s")
    return {"syn": syn, "synack": synack, "ack": ack}


def data_segments(dec: Decoded, conn: int, direction: str) -> list[TcpSegment]:
    return [s for s in dec.segments(conn, direction) if s.len > 0]


# --------------------------------------------------------------------------- HTTP/2 over TCP: one loss


@dataclass(slots=True)
class StreamWait:
    """What one HTTP/2 stream went through around a TCP loss."""

    stream: int
    path: str | None
    role: str  #: "lost" (its bytes were in the lost segment), "victim" (complete, but waited), "clear"
    blocked_ms: float  #: longest wait of a complete unit of the stream for earlier bytes
    frames: tuple[int, ...]  #: frames where the stream's waiting units were delivered
    done_ts: float | None  #: when the stream's last frame became readable


@dataclass(slots=True)
class TcpLoss:
    """One TCP segment missing at the receiver and what waited for it."""

    conn: int
    gap_frame: int  #: first segment after the hole (Wireshark's "previous segment not captured")
    gap_ts: float
    retx_frame: int
    retx_ts: float
    seq: int
    length: int
    held_frames: tuple[int, ...]  #: segments that arrived after the hole and before the retransmission
    held_bytes: int
    dup_acks: int
    streams: list[StreamWait]


def tcp_loss_h2(dec: Decoded, conn: int, direction: str = "s2c") -> TcpLoss | None:
    """The first TCP loss in ``direction`` and the HTTP/2 streams it held back.

    HTTP/2 in TLS can read a frame only when its whole TLS record is
    decrypted, and a record only when every earlier TCP byte is there.  A
    frame whose bytes had all arrived (``arrival``) but that became readable
    later (``ts``) waited for the hole; the stream whose frame became
    complete only with the retransmission is the one that lost data.
    """
    segs = list(dec.segments(conn, direction))
    gap = next((s for s in segs if "lost_segment" in s.analysis), None)
    if gap is None:
        return None
    retx = next(s for s in segs if s.frame > gap.frame and "retransmission" in s.analysis)
    held = [s for s in segs if gap.frame <= s.frame < retx.frame and s.len > 0]
    other = "c2s" if direction == "s2c" else "s2c"
    dup = [s for s in dec.segments(conn, other) if "duplicate_ack" in s.analysis and s.frame < retx.frame]
    paths = {r["stream"]: r.get("path") for r in dec.conns[conn].get("requests") or []}
    per: dict[int, list[Http2Frame]] = defaultdict(list)
    for f in dec.select(conn=conn, layer="http2", direction=direction):
        if f.stream:
            per[f.stream].append(f)
    streams = []
    for sid, frames in sorted(per.items()):
        waited = [f for f in frames if f.ts - f.arrival > 1e-6]
        lost = [f for f in frames if f.frame == retx.frame and abs(f.arrival - retx.ts) < 1e-6]
        if lost:
            role = "lost"
        elif waited:
            role = "victim"
        else:
            role = "clear"
        blocked = max((f.ts - f.arrival for f in waited), default=0.0)
        streams.append(StreamWait(
            stream=sid, path=paths.get(sid), role=role, blocked_ms=ms(blocked),
            frames=tuple(sorted({f.frame for f in waited + lost})), done_ts=max(f.ts for f in frames),
        ))
    return TcpLoss(conn=conn, gap_frame=gap.frame, gap_ts=gap.ts, retx_frame=retx.frame, retx_ts=retx.ts,
                   seq=retx.seq, length=retx.len, held_frames=tuple(s.frame for s in held),
                   held_bytes=sum(s.len for s in held), dup_acks=len(dup), streams=streams)


# --------------------------------------------------------------------------- QUIC: per-stream stalls


@dataclass(slots=True)
class QuicStreamStall:
    stream: int
    stalled_ms: float  #: time the stream held bytes it could not deliver (data beyond a hole)
    frames: tuple[int, ...]  #: packets whose data had to wait, and the one that filled the hole


def quic_stream_stalls(dec: Decoded, conn: int, direction: str = "s2c") -> dict[int, QuicStreamStall]:
    """Per stream, how long received data waited for a missing earlier offset.

    Walks the decrypted STREAM frames in arrival order: data beyond the
    stream's contiguous end waits until the hole is filled, and only that
    stream waits.  Every stream that carried data in ``direction`` is listed
    (with 0 ms when nothing waited).
    """
    ranges: dict[int, list[tuple[int, int]]] = defaultdict(list)  # received, not yet delivered
    end: dict[int, int] = defaultdict(int)
    since: dict[int, float] = {}
    stalled: dict[int, float] = defaultdict(float)
    frames: dict[int, set[int]] = defaultdict(set)
    for pkt in dec.select(conn=conn, layer="quic", direction=direction):
        if not isinstance(pkt, QuicPacket) or not pkt.details:
            continue
        for d in pkt.details:
            if not str(d.get("type", "")).startswith("STREAM") or d.get("stream") is None:
                continue
            sid, off, n = d["stream"], d.get("offset") or 0, d.get("length") or 0
            if off > end[sid]:
                ranges[sid].append((off, off + n))
                since.setdefault(sid, pkt.ts)
                frames[sid].add(pkt.frame)
                continue
            end[sid] = max(end[sid], off + n)
            # the hole may now be filled: deliver what was held
            held = sorted(ranges[sid])
            while held and held[0][0] <= end[sid]:
                end[sid] = max(end[sid], held.pop(0)[1])
            ranges[sid] = held
            if sid in since and not held:
                stalled[sid] += pkt.ts - since.pop(sid)
                frames[sid].add(pkt.frame)
    return {sid: QuicStreamStall(sid, ms(stalled[sid]), tuple(sorted(frames[sid]))) for sid in sorted(end)}


def quic_first_stream_frame(dec: Decoded, conn: int, direction: str = "c2s") -> QuicPacket:
    """The first packet carrying data of a client-initiated bidirectional stream (the first request)."""
    for pkt in dec.select(conn=conn, layer="quic", direction=direction):
        if isinstance(pkt, QuicPacket) and pkt.details:
            for d in pkt.details:
                if str(d.get("type", "")).startswith("STREAM") and d.get("stream") is not None and d["stream"] % 4 == 0:
                    return pkt
    raise LookupError(f"{dec.ref.name}: no request stream in conn {conn}")


def first(events: Iterable[Event]) -> Any:
    for ev in events:
        return ev
    raise LookupError("no such event")


# --------------------------------------------------------------------------- the analyses' own keys (summary --json)
# The RTT ledger and HOL analyses add ``ledger``, ``rtt_ms``, ``what_if`` and
# ``hol`` to a connection's summary.  Walkthroughs quote them when they are
# there (and measure the same things themselves either way, so a narrative
# never depends on them); anything unexpected in their shape means "absent".

_LEDGER_STEPS = {"dns": "DNS", "tcp": "TCP", "tls": "TLS", "quic": "QUIC", "ws-upgrade": "WebSocket upgrade",
                 "request": "request"}


def _rtts(value: Any) -> str:
    v = float(value)
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


def ledger_line(summary: dict[str, Any]) -> str | None:
    """The connection's RTT ledger as one phrase, e.g. ``TCP 1 RTT (40.5 ms), TLS 2 RTT (83.6 ms)``."""
    ledger = summary.get("ledger")
    if not isinstance(ledger, list) or not ledger:
        return None
    try:
        return ", ".join(f"{_LEDGER_STEPS.get(e['step'], e['step'])} {_rtts(e['rtts'])} RTT ({float(e['ms']):.1f} ms)"
                         for e in ledger)
    except (KeyError, TypeError, ValueError):
        return None


def ledger_note(summary: dict[str, Any], conn: int) -> str:
    """A sentence quoting the ledger (and its what-ifs), or ``""`` when the summary has none."""
    line = ledger_line(summary)
    if line is None:
        return ""
    unit = summary.get("rtt_ms")
    text = f" netinspect's RTT ledger for conn {conn}: {line}"
    if isinstance(unit, (int, float)):
        text += f", in units of {float(unit):.1f} ms"
    whatif = [w.get("text") for w in summary.get("what_if") or [] if isinstance(w, dict) and w.get("text")]
    if whatif:
        text += "; what if: " + "; ".join(whatif)
    return text + "."


def hol_episodes(summary: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The HOL analysis' episodes of one kind (``tcp``, ``http1``, ``flow-control``, ``quic``)."""
    out = []
    for ep in summary.get("hol") or []:
        if isinstance(ep, dict) and ep.get("kind") == kind and isinstance(ep.get("victims"), list):
            out.append(ep)
    return out


def hol_note(summary: dict[str, Any], kind: str) -> str:
    """A sentence quoting the HOL analysis' episodes of ``kind``, or ``""``."""
    parts = []
    try:
        for ep in hol_episodes(summary, kind):
            victims = ", ".join(f"{v['unit']} {float(v['blocked_ms']):.1f} ms" for v in ep["victims"]) or "none"
            parts.append(f"{float(ep['duration_ms']):.1f} ms caused by {ep.get('cause')}; blocked: {victims}")
    except (KeyError, TypeError, ValueError):
        return ""
    if not parts:
        return ""
    return " netinspect's HOL analysis (summary --json \"hol\") reports: " + " | ".join(parts) + "."
