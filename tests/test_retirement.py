"""Retiring closed connections while decoding (``inspector.retirement``) must not change what is reported.

``summary`` and ``export`` retire a TCP connection once it has closed and been quiet; here the
quiet time is cut to 50 ms and every frame sweeps, so most connections of the real sample
captures retire long before the end.  Their ``summary --json`` records must be the very records
a decode that keeps every connection gives (including the analyses across connections: what-ifs
that name an earlier connection to the same server, DNS steps, HTTP/1.1 waits for a free
connection), and ``export`` must emit the same events.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from inspector.keylog import load_keylog
from inspector.output.summary import connection_summary
from inspector.pipeline import decode_file
from inspector.retirement import Retirement
from tests.support.capture import tshark_fields

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
SAMPLES = sorted(p for p in CAPTURES.rglob("*.pcap*") if "fuzz" not in p.parts)
KEEP_ALL = {"quiet": float("inf"), "max_closed": 1 << 40}
EAGER = {"quiet": 0.05, "max_closed": 1 << 40, "sweep_every": 1}


def _keylog(path: Path):
    keys = path.with_suffix(".keys")
    return load_keylog(str(keys)) if keys.exists() else None


def records(path: Path, retirement: Retirement) -> list[str]:
    """``summary --json``'s connection records, as the CLI writes them."""
    pipe, _ = decode_file(str(path), keylog=_keylog(path), retirement=retirement)
    return [retirement.record(cid).rstrip("\n") if conn is None else json.dumps(connection_summary(conn, pipe.registry))
            for cid, conn in enumerate(pipe.connections)]


def test_retired_connections_summarise_as_kept_ones() -> None:
    retired = 0
    cross = set()
    for path in SAMPLES:
        kept = records(path, Retirement(**KEEP_ALL))
        r = Retirement(**EAGER)
        early = records(path, r)
        assert early == kept, path.name
        assert r.stats["late_packets"] == 0 and r.stats["out_of_order"] == 0, path.name
        retired += r.stats["retired"]
        text = "\n".join(early)
        cross |= {what for what in ("reusing connection", "no free connection") if what in text}
    # most TCP connections of the samples retired, and the analyses across connections were among them
    assert retired >= 12
    assert cross == {"reusing connection", "no free connection"}


def test_http1_waits_for_a_free_connection_survive_retirement() -> None:
    """http1-keepalive: 8 connections to one server, 7 of them retire (the last closes at the very end);
    the HTTP/1.1 connection-limit episode involves connections that retired at different times."""
    path = CAPTURES / "samples" / "http1-keepalive.pcap"
    r = Retirement(**EAGER)
    early = [json.loads(t) for t in records(path, r)]
    assert r.stats["retired"] == 7
    waits = [h for c in early for h in c["hol"] if "no free connection" in h["cause"]]
    assert waits, "the connection-limit episode is lost"
    kept = [json.loads(t) for t in records(path, Retirement(**KEEP_ALL))]
    assert waits == [h for c in kept for h in c["hol"] if "no free connection" in h["cause"]]


def test_export_emits_the_same_events() -> None:
    """Export retires too: the analysis events of a retired connection come when it retires, not at
    the end, so the order differs; the events are the same."""
    for path in SAMPLES:
        lines = {}
        for name, r in (("kept", None), ("early", Retirement(summaries=False, **EAGER))):
            out: list[str] = []
            decode_file(str(path), keylog=_keylog(path), segments=True, retirement=r,
                        on_event=lambda e: out.append(json.dumps(e.to_dict(), sort_keys=True, default=str)))
            lines[name] = sorted(out)
        assert lines["early"] == lines["kept"], path.name


def test_a_packet_after_retirement_is_counted_not_taken_for_a_new_connection() -> None:
    """With no quiet time, the final ACKs after both FINs come after their connection retired: each is
    counted once as late, and no connection is invented for it.  Every TCP frame tshark counts is in
    a connection's packets or among the late ones."""
    path = CAPTURES / "samples" / "http1-keepalive.pcap"
    r = Retirement(quiet=0.0, max_closed=0, sweep_every=1)
    early = [json.loads(t) for t in records(path, r)]
    kept = [json.loads(t) for t in records(path, Retirement(**KEEP_ALL))]
    assert len(early) == len(kept)
    assert r.stats["late_packets"] > 0
    tcp_frames = len(tshark_fields(str(path), ["frame.number"], display_filter="tcp"))
    assert sum(c["packets"] for c in early) + r.stats["late_packets"] == tcp_frames
    assert sum(c["packets"] for c in kept) == tcp_frames


def test_closed_connections_waiting_behind_an_open_one_retire_past_the_limit() -> None:
    """Connections to one server retire in id order; past ``max_held`` closed connections waiting,
    they go anyway (counted), and the summary still has every connection."""
    path = CAPTURES / "samples" / "http1-keepalive.pcap"
    r = Retirement(quiet=0.05, max_closed=1 << 40, max_held=0, sweep_every=1)
    early = [json.loads(t) for t in records(path, r)]
    assert [c["id"] for c in early] == list(range(8))
    assert r.stats["out_of_order"] > 0


def test_exactly_the_closed_and_quiet_connections_retire() -> None:
    """A retired connection had closed (FIN both ways, or a reset; for a DNS flow: every lookup
    answered); the TCP connections left at the end are the ones still open or closed less than the
    quiet time before the capture's last packet."""
    retired = retired_udp = left = 0
    for path in SAMPLES:
        r = Retirement(**EAGER)
        pipe, _ = decode_file(str(path), keylog=_keylog(path), retirement=r)
        for cid, conn in enumerate(pipe.connections):
            if conn is None:
                record = json.loads(r.record(cid))
                if record["transport"] == "tcp":
                    assert record["tcp"]["closed_by"] is not None, (path.name, cid)
                else:  # a DNS flow whose every lookup was answered
                    assert record["dns"]["queries"] and not record["dns"]["unanswered"], (path.name, cid)
                    retired_udp += 1
                retired += 1
            elif conn.tcp is not None:
                tcp = conn.tcp
                closed = tcp.rst[0] or tcp.rst[1] or (tcp.fin[0] and tcp.fin[1])
                assert not closed or conn.end + EAGER["quiet"] > pipe.last_ts, (path.name, cid)
                left += 1
    assert retired >= 12 and retired_udp and left > 0


def test_the_cli_reports_packets_that_came_after_their_connection_retired(tmp_path: Path) -> None:
    """5,000 tiny connections (more than the 4,096 closed ones kept), then the first connection's
    server FIN/ACK once more at the end, as a retransmission would come: the first connection retired
    long before, so the straggler is counted and reported, and no connection is made of it."""
    import struct
    import subprocess
    import sys

    import dpkt

    from tests.support.hardening_tiny import PACKETS_PER_CONNECTION, write_tiny_connections

    pcap = tmp_path / "tiny.pcap"
    n = 5_000
    write_tiny_connections(str(pcap), n)
    with open(pcap, "rb") as f:
        frames = list(dpkt.pcap.Reader(f))
    last_ts = frames[-1][0]
    ts, frame = last_ts + 1.0, frames[6][1]
    with open(pcap, "ab") as f:  # one more pcap record (microsecond timestamps)
        f.write(struct.pack("<IIII", int(ts), round(ts % 1 * 1e6), len(frame), len(frame)) + frame)
    run = subprocess.run([sys.executable, "-m", "inspector", "summary", "--json", str(pcap)],
                         capture_output=True, text=True, check=True)
    summary = json.loads(run.stdout)
    assert summary["frames"] == n * PACKETS_PER_CONNECTION + 1
    assert len(summary["connections"]) == n
    assert summary["connections"][0]["packets"] == PACKETS_PER_CONNECTION
    assert "1 packet came after their connection had closed and been retired; not counted" in run.stderr


def test_the_cli_reports_connections_retired_before_an_earlier_open_one(tmp_path: Path) -> None:
    """A connection to the server opens first and never closes; 14,000 tiny connections to the same
    server follow.  They cannot retire in id order behind it, so past the 4,096 closed and 8,192 held
    the oldest retire anyway: counted, reported on stderr, and every connection is still summarised."""
    import struct
    import subprocess
    import sys

    import dpkt

    from tests.support.hardening_tiny import write_tiny_connections

    tiny = tmp_path / "tiny.pcap"
    n = 14_000
    write_tiny_connections(str(tiny), n)
    with open(tiny, "rb") as f:
        frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(f)]
    pcap = tmp_path / "held.pcap"
    with open(tiny, "rb") as src, open(pcap, "wb") as out:
        out.write(src.read(24))  # the pcap header
        for i, frame in enumerate(frames[:4]):  # SYN, SYN/ACK, ACK, request of a connection from port 65000
            b = bytearray(frame)
            b[34 if i != 1 else 36:36 if i != 1 else 38] = struct.pack("!H", 65000)
            out.write(struct.pack("<IIII", 0, 1 + i, len(b), len(b)) + b)
        src.seek(24)
        out.write(src.read())
    run = subprocess.run([sys.executable, "-m", "inspector", "summary", "--json", str(pcap)],
                         capture_output=True, text=True, check=True)
    conns = json.loads(run.stdout)["connections"]
    assert [c["id"] for c in conns] == list(range(n + 1))
    assert conns[0]["client"].endswith(":65000") and conns[0]["tcp"]["closed_by"] is None
    assert all(c["tcp"]["closed_by"] == "client" for c in conns[1:])
    held = re.search(r"(\d+) closed connections were analysed while an earlier connection to their server was "
                     r"still open", run.stderr)
    # every closed connection but the 4,096 kept closed and the 8,192 held, less those that closed after
    # the last sweep (one every 64 frames: at most 8 connections of 8 frames)
    assert held and n - 4096 - 8192 - 8 <= int(held.group(1)) <= n - 4096 - 8192
