"""gRPC over HTTP/2: unary, server streaming, client streaming and bidirectional calls."""

from __future__ import annotations

from typing import Any

from ..events import GrpcCall, GrpcMessage
from .decoded import Decoded
from .http2_multiplex import h2_conn
from .measure import irtt_ms, ms, ms_range, n_range, plural
from .model import Pick, StepSpec

NAME = "grpc"
TITLE = "gRPC over HTTP/2: the four call kinds"
DESCRIPTION = "gRPC over HTTP/2: unary, server-streaming, client-streaming and bidirectional calls on one channel"
CAPTURES = ("grpc",)

_KINDS = ("unary", "server_streaming", "client_streaming", "bidirectional")


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    conn = h2_conn(dec)
    s = dec.conns[conn]
    rtt = irtt_ms(dec, conn)
    calls = {c.kind: c for c in dec.select(conn=conn, layer="grpc", type="call") if isinstance(c, GrpcCall)}
    msgs = [m for m in dec.select(conn=conn, layer="grpc", type="message") if isinstance(m, GrpcMessage)]
    headers = dec.select(conn=conn, layer="http2", type="HEADERS")
    pings = dec.select(conn=conn, layer="http2", type="PING")
    f: dict[str, Any] = {
        "conn": conn, "rtt": rtt, "server": s["server"], "calls": plural(len(calls), "call"),
        "tls": "TLS " + s["tls"]["version"] if s.get("tls") else "no TLS (h2c, prior knowledge)",
        "pings": plural(len(pings), "PING frame"),
        "agent": next((v for h in headers if h.direction == "c2s" and h.headers for n, v in h.headers if n == "user-agent"), "?"),
        "ping_acks": plural(sum(1 for p in pings if "ACK" in p.flag_names), "acknowledgement"),
        "msg_bytes": sum(m.length for m in msgs), "msgs": len(msgs),
        # what DATA frames carried beyond the messages themselves: the length prefixes
        "prefix_bytes": sum(d.length for d in dec.select(conn=conn, layer="http2", type="DATA") if d.stream)
        - sum(m.length for m in msgs),
        "statuses": ", ".join(sorted({str(c.status) for c in calls.values()})),
    }
    for kind in _KINDS:
        c = calls[kind]
        mine = [m for m in msgs if m.stream == c.stream]
        up = [m for m in mine if m.direction == "c2s"]
        down = [m for m in mine if m.direction == "s2c"]
        hs = [h for h in headers if h.stream == c.stream]
        f.update({
            f"{kind}_stream": c.stream, f"{kind}_method": c.method, f"{kind}_status": c.status,
            f"{kind}_up": plural(len(up), "request message"), f"{kind}_down": plural(len(down), "response message"),
            f"{kind}_ms": ms(c.ts - c.start_ts), f"{kind}_rtt": ms(c.ts - c.start_ts) / rtt,
            f"{kind}_sizes": n_range(m.length for m in mine),
            f"{kind}_headers": plural(len(hs), "HEADERS frame"),
            f"{kind}_header_bytes": sum(h.length for h in hs),
            f"{kind}_req_hdr": hs[0].length if hs else 0,
        })
        if up and down:
            f[f"{kind}_first_reply_ms"] = ms(down[0].ts - up[0].ts)
            f[f"{kind}_after_last_up_ms"] = ms(down[-1].ts - up[-1].ts)
            f[f"{kind}_down_gaps"] = ms_range(ms(b.ts - a.ts) for a, b in zip(down, down[1:]))
            f[f"{kind}_up_spread_ms"] = ms(up[-1].ts - up[0].ts)
            f[f"{kind}_turns"] = ms_range(ms(d.ts - u.ts) for u, d in zip(up, down))
            f[f"{kind}_interleaved"] = ("before" if down[0].ts < up[-1].ts else "after")
    f["prefix_each"] = f["prefix_bytes"] / f["msgs"] if f["msgs"] else 0.0
    f["hpack_first"] = f["unary_req_hdr"]
    f["hpack_later"] = n_range(f[f"{k}_req_hdr"] for k in _KINDS[1:])
    f["overhead_pct"] = 100.0 * f["prefix_bytes"] / (f["prefix_bytes"] + f["msg_bytes"]) if f["msgs"] else 0.0

    def call(kind: str) -> tuple[Pick, ...]:
        sid = calls[kind].stream
        return (Pick(conn=conn, layer="grpc", where=lambda e, sid=sid: e.stream == sid),
                Pick(conn=conn, layer="http2", type="HEADERS", stream=sid))

    steps = [
        StepSpec("One channel, one HTTP/2 connection",
                 "The client ({agent}) makes {calls} to {server} over HTTP/2 with {tls}, one call per stream: "
                 "{unary_method}, {server_streaming_method}, {client_streaming_method} and "
                 "{bidirectional_method}. Each message travels in DATA frames behind a {prefix_each:.0f}-byte "
                 "prefix (compressed flag and length): {prefix_bytes} prefix bytes for {msg_bytes} bytes of protobuf over {msgs} "
                 "messages ({overhead_pct:.0f}%).",
                 (Pick(conn=conn, layer="http2", type=("PREFACE", "SETTINGS")),)),
        StepSpec("Unary: one request, one response",
                 "Stream {unary_stream}: {unary_up}, {unary_down}, status {unary_status}. The reply comes "
                 "{unary_first_reply_ms:.1f} ms after the request ({unary_rtt:.2f} RTT for the whole call): a "
                 "remote function call costs one round trip. The call's {unary_headers} (request headers, "
                 "response headers, trailers carrying grpc-status) take {unary_header_bytes} bytes.",
                 call("unary")),
        StepSpec("Server streaming: one request, a stream of replies",
                 "Stream {server_streaming_stream}: {server_streaming_up}, then {server_streaming_down}, "
                 "{server_streaming_down_gaps} apart as the server produces them, on the same stream; the call "
                 "lasts {server_streaming_ms:.1f} ms and ends with trailers (status {server_streaming_status}).",
                 call("server_streaming")),
        StepSpec("Client streaming: many requests, one reply",
                 "Stream {client_streaming_stream}: {client_streaming_up} sent within "
                 "{client_streaming_up_spread_ms:.2f} ms, then the client ends its side of the stream; the "
                 "answer ({client_streaming_down}) arrives {client_streaming_after_last_up_ms:.1f} ms after the "
                 "last request, status {client_streaming_status}.",
                 call("client_streaming")),
        StepSpec("Bidirectional: both sides stream",
                 "Stream {bidirectional_stream}: {bidirectional_up} and {bidirectional_down} on one stream; the "
                 "first reply arrives {bidirectional_interleaved} the client's last message, so the two "
                 "directions really overlap. Each reply follows its message by {bidirectional_turns}; the call "
                 "lasts {bidirectional_ms:.1f} ms ({bidirectional_rtt:.2f} RTT), status {bidirectional_status}.",
                 call("bidirectional")),
        StepSpec("What the channel adds",
                 "HPACK works across calls: the first call's request headers take {hpack_first} bytes, later "
                 "calls' {hpack_later} bytes, as the channel's repeated metadata is indexed. The client library also sent "
                 "{pings} ({ping_acks}) to estimate the connection's bandwidth-delay product. Statuses of the "
                 "calls (grpc-status): {statuses}.",
                 (Pick(conn=conn, layer="http2", type=("HEADERS", "PING")),)),
    ]
    return f, steps
