"""Server-Sent Events: ``text/event-stream`` bodies parsed as the WHATWG HTML standard says.

The HTTP decoders (HTTP/1.1 and HTTP/2) find event-stream responses and hand
their de-chunked body bytes to a body observer (see
:mod:`.http_exchange`).  :class:`SseParser` turns those bytes into events
following HTML §9.2.6 "Interpreting an event stream": CRLF, LF and CR line
ends (a CR at the end of one chunk may pair with an LF at the start of the
next), a leading BOM, comments, ``event``/``data``/``id``/``retry`` fields,
multi-line data, and no dispatch for a block without data.

A reconnecting client sends ``Last-Event-ID``, usually on a new connection,
so linking the new stream to the one it resumes needs state across
connections: one :class:`SseStreams` per capture, whose :meth:`SseStreams.observer`
is the ``body_observer_factory`` the HTTP decoders take.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..events import Event, Note, SseEvent, SseReconnect, SseRetry

if TYPE_CHECKING:
    from .base import DecodeContext
    from .http_exchange import HttpExchange

_EOL = re.compile(rb"\r\n?|\n")
_BOM = b"\xef\xbb\xbf"
#: bytes of one line kept (a longer line is cut, and noted); data of one event likewise
_MAX_LINE = 1 << 20
_MAX_DATA = 4 << 20


@dataclass(slots=True)
class Dispatched:
    """An event the parser dispatched (before it is placed in time)."""

    event: str
    data: str
    id: str | None  #: this block's ``id`` field, if any
    last_event_id: str


@dataclass(slots=True)
class RetrySet:
    """A ``retry`` field with a valid (all-digit) value."""

    retry_ms: int


class SseParser:
    """Incremental ``text/event-stream`` parser; :meth:`feed` returns what became complete."""

    __slots__ = ("_line", "_cr", "_started", "_data", "_data_len", "_event", "_id", "last_event_id",
                 "comments", "cut")

    def __init__(self) -> None:
        self._line = bytearray()  # an unfinished line
        self._cr = False  # the last byte seen was a CR ending a line: an LF right after it is the same end
        self._started = False  # the leading BOM check is done
        self._data: list[str] = []
        self._data_len = 0
        self._event = ""
        self._id: str | None = None
        self.last_event_id = ""
        self.comments = 0
        self.cut = 0  # lines or data cut at the bounds

    def feed(self, data: bytes) -> list[Dispatched | RetrySet]:
        out: list[Dispatched | RetrySet] = []
        pos = 0
        if self._cr:
            self._cr = False
            if data[:1] == b"\n":
                pos = 1
        if not self._started:
            # the BOM may come split over chunks; wait until three bytes are seen
            head = bytes(self._line) + data[pos:pos + 3]
            if len(head) < 3 and _BOM.startswith(head):
                self._line += data[pos:]
                return out
            self._started = True
            if head.startswith(_BOM):
                skip = 3 - len(self._line)
                self._line.clear()
                pos += skip
        n = len(data)
        for m in _EOL.finditer(data, pos):
            start = m.start()
            if self._line:
                self._extend(data, pos, start)
                line = bytes(self._line)
                self._line.clear()
            else:
                line = data[pos:start] if start - pos <= _MAX_LINE else self._cut(data[pos:pos + _MAX_LINE])
            self._process(line, out)
            pos = m.end()
            if pos == n and data[start] == 0x0D and m.end() - start == 1:
                self._cr = True
        if pos < n:
            self._extend(data, pos, n)
        return out

    def end(self) -> bool:
        """The stream ended: an unfinished event is discarded (HTML §9.2.6). True if one was."""
        pending = bool(self._data or self._line)
        self._data.clear()
        self._line.clear()
        return pending

    def _cut(self, line: bytes) -> bytes:
        self.cut += 1
        return line

    def _extend(self, data: bytes, start: int, end: int) -> None:
        room = _MAX_LINE - len(self._line)
        if end - start > room:
            self.cut += 1
            end = start + max(room, 0)
        self._line += data[start:end]

    def _process(self, raw: bytes, out: list[Dispatched | RetrySet]) -> None:
        if not raw:
            self._dispatch(out)
            return
        if raw[0] == 0x3A:  # ":" comment (often a keep-alive)
            self.comments += 1
            return
        line = raw.decode("utf-8", "replace")
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            if self._data_len + len(value) > _MAX_DATA:
                self.cut += 1
                return
            self._data.append(value)
            self._data_len += len(value) + 1
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
                self.last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                out.append(RetrySet(int(value)))
        # any other field name is ignored (HTML §9.2.6)

    def _dispatch(self, out: list[Dispatched | RetrySet]) -> None:
        data, event, eid = self._data, self._event, self._id
        self._data, self._data_len, self._event, self._id = [], 0, "", None
        if not data:
            return
        out.append(Dispatched(event or "message", "\n".join(data), eid, self.last_event_id))


# --------------------------------------------------------------------------- streams across connections


class _Stream:
    __slots__ = ("conn", "stream", "authority", "path", "request_frame", "request_ts", "events", "first_ts",
                 "last_ts", "end_ts", "last_event_id", "retry_ms", "resumes", "discarded")

    def __init__(self, conn: int, ex: HttpExchange) -> None:
        self.conn = conn
        self.stream = ex.stream
        self.authority = ex.authority or _header(ex.request_headers, "host") or ""
        self.path = ex.path or ""
        self.request_frame = ex.request_frame
        self.request_ts = ex.request_ts
        self.events = 0
        self.first_ts: float | None = None
        self.last_ts: float | None = None  # last body bytes
        self.end_ts: float | None = None
        self.last_event_id = ""
        self.retry_ms: int | None = None
        self.resumes: dict[str, Any] | None = None
        self.discarded = False

    def summary(self) -> dict[str, Any]:
        return {
            "stream": self.stream, "authority": self.authority, "path": self.path,
            "request_ts": self.request_ts, "events": self.events,
            "first_event_ts": self.first_ts, "last_ts": self.last_ts, "end_ts": self.end_ts,
            "last_event_id": self.last_event_id or None, "retry_ms": self.retry_ms, "resumes": self.resumes,
            "ended_inside_event": self.discarded,
        }


def _header(headers: list[list[Any]], name: str) -> str | None:
    for n, v in headers:
        if n == name:
            return v
    return None


class SseObserver:
    """Body observer for one event-stream response (the HTTP decoders call it)."""

    def __init__(self, owner: SseStreams, ctx: DecodeContext, st: _Stream, pending: list[Event]) -> None:
        self._owner = owner
        self._ctx = ctx
        self._st = st
        self._pending = pending
        self.parser = SseParser()

    def feed_body(self, data: bytes, ts: float, frame: int) -> list[Event]:
        """De-chunked body bytes, in order, with the time and frame of their delivery."""
        out, self._pending = self._pending, []
        st = self._st
        st.last_ts = ts
        conn = self._ctx.conn
        for item in self.parser.feed(data):
            if isinstance(item, RetrySet):
                st.retry_ms = item.retry_ms
                out.append(SseRetry(frame=frame, ts=ts, conn=conn, stream=st.stream, retry_ms=item.retry_ms))
                continue
            st.events += 1
            if st.first_ts is None:
                st.first_ts = ts
            if item.last_event_id != st.last_event_id:
                st.last_event_id = item.last_event_id
                self._owner._saw_id(st)
            out.append(SseEvent(frame=frame, ts=ts, conn=conn, stream=st.stream, event=item.event, data=item.data,
                                id=item.id, last_event_id=item.last_event_id))
        if self.parser.last_event_id != st.last_event_id:  # an id in a block that dispatched nothing
            st.last_event_id = self.parser.last_event_id
            self._owner._saw_id(st)
        return out

    def end_body(self, ts: float, frame: int) -> list[Event]:
        """The response ended (a reconnecting client will come back with Last-Event-ID)."""
        out, self._pending = self._pending, []
        self._st.end_ts = ts
        if self.parser.end():
            self._st.discarded = True
            out.append(Note(frame=frame, ts=ts, conn=self._ctx.conn, layer="sse", direction="s2c",
                            message="event stream ended inside an event: it was discarded"))
        return out


class SseStreams:
    """Event streams of a whole capture, so a reconnection finds the stream it resumes.

    Make one per capture and pass :meth:`observer` as the HTTP decoders'
    ``body_observer_factory``.  A stream is remembered under (authority, path,
    last event id) each time its last event id changes; a later request with
    ``Last-Event-ID`` for the same authority and path (falling back to the id
    alone) is linked to it with the gap between the old stream's last bytes and
    the new request.  :meth:`summary` gives a connection's streams.
    """

    def __init__(self, max_ids: int = 100_000) -> None:
        self._by_key: OrderedDict[tuple[str, str, str], _Stream] = OrderedDict()
        self._by_id: OrderedDict[str, _Stream] = OrderedDict()
        self._streams: dict[int, list[_Stream]] = {}
        self._max = max_ids

    def observer(self, ctx: DecodeContext, ex: HttpExchange) -> SseObserver:
        """The ``body_observer_factory`` hook: called when an event-stream response head is complete."""
        st = _Stream(ctx.conn, ex)
        self._streams.setdefault(ctx.conn, []).append(st)
        pending: list[Event] = []
        last_id = _header(ex.request_headers, "last-event-id")
        if last_id is not None:
            old = self._by_key.get((st.authority, st.path, last_id)) or self._by_id.get(last_id)
            gap = None
            if old is not None and ex.request_ts is not None:
                end = old.end_ts if old.end_ts is not None else old.last_ts
                gap = round((ex.request_ts - end) * 1000.0, 3) if end is not None else None
            st.resumes = {"conn": old.conn if old else None, "stream": old.stream if old else None,
                          "last_event_id": last_id, "gap_ms": gap}
            st.last_event_id = last_id  # the client's state carries over (HTML §9.2.4)
            pending.append(SseReconnect(
                frame=ex.request_frame or 0, ts=ex.request_ts or 0.0, conn=ctx.conn, stream=ex.stream,
                last_event_id=last_id, resumes_conn=old.conn if old else None,
                resumes_stream=old.stream if old else None, gap_ms=gap))
        obs = SseObserver(self, ctx, st, pending)
        obs.parser.last_event_id = st.last_event_id
        return obs

    def _saw_id(self, st: _Stream) -> None:
        for table, key in ((self._by_key, (st.authority, st.path, st.last_event_id)), (self._by_id, st.last_event_id)):
            table[key] = st
            table.move_to_end(key)
            if len(table) > self._max:
                table.popitem(last=False)

    def summary(self, conn: int) -> dict[str, Any]:
        """``{"sse": {"streams": [...]}}`` for a connection that carried event streams, else ``{}``."""
        streams = self._streams.get(conn)
        if not streams:
            return {}
        return {"sse": {"streams": [s.summary() for s in streams]}}
