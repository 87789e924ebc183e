"""TLS 1.2 and TLS 1.3 full handshakes to the same server over the same path."""

from __future__ import annotations

from typing import Any

from .decoded import Decoded
from .measure import flights_before, handshake, irtt_ms, ledger_note, ms, plural
from .model import Pick, StepSpec

NAME = "tls12-vs-tls13"
TITLE = "TLS 1.2 vs TLS 1.3 full handshakes, same server, same path"
DESCRIPTION = "TLS 1.2 vs TLS 1.3 full handshakes against the same server: the round trips each costs"
CAPTURES = ("tls12-vs-tls13",)


def _tls_conn(dec: Decoded, version: str) -> int:
    ids = [i for i, s in dec.conns.items() if (s.get("tls") or {}).get("version") == version]
    if not ids:
        raise LookupError(f"{dec.ref.name}: no TLS {version} connection")
    return ids[0]


def _measure(dec: Decoded, conn: int, tag: str) -> dict[str, Any]:
    s = dec.conns[conn]
    tls = s["tls"]
    syn = handshake(dec, conn)["syn"]
    ch = dec.one(conn=conn, layer="tls", type="ClientHello")
    sh = dec.one(conn=conn, layer="tls", type="ServerHello")
    sfin = dec.one(conn=conn, layer="tls", type="Finished", direction="s2c")
    cfin = dec.one(conn=conn, layer="tls", type="Finished", direction="c2s")
    req = dec.one(conn=conn, layer="http", type="request")
    resp = dec.one(conn=conn, layer="http", type="response")
    server_flight = [e for e in dec.select(conn=conn, layer="tls", direction="s2c") if e.frame == sh.frame]
    rtt = irtt_ms(dec, conn)
    flights = flights_before(dec, req.frame, [conn])
    return {
        f"conn{tag}": conn, f"rtt{tag}": rtt, f"cipher{tag}": tls["cipher"],
        f"ch{tag}_frame": ch.frame, f"suites{tag}": len(ch.cipher_suites),
        f"ch{tag}_shares": ", ".join(ch.key_share) or "none",
        f"sh{tag}_frame": sh.frame, f"sh{tag}_ms": ms(sh.ts - ch.ts),
        f"flight{tag}": ", ".join(e.type for e in server_flight),
        f"cfin{tag}_frame": cfin.frame, f"sfin{tag}_frame": sfin.frame,
        f"sfin{tag}_after_cfin_ms": ms(sfin.ts - cfin.ts),
        f"req{tag}_frame": req.frame,
        f"req{tag}_after_cfin_ms": ms(req.ts - cfin.ts),
        f"hello_req{tag}_ms": ms(req.ts - ch.ts), f"hello_req{tag}_rtt": ms(req.ts - ch.ts) / rtt,
        f"tls{tag}_rtts": tls["handshake_rtts"],
        f"tls{tag}_rtts_text": plural(tls["handshake_rtts"], "round trip"),
        f"flights{tag}": flights, f"flights{tag}_text": plural(flights, "round trip"),
        f"tcp{tag}_rtts": flights_before(dec, handshake(dec, conn)["ack"].frame, [conn]),
        f"syn_req{tag}_ms": ms(req.ts - syn.ts), f"syn_resp{tag}_ms": ms(resp.ts - syn.ts),
        f"tickets{tag}": tls.get("tickets") or 0,
        "_ch" + tag: ch, "_sh" + tag: sh, "_cfin" + tag: cfin, "_sfin" + tag: sfin, "_req" + tag: req,
    }


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    c12, c13 = _tls_conn(dec, "1.2"), _tls_conn(dec, "1.3")
    f: dict[str, Any] = {"server": dec.conns[c12]["server"]}
    f.update(_measure(dec, c12, "12"))
    f.update(_measure(dec, c13, "13"))
    ske = dec.one(conn=c12, layer="tls", type="ServerKeyExchange")
    f["group12"] = (ske.info or {}).get("group") or "?"
    f["group13"] = f["_sh13"].key_share or "?"
    f["saved_ms"] = f["syn_req12_ms"] - f["syn_req13_ms"]
    f["saved_rtt"] = f["saved_ms"] / ((f["rtt12"] + f["rtt13"]) / 2)
    f["saved_flights"] = f["flights12"] - f["flights13"]
    f["saved_text"] = plural(f["saved_flights"], "round trip")
    f["ledger12"] = ledger_note(dec.conns[c12], c12)
    f["ledger13"] = ledger_note(dec.conns[c13], c13)
    f["resp_saved_ms"] = f["syn_resp12_ms"] - f["syn_resp13_ms"]
    f["same_server"] = "the same server" if dec.conns[c12]["server"] == dec.conns[c13]["server"] else "different servers"

    def tls(conn: int, *frames: int) -> Pick:
        return Pick(conn=conn, layer="tls", frames=tuple(frames))

    steps = [
        StepSpec("Two connections, one path",
                 "Two curl GETs to {same_server} ({server}), one after the other: conn {conn12} limited to TLS 1.2, "
                 "conn {conn13} to TLS 1.3. Their TCP handshakes measure an initial RTT of {rtt12:.1f} ms and "
                 "{rtt13:.1f} ms: the same path, so any difference below comes from the protocol. Each spends "
                 "{tcp12_rtts} round trip on TCP before its ClientHello.",
                 (Pick(conn=c12, layer="tcp", type="segment", where=lambda e: "S" in e.flags),
                  Pick(conn=c13, layer="tcp", type="segment", where=lambda e: "S" in e.flags))),
        StepSpec("TLS 1.2, first round trip: agree on parameters",
                 "The ClientHello (frame {ch12_frame}) offers {suites12} cipher suites; key shares: {ch12_shares}. The "
                 "server answers {sh12_ms:.1f} ms later in one flight (frame {sh12_frame}): {flight12}. It picks "
                 "{cipher12} and sends its ECDHE share ({group12}) only now, because TLS 1.2 negotiates the key "
                 "exchange before doing it. Nothing is encrypted yet.",
                 (tls(c12, f["ch12_frame"], f["sh12_frame"]),)),
        StepSpec("TLS 1.2, second round trip: keys and Finished",
                 "The client answers with ClientKeyExchange, ChangeCipherSpec and Finished (frame {cfin12_frame}); "
                 "the server's ChangeCipherSpec and Finished come back {sfin12_after_cfin_ms:.1f} ms later (frame "
                 "{sfin12_frame}). This client waits for them before sending data: the GET leaves in frame "
                 "{req12_frame}, {hello_req12_ms:.1f} ms after the ClientHello ({hello_req12_rtt:.2f} RTT). "
                 "The decoder counts the handshake as {tls12_rtts_text}.",
                 (tls(c12, f["cfin12_frame"], f["sfin12_frame"]), Pick(conn=c12, layer="http", type="request"))),
        StepSpec("TLS 1.3: one round trip",
                 "The TLS 1.3 ClientHello (frame {ch13_frame}) already carries a key share ({ch13_shares}), "
                 "guessing the group. The server's single flight {sh13_ms:.1f} ms later (frame {sh13_frame}) "
                 "holds {flight13}; everything after the ServerHello is already encrypted. The client's Finished "
                 "(frame {cfin13_frame}) and the GET (frame {req13_frame}, {req13_after_cfin_ms:.1f} ms after it) "
                 "leave at once: {hello_req13_ms:.1f} ms after the ClientHello ({hello_req13_rtt:.2f} RTT), "
                 "{tls13_rtts_text} of handshake. The server also sends {tickets13} session tickets for next time "
                 "(see tls13-resumption-0rtt).",
                 (tls(c13, f["ch13_frame"], f["sh13_frame"], f["cfin13_frame"]), Pick(conn=c13, layer="http", type="request"),
                  Pick(conn=c13, layer="tls", type="NewSessionTicket"))),
        StepSpec("The bill",
                 "From SYN to the first request byte: {syn_req12_ms:.1f} ms with TLS 1.2 ({flights12_text} of "
                 "waiting, TCP included) against {syn_req13_ms:.1f} ms with TLS 1.3 ({flights13_text}). TLS 1.3 "
                 "saved {saved_text}, {saved_ms:.1f} ms ({saved_rtt:.2f} RTT), on a brand-new connection; the "
                 "response arrived {resp_saved_ms:.1f} ms sooner.{ledger12}{ledger13}",
                 (Pick(conn=c12, layer="http"), Pick(conn=c13, layer="http"),
                  Pick(layer="analysis", type=("ledger", "what_if")))),
    ]
    return f, steps
