"""The committed lab captures tell the story their walkthroughs claim, as tshark reads them.

Every number is taken from the capture by tshark (the oracle) and compared with the
lab's configuration recorded in the capture's provenance note (one-way delay, drop
rules, what the delay line dropped), never with numbers copied from an earlier run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
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


def fields(name: str, flds: list[str], dfilter: str, *, server: bool = False) -> list[list[str]]:
    """tshark fields of a committed capture (``server=True``: its server-side capture)."""
    pcap, keys, prov = sample(name)
    if server:
        pcap = SAMPLES / prov["server_capture"]
    opts = [OOO] + ([f"tls.keylog_file:{keys}"] if keys else [])
    return tshark_fields(str(pcap), flds, display_filter=dfilter, options=opts)


def rows(name: str, flds: list[str], dfilter: str, extra: tuple[str, ...] = ()) -> list[list[list[str]]]:
    """Like :func:`fields` but every field is a list (aggregated with '|', since header values hold commas)."""
    pcap, keys, _ = sample(name)
    cmd = ["tshark", "-n", "-r", str(pcap), "-o", OOO, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=|", "-Y", dfilter, *extra]
    if keys:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    for f in flds:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    return [[v.split("|") if v else [] for v in line.split("\t")] for line in out.splitlines()]


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


def flights_before(name: str, request_filter: str) -> int:
    """Round trips the client waited before the first packet matching ``request_filter`` left.

    Packets up to that one are grouped into flights (runs of one direction); with a 40 ms
    path no reply can come back inside a run, so each client flight before the request's
    own flight is one round trip spent on setup.  Counts what happened, whatever the
    server's processing time.
    """
    first = int(fields(name, ["frame.number"], request_filter)[0][0])
    runs: list[str] = []
    for frame, src in fields(name, ["frame.number", "ip.src"], f"frame.number <= {first}"):
        if not runs or runs[-1] != src:
            runs.append(src)
    assert runs[0] == CLIENT and runs[-1] == CLIENT
    return runs.count(CLIENT) - 1


def rtt_ms(name: str) -> float:
    return 2 * sample(name)[2]["one_way_delay_ms"]


ALL = ["tcp-handshake", "tls12-vs-tls13", "tls13-resumption-0rtt", "http1-keepalive", "http2-multiplex", "http2-lossy",
       "http2-tail-loss", "http2-flow-control", "http3-lossy", "http3-multiplex", "websocket", "websocket-lossy", "push-feed", "grpc", "dns-then-connect",
       "tcp-fastopen"]
#: captured in the middle of the path, with the client's capture alongside (tests/test_analysis_middle.py)
MIDDLE = ["http2-middle"]
TCP = [n for n in ALL if not n.startswith("http3")]
LOSSY = ["http2-lossy", "http2-tail-loss", "http3-lossy", "websocket-lossy"]


def test_every_scenario_has_a_committed_capture() -> None:
    assert sorted(p.stem for p in SAMPLES.glob("*.json")) == sorted(ALL + MIDDLE)
    assert sorted(p.name for p in SAMPLES.glob("*.client.pcap")) == sorted(f"{n}.client.pcap" for n in MIDDLE)
    assert sorted(p.name for p in SAMPLES.glob("*.server.pcap")) == sorted(f"{n}.server.pcap" for n in LOSSY)


@pytest.mark.parametrize("name", ALL)
def test_sample_is_small_and_only_lab_traffic(name: str) -> None:
    pcap, keys, prov = sample(name)
    assert pcap.stat().st_size < 300_000
    assert prov["size_bytes"] == pcap.stat().st_size
    # Only the two lab hosts, only IPv4 (no ARP, no IPv6 noise): the capture is the scenario.
    rows = tshark_fields(str(pcap), ["ip.src", "ip.dst"], display_filter="frame")
    assert rows and all({r[0], r[1]} == {CLIENT, SERVER} for r in rows)
    assert prov["capture_point"].startswith("client")
    # Every frame the delay line forwarded towards the client is in the client's capture.
    assert len([r for r in rows if r[0] == SERVER]) == prov["delay_line"]["forwarded"]["s2c"]


@pytest.mark.parametrize("name", TCP)
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
    # Counted in flights from the SYN: TCP 1 + TLS 1.2 2 = 3 round trips before the first request.
    assert flights_before("tls12-vs-tls13", "http.request") == 3
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
    # QUIC's combined handshake: the server's first reply comes one RTT (plus its crypto work) after
    # the Initial, and the first request leaves right after it: one round trip, not TCP+TLS's two.
    assert rtt_ms("http3-lossy") <= prov["measured"]["quic_first_reply_ms"]
    assert flights_before("http3-lossy", f"ip.src == {CLIENT} && quic.stream.stream_id == 0") == 1
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


def test_tls13_resumption_sends_the_request_as_early_data() -> None:
    hs = rows("tls13-resumption-0rtt", ["frame.number", "tcp.stream", "tls.handshake.type", "tls.handshake.extension.type"], "tls.handshake")
    by_stream: dict[int, list[tuple[int, list[str], list[str]]]] = defaultdict(list)
    for frame, stream, types, exts in hs:
        by_stream[int(stream[0])].append((int(frame[0]), types, exts))
    assert set(by_stream) == {0, 1}
    full, resumed = by_stream[0], by_stream[1]
    assert "11" in [t for _, ts, _ in full for t in ts]  # the full handshake carries the Certificate
    assert "11" not in [t for _, ts, _ in resumed for t in ts]  # resumption does not
    hello_frame, _, hello_exts = resumed[0]
    assert {"41", "42"} <= set(hello_exts)  # pre_shared_key and early_data offered
    server_exts = [e for _, ts, es in resumed[1:2] for e in es]
    assert "41" in server_exts and "42" in server_exts  # PSK chosen, early data accepted (EncryptedExtensions)
    assert "5" in [t for _, ts, _ in resumed for t in ts]  # EndOfEarlyData
    # The request of the resumed connection is in the ClientHello's own segment: 0-RTT.
    req = {int(s): int(f) for f, s in fields("tls13-resumption-0rtt", ["frame.number", "tcp.stream"], "http.request")}
    assert req[1] == hello_frame
    # So its response arrives one RTT after the ClientHello, against two on the full handshake.
    rtt = rtt_ms("tls13-resumption-0rtt") / 1000
    t = {int(f): float(ts) for f, ts in fields("tls13-resumption-0rtt", ["frame.number", "frame.time_epoch"], "frame")}
    resp = {int(s): int(f) for f, s in fields("tls13-resumption-0rtt", ["frame.number", "tcp.stream"], "http.response")}
    assert round((t[resp[0]] - t[full[0][0]]) / rtt) == 2
    assert round((t[resp[1]] - t[hello_frame]) / rtt) == 1


def test_http1_keepalive_vs_connection_per_request_vs_parallel_vs_pipelined() -> None:
    reqs = rows("http1-keepalive", ["frame.number", "frame.time_epoch", "tcp.stream", "http.request.uri"], "http.request")
    by_stream: dict[int, list[tuple[int, float, list[str]]]] = defaultdict(list)
    for f, t, s, uris in reqs:
        by_stream[int(s[0])].append((int(f[0]), float(t[0]), uris))
    assert sorted(by_stream) == list(range(8))
    assert len(by_stream[0]) == 3  # keep-alive: three requests, one connection
    assert all(len(by_stream[s]) == 1 for s in range(1, 4))  # one request per connection
    # Six requests, at most three connections: each connection carries two, and its second
    # request waits until the first response on it is complete (no free connection before).
    resp_t = defaultdict(list)
    for t, s in fields("http1-keepalive", ["frame.time_epoch", "tcp.stream"], "http.response"):
        resp_t[int(s)].append(float(t))
    for s in (4, 5, 6):
        assert len(by_stream[s]) == 2
        assert by_stream[s][1][1] >= resp_t[s][0]
    syn = {int(s): float(t) for t, s in fields("http1-keepalive", ["frame.time_epoch", "tcp.stream"], "tcp.flags.syn==1 && tcp.flags.ack==0")}
    rtt = rtt_ms("http1-keepalive") / 1000
    # Parallel connections: all three SYNs leave together (within a few ms), far less than an RTT apart.
    assert max(syn[s] for s in (4, 5, 6)) - min(syn[s] for s in (4, 5, 6)) < rtt / 4
    # Connection per request: each request pays a handshake RTT; keep-alive pays one for all three.
    resp = defaultdict(list)
    for t, s in fields("http1-keepalive", ["frame.time_epoch", "tcp.stream"], "http.response"):
        resp[int(s)].append(float(t))
    keepalive = (resp[0][-1] - syn[0]) / rtt
    per_request = (resp[3][-1] - syn[1]) / rtt
    assert round(keepalive) == 4 and round(per_request) == 6
    # Pipelining: all three requests in one segment; responses come back in request order, the two
    # small ones only after every byte of the 40 kB one (head-of-line blocking inside HTTP/1.1).
    ((frame, t_req, uris),) = by_stream[7]
    assert uris == ["/big.bin", "/obj/1.txt", "/obj/2.txt"]
    # (tshark pairs every pipelined response with the last request, so the body says which is which:
    # each lab object's text starts with its own path.)
    pipelined = fields("http1-keepalive", ["frame.time_epoch", "http.content_length", "http.file_data"], "tcp.stream == 7 && http.response")
    assert [(int(n), body[:11]) for _, n, body in pipelined] == [(40000, "/big.bin ne"), (4000, "/obj/1.txt "), (4000, "/obj/2.txt ")]
    # The small responses needed several RTTs, as long as the big one ahead of them.
    assert (float(pipelined[1][0]) - t_req) / rtt > 2


def test_websocket_masking_pings_and_close() -> None:
    up = fields("websocket", ["http.response.code", "http.upgrade"], "http.response")
    assert up == [["101", "websocket"]]
    frames = fields("websocket", ["ip.src", "websocket.opcode", "websocket.mask", "websocket.payload.close.status_code"], "websocket")
    # Client->server frames are masked, server->client frames never are (RFC 6455 §5.1).
    assert all(m == ("1" if src == CLIENT else "0") for src, _, m, _ in frames)
    ops = defaultdict(list)
    for src, op, _, _ in frames:
        ops["c2s" if src == CLIENT else "s2c"].append(int(op))
    assert sorted(ops["c2s"]) == sorted([1, 1, 1, 2, 9, 10, 8])  # 3 text, 1 binary, ping, pong, close
    assert sorted(ops["s2c"]) == sorted([1, 1, 1, 2, 9, 10, 8])
    assert [c for *_, c in frames if c] == ["1000", "1000"]


def test_push_feed_latency_and_requests_per_update() -> None:
    _, _, prov = sample("push-feed")
    one_way = prov["one_way_delay_ms"]
    latency: dict[int, list[float]] = defaultdict(list)
    for t, stream, payload in fields("push-feed", ["frame.time_epoch", "tcp.stream", "tcp.payload"], "ip.src == 10.99.0.2 && tcp.len > 0"):
        text = bytes.fromhex(payload).decode("latin-1")
        for seq, published in re.findall(r'"seq":(\d+),"t":([\d.]+)', text):
            latency[int(stream)].append((float(t) - float(published)) * 1000)
    assert sorted(latency) == [0, 1, 2, 3] and all(len(v) == 4 for v in latency.values())
    # Pushes (long poll already waiting, SSE, WebSocket) arrive one one-way delay after publication.
    for stream in (1, 2, 3):
        assert all(one_way <= ms < one_way + 3 for ms in latency[stream]), latency[stream]
    # Short polling waits for the next poll: slower on average, and it asks more often than there is news.
    assert sum(latency[0]) / 4 > sum(latency[1]) / 4 + one_way
    polls = fields("push-feed", ["http.request.uri", "tcp.stream"], "http.request")
    assert len([u for u, s in polls if s == "0"]) > 4 and len([u for u, s in polls if s == "1"]) == 4
    empty = fields("push-feed", ["http.file_data"], "tcp.stream == 0 && http.response")
    assert ["[]"] in empty
    sse = fields("push-feed", ["http.content_type"], "tcp.stream == 2 && http.response")
    assert sse == [["text/event-stream"]]
    ws = fields("push-feed", ["websocket.opcode"], "tcp.stream == 3 && websocket")
    assert [o for (o,) in ws].count("1") == 4


def test_grpc_four_call_kinds() -> None:
    out = rows("grpc", ["ip.src", "http2.streamid", "http2.type", "grpc.message_length", "http2.header.name", "http2.header.value"],
               "http2", ("-d", "tcp.port==50051,http2"))
    paths, status = {}, {}
    msgs: dict[tuple[int, str], int] = defaultdict(int)
    for src, sids, types, lengths, names, values in out:
        streams = {int(s) for s, t in zip(sids, types) if t in ("0", "1")}
        if not streams:
            continue
        assert len(streams) == 1  # one call at a time: each packet's frames belong to one call
        (sid,) = streams
        hdr = dict(zip(names, values))
        if ":path" in hdr:
            paths[sid] = hdr[":path"]
        if "grpc-status" in hdr:
            status[sid] = hdr["grpc-status"]
        msgs[(sid, "c2s" if src[0] == CLIENT else "s2c")] += len(lengths)
    assert paths == {1: "/lab.Quotes/GetQuote", 3: "/lab.Quotes/StreamQuotes", 5: "/lab.Quotes/RecordTrades", 7: "/lab.Quotes/Chat"}
    assert status == {1: "0", 3: "0", 5: "0", 7: "0"}
    # unary 1->1, server streaming 1->4, client streaming 3->1, bidirectional 3->3 messages
    assert dict(msgs) == {(1, "c2s"): 1, (1, "s2c"): 1, (3, "c2s"): 1, (3, "s2c"): 4,
                          (5, "c2s"): 3, (5, "s2c"): 1, (7, "c2s"): 3, (7, "s2c"): 3}


def test_dns_lookup_before_tcp_and_tls() -> None:
    rtt = rtt_ms("dns-then-connect") / 1000
    dns = fields("dns-then-connect", ["frame.time_epoch", "dns.flags.response", "dns.qry.type", "dns.count.answers", "dns.a"], "dns")
    queries = [r for r in dns if r[1] == "0"]
    answers = [r for r in dns if r[1] == "1"]
    assert sorted(q[2] for q in queries) == ["1", "28"]  # A and AAAA, asked together
    a = next(r for r in answers if r[2] == "1")
    aaaa = next(r for r in answers if r[2] == "28")
    assert a[4] == SERVER and aaaa[3] == "0"  # the address, and no IPv6 record
    t0 = float(queries[0][0])
    syn = float(fields("dns-then-connect", ["frame.time_epoch"], "tcp.flags.syn==1 && tcp.flags.ack==0")[0][0])
    assert float(a[0]) <= syn  # the connection waits for the answer
    req = float(fields("dns-then-connect", ["frame.time_epoch"], "http2.type == 1 && ip.src == 10.99.0.1")[0][0])
    # DNS 1 RTT + TCP 1 RTT + TLS 1.3 1 RTT before the request can leave.
    assert round((syn - t0) / rtt) == 1 and round((req - t0) / rtt) == 3


@pytest.mark.parametrize("name", LOSSY)
def test_server_side_capture_sees_what_the_client_never_got(name: str) -> None:
    _, _, prov = sample(name)
    client = fields(name, ["frame.number"], f"ip.src == {SERVER}")
    server = fields(name, ["frame.number"], f"ip.src == {SERVER}", server=True)
    # The sender's view holds every packet it sent, the dropped one too.
    assert len(server) == len(client) + len(prov["delay_line"]["dropped"])


@pytest.mark.parametrize("name", ["http2-lossy", "http2-tail-loss", "websocket-lossy"])
def test_tcp_sender_view_original_then_retransmission(name: str) -> None:
    _, _, prov = sample(name)
    (drop,) = prov["delay_line"]["dropped"]
    rel = int(drop["what"].split("rel_seq=")[1].split()[0])
    copies = fields(name, ["frame.number", "tcp.len"], f"ip.src == {SERVER} && tcp.seq == {rel + 1} && tcp.len > 0", server=True)
    assert len(copies) == 2 and copies[0][1] == copies[1][1]
    retx = fields(name, ["frame.number"], "tcp.analysis.retransmission || tcp.analysis.fast_retransmission", server=True)
    assert retx == [[copies[1][0]]]
    # iRTT measured at the server is the same path: SYN-ACK out, ACK back after one RTT.
    (rtt,) = fields(name, ["tcp.analysis.initial_rtt"], "tcp.analysis.initial_rtt", server=True)[:1]
    assert rtt_ms(name) <= float(rtt[0]) * 1000 < rtt_ms(name) + 2


def test_http2_tail_loss_has_nothing_behind_it() -> None:
    _, _, prov = sample("http2-tail-loss")
    (drop,) = prov["delay_line"]["dropped"]
    rel = int(drop["what"].split("rel_seq=")[1].split()[0])
    data = fields("http2-tail-loss", ["frame.time_epoch", "tcp.seq", "tcp.len"], f"ip.src == {SERVER} && tcp.len > 0")
    # At the client nothing arrives out of order: the lost segment was the last one, so no gap
    # is ever seen and no data waits behind it; the tail just arrives late, once.
    assert not fields("http2-tail-loss", ["frame.number"], "tcp.analysis.lost_segment || tcp.analysis.out_of_order || tcp.analysis.retransmission")
    assert int(data[-1][1]) == rel + 1
    assert [int(d[1]) for d in data] == sorted(int(d[1]) for d in data)
    # It waited for the sender's timer: far longer than one RTT after the segment before it.
    assert float(data[-1][0]) - float(data[-2][0]) > 2 * rtt_ms("http2-tail-loss") / 1000
    # Every response finished, the last one (stream 11) last.
    assert h2_statuses("http2-tail-loss") == {s: "200" for s in (1, 3, 5, 7, 9, 11)}


def test_http3_dropped_packet_is_the_one_missing_at_the_client() -> None:
    def pns(server: bool) -> set[int]:
        return {int(p.split(",")[-1]) for (p,) in fields("http3-lossy", ["quic.packet_number"], f"ip.src == {SERVER} && quic.short", server=server)}

    assert len(pns(True) - pns(False)) == 1


def test_http3_multiplex_clean() -> None:
    _, _, prov = sample("http3-multiplex")
    assert prov["delay_line"]["dropped"] == []
    s2c = [f for f in _quic_stream_frames("http3-multiplex") if f[1] == SERVER and f[3] % 4 == 0]
    end: dict[int, int] = defaultdict(int)
    for _, _, _, sid, off, ln in s2c:
        assert off <= end[sid]  # never data beyond a hole: no stream waits for anything
        end[sid] = max(end[sid], off + ln)
    assert sorted(end) == [0, 4, 8, 12, 16, 20] and all(e > 4000 for e in end.values())
    assert rtt_ms("http3-multiplex") <= prov["measured"]["quic_first_reply_ms"]
    assert flights_before("http3-multiplex", f"ip.src == {CLIENT} && quic.stream.stream_id == 0") == 1
    # The same six requests over TCP + TLS 1.3 (http2-multiplex) waited two round trips.
    assert flights_before("http2-multiplex", f"ip.src == {CLIENT} && http2.type == 1") == 2


def test_http2_flow_control_zero_window_stalls() -> None:
    out = rows("http2-flow-control", ["frame.time_epoch", "ip.src", "http2.streamid", "http2.type", "http2.length",
                                      "http2.window_update.window_size_increment", "http2.settings.initial_window_size"],
               "http2", ("-d", "tcp.port==8080,http2"))
    rtt = rtt_ms("http2-flow-control") / 1000
    initial = None
    data: dict[int, list[tuple[float, int]]] = defaultdict(list)  # stream -> (arrival, bytes)
    credit: dict[int, list[tuple[float, int]]] = defaultdict(list)  # stream -> (sent, increment)
    for t, src, sids, types, lengths, incs, iws in out:
        when = float(t[0])
        incs_it = iter(incs)
        if src[0] == CLIENT and iws:
            initial = int(iws[0])
        for sid, typ, ln in zip(sids, types, lengths):
            if typ == "0" and src[0] == SERVER and int(ln):
                data[int(sid)].append((when, int(ln)))
            elif typ == "8":
                inc = int(next(incs_it))
                if src[0] == CLIENT and sid != "0":
                    credit[int(sid)].append((when, inc))
    assert initial == 4095  # nghttp -w 12
    assert len(data) == 2
    for sid, frames in data.items():
        assert sum(n for _, n in frames) == 16000
        total, stalls = 0, 0
        for i, (t, n) in enumerate(frames):
            total += n
            # Credit the server had: the initial window plus every WINDOW_UPDATE the client sent
            # early enough to reach the server before this data left (one RTT before it arrived).
            window = initial + sum(inc for u, inc in credit[sid] if u <= t - rtt + 0.003)
            assert total <= window, (sid, i, total, window)
            if i + 1 < len(frames) and frames[i + 1][0] - t > 0.8 * rtt:
                stalls += 1
                assert total == window  # it stopped exactly at a zero window
                # ...and resumed one RTT (plus nginx's reaction) after the client's next WINDOW_UPDATE.
                nxt = frames[i + 1][0]
                sent = min(u for u, _ in credit[sid] if u > t - 0.003)
                assert rtt - 0.002 <= nxt - sent < rtt + 0.010
        assert stalls >= 2


def test_websocket_lossy_messages_wait_behind_the_lost_one() -> None:
    _, _, prov = sample("websocket-lossy")
    (drop,) = prov["delay_line"]["dropped"]
    rel = int(drop["what"].split("rel_seq=")[1].split()[0])
    # The client saw the gap, then the missing segment once, later.
    assert len(fields("websocket-lossy", ["frame.number"], "tcp.analysis.lost_segment")) == 1
    (late,) = fields("websocket-lossy", ["frame.number", "frame.time_epoch"], f"ip.src == {SERVER} && tcp.seq == {rel + 1}")
    # tshark delivers each message in the frame that completed it: messages 1-2 on arrival,
    # then the retransmitted segment completes the lost message 3 and the five behind it at once.
    msgs = fields("websocket-lossy", ["frame.number", "websocket.opcode"], "websocket && websocket.opcode == 2")
    per_frame = [(int(f), len(ops.split(","))) for f, ops in msgs]
    assert sum(n for _, n in per_frame) == 8
    assert per_frame[-1] == (int(late[0]), 6)
    # Those five had arrived before it: every server data segment after the gap came earlier.
    before = fields("websocket-lossy", ["frame.number"], f"ip.src == {SERVER} && tcp.seq > {rel + 1} && tcp.len > 0 && frame.number < {late[0]}")
    assert len(before) == 5
