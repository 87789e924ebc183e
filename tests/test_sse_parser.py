"""text/event-stream parsing against the WHATWG HTML examples (§9.2.6), in every line-ending style and split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.sse import Dispatched, RetrySet, SseParser


def parse(data: bytes) -> tuple[list, SseParser]:
    p = SseParser()
    return p.feed(data), p


def events(items) -> list[tuple[str, str, str]]:
    return [(d.event, d.data, d.last_event_id) for d in items if isinstance(d, Dispatched)]


# HTML §9.2.6 examples, verbatim, with what the standard says they dispatch
STOCK = b"data: YHOO\ndata: +2\ndata: 10\n\n"
IDS = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n"
EMPTY = b"data\n\ndata\ndata\n\ndata:"
SPACE = b"data:test\n\ndata: test\n\n"


def test_whatwg_examples():
    assert events(parse(STOCK)[0]) == [("message", "YHOO\n+2\n10", "")]
    out, p = parse(IDS)
    # the second event resets the last event id; the third is never dispatched (no blank line)
    assert events(out) == [("message", "first event", "1"), ("message", "second event", "")]
    assert p.comments == 1 and p.end()  # the unfinished third event is discarded at the end
    assert events(parse(EMPTY)[0]) == [("message", "", ""), ("message", "\n", "")]
    assert events(parse(SPACE)[0]) == [("message", "test", ""), ("message", "test", "")]


def test_third_event_keeps_one_leading_space():
    out, _ = parse(IDS + b"\n")
    assert events(out)[-1] == ("message", " third event", "")


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_line_endings(eol):
    text = b"event: tick" + eol + b"data: a" + eol + b"data: b" + eol + b"id: 7" + eol + b"retry: 1500" + eol + eol
    text += b"retry: x1" + eol + b"data: c" + eol + eol
    out, _ = parse(text)
    assert events(out) == [("tick", "a\nb", "7"), ("message", "c", "7")]
    assert [r.retry_ms for r in out if isinstance(r, RetrySet)] == [1500]  # a non-digit retry is ignored


def test_bom_and_fields():
    data = "\ufeffdata: x\nid: a\x00b\nfoo: bar\ndata\n\nid: 9\n\n".encode()  # NUL in an id: ignored
    out, p = parse(data)
    assert events(out) == [("message", "x\n", "")]
    assert p.last_event_id == "9"  # an id without data still sets the last event id


ALL = STOCK + IDS + b"\n" + b"event: e\r\ndata: \xc3\xa9\r\rdata: z\r\n\r\n" + b"retry: 10\n\n" + SPACE


def test_split_at_every_offset():
    """A CR at the end of one chunk and the LF at the start of the next are one line end."""
    whole, _ = parse(ALL)
    assert len(events(whole)) == 8
    for cut in range(len(ALL) + 1):
        p = SseParser()
        assert p.feed(ALL[:cut]) + p.feed(ALL[cut:]) == whole, cut
    for cut in range(3):  # the BOM itself split
        p = SseParser()
        bom = b"\xef\xbb\xbf" + STOCK
        assert p.feed(bom[:cut]) + p.feed(bom[cut:]) == parse(STOCK)[0]


def test_byte_by_byte():
    p = SseParser()
    out = []
    for i in range(len(ALL)):
        out += p.feed(ALL[i:i + 1])
    assert out == parse(ALL)[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"data: x", b"data", b"id: 1", b"event: e", b":c", b"retry: 5", b"\n", b"\r", b"\r\n",
                                 b"\xff\xfe", b"da", b"ta: y"]), max_size=30),
       st.integers(0, 200))
def test_random_streams_split_anywhere(parts, cut):
    data = b"".join(parts)
    cut = min(cut, len(data))
    whole, _ = parse(data)
    p = SseParser()
    assert p.feed(data[:cut]) + p.feed(data[cut:]) == whole
