"""Where and when each byte of an ordered stream came from.

A :class:`StreamIndex` belongs to one direction of one stream layer (the TCP
byte stream, or the plaintext a TLS decoder produces from it).  It maps a
stream offset to the :class:`Span` that carried it: the frame that completed
the run, when its bytes first arrived and when they became deliverable in
order.  HOL analysis and frame attribution both read it.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter
from typing import NamedTuple


#: Live spans kept per stream direction at most (bounded memory; see StreamIndex.add).
MAX_SPANS = 1 << 16


class Span(NamedTuple):
    """A run of stream bytes ``[start, end)`` that was delivered together."""

    start: int
    end: int
    frame: int  #: the frame that made the run deliverable (Wireshark's "reassembled in")
    arrival: float  #: when the run's bytes were first seen (earliest arrival of the run)
    delivered: float  #: when every earlier byte was present too
    arrival_frame: int  #: the frame that first carried the run's bytes


_end = itemgetter(1)  # Span.end, for bisect's key


class StreamIndex:
    """Ordered spans of one stream direction, released as decoders consume them."""

    __slots__ = ("_starts", "_spans", "_lo", "last")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._spans: list[Span] = []
        self._lo = 0  # index of the first live span (released ones are dropped in bulk)
        #: the span added last (the run a decoder is being fed right now), None when empty
        self.last: Span | None = None

    def add(self, span: Span) -> None:
        """Record a span; spans arrive in stream order and never overlap.

        A decoder that never releases would make this grow with every
        segment; past :data:`MAX_SPANS` live spans the oldest half is
        forgotten (``locate`` then answers with the oldest span it still has).
        """
        self._starts.append(span.start)
        self._spans.append(span)
        self.last = span
        if len(self._spans) - self._lo > MAX_SPANS:
            self.release(self._spans[self._lo + MAX_SPANS // 2].start)

    def locate(self, offset: int) -> Span:
        """The span holding ``offset`` (the last span if the offset is past the end)."""
        i = bisect_right(self._starts, offset, self._lo) - 1
        if i < self._lo:
            i = self._lo
        if i >= len(self._spans):
            raise LookupError(f"offset {offset} not in stream index")
        return self._spans[i]

    def spans(self, start: int, end: int) -> list[Span]:
        """The spans overlapping ``[start, end)``, in order."""
        i = max(bisect_right(self._starts, start, self._lo) - 1, self._lo)
        out: list[Span] = []
        spans = self._spans
        while i < len(spans) and spans[i].start < end:
            if spans[i].end > start:
                out.append(spans[i])
            i += 1
        return out

    def release(self, offset: int) -> None:
        """Forget spans that end at or before ``offset`` (keeps memory bounded)."""
        spans = self._spans
        # the first span ending after ``offset``, but never the last: ends ascend (spans come in order
        # and never overlap), so a binary search does what walking span by span did
        lo = self._lo = bisect_right(spans, offset, self._lo, len(spans) - 1, key=_end)
        if lo > 1024 and lo * 2 > len(spans):
            del self._spans[:lo]
            del self._starts[:lo]
            self._lo = 0

    def __len__(self) -> int:
        return len(self._spans) - self._lo

    @property
    def end(self) -> int:
        """Offset just past the last recorded byte (0 when empty)."""
        return self._spans[-1].end if self._spans else 0
