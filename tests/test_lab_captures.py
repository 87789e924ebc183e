"""The committed lab captures tell the story their walkthroughs claim, as tshark reads them.

Every number is taken from the capture by tshark (the oracle) and compared with the
lab's configuration recorded in the capture's provenance note (one-way delay, drop
rules, what the delay line dropped), never with numbers copied from an earlier run.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.capture import tshark_fields

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"
CLIENT, SERVER = "10.99.0.1", "10.99.0.2"
OOO = "tcp.reassemble_out_of_order:TRUE"


def sample(name: str) -> tuple[Path, Path | None, dict]:
    """(pcap, key log or None, provenance) of a committed capture."""
    prov = json.loads((SAMPLES / f"{name}.json").read_text())
    keys = SAMPLES / prov["keylog"] if prov["keylog"] else None
    return SAMPLES / f"{name}.pcap", keys, prov


def fields(name: str, flds: list[str], dfilter: str) -> list[list[str]]:
    pcap, keys, _ = sample(name)
    opts = [OOO] + ([f"tls.keylog_file:{keys}"] if keys else [])
    return tshark_fields(str(pcap), flds, display_filter=dfilter, options=opts)


def irtts(name: str) -> dict[int, float]:
    """tshark's initial RTT per TCP stream, in ms."""
    out: dict[int, float] = {}
    for stream, rtt in fields(name, ["tcp.stream", "tcp.analysis.initial_rtt"], "tcp.analysis.initial_rtt"):
        out.setdefault(int(stream), float(rtt) * 1000)
    return out


def h2_statuses(name: str) -> dict[int, str]:
    """:status of each response, by HTTP/2 stream (HEADERS frames in a packet pair up with its statuses in order)."""
    out = {}
    for sids, types, statuses in fields(name, ["http2.streamid", "http2.type", "http2.headers.status"], "http2.headers.status"):
        headers = [int(s) for s, t in zip(sids.split(","), types.split(",")) if t == "1"]
        out.update(zip(headers, statuses.split(",")))
    return out


def rtt_ms(name: str) -> float:
    return 2 * sample(name)[2]["one_way_delay_ms"]


ALL = ["tcp-handshake", "tls12-vs-tls13", "http2-multiplex", "http2-lossy", "http3-lossy"]


@pytest.mark.parametrize("name", ALL)
def test_sample_is_small_and_only_lab_traffic(name: str) -> None:
    pcap, keys, prov = sample(name)
    assert pcap.stat().st_size < 300_000
    assert prov["size_bytes"] == pcap.stat().st_size
    # Only the two lab hosts, only IPv4 (no ARP, no IPv6 noise): the capture is the scenario.
    rows = tshark_fields(str(pcap), ["ip.src", "ip.dst"], display_filter="frame")
    assert rows and all({r[0], r[1]} == {CLIENT, SERVER} for r in rows)
    assert prov["capture_point"].startswith("client")


@pytest.mark.parametrize("name", ["tcp-handshake", "tls12-vs-tls13", "http2-multiplex", "http2-lossy"])
def test_tcp_initial_rtt_is_twice_the_one_way_delay(name: str) -> None:
    measured = irtts(name)
    assert measured
    for rtt in measured.values():
        # The delay line holds each frame for the one-way delay; its own work adds well under 2 ms.
        assert rtt_ms(name) <= rtt < rtt_ms(name) + 2.0


def test_tcp_handshake_one_rtt_before_data_then_teardown() -> None:
    rows = fields("tcp-handshake", ["frame.time_epoch", "ip.src", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.len"], "tcp")
    t = [float(r[0]) for r in rows]
    syn = [i for i, r in enumerate(rows) if r[2] == "1" and r[3] == "0"]
    assert len(syn) == 1 and syn[0] == 0
    first_data = next(i for i, r in enumerate(rows) if int(r[5]) > 0)
    assert rows[first_data][1] == CLIENT
    # The request leaves one RTT after the SYN: the handshake costs exactly one round trip.
    assert round((t[first_data] - t[0]) / (rtt_ms("tcp-handshake") / 1000)) == 1
    # The response comes one more RTT later; both sides FIN and the last ACK closes it.
    first_reply = next(i for i, r in enumerate(rows) if r[1] == SERVER and int(r[5]) > 0)
    assert round((t[first_reply] - t[0]) / (rtt_ms("tcp-handshake") / 1000)) == 2
    fins = [r[1] for r in rows if r[4] == "1"]
    assert sorted(fins) == sorted([CLIENT, SERVER])
    assert rows[-1][4] == "0" and rows[-1][3] == "1"
    http = fields("tcp-handshake", ["http.request.method", "http.response.code"], "http")
    assert [r for r in http if r[0]] == [["GET", ""]] and [r[1] for r in http if r[1]] == ["200"]


def _client_hello_to_request_rtts(name: str) -> dict[int, float]:
    """Per TCP stream: (first decrypted HTTP request time - ClientHello time) in RTTs."""
    hello = {int(s): float(t) for t, s in fields(name, ["frame.time_epoch", "tcp.stream"], "tls.handshake.type == 1")}
    req: dict[int, float] = {}
    for t, s in fields(name, ["frame.time_epoch", "tcp.stream"], "http.request"):
        req.setdefault(int(s), float(t))
    rtt = rtt_ms(name) / 1000
    return {s: (req[s] - hello[s]) / rtt for s in hello}


def test_tls12_costs_two_rtt_and_tls13_one() -> None:
    # ServerHello's negotiated version: 1.2 via legacy_version, 1.3 via supported_versions.
    rows = fields("tls12-vs-tls13", ["tcp.stream", "tls.handshake.version", "tls.handshake.extensions.supported_version"],
                  "tls.handshake.type == 2")
    versions = {int(s): (sv or v) for s, v, sv in rows}
    assert versions == {0: "0x0303", 1: "0x0304"}
    rtts = _client_hello_to_request_rtts("tls12-vs-tls13")
    assert round(rtts[0]) == 2 and round(rtts[1]) == 1
    # Decryption with the committed key log works for both: both responses are visible.
    codes = fields("tls12-vs-tls13", ["tcp.stream", "http.response.code"], "http.response")
    assert sorted(codes) == [["0", "200"], ["1", "200"]]


def test_http2_multiplex_six_streams_on_one_connection_with_hpack_savings() -> None:
    assert set(irtts("http2-multiplex")) == {0}
    req = fields("http2-multiplex", ["http2.streamid", "http2.type", "http2.length", "http2.header.name"],
                 "http2.type == 1 && ip.src == 10.99.0.1")
    streams = [int(r[0]) for r in req]
    assert streams == [1, 3, 5, 7, 9, 11]
    sizes = [int(r[2]) for r in req]
    # Six requests with the same headers: after the first, HPACK's dynamic table turns the
    # repeated fields into index references, so every later block is much smaller.
    assert all(s < sizes[0] / 2 for s in sizes[1:])
    assert h2_statuses("http2-multiplex") == {s: "200" for s in (1, 3, 5, 7, 9, 11)}
    assert not fields("http2-multiplex", ["frame.number"], "tcp.analysis.retransmission || tcp.analysis.lost_segment")


def test_http2_lossy_one_retransmission_and_cross_stream_hol() -> None:
    _, _, prov = sample("http2-lossy")
    dropped = prov["delay_line"]["dropped"]
    assert len(dropped) == 1 and dropped[0]["dir"] == "s2c"
    assert [r[0] for r in fields("http2-lossy", ["frame.number"], "tcp.analysis.lost_segment")]  # the gap is seen
    retx = fields("http2-lossy", ["frame.number", "tcp.seq", "tcp.len", "ip.src", "http2.streamid", "http2.type"],
                  "tcp.analysis.retransmission || tcp.analysis.fast_retransmission")
    assert len(retx) == 1
    frame, seq, length, src, sids, types = retx[0]
    assert src == SERVER
    # The retransmission carries exactly the bytes the delay line dropped (tshark's relative
    # sequence numbers count the SYN as 0, the delay line counts payload bytes from 0).
    what = dropped[0]["what"]
    rel = int(what.split("rel_seq=")[1].split()[0])
    assert int(seq) == rel + 1 and f"len={length}" in what
    # Head-of-line blocking across streams: the one retransmitted segment let tshark finish
    # DATA frames of several streams at once, whose bytes had arrived before it.
    data_streams = {int(s) for s, t in zip(sids.split(","), types.split(",")) if t == "0"}
    assert len(data_streams) >= 2
    assert h2_statuses("http2-lossy") == {s: "200" for s in (1, 3, 5, 7, 9, 11)}


def _quic_stream_frames(name: str) -> list[tuple[int, str, int, int, int, int]]:
    """(frame, src, quic packet number, stream id, offset, length) for every STREAM frame.

    tshark lists a field only when present (offset 0 and implicit lengths are absent),
    so each frame's OFF/LEN bits say which list entries belong to which STREAM frame.
    """
    out = []
    rows = fields(name, ["frame.number", "ip.src", "quic.packet_number", "quic.stream.stream_id", "quic.stream.off",
                         "quic.stream.offset", "quic.stream.len", "quic.stream.length"], "quic.stream.stream_id")
    for frame, src, pns, sids, offbits, offs, lenbits, lens in rows:
        offs_it = iter(offs.split(",")) if offs else iter(())
        lens_it = iter(lens.split(",")) if lens else iter(())
        pn = int(pns.split(",")[-1])  # 1-RTT packets are alone or last in a datagram here
        for sid, ob, lb in zip(sids.split(","), offbits.split(","), lenbits.split(",")):
            off = int(next(offs_it)) if ob in ("1", "True") else 0
            ln = int(next(lens_it)) if lb in ("1", "True") else -1
            out.append((int(frame), src, pn, int(sid), off, ln))
    return out


def test_http3_lossy_one_lost_packet_stalls_only_its_stream() -> None:
    _, _, prov = sample("http3-lossy")
    dropped = prov["delay_line"]["dropped"]
    assert len(dropped) == 1 and dropped[0]["dir"] == "s2c"
    # QUIC's combined handshake: the server's first reply comes one RTT (plus its crypto work) after the Initial.
    assert rtt_ms("http3-lossy") <= prov["measured"]["quic_first_reply_ms"] < rtt_ms("http3-lossy") + 25
    # Server packet numbers in the 1-RTT space have exactly one hole: the dropped packet.
    # (A datagram may coalesce Initial/Handshake packets before its 1-RTT packet, which comes last.)
    pns = sorted({int(p.split(",")[-1]) for (p,) in fields("http3-lossy", ["quic.packet_number"], f"ip.src == {SERVER} && quic.short")})
    missing = sorted(set(range(pns[0], pns[-1] + 1)) - set(pns))
    assert len(missing) == 1
    # Per response stream (client-initiated bidi: id % 4 == 0), walk the data in arrival order;
    # a stream is stalled when data arrives beyond a hole that is filled later.
    s2c = [f for f in _quic_stream_frames("http3-lossy") if f[1] == SERVER and f[3] % 4 == 0]
    assert all(f[5] >= 0 for f in s2c)
    stalled = set()
    end: dict[int, int] = defaultdict(int)
    for _, _, _, sid, off, ln in s2c:
        if off > end[sid]:
            stalled.add(sid)
        end[sid] = max(end[sid], off + ln)
    assert len(stalled) == 1, stalled
    victims = {sid for sid in end if sid not in stalled}
    assert len(victims) == 5
    # Every response is complete: HEADERS + DATA frame headers + the 16000-byte body.
    assert all(e > 16000 for e in end.values()) and len(end) == 6
