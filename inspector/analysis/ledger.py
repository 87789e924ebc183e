"""The RTT ledger: what a connection's setup cost, step by step, in round trips and milliseconds.

Steps, in order: the DNS lookup that named the server (when it is in the
capture and led straight to this connection), the TCP handshake (1 round
trip; 0 when the SYN carried data: TCP Fast Open), the TLS handshake (2 for
a full TLS 1.2 handshake, 1 for TLS 1.3 or a TLS 1.2 resumption, 0 with
accepted early data), or the QUIC handshake (1, 0 with accepted 0-RTT), a
WebSocket upgrade (1), then the first request: its time to first byte as
one network round trip plus the server's time.

``rtts`` is what the protocol costs; ``ms`` is the measured time as the
client saw it (see :mod:`.rtt` for how a capture taken elsewhere is moved to
the client).  What-if lines price the round trips a different choice would
have saved with the connection's measured RTT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .rtt import RttUnit
from .units import Units, quic_of, tls_of, websocket_of

#: a lookup counts as this connection's step if the connection starts this soon after the answer
DNS_WINDOW = 1.0


@dataclass(slots=True)
class Step:
    step: str
    rtts: float
    ms: float | None
    frame: int
    ts: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "rtts": self.rtts, "ms": self.ms, **self.detail}


@dataclass(slots=True)
class WhatIf:
    text: str
    saved_rtts: float
    saved_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "saved_rtts": self.saved_rtts, "saved_ms": self.saved_ms}


@dataclass(slots=True)
class Ledger:
    rtt: RttUnit | None
    steps: list[Step] = field(default_factory=list)
    what_if: list[WhatIf] = field(default_factory=list)
    #: round trips spent before the first request could leave (what reusing a connection saves)
    setup_rtts: float = 0.0
    server_name: str | None = None
    tls13_tickets: int = 0  #: session tickets a TLS 1.3 server issued on this connection
    #: when the connection's last exchange ended (it could have taken another request after that)
    last_activity: float = 0.0


def build(conn: Any, rtt: RttUnit | None, units: Units, dns: Any = None,
          previous_start: float | None = None) -> Ledger:
    """The ledger of one connection; ``previous_start`` is the start of the connection to the same
    server address before it, if any (a lookup is counted for the first connection after it only)."""
    led = Ledger(rtt)
    decoder = conn.decoder
    to_client = rtt.to_client() if rtt else 0.0
    _dns_step(conn, led, dns, previous_start)
    tcp = conn.tcp
    if tcp is not None and tcp.syn:
        syn_data = tcp.options[0].tfo_data
        if syn_data and tcp.options[0].tfo_cookie is not None:
            # the request rode in the SYN (TCP Fast Open): no round trip before it could leave
            led.steps.append(Step("tcp", 0, 0.0, conn.first_frame, tcp.syn_ts or conn.start,
                                  {"tfo": True, "syn_data": syn_data}))
        elif tcp.irtt is not None:
            led.steps.append(Step("tcp", 1, _ms(tcp.irtt), tcp.irtt_frame or conn.first_frame,
                                  (tcp.syn_ts or conn.start) + tcp.irtt))
            led.setup_rtts += 1
    tls = tls_of(decoder)
    if tls is not None and tls.client_hello is not None:
        _tls_step(tls, led, to_client, conn)
    quic = quic_of(decoder)
    if quic is not None:
        _quic_step(quic, led, conn)
    _request_steps(conn, led, rtt, units, websocket_of(decoder) is not None)
    ends = [ex.end_ts for _, ex in units.exchanges if ex.end_ts is not None]
    led.last_activity = max(ends) if ends else conn.end
    return led


def _dns_step(conn: Any, led: Ledger, dns: Any, previous_start: float | None) -> None:
    if dns is None or conn.ctx is None:
        return
    address = conn.ctx.server[0]
    res = dns.resolution_for(address, conn.start)
    if res is None or conn.start - res.response_ts > DNS_WINDOW:
        return
    if previous_start is not None and previous_start >= res.response_ts:
        return  # an earlier connection already used this answer
    led.server_name = res.qname
    led.setup_rtts += 1
    led.steps.append(Step("dns", 1, res.lookup_ms, res.response_frame, res.response_ts,
                          {"qname": res.qname, "conn": res.conn}))


def _tls_step(tls: Any, led: Ledger, to_client: float, conn: Any) -> None:
    info = tls.tls_summary()
    rtts = info.get("handshake_rtts")
    led.server_name = info.get("sni") or led.server_name
    times = tls.times
    start = times.get("client_hello")
    version = info.get("version")
    if rtts is None or start is None:
        return
    if version == "1.3":
        led.tls13_tickets = info.get("tickets") or 0
    detail: dict[str, Any] = {"version": version}
    if info.get("resumed"):
        detail["resumed"] = True
    if info.get("early_data"):
        detail["early_data"] = info["early_data"]
    frames = tls.frames
    if rtts == 0:
        led.steps.append(Step("tls", 0, 0.0, frames.get("client_hello", conn.first_frame), start, detail))
        return
    # the client may send application data once the server's Finished reaches it
    done = times.get("server_finished") or times.get("server_hello")
    ms = _ms(done - start + to_client) if done is not None else None
    frame = frames.get("server_finished") if "server_finished" in times else frames.get("server_hello")
    led.steps.append(Step("tls", rtts, ms, frame or frames.get("client_hello", conn.first_frame), done or start, detail))
    led.setup_rtts += rtts


def _quic_step(quic: Any, led: Ledger, conn: Any) -> None:
    info = quic.summary().get("quic", {})
    rtts = info.get("handshake_rtts")
    if rtts is None or quic.first_initial_ts is None:
        return
    led.server_name = info.get("sni") or led.server_name
    detail: dict[str, Any] = {"version": info.get("version")}
    if info.get("zero_rtt"):
        detail["zero_rtt"] = info["zero_rtt"]
    if info.get("retry"):
        detail["retry"] = True
    ms = 0.0 if rtts == 0 else info.get("handshake_ms")
    end = quic.client_finished_ts or quic.first_handshake_c2s_ts or quic.first_initial_ts
    frame = (quic.client_finished_frame if quic.client_finished_ts else
             quic.first_handshake_c2s_frame if quic.first_handshake_c2s_ts else quic.first_initial_frame)
    led.steps.append(Step("quic", rtts, ms, frame or conn.first_frame, end, detail))
    led.setup_rtts += rtts


def _request_steps(conn: Any, led: Ledger, rtt: RttUnit | None, units: Units, websocket: bool) -> None:
    # the answered exchange requested first (the earliest in the list among equal times), in one pass
    # without a tuple per exchange (a connection may carry tens of thousands)
    first = None
    first_ts = 0.0
    for pe in units.exchanges:
        ex = pe[1]
        ts = ex.request_ts
        if ts is not None and (first is None or ts < first_ts) and ex.response_ts is not None and not ex.pushed:
            first, first_ts = pe, ts
    if first is None:
        return
    proto, ex = first
    gap = ex.response_ts - ex.request_ts
    to_client = rtt.to_client() if rtt else 0.0
    network = rtt.seconds if rtt and rtt.seconds else None
    server = max(gap - rtt.server_part(), 0.0) if rtt and rtt.seconds else None
    detail: dict[str, Any] = {
        "what": f"{ex.method or '?'} {ex.path or ''}".rstrip(),
        "network_ms": _ms(network),
        "server_ms": _ms(server),
    }
    step = "ws-upgrade" if websocket and ex.status == 101 else "request"
    frame = ex.response_frame if ex.response_frame is not None else conn.first_frame
    led.steps.append(Step(step, 1, _ms(gap + to_client), frame, ex.response_ts, detail))
    if step == "ws-upgrade":
        led.setup_rtts += 1


class ServerHistory:
    """The connections to one server endpoint so far, as :func:`what_ifs` reads them: the latest
    one and the latest with a TLS 1.3 ticket, per server name (two connections are to the same
    server unless both know a server name and the names differ).

    Keeping every earlier connection and filtering them for each new one made the analysis
    quadratic in the connections to one server (200k tiny connections: hours instead of seconds).
    """

    __slots__ = ("last", "ticketed")

    def __init__(self) -> None:
        self.last: dict[str | None, tuple[int, Ledger]] = {}
        self.ticketed: dict[str | None, tuple[int, Ledger]] = {}

    def add(self, conn_id: int, led: Ledger) -> None:
        """Record a connection by id (not the connection: a retired connection's memory is freed)."""
        name = led.server_name or None
        entry = (conn_id, led)
        if name not in self.last or self.last[name][0] < conn_id:  # out of order only past a retirement limit
            self.last[name] = entry
        if led.tls13_tickets and (name not in self.ticketed or self.ticketed[name][0] < conn_id):
            self.ticketed[name] = entry

    @staticmethod
    def latest(table: dict[str | None, tuple[int, Ledger]], led: Ledger) -> tuple[int, Ledger] | None:
        """The latest entry of ``table`` whose server name is compatible with ``led``'s."""
        name = led.server_name or None
        found = table.values() if name is None else [e for e in (table.get(name), table.get(None)) if e is not None]
        return max(found, key=lambda e: e[0], default=None)


def what_ifs(led: Ledger, conn: Any, earlier: ServerHistory) -> None:
    """Fill ``led.what_if`` from the steps and the connections to the same server before this one."""
    rtt = led.rtt.seconds if led.rtt else None
    steps = {s.step: s for s in led.steps}
    tls = steps.get("tls")
    if tls is not None and tls.detail.get("version") in ("1.2", "1.1", "1.0") and tls.rtts >= 2:
        led.what_if.append(_what("TLS 1.3 would have saved 1 RTT", 1, rtt))
    if tls is not None and tls.detail.get("version") == "1.3" and tls.rtts >= 1 and "early_data" not in tls.detail:
        ticketed = earlier.latest(earlier.ticketed, led)
        if tls.detail.get("resumed"):
            led.what_if.append(_what("0-RTT (this resumed session could have carried the request as early data) "
                                     "would have let the request leave 1 RTT earlier", 1, rtt))
        elif ticketed:
            led.what_if.append(_what(
                f"0-RTT (resuming connection {ticketed[0]}'s TLS session, if the server accepts early data) "
                "would have let the request leave 1 RTT earlier", 1, rtt))
    same = earlier.latest(earlier.last, led)
    if same and led.setup_rtts:
        prev, prev_led = same
        # a connection handed over to WebSocket cannot take another request
        upgraded = any(s.step == "ws-upgrade" for s in prev_led.steps)
        if prev_led.last_activity <= conn.start and not upgraded:
            n = led.setup_rtts
            led.what_if.append(_what(f"reusing connection {prev} (same server, done with its requests before "
                                     f"this one opened) would have saved {_num(n)} RTT", n, rtt))
    if tls is not None and "tcp" in steps and steps["tcp"].rtts + tls.rtts >= 2:
        n = steps["tcp"].rtts + tls.rtts - 1
        led.what_if.append(_what(f"QUIC (one handshake for transport and TLS 1.3) would have saved {_num(n)} RTT",
                                 n, rtt))


def _what(text: str, n: float, rtt: float | None) -> WhatIf:
    saved = _ms(n * rtt) if rtt else None
    if saved is not None:
        text = f"{text} ({saved:.0f} ms)"
    return WhatIf(text, n, saved)


def _num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
