"""The request/response record shared by the HTTP/1.x and HTTP/2 decoders, and their hooks.

An :class:`HttpExchange` is one request and its response (an HTTP/2 stream,
or one HTTP/1.x request matched in order to its response).  Times are the
delivered times of the bytes (``*_ts``, when the bytes could be read in
order) and, for HOL analysis, the arrival times (``*_arrival``, when the
last byte of the unit was first seen on the wire).

Hooks other decoders plug into (both decoders take them as keyword
arguments):

``upgrade_factory(ctx, protocol, request_headers, response_headers) -> StreamDecoder | None``
    Called when a connection (HTTP/1.1 ``101 Switching Protocols``, or a
    ``CONNECT`` answered 2xx) or an HTTP/2 extended CONNECT stream (RFC 8441,
    ``:protocol``) is handed to another protocol.  ``protocol`` is the
    lowercased ``Upgrade`` token (e.g. ``"websocket"``), ``:protocol``
    value, or ``"connect"`` for a plain CONNECT tunnel.  Headers are lists of
    ``[name, value]`` with lowercased names.  The returned decoder gets every
    later byte: over HTTP/1.1 the connection's own stream offsets and index
    (client bytes after the request, server bytes after the 101 head); over
    HTTP/2 the DATA payloads of that stream, as a byte stream per direction
    starting at offset 0 with its own :class:`StreamIndex` (each DATA frame is
    one span with that frame's times).  Its events, ``gap``, ``finish`` and
    ``summary`` are passed through; its summary keys win over ours.
    ``h2c`` upgrades are handled by the HTTP/1.1 decoder itself.

``body_observer_factory(ctx, exchange) -> BodyObserver | None``
    Called once per response whose ``content-type`` is ``text/event-stream``,
    when the response head is complete.  ``exchange`` is the
    :class:`HttpExchange` (request and response headers, stream id, ...).
    The observer's ``feed_body(data, ts, frame)`` gets the de-chunked body
    bytes in order (``ts``/``frame`` of the bytes' delivery) and may return a
    list of events; an optional ``end_body(ts, frame)`` is called when the
    body ends, and may return events too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..events import Event
    from .base import DecodeContext, StreamDecoder
    from .grpc import GrpcCallState


class BodyObserver(Protocol):
    """Receives a response body as it is delivered (see the module docstring)."""

    def feed_body(self, data: bytes, ts: float, frame: int) -> list[Event] | None:
        ...


Headers = list[list[Any]]
UpgradeFactory = Callable[["DecodeContext", str, Headers, Headers], "StreamDecoder | None"]
BodyObserverFactory = Callable[["DecodeContext", "HttpExchange"], "BodyObserver | None"]


@dataclass(slots=True)
class HttpExchange:
    """One request and its response."""

    stream: int | None = None  #: HTTP/2 stream id; None for HTTP/1.x
    method: str | None = None
    path: str | None = None
    authority: str | None = None
    scheme: str | None = None
    protocol: str | None = None  #: HTTP/2 extended CONNECT ``:protocol``
    version: str | None = None  #: HTTP/1.x version of the request line
    status: int | None = None
    content_type: str | None = None  #: the response's
    request_content_type: str | None = None
    request_headers: Headers = field(default_factory=list)
    response_headers: Headers = field(default_factory=list)
    trailers: Headers | None = None
    interim: list[int] = field(default_factory=list)  #: 1xx statuses before the final one
    pushed: bool = False
    request_ts: float | None = None  #: request's first byte delivered (HTTP/2: its HEADERS)
    request_end_ts: float | None = None
    response_ts: float | None = None  #: response's first byte delivered
    end_ts: float | None = None  #: response's last byte delivered (or the stream reset)
    request_arrival: float | None = None
    response_arrival: float | None = None
    end_arrival: float | None = None
    request_frame: int | None = None
    response_frame: int | None = None
    end_frame: int | None = None
    request_bytes: int = 0  #: request body bytes (de-chunked; HTTP/2: DATA without padding)
    bytes: int = 0  #: response body bytes
    error: str | None = None  #: RST_STREAM error code name, or why the exchange is incomplete
    headers_reliable: bool = True
    grpc: GrpcCallState | None = None
    observer: BodyObserver | None = None

    def summary(self) -> dict[str, Any]:
        """The entry for ``summary --json``'s ``requests`` list."""
        out: dict[str, Any] = {
            "stream": self.stream,
            "method": self.method,
            "path": self.path,
            "authority": self.authority,
            "status": self.status,
            "request_ts": self.request_ts,
            "response_ts": self.response_ts,
            "end_ts": self.end_ts,
            "bytes": self.bytes,
            "request_bytes": self.request_bytes,
            "content_type": self.content_type,
        }
        if self.interim:
            out["interim"] = list(self.interim)
        if self.pushed:
            out["pushed"] = True
        if self.error:
            out["error"] = self.error
        if not self.headers_reliable:
            out["headers_reliable"] = False
        if self.grpc is not None:
            out["grpc"] = self.grpc.summary()
        return out


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` (lowercase) in ``headers``."""
    for n, v in headers:
        if n == name:
            return v
    return None
