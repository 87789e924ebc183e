"""WebSocket on real traffic: the websockets library on loopback, checked against the peers and tshark."""

from __future__ import annotations

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.websocket import WebSocketDecoder, check_handshake, parse_extensions
from inspector.events import Malformed, WsClose, WsFrame, WsMessage, WsPong
from tests.support.capture import tshark_fields
from tests.support.ws_follow import follow_tcp, http_head, replay, tshark_ws_frames
from tests.support.ws_stack import record_ws_capture

BOMB_LIMIT = 1 << 20


@pytest.fixture(scope="session")
def ws_capture(tmp_path_factory):
    return record_ws_capture(str(tmp_path_factory.mktemp("ws") / "ws.pcap"))


@pytest.fixture(scope="session")
def decoded(ws_capture):
    """scenario name -> (events, decoder, handshake)."""
    by_port = {sc.client_port: name for name, sc in ws_capture.scenarios.items()}
    out = {}
    for i, conn in enumerate(follow_tcp(ws_capture.path)):
        name = by_port[conn.client[1]]
        _, req, req_len = http_head(conn.stream(0))
        status, resp, resp_len = http_head(conn.stream(1))
        assert status.startswith("HTTP/1.1 101")
        hs = check_handshake(req, resp)
        dec = WebSocketDecoder(DecodeContext(i, conn.client, conn.server), hs,
                               max_message=BOMB_LIMIT if name == "bomb" else 64 << 20)
        out[name] = (replay(dec, conn, (req_len, resp_len)), dec, hs)
    assert set(out) == set(ws_capture.scenarios)
    return out


def _as_seen(msg: WsMessage):
    return msg.text if msg.kind == "text" else msg.size


def _expected(value):
    return value if isinstance(value, str) else len(value)


@pytest.mark.parametrize("name", ["plain", "deflate", "no_takeover", "window9"])
def test_messages_match_what_the_peers_sent(decoded, ws_capture, name):
    events, dec, hs = decoded[name]
    sc = ws_capture.scenarios[name]
    msgs = [e for e in events if isinstance(e, WsMessage)]
    assert [_as_seen(m) for m in msgs if m.direction == "c2s"] == [_expected(v) for v in sc.sent]
    assert [_as_seen(m) for m in msgs if m.direction == "s2c"] == [_expected(v) for v in sc.received]
    assert not [e for e in events if isinstance(e, Malformed)]
    assert all(m.compressed == (hs.deflate is not None) for m in msgs)
    summary = dec.summary()
    assert summary["app"] == "websocket"
    assert summary["websocket"]["messages"] == {"c2s": len(sc.sent), "s2c": len(sc.received)}


def test_deflate_parameters_as_negotiated(decoded, ws_capture):
    for name in ("deflate", "no_takeover", "window9"):
        hs = decoded[name][2]
        ((ext, params),) = parse_extensions([ws_capture.scenarios[name].extensions])
        assert ext == "permessage-deflate" and hs.accept_ok and not hs.problems
        assert hs.deflate.server_no_context_takeover == ("server_no_context_takeover" in params)
        assert hs.deflate.client_no_context_takeover == ("client_no_context_takeover" in params)
        assert hs.deflate.server_max_window_bits == int(params.get("server_max_window_bits") or 15)
        assert hs.deflate.client_max_window_bits == int(params.get("client_max_window_bits") or 15)
    assert decoded["no_takeover"][2].deflate.server_max_window_bits == 10
    assert decoded["window9"][2].deflate.client_max_window_bits == 9
    # with context takeover later messages refer back to earlier ones: the same text costs less the second time
    sizes = [m.wire_size for m in decoded["deflate"][0] if isinstance(m, WsMessage) and m.direction == "c2s"]
    assert sizes[1] < sizes[0]
    nt = [m.wire_size for m in decoded["no_takeover"][0] if isinstance(m, WsMessage) and m.direction == "c2s"]
    assert len(set(nt)) == 1  # same-shaped messages, compressed from scratch each time


def test_fragmented_messages(decoded):
    events = decoded["plain"][0]
    frag = [m for m in events if isinstance(m, WsMessage) and m.frames > 1]
    assert [(m.direction, m.text, m.frames) for m in frag] == [
        ("c2s", "part one, part two, part three", 4), ("s2c", "alpha-beta-gamma \u00e9\u4e2d", 4)]
    assert all(m.first_frame < m.frame for m in frag)


def test_close_codes_and_who_closed(decoded, ws_capture):
    for name, sc in ws_capture.scenarios.items():
        events, dec, _ = decoded[name]
        close = dec.summary()["websocket"]["close"]
        assert (close["by"], close["code"], close["reason"]) == (sc.close_by, sc.close_code, sc.close_reason), name
        assert close["reply_code"] == sc.close_code
        first = next(e for e in events if isinstance(e, WsClose))
        assert first.initiator and first.direction == ("c2s" if sc.close_by == "client" else "s2c")


def test_ping_pong_round_trips(decoded, ws_capture):
    events, dec, _ = decoded["plain"]
    times = {int(f): float(t) for f, t in tshark_fields(ws_capture.path, ["frame.number", "frame.time_epoch"])}
    pings = dec.summary()["websocket"]["pings"]
    assert [p["from"] for p in pings] == ["client", "server"]
    for p in pings:
        assert p["rtt_ms"] == pytest.approx((times[p["pong_frame"]] - times[p["ping_frame"]]) * 1000, abs=0.002)
    pongs = [e for e in events if isinstance(e, WsPong)]
    assert [e.ping_frame for e in pongs] == [p["ping_frame"] for p in pings]


def test_compression_bomb_reported_not_expanded(decoded, ws_capture):
    events, dec, _ = decoded["bomb"]
    bad = [e.reason for e in events if isinstance(e, Malformed)]
    assert "decompression bomb" in bad[0] and str(BOMB_LIMIT) in bad[0]
    c2s = [m for m in events if isinstance(m, WsMessage) and m.direction == "c2s"]
    assert c2s[0].size is None and c2s[0].wire_size < 64 << 10  # 8 MiB sent as a few KiB
    # the client kept its compression context, so its next message cannot be trusted
    assert c2s[1].size is None and "cannot decompress" in bad[1]
    s2c = [m.text for m in events if isinstance(m, WsMessage) and m.direction == "s2c"]
    assert s2c == ws_capture.scenarios["bomb"].received


def test_frames_agree_with_tshark(decoded, ws_capture):
    """Per frame: opcode, payload length, FIN, MASK and RSV agree with tshark's WebSocket dissector."""
    theirs = tshark_ws_frames(ws_capture.path, ["-o", f"http.tcp.port:{ws_capture.port}"])
    ours = sorted(
        (e.frame, e.opcode, e.payload_len, e.fin, e.masked, e.rsv)
        for events, _, _ in decoded.values() for e in events if isinstance(e, WsFrame))
    assert len(ours) > 90
    assert ours == sorted(theirs)
    # framing overhead per direction = what the headers tshark saw add up to (RFC 6455 §5.2 sizes)
    for events, dec, _ in decoded.values():
        for direction in ("c2s", "s2c"):
            frames = [e for e in events if isinstance(e, WsFrame) and e.direction == direction]
            expect = sum(2 + (2 if 125 < f.payload_len < 65536 else 8 if f.payload_len >= 65536 else 0)
                         + (4 if f.masked else 0) for f in frames)
            over = dec.summary()["websocket"]["overhead"][direction]
            assert over["header_bytes"] == expect
            assert over["payload_bytes"] == sum(f.payload_len for f in frames)


def test_http_comparison(decoded, ws_capture):
    _, dec, hs = decoded["deflate"]
    http = dec.summary()["websocket"]["overhead"]["http_equivalent"]
    per = hs.http_request_bytes + hs.http_response_bytes
    sc = ws_capture.scenarios["deflate"]
    assert http["s2c"]["http_head_bytes"] == len(sc.received) * per
    # a pushed message costs a few bytes of framing instead of a request and response head
    assert http["s2c"]["websocket_framing_bytes"] < http["s2c"]["http_head_bytes"] / 10


def test_through_the_pipeline(decoded, ws_capture):
    """The same capture through the real pipeline and HTTP/1.1 decoder: same frames, summary app "websocket"."""
    from inspector.events import WsHandshake
    from tests.support.ws_registry import PushRegistry, run_pipeline

    events, summaries = run_pipeline(ws_capture.path, PushRegistry())
    ours = sorted((e.frame, e.opcode, e.payload_len, e.direction) for e in events if isinstance(e, WsFrame))
    follower = sorted((e.frame, e.opcode, e.payload_len, e.direction)
                      for evs, _, _ in decoded.values() for e in evs if isinstance(e, WsFrame))
    assert ours == follower  # and those agree with tshark (test_frames_agree_with_tshark)
    hands = [e for e in events if isinstance(e, WsHandshake)]
    assert len(hands) == len(ws_capture.scenarios) and all(h.accept_ok for h in hands)
    by_port = {int(s["client"].rsplit(":", 1)[1]): s for s in summaries}
    for name, sc in ws_capture.scenarios.items():
        s = by_port[sc.client_port]
        assert s["app"] == "websocket"
        assert s["websocket"]["messages"] == {"c2s": len(sc.sent), "s2c": len(sc.received)}
        assert s["requests"][0]["status"] == 101
        assert s["websocket"]["close"]["code"] == sc.close_code
