"""wss://: websockets over Python ssl (TLS 1.3 and 1.2) with a key log, decrypted and decoded by the pipeline."""

from __future__ import annotations

import pytest

from inspector.events import Malformed, WsFrame, WsMessage
from tests.support.ws_follow import tshark_ws_frames
from tests.support.ws_registry import PushRegistry, run_pipeline
from tests.support.ws_stack import record_wss_capture


@pytest.fixture(scope="session", params=["1.3", "1.2"])
def wss(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"wss{request.param}")
    cap = record_wss_capture(str(d / "wss.pcap"), str(d / "keys.log"), str(d), tls_version=request.param)
    events, summaries = run_pipeline(cap.path, PushRegistry(), keylog=cap.keylog)
    return cap, events, summaries, request.param


def test_decrypted_messages(wss):
    cap, events, summaries, version = wss
    assert cap.version == f"TLSv{version}"
    assert not [e for e in events if isinstance(e, Malformed)]
    msgs = [e for e in events if isinstance(e, WsMessage)]
    seen = lambda m: m.text if m.kind == "text" else m.size  # noqa: E731
    assert [seen(m) for m in msgs if m.direction == "c2s"] == [v if isinstance(v, str) else len(v) for v in cap.sent]
    assert [seen(m) for m in msgs if m.direction == "s2c"] == [
        v if isinstance(v, str) else len(v) for v in cap.received]
    (s,) = summaries
    assert s["app"] == "websocket" and s["tls"]["decrypted"] and s["tls"]["version"] == version
    assert s["websocket"]["deflate"] is not None and s["websocket"]["close"]["code"] == 1000


def test_frames_agree_with_tshark_decrypting(wss):
    cap, events, _, _ = wss
    theirs = tshark_ws_frames(cap.path, ["-o", f"tls.keylog_file:{cap.keylog}", "-o", f"http.tls.port:{cap.port}",
                                         "-d", f"tcp.port=={cap.port},tls"])
    ours = [(e.frame, e.opcode, e.payload_len, e.fin, e.masked, e.rsv) for e in events if isinstance(e, WsFrame)]
    assert len(ours) >= 10
    assert ours == theirs
