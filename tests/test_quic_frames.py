"""QUIC frame parsing (RFC 9000 §19, RFC 9221) and in-order stream delivery.

Frames are built with aioquic's own encoders where it has them (ACK ranges,
transport close) and byte by byte from the RFC layouts otherwise; every
frame cut at every offset must give a FrameError, never a wrong frame.  The
reassembler is checked with hypothesis: any split, order and overlap of a
stream's bytes delivers exactly the stream.
"""

from __future__ import annotations

import pytest
from aioquic.buffer import Buffer
from aioquic.quic.packet import pull_ack_frame, push_ack_frame
from aioquic.quic.rangeset import RangeSet
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.quic.frames import FrameError, ack_eliciting, parse_frames
from inspector.decoders.quic.recovery import Arrival, Reassembler, delivery


def var(value: int) -> bytes:
    buf = Buffer(capacity=8)
    buf.push_uint_var(value)
    return buf.data


# one frame of each type, laid out as RFC 9000 §19 (and RFC 9221 §4) defines them
FRAMES = {
    "PING": bytes([0x01]),
    "RESET_STREAM": bytes([0x04]) + var(4) + var(0x10C) + var(1000),
    "STOP_SENDING": bytes([0x05]) + var(8) + var(0x10C),
    "CRYPTO": bytes([0x06]) + var(100) + var(5) + b"hello",
    "NEW_TOKEN": bytes([0x07]) + var(3) + b"tok",
    "STREAM": bytes([0x0F]) + var(4) + var(70000) + var(3) + b"abc",  # OFF, LEN and FIN bits
    "MAX_DATA": bytes([0x10]) + var(1 << 20),
    "MAX_STREAM_DATA": bytes([0x11]) + var(4) + var(1 << 16),
    "MAX_STREAMS": bytes([0x13]) + var(100),
    "DATA_BLOCKED": bytes([0x14]) + var(1 << 20),
    "STREAM_DATA_BLOCKED": bytes([0x15]) + var(8) + var(4096),
    "STREAMS_BLOCKED": bytes([0x16]) + var(10),
    "NEW_CONNECTION_ID": bytes([0x18]) + var(2) + var(1) + bytes([8]) + bytes(range(8)) + bytes(16),
    "RETIRE_CONNECTION_ID": bytes([0x19]) + var(1),
    "PATH_CHALLENGE": bytes([0x1A]) + bytes(range(8)),
    "PATH_RESPONSE": bytes([0x1B]) + bytes(range(8)),
    "CONNECTION_CLOSE": bytes([0x1C]) + var(0x0A) + var(0x08) + var(3) + b"bye",
    "HANDSHAKE_DONE": bytes([0x1E]),
    "DATAGRAM": bytes([0x31]) + var(4) + b"data",
}


def test_every_frame_type() -> None:
    payload = b"".join(FRAMES.values()) + bytes(5)
    frames = parse_frames(payload)
    assert [f.name for f in frames] == [*FRAMES, "PADDING"]
    by_name = {f.name: f for f in frames}
    assert by_name["STREAM"].fields == {"stream": 4, "offset": 70000, "length": 3, "fin": True}
    assert by_name["STREAM"].data == b"abc"
    assert by_name["CRYPTO"].fields == {"offset": 100, "length": 5}
    assert by_name["RESET_STREAM"].fields == {"stream": 4, "error": 0x10C, "final_size": 1000}
    assert by_name["NEW_CONNECTION_ID"].fields["cid"] == bytes(range(8)).hex()
    assert by_name["MAX_STREAMS"].fields == {"kind": "uni", "limit": 100}
    assert by_name["STREAMS_BLOCKED"].fields == {"kind": "bidi", "limit": 10}
    assert by_name["CONNECTION_CLOSE"].fields == {"application": False, "error": 0x0A, "frame_type": 8,
                                                  "reason": "bye"}
    assert by_name["PADDING"].fields == {"length": 5}
    assert by_name["DATAGRAM"].data == b"data"
    assert ack_eliciting(frames)
    assert not ack_eliciting(parse_frames(bytes(3)))


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_cut_at_every_offset(name: str) -> None:
    frame = FRAMES[name]
    if name in ("PING", "HANDSHAKE_DONE"):
        return  # one byte: nothing to cut
    prefix = FRAMES["PING"]
    for cut in range(1, len(frame)):
        data = prefix + frame[:cut]
        with pytest.raises(FrameError) as info:
            parse_frames(data)
        assert [f.name for f in info.value.frames] == ["PING"], cut
        assert "truncated" in info.value.reason or "invalid" in info.value.reason


def test_stream_without_length_runs_to_the_end() -> None:
    (frame,) = parse_frames(bytes([0x08]) + var(0) + b"rest of packet")
    assert frame.fields == {"stream": 0, "offset": 0, "length": 14, "fin": False}


def test_unknown_frame_type_stops_the_packet() -> None:
    with pytest.raises(FrameError) as info:
        parse_frames(FRAMES["PING"] + var(0x3F00) + b"xyz")
    assert [f.name for f in info.value.frames] == ["PING", "UNKNOWN_0x3f00"]
    with pytest.raises(FrameError):
        parse_frames(b"")  # a packet must carry a frame (RFC 9000 §12.4)


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=1, max_size=12), st.integers(0, 1000),
       st.booleans())
def test_ack_ranges_agree_with_aioquic(gaps: list[tuple[int, int]], delay: int, ecn: bool) -> None:
    ranges = RangeSet()
    pn = 0
    for gap, length in gaps:
        pn += gap + 1
        ranges.add(pn, pn + length + 1)
        pn += length + 1
    buf = Buffer(capacity=4096)
    push_ack_frame(buf, ranges, delay, 4096)
    body = buf.data
    theirs, their_delay = pull_ack_frame(Buffer(data=body))
    payload = bytes([0x03 if ecn else 0x02]) + body + (var(1) + var(2) + var(3) if ecn else b"")
    (frame,) = parse_frames(payload)
    assert frame.name == ("ACK_ECN" if ecn else "ACK")
    # ours: inclusive (low, high) pairs, highest first; aioquic: half-open ranges, lowest first
    assert [(r.start, r.stop - 1) for r in reversed(list(theirs))] == [tuple(r) for r in frame.fields["ranges"]]
    assert frame.fields["delay"] == their_delay
    assert frame.fields["largest"] == theirs.bounds().stop - 1


def test_ack_below_zero_is_invalid() -> None:
    with pytest.raises(FrameError, match="invalid ACK"):
        parse_frames(bytes([0x02]) + var(5) + var(0) + var(0) + var(6))


# ---------------------------------------------------------------- reassembly


@st.composite
def chunkings(draw: st.DrawFn) -> tuple[bytes, list[tuple[int, int]]]:
    data = draw(st.binary(min_size=1, max_size=300))
    pieces = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 60)), min_size=1, max_size=30))
    pieces.append((0, len(data)))  # everything is eventually sent (a retransmission covering all)
    return data, [(start, min(len(data), start + n)) for start, n in pieces]


@settings(max_examples=200)
@given(chunkings(), st.randoms())
def test_reassembly_delivers_the_stream(case: tuple[bytes, list[tuple[int, int]]], rnd) -> None:
    data, pieces = case
    last = pieces.pop()
    rnd.shuffle(pieces)
    pieces.append(last)
    asm = Reassembler(limit=1 << 20)
    out = bytearray()
    for i, (start, end) in enumerate(pieces):
        got, fresh, seen = asm.add(start, data[start:end], i + 1, float(i), i)
        assert fresh + seen == end - start
        out += got
    assert bytes(out) == data
    assert asm.pending_bytes == 0 and asm.holes() == []
    # chunks tile the stream; nothing is delivered before it arrived
    assert sum(c.length for c in asm.chunks) == len(data)
    assert all(c.delivered_ts >= c.arrival_ts for c in asm.chunks)
    # recomputing from the recorded arrivals gives the same delivery
    assert delivery(asm.arrivals) == asm.chunks


def test_reassembly_times() -> None:
    asm = Reassembler(limit=1 << 20)
    asm.add(10, b"b" * 10, 2, 2.0, 5)  # arrives first, waits for bytes 0..9
    asm.add(20, b"c" * 5, 3, 3.0, 6)
    assert asm.holes() == [(0, 10)] and asm.delivered == 0
    got, _, _ = asm.add(0, b"a" * 10, 4, 4.0, 7)  # the retransmission fills the hole
    assert got == b"a" * 10 + b"b" * 10 + b"c" * 5
    assert [(c.offset, c.arrival_ts, c.delivered_ts, c.frame, c.arrival_frame) for c in asm.chunks] == [
        (0, 4.0, 4.0, 4, 4), (10, 2.0, 4.0, 4, 2), (20, 3.0, 4.0, 4, 3)]
    # without packet 5 (lost after the capture point) bytes 10..19 arrive only later
    later = delivery([*asm.arrivals, Arrival(10, 10, 9.0, 9, 8)], {5})
    assert [(c.offset, c.arrival_ts, c.delivered_ts) for c in later] == [(0, 4.0, 4.0), (10, 9.0, 9.0),
                                                                         (20, 3.0, 9.0)]


def test_reassembly_buffer_is_bounded() -> None:
    asm = Reassembler(limit=100)
    for i in range(50):
        asm.add(1000 + i * 50, b"x" * 50, i, float(i), i)  # a hole at 0 that never fills
    assert asm.pending_bytes <= 100 and asm.overflowed
