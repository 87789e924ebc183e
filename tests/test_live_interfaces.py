"""``netinspect live`` on ``-i any`` and on a real Ethernet interface (one end of a veth pair).

``any`` is one socket on every interface with the link headers stripped by
the kernel; netinspect writes each frame with a Linux cooked v2 header (as
``tcpdump -i any``).  The same loopback traffic captured on ``lo`` and on
``any`` at the same time must give the same frames (each loopback frame
once), the same decode, and files tshark reads with the same counts.  A veth
pair to a namespace gives an Ethernet interface whose frames go out and come
in (both kept, on the interface and on ``any``).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

from inspector.capture.reader import CaptureReader
from tests.support import tui_live
from tests.support.capture import free_port, tshark_fields
from tests.support.http_servers import CURL
from tests.support.live_checks import start_headless, tshark_count
from tests.support.netns import veth_pair

NETINSPECT = [sys.executable, "-m", "inspector"]
REPORT = re.compile(r"(\d+) packets captured on (\S+), (\d+) dropped by the kernel; wrote \S+ \((\d+) packets")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, int]:
    """SIGINT; the decoded output and the count written (checked equal to the count captured, no drops)."""
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    m = REPORT.search(stderr)
    assert m and m.group(1) == m.group(4) and m.group(3) == "0", stderr
    return stdout, int(m.group(4))


def _summary(path) -> list[dict]:
    proc = subprocess.run([*NETINSPECT, "summary", str(path), "--json"], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)["connections"]


def _close(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 0.01
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == b


def _linktypes(path) -> set[int]:
    return {p[1] for p in CaptureReader(str(path))}


def test_any_captures_loopback_once_and_decodes_it_as_lo_does(tmp_path):
    keys = tmp_path / "keys.log"
    with tui_live.servers(tmp_path) as ports:
        bpf = ports.bpf
        lo = start_headless(["live", "-i", "lo", "-f", bpf, "--keylog", str(keys), "-w", str(tmp_path / "lo.pcapng"),
                             "--no-view"])
        any_ = start_headless(["live", "-i", "any", "-f", bpf, "--keylog", str(keys), "-w",
                               str(tmp_path / "any.pcapng"), "--no-view"])
        tui_live.http1(ports)
        tui_live.tls_h2(ports, keys)
        tui_live.websocket(ports)
        time.sleep(0.5)
        lo_out, lo_n = _stop(lo)
        any_out, any_n = _stop(any_)
    any_file = tmp_path / "any.pcapng"
    assert _linktypes(any_file) == {276} and _linktypes(tmp_path / "lo.pcapng") == {1}
    # each loopback frame once (its outgoing copy is left out, as libpcap does), and tshark reads as many
    assert any_n == lo_n > 30
    assert tshark_count(any_file) == any_n
    # the connections appear as they do on lo
    for stack in ("TCP › HTTP/1.1  ", "TCP › TLS 1.3 › h2  ", "TCP › HTTP/1.1 › WebSocket  "):
        assert stack in any_out and stack in lo_out
    # and decode to the same records: only frame bytes differ, by the link headers (20-byte cooked v2
    # header instead of a 14-byte Ethernet one)
    on_lo, on_any = _summary(tmp_path / "lo.pcapng"), _summary(any_file)
    assert len(on_any) == len(on_lo) == 3
    for a, b in zip(on_lo, on_any):
        assert b["bytes"] - a["bytes"] == 6 * a["packets"]
        a.pop("bytes"), b.pop("bytes")
        # two sockets stamp a frame microseconds apart: times (s or ms) agree to 0.01, the rest exactly
        assert _close(a, b), (a, b)
    # tshark decodes the cooked frames too: the HTTP/2 request, decrypted with the embedded secrets
    rows = tshark_fields(str(any_file), ["sll.ifindex", "http2.header.value"], display_filter="http2.type == 1")
    assert any("/live.txt" in r[1].split(",") for r in rows)
    lo_index = open("/sys/class/net/lo/ifindex").read().strip()
    assert {r[0] for r in rows} == {lo_index}


def test_live_on_an_ethernet_interface_and_on_any(tmp_path):
    port = free_port()
    with veth_pair("live") as net:
        server = subprocess.Popen(net.exec_cmd(sys.executable, "-m", "http.server", str(port), "--bind", net.peer_ip,
                                               "--directory", str(tmp_path)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (tmp_path / "hello.txt").write_text("hello over veth\n")
        try:
            url = f"http://{net.peer_ip}:{port}/hello.txt"
            for _ in range(100):  # until the server listens
                if subprocess.run([CURL, "-s", "-o", "/dev/null", url], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            bpf = f"tcp port {port}"
            veth = start_headless(["live", "-i", net.local_if, "-f", bpf, "-w", str(tmp_path / "veth.pcapng"),
                                   "--no-view"])
            any_ = start_headless(["live", "-i", "any", "-f", bpf, "-w", str(tmp_path / "any.pcapng"), "--no-view"])
            body = subprocess.run([CURL, "-s", url], capture_output=True, check=True).stdout
            assert body == b"hello over veth\n"
            time.sleep(0.5)
            veth_out, veth_n = _stop(veth)
            _any_out, any_n = _stop(any_)
        finally:
            server.terminate()
            server.wait(10)
    veth_file = tmp_path / "veth.pcapng"
    assert _linktypes(veth_file) == {1}  # Ethernet, as the interface is
    # sent and received frames alike, on the interface and on any: the kernel's counts, and tshark's
    assert any_n == veth_n >= 8
    assert tshark_count(veth_file) == veth_n and tshark_count(tmp_path / "any.pcapng") == any_n
    assert f"TCP › HTTP/1.1  {net.local_ip}:" in veth_out and f"→ {net.peer_ip}:{port}" in veth_out
    (conn,) = _summary(veth_file)
    assert [(r["method"], r["path"], r["status"]) for r in conn["requests"]] == [("GET", "/hello.txt", 200)]
    # tshark sees the same request and response in the Ethernet frames
    rows = tshark_fields(str(veth_file), ["eth.type", "http.request.uri", "http.response.code"],
                         display_filter="http")
    assert [(r[1], r[2]) for r in rows] == [("/hello.txt", ""), ("", "200")]
    assert {r[0] for r in rows} == {"0x0800"}
