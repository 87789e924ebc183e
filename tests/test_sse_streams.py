"""Event streams across connections: reconnections found by (authority, path, id), unknown ids, bounds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.decoders.base import DecodeContext
from inspector.decoders.http_exchange import HttpExchange
from inspector.decoders.sse import SseStreams
from inspector.events import Note, SseEvent, SseReconnect


def ctx(conn: int) -> DecodeContext:
    return DecodeContext(conn=conn, client=("127.0.0.1", 40000 + conn), server=("127.0.0.1", 8080))


def exchange(path: str, ts: float, frame: int, last_id: str | None = None, stream: int | None = None) -> HttpExchange:
    headers = [["host", "feed.test"]] + ([["last-event-id", last_id]] if last_id is not None else [])
    return HttpExchange(stream=stream, method="GET", path=path, authority="feed.test", request_headers=headers,
                        request_ts=ts, request_frame=frame)


def test_reconnect_links_by_path_and_id():
    streams = SseStreams()
    a = streams.observer(ctx(1), exchange("/a", 1.0, 1))
    b = streams.observer(ctx(2), exchange("/b", 1.0, 2))
    a.feed_body(b"id: 7\ndata: from a\n\n", 2.0, 3)
    b.feed_body(b"id: 7\ndata: from b\n\n", 2.5, 4)
    assert a.end_body(3.0, 5) == [] and b.end_body(3.5, 6) == []
    # the same id on two streams: the path decides; an id nobody sent is linked to nothing
    c = streams.observer(ctx(3), exchange("/a", 4.0, 7, last_id="7"))
    d = streams.observer(ctx(4), exchange("/c", 4.5, 8, last_id="99"))
    (rc,) = c.feed_body(b"", 4.1, 9)
    (rd,) = d.end_body(4.6, 10)
    assert isinstance(rc, SseReconnect) and (rc.resumes_conn, rc.gap_ms, rc.frame) == (1, 1000.0, 7)
    assert isinstance(rd, SseReconnect) and rd.resumes_conn is None and rd.gap_ms is None
    # the resumed stream starts from the client's last id
    (ev,) = c.feed_body(b"data: no id here\n\n", 5.0, 11)
    assert isinstance(ev, SseEvent) and ev.id is None and ev.last_event_id == "7"
    assert streams.summary(3)["sse"]["streams"][0]["resumes"]["conn"] == 1
    assert streams.summary(99) == {}


def test_stream_ending_inside_an_event():
    streams = SseStreams()
    o = streams.observer(ctx(1), exchange("/a", 1.0, 1))
    assert o.feed_body(b"data: half", 1.5, 2) == []
    (note,) = o.end_body(2.0, 3)
    assert isinstance(note, Note) and "discarded" in note.message
    assert streams.summary(1)["sse"]["streams"][0]["ended_inside_event"] is True


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10))
def test_random_bodies_never_raise(chunks):
    streams = SseStreams(max_ids=4)
    o = streams.observer(ctx(1), exchange("/r", 1.0, 1, last_id="x"))
    for i, c in enumerate(chunks):
        for e in o.feed_body(c, 2.0 + i, 2 + i):
            assert e.layer == "sse"
    o.end_body(100.0, 100)
    assert len(streams._by_id) <= 4
