"""Memory does not grow with closed connections: many tiny complete TCP connections in ``summary`` mode.

The capture is a hand-built edge case (see ``tests/support/hardening_tiny.py``):
no lab stack opens tens of thousands of connections in seconds, so one
scapy-made connection (handshake, one small HTTP/1.1 exchange, FIN/ACKs from
both sides) is repeated with new client ports.  Peak RSS of the real
``netinspect summary --json`` is measured for two sizes, both past the
4,096 closed connections the retirement keeps (``inspector.retirement``): the
difference per connection is what a retired connection leaves behind (its id
slot, its record's file offset, the flow keys of the last 16,384 retired for
late packets; README, "Closed connections retire while decoding").  Measured 2026-11-21: 130-160 B, against 13-14 KB
per connection kept to the end before retirement; the bound leaves room for
allocator noise.  The summary must still describe every connection, in id order.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.hardening_tiny import write_dns_flows, write_tiny_connections

#: bytes of peak RSS per closed tiny connection in summary mode (README, "Limits")
BOUND_PER_CONNECTION = 512

_RUN = """
import sys
from inspector.cli import main
with open(sys.argv[2], "w") as out:
    sys.stdout = out
    code = main(["summary", sys.argv[1], "--json"])
sys.stdout = sys.__stdout__
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so it would start at pytest's own peak
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024, code)
"""


def peak_rss(pcap: Path, out: Path) -> int:
    run = subprocess.run([sys.executable, "-c", _RUN, str(pcap), str(out)], capture_output=True, text=True, check=True)
    rss, code = run.stdout.split()
    assert code == "0", run.stderr
    return int(rss)


def growth_per_connection(tmp_path: Path, name: str, write, sizes=(8_000, 48_000)) -> tuple[float, list[dict]]:
    """Peak RSS of ``summary --json`` on captures of the two ``sizes`` made by ``write(path, n)`` (which
    returns the packets written, checked against the summary's frames): bytes per connection between
    them, and the bigger summary's connections."""
    rss, frames = {}, {}
    for n in sizes:
        pcap = tmp_path / f"{name}{n}.pcap"
        frames[n] = write(str(pcap), n)
        rss[n] = peak_rss(pcap, tmp_path / f"{name}{n}.json")
    small, big = sizes
    per_connection = (rss[big] - rss[small]) / (big - small)
    print(f"{per_connection:.0f} bytes of peak RSS per connection ({name})")
    summary = json.loads((tmp_path / f"{name}{big}.json").read_text())
    assert summary["frames"] == frames[big]
    assert [c["id"] for c in summary["connections"]] == list(range(big))
    return per_connection, summary["connections"]


def test_closed_connections_leave_next_to_nothing(tmp_path: Path) -> None:
    per_connection, conns = growth_per_connection(tmp_path, "tiny", write_tiny_connections)
    assert per_connection < BOUND_PER_CONNECTION
    assert all(c["tcp"]["handshake"] == "complete" and c["tcp"]["closed_by"] == "client" for c in conns)
    assert all(c["app"] == "http/1.1" and [r["status"] for r in c["requests"]] == [200] for c in conns)
    assert len({c["client"] for c in conns}) == len(conns) == 48_000


def test_a_port_scan_leaves_next_to_nothing(tmp_path: Path) -> None:
    """A SYN answered by a RST/ACK, 48,000 times: the summary lists every attempt as reset, and a
    refused connection leaves as little behind as a closed one."""
    per_connection, conns = growth_per_connection(
        tmp_path, "scan", lambda path, n: write_tiny_connections(path, n, scan=True))
    assert per_connection < BOUND_PER_CONNECTION
    assert all(c["tcp"]["handshake"] == "partial" and c["tcp"]["closed_by"] == "reset" for c in conns)


def test_dns_lookups_each_from_its_own_port_leave_next_to_nothing(tmp_path: Path) -> None:
    """48,000 DNS lookups, each a UDP flow of its own (as a stub resolver's random source ports make
    them): a flow whose lookups are all answered retires like a closed TCP connection (3.5 KB each
    before), and the summary still has every lookup with its answer."""
    per_flow, conns = growth_per_connection(tmp_path, "dns", write_dns_flows)
    assert per_flow < BOUND_PER_CONNECTION
    lookups = [lk for c in conns for lk in c["dns"]["lookups"]]
    assert len(lookups) == len(conns)
    assert all(lk["qname"] == "lab.test" and lk["qtype"] == "A" and lk["rcode"] == "NOERROR" for lk in lookups)


def test_a_flood_of_one_unanswered_question_leaves_next_to_nothing(tmp_path: Path) -> None:
    """The same DNS question from 24,000 and 64,000 client ports, never answered: UDP flows that never
    settle retire least recently active first past 16,384 (README), the copies waiting for an answer
    are capped at 64, and the summary still has every flow."""
    per_flow, conns = growth_per_connection(
        tmp_path, "flood", lambda path, n: write_dns_flows(path, n, answered=False), sizes=(24_000, 64_000))
    assert per_flow < BOUND_PER_CONNECTION
    # one question per client address (a new one every 60,000 ports): the first flow's lookup, which every
    # later port asks again (a retransmission from a new port, as glibc makes them), so the other flows
    # own no lookup of their own
    assert all(c["dns"]["queries"] == 1 for c in conns)
    owners = [c["id"] for c in conns if c["dns"]["lookups"]]
    assert owners == [0, 60_000] and all(conns[i]["dns"]["unanswered"] == 1 for i in owners)
