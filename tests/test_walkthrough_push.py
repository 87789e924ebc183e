"""Walkthroughs about server push: WebSocket's mechanics, and one feed by polling, long polling, SSE and WebSocket.

tshark gives the WebSocket frames (opcode, mask, payload length, close
code) and, for the feed, every server payload: each update carries its
publish time, so latency is the arrival time of the first copy minus that.
"""

from __future__ import annotations

import re
from collections import defaultdict

from tests.test_walkthrough_oracle import (CLIENT, SERVER, close, flights, initial_rtts, ms_between, num, one_each, step,
                                           tshark)
from tests.test_walkthrough_http import range_in


def _ws_header(masked: bool, length: int) -> int:
    """RFC 6455 §5.2: 2 bytes, a 16- or 64-bit extended length, and the 4-byte masking key."""
    return 2 + (2 if 126 <= length < 65536 else 8 if length >= 65536 else 0) + (4 if masked else 0)


def test_websocket() -> None:
    name = "websocket"
    rows = one_each(name, ["frame.number", "ip.src", "websocket.opcode", "websocket.mask", "websocket.payload_length",
                           "websocket.payload.close.status_code", "websocket.payload.close.reason"], "websocket")
    frames_ = [(int(f), src, int(op), m == "1", int(ln), code, reason) for f, src, op, m, ln, code, reason in rows]
    c2s = [x for x in frames_ if x[1] == CLIENT]
    s2c = [x for x in frames_ if x[1] == SERVER]
    req, key = one_each(name, ["frame.number", "http.sec_websocket_key"], "http.request")[0]
    resp, code = one_each(name, ["frame.number", "http.response.code"], "http.response")[0]
    rtt = initial_rtts(name)[0]

    b = step(name, "The upgrade")
    assert f"Sec-WebSocket-Key ({key}) (frame {req})" in b and f"answers {code} " in b and f"(frame {resp})" in b
    assert close(num(r"Protocols {n} ms later", b), ms_between(name, int(req), int(resp)))
    first_msg = c2s[0][0]
    # TCP's handshake, then the upgrade's own round trip, before the first message
    assert num(r"leaves after {n} round trips", b) == flights(name, first_msg) == 2

    b = step(name, "Frames, and why")
    assert f"Of the client's {len(c2s)} frames, {sum(x[3] for x in c2s)} are masked" in b
    assert f"of the server's {len(s2c)}, {sum(x[3] for x in s2c)}." in b
    hdr_c = {_ws_header(x[3], x[4]) for x in c2s if x[2] in (1, 2)}
    hdr_s = {_ws_header(x[3], x[4]) for x in s2c if x[2] in (1, 2)}
    assert f"headers of {min(hdr_c)} bytes against the server's {min(hdr_s)}" in b and len(hdr_c) == len(hdr_s) == 1

    b = step(name, "Messages, echoed")
    data_c = [x for x in c2s if x[2] in (1, 2)]
    data_s = [x for x in s2c if x[2] in (1, 2)]
    assert f"sends {len(data_c)} messages" in b
    echoes = [ms_between(name, a[0], z[0]) for a, z in zip(data_c, data_s)]
    lo, hi = range_in(r"replies arrive ", " after the message", b)
    assert close(lo, min(echoes)) and close(hi, max(echoes))

    b = step(name, "Framing overhead")
    framing_c = sum(_ws_header(x[3], x[4]) for x in c2s)
    payload_c = sum(x[4] for x in c2s)
    assert f"cost the client {framing_c} bytes for {sum(x[4] for x in data_c)} bytes of messages" in b
    assert close(num(r"messages \({n}% of what it sent", b), 100 * framing_c / (framing_c + payload_c), 0.051)
    framing_s = sum(_ws_header(x[3], x[4]) for x in s2c)
    assert close(num(r"and the server {n} bytes", b), framing_s, 0)
    ws_total = sum(_ws_header(x[3], x[4]) for x in data_c + data_s)
    assert f"framed these {len(data_c) + len(data_s)} messages in {ws_total} bytes" in b
    per_msg = num(r"heads?, {n} bytes\. WebSocket", b)
    assert close(num(r"would take {n} bytes of heads", b), per_msg * (len(data_c) + len(data_s)), 0)

    b = step(name, "Heartbeats")
    srv_ping = next(x for x in s2c if x[2] == 9)
    cli_pong = next(x for x in c2s if x[2] == 10 and x[0] > srv_ping[0])
    cli_ping = next(x for x in c2s if x[2] == 9)
    srv_pong = next(x for x in s2c if x[2] == 10 and x[0] > cli_ping[0])
    assert f"server pings (frame {srv_ping[0]})" in b and f"(frame {cli_pong[0]})" in b
    assert close(num(r"pong follows {n} ms", b), ms_between(name, srv_ping[0], cli_pong[0]))
    assert close(num(r"answered after {n} ms", b), ms_between(name, cli_ping[0], srv_pong[0]))
    # seen at the client, its own ping measures the path: one round trip
    assert round(num(r"ms \(frame \d+\), {n} RTT", b)) == round(ms_between(name, cli_ping[0], srv_pong[0]) / rtt) == 1

    b = step(name, "Closing handshake")
    first, reply = [x for x in frames_ if x[2] == 8][:2]
    assert f"close frame with code {first[5]} and reason \"{first[6]}\" in frame {first[0]}" in b
    assert f"close code {reply[5]} (frame {reply[0]})" in b
    assert close(num(r"\(frame \d+\), {n} ms later", b), ms_between(name, first[0], reply[0]))
    fin = one_each(name, ["ip.src"], "tcp.flags.fin == 1")[0][0]
    assert f"(the {'client' if fin == CLIENT else 'server'} sends the first FIN)" in b


_UPDATE = re.compile(r'"seq":(\d+),"t":([\d.]+)')


def test_push_feed() -> None:
    name = "push-feed"
    latency: dict[int, dict[int, float]] = defaultdict(dict)
    for t_, stream, payload in one_each(name, ["frame.time_epoch", "tcp.stream", "tcp.payload"], f"ip.src == {SERVER} && tcp.len > 0"):
        for seq, published in _UPDATE.findall(bytes.fromhex(payload).decode("latin-1")):
            latency[int(stream)].setdefault(int(seq), (float(t_) - float(published)) * 1000)
    requests: dict[int, list[str]] = defaultdict(list)
    for stream, uri in one_each(name, ["tcp.stream", "http.request.uri"], "http.request"):
        requests[int(stream)].append(uri)
    sse = int(one_each(name, ["tcp.stream"], "http.content_type == \"text/event-stream\"")[0][0])
    ws = int(one_each(name, ["tcp.stream"], "websocket")[0][0])
    short = next(s for s, u in requests.items() if u[0].startswith("/poll"))
    long_ = next(s for s, u in requests.items() if u[0].startswith("/longpoll"))
    size = defaultdict(int)
    packets = defaultdict(int)
    for stream, ln in one_each(name, ["tcp.stream", "tcp.len"], "tcp"):
        size[int(stream)] += int(ln)
        packets[int(stream)] += 1
    empty = [b for (b,) in one_each(name, ["http.file_data"], f"tcp.stream == {short} && http.response") if "seq" not in b]
    rtt = min(initial_rtts(name).values())

    def check(title: str, stream: int) -> str:
        b = step(name, title)
        lat = list(latency[stream].values())
        lo, hi = range_in(r"[Ll]atency ", r"(?: \(|,)", b)
        assert close(lo, min(lat)) and close(hi, max(lat)), (title, lat)
        assert close(num(r"{n} ms on average", b), sum(lat) / len(lat))
        assert close(num(r"{n} bytes (?:of TCP payload )?per update", b), size[stream] / len(lat), 0.51)
        return b

    assert all(len(v) == 4 for v in latency.values()) and len(latency) == 4
    b = step(name, "One feed")
    assert f"short polling (conn {short}), long polling (conn {long_}), Server-Sent Events (conn {sse}) and WebSocket (conn {ws})" in b
    b = check("Short polling", short)
    assert f"{len(requests[short])} requests, {len(empty)} of them answered with no news" in b
    assert close(num(r"Cost: {n} requests", b), len(requests[short]) / 4, 0.006)
    b = check("Long polling", long_)
    assert f"Each of the {len(requests[long_])} requests" in b
    # a waiting request makes delivery one one-way trip: half the round trip
    assert all(abs(x - rtt / 2) < 2 for x in latency[long_].values())
    b = check("Server-Sent Events", sse)
    assert b.startswith(f"{len(requests[sse])} request,")
    b = check("WebSocket", ws)
    frames_ = one_each(name, ["websocket.opcode"], f"tcp.stream == {ws} && websocket && ip.src == {SERVER}")
    assert f"arrive as {sum(1 for (op,) in frames_ if op in ('1', '2'))} data frames" in b
    b = step(name, "The bill")
    for label, stream in (("short polling", short), ("long polling", long_), ("SSE", sse), ("WebSocket", ws)):
        n_req = len(requests[stream]) if stream != ws else 1
        got = re.search(re.escape(label) + r" (\d+\.\d+)(?: requests)?, (\d+)(?: bytes)?, (\d+\.\d)", b)
        assert got, label
        assert close(float(got[1]), n_req / 4, 0.006) and close(float(got[2]), size[stream] / 4, 0.51)
        assert close(float(got[3]), packets[stream] / 4, 0.051)
    push_max = max(max(latency[s].values()) for s in (long_, sse, ws))
    assert close(num(r"never took more than {n} ms", b), push_max)
    avg = {s: sum(v.values()) / 4 for s, v in latency.items()}
    assert close(num(r"short polling was {n} ms slower", b), avg[short] - max(avg[long_], avg[sse], avg[ws]), 0.21)
