"""HTTP-level head-of-line blocking on the lab captures: HTTP/1.1 pipelining, requests waiting for a
free connection, and HTTP/2 flow-control stalls; expected numbers from tshark's frame times."""

from __future__ import annotations

import pytest

from tests.support.analysis_run import episodes, victims
from tests.support.analysis_tshark import handshake_times, sample, tshark_decoded
from tests.support.capture import tshark_fields

TOL_MS = 0.002


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _http1(path: str, stream: int) -> tuple[list[float], list[float]]:
    """Request times and response first-byte times of one HTTP/1.1 connection, in order.

    tshark reports a response where its body ends; the first of the frames it reassembled the response
    from (``tcp.segment``) carried the response's first byte."""
    times = {int(f): float(t) for f, t in tshark_fields(path, ["frame.number", "frame.time_epoch"],
                                                         display_filter=f"tcp.stream=={stream}")}
    rows = tshark_fields(path, ["frame.number", "http.request", "http.response", "tcp.segment"],
                         display_filter=f"tcp.stream=={stream} && http")
    requests = [times[int(f)] for f, req, resp, segs in rows for _ in req.split(",") if req]
    responses = [times[int(segs.split(",")[0]) if segs else int(f)] for f, req, resp, segs in rows if resp]
    return requests, responses


def test_pipelined_responses_wait_behind_the_first() -> None:
    """Three requests sent at once on one connection; the later responses could have started one round
    trip after their request (plus the server time the first one needed) but came after the 40 kB one."""
    path = sample("http1-keepalive.pcap")
    stream = 7
    requests, responses = _http1(path, stream)
    assert len(requests) == 3 and len(set(requests)) == 1  # tshark: one segment carried all three
    syn, synack, ack = handshake_times(path, stream)
    server_part = synack - syn
    service = max(responses[0] - requests[0] - server_part, 0.0)
    expected = [_ms(responses[k] - max(requests[k] + server_part + service, responses[0])) for k in (1, 2)]
    eps = [ep for ep in episodes("http1-keepalive", "http1") if ep["conn"] == stream]
    (ep,) = eps
    got = list(victims(ep).values())
    assert [u.split(" (")[0] for u in victims(ep)] == ["HTTP/1.1 response 2", "HTTP/1.1 response 3"]
    assert got == pytest.approx(expected, abs=TOL_MS)
    assert "GET /big.bin" in ep["cause"] and "40000 body bytes" in ep["cause"]
    assert ep["start"] == pytest.approx(responses[0], abs=1e-6)


def test_requests_wait_for_a_free_connection() -> None:
    """Six requests, at most three connections: requests 4-6 went out the moment a connection freed up.
    Each waited from when the last of the three connections became busy."""
    path = sample("http1-keepalive.pcap")
    per_conn = {s: _http1(path, s) for s in (4, 5, 6)}
    busy_from = max(reqs[0] for reqs, _ in per_conn.values())
    for reqs, resps in per_conn.values():
        assert len(reqs) == 2 and resps[0] > busy_from  # all three were busy at that moment
    expected = sorted(_ms(reqs[1] - busy_from) for reqs, _ in per_conn.values())
    (ep,) = [ep for ep in episodes("http1-keepalive", "http1") if "busy" in ep["cause"]]
    assert sorted(victims(ep).values()) == pytest.approx(expected, abs=TOL_MS)
    assert ep["start"] == pytest.approx(busy_from, abs=1e-6)
    assert "connections 4, 5, 6" in ep["cause"]
    # the sequential keep-alive connection (one request after another, one connection) is no such case
    assert all("busy" not in e["cause"] or e["conn"] in (4, 5, 6) for e in episodes("http1-keepalive", "http1"))


def test_flow_control_stalls_last_until_the_update_reaches_the_server() -> None:
    """nghttp's 4 kB windows: nginx stops at zero until the client's WINDOW_UPDATE reaches it.  At the
    client the stall looks short (the update follows the data at once); the server waited one more
    round trip between the capture point and itself, which the next DATA frame's arrival confirms."""
    path = sample("http2-flow-control.pcap")
    syn, synack, ack = handshake_times(path, 0)
    server_side = synack - syn
    rows = tshark_decoded(path, ["frame.number", "frame.time_epoch", "tcp.srcport", "http2.type", "http2.streamid"],
                          "http2", decode_as=["tcp.port==8080,http2"])
    frames = []
    for f, t, sport, types, sids in rows:
        for ty, sid in zip(types.split(","), sids.split(",")):
            frames.append((int(f), float(t), sport == "8080", int(ty), int(sid)))
    eps = episodes("http2-flow-control", "flow-control")
    assert len(eps) >= 4
    for ep in eps:
        sid = ep["stream"]
        start = next(t for f, t, srv, ty, s in frames if f == ep["start_frame"] and srv and ty == 0 and s == sid)
        assert ep["start"] == pytest.approx(start, abs=1e-6)
        updates = [t for f, t, srv, ty, s in frames if not srv and ty == 8 and s == sid]
        assert any(abs(ep["end"] - t) < 1e-6 for t in updates)  # ended by the client's WINDOW_UPDATE
        assert ep["duration_ms"] == pytest.approx(_ms(ep["end"] - start + server_side), abs=TOL_MS)
        assert [v["unit"].split(" (")[0] for v in ep["victims"]] == [f"HTTP/2 stream {sid}"]
        resumed = min(t for f, t, srv, ty, s in frames if srv and ty == 0 and s == sid and t > ep["end"])
        # the server could not send before the update reached it: a round trip past the capture point
        assert resumed - ep["end"] >= server_side - 0.0003
        assert 0.9 < ep["duration_ms"] / _ms(ack - syn) < 1.2  # one round trip, as the lab note says
