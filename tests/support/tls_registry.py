"""A registry for TLS end-to-end tests through the real pipeline.

It makes the choice the project registry is asked to make (TLS for flows
whose first bytes look like TLS; HTTP/2 or HTTP/1.1 inside by ALPN, else by
the first plaintext bytes), so these tests do not depend on how the project
registry is wired while it is being written.
"""

from __future__ import annotations

from inspector.decoders.base import DecodeContext
from inspector.decoders.http1 import Http1Decoder
from inspector.decoders.http2 import Http2Decoder
from inspector.decoders.tls import TlsDecoder, looks_like_tls

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def choose_stream(ctx: DecodeContext, direction: int, first: bytes):
    return TlsDecoder(ctx, inner_stream) if looks_like_tls(first) else None


def choose_datagram(ctx: DecodeContext, direction: int, payload: bytes):
    return None


def inner_stream(ctx: DecodeContext, alpn: str | None, first: bytes, direction: int):
    if alpn == "h2" or (alpn is None and direction == 0 and first.startswith(H2_PREFACE[: len(first)]) and len(first) >= 3):
        return Http2Decoder(ctx)
    if alpn == "http/1.1" or (alpn is None and first[:8].split(b" ")[0] in (b"GET", b"POST", b"HEAD", b"PUT", b"HTTP/1.1")):
        return Http1Decoder(ctx)
    return None
