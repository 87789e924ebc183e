"""Analyses over a finished capture: the RTT ledger and head-of-line blocking.

:func:`analyze` runs once the pipeline has finished its decoders: per
connection it picks the round-trip unit (:mod:`.rtt`), builds the ledger and
its what-if lines (:mod:`.ledger`) and finds head-of-line episodes
(:mod:`.hol`).  Results are kept on the connection's context
(``ctx.facts["analysis"]``) for :func:`summary_keys`, which the summary merges
into each connection's object, and returned as events for the export.
"""

from __future__ import annotations

from typing import Any

from .. import events as ev
from . import hol, ledger
from .rtt import RttUnit, quic_rtt, tcp_rtt
from .units import Units, quic_of

FACT = "analysis"


def rtt_unit(conn: Any) -> RttUnit | None:
    """The connection's round-trip unit: iRTT for TCP, ACK samples for QUIC."""
    if conn.tcp is not None:
        return tcp_rtt(conn.tcp)
    quic = quic_of(conn.decoder)
    return quic_rtt(quic) if quic is not None else None


def analyze(pipe: Any) -> list[ev.Event]:
    """Ledger and HOL episodes of every connection of a finished pipeline; returns their events."""
    out: list[ev.Event] = []
    conns = [c for c in pipe.connections if c.ctx is not None]
    dns = getattr(getattr(pipe, "registry", None), "dns", None)
    rtts: dict[int, RttUnit | None] = {}
    units: dict[int, Units] = {}
    results: dict[int, ledger.Ledger] = {}
    by_server: dict[tuple, ledger.ServerHistory] = {}  # earlier connections per server endpoint
    last_start: dict[bytes, float] = {}  # server address -> start of the latest connection to it
    episodes: dict[int, list[hol.Episode]] = {}
    for conn in conns:
        try:
            rtt = rtts[conn.id] = rtt_unit(conn)
            if conn.transport == "udp" and quic_of(conn.decoder) is None:
                continue  # DNS and other datagram flows have no setup to account for
            u = units[conn.id] = Units(conn.decoder)
            led = ledger.build(conn, rtt, u, dns, last_start)
            last_start[conn.addrs[1]] = conn.start
            server = (conn.transport, conn.addrs[1], conn.ports[1])
            same = by_server.get(server)
            if same is None:
                same = by_server[server] = ledger.ServerHistory()
            ledger.what_ifs(led, conn, same)
            same.add(conn, led)
            found: list[hol.Episode] = []
            if conn.tcp is not None:
                found += hol.tcp_episodes(conn, rtt, u)
                found += hol.pipelining_episodes(conn, rtt, u)
            found += hol.flow_control_episodes(conn, rtt, u)
            found += hol.quic_episodes(conn, u)
            episodes[conn.id] = found
            results[conn.id] = led
        except Exception as exc:  # noqa: BLE001 - an analysis bug must not lose the capture's other results
            out.append(_failed(conn, exc))
    try:
        for conn, ep in hol.connection_wait_episodes(conns, rtts, units):
            episodes.setdefault(conn.id, []).append(ep)
    except Exception as exc:  # noqa: BLE001
        out.append(_failed(None, exc))
    for conn in conns:
        if conn.id not in results:
            continue
        led = results[conn.id]
        eps = sorted(episodes.get(conn.id, []), key=lambda e: e.start)
        rtt = rtts.get(conn.id)
        keys: dict[str, Any] = {
            "rtt_ms": rtt.ms if rtt else None,
            "rtt": rtt.to_dict() if rtt else None,
            "ledger": [s.to_dict() for s in led.steps],
            "what_if": [w.to_dict() for w in led.what_if],
            "hol": [e.to_dict() for e in eps],
        }
        conn.ctx.facts[FACT] = keys
        out += _events(conn, led, eps)
    return out


def summary_keys(conn: Any) -> dict[str, Any]:
    """The analysis keys of a connection's ``summary --json`` object (empty before :func:`analyze`)."""
    ctx = conn.ctx
    if ctx is None:
        return {}
    return dict(ctx.facts.get(FACT) or {})


def _events(conn: Any, led: ledger.Ledger, eps: list[hol.Episode]) -> list[ev.Event]:
    out: list[ev.Event] = []
    rtt_ms = led.rtt.ms if led.rtt else None
    for s in led.steps:
        detail = {k: v for k, v in s.detail.items()} or None
        out.append(ev.LedgerStep(frame=s.frame, ts=s.ts, conn=conn.id, step=s.step, rtts=s.rtts, ms=s.ms,
                                 rtt_ms=rtt_ms, detail=detail))
    for w in led.what_if:
        out.append(ev.LedgerWhatIf(frame=conn.last_frame, ts=conn.end, conn=conn.id, text=w.text,
                                   saved_rtts=w.saved_rtts, saved_ms=w.saved_ms))
    for e in eps:
        d = e.to_dict()
        detail = {k: v for k, v in d.items()
                  if k not in ("kind", "direction", "start", "end", "duration_ms", "cause", "victims")} or None
        out.append(ev.HolEpisode(frame=e.frame, ts=e.end, conn=conn.id, kind=e.kind, direction=d["direction"],
                                 start=e.start, end=e.end, duration_ms=d["duration_ms"], cause=e.cause,
                                 victims=d["victims"], detail=detail))
    return out


def _failed(conn: Any, exc: Exception) -> ev.Event:
    return ev.Note(frame=conn.last_frame if conn else 0, ts=conn.end if conn else 0.0, conn=conn.id if conn else None,
                   layer="analysis", severity="error",
                   message=f"analysis failed: {type(exc).__name__}: {exc}")


__all__ = ["analyze", "summary_keys", "rtt_unit"]
