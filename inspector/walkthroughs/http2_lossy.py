"""HTTP/2 over a lossy link: one lost TCP segment stalls the streams whose bytes arrived behind it."""

from __future__ import annotations

from typing import Any

from .decoded import Decoded
from .http2_multiplex import h2_conn
from .measure import StreamWait, TcpLoss, hol_note, irtt_ms, ms, plural, tcp_loss_h2
from .model import Pick, StepSpec

NAME = "http2-lossy"
TITLE = "HTTP/2 over a lossy link: one TCP loss stalls every stream behind it"
DESCRIPTION = "HTTP/2 over a lossy link: one lost TCP segment stalls the other streams too; blocked time per stream"
CAPTURES = ("http2-lossy",)


def describe(ws: list[StreamWait], with_ms: bool = False) -> str:
    if not ws:
        return "none"
    parts = []
    for w in ws:
        label = f"stream {w.stream} ({w.path})" if w.path else f"stream {w.stream}"
        parts.append(f"{label} {w.blocked_ms:.1f} ms" if with_ms else label)
    return ", ".join(parts)


def loss_facts(dec: Decoded, conn: int, prefix: str = "") -> tuple[dict[str, Any], TcpLoss]:
    """Facts about the connection's first lost server segment and the streams behind it."""
    loss = tcp_loss_h2(dec, conn)
    if loss is None:
        raise LookupError(f"{dec.ref.name}: no lost segment in conn {conn}")
    rtt = irtt_ms(dec, conn)
    lost = [w for w in loss.streams if w.role == "lost"]
    victims = [w for w in loss.streams if w.role == "victim"]
    clear = [w for w in loss.streams if w.role == "clear"]
    p = prefix
    f = {
        p + "gap_frame": loss.gap_frame, p + "retx_frame": loss.retx_frame,
        p + "lost_seq": loss.seq, p + "lost_end": loss.seq + loss.length, p + "lost_len": loss.length,
        p + "held_segments": plural(len(loss.held_frames), "segment"), p + "held_bytes": loss.held_bytes,
        p + "dup_acks": plural(loss.dup_acks, "duplicate ACK"),
        p + "recovery_ms": ms(loss.retx_ts - loss.gap_ts), p + "recovery_rtt": ms(loss.retx_ts - loss.gap_ts) / rtt,
        p + "lost_streams": describe(lost), p + "victims": describe(victims, with_ms=True),
        p + "victims_n": plural(len(victims), "other stream"), p + "clear": describe(clear),
        p + "blocked_total_ms": sum(w.blocked_ms for w in victims),
        p + "blocked_max_ms": max((w.blocked_ms for w in victims), default=0.0),
        p + "victim_count": len(victims),
        p + "per_stream": ", ".join(
            f"{w.stream}: {'lost data' if w.role == 'lost' else format(w.blocked_ms, '.1f') + ' ms'}" for w in loss.streams),
    }
    return f, loss


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    conn = h2_conn(dec)
    s = dec.conns[conn]
    rtt = irtt_ms(dec, conn)
    reqs = s.get("requests") or []
    lf, loss = loss_facts(dec, conn)
    t0 = min(r["request_ts"] for r in reqs)
    done = {w.stream: w.done_ts for w in loss.streams}
    f: dict[str, Any] = {
        "conn": conn, "rtt": rtt, "n": len(reqs), "body": ", ".join(sorted({str(r["bytes"]) for r in reqs})),
        "streams": ", ".join(str(r["stream"]) for r in reqs), "tls": (s.get("tls") or {}).get("version", "?"),
        "retransmissions": plural(s["tcp"]["retransmissions"], "retransmission"),
        "finish": ", ".join(f"{sid}: {ms(done[sid] - t0):.1f} ms" for sid in sorted(done) if done[sid]),
        "hol_note": hol_note(s, "tcp"),
        "last_ms": ms(max(t for t in done.values() if t) - t0),
    }
    f.update(lf)
    lost_ids = tuple(w.stream for w in loss.streams if w.role == "lost")
    victim_ids = tuple(w.stream for w in loss.streams if w.role == "victim")
    clear_ids = tuple(w.stream for w in loss.streams if w.role == "clear")
    steps = [
        StepSpec("The workload",
                 "The client asks for {n} objects of {body} bytes in parallel on one HTTP/2 connection (conn "
                 "{conn}, TLS {tls}), streams {streams}. The path's RTT is {rtt:.1f} ms. On the way back, the lab "
                 "dropped a server segment.",
                 (Pick(conn=conn, layer="http2", type="HEADERS", direction="c2s"),)),
        StepSpec("A hole in the byte stream",
                 "Frame {gap_frame} arrives with a sequence number beyond what the client has: the segment "
                 "with relative sequence numbers {lost_seq}-{lost_end} ({lost_len} bytes) never came "
                 "(Wireshark: previous segment not captured). TCP delivers bytes only in order, so nothing after "
                 "the hole can be handed to TLS, and so to HTTP/2.",
                 (Pick(conn=conn, layer="tcp", frames=(loss.gap_frame,)),)),
        StepSpec("Waiting for the retransmission",
                 "Behind the hole, {held_segments} ({held_bytes} bytes) arrive and sit in the receive buffer. "
                 "The client keeps acknowledging the byte before the hole ({dup_acks}); the server's fast "
                 "retransmission arrives in frame {retx_frame}, {recovery_ms:.1f} ms ({recovery_rtt:.2f} RTT) "
                 "after the hole showed up. The connection had {retransmissions} in total.",
                 (Pick(conn=conn, layer="tcp", frames=loss.held_frames + (loss.retx_frame,)),
                  Pick(conn=conn, layer="tcp", direction="c2s", where=lambda e: "duplicate_ack" in e.analysis))),
        StepSpec("Whose bytes were lost",
                 "The missing bytes belonged to {lost_streams}: its data could only complete with the "
                 "retransmission (frame {retx_frame}). That stream would have waited under any protocol.",
                 tuple(Pick(conn=conn, layer="http2", stream=sid, frames=(loss.retx_frame,)) for sid in lost_ids)),
        StepSpec("Head-of-line victims",
                 "The same retransmission released {victims_n} whose data had already arrived complete: "
                 "{victims}. Their bytes were in the client's buffer, but TCP could not deliver them before the "
                 "lost ones; that wait is head-of-line blocking. Together the victims lost {blocked_total_ms:.1f} "
                 "ms of readiness.{hol_note}",
                 tuple(Pick(conn=conn, layer="http2", stream=sid, frames=(loss.retx_frame,)) for sid in victim_ids)
                 + (Pick(conn=conn, layer="analysis", type="hol"),)),
        StepSpec("Untouched streams, and the bill",
                 "Blocked time per stream: {per_stream}. Streams completed (counted from the first request): {finish}. "
                 "Not delayed by the hole: "
                 "{clear} (complete before it, or arriving only after the retransmission). Over QUIC each stream "
                 "is ordered on its own, so only the stream that lost data would wait (see http3-lossy).",
                 tuple(Pick(conn=conn, layer="http2", stream=sid, type="DATA") for sid in clear_ids)
                 + (Pick(conn=conn, layer="http2", type="DATA"),)),
    ]
    return f, steps
