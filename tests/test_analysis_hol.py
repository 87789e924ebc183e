"""Head-of-line blocking on the lab's real lossy captures, with expected numbers from tshark.

The lab drops one server->client packet mid-response in the same six-object
workload over HTTP/2 (TLS 1.3, TCP) and over HTTP/3 (QUIC), captured at the
client and at the server.  tshark gives the frames, their times, which TLS
records (and HTTP/2 streams) each segment carried and which QUIC stream
offsets each packet carried; the expected victims and waits are computed from
that, never from our own output.
"""

from __future__ import annotations

import re
import struct

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.http2 import MAX_HOL_MARKS, RECENT_ITEMS, Http2Decoder
from inspector.flows.reassembly import (
    HOL_FILL,
    HOL_HELD,
    MAX_HOL_RECORDS,
    MAX_RESENT_RECORDS,
    Reassembler,
)
from inspector.flows.streamindex import Span, StreamIndex
from inspector.output.summary import detail_lines
from tests.support.analysis_run import episodes, summary, victims
from tests.support.analysis_tshark import (
    Segment,
    data_segments,
    first_retransmission,
    frame_times,
    keylog_options,
    quic_stream_frames,
    reassembled_records,
    sample,
)
from tests.support.capture import tshark_fields

TOL_MS = 0.002  # both sides round the same capture timestamps to microseconds


def _streams(units: dict[str, float]) -> dict[int, float]:
    return {int(re.search(r"stream (\d+)", u).group(1)): b for u, b in units.items()}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# --------------------------------------------------------------------------- HTTP/2 over TLS over TCP


@pytest.fixture(scope="module")
def h2_client_expected() -> dict:
    """From tshark at the client: the late copy of the lost segment completes several TLS records at
    once; every record but the one holding the lost bytes waited from its own last byte's arrival."""
    path = sample("http2-lossy.pcap")
    times = frame_times(path)
    segs = data_segments(path, 443)
    fill = first_retransmission(segs)
    records = reassembled_records(path, fill.frame, keylog_options("http2-lossy"))
    cause = [r for r in records if fill.frame in r.frames]
    assert len(cause) == 1 and len(records) > 1
    waits: dict[int, float] = {}
    for r in records:
        if r is cause[0]:
            continue
        wait = _ms(times[fill.frame] - max(times[f] for f in r.frames))
        for s in r.streams:
            waits[s] = max(waits.get(s, 0.0), wait)
    first_held = min(s.ts for s in segs if s.seq > fill.seq and s.frame < fill.frame)
    return {"fill": fill, "fill_ts": times[fill.frame], "cause": cause[0].streams, "waits": waits,
            "start": first_held}


def test_http2_loss_blocks_other_streams_at_the_client(h2_client_expected: dict) -> None:
    exp = h2_client_expected
    (ep,) = episodes("http2-lossy", "tcp")
    got = _streams(victims(ep))
    # cross-stream victims: streams that lost nothing waited for another stream's bytes
    assert got.keys() == exp["waits"].keys() and len(got) >= 2
    assert not set(exp["cause"]) & got.keys()
    for sid, wait in exp["waits"].items():
        assert abs(got[sid] - wait) <= TOL_MS, sid
    assert f"HTTP/2 stream {exp['cause'][0]} " in ep["cause"]
    assert ep["direction"] == "s2c"
    assert ep["view"].startswith("receiver")
    assert ep["end"] == pytest.approx(exp["fill_ts"], abs=1e-6)
    assert ep["start"] == pytest.approx(exp["start"], abs=1e-6)
    assert ep["duration_ms"] == pytest.approx(_ms(exp["fill_ts"] - exp["start"]), abs=TOL_MS)
    fill = exp["fill"]
    assert ep["lost"] == {"offset": fill.seq - 1, "bytes": fill.length, "resent_frames": [fill.frame]}


def test_http2_loss_inferred_at_the_sender(h2_client_expected: dict) -> None:
    """At the server the original and its retransmission are both captured: the receiver's wait is
    inferred from what was sent in between.  tshark at the server gives the records completed between
    the two; the client capture of the same connection shows the waits really happened."""
    name = "http2-lossy.server"
    path = sample(f"{name}.pcap")
    times = frame_times(path)
    segs = data_segments(path, 443)
    resent = first_retransmission(segs)
    orig = next(s for s in segs if s.seq == resent.seq)
    rows = tshark_fields(path, ["frame.number", "http2.streamid"], display_filter="tcp.srcport==443 && http2",
                         options=keylog_options(name))
    completed = [(int(f), sorted({int(x) for x in sids.split(",")})) for f, sids in rows
                 if orig.frame <= int(f) < resent.frame]
    cause = completed[0][1]  # the first record completed after the original holds the lost bytes
    expected = {s: _ms(times[resent.frame] - times[f]) for f, sids in completed[1:] for s in sids if s not in cause}

    (ep,) = episodes(name, "tcp")
    got = _streams(victims(ep))
    assert got.keys() == expected.keys() == h2_client_expected["waits"].keys()
    assert cause == h2_client_expected["cause"]
    for sid, wait in expected.items():
        assert abs(got[sid] - wait) <= TOL_MS
        # what the sender's view infers is what the receiver lived (the path delay is constant)
        assert abs(got[sid] - h2_client_expected["waits"][sid]) < 1.5
    assert ep["view"].startswith("sender")
    assert ep["lost"]["original_frame"] == orig.frame and ep["lost"]["resent_frames"] == [resent.frame]


def test_tail_loss_has_no_victims() -> None:
    """The last segment of the last response is lost: nothing arrives behind it.  The client sees no
    hole at all; the server sees the retransmission (after its timer), which blocked no other stream."""
    assert episodes("http2-tail-loss") == []
    name = "http2-tail-loss.server"
    path = sample(f"{name}.pcap")
    segs = data_segments(path, 443)
    resent = first_retransmission(segs)
    orig = next(s for s in segs if s.seq == resent.seq)
    assert orig.seq + orig.length == max(s.seq + s.length for s in segs)  # it was the last data sent
    rows = tshark_fields(path, ["frame.number", "http2.streamid"], display_filter="tcp.srcport==443 && http2",
                         options=keylog_options(name))
    lost_streams = next(sorted({int(x) for x in sids.split(",")}) for f, sids in rows if int(f) >= orig.frame)
    (ep,) = episodes(name, "tcp")
    assert ep["victims"] == []
    assert f"HTTP/2 stream {lost_streams[-1]} " in ep["cause"]
    times = frame_times(path)
    assert ep["duration_ms"] == pytest.approx(_ms(times[resent.frame] - times[orig.frame]), abs=TOL_MS)


# --------------------------------------------------------------------------- HTTP/3 over QUIC


def _quic_expected(name: str) -> dict:
    """From tshark's decrypted STREAM frames: the resent range, the stream's own data that waited for it,
    and the other request streams that received data meanwhile."""
    path = sample(f"{name}.pcap")
    frames = quic_stream_frames(path, keylog_options(name), 443)
    top: dict[int, int] = {}
    first_seen: dict[tuple[int, int], tuple[int, float]] = {}
    resend = None
    for f, ts, sid, off, n in frames:
        if off < top.get(sid, 0) and n:
            resend = (f, ts, sid, off, n)
            break
        first_seen.setdefault((sid, off), (f, ts))
        top[sid] = max(top.get(sid, 0), off + n)
    assert resend is not None
    f_r, t_r, sid, off, n = resend
    orig = first_seen.get((sid, off))  # captured only at the sender
    later = [ts for f, ts, s, o, m in frames if s == sid and o >= off + n and f < f_r
             and (orig is None or f > orig[0])]
    start = min(later)
    others = {s for f, ts, s, o, m in frames if s != sid and s % 4 == 0 and start <= ts <= t_r}
    return {"stream": sid, "wait": _ms(t_r - start), "fill_ts": t_r, "others": others,
            "original": orig}


@pytest.mark.parametrize("name", ["http3-lossy", "http3-lossy.server"])
def test_http3_loss_blocks_only_its_own_stream(name: str) -> None:
    exp = _quic_expected(name)
    (ep,) = episodes(name, "quic")
    assert episodes(name, "tcp") == []
    got = _streams(victims(ep))
    # only the stream whose data the lost packet carried waited; the others went on
    assert list(got) == [exp["stream"]]
    assert abs(got[exp["stream"]] - exp["wait"]) <= TOL_MS
    assert set(_streams(dict.fromkeys(ep["not_blocked"], 0.0))) == exp["others"]
    assert len(exp["others"]) >= 3
    assert ep["end"] == pytest.approx(exp["fill_ts"], abs=1e-6)
    assert ep["lost"]["detected"] == ("missing" if exp["original"] is None else "unacknowledged")
    # the text summary says so too: the streams that went on are named as not blocked
    (line,) = [ln for s in summary(name) for ln in detail_lines(s) if ln.startswith("HOL (quic)")]
    free = line.split("; not blocked: ")[1]
    assert {int(n) for n in re.findall(r"HTTP/3 stream (\d+)", free)} == exp["others"]


def test_same_loss_over_http2_and_http3() -> None:
    """The same workload and drop: HTTP/2 over TCP makes other streams wait, HTTP/3 does not."""
    (tcp_ep,) = episodes("http2-lossy", "tcp")
    (quic_ep,) = episodes("http3-lossy", "quic")
    h2_lost = int(re.search(r"HTTP/2 stream (\d+)", tcp_ep["cause"]).group(1))
    assert len(tcp_ep["victims"]) >= 2 and all(s != h2_lost for s in _streams(victims(tcp_ep)))
    assert len(quic_ep["victims"]) == 1 and "not_blocked" in quic_ep


# --------------------------------------------------------------------------- WebSocket over TCP


def _ws_expected(name: str) -> tuple[Segment, Segment | None, list[Segment], dict]:
    path = sample(f"{name}.pcap")
    times = frame_times(path)
    segs = data_segments(path, 8765)
    fill = first_retransmission(segs)
    orig = next((s for s in segs if s.seq == fill.seq and s.frame < fill.frame), None)
    held = [s for s in segs if s.seq > fill.seq and s.frame < fill.frame and (orig is None or s.frame > orig.frame)]
    return fill, orig, held, times


def _ws_unit(number: int, size: int) -> str:
    return f"ws message #{number} s2c (binary, {size / 1000:.1f} KB)"


def test_websocket_messages_wait_behind_a_lost_message() -> None:
    """Eight server messages, the third one's segment dropped: at the client, the messages behind it
    waited for the retransmission, each named by its number, and the third is the cause.  tshark gives
    the messages in capture order (those behind the hole complete in the fill's frame) and their sizes:
    one message per segment, so the k-th held segment carries the k-th message after the lost one."""
    name = "websocket-lossy"
    fill, orig, held, times = _ws_expected(name)
    assert orig is None  # the client never saw the original
    rows = tshark_fields(sample(f"{name}.pcap"), ["frame.number", "websocket.payload_length_ext_16"],
                         display_filter="tcp.srcport==8765 && websocket.opcode==2",
                         options=["tcp.reassemble_out_of_order:TRUE"])
    sizes = [(int(f), int(n)) for f, ns in rows for n in ns.split(",")]
    before = sum(1 for f, _ in sizes if f < fill.frame)
    at_fill = [n for f, n in sizes if f == fill.frame]
    assert len(at_fill) == 1 + len(held) == 6
    assert all(s.length == 4 + n for s, n in zip([fill, *held], at_fill))  # 2+2 header bytes: one message each

    expected = {_ws_unit(before + 2 + i, at_fill[1 + i]): _ms(times[fill.frame] - s.ts) for i, s in enumerate(held)}
    (ep,) = episodes(name, "tcp")
    got = victims(ep)
    assert list(got) == list(expected)
    for u, wait in expected.items():
        assert abs(got[u] - wait) <= TOL_MS
    assert ep["cause"].startswith(_ws_unit(before + 1, at_fill[0]) + ": ")
    assert ep["view"].startswith("receiver")


def test_websocket_sender_view_names_messages() -> None:
    """At the server the receiver's wait is inferred from what was sent after the original: each message
    sent in between is a victim named by its number, waiting from when its segment was sent to the
    retransmission, and the message in the original is the cause.  tshark at the server gives the
    messages in the order they were sent (the retransmission is not dissected again) and their sizes;
    the client's capture of the same run (a receiver's view) must name the same cause and messages."""
    name = "websocket-lossy.server"
    fill, orig, held, times = _ws_expected(name)
    assert orig is not None
    rows = tshark_fields(sample(f"{name}.pcap"), ["frame.number", "websocket.payload_length_ext_16"],
                         display_filter="tcp.srcport==8765 && websocket.opcode==2",
                         options=["tcp.reassemble_out_of_order:TRUE"])
    sizes = {int(f): [int(n) for n in ns.split(",")] for f, ns in rows}
    assert all(len(n) == 1 for n in sizes.values()) and fill.frame not in sizes  # one message per segment
    number = {f: i for i, f in enumerate(sorted(sizes), 1)}
    expected = {_ws_unit(number[s.frame], sizes[s.frame][0]): _ms(times[fill.frame] - s.ts) for s in held}
    assert len(expected) == 5
    (ep,) = episodes(name, "tcp")
    got = victims(ep)
    assert list(got) == list(expected)
    for u, wait in expected.items():
        assert abs(got[u] - wait) <= TOL_MS
    assert ep["cause"].startswith(_ws_unit(number[orig.frame], sizes[orig.frame][0]) + ": ")
    assert ep["view"].startswith("sender")
    # the client's own capture of the same run: the same cause and victims, waits one path delay apart
    (client,) = episodes("websocket-lossy", "tcp")
    assert client["view"].startswith("receiver")
    assert client["cause"].split(":")[0] == ep["cause"].split(":")[0]
    assert list(victims(client)) == list(got)
    for u, wait in got.items():
        assert abs(wait - victims(client)[u]) < 1.0


# --------------------------------------------------------------------------- no false positives


CLEAN = ["tcp-handshake", "tls12-vs-tls13", "tls13-resumption-0rtt", "http2-multiplex", "http3-multiplex",
         "websocket", "grpc", "dns-then-connect", "push-feed", "tcp-fastopen"]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_captures_have_no_episodes(name: str) -> None:
    lost = tshark_fields(sample(f"{name}.pcap"), ["frame.number"],
                         display_filter="tcp.analysis.retransmission || tcp.analysis.out_of_order || "
                                        "tcp.analysis.lost_segment")
    assert lost == []  # tshark agrees nothing was lost
    assert episodes(name) == []


def test_keepalive_capture_has_only_http1_episodes() -> None:
    assert {ep["kind"] for ep in episodes("http1-keepalive")} == {"http1"}


# --------------------------------------------------------------------------- bounds


def test_hol_records_are_bounded() -> None:
    """A hostile sender can open holes forever: the records kept for the analysis stay bounded."""
    r = Reassembler(lambda data, off, span: None, lambda off, length, span: None)
    r.start(1000)
    seq, frame, ts = 1000, 0, 0.0
    for _ in range(MAX_HOL_RECORDS):  # a hole, a segment behind it, then the hole filled: 2 records each
        frame += 1
        ts += 0.001
        r.segment(seq + 10, b"b" * 10, 10, frame, ts)
        r.segment(seq, b"a" * 10, 10, frame + 1, ts + 0.0005)
        seq += 20
        frame += 1
        for _ in range(3):  # and retransmissions of old bytes
            r.segment(seq - 20, b"a" * 10, 10, frame, ts)
    assert len(r.hol) == MAX_HOL_RECORDS
    assert [k for k, _ in r.hol[:2]] == [HOL_FILL, HOL_HELD]
    assert len(r.resent) == MAX_RESENT_RECORDS
    assert r.offset == seq - 1000  # reassembly itself went on


def test_summary_keys_present_on_every_connection() -> None:
    for conn in summary("http2-lossy"):
        assert {"ledger", "rtt_ms", "hol"} <= conn.keys()


def test_retransmission_tells_the_decoder_which_frame_first_carried_the_bytes() -> None:
    """Hand-built edge case: bytes already delivered sent again report the frame of their original (what
    a sender-side capture shows of a loss); bytes never delivered (a hole's out-of-order segment, even
    twice) and new bytes report nothing."""
    calls = []
    r = Reassembler(lambda data, off, span: None, lambda off, length, span: None)
    r.on_resent = lambda since, frame, ts: calls.append((since, frame, ts))
    r.start(1000)
    r.segment(1000, b"a" * 10, 10, 1, 0.1)
    r.segment(1010, b"b" * 10, 10, 2, 0.2)
    r.segment(1030, b"d" * 10, 10, 3, 0.3)  # a hole before it: buffered
    r.segment(1030, b"d" * 10, 10, 4, 0.35)  # the same, not delivered yet either
    assert calls == []
    r.segment(1015, b"b" * 5 + b"c" * 10, 15, 5, 0.4)  # resends the end of frame 2's bytes, fills the hole
    assert calls == [(2, 5, 0.4)]
    assert r.offset == 40


def test_sender_view_marks_are_bounded() -> None:
    """Hand-built edge case: a peer sends frames forever and the TCP below resends something after each:
    the runs an HTTP/2 decoder remembers for it, and the marks it keeps, stay bounded."""
    dec = Http2Decoder(DecodeContext(conn=1, client=("127.0.0.1", 40000), server=("127.0.0.1", 80)))
    index = StreamIndex()
    offset = 0
    for frame in range(1, 3 * MAX_HOL_MARKS):
        # a DATA frame on each of two streams per run (no HEADERS: malformed, but framing goes on)
        data = b"".join(struct.pack(">I", 4)[1:] + b"\x00\x00" + struct.pack(">I", sid) + b"data" for sid in (1, 3))
        index.add(Span(offset, offset + len(data), frame, frame * 0.001, frame * 0.001, frame))
        dec.feed(1, data, offset, index)
        offset += len(data)
        dec.hol_resent(1, max(frame - 200, 1), frame, frame * 0.001)
        assert len(dec.sides[1].recent) <= RECENT_ITEMS
    assert len(dec.hol_sent) == MAX_HOL_MARKS
    assert {m[0] for m in dec.hol_sent} == {1, 3}
