"""DNS before connecting: the lookup's cost in front of the TCP and TLS round trips."""

from __future__ import annotations

from typing import Any

from ..events import DnsMessage
from .decoded import Decoded
from .measure import flights_before, handshake, irtt_ms, ledger_note, ms, plural
from .model import Pick, StepSpec

NAME = "dns-then-connect"
TITLE = "DNS before connecting: the lookup in front of TCP and TLS"
DESCRIPTION = "DNS before connecting: the lookup's cost in front of the TCP and TLS round trips of an HTTPS request"
CAPTURES = ("dns-then-connect",)


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    dns_conn = next(i for i, s in dec.conns.items() if s.get("app") == "dns")
    conn = next(i for i, s in dec.conns.items() if s.get("dns_lookup"))
    s = dec.conns[conn]
    link = s["dns_lookup"]
    msgs = [m for m in dec.select(conn=dns_conn, layer="dns") if isinstance(m, DnsMessage)]
    queries = [m for m in msgs if m.type == "query"]
    answers = [m for m in msgs if m.type == "response"]
    used = next(a for a in answers if a.frame == link["response_frame"])
    hs = handshake(dec, conn)
    ch = dec.one(conn=conn, layer="tls", type="ClientHello")
    sh = dec.one(conn=conn, layer="tls", type="ServerHello")
    req = next(e for e in dec.select(conn=conn, type=("HEADERS", "request"), direction="c2s") if e.layer in ("http", "http2"))
    reqs = s.get("requests") or []
    resp_ts = reqs[0]["response_ts"] if reqs else None
    t0 = queries[0].ts
    rtt = irtt_ms(dec, conn)
    dns_ms = ms(used.ts - t0)
    wait_ms = ms(hs["syn"].ts - used.ts)
    tcp_ms = ms(ch.ts - hs["syn"].ts)
    tls_ms = ms(req.ts - ch.ts)
    first_byte_ms = ms(resp_ts - req.ts) if resp_ts else 0.0
    total = ms((resp_ts or req.ts) - t0)
    headers = getattr(req, "headers", None) or []
    f: dict[str, Any] = {
        "agent": next((v for n, v in headers if n == "user-agent"), "?"),
        "resolver_where": "on the server's host, across the same path"
        if dec.conns[dns_conn]["server"].rsplit(":", 1)[0] == s["server"].rsplit(":", 1)[0] else "on another host",
        "dns_conn": dns_conn, "conn": conn, "resolver": dec.conns[dns_conn]["server"], "qname": link["qname"],
        "queries": ", ".join(f"{q.qtype} (frame {q.frame})" for q in queries),
        "queries_n": plural(len(queries), "query", "queries"),
        "query_spread_ms": ms(queries[-1].ts - t0),
        "answers": "; ".join(f"{a.qtype}: {', '.join(x['data'] for x in a.answers) or 'no record'} "
                             f"after {a.lookup_ms:.1f} ms (frame {a.frame})" for a in answers),
        "address": link["address"], "ttl": link.get("ttl"), "dns_ms": dns_ms, "rtt": rtt, "dns_rtt": dns_ms / rtt,
        "server": s["server"], "syn_frame": hs["syn"].frame, "wait_ms": wait_ms,
        "all_answers_ms": ms(max(a.ts for a in answers) - t0),
        "tcp_ms": tcp_ms, "tcp_rtt": tcp_ms / rtt, "ch_frame": ch.frame,
        "tls": (s.get("tls") or {}).get("version", "?"), "tls_rtts": plural((s.get("tls") or {}).get("handshake_rtts") or 0, "round trip"),
        "sh_frame": sh.frame, "tls_ms": tls_ms, "tls_rtt": tls_ms / rtt, "req_frame": req.frame,
        "req_ms": ms(req.ts - t0), "req_rtt": ms(req.ts - t0) / rtt,
        "flights": plural(flights_before(dec, req.frame, [dns_conn, conn]), "round trip"),
        "first_byte_ms": first_byte_ms, "total_ms": total,
        "ledger_note": ledger_note(s, conn),
        "dns_pct": 100.0 * dns_ms / total if total else 0.0,
    }
    steps = [
        StepSpec("Nothing cached: ask the resolver",
                 "Before the client ({agent}) can connect to {qname} it needs an address. The stub resolver "
                 "sends {queries_n} to {resolver} within {query_spread_ms:.2f} ms: {queries}.",
                 (Pick(conn=dns_conn, layer="dns", type="query"),)),
        StepSpec("The answers",
                 "{answers}. The lookup the connection used took {dns_ms:.1f} ms ({dns_rtt:.2f} RTT; the resolver "
                 "runs {resolver_where}). The answer may be cached for {ttl} s.",
                 (Pick(conn=dns_conn, layer="dns", type="response"),)),
        StepSpec("Then TCP",
                 "The SYN to {server} (frame {syn_frame}) leaves {wait_ms:.1f} ms after the answer it needed. "
                 "TCP's handshake costs {tcp_ms:.1f} ms until the ClientHello can go (frame {ch_frame}), "
                 "{tcp_rtt:.2f} RTT at {rtt:.1f} ms.",
                 (Pick(conn=conn, layer="tcp", frames=(hs["syn"].frame, hs["synack"].frame, hs["ack"].frame)),)),
        StepSpec("Then TLS",
                 "TLS {tls} takes {tls_rtts}: ServerHello in frame {sh_frame}, and the request leaves in frame "
                 "{req_frame}, {tls_ms:.1f} ms ({tls_rtt:.2f} RTT) after the ClientHello.",
                 (Pick(conn=conn, layer="tls", type=("ClientHello", "ServerHello", "Finished")),
                  Pick(conn=conn, frames=(req.frame,), type=("HEADERS", "request")))),
        StepSpec("The bill",
                 "From the first DNS query to the request: {req_ms:.1f} ms, {req_rtt:.2f} RTT, {flights} of "
                 "waiting (DNS, TCP, TLS). The response's first byte came {first_byte_ms:.1f} ms later. Of the "
                 "{total_ms:.1f} ms until then, the lookup was {dns_pct:.0f}%; with the address cached (for up to "
                 "{ttl} s) the request would have left {dns_ms:.1f} ms earlier.{ledger_note}",
                 (Pick(conn=dns_conn, layer="dns"), Pick(conn=conn, frames=(req.frame,), type=("HEADERS", "request")),
                  Pick(conn=conn, layer="analysis", type=("ledger", "what_if")))),
    ]
    return f, steps
