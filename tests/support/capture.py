"""Capture real traffic on loopback for tests, and ask tshark about it.

Tests make their captures from real stacks (kernel TCP, curl, nginx, Python
ssl, h2, aioquic, websockets) while they run: :func:`loopback_capture`
starts tcpdump on ``lo`` with a BPF filter and stops it once the block ends.
:func:`tshark_fields` is the oracle side of differential tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence

TSHARK = shutil.which("tshark") or "tshark"
TCPDUMP = shutil.which("tcpdump") or "tcpdump"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def loopback_capture(
    path: str, bpf: str, *, snaplen: int = 0, interface: str = "lo", tcpdump: Sequence[str] = (TCPDUMP,)
) -> Iterator[str]:
    """Capture packets matching ``bpf`` on ``interface`` (``lo``) into ``path`` while the block runs.

    ``tcpdump`` is the command to run (e.g. prefixed with ``ip netns exec NS``).
    """
    # -B: a 32 MiB ring (the default drops packets when loopback carries 64 KiB
    # segments).  No --immediate-mode: waking tcpdump per packet made the
    # kernel drop packets in bursts; instead we wait out the ring's 1 s block
    # timeout before stopping, so the last packets reach the file.
    cmd = [*tcpdump, "-i", interface, "-B", "32768", "-U", "-n", "-w", path]
    if snaplen:
        cmd += ["-s", str(snaplen)]
    cmd += [bpf]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        # tcpdump says "listening on lo" once the socket is bound and the filter set.
        assert proc.stderr is not None
        deadline = time.monotonic() + 10
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "listening on" in line or not line:
                break
        if "listening on" not in line:
            raise RuntimeError(f"tcpdump did not start: {line!r}")
        time.sleep(0.2)  # "listening on" precedes the ring being fully live by a few ms
        yield path
        time.sleep(1.1)  # the ring hands over a block at most 1 s after its first packet
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tshark_fields(
    path: str,
    fields: Sequence[str],
    *,
    display_filter: str | None = None,
    options: Sequence[str] = (),
    two_pass: bool = False,
) -> list[list[str]]:
    """Rows of ``tshark -T fields`` for ``fields`` (one list of strings per frame)."""
    cmd = [TSHARK, "-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    if two_pass:
        cmd.append("-2")
    for opt in options:
        cmd += ["-o", opt]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    env = dict(os.environ, LC_ALL="C")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return [line.split("\t") for line in out.splitlines()]
