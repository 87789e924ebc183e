"""``netinspect run -- CMD``: CMD runs with a fresh SSLKEYLOGFILE while loopback is captured.

curl talks HTTP/2 over TLS 1.3 to nginx; the written capture must open
decrypted with nothing but itself (tshark and netinspect both), the view
must come up on the result in a real terminal, and mistakes are one line
with exit code 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from inspector.capture.reader import CaptureReader
from tests.support import tui_live
from tests.support.capture import tshark_fields
from tests.support.http_servers import CURL
from tests.support.tui_tmux import TmuxSession

NETINSPECT = [sys.executable, "-m", "inspector"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SSLKEYLOGFILE", None)
    return env


def test_run_writes_a_capture_that_decrypts_by_itself(tmp_path):
    out = tmp_path / "curl.pcapng"
    with tui_live.servers(tmp_path) as ports:
        url = f"https://127.0.0.1:{ports.tls}/live.txt"
        proc = subprocess.run([*NETINSPECT, "run", "--no-view", "-f", f"tcp port {ports.tls}", "-w", str(out), "--",
                               CURL, "-sk", "--http2", "-o", os.devnull, url],
                              capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert "curl exited with status 0" in proc.stderr and "0 dropped by the kernel" in proc.stderr
    secrets: list[str] = []
    assert len(list(CaptureReader(str(out), on_secrets=secrets.append))) > 10
    assert secrets and "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in secrets[0]  # curl wrote them to the fresh key log
    # tshark: the embedded secrets alone decrypt the request
    rows = tshark_fields(str(out), ["http2.header.value"], display_filter="http2.type == 1")
    assert any("/live.txt" in r[0].split(",") for r in rows)
    # netinspect too, without --keylog
    summary = json.loads(subprocess.run([*NETINSPECT, "summary", str(out), "--json"], capture_output=True, text=True,
                                        check=True, env=_env()).stdout)
    (conn,) = summary["connections"]
    assert conn["tls"]["version"] == "1.3" and conn["tls"]["decryption"] == "decrypted"
    assert [(r["method"], r["path"], r["status"]) for r in conn["requests"]] == [("GET", "/live.txt", 200)]


def test_run_without_view_prints_the_summary_and_returns_the_command_status(tmp_path):
    with tui_live.servers(tmp_path) as ports:
        proc = subprocess.run([*NETINSPECT, "run", "--no-view", "-f", f"tcp port {ports.h1}", "--",
                               CURL, "-sf", "-o", os.devnull, f"http://127.0.0.1:{ports.h1}/missing"],
                              capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 22  # curl -f on a 404
    assert "/missing -> 404" in proc.stdout and "http/1.1" in proc.stdout


def test_run_mistakes_are_one_line_and_exit_2():
    proc = subprocess.run([*NETINSPECT, "run", "--no-view"], capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (2, "netinspect: run needs a command: netinspect run -- CMD [ARGS...]\n")
    proc = subprocess.run([*NETINSPECT, "run", "--no-view", "--", "no-such-command-here"], capture_output=True,
                          text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (2, "netinspect: command not found: no-such-command-here\n")


def test_run_opens_the_view_in_a_terminal(tmp_path):
    with tui_live.servers(tmp_path) as ports:
        url = f"https://127.0.0.1:{ports.tls}/live.txt"
        cmd = [*NETINSPECT, "run", "-f", f"tcp port {ports.tls}", "--", CURL, "-sk", "--http2", "-o", os.devnull, url]
        with TmuxSession(cmd, env={"SSLKEYLOGFILE": ""}) as term:
            screen = term.wait_for("TCP › TLS 1.3 › h2", timeout=30)
            assert f"127.0.0.1:{ports.tls}" in screen and "run: " in screen
            term.keys("Enter")
            screen = term.wait_for("h2 s1")  # the timeline lane of the request's stream
            assert "Timeline" in screen and "ClientHello" in screen and "ledger: request" in screen
            term.keys("q")
            term.keys("q")
            term.wait_for("[exited 0]")
