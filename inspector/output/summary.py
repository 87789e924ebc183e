"""``netinspect summary``: one record per connection, as JSON or a readable table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from ..flows.connection import DECODING, Connection


def not_blocked_text(units: list[str], most: int = 6) -> str:
    """"; not blocked: ..." for a QUIC episode's streams that went on while one waited ("" if none)."""
    if not units:
        return ""
    more = f" and {len(units) - most} more" if len(units) > most else ""
    return "; not blocked: " + ", ".join(units[:most]) + more


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def connection_summary(conn: Connection, registry: Any = None) -> dict[str, Any]:
    """The ``summary --json`` object of one connection (keys documented in the README).

    ``registry`` (the pipeline's) adds what spans connections: the DNS lookup
    that named the server, SSE streams and their reconnections.
    """
    out: dict[str, Any] = {
        "id": conn.id,
        "transport": conn.transport,
        "client": conn.client,
        "server": conn.server,
        "start": conn.start,
        "end": conn.end,
        "duration_ms": _ms(conn.end - conn.start),
        "packets": conn.packets,
        "bytes": conn.bytes,
        "payload_bytes": {"c2s": conn.dir_bytes[0], "s2c": conn.dir_bytes[1]},
        "app": conn.transport,
        "malformed": conn.malformed,
    }
    tcp = conn.tcp
    if tcp is not None:
        gaps = sum(r.gaps for r in tcp.reasm if r is not None)
        out["tcp"] = {
            "irtt_ms": _ms(tcp.irtt),
            "handshake": tcp.handshake,
            "closed_by": tcp.closed_by,
            "retransmissions": tcp.retransmissions,
            "half_close": tcp.data_after_fin,
            "analysis": dict(sorted(tcp.counts.items())),
            "rtt_ms": {
                "samples": tcp.rtt_count,
                "min": _ms(tcp.rtt_min),
                "avg": _ms(tcp.rtt_sum / tcp.rtt_count) if tcp.rtt_count else None,
            },
            "options": {"client": tcp.options[0].to_dict(), "server": tcp.options[1].to_dict()},
            "gaps": gaps,
            "retransmitted_bytes_differ": tcp.mismatches,
        }
    if conn.decoder_state == DECODING or conn.decoder is not None:
        try:
            extra = conn.decoder.summary() or {}
        except Exception as e:  # a decoder's summary must not break the report
            extra = {"decoder_error": f"{type(e).__name__}: {e}"}
        out.update(extra)
    extras = getattr(registry, "connection_extras", None)
    if extras is not None:
        out.update(extras(conn.id, conn.ctx.server[0] if conn.ctx else "", conn.start))
    # analysis keys (ledger, rtt_ms, rtt, what_if, hol): see inspector.analysis
    from ..analysis import summary_keys

    out.update(summary_keys(conn))
    return out


def summaries(connections: Iterable[Connection], registry: Any = None) -> list[dict[str, Any]]:
    return [connection_summary(c, registry) for c in connections]


def anomalies(s: dict[str, Any]) -> str:
    """A short text of what went wrong on a connection."""
    parts: list[str] = []
    tcp = s.get("tcp")
    if tcp:
        a = tcp["analysis"]
        for key, label in (
            ("retransmission", "retrans"),
            ("lost_segment", "lost"),
            ("out_of_order", "ooo"),
            ("duplicate_ack", "dup-ack"),
            ("zero_window", "zero-win"),
            ("window_full", "win-full"),
        ):
            if a.get(key):
                parts.append(f"{a[key]} {label}")
        if tcp["gaps"]:
            parts.append(f"{tcp['gaps']} gap")
    if s.get("malformed"):
        parts.append(f"{s['malformed']} malformed")
    return ", ".join(parts) or "-"


def detail_lines(s: dict[str, Any]) -> list[str]:
    """One line per decoded layer worth a glance: TLS, QUIC, DNS, WebSocket."""
    lines = []
    tls = s.get("tls")
    if tls:
        bits = [f"TLS {tls.get('version') or '?'}"]
        if tls.get("sni"):
            bits.append(f"sni={tls['sni']}")
        if tls.get("alpn"):
            bits.append(f"alpn={tls['alpn']}")
        if tls.get("handshake_rtts") is not None:
            bits.append(f"handshake {tls['handshake_rtts']} RTT")
        if tls.get("resumed"):
            bits.append("resumed")
        if tls.get("early_data"):
            bits.append(f"0-RTT {tls['early_data']}")
        bits.append("decrypted" if tls.get("decrypted") else "encrypted, no key")
        lines.append(", ".join(bits))
    quic = s.get("quic")
    if quic:
        bits = [f"QUIC {quic.get('version') or '?'}"]
        for key in ("sni", "alpn"):
            if quic.get(key):
                bits.append(f"{key}={quic[key]}")
        if quic.get("handshake_rtts") is not None:
            bits.append(f"handshake {quic['handshake_rtts']} RTT")
        bits.append("decrypted" if quic.get("decrypted") else "encrypted, no key")
        lines.append(", ".join(bits))
    for lookup in (s.get("dns") or {}).get("lookups", [])[:20]:
        ms = lookup.get("lookup_ms")
        lines.append(f"DNS {lookup.get('qtype', '')} {lookup.get('qname', '')} {'' if ms is None else f'{ms:.1f} ms'}".rstrip())
    ledger = s.get("ledger")
    if ledger:
        steps = " + ".join(f"{st['step']} {st['rtts']:g}" for st in ledger)
        total = sum(st.get("ms") or 0 for st in ledger)
        lines.append(f"setup: {steps} RTT ({total:.1f} ms; RTT {s.get('rtt_ms') or 0:.1f} ms)")
    for w in s.get("what_if") or []:
        lines.append(f"what if: {w['text']}")
    for h in s.get("hol") or []:
        victims = ", ".join(f"{v['unit']} {v['blocked_ms']:.1f} ms" for v in h.get("victims") or []) or "no victims"
        lines.append(f"HOL ({h['kind']}) {h['duration_ms']:.1f} ms: {h['cause']}; blocked: {victims}"
                     + not_blocked_text(h.get("not_blocked") or []))
    ws = s.get("websocket")
    if isinstance(ws, dict):
        lines.append("WebSocket " + ", ".join(f"{k}={v}" for k, v in ws.items() if isinstance(v, (int, float, str)))[:100])
    return lines


_INDENT = " " * 6
#: lines written at once by write_text
_BATCH = 1024


def write_text(conns: Iterable[dict[str, Any]], out: TextIO, source: str = "", count: int | None = None) -> None:
    """The readable table: one line per connection, requests indented beneath (``count``: how many
    ``conns`` yields, when it is not a list)."""
    # Lines are written in batches of _BATCH: a write per line is a system call each when stdout is
    # unbuffered (PYTHONUNBUFFERED, python -u), 30k of them for a 30k-request connection.
    lines: list[str] = []
    if source:
        n = len(conns) if count is None else count
        lines.append(f"{source}: {n} connection{'s' if n != 1 else ''}\n")
    header = f"{'id':>4}  {'proto':<10} {'client':<24} {'server':<24} {'dur ms':>9} {'pkts':>6} {'bytes':>9} {'iRTT ms':>8}  {'closed':<7} anomalies"
    lines.append(header + "\n")
    for s in conns:
        tcp = s.get("tcp") or {}
        irtt = tcp.get("irtt_ms")
        proto = s["app"] if s["app"] != s["transport"] else s["transport"]
        closed = tcp.get("closed_by") or ("-" if tcp else "")
        lines.append(
            f"{s['id']:>4}  {proto:<10} {s['client']:<24} {s['server']:<24} {s['duration_ms']:>9.1f} "
            f"{s['packets']:>6} {s['bytes']:>9} {'' if irtt is None else f'{irtt:.3f}':>8}  {closed:<7} {anomalies(s)}\n"
        )
        for line in detail_lines(s):
            lines.append(f"{_INDENT}{line}\n")
        for req in s.get("requests") or []:
            sid = req.get("stream")
            status = req.get("status")
            lines.append(f"{_INDENT}{'' if sid is None else f'[{sid}] '}{req.get('method') or '-'} "
                         f"{req.get('authority') or ''}{req.get('path') or ''} -> {'-' if status is None else status}\n")
            if len(lines) >= _BATCH:
                out.write("".join(lines))
                lines.clear()
        if len(lines) >= _BATCH:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))
