"""Application units the analyses name: HTTP exchanges and their delivery marks.

The decoders keep, per HTTP exchange (HTTP/1.1 message pair, HTTP/2 or
HTTP/3 stream), when its request, its response head and its response end were
delivered (``*_ts``, ``*_frame``) and when the bytes that completed them first
arrived (``*_arrival``).  Each of those is a :class:`Mark`.  A mark delivered
later than it arrived was held behind missing bytes; over TLS the arrival is
that of the whole record (a record is usable only once complete).

A decoder without exchanges may offer ``hol_marks()`` returning
``(key, unit, direction, frame, ts, arrival)`` tuples for its own units; the
analyses use those as they are.  ``hol_sent_marks()`` returns the same for the
units a decoder completed between a lost segment's original and its
retransmission (noted when the pipeline calls its ``hol_resent`` hook): what a
sender-side capture says the receiver held.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NamedTuple

from ..decoders.http1 import Http1Decoder
from ..decoders.http2 import Http2Decoder
from ..decoders.http3 import Http3Decoder
from ..decoders.tls import TlsDecoder
from ..decoders.websocket import WebSocketDecoder

if TYPE_CHECKING:
    from ..decoders.quic.decoder import QuicDecoder

C2S, S2C = 0, 1


class Mark(NamedTuple):
    """A point where an application unit became deliverable."""

    key: str  #: the unit's identity (one per exchange and direction)
    unit: str  #: how it is named in the output
    direction: int
    frame: int  #: the frame that made it deliverable
    ts: float  #: when it became deliverable
    arrival: float  #: when the bytes that completed it first arrived


def layers(decoder: Any) -> list[Any]:
    """A connection's decoder and the decoders nested in it (TLS -> HTTP, HTTP/1.1 -> WebSocket, QUIC -> HTTP/3)."""
    out: list[Any] = []
    seen: set[int] = set()
    stack = [decoder]
    while stack:
        d = stack.pop()
        if d is None or id(d) in seen:
            continue
        seen.add(id(d))
        out.append(d)
        for attr in ("_inner", "inner", "app"):
            stack.append(getattr(d, attr, None))
    return out


def find(decoder: Any, cls: type) -> Any:
    """The first layer that is a ``cls``."""
    for layer in layers(decoder):
        if isinstance(layer, cls):
            return layer
    return None


def tls_of(decoder: Any) -> TlsDecoder | None:
    return find(decoder, TlsDecoder)


def quic_of(decoder: Any) -> QuicDecoder | None:
    # The QUIC decoder module is imported lazily (aioquic is slow to import):
    # if it was never imported, no QUIC decoder exists to find.
    module = sys.modules.get("inspector.decoders.quic.decoder")
    return find(decoder, module.QuicDecoder) if module is not None else None


def http2_of(decoder: Any) -> Http2Decoder | None:
    return find(decoder, Http2Decoder)


def websocket_of(decoder: Any) -> WebSocketDecoder | None:
    return find(decoder, WebSocketDecoder)


def exchanges(decoder: Any) -> list[tuple[str, Any]]:
    """Every HTTP exchange of the connection with its protocol label, in request order."""
    out: list[tuple[str, Any]] = []
    parts = 0
    for layer in layers(decoder):
        if isinstance(layer, Http2Decoder):
            out += [("HTTP/2", ex) for ex in layer.exchanges]
        elif isinstance(layer, Http1Decoder):
            out += [("HTTP/1.1", ex) for ex in layer.exchanges if ex.stream is None]
        elif isinstance(layer, Http3Decoder):
            out += [("HTTP/3", ex) for ex in layer.requests.values()]
        else:
            continue
        parts += 1
    if parts > 1:  # each decoder lists its exchanges in order already; merge only when there are several
        out.sort(key=lambda pe: (pe[1].request_ts is None, pe[1].request_ts or 0.0))
    return out


def name(proto: str, ex: Any, index: int) -> str:
    """``HTTP/2 stream 5 (GET /obj/3.bin)``; HTTP/1.1 exchanges are numbered from 1 on their connection."""
    what = f"{ex.method or '?'} {ex.path or ''}".rstrip()
    if ex.stream is not None:
        return f"{proto} stream {ex.stream} ({what})"
    return f"{proto} response {index} ({what})"


class Units:
    """A connection's application units, worked out once per analysis (a connection may hold tens of
    thousands of exchanges: marks are made only for the frames an episode asks about)."""

    __slots__ = ("decoder", "_exchanges", "_by_stream")

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self._exchanges: list[tuple[str, Any]] | None = None
        self._by_stream: dict[int, tuple[str, Any]] | None = None

    @property
    def exchanges(self) -> list[tuple[str, Any]]:
        if self._exchanges is None:
            self._exchanges = exchanges(self.decoder)
        return self._exchanges

    def stream_name(self, sid: int, default: str) -> str:
        """The name of the exchange on stream ``sid`` (HTTP/2, HTTP/3)."""
        if self._by_stream is None:
            self._by_stream = {ex.stream: (p, ex) for p, ex in self.exchanges if ex.stream is not None}
        found = self._by_stream.get(sid)
        return name(found[0], found[1], 0) if found is not None else default

    def marks(self, lo: int, hi: int) -> list[Mark]:
        """The delivery marks made in frames ``lo`` to ``hi``."""
        out: list[Mark] = []
        for n, (proto, ex) in enumerate(self.exchanges, 1):
            for direction, frame, ts, arrival in _points(ex):
                if frame is not None and lo <= frame <= hi and ts is not None and arrival is not None:
                    key = f"{proto}:{ex.stream if ex.stream is not None else n}"
                    out.append(Mark(key, name(proto, ex, n), direction, frame, ts, arrival))
        return out + self._layer_marks("hol_marks", lo, hi)

    def sent_marks(self, lo: int, hi: int) -> list[Mark]:
        """The decoders' marks for units sent in frames ``lo`` to ``hi`` before a retransmission."""
        return self._layer_marks("hol_sent_marks", lo, hi)

    def _layer_marks(self, method: str, lo: int, hi: int) -> list[Mark]:
        out: list[Mark] = []
        for layer in layers(self.decoder):
            extra = getattr(layer, method, None)
            if callable(extra):
                out += [Mark(*m) for m in extra() if lo <= m[3] <= hi]
        return out


def _points(ex: Any) -> tuple[tuple[int, int | None, float | None, float | None], ...]:
    return (
        (C2S, ex.request_frame, ex.request_ts, ex.request_arrival),
        (S2C, ex.response_frame, ex.response_ts, ex.response_arrival),
        (S2C, ex.end_frame, ex.end_ts, ex.end_arrival),
    )
