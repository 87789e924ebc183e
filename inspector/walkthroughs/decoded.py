"""A capture decoded once for a walkthrough: its events, connection summaries and frame times.

Walkthroughs read everything from here: the events the export would write
(TCP segments included), the ``summary --json`` object of each connection,
and, when asked for, the bytes each connection delivered in order
(:class:`ByteTap`) for the few facts no decoder keeps (e.g. the publish time
inside a polled JSON body).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from ..decoders.registry import Registry
from ..events import DnsMessage, Event, QuicPacket, TcpSegment, UdpDatagram
from ..keylog import KeyLog
from ..output.summary import summaries
from ..pipeline import decode_file
from .model import CaptureRef


_WIRE_UNITS = (TcpSegment, QuicPacket, DnsMessage, UdpDatagram)


class _TeeDecoder:
    """Passes every in-order byte run to a recorder, then to the real decoder."""

    def __init__(self, inner: Any, record: Any, conn: int) -> None:
        self._inner = inner
        self._record = record
        self._conn = conn

    def feed(self, direction: int, data: bytes, offset: int, index: Any) -> list[Event]:
        self._record(self._conn, direction, data, offset, index)
        return self._inner.feed(direction, data, offset, index)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ByteTap(Registry):
    """The project's registry, recording what each TCP connection delivered in order.

    Per ``(conn, direction)``: the bytes and, per run, ``(start, end, frame,
    delivered_ts)``.  Only used on the small lab captures.
    """

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[tuple[int, int], bytearray] = defaultdict(bytearray)
        self.runs: dict[tuple[int, int], list[tuple[int, int, int, float]]] = defaultdict(list)
        self._base: dict[tuple[int, int], int] = {}

    def choose_stream(self, ctx: Any, direction: int, first: bytes) -> Any:
        dec = super().choose_stream(ctx, direction, first)
        return None if dec is None else _TeeDecoder(dec, self._record, ctx.conn)

    def _record(self, conn: int, direction: int, data: bytes, offset: int, index: Any) -> None:
        key = (conn, direction)
        base = self._base.setdefault(key, offset)
        buf = self.data[key]
        pos = offset - base
        if pos != len(buf):
            return  # never happens for in-order delivery; keep the record consistent if it does
        buf += data
        for span in index.spans(offset, offset + len(data)):
            s, e = max(span.start, offset) - base, min(span.end, offset + len(data)) - base
            self.runs[key].append((s, e, span.frame, span.delivered))

    def when(self, conn: int, direction: int, pos: int) -> tuple[int, float]:
        """(frame, delivered time) of the byte at ``pos`` of a connection's direction."""
        for s, e, frame, ts in self.runs[(conn, direction)]:
            if s <= pos < e:
                return frame, ts
        raise LookupError(f"byte {pos} of conn {conn} direction {direction} not recorded")


class Decoded:
    """One capture decoded with every event kept (see the module docstring)."""

    def __init__(self, ref: CaptureRef, *, tap: bool = False) -> None:
        self.ref = ref
        self.events: list[Event] = []
        keylog = KeyLog.from_file(str(ref.keylog)) if ref.keylog else KeyLog()
        self.tap = ByteTap() if tap else None
        pipe, _reader = decode_file(str(ref.path), keylog=keylog, on_event=self.events.append, segments=True,
                                    registry=self.tap)
        self.frame_count = pipe.frame
        self.conns: dict[int, dict[str, Any]] = {s["id"]: s for s in summaries(pipe.connections, pipe.registry)}
        self.frame_ts: dict[int, float] = {}
        self.frame_dir: dict[int, tuple[int | None, str]] = {}
        for ev in self.events:
            self.frame_ts.setdefault(ev.frame, ev.ts)
            if isinstance(ev, _WIRE_UNITS):
                # units that travel in the frame they name (not reassembled ones)
                self.frame_dir.setdefault(ev.frame, (ev.conn, ev.direction))

    def select(self, conn: int | None = None, layer: str | None = None, type: str | tuple[str, ...] | None = None,
               direction: str | None = None, stream: int | None = None, **attrs: Any) -> list[Event]:
        """Events matching every given attribute (``type`` may be a tuple)."""
        out = []
        for ev in self.events:
            if conn is not None and ev.conn != conn:
                continue
            if layer is not None and ev.layer != layer:
                continue
            if type is not None and (ev.type != type if isinstance(type, str) else ev.type not in type):
                continue
            if direction is not None and getattr(ev, "direction", None) != direction:
                continue
            if stream is not None and getattr(ev, "stream", None) != stream:
                continue
            if any(getattr(ev, k, None) != v for k, v in attrs.items()):
                continue
            out.append(ev)
        return out

    def one(self, **kw: Any) -> Event:
        """The first event matching :meth:`select`'s arguments (``LookupError`` if none)."""
        found = self.select(**kw)
        if not found:
            raise LookupError(f"{self.ref.name}: no event with {kw}")
        return found[0]

    def segments(self, conn: int, direction: str | None = None) -> Iterator[Event]:
        return iter(self.select(conn=conn, layer="tcp", type="segment", direction=direction))

    def conn_ids(self, **where: Any) -> list[int]:
        """Connection ids whose summary has every ``key=value`` given (e.g. ``app="h2"``)."""
        return [i for i, s in self.conns.items() if all(s.get(k) == v for k, v in where.items())]
