"""HTTP/2 edge cases from a scripted h2 peer over real loopback sockets, through the real pipeline.

CONTINUATION both ways, padded HEADERS (with priority) and DATA, RST_STREAM,
PUSH_PROMISE, trailers, PING, PRIORITY, ALTSVC/ORIGIN/PRIORITY_UPDATE and an
unknown type, a flow-control stall, a dynamic table larger than 4 kB, GOAWAY,
and h2c reached through HTTP/1.1 ``Upgrade: h2c``.  Every frame is checked
against tshark; the stall times against the packets.
"""

from __future__ import annotations

import os

import pytest

from inspector.events import Http2Frame, Http2Stall, HttpRequest, HttpResponse, Malformed
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.http_h2peer import BIG_HEADER, STALL_BODY, STALL_DELAY, STALL_WINDOW, H2Server, run_client
from tests.support.http_registry import HttpRegistry
from tests.support.http_servers import capture_clean
from tests.support.http_tshark import our_h2_frames, tshark_h2_frames, tshark_json


@pytest.fixture(scope="module")
def peer(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2peer")
    pcap = os.path.join(d, "peer.pcap")
    srv = H2Server()
    seen = {}
    try:
        def run():
            seen["prior"] = run_client(srv.port)
            seen["upgrade"] = run_client(srv.port, upgrade=True)

        capture_clean(pcap, f"tcp port {srv.port}", run)
    finally:
        srv.stop()
    assert not srv.errors, srv.errors
    events = []
    pipe, _ = decode_file(pcap, on_event=events.append, registry=HttpRegistry())
    conns = summaries(pipe.connections)
    assert len(conns) == 2
    by_conn = {0: [e for e in events if e.conn == pipe.connections[0].id],
               1: [e for e in events if e.conn == pipe.connections[1].id]}
    return {"pcap": pcap, "port": srv.port, "seen": seen, "events": by_conn, "summary": conns}


def _frames(peer, conn, type_):
    return [e for e in peer["events"][conn] if isinstance(e, Http2Frame) and e.type == type_]


def test_no_malformed(peer):
    assert not [e for es in peer["events"].values() for e in es if isinstance(e, Malformed)]


def test_frames_and_headers_agree_with_tshark(peer):
    prior = tshark_h2_frames(peer["pcap"], peer["port"], tcp_stream=0)
    # tshark follows the Upgrade: h2c connection when the port is decoded as HTTP/1.1
    upgraded = tshark_h2_frames(peer["pcap"], peer["port"], as_proto="http", tcp_stream=1)
    assert our_h2_frames(peer["events"][0]) == prior
    assert our_h2_frames(peer["events"][1]) == upgraded
    kinds = {e.type for e in peer["events"][0] if isinstance(e, Http2Frame)}
    assert kinds >= {"PREFACE", "SETTINGS", "HEADERS", "CONTINUATION", "DATA", "RST_STREAM", "PUSH_PROMISE", "PING",
                     "PRIORITY", "WINDOW_UPDATE", "GOAWAY", "ALTSVC", "ORIGIN", "PRIORITY_UPDATE", "UNKNOWN_0xfa"}


def test_continuation_both_directions(peer):
    conts = _frames(peer, 0, "CONTINUATION")
    # the response with 12 large headers and the 12,000-character request header both exceed 16,384 bytes
    assert {e.direction for e in conts} == {"c2s", "s2c"}
    resp = next(e for e in conts if e.direction == "s2c")
    assert resp.headers[0] == [":status", "200"]
    assert [h for h in resp.headers if h[0].startswith("x-big-")] == [[f"x-big-{i}", BIG_HEADER] for i in range(12)]
    opener = [e for e in _frames(peer, 0, "HEADERS") if e.stream == resp.stream and e.direction == "s2c"][0]
    assert opener.headers is None and "END_HEADERS" not in opener.flag_names
    req = next(e for e in conts if e.direction == "c2s")
    assert ["x-big-request", "~" * 12000] in req.headers


def test_padding_and_priority_fields(peer):
    padded = [e for e in _frames(peer, 0, "HEADERS") if e.detail and "pad_length" in e.detail]
    assert len(padded) == 1
    assert padded[0].detail == {"pad_length": 7, "exclusive": True, "depends_on": 0, "weight": 42}
    data = [e for e in _frames(peer, 0, "DATA") if e.detail]
    assert [(e.detail, e.length) for e in data] == [({"pad_length": 10}, 1 + len(b"padded body") + 10)]
    req = {r["path"]: r for r in peer["summary"][0]["requests"]}
    assert req["/padded"]["bytes"] == len(b"padded body")  # padding is not body
    prio = _frames(peer, 0, "PRIORITY")
    assert [e.detail for e in prio] == [{"exclusive": False, "depends_on": 0, "weight": 16}]


def test_reset_push_trailers_goaway_ping(peer):
    req = {r["path"]: r for r in peer["summary"][0]["requests"]}
    assert req["/reset"]["error"] == "CANCEL" and req["/reset"]["status"] == 200
    assert peer["seen"]["prior"]["resets"] == [("/reset", 8)]
    pushed = req["/pushed.css"]
    assert pushed["pushed"] and pushed["status"] == 200 and pushed["bytes"] == len(b"body{}")
    assert pushed["stream"] == peer["seen"]["prior"]["pushed"][0]
    pp = _frames(peer, 0, "PUSH_PROMISE")[0]
    assert pp.detail["promised_stream"] == pushed["stream"] and [":path", "/pushed.css"] in pp.headers
    trailers = [e for e in _frames(peer, 0, "HEADERS") if e.headers == [["x-trailer", "done"]]]
    assert len(trailers) == 1 and "END_STREAM" in trailers[0].flag_names
    goaway = peer["summary"][0]["http2"]["goaway"]
    assert [(g["from"], g["last_stream_id"], g["error"]) for g in goaway] == [
        ("server", peer["seen"]["prior"]["goaway"][1], "NO_ERROR")]
    pings = _frames(peer, 0, "PING")
    assert [p.flag_names for p in pings] == [(), ("ACK",)]
    assert pings[1].detail["rtt_ms"] == pytest.approx((pings[1].ts - pings[0].ts) * 1000, abs=1e-3)


def test_extension_frames(peer):
    assert _frames(peer, 0, "ALTSVC")[0].detail == {"origin": "http://peer", "alt_svc": 'h3=":443"; ma=60'}
    assert _frames(peer, 0, "ORIGIN")[0].detail == {"origins": ["http://peer", "http://other"]}
    pu = _frames(peer, 0, "PRIORITY_UPDATE")[0]
    ext = {r["path"]: r["stream"] for r in peer["summary"][0]["requests"]}["/extensions"]
    assert pu.detail == {"prioritized_stream": ext, "priority": "u=1, i"}
    unknown = _frames(peer, 0, "UNKNOWN_0xfa")[0]
    assert unknown.flags == 0x5 and unknown.length == len(b"opaque extension")


def test_large_dynamic_table(peer):
    """The server allowed a 64 kB table; the client filled more than the default 4 kB and then
    indexed it: the repeated requests are far smaller on the wire and decode identically."""
    heads = [e for e in _frames(peer, 0, "HEADERS") if e.direction == "c2s" and e.headers
             and any(h[0].startswith("x-table-") for h in e.headers)]
    assert len(heads) == 12
    first, again = heads[:6], heads[6:]
    assert [e.headers for e in first] == [e.headers for e in again]
    table_bytes = sum(len(h[0]) + len(h[1]) + 32 for e in first for h in e.headers if h[0].startswith("x-table"))
    assert table_bytes > 4096
    assert all(b.length < a.length / 10 for a, b in zip(first, again))


def test_flow_control_stall_against_packets(peer):
    """Stall start: the DATA frame that used up the 16 kB stream window; end: the client's
    WINDOW_UPDATE for the stream (both times taken from tshark's frames)."""
    sid = {r["path"]: r["stream"] for r in peer["summary"][0]["requests"]}["/stall"]
    rows = tshark_json(peer["pcap"], ["frame.time_epoch", "tcp.srcport", "http2.type", "http2.streamid",
                                      "http2.length"], decode_as=[f"tcp.port=={peer['port']},http2"],
                       display_filter=f"tcp.stream == 0 && http2.streamid == {sid}")
    expected = []
    window = STALL_WINDOW
    start = None
    for row in rows:
        ts = float(row["frame.time_epoch"][0])
        server = int(row["tcp.srcport"][0]) == peer["port"]
        for t, s, length in zip(row["http2.type"], row["http2.streamid"], row["http2.length"]):
            if int(s) != sid:
                continue
            if t == "0" and server:
                window -= int(length)
                if window == 0 and start is None:
                    start = ts
            elif t == "8" and not server:
                window += STALL_WINDOW
                if start is not None:
                    expected.append((start, ts))
                    start = None
    stalls = [e for e in peer["events"][0] if isinstance(e, Http2Stall)]
    assert len(expected) == STALL_BODY // STALL_WINDOW == len(stalls)
    for st, (a, b) in zip(stalls, expected):
        assert st.stream == sid and st.direction == "s2c"
        assert st.start == pytest.approx(a, abs=1e-6) and st.end == pytest.approx(b, abs=1e-6)
        assert st.duration_ms >= STALL_DELAY * 1000 * 0.9


def test_h2c_upgrade(peer):
    ev = peer["events"][1]
    http1 = [e for e in ev if isinstance(e, (HttpRequest, HttpResponse))]
    assert [(type(e).__name__, getattr(e, "status", None)) for e in http1] == [("HttpRequest", None),
                                                                              ("HttpResponse", 101)]
    s = peer["summary"][1]
    assert s["app"] == "h2" and s["http1"]["switched_to"] == "h2c"
    first = s["requests"][0]
    assert (first["stream"], first["path"], first["status"], first["interim"]) == (1, "/upgraded", 200, [101])
    assert first["bytes"] == len(b"ok /upgraded")
    assert first["end_ts"] > first["response_ts"]
    # the client's HTTP2-Settings were applied: its settings are known before its SETTINGS frame is acked
    assert s["http2"]["settings"]["client"]["ENABLE_PUSH"] == 1
