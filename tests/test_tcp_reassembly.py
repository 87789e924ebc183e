"""Reassembly: the delivered stream is exactly what the applications sent, and
every byte knows when it arrived and when it became deliverable.

Anchors: the bulk exchange sends known bytes (``b"u" * 300000`` up, a
``bytes(range(256))`` pattern down) through real loss, so the reassembled
streams can be checked byte for byte; and tshark says which frames were
retransmissions that filled a hole.
"""

from __future__ import annotations

from types import SimpleNamespace

from inspector.flows.streamindex import Span
from inspector.pipeline import decode_file
from tests.support.capture import tshark_fields


class Recorder:
    """A stand-in application decoder that keeps what the pipeline hands it."""

    def __init__(self) -> None:
        self.data: list[bytearray] = [bytearray(), bytearray()]
        self.spans: list[list[Span]] = [[], []]
        self.gaps: list[tuple[int, int, int]] = []
        self.ends: list[tuple[int, int]] = []  # (direction, frame) of each FIN, once reached
        self.finished = False

    def feed(self, direction, data, offset, index):
        assert offset == len(self.data[direction]) + sum(g[2] for g in self.gaps if g[0] == direction)
        self.data[direction] += data
        self.spans[direction].append(index.locate(offset))
        index.release(offset)
        return []

    def gap(self, direction, offset, length, index):
        self.gaps.append((direction, offset, length))
        return []

    def end(self, direction, frame, ts):
        self.ends.append((direction, frame))
        return []

    def finish(self):
        self.finished = True
        return []

    def summary(self):
        return {}


def recording_registry(store: list[Recorder]) -> SimpleNamespace:
    def choose_stream(ctx, direction, first):
        store.append(Recorder())
        return store[-1]

    return SimpleNamespace(choose_stream=choose_stream, choose_datagram=lambda *a: None)


def test_lossy_streams_are_exactly_what_was_sent(lossy_pcap: str) -> None:
    recs: list[Recorder] = []
    decode_file(lossy_pcap, registry=recording_registry(recs))
    (rec,) = recs
    assert not rec.gaps, "every lost segment was retransmitted, so no byte may be missing"
    assert bytes(rec.data[0]) == b"u" * 300_000
    pattern = bytes(range(256)) * (600_000 // 256 + 1)
    assert bytes(rec.data[1]) == pattern[:600_000]
    assert rec.finished
    # each direction's end is told once: in its first FIN's frame (tshark's tcp.flags.fin), or, if
    # bytes before that FIN were still missing then, in the frame that delivered the last of them
    (client_port,) = {r[0] for r in tshark_fields(lossy_pcap, ["tcp.srcport"],
                                                  display_filter="tcp.flags.syn == 1 && tcp.flags.ack == 0")}
    first_fin: dict[int, int] = {}
    for frame, sport in tshark_fields(lossy_pcap, ["frame.number", "tcp.srcport"], display_filter="tcp.flags.fin == 1"):
        first_fin.setdefault(0 if sport == client_port else 1, int(frame))
    assert sorted(rec.ends) == [(d, max(first_fin[d], rec.spans[d][-1].frame)) for d in (0, 1)]


def test_a_fin_before_a_hole_ends_the_stream_when_the_hole_fills() -> None:
    """Edge case fed by hand: the FIN (and data before it) arrive while earlier bytes are
    missing; the stream ends in the frame whose retransmission fills the hole."""
    from inspector.flows.reassembly import Reassembler

    ends: list[tuple[int, float]] = []
    r = Reassembler(lambda data, off, span: None, lambda off, n, span: None, lambda f, ts: ends.append((f, ts)))
    r.start(1000)
    r.segment(1000, b"a" * 10, 10, 1, 0.1)
    r.segment(1020, b"c" * 10, 10, 3, 0.3)  # 1010..1019 lost
    r.fin_at(1030, 4, 0.4)
    assert ends == []
    r.segment(1010, b"b" * 10, 10, 5, 0.5)  # the retransmission fills the hole
    assert ends == [(5, 0.5)]
    r.fin_at(1030, 6, 0.6)  # a retransmitted FIN is not a second end
    assert ends == [(5, 0.5)]
    # a hole the peer ACKed past (data missing from the capture) ends the stream too
    ends.clear()
    r = Reassembler(lambda data, off, span: None, lambda off, n, span: None, lambda f, ts: ends.append((f, ts)))
    r.start(0)
    r.fin_at(10, 2, 0.2)  # FIN with nothing delivered before it
    r.skip_to(10, 3, 0.3)
    assert ends == [(3, 0.3)]


def test_bytes_behind_a_hole_wait_for_the_retransmission(lossy_pcap: str) -> None:
    """Server data is captured after the router's drop: segments that arrived
    after a missing one become deliverable only in the frame whose
    retransmission fills the hole, which tshark flags as a retransmission."""
    recs: list[Recorder] = []
    decode_file(lossy_pcap, registry=recording_registry(recs))
    spans = recs[0].spans[1]
    held = [s for s in spans if s.delivered > s.arrival]
    assert held, "the lossy capture should hold server bytes behind a hole"
    filler_frames = {s.frame for s in held}
    retrans = {int(r[0]) for r in tshark_fields(lossy_pcap, ["frame.number"],
                                                 display_filter="tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.out_of_order")}
    assert filler_frames <= retrans
    for s in held:
        assert s.arrival_frame < s.frame
    # In-order bytes are delivered the moment they arrive.
    assert all(s.delivered == s.arrival for s in spans if s.frame == s.arrival_frame)


def test_http_streams_carry_the_requests(http_pcap: str) -> None:
    recs: list[Recorder] = []
    decode_file(http_pcap, registry=recording_registry(recs))
    assert len(recs) == 3
    requests = [bytes(r.data[0]) for r in recs]
    assert requests[0].startswith(b"GET /a HTTP/1.1\r\n") and b"GET /bb HTTP/1.1\r\n" in requests[0]
    assert requests[2].startswith(b"POST /post HTTP/1.1\r\n") and requests[2].endswith(b"x" * 3000)
    assert all(bytes(r.data[1]).startswith(b"HTTP/1.0 ") or bytes(r.data[1]).startswith(b"HTTP/1.1 ") for r in recs)


def test_stream_index_stays_bounded_when_a_decoder_never_releases() -> None:
    from inspector.flows.streamindex import MAX_SPANS, StreamIndex

    ix = StreamIndex()
    for i in range(3 * MAX_SPANS):
        ix.add(Span(i * 10, i * 10 + 10, i + 1, 0.0, 0.0, i + 1))
    assert len(ix) <= MAX_SPANS and len(ix._spans) <= 2 * MAX_SPANS
    assert ix.locate(3 * MAX_SPANS * 10 - 1).frame == 3 * MAX_SPANS  # the newest bytes still resolve


def test_out_of_order_buffer_is_bounded_and_the_hole_becomes_a_gap() -> None:
    """A hole that never fills: past MAX_BUFFERED the reassembler declares it missing."""
    from inspector.flows.reassembly import MAX_BUFFERED, Reassembler

    delivered: list[tuple[int, int]] = []
    gaps: list[tuple[int, int]] = []
    r = Reassembler(lambda data, off, span: delivered.append((off, len(data))), lambda off, n, span: gaps.append((off, n)))
    r.start(1000)
    seg = b"x" * 1400
    seq = 1000 + 1400  # the first segment never comes
    for i in range(MAX_BUFFERED // 1400 + 2):
        r.segment(seq, seg, len(seg), i + 1, float(i))
        seq += 1400
    assert r.limit_hits == 1 and gaps == [(0, 1400)]
    assert r.buffered == 0 and sum(n for _, n in delivered) == seq - 2400


def _conversation(tmp_path, name, segments):
    """Hand-built edge cases: a handshake then ``segments`` (direction, seq offset, payload, ack)."""
    from scapy.all import IP, TCP, Raw, wrpcap  # type: ignore[import-untyped]

    c, s = IP(src="192.0.2.1", dst="192.0.2.2"), IP(src="192.0.2.2", dst="192.0.2.1")
    pkts = [
        c / TCP(sport=40000, dport=80, flags="S", seq=100),
        s / TCP(sport=80, dport=40000, flags="SA", seq=900, ack=101),
        c / TCP(sport=40000, dport=80, flags="A", seq=101, ack=901),
    ]
    for i, (direction, off, payload, ack) in enumerate(segments):
        if direction == "c2s":
            p = c / TCP(sport=40000, dport=80, flags="PA", seq=101 + off, ack=901 + ack)
        else:
            p = s / TCP(sport=80, dport=40000, flags="PA", seq=901 + off, ack=101 + ack)
        pkts.append(p / Raw(payload) if payload else p)
    for i, p in enumerate(pkts):
        p.time = 1_700_000_000 + i / 100
    path = str(tmp_path / name)
    wrpcap(path, pkts, linktype=101)
    return path


def test_retransmission_with_different_bytes_is_noted(tmp_path) -> None:
    from tests.support.decode import collect

    path = _conversation(tmp_path, "differ.pcap", [
        ("c2s", 0, b"GET /a HTTP/1.1\r\n", 0),
        ("c2s", 0, b"GET /b HTTP/1.1\r\n", 0),  # same sequence numbers, other bytes
    ])
    _pipe, events = collect(path, registry=recording_registry([]))
    notes = [e for e in events if e.type == "note"]
    assert [(n.frame, n.direction) for n in notes] == [(5, "c2s")] and "differ" in notes[0].message
    retrans = {int(r[0]) for r in tshark_fields(path, ["frame.number"], display_filter="tcp.analysis.retransmission")}
    assert retrans == {5}


def test_a_hole_the_peer_acked_is_missing_from_the_capture(tmp_path) -> None:
    """Server bytes 0-9 never appear, bytes 10-19 do, and the client ACKs all 20:
    the hole will never be retransmitted, so it becomes a gap at that ACK."""
    recs: list[Recorder] = []
    path = _conversation(tmp_path, "acked-hole.pcap", [
        ("s2c", 10, b"0123456789", 0),
        ("c2s", 0, b"", 20),
    ])
    decode_file(path, registry=recording_registry(recs))
    (rec,) = recs
    assert rec.gaps == [(1, 0, 10)]
    assert bytes(rec.data[1]) == b"0123456789"
    lost = {int(r[0]) for r in tshark_fields(path, ["frame.number"], display_filter="tcp.analysis.ack_lost_segment || tcp.analysis.lost_segment")}
    assert lost == {4, 5}  # tshark: previous segment not captured, then ACKed unseen segment
