"""TLS 1.3 session resumption with a ticket, and the request sent as 0-RTT early data."""

from __future__ import annotations

from typing import Any

from ..events import TlsHandshake
from .decoded import Decoded
from .measure import flights_before, handshake, irtt_ms, ledger_note, ms, plural
from .model import Pick, StepSpec

NAME = "tls13-resumption-0rtt"
TITLE = "TLS 1.3 session resumption and 0-RTT early data"
DESCRIPTION = "TLS 1.3 session resumption with a ticket, and a request sent as 0-RTT early data in the first flight"
CAPTURES = ("tls13-resumption-0rtt",)


def _handshake_bytes(dec: Decoded, conn: int) -> int:
    """Server handshake message bytes (headers included), tickets left out."""
    return sum(e.length + 4 for e in dec.select(conn=conn, layer="tls", direction="s2c")
               if isinstance(e, TlsHandshake) and e.type != "NewSessionTicket")


def script(caps: list[Decoded]) -> tuple[dict[str, Any], list[StepSpec]]:
    (dec,) = caps
    full = next(i for i, s in dec.conns.items() if (s.get("tls") or {}).get("resumed") is False)
    res = next(i for i, s in dec.conns.items() if (s.get("tls") or {}).get("resumed"))
    f: dict[str, Any] = {"full": full, "res": res}
    ch0 = dec.one(conn=full, layer="tls", type="ClientHello")
    cert0 = dec.one(conn=full, layer="tls", type="Certificate")
    tickets = dec.select(conn=full, layer="tls", type="NewSessionTicket")
    req0 = dec.one(conn=full, layer="http", type="request")
    resp0 = dec.one(conn=full, layer="http", type="response")
    ch1 = dec.one(conn=res, layer="tls", type="ClientHello")
    early = dec.select(conn=res, layer="tls", type="ApplicationData", direction="c2s", early=True)
    sh1 = dec.one(conn=res, layer="tls", type="ServerHello")
    ee1 = dec.one(conn=res, layer="tls", type="EncryptedExtensions")
    eoed = dec.select(conn=res, layer="tls", type="EndOfEarlyData")
    req1 = dec.one(conn=res, layer="http", type="request")
    resp1 = dec.one(conn=res, layer="http", type="response")
    certs1 = dec.select(conn=res, layer="tls", type="Certificate")
    rtt0, rtt1 = irtt_ms(dec, full), irtt_ms(dec, res)
    info = tickets[0].info or {}
    f.update({
        "rtt0": rtt0, "rtt1": rtt1,
        "ch0_frame": ch0.frame, "cert0_frame": cert0.frame, "cert0_bytes": cert0.length,
        "tickets": plural(len(tickets), "NewSessionTicket"), "ticket_frames": ", ".join(str(t.frame) for t in tickets),
        "lifetime": info.get("lifetime", "?"), "max_early": info.get("max_early_data", 0),
        "req0_frame": req0.frame, "req0_flights": plural(flights_before(dec, req0.frame, [full]), "round trip"),
        "resp0_ms": ms(resp0.ts - ch0.ts), "resp0_rtt": ms(resp0.ts - ch0.ts) / rtt0,
        "hs0_bytes": _handshake_bytes(dec, full),
        "ch1_frame": ch1.frame, "psk_ids": plural(ch1.psk_identities, "pre-shared key identity", "pre-shared key identities"), "ch1_early": "offers" if ch1.early_data else "does not offer",
        "psk_modes": ", ".join(ch1.psk_modes) or "none",
        "early_frames": ", ".join(str(e.frame) for e in early), "early_bytes": sum(e.plaintext_len or 0 for e in early),
        "req1_frame": req1.frame, "req1_in_hello": "the same frame as" if req1.frame == ch1.frame else "a later frame than",
        "req1_target": req1.target, "req1_method": req1.method,
        "req1_flights": plural(flights_before(dec, req1.frame, [res]), "round trip"),
        "tcp1_flights": plural(flights_before(dec, handshake(dec, res)["ack"].frame, [res]), "round trip"),
        "sh1_frame": sh1.frame, "sh1_ms": ms(sh1.ts - ch1.ts),
        "psk_chosen": "picks PSK identity {}".format(sh1.psk_identity) if sh1.psk_identity is not None else "picks no PSK",
        "early_accepted": "accepts" if ee1.early_data else "refuses",
        "certs1": plural(len(certs1), "Certificate message"),
        "hs1_bytes": _handshake_bytes(dec, res),
        "eoed_frame": eoed[0].frame if eoed else "-",
        "resp1_frame": resp1.frame, "resp1_ms": ms(resp1.ts - ch1.ts), "resp1_rtt": ms(resp1.ts - ch1.ts) / rtt1,
        "resumption": dec.conns[res]["tls"].get("resumption") or "?",
    })
    f["ledger_res"] = ledger_note(dec.conns[res], res)
    f["hs_saved_bytes"] = f["hs0_bytes"] - f["hs1_bytes"]
    f["resp_saved_ms"] = f["resp0_ms"] - f["resp1_ms"]
    f["resp_saved_rtt"] = f["resp0_rtt"] - f["resp1_rtt"]
    steps = [
        StepSpec("First visit: a full TLS 1.3 handshake",
                 "Conn {full}: the ClientHello (frame {ch0_frame}) starts a full handshake; the server proves who "
                 "it is with its Certificate ({cert0_bytes} bytes, frame {cert0_frame}) and CertificateVerify. The "
                 "GET (frame {req0_frame}) leaves after {req0_flights} of waiting (TCP and TLS), and the response "
                 "arrives {resp0_ms:.1f} ms after the ClientHello: {resp0_rtt:.2f} RTT at {rtt0:.1f} ms.",
                 (Pick(conn=full, layer="tls", type=("ClientHello", "ServerHello", "Certificate", "CertificateVerify", "Finished")),
                  Pick(conn=full, layer="http"))),
        StepSpec("The tickets",
                 "After the handshake the server sends {tickets} (frames {ticket_frames}): each an opaque ticket "
                 "from which it can recover the session's resumption key, valid {lifetime} s, allowing up to "
                 "{max_early} bytes of early data. The client "
                 "stores one for its next connection.",
                 (Pick(conn=full, layer="tls", type="NewSessionTicket"),)),
        StepSpec("Second visit: resumption, with the request in the first flight",
                 "Conn {res}: the ClientHello (frame {ch1_frame}) presents {psk_ids} "
                 "(the ticket; modes {psk_modes}) and {ch1_early} early data. Encrypted with a key derived from "
                 "the ticket, the {req1_method} {req1_target} travels in {req1_in_hello} the ClientHello "
                 "(early data in frame {early_frames}, {early_bytes} bytes of plaintext): the request waited "
                 "{req1_flights}, and TCP's handshake alone costs {tcp1_flights}.",
                 (Pick(conn=res, layer="tls", type="ClientHello"), Pick(conn=res, layer="tls", type="ApplicationData", direction="c2s"),
                  Pick(conn=res, layer="http", type="request"))),
        StepSpec("The server accepts: no certificate this time",
                 "{sh1_ms:.1f} ms later (frame {sh1_frame}) the ServerHello {psk_chosen} and the "
                 "EncryptedExtensions {early_accepted} the early data. The resumed handshake carries "
                 "{certs1}: {hs1_bytes} bytes of server handshake against {hs0_bytes} on the first visit "
                 "({hs_saved_bytes} bytes fewer). The client closes the early-data phase with EndOfEarlyData "
                 "(frame {eoed_frame}).",
                 (Pick(conn=res, layer="tls", type=("ServerHello", "EncryptedExtensions", "Finished", "EndOfEarlyData")),)),
        StepSpec("The bill",
                 "The response to the 0-RTT request arrives {resp1_ms:.1f} ms after the ClientHello "
                 "({resp1_rtt:.2f} RTT, frame {resp1_frame}) against {resp0_ms:.1f} ms ({resp0_rtt:.2f} RTT) on "
                 "the full handshake: {resp_saved_ms:.1f} ms ({resp_saved_rtt:.2f} RTT) sooner. The price: early "
                 "data is not protected against replay, so servers should accept it only for requests that are "
                 "safe to repeat.{ledger_res}",
                 (Pick(conn=res, layer="http"), Pick(conn=full, layer="http"),
                  Pick(conn=res, layer="analysis", type=("ledger", "what_if")))),
    ]
    return f, steps
