"""Server-Sent Events end to end: hypercorn and curl over HTTP/1.1 and HTTP/2, through the real pipeline."""

from __future__ import annotations

import pytest

from inspector.events import Malformed, SseEvent, SseReconnect, SseRetry
from tests.support.capture import tshark_fields
from tests.support.sse_stack import EVENTS, PER_RESPONSE, record_sse_capture
from tests.support.ws_registry import PushRegistry, run_pipeline


@pytest.fixture(scope="session")
def sse(tmp_path_factory):
    cap = record_sse_capture(str(tmp_path_factory.mktemp("sse") / "sse.pcap"))
    events, summaries = run_pipeline(cap.path, PushRegistry())
    return cap, events, summaries


def _expected(lo: int, hi: int) -> list[tuple[str, str, str | None]]:
    return [(event or "message", "\n".join(lines), eid) for eid, event, lines, _ in EVENTS[lo:hi]]


def test_events_as_the_server_wrote_them(sse):
    cap, events, summaries = sse
    conns = [s["id"] for s in summaries if s["transport"] == "tcp"]
    assert len(conns) == 4  # per HTTP version: the first stream and the reconnection
    assert not [e for e in events if isinstance(e, Malformed)]
    for i, conn in enumerate(conns):
        got = [(e.event, e.data, e.id) for e in events if isinstance(e, SseEvent) and e.conn == conn]
        lo = PER_RESPONSE * (i % 2)
        assert got == _expected(lo, lo + PER_RESPONSE)
        assert all(e.last_event_id == e.id for e in events if isinstance(e, SseEvent) and e.conn == conn)
        retries = [e.retry_ms for e in events if isinstance(e, SseRetry) and e.conn == conn]
        assert retries == ([250] if i % 2 == 0 else [])
    # curl saw the same bytes: its output holds every id the decoder found
    for run in cap.runs:
        assert [o.count("id: ") for o in run.outputs] == [PER_RESPONSE, PER_RESPONSE]


def test_arrival_times(sse):
    """Each event is placed at the frame whose payload ends it; the server wrote them 20 ms apart."""
    cap, events, _ = sse
    payloads = {int(f): bytes.fromhex(p) for f, p in tshark_fields(cap.path, ["frame.number", "tcp.payload"],
                                                                    display_filter="tcp.len > 0")}
    sse_events = [e for e in events if isinstance(e, SseEvent)]
    for e in sse_events:
        assert f"id: {e.id}".encode() in payloads[e.frame]
    for conn in {e.conn for e in sse_events}:
        ts = [e.ts for e in sse_events if e.conn == conn]
        assert all(b - a > 0.015 for a, b in zip(ts, ts[1:]))


def test_reconnection_linked_to_the_stream_it_resumes(sse):
    cap, events, summaries = sse
    tcp = [s for s in summaries if s["transport"] == "tcp"]
    for first, second, stream in ((tcp[0], tcp[1], None), (tcp[2], tcp[3], 1)):
        (rec,) = [e for e in events if isinstance(e, SseReconnect) and e.conn == second["id"]]
        assert (rec.last_event_id, rec.resumes_conn, rec.resumes_stream) == (str(PER_RESPONSE), first["id"], stream)
        old = first["sse"]["streams"][0]
        assert rec.gap_ms == pytest.approx((rec.ts - old["end_ts"]) * 1000, abs=0.001) and rec.gap_ms > 0
        new = second["sse"]["streams"][0]
        assert new["resumes"]["conn"] == first["id"] and new["events"] == PER_RESPONSE
        assert old["last_event_id"] == str(PER_RESPONSE) and old["resumes"] is None
        assert second["requests"][0]["path"] == "/events"
    assert [s["app"] for s in tcp] == ["http/1.1", "http/1.1", "h2", "h2"]
