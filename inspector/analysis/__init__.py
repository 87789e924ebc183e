"""Analyses over a finished capture: the RTT ledger and head-of-line blocking.

:func:`analyze` runs once the pipeline has finished its decoders: per
connection it picks the round-trip unit (:mod:`.rtt`), builds the ledger and
its what-if lines (:mod:`.ledger`) and finds head-of-line episodes
(:mod:`.hol`).  Results are kept on the connection's context
(``ctx.facts["analysis"]``) for :func:`summary_keys`, which the summary merges
into each connection's object, and returned as events for the export.
"""

from __future__ import annotations

from collections import OrderedDict
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


class Analysed:
    """One connection's own analysis, before the pass over connections that share a server."""

    __slots__ = ("rtt", "units", "ledger", "episodes")

    def __init__(self, rtt: RttUnit | None, units: Units, led: ledger.Ledger, episodes: list[hol.Episode]) -> None:
        self.rtt = rtt
        self.units = units
        self.ledger = led
        self.episodes = episodes


class Analyzer:
    """Analyses connections one at a time: :meth:`connection` in id order per server endpoint (the
    what-ifs read the connections to the same server before this one), then :meth:`finalize` with
    the connection-wait episodes :func:`hol.connection_wait_episodes` found among them.

    What it keeps between connections is per server: each endpoint's latest connections
    (:class:`ledger.ServerHistory`, by id, for at most :data:`MAX_SERVERS` endpoints).
    """

    def __init__(self, dns: Any = None) -> None:
        self.dns = dns
        self.by_server: OrderedDict[tuple, ledger.ServerHistory] = OrderedDict()
        #: endpoints whose history was dropped for newer ones (:data:`MAX_SERVERS`)
        self.servers_forgotten = 0

    def connection(self, conn: Any) -> Analysed | None:
        """The ledger, what-ifs and HOL episodes of one finished connection; None for a datagram
        flow that is not QUIC (DNS and the like have no setup to account for)."""
        if conn.transport == "udp" and quic_of(conn.decoder) is None:
            return None
        rtt = rtt_unit(conn)
        u = Units(conn.decoder)
        led = ledger.build(conn, rtt, u, self.dns, conn.prev_start)
        server = (conn.transport, conn.addrs[1], conn.ports[1])
        same = self.by_server.get(server)
        if same is None:
            same = self.by_server[server] = ledger.ServerHistory()
            if len(self.by_server) > MAX_SERVERS:
                self.by_server.popitem(last=False)
                self.servers_forgotten += 1
        else:
            self.by_server.move_to_end(server)
        ledger.what_ifs(led, conn, same)
        same.add(conn.id, led)
        found: list[hol.Episode] = []
        if conn.tcp is not None:
            found += hol.tcp_episodes(conn, rtt, u)
            found += hol.pipelining_episodes(conn, rtt, u)
        found += hol.flow_control_episodes(conn, rtt, u)
        found += hol.quic_episodes(conn, u)
        return Analysed(rtt, u, led, found)

    @staticmethod
    def finalize(conn: Any, done: Analysed, waits: list[hol.Episode],
                 events: bool = True) -> tuple[dict[str, Any], list[ev.Event]]:
        """The connection's summary keys (see :func:`summary_keys`) and its analysis events (none
        unless ``events``), once its connection-wait episodes ``waits`` are known."""
        led = done.ledger
        eps = sorted(done.episodes + waits, key=lambda e: e.start)
        rtt = done.rtt
        keys = {
            "rtt_ms": rtt.ms if rtt else None,
            "rtt": rtt.to_dict() if rtt else None,
            "ledger": [s.to_dict() for s in led.steps],
            "what_if": [w.to_dict() for w in led.what_if],
            "hol": [e.to_dict() for e in eps],
        }
        return keys, _events(conn, led, eps) if events else []


#: server endpoints whose history the analysis keeps (a scan of more forgets the least recent)
MAX_SERVERS = 65536


def analyze(pipe: Any, analyzer: Analyzer | None = None, waiting: list[Any] = ()) -> list[ev.Event]:
    """Ledger and HOL episodes of every connection of a finished pipeline; returns their events.

    ``analyzer`` carries the history of connections analysed earlier (retired while decoding, see
    :mod:`inspector.retirement`); ``waiting`` are such connections still waiting for their
    connection-wait episodes: each has ``conn``, ``units`` and ``rtt``, and ``finish(episodes)``
    finishes it and returns its events.
    """
    out: list[ev.Event] = []
    conns = [c for c in pipe.connections if c is not None and c.ctx is not None]
    if analyzer is None:
        analyzer = Analyzer(getattr(getattr(pipe, "registry", None), "dns", None))
    rtts: dict[int, RttUnit | None] = {}
    units: dict[int, Units] = {}
    results: dict[int, Analysed] = {}
    for conn in conns:
        try:
            done = analyzer.connection(conn)
            if done is None:
                rtts[conn.id] = rtt_unit(conn)
                continue
            rtts[conn.id] = done.rtt
            units[conn.id] = done.units
            results[conn.id] = done
        except Exception as exc:  # noqa: BLE001 - an analysis bug must not lose the capture's other results
            out.append(failure_note(conn, exc))
    for w in waiting:
        rtts[w.conn.id] = w.rtt
        units[w.conn.id] = w.units
    waits, failed = wait_episodes(conns + [w.conn for w in waiting], rtts, units)
    out += failed
    for conn in conns:
        done = results.get(conn.id)
        if done is not None:
            conn.ctx.facts[FACT], events = analyzer.finalize(conn, done, waits.get(conn.id, []))
            out += events
    for w in waiting:
        out += w.finish(waits.get(w.conn.id, []))
    return out


def wait_episodes(conns: list[Any], rtts: dict[int, RttUnit | None],
                  units: dict[int, Units]) -> tuple[dict[int, list[hol.Episode]], list[ev.Event]]:
    """:func:`hol.connection_wait_episodes` by connection id, and a note if that analysis failed."""
    waits: dict[int, list[hol.Episode]] = {}
    try:
        for conn, ep in hol.connection_wait_episodes(conns, rtts, units):
            waits.setdefault(conn.id, []).append(ep)
    except Exception as exc:  # noqa: BLE001
        return waits, [failure_note(None, exc)]
    return waits, []


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


def failure_note(conn: Any, exc: Exception) -> ev.Event:
    return ev.Note(frame=conn.last_frame if conn else 0, ts=conn.end if conn else 0.0, conn=conn.id if conn else None,
                   layer="analysis", severity="error",
                   message=f"analysis failed: {type(exc).__name__}: {exc}")


__all__ = ["Analysed", "Analyzer", "analyze", "summary_keys", "rtt_unit", "wait_episodes"]
