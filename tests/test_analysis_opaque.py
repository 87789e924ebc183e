"""TCP head-of-line episodes where nothing reassembles the bytes: TLS 1.3 without keys (summary mode
stops reassembling it) and a TCP connection no decoder claims.  The episodes come from TCP's sequence
analysis; the expected numbers from tshark's segments (sequence numbers, lengths, times) through a
plain in-order delivery model written here."""

from __future__ import annotations

import re

import pytest

from inspector.flows.connection import IDLE, NO_DECODER
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.analysis_tshark import data_segments, first_retransmission, frame_times, sample
from tests.support.capture import tshark_fields

TOL_MS = 0.002
RUN = re.compile(r"bytes (\d+)-(\d+) \(frame (\d+)\)")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _decode(path: str, full: bool = False) -> tuple[list, list[dict]]:
    pipe, _ = decode_file(path, on_event=(lambda e: None) if full else None, segments=full)
    return pipe.connections, summaries(pipe.connections, pipe.registry)


def _runs(ep: dict) -> list[tuple[int, int, int, float]]:
    out = []
    for v in ep["victims"]:
        m = RUN.search(v["unit"])
        if m:
            out.append((int(m.group(1)), int(m.group(2)), int(m.group(3)), v["blocked_ms"]))
    return out


def _in_order(segs: list) -> dict[int, list[tuple[int, int, int, float]]]:
    """Deliver tshark's segments in sequence order as a receiver would: for each segment that advances
    the in-order point, the buffered segments it made deliverable, with how long each had waited."""
    frontier = 1  # relative sequence number of the first byte
    pending: list = []
    out: dict[int, list[tuple[int, int, int, float]]] = {}
    for seg in segs:
        if seg.seq > frontier:
            pending.append(seg)
            continue
        if seg.seq + seg.length <= frontier:
            continue
        frontier = seg.seq + seg.length
        held = []
        pending.sort(key=lambda p: p.seq)
        while pending and pending[0].seq <= frontier:
            p = pending.pop(0)
            if p.seq + p.length > frontier:
                held.append((max(p.seq, frontier) - 1, p.seq + p.length - 1, p.frame, _ms(seg.ts - p.ts)))
                frontier = p.seq + p.length
        if held:
            out[seg.frame] = held
    return out


@pytest.mark.parametrize("full", [False, True])
def test_tls_without_keys_receiver_view(full: bool) -> None:
    """http2-lossy without its key log: TLS 1.3 goes idle after the client's first application data and
    summary mode stops reassembling; the loss is still an episode, its victims the TLS bytes that waited
    (one run per segment), the same whether or not the bytes were reassembled."""
    path = sample("http2-lossy.pcap")
    conns, (conn,) = _decode(path, full)
    if not full:
        assert conns[0].decoder_state == IDLE  # reassembly stopped
    segs = data_segments(path, 443)
    fill = first_retransmission(segs)
    expected = _in_order(segs)[fill.frame]
    (ep,) = conn["hol"]
    assert "hol_note" not in conn
    assert ep["view"].startswith("receiver") and ep["direction"] == "s2c"
    assert ep["cause"].startswith(f"TLS data: {fill.length} bytes lost at s2c stream offset {fill.seq - 1} ")
    times = frame_times(path)
    assert ep["end"] == pytest.approx(times[fill.frame], abs=1e-6)
    assert ep["start"] == pytest.approx(min(s.ts for s in segs if s.seq > fill.seq and s.frame < fill.frame), abs=1e-6)
    assert ep["held_bytes"] == sum(b - a for a, b, _, _ in expected)
    got = _runs(ep)
    assert len(got) == 16 and ep["victims"][16]["unit"] == f"{len(expected) - 16} more runs of TLS data"
    assert [g[:3] for g in got] == [e[:3] for e in expected[:16]]
    for g, e in zip(got, expected):
        assert abs(g[3] - e[3]) <= TOL_MS


def test_tls_without_keys_sender_view() -> None:
    """The same connection captured at the server, without keys: the original and the retransmission
    are both there; the bytes sent in between are the ones the client held."""
    path = sample("http2-lossy.server.pcap")
    conns, (conn,) = _decode(path)
    assert conns[0].decoder_state == IDLE
    segs = data_segments(path, 443)
    resent = first_retransmission(segs)
    orig = next(s for s in segs if s.seq == resent.seq)
    between = [s for s in segs if s.seq > orig.seq and orig.frame < s.frame < resent.frame]
    (ep,) = conn["hol"]
    assert ep["view"].startswith("sender")
    assert ep["lost"]["original_frame"] == orig.frame and ep["lost"]["resent_frames"] == [resent.frame]
    got = _runs(ep)
    assert [g[:3] for g in got] == [(s.seq - 1, s.seq - 1 + s.length, s.frame) for s in between[:16]]
    for g, s in zip(got, between):
        assert abs(g[3] - _ms(resent.ts - s.ts)) <= TOL_MS


def test_connection_no_decoder_claims(lossy_pcap: str) -> None:
    """A bulk exchange of bytes no decoder recognises, through a router dropping ~4% of the segments
    each way, captured on the router: server data arrives there with holes (each filled later: a
    receiver's view), client data is seen before the drops (originals, then retransmissions)."""
    conns, (conn,) = _decode(lossy_pcap)
    assert conns[0].decoder_state == NO_DECODER
    server_port = int(conn["server"].rsplit(":", 1)[1])
    expected = _in_order(data_segments(lossy_pcap, server_port))
    got = {ep["lost"]["resent_frames"][-1]: ep for ep in conn["hol"] if ep["direction"] == "s2c"}
    assert len(expected) >= 3
    assert got.keys() == expected.keys()
    for frame, held in expected.items():
        ep = got[frame]
        assert ep["view"].startswith("receiver") and ep["cause"].startswith("TCP data: ")
        runs = _runs(ep)
        assert [r[:3] for r in runs] == [h[:3] for h in held[:16]]
        for r, h in zip(runs, held):
            assert abs(r[3] - h[3]) <= TOL_MS
        assert ep["held_bytes"] == sum(b - a for a, b, _, _ in held)
    # client data passes the capture point before the drops: a retransmission re-sends bytes seen there
    # (a sender's view), unless the client's own stack sent them out of order (then a hole there too)
    client_port = int(conn["client"].rsplit(":", 1)[1])
    segs = data_segments(lossy_pcap, client_port)
    top, seen_again = 1, set()
    for seg in segs:
        if seg.seq < top:
            if any(o.seq <= seg.seq < o.seq + o.length for o in segs if o.frame < seg.frame):
                seen_again.add(seg.frame)
        top = max(top, seg.seq + seg.length)
    holes = {f: held for f, held in _in_order(segs).items() if f not in seen_again}
    recv = {ep["lost"]["resent_frames"][-1]: ep for ep in conn["hol"]
            if ep["direction"] == "c2s" and ep["view"].startswith("receiver")}
    assert recv.keys() == holes.keys()
    for frame, held in holes.items():
        assert [r[:3] for r in _runs(recv[frame])] == [h[:3] for h in held[:16]]
    sent = {f for ep in conn["hol"] if ep["direction"] == "c2s" and ep["view"].startswith("sender")
            for f in ep["lost"]["resent_frames"]}
    rows = tshark_fields(lossy_pcap, ["frame.number"],
                         display_filter=f"tcp.srcport=={client_port} && tcp.len>0 && "
                                        "(tcp.analysis.retransmission || tcp.analysis.fast_retransmission)")
    flagged = {int(r[0]) for r in rows}
    if holes:
        # a capture this close to both ends ("local": under 1 ms) cannot tell a sender's view from a
        # receiver's: with holes seen in a direction, its retransmissions are not read as a sender's
        assert not sent
    else:
        # every segment re-sending captured bytes; tshark calls each a retransmission, or "out of order"
        # when it came within an iRTT of the highest one
        assert sent == seen_again and flagged <= sent and sent


@pytest.mark.parametrize("name", ["tls12-vs-tls13", "tls13-resumption-0rtt", "http2-multiplex", "dns-then-connect"])
def test_clean_opaque_captures_have_no_episodes(name: str) -> None:
    """Without keys (so from the sequence analysis): a capture tshark finds no loss or reordering in
    has no episode."""
    path = sample(f"{name}.pcap")
    assert tshark_fields(path, ["frame.number"], display_filter="tcp.analysis.retransmission || "
                         "tcp.analysis.out_of_order || tcp.analysis.lost_segment") == []
    conns, out = _decode(path)
    assert any(c.decoder_state == IDLE for c in conns)
    assert all(c.get("hol", []) == [] for c in out)
