"""Walkthroughs about setup costs: TCP, TLS 1.2 vs 1.3, TLS 1.3 resumption with 0-RTT, DNS first.

Each test reads the numbers the walkthrough printed (``--text``) and derives the
same quantities from the capture with tshark: frame numbers, times between
frames, round trips counted as client flights and as elapsed time over the
iRTT tshark measures.
"""

from __future__ import annotations

from collections import defaultdict

from tests.test_walkthrough_oracle import (CLIENT, SERVER, close, flights, frames, initial_rtts, ms_between, num,
                                           one_each, provenance, step, summary, text_of, tshark)

# IANA TLS supported group code points, as tshark prints them (RFC 8446 §4.2.7)
GROUPS = {"29": "x25519", "0x001d": "x25519", "23": "secp256r1", "0x0017": "secp256r1"}


def test_tcp_handshake() -> None:
    name = "tcp-handshake"
    rows = one_each(name, ["frame.number", "ip.src", "tcp.flags.syn", "tcp.flags.ack", "tcp.flags.fin", "tcp.len",
                           "tcp.options.mss_val", "tcp.options.wscale.shift"], "tcp")
    syn = next(int(r[0]) for r in rows if r[2] == "1" and r[3] == "0")
    synack = next(int(r[0]) for r in rows if r[2] == "1" and r[3] == "1")
    ack = next(int(r[0]) for r in rows if int(r[0]) > synack and r[1] == CLIENT)
    fins = [int(r[0]) for r in rows if r[4] == "1"]
    last = int(rows[-1][0])
    req = int(one_each(name, ["frame.number"], "http.request")[0][0])
    resp, body = (int(x) for x in one_each(name, ["frame.number", "http.content_length"], "http.response")[0])
    rtt = initial_rtts(name)[0]
    mss, wscale = rows[0][6], rows[0][7]

    s1 = step(name, "SYN:")
    assert f"(frame {syn})" in s1 and f"MSS {mss} bytes, window scale {wscale}" in s1
    s2 = step(name, "SYN-ACK")
    assert f"(frame {synack})" in s2
    assert close(num(r"arrives {n} ms after the SYN", s2), ms_between(name, syn, synack))
    assert close(num(r"for this connection \(SYN to the client's ACK\) is {n} ms", s2), rtt)
    s3 = step(name, "ACK, and")
    assert f"(frame {ack})" in s3 and f"(frame {req})" in s3
    assert close(num(r"{n} ms after the SYN,", s3), ms_between(name, syn, req))
    assert num(r"waited {n} round trip", s3) == flights(name, req) == 1
    assert close(num(r"SYN, {n} RTT", s3), ms_between(name, syn, req) / rtt, 0.006)
    s4 = step(name, "The response")
    assert f"a {body}-byte body" in s4 and f"(frame {resp})" in s4
    assert close(num(r"starts arriving {n} ms after the request", s4), ms_between(name, req, resp))
    # the response needs one more round trip: the request's own
    assert round(num(r": {n} RTT", s4)) == round(ms_between(name, req, resp) / rtt) == 1
    s5 = step(name, "Teardown")
    assert f"FIN in frame {fins[0]} (c2s)" in s5 and f"peer's FIN in frame {fins[1]}" in s5
    assert close(num(r"ends it {n} ms after the first FIN", s5), ms_between(name, fins[0], last))
    s6 = step(name, "The bill")
    data = sum(1 for r in rows if int(r[5]) > 0)
    assert f"{len(rows)} packets, {data} of them carrying data and {len(rows) - data} only" in s6
    share = 100 * ms_between(name, syn, req) / ms_between(name, syn, resp)
    assert abs(num(r"response, {n}% passed", s6) - share) <= 0.51


def _tls_frames(name: str) -> dict[int, dict[str, list[int]]]:
    """Per TCP stream: handshake message type -> frames (c2s types prefixed 'c', s2c 's')."""
    out: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for frame, stream, src, types in tshark(name, ["frame.number", "tcp.stream", "ip.src", "tls.handshake.type"], "tls.handshake"):
        for typ in types:
            out[int(stream[0])][("c" if src[0] == CLIENT else "s") + typ].append(int(frame[0]))
    return out


def test_tls12_vs_tls13() -> None:
    name = "tls12-vs-tls13"
    hs = _tls_frames(name)
    versions = {int(s): (sv or v) for s, v, sv in one_each(name, ["tcp.stream", "tls.handshake.version",
                                                                  "tls.handshake.extensions.supported_version"], "tls.handshake.type == 2")}
    s12 = next(s for s, v in versions.items() if v == "0x0303")
    s13 = next(s for s, v in versions.items() if v == "0x0304")
    req = {int(s): int(f) for f, s in one_each(name, ["frame.number", "tcp.stream"], "http.request")}
    syn = {int(s): int(f) for f, s in one_each(name, ["frame.number", "tcp.stream"], "tcp.flags.syn == 1 && tcp.flags.ack == 0")}
    suites = {int(f): len(cs) for f, cs in [(r[0][0], r[1]) for r in tshark(name, ["frame.number", "tls.handshake.ciphersuite"], "tls.handshake.type == 1")]}
    rtt = initial_rtts(name)
    b = step(name, "Two connections")
    assert f"conn {s12} limited to TLS 1.2, conn {s13} to TLS 1.3" in b
    assert close(num(r"initial RTT of {n} ms", b), rtt[s12]) and close(num(r"ms and {n} ms", b), rtt[s13])

    ch, sh = hs[s12]["c1"][0], hs[s12]["s2"][0]
    cfin, sfin = hs[s12]["c20"][0], hs[s12]["s20"][0]
    curve = one_each(name, ["tls.handshake.server_named_curve"], "tls.handshake.type == 12")[0][0]
    b = step(name, "TLS 1.2, first round trip")
    assert f"ClientHello (frame {ch}) offers {suites[ch]} cipher suites" in b and f"(frame {sh})" in b
    assert close(num(r"answers {n} ms later", b), ms_between(name, ch, sh))
    assert f"ECDHE share ({GROUPS[curve]})" in b
    b = step(name, "TLS 1.2, second round trip")
    assert f"Finished (frame {cfin})" in b and f"(frame {sfin})" in b and f"frame {req[s12]}," in b
    assert close(num(r"come back {n} ms later", b), ms_between(name, cfin, sfin))
    assert close(num(r"{n} ms after the ClientHello", b), ms_between(name, ch, req[s12]))
    # TLS 1.2's full handshake: two round trips from ClientHello to the request (frame times over tshark's iRTT)
    assert num(r"handshake as {n} round trips", b) == round(ms_between(name, ch, req[s12]) / rtt[s12]) == 2

    ch, sh, cfin = hs[s13]["c1"][0], hs[s13]["s2"][0], hs[s13]["c20"][0]
    share = one_each(name, ["tls.handshake.extensions_key_share_group"], f"frame.number == {ch}")[0][0]
    b = step(name, "TLS 1.3")
    assert f"ClientHello (frame {ch}) already carries a key share ({GROUPS[share]})" in b
    assert f"(frame {sh})" in b and f"Finished (frame {cfin})" in b and f"GET (frame {req[s13]}," in b
    assert close(num(r"single flight {n} ms later", b), ms_between(name, ch, sh))
    assert close(num(r"{n} ms after the ClientHello", b), ms_between(name, ch, req[s13]))
    assert num(r"{n} round trip of handshake", b) == round(ms_between(name, ch, req[s13]) / rtt[s13]) == 1
    assert f"{len(hs[s13]['s4'])} session tickets" in b

    b = step(name, "The bill")
    f12, f13 = flights(name, req[s12], {s12}), flights(name, req[s13], {s13})
    assert (f12, f13) == (3, 2)
    assert num(r"TLS 1.2 \({n} round trips", b) == f12 and num(r"TLS 1.3 \({n} round trips", b) == f13
    d12, d13 = ms_between(name, syn[s12], req[s12]), ms_between(name, syn[s13], req[s13])
    assert close(num(r"request byte: {n} ms with TLS 1.2", b), d12) and close(num(r"against {n} ms with TLS 1.3", b), d13)
    assert close(num(r"saved 1 round trip, {n} ms", b), d12 - d13, 0.21)


def test_tls13_resumption_0rtt() -> None:
    name = "tls13-resumption-0rtt"
    rows = tshark(name, ["frame.number", "tcp.stream", "ip.src", "tls.handshake.type", "tls.handshake.length"], "tls.handshake")
    msgs: dict[int, list[tuple[int, str, str, int]]] = defaultdict(list)  # stream -> (frame, dir, type, length)
    for frame, stream, src, types, lengths in rows:
        for typ, ln in zip(types, lengths):
            msgs[int(stream[0])].append((int(frame[0]), "c" if src[0] == CLIENT else "s", typ, int(ln)))
    full = next(s for s, m in msgs.items() if any(t == "11" for _, _, t, _ in m))
    res = next(s for s in msgs if s != full)
    assert not any(t == "11" for _, _, t, _ in msgs[res])
    ch0 = next(f for f, d, t, _ in msgs[full] if t == "1")
    ch1 = next(f for f, d, t, _ in msgs[res] if t == "1")
    req = {int(s): int(f) for f, s in one_each(name, ["frame.number", "tcp.stream"], "http.request")}
    resp = {int(s): int(f) for f, s in one_each(name, ["frame.number", "tcp.stream"], "http.response")}
    tickets = one_each(name, ["frame.number", "tls.handshake.session_ticket_lifetime_hint", "tls.early_data.max_early_data_size"],
                       f"tls.handshake.type == 4 && tcp.stream == {full}")
    rtt = initial_rtts(name)

    b = step(name, "First visit")
    cert_len = next(ln for _, _, t, ln in msgs[full] if t == "11")
    assert f"ClientHello (frame {ch0})" in b and f"Certificate ({cert_len} bytes" in b and f"GET (frame {req[full]})" in b
    assert num(r"leaves after {n} round trips", b) == flights(name, req[full], {full}) == 2
    assert close(num(r"arrives {n} ms after the ClientHello", b), ms_between(name, ch0, resp[full]))
    b = step(name, "The tickets")
    assert f"{len(tickets)} NewSessionTickets (frames {', '.join(t[0] for t in tickets)})" in b
    assert f"valid {tickets[0][1]} s, allowing up to {tickets[0][2]} bytes of early data" in b

    b = step(name, "Second visit")
    ids = tshark(name, ["tls.handshake.extensions.psk.identity.identity_length"], f"frame.number == {ch1}")[0][0]
    assert f"ClientHello (frame {ch1}) presents {len(ids)} pre-shared key identity" in b
    # 0-RTT: the request rides in the ClientHello's own segment
    assert req[res] == ch1 and "in the same frame as the ClientHello" in b
    assert num(r"the request waited {n} round trip", b) == flights(name, req[res], {res}) == 1
    b = step(name, "The server accepts")
    sh1 = next(f for f, d, t, _ in msgs[res] if t == "2")
    selected = one_each(name, ["tls.handshake.extensions.psk.identity.selected"], f"frame.number == {sh1}")[0][0]
    ee_exts = tshark(name, ["tls.handshake.extension.type"], f"frame.number == {sh1}")[0][0]
    assert f"(frame {sh1}) the ServerHello picks PSK identity {selected}" in b
    assert "42" in ee_exts and "EncryptedExtensions accepts the early data" in b  # early_data extension answered
    assert close(num(r"^{n} ms later", b), ms_between(name, ch1, sh1))
    server_bytes = {s: sum(ln + 4 for _, d, t, ln in m if d == "s" and t != "4") for s, m in msgs.items()}
    assert f"{server_bytes[res]} bytes of server handshake against {server_bytes[full]} on the first visit" in b
    assert "carries 0 Certificate messages" in b
    eoed = next(f for f, d, t, _ in msgs[res] if t == "5")
    assert f"EndOfEarlyData (frame {eoed})" in b

    b = step(name, "The bill")
    r0, r1 = ms_between(name, ch0, resp[full]), ms_between(name, ch1, resp[res])
    assert close(num(r"arrives {n} ms after the ClientHello", b), r1)
    assert close(num(r"against {n} ms", b), r0)
    # full handshake: the response two round trips after the ClientHello; 0-RTT: one
    assert round(num(r"ClientHello \({n} RTT", b)) == round(r1 / rtt[res]) == 1
    assert round(num(r"against [\d.]+ ms \({n} RTT\)", b)) == round(r0 / rtt[full]) == 2


def test_dns_then_connect() -> None:
    name = "dns-then-connect"
    dns = one_each(name, ["frame.number", "dns.flags.response", "dns.qry.type", "dns.id", "dns.a", "dns.resp.ttl"], "dns")
    queries = [r for r in dns if r[1] == "0"]
    answers = [r for r in dns if r[1] == "1"]
    q_a = next(r for r in queries if r[2] == "1")
    a_a = next(r for r in answers if r[3] == q_a[3])
    syn = int(one_each(name, ["frame.number"], "tcp.flags.syn == 1 && tcp.flags.ack == 0")[0][0])
    ch = int(one_each(name, ["frame.number"], "tls.handshake.type == 1")[0][0])
    sh = int(one_each(name, ["frame.number"], "tls.handshake.type == 2")[0][0])
    req = int(one_each(name, ["frame.number"], f"http2.type == 1 && ip.src == {CLIENT}")[0][0])
    resp = int(one_each(name, ["frame.number"], f"http2.type == 1 && ip.src == {SERVER}")[0][0])
    first = int(queries[0][0])
    rtt = initial_rtts(name)[0]

    b = step(name, "Nothing cached")
    assert f"sends {len(queries)} queries" in b
    assert all(f"(frame {q[0]})" in b for q in queries) and "A (frame" in b and "AAAA (frame" in b
    b = step(name, "The answers")
    dns_ms = ms_between(name, int(q_a[0]), int(a_a[0]))
    assert f"A: {a_a[4]} after" in b and "AAAA: no record" in b
    assert close(num(r"connection used took {n} ms", b), dns_ms)
    assert f"cached for {a_a[5]} s" in b
    b = step(name, "Then TCP")
    assert f"(frame {syn})" in b and f"(frame {ch})" in b
    assert close(num(r"leaves {n} ms after the answer", b), ms_between(name, int(a_a[0]), syn))
    assert close(num(r"costs {n} ms until the ClientHello", b), ms_between(name, syn, ch))
    b = step(name, "Then TLS")
    assert f"ServerHello in frame {sh}" in b and f"leaves in frame {req}," in b
    assert close(num(r"{n} ms \([\d.]+ RTT\) after the ClientHello", b), ms_between(name, ch, req))
    b = step(name, "The bill")
    total = ms_between(name, first, req)
    assert close(num(r"to the request: {n} ms", b), total)
    # one round trip each for DNS, TCP and TLS 1.3 before the request: by flights and by time
    assert num(r"{n} round trips of waiting", b) == flights(name, req) == 3 == round(total / rtt)
    assert close(num(r"first byte came {n} ms later", b), ms_between(name, req, resp))
    pct = 100 * dns_ms / ms_between(name, first, resp)
    assert abs(num(r"the lookup was {n}%", b) - pct) <= 0.51
    assert provenance(name)["keylog"]  # the TLS part was decrypted with the committed key log
    assert f"({len(frames(name))} frames," in text_of(name)


def test_rtt_ledger_is_quoted_and_agrees_with_the_frames() -> None:
    """When the summary carries the RTT ledger, the walkthroughs quote it, and its round trips are tshark's."""
    for name, conn, expect, title in (
        ("tls12-vs-tls13", 0, None, "The bill"), ("tls12-vs-tls13", 1, None, "The bill"),
        ("dns-then-connect", 1, {"DNS": 1, "TCP": 1, "TLS": 1}, "The bill"),
        ("tcp-handshake", 0, {"TCP": 1}, "The bill"),
    ):
        b = step(name, title)
        if "ledger" not in summary(name)[conn]:
            assert "RTT ledger" not in b
            continue
        quoted = b.split(f"RTT ledger for conn {conn}: ")[1].split(", in units of")[0]
        if expect is None:  # TLS 1.2 two round trips, 1.3 one: ClientHello to request over tshark's iRTT
            hs = _tls_frames(name)
            req = {int(s): int(f) for f, s in one_each(name, ["frame.number", "tcp.stream"], "http.request")}
            expect = {"TCP": 1, "TLS": round(ms_between(name, hs[conn]["c1"][0], req[conn]) / initial_rtts(name)[conn])}
        for label, rtts in expect.items():
            assert num(rf"\b{label} {{n}} RTT", quoted) == rtts, (name, label, quoted)
