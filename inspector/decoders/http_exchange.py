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


class HttpExchange:
    """One request and its response.

    A class with slots rather than a dataclass: compiled (setup.py, ``http_exchange.pxd``) it is a
    C-level class, and building one (once per request) takes ~2,900 instructions against the
    dataclass's ~9,700.  Every argument is keyword-only; the three lists start empty.  The arguments
    the decoders pass come first: compiled, keyword arguments are looked up in that order until all
    are found.  Two exchanges are equal only if they are the same object (nothing compares them)."""

    __slots__ = ("stream", "method", "path", "authority", "scheme", "protocol", "version", "status", "content_type",
                 "request_content_type", "request_headers", "response_headers", "trailers", "interim", "pushed",
                 "request_ts", "request_end_ts", "response_ts", "end_ts", "request_arrival", "response_arrival",
                 "end_arrival", "request_frame", "response_frame", "end_frame", "request_bytes", "bytes", "error",
                 "headers_reliable", "grpc", "observer")

    def __init__(self, *, stream: int | None = None, request_ts: float | None = None,
                 request_arrival: float | None = None, request_frame: int | None = None,
                 headers_reliable: bool = True, pushed: bool = False, request_end_ts: float | None = None,
                 method: str | None = None, path: str | None = None, version: str | None = None,
                 request_headers: Headers | None = None, authority: str | None = None,
                 request_content_type: str | None = None, scheme: str | None = None, protocol: str | None = None,
                 status: int | None = None, content_type: str | None = None,
                 response_headers: Headers | None = None, trailers: Headers | None = None,
                 interim: list[int] | None = None, response_ts: float | None = None, end_ts: float | None = None,
                 response_arrival: float | None = None, end_arrival: float | None = None,
                 response_frame: int | None = None, end_frame: int | None = None, request_bytes: int = 0,
                 bytes: int = 0, error: str | None = None, grpc: GrpcCallState | None = None,
                 observer: BodyObserver | None = None) -> None:
        self.stream = stream  #: HTTP/2 stream id; None for HTTP/1.x
        self.method = method
        self.path = path
        self.authority = authority
        self.scheme = scheme
        self.protocol = protocol  #: HTTP/2 extended CONNECT ``:protocol``
        self.version = version  #: HTTP/1.x version of the request line
        self.status = status
        self.content_type = content_type  #: the response's
        self.request_content_type = request_content_type
        self.request_headers = [] if request_headers is None else request_headers
        self.response_headers = [] if response_headers is None else response_headers
        self.trailers = trailers
        self.interim = [] if interim is None else interim  #: 1xx statuses before the final one
        self.pushed = pushed
        self.request_ts = request_ts  #: request's first byte delivered (HTTP/2: its HEADERS)
        self.request_end_ts = request_end_ts
        self.response_ts = response_ts  #: response's first byte delivered
        self.end_ts = end_ts  #: response's last byte delivered (or the stream reset)
        self.request_arrival = request_arrival
        self.response_arrival = response_arrival
        self.end_arrival = end_arrival
        self.request_frame = request_frame
        self.response_frame = response_frame
        self.end_frame = end_frame
        self.request_bytes = request_bytes  #: request body bytes (de-chunked; HTTP/2: DATA without padding)
        self.bytes = bytes  #: response body bytes
        self.error = error  #: RST_STREAM error code name, or why the exchange is incomplete
        self.headers_reliable = headers_reliable
        self.grpc = grpc
        self.observer = observer

    def __repr__(self) -> str:
        return f"HttpExchange({', '.join(f'{n}={getattr(self, n)!r}' for n in HttpExchange.__slots__)})"

    def summary(self) -> dict[str, Any]:
        """The entry for ``summary --json``'s ``requests`` list."""
        # a copy of the template (30,000 such dicts make one record: see _SUMMARY_KEYS)
        out = _SUMMARY_KEYS.copy()
        out["stream"] = self.stream
        out["method"] = self.method
        out["path"] = self.path
        out["authority"] = self.authority
        out["status"] = self.status
        out["request_ts"] = self.request_ts
        out["response_ts"] = self.response_ts
        out["end_ts"] = self.end_ts
        out["bytes"] = self.bytes
        out["request_bytes"] = self.request_bytes
        out["content_type"] = self.content_type
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


#: the keys of HttpExchange.summary, in order.  Built by inserting str keys, it has the compact table
#: of str-only keys (a compiled dict display gets the general one, 40% larger: 5 MB per 30,000 requests)
_SUMMARY_KEYS: dict[str, Any] = dict.fromkeys(("stream", "method", "path", "authority", "status", "request_ts",
                                               "response_ts", "end_ts", "bytes", "request_bytes", "content_type"))


def header_value(headers: Headers, name: str) -> str | None:
    """The first value of ``name`` (lowercase) in ``headers``."""
    for n, v in headers:
        if n == name:
            return v
    return None
