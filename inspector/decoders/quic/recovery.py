"""Loss and in-order delivery as seen from the capture point.

Two records feed the transport lane and the head-of-line analysis:

* per sender and packet-number space, a :class:`SpaceLedger`: which packet
  numbers were never captured (a gap in the numbering: lost before the
  capture point, unless the peer acknowledges them later, in which case only
  the capture missed them), which captured packets the peer never
  acknowledged although it acknowledged later ones (lost after the capture
  point), and RTT samples (ACK time minus the acknowledged packet's time);
* per stream (and per CRYPTO epoch) and direction, a :class:`Reassembler`
  that hands on bytes once every earlier byte is present, recording for
  each run of bytes when it first arrived and when it became deliverable
  (:class:`Chunk`).  QUIC orders bytes per stream, not per connection, so a
  lost packet delays only the streams whose data it carried.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import NamedTuple

#: at most this many packet numbers of one gap are tracked individually
MAX_GAP_TRACKED = 1024
#: packet numbers remembered per space to tell a shared counter from a gap (handshake time is enough)
EARLY_KEPT = 4096
#: packets awaiting an ACK kept per space (a one-sided capture never sees ACKs: keep the newest)
MAX_UNACKED = 1 << 16
#: never-captured packet numbers kept per space
MAX_MISSING = 1 << 16


class Chunk(NamedTuple):
    """A run of stream bytes and when they could be delivered in order."""

    offset: int
    length: int
    arrival_ts: float  #: first time these bytes were captured
    delivered_ts: float  #: when every earlier byte of the stream was present too
    frame: int  #: the frame that made them deliverable
    arrival_frame: int  #: the frame that first carried them
    pn: int  #: the packet that first carried them


class Arrival(NamedTuple):
    """One STREAM/CRYPTO frame's bytes as captured (duplicates included)."""

    offset: int
    length: int
    ts: float
    frame: int
    pn: int


class Reassembler:
    """In-order delivery of one direction of one stream, with a bounded out-of-order buffer."""

    __slots__ = ("delivered", "highest", "limit", "_starts", "_pending", "pending_bytes", "chunks", "arrivals",
                 "fin", "overflowed", "keep_records", "last_chunks", "budget")

    def __init__(self, limit: int, keep_records: bool = True, budget: list[int] | None = None) -> None:
        self.delivered = 0  #: offset of the first byte not yet deliverable
        self.highest = 0  #: offset just past the highest byte seen
        self.limit = limit
        self._starts: list[int] = []
        self._pending: list[tuple[int, bytes, float, int, int]] = []  # (start, data, ts, frame, pn)
        self.pending_bytes = 0
        self.keep_records = keep_records
        self.chunks: list[Chunk] = []
        self.arrivals: list[Arrival] = []
        self.fin: int | None = None  #: final size, once known
        self.overflowed = False
        self.last_chunks: list[Chunk] = []  #: the chunks the last :meth:`add` made deliverable
        #: [bytes buffered, limit] shared by all streams of a connection
        self.budget = budget if budget is not None else [0, 1 << 62]

    def add(self, offset: int, data: bytes, frame: int, ts: float, pn: int) -> tuple[bytes, int, int]:
        """Take a frame's bytes; returns (deliverable bytes, new bytes, bytes already seen).

        :attr:`last_chunks` then holds the runs made deliverable (whether or
        not records are kept).

        The deliverable bytes start at the old ``delivered`` offset.  Bytes
        past the buffer limit are dropped (``overflowed`` is set) and the
        stream stays stuck there, which bounds memory on hostile input.
        """
        end = offset + len(data)
        if self.keep_records and data:
            self.arrivals.append(Arrival(offset, len(data), ts, frame, pn))
        fresh = 0
        budget = self.budget
        for start, stop in list(self._missing(offset, end)):
            if start > self.delivered and (self.pending_bytes + (stop - start) > self.limit
                                           or budget[0] + (stop - start) > budget[1]):
                self.overflowed = True
                break
            piece = data[start - offset : stop - offset]
            i = bisect_left(self._starts, start)
            self._starts.insert(i, start)
            self._pending.insert(i, (start, piece, ts, frame, pn))
            self.pending_bytes += len(piece)
            budget[0] += len(piece)
            fresh += len(piece)
        if end > self.highest:
            self.highest = end
        out = []
        new: list[Chunk] = []
        while self._pending and self._pending[0][0] == self.delivered:
            start, piece, arrival, arrival_frame, first_pn = self._pending.pop(0)
            self._starts.pop(0)
            self.pending_bytes -= len(piece)
            budget[0] -= len(piece)
            out.append(piece)
            self.delivered += len(piece)
            new.append(Chunk(start, len(piece), arrival, ts, frame, arrival_frame, first_pn))
        if new and self.keep_records:
            self.chunks.extend(new)
        self.last_chunks = new
        return b"".join(out), fresh, len(data) - fresh

    def _missing(self, start: int, end: int) -> Iterable[tuple[int, int]]:
        """Sub-ranges of ``[start, end)`` neither delivered nor pending."""
        start = max(start, self.delivered)
        if start >= end:
            return
        i = max(bisect_left(self._starts, start) - 1, 0)
        pending = self._pending
        while start < end and i < len(pending):
            p_start = pending[i][0]
            p_end = p_start + len(pending[i][1])
            if p_end <= start:
                i += 1
                continue
            if p_start >= end:
                break
            if p_start > start:
                yield start, p_start
            start = max(start, p_end)
            i += 1
        if start < end:
            yield start, end

    def holes(self) -> list[tuple[int, int]]:
        """Byte ranges below ``highest`` never seen (what still blocks delivery)."""
        out = []
        pos = self.delivered
        for start, piece, *_ in self._pending:
            if start > pos:
                out.append((pos, start))
            pos = max(pos, start + len(piece))
        return out


def delivery(arrivals: Iterable[Arrival], excluded_pns: frozenset[int] | set[int] = frozenset()) -> list[Chunk]:
    """Recompute in-order delivery from raw arrivals, ignoring packets in ``excluded_pns``.

    With ``excluded_pns`` the packets captured but never acknowledged (lost
    after the capture point), this is the receiver's view rather than the
    capture point's.
    """
    asm = Reassembler(limit=1 << 62)
    for a in arrivals:
        if a.pn in excluded_pns:
            continue
        asm.add(a.offset, b"\0" * a.length, a.frame, a.ts, a.pn)
    return asm.chunks


class Loss(NamedTuple):
    """A packet the capture shows lost, and where its stream data was sent again."""

    pn: int
    detected: str  #: "missing" (never captured) or "unacknowledged" (captured, never acknowledged)
    frame: int  #: the frame where the loss became visible (next packet, or the first ACK skipping it)
    ts: float
    streams: tuple[int, ...]  #: streams whose data it carried (known or inferred)
    resent: tuple[tuple[int, int, int, int, float], ...]  #: (stream, offset, length, frame, ts) of the resends


class Sent(NamedTuple):
    frame: int
    ts: float
    eliciting: bool
    ranges: tuple[tuple[int, int, int], ...]  #: (stream, offset, end) of STREAM data; stream -1.. for CRYPTO


class SpaceLedger:
    """Packets one endpoint sent in one packet-number space, as captured."""

    __slots__ = ("largest", "first_ts", "unacked", "missing", "acked_missing", "acked_largest", "rtt_samples",
                 "reordered", "lost_unacked", "resent", "hole_owner", "siblings", "early")

    def __init__(self, siblings: list[SpaceLedger] | None = None) -> None:
        self.largest = -1
        self.first_ts: float | None = None
        self.unacked: dict[int, Sent] = {}  # captured, not yet acknowledged
        self.missing: dict[int, tuple[int, float]] = {}  # pn -> (frame, ts) of the packet that revealed the gap
        self.acked_missing: set[int] = set()  # never captured, yet acknowledged: the capture missed them
        self.acked_largest = -1
        self.rtt_samples: list[tuple[float, float]] = []  # (ts, seconds)
        self.reordered = 0
        self.lost_unacked: dict[int, tuple[Sent, int, float]] = {}  # filled at finish
        self.resent: dict[int, list[tuple[int, int, int, int, float]]] = {}  # lost pn -> resends
        self.hole_owner: dict[int, set[int]] = {}  # lost pn -> streams inferred from holes
        #: the same sender's other spaces: some stacks (aioquic) number packets with one counter
        #: across spaces, so a gap in one space may be packets of another
        self.siblings = siblings if siblings is not None else []
        self.early: set[int] = set()  # packet numbers seen, kept for the first EARLY_KEPT packets

    def packet(self, pn: int, frame: int, ts: float, eliciting: bool, ranges: tuple[tuple[int, int, int], ...]) -> bool:
        """Record a captured packet; returns True if it fills an earlier gap (reordered or late)."""
        if self.first_ts is None:
            self.first_ts = ts
        late = False
        if len(self.early) < EARLY_KEPT:
            self.early.add(pn)
        for other in self.siblings:
            if other is not self:
                other.missing.pop(pn, None)
        if pn > self.largest + 1 and self.largest >= 0 and len(self.missing) < MAX_MISSING:
            for gap_pn in range(max(self.largest + 1, pn - MAX_GAP_TRACKED), pn):
                if not any(gap_pn in other.early for other in self.siblings if other is not self):
                    self.missing[gap_pn] = (frame, ts)
        elif pn <= self.largest:
            late = self.missing.pop(pn, None) is not None
            if late:
                self.reordered += 1
        if pn > self.largest:
            self.largest = pn
        if eliciting:
            # only ack-eliciting packets give RTT samples or count as lost (RFC 9002 §2, §5.1)
            if len(self.unacked) >= MAX_UNACKED:
                del self.unacked[next(iter(self.unacked))]
            self.unacked[pn] = Sent(frame, ts, eliciting, ranges)
        return late

    def acknowledged(self, ranges: list[tuple[int, int]], frame: int, ts: float, delay_s: float) -> None:
        """The peer acknowledged ``ranges`` (inclusive pairs, highest first) in ``frame``."""
        largest = ranges[0][1]
        sent = self.unacked.get(largest)
        if sent is not None and largest > self.acked_largest:
            # RFC 9002 §5.1: only a newly acknowledged largest packet gives a sample
            self.rtt_samples.append((ts, max(ts - sent.ts - delay_s, 0.0)))
        if largest > self.acked_largest:
            self.acked_largest = largest
        unacked = self.unacked
        if unacked:
            if len(ranges) == 1:
                low, high = ranges[0]
                done = [pn for pn in unacked if low <= pn <= high]
            else:
                done = [pn for pn in unacked if _in_ranges(pn, ranges)]
            for pn in done:
                del unacked[pn]
        if self.missing:
            for pn in [pn for pn in self.missing if _in_ranges(pn, ranges)]:
                del self.missing[pn]
                self.acked_missing.add(pn)

    def settle(self) -> None:
        """At the end: captured packets the peer skipped in its ACKs are lost after the capture point."""
        for pn, sent in self.unacked.items():
            if sent.eliciting and pn < self.acked_largest:
                self.lost_unacked[pn] = (sent, sent.frame, sent.ts)

    def find_unacked(self, stream: int, start: int, end: int, before_pn: int) -> list[int]:
        """Unacknowledged earlier packets that carried bytes of ``[start, end)`` of ``stream``."""
        out = []
        for pn, sent in self.unacked.items():
            if pn >= before_pn:
                continue
            for s, lo, hi in sent.ranges:
                if s == stream and lo < end and start < hi:
                    out.append(pn)
                    break
        return out

    def missing_between(self, low: int, high: int) -> list[int]:
        """Never-captured packet numbers strictly between ``low`` and ``high``."""
        if high - low > MAX_GAP_TRACKED:
            low = high - MAX_GAP_TRACKED
        return [pn for pn in range(low + 1, high) if pn in self.missing]


def _in_ranges(pn: int, ranges: list[tuple[int, int]]) -> bool:
    for low, high in ranges:
        if low <= pn <= high:
            return True
    return False
