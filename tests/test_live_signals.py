"""The ``-w`` file of ``live`` and ``run`` is whole after SIGINT and SIGTERM.

curl talks HTTP/1.1 and HTTP/2 over TLS 1.3 to nginx on loopback while
``netinspect live``/``run`` capture; then the process gets a signal.  It must
exit with its documented status, and the file must read without a warning in
tshark, capinfos and our reader, hold exactly the packets netinspect said it
captured and wrote, and carry curl's secrets in a Decryption Secrets Block
that tshark decrypts with on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from inspector.capture.reader import CaptureReader
from tests.support import tui_live
from tests.support.capture import tshark_fields
from tests.support.http_servers import CURL
from tests.support.live_checks import block_types, start_headless, tshark_count
from tests.support.tui_tmux import TMUX, TmuxSession

NETINSPECT = [sys.executable, "-m", "inspector"]
REPORT = re.compile(r"(\d+) packets captured on (\S+), (\d+) dropped by the kernel; "
                    r"wrote (\S+) \((\d+) packets, (\d+) secrets embedded\)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SSLKEYLOGFILE", None)
    return env


def _pids_of(prefix: list[str], arg: str) -> list[int]:
    """Processes whose command line starts with ``prefix`` and has ``arg``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = open(f"/proc/{entry}/cmdline", "rb").read().decode().split("\0")
            except OSError:
                continue
            if argv[: len(prefix)] == prefix and arg in argv:
                pids.append(int(entry))
    return pids


def _check_file(path, reported: int) -> None:
    """Whole: the readers agree with netinspect's count, without warnings; secrets first; tshark decrypts."""
    secrets: list[str] = []
    reader = CaptureReader(str(path), on_secrets=secrets.append)
    packets = list(reader)
    assert reader.warning is None
    assert len(packets) == reported
    assert tshark_count(path) == reported
    capinfos = shutil.which("capinfos")
    assert capinfos, "capinfos (wireshark's tools) reads the file too"
    info = subprocess.run([capinfos, "-M", "-c", str(path)], capture_output=True, text=True)
    assert info.returncode == 0 and not info.stderr.strip(), info.stderr
    assert re.search(r"Number of packets:\s*(\d+)", info.stdout).group(1) == str(reported)
    assert secrets and "CLIENT_TRAFFIC_SECRET_0" in secrets[0]
    kinds = block_types(path)
    assert kinds[:3] == [0x0A0D0D0A, 1, 0x0A] and set(kinds[3:]) == {6}
    rows = tshark_fields(str(path), ["frame.number"], display_filter='http2.header.value == "/live.txt"')
    assert rows, "tshark did not decrypt with the embedded secrets"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_live_headless_writes_a_whole_file_when_signalled(tmp_path, sig):
    out = tmp_path / "live.pcapng"
    keys = tmp_path / "keys.log"
    with tui_live.servers(tmp_path) as ports:
        proc = start_headless(["live", "-i", "lo", "-f", f"tcp port {ports.tls} or tcp port {ports.h1}",
                               "--keylog", str(keys), "-w", str(out), "--no-view"])
        tui_live.http1(ports)
        tui_live.tls_h2(ports, keys)
        time.sleep(0.3)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=30)
    # documented: a live capture ends with Ctrl+C or SIGTERM, and that is a normal end (as tcpdump's)
    assert proc.returncode == 0, stderr
    m = REPORT.search(stderr)
    assert m, stderr
    captured, iface, drops, path, written, nsecrets = m.groups()
    assert (iface, drops, path) == ("lo", "0", str(out))
    assert int(captured) == int(written) > 20 and int(nsecrets) >= 5
    _check_file(out, int(written))
    # what was captured was decoded before the summary: both connections, the TLS one decrypted
    assert "/live.txt -> 200" in stdout and "h2" in stdout and "http/1.1" in stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_writes_a_whole_file_when_signalled(tmp_path, sig):
    out = tmp_path / "run.pcapng"
    done = tmp_path / "curl-done"
    with tui_live.servers(tmp_path) as ports:
        url = f"https://127.0.0.1:{ports.tls}/live.txt"
        script = f"{CURL} -sk --http2 -o /dev/null {url} && touch {done} && exec sleep 60"
        proc = subprocess.Popen([*NETINSPECT, "run", "--no-view", "-f", f"tcp port {ports.tls}", "-w", str(out),
                                 "--", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=_env())
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert done.exists(), "curl did not finish"
        time.sleep(0.3)
        proc.send_signal(sig)
        _stdout, stderr = proc.communicate(timeout=30)
    # documented: the command is ended with the same signal, the capture written, then 128 + the signal
    assert proc.returncode == 128 + sig, stderr
    assert f"sh exited with status {128 + sig}" in stderr
    m = re.search(r"(\d+) packets captured on lo \(0 dropped by the kernel\).*wrote \S+ \((\d+) packets, (\d+) secrets",
                  stderr)
    assert m, stderr
    assert m.group(1) == m.group(2) and int(m.group(3)) >= 5
    _check_file(out, int(m.group(2)))


def test_live_view_ends_cleanly_on_sigterm(tmp_path):
    """The terminal UI, killed with SIGTERM (as a service manager or `timeout` would): it closes the
    screen, exits 0, and the file is whole with its secrets."""
    out = tmp_path / "term.pcapng"
    keys = tmp_path / "keys.log"
    with tui_live.servers(tmp_path) as ports:
        cmd = [*NETINSPECT, "live", "-i", "lo", "-f", f"tcp port {ports.tls}", "--keylog", str(keys), "-w", str(out)]
        with TmuxSession(cmd, cwd=os.getcwd()) as term:
            term.wait_for("Connections (0)")
            tui_live.tls_h2(ports, keys)
            term.wait_for("TCP › TLS 1.3 › h2")
            pids = _pids_of([*cmd[:3], "live"], str(out))
            assert len(pids) == 1, pids
            os.kill(pids[0], signal.SIGTERM)
            term.wait_for("[exited 0]")
            joined = subprocess.run([TMUX, "-L", term.socket, "capture-pane", "-p", "-J", "-t", term.name],
                                    capture_output=True, text=True, check=True).stdout  # wrapped lines joined
            m = REPORT.search(joined)
            assert m, joined
    assert m.group(3) == "0" and m.group(1) == m.group(5)
    _check_file(out, int(m.group(5)))
