"""Connections: bidirectional conversations with stable ids and roles.

A :class:`Connection` is what the summary, the export and the UI call a
connection: a TCP connection or a UDP flow between a client and a server.
Ids count from 0 in the order connections first appear in the capture (like
Wireshark's ``tcp.stream``, but one id space for TCP and UDP).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..net.ip import format_endpoint

if TYPE_CHECKING:
    from ..decoders.base import DecodeContext
    from .tcp import TcpState


def port_rank(port: int) -> int:
    """How "server-like" a port is: well-known 0, registered 1, ephemeral 2.

    The ephemeral range starts at 32768, Linux's default, which also covers
    the IANA dynamic range (49152+).
    """
    if port < 1024:
        return 0
    if port < 32768:
        return 1
    return 2


def sender_is_client(sport: int, dport: int) -> bool:
    """Guess roles from ports alone (no SYN seen): the more server-like port is the server."""
    rs, rd = port_rank(sport), port_rank(dport)
    if rs != rd:
        return rd < rs
    return True  # a tie: whoever spoke first is taken as the client


#: decoder states; IDLE: the decoder said it needs no more bytes for a summary
#: (e.g. TLS past its handshake without keys), so reassembly stops
UNDECIDED, DECODING, NO_DECODER, IDLE = 0, 1, 2, 3


class Connection:
    """One conversation; roles are fixed at creation (index 0 = client side)."""

    __slots__ = (
        "id",
        "transport",
        "addrs",
        "ports",
        "start",
        "end",
        "bytes",
        "dir_packets",
        "dir_bytes",
        "first_frame",
        "last_frame",
        "tcp",
        "decoder",
        "decoder_state",
        "ctx",
        "malformed",
        "early_gaps",
        "prev_start",
    )

    def __init__(self, cid: int, transport: str, client: tuple[bytes, int], server: tuple[bytes, int], ts: float, frame: int) -> None:
        self.id = cid
        self.transport = transport
        self.addrs = (client[0], server[0])
        self.ports = (client[1], server[1])
        self.start = ts
        self.end = ts
        self.bytes = 0
        self.dir_packets = [0, 0]
        self.dir_bytes = [0, 0]
        self.first_frame = frame
        self.last_frame = frame
        self.tcp: TcpState | None = None
        self.decoder: Any = None
        self.decoder_state = UNDECIDED
        self.ctx: DecodeContext | None = None
        self.malformed = 0
        #: gaps met before a decoder was chosen, told to it once it is (bounded)
        self.early_gaps: list[tuple] = []
        #: start of the connection before this one to the same server address (TCP or QUIC), if any
        self.prev_start: float | None = None

    @property
    def packets(self) -> int:
        return self.dir_packets[0] + self.dir_packets[1]

    @property
    def client(self) -> str:
        return format_endpoint(self.addrs[0], self.ports[0])

    @property
    def server(self) -> str:
        return format_endpoint(self.addrs[1], self.ports[1])

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.transport} {self.client} -> {self.server}>"
