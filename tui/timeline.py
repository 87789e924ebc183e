"""The timeline model of one connection: lanes of marks and shaded spans over time.

Lanes: the setup phases (TCP handshake, TLS or QUIC handshake, labelled with
their round trips), the transport in each direction (segments or QUIC
packets; losses, retransmissions, duplicate ACKs stand out), TLS records,
one lane per HTTP/2 or HTTP/3 stream (and the connection's control lane),
WebSocket directions, HTTP/1.x exchanges, DNS, and notes.  Spans mark what
lasted: a stream's lifetime, a flow-control stall, data waiting for a lost
QUIC packet, and any analysis event with ``start``/``end`` (HOL episodes
from the RTT/HOL analysis) across the lanes of the streams it names.

Built incrementally from the connection's event list (:meth:`update`), and
binned per screen column by :meth:`Lane.columns`.  No Textual here.
"""

from __future__ import annotations

import re
import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


# mark priorities: the most important mark of a column wins
P_ACK, P_DATA, P_INFO, P_CONTROL, P_WARN, P_LOSS = 1, 3, 4, 5, 7, 9


@dataclass(slots=True)
class Span:
    t0: float
    t1: float
    char: str
    style: str
    label: str = ""
    index: int = -1  #: the event it came from (for a click)
    short: str = ""  #: a label for when ``label`` does not fit


#: A lane keeps at most one mark per bin of its model's time grid, and the grid has at most this
#: many bins (it doubles its bin width as the connection's time grows): a lane's memory is bounded
#: whatever the number of events, and a zoomed-in window is drawn from the events themselves.
BINS = 8192
#: A window whose events would number more than this is drawn from the bins even when they are coarse.
WINDOW_EVENTS = 60000
#: A stream's lane whose events span more than this many of the connection's keeps its own marks.
LAZY_EVENTS = 4096


@dataclass(eq=False)
class Lane:
    key: tuple[Any, ...]
    name: str
    order: tuple[Any, ...]
    grid: Any = None  #: the TimelineModel whose time grid the bins follow
    #: bin -> the bin's most important mark (prio, char, style, event index, ts); the first one wins ties
    bins: dict[int, tuple[int, str, str, int, float]] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    version: int = 0
    #: a stream's lane keeps no marks while its events lie within :data:`LAZY_EVENTS` of each other
    #: (a connection can have 500,000 streams): they are read from the events ``lo..hi`` when drawn
    lazy: bool = False
    lo: int = -1
    hi: int = -1

    def add(self, ts: float, prio: int, char: str, style: str, index: int) -> None:
        if self.lazy:
            if self.lo < 0:
                self.lo = index
            if index > self.hi:
                self.hi = index
            if self.hi - self.lo <= LAZY_EVENTS:
                self.version += 1
                return
            self._keep_marks(index)
            return
        g = self.grid
        b = int((ts - g.t_base) * g.inv)
        if not 0 <= b < g.max_bins:
            if g.fixed:
                return  # a window's scan: outside the window
            if b < 0:
                b = 0
            else:
                g._widen(ts)
                b = int((ts - g.t_base) * g.inv)
        cur = self.bins.get(b)
        if cur is None or prio > cur[0]:
            self.bins[b] = (prio, char, style, index, ts)
            self.version += 1

    def _keep_marks(self, upto: int) -> None:
        """A long-lived stream: from now on its marks are kept in bins, starting with those so far."""
        g = self.grid
        g._widen(g.events_ts(upto))
        scan = g._scan([(self.lo, upto + 1)], g.t_base, g.bin_width, g.max_bins)
        self.lazy = False
        lane = scan.lanes.get(self.key)
        self.bins = dict(lane.bins) if lane is not None else {}
        self.version += 1

    def _merge(self) -> None:
        """The grid's bins doubled in width: pairs of bins become one (the more important mark)."""
        out: dict[int, tuple[int, str, str, int, float]] = {}
        for b, m in self.bins.items():
            nb = b >> 1
            cur = out.get(nb)
            if cur is None or m[0] > cur[0] or (m[0] == cur[0] and m[4] < cur[4]):
                out[nb] = m
        self.bins = out
        self.version += 1

    def _sorted(self) -> list[tuple[int, str, str, int, float]]:
        return [self.bins[b] for b in sorted(self.bins)]

    @property
    def marks(self) -> list[tuple[int, str, str, int]]:
        """The kept marks in time order: (prio, char, style, event index)."""
        return [m[:4] for m in self._sorted()]

    @property
    def ts(self) -> list[float]:
        """The times of :attr:`marks`."""
        return [m[4] for m in self._sorted()]

    def columns(self, t0: float, t1: float, width: int, marks: Lane | None | bool = True
                ) -> list[tuple[str, str, int] | None]:
        """Per column: (char, style, event index) of the most important mark or span there.

        ``marks``: the lane whose marks to draw (a finer scan of the window, :meth:`TimelineModel.window`),
        True for this lane's own, None/False for none."""
        out: list[tuple[str, str, int] | None] = [None] * width
        if width <= 0 or t1 <= t0:
            return out
        scale = width / (t1 - t0)
        for sp in self.spans:  # in order: later spans draw over earlier ones, marks over both
            if sp.t1 < t0 or sp.t0 > t1:
                continue
            a = max(0, int((sp.t0 - t0) * scale))
            b = min(width - 1, int((sp.t1 - t0) * scale))
            room = b - a + 1 - 2
            text = sp.label if len(sp.label) <= room else sp.short if len(sp.short) <= room else ""
            for c in range(a, b + 1):
                k = c - a - 1
                out[c] = (text[k] if 0 <= k < len(text) else sp.char, sp.style, sp.index)
        src = self if marks is True else marks or None
        if src is None or not src.bins:
            return out
        g = src.grid
        prios = [-1] * width
        bins = src.bins
        b0 = max(0, int((t0 - g.t_base) * g.inv) - 1)
        b1 = int((t1 - g.t_base) * g.inv) + 1
        # the bins in the window (all of them, unsorted: ties go to the first kept, near enough in time)
        found = (bins[b] for b in range(b0, b1 + 1) if b in bins) if b1 - b0 < len(bins) else bins.values()
        for m in found:
            ts = m[4]
            if ts < t0 or ts > t1:
                continue
            c = int((ts - t0) * scale)
            if c >= width:
                c = width - 1
            if m[0] > prios[c]:
                prios[c] = m[0]
                out[c] = (m[1], m[2], m[3])
        return out

    def nearest(self, t: float) -> int | None:
        """The event index of the kept mark nearest to time ``t``."""
        if not self.bins:
            return None
        return min(self.bins.values(), key=lambda m: abs(m[4] - t))[3]


_TLS_CHARS = {"ClientHello": "C", "ServerHello": "S", "HelloRetryRequest": "R", "Certificate": "c",
              "Finished": "F", "NewSessionTicket": "t", "Alert": "!", "EncryptedExtensions": "e",
              "ChangeCipherSpec": "x", "CertificateVerify": "v", "EndOfEarlyData": "E"}
_H2_CHARS = {"HEADERS": ("H", "green", P_CONTROL), "DATA": ("█", "", P_DATA), "RST_STREAM": ("X", "red", P_WARN),
             "PUSH_PROMISE": ("P", "magenta", P_CONTROL), "WINDOW_UPDATE": ("w", "dim", P_ACK),
             "SETTINGS": ("s", "cyan", P_INFO), "PING": ("p", "cyan", P_INFO), "GOAWAY": ("G", "red", P_WARN),
             "PRIORITY": ("^", "dim", P_ACK), "CONTINUATION": ("h", "green", P_INFO), "PREFACE": ("P", "cyan", P_INFO)}
_QUIC_CHARS = {"initial": ("I", "cyan", P_CONTROL), "handshake": ("H", "cyan", P_CONTROL), "0rtt": ("0", "green", P_INFO),
               "1rtt": ("█", "", P_DATA), "retry": ("R", "yellow", P_WARN), "version_negotiation": ("V", "yellow", P_WARN)}
_WS_CHARS = {"text": ("█", "", P_DATA), "binary": ("█", "", P_DATA), "continuation": ("█", "", P_DATA),
             "ping": ("p", "cyan", P_INFO), "pong": ("P", "cyan", P_INFO), "close": ("C", "yellow", P_CONTROL)}
_SEV_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}


class TimelineModel:
    """Lanes of one connection, filled from its (growing) event list.

    Memory does not grow with the connection's events: each lane keeps one mark per bin of a
    time grid of at most :data:`BINS` bins (:class:`Lane`), plus its spans (a stream's lifetime,
    stalls, HOL episodes: a few per stream).  A zoomed-in window finer than the bins is drawn
    from the events in it (:meth:`window`), found by time in the event list."""

    def __init__(self, summary: dict[str, Any] | None = None, bins: int = BINS) -> None:
        self.lanes: dict[tuple[Any, ...], Lane] = {}
        self.max_bins = bins  #: bins of the time grid (a lane keeps at most this many marks)
        self._ordered: list[Lane] | None = None
        self._ordered_streams = 0
        self._position: dict[tuple[Any, ...], int] = {}
        self.seen = 0
        self.t_min: float | None = None
        self.t_max: float | None = None
        self.summary = summary or {}
        self.version = 0
        self.events: Any = None  #: the event list last fed to :meth:`update`
        # the time grid of the lanes' bins
        self.t_base = 0.0
        self.bin_width = 1e-6
        self.inv = 1e6
        self.fixed = False  #: a window's scan (its grid does not widen; marks outside it are dropped)
        # setup phase tracking
        self._syn: float | None = None
        self._synack: float | None = None
        self._tcp_done = False
        self._client_hello: float | None = None
        self._tls_done = False
        self._quic_first: float | None = None
        self._stream_span: dict[int, Span] = {}
        # Streams' lanes as rows of numbers (a connection can have 100,000 streams): a Lane object
        # is made only for those drawn (cached a little) and those with spans of their own or long
        # lives (kept in ``lanes``).  Per stream: id, first and last event index, first and last
        # frame time (the stream's lifetime; NaN: none), in order of appearance.
        self._s_id = array("q")
        self._s_lo = array("q")
        self._s_hi = array("q")
        self._s_t0 = array("d")
        self._s_t1 = array("d")
        self._s_slot: dict[int, int] | None = None  #: stream -> slot, once ids stop rising (else bisect)
        self._s_proto = "h2"
        self._s_sorted: tuple[int, array[int]] | None = None  #: (count, slots in stream order)
        self._s_made: dict[int, tuple[int, Lane]] = {}  #: slot -> (version, lane made for drawing)
        self._dns: dict[int, float] = {}
        self._requests: dict[int, float] = {}  # HTTP/1.x request frame -> its start

    # ------------------------------------------------------------------ lanes

    def lane(self, key: tuple[Any, ...], name: str, order: tuple[Any, ...], lazy: bool = False) -> Lane:
        lane = self.lanes.get(key)
        if lane is None:
            lane = self.lanes[key] = Lane(key, name, order, self, lazy=lazy and not self.fixed)
            self._ordered = None
        return lane

    def mark_count(self) -> int:
        """Marks kept over all lanes (bounded by :data:`BINS` per lane, whatever the number of events)."""
        return sum(len(lane.bins) for lane in self.lanes.values())

    def _widen(self, ts: float) -> None:
        """``ts`` is past the grid's last bin: double the bin width (merging bins) until it fits."""
        while int((ts - self.t_base) * self.inv) >= self.max_bins:
            self.bin_width *= 2
            self.inv = 1.0 / self.bin_width
            for lane in self.lanes.values():
                lane._merge()

    def ordered(self) -> Sequence[Lane]:
        """Lanes top to bottom: those before the streams, one per stream (by id), those after."""
        if self._ordered is None:
            real = sorted((ln for ln in self.lanes.values() if ln.order[0] != 4), key=lambda ln: ln.order)
            head = [ln for ln in real if ln.order < (4,)]
            tail = real[len(head):]
            self._ordered = _Rows(self, head, tail)  # type: ignore[assignment]
            self._ordered_streams = len(self._s_id)
            self._position = {ln.key: i for i, ln in enumerate(head)}
            self._position.update({ln.key: i for i, ln in enumerate(tail, len(head) + len(self._s_id))})
        elif self._ordered_streams != len(self._s_id) and self._ordered.tail:  # type: ignore[attr-defined]
            self._ordered = None  # more streams: the lanes after them moved down
            return self.ordered()
        return self._ordered  # type: ignore[return-value]

    def position(self, key: tuple[Any, ...]) -> int | None:
        """Row of the lane ``key`` in :meth:`ordered` (None if there is no such lane)."""
        rows = self.ordered()
        at = self._position.get(key)
        if at is None and key[0] == "stream":
            slot = self._slot_of(key[1])
            if slot is not None:
                at = len(rows.head) + self._rank(slot)  # type: ignore[attr-defined]
        return at

    # ------------------------------------------------------------------ streams as rows

    def _slot_of(self, stream: int) -> int | None:
        if self._s_slot is not None:
            return self._s_slot.get(stream)
        ids = self._s_id
        k = bisect_left(ids, stream)
        return k if k < len(ids) and ids[k] == stream else None

    def _new_stream(self, stream: int, proto: str) -> int:
        ids = self._s_id
        slot = len(ids)
        if self._s_slot is None and ids and stream < ids[-1]:
            self._s_slot = {sid: k for k, sid in enumerate(ids)}  # ids stopped rising
        if self._s_slot is not None:
            self._s_slot[stream] = slot
        self._s_proto = proto
        ids.append(stream)
        self._s_lo.append(-1)
        self._s_hi.append(-1)
        self._s_t0.append(math.nan)
        self._s_t1.append(math.nan)
        return slot

    def _rank(self, slot: int) -> int:
        """Row of stream ``slot`` among the streams (by id)."""
        if self._s_slot is None:
            return slot
        order = self._stream_order()
        return bisect_left(order, self._s_id[slot], key=self._s_id.__getitem__)

    def _stream_order(self) -> array[int]:
        n = len(self._s_id)
        if self._s_slot is None:
            return array("q", range(n))
        if self._s_sorted is None or self._s_sorted[0] != n:
            self._s_sorted = (n, array("q", sorted(range(n), key=self._s_id.__getitem__)))
        return self._s_sorted[1]

    def _stream_row(self, rank: int) -> Lane:
        """The lane of the ``rank``-th stream by id: its own if it has one, else one made to draw it."""
        slot = rank if self._s_slot is None else self._stream_order()[rank]
        sid = self._s_id[slot]
        lane = self.lanes.get(("stream", sid))
        if lane is not None:
            return lane
        made = self._s_made.get(slot)
        if made is not None and made[0] == self.version:
            return made[1]
        lane = Lane(("stream", sid), f"{self._s_proto} s{sid}", (4, sid), self, lazy=True,
                    lo=self._s_lo[slot], hi=self._s_hi[slot], version=self.version)
        t0 = self._s_t0[slot]
        if t0 == t0:
            lane.spans.append(Span(t0, self._s_t1[slot], "─", "dim", "", self._s_lo[slot]))
        if len(self._s_made) > 1024:
            self._s_made.clear()
        self._s_made[slot] = (self.version, lane)
        return lane

    def _promote(self, stream: int, proto: str) -> Lane:
        """Stream ``stream``'s own lane (made from its row: it gets spans, or marks of its own)."""
        key = ("stream", stream)
        lane = self.lanes.get(key)
        if lane is not None:
            return lane
        slot = self._slot_of(stream)
        if slot is None:
            slot = self._new_stream(stream, proto)
        lane = self.lanes[key] = Lane(key, f"{proto} s{stream}", (4, stream), self, lazy=True,
                                      lo=self._s_lo[slot], hi=self._s_hi[slot])
        t0 = self._s_t0[slot]
        if t0 == t0:
            span = self._stream_span[stream] = Span(t0, self._s_t1[slot], "─", "dim", "", self._s_lo[slot])
            lane.spans.append(span)
        self._s_made.pop(slot, None)
        return lane

    def _stream_event(self, stream: int, proto: str, ts: float, prio: int, char: str, style: str, i: int,
                      lifetime: bool) -> None:
        """Event ``i`` on a stream: on its own lane if it has one, else on its row."""
        lane = self.lanes.get(("stream", stream))
        if lane is None:
            slot = self._slot_of(stream)
            if slot is None:
                slot = self._new_stream(stream, proto)
            lo = self._s_lo[slot]
            if lo < 0:
                self._s_lo[slot] = lo = i
            if i > self._s_hi[slot]:
                self._s_hi[slot] = i
            if lifetime:
                t0 = self._s_t0[slot]
                if t0 != t0:
                    self._s_t0[slot] = self._s_t1[slot] = ts
                elif ts < t0:
                    self._s_t0[slot] = ts
                elif ts > self._s_t1[slot]:
                    self._s_t1[slot] = ts
            if i - lo <= LAZY_EVENTS:
                return
            lane = self._promote(stream, proto)  # a long life: it keeps marks from now on
            lane.add(ts, prio, char, style, i)
            return
        lane.add(ts, prio, char, style, i)
        if lifetime:
            self._stretch_lifetime(lane, stream, ts, i)

    def _setup_lane(self) -> Lane:
        return self.lane(("setup",), "setup", (0,))

    def _stretch_lifetime(self, lane: Lane, stream: int, ts: float, i: int) -> None:
        """Widen the stream's lifetime line (a dim span under its marks) to take in ``ts``."""
        span = self._stream_span.get(stream)
        if span is None:
            span = self._stream_span[stream] = Span(ts, ts, "─", "dim", "", i)
            lane.spans.insert(0, span)
        span.t0 = min(span.t0, ts)
        span.t1 = max(span.t1, ts)

    def _stream_lane(self, stream: int, proto: str) -> Lane:
        if stream == 0 and proto == "h2":
            return self.lane(("stream", 0), "h2 conn", (3, 0))
        if proto == "h3" and stream % 4 in (2, 3):
            return self.lane(("h3ctl",), "h3 ctl", (3, 1))
        if self.fixed:  # a window's scan: every lane with its marks
            return self.lane(("stream", stream), f"{proto} s{stream}", (4, stream))
        lane = self._promote(stream, proto)
        self._ordered = None
        return lane

    def _stream_add(self, stream: Any, proto: str, ts: float, prio: int, char: str, style: str, i: int) -> None:
        """A mark on a stream's lane (its row, for a stream that has no lane of its own)."""
        if self.fixed or (stream == 0 and proto == "h2") or (proto == "h3" and stream % 4 in (2, 3)):
            self._stream_lane(stream, proto).add(ts, prio, char, style, i)
        else:
            self._stream_event(stream, proto, ts, prio, char, style, i, False)

    # ------------------------------------------------------------------ ingest

    def update(self, events: Any, summary: dict[str, Any] | None = None, limit: int | None = None) -> bool:
        """Take the events added since the last call (at most ``limit`` of them: the caller
        comes back for the rest, so a huge connection does not hold the UI); True if anything changed."""
        if summary is not None:
            self.summary = summary
        self.events = events
        n = len(events)
        if limit is not None:
            n = min(n, self.seen + limit)
        if n <= self.seen:
            return False
        if self.t_min is None:
            ts_at = _ts_reader(events)
            ts = ts_at(self.seen)
            self.t_min = self.t_max = ts
            self.t_base = ts
            # bins wide enough for what is there already (fewer merges as it is read)
            span = ts_at(len(events) - 1) - ts
            while self.bin_width * self.max_bins < span * 1.5:
                self.bin_width *= 2
            self.inv = 1.0 / self.bin_width
        self._ingest(events, self.seen, n)
        self.seen = n
        self.version += 1
        return True

    def _ingest(self, events: Any, lo: int, hi: int) -> None:
        t_min, t_max = self.t_min, self.t_max
        add = self._add
        light = getattr(events, "light", None)  # an EventLog: its compact events read from the columns
        # TCP segments come by the hundred thousand: a segment without SYN, while the handshake is
        # not half seen (or is done), is only a mark, which depends only on its (direction, flags,
        # analysis) code and whether it carries data
        seg_marks: dict[int, tuple[Lane, int, str, str] | None] = {}
        tls: Lane | None = None
        nbins = self.max_bins
        for i in range(lo, hi):
            u = light(i) if light is not None else None
            if u is not None:
                kind = u[0]
                ts = u[-1]
                if kind == 1:  # TCP segment: (1, code, len, ts)
                    key = u[1] << 1 | (u[2] > 0)
                    mk = seg_marks.get(key)
                    if mk is None or not (self._tcp_done or self._syn is None or self._synack is None):
                        direction, flags, analysis = events.segment_code(u[1])
                        mk = self._tcp_seg(direction, flags, analysis, ts, u[2], i)
                        if "S" not in flags:
                            seg_marks[key] = mk
                        if ts < t_min:
                            t_min = ts
                        elif ts > t_max:
                            t_max = ts
                        continue
                    lane, prio = mk[0], mk[1]
                    b = int((ts - self.t_base) * self.inv)
                    if 0 <= b < nbins:
                        cur = lane.bins.get(b)
                        if cur is None or prio > cur[0]:
                            lane.bins[b] = (prio, mk[2], mk[3], i, ts)
                            lane.version += 1
                    else:
                        lane.add(ts, prio, mk[2], mk[3], i)
                elif kind == 2:  # TLS application data: (2, direction, ts)
                    if tls is None:
                        tls = self.lane(("tls",), "tls", (2, 0))
                    b = int((ts - self.t_base) * self.inv)
                    if 0 <= b < nbins:
                        if b not in tls.bins:
                            tls.bins[b] = (P_ACK, "·", "dim", i, ts)
                            tls.version += 1
                    else:
                        tls.add(ts, P_ACK, "·", "dim", i)
                else:  # HTTP/2 frame: (3, type, direction, flag_names, stream, ts)
                    self._h2(u[1], u[3], u[4], ts, i)
            else:
                e = events[i]
                ts = e.ts
                try:
                    add(e, i)
                except (AttributeError, TypeError, KeyError):
                    pass  # an event shape we do not know: it stays in the list, off the timeline
            if ts < t_min:
                t_min = ts
            elif ts > t_max:
                t_max = ts
        self.t_min, self.t_max = t_min, t_max

    def behind(self, events: Any) -> bool:
        return self.seen < len(events)

    def fine_enough(self, t0: float, t1: float, width: int) -> bool:
        """Do the bins draw the window ``t0..t1`` over ``width`` columns (a bin at most a quarter column)?"""
        return self.bin_width * 4 * width <= (t1 - t0) or self.seen == 0

    def window(self, t0: float, t1: float, width: int) -> TimelineModel | None:
        """The marks of the events between ``t0`` and ``t1`` on a grid fine enough for ``width``
        columns (lanes keyed as here; spans are this model's), or None when the window holds more
        than :data:`WINDOW_EVENTS` events (then the bins are drawn as they are)."""
        events, n = self.events, self.seen
        if events is None or not n or t1 <= t0:
            return None
        ts_at = _ts_reader(events)
        # events are in capture order: their times rise but for a few (analyses placed where they completed)
        lo = max(0, bisect_left(range(n), t0, key=ts_at) - 64)
        hi = min(n, bisect_right(range(n), t1, key=ts_at) + 64)
        if hi - lo > WINDOW_EVENTS:
            return None
        return self._scan([(lo, hi)], t0, (t1 - t0) / (4 * width), 4 * width + 1)

    def lazy_marks(self, lanes: list[Lane], t0: float, t1: float, width: int) -> TimelineModel | None:
        """The marks of these lanes that keep none (short streams), read from their events on a
        grid fine enough for ``width`` columns from ``t0``; None if there are none to read."""
        short = [ln for ln in lanes if ln.lazy and ln.lo >= 0]
        if not short or self.events is None or t1 <= t0:
            return None
        # the lanes' index ranges, overlapping ones merged (streams in view mostly overlap in time)
        ranges: list[list[int]] = []
        for lo, hi in sorted((ln.lo, min(self.seen, ln.hi + 1)) for ln in short):
            if ranges and lo <= ranges[-1][1]:
                ranges[-1][1] = max(ranges[-1][1], hi)
            else:
                ranges.append([lo, hi])
        return self._scan(ranges, t0, (t1 - t0) / (4 * width), 4 * width + 1)

    def _scan(self, ranges: Any, t_base: float, bin_width: float, bins: int) -> TimelineModel:
        """A throwaway model of the events in ``ranges`` ([lo, hi) pairs) on a fixed grid of
        ``bins`` bins (marks off it are dropped)."""
        w = TimelineModel(self.summary, bins=bins)
        w.fixed = True
        w.events = self.events
        w.t_base = t_base
        w.bin_width = bin_width
        w.inv = 1.0 / bin_width
        w.t_min = w.t_max = t_base
        for lo, hi in ranges:
            w._ingest(self.events, lo, hi)
            w.seen = max(w.seen, hi)
        return w

    def events_ts(self, i: int) -> float:
        return _ts_reader(self.events)(i)

    def _add(self, e: Any, i: int) -> None:
        layer, t, ts = e.layer, e.type, e.ts
        if layer == "tcp" and t == "segment":  # most events: straight there
            self._tcp(e, i, "→" if e.direction == "c2s" else "←")
            return
        if layer == "http2" and t in _H2_CHARS:
            self._frame(e, i, "h2", _H2_CHARS)
            return
        d = getattr(e, "direction", None)
        arrow = "→" if d == "c2s" else "←"
        if layer == "tcp":
            pass
        elif layer == "tls":
            self._tls(e, i)
        elif layer == "quic":
            self._quic(e, i, arrow)
        elif layer == "http2":
            if t == "flow_control_stall":
                lane = self._stream_lane(e.stream, "h2")
                lane.spans.append(Span(e.start, e.end, "▒", "yellow", "flow-control stall", i, "stall"))
                lane.add(e.start, P_WARN, "▒", "yellow", i)
                return
            self._frame(e, i, "h2", _H2_CHARS)
        elif layer == "http3":
            if t == "stream":
                self._stream_add(e.stream, "h3", ts, P_INFO, "+", "cyan", i)
                return
            self._frame(e, i, "h3", _H2_CHARS)
        elif layer == "grpc" and t == "message":
            self._stream_add(e.stream, "h2", ts, P_INFO, "g", "magenta", i)
        elif layer == "sse":
            stream = getattr(e, "stream", None)
            if stream:
                self._stream_add(stream, "h2", ts, P_INFO, "e", "magenta", i)
            else:
                self.lane(("sse",), "sse", (5, 1)).add(ts, P_INFO, "e", "magenta", i)
        elif layer == "websocket":
            if d is None:
                self.lane(("ws", "c2s"), "ws →", (5, 2)).add(ts, P_CONTROL, "U", "green", i)
                return
            char, style, prio = _WS_CHARS.get(t, ("", "", 0))
            if char:
                self.lane(("ws", d), f"ws {arrow}", (5, 2 if d == "c2s" else 3)).add(ts, prio, char, style, i)
        elif layer == "http":
            lane = self.lane(("http",), "http", (5, 0))
            if t == "request":
                lane.add(ts, P_CONTROL, ">", "green", i)
                self._requests[e.frame] = e.start_ts
            elif t == "response":
                lane.add(ts, P_CONTROL, "<", "green", i)
                start = self._requests.get(getattr(e, "request_frame", None))
                if start is not None:
                    lane.spans.append(Span(start, ts, "─", "green", "", i))
        elif layer == "dns":
            lane = self.lane(("dns",), "dns", (5, 4))
            if t == "query":
                lane.add(ts, P_CONTROL, "?", "cyan", i)
                self._dns.setdefault(e.id, ts)
            else:
                lane.add(ts, P_CONTROL, "!", "green" if e.rcode == "NOERROR" else "yellow", i)
                q = self._dns.pop(e.id, None)
                if q is not None:
                    lane.spans.append(Span(q, ts, "─", "cyan", "", i))
        if t in ("note", "malformed") or layer in ("hol", "analysis", "ledger"):
            self._note(e, i)

    def _tcp(self, e: Any, i: int, arrow: str) -> None:
        self._tcp_seg(e.direction, e.flags, e.analysis, e.ts, e.len, i)

    def _tcp_seg(self, direction: str, flags: str, analysis: tuple[str, ...], ts: float, length: int, i: int
                 ) -> tuple[Lane, int, str, str]:
        """Draw a TCP segment; returns its mark (lane, prio, char, style)."""
        lane = self.lanes.get(("tcp", direction)) or self.lane(("tcp", direction), f"tcp {'→' if direction == 'c2s' else '←'}",
                                                               (1, 0 if direction == "c2s" else 1))
        if analysis and ("lost_segment" in analysis):
            mark = P_LOSS, "L", "bold red"
        elif analysis and any("retransmission" in a for a in analysis):
            mark = P_LOSS - 1, "R", "bold red"
        elif "R" in flags:
            mark = P_WARN, "X", "red"
        elif analysis and "zero_window" in analysis:
            mark = P_WARN, "Z", "yellow"
        elif analysis and "duplicate_ack" in analysis:
            mark = P_WARN - 1, "d", "yellow"
        elif "S" in flags:
            mark = P_CONTROL, "S", "cyan"
        elif "F" in flags:
            mark = P_CONTROL, "F", "cyan"
        elif length:
            mark = P_DATA, "█", ""
        else:
            mark = P_ACK, "·", "dim"
        lane.add(ts, *mark, i)
        # the TCP handshake, for the setup lane
        if "S" in flags and "A" not in flags and self._syn is None:
            self._syn = ts
        elif "S" in flags and "A" in flags and self._synack is None:
            self._synack = ts
        elif (not self._tcp_done and self._syn is not None and self._synack is not None
              and direction == "c2s" and "A" in flags and "S" not in flags):
            self._tcp_done = True
            rtt = self.summary.get("tcp", {}).get("irtt_ms") if isinstance(self.summary.get("tcp"), dict) else None
            label = "TCP 1 RTT" + (f" {rtt:.1f}ms" if rtt else "")
            self._setup_lane().spans.append(Span(self._syn, ts, "░", "cyan", label, i, "TCP"))
        return lane, *mark

    def _tls(self, e: Any, i: int) -> None:
        t, ts = e.type, e.ts
        lane = self.lane(("tls",), "tls", (2, 0))
        if t == "ApplicationData":
            lane.add(ts, P_ACK, "·", "dim", i)
        else:
            style = "red" if t == "Alert" and "close_notify" not in str(e.description) else "magenta"
            lane.add(ts, P_CONTROL, _TLS_CHARS.get(t, "h"), style, i)
        if t == "ClientHello" and self._client_hello is None:
            self._client_hello = ts
        elif (t == "Finished" and e.direction == "c2s" and self._client_hello is not None and not self._tls_done
              and self._quic_first is None):  # inside QUIC the QUIC span says it all
            self._tls_done = True
            tls = self.summary.get("tls") if isinstance(self.summary.get("tls"), dict) else {}
            rtts = tls.get("handshake_rtts")
            label = f"TLS {tls.get('version') or ''} {rtts} RTT" if rtts is not None else "TLS"
            self._setup_lane().spans.append(
                Span(self._client_hello, ts, "░", "magenta", label.replace("  ", " "), i, f"TLS {rtts}" if rtts is not None else "TLS"))

    def _quic(self, e: Any, i: int, arrow: str) -> None:
        t, ts = e.type, e.ts
        if t == "note":
            return
        lane = self.lane(("quic", e.direction), f"quic {arrow}", (1, 0 if e.direction == "c2s" else 1))
        if t == "loss":
            lane.add(ts, P_LOSS, "L", "bold red", i)
            for r in e.resent or ():
                stream = r.get("stream")
                if stream is None:
                    continue
                sl = self._stream_lane(stream, "h3")
                sl.spans.append(Span(ts, r.get("ts", ts), "░", "red", "waits for the lost packet", i, "loss"))
                sl.add(r.get("ts", ts), P_LOSS - 1, "R", "bold red", i)
            return
        char, style, prio = _QUIC_CHARS.get(t, ("?", "", P_INFO))
        if e.pn is None and t not in ("retry", "version_negotiation"):
            char, style = "?", "yellow"
        elif t == "1rtt" and e.frames and all(f in ("ACK", "PADDING") for f in e.frames):
            char, style, prio = "·", "dim", P_ACK
        lane.add(ts, prio, char, style, i)
        if t == "initial" and self._quic_first is None and e.direction == "c2s":
            self._quic_first = ts
            quic = self.summary.get("quic") if isinstance(self.summary.get("quic"), dict) else {}
            hs = quic.get("handshake_ms")
            if hs:
                rtts = quic.get("handshake_rtts")
                self._setup_lane().spans.append(
                    Span(ts, ts + hs / 1000, "░", "magenta", f"QUIC {rtts} RTT" if rtts is not None else "QUIC", i, "QUIC"))

    def _h2(self, type_: str, flag_names: tuple[str, ...], stream: int, ts: float, i: int) -> None:
        """An HTTP/2 frame read from the event list's columns (as :meth:`_frame` draws it)."""
        self._frame_mark(type_, flag_names, stream, ts, i, "h2", _H2_CHARS)

    def _frame(self, e: Any, i: int, proto: str, chars: dict[str, tuple[str, str, int]]) -> None:
        self._frame_mark(e.type, getattr(e, "flag_names", None) or (), e.stream, e.ts, i, proto, chars)

    def _frame_mark(self, type_: str, flag_names: Any, stream: int, ts: float, i: int, proto: str,
                    chars: dict[str, tuple[str, str, int]]) -> None:
        char, style, prio = chars.get(type_, ("?", "dim", P_INFO))
        if type_ == "DATA" and "END_STREAM" in flag_names:
            char = "▌"
        if not self.fixed and (stream or proto == "h3") and not (proto == "h3" and stream % 4 in (2, 3)):
            self._stream_event(stream, proto, ts, prio, char, style, i, bool(stream))
            return
        lane = self.lanes.get(("stream", stream)) if stream else None
        if lane is None:
            lane = self._stream_lane(stream, proto)
        lane.add(ts, prio, char, style, i)
        if stream and not (proto == "h3" and stream % 4 in (2, 3)):
            self._stretch_lifetime(lane, stream, ts, i)

    def _note(self, e: Any, i: int) -> None:
        start, end = getattr(e, "start", None), getattr(e, "end", None)
        sev = getattr(e, "severity", None) or ("error" if e.type == "malformed" or e.layer == "hol" else "note")
        style = _SEV_STYLE.get(sev, "cyan")
        if e.type in ("ledger", "what_if"):
            return  # listed in the annotation panel; the setup lane already shows the phases
        if isinstance(start, float) and isinstance(end, float):
            # an episode (HOL blocking): shade the lanes of the streams it held up
            label = "HOL" if e.layer == "hol" or "hol" in e.type else e.type
            proto = "h3" if "quic" in self.summary else "h2"
            targets = [self._stream_lane(s, proto) for s in _victim_streams(e)]
            if not targets:
                targets = [self.lanes[("http",)]] if ("http",) in self.lanes else [self.lane(("notes",), "notes", (6,))]
            for lane in targets:
                lane.spans.append(Span(start, end, "░", "magenta", label, i, label[:3]))
        self.lane(("notes",), "notes", (6,)).add(e.ts, P_WARN if sev != "note" else P_INFO, "!", style, i)


class _Rows(Sequence[Lane]):
    """The lanes top to bottom, streams' lanes made as they are read (see :meth:`TimelineModel.ordered`)."""

    def __init__(self, model: TimelineModel, head: list[Lane], tail: list[Lane]) -> None:
        self.model, self.head, self.tail = model, head, tail

    def __len__(self) -> int:
        return len(self.head) + len(self.model._s_id) + len(self.tail)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        h, streams = len(self.head), len(self.model._s_id)
        if i < h:
            return self.head[i]
        if i < h + streams:
            return self.model._stream_row(i - h)
        return self.tail[i - h - streams]


def _ts_reader(events: Any) -> Callable[[int], float]:
    """Event ``i``'s time, read without building the event when the list can (an EventLog)."""
    ts_at = getattr(events, "ts_at", None)
    return ts_at if ts_at is not None else (lambda i: events[i].ts)


_STREAM_RE = re.compile(r"\bstream (\d+)")


def _victim_streams(e: Any) -> list[int]:
    """Stream ids an episode held up: ``streams``/``stream`` fields, or "stream N" in its victims' names."""
    streams = getattr(e, "streams", None)
    if isinstance(streams, list):
        return [s for s in streams if isinstance(s, int)]
    out: list[int] = []
    for v in getattr(e, "victims", None) or ():
        unit = v.get("unit") if isinstance(v, dict) else v
        m = _STREAM_RE.search(str(unit))
        if m and int(m.group(1)) not in out:
            out.append(int(m.group(1)))
    if not out and isinstance(getattr(e, "stream", None), int):
        out.append(e.stream)
    return out
