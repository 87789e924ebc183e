"""Walkthroughs about HTTP: HTTP/1.1 connection strategies, HTTP/2 multiplexing with HPACK, gRPC's call kinds.

Expected values come from tshark's view of the captures: request and
response frames per TCP stream, HTTP/2 frame lengths and decoded header
fields, gRPC message lengths.
"""

from __future__ import annotations

import re
from collections import defaultdict

from tests.test_walkthrough_oracle import (CLIENT, close, flights, frames, initial_rtts, ms_between, num, one_each, step,
                                           summary, t, tshark)

H2C = ("-d", "tcp.port==50051,http2")


def test_http1_keepalive_per_request_parallel_pipelined() -> None:
    name = "http1"
    cap = "http1-keepalive"
    reqs: dict[int, list[int]] = defaultdict(list)
    for f, s, methods in tshark(cap, ["frame.number", "tcp.stream", "http.request.method"], "http.request"):
        reqs[int(s[0])] += [int(f[0])] * len(methods)
    resps: dict[int, list[int]] = defaultdict(list)
    for f, s in one_each(cap, ["frame.number", "tcp.stream"], "http.response"):
        resps[int(s)].append(int(f))
    syn = {int(s): int(f) for f, s in one_each(cap, ["frame.number", "tcp.stream"], "tcp.flags.syn == 1 && tcp.flags.ack == 0")}
    rtts = initial_rtts(cap)
    rtt = min(rtts.values())
    # the four experiments, from what tshark shows
    parallel = sorted(s for s in syn if any(o != s and abs(t(cap, syn[o]) - t(cap, syn[s])) < rtt / 2000 for o in syn))
    pipelined = [s for s, fs in reqs.items() if len(fs) > len(set(fs))]
    single = sorted(s for s, fs in reqs.items() if len(fs) == 1 and s not in parallel)
    (ka,) = [s for s in reqs if s not in parallel and s not in pipelined and s not in single]
    (pp,) = pipelined
    packets = defaultdict(int)
    for _, (_, _, stream, _) in frames(cap).items():
        packets[stream] += 1

    b = step(name, "Keep-alive")
    ka_ms = ms_between(cap, syn[ka], resps[ka][-1])
    assert f"Conn {ka} carries {len(reqs[ka])} GETs" in b and "over 1 handshake" in b
    assert close(num(r"SYN to last response: {n} ms", b), ka_ms)
    # a handshake then one round trip per request
    assert round(num(r"ms = {n} RTT", b)) == round(ka_ms / initial_rtts(cap)[ka]) == 1 + len(reqs[ka])
    assert f"in {packets[ka]} packets" in b

    b = step(name, "A new connection")
    single_ms = ms_between(cap, syn[single[0]], resps[single[-1]][-1])
    assert f"on conns {', '.join(map(str, single))}: {len(single)} handshakes" in b
    assert close(num(r"First SYN to last response: {n} ms", b), single_ms)
    assert round(num(r"ms = {n} RTT", b)) == round(single_ms / rtt) == 2 * len(single)
    assert close(num(r"RTT, {n} ms more than keep-alive", b), single_ms - ka_ms, 0.21)
    assert f"and {sum(packets[s] for s in single)} packets" in b

    b = step(name, "Parallel connections")
    syns = [t(cap, syn[s]) for s in parallel]
    waits = [ms_between(cap, reqs[s][0], reqs[s][1]) for s in parallel]
    par_ms = (max(t(cap, f) for s in parallel for f in resps[s]) - min(syns)) * 1000
    assert f"Here {len(parallel)} connections (conns {', '.join(map(str, parallel))})" in b
    assert close(num(r"start within {n} ms", b), (max(syns) - min(syns)) * 1000)
    assert f"share {sum(len(reqs[s]) for s in parallel)} requests" in b
    lo, hi = range_in(r"each connection left ", " after the first", b)
    assert close(lo, min(waits)) and close(hi, max(waits))
    assert close(num(r"were done {n} ms", b), par_ms)
    # each second request waited for its connection's first response: a round trip
    assert all(round(w / rtt) == 1 for w in waits)

    b = step(name, "Pipelining: all requests")
    assert f"Conn {pp} sends {len(reqs[pp])} requests in one segment (frame {reqs[pp][0]})" in b
    b = step(name, "...and the head-of-line")
    rows = tshark(cap, ["frame.number", "http.content_length", "tcp.segment"], f"tcp.stream == {pp} && http.response")
    (big_f, big_len, _), (small_f, small_len, small_segs) = [(int(r[0][0]), int(r[1][0]), [int(x) for x in r[2]]) for r in rows[:2]]
    req_f = reqs[pp][0]
    uris = tshark(cap, ["http.request.uri"], f"frame.number == {req_f}")[0][0]
    rows_path = uris[0]  # responses come in request order: the first answers the first request
    assert f"({big_len} bytes) completes" in b and f"(frame {big_f})" in b
    assert close(num(r"completes {n} ms", b), ms_between(cap, req_f, big_f))
    # the small response's first byte rides in the segment that finished the big one: after it, not before
    assert small_segs[0] >= big_f and "first byte after the last byte" in b
    assert f"only {small_len} bytes" in b
    first_ms = ms_between(cap, req_f, small_segs[0])
    assert close(num(r"of " + re.escape(rows_path) + r", {n} ms after its request", b), first_ms)
    assert close(num(r"request: {n} ms more than the round trip", b), first_ms - rtts[pp], 0.21)
    assert close(num(r"It completes {n} ms", b), ms_between(cap, req_f, small_f))
    assert num(r"It completes [\d.]+ ms \({n} RTT\)", b) > 2  # head-of-line blocked: far more than its one round trip
    if summary(cap)[pp].get("hol"):  # the HOL analysis' pipelining episode, quoted: the same wait
        quoted = b.split("HOL analysis")[1]
        assert close(num(re.escape(uris[1]) + r"\) {n} ms", quoted), first_ms - rtts[pp], 0.21)
    else:
        assert "HOL analysis" not in b


def range_in(before: str, after: str, text: str) -> tuple[float, float]:
    """A printed range of times (``40.1-41.2 ms``, or one value ``40.9 ms``) between two phrases."""
    m = re.search(before + r"([\d.]+)(?:-([\d.]+))? ms" + after, text)
    assert m, (before, text)
    return float(m[1]), float(m[2] or m[1])


def _h2_frames(name: str, extra: tuple[str, ...] = ()) -> list[tuple[int, str, int, int, int, int]]:
    """(frame, src, stream, type, length, flags) for every HTTP/2 frame tshark decodes."""
    out = []
    for f, src, sids, types, lengths, flags in tshark(name, ["frame.number", "ip.src", "http2.streamid", "http2.type",
                                                            "http2.length", "http2.flags"], "http2", extra):
        for sid, typ, ln, fl in zip(sids, types, lengths, flags):
            out.append((int(f[0]), src[0], int(sid), int(typ), int(ln), int(fl, 16)))
    return out


def test_http2_multiplex_and_hpack() -> None:
    name = "http2-multiplex"
    h2 = _h2_frames(name)
    req = [x for x in h2 if x[1] == CLIENT and x[3] == 1]
    resp_hdr = [x for x in h2 if x[1] != CLIENT and x[3] == 1]
    ends = {x[2]: x[0] for x in h2 if x[1] != CLIENT and x[3] in (0, 1) and x[5] & 1}
    rtt = initial_rtts(name)[0]
    headers = {int(f[0]): list(zip(n, v)) for f, n, v in tshark(name, ["frame.number", "http2.header.name", "http2.header.value"],
                                                                 f"http2.type == 1 && ip.src == {CLIENT}")}

    b = step(name, "One connection")
    assert "runs on 1 TCP connection" in b and len(initial_rtts(name)) == 1
    assert num(r"leaves after {n} round trips", b) == flights(name, req[0][0]) == 2

    b = step(name, "Requests as streams")
    assert f"{len(req)} GETs" in b and f"streams {', '.join(str(x[2]) for x in req)}" in b
    assert close(num(r"all within {n} ms", b), ms_between(name, req[0][0], req[-1][0]), 0.006)

    b = step(name, "Responses share")
    first = min(ends.values())
    last = max(ends.values())
    assert close(num(r"between {n} ms and", b), ms_between(name, req[0][0], first))
    assert close(num(r"ms and {n} ms after the first", b), ms_between(name, req[0][0], last))
    data = [x for x in h2 if x[1] != CLIENT and x[3] == 0 and x[4]]
    assert f"Their {len(data)} DATA frames ({sum(x[4] for x in data)} body bytes)" in b
    assert close(num(r"need about [\d.]+ RTT \({n} ms\)", b), len(req) * rtt, 0.6)

    b = step(name, "HPACK: the first")
    sizes = [x[4] for x in req]
    text_sizes = [sum(len(n) + len(v) + 4 for n, v in headers[x[0]]) for x in req]
    assert f"header block is {sizes[0]} bytes for {len(headers[req[0][0]])} fields that take {text_sizes[0]} bytes" in b
    later = sorted(set(sizes[1:]))
    assert f"each later block is {later[0] if len(later) == 1 else f'{later[0]}-{later[-1]}'} bytes" in b
    assert all(s < sizes[0] / 2 for s in sizes[1:])  # repeated fields became index references
    first_fields = dict(headers[req[0][0]])
    changed = sorted({n for x in req[1:] for n, v in headers[x[0]] if first_fields.get(n) != v})
    assert f"only what changed ({', '.join(changed)})" in b

    b = step(name, "HPACK, measured")
    enc, plain = sum(sizes), sum(text_sizes)
    assert f"Request headers: {enc} bytes on the wire for {plain} bytes of header text over {len(req)} blocks" in b
    assert close(num(r"blocks, {n}% saved", b), 100 * (1 - enc / plain), 0.051)
    s_enc = sum(x[4] for x in resp_hdr)
    assert f"Response headers: {s_enc} bytes" in b
    if len({x[4] for x in resp_hdr}) == 1:
        assert f"every block stays {resp_hdr[0][4]} bytes" in b


def test_grpc_four_call_kinds() -> None:
    name = "grpc"
    h2 = _h2_frames(name, H2C)
    msgs = []  # (frame, src, stream, length)
    for f, src, sids, types, lengths in tshark(name, ["frame.number", "ip.src", "http2.streamid", "http2.type", "grpc.message_length"],
                                               "grpc", H2C):
        (sid,) = {int(s) for s, ty in zip(sids, types) if ty == "0"}  # one call's DATA per packet here
        msgs += [(int(f[0]), src[0], sid, int(n)) for n in lengths]
    paths = {}
    for f, sids, names, values in tshark(name, ["frame.number", "http2.streamid", "http2.header.name", "http2.header.value"],
                                         f"http2.type == 1 && ip.src == {CLIENT}", H2C):
        hdr = dict(zip(names, values))
        paths[int([s for s in sids if s != "0"][0])] = hdr[":path"]
    rtt = initial_rtts(name)[0]

    def of(sid: int, src: str) -> list[tuple[int, str, int, int]]:
        return [m for m in msgs if m[2] == sid and (m[1] == CLIENT) == (src == "c2s")]

    b = step(name, "One channel")
    assert ", ".join(paths[s] for s in sorted(paths)) in b.replace(" and ", ", ")
    data = sum(x[4] for x in h2 if x[3] == 0 and x[2])
    body = sum(m[3] for m in msgs)
    assert f"{data - body} prefix bytes for {body} bytes of protobuf over {len(msgs)} messages" in b
    assert f"behind a {round((data - body) / len(msgs))}-byte prefix" in b

    kinds = {"Unary": 1, "Server streaming": 3, "Client streaming": 5, "Bidirectional": 7}
    # which stream is which kind, from the message counts tshark sees
    shape = {sid: (len(of(sid, "c2s")), len(of(sid, "s2c"))) for sid in paths}
    assert shape[kinds["Unary"]] == (1, 1) and shape[kinds["Server streaming"]][0] == 1 < shape[kinds["Server streaming"]][1]
    assert shape[kinds["Client streaming"]][1] == 1 < shape[kinds["Client streaming"]][0]
    assert min(shape[kinds["Bidirectional"]]) > 1

    sid = kinds["Unary"]
    b = step(name, "Unary")
    (up,), (down,) = of(sid, "c2s"), of(sid, "s2c")
    assert f"Stream {sid}: 1 request message, 1 response message" in b
    assert close(num(r"reply comes {n} ms after", b), ms_between(name, up[0], down[0]))
    hdrs = [x for x in h2 if x[2] == sid and x[3] == 1]
    assert f"{len(hdrs)} HEADERS frames" in b and f"take {sum(x[4] for x in hdrs)} bytes" in b
    call_ms = ms_between(name, hdrs[0][0], hdrs[-1][0])
    assert close(num(r"\({n} RTT for the whole call\)", b), call_ms / rtt, 0.006)

    sid = kinds["Server streaming"]
    b = step(name, "Server streaming")
    down = of(sid, "s2c")
    gaps = [ms_between(name, a[0], c[0]) for a, c in zip(down, down[1:])]
    assert f"then {len(down)} response messages" in b
    lo, hi = range_in(r"messages, ", " apart", b)
    assert close(lo, min(gaps)) and close(hi, max(gaps))
    hdrs = [x for x in h2 if x[2] == sid and x[3] == 1]
    assert close(num(r"call lasts {n} ms", b), ms_between(name, hdrs[0][0], hdrs[-1][0]))

    sid = kinds["Client streaming"]
    b = step(name, "Client streaming")
    up, down = of(sid, "c2s"), of(sid, "s2c")
    assert f"{len(up)} request messages sent within" in b
    assert close(num(r"sent within {n} ms", b), ms_between(name, up[0][0], up[-1][0]), 0.006)
    assert close(num(r"arrives {n} ms after the\s+last request", b), ms_between(name, up[-1][0], down[0][0]))

    sid = kinds["Bidirectional"]
    b = step(name, "Bidirectional")
    up, down = of(sid, "c2s"), of(sid, "s2c")
    assert f"{len(up)} request messages and {len(down)} response messages" in b
    # the directions overlap: the server's first reply comes before the client's last message
    assert down[0][0] < up[-1][0] and "first reply arrives before the client's last message" in b
    turns = [ms_between(name, u[0], d[0]) for u, d in zip(up, down)]
    lo, hi = range_in(r"follows its message by ", ";", b)
    assert close(lo, min(turns)) and close(hi, max(turns))
    assert all(round(x / rtt) == 1 for x in turns)

    b = step(name, "What the channel adds")
    firsts = {}
    for x in h2:
        if x[1] == CLIENT and x[3] == 1:
            firsts.setdefault(x[2], x[4])
    later = sorted(firsts[s] for s in firsts if s != kinds["Unary"])
    assert f"request headers take {firsts[kinds['Unary']]} bytes, later calls' {later[0]}-{later[-1]} bytes" in b
    pings = [x for x in h2 if x[3] == 6]
    assert f"{len(pings)} PING frames ({sum(1 for x in pings if x[5] & 1)} acknowledgements)" in b
