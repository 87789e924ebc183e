"""DNS wire parsing: RFC 1035 name compression, hostile names, truncation and random bytes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.base import DecodeContext
from inspector.decoders.dns import DnsLookups, DnsTcpDecoder, DnsUdpDecoder, parse_message, read_name
from inspector.errors import DecodeError
from inspector.events import DnsMessage, Malformed, Note
from tests.support.ws_feed import Feeder

CTX = DecodeContext(conn=7, client=("127.0.0.1", 40000), server=("127.0.0.1", 53))


def rfc1035_section_4_1_4() -> bytes:
    """The message layout of RFC 1035 §4.1.4's compression example."""
    buf = bytearray(100)
    buf[20:32] = b"\x01F\x03ISI\x04ARPA\x00"
    buf[40:46] = b"\x03FOO\xc0\x14"  # FOO + pointer to offset 20
    buf[64:66] = b"\xc0\x1a"  # pointer to offset 26 ("ARPA")
    buf[92] = 0  # the root
    return bytes(buf)


def test_compression_example_rfc1035():
    buf = rfc1035_section_4_1_4()
    assert read_name(buf, 20) == ("F.ISI.ARPA", 32)
    assert read_name(buf, 40) == ("FOO.F.ISI.ARPA", 46)
    assert read_name(buf, 64) == ("ARPA", 66)
    assert read_name(buf, 92) == (".", 93)


@pytest.mark.parametrize("buf, pos, reason", [
    (b"\x00" * 12 + b"\xc0\x0c", 12, "loop"),  # points at itself
    (b"\x00" * 12 + b"\x01a\xc0\x10\x01b\xc0\x0c", 12, "loop|255"),  # two names pointing at each other
    (b"\x00" * 12 + b"\xc0\xff", 12, "past the end"),
    (b"\x00" * 12 + b"\x41abc", 12, "reserved label type"),
    (b"\x00" * 12 + b"\x05ab", 12, "past the end"),
    (b"\x00" * 12 + b"\xc0", 12, "cut off"),
    (b"\x00" * 12 + b"\x3f" + b"a" * 63 + b"\xc0\x0c", 12, "255 octets"),  # a loop that grows the name
])
def test_hostile_names(buf, pos, reason):
    with pytest.raises(DecodeError, match=reason):
        read_name(buf, pos)


def test_name_length_limit_rfc1035_section_2_3_4():
    labels = b"".join(b"\x3f" + b"x" * 63 for _ in range(3)) + b"\x3d" + b"y" * 61 + b"\x00"  # 255 octets
    assert len(read_name(labels, 0)[0]) == 253
    with pytest.raises(DecodeError, match="255"):
        read_name(b"\x3f" + b"z" * 63 + labels[:-1] + b"\x00", 0)


def _query(qid: int, name: str, qtype: int = 1, flags: int = 0x0100) -> bytes:
    q = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0)
    return q + b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00" + struct.pack("!HH", qtype, 1)


def _response(qid: int, name: str, addr: bytes, ttl: int = 60) -> bytes:
    q = _query(qid, name, 1 if len(addr) == 4 else 28, 0x8180)
    q = q[:6] + b"\x00\x01" + q[8:]
    return q + b"\xc0\x0c" + struct.pack("!HHIH", 1 if len(addr) == 4 else 28, 1, ttl, len(addr)) + addr


def test_truncated_messages_raise_only_decode_error():
    msg = _response(0x4242, "www.example.test", b"\x7f\x00\x00\x02")
    assert parse_message(msg).answers[0]["data"] == "127.0.0.2"
    for cut in range(len(msg)):
        with pytest.raises(DecodeError):
            parse_message(msg[:cut])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_raise_only_decode_error(data):
    try:
        parse_message(data)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=60))
def test_random_records_after_a_valid_header(tail):
    data = struct.pack("!HHHHHH", 1, 0x8180, 0, 3, 0, 0) + tail
    try:
        parse_message(data)
    except DecodeError:
        pass


def test_udp_decoder_matches_and_goes_on_after_garbage():
    lookups = DnsLookups()
    dec = DnsUdpDecoder(CTX, lookups)
    out = dec.datagram(0, _query(9, "a.test"), 1, 10.0)
    out += dec.datagram(0, b"\x00\x09\x81", 2, 10.1)  # garbage: malformed, decoding goes on
    out += dec.datagram(0, _query(9, "a.test"), 3, 11.0)  # retransmission
    out += dec.datagram(1, _response(9, "a.test", b"\x0a\x00\x00\x01"), 4, 11.25)
    out += dec.datagram(1, _response(9, "a.test", b"\x0a\x00\x00\x01"), 5, 11.5)
    out += dec.datagram(1, _response(10, "b.test", b"\x0a\x00\x00\x02"), 6, 12.0)  # nothing asked
    kinds = [(e.type, getattr(e, "retransmission", None)) for e in out]
    assert kinds == [("query", False), ("malformed", None), ("query", True), ("response", False),
                     ("response", True), ("response", False)]
    first, second = out[3], out[4]
    assert (first.query_frame, first.lookup_ms) == (1, 1250.0)  # timed from the first copy
    assert (second.query_frame, second.lookup_ms) == (3, 500.0)  # the retransmission's own answer
    s = dec.summary()["dns"]
    assert s["unmatched_responses"] == 1 and s["lookups"][0]["retransmissions"] == 1
    res = lookups.resolution_for("10.0.0.1", 20.0)
    assert res is not None and (res.qname, res.query_frame, res.lookup_ms) == ("a.test", 1, 1250.0)
    assert lookups.resolution_for("10.0.0.1", 11.0) is None  # the connection started before the answer
    assert lookups.names() == {"a.test": ["10.0.0.1"]}


def test_tcp_decoder_length_framing_split_everywhere():
    first = _query(1, "x.test")
    stream = b"".join(len(m).to_bytes(2, "big") + m for m in (first, _query(2, "y.test")))
    for cut in range(len(stream) + 1):
        f = Feeder(DnsTcpDecoder(CTX))
        out = f.feed(0, stream[:cut]) + f.feed(0, stream[cut:])
        assert [(e.type, e.id, e.qname) for e in out] == [("query", 1, "x.test"), ("query", 2, "y.test")]
        # a message is attributed to the chunk that completed it
        assert out[0].frame == (1 if cut >= len(first) + 2 else 2)
        assert out[1].frame == (1 if cut == len(stream) else 2)
    f = Feeder(DnsTcpDecoder(CTX))
    assert f.feed(0, stream[:5]) == []
    assert isinstance(f.gap(0, 10)[0], Note)
    assert f.feed(0, stream[15:]) == []  # framing is lost after a gap
    assert isinstance(f.decoder.finish(), list)


def test_tcp_malformed_message_is_reported():
    bad = b"\x00\x0c" + b"\x00\x01\x01\x00\x00\x05" + b"\x00" * 6  # 5 questions in no bytes
    f = Feeder(DnsTcpDecoder(CTX))
    out = f.feed(0, bad + len(_query(3, "z.test")).to_bytes(2, "big") + _query(3, "z.test"))
    assert isinstance(out[0], Malformed) and isinstance(out[1], DnsMessage)
