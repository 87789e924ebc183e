"""Per-direction TCP reassembly into an in-order byte stream.

Every delivered run of bytes is described by a
:class:`~inspector.flows.streamindex.Span`: when its bytes first arrived and
when they became deliverable (all earlier bytes present), plus the frames.
Head-of-line analysis reads exactly that difference.

Out-of-order data waits in a bounded buffer.  Bytes that will never appear
(the peer ACKed past them, the capture's snap length cut them, the buffer
limit was hit, or the capture ended) become a *gap*: the decoder is told how
many bytes are missing and decoding goes on after them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from .streamindex import Span, StreamIndex
from .tcp_analysis import M32, gt_seq

#: Out-of-order bytes buffered per direction before we give up on a hole.
MAX_BUFFERED = 8 << 20
#: Recently delivered segments kept to compare retransmitted bytes with.
HISTORY_SEGMENTS = 64

# Head-of-line records (read by inspector.analysis.hol), bounded per direction:
# ``hol`` lists (kind, span) for every run delivered while a hole was open: the
# bytes that filled it (HOL_FILL), the bytes held behind it (HOL_HELD, delivered
# later than they arrived) and bytes declared missing (HOL_GAP); ``resent`` lists
# retransmissions of bytes already delivered (what a sender-side capture shows)
# as (start, end, frame, ts, frontier, recent spans from the original on).
MAX_HOL_RECORDS = 4096
MAX_RESENT_RECORDS = 64
#: delivered spans remembered so a retransmission can tell what was sent after its original
RECENT_SPANS = 128
HOL_FILL, HOL_HELD, HOL_GAP = 0, 1, 2
_new_span = tuple.__new__

# Where a direction is not reassembled (no decoder claimed the connection, or summary mode stopped
# reassembling an opaque one), TCP's own sequence analysis still sees every segment: each
# retransmitted or out-of-order segment (``record_fill``) keeps a copy of the segments of its
# direction not yet acknowledged (their sequence range, time and frame: Wireshark's unacked list),
# which is what a hole's episode needs (inspector.analysis.hol rebuilds the runs from it).
# Bounded per direction: MAX_FILL_RECORDS records, MAX_FILL_ENTRIES segments each, FILL_BUDGET in all.
MAX_FILL_RECORDS = 1024
MAX_FILL_ENTRIES = 512
FILL_BUDGET = 8192


def record_fill(tcp: Any, d: int, frame: int, ts: float, seq: int, seglen: int) -> None:
    """A segment of direction ``d`` went back below the highest sequence seen (a retransmission or an
    out-of-order arrival): remember it with the unacknowledged segments around it.

    Called by :class:`~.tcp.TcpState` for flagged segments only, never per packet.
    """
    fills = tcp.fills[d]
    if len(fills) >= MAX_FILL_RECORDS:
        return
    fwd, rev = tcp.an[d], tcp.an[1 - d]
    base = rev.lastack if rev.lastack else seq
    acked = fwd.acked_to  # the peer's ACKs can come out of order: lastack may have gone back
    if acked is not None and 0 < (acked - base) & M32 < 0x80000000:
        base = acked
    # The unacknowledged segments that end after what the peer acknowledged, in sequence order.  For a
    # segment that fills a hole the capture never saw the bytes of (a receiver's view), only those up
    # to the first hole after it: the ones beyond belong to the next fill's record.  A retransmission
    # of a segment in the list (a sender's view) keeps them all: every one sent since waited.
    later = sorted((e for e in fwd.unacked if 0 < (e[1] - base) & M32 < 0x80000000),
                   key=lambda e: (e[0] - base) & M32)
    start, reach = (seq - base) & M32, (seq + seglen - base) & M32
    resent = any((e[0] - base) & M32 <= start < (e[1] - base) & M32 for e in later)
    entries = []
    for e in later:
        a = (e[0] - base) & M32
        if a > start and not resent:
            if a > reach:
                break
            reach = max(reach, (e[1] - base) & M32)
        entries.append((e[0], e[1], e[2], e[3]))
        if len(entries) >= MAX_FILL_ENTRIES:
            break
    used = sum(len(f[5]) for f in fills)
    if used + len(entries) > FILL_BUDGET:
        return
    fills.append((frame, ts, seq, (seq + seglen) & M32, base, tuple(entries)))


# deliver(data, offset, span), gap(offset, length, span), end(frame, ts) and resent(since, frame, ts)
DeliverFn = Callable[[bytes, int, Span], None]
GapFn = Callable[[int, int, Span], None]
EndFn = Callable[[int, float], None]
ResentFn = Callable[[int, int, float], None]


class Reassembler:
    """Reassembles one direction of a TCP connection."""

    __slots__ = (
        "next_seq",
        "offset",
        "_ooo",
        "_ooo_bytes",
        "_history",
        "index",
        "deliver",
        "on_gap",
        "mismatches",
        "gaps",
        "gap_bytes",
        "limit_hits",
        "hol",
        "resent",
        "_recent",
        "on_end",
        "fin",
        "on_resent",
    )

    def __init__(self, deliver: DeliverFn, on_gap: GapFn, on_end: EndFn | None = None) -> None:
        self.next_seq: int | None = None  # absolute seq of the next in-order byte
        self.offset = 0  # stream offset of next_seq
        # seq -> (data as captured, frame, arrival ts, length on the wire)
        self._ooo: dict[int, tuple[bytes, int, float, int]] = {}
        self._ooo_bytes = 0
        self._history: deque[tuple[int, bytes]] = deque(maxlen=HISTORY_SEGMENTS)
        self.index = StreamIndex()
        self.deliver = deliver
        self.on_gap = on_gap
        self.mismatches = 0  # retransmissions whose bytes differ from the original
        self.gaps = 0
        self.gap_bytes = 0
        self.limit_hits = 0
        self.hol: list[tuple[int, Span]] = []  # head-of-line records (see MAX_HOL_RECORDS)
        self.resent: list[tuple[int, int, int, float, int, tuple[Span, ...]]] = []
        self._recent: deque[Span] = deque(maxlen=RECENT_SPANS)
        self.on_end = on_end  # told once every byte before the FIN was delivered
        self.fin: int | None = None  # the FIN's sequence number, until the stream reaches it
        #: told when bytes already delivered are sent again: ``on_resent(since, frame, ts)`` with the frame
        #: that first carried them (what a sender-side capture shows of a loss; decoders then name the
        #: units delivered since, which the receiver could use only once the retransmission arrived)
        self.on_resent: ResentFn | None = None

    def start(self, seq: int) -> None:
        """The stream's first byte has sequence number ``seq`` (ISN + 1 after a SYN)."""
        if self.next_seq is None:
            self.next_seq = seq & M32

    def segment(self, seq: int, payload: bytes, seglen: int, frame: int, ts: float) -> bool:
        """Take a segment's payload (``seglen`` on the wire, ``payload`` as captured).

        Returns True when retransmitted bytes differ from what was seen before.
        """
        if self.next_seq is None:
            self.next_seq = seq
        rel = (seq - self.next_seq) & M32
        if rel >= 0x80000000:
            rel -= 1 << 32
        differs = False
        if rel < 0:
            # Starts before next_seq: compare the old part, deliver any new tail.
            if payload:
                differs = self._compare(seq, payload)
            if len(self.resent) < MAX_RESENT_RECORDS:
                start = self.offset + rel
                recent = tuple(s for s in self._recent if s.end > start)
                self.resent.append((start, self.offset + min(rel + seglen, 0), frame, ts, self.offset, recent))
                if self.on_resent is not None and recent:
                    self.on_resent(recent[0].frame, frame, ts)
            if rel + seglen <= 0:
                return differs
            cut = -rel
            payload = payload[cut:]
            seglen -= cut
            seq = self.next_seq
            rel = 0
        if rel > 0:
            return self._buffer(seq, payload, seglen, frame, ts) or differs
        # In order: deliver now, then whatever it made contiguous.
        n = len(payload)
        if n == seglen and n and not self._ooo:
            # the usual segment (all of it captured, nothing held out of order): _deliver_run inlined,
            # one call less per segment
            start = self.offset
            span = _new_span(Span, (start, start + n, frame, ts, ts, frame))
            self.index.add(span)
            self._recent.append(span)
            self.offset = start + n
            self._history.append((self.next_seq, payload))
            self.next_seq = (self.next_seq + n) & M32
            self.deliver(payload, start, span)
            if self.fin is not None:
                self._check_end(frame, ts)
            return differs
        self._deliver_run(payload, seglen, frame, ts, ts)
        if self._ooo:
            self._drain(frame, ts)
        elif self.fin is not None:
            self._check_end(frame, ts)
        return differs

    def fin_at(self, seq: int, frame: int, ts: float) -> None:
        """A FIN at ``seq``: the stream ends there (reported once every earlier byte is in)."""
        if self.fin is None and self.on_end is not None:
            self.fin = seq & M32
            self._check_end(frame, ts)

    def _check_end(self, frame: int, ts: float) -> None:
        """Report the end if the stream reached the FIN (in the frame that completed it)."""
        if self.fin is not None and self.fin == self.next_seq and self.on_end is not None:
            on_end, self.on_end = self.on_end, None
            on_end(frame, ts)

    def _deliver_run(self, payload: bytes, seglen: int, frame: int, arrival: float, now: float,
                     arrival_frame: int | None = None) -> None:
        start_seq = self.next_seq
        n = len(payload)
        if n:
            start = self.offset
            # Span(...) without the namedtuple's Python-level __new__ (once per delivered segment)
            span = _new_span(Span, (start, start + n, frame, arrival, now, frame if arrival_frame is None else arrival_frame))
            self.index.add(span)
            self._recent.append(span)
            if (self._ooo or now != arrival) and len(self.hol) < MAX_HOL_RECORDS:
                self.hol.append((HOL_HELD if now != arrival else HOL_FILL, span))
            self.offset = start + n
            self.next_seq = (self.next_seq + n) & M32
            self._history.append((start_seq, payload))
            self.deliver(payload, start, span)
        if seglen > n:  # snap length cut the segment: those bytes are gone for good
            self._gap(seglen - n, frame, now)

    def _gap(self, length: int, frame: int, now: float) -> None:
        start = self.offset
        span = Span(start, start + length, frame, now, now, frame)
        self.index.add(span)
        self.offset += length
        self.next_seq = (self.next_seq + length) & M32
        self.gaps += 1
        self.gap_bytes += length
        if self._ooo and len(self.hol) < MAX_HOL_RECORDS:
            self.hol.append((HOL_GAP, span))
        self.on_gap(start, length, span)

    def _buffer(self, seq: int, payload: bytes, seglen: int, frame: int, ts: float) -> bool:
        old = self._ooo.get(seq)
        if old is not None:
            if len(old[0]) >= len(payload):
                return self._compare_buffered(old[0], payload)
            self._ooo_bytes -= len(old[0])
        self._ooo[seq] = (payload, frame, ts, seglen)
        self._ooo_bytes += len(payload)
        if self._ooo_bytes > MAX_BUFFERED:
            # Give up on the hole: declare it missing and go on from the first buffered byte.
            self.limit_hits += 1
            first = min(self._ooo, key=lambda s: (s - self.next_seq) & M32)
            self.skip_to(first, frame, ts)
        return False

    def _drain(self, frame: int, now: float) -> None:
        ooo = self._ooo
        while ooo:
            nxt = self.next_seq
            item = ooo.pop(nxt, None)
            if item is None:
                # Segments overlapping next_seq from before it (partial overlaps).
                item_seq = None
                for s in ooo:
                    if not gt_seq(s, nxt):
                        item_seq = s
                        break
                if item_seq is None:
                    break
                data, f, arrival, seglen = ooo.pop(item_seq)
                self._ooo_bytes -= len(data)
                cut = (nxt - item_seq) & M32
                if cut >= seglen:
                    continue
                data = data[cut:]
                seglen -= cut
            else:
                data, f, arrival, seglen = item
                self._ooo_bytes -= len(data)
            self._deliver_run(data, seglen, frame, arrival, now, f)
        if self.fin is not None:
            self._check_end(frame, now)

    def skip_to(self, seq: int, frame: int, now: float) -> None:
        """Bytes before ``seq`` will never arrive: declare gaps and deliver what is buffered."""
        if self.next_seq is None:
            return
        while gt_seq(seq, self.next_seq):
            self._drain(frame, now)
            if not gt_seq(seq, self.next_seq):
                break
            nxt = self.next_seq
            # the nearest buffered segment after next_seq bounds the hole
            dist = (seq - nxt) & M32
            for s in self._ooo:
                d = (s - nxt) & M32
                if 0 < d < dist:
                    dist = d
            self._gap(dist, frame, now)
        self._drain(frame, now)

    def flush(self, frame: int, now: float) -> None:
        """The capture ended: deliver what is buffered across the holes before it."""
        while self._ooo and self.next_seq is not None:
            last = max(self._ooo, key=lambda s: (s - self.next_seq) & M32)
            self.skip_to(last, frame, now)

    @property
    def buffered(self) -> int:
        """Out-of-order bytes held right now."""
        return self._ooo_bytes

    def _compare(self, seq: int, payload: bytes) -> bool:
        """Whether ``payload`` (starting at ``seq``) differs from bytes delivered before."""
        end = (seq + len(payload)) & M32
        for hseq, hdata in reversed(self._history):
            hend = (hseq + len(hdata)) & M32
            lo = seq if gt_seq(seq, hseq) else hseq
            hi = end if gt_seq(hend, end) else hend
            if not gt_seq(hi, lo):
                continue
            a = (lo - seq) & M32
            b = (lo - hseq) & M32
            n = (hi - lo) & M32
            if payload[a : a + n] != hdata[b : b + n]:
                self.mismatches += 1
                return True
        return False

    def _compare_buffered(self, old: bytes, new: bytes) -> bool:
        if old[: len(new)] != new:
            self.mismatches += 1
            return True
        return False
