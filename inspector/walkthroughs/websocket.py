"""WebSocket: the HTTP/1.1 upgrade, masking, framing overhead against HTTP requests, ping/pong, close."""

from __future__ import annotations

from typing import Any

from ..events import WsFrame, WsMessage
from .decoded import Decoded
from .measure import flights_before, irtt_ms, ledger_note, ms, ms_range, n_range, plural
from .model import Pick, StepSpec

NAME = "websocket"
TITLE = "WebSocket: upgrade, masking, framing overhead, ping/pong, close"
DESCRIPTION = "WebSocket: the HTTP upgrade, client masking, per-message framing overhead vs HTTP polling, ping/pong, close"
CAPTURES = ("websocket",)


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    conn = next(i for i, s in dec.conns.items() if s.get("app") == "websocket")
    s = dec.conns[conn]
    ws = s["websocket"]
    rtt = irtt_ms(dec, conn)
    req = dec.one(conn=conn, layer="http", type="request")
    resp = dec.one(conn=conn, layer="http", type="response")
    hs = dec.one(conn=conn, layer="websocket", type="handshake")
    frames = [e for e in dec.select(conn=conn, layer="websocket") if isinstance(e, WsFrame)]
    msgs = [e for e in dec.select(conn=conn, layer="websocket", type="message") if isinstance(e, WsMessage)]
    c2s = [fr for fr in frames if fr.direction == "c2s"]
    s2c = [fr for fr in frames if fr.direction == "s2c"]
    c2s_msgs = [m for m in msgs if m.direction == "c2s"]
    s2c_msgs = [m for m in msgs if m.direction == "s2c"]
    echoes = [ms(b.ts - a.ts) for a, b in zip(c2s_msgs, s2c_msgs)]
    hdr = {h[0]: h[1] for h in req.headers}
    over = ws["overhead"]
    eq = over["http_equivalent"]
    pings = ws.get("pings") or []
    by = {p["from"]: p for p in pings}
    close = ws.get("close") or {}
    data_c2s = [fr for fr in c2s if fr.opcode in (1, 2)]
    n_eq = eq["c2s"]["messages"] + eq["s2c"]["messages"]
    ws_total = eq["c2s"]["websocket_framing_bytes"] + eq["s2c"]["websocket_framing_bytes"]
    http_total = eq["c2s"]["http_head_bytes"] + eq["s2c"]["http_head_bytes"]
    f: dict[str, Any] = {
        "conn": conn, "rtt": rtt, "target": req.target, "req_frame": req.frame,
        "upgrade": hdr.get("upgrade", "?"), "key": hdr.get("sec-websocket-key", "?"),
        "status": resp.status, "reason": resp.reason, "resp_frame": resp.frame, "resp_ms": ms(resp.ts - req.ts),
        "accept": "matches" if hs.accept_ok else "does not match",
        "extensions": ", ".join(hs.extensions) or "none", "subprotocol": hs.subprotocol or "none",
        "first_msg_frame": c2s_msgs[0].frame if c2s_msgs else "-",
        "setup": plural(flights_before(dec, c2s_msgs[0].frame, [conn]), "round trip"),
        "setup_tcp": plural(flights_before(dec, req.frame, [conn]), "round trip"),
        "setup_upgrade": plural(flights_before(dec, c2s_msgs[0].frame, [conn]) - flights_before(dec, req.frame, [conn]), "round trip"),
        "c2s_frames": len(c2s), "c2s_masked": sum(fr.masked for fr in c2s),
        "s2c_frames": len(s2c), "s2c_masked": sum(fr.masked for fr in s2c),
        "c2s_hdr": n_range(fr.header_len for fr in data_c2s), "s2c_hdr": n_range(fr.header_len for fr in s2c if fr.opcode in (1, 2)),
        "msgs_c2s": len(c2s_msgs), "msgs_s2c": len(s2c_msgs),
        "kinds": ", ".join(f"{m.kind} {m.size} B" for m in c2s_msgs),
        "echo": ms_range(echoes), "echo_rtt": (sum(echoes) / len(echoes) / rtt) if echoes else 0.0,
        "c2s_framing": over["c2s"]["header_bytes"], "c2s_payload": over["c2s"]["message_bytes"],
        "c2s_pct": over["c2s"]["framing_pct"], "s2c_framing": over["s2c"]["header_bytes"],
        "s2c_pct": over["s2c"]["framing_pct"],
        "req_head": eq["request_head_bytes"], "resp_head": eq["response_head_bytes"],
        "per_msg_http": eq["request_head_bytes"] + eq["response_head_bytes"], "eq_msgs": n_eq,
        "ws_total": ws_total, "http_total": http_total, "ws_avg": ws_total / n_eq if n_eq else 0.0,
        "http_ratio": http_total / ws_total if ws_total else 0.0,
        "srv_ping_frame": by.get("server", {}).get("ping_frame", "-"), "srv_pong_frame": by.get("server", {}).get("pong_frame", "-"),
        "srv_ping_ms": by.get("server", {}).get("rtt_ms") or 0.0,
        "cli_ping_frame": by.get("client", {}).get("ping_frame", "-"), "cli_pong_frame": by.get("client", {}).get("pong_frame", "-"),
        "cli_ping_ms": by.get("client", {}).get("rtt_ms") or 0.0,
        "close_by": close.get("by", "?"), "close_code": close.get("code"), "close_reason": close.get("reason") or "",
        "close_frame": close.get("frame", "-"), "close_reply_frame": close.get("reply_frame", "-"),
        "close_reply_code": close.get("reply_code"), "closing_ms": close.get("closing_ms") or 0.0,
        "tcp_closer": s["tcp"]["closed_by"],
        "ledger_note": ledger_note(s, conn),
    }
    # the masking key is what a masked header has beyond an unmasked one of the same payload length class
    masked = [fr.header_len for fr in frames if fr.masked and fr.payload_len < 126]
    plain = [fr.header_len for fr in frames if not fr.masked and fr.payload_len < 126]
    f["mask_len"] = (min(masked) - min(plain)) if masked and plain else "?"
    f["cli_ping_rtt"] = f["cli_ping_ms"] / rtt
    steps = [
        StepSpec("The upgrade: an HTTP/1.1 request that stops being HTTP",
                 "The client sends GET {target} with Upgrade: {upgrade} and a random Sec-WebSocket-Key ({key}) "
                 "(frame {req_frame}). The server answers {status} {reason} {resp_ms:.1f} ms later "
                 "(frame {resp_frame}); its Sec-WebSocket-Accept {accept} the key's hash, proving it speaks "
                 "WebSocket. Extensions: {extensions}; subprotocol: {subprotocol}. The first message (frame "
                 "{first_msg_frame}) leaves after {setup}: {setup_tcp} before the upgrade request, {setup_upgrade} "
                 "for the upgrade itself.{ledger_note}",
                 (Pick(conn=conn, layer="http"), Pick(conn=conn, layer="websocket", type="handshake"),
                  Pick(conn=conn, layer="analysis", type="ledger"))),
        StepSpec("Frames, and why the client masks",
                 "Of the client's {c2s_frames} frames, {c2s_masked} are masked; of the server's {s2c_frames}, "
                 "{s2c_masked}. Every client frame XORs its payload with a fresh {mask_len}-byte key so that no byte a "
                 "script chooses appears on the wire as it wrote it (a defence against cache-poisoning "
                 "intermediaries); that costs the client headers of {c2s_hdr} bytes against the server's "
                 "{s2c_hdr}.",
                 (Pick(conn=conn, layer="websocket", type=("text", "binary"), direction="c2s"),
                  Pick(conn=conn, layer="websocket", type=("text", "binary"), direction="s2c"))),
        StepSpec("Messages, echoed",
                 "The client sends {msgs_c2s} messages ({kinds}) and the server echoes each: replies arrive "
                 "{echo} after the message left, {echo_rtt:.2f} RTT on average: no request line, no headers, just "
                 "a frame each way.",
                 (Pick(conn=conn, layer="websocket", type="message"),)),
        StepSpec("Framing overhead vs HTTP polling",
                 "Framing cost the client {c2s_framing} bytes for {c2s_payload} bytes of messages "
                 "({c2s_pct:.1f}% of what it sent after the upgrade, control frames included) and the server "
                 "{s2c_framing} bytes ({s2c_pct:.1f}%). Sent as HTTP/1.1 requests with this connection's own "
                 "headers instead, each message would carry a {req_head}-byte request head and a {resp_head}-byte "
                 "response head, {per_msg_http} bytes. WebSocket framed these {eq_msgs} messages in {ws_total} "
                 "bytes, {ws_avg:.1f} per message; as HTTP exchanges they would take {http_total} bytes of heads, "
                 "{http_ratio:.0f} times more.",
                 (Pick(conn=conn, layer="websocket", type=("text", "binary")),)),
        StepSpec("Heartbeats: ping and pong",
                 "The server pings (frame {srv_ping_frame}) and the client's pong follows {srv_ping_ms:.1f} ms "
                 "later (frame {srv_pong_frame}): seen from the client's side of the path, that is only the "
                 "client's reaction time. The client's own ping (frame {cli_ping_frame}) is answered after "
                 "{cli_ping_ms:.1f} ms (frame {cli_pong_frame}), {cli_ping_rtt:.2f} RTT: the path's round trip. "
                 "Heartbeats keep idle connections (and the middleboxes on their path) alive and detect dead peers.",
                 (Pick(conn=conn, layer="websocket", type=("ping", "pong")),)),
        StepSpec("Closing handshake",
                 "The {close_by} sends a close frame with code {close_code} and reason \"{close_reason}\" in frame "
                 "{close_frame}; the peer answers with close code {close_reply_code} (frame {close_reply_frame}), "
                 "{closing_ms:.1f} ms later. Only then does TCP close (the {tcp_closer} sends the first FIN).",
                 (Pick(conn=conn, layer="websocket", type="close"), Pick(conn=conn, layer="tcp", where=lambda e: "F" in e.flags))),
    ]
    return f, steps
