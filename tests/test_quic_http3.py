"""HTTP/3 framing and QPACK: the stream bytes of a real connection split at every offset, and broken streams.

The stream bytes come from the committed aioquic capture (see
captures/quic/README.md), recorded as the QUIC decoder hands them to
HTTP/3.  Replayed with every delivery cut in two at offset k, the frames
and decoded headers must be exactly those of the uncut replay, which in
turn match the header lists the aioquic peers were given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pylsqpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.base import DecodeContext
from inspector.decoders.http3 import MAX_FIELD_SECTION, MAX_TABLE_CAPACITY, Http3Decoder
from inspector.decoders.quic import QuicDecoder
from inspector.events import Http3Frame, Http3Stream, Malformed, Note
from inspector.flows.streamindex import Span, StreamIndex
from inspector.keylog import KeyLog
from tests.support.quic_captures import udp_datagrams

CAPTURES = Path(__file__).resolve().parent.parent / "captures" / "quic"
PEER = json.loads((CAPTURES / "h3-aioquic.peer.json").read_text())
CTX = DecodeContext(conn=0, client=("127.0.0.1", 1), server=("127.0.0.1", PEER["port"]))


class Recorder:
    """Stands in for the HTTP/3 decoder behind QUIC and records what it is given."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bytes, int, bool, int, float]] = []

    def stream_data(self, direction: int, sid: int, data: bytes, offset: int, fin: bool, index: StreamIndex,
                    frame: int, ts: float) -> list:
        self.calls.append((direction, sid, data, offset, fin, frame, ts))
        return []

    def stream_reset(self, *args: Any) -> list:
        return []

    def finish(self) -> list:
        return []

    def summary(self) -> dict:
        return {"requests": []}


@pytest.fixture(scope="module")
def stream_calls() -> list[tuple[int, int, bytes, int, bool, int, float]]:
    recorder = Recorder()
    ctx = DecodeContext(conn=0, client=CTX.client, server=CTX.server,
                        keylog=KeyLog.from_file(str(CAPTURES / "h3-aioquic.keys")))
    dec = QuicDecoder(ctx, app=recorder)
    for frame, ts, ports, payload in udp_datagrams(str(CAPTURES / "h3-aioquic.pcap")):
        dec.datagram(0 if ports[1] == PEER["port"] else 1, payload, frame, ts)
    assert recorder.calls
    return recorder.calls


def replay(calls: list, cut: int | None = None) -> tuple[Http3Decoder, list]:
    h3 = Http3Decoder(CTX)
    indexes: dict[tuple[int, int], StreamIndex] = {}
    events: list = []
    for direction, sid, data, offset, fin, frame, ts in calls:
        index = indexes.setdefault((direction, sid), StreamIndex())
        pieces = [data] if cut is None or not 0 < cut < len(data) else [data[:cut], data[cut:]]
        for i, piece in enumerate(pieces):
            index.add(Span(offset, offset + len(piece), frame, ts, ts, frame))
            last = i == len(pieces) - 1
            events += h3.stream_data(direction, sid, piece, offset, fin and last, index, frame, ts)
            offset += len(piece)
    events += h3.finish()
    return h3, events


def shape(events: list) -> list[tuple]:
    return [(e.type, e.direction, e.stream, getattr(e, "length", None), getattr(e, "headers", None),
             getattr(e, "detail", None), getattr(e, "stream_type", None)) for e in events]


def test_replay_matches_the_peers(stream_calls: list) -> None:
    h3, events = replay(stream_calls)
    assert not [e for e in events if isinstance(e, (Malformed, Note))]
    requests = {sid: dict(h) for sid, h in ((r["stream"], r["request"]) for r in PEER["requests"])}
    decoded = {e.stream: dict(e.headers) for e in events
               if isinstance(e, Http3Frame) and e.type == "HEADERS" and e.direction == "c2s"}
    assert decoded == requests
    responses = {int(k): v for k, v in PEER["server_sent"].items()}
    assert {e.stream: e.headers for e in events
            if isinstance(e, Http3Frame) and e.type == "HEADERS" and e.direction == "s2c"} == responses
    types = sorted(e.stream_type for e in events if isinstance(e, Http3Stream))
    assert types == ["control", "control", "push", "qpack_decoder", "qpack_decoder", "qpack_encoder",
                     "qpack_encoder"]
    settings = [e.detail["settings"] for e in events if isinstance(e, Http3Frame) and e.type == "SETTINGS"]
    assert all(s["QPACK_MAX_TABLE_CAPACITY"] == 4096 and s["QPACK_BLOCKED_STREAMS"] == 16 for s in settings)


def test_split_at_every_offset(stream_calls: list) -> None:
    _, whole = replay(stream_calls)
    expected = shape(whole)
    longest = max(len(c[2]) for c in stream_calls)
    for cut in range(1, longest):
        _, events = replay(stream_calls, cut)
        assert shape(events) == expected, cut


def test_one_byte_at_a_time(stream_calls: list) -> None:
    _, whole = replay(stream_calls)
    bytewise = []
    for direction, sid, data, offset, fin, frame, ts in stream_calls:
        for i in range(len(data)):
            bytewise.append((direction, sid, data[i : i + 1], offset + i, fin and i == len(data) - 1, frame, ts))
        if not data:
            bytewise.append((direction, sid, data, offset, fin, frame, ts))
    _, events = replay(bytewise)
    assert shape(events) == shape(whole)


def _stream(h3: Http3Decoder, direction: int, sid: int, data: bytes, fin: bool = False) -> list:
    index = StreamIndex()
    index.add(Span(0, len(data) + 1, 1, 1.0, 1.0, 1))
    return h3.stream_data(direction, sid, data, 0, fin, index, 1, 1.0)


def test_broken_streams_are_reported_and_others_go_on() -> None:
    h3 = Http3Decoder(CTX)
    # control stream whose first frame is not SETTINGS
    events = _stream(h3, 0, 2, bytes([0x00, 0x07, 0x01, 0x00]))
    assert any(isinstance(e, Malformed) and "H3_MISSING_SETTINGS" in e.reason for e in events)
    # an HTTP/2 PING frame on a request stream
    events = _stream(h3, 0, 0, bytes([0x06, 0x01, 0x00]))
    assert any(isinstance(e, Malformed) and "PING" in e.reason for e in events)
    # a HEADERS frame longer than the limit is refused before it is buffered
    huge = bytes([0x01]) + bytes([0x80 | ((MAX_FIELD_SECTION + 1) >> 24), ((MAX_FIELD_SECTION + 1) >> 16) & 0xFF,
                                  ((MAX_FIELD_SECTION + 1) >> 8) & 0xFF, (MAX_FIELD_SECTION + 1) & 0xFF])
    events = _stream(h3, 0, 4, huge)
    assert any(isinstance(e, Malformed) and "exceeds" in e.reason for e in events)
    # QPACK garbage
    events = _stream(h3, 0, 8, bytes([0x01, 0x03, 0xFF, 0xFF, 0xFF]))
    assert any(isinstance(e, Malformed) and "QPACK" in e.reason for e in events)
    # a stream that ends inside a frame
    events = _stream(h3, 0, 12, bytes([0x00, 0x10, 0x61]), fin=True)
    assert any(isinstance(e, Malformed) and "ended inside a frame" in e.reason for e in events)
    # a well-formed request on another stream still decodes
    encoder = pylsqpack.Encoder()
    _, block = encoder.encode(16, [(b":method", b"GET"), (b":path", b"/ok"), (b":scheme", b"https"),
                                   (b":authority", b"x")])
    events = _stream(h3, 0, 16, bytes([0x01, len(block)]) + block, fin=True)
    (frame,) = [e for e in events if isinstance(e, Http3Frame)]
    assert frame.headers[:2] == [[":method", "GET"], [":path", "/ok"]]
    assert [r["path"] for r in h3.summary()["requests"]] == ["/ok"]


def test_settings_errors_and_table_cap() -> None:
    h3 = Http3Decoder(CTX)
    # HTTP/2's SETTINGS_MAX_FRAME_SIZE (0x5) is an error in HTTP/3
    events = _stream(h3, 1, 3, bytes([0x00, 0x04, 0x02, 0x05, 0x01]))
    assert any(isinstance(e, Malformed) and "H3_SETTINGS_ERROR" in e.reason for e in events)
    # a peer asking for a 1 GiB dynamic table is mirrored with the cap, and said so
    payload = bytes([0x01, 0xBF, 0xFF, 0xFF, 0xFF])  # QPACK_MAX_TABLE_CAPACITY = 2^30 - 1
    h3 = Http3Decoder(CTX)
    events = _stream(h3, 1, 3, bytes([0x00, 0x04, len(payload)]) + payload)
    assert any(isinstance(e, Note) and "capacity" in e.message for e in events)
    h3._decoder(0)
    assert h3._qpack_capacity[0] == MAX_TABLE_CAPACITY


def test_unknown_and_reserved_types() -> None:
    h3 = Http3Decoder(CTX)
    # a reserved (GREASE) unidirectional stream type is announced and its bytes skipped
    events = _stream(h3, 0, 2, bytes([0x40, 0x21]) + b"anything at all")
    assert [(e.type, e.stream_type) for e in events] == [("stream", "reserved")]
    # a reserved frame type on a request stream is kept as UNKNOWN and skipped
    events = _stream(h3, 0, 0, bytes([0x40, 0x21, 0x02, 0xAA, 0xBB]))
    (frame,) = events
    assert frame.type == "UNKNOWN_0x21" and frame.detail == {"code": 0x21, "reserved": True} and frame.length == 2


def test_control_frames() -> None:
    """SETTINGS, GOAWAY, MAX_PUSH_ID and CANCEL_PUSH on a control stream (RFC 9114 §7.2), by their layouts."""
    h3 = Http3Decoder(CTX)
    data = bytes([0x00])  # stream type: control
    data += bytes([0x04, 0x04, 0x01, 0x00, 0x07, 0x00])  # SETTINGS: QPACK capacity 0, blocked streams 0
    data += bytes([0x0D, 0x01, 0x05])  # MAX_PUSH_ID 5 (client) -- here just framing
    data += bytes([0x03, 0x01, 0x02])  # CANCEL_PUSH 2
    data += bytes([0x07, 0x02, 0x40, 0x40])  # GOAWAY stream 64 (two-byte varint)
    events = _stream(h3, 1, 3, data)
    frames = [(e.type, e.detail) for e in events if isinstance(e, Http3Frame)]
    assert frames == [
        ("SETTINGS", {"settings": {"QPACK_MAX_TABLE_CAPACITY": 0, "QPACK_BLOCKED_STREAMS": 0}}),
        ("MAX_PUSH_ID", {"push_id": 5}),
        ("CANCEL_PUSH", {"push_id": 2}),
        ("GOAWAY", {"id": 64}),
    ]
    assert h3.goaway == {"s2c": 64}


def test_blocked_field_section_waits_for_the_encoder_stream() -> None:
    """A HEADERS block that refers to inserts not yet received is decoded when they arrive (RFC 9204 §2.1.2)."""
    h3 = Http3Decoder(CTX)
    # the server's SETTINGS allow the client a dynamic table (the client's encoder is sized by them)
    _stream(h3, 1, 3, bytes([0x00, 0x04, 0x05, 0x01, 0x50, 0x00, 0x07, 0x10]))  # capacity 4096, 16 blocked
    encoder = pylsqpack.Encoder()
    encoder_stream = encoder.apply_settings(max_table_capacity=4096, blocked_streams=16)
    headers = [(b":method", b"GET"), (b":path", b"/dyn"), (b":scheme", b"https"), (b":authority", b"x"),
               (b"x-custom", b"value-that-goes-in-the-table")]
    _, first = encoder.encode(0, headers)  # static table and literals only
    inserts, second = encoder.encode(4, headers)  # inserts the fields, then refers to them
    assert inserts and second[0] != 0, "the second block has a Required Insert Count"
    encoder_stream += inserts
    index = StreamIndex()
    index.add(Span(0, 100, 5, 5.0, 5.0, 5))
    events = h3.stream_data(0, 0, bytes([0x01, len(first)]) + first, 0, True, index, 5, 5.0)
    assert [e.type for e in events if isinstance(e, Http3Frame)] == ["HEADERS"]
    index = StreamIndex()
    index.add(Span(0, 100, 6, 6.0, 6.0, 6))
    events = h3.stream_data(0, 4, bytes([0x01, len(second)]) + second, 0, True, index, 6, 6.0)
    assert not [e for e in events if isinstance(e, Http3Frame)]  # blocked: nothing to show yet
    enc_index = StreamIndex()
    enc_index.add(Span(0, 1000, 7, 7.0, 7.0, 7))
    events = h3.stream_data(0, 2, bytes([0x02]) + encoder_stream, 0, False, enc_index, 7, 7.0)
    (frame,) = [e for e in events if isinstance(e, Http3Frame)]
    assert frame.type == "HEADERS" and frame.stream == 4 and frame.frame == 7  # decodable from frame 7 on
    assert frame.headers == [[n.decode(), v.decode()] for n, v in headers]
    assert [r["path"] for r in h3.summary()["requests"]] == ["/dyn", "/dyn"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.sampled_from([0, 1, 2, 3, 4, 6, 7, 10, 11]), st.binary(max_size=64),
                          st.booleans()), max_size=20))
def test_random_stream_bytes_never_raise(chunks: list[tuple[int, int, bytes, bool]]) -> None:
    h3 = Http3Decoder(CTX)
    offsets: dict[tuple[int, int], int] = {}
    indexes: dict[tuple[int, int], StreamIndex] = {}
    for direction, sid, data, fin in chunks:
        key = (direction, sid)
        offset = offsets.get(key, 0)
        index = indexes.setdefault(key, StreamIndex())
        index.add(Span(offset, offset + len(data) + 1, 1, 1.0, 1.0, 1))
        events = h3.stream_data(direction, sid, data, offset, fin, index, 1, 1.0)
        assert all(isinstance(e, (Http3Frame, Http3Stream, Malformed, Note)) for e in events)
        offsets[key] = offset + len(data)
    h3.finish()
    h3.summary()
