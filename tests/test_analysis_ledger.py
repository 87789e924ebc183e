"""The RTT ledger on the lab captures, its numbers derived from tshark's packet times.

Every expected millisecond here comes from frame times tshark reports (SYN,
SYN/ACK, ACK, ClientHello, the server's Finished, the HTTP request and
response, the DNS answer), decrypted with the capture's key log where needed.
The client side of the round trip (SYN/ACK -> ACK at the capture point)
moves server packets to the client, as the ledger does.
"""

from __future__ import annotations

import json

import pytest

from tests.support.analysis_run import summary
from tests.support.analysis_tshark import (
    SAMPLES,
    handshake_times,
    keylog_options,
    quic_stream_frames,
    sample,
)
from tests.support.capture import tshark_fields

TOL_MS = 0.002


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _steps(conn: dict) -> dict[str, dict]:
    return {s["step"]: s for s in conn["ledger"]}


def _first(path: str, flt: str, options: list[str]) -> float:
    rows = tshark_fields(path, ["frame.time_epoch"], display_filter=flt, options=options)
    return float(rows[0][0])


def _tcp_tls_http(name: str, stream: int) -> dict[str, float]:
    """tshark's times for one TCP+TLS+HTTP connection of a capture (HTTP/1.1 or HTTP/2 HEADERS)."""
    rows = tshark_fields(sample(f"{name}.pcap"),
                         ["frame.time_epoch", "tcp.srcport", "tcp.flags.syn", "tcp.flags.ack", "tcp.len",
                          "tls.handshake.type", "http.request", "http.response", "http2.type"],
                         display_filter=f"tcp.stream=={stream}", options=keylog_options(name))
    out: dict[str, float] = {}

    def first(key: str, ts: str) -> None:
        out.setdefault(key, float(ts))

    for ts, sport, syn, ack, length, hs, req, resp, h2 in rows:
        server = sport == "443"
        if syn == "1":
            first("synack" if ack == "1" else "syn", ts)
        elif "synack" in out and not server and ack == "1":
            first("ack", ts)
        hs_types = hs.split(",") if hs else []
        if "1" in hs_types:
            first("client_hello", ts)
        if server and "20" in hs_types:
            first("server_finished", ts)
        headers = "1" in (h2.split(",") if h2 else [])
        if req or (headers and not server):
            first("request", ts)
        if resp or (headers and server):
            first("response", ts)
    return out


def _check_tcp_tls_request(conn: dict, t: dict[str, float], tls_rtts: int) -> None:
    client_side = t["ack"] - t["synack"]
    server_side = t["synack"] - t["syn"]
    irtt = t["ack"] - t["syn"]
    steps = _steps(conn)
    assert [s["step"] for s in conn["ledger"]] == ["tcp", "tls", "request"]
    assert conn["rtt_ms"] == pytest.approx(_ms(irtt), abs=TOL_MS)
    assert conn["rtt"]["capture_point"] == "client"
    assert steps["tcp"]["rtts"] == 1 and steps["tcp"]["ms"] == pytest.approx(_ms(irtt), abs=TOL_MS)
    assert steps["tls"]["rtts"] == tls_rtts
    tls_ms = _ms(t["server_finished"] - t["client_hello"] + client_side)
    assert steps["tls"]["ms"] == pytest.approx(tls_ms, abs=TOL_MS)
    req = steps["request"]
    gap = t["response"] - t["request"]
    assert req["rtts"] == 1
    assert req["ms"] == pytest.approx(_ms(gap + client_side), abs=TOL_MS)
    assert req["network_ms"] == pytest.approx(_ms(irtt), abs=TOL_MS)
    assert req["server_ms"] == pytest.approx(max(_ms(gap - server_side), 0.0), abs=TOL_MS)


def test_tls12_then_tls13() -> None:
    """A full TLS 1.2 handshake costs 2 round trips, TLS 1.3 one; each priced in its own iRTT."""
    conns = summary("tls12-vs-tls13")
    t0, t1 = _tcp_tls_http("tls12-vs-tls13", 0), _tcp_tls_http("tls12-vs-tls13", 1)
    _check_tcp_tls_request(conns[0], t0, 2)
    _check_tcp_tls_request(conns[1], t1, 1)
    # the TLS 1.2 handshake took two round trips of this path, TLS 1.3 one
    rtt0, rtt1 = t0["ack"] - t0["syn"], t1["ack"] - t1["syn"]
    assert 1.9 < (t0["server_finished"] - t0["client_hello"]) / rtt0 < 2.2
    assert 0.9 < (t1["server_finished"] - t1["client_hello"]) / rtt1 < 1.2
    (w,) = [w for w in conns[0]["what_if"] if w["text"].startswith("TLS 1.3 would have saved 1 RTT")]
    assert w["saved_rtts"] == 1 and w["saved_ms"] == pytest.approx(_ms(rtt0), abs=TOL_MS)
    assert w["text"].endswith(f"({_ms(rtt0):.0f} ms)")
    (reuse,) = [w for w in conns[1]["what_if"] if w["text"].startswith("reusing connection 0")]
    assert reuse["saved_rtts"] == 2 and reuse["saved_ms"] == pytest.approx(_ms(2 * rtt1), abs=TOL_MS)
    assert not any("TLS 1.3 would have" in w["text"] for w in conns[1]["what_if"])


def test_zero_rtt_resumption() -> None:
    """The second connection resumes with early data: no TLS round trip, the request rides the ClientHello."""
    conns = summary("tls13-resumption-0rtt")
    t = _tcp_tls_http("tls13-resumption-0rtt", 1)
    steps = _steps(conns[1])
    assert steps["tls"]["rtts"] == 0 and steps["tls"]["ms"] == 0.0
    assert steps["tls"]["early_data"] == "accepted" and steps["tls"]["resumed"] is True
    assert t["request"] <= t["client_hello"] + 1e-6  # tshark: the GET went with the ClientHello
    client_side = t["ack"] - t["synack"]
    assert steps["request"]["ms"] == pytest.approx(_ms(t["response"] - t["request"] + client_side), abs=TOL_MS)
    first = _steps(conns[0])
    assert first["tls"]["rtts"] == 1 and "early_data" not in first["tls"]
    assert not any(w["text"].startswith("0-RTT") for w in conns[1]["what_if"])


def test_dns_then_connect() -> None:
    """The lookup that named the server comes first: dns, tcp, tls, request, each about one round trip."""
    name = "dns-then-connect"
    conns = summary(name)
    (tcp_conn,) = [c for c in conns if c["transport"] == "tcp"]
    assert [s["step"] for s in tcp_conn["ledger"]] == ["dns", "tcp", "tls", "request"]
    rows = tshark_fields(sample(f"{name}.pcap"), ["dns.time"],
                         display_filter='dns.flags.response==1 && dns.qry.type==1 && dns.qry.name=="lab.test"')
    dns = _steps(tcp_conn)["dns"]
    assert dns["ms"] == pytest.approx(_ms(float(rows[0][0])), abs=TOL_MS)
    assert dns["qname"] == "lab.test" and dns["rtts"] == 1
    _check_tcp_tls_request({**tcp_conn, "ledger": tcp_conn["ledger"][1:]}, _tcp_tls_http(name, 0), 1)
    dns_conn = [c for c in conns if c["transport"] == "udp"][0]
    assert "ledger" not in dns_conn


def test_websocket_upgrade() -> None:
    conn = summary("websocket")[0]
    path = sample("websocket.pcap")
    syn, synack, ack = handshake_times(path, 0)
    request = _first(path, "http.request", [])
    response = _first(path, "http.response.code==101", [])
    assert [s["step"] for s in conn["ledger"]] == ["tcp", "ws-upgrade"]
    up = _steps(conn)["ws-upgrade"]
    assert up["rtts"] == 1 and up["ms"] == pytest.approx(_ms(response - request + ack - synack), abs=TOL_MS)


def test_server_side_capture_gives_the_client_view() -> None:
    """The same connection captured at the server: the capture point is inferred from the handshake and
    the ledger moved to the client agrees with what the client capture shows directly."""
    at_server = summary("http2-lossy.server")[0]
    syn, synack, ack = handshake_times(sample("http2-lossy.server.pcap"), 0)
    assert at_server["rtt"]["capture_point"] == "server"
    assert at_server["rtt"]["server_side_ms"] == pytest.approx(_ms(synack - syn), abs=TOL_MS)
    assert at_server["rtt"]["client_side_ms"] == pytest.approx(_ms(ack - synack), abs=TOL_MS)
    t = _tcp_tls_http("http2-lossy", 0)  # the client's own capture
    client_view = {
        "tcp": _ms(t["ack"] - t["syn"]),
        "tls": _ms(t["server_finished"] - t["client_hello"]),
        "request": _ms(t["response"] - t["request"]),
    }
    steps = _steps(at_server)
    for step, ms in client_view.items():
        assert abs(steps[step]["ms"] - ms) < 1.0, step  # the delay line jitters by well under a millisecond
    at_client = summary("http2-lossy")[0]
    assert at_client["rtt"]["capture_point"] == "client"


def test_quic_handshake() -> None:
    name = "http3-lossy"
    conn = summary(name)[0]
    path = sample(f"{name}.pcap")
    opts = keylog_options(name)
    assert [s["step"] for s in conn["ledger"]] == ["quic", "request"]
    quic = _steps(conn)["quic"]
    first_initial = _first(path, "udp.dstport==443 && quic.long.packet_type==0", opts)
    first_handshake = _first(path, "udp.dstport==443 && quic.long.packet_type==2", opts)
    assert quic["rtts"] == 1
    assert quic["ms"] == pytest.approx(_ms(first_handshake - first_initial), abs=TOL_MS)
    note = json.loads((SAMPLES / f"{name}.json").read_text())
    assert abs(conn["rtt_ms"] - note["rtt_ms"]) < 1.0  # the lab's delay line: 2 x 20 ms
    assert conn["rtt"]["capture_point"] == "client"
    client_port = int(conn["client"].rsplit(":", 1)[1])
    sent = min(ts for f, ts, sid, off, n in quic_stream_frames(path, opts, client_port) if sid == 0)
    answered = min(ts for f, ts, sid, off, n in quic_stream_frames(path, opts, 443) if sid == 0)
    assert _steps(conn)["request"]["ms"] == pytest.approx(_ms(answered - sent + conn["rtt"]["client_side_ms"] / 1000),
                                                          abs=TOL_MS)


def test_reuse_what_if_on_sequential_connections() -> None:
    """One connection per request to the same server: each could have reused the previous one."""
    conns = summary("http1-keepalive")
    path = sample("http1-keepalive.pcap")
    for cid in (1, 2, 3, 4):
        syn, synack, ack = handshake_times(path, cid)
        (w,) = [w for w in conns[cid]["what_if"] if w["text"].startswith(f"reusing connection {cid - 1} ")]
        assert w["saved_rtts"] == 1 and w["saved_ms"] == pytest.approx(_ms(ack - syn), abs=TOL_MS)
    # connections 4-6 opened together: the ones after the first had no idle connection to take
    assert not any(w["text"].startswith("reusing") for c in conns[5:7] for w in c["what_if"])


def _ledger_frames(name: str) -> dict[tuple[int, str], int]:
    """Our export's ledger events: (connection, step) -> frame."""
    from inspector.events import LedgerStep
    from inspector.keylog import KeyLog
    from inspector.pipeline import decode_file

    keys = SAMPLES / f"{name}.keys"
    events: list = []
    decode_file(sample(f"{name}.pcap"), keylog=KeyLog.from_file(str(keys)) if keys.exists() else None,
                on_event=events.append)
    return {(e.conn, e.step): e.frame for e in events if isinstance(e, LedgerStep)}


@pytest.mark.parametrize("name", ["tls12-vs-tls13", "http3-lossy"])
def test_ledger_events_complete_where_their_step_did(name: str) -> None:
    """A ledger step's event is placed in the frame where the step completed, as every event is:
    the handshake's ACK (tcp), the server's Finished (tls: the record tshark decrypts it from),
    the client's Finished (quic).  The step's time is that frame's time."""
    path, opts = sample(f"{name}.pcap"), keylog_options(name)
    ours = _ledger_frames(name)
    if name.startswith("tls"):
        for conn in (0, 1):
            rows = tshark_fields(path, ["frame.number", "tcp.srcport", "tcp.flags", "tls.handshake.type"],
                                 display_filter=f"tcp.stream=={conn}", options=opts)
            ack = next(int(f) for f, sport, flags, _ in rows if sport != "443" and int(flags, 16) == 0x010)
            fin = next(int(f) for f, sport, _, hs in rows if sport == "443" and "20" in hs.split(","))
            assert ours[(conn, "tcp")] == ack and ours[(conn, "tls")] == fin
    else:
        rows = tshark_fields(path, ["frame.number"], display_filter="udp.dstport==443 && tls.handshake.type==20",
                             options=opts)
        assert ours[(0, "quic")] == int(rows[0][0])
