"""Bad input: malformed HTTP/2 frames, HPACK errors, oversized header lists, broken HTTP/1.x.

Hand-built bytes (edge cases no well-behaved stack sends), fed to the decoders
with a stream index.  Each must give a ``malformed`` event with a reason and go
on decoding the frames after it wherever the framing allows; random input and
valid input cut anywhere must never raise.
"""

from __future__ import annotations

import struct

import hpack
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.base import DecodeContext
from inspector.decoders.http1 import Http1Decoder
from inspector.decoders.http2 import MAX_HEADER_LIST, PREFACE, Http2Decoder
from inspector.events import Http2Frame, HttpRequest, HttpResponse, Malformed
from inspector.flows.streamindex import Span, StreamIndex

CTX = DecodeContext(conn=7, client=("127.0.0.1", 40000), server=("127.0.0.1", 80))


def frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">HBBBL", len(payload) >> 8, len(payload) & 0xFF, ftype, flags, stream) + payload


def feed(dec, direction: int, data: bytes, frame_no: int = 1, offset: int = 0, index: StreamIndex | None = None):
    index = index or StreamIndex()
    index.add(Span(offset, offset + len(data), frame_no, 1.0, 1.0, frame_no))
    return dec.feed(direction, data, offset, index)


def h2(c2s: bytes) -> list:
    dec = Http2Decoder(CTX)
    return feed(dec, 0, PREFACE + c2s) + dec.finish()


ENC = hpack.Encoder()
REQ = [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", "/")]
PING_OK = frame(6, 0, 0, b"12345678")


def _malformed(events):
    return [e.reason for e in events if isinstance(e, Malformed)]


def _types(events):
    return [e.type for e in events if isinstance(e, Http2Frame)]


def test_bad_lengths_and_streams_are_reported_and_decoding_goes_on():
    events = h2(frame(6, 0, 0, b"1234567")  # PING of 7 bytes
                + frame(0, 0, 0, b"data")  # DATA on stream 0
                + frame(3, 0, 1, b"\0\0")  # RST_STREAM of 2 bytes
                + frame(8, 0, 0, b"\0\0\0\0")  # WINDOW_UPDATE of 0
                + frame(4, 0, 0, b"\0\1\0")  # SETTINGS not a multiple of 6
                + frame(4, 0, 3, b"")  # SETTINGS on a stream
                + frame(7, 0, 0, b"\0\0\0")  # GOAWAY too short
                + frame(2, 0, 1, b"\0\0\0\0")  # PRIORITY of 4 bytes
                + PING_OK)
    reasons = _malformed(events)
    assert reasons == ["PING frame: PING length 7, must be 8", "DATA frame: DATA on stream 0",
                       "RST_STREAM frame: RST_STREAM length 2, must be 4",
                       "WINDOW_UPDATE frame: WINDOW_UPDATE with an increment of 0",
                       "SETTINGS frame: SETTINGS length 3 is not a multiple of 6",
                       "SETTINGS frame: SETTINGS on stream 3", "GOAWAY frame: GOAWAY length 3, must be at least 8",
                       "PRIORITY frame: PRIORITY length 4, must be 5"]
    # every frame is still shown, and the good PING after them is decoded
    assert _types(events) == ["PREFACE", "PING", "DATA", "RST_STREAM", "WINDOW_UPDATE", "SETTINGS", "SETTINGS",
                              "GOAWAY", "PRIORITY", "PING"]
    assert [e for e in events if e.type == "PING"][-1].detail == {"opaque": b"12345678".hex()}


def test_padding_errors():
    block = ENC.encode(REQ)
    events = h2(frame(1, 0x4 | 0x8, 1, bytes([200]) + block)  # pad length beyond the payload
                + frame(0, 0x8, 1, bytes([9]) + b"abc")  # DATA pad 9 >= length 4
                + PING_OK)
    assert _malformed(events) == [f"HEADERS frame: padding 200 exceeds the payload {1 + len(block)}",
                                  "DATA frame: padding 9 not smaller than the payload 4"]
    assert _types(events)[-1] == "PING"


def test_hpack_error_then_later_headers_marked_unreliable():
    enc = hpack.Encoder()
    events = h2(frame(1, 0x5, 1, b"\x80")  # HPACK index 0
                + frame(1, 0x5, 3, enc.encode(REQ)))
    assert _malformed(events) == ["HEADERS frame: HPACK: index 0"]
    heads = [e for e in events if e.type == "HEADERS"]
    assert heads[0].headers_reliable is False and heads[0].headers is None
    # the table state is unknown after a failed block: the next block is shown but flagged
    assert heads[1].headers_reliable is False
    assert heads[1].headers == [list(h) for h in REQ]  # static-table and literal fields need no guessing


def test_oversized_header_list_is_cut_and_reported():
    enc = hpack.Encoder()
    big = REQ + [(f"x-{i}", "v" * 1000) for i in range(300)]  # about 310 kB of header list
    block = enc.encode(big)
    frames = b""
    chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
    frames += frame(1, 0x1 if len(chunks) > 1 else 0x5, 1, chunks[0])
    for i, c in enumerate(chunks[1:], 1):
        frames += frame(9, 0x4 if i == len(chunks) - 1 else 0, 1, c)
    events = h2(frames + frame(1, 0x5, 3, enc.encode(big[:6])))
    reasons = _malformed(events)
    assert len(reasons) == 1 and "exceeds" in reasons[0] and str(MAX_HEADER_LIST) in reasons[0]
    done = [e for e in events if isinstance(e, Http2Frame) and e.headers is not None]
    assert sum(len(n) + len(v) + 32 for n, v in done[0].headers) <= MAX_HEADER_LIST
    assert done[0].headers[:4] == [list(h) for h in REQ]
    # the table stayed in sync: the next block's indexed fields decode and are reliable
    assert done[1].headers == [list(h) for h in big[:6]] and done[1].headers_reliable


def test_continuation_errors():
    enc = hpack.Encoder()
    block = enc.encode(REQ)
    events = h2(frame(9, 0x4, 1, block)  # CONTINUATION without a header block
                + frame(1, 0x0, 3, block[:3])  # a header block left open...
                + PING_OK  # ...interrupted by another frame
                + frame(1, 0x5, 5, b"\x82"))
    assert _malformed(events) == [
        "CONTINUATION frame: CONTINUATION on stream 1 without a header block in progress",
        "PING frame: PING on stream 0 while the header block of stream 3 awaited CONTINUATION"]
    assert _types(events) == ["PREFACE", "CONTINUATION", "HEADERS", "PING", "HEADERS"]


def test_missing_preface_then_frames_found():
    dec = Http2Decoder(CTX)
    events = feed(dec, 0, b"GARBAGE!" + frame(4, 0, 0, b"") + PING_OK + PING_OK)
    assert _malformed(events) == ["client did not start with the HTTP/2 connection preface"]
    assert _types(events) == ["SETTINGS", "PING", "PING"]


def test_unknown_frame_types_are_kept():
    events = h2(frame(0xB, 0xFF, 9, b"whatever") + frame(0x42, 0, 0, b"") + PING_OK)
    assert _types(events) == ["PREFACE", "UNKNOWN_0x0b", "UNKNOWN_0x42", "PING"]
    assert not _malformed(events)


# --------------------------------------------------------------------------- HTTP/1.x


def h1(c2s: bytes, s2c: bytes) -> list:
    dec = Http1Decoder(CTX)
    return feed(dec, 0, c2s) + feed(dec, 1, s2c) + dec.finish()


def test_http1_bad_lines_reported_and_next_message_decoded():
    events = h1(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nBROKEN LINE\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 2x0 Bad\r\n\r\n"
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    reasons = _malformed(events)
    assert reasons == ["invalid request line b'BROKEN LINE'", "invalid status line b'HTTP/1.1 2x0 Bad'"]
    assert [(e.method, e.target) for e in events if isinstance(e, HttpRequest)] == [("GET", "/a"), ("GET", "/b")]
    assert [e.status for e in events if isinstance(e, HttpResponse)] == [200, 404]


def test_http1_bad_chunk_size_and_content_length():
    events = h1(b"POST /u HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
    reasons = _malformed(events)
    assert reasons[0] == "invalid Content-Length ['5', '6']"
    assert reasons[1] == "invalid chunk size b'zz'"


def test_http1_oversized_head():
    events = h1(b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n", b"")
    assert _malformed(events) == ["message head larger than 65536 bytes"]


# --------------------------------------------------------------------------- never raise


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 1))
def test_random_bytes_never_raise(data, direction):
    for dec in (Http2Decoder(CTX), Http1Decoder(CTX)):
        feed(dec, direction, data)
        dec.finish()
        dec.summary()


_VALID = (PREFACE + frame(4, 0, 0, struct.pack(">HL", 4, 100)) + frame(1, 0x5, 1, hpack.Encoder().encode(REQ))
          + frame(0, 0x9, 1, b"\x02hi\0\0") + frame(8, 0, 1, b"\0\0\0\x10") + PING_OK)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_VALID)), st.binary(max_size=64))
def test_cut_anywhere_plus_junk_never_raises(cut, junk):
    dec = Http2Decoder(CTX)
    events = feed(dec, 0, _VALID[:cut] + junk)
    events += dec.finish()
    dec.summary()
    assert all(isinstance(e.type, str) for e in events)
