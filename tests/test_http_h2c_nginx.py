"""HTTP/2 cleartext (prior knowledge) against nginx, driven by nghttp, h2load and curl.

Differential against tshark frame by frame (type, stream, header names and
values), HPACK sizes recomputed from tshark's fields, the flow-control stall
recomputed from the packets, and split-at-every-offset feeding.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from inspector.decoders.http2 import Http2Decoder
from inspector.events import Http2Frame, Http2Stall, Malformed
from inspector.flows.streamindex import Span, StreamIndex
from tests.support.capture import free_port
from tests.support.http_follow import events_of, follow
from tests.support.http_servers import capture_clean, curl, start_nginx
from tests.support.http_tshark import our_h2_frames, tshark_h2_frames, tshark_json

BIG = 300_000
SMALL = b"hello, http/2\n" * 40


@pytest.fixture(scope="module")
def h2c(tmp_path_factory):
    """One capture: nghttp (3 parallel streams, a 404 and a flow-controlled download),
    h2load (300 requests, 10 concurrent, one connection) and a curl upload."""
    d = str(tmp_path_factory.mktemp("h2c"))
    h1, port = free_port(), free_port()
    ng = start_nginx(d, h1, port, {"a.txt": SMALL, "big.bin": os.urandom(BIG)})
    upload = os.path.join(d, "upload.bin")
    with open(upload, "wb") as f:
        f.write(os.urandom(100_000))
    pcap = os.path.join(d, "h2c.pcap")
    try:
        def run():
            subprocess.run(["nghttp", "-n", f"http://127.0.0.1:{port}/a.txt", f"http://127.0.0.1:{port}/big.bin",
                            f"http://127.0.0.1:{port}/nope"], check=True, capture_output=True, timeout=30)
            subprocess.run(["h2load", "-n", "300", "-c", "1", "-m", "10", f"http://127.0.0.1:{port}/a.txt"],
                           check=True, capture_output=True, timeout=60)
            curl("--http2-prior-knowledge", "-T", upload, f"http://127.0.0.1:{port}/dav/up.bin", "-o", os.devnull)

        capture_clean(pcap, f"tcp port {port}", run)
    finally:
        ng.stop()
    conns = follow(pcap, lambda ctx: Http2Decoder(ctx), server_port=port)
    return {"pcap": pcap, "port": port, "conns": conns, "upload": 100_000}


def test_three_connections_decoded_without_errors(h2c):
    conns = h2c["conns"]
    assert len(conns) == 3
    for c in conns:
        assert not [e for e in c.events if isinstance(e, Malformed)]
        assert c.events[0].type == "PREFACE"


def test_frames_agree_with_tshark(h2c):
    theirs = tshark_h2_frames(h2c["pcap"], h2c["port"])
    ours = our_h2_frames(events_of(h2c["conns"]))
    assert sum(len(v["frames"]) for v in theirs.values()) > 600
    assert {k: v["frames"] for k, v in ours.items()} == {k: v["frames"] for k, v in theirs.items()}


def test_headers_agree_with_tshark(h2c):
    theirs = tshark_h2_frames(h2c["pcap"], h2c["port"])
    ours = our_h2_frames(events_of(h2c["conns"]))
    names = {k: v["names"] for k, v in theirs.items() if v["names"]}
    assert len(names) > 50
    assert {k: v["names"] for k, v in ours.items() if v["names"]} == names
    assert {k: v["values"] for k, v in ours.items() if v["values"]} == {
        k: v["values"] for k, v in theirs.items() if v["values"]}


def test_requests_and_timings(h2c):
    nghttp = h2c["conns"][0].decoder.summary()
    assert nghttp["app"] == "h2"
    by_path = {r["path"]: r for r in nghttp["requests"]}
    assert by_path["/a.txt"]["status"] == 200 and by_path["/a.txt"]["bytes"] == len(SMALL)
    assert by_path["/big.bin"]["status"] == 200 and by_path["/big.bin"]["bytes"] == BIG
    assert by_path["/nope"]["status"] == 404
    for r in nghttp["requests"]:
        assert r["authority"] == f"127.0.0.1:{h2c['port']}" and r["method"] == "GET"
        assert r["request_ts"] <= r["response_ts"] <= r["end_ts"]
    h2load = h2c["conns"][1].decoder.summary()
    assert len(h2load["requests"]) == 300
    assert {r["status"] for r in h2load["requests"]} == {200}
    assert sorted(r["stream"] for r in h2load["requests"]) == list(range(1, 600, 2))
    upload = h2c["conns"][2].decoder.summary()["requests"]
    assert [(r["method"], r["status"], r["request_bytes"]) for r in upload] == [("PUT", 201, h2c["upload"])]


def test_hpack_sizes_match_tshark(h2c):
    """Encoded header bytes from tshark's frame fields, plain bytes from tshark's decoded headers."""
    rows = tshark_json(h2c["pcap"], ["tcp.stream", "http2.type", "http2.length", "http2.flags", "http2.pad_length",
                                     "http2.header.name", "http2.header.value"],
                       decode_as=[f"tcp.port=={h2c['port']},http2"], display_filter="http2.type == 1")
    per_stream: dict[int, list[int]] = {}
    for row in rows:
        enc = per_stream.setdefault(int(row["tcp.stream"][0]), [0, 0])
        pads = iter(int(p) for p in row.get("http2.pad_length", []))
        for t, length, flags in zip(row["http2.type"], row["http2.length"], row["http2.flags"]):
            if t != "1":
                continue
            fl = int(flags, 16)
            enc[0] += int(length) - (next(pads) + 1 if fl & 0x8 else 0) - (5 if fl & 0x20 else 0)
        enc[1] += sum(len(n.encode()) + len(v.encode()) + 4
                      for n, v in zip(row["http2.header.name"], row["http2.header.value"]))
    for i, c in enumerate(h2c["conns"]):
        hp = c.decoder.summary()["http2"]["hpack"]
        assert [hp["encoded_bytes"], hp["plain_bytes"]] == per_stream[i]
    # repeated requests on one connection: HPACK's saving is large (the "30-50% or more")
    assert c.decoder.summary()["http2"]["hpack"]["savings_pct"] > 50  # noqa: F821 (last conn is curl)
    h2load = h2c["conns"][1].decoder.summary()["http2"]["hpack"]
    assert h2load["c2s"]["savings_pct"] > 80


def test_flow_control_stall_recomputed_from_packets(h2c):
    """nghttp keeps the default 65,535-byte connection window: nginx stops when server DATA
    reaches it and resumes after the client's first connection WINDOW_UPDATE."""
    rows = tshark_json(h2c["pcap"], ["frame.number", "frame.time_epoch", "tcp.stream", "tcp.srcport", "http2.type",
                                     "http2.streamid", "http2.length", "http2.window_update.window_size_increment"],
                       decode_as=[f"tcp.port=={h2c['port']},http2"], display_filter="tcp.stream == 0 && http2")
    # the connection window as RFC 9113 §6.9 keeps it: 65,535 less server DATA plus the client's
    # stream-0 WINDOW_UPDATEs; a stall starts when DATA empties it and ends at the next update
    window = 65535
    start = end = None
    for row in rows:
        ts = float(row["frame.time_epoch"][0])
        from_server = int(row["tcp.srcport"][0]) == h2c["port"]
        incs = iter(row.get("http2.window_update.window_size_increment", []))
        for t, sid, length in zip(row["http2.type"], row["http2.streamid"], row["http2.length"]):
            if t == "0" and from_server:
                window -= int(length)
                if window <= 0 and start is None:
                    start = ts
            elif t == "8":
                inc = int(next(incs))
                if not from_server and sid == "0":
                    window += inc
                    if start is not None and end is None:
                        end = ts
    assert start is not None and end is not None
    stalls = [e for e in h2c["conns"][0].events if isinstance(e, Http2Stall)]
    assert stalls and stalls[0].stream == 0 and stalls[0].direction == "s2c"
    assert stalls[0].start == pytest.approx(start, abs=1e-6) and stalls[0].end == pytest.approx(end, abs=1e-6)
    assert stalls[0].duration_ms == pytest.approx((end - start) * 1000, abs=1e-3)
    assert h2c["conns"][0].decoder.summary()["http2"]["flow_control_stalls"][0]["duration_ms"] == stalls[0].duration_ms


def _streams(conn):
    """The connection's two byte streams with the frame of each byte run, from the follower's index."""
    out = []
    for d in conn.dirs:
        out.append(d.index.spans(0, d.index.end))
    return out


def _replay(conn, cuts_c2s=(), cuts_s2c=()):
    """Feed a connection's bytes again, each direction cut at the given offsets (one span per piece)."""
    from inspector.decoders.base import DecodeContext

    streams = [b"", b""]
    frames = [[], []]
    for direction, d in enumerate(conn.dirs):
        for s in d.index.spans(0, d.index.end):
            frames[direction].append(s)
    # rebuild the byte streams from the original raw frame events (the preface included)
    raw = [bytearray(), bytearray()]
    for e in conn.events:
        if isinstance(e, Http2Frame):
            raw[0 if e.direction == "c2s" else 1] += e.raw
    streams = [bytes(raw[0]), bytes(raw[1])]
    dec = Http2Decoder(DecodeContext(conn=0, client=conn.client, server=conn.server))
    out = []
    for direction, cuts in ((0, cuts_c2s), (1, cuts_s2c)):
        data = streams[direction]
        idx = StreamIndex()
        points = [0, *sorted(cuts), len(data)]
        for a, b in zip(points, points[1:]):
            if a == b:
                continue
            idx.add(Span(a, b, b, float(b), float(b), b))  # frame number = end offset, to check attribution
            out += dec.feed(direction, data[a:b], a, idx)
    out += dec.finish()
    return streams, out


def _shape(events):
    return [(e.direction, e.type, e.stream, e.flags, e.length, e.headers, e.detail) for e in events
            if isinstance(e, Http2Frame)]


def test_split_at_every_offset(h2c):
    conn = h2c["conns"][2]  # the curl upload: preface, settings, headers, 100 kB of DATA, response
    streams, whole = _replay(conn)
    assert len(streams[1]) < 2000
    ref = _shape(whole)
    assert sum(1 for e in ref if e[1] == "DATA") > 5
    for k in range(1, len(streams[1])):
        _, evs = _replay(conn, cuts_s2c=[k])
        assert _shape(evs) == [e for e in ref], k
    for k in list(range(1, 200)) + list(range(len(streams[0]) - 200, len(streams[0]))):
        _, evs = _replay(conn, cuts_c2s=[k])
        assert _shape(evs) == ref, k


def test_byte_at_a_time_attributes_each_frame_to_its_last_byte(h2c):
    conn = h2c["conns"][0]
    streams, whole = _replay(conn)
    n0, n1 = len(streams[0]), len(streams[1])
    _, evs = _replay(conn, cuts_c2s=range(1, n0), cuts_s2c=range(1, min(n1, 4000)))
    assert _shape(evs) == _shape(whole)
    # with one span per byte whose "frame" is its end offset, each frame is attributed to its last byte
    pos = [0, 0]
    for e in evs:
        if isinstance(e, Http2Frame):
            d = 0 if e.direction == "c2s" else 1
            pos[d] += len(e.raw)
            if d == 0 or pos[1] <= 4000:
                assert e.frame == pos[d]
