"""The ledger and HOL episodes for a capture taken in the middle of the path, HTTP/2 streams held
mid-body, and TCP Fast Open, on the lab's real captures.

``http2-middle`` was captured between two delay lines (12 ms one way to the client, 8 ms to the
server) with the client's own capture of the same connection alongside; one server segment was
dropped before the capture point and one after it.  ``tcp-fastopen`` has curl's second connection
send its GET in the SYN.  Every expected number comes from tshark's view of the packets (frame
times, TCP sequence numbers, TLS records and their HTTP/2 frames) or from the lab's configuration
in the provenance note.
"""

from __future__ import annotations

import json

import pytest

from tests.support.analysis_run import episodes, summary
from tests.support.analysis_tshark import (
    SAMPLES,
    data_segments,
    frame_times,
    handshake_times,
    keylog_options,
    reassembled_records,
    sample,
)
from tests.support.capture import tshark_fields
from tests.test_analysis_ledger import _tcp_tls_http

TOL_MS = 0.002
NAME = "http2-middle"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _steps(conn: dict) -> dict[str, dict]:
    return {s["step"]: s for s in conn["ledger"]}


def _note() -> dict:
    return json.loads((SAMPLES / f"{NAME}.json").read_text())


# --------------------------------------------------------------------------- the capture point


def test_middle_capture_point_from_the_handshake() -> None:
    """SYN -> SYN/ACK is the server side of the round trip, SYN/ACK -> ACK the client side: neither is
    near zero, so the capture was taken in the middle, and the split is the lab's (2 x 12 ms, 2 x 8 ms)."""
    conn = summary(NAME)[0]
    syn, synack, ack = handshake_times(sample(f"{NAME}.pcap"))
    rtt = conn["rtt"]
    assert rtt["capture_point"] == "middle"
    assert rtt["server_side_ms"] == pytest.approx(_ms(synack - syn), abs=TOL_MS)
    assert rtt["client_side_ms"] == pytest.approx(_ms(ack - synack), abs=TOL_MS)
    assert conn["rtt_ms"] == pytest.approx(_ms(ack - syn), abs=TOL_MS)
    delays = _note()["middle_one_way_delays_ms"]
    assert abs(rtt["client_side_ms"] - 2 * delays["client_side"]) < 2.0
    assert abs(rtt["server_side_ms"] - 2 * delays["server_side"]) < 2.0
    assert "between the two" in rtt["assumption"]


def test_middle_ledger_is_moved_to_the_client() -> None:
    """Intervals from a client packet to a server packet grow by the client side of the round trip when
    seen from the client: the ledger adds it, and agrees with the client's own capture of the connection."""
    conn = summary(NAME)[0]
    t = _tcp_tls_http(NAME, 0)
    client_side = t["ack"] - t["synack"]
    server_side = t["synack"] - t["syn"]
    steps = _steps(conn)
    assert [s["step"] for s in conn["ledger"]] == ["tcp", "tls", "request"]
    assert steps["tcp"]["rtts"] == 1 and steps["tcp"]["ms"] == pytest.approx(_ms(t["ack"] - t["syn"]), abs=TOL_MS)
    assert steps["tls"]["rtts"] == 1
    assert steps["tls"]["ms"] == pytest.approx(_ms(t["server_finished"] - t["client_hello"] + client_side), abs=TOL_MS)
    gap = t["response"] - t["request"]
    assert steps["request"]["ms"] == pytest.approx(_ms(gap + client_side), abs=TOL_MS)
    assert steps["request"]["server_ms"] == pytest.approx(max(_ms(gap - server_side), 0.0), abs=TOL_MS)
    # the client's own capture of the same connection, as tshark times it
    c = _tcp_tls_http(f"{NAME}.client", 0)
    client_view = {"tcp": c["ack"] - c["syn"], "tls": c["server_finished"] - c["client_hello"],
                   "request": c["response"] - c["request"]}
    for step, seconds in client_view.items():
        assert abs(steps[step]["ms"] - _ms(seconds)) < 1.0, step  # the delay lines jitter well under 1 ms
    # uncorrected, the middle's own intervals would be short by the client side (~24 ms)
    assert _ms(t["server_finished"] - t["client_hello"]) < steps["tls"]["ms"] - 20


# --------------------------------------------------------------------------- HOL in the middle


def _records_wait(path: str, fill_frame: int, options: list[str]) -> tuple[list[int], dict[int, float], dict]:
    """From tshark: the streams of the record(s) holding the resent bytes (the cause) and every other
    stream's longest wait among the records completed by the fill."""
    times = frame_times(path)
    records = reassembled_records(path, fill_frame, options)
    cause = sorted({s for r in records if times[fill_frame] - max(times[f] for f in r.frames) < 1e-9
                    for s in r.streams})
    waits: dict[int, float] = {}
    for r in records:
        wait = _ms(times[fill_frame] - max(times[f] for f in r.frames))
        for s in r.streams:
            if s not in cause:
                waits[s] = max(waits.get(s, 0.0), wait)
    return cause, waits, {"records": records, "times": times}


def _victim_streams(ep: dict) -> dict[int, float]:
    return {int(v["unit"].split()[2]): v["blocked_ms"] for v in ep["victims"]}


def test_middle_sees_a_gap_for_the_drop_before_it_and_two_copies_for_the_drop_after_it() -> None:
    """The lab dropped one segment on each side of the capture point (the note says which stream bytes):
    the one dropped before it is a hole there, timed from the out-of-order arrivals (a receiver's view);
    the one dropped after it was seen twice, and the client's wait is inferred (a sender's view)."""
    path = sample(f"{NAME}.pcap")
    dropped = {d["at"]: int(d["what"].split("rel_seq=")[1].split()[0]) for d in _note()["delay_line"]["dropped"]}
    eps = {ep["lost"]["offset"]: ep for ep in episodes(NAME, "tcp")}
    assert sorted(eps) == sorted(dropped.values())
    segs = data_segments(path, 443)
    frames = {s.frame: s for s in segs}

    before = eps[dropped["server"]]
    assert before["view"].startswith("receiver")
    (fill,) = [frames[f] for f in before["lost"]["resent_frames"]]
    assert fill.seq - 1 == dropped["server"] and not any(s.seq == fill.seq and s.frame < fill.frame for s in segs)
    cause, waits, _ = _records_wait(path, fill.frame, keylog_options(NAME))
    assert _victim_streams(before) == pytest.approx(waits, abs=TOL_MS) and waits
    assert f"HTTP/2 stream {cause[0]} " in before["cause"]

    after = eps[dropped["client"]]
    assert after["view"].startswith("sender")
    orig = next(s for s in segs if s.seq - 1 == dropped["client"])
    resent = [s for s in segs if s.seq == orig.seq and s.frame > orig.frame]
    assert after["lost"]["original_frame"] == orig.frame
    assert after["lost"]["resent_frames"] == [s.frame for s in resent]
    times = frame_times(path)
    start = min(s.ts for s in segs if s.seq > orig.seq and orig.frame < s.frame < resent[-1].frame)
    assert after["duration_ms"] == pytest.approx(_ms(times[resent[-1].frame] - start), abs=TOL_MS)


def test_middle_episodes_agree_with_the_client_capture() -> None:
    """The same two losses seen at the client: both are holes there (receiver's view).  With constant
    one-way delays, the wait measured in the middle for the loss before it is the client's wait, and so
    is the one inferred for the loss after it (a sender's view there): same cause, same victims, each
    victim's wait within the delay lines' jitter of the client's."""
    middle = {ep["lost"]["offset"]: ep for ep in episodes(NAME, "tcp")}
    client = {ep["lost"]["offset"]: ep for ep in episodes(f"{NAME}.client", "tcp")}
    assert middle.keys() == client.keys()
    assert sorted(ep["view"].split(":")[0] for ep in middle.values()) == ["receiver", "sender"]
    for offset, ep in middle.items():
        other = client[offset]
        assert other["view"].startswith("receiver")
        assert ep["cause"] == other["cause"]
        assert set(_victim_streams(ep)) == set(_victim_streams(other))
        for sid, wait in _victim_streams(ep).items():
            assert abs(wait - _victim_streams(other)[sid]) < 1.0, (ep["view"], sid)
        if ep["view"].startswith("receiver"):
            assert abs(ep["duration_ms"] - other["duration_ms"]) < 1.0


def test_middle_sender_view_names_streams_held_mid_body() -> None:
    """The loss after the capture point, seen twice in the middle: every stream with an HTTP/2 frame in a
    record sent after the original and before the retransmission is a victim (mid-body DATA included, not
    only HEADERS or END_STREAM), waiting from its earliest such record's last byte to the retransmission.
    Expected from tshark in the middle, and checked against the client's own capture (tshark's per-record
    waits there): the inferred waits are what the client lived."""
    path = sample(f"{NAME}.pcap")
    segs = data_segments(path, 443)
    times = frame_times(path)
    dropped = {d["at"]: int(d["what"].split("rel_seq=")[1].split()[0]) for d in _note()["delay_line"]["dropped"]}
    orig = next(s for s in segs if s.seq - 1 == dropped["client"])
    resent = next(s for s in segs if s.seq == orig.seq and s.frame > orig.frame)
    rows = tshark_fields(path, ["frame.number", "http2.streamid", "http2.type", "http2.flags.end_stream"],
                         display_filter="tcp.srcport==443 && http2", options=keylog_options(NAME))
    completed = [(int(f), [int(x) for x in sids.split(",")], types.split(","), ends.split(","))
                 for f, sids, types, ends in rows if orig.frame <= int(f) < resent.frame]
    assert all(len(sids) == len(types) == len(ends) for _, sids, types, ends in completed)  # DATA/HEADERS only
    cause = sorted(set(completed[0][1]))  # the first record completed from the original on held the lost bytes
    expected: dict[int, float] = {}
    heads_or_ends: dict[int, float] = {}  # what naming streams by HEADERS / END_STREAM frames alone gives
    for f, sids, types, ends in completed[1:]:
        wait = _ms(times[resent.frame] - times[f])
        for sid, ftype, end in zip(sids, types, ends):
            if sid in cause or ftype not in ("0", "1"):
                continue
            expected[sid] = max(expected.get(sid, 0.0), wait)
            if ftype == "1" or end == "1":
                heads_or_ends[sid] = max(heads_or_ends.get(sid, 0.0), wait)
    (ep,) = [e for e in episodes(NAME, "tcp") if e["lost"]["offset"] == dropped["client"]]
    assert ep["view"].startswith("sender")
    assert f"HTTP/2 stream {cause[0]} " in ep["cause"]
    got = _victim_streams(ep)
    assert got == pytest.approx(expected, abs=TOL_MS) and len(got) >= 2
    assert any(heads_or_ends.get(s, 0.0) < w - 1.0 for s, w in expected.items())  # mid-body records count

    client = sample(f"{NAME}.client.pcap")
    (fill,) = [s for s in data_segments(client, 443) if s.seq == orig.seq]
    client_cause, client_waits, _ = _records_wait(client, fill.frame, keylog_options(NAME))
    assert client_cause == cause and client_waits.keys() == got.keys()
    for sid, wait in got.items():
        assert abs(wait - client_waits[sid]) < 1.0, sid  # the delay lines jitter well under 1 ms


def test_streams_held_mid_body_are_victims_with_their_own_wait() -> None:
    """At the client, the records held behind the second loss carry the middle of two other streams'
    bodies: each stream's wait is its longest-waiting record's (tshark), even when the record with its
    HEADERS or END_STREAM waited less."""
    name = f"{NAME}.client"
    path = sample(f"{name}.pcap")
    segs = data_segments(path, 443)
    dropped = {d["at"]: int(d["what"].split("rel_seq=")[1].split()[0]) for d in _note()["delay_line"]["dropped"]}
    (fill,) = [s for s in segs if s.seq - 1 == dropped["client"]]  # only the retransmission reached the client
    cause, waits, info = _records_wait(path, fill.frame, keylog_options(NAME))
    (ep,) = [e for e in episodes(name, "tcp") if e["lost"]["offset"] == dropped["client"]]
    got = _victim_streams(ep)
    assert got == pytest.approx(waits, abs=TOL_MS)
    assert len(got) >= 2 and not set(cause) & set(got)
    # what naming by HEADERS/END_STREAM alone would have said: shorter waits
    times, records = info["times"], info["records"]
    marked = {}
    for r in records:
        wait = _ms(times[fill.frame] - max(times[f] for f in r.frames))
        for s in r.heads_or_ends:
            marked[s] = max(marked.get(s, 0.0), wait)
    assert any(marked.get(s, 0.0) < w - 1.0 for s, w in waits.items())


# --------------------------------------------------------------------------- TCP Fast Open


def test_tcp_fast_open_request_in_the_syn() -> None:
    """tshark: the first connection's SYN asks for a cookie (empty TFO option) and the SYN/ACK brings
    one; the second connection's SYN carries that cookie and the GET.  Its ledger: TCP costs 0 round
    trips, and the request's time to first byte is counted from the SYN."""
    name = "tcp-fastopen"
    path = sample(f"{name}.pcap")
    rows = tshark_fields(path, ["tcp.stream", "frame.time_epoch", "tcp.flags.ack", "tcp.len", "tcp.options.tfo.request",
                                "tcp.options.tfo.cookie", "http.request"], display_filter="tcp.flags.syn==1")
    syns = {int(r[0]): r for r in rows if r[2] == "0"}
    synacks = {int(r[0]): r for r in rows if r[2] == "1"}
    assert syns[0][4] == "1" and syns[0][3] == "0"  # cookie request, no data
    cookie = synacks[0][5]
    assert cookie
    assert syns[1][5] == cookie and int(syns[1][3]) > 0 and syns[1][6] == "1"  # the cookie and the GET in the SYN
    response = float(tshark_fields(path, ["frame.time_epoch"], display_filter="tcp.stream==1 && http.response")[0][0])
    _, synack1, ack1 = handshake_times(path, 1)

    conns = summary(name)
    first, second = (_steps(c) for c in conns)
    syn0, synack0, ack0 = handshake_times(path, 0)
    assert first["tcp"]["rtts"] == 1 and first["tcp"]["ms"] == pytest.approx(_ms(ack0 - syn0), abs=TOL_MS)
    assert second["tcp"]["rtts"] == 0 and second["tcp"]["ms"] == 0.0
    assert second["tcp"]["tfo"] is True and second["tcp"]["syn_data"] == int(syns[1][3])
    assert conns[1]["tcp"]["options"]["client"]["syn_data"] == int(syns[1][3])
    assert second["request"]["ms"] == pytest.approx(_ms(response - float(syns[1][1]) + ack1 - synack1), abs=TOL_MS)
    # no round trip before the request could leave: nothing for reusing a connection to save
    assert not any(w["text"].startswith("reusing") for w in conns[1]["what_if"])
