"""Hostile and broken QUIC input: noted, never a crash, and the real connection still decodes.

The baseline is the committed aioquic capture (captures/quic/README.md):
decoded cleanly it yields five HTTP/3 exchanges whose headers match what
the peers sent.  Every test below mixes junk into that capture (truncated
and bit-flipped copies of its datagrams, non-QUIC datagrams, a capture cut
before the handshake, confusing connection IDs) and checks that the junk
is reported and the real exchanges come out unchanged.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.quic import QuicDecoder
from inspector.decoders.quic.decoder import MAX_MALFORMED
from inspector.events import Event, Malformed, Note, QuicPacket
from inspector.keylog import KeyLog
from tests.support.quic_captures import udp_datagrams

CAPTURES = Path(__file__).resolve().parent.parent / "captures" / "quic"
PCAP = str(CAPTURES / "h3-aioquic.pcap")
KEYS = str(CAPTURES / "h3-aioquic.keys")
PEER = json.loads((CAPTURES / "h3-aioquic.peer.json").read_text())
PORT = PEER["port"]

#: what a decoder may say about junk: packets (with a reason), malformed events and notes
ALLOWED = (QuicPacket, Malformed, Note)


def datagrams() -> list[tuple[int, float, int, bytes]]:
    return [(frame, ts, 0 if ports[1] == PORT else 1, payload) for frame, ts, ports, payload in udp_datagrams(PCAP)]


def new_decoder(keylog: bool = True) -> QuicDecoder:
    return QuicDecoder(DecodeContext(conn=0, client=("127.0.0.1", 1), server=("127.0.0.1", PORT),
                                     keylog=KeyLog.from_file(KEYS) if keylog else None))


def expected_requests() -> list[tuple]:
    out = [(r["stream"], dict(r["request"])[":path"], 200, r["body"]) for r in PEER["requests"]]
    return sorted(out) + [(15, "/pushed.css", 200, 6)]


def requests_of(decoder: QuicDecoder) -> list[tuple]:
    return sorted((r["stream"], r["path"], r["status"], r["bytes"]) for r in decoder.summary()["requests"])


def test_clean_baseline() -> None:
    dec = new_decoder()
    events = [e for f, ts, d, p in datagrams() for e in dec.datagram(d, p, f, ts)] + dec.finish()
    assert requests_of(dec) == expected_requests()
    assert not [e for e in events if isinstance(e, Malformed)]


def test_truncated_copies_of_every_datagram() -> None:
    """Before each datagram of the capture, feed it cut at every length: junk, then the real one."""
    dec = new_decoder()
    junk_events: list[Event] = []
    for frame, ts, direction, payload in datagrams()[:12]:
        for cut in range(len(payload)):
            junk_events += dec.datagram(direction, payload[:cut], frame, ts)
        dec.datagram(direction, payload, frame, ts)
    for frame, ts, direction, payload in datagrams()[12:]:
        dec.datagram(direction, payload, frame, ts)
    dec.finish()
    assert all(isinstance(e, ALLOWED) or e.layer in ("tls", "http3") for e in junk_events)
    # a cut packet never opens: AEAD authenticates the whole packet
    assert all(e.pn is None for e in junk_events if isinstance(e, QuicPacket) and e.length < 20)
    assert requests_of(dec) == expected_requests()
    assert dec.malformed > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bit_flips(seed: int) -> None:
    """Three copies of every datagram with one random bit flipped go first; the originals still decode."""
    rng = random.Random(seed)
    dec = new_decoder()
    junk: list[Event] = []
    for frame, ts, direction, payload in datagrams():
        for _ in range(3):
            flipped = bytearray(payload)
            bit = rng.randrange(len(flipped) * 8)
            flipped[bit // 8] ^= 1 << (bit % 8)
            junk += dec.datagram(direction, bytes(flipped), frame, ts)
        dec.datagram(direction, payload, frame, ts)
    dec.finish()
    # a flipped bit in a protected packet fails authentication (flips in datagram padding are harmless)
    opened = [e for e in junk if isinstance(e, QuicPacket) and e.pn is not None]
    assert len(opened) < len(datagrams())
    assert requests_of(dec) == expected_requests()


def test_not_quic_on_port_443() -> None:
    dec = QuicDecoder(DecodeContext(conn=0, client=("10.0.0.1", 50000), server=("10.0.0.2", 443)))
    rng = random.Random(7)
    dns = bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001")
    junk = [b"", b"\x00", dns, bytes(1200), b"\xff" * 40, b"\xc0\x00\x00\x00\x01\x99", b"\x40"]
    junk += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1400))) for _ in range(300)]
    events: list[Event] = []
    for i, data in enumerate(junk):
        events += dec.datagram(i % 2, data, i + 1, float(i))
    events += dec.finish()
    assert all(isinstance(e, ALLOWED) for e in events)
    assert all(e.pn is None for e in events if isinstance(e, QuicPacket))
    malformed = [e for e in events if isinstance(e, Malformed)]
    assert malformed and len(malformed) <= MAX_MALFORMED  # reports are capped, the count is not
    assert dec.malformed > MAX_MALFORMED
    assert any("fixed bit" in e.reason for e in malformed)
    summary = dec.summary()
    assert summary["quic"]["decrypted"] is False and summary["requests"] == []


def test_capture_started_mid_connection() -> None:
    """Without the long-header packets the short headers' DCID length is unknown: said per packet."""
    dec = new_decoder()
    rest = datagrams()[6:]
    events = [e for f, ts, d, p in rest for e in dec.datagram(d, p, f, ts)] + dec.finish()
    packets = [e for e in events if isinstance(e, QuicPacket)]
    assert packets and all(p.pn is None and p.type == "1rtt" for p in packets)
    assert all("DCID length unknown" in p.reason for p in packets)


def test_cid_length_confusion() -> None:
    """Connection IDs of other lengths, and prefixes of the real one, do not derail short headers."""
    data = datagrams()
    dec = new_decoder()
    for frame, ts, direction, payload in data[:4]:
        dec.datagram(direction, payload, frame, ts)
    (server_cid,) = [c for c in dec.cids.issued[0] if len(c) == 8][:1]
    dec.cids.issue(0, server_cid[:4], 90)  # a prefix of the real ID
    dec.cids.issue(0, b"\x01\x02\x03", 91)  # an unrelated 3-byte ID
    dec.cids.issue(0, server_cid + b"\x00\x00", 92)  # longer, not matching the packets
    events = [e for f, ts, d, p in data[4:] for e in dec.datagram(d, p, f, ts)] + dec.finish()
    c2s = [e for e in events if isinstance(e, QuicPacket) and e.direction == "c2s"]
    assert c2s and all(p.pn is not None and p.dcid == server_cid.hex() for p in c2s)
    assert requests_of(dec) == expected_requests()

    # only a wrong-length ID known: every length known is tried, and the miss is said
    dec = new_decoder()
    for frame, ts, direction, payload in data[:4]:
        dec.datagram(direction, payload, frame, ts)
    dec.cids.issued[0].clear()
    dec.cids.in_use[0] = None
    dec.cids.issue(0, b"\xaa" * 5, 7)
    frame, ts, direction, payload = next(d for d in data[4:] if d[2] == 0 and not d[3][0] & 0x80)
    (packet,) = [e for e in dec.datagram(direction, payload, frame, ts) if isinstance(e, QuicPacket)]
    assert packet.pn is None and "DCID matches no connection ID seen" in packet.reason


def test_undecryptable_without_keys_keeps_going() -> None:
    dec = new_decoder(keylog=False)
    events = [e for f, ts, d, p in datagrams() for e in dec.datagram(d, p, f, ts)] + dec.finish()
    packets = [e for e in events if isinstance(e, QuicPacket)]
    initial = [p for p in packets if p.type == "initial"]
    assert initial and all(p.pn is not None for p in initial)  # Initials need no key
    others = [p for p in packets if p.type in ("handshake", "1rtt")]
    assert others and all(p.pn is None and p.reason == "no key log" for p in others)
    quic = dec.summary()["quic"]
    assert quic["sni"] == "localhost" and quic["decrypted"] is False and quic["handshake_rtts"] == 1
    assert dec.summary()["app"] == "h3" and quic["alpn"] is None and quic["alpn_offered"] == ["h3"]


def test_wrong_key_log() -> None:
    dec = QuicDecoder(DecodeContext(conn=0, client=("127.0.0.1", 1), server=("127.0.0.1", PORT), keylog=KeyLog()))
    log = dec.keylog
    # the right labels and random, wrong secrets: the AEAD refuses them
    lines = []
    for line in Path(KEYS).read_text().splitlines():
        label, random_hex, secret = line.split()
        lines.append(f"{label} {random_hex} {'00' * (len(secret) // 2)}")
    log.add_text("\n".join(lines))
    events = [e for f, ts, d, p in datagrams() for e in dec.datagram(d, p, f, ts)]
    others = [e for e in events if isinstance(e, QuicPacket) and e.type in ("handshake", "1rtt")]
    assert others and all(p.pn is None and p.reason.startswith("decryption failed") for p in others)


def test_without_records_same_events() -> None:
    """``records=False`` (very large captures) keeps events and requests, drops only the chunk records."""
    full, lean = new_decoder(), QuicDecoder(DecodeContext(conn=0, client=("127.0.0.1", 1),
                                                         server=("127.0.0.1", PORT), keylog=KeyLog.from_file(KEYS)),
                                            records=False)
    a = [e for f, ts, d, p in datagrams() for e in full.datagram(d, p, f, ts)] + full.finish()
    b = [e for f, ts, d, p in datagrams() for e in lean.datagram(d, p, f, ts)] + lean.finish()
    assert [e.to_dict() for e in a] == [e.to_dict() for e in b]
    assert full.stream_chunks(1, 0) and not lean.stream_chunks(1, 0)
    assert requests_of(lean) == expected_requests()


def test_memory_bounds() -> None:
    """Every buffer that hostile input could grow has a cap (see the limits in each module)."""
    from inspector.decoders.http3 import MAX_BUFFERED, Http3Decoder
    from inspector.decoders.quic.packet import MAX_CIDS, CidTracker
    from inspector.decoders.quic.recovery import MAX_UNACKED, Reassembler, SpaceLedger
    from inspector.flows.streamindex import Span, StreamIndex

    # out-of-order stream bytes: per stream and across the connection
    budget = [0, 100_000]
    streams = [Reassembler(limit=60_000, budget=budget) for _ in range(4)]
    for i, asm in enumerate(streams):
        for k in range(100):
            asm.add(1 + k * 1000, b"x" * 1000, k, float(k), k)  # byte 0 never comes
    assert all(asm.pending_bytes <= 60_000 for asm in streams) and budget[0] <= 100_000
    assert sum(asm.pending_bytes for asm in streams) == budget[0]

    # partial HTTP/3 frames across many streams
    h3 = Http3Decoder(DecodeContext(conn=0, client=("a", 1), server=("b", 2)))
    declared = 1 << 18  # the largest HEADERS payload accepted
    header = bytes([0x01, 0x80 | (declared >> 24), (declared >> 16) & 0xFF, (declared >> 8) & 0xFF, declared & 0xFF])
    malformed = []
    for n in range(MAX_BUFFERED // (declared - 1) + 2):
        index = StreamIndex()
        index.add(Span(0, declared, 1, 1.0, 1.0, 1))
        events = h3.stream_data(0, 4 * n, header + bytes(declared - 1000), 0, False, index, 1, 1.0)
        malformed += [e for e in events if isinstance(e, Malformed)]
    assert malformed and "exceed" in malformed[0].reason
    assert h3._buffered <= MAX_BUFFERED

    # connection IDs and unacknowledged packets
    cids = CidTracker()
    for n in range(1000):
        cids.issue(0, n.to_bytes(8, "big"), n)
    assert len(cids.issued[0]) == MAX_CIDS
    ledger = SpaceLedger()
    for pn in range(MAX_UNACKED + 500):
        ledger.packet(pn, pn, float(pn), True, ())
    assert len(ledger.unacked) == MAX_UNACKED


def _client_initial(dcid: bytes, payload: bytes, pn: int = 0) -> bytes:
    """A hand-built client Initial (RFC 9000 §17.2.2), protected with aioquic's Initial keys."""
    from aioquic.buffer import Buffer
    from aioquic.quic.crypto import CryptoPair

    payload = payload + bytes(max(0, 1162 - len(payload)))  # PADDING to a full-size datagram
    header = Buffer(capacity=64)
    header.push_uint8(0xC3)  # long header, Initial, 4-byte packet number
    header.push_uint32(1)
    header.push_uint8(len(dcid))
    header.push_bytes(dcid)
    header.push_uint8(0)  # no SCID
    header.push_uint_var(0)  # no token
    header.push_uint16(0x4000 | (4 + len(payload) + 16))
    header.push_uint32(pn)
    pair = CryptoPair()
    pair.setup_initial(cid=dcid, is_client=True, version=1)
    return pair.encrypt_packet(header.data, payload, pn)


def test_frames_not_allowed_in_initial_packets() -> None:
    """A STREAM frame in an Initial (RFC 9000 §12.4 forbids it) is decoded and flagged."""
    dcid = bytes(range(8))
    dec = QuicDecoder(DecodeContext(conn=0, client=("a", 1), server=("b", 443)))
    stream = bytes([0x0B, 0x00, 0x05]) + b"hello"  # STREAM, stream 0, LEN and FIN
    events = dec.datagram(0, _client_initial(dcid, stream), 1, 1.0)
    (packet,) = [e for e in events if isinstance(e, QuicPacket)]
    assert packet.pn == 0 and packet.frames == ["STREAM", "PADDING"]
    assert any(isinstance(e, Note) and "STREAM frame in an Initial packet" in e.message for e in events)
    # an unknown frame type inside an authenticated packet: named, and the rest of the packet is given up
    events = dec.datagram(0, _client_initial(dcid, bytes([0x01, 0x21, 0xAA]), pn=1), 2, 2.0)
    (packet,) = [e for e in events if isinstance(e, QuicPacket)]
    assert packet.frames == ["PING", "UNKNOWN_0x21"] and "unknown frame type" in packet.reason
    assert any(isinstance(e, Malformed) and "0x21" in e.reason for e in events)
