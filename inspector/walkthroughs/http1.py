"""HTTP/1.1: keep-alive vs a connection per request, parallel connections, pipelining's HOL blocking."""

from __future__ import annotations

from typing import Any

from ..events import HttpRequest, HttpResponse
from .decoded import Decoded
from .measure import handshake, hol_note, irtt_ms, ledger_note, ms, ms_range, plural
from .model import Pick, StepSpec

NAME = "http1"
TITLE = "HTTP/1.1: keep-alive, a connection per request, parallel connections, pipelining"
DESCRIPTION = ("HTTP/1.1: keep-alive vs a connection per request, parallel connections per host, "
               "and pipelining's head-of-line blocking")
CAPTURES = ("http1-keepalive",)


def _reqs(dec: Decoded, conn: int) -> list[HttpRequest]:
    return dec.select(conn=conn, layer="http", type="request")


def _resps(dec: Decoded, conn: int) -> list[HttpResponse]:
    return dec.select(conn=conn, layer="http", type="response")


def _groups(dec: Decoded) -> dict[str, list[int]]:
    """Sort the connections into the capture's four experiments by what they did."""
    rtt = min(irtt_ms(dec, c) for c in dec.conns) / 1000
    starts = {c: s["start"] for c, s in dec.conns.items()}
    parallel = sorted(c for c in dec.conns if any(o != c and abs(starts[o] - starts[c]) < rtt / 2 for o in dec.conns))
    pipelined = [c for c, s in dec.conns.items() if (s.get("http1") or {}).get("pipelined")]
    single = [c for c in dec.conns if c not in parallel and c not in pipelined and len(_reqs(dec, c)) == 1]
    keepalive = [c for c in dec.conns if c not in parallel and c not in pipelined and len(_reqs(dec, c)) > 1]
    return {"keepalive": keepalive, "single": single, "parallel": parallel, "pipelined": pipelined}


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    g = _groups(dec)
    ka, pp = g["keepalive"][0], g["pipelined"][0]
    rtt = irtt_ms(dec, ka)
    f: dict[str, Any] = {"rtt": rtt, "ka": ka, "pp": pp}

    # keep-alive: every request after the first reuses the connection
    ka_syn = handshake(dec, ka)["syn"]
    ka_reqs, ka_resps = _reqs(dec, ka), _resps(dec, ka)
    gaps = [ms(r.ts - p.ts) for p, r in zip(ka_resps, ka_reqs[1:])]
    f.update({
        "ka_n": len(ka_reqs), "ka_paths": ", ".join(r.target for r in ka_reqs),
        "ka_ms": ms(ka_resps[-1].ts - ka_syn.ts), "ka_rtt": ms(ka_resps[-1].ts - ka_syn.ts) / rtt,
        "ka_req_ms": sum(ms(p.ts - q.ts) for q, p in zip(ka_reqs, ka_resps)) / len(ka_reqs),
        "ka_next_ms": max(gaps) if gaps else 0.0,
        "ka_packets": dec.conns[ka]["packets"], "ka_handshakes": plural(1, "handshake"),
    })

    # one connection per request
    single = g["single"]
    s_first = handshake(dec, single[0])["syn"]
    s_last = _resps(dec, single[-1])[-1]
    f.update({
        "single_n": len(single), "single_conns": ", ".join(map(str, single)),
        "single_ms": ms(s_last.ts - s_first.ts), "single_rtt": ms(s_last.ts - s_first.ts) / rtt,
        "single_handshakes": plural(len(single), "handshake"),
        "single_packets": sum(dec.conns[c]["packets"] for c in single),
        "close_hdr": "Connection: close" if all(
            any(h[0] == "connection" and h[1].lower() == "close" for h in _reqs(dec, c)[0].headers) for c in single
        ) else "no Connection: close header",
    })
    f["single_note"] = ledger_note(dec.conns[single[-1]], single[-1])
    f["single_extra_ms"] = f["single_ms"] - f["ka_ms"]
    f["single_extra_packets"] = f["single_packets"] - f["ka_packets"]

    # parallel connections to one host
    par = g["parallel"]
    syns = [handshake(dec, c)["syn"] for c in par]
    par_reqs = {c: _reqs(dec, c) for c in par}
    par_resps = {c: _resps(dec, c) for c in par}
    n_par_reqs = sum(len(v) for v in par_reqs.values())
    waits = [ms(par_reqs[c][1].ts - par_reqs[c][0].ts) for c in par if len(par_reqs[c]) > 1]
    last = max(r.ts for v in par_resps.values() for r in v)
    f.update({
        "par_n": len(par), "par_conns": ", ".join(map(str, par)), "par_reqs": n_par_reqs,
        "par_spread_ms": ms(max(s.ts for s in syns) - min(s.ts for s in syns)),
        "par_wait": ms_range(waits),
        "par_waiting": plural(len(waits), "request"),
        "par_ms": ms(last - min(s.ts for s in syns)), "par_rtt": ms(last - min(s.ts for s in syns)) / rtt,
        # the same requests one after another on a single kept-alive connection: a handshake, then one RTT each
        "par_serial_rtt": 1 + n_par_reqs,
    })
    f["par_serial_ms"] = f["par_serial_rtt"] * rtt
    f["par_saved_ms"] = f["par_serial_ms"] - f["par_ms"]

    # pipelining
    p_reqs, p_resps = _reqs(dec, pp), _resps(dec, pp)
    big, small = p_resps[0], p_resps[1]
    f.update({
        "pp_n": len(p_reqs), "pp_frame": p_reqs[0].frame,
        "pp_one_frame": "in one segment" if len({r.frame for r in p_reqs}) == 1 else "back to back",
        "pp_paths": ", ".join(r.target for r in p_reqs),
        "big_path": big.request_target, "big_bytes": big.body_bytes, "big_frame": big.frame,
        "big_ms": ms(big.ts - p_reqs[0].ts), "big_rtt": ms(big.ts - p_reqs[0].ts) / rtt,
        "small_path": small.request_target, "small_bytes": small.body_bytes, "small_frame": small.frame,
        "small_first_ms": ms(small.first_byte_ts - p_reqs[1].ts),
        "small_ms": ms(small.ts - p_reqs[1].ts), "small_rtt": ms(small.ts - p_reqs[1].ts) / rtt,
        "small_after_big": "after" if small.first_byte_ts >= big.ts else "before",
        "small_hol_ms": ms(small.first_byte_ts - p_reqs[1].ts) - rtt,
        "pp_last_ms": ms(p_resps[-1].ts - p_reqs[0].ts),
        "pp_note": hol_note(dec.conns[pp], "http1"),
        "pipelined_count": (dec.conns[pp].get("http1") or {}).get("pipelined", 0),
    })

    steps = [
        StepSpec("Keep-alive: one connection, requests one after another",
                 "Conn {ka} carries {ka_n} GETs ({ka_paths}) over {ka_handshakes}. Each request waits for the "
                 "previous response (the next leaves at most {ka_next_ms:.1f} ms after it), and each exchange "
                 "costs about one round trip ({ka_req_ms:.1f} ms on average, RTT {rtt:.1f} ms). SYN to last "
                 "response: {ka_ms:.1f} ms = {ka_rtt:.2f} RTT, in {ka_packets} packets.",
                 (Pick(conn=ka, layer="http"), Pick(conn=ka, layer="tcp", where=lambda e: "S" in e.flags))),
        StepSpec("A new connection for every request",
                 "The same objects fetched with {close_hdr} on conns {single_conns}: {single_handshakes}, each a "
                 "full round trip before its request can leave. First SYN to last response: {single_ms:.1f} ms = "
                 "{single_rtt:.2f} RTT, {single_extra_ms:.1f} ms more than keep-alive, and {single_packets} "
                 "packets ({single_extra_packets} more: every connection also opens and closes).{single_note}",
                 tuple(Pick(conn=c, layer=("http" if i % 2 else "tcp"), where=(None if i % 2 else (lambda e: "S" in e.flags or "F" in e.flags)))
                       for c in single for i in range(2))),
        StepSpec("Parallel connections to one host",
                 "To go faster, clients open several connections to one host at once. Here {par_n} connections (conns "
                 "{par_conns}) start within {par_spread_ms:.1f} ms of each other and share {par_reqs} requests. "
                 "With every connection busy, {par_waiting} had to wait for a free one: the second request on "
                 "each connection left {par_wait} after the first. All "
                 "{par_reqs} were done {par_ms:.1f} ms ({par_rtt:.2f} RTT) after the first SYN; one after "
                 "another on a single kept-alive connection they would need about {par_serial_rtt} RTT "
                 "({par_serial_ms:.1f} ms), so parallelism saved {par_saved_ms:.1f} ms at the cost of "
                 "{par_n} handshakes.",
                 tuple(Pick(conn=c, layer="http") for c in par)),
        StepSpec("Pipelining: all requests at once...",
                 "Conn {pp} sends {pp_n} requests {pp_one_frame} (frame {pp_frame}) without waiting: {pp_paths}. "
                 "The decoder counts {pipelined_count} of them as pipelined (sent before the previous response "
                 "completed). HTTP/1.1 has no request ids, so the server must answer in order.",
                 (Pick(conn=pp, layer="http", type="request"),)),
        StepSpec("...and the head-of-line blocking it causes",
                 "{big_path} ({big_bytes} bytes) completes {big_ms:.1f} ms ({big_rtt:.2f} RTT) after the requests "
                 "(frame {big_frame}). {small_path}, only {small_bytes} bytes, gets its first byte "
                 "{small_after_big} the last byte of {big_path}, {small_first_ms:.1f} ms after its request: "
                 "{small_hol_ms:.1f} ms more than the round trip it needs on an idle connection. It completes "
                 "{small_ms:.1f} ms ({small_rtt:.2f} RTT) after it was asked for (frame {small_frame}). A small "
                 "response stuck behind a big one on the same connection is head-of-line blocking in HTTP/1.1; "
                 "HTTP/2 removes it by interleaving streams (see http2-multiplex).{pp_note}",
                 (Pick(conn=pp, layer="http", type="response"), Pick(conn=pp, layer="analysis", type="hol"))),
    ]
    return f, steps
