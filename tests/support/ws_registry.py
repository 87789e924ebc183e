"""A decoder registry for end-to-end tests of WebSocket, SSE and DNS through the real pipeline.

It wires the hooks the way the project's registry is meant to: HTTP/1.1 and
HTTP/2 decoders get :func:`~inspector.decoders.websocket.upgrade_factory` and
the capture-wide :class:`~inspector.decoders.sse.SseStreams` observer; DNS
flows (port 53, the test's own DNS port, or a payload that parses as DNS) get
the DNS decoders sharing one :class:`~inspector.decoders.dns.DnsLookups`.
"""

from __future__ import annotations

from typing import Any

from inspector.decoders.base import DecodeContext
from inspector.decoders.dns import DnsLookups, DnsTcpDecoder, DnsUdpDecoder, looks_like_dns
from inspector.decoders.http1 import Http1Decoder
from inspector.decoders.http2 import PREFACE, Http2Decoder
from inspector.decoders.sse import SseStreams
from inspector.decoders.tls import TlsDecoder, looks_like_tls
from inspector.decoders.websocket import upgrade_factory
from inspector.keylog import KeyLog
from inspector.output.summary import connection_summary
from inspector.pipeline import decode_file


class PushRegistry:
    def __init__(self, dns_ports: frozenset[int] = frozenset({53})) -> None:
        self.sse = SseStreams()
        self.dns = DnsLookups()
        self.dns_ports = dns_ports

    def choose_stream(self, ctx: DecodeContext, direction: int, first: bytes) -> Any:
        if ctx.server[1] in self.dns_ports:
            return DnsTcpDecoder(ctx, self.dns)
        if looks_like_tls(first):
            return TlsDecoder(ctx, inner_factory=self.inner_stream)
        return self._http(ctx, first)

    def _http(self, ctx: DecodeContext, first: bytes) -> Any:
        if first.startswith(PREFACE[: len(first)]):
            return Http2Decoder(ctx, upgrade_factory=upgrade_factory, body_observer_factory=self.sse.observer)
        return Http1Decoder(ctx, upgrade_factory=upgrade_factory, body_observer_factory=self.sse.observer)

    def choose_datagram(self, ctx: DecodeContext, direction: int, payload: bytes) -> Any:
        if ctx.server[1] in self.dns_ports or looks_like_dns(payload):
            return DnsUdpDecoder(ctx, self.dns)
        return None

    def inner_stream(self, ctx: DecodeContext, alpn: str | None, first: bytes, direction: int) -> Any:
        """TLS plaintext: HTTP/2 by ALPN or preface, else HTTP/1.x."""
        if alpn == "h2":
            first = PREFACE
        return self._http(ctx, first)


def run_pipeline(path: str, registry: PushRegistry, keylog: str | None = None) -> tuple[list[Any], list[dict[str, Any]]]:
    """Every event and every connection summary (with the SSE streams merged in) of a capture."""
    events: list[Any] = []
    keys = KeyLog.from_file(keylog) if keylog else None
    pipe, _ = decode_file(path, keylog=keys, on_event=events.append, registry=registry)
    summaries = []
    for conn in pipe.connections:
        s = connection_summary(conn)
        s.update(registry.sse.summary(conn.id))
        summaries.append(s)
    return events, summaries
