"""Live capture under load, the short form of ``benchmarks/live_load.py``: 10 s of 20,000 packets/s.

Real kernel TCP on loopback (16 connections of paced request/response
exchanges), ``netinspect live --no-view -w`` capturing it, stopped with
SIGINT.  The kernel's own count of the packets (an nftables counter on the
port) must equal what netinspect captured, what it wrote, and what
tshark, capinfos and our reader find in the file, with zero kernel drops.
The full minute is the benchmark (see benchmarks/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "live_load.py"


def test_live_capture_keeps_up_with_20k_packets_per_second(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCH), "--pps", "20000", "--seconds", "10", "--json",
                           "--keep", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.stdout, proc.stderr
    result = json.loads(proc.stdout)
    # the load was really there (the generator paces itself; on a starved machine it would fall short)
    assert result["pps_generated"] >= 19000, result
    assert result["kernel_drops"] == 0, result
    counts = {k: result[k] for k in ("packets_sent", "captured", "written", "file_reader", "file_tshark",
                                     "file_capinfos")}
    assert len(set(counts.values())) == 1 and counts["packets_sent"] >= 190000, counts
    assert result["netinspect_exit"] == 0 and result["ok"], result
