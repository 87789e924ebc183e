"""A decoder registry for the HTTP tests: the choice the project's registry is asked to make.

HTTP/2 when the client's first bytes are (a prefix of) the connection preface
or the server speaks first with a SETTINGS frame (grpc's server does), HTTP/1.x
when the client's first bytes start like a request line; nothing else.  Passed to
``decode_file(..., registry=...)`` so end-to-end tests run the real pipeline.
"""

from __future__ import annotations

from typing import Any

from inspector.decoders.base import DecodeContext
from inspector.decoders.http1 import Http1Decoder, looks_like_http1
from inspector.decoders.http2 import Http2Decoder, looks_like_h2, looks_like_h2_server
from inspector.events import C2S


class HttpRegistry:
    """``choose_stream`` for HTTP; hooks are passed on to the decoders."""

    def __init__(self, **hooks: Any) -> None:
        self.hooks = hooks

    def choose_stream(self, ctx: DecodeContext, direction: int, first: bytes) -> Any:
        if direction != C2S:
            return Http2Decoder(ctx, **self.hooks) if looks_like_h2_server(first) else None
        if looks_like_h2(first):
            return Http2Decoder(ctx, **self.hooks)
        if looks_like_http1(first):
            return Http1Decoder(ctx, **self.hooks)
        return None

    def choose_datagram(self, ctx: DecodeContext, direction: int, payload: bytes) -> Any:
        return None

    def inner_stream(self, ctx: DecodeContext, alpn: str | None, first: bytes, direction: int) -> Any:
        return None
