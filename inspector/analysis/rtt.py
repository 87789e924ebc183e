"""The round-trip unit of a connection, and where the capture was taken on its path.

A capture point splits the round trip in two: the *server side* (capture point
-> server -> capture point) and the *client side* (capture point -> client ->
capture point).  The TCP handshake shows both: SYN -> SYN/ACK is the server
side, SYN/ACK -> the client's ACK the client side, and their sum (Wireshark's
iRTT) is the whole round trip wherever the capture was taken.  At the client
the client side is ~0 (the client answers at once), at the server the server
side is ~0; anything else is a capture in the middle.  QUIC gives the same two
parts from its ACKs: a client packet's ACK sample is the server side, a server
packet's the client side.

Knowing the split is what lets a step be told from the client's point of view
at any capture point: an interval between two packets the same endpoint sent
is the same everywhere (constant one-way delays cancel); an interval from a
client packet to a server packet grows by the client side when moved to the
client (the client sent earlier and receives later than the capture point
saw).  The assumption: delays are constant over the connection and each side
answers a handshake packet without delay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: a side of the round trip shorter than this fraction of it counts as "no delay": the capture is there
AT_ENDPOINT = 0.1
#: below this round trip (seconds) the capture point cannot be told (loopback, a LAN)
LOCAL_RTT = 0.001


@dataclass(slots=True)
class RttUnit:
    """The round trip a connection's ledger counts in, and how it was measured."""

    seconds: float | None
    source: str  #: what was measured
    capture_point: str  #: "client", "server", "middle", "local" or "unknown"
    client_side: float | None = None  #: capture point -> client -> capture point (seconds)
    server_side: float | None = None  #: capture point -> server -> capture point (seconds)

    @property
    def ms(self) -> float | None:
        return _ms(self.seconds)

    def to_client(self) -> float:
        """What to add to a client-packet -> server-packet interval to see it from the client."""
        if self.client_side is not None:
            return max(self.client_side, 0.0)
        return 0.0  # unknown: taken as a client-side capture

    def server_part(self) -> float:
        """The network part of a client-packet -> server-packet interval at the capture point."""
        if self.server_side is not None:
            return max(self.server_side, 0.0)
        return self.seconds or 0.0

    def assumption(self) -> str:
        point = self.capture_point
        if point == "client":
            return ("captured at the client (it answered the SYN/ACK or the server's packets at once): "
                    "times are the client's")
        if point == "server":
            return ("captured at the server (it answered the client's packets at once): client times are "
                    "these plus the client side of the round trip")
        if point == "middle":
            cs = _ms(self.client_side)
            return (f"captured between the two ({cs} ms of the round trip on the client side): client times "
                    "are shifted by that part; one-way delays taken as constant")
        if point == "local":
            return "round trip under 1 ms: the capture point does not matter"
        return "capture point unknown (no handshake in the capture): taken as the client"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ms": self.ms,
            "source": self.source,
            "capture_point": self.capture_point,
            "client_side_ms": _ms(self.client_side),
            "server_side_ms": _ms(self.server_side),
            "assumption": self.assumption(),
        }


def classify(total: float, client_side: float) -> str:
    """Where the capture was taken, from how the round trip splits."""
    if total < LOCAL_RTT:
        return "local"
    share = client_side / total
    if share < AT_ENDPOINT:
        return "client"
    if share > 1 - AT_ENDPOINT:
        return "server"
    return "middle"


def tcp_rtt(tcp: Any) -> RttUnit | None:
    """iRTT (SYN -> the client's ACK), split at the SYN/ACK; ACK samples if there was no handshake."""
    if tcp is None:
        return None
    irtt = tcp.irtt
    syn = tcp.ts_mru_syn or tcp.syn_ts
    if irtt and syn and tcp.synack_ts is not None and tcp.synack_ts >= syn:
        server_side = tcp.synack_ts - syn
        client_side = irtt - server_side
        return RttUnit(irtt, "tcp iRTT: SYN -> SYN/ACK -> ACK", classify(irtt, client_side), client_side, server_side)
    if tcp.rtt_min:
        return RttUnit(tcp.rtt_min, "tcp: smallest data -> ACK time (no handshake in the capture)", "unknown")
    return None


def quic_rtt(decoder: Any) -> RttUnit | None:
    """The smallest ACK round trip each way (the first samples carry the server's handshake work)."""
    try:
        c2s, s2c = decoder.rtt_samples(0), decoder.rtt_samples(1)
    except Exception:  # noqa: BLE001 - an older decoder without the accessor
        return None
    if not c2s or not s2c:
        return None
    server_side = min(v for _, v in c2s)
    client_side = min(v for _, v in s2c)
    total = server_side + client_side
    first = c2s[0][1] + s2c[0][1]
    source = (f"quic: smallest ACK round trip each way (the first samples give {_ms(first)} ms: "
              "they include the server's handshake work)")
    return RttUnit(total, source, classify(total, client_side), client_side, server_side)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
