"""TCP's three-way handshake and teardown around one small HTTP/1.1 GET."""

from __future__ import annotations

from typing import Any

from ..events import HttpRequest, HttpResponse
from .decoded import Decoded
from .measure import flights_before, handshake, irtt_ms, ledger_note, ms, plural
from .model import Pick, StepSpec

NAME = "tcp-handshake"
TITLE = "TCP three-way handshake and teardown"
DESCRIPTION = "TCP three-way handshake and teardown around one GET: the round trip paid before any data"
CAPTURES = ("tcp-handshake",)


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    conn = next(iter(dec.conns))
    s = dec.conns[conn]
    hs = handshake(dec, conn)
    syn, synack, ack = hs["syn"], hs["synack"], hs["ack"]
    req: HttpRequest = dec.one(conn=conn, layer="http", type="request")
    resp: HttpResponse = dec.one(conn=conn, layer="http", type="response")
    segs = list(dec.segments(conn))
    fins = [x for x in segs if "F" in x.flags]
    last = segs[-1]
    rtt = irtt_ms(dec, conn)
    opts = s["tcp"]["options"]["client"]
    data = [x for x in segs if x.len > 0]
    resp_ms = ms(resp.first_byte_ts - req.ts)
    f: dict[str, Any] = {
        "client": s["client"], "server": s["server"],
        "syn_frame": syn.frame, "synack_frame": synack.frame, "ack_frame": ack.frame,
        "mss": opts["mss"], "wscale": opts["wscale"],
        "sack": "SACK" if opts["sack_permitted"] else "no SACK",
        "timestamps": "timestamps" if opts["timestamps"] else "no timestamps",
        "rtt_ms": rtt,
        "synack_ms": ms(synack.ts - syn.ts),
        "ack_turn_ms": ms(ack.ts - synack.ts),
        "req_frame": req.frame, "method": req.method, "target": req.target,
        "req_after_synack_ms": ms(req.ts - synack.ts),
        "req_after_syn_ms": ms(req.ts - syn.ts),
        "req_after_syn_rtt": ms(req.ts - syn.ts) / rtt,
        "setup_rtts": plural(flights_before(dec, req.frame, [conn]), "round trip"),
        "resp_frame": resp.frame, "status": resp.status, "resp_bytes": resp.body_bytes,
        "resp_ms": resp_ms, "resp_rtt": resp_ms / rtt, "server_extra_ms": max(0.0, resp_ms - rtt),
        "closer": s["tcp"]["closed_by"],
        "fin1_frame": fins[0].frame, "fin1_dir": fins[0].direction,
        "fin2_frame": fins[1].frame, "last_frame": last.frame,
        "close_ms": ms(last.ts - fins[0].ts),
        "close_after_resp_ms": ms(fins[0].ts - resp.ts),
        "packets": s["packets"], "data_packets": len(data), "control_packets": s["packets"] - len(data),
        "syn_to_resp_ms": ms(resp.ts - syn.ts),
        "ledger_note": ledger_note(s, conn),
        "setup_share_pct": 100.0 * (req.ts - syn.ts) / (resp.ts - syn.ts),
    }
    tcp = Pick(conn=conn, layer="tcp")
    steps = [
        StepSpec("SYN: the client asks to open a connection",
                 "The client {client} sends a SYN to {server} (frame {syn_frame}). It carries no data, only its "
                 "options: MSS {mss} bytes, window scale {wscale}, {sack}, {timestamps}. Nothing else can be "
                 "sent until the server answers.",
                 (Pick(conn=conn, layer="tcp", frames=(syn.frame,)),)),
        StepSpec("SYN-ACK: one round trip later",
                 "The SYN-ACK (frame {synack_frame}) arrives {synack_ms:.1f} ms after the SYN: that is the path's "
                 "round-trip time. Wireshark's initial RTT for this connection (SYN to the client's ACK) is "
                 "{rtt_ms:.1f} ms, and every later step is measured in that unit.",
                 (Pick(conn=conn, layer="tcp", frames=(syn.frame, synack.frame)),)),
        StepSpec("ACK, and the request right behind it",
                 "The client acknowledges {ack_turn_ms:.3f} ms after the SYN-ACK (frame {ack_frame}) and the "
                 "{method} {target} follows {req_after_synack_ms:.1f} ms after the SYN-ACK (frame {req_frame}): "
                 "{req_after_syn_ms:.1f} ms after the SYN, {req_after_syn_rtt:.2f} RTT. Counted in flights, the "
                 "client waited {setup_rtts} before its first byte of data could leave.",
                 (Pick(conn=conn, layer="tcp", frames=(ack.frame, req.frame)), Pick(conn=conn, layer="http", type="request"))),
        StepSpec("The response: one more round trip",
                 "HTTP {status} with a {resp_bytes}-byte body starts arriving {resp_ms:.1f} ms after the request "
                 "left (frame {resp_frame}): {resp_rtt:.2f} RTT, of which {server_extra_ms:.1f} ms beyond the "
                 "round trip was the server's own time.",
                 (Pick(conn=conn, layer="http", type="response"), Pick(conn=conn, layer="tcp", frames=(resp.frame,)))),
        StepSpec("Teardown: FIN, FIN, ACK",
                 "The {closer} closes first: FIN in frame {fin1_frame} ({fin1_dir}), {close_after_resp_ms:.1f} ms "
                 "after the response, answered by the peer's FIN in frame {fin2_frame}; the last ACK (frame "
                 "{last_frame}) ends it {close_ms:.1f} ms after the first FIN. Nobody waits on this: the data was "
                 "already delivered.",
                 (Pick(conn=conn, layer="tcp", where=lambda e: "F" in e.flags), Pick(conn=conn, layer="tcp", frames=(last.frame,)))),
        StepSpec("The bill",
                 "{packets} packets, {data_packets} of them carrying data and {control_packets} only opening, "
                 "acknowledging or closing. Of the {syn_to_resp_ms:.1f} ms from SYN to the response, "
                 "{setup_share_pct:.0f}% passed before the request could even be sent. Reusing an open connection "
                 "(keep-alive, see the http1 walkthrough) is how clients avoid paying it again.{ledger_note}",
                 (tcp, Pick(conn=conn, layer="analysis", type=("ledger", "what_if")))),
    ]
    return f, steps
