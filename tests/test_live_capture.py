"""``netinspect live``: the same pipeline fed from a live AF_PACKET socket on loopback.

Real servers (nginx, websockets) and clients (curl, websockets) make the
traffic while the UI runs (headless pilot, and a real terminal under tmux);
the connections must appear with the stacks those programs speak, the
capture written with -w must carry the key log in a Decryption Secrets Block
that tshark uses on its own, and a process without CAP_NET_RAW gets one line
and exit code 2.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

from inspector.capture.live import LiveCapture, PcapngWriter
from inspector.capture.reader import SECRETS_TLS_KEYLOG, CaptureReader
from inspector.keylog import KeyLog
from tests.support import tui_live
from tests.support.capture import tshark_fields
from tests.support.tui_app import async_test, wait_until
from tests.support.tui_tmux import TmuxSession

SIZE = (120, 36)


def _stacks(app) -> dict[str, object]:
    return {row.stack: row for row in list(app.model.rows)}


@async_test
async def test_live_view_shows_http1_h2c_tls_and_websocket_as_they_happen(tmp_path):
    from tui.app import NetinspectApp
    from tui.sources import LiveSource

    keylog = tmp_path / "keys.log"
    keylog.touch()
    out = tmp_path / "live.pcapng"
    with tui_live.servers(tmp_path) as ports:
        capture = LiveCapture("lo", ports.bpf)
        writer = PcapngWriter(str(out), capture.linktype, "lo")
        source = LiveSource(capture, KeyLog(), str(keylog), writer)
        app = NetinspectApp(source)
        loop = asyncio.get_running_loop()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.3)
            assert app.follow  # live: the newest connection is followed
            await loop.run_in_executor(None, tui_live.http1, ports)
            await wait_until(pilot, lambda: "TCP › HTTP/1.1" in _stacks(app))
            lst = app.screen.list
            assert lst.row_at(lst.cursor).stack == "TCP › HTTP/1.1"
            await loop.run_in_executor(None, tui_live.h2c, ports)
            await loop.run_in_executor(None, tui_live.tls_h2, ports, keylog)
            await loop.run_in_executor(None, tui_live.websocket, ports)
            want = {"TCP › HTTP/1.1", "TCP › h2", "TCP › TLS 1.3 › h2", "TCP › HTTP/1.1 › WebSocket"}
            await wait_until(pilot, lambda: want <= set(_stacks(app)))
            # the TLS connection is decrypted (with the lines curl appended to the followed key log)
            await wait_until(pilot, lambda: (_stacks(app)["TCP › TLS 1.3 › h2"].summary.get("requests") or [{}])[0]
                             .get("path") == "/live.txt", timeout=10)
            tls_row = _stacks(app)["TCP › TLS 1.3 › h2"]
            assert tls_row.server.endswith(f":{ports.tls}")
            # the one message each way the client and the echo server exchanged
            await wait_until(pilot, lambda: _stacks(app)["TCP › HTTP/1.1 › WebSocket"].summary["websocket"]["messages"]
                             == {"c2s": 1, "s2c": 1})
            assert "0 dropped by the kernel" in app.status_text
            await pilot.press("f")  # follow off: the cursor stays
            assert not app.follow
            await pilot.press("q")
        source.finished.wait(10)
        writer.close(source.secrets_text())
    # -w: pcapng with the secrets in a Decryption Secrets Block, ahead of the packets
    secrets: list[str] = []
    reader = CaptureReader(str(out), on_secrets=secrets.append)
    packets = list(reader)
    assert packets and reader.format == "pcapng"
    assert secrets and "CLIENT_TRAFFIC_SECRET_0" in secrets[0]
    kinds = _block_types(out)
    assert kinds[:3] == [0x0A0D0D0A, 1, 0x0A] and set(kinds[3:]) == {6} and len(kinds) - 3 == len(packets)
    # tshark decrypts the HTTP/2 request from the file alone (no key log option)
    rows = tshark_fields(str(out), ["frame.number"], display_filter='http2.header.value == "/live.txt"')
    assert rows, "tshark did not decrypt with the embedded secrets"


def _block_types(path) -> list[int]:
    """pcapng block types in file order (section header, interface, secrets, packets...)."""
    data = path.read_bytes()
    kinds, off = [], 0
    while off + 12 <= len(data):
        kind, length = int.from_bytes(data[off:off + 4], "little"), int.from_bytes(data[off + 4:off + 8], "little")
        kinds.append(kind)
        if kind == 0x0A:
            assert int.from_bytes(data[off + 8:off + 12], "little") == SECRETS_TLS_KEYLOG
        off += length
    assert off == len(data)
    return kinds


@async_test
async def test_secrets_appended_later_decrypt_earlier_packets(tmp_path):
    from tui.app import NetinspectApp
    from tui.sources import LiveSource

    followed = tmp_path / "followed.keys"
    followed.touch()
    curl_keys = tmp_path / "curl.keys"
    with tui_live.servers(tmp_path) as ports:
        source = LiveSource(LiveCapture("lo", f"tcp port {ports.tls}"), KeyLog(), str(followed))
        app = NetinspectApp(source)
        loop = asyncio.get_running_loop()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.3)
            await loop.run_in_executor(None, tui_live.tls_h2, ports, curl_keys)
            # the whole exchange, closed, but without keys
            await wait_until(pilot, lambda: app.model.rows and app.model.rows[0].summary.get("tls")
                             and app.model.rows[0].summary["tcp"]["closed_by"] is not None)
            row = app.model.rows[0]
            assert row.summary["tls"]["decryption"] != "decrypted"
            assert ("nokey", "warning") in row.badges
            first_model = app.model
            # the key log gains curl's lines: everything kept is decoded again
            followed.write_text(curl_keys.read_text())
            await wait_until(pilot, lambda: app.model is not first_model, timeout=10)
            await wait_until(pilot, lambda: app.model.rows and app.model.rows[0].summary["tls"]["decryption"] == "decrypted")
            row = app.model.rows[0]
            assert [r["path"] for r in row.summary["requests"]] == ["/live.txt"]
            # once or twice: the follower may have read the lines in two pieces while they were written
            await wait_until(pilot, lambda: "re-decoded" in app.status_text)
            assert source.replays in (1, 2)
            await pilot.press("q")


def test_live_in_a_real_terminal(tmp_path):
    """`netinspect live` under tmux: connections appear on screen as curl runs; q ends it."""
    with tui_live.servers(tmp_path) as ports:
        out = tmp_path / "term.pcapng"
        cmd = [sys.executable, "-m", "inspector", "live", "-i", "lo", "-f", f"tcp port {ports.h1} or tcp port {ports.ws}",
               "-w", str(out)]
        with TmuxSession(cmd, cwd=os.getcwd()) as term:
            term.wait_for("Connections (0)")
            tui_live.http1(ports)
            screen = term.wait_for("TCP › HTTP/1.1")
            assert f"127.0.0.1:{ports.h1}" in screen
            tui_live.websocket(ports)
            screen = term.wait_for("WebSocket")
            assert "Connections (2)" in screen and "live lo" in screen
            term.keys("q")
            screen = term.wait_for("[exited 0]")
            assert "packets captured on lo, 0 dropped by the kernel" in screen
    assert len(list(CaptureReader(str(out)))) > 10


def test_live_without_capture_privileges_says_so_and_exits_2():
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) drops CAP_NET_RAW for this test"
    proc = subprocess.run([setpriv, "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--",
                           sys.executable, "-m", "inspector", "live", "-i", "lo", "--no-ui", "--duration", "1"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["netinspect: capturing on lo needs root or the CAP_NET_RAW capability "
                     "(try: sudo netinspect ..., or setcap cap_net_raw+ep on the Python binary)"]
    bad = subprocess.run([sys.executable, "-m", "inspector", "live", "-i", "lo", "-f", "tcp prt 1", "--no-ui"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stderr.startswith("netinspect: bad capture filter 'tcp prt 1'")


def test_live_headless_prints_connections_and_counts_drops(tmp_path):
    with tui_live.servers(tmp_path) as ports:
        proc = subprocess.Popen([sys.executable, "-m", "inspector", "live", "-i", "lo", "-f", f"tcp port {ports.h2c}",
                                 "--no-ui", "--duration", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        tui_live.h2c(ports)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "TCP › h2  127.0.0.1:" in stdout and f"→ 127.0.0.1:{ports.h2c}" in stdout
    assert "0 dropped by the kernel" in stderr
    # the closing summary table lists the request
    assert "/live.txt -> 200" in stdout


def test_keylog_follower_takes_whole_lines_as_they_are_written(tmp_path):
    from inspector.capture.live import KeyLogFollower

    path = tmp_path / "keys.log"
    keylog = KeyLog()
    follower = KeyLogFollower(str(path), keylog)
    assert follower.poll() == 0  # not there yet
    line = "CLIENT_TRAFFIC_SECRET_0 " + "ab" * 32 + " " + "cd" * 48 + "\n"
    path.write_text(line[:50])
    assert follower.poll() == 0 and len(keylog) == 0  # half a line waits for its newline
    with open(path, "a") as f:
        f.write(line[50:] + "# a comment\n")
    assert follower.poll() == 1 and len(keylog) == 1
    assert follower.secrets_text() == line
    assert keylog.get(bytes.fromhex("ab" * 32), "CLIENT_TRAFFIC_SECRET_0") == bytes.fromhex("cd" * 48)


def test_filter_compiles_without_capture_rights_to_the_same_program():
    """tcpdump cannot open the interface without CAP_NET_RAW: the filter is then compiled against an
    empty capture of the same link type, and libpcap gives the same program."""
    from inspector.capture.live import compile_bpf

    code = "from inspector.capture.live import compile_bpf; print(compile_bpf('lo', 'tcp port 8443 or udp port 53'))"
    proc = subprocess.run([shutil.which("setpriv"), "--bounding-set=-net_raw", "--inh-caps=-net_raw", "--",
                           sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(compile_bpf("lo", "tcp port 8443 or udp port 53"))


@async_test
async def test_live_view_shows_the_rtt_ledger_while_capturing(tmp_path):
    """The end-of-capture analyses run during a live capture too: once curl's HTTP/2 request over TLS 1.3
    has completed, its connection shows the RTT ledger (row and annotation panel) while the capture goes
    on, and that ledger is the one `summary` computes on the finished capture file."""
    import json

    from tui.app import NetinspectApp
    from tui.sources import LiveSource

    keylog = tmp_path / "keys.log"
    keylog.touch()
    out = tmp_path / "ledger.pcapng"
    with tui_live.servers(tmp_path) as ports:
        capture = LiveCapture("lo", f"tcp port {ports.tls}")
        writer = PcapngWriter(str(out), capture.linktype, "lo")
        source = LiveSource(capture, KeyLog(), str(keylog), writer)
        app = NetinspectApp(source)
        loop = asyncio.get_running_loop()

        def ledger():
            rows = app.model.rows
            return rows[0].summary.get("ledger") if rows else None

        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.3)
            await loop.run_in_executor(None, tui_live.tls_h2, ports, keylog)
            await wait_until(pilot, lambda: ledger() and ledger()[-1]["step"] == "request", timeout=10)
            # still live: the capture runs and the model has not been finished
            assert source.thread.is_alive() and not app.model.done
            live_ledger = ledger()
            assert [s["step"] for s in live_ledger] == ["tcp", "tls", "request"]
            row = app.model.rows[0]
            assert row.setup == "1+1" and row.stack == "TCP › TLS 1.3 › h2"
            await pilot.press("enter")  # the connection view: the annotation panel lists the ledger
            await wait_until(pilot, lambda: any(a.text.startswith("ledger[0] step=tcp")
                                                for a in app.screen.annotations.items))
            texts = [a.text for a in app.screen.annotations.items]
            assert any(t.startswith("ledger[1] step=tls") for t in texts), texts
            assert any(t.startswith("ledger[2] step=request") for t in texts), texts
            await pilot.press("q")
            await pilot.press("q")
        source.finished.wait(10)
        writer.close(source.secrets_text())
    proc = subprocess.run([sys.executable, "-m", "inspector", "summary", str(out), "--json"], capture_output=True,
                          text=True, check=True)
    (conn,) = json.loads(proc.stdout)["connections"]
    final = conn["ledger"]
    assert [(s["step"], s["rtts"]) for s in final] == [(s["step"], s["rtts"]) for s in live_ledger]
    for a, b in zip(final, live_ledger):
        # the same steps from the same packets; times pass through a float of epoch seconds (~0.24 us
        # apart at today's dates) on the way to the file, which may move the last digit of a rounded ms
        assert abs(a["ms"] - b["ms"]) <= 0.0011
