"""WebSocket and SSE on the lab's sample captures: real stacks across a 40 ms path, captured at the client.

The lab (captures/lab) records each sample between network namespaces with a
user-space delay line and writes the path's delay beside it (``*.json``);
the expectations below come from that delay and from tshark, not from a run
of ours.
"""

from __future__ import annotations

import json
import os

import pytest

from inspector.events import SseEvent, WsFrame, WsMessage
from tests.support.ws_follow import tshark_ws_frames
from tests.support.ws_registry import PushRegistry, run_pipeline

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "captures", "samples")


def sample(name: str) -> tuple[str, dict]:
    with open(os.path.join(SAMPLES, f"{name}.json")) as f:
        return os.path.join(SAMPLES, f"{name}.pcap"), json.load(f)


def test_websocket_round_trips_across_the_delay_line():
    path, meta = sample("websocket")
    rtt = meta["rtt_ms"]
    events, summaries = run_pipeline(path, PushRegistry())
    (s,) = [s for s in summaries if s.get("app") == "websocket"]
    pings = {p["from"]: p["rtt_ms"] for p in s["websocket"]["pings"]}
    # captured at the client: its ping waits a full round trip for the pong, the server's ping is answered at once
    assert rtt <= pings["client"] <= rtt + 5
    assert pings["server"] < 5
    assert s["websocket"]["close"]["by"] == "client" and s["websocket"]["close"]["code"] == 1000
    port = int(s["server"].rsplit(":", 1)[1])
    theirs = tshark_ws_frames(path, ["-o", f"http.tcp.port:{port}"])
    assert [(e.frame, e.opcode, e.payload_len, e.fin, e.masked, e.rsv)
            for e in events if isinstance(e, WsFrame)] == theirs
    # every echo comes back one round trip after its message left
    msgs = [e for e in events if isinstance(e, WsMessage)]
    for out, back in zip(msgs[0::2], msgs[1::2]):
        assert (out.direction, back.direction) == ("c2s", "s2c")
        assert rtt <= (back.ts - out.ts) * 1000 <= rtt + 5


def test_push_feed_sse_and_websocket():
    path, meta = sample("push-feed")
    events, summaries = run_pipeline(path, PushRegistry())
    sse = [e for e in events if isinstance(e, SseEvent)]
    ws = [e for e in events if isinstance(e, WsMessage) and e.direction == "s2c"]
    assert len(sse) == len(ws) == 4  # "4 updates, 250 ms apart"
    for updates in (sse, ws):
        published = [json.loads(e.data if isinstance(e, SseEvent) else e.text)["t"] for e in updates]
        gaps = [(b.ts - a.ts) * 1000 for a, b in zip(updates, updates[1:])]
        assert all(230 <= g <= 270 for g in gaps)
        # each update reaches the client one way (20 ms) after the server published it
        for e, t in zip(updates, published):
            assert meta["one_way_delay_ms"] <= (e.ts - t) * 1000 <= meta["one_way_delay_ms"] + 5
    (w,) = [s for s in summaries if s.get("app") == "websocket"]
    http = w["websocket"]["overhead"]["http_equivalent"]["s2c"]
    assert http["messages"] == 4 and http["websocket_framing_bytes"] == 4 * 2  # 2-byte headers, unmasked
    assert http["http_head_bytes"] > 20 * http["websocket_framing_bytes"]


@pytest.mark.parametrize("name", ["websocket", "push-feed"])
def test_no_malformed(name):
    path, _ = sample(name)
    events, _ = run_pipeline(path, PushRegistry())
    assert not [e for e in events if e.type == "malformed"]
