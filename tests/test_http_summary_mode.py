"""Summary mode: when nobody reads events, the TLS and HTTP/2 decoders skip building the
per-record and per-frame ones (``ctx.facts["events"] = False``, set before the decoder is
chosen) and take their hot paths without them.  Everything a summary and the analyses
read (requests with every timing, headers, HPACK and flow-control counters, TLS facts)
must come out exactly as in a full decode, whose events the tshark differential tests
check frame by frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inspector.decoders.registry import Registry
from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"


class QuietRegistry(Registry):
    """The standard registry, telling each connection's decoders that no one reads their events."""

    def choose_stream(self, ctx: Any, direction: int, first: bytes) -> Any:
        ctx.facts["events"] = False
        return super().choose_stream(ctx, direction, first)


def _layers(decoder: Any) -> list[Any]:
    out = []
    while decoder is not None:
        out.append(decoder)
        decoder = getattr(decoder, "_inner", None)
    return out


def _exchanges(pipe: Any) -> list[tuple]:
    rows = []
    for conn in pipe.connections:
        for layer in _layers(conn.decoder):
            for ex in getattr(layer, "exchanges", ()):
                rows.append((conn.id, ex.summary(), ex.request_frame, ex.request_arrival, ex.request_end_ts,
                             ex.response_frame, ex.response_arrival, ex.end_frame, ex.end_arrival,
                             ex.request_headers, ex.response_headers, ex.trailers, ex.interim, ex.headers_reliable))
    return rows


def _keylog(name: str) -> KeyLog | None:
    keys = SAMPLES / f"{name}.keys"
    return KeyLog.from_file(str(keys)) if keys.exists() else None


@pytest.mark.parametrize("name", ["http2-multiplex", "http2-lossy", "http2-tail-loss", "http2-flow-control", "grpc",
                                  "tls12-vs-tls13", "tls13-resumption-0rtt", "dns-then-connect", "push-feed"])
def test_summary_without_events_equals_full_decode(name: str) -> None:
    path = str(SAMPLES / f"{name}.pcap")
    quiet, _ = decode_file(path, keylog=_keylog(name), registry=QuietRegistry())
    full, _ = decode_file(path, keylog=_keylog(name), on_event=lambda e: None)
    tcp = [c for c in quiet.connections if c.transport == "tcp" and c.ctx.facts.get("events") is False]
    assert tcp, "the quiet registry chose a decoder for at least one connection"
    assert summaries(quiet.connections, quiet.registry) == summaries(full.connections, full.registry)
    rows = _exchanges(quiet)
    assert rows == _exchanges(full)
    if name.startswith("http2") or name == "grpc":
        assert rows, "HTTP/2 exchanges were decoded"


def test_quiet_decode_emits_no_per_frame_events() -> None:
    """With the flag set and a consumer attached, the HTTP/2 and decrypted-record events are gone;
    malformed events and notes are not per-frame and still come."""
    path = str(SAMPLES / "http2-multiplex.pcap")
    seen: list = []
    decode_file(path, keylog=_keylog("http2-multiplex"), on_event=seen.append, registry=QuietRegistry())
    types = {(e.layer, e.type) for e in seen}
    assert ("http2", "HEADERS") not in types and ("tls", "ApplicationData") not in types
    assert ("tls", "ClientHello") in types  # handshake messages are not on the hot path
    full: list = []
    decode_file(path, keylog=_keylog("http2-multiplex"), on_event=full.append)
    assert sum(e.layer == "http2" and e.type == "HEADERS" for e in full) == 12  # six requests, six responses
