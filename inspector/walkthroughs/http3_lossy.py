"""HTTP/3 over QUIC on the same lossy link and workload: only the stream that lost data waits."""

from __future__ import annotations

from typing import Any

from ..events import QuicLoss, QuicPacket
from .decoded import Decoded
from .http2_lossy import loss_facts
from .http2_multiplex import h2_conn
from .measure import flights_before, handshake, hol_note, ledger_note, ms, plural, quic_first_stream_frame, quic_stream_stalls
from .model import Pick, StepSpec

NAME = "http3-lossy"
TITLE = "HTTP/3 over QUIC on the same lossy link: only the affected stream stalls"
DESCRIPTION = ("HTTP/3 over QUIC on the lossy link: only the stream that lost a packet stalls; "
               "QUIC's combined handshake vs TCP+TLS")
CAPTURES = ("http3-lossy", "http2-lossy")
_KIND = {"initial": "Initial", "handshake": "Handshake", "1rtt": "1-RTT", "0rtt": "0-RTT"}


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    dec, h2 = caps
    conn = next(i for i, s in dec.conns.items() if s.get("quic"))
    s = dec.conns[conn]
    q = s["quic"]
    rtt = float(q["rtt_ms"])
    pkts = [p for p in dec.select(conn=conn, layer="quic") if isinstance(p, QuicPacket)]
    initial = pkts[0]
    reply = next(p for p in pkts if p.direction == "s2c")
    req = quic_first_stream_frame(dec, conn)
    reqs = s.get("requests") or []
    stalls = quic_stream_stalls(dec, conn)
    request_streams = [r["stream"] for r in reqs]
    stalled = [st for sid, st in stalls.items() if sid in request_streams and st.stalled_ms > 0]
    calm = [sid for sid in request_streams if stalls.get(sid) is None or stalls[sid].stalled_ms == 0]
    losses = [e for e in dec.select(conn=conn, layer="quic", type="loss") if isinstance(e, QuicLoss)]
    loss = losses[0]
    resent = loss.resent[0] if loss.resent else {}
    stall_win = (min(min(st.frames) for st in stalled), max(max(st.frames) for st in stalled)) if stalled else (0, 0)
    others = [p for p in pkts if p.direction == "s2c" and stall_win[0] < p.frame < stall_win[1] and p.details
              and any(str(d.get("type", "")).startswith("STREAM") and d.get("stream") in calm for d in p.details)]

    # the same workload over TCP + TLS 1.3 + HTTP/2
    hc = h2_conn(h2)
    h2_req = h2.select(conn=hc, layer="http2", type="HEADERS", direction="c2s")[0]
    h2_syn = handshake(h2, hc)["syn"]
    hf, _ = loss_facts(h2, hc, prefix="h2_")
    t0 = min(r["request_ts"] for r in reqs)
    f: dict[str, Any] = {
        "conn": conn, "rtt": rtt, "first_rtt": q.get("first_rtt_ms") or rtt, "version": q.get("version"),
        "alpn": q.get("alpn"), "n": len(reqs), "streams": ", ".join(map(str, request_streams)),
        "body": ", ".join(sorted({str(r["bytes"]) for r in reqs})),
        "initial_frame": initial.frame, "initial_len": initial.length,
        "reply_frame": reply.frame, "reply_ms": ms(reply.ts - initial.ts),
        "reply_types": ", ".join(dict.fromkeys(_KIND.get(p.type, p.type) for p in pkts if p.frame == reply.frame)),
        "server_extra_ms": max(0.0, ms(reply.ts - initial.ts) - rtt), "client_after_ms": ms(req.ts - reply.ts),
        "req_frame": req.frame, "req_ms": ms(req.ts - initial.ts),
        "quic_flights": plural(flights_before(dec, req.frame, [conn]), "round trip"),
        "quic_rtts": q.get("handshake_rtts"),
        "h2_ms": ms(h2_req.ts - h2_syn.ts), "h2_flights": plural(flights_before(h2, h2_req.frame, [hc]), "round trip"),
        "h2_req_frame": h2_req.frame,
        "pn": loss.pn, "loss_frame": loss.frame, "detected": loss.detected, "space": loss.space,
        "loss_streams": ", ".join(map(str, loss.streams)) or "none",
        "resent_frame": resent.get("frame", "-"), "resent_off": resent.get("offset", 0),
        "resent_end": resent.get("offset", 0) + resent.get("length", 0), "resent_len": resent.get("length", 0),
        "resent_pn": next((p.pn for p in pkts if p.frame == resent.get("frame") and p.direction == "s2c"), "?"),
        "resend_ms": ms(resent["ts"] - loss.ts) if resent else 0.0,
        "stalled": ", ".join(f"stream {st.stream} {st.stalled_ms:.1f} ms" for st in stalled) or "none",
        "stalled_n": len(stalled),
        "calm": ", ".join(map(str, calm)) or "none", "calm_n": plural(len(calm), "stream"),
        "others_packets": plural(len(others), "packet"),
        "hol_note": hol_note(s, "quic"), "ledger_note": ledger_note(s, conn),
        "per_stream": ", ".join(f"{sid}: {stalls[sid].stalled_ms:.1f} ms" for sid in request_streams if sid in stalls),
        "finish": ", ".join(f"{r['stream']}: {ms(r['end_ts'] - t0):.1f} ms" for r in reqs if r.get("end_ts")),
    }
    f["victims_beyond"] = plural(len([st for st in stalled if st.stream not in loss.streams]), "stream")
    f.update(hf)
    quic_pkt = Pick(conn=conn, layer="quic")
    steps = [
        StepSpec("The same workload over HTTP/3",
                 "The client fetches the same {n} objects of {body} bytes as in http2-lossy, now over QUIC "
                 "(version {version}, ALPN {alpn}) on UDP: request streams {streams}. QUIC measures the path's "
                 "RTT itself: {rtt:.1f} ms smoothed.",
                 (Pick(conn=conn, layer="http3", type="HEADERS", direction="c2s"),)),
        StepSpec("One handshake instead of two",
                 "The first packet (frame {initial_frame}, a {initial_len}-byte Initial) already carries the TLS "
                 "ClientHello. The server's reply ({reply_types}) arrives {reply_ms:.1f} ms later (frame "
                 "{reply_frame}) with the ServerHello, its certificate and Finished, so the first request leaves "
                 "in frame {req_frame}, {req_ms:.1f} ms after the first packet: the client waited "
                 "{quic_flights}. Over TCP and TLS the same request waited {h2_flights} ({h2_ms:.1f} ms from the "
                 "SYN, frame {h2_req_frame} of http2-lossy): TCP's handshake comes first, then TLS's. The "
                 "milliseconds also hold the hosts' own work: the server answered {server_extra_ms:.1f} ms after "
                 "one RTT, and the client needed {client_after_ms:.1f} ms between the reply and the request.{ledger_note}",
                 (Pick(conn=conn, layer="quic", frames=(initial.frame, reply.frame, req.frame)),
                  Pick(conn=conn, layer="tls"), Pick(conn=conn, layer="analysis", type="ledger"))),
        StepSpec("A lost packet",
                 "Server packet number {pn} ({space} space) never arrives: the capture shows it {detected} from "
                 "frame {loss_frame} on. It carried stream {loss_streams}'s bytes {resent_off}-{resent_end} "
                 "({resent_len} bytes); QUIC sends them again in a new packet, number {resent_pn} (frame "
                 "{resent_frame}), {resend_ms:.1f} ms later. Retransmission in QUIC is of data, not of packets.",
                 (Pick(conn=conn, layer="quic", type="loss"),
                  Pick(conn=conn, layer="quic", frames=(resent.get("frame", 0),)))),
        StepSpec("Only that stream waits",
                 "Streams that held data they could not deliver because an earlier offset was missing: "
                 "{stalled}. Every other stream ({calm}) delivered its data as it came: {others_packets} of theirs "
                 "arrived and were usable while the hole was open. Blocked time per stream: {per_stream}. Streams "
                 "completed (counted from the first request): {finish}.{hol_note}",
                 (Pick(conn=conn, layer="quic", frames=tuple(fr for st in stalled for fr in st.frames)),)
                 + tuple(Pick(conn=conn, layer="http3", stream=sid) for sid in calm)
                 + (Pick(conn=conn, layer="analysis", type="hol"),)),
        StepSpec("Against HTTP/2 on TCP",
                 "On TCP one lost segment (frame {h2_gap_frame} of http2-lossy) held up {h2_victims_n} besides "
                 "the one that lost data, up to {h2_blocked_max_ms:.1f} ms each ({h2_victims}). Over QUIC the "
                 "loss delayed {victims_beyond} beyond the one whose packet was lost: per-stream ordering "
                 "keeps one stream's loss from holding up the others.",
                 (Pick(layer="http2", frames=(hf["h2_retx_frame"],)),), capture=1),
    ]
    return f, steps
