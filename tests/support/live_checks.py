"""Helpers for the live-capture tests: start ``netinspect live`` headless, read a pcapng's block layout,
count a file's packets with tshark."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

NETINSPECT = [sys.executable, "-m", "inspector"]


def start_headless(args: list[str], timeout: float = 20.0) -> subprocess.Popen[str]:
    """``netinspect ARGS`` (a ``live --no-view``), returned once its socket is bound and filtered
    (it says "capturing on ..." on stderr then)."""
    proc = subprocess.Popen([*NETINSPECT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    for line in proc.stderr:  # type: ignore[union-attr]
        seen += line
        if "capturing on" in line:
            return proc
        if not line.startswith("netinspect: note:"):
            break
    proc.kill()
    _out, err = proc.communicate(timeout=timeout)
    raise AssertionError(f"netinspect {' '.join(args)} did not start: {seen}{err}")


def block_types(path: Path | str) -> list[int]:
    """pcapng block types in file order (section header, interface, secrets, packets...); the blocks
    must tile the file exactly."""
    data = Path(path).read_bytes()
    kinds, off = [], 0
    while off + 12 <= len(data):
        kind, length = int.from_bytes(data[off:off + 4], "little"), int.from_bytes(data[off + 4:off + 8], "little")
        assert length >= 12 and length % 4 == 0 and data[off + length - 4:off + length] == data[off + 4:off + 8]
        kinds.append(kind)
        off += length
    assert off == len(data)
    return kinds


def tshark_count(path: Path | str, extra: list[str] | None = None) -> int:
    """Frames tshark reads in the file; anything tshark says on stderr (but the root warning) fails."""
    tshark = shutil.which("tshark") or "tshark"
    proc = subprocess.run([tshark, "-n", "-r", str(path), *(extra or []), "-T", "fields", "-e", "frame.number"],
                          capture_output=True, text=True, timeout=120)
    complaints = [ln for ln in proc.stderr.splitlines() if ln.strip() and 'as user "root"' not in ln]
    assert proc.returncode == 0 and not complaints, proc.stderr
    return len(proc.stdout.split())
