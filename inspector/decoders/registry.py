"""Which decoder takes a flow: chosen from the first bytes (and ports) of the flow.

The pipeline makes one :class:`Registry` per capture and asks it
:meth:`~Registry.choose_stream` when a TCP connection delivers its first
in-order bytes and :meth:`~Registry.choose_datagram` for a UDP flow's first
datagram.  ``None`` means "no decoder": the pipeline then stops reassembling
that connection, which keeps undecoded bulk traffic cheap.

The registry also holds what spans connections: DNS answers (so a lookup can
be linked to the connections that follow it) and SSE streams (so a
reconnection with ``Last-Event-ID`` finds the stream it resumes).
"""

from __future__ import annotations

from typing import Any

from .base import DatagramDecoder, DecodeContext, StreamDecoder
from .dns import DnsLookups, DnsTcpDecoder, DnsUdpDecoder, looks_like_dns
from .http1 import Http1Decoder, looks_like_http1
from .http2 import PREFACE, Http2Decoder, looks_like_h2_server
from . import quic
from .quic import looks_like_quic
from .sse import SseStreams
from .tls import TlsDecoder, looks_like_tls
from .websocket import upgrade_factory

DNS_PORTS = frozenset({53, 5353})


class Registry:
    """Decoder selection plus the capture-wide state decoders share."""

    def __init__(self) -> None:
        self.dns = DnsLookups()
        self.sse = SseStreams()

    def choose_stream(self, ctx: DecodeContext, direction: int, first: bytes) -> StreamDecoder | None:
        """A decoder for a TCP connection whose first delivered bytes (in ``direction``) are ``first``."""
        if ctx.server[1] in DNS_PORTS:
            return DnsTcpDecoder(ctx, self.dns)
        if looks_like_tls(first):
            return TlsDecoder(ctx, inner_factory=self.inner_stream)
        if direction == 0:
            return self._http(ctx, first)
        if looks_like_h2_server(first):
            return self._h2(ctx)  # h2c servers (grpc's) send SETTINGS before the client's preface
        return None

    def choose_datagram(self, ctx: DecodeContext, direction: int, payload: bytes) -> DatagramDecoder | None:
        """A decoder for a UDP flow whose first datagram is ``payload``."""
        ports = (ctx.client[1], ctx.server[1])
        # A QUIC v1/v2 long header is QUIC on any port; otherwise a DNS server port wins over the
        # QUIC-port guess (a lookup from client port 4433 to port 53 is DNS, as tshark has it)
        if looks_like_quic(payload) or (ctx.server[1] not in DNS_PORTS and looks_like_quic(payload, ports)):
            return quic.QuicDecoder(ctx)  # imported lazily (aioquic is slow to import)
        if ctx.server[1] in DNS_PORTS or ctx.client[1] in DNS_PORTS or looks_like_dns(payload):
            return DnsUdpDecoder(ctx, self.dns)
        return None

    def inner_stream(self, ctx: DecodeContext, alpn: str | None, first: bytes, direction: int) -> StreamDecoder | None:
        """A decoder for the plaintext inside TLS: by ALPN, else by content."""
        if alpn == "h2":
            return self._h2(ctx)
        if alpn in ("http/1.1", "http/1.0"):
            return self._h1(ctx)
        return self._http(ctx, first) if direction == 0 else None

    def _http(self, ctx: DecodeContext, first: bytes) -> StreamDecoder | None:
        if first and first.startswith(PREFACE[: len(first)]):
            return self._h2(ctx)
        if looks_like_http1(first):
            return self._h1(ctx)
        return None

    def _h1(self, ctx: DecodeContext) -> StreamDecoder:
        return Http1Decoder(ctx, upgrade_factory=upgrade_factory, body_observer_factory=self.sse.observer)

    def _h2(self, ctx: DecodeContext) -> StreamDecoder:
        return Http2Decoder(ctx, upgrade_factory=upgrade_factory, body_observer_factory=self.sse.observer)

    def connection_extras(self, conn_id: int, server_ip: str, start: float) -> dict[str, Any]:
        """Summary keys that need capture-wide state: the DNS lookup that named the
        server (when it is in the capture) and the connection's SSE streams."""
        out: dict[str, Any] = {}
        out.update(self.sse.summary(conn_id))
        res = self.dns.resolution_for(server_ip, start)
        if res is not None:
            out["dns_lookup"] = res._asdict()
        return out
