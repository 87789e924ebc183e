"""What-if lines on a capture made here: nginx with TLS 1.3 session tickets on loopback.

Two separate curl runs make two full TLS 1.3 handshakes to the same server (the
first receives session tickets the second could have used for 0-RTT); an
``openssl s_client`` pair then resumes a session without sending early data.
tshark decides what each connection was (tickets, resumption, early data).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.capture import free_port, loopback_capture, tshark_fields
from tests.support.tls_stack import curl, nginx_tls, s_client


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    tmp = tmp_path_factory.mktemp("whatif")
    port = free_port()
    keylog = tmp / "keys.log"
    pcap = str(tmp / "whatif.pcap")
    session = tmp / "session.pem"
    (tmp / "nginx").mkdir()
    with nginx_tls(tmp / "nginx", port), loopback_capture(pcap, f"tcp port {port}"):
        for _ in range(2):
            curl(f"https://127.0.0.1:{port}/", keylog, ["--tlsv1.3", "--http1.1"])
        s_client(port, keylog, ["-tls1_3", "-sess_out", str(session)])
        s_client(port, keylog, ["-tls1_3", "-sess_in", str(session)])
    return pcap, keylog


def _tshark_view(pcap: str, keylog: Path) -> dict[int, dict[str, bool]]:
    """Per TCP stream: did the server send tickets, did its ServerHello accept a PSK, was there early data."""
    rows = tshark_fields(pcap, ["tcp.stream", "tls.handshake.type", "tls.handshake.extension.type", "tcp.srcport"],
                         display_filter="tls.handshake", options=[f"tls.keylog_file:{keylog}"])
    out: dict[int, dict[str, bool]] = {}
    for stream, types, exts, sport in rows:
        v = out.setdefault(int(stream), {"tickets": False, "psk": False, "early": False, "server_port": None})
        types_l = types.split(",")
        exts_l = exts.split(",") if exts else []
        if "4" in types_l:
            v["tickets"] = True
        if "2" in types_l and "41" in exts_l:  # ServerHello with pre_shared_key: resumed
            v["psk"] = True
        if "1" in types_l and "42" in exts_l:  # ClientHello offering early_data
            v["early"] = True
    return out


def test_zero_rtt_what_ifs(capture: tuple[str, Path]) -> None:
    pcap, keylog = capture
    view = _tshark_view(pcap, keylog)
    assert len(view) == 4
    assert view[0]["tickets"] and not view[1]["psk"]  # the second curl did a full handshake again
    assert view[3]["psk"] and not view[3]["early"]  # s_client resumed without early data
    pipe, _ = decode_file(pcap, keylog=KeyLog.from_file(str(keylog)))
    conns = summaries(pipe.connections, pipe.registry)
    irtt = {int(s): float(r) for s, r in tshark_fields(pcap, ["tcp.stream", "tcp.analysis.initial_rtt"],
                                                       display_filter="tcp.analysis.initial_rtt")}

    def zero_rtt(cid: int) -> list[dict]:
        return [w for w in conns[cid]["what_if"] if w["text"].startswith("0-RTT")]

    assert zero_rtt(0) == []  # nothing to resume from yet
    (second,) = zero_rtt(1)
    assert "connection 0" in second["text"] and second["saved_rtts"] == 1
    assert second["saved_ms"] == pytest.approx(round(irtt[1] * 1000, 3), abs=0.002)
    (resumed,) = zero_rtt(3)
    assert "resumed session" in resumed["text"]
    assert conns[3]["ledger"][1]["step"] == "tls" and conns[3]["ledger"][1]["resumed"] is True
    assert conns[1]["rtt"]["capture_point"] == "local"  # loopback: no side of the round trip to tell apart
