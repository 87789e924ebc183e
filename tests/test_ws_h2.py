"""WebSocket over HTTP/2 (RFC 8441): hypercorn and an h2 + wsproto client, through the pipeline's HTTP/2 decoder."""

from __future__ import annotations

import pytest

from inspector.events import Malformed, WsClose, WsFrame, WsHandshake, WsMessage
from tests.support.capture import tshark_fields
from tests.support.ws_h2_stack import CLOSE_CODE, record_h2_ws_capture
from tests.support.ws_registry import PushRegistry, run_pipeline


@pytest.fixture(scope="session")
def h2ws(tmp_path_factory):
    cap = record_h2_ws_capture(str(tmp_path_factory.mktemp("h2ws") / "h2ws.pcap"))
    events, summaries = run_pipeline(cap.path, PushRegistry())
    return cap, events, summaries


def test_messages_and_handshake(h2ws):
    cap, events, summaries = h2ws
    assert not [e for e in events if isinstance(e, Malformed)]
    (hs,) = [e for e in events if isinstance(e, WsHandshake)]
    assert (hs.transport, hs.accept_ok, hs.subprotocol, hs.problems) == ("h2", None, "chat", [])
    msgs = [e for e in events if isinstance(e, WsMessage)]
    seen = lambda m: m.text if m.kind == "text" else m.size  # noqa: E731
    assert [seen(m) for m in msgs if m.direction == "c2s"] == [v if isinstance(v, str) else len(v) for v in cap.sent]
    assert [seen(m) for m in msgs if m.direction == "s2c"] == [
        v if isinstance(v, str) else len(v) for v in cap.received]
    closes = [(e.direction, e.code, e.initiator) for e in events if isinstance(e, WsClose)]
    assert closes == [("s2c", CLOSE_CODE, True), ("c2s", CLOSE_CODE, False)]
    (s,) = [s for s in summaries if s["transport"] == "tcp"]
    assert s["app"] == "websocket" and s["websocket"]["transport"] == "h2"
    assert s["websocket"]["messages"] == {"c2s": len(cap.sent), "s2c": len(cap.received)}


def test_frames_fill_the_http2_data_frames_tshark_sees(h2ws):
    """tshark 4.0 does not dissect WebSocket inside HTTP/2; each DATA frame here carries one WebSocket
    frame, so its length (tshark's http2.length) must be that frame's header plus payload."""
    cap, events, _ = h2ws
    rows = tshark_fields(cap.path, ["frame.number", "http2.type", "http2.length", "http2.streamid"],
                         display_filter="http2.type == 0", options=[f"http2.tcp.port:{cap.port}"])
    data = []
    for frame, types, lengths, sids in rows:
        for t, ln, sid in zip(types.split(","), lengths.split(","), sids.split(",")):
            if t == "0" and sid == "1" and ln != "0":
                data.append((int(frame), int(ln)))
    ours = [(e.frame, e.header_len + e.payload_len) for e in events if isinstance(e, WsFrame)]
    assert ours == data and len(ours) == len(cap.sent) + len(cap.received) + 2
