"""HPACK observer: RFC 7541 Appendix C vectors, errors, bounds, lost sync; ``hpack`` as a second oracle."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import hpack
import pytest
from hpack.exceptions import HPACKDecodingError
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders import hpack_observer
from inspector.decoders.hpack_observer import HpackObserver, huffman
from inspector.errors import DecodeError


def _from_source():
    """hpack_observer run from its Python source (where the module is compiled, the installed one
    decodes Huffman strings with the automaton, the source with ls-qpack)."""
    path = Path(hpack_observer.__file__).with_name("hpack_observer.py")
    spec = importlib.util.spec_from_file_location("inspector.decoders._hpack_observer_source", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_source = _from_source()
#: every Huffman decoder the module can use: as installed (compiled: the automaton), ls-qpack (the
#: source's huffman below 16 KiB) and the automaton as Python
HUFFMAN_DECODERS = {
    "installed": huffman,
    "source": _source.huffman,
    "automaton": lambda literal: bytes(_source.huffman_octets(literal, len(literal) - _length(literal), len(literal))),
}


def _length(literal: bytes) -> int:
    """The string length a literal's prefix gives (RFC 7541 §5.1)."""
    n, shift, pos = literal[0] & 0x7F, 0, 1
    if n == 0x7F:
        while True:
            b = literal[pos]
            pos += 1
            n += (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
    return n

# --------------------------------------------------------------------------- RFC 7541 Appendix C.2


def test_c_2_1_literal_with_indexing():
    # RFC 7541 C.2.1: Literal Header Field with Indexing
    d = HpackObserver()
    res = d.decode(bytes.fromhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"))
    assert res.headers == [["custom-key", "custom-header"]]
    assert d.table() == [("custom-key", "custom-header")]
    assert d.table_size == 55


def test_c_2_2_literal_without_indexing():
    # RFC 7541 C.2.2: Literal Header Field without Indexing
    d = HpackObserver()
    assert d.decode(bytes.fromhex("040c2f73616d706c652f70617468")).headers == [[":path", "/sample/path"]]
    assert d.table() == []


def test_c_2_3_never_indexed():
    # RFC 7541 C.2.3: Literal Header Field Never Indexed
    d = HpackObserver()
    assert d.decode(bytes.fromhex("100870617373776f726406736563726574")).headers == [["password", "secret"]]
    assert d.table() == []


def test_c_2_4_indexed():
    # RFC 7541 C.2.4: Indexed Header Field
    d = HpackObserver()
    assert d.decode(bytes.fromhex("82")).headers == [[":method", "GET"]]


# --------------------------------------------------------------------------- C.3 / C.4 requests

_REQ1 = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]]
_REQ2 = _REQ1 + [["cache-control", "no-cache"]]
_REQ3 = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"],
         ["custom-key", "custom-value"]]


@pytest.mark.parametrize("blocks", [
    # RFC 7541 C.3.1, C.3.2, C.3.3: Request Examples without Huffman Coding
    ["828684410f7777772e6578616d706c652e636f6d",
     "828684be58086e6f2d6361636865",
     "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"],
    # RFC 7541 C.4.1, C.4.2, C.4.3: Request Examples with Huffman Coding
    ["828684418cf1e3c2e5f23a6ba0ab90f4ff",
     "828684be5886a8eb10649cbf",
     "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"],
], ids=["C.3", "C.4"])
def test_requests(blocks):
    d = HpackObserver()
    assert d.decode(bytes.fromhex(blocks[0])).headers == _REQ1
    assert d.table() == [(":authority", "www.example.com")]
    assert d.table_size == 57
    assert d.decode(bytes.fromhex(blocks[1])).headers == _REQ2
    assert d.table() == [("cache-control", "no-cache"), (":authority", "www.example.com")]
    assert d.table_size == 110
    assert d.decode(bytes.fromhex(blocks[2])).headers == _REQ3
    assert d.table() == [("custom-key", "custom-value"), ("cache-control", "no-cache"),
                         (":authority", "www.example.com")]
    assert d.table_size == 164


# --------------------------------------------------------------------------- C.5 / C.6 responses (table 256)

_RESP1 = [[":status", "302"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
          ["location", "https://www.example.com"]]
_RESP2 = [[":status", "307"]] + _RESP1[1:]
_RESP3 = [[":status", "200"], ["cache-control", "private"], ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
          ["location", "https://www.example.com"], ["content-encoding", "gzip"],
          ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"]]


@pytest.mark.parametrize("blocks", [
    # RFC 7541 C.5.1, C.5.2, C.5.3: Response Examples without Huffman Coding (eviction at 256 octets)
    ["4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e17"
     "68747470733a2f2f7777772e6578616d706c652e636f6d",
     "4803333037c1c0bf",
     "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d41"
     "53444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31"],
    # RFC 7541 C.6.1, C.6.2, C.6.3: Response Examples with Huffman Coding
    ["488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
     "4883640effc1c0bf",
     "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5"
     "af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007"],
], ids=["C.5", "C.6"])
def test_responses_with_eviction(blocks):
    d = HpackObserver(max_allowed=256)
    assert d.decode(bytes.fromhex(blocks[0])).headers == _RESP1
    assert d.table_size == 222
    assert d.table() == [("location", "https://www.example.com"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                         ("cache-control", "private"), (":status", "302")]
    assert d.decode(bytes.fromhex(blocks[1])).headers == _RESP2
    assert d.table_size == 222  # ":status: 302" evicted to make room
    assert d.table() == [(":status", "307"), ("location", "https://www.example.com"),
                         ("date", "Mon, 21 Oct 2013 20:13:21 GMT"), ("cache-control", "private")]
    assert d.decode(bytes.fromhex(blocks[2])).headers == _RESP3
    assert d.table_size == 215
    assert d.table() == [("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
                         ("content-encoding", "gzip"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT")]


def test_compression_counted():
    # C.3.1 block is 20 octets; its fields written as "name: value\r\n" lines are 11+12+9+30 octets
    d = HpackObserver()
    res = d.decode(bytes.fromhex("828684410f7777772e6578616d706c652e636f6d"))
    assert d.encoded_bytes == 20
    assert res.plain_bytes == d.plain_bytes == len(":method: GET\r\n:scheme: http\r\n:path: /\r\n"
                                                   ":authority: www.example.com\r\n")


# --------------------------------------------------------------------------- errors (RFC 7541 §5, §6)


@pytest.mark.parametrize("hexblock,reason", [
    ("80", "index 0"),  # §6.1: index 0 is an error
    ("be", "beyond the table"),  # index 62 with an empty dynamic table
    ("ff8080808010", "integer too large"),  # §5.1 integer beyond 2^32
    ("ff", "integer cut off"),
    ("400a6375", "runs past"),  # string length beyond the block
    ("4081ff0161", "Huffman"),  # §5.2: a padding longer than 7 bits / EOS
    ("3fe21f", "above the allowed"),  # §6.3: size update to 4097, above SETTINGS_HEADER_TABLE_SIZE 4096
    ("823f01", "after a header field"),  # §4.2: size updates only at the start of a block
])
def test_errors(hexblock, reason):
    with pytest.raises(DecodeError) as exc:
        HpackObserver().decode(bytes.fromhex(hexblock))
    assert reason in exc.value.reason


def test_oversized_header_list_keeps_table_in_sync():
    d = HpackObserver(max_header_list_size=200)
    enc = hpack.Encoder()
    big = [(f"x-h{i}", "v" * 40) for i in range(10)]  # 10 * (4 + 40 + 32) = 760 > 200
    res = d.decode(enc.encode(big))
    assert res.oversized and res.list_size == sum(len(n) + len(v) + 32 for n, v in big)
    assert len(res.headers) == 2  # 2 * 76 fits in 200, the third does not
    # the table still holds every indexed entry, so a later block referencing them decodes right
    again = d.decode(enc.encode(big[-2:]))
    assert again.headers == [list(h) for h in big[-2:]] and again.reliable and not again.oversized


def test_table_size_update_and_settings_bound():
    d = HpackObserver()
    d.decode(bytes.fromhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"))
    d.set_max_allowed(0)  # the peer's SETTINGS_HEADER_TABLE_SIZE 0 was acknowledged
    assert d.table() == []
    with pytest.raises(DecodeError):
        d.decode(bytes.fromhex("3f01"))  # size update to 32 > allowed 0


# --------------------------------------------------------------------------- lost header blocks


def test_lost_block_marks_unreliable_instead_of_guessing():
    enc = hpack.Encoder()
    d = HpackObserver()
    d.decode(enc.encode([("x-a", "1"), ("x-b", "2")]))
    enc.encode([("x-c", "3")])  # this block never reaches the observer (a capture gap)
    d.lose_sync()
    res = d.decode(enc.encode([("x-a", "1"), ("x-c", "3"), ("x-new", "4")]))
    # x-c is the newest dynamic entry in the encoder: index 62; x-a is further back; neither was seen
    assert res.reliable is False
    assert res.headers == [[None, None], [None, None], ["x-new", "4"]]
    # entries inserted after the loss are known exactly
    res = d.decode(enc.encode([("x-new", "4")]))
    assert res.headers == [["x-new", "4"]]


def test_lost_sync_recovers_when_new_entries_fill_the_table():
    enc = hpack.Encoder()
    d = HpackObserver(max_allowed=256)
    enc.header_table_size = 256
    d.decode(enc.encode([("x-old", "o" * 50)]))
    enc.encode([("x-lost", "l" * 50)])
    d.lose_sync()
    assert not d.synced
    d.decode(enc.encode([("x-f1", "a" * 100)]))  # 136 + 32 <= 256: an unseen entry may remain
    assert not d.synced
    d.decode(enc.encode([("x-f2", "b" * 100)]))  # evicts x-f1, so everything older went before it
    assert d.synced
    res = d.decode(enc.encode([("x-f2", "b" * 100)]))
    assert res.reliable and res.headers == [["x-f2", "b" * 100]]


# --------------------------------------------------------------------------- hpack as a second decoder

_names = st.sampled_from([":path", "accept", "user-agent", "x-custom", "cookie", "date", "etag", "x-ü"])
_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(_names, _values), min_size=1, max_size=12), min_size=1, max_size=8),
       st.sampled_from([0, 64, 256, 4096]), st.booleans())
def test_agrees_with_hpack_decoder(blocks, table_size, huffman):
    enc = hpack.Encoder()
    ref = hpack.Decoder()
    ours = HpackObserver()
    enc.header_table_size = table_size
    for headers in blocks:
        data = enc.encode(headers, huffman=huffman)
        assert ours.decode(data).headers == [list(h) for h in ref.decode(data)]
        assert ours.table_size == ref.header_table._current_size


# --------------------------------------------------------------------------- Huffman strings (ls-qpack) against hpack's decoder


def _literal(raw: bytes) -> bytes:
    """``raw`` as a Huffman-flagged HPACK string literal (RFC 7541 §5.2): H bit, 7-bit prefix length."""
    n = len(raw)
    if n < 0x7F:
        return bytes([0x80 | n]) + raw
    out = [0xFF]
    n -= 0x7F
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(out + [n]) + raw


def _reference(raw: bytes) -> bytes | None:
    try:
        return decode_huffman(raw)
    except HPACKDecodingError:
        return None


def _ours(decode, raw: bytes) -> bytes | None:
    try:
        return decode(_literal(raw))
    except DecodeError:
        return None


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=1, max_size=12))
def test_huffman_matches_hpack_on_any_octets(raw):
    """Random octets are mostly invalid codes (EOS, long or non-1 padding): every decoder must
    accept and reject the same strings as hpack's, and agree on what valid ones decode to."""
    expected = _reference(raw)
    for name, decode in HUFFMAN_DECODERS.items():
        assert _ours(decode, raw) == expected, name


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_huffman_round_trip_from_hpack_encoder(plain):
    encoded = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(plain)
    for name, decode in HUFFMAN_DECODERS.items():
        assert decode(_literal(encoded)) == plain, name


@pytest.mark.parametrize("count", [26000, 27000, 100000])
def test_huffman_on_both_sides_of_the_ls_qpack_limit(count):
    """As Python, the module gives ls-qpack literals up to 16 KiB (it refuses fields over 64 KiB) and
    longer ones to the automaton.  'a' is a 5-bit code, so 26000 of them encode to just under the
    limit, 27000 just over."""
    encoded = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(b"a" * count)
    for decode in HUFFMAN_DECODERS.values():
        assert decode(_literal(encoded)) == b"a" * count
        with pytest.raises(DecodeError):  # all ones: the EOS symbol (RFC 7541 §5.2) is invalid in any decoder
            decode(_literal(b"\xff" * len(encoded)))
