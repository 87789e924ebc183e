"""Feed hand-made byte chunks to a stream decoder, one span (one "frame") per chunk."""

from __future__ import annotations

from typing import Any

from inspector.decoders.base import DecodeContext
from inspector.flows.streamindex import Span, StreamIndex

CTX = DecodeContext(conn=1, client=("127.0.0.1", 40000), server=("127.0.0.1", 80))


class Feeder:
    """Per-direction offsets and indexes; chunk number ``n`` is frame ``n`` at time ``n`` seconds."""

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder
        self.offsets = [0, 0]
        self.indexes = (StreamIndex(), StreamIndex())
        self.frame = 0

    def feed(self, direction: int, data: bytes) -> list[Any]:
        self.frame += 1
        off = self.offsets[direction]
        if data:
            self.indexes[direction].add(Span(off, off + len(data), self.frame, float(self.frame),
                                             float(self.frame), self.frame))
        self.offsets[direction] = off + len(data)
        return self.decoder.feed(direction, data, off, self.indexes[direction])

    def gap(self, direction: int, length: int) -> list[Any]:
        off = self.offsets[direction]
        self.offsets[direction] = off + length
        return self.decoder.gap(direction, off, length, self.indexes[direction])


def strip(events: list[Any]) -> list[dict[str, Any]]:
    """Events as dicts without the fields that depend on how the bytes were chunked."""
    out = []
    for e in events:
        d = e.to_dict()
        for k in ("frame", "ts", "first_frame", "start_ts", "ping_frame", "rtt_ms"):
            d.pop(k, None)
        out.append(d)
    return out
