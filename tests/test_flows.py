"""Flows: roles, ids, mid-connection starts, port reuse, teardown, UDP flows."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, Raw, wrpcap  # type: ignore[import-untyped]

from tests.support.capture import free_port, loopback_capture, tshark_fields
from tests.support.decode import cli, collect
from tests.test_tcp_tshark import our_segments, tshark_segments


def summary(path: str) -> list[dict]:
    return json.loads(cli("summary", path, "--json", check=True).stdout)["connections"]


def test_summary_fields_for_real_http(http_pcap: str) -> None:
    conns = summary(http_pcap)
    assert len(conns) == 3
    for c in conns:
        assert c["transport"] == "tcp" and c["app"] == "http/1.1"
        assert c["client"].startswith("127.0.0.1:") and c["server"].startswith("127.0.0.1:")
        assert c["tcp"]["handshake"] == "complete"
        assert c["tcp"]["closed_by"] == "client"  # curl closes first when it is done
        assert c["tcp"]["retransmissions"] == 0
        assert c["end"] >= c["start"]
        assert c["tcp"]["options"]["client"]["sack_permitted"]
    # the requests are the ones curl made (see tests/support/tcp_captures.py)
    assert [[(r["method"], r["path"], r["status"]) for r in c["requests"]] for c in conns] == [
        [("GET", "/a", 200), ("GET", "/bb", 200)], [("GET", "/c", 200)], [("POST", "/post", 201)]]
    # packets and bytes per conversation agree with tshark's conversation table
    rows = tshark_fields(http_pcap, ["tcp.stream", "frame.len"])
    for c in conns:
        mine = [int(n) for s, n in rows if int(s) == c["id"]]
        assert c["packets"] == len(mine) and c["bytes"] == sum(mine)


def test_capture_starting_mid_connection(http_pcap: str, tmp_path: Path) -> None:
    cut = str(tmp_path / "mid.pcap")
    subprocess.run(["editcap", "-r", http_pcap, cut, "5-1000"], check=True, capture_output=True)
    assert our_segments(cut) == tshark_segments(cut)
    for c in summary(cut)[:1]:
        assert c["tcp"]["handshake"] == "none" and c["tcp"]["irtt_ms"] is None


def test_roles_from_ports_without_a_syn(tmp_path: Path) -> None:
    """The server answers first in the capture; port 443 still makes it the server."""
    srv, cli_ = IP(src="198.51.100.7", dst="192.0.2.1"), IP(src="192.0.2.1", dst="198.51.100.7")
    pkts = [
        srv / TCP(sport=443, dport=51000, flags="PA", seq=10, ack=20) / Raw(b"x" * 10),
        cli_ / TCP(sport=51000, dport=443, flags="A", seq=20, ack=20),
        srv / UDP(sport=53, dport=40000) / Raw(b"\0" * 12),
    ]
    p = tmp_path / "roles.pcap"
    wrpcap(str(p), pkts, linktype=101)
    conns = summary(str(p))
    assert [c["server"] for c in conns] == ["198.51.100.7:443", "198.51.100.7:53"]
    assert [c["transport"] for c in conns] == ["tcp", "udp"]
    assert conns[0]["tcp"]["handshake"] == "none"


@pytest.fixture(scope="module")
def reuse_pcap(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two real connections from the same client port to the same server port."""
    path = str(tmp_path_factory.mktemp("reuse") / "reuse.pcap")
    port, cport = free_port(), free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)

    def serve() -> None:
        for _ in range(2):
            c, _ = srv.accept()
            c.recv(100)
            c.sendall(b"bye")
            c.close()  # the server closes first, so the client port is free again at once

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    with loopback_capture(path, f"tcp port {port}"):
        for _ in range(2):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", cport))
            s.connect(("127.0.0.1", port))
            s.sendall(b"hi")
            while s.recv(100):
                pass
            s.close()
    t.join(5)
    srv.close()
    return path


def test_port_reuse_starts_a_new_connection(reuse_pcap: str) -> None:
    pipe, events = collect(reuse_pcap)
    theirs = {int(n): int(s) for n, s in tshark_fields(reuse_pcap, ["frame.number", "tcp.stream"])}
    ours = {e.frame: e.conn for e in events if e.type == "segment"}
    assert ours == theirs and set(theirs.values()) == {0, 1}
    assert our_segments(reuse_pcap) == tshark_segments(reuse_pcap)
    conns = summary(reuse_pcap)
    assert [c["client"] for c in conns][0] == [c["client"] for c in conns][1]
    assert [c["tcp"]["closed_by"] for c in conns] == ["server", "server"]


def test_reset_teardown(tmp_path: Path) -> None:
    """A real RST: the client closes with unread data pending (SO_LINGER 0)."""
    import struct

    path = str(tmp_path / "rst.pcap")
    port = free_port()
    srv = socket.socket()
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    with loopback_capture(path, f"tcp port {port}"):
        s = socket.create_connection(("127.0.0.1", port))
        c, _ = srv.accept()
        s.sendall(b"ping")
        c.recv(10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        c.close()
    srv.close()
    (conn,) = summary(path)
    assert conn["tcp"]["closed_by"] == "reset"
    flags = [r[0] for r in tshark_fields(path, ["tcp.flags.reset"])]
    assert "1" in flags or "True" in flags


def test_half_close_is_reported(lossy_pcap: str) -> None:
    """In the bulk exchange the server shuts down its side first while the client is done."""
    (conn,) = summary(lossy_pcap)
    assert conn["tcp"]["closed_by"] == "server"


def test_start_and_end_times_survive_batches(http_pcap: str) -> None:
    """run() may be fed in batches (live capture): the first packet's time stays the start."""
    from inspector.capture.reader import CaptureReader
    from inspector.pipeline import Pipeline

    packets = list(CaptureReader(http_pcap))
    pipe = Pipeline()
    pipe.run(packets[:5])
    pipe.run(packets[5:])
    assert (pipe.first_ts, pipe.last_ts, pipe.frame) == (packets[0][0], packets[-1][0], len(packets))
