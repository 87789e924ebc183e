"""Words for events: one-line summaries, field trees, arrow labels, severities.

Plain functions over :mod:`inspector.events` objects (no Textual), keyed by
layer and type with a generic fallback, so events added by new decoders show
up with their fields before anyone writes a formatter for them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from inspector.events import Event
from inspector.output.summary import not_blocked_text

_BASE = ("frame", "ts", "conn", "layer", "type", "direction")
_FLAG_NAMES = {"S": "SYN", "A": "ACK", "F": "FIN", "R": "RST", "P": "PSH", "U": "URG", "E": "ECE", "C": "CWR"}
_MAX_INFO = 400


def rel_ms(ts: float, origin: float | None) -> float:
    return (ts - origin) * 1000 if origin is not None else 0.0


def clock(ts: float) -> str:
    """Wall-clock time of a capture timestamp, UTC, to the microsecond."""
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def tcp_flags(letters: str) -> str:
    return ",".join(_FLAG_NAMES.get(c, c) for c in letters)


def _headers(headers: Any, names: tuple[str, ...] = (":method", ":path", ":status", ":authority")) -> str:
    if not headers:
        return ""
    picked = [f"{n} {v}" for n, v in headers if n in names]
    return " ".join(picked)


def _short(value: Any, limit: int = 60) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count_names(names: list[str]) -> str:
    out: list[str] = []
    for n in names:
        if out and out[-1].split("×")[0] == n:
            head, _, count = out[-1].partition("×")
            out[-1] = f"{head}×{int(count or 1) + 1}"
        else:
            out.append(n)
    return ",".join(out)


def _tcp(e: Any) -> str:
    text = f"[{tcp_flags(e.flags)}] seq={e.seq} ack={e.ack} len={e.len} win={e.window}"
    if e.analysis:
        text += "  " + " ".join(e.analysis)
    return text


def _tls(e: Any) -> str:
    t = e.type
    if t == "ClientHello":
        return f"ClientHello TLS {e.version} sni={e.sni or '-'} alpn={','.join(e.alpn) or '-'}"
    if t in ("ServerHello", "HelloRetryRequest"):
        return f"{t} TLS {e.version} {e.cipher}" + (f" alpn={','.join(e.alpn)}" if e.alpn else "")
    if t == "EncryptedExtensions":
        return f"EncryptedExtensions alpn={','.join(e.alpn) or '-'}" + (" early_data" if e.early_data else "")
    if t == "Certificate":
        certs = e.certificates or []
        return f"Certificate {certs[0].get('subject', '') if certs else ''} (+{max(len(certs) - 1, 0)})"
    if t == "ApplicationData":
        if e.plaintext_len is None:
            return f"ApplicationData {e.length} B (encrypted)"
        return f"ApplicationData {e.length} B → {e.plaintext_len} B" + (" 0-RTT" if e.early else "")
    if t == "Alert":
        return f"Alert {e.level or '?'} {e.description or '(encrypted)'}"
    length = getattr(e, "length", None)
    return t + (f" {length} B" if length is not None else "")


def _http2(e: Any) -> str:
    t = e.type
    if t == "flow_control_stall":
        return f"flow-control stall s{e.stream} {e.duration_ms:.1f} ms"
    text = f"{t} s{e.stream}"
    if e.flag_names:
        text += " [" + ",".join(f.removeprefix("END_").lower().replace("_", "-") for f in e.flag_names) + "]"
    if e.headers:
        text += " " + _headers(e.headers)
    elif t == "DATA":
        text += f" {e.length} B"
    elif e.detail:
        text += " " + " ".join(f"{k}={_short(v, 40)}" for k, v in e.detail.items())
    if e.headers_reliable is False:
        text += " (HPACK out of sync)"
    return text


def _http3(e: Any) -> str:
    if e.type == "stream":
        return f"stream {e.stream} {e.stream_type}"
    text = f"{e.type} s{e.stream}"
    if e.headers:
        text += " " + _headers(e.headers)
    elif e.type == "DATA":
        text += f" {e.length} B"
    elif e.detail:
        text += " " + " ".join(f"{k}={_short(v, 40)}" for k, v in e.detail.items())
    return text


def _quic(e: Any) -> str:
    if e.type == "loss":
        resent = ", ".join(f"s{r.get('stream')}" for r in e.resent) if e.resent else "not resent"
        return f"packet {e.space} pn={e.pn} lost ({e.detected}); streams {e.streams or '-'}; resent: {resent}"
    if e.type == "note":
        return e.message
    pn = "?" if e.pn is None else e.pn
    text = f"{e.type} pn={pn} {e.length} B"
    if e.frames:
        text += " " + _count_names(e.frames)
    if e.reason:
        text += f" ({e.reason})"
    return text


def _http(e: Any) -> str:
    if e.type == "request":
        return f"{e.method} {e.target} {e.version}" + (f" +{e.body_bytes} B" if e.body_bytes else "")
    if e.type == "response":
        return f"{e.status} {e.reason} {e.version}" + (f" {e.body_bytes} B" if e.body_bytes else "")
    return _generic(e)


def _websocket(e: Any) -> str:
    t = e.type
    if t == "message":
        body = f" {e.text!r}" if e.text is not None else ""
        return f"{e.kind} message {e.size if e.size is not None else '?'} B{_short(body, 70)}"
    if t == "handshake":
        return f"handshake over {e.transport} accept={'ok' if e.accept_ok else e.accept_ok}"
    if t == "close":
        return f"close {e.code} {e.reason!r}" + (" (initiator)" if e.initiator else "")
    if t == "pong" and getattr(e, "rtt_ms", None) is not None:
        return f"pong rtt={e.rtt_ms:.1f} ms"
    if hasattr(e, "payload_len"):
        return f"{t} {e.payload_len} B" + ("" if e.fin else " (more)") + (" masked" if e.masked else "")
    return _generic(e)


def _dns(e: Any) -> str:
    text = f"{e.type} {e.qtype} {e.qname}"
    if e.type == "response":
        text += f" {e.rcode}"
        if e.answers:
            text += " " + ", ".join(f"{a.get('type')} {a.get('data')}" for a in e.answers[:4])
        if e.lookup_ms is not None:
            text += f" ({e.lookup_ms:.1f} ms)"
    if e.retransmission:
        text += " (retransmission)"
    return text


def _grpc(e: Any) -> str:
    if e.type == "call":
        return f"call {e.method} {e.kind} status={e.status}"
    return f"message s{e.stream} {e.method} {e.length} B" + (" gzip" if e.compressed else "")


def _generic(e: Any) -> str:
    parts = []
    for f in fields(e):
        if f.name in _BASE or f.name == "raw":
            continue
        v = getattr(e, f.name)
        if v is None or v == () or v == []:
            continue
        parts.append(f"{f.name}={_short(v, 40)}")
    return " ".join(parts)


def _analysis(e: Any) -> str:
    t = e.type
    if t == "ledger":
        text = f"ledger: {e.step} {e.rtts:g} RTT"
        if e.ms is not None:
            text += f" ({e.ms:.1f} ms)"
        detail = e.detail or {}
        if detail.get("what"):
            text += f" {detail['what']}"
        return text
    if t == "what_if":
        return f"what if: {e.text}"
    if t == "hol":
        victims = ", ".join(f"{v.get('unit')} {v.get('blocked_ms')} ms" for v in (e.victims or [])[:6])
        return (f"HOL ({e.kind}) {e.duration_ms:.1f} ms: {e.cause}" + (f"; blocked: {victims}" if victims else "")
                + not_blocked_text((e.detail or {}).get("not_blocked") or []))
    return _generic(e)


_LAYER_INFO: dict[str, Callable[[Any], str]] = {
    "analysis": _analysis,
    "tcp": lambda e: _tcp(e) if e.type == "segment" else _generic(e),
    "tls": _tls,
    "http2": _http2,
    "http3": _http3,
    "quic": _quic,
    "http": _http,
    "websocket": _websocket,
    "dns": _dns,
    "grpc": _grpc,
}


def info(e: Event) -> str:
    """One line saying what the event is; the fallback lists its fields."""
    if e.type == "note":
        return getattr(e, "message", "")
    if e.type == "malformed":
        return f"malformed: {getattr(e, 'reason', '')}"
    if e.type == "gap":
        return f"{getattr(e, 'length', '?')} bytes never captured at stream offset {getattr(e, 'offset', '?')}"
    fmt = _LAYER_INFO.get(e.layer)
    try:
        text = fmt(e) if fmt is not None else _generic(e)
    except (AttributeError, TypeError, KeyError, IndexError):
        text = _generic(e)
    return text if len(text) <= _MAX_INFO else text[:_MAX_INFO] + "…"


def severity(e: Event) -> str:
    """"error", "warning", "note" or "" for an event (drives colours)."""
    sev = getattr(e, "severity", None)
    if sev:
        return str(sev)
    t = e.type
    if t == "malformed":
        return "error"
    if t in ("loss", "gap"):
        return "error"
    if t == "hol" or e.layer == "hol":
        return "warning"
    if t == "ledger":
        return "info"
    if t == "flow_control_stall":
        return "warning"
    analysis = getattr(e, "analysis", None)
    if analysis:
        if "lost_segment" in analysis or "retransmission" in analysis:
            return "warning"
        return "note"
    if t == "Alert" and "close_notify" not in str(getattr(e, "description", "")):
        return "error"
    return ""


def annotation_text(e: Event) -> str:
    """How an event reads in the annotation panel: what happened first, then where."""
    analysis = getattr(e, "analysis", None)
    if e.layer == "tcp" and e.type == "segment" and analysis:
        return f"{' '.join(analysis)}: {e.direction} seq={e.seq} len={e.len}"  # type: ignore[attr-defined]
    return info(e)


def arrow_label(e: Event) -> str:
    """A short label for a sequence-diagram arrow."""
    if e.layer == "tcp" and e.type == "segment":
        text = tcp_flags(e.flags)  # type: ignore[attr-defined]
        if e.len:  # type: ignore[attr-defined]
            text += f" {e.len} B"  # type: ignore[attr-defined]
        if e.analysis:  # type: ignore[attr-defined]
            text += " " + " ".join(e.analysis)  # type: ignore[attr-defined]
        return text
    return f"{e.layer} {info(e)}" if e.layer not in ("http2", "http3", "tls", "quic") else info(e)


# --------------------------------------------------------------------------- field trees

Node = tuple[str, list["Node"]]  # (label, children)
_MAX_CHILDREN = 200


def _value_nodes(name: str, value: Any, depth: int = 0) -> Node:
    if depth > 12:
        return (f"{name}: …", [])
    if isinstance(value, dict):
        kids = [_value_nodes(str(k), v, depth + 1) for k, v in list(value.items())[:_MAX_CHILDREN]]
        if len(value) > _MAX_CHILDREN:
            kids.append((f"… {len(value) - _MAX_CHILDREN} more", []))
        return (f"{name}", kids) if kids else (f"{name}: {{}}", [])
    if isinstance(value, (list, tuple)):
        if not value:
            return (f"{name}: []", [])
        if all(isinstance(v, (list, tuple)) and len(v) == 2 and isinstance(v[0], (str, type(None))) for v in value):
            kids = [(f"{k}: {v}", []) for k, v in value[:_MAX_CHILDREN]]
            return (f"{name} ({len(value)})", kids)
        if all(isinstance(v, (str, int, float, bool)) or v is None for v in value):
            joined = ", ".join(str(v) for v in value)
            if len(joined) <= 80:
                return (f"{name}: {joined}", [])
            return (f"{name} ({len(value)})", [(str(v), []) for v in value[:_MAX_CHILDREN]])
        kids = [_value_nodes(f"[{i}]", v, depth + 1) for i, v in enumerate(value[:_MAX_CHILDREN])]
        if len(value) > _MAX_CHILDREN:
            kids.append((f"… {len(value) - _MAX_CHILDREN} more", []))
        return (f"{name} ({len(value)})", kids)
    if is_dataclass(value) and not isinstance(value, type):
        return (name, [_value_nodes(f.name, getattr(value, f.name), depth + 1) for f in fields(value)])
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (f"{name}: {len(value)} bytes (see the hex view)", [])
    if isinstance(value, float):
        return (f"{name}: {value:.6f}".rstrip("0").rstrip("."), [])
    return (f"{name}: {value}", [])


def event_tree(e: Event, origin: float | None = None) -> Node:
    """The field tree of an event: where/when first, then every decoded field."""
    head = f"{e.layer} {e.type}".strip()
    where: list[Node] = [
        (f"frame: {e.frame}", []),
        (f"time: +{rel_ms(e.ts, origin):.3f} ms ({clock(e.ts)})", []),
        (f"connection: {e.conn}", []),
    ]
    direction = getattr(e, "direction", None)
    if direction:
        where.append((f"direction: {direction} ({'client → server' if direction == 'c2s' else 'server → client'})", []))
    kids: list[Node] = [("frame", where)]
    for f in fields(e):  # type: ignore[arg-type]
        if f.name in _BASE:
            continue
        value = getattr(e, f.name)
        if f.name in ("arrival", "start_ts", "first_byte_ts", "start", "end") and isinstance(value, float) and origin:
            kids.append((f"{f.name}: +{rel_ms(value, origin):.3f} ms", []))
            continue
        kids.append(_value_nodes(f.name, value))
    return (head, kids)


def dict_tree(name: str, value: Any) -> Node:
    """A tree of any JSON-like value (a connection's summary record)."""
    return _value_nodes(name, value)


def hex_lines(data: bytes, width: int = 16) -> list[str]:
    """Classic hex dump lines: offset, hex bytes in two groups, printable ASCII."""
    out = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        half = width // 2
        hexes = " ".join(f"{b:02x}" for b in chunk[:half])
        if len(chunk) > half:
            hexes += "  " + " ".join(f"{b:02x}" for b in chunk[half:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        out.append(f"{off:06x}  {hexes:<{width * 3 + 1}} {text}")
    return out


# --------------------------------------------------------------------------- annotations


def _rtt_s(s: dict[str, Any]) -> float | None:
    tcp = s.get("tcp") if isinstance(s.get("tcp"), dict) else {}
    quic = s.get("quic") if isinstance(s.get("quic"), dict) else {}
    ms = (tcp or {}).get("irtt_ms") or (quic or {}).get("rtt_ms")
    return ms / 1000 if ms else None


def _lines_of(prefix: str, value: Any, severity_: str, out: list[tuple[str, float | None, str]]) -> None:
    """Generic lines for summary keys we do not know in detail (ledger, hol...)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)):
                _lines_of(f"{prefix}.{k}", v, severity_, out)
            else:
                out.append((severity_, None, f"{prefix}.{k}: {v}"))
    elif isinstance(value, list):
        for i, v in enumerate(value[:200]):
            if isinstance(v, dict):
                ts = v.get("start") if isinstance(v.get("start"), float) else None
                text = ", ".join(f"{k}={_short(x, 40)}" for k, x in v.items())
                out.append((severity_, ts, f"{prefix}[{i}] {text}"))
            else:
                out.append((severity_, None, f"{prefix}[{i}] {v}"))
    elif value not in (None, False):
        out.append((severity_, None, f"{prefix}: {value}"))


def summary_notes(s: dict[str, Any], analysed: bool = False) -> list[tuple[str, float | None, str]]:
    """What a connection's record says that deserves a line: setup cost, per-request timing,
    decryption problems, and ledger/HOL entries of the record.  ``analysed``: the RTT/HOL
    analysis events are shown anyway, so setup, request timing, ledger and HOL lines are left out.
    Returns (severity, time or None, text); severity "info" for plain facts."""
    out: list[tuple[str, float | None, str]] = []
    start = s.get("start")
    rtt = _rtt_s(s)

    def in_rtt(seconds: float) -> str:
        # on loopback the RTT is tens of microseconds: counting in it says nothing
        return f" ({seconds / rtt:.1f} RTT)" if rtt and rtt >= 1e-4 else ""

    parts = []
    tcp = s.get("tcp") if isinstance(s.get("tcp"), dict) else None
    if tcp and tcp.get("handshake") == "complete":
        parts.append("TCP 1 RTT")
    tls = s.get("tls") if isinstance(s.get("tls"), dict) else None
    if tls and tls.get("handshake_rtts") is not None:
        parts.append(f"TLS {tls.get('version') or ''} {tls['handshake_rtts']} RTT".replace("  ", " "))
    quic = s.get("quic") if isinstance(s.get("quic"), dict) else None
    if quic and quic.get("handshake_rtts") is not None:
        parts.append(f"QUIC {quic['handshake_rtts']} RTT")
    reqs = s.get("requests") or []
    if analysed:
        parts, reqs = [], []
    if parts:
        text = "setup " + " + ".join(parts)
        if rtt:
            text += f" · RTT {rtt * 1000:.1f} ms"
        first = reqs[0].get("request_ts") if reqs else None
        if first and start:
            text += f" · 1st request +{(first - start) * 1000:.1f} ms{in_rtt(first - start)}"
        out.append(("info", start, text))
    for req in reqs[:100]:
        rq, rs, end = req.get("request_ts"), req.get("response_ts"), req.get("end_ts")
        stream = f"s{req['stream']} " if req.get("stream") is not None else ""
        text = f"{stream}{req.get('method') or '-'} {req.get('path') or ''} {req.get('status') or '-'}"
        if rq and rs:
            text += f" · TTFB {(rs - rq) * 1000:.1f} ms{in_rtt(rs - rq)}"
        if rq and end and end != rs:
            text += f" · done {(end - rq) * 1000:.1f} ms"
        out.append(("info", rq, text))
    if len(reqs) > 100:
        out.append(("info", None, f"… {len(reqs) - 100} more requests"))
    if tls:
        dec = tls.get("decryption")
        if dec and dec not in ("decrypted", "no encrypted records"):
            out.append(("warning", None, f"TLS: {dec}"))
        for alert in tls.get("alerts") or ():
            if "close_notify" not in str(alert):
                out.append(("error", None, f"TLS alert: {alert}"))
    if quic and quic.get("decrypted") is False:
        out.append(("warning", None, "QUIC: not decrypted (no keys for this connection)"))
    ws = s.get("websocket") if isinstance(s.get("websocket"), dict) else None
    if ws:
        for ping in ws.get("pings") or ():
            if ping.get("rtt_ms") is not None:
                out.append(("info", None, f"WebSocket ping from {ping.get('from')}: pong after {ping['rtt_ms']:.1f} ms"))
    dns = s.get("dns") if isinstance(s.get("dns"), dict) else None
    if dns:
        for look in (dns.get("lookups") or ())[:50]:
            ms = look.get("lookup_ms")
            out.append(("info", look.get("query_ts"),
                        f"DNS {look.get('qtype')} {look.get('qname')}: {look.get('rcode') or 'no answer'}"
                        + (f" after {ms:.1f} ms" if ms is not None else "")))
    if not analysed:
        for key, sev in (("ledger", "info"), ("what_if", "note"), ("hol", "warning")):
            if s.get(key):
                _lines_of(key, s[key], sev, out)
    return out
