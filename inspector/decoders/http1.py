"""HTTP/1.x (RFC 9112) over one connection's two byte streams.

:class:`Http1Decoder` is a :class:`~inspector.decoders.base.StreamDecoder`.
Requests are parsed from the client stream and responses from the server
stream; a response answers the oldest request still waiting (so pipelined
requests are matched in order), interim ``1xx`` responses (``100 Continue``)
are recorded on the request they precede.  Bodies are delimited as RFC 9112
§6.3 says: none for HEAD, 1xx, 204 and 304; chunked (with trailers); by
Content-Length; else, for responses, by the end of the connection.  Bodies
are counted and streamed, never buffered whole.

Each request/response becomes an event when its last byte is delivered, with
the times of its first and last bytes; the shared
:class:`~.http_exchange.HttpExchange` record keeps request start, request
end, first response byte and response end for the summary.

Protocol switches:

* ``101 Switching Protocols`` with ``Upgrade: h2c`` (RFC 7540 §3.2): the rest
  of both streams goes to an :class:`~.http2.Http2Decoder` in which the
  upgraded request is stream 1 (its HTTP2-Settings applied).
* Any other ``101`` (``websocket``) and a ``CONNECT`` answered 2xx: the rest
  of both streams goes to the decoder ``upgrade_factory`` returns (see
  :mod:`.http_exchange` for the hook), or is left undecoded.
* ``text/event-stream`` response bodies are streamed to the observer
  ``body_observer_factory`` returns (see :mod:`.http_exchange`).

While a request that asked to switch protocols awaits its response, later
client bytes are held back: they belong to the new protocol if the server
agrees, to HTTP/1.1 if it does not.

Malformed input (bad request/status lines, bad chunk sizes, oversized
heads) becomes a ``malformed`` event; the decoder then looks for the next
line that starts a message and goes on.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import deque
from typing import Any

from ..events import C2S, DIRECTIONS, S2C, Event, HttpRequest, HttpResponse, Malformed, Note
from ..flows.streamindex import Span, StreamIndex
from .base import DecodeContext, StreamDecoder
from .http_exchange import BodyObserverFactory, Headers, HttpExchange, UpgradeFactory

#: A message head larger than this is malformed (nginx's default large buffers are 4 x 8 KiB).
MAX_HEAD = 64 * 1024
MAX_HEADER_LINES = 500
MAX_CHUNK_LINE = 4096
#: Bytes of the head kept on the event for the hex view.
RAW_KEEP = 16 * 1024

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP/\d\.\d)\r?$")
_STATUS_LINE = re.compile(rb"(HTTP/\d\.\d) (\d{3})(?: (.*?))?\r?$")
#: Where a message may start again after lost sync.
_REQUEST_START = re.compile(rb"(?:^|\n)([A-Z]{3,16} \S+ HTTP/1\.[01]\r?\n)")
_RESPONSE_START = re.compile(rb"(?:^|\n)(HTTP/1\.[01] \d{3}[ \r\n])")
_METHODS_WITHOUT_BODY_RESPONSE = {"HEAD"}


def looks_like_http1(client_bytes: bytes) -> bool:
    """Whether a client's first bytes start like an HTTP/1.x request line (method token, space)."""
    m = re.match(rb"([A-Z]{3,16}) ", client_bytes[:18])
    if m is None:
        return len(client_bytes) < 18 and re.fullmatch(rb"[A-Z]{0,16}", client_bytes) is not None and bool(client_bytes)
    return m.group(1) in _KNOWN_METHODS or len(client_bytes) >= 18 and b" HTTP/1." in client_bytes[:8192]


_KNOWN_METHODS = {b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
                  b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK"}


def parse_head(block: bytes) -> tuple[bytes, Headers, list[str]]:
    """Split a message head into its start line and ``[name, value]`` headers (names lowercased).

    Obsolete line folding is unfolded (RFC 9112 §5.2); lines without a colon
    are reported in the returned problems and skipped.
    """
    lines = block.split(b"\n")
    start = lines[0].rstrip(b"\r")
    headers: Headers = []
    problems: list[str] = []
    for raw in lines[1:]:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and headers:
            headers[-1][1] = (headers[-1][1] + " " + line.strip().decode("latin-1")).strip()
            continue
        colon = line.find(b":")
        if colon <= 0 or _TOKEN.fullmatch(line[:colon]) is None:
            problems.append(f"invalid header line {line[:60]!r}")
            continue
        headers.append([line[:colon].decode("ascii").lower(), line[colon + 1:].strip(b" \t").decode("latin-1")])
        if len(headers) > MAX_HEADER_LINES:
            problems.append(f"more than {MAX_HEADER_LINES} header lines")
            break
    return start, headers, problems


def _tokens(headers: Headers, name: str) -> list[str]:
    out: list[str] = []
    for n, v in headers:
        if n == name:
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def _get(headers: Headers, name: str) -> str | None:
    for n, v in headers:
        if n == name:
            return v
    return None


class _Msg:
    """The message being read on one direction."""

    __slots__ = ("exchange", "start", "head_end", "head_raw", "headers", "chunked", "remaining", "body",
                 "trailers", "close_delimited", "status", "reason", "version", "first_span", "observer")

    def __init__(self, exchange: HttpExchange, start: int) -> None:
        self.exchange = exchange
        self.start = start  # stream offset of the first byte
        self.head_end = start
        self.head_raw = b""
        self.headers: Headers = []
        self.chunked = False
        self.remaining = 0  # body bytes (or bytes of the current chunk) still to come
        self.body = 0
        self.trailers: Headers | None = None
        self.close_delimited = False
        self.status = 0
        self.reason = ""
        self.version = ""
        self.first_span: Any = None
        self.observer: Any = None


class _Reader:
    """One direction: buffered bytes and where the parser is."""

    __slots__ = ("direction", "buf", "base", "started", "state", "msg", "index", "held", "switch_at", "lost")

    def __init__(self, direction: int) -> None:
        self.direction = direction
        self.buf = bytearray()
        self.base = 0  # stream offset of buf[0]
        self.started = False
        # head, body, chunk_size, chunk_data, chunk_crlf, trailers, close, held, switched, opaque, resync
        self.state = "head"
        self.msg: _Msg | None = None
        self.index: StreamIndex | None = None
        self.switch_at = -1  # stream offset where a switched protocol's bytes start
        self.lost = False


class Http1Decoder:
    """Observes one HTTP/1.x connection (see the module docstring)."""

    def __init__(self, ctx: DecodeContext, *, upgrade_factory: UpgradeFactory | None = None,
                 body_observer_factory: BodyObserverFactory | None = None) -> None:
        self.ctx = ctx
        self.conn = ctx.conn
        self.upgrade_factory = upgrade_factory
        self.body_observer_factory = body_observer_factory
        self.readers = (_Reader(C2S), _Reader(S2C))
        self.exchanges: list[HttpExchange] = []
        self.pending: deque[HttpExchange] = deque()  # requests (heads seen) awaiting their final response
        self.inner: StreamDecoder | None = None  # decoder after a protocol switch
        self.switched_to: str | None = None
        self.pipelined = 0
        self.malformed = 0
        self._versions: set[str] = set()

    # ------------------------------------------------------------------ StreamDecoder

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        r = self.readers[direction]
        r.index = index
        if not data:
            return []
        if not r.started:
            r.started = True
            r.base = offset
        out: list[Event] = []
        expected = r.base + len(r.buf)
        if offset < expected:
            data = data[expected - offset:]
            offset = expected
            if not data:
                return out
        elif offset > expected:  # a hole nobody told us about
            out += self.gap(direction, expected, offset - expected, index)
        if r.state == "switched" or r.state == "opaque":
            r.base = offset + len(data)
            if self.inner is not None and r.state == "switched":
                out += self.inner.feed(direction, data, offset, index)
            return out
        r.buf += data
        self._run(r, out)
        return out

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        r = self.readers[direction]
        r.index = index
        out: list[Event] = []
        if r.state == "switched":
            r.base = offset + length
            if self.inner is not None:
                return self.inner.gap(direction, offset, length, index)
            return out
        if not r.started:
            r.started = True
            r.base = offset + length
            r.state = "resync"
            return out
        # run what we have first, so the state says where the gap falls
        self._run(r, out)
        msg = r.msg
        end = offset + length
        if r.state in ("body", "chunk_data") and msg is not None and len(r.buf) == 0 and length <= msg.remaining:
            # the gap lies inside a body of known length: framing survives
            msg.remaining -= length
            msg.body += length
            msg.exchange.error = msg.exchange.error or "body bytes missing from capture"
            r.base = end
            if msg.remaining == 0:
                self._run(r, out)
            return out
        if r.state == "close" and msg is not None:
            msg.body += length
            msg.exchange.error = msg.exchange.error or "body bytes missing from capture"
            r.base = end
            r.buf.clear()
            return out
        if r.state == "opaque":
            r.base = end
            return out
        # framing lost: drop the message in progress and look for the next start line
        if msg is not None:
            msg.exchange.error = msg.exchange.error or "message cut by a capture gap"
            if direction == S2C and self.pending and self.pending[0] is msg.exchange:
                self.pending.popleft()
        r.msg = None
        r.buf.clear()
        r.base = end
        r.state = "resync"
        return out

    def end(self, direction: int, frame: int, ts: float) -> list[Event]:
        """The direction's stream ended with a FIN in ``frame``: a close-delimited body is
        complete there (RFC 9112 §6.3, rule 8), where tshark reports the response too."""
        out: list[Event] = []
        r = self.readers[direction]
        if r.state == "close" and r.msg is not None and r.index is not None:
            end = r.base + len(r.buf)
            self._message_done(r, end, out, at=Span(end, end, frame, ts, ts, frame))
        return out

    def finish(self) -> list[Event]:
        out: list[Event] = []
        for r in self.readers:
            if r.state == "close" and r.msg is not None and r.index is not None:
                # a close-delimited body ends with the capture (or the connection)
                self._message_done(r, r.base + len(r.buf), out)
            elif r.msg is not None and r.index is not None and r.state not in ("switched", "opaque", "held"):
                last = max(r.base + len(r.buf) - 1, r.msg.start)
                span = self._locate(r, last)
                out.append(Note(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http",
                                direction=DIRECTIONS[r.direction], severity="note",
                                message=f"{'request' if r.direction == C2S else 'response'} incomplete at end of capture"))
                r.msg.exchange.error = r.msg.exchange.error or "incomplete at end of capture"
        if self.inner is not None:
            out += self.inner.finish()
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "app": "http/1.1",
            "requests": [ex.summary() for ex in self.exchanges],
            "http1": {"requests": len(self.exchanges), "pipelined": self.pipelined, "malformed": self.malformed,
                      "versions": sorted(self._versions)},
        }
        if self.switched_to is not None:
            out["http1"]["switched_to"] = self.switched_to
        if self.inner is not None:
            inner = self.inner.summary()
            if self.switched_to == "h2c":
                # the upgrade request is stream 1 of the inner decoder: list it once
                inner_reqs = inner.get("requests", [])
                ours = [ex.summary() for ex in self.exchanges if ex.stream != 1]
                inner["requests"] = ours + inner_reqs
                inner.setdefault("http1", out["http1"])
                out.update(inner)
            else:
                reqs = out["requests"]
                out.update(inner)
                if "requests" not in inner:
                    out["requests"] = reqs
        return out

    # ------------------------------------------------------------------ parsing

    def _locate(self, r: _Reader, offset: int):
        assert r.index is not None
        return r.index.locate(offset)

    def _run(self, r: _Reader, out: list[Event]) -> None:
        """Parse as far as the buffered bytes allow."""
        handlers = {
            "head": self._head, "body": self._body, "chunk_size": self._chunk_size, "chunk_data": self._chunk_data,
            "chunk_crlf": self._chunk_crlf, "trailers": self._trailers, "close": self._close_body,
            "resync": self._resync,
        }
        while r.buf:
            h = handlers.get(r.state)
            if h is None or not h(r, out):
                break
        if r.state == "switched" and self.inner is not None and r.buf:
            data = bytes(r.buf)
            off = r.base
            r.buf.clear()
            r.base = off + len(data)
            out += self.inner.feed(r.direction, data, off, r.index)  # type: ignore[arg-type]
        elif r.state == "opaque":
            r.base += len(r.buf)
            r.buf.clear()
        if r.index is not None and r.state != "switched":
            r.index.release(r.base)

    def _consume(self, r: _Reader, n: int) -> None:
        del r.buf[:n]
        r.base += n

    def _head(self, r: _Reader, out: list[Event]) -> bool:
        buf = r.buf
        # tolerate empty lines before a request line (RFC 9112 §2.2)
        skip = 0
        while skip < len(buf) and buf[skip] in (0x0D, 0x0A):
            skip += 1
        if skip:
            self._consume(r, skip)
            if not buf:
                return False
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head_len = end + 4
        else:
            end = buf.find(b"\n\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._bad(r, r.base + len(buf) - 1, f"message head larger than {MAX_HEAD} bytes", out)
                    return True
                return False
            head_len = end + 2
        if head_len > MAX_HEAD:
            self._bad(r, r.base + head_len - 1, f"message head larger than {MAX_HEAD} bytes", out)
            return True
        block = bytes(buf[:head_len])
        start, headers, problems = parse_head(block)
        start_off = r.base
        last = r.base + head_len - 1
        if r.direction == C2S:
            ok = self._request_head(r, start, headers, block, start_off, last, out)
        else:
            ok = self._response_head(r, start, headers, block, start_off, last, out)
        if not ok:
            return True
        if problems:
            span = self._locate(r, last)
            for p in problems[:5]:
                out.append(self._malformed(r, span, p))
        self._consume(r, head_len)
        return True

    def _request_head(self, r: _Reader, start: bytes, headers: Headers, block: bytes, start_off: int, last: int,
                      out: list[Event]) -> bool:
        m = _REQUEST_LINE.fullmatch(start)
        if m is None:
            self._bad(r, last, f"invalid request line {start[:80]!r}", out)
            return False
        method = m.group(1).decode("ascii")
        target = m.group(2).decode("latin-1")
        version = m.group(3).decode("ascii")
        self._versions.add(version)
        first = self._locate(r, start_off)
        span = self._locate(r, last)
        ex = HttpExchange(method=method, path=target, version=version, request_headers=headers,
                          authority=_get(headers, "host"), request_ts=first.delivered, request_arrival=first.arrival,
                          request_frame=span.frame, request_content_type=_get(headers, "content-type"))
        if method == "CONNECT":
            ex.authority = target
        if self.pending:  # sent before the previous response was complete
            self.pipelined += 1
        self.exchanges.append(ex)
        self.pending.append(ex)
        msg = _Msg(ex, start_off)
        msg.head_end = last + 1
        msg.head_raw = block[:RAW_KEEP]
        msg.headers = headers
        msg.version = version
        msg.first_span = first
        r.msg = msg
        problem = self._body_framing(msg, headers, is_request=True)
        if problem:
            out.append(self._malformed(r, span, problem))
        if msg.chunked:
            r.state = "chunk_size"
        elif msg.remaining:
            r.state = "body"
        else:
            self._message_done(r, last + 1, out)
        return True

    def _response_head(self, r: _Reader, start: bytes, headers: Headers, block: bytes, start_off: int, last: int,
                       out: list[Event]) -> bool:
        m = _STATUS_LINE.fullmatch(start)
        if m is None:
            self._bad(r, last, f"invalid status line {start[:80]!r}", out)
            return False
        version = m.group(1).decode("ascii")
        status = int(m.group(2))
        reason = (m.group(3) or b"").decode("latin-1")
        first = self._locate(r, start_off)
        span = self._locate(r, last)
        if self.pending:
            ex = self.pending[0]
        else:  # its request is not in the capture
            ex = HttpExchange(version=version)
            self.exchanges.append(ex)
            self.pending.append(ex)
        if ex.response_ts is None:
            ex.response_ts, ex.response_arrival, ex.response_frame = first.delivered, first.arrival, first.frame
        msg = _Msg(ex, start_off)
        msg.head_end = last + 1
        msg.head_raw = block[:RAW_KEEP]
        msg.headers = headers
        msg.status = status
        msg.reason = reason
        msg.version = version
        msg.first_span = first
        r.msg = msg
        if 100 <= status < 200:
            ex.interim.append(status)
            self._emit_response(r, msg, span, out)
            r.msg = None
            if status == 101:
                self._switch(r, ex, headers, last + 1, span, out)
            return True
        ex.status = status
        ex.response_headers = headers
        ex.content_type = _get(headers, "content-type")
        if ex.method == "CONNECT" and 200 <= status < 300:
            self._message_done(r, last + 1, out, switching=True)
            self._switch(r, ex, headers, last + 1, span, out, protocol="connect")
            return True
        if ex.method in _METHODS_WITHOUT_BODY_RESPONSE or status in (204, 304):
            msg.remaining = 0
        else:
            problem = self._body_framing(msg, headers, is_request=False)
            if problem:
                out.append(self._malformed(r, span, problem))
        if (self.body_observer_factory is not None and ex.content_type
                and ex.content_type.startswith("text/event-stream")):
            msg.observer = ex.observer = self.body_observer_factory(self.ctx, ex)
        if msg.chunked:
            r.state = "chunk_size"
        elif msg.close_delimited:
            r.state = "close"
        elif msg.remaining:
            r.state = "body"
        else:
            self._message_done(r, last + 1, out)
        return True

    def _body_framing(self, msg: _Msg, headers: Headers, is_request: bool) -> str | None:
        """Set chunked / remaining / close-delimited from the headers (RFC 9112 §6.3)."""
        te = _tokens(headers, "transfer-encoding")
        if te:
            if te[-1] == "chunked":
                msg.chunked = True
                return None
            if is_request:
                return f"request Transfer-Encoding {te} does not end in chunked"
            msg.close_delimited = True
            return None
        lengths = {v.strip() for n, v in headers if n == "content-length"}
        if lengths:
            values = {x.strip() for v in lengths for x in v.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                if not is_request:
                    msg.close_delimited = True
                return f"invalid Content-Length {sorted(lengths)}"
            msg.remaining = int(next(iter(values)))
            return None
        if not is_request:
            msg.close_delimited = True
        return None

    def _body(self, r: _Reader, out: list[Event]) -> bool:
        msg = r.msg
        assert msg is not None
        take = min(msg.remaining, len(r.buf))
        if take:
            self._body_bytes(r, msg, take, out)
            msg.remaining -= take
        if msg.remaining == 0:
            self._message_done(r, r.base, out)
            return True
        return False

    def _body_bytes(self, r: _Reader, msg: _Msg, n: int, out: list[Event]) -> None:
        msg.body += n
        if msg.observer is not None:
            span = self._locate(r, r.base + n - 1)
            more = msg.observer.feed_body(bytes(r.buf[:n]), span.delivered, span.frame)
            if more:
                out += more
        self._consume(r, n)

    def _chunk_size(self, r: _Reader, out: list[Event]) -> bool:
        buf = r.buf
        nl = buf.find(b"\n", 0, MAX_CHUNK_LINE)
        if nl < 0:
            if len(buf) >= MAX_CHUNK_LINE:
                self._bad(r, r.base + len(buf) - 1, "chunk-size line too long", out)
                return True
            return False
        line = bytes(buf[:nl]).rstrip(b"\r")
        size_text = line.split(b";", 1)[0].strip()
        try:
            if not size_text or len(size_text) > 16:
                raise ValueError
            size = int(size_text, 16)
        except ValueError:
            self._bad(r, r.base + nl, f"invalid chunk size {line[:40]!r}", out)
            return True
        self._consume(r, nl + 1)
        msg = r.msg
        assert msg is not None
        if size == 0:
            r.state = "trailers"
        else:
            msg.remaining = size
            r.state = "chunk_data"
        return True

    def _chunk_data(self, r: _Reader, out: list[Event]) -> bool:
        msg = r.msg
        assert msg is not None
        take = min(msg.remaining, len(r.buf))
        if take:
            self._body_bytes(r, msg, take, out)
            msg.remaining -= take
        if msg.remaining == 0:
            r.state = "chunk_crlf"
            return True
        return False

    def _chunk_crlf(self, r: _Reader, out: list[Event]) -> bool:
        buf = r.buf
        if buf[:1] == b"\n":
            self._consume(r, 1)
        elif buf[:2] == b"\r\n":
            self._consume(r, 2)
        elif buf[:1] == b"\r" and len(buf) < 2:
            return False
        else:
            self._bad(r, r.base, "chunk data not followed by CRLF", out)
            return True
        r.state = "chunk_size"
        return True

    def _trailers(self, r: _Reader, out: list[Event]) -> bool:
        buf = r.buf
        if buf[:2] == b"\r\n" or buf[:1] == b"\n":
            n = 2 if buf[:1] == b"\r" else 1
            self._consume(r, n)
            self._message_done(r, r.base, out)
            return True
        end = buf.find(b"\r\n\r\n")
        n = end + 4
        if end < 0:
            end = buf.find(b"\n\n")
            n = end + 2
        if end < 0:
            if len(buf) > MAX_HEAD:
                self._bad(r, r.base + len(buf) - 1, f"trailer section larger than {MAX_HEAD} bytes", out)
                return True
            return False
        _, trailers, problems = parse_head(b"\r\n" + bytes(buf[:n]))
        msg = r.msg
        assert msg is not None
        msg.trailers = trailers
        msg.exchange.trailers = trailers if r.direction == S2C else msg.exchange.trailers
        self._consume(r, n)
        self._message_done(r, r.base, out)
        return True

    def _close_body(self, r: _Reader, out: list[Event]) -> bool:
        msg = r.msg
        assert msg is not None
        self._body_bytes(r, msg, len(r.buf), out)
        return False

    def _resync(self, r: _Reader, out: list[Event]) -> bool:
        pattern = _REQUEST_START if r.direction == C2S else _RESPONSE_START
        m = pattern.search(r.buf)
        if m is None:
            keep = min(len(r.buf), 64)  # a start line may straddle the next feed
            self._consume(r, len(r.buf) - keep)
            return False
        self._consume(r, m.start(1))
        r.state = "head"
        span = self._locate(r, r.base)
        out.append(Note(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http",
                        direction=DIRECTIONS[r.direction], severity="warning",
                        message="HTTP/1.x parsing resumed at the next message start after lost sync"))
        return True

    # ------------------------------------------------------------------ completion

    def _message_done(self, r: _Reader, end: int, out: list[Event], switching: bool = False,
                      at: Span | None = None) -> None:
        """``r``'s message ends before stream offset ``end``; it completed in the span of its
        last byte, or in ``at`` (the FIN that ended a close-delimited body)."""
        msg = r.msg
        assert msg is not None
        r.msg = None
        span = at if at is not None else self._locate(r, max(end - 1, msg.start))
        ex = msg.exchange
        if r.direction == C2S:
            ex.request_end_ts = span.delivered
            ex.request_bytes = msg.body
            if msg.trailers is not None:
                ex.trailers = msg.trailers
            out.append(HttpRequest(frame=span.frame, ts=span.delivered, conn=self.conn, method=ex.method or "",
                                   target=ex.path or "", version=msg.version, headers=msg.headers,
                                   body_bytes=msg.body, chunked=msg.chunked, trailers=msg.trailers,
                                   start_ts=msg.first_span.delivered, arrival=span.arrival, raw=msg.head_raw))
            r.state = "head"
            if self._wants_switch(ex) and r.switch_at < 0:
                # hold later client bytes until the server says whether it switches
                r.state = "held"
            return
        ex.bytes = msg.body
        ex.end_ts, ex.end_arrival, ex.end_frame = span.delivered, span.arrival, span.frame
        if msg.observer is not None:
            end_body = getattr(msg.observer, "end_body", None)
            if end_body is not None:
                more = end_body(span.delivered, span.frame)
                if more:
                    out += more
        self._emit_response(r, msg, span, out)
        if self.pending and self.pending[0] is ex:
            self.pending.popleft()
        if switching:
            return
        r.state = "head"
        # a request that asked to switch was answered without switching: the client goes on in HTTP/1.1
        c = self.readers[C2S]
        if c.state == "held":
            c.state = "head"
            if c.buf:
                self._run(c, out)

    def _emit_response(self, r: _Reader, msg: _Msg, span: Any, out: list[Event]) -> None:
        ex = msg.exchange
        out.append(HttpResponse(frame=span.frame, ts=span.delivered, conn=self.conn, status=msg.status,
                                reason=msg.reason, version=msg.version, headers=msg.headers, body_bytes=msg.body,
                                chunked=msg.chunked, trailers=msg.trailers, request_method=ex.method,
                                request_target=ex.path, request_frame=ex.request_frame,
                                first_byte_ts=msg.first_span.delivered, arrival=span.arrival, raw=msg.head_raw))

    @staticmethod
    def _wants_switch(ex: HttpExchange) -> bool:
        if ex.method == "CONNECT":
            return True
        return bool(_get(ex.request_headers, "upgrade")) and "upgrade" in _tokens(ex.request_headers, "connection")

    def _switch(self, r: _Reader, ex: HttpExchange, headers: Headers, at: int, span: Any, out: list[Event],
                protocol: str | None = None) -> None:
        """The server switched protocols at stream offset ``at`` (S2C); client bytes after the request follow."""
        if protocol is None:
            protocol = (_get(headers, "upgrade") or "").strip().lower()
        c = self.readers[C2S]
        if ex.end_ts is None and protocol != "h2c":  # after h2c the response goes on as stream 1
            ex.end_ts, ex.end_arrival, ex.end_frame = span.delivered, span.arrival, span.frame
        if self.pending and self.pending[0] is ex:
            self.pending.popleft()
        inner: StreamDecoder | None = None
        if protocol == "h2c":
            from .http2 import Http2Decoder  # the HTTP/2 decoder is only needed after such an upgrade

            settings = None
            raw = _get(ex.request_headers, "http2-settings")
            if raw:
                try:
                    settings = base64.urlsafe_b64decode(raw.strip() + "=" * (-len(raw.strip()) % 4))
                except (binascii.Error, ValueError):
                    out.append(self._malformed(r, span, "HTTP2-Settings is not base64url"))
            ex.interim = [s for s in ex.interim if s != 101] + [101]
            inner = Http2Decoder(self.ctx, upgrade_factory=self.upgrade_factory,
                                 body_observer_factory=self.body_observer_factory, upgraded=ex,
                                 upgrade_settings=settings)
        else:
            if protocol != "connect":  # the 101 is this exchange's final answer
                ex.status = 101
                ex.response_headers = headers
                if 101 in ex.interim:
                    ex.interim.remove(101)
            if self.upgrade_factory is not None:
                inner = self.upgrade_factory(self.ctx, protocol, ex.request_headers, headers)
            if inner is None and protocol == "connect":
                # nobody claimed the tunnel: HTTP inside it is still HTTP (as tshark decodes it)
                inner = _TunnelSniffer(self.ctx, self.upgrade_factory, self.body_observer_factory)
        self.switched_to = protocol
        self.inner = inner
        # server bytes after the 101 head
        r.state = "switched" if inner is not None else "opaque"
        r.msg = None
        # client bytes after the request (those held back, and any still to come)
        c.switch_at = c.base
        c.state = "switched" if inner is not None else "opaque"
        c.msg = None
        if inner is None:
            out.append(Note(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http", direction="s2c",
                            severity="note", message=f"connection switched to {protocol or 'an unnamed protocol'}; "
                                                     "its bytes are not decoded here"))
            c.base += len(c.buf)
            c.buf.clear()
        elif c.buf and c.index is not None:
            data = bytes(c.buf)
            off = c.base
            c.buf.clear()
            c.base = off + len(data)
            out += inner.feed(C2S, data, off, c.index)

    def _bad(self, r: _Reader, last: int, reason: str, out: list[Event]) -> None:
        """Malformed input: report it and resynchronise on the next message start."""
        span = self._locate(r, max(last, r.base))
        out.append(self._malformed(r, span, reason))
        if r.msg is not None:
            r.msg.exchange.error = r.msg.exchange.error or reason
            if r.direction == S2C and self.pending and self.pending[0] is r.msg.exchange:
                self.pending.popleft()
            r.msg = None
        # skip the offending line so resync does not find the same start again
        nl = r.buf.find(b"\n")
        self._consume(r, nl + 1 if nl >= 0 else len(r.buf))
        r.state = "resync"

    def _malformed(self, r: _Reader, span: Any, reason: str) -> Malformed:
        self.malformed += 1
        return Malformed(frame=span.frame, ts=span.delivered, conn=self.conn, layer="http",
                         direction=DIRECTIONS[r.direction], reason=reason)


class _TunnelSniffer:
    """The bytes of a CONNECT tunnel: HTTP/2 or HTTP/1.x inside is decoded, anything else is not.

    The client speaks first in both, so its first bytes decide; server bytes
    that come earlier are held (bounded) until then.
    """

    _HOLD = 64 * 1024

    def __init__(self, ctx: DecodeContext, upgrade_factory: UpgradeFactory | None,
                 body_observer_factory: BodyObserverFactory | None) -> None:
        self.ctx = ctx
        self.hooks = {"upgrade_factory": upgrade_factory, "body_observer_factory": body_observer_factory}
        self.inner: StreamDecoder | None = None
        self.decided = False
        self.held: list[tuple[bytes, int, StreamIndex]] = []

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        if not self.decided:
            if direction == S2C:
                if sum(len(d) for d, _, _ in self.held) < self._HOLD:
                    self.held.append((bytes(data), offset, index))
                return []
            from .http2 import Http2Decoder, looks_like_h2

            self.decided = True
            if looks_like_h2(data):
                self.inner = Http2Decoder(self.ctx, **self.hooks)  # type: ignore[arg-type]
            elif looks_like_http1(data):
                self.inner = Http1Decoder(self.ctx, **self.hooks)  # type: ignore[arg-type]
            out: list[Event] = []
            if self.inner is not None:
                out += self.inner.feed(direction, data, offset, index)
                for d, off, idx in self.held:
                    out += self.inner.feed(S2C, d, off, idx)
            self.held.clear()
            return out
        return self.inner.feed(direction, data, offset, index) if self.inner is not None else []

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        return self.inner.gap(direction, offset, length, index) if self.inner is not None else []

    def finish(self) -> list[Event]:
        return self.inner.finish() if self.inner is not None else []

    def summary(self) -> dict[str, Any]:
        """The tunnel's own requests are listed after the CONNECT itself."""
        if self.inner is None:
            return {}
        inner = self.inner.summary()
        inner.pop("app", None)
        return {"tunnel": inner}
