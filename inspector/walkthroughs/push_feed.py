"""One push feed four ways: short polling, long polling, Server-Sent Events and WebSocket."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..events import HttpResponse, SseEvent, WsMessage
from .decoded import Decoded
from .measure import irtt_ms, ms, ms_range, plural
from .model import Pick, StepSpec

NAME = "push-feed"
TITLE = "The same push feed by short polling, long polling, SSE and WebSocket"
DESCRIPTION = "One push feed by short polling, long polling, SSE and WebSocket: latency, bytes and requests per update"
CAPTURES = ("push-feed",)
TAPPED = ("push-feed",)  # polled JSON bodies: no decoder keeps response bodies

# Each update is a JSON object carrying its sequence number and publish time
# (epoch seconds, same clock as the capture: client and server share a host).
_UPDATE = re.compile(rb'"seq"\s*:\s*(\d+)\s*,\s*"t"\s*:\s*([\d.]+)')


@dataclass
class Mode:
    label: str
    conn: int
    requests: int = 0
    deliveries: dict[int, tuple[float, float, int]] = field(default_factory=dict)  #: seq -> (published, arrived, frame)
    empty: int = 0

    def latencies(self) -> list[float]:
        return [ms(arr - pub) for pub, arr, _ in self.deliveries.values()]


def _from_json(text: str | None) -> tuple[int, float] | None:
    try:
        obj = json.loads(text or "")
        return int(obj["seq"]), float(obj["t"])
    except (ValueError, KeyError, TypeError):
        return None


def _modes(dec: Decoded) -> dict[str, Mode]:
    rtt = min(irtt_ms(dec, c) for c in dec.conns) / 1000
    out: dict[str, Mode] = {}
    for conn, s in dec.conns.items():
        if s.get("app") == "websocket":
            m = Mode("WebSocket", conn, requests=len(s.get("requests") or []))
            for msg in dec.select(conn=conn, layer="websocket", type="message", direction="s2c"):
                got = _from_json(msg.text) if isinstance(msg, WsMessage) else None
                if got:
                    m.deliveries.setdefault(got[0], (got[1], msg.ts, msg.frame))
            out["ws"] = m
        elif s.get("sse"):
            m = Mode("SSE", conn, requests=len(s.get("requests") or []))
            for ev in dec.select(conn=conn, layer="sse", type="event"):
                got = _from_json(ev.data) if isinstance(ev, SseEvent) else None
                if got:
                    m.deliveries.setdefault(got[0], (got[1], ev.ts, ev.frame))
            out["sse"] = m
        elif s.get("requests"):
            reqs = s["requests"]
            held = sorted(r["response_ts"] - r["request_ts"] for r in reqs)[len(reqs) // 2]
            key, label = ("long", "long polling") if held > 2 * rtt else ("short", "short polling")
            m = Mode(label, conn, requests=len(reqs))
            body = bytes(dec.tap.data[(conn, 1)]) if dec.tap else b""
            frames_with_news = set()
            for match in _UPDATE.finditer(body):
                frame, ts = dec.tap.when(conn, 1, match.end() - 1)
                m.deliveries.setdefault(int(match.group(1)), (float(match.group(2)), ts, frame))
                frames_with_news.add(frame)
            resps = [r for r in dec.select(conn=conn, layer="http", type="response") if isinstance(r, HttpResponse)]
            m.empty = sum(1 for r in resps if r.frame not in frames_with_news)
            out[key] = m
    return out


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    modes = _modes(dec)
    rtt = min(irtt_ms(dec, c) for c in dec.conns)
    f: dict[str, Any] = {"rtt": rtt, "half_rtt": rtt / 2}
    for key, m in modes.items():
        s = dec.conns[m.conn]
        lat = m.latencies()
        n = len(m.deliveries)
        pay = s["payload_bytes"]["c2s"] + s["payload_bytes"]["s2c"]
        f.update({
            f"{key}_conn": m.conn, f"{key}_updates": n, f"{key}_requests": m.requests,
            f"{key}_req_per_update": m.requests / n if n else 0.0,
            f"{key}_lat_avg": sum(lat) / n if n else 0.0, f"{key}_lat_max": max(lat, default=0.0),
            f"{key}_lat": ms_range(lat),
            f"{key}_requests_text": plural(m.requests, "request"),
            f"{key}_bytes": pay, f"{key}_bytes_per_update": pay / n if n else 0.0,
            f"{key}_packets": s["packets"], f"{key}_packets_per_update": s["packets"] / n if n else 0.0,
            f"{key}_empty": m.empty,
        })
    lreq = dec.select(conn=modes["long"].conn, layer="http", type="request")
    lresp = dec.select(conn=modes["long"].conn, layer="http", type="response")
    f["long_reask"] = ms_range(ms(q.ts - r.ts) for r, q in zip(lresp, lreq[1:]))
    wsf = dec.select(conn=modes["ws"].conn, layer="websocket", type=("text", "binary"), direction="s2c")
    f["ws_frames"] = plural(len(wsf), "data frame")
    f["sse_streams"] = plural(len(dec.conns[modes["sse"].conn]["sse"]["streams"]), "text/event-stream response")
    interval = [b[0] - a[0] for a, b in zip(*(lambda d: (d[:-1], d[1:]))(sorted(modes["ws"].deliveries.values())))]
    f["interval_ms"] = ms(sum(interval) / len(interval)) if interval else 0.0
    polls = dec.select(conn=modes["short"].conn, layer="http", type="request")
    gaps = [b.ts - a.ts for a, b in zip(polls, polls[1:])]
    f["poll_every_ms"] = ms(sum(gaps) / len(gaps)) if gaps else 0.0
    push = [modes[k] for k in ("long", "sse", "ws")]
    f["push_lat_max"] = max(max(m.latencies(), default=0.0) for m in push)
    f["short_vs_push"] = f["short_lat_avg"] - max(f["long_lat_avg"], f["sse_lat_avg"], f["ws_lat_avg"])
    best = min(("long", "sse", "ws"), key=lambda k: f[f"{k}_bytes_per_update"])
    f["cheapest"] = modes[best].label
    f["cheapest_bytes"] = f[f"{best}_bytes_per_update"]
    sc, lc, ec, wc = (modes[k].conn for k in ("short", "long", "sse", "ws"))
    steps = [
        StepSpec("One feed, four deliveries",
                 "A server publishes {ws_updates} updates about {interval_ms:.0f} ms apart, each a small JSON object "
                 "with its publish time; the client and server share a clock, so arrival minus publish time is the "
                 "update's latency. The feed is delivered four times, one way after another: short polling (conn "
                 "{short_conn}), long polling (conn {long_conn}), Server-Sent Events (conn {sse_conn}) and "
                 "WebSocket (conn {ws_conn}). The path's RTT is {rtt:.1f} ms, so no update can arrive sooner than "
                 "the one-way trip, about {half_rtt:.1f} ms.",
                 (Pick(conn=sc, layer="tcp", where=lambda e: e.flags == "S"), Pick(conn=lc, layer="tcp", where=lambda e: e.flags == "S"),
                  Pick(conn=ec, layer="tcp", where=lambda e: e.flags == "S"), Pick(conn=wc, layer="tcp", where=lambda e: e.flags == "S"))),
        StepSpec("Short polling: ask, and ask again",
                 "The client asks every {poll_every_ms:.0f} ms: {short_requests} requests, {short_empty} of them "
                 "answered with no news. An update waits at the server until the next poll: latency "
                 "{short_lat}, {short_lat_avg:.1f} ms on average. Cost: "
                 "{short_req_per_update:.2f} requests and {short_bytes_per_update:.0f} bytes of TCP payload per "
                 "update.",
                 (Pick(conn=sc, layer="http"),)),
        StepSpec("Long polling: the server holds the request",
                 "Each of the {long_requests} requests stays open until there is news; the client asks again "
                 "{long_reask} after each answer. Latency {long_lat} "
                 "({long_lat_avg:.1f} ms on average): the one-way trip, since a request is already waiting. "
                 "Still {long_req_per_update:.2f} requests and {long_bytes_per_update:.0f} bytes per update: every update brings a full response head and a new request.",
                 (Pick(conn=lc, layer="http"),)),
        StepSpec("Server-Sent Events: one response that never ends",
                 "{sse_requests_text}, {sse_streams}, and each update is a few lines of it (an SSE event with "
                 "id and data). Latency {sse_lat} "
                 "({sse_lat_avg:.1f} ms on average) at {sse_bytes_per_update:.0f} bytes per update, the request "
                 "and response head included.",
                 (Pick(conn=ec, layer="sse"), Pick(conn=ec, layer="http"))),
        StepSpec("WebSocket: one upgrade, then frames",
                 "After the upgrade ({ws_requests_text}), the updates arrive as {ws_frames} from the server, "
                 "unmasked: latency {ws_lat} ({ws_lat_avg:.1f} ms on average), "
                 "{ws_bytes_per_update:.0f} bytes per update with the upgrade and the closing handshake included.",
                 (Pick(conn=wc, layer="websocket", type=("message", "close", "handshake")),)),
        StepSpec("The bill",
                 "Per update: short polling {short_req_per_update:.2f} requests, {short_bytes_per_update:.0f} "
                 "bytes, {short_packets_per_update:.1f} packets; long polling {long_req_per_update:.2f}, "
                 "{long_bytes_per_update:.0f}, {long_packets_per_update:.1f}; SSE {sse_req_per_update:.2f}, "
                 "{sse_bytes_per_update:.0f}, {sse_packets_per_update:.1f}; WebSocket {ws_req_per_update:.2f}, "
                 "{ws_bytes_per_update:.0f}, {ws_packets_per_update:.1f}. The three push methods never took more "
                 "than {push_lat_max:.1f} ms; short polling was {short_vs_push:.1f} ms slower on average and paid "
                 "for empty answers. Cheapest per update here: {cheapest}, {cheapest_bytes:.0f} bytes.",
                 (Pick(layer="http", type="response"), Pick(layer="sse", type="event"),
                  Pick(layer="websocket", type="message", direction="s2c"))),
    ]
    return f, steps
