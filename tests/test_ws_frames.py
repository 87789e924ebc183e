"""WebSocket frame and message decoding against the RFC 6455 and RFC 7692 examples, split and cut everywhere."""

from __future__ import annotations

import os
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.websocket import WebSocketDecoder, accept_key, check_handshake, unmask
from inspector.events import Malformed, Note, WsClose, WsFrame, WsMessage, WsPong
from tests.support.ws_feed import CTX, Feeder, strip

C2S, S2C = 0, 1

# RFC 6455 §5.7 examples
HELLO_UNMASKED = bytes.fromhex("810548656c6c6f")
HELLO_MASKED = bytes.fromhex("818537fa213d7f9f4d5158")
HEL_LO_FRAGMENTED = bytes.fromhex("010348656c") + bytes.fromhex("80026c6f")
PING_HELLO = bytes.fromhex("890548656c6c6f")
PONG_HELLO_MASKED = bytes.fromhex("8a8537fa213d7f9f4d5158")
BINARY_256 = bytes.fromhex("827e0100") + bytes(range(256))
BINARY_64K = bytes.fromhex("827f0000000000010000") + bytes(65536)

# RFC 7692 §7.2.3 examples (server -> client, unmasked)
DEFLATE_HELLO = bytes.fromhex("c107f248cdc9c90700")  # §7.2.3.1
DEFLATE_HELLO_FRAGMENTED = bytes.fromhex("4103f248cd") + bytes.fromhex("8004c9c90700")  # §7.2.3.1
DEFLATE_HELLO_AGAIN = bytes.fromhex("c105f200110000")  # §7.2.3.2, uses the first message's window
DEFLATE_STORED = bytes.fromhex("c10b000500faff48656c6c6f00")  # §7.2.3.3
DEFLATE_BFINAL = bytes.fromhex("c108f348cdc9c9070000")  # §7.2.3.4
DEFLATE_TWO_BLOCKS = bytes.fromhex("c10df24805000000ffffcac9c90700")  # §7.2.3.5

DEFLATE_RESPONSE = [["upgrade", "websocket"], ["connection", "Upgrade"],
                    ["sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
                    ["sec-websocket-extensions", "permessage-deflate"]]
REQUEST = [["host", "server.example.com"], ["upgrade", "websocket"], ["connection", "Upgrade"],
           ["sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="], ["sec-websocket-version", "13"],
           ["sec-websocket-extensions", "permessage-deflate; client_max_window_bits"]]


def decode(chunks: list[tuple[int, bytes]], handshake=None, **kw) -> list:
    f = Feeder(WebSocketDecoder(CTX, handshake, **kw))
    out = []
    for d, data in chunks:
        out += f.feed(d, data)
    return out + f.decoder.finish()


def messages(events: list) -> list[tuple[str, str, object]]:
    return [(e.direction, e.kind, e.text if e.kind == "text" else e.size) for e in events if isinstance(e, WsMessage)]


def test_accept_key_rfc6455_section_1_3():
    # RFC 6455 §1.3: the server's answer to the sample nonce
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_checks():
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE)
    assert hs.accept_ok is True and hs.problems == []
    assert hs.deflate is not None and hs.deflate.server_max_window_bits == 15
    bad = [h if h[0] != "sec-websocket-accept" else ["sec-websocket-accept", "AAAA"] for h in DEFLATE_RESPONSE]
    hs = check_handshake(REQUEST, bad + [["sec-websocket-protocol", "chat"]])
    assert hs.accept_ok is False
    assert any("Accept" in p for p in hs.problems)
    assert any("subprotocol 'chat'" in p for p in hs.problems)
    # RFC 8441 §5: no key, :protocol instead of Upgrade
    h2 = check_handshake([[":method", "CONNECT"], [":protocol", "websocket"], [":path", "/chat"],
                          [":authority", "example.test"], ["sec-websocket-version", "13"],
                          ["sec-websocket-protocol", "chat, superchat"]],
                         [[":status", "200"], ["sec-websocket-protocol", "chat"]], transport="h2")
    assert h2.accept_ok is None and h2.problems == [] and h2.subprotocol == "chat"
    nt = check_handshake(REQUEST, DEFLATE_RESPONSE[:-1] + [[
        "sec-websocket-extensions", "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"]])
    assert nt.deflate.server_no_context_takeover and nt.deflate.client_max_window_bits == 10
    assert check_handshake(REQUEST, DEFLATE_RESPONSE[:-1] + [[
        "sec-websocket-extensions", "permessage-deflate; server_max_window_bits=7"]]).problems


def test_rfc6455_examples():
    ev = decode([(S2C, HELLO_UNMASKED), (C2S, HELLO_MASKED), (S2C, HEL_LO_FRAGMENTED), (S2C, PING_HELLO),
                 (C2S, PONG_HELLO_MASKED), (S2C, BINARY_256), (S2C, BINARY_64K)])
    assert messages(ev) == [("s2c", "text", "Hello"), ("c2s", "text", "Hello"), ("s2c", "text", "Hello"),
                            ("s2c", "binary", 256), ("s2c", "binary", 65536)]
    frames = [(e.type, e.fin, e.masked, e.payload_len, e.header_len) for e in ev if isinstance(e, WsFrame)]
    assert frames == [("text", True, False, 5, 2), ("text", True, True, 5, 6), ("text", False, False, 3, 2),
                      ("continuation", True, False, 2, 2), ("ping", True, False, 5, 2), ("pong", True, True, 5, 6),
                      ("binary", True, False, 256, 4), ("binary", True, False, 65536, 10)]
    pong = next(e for e in ev if isinstance(e, WsPong))
    assert pong.ping_frame == 4 and pong.rtt_ms == 1000.0  # chunk n is at n seconds
    assert not [e for e in ev if isinstance(e, (Malformed, Note))]


def test_unmask_matches_rfc_example_and_phases():
    assert unmask(bytes.fromhex("7f9f4d5158"), bytes.fromhex("37fa213d")) == b"Hello"
    data, mask = os.urandom(1001), os.urandom(4)
    whole = unmask(data, mask)
    assert bytes(a ^ mask[i % 4] for i, a in enumerate(data)) == whole
    assert unmask(data[:7], mask) + unmask(data[7:], mask, 7 % 4) == whole


@pytest.mark.parametrize("frames, texts", [
    ([DEFLATE_HELLO], ["Hello"]),
    ([DEFLATE_HELLO_FRAGMENTED], ["Hello"]),
    ([DEFLATE_HELLO, DEFLATE_HELLO_AGAIN], ["Hello", "Hello"]),
    ([DEFLATE_STORED], ["Hello"]),
    ([DEFLATE_BFINAL, DEFLATE_HELLO], ["Hello", "Hello"]),  # a final block ends the stream: a new one starts
    ([DEFLATE_TWO_BLOCKS], ["Hello"]),
])
def test_rfc7692_examples(frames, texts):
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE)
    ev = decode([(S2C, f) for f in frames], hs)
    assert [t for _, _, t in messages(ev)] == texts
    assert all(e.compressed for e in ev if isinstance(e, WsMessage))
    assert not [e for e in ev if isinstance(e, (Malformed, Note))]


def test_rfc7692_context_takeover_is_needed():
    # §7.2.3.2's second message refers back to the first: without context takeover it cannot decode
    no_takeover = check_handshake(REQUEST, DEFLATE_RESPONSE[:-1] + [
        ["sec-websocket-extensions", "permessage-deflate; server_no_context_takeover"]])
    ev = decode([(S2C, DEFLATE_HELLO), (S2C, DEFLATE_HELLO_AGAIN)], no_takeover)
    assert messages(ev)[0] == ("s2c", "text", "Hello")
    bad = [e for e in ev if isinstance(e, Malformed)]
    assert bad and "permessage-deflate" in bad[0].reason


def _stream() -> list[tuple[int, bytes]]:
    """A conversation touching every path: all lengths, fragments, control frames inside a message, close."""
    mask = b"\x01\x02\x03\x04"
    text = "caf\u00e9 \U0001f600 ".encode() * 20
    big = os.urandom(70000)

    def masked(b0: int, payload: bytes) -> bytes:
        n = len(payload)
        ln = bytes([0x80 | n]) if n < 126 else (bytes([0xFE]) + n.to_bytes(2, "big") if n < 65536
                                                 else bytes([0xFF]) + n.to_bytes(8, "big"))
        return bytes([b0]) + ln + mask + unmask(payload, mask)
    return [
        (C2S, masked(0x01, text[:7])),  # split inside a UTF-8 sequence
        (C2S, masked(0x89, b"ping!")),  # control frame between fragments
        (C2S, masked(0x80, text[7:])),
        (S2C, bytes.fromhex("8a05") + b"ping!"),
        (C2S, masked(0x82, big)),
        (S2C, BINARY_256),
        (C2S, masked(0x88, (1001).to_bytes(2, "big") + "au revoir".encode())),
        (S2C, bytes.fromhex("88020" + "3e8")),
    ]


def test_conversation():
    ev = decode(_stream())
    assert messages(ev) == [("c2s", "text", ("caf\u00e9 \U0001f600 " * 20)), ("c2s", "binary", 70000),
                            ("s2c", "binary", 256)]
    closes = [(e.direction, e.code, e.reason, e.initiator) for e in ev if isinstance(e, WsClose)]
    assert closes == [("c2s", 1001, "au revoir", True), ("s2c", 1000, "", False)]
    assert not [e for e in ev if isinstance(e, (Malformed, Note))]


def test_split_at_every_offset():
    """Every cut of the byte stream gives the same events; the first part never completes the cut frame."""
    chunks = _stream()
    whole = strip(decode(chunks))
    for i, (d, data) in enumerate(chunks):
        if len(data) > 300:
            cuts = list(range(0, 20)) + list(range(len(data) - 20, len(data)))
        else:
            cuts = range(len(data))
        for cut in cuts:
            f = Feeder(WebSocketDecoder(CTX))
            out = []
            for j, (dd, chunk) in enumerate(chunks):
                if j == i:
                    first = f.feed(dd, chunk[:cut])
                    # a frame that is cut is never reported from its first part
                    assert all(not isinstance(e, WsFrame) for e in first) or cut == 0
                    out += first + f.feed(dd, chunk[cut:])
                else:
                    out += f.feed(dd, chunk)
            out += f.decoder.finish()
            assert strip(out) == whole, (i, cut)


def test_byte_by_byte():
    chunks = _stream()[:4]
    f = Feeder(WebSocketDecoder(CTX))
    out = []
    for d, data in chunks:
        for k in range(len(data)):
            out += f.feed(d, data[k:k + 1])
    assert strip(out) == strip(decode(chunks)[:len(out)])


def test_truncated_at_every_offset():
    data = b"".join(c for d, c in _stream()[:3])
    full = [e for e in decode([(C2S, data)]) if isinstance(e, WsFrame)]
    for cut in range(len(data)):
        ev = decode([(C2S, data[:cut])])
        frames = [e for e in ev if isinstance(e, WsFrame)]
        assert strip(frames) == strip(full[:len(frames)])
        assert not [e for e in ev if isinstance(e, Malformed)]
        ends = sum(len(c) for _, c in _stream()[:3][:len(frames)])
        if cut != ends:
            assert [e for e in ev if isinstance(e, Note) and "capture ended" in e.message]


def test_protocol_violations_are_reported_and_decoding_goes_on():
    chunks = [
        (S2C, bytes.fromhex("8103") + b"\xff\xfe\xfd"),  # invalid UTF-8 (RFC 6455 §8.1)
        (S2C, bytes.fromhex("0a00")),  # fragmented control frame
        (S2C, bytes.fromhex("8001") + b"x"),  # continuation with nothing to continue
        (S2C, bytes.fromhex("887e0080") + bytes(128)),  # control frame > 125 bytes
        (S2C, bytes.fromhex("8802") + (1005).to_bytes(2, "big")),  # 1005 may not be sent
        (S2C, bytes.fromhex("810568656c6c6f")),  # data after close
        (S2C, bytes.fromhex("c10568656c6c6f")),  # RSV1 without permessage-deflate negotiated
        (S2C, bytes.fromhex("817e0005") + b"hello"),  # non-minimal length
        (C2S, bytes.fromhex("8102") + b"hi"),  # client frame not masked
    ]
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE[:-1])
    ev = decode(chunks, hs)
    reasons = " | ".join(e.reason for e in ev if isinstance(e, Malformed))
    for expect in ("invalid UTF-8", "fragmented control", "continuation frame without", "control frame payload 128",
                   "close code 1005", "after this side sent close", "RSV1 set", "minimal encoding", "not masked"):
        assert expect in reasons
    assert [m[2] for m in messages(ev)] == [None, "hello", "hello", "hello", "hi"]


@pytest.mark.parametrize("header, reason", [
    (bytes.fromhex("8300"), "reserved opcode 0x3"),
    (bytes.fromhex("827f8000000000000000"), "most significant bit"),
])
def test_fatal_headers_stop_only_that_direction(header, reason):
    ev = decode([(S2C, header + HELLO_UNMASKED), (C2S, HELLO_MASKED)])
    bad = [e for e in ev if isinstance(e, Malformed)]
    assert len(bad) == 1 and reason in bad[0].reason and "framing lost" in bad[0].reason
    assert messages(ev) == [("c2s", "text", "Hello")]


def _deflate(data: bytes, wbits: int = -15) -> bytes:
    c = zlib.compressobj(wbits=wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def _frame(b0: int, payload: bytes) -> bytes:
    n = len(payload)
    ln = bytes([n]) if n < 126 else (b"\x7e" + n.to_bytes(2, "big") if n < 65536 else b"\x7f" + n.to_bytes(8, "big"))
    return bytes([b0]) + ln + payload


@pytest.mark.parametrize("takeover", [True, False])
def test_decompression_bomb_is_bounded(takeover):
    bomb = _deflate(bytes(50 << 20))  # 50 MiB of zeros: about 50 KiB on the wire
    ext = "permessage-deflate" + ("" if takeover else "; server_no_context_takeover")
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE[:-1] + [["sec-websocket-extensions", ext]])
    after = _deflate(b"after")
    ev = decode([(S2C, _frame(0xC2, bomb)), (S2C, _frame(0xC1, after))], hs, max_message=1 << 20)
    bad = [e.reason for e in ev if isinstance(e, Malformed)]
    assert "decompression bomb" in bad[0]
    msgs = [e for e in ev if isinstance(e, WsMessage)]
    assert msgs[0].size is None and msgs[0].wire_size == len(bomb)
    if takeover:  # the sender's window now holds bytes we never inflated: later messages cannot be trusted
        assert msgs[1].size is None and "cannot decompress" in bad[1]
    else:
        assert msgs[1].text == "after" and len(bad) == 1


def test_small_window_decodes():
    # RFC 7692 §7.1.2: window bits 8 are negotiable, but zlib deflates raw 8-bit windows as 9 bits
    text = os.urandom(600).hex().encode()
    payload = _deflate(text + b"-" + text, wbits=-9)
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE[:-1] + [
        ["sec-websocket-extensions", "permessage-deflate; server_max_window_bits=8"]])
    ev = decode([(S2C, _frame(0xC1, payload))], hs)
    assert messages(ev) == [("s2c", "text", (text + b"-" + text).decode())]


def test_gap_inside_payload_keeps_framing():
    f = Feeder(WebSocketDecoder(CTX))
    frame = _frame(0x82, bytes(1000))
    out = f.feed(S2C, frame[:100])
    out += f.gap(S2C, 500)
    out += f.feed(S2C, frame[600:])
    out += f.feed(S2C, HELLO_UNMASKED)
    assert messages(out) == [("s2c", "binary", None), ("s2c", "text", "Hello")]
    out = f.gap(S2C, 3)  # at a frame boundary: framing is lost
    assert any("framing lost" in e.message for e in out if isinstance(e, Note))
    assert f.feed(S2C, HELLO_UNMASKED) == []


def test_text_limit():
    ev = decode([(S2C, _frame(0x81, b"a" * 5000))], max_text=1000)
    msg = next(e for e in ev if isinstance(e, WsMessage))
    assert msg.truncated and len(msg.text) == 1000 and msg.size == 5000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=64)), max_size=12))
def test_random_bytes_never_raise(chunks):
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE)
    ev = decode(chunks, hs, max_message=1 << 16)
    assert all(hasattr(e, "layer") and e.layer == "websocket" for e in ev)


def test_invalid_utf8_in_a_compressed_message_keeps_the_context():
    # RFC 7692 §7.2.3.2: with context takeover the next message refers back to this one's bytes
    c = zlib.compressobj(wbits=-15)
    first = c.compress(b"\xff\xfe " + b"shared words " * 20) + c.flush(zlib.Z_SYNC_FLUSH)
    second = c.compress(b"shared words " * 20) + c.flush(zlib.Z_SYNC_FLUSH)
    hs = check_handshake(REQUEST, DEFLATE_RESPONSE)
    ev = decode([(S2C, _frame(0xC1, first[:-4])), (S2C, _frame(0xC1, second[:-4]))], hs)
    assert [e.reason for e in ev if isinstance(e, Malformed)] == ["invalid UTF-8 in text message (invalid start byte)"]
    msgs = [e for e in ev if isinstance(e, WsMessage)]
    assert (msgs[0].text, msgs[0].size) == (None, 3 + 13 * 20)
    assert msgs[1].text == "shared words " * 20 and len(second) < 40
