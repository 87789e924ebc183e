"""HTTP/2: six requests multiplexed on one TLS connection, and HPACK's measured header savings."""

from __future__ import annotations

from typing import Any

from ..events import Http2Frame
from .decoded import Decoded
from .measure import flights_before, irtt_ms, ms, n_range, plural
from .model import Pick, StepSpec

NAME = "http2-multiplex"
TITLE = "HTTP/2 multiplexing on one connection, and HPACK's header savings"
DESCRIPTION = "HTTP/2: parallel requests multiplexed as streams on one connection, and HPACK's measured header savings"
CAPTURES = ("http2-multiplex",)


def text_size(headers: list[list[Any]]) -> int:
    """Bytes of a header list written out as ``name: value\\r\\n`` lines (what HTTP/1.1 would send)."""
    return sum(len(n or "") + len(v or "") + 4 for n, v in headers)


def h2_conn(dec: Decoded) -> int:
    ids = [i for i, s in dec.conns.items() if s.get("app") in ("h2", "grpc")]
    if not ids:
        raise LookupError(f"{dec.ref.name}: no HTTP/2 connection")
    return ids[0]


def hpack_facts(dec: Decoded, conn: int, direction: str = "c2s") -> dict[str, Any]:
    """Header block sizes per request: the first one against the later ones, and what changed."""
    blocks: list[Http2Frame] = [f for f in dec.select(conn=conn, layer="http2", type="HEADERS", direction=direction)
                                if f.headers is not None]
    first, later = blocks[0], blocks[1:]
    firsts = {n: v for n, v in first.headers}
    changed = sorted({n for b in later for n, v in b.headers if firsts.get(n) != v})
    hp = (dec.conns[conn].get("http2") or {}).get("hpack") or {}
    side = hp.get(direction) or {}
    return {
        "blocks": len(blocks), "first_len": first.length, "first_text": text_size(first.headers),
        "first_frame": first.frame, "fields": len(first.headers),
        "later_min": min((b.length for b in later), default=0), "later_max": max((b.length for b in later), default=0),
        "later": n_range(b.length for b in later),
        "later_text": max((text_size(b.headers) for b in later), default=0),
        "changed": ", ".join(changed) or "nothing",
        "enc": side.get("encoded_bytes", 0), "plain": side.get("plain_bytes", 0), "pct": side.get("savings_pct", 0.0),
        "frames": tuple(b.frame for b in blocks),
    }


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    conn = h2_conn(dec)
    s = dec.conns[conn]
    rtt = irtt_ms(dec, conn)
    reqs = dec.select(conn=conn, layer="http2", type="HEADERS", direction="c2s")
    preface = dec.one(conn=conn, layer="http2", type="PREFACE")
    data = [f for f in dec.select(conn=conn, layer="http2", type="DATA", direction="s2c") if f.length]
    ends = {}
    for f in dec.select(conn=conn, layer="http2", direction="s2c"):
        if f.stream and "END_STREAM" in f.flag_names:
            ends[f.stream] = f
    order = []
    for f in data:
        if not order or order[-1] != f.stream:
            order.append(f.stream)
    t0 = reqs[0].ts
    c2s, s2c = hpack_facts(dec, conn, "c2s"), hpack_facts(dec, conn, "s2c")
    n = len(reqs)
    f: dict[str, Any] = {
        "conn": conn, "rtt": rtt, "tls": (s.get("tls") or {}).get("version", "?"), "alpn": (s.get("tls") or {}).get("alpn"),
        "tcp_conns": plural(sum(1 for c in dec.conns.values() if c["transport"] == "tcp"), "TCP connection"),
        "preface_frame": preface.frame, "setup": plural(flights_before(dec, reqs[0].frame, [conn]), "round trip"),
        "n": n, "streams": ", ".join(str(r.stream) for r in reqs),
        "req_frames": f"{reqs[0].frame}-{reqs[-1].frame}", "req_spread_ms": ms(reqs[-1].ts - t0),
        "resp_first_ms": ms(min(e.ts for e in ends.values()) - t0), "resp_last_ms": ms(max(e.ts for e in ends.values()) - t0),
        "resp_last_rtt": ms(max(e.ts for e in ends.values()) - t0) / rtt,
        "data_frames": len(data), "data_order": " ".join(map(str, order)),
        "body_bytes": sum(f.length for f in data),
        "serial_rtt": n, "serial_ms": n * rtt,
        "c2s_first_len": c2s["first_len"], "c2s_first_text": c2s["first_text"], "c2s_fields": c2s["fields"],
        "c2s_later": c2s["later"], "c2s_later_max": c2s["later_max"], "c2s_later_text": c2s["later_text"],
        "c2s_changed": c2s["changed"], "c2s_enc": c2s["enc"], "c2s_plain": c2s["plain"], "c2s_pct": c2s["pct"],
        "c2s_blocks": c2s["blocks"],
        "s2c_first_len": s2c["first_len"], "s2c_later": s2c["later"],
        "s2c_changed": s2c["changed"], "s2c_enc": s2c["enc"], "s2c_plain": s2c["plain"], "s2c_pct": s2c["pct"],
    }
    f["c2s_later_pct"] = 100.0 * f["c2s_later_max"] / f["c2s_first_len"] if f["c2s_first_len"] else 0.0
    f["serial_saved_ms"] = f["serial_ms"] - f["resp_last_ms"]
    if s2c["later_max"] < s2c["first_len"]:
        s2c_text = ("Response headers: {s2c_enc} bytes for {s2c_plain} bytes of text, {s2c_pct:.1f}% saved; blocks "
                    "shrink from {s2c_first_len} to {s2c_later} bytes, and fields whose values change "
                    "({s2c_changed}) are the ones still sent as literals.")
    else:
        s2c_text = ("Response headers: {s2c_enc} bytes for {s2c_plain} bytes of text, {s2c_pct:.1f}% saved, but "
                    "every block stays {s2c_later} bytes: this server's encoder does not add its response fields "
                    "to the dynamic table, so only the static table and Huffman coding help.")
    steps = [
        StepSpec("One connection",
                 "All of this runs on {tcp_conns}: conn {conn}, TLS {tls} with ALPN {alpn}. The client sends "
                 "the HTTP/2 connection preface and its SETTINGS (frame {preface_frame}) right after its TLS "
                 "Finished; the first request leaves after {setup} of setup (TCP, then TLS).",
                 (Pick(conn=conn, layer="http2", type=("PREFACE", "SETTINGS", "WINDOW_UPDATE")),)),
        StepSpec("Requests as streams, all at once",
                 "{n} GETs go out as HEADERS frames on streams {streams} (frames {req_frames}), all within "
                 "{req_spread_ms:.2f} ms: nothing waits for a response and no second connection is needed. Each "
                 "stream is an independent request/response with its own id.",
                 (Pick(conn=conn, layer="http2", type="HEADERS", direction="c2s"),)),
        StepSpec("Responses share the connection",
                 "Responses complete between {resp_first_ms:.1f} ms and {resp_last_ms:.1f} ms after the first "
                 "request ({resp_last_rtt:.2f} RTT for all {n}). Their {data_frames} DATA frames ({body_bytes} "
                 "body bytes) arrive in this stream order: {data_order}. The same requests one at a time on an "
                 "HTTP/1.1 keep-alive connection would need about {serial_rtt} RTT ({serial_ms:.1f} ms): "
                 "multiplexing saved {serial_saved_ms:.1f} ms without opening more connections.",
                 (Pick(conn=conn, layer="http2", direction="s2c", type=("HEADERS", "DATA")),)),
        StepSpec("HPACK: the first request pays, the others refer back",
                 "The first request's header block is {c2s_first_len} bytes for {c2s_fields} fields that take "
                 "{c2s_first_text} bytes as HTTP/1.1 text. HPACK stored them in its dynamic table, so each later "
                 "block is {c2s_later} bytes ({c2s_later_pct:.0f}% of the first) for "
                 "{c2s_later_text} bytes of text: only what changed ({c2s_changed}) is sent as a literal, the "
                 "rest as one-byte indexes.",
                 (Pick(conn=conn, layer="http2", type="HEADERS", direction="c2s"),)),
        StepSpec("HPACK, measured",
                 "Request headers: {c2s_enc} bytes on the wire for {c2s_plain} bytes of header text over "
                 "{c2s_blocks} blocks, {c2s_pct:.1f}% saved. " + s2c_text,
                 (Pick(conn=conn, layer="http2", type="HEADERS"),)),
    ]
    return f, steps
