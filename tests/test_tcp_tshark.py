"""TCP analysis, relative numbers, windows and iRTT agree with tshark frame by frame.

The captures are made by the kernel's TCP while the tests run (curl and
Python's HTTP server on loopback; a bulk exchange through a router namespace
whose nftables rules drop a share of segments), and tshark 4.0 is the oracle.
"""

from __future__ import annotations

import pytest

from tests.support.capture import tshark_fields
from tests.support.decode import export_lines

ANALYSIS = [
    "retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order", "lost_segment",
    "ack_lost_segment", "window_update", "window_full", "keep_alive", "keep_alive_ack", "duplicate_ack",
    "zero_window_probe", "zero_window", "zero_window_probe_ack", "reused_ports",
]
FIELDS = ["frame.number", "tcp.stream", "tcp.seq", "tcp.ack", "tcp.len", "tcp.window_size", "tcp.flags.str"]


def tshark_segments(path: str) -> dict[int, dict]:
    rows = tshark_fields(path, FIELDS + [f"tcp.analysis.{n}" for n in ANALYSIS])
    out = {}
    for r in rows:
        if not r[1]:
            continue
        out[int(r[0])] = {
            "seq": int(r[2]),
            "ack": int(r[3]) if r[3] else 0,
            "len": int(r[4]),
            "window": int(r[5]),
            "analysis": {n for n, v in zip(ANALYSIS, r[len(FIELDS):]) if v},
        }
    return out


def our_segments(path: str) -> dict[int, dict]:
    return {
        e["frame"]: {"seq": e["seq"], "ack": e["ack"], "len": e["len"], "window": e["window"], "analysis": set(e["analysis"])}
        for e in export_lines(path)
        if e["layer"] == "tcp" and e["type"] == "segment"
    }


@pytest.mark.parametrize("capture", ["http_pcap", "lossy_pcap"])
def test_segments_agree_with_tshark(capture: str, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(capture)
    theirs, ours = tshark_segments(path), our_segments(path)
    assert theirs, "tshark saw no TCP segments"
    assert sorted(ours) == sorted(theirs), "frame numbers differ"
    diffs = {f: (theirs[f], ours[f]) for f in theirs if theirs[f] != ours[f]}
    assert not diffs, f"{len(diffs)} frames differ, e.g. {next(iter(diffs.items()))}"


def test_lossy_capture_exercises_the_analysis(lossy_pcap: str) -> None:
    """Guard against a lossless run making the differential test vacuous."""
    flags = set().union(*(s["analysis"] for s in tshark_segments(lossy_pcap).values()))
    assert {"retransmission", "lost_segment", "duplicate_ack"} <= flags


@pytest.mark.parametrize("capture", ["http_pcap", "lossy_pcap"])
def test_irtt_agrees_with_tshark(capture: str, request: pytest.FixtureRequest) -> None:
    import json

    from tests.support.decode import cli

    path = request.getfixturevalue(capture)
    rows = tshark_fields(path, ["tcp.stream", "tcp.analysis.initial_rtt"], display_filter="tcp.analysis.initial_rtt")
    theirs = {}
    for stream, irtt in rows:
        theirs.setdefault(int(stream), float(irtt))
    summary = json.loads(cli("summary", path, "--json", check=True).stdout)
    ours = [c["tcp"]["irtt_ms"] for c in summary["connections"]]
    assert len(ours) == len(theirs)
    for stream, irtt in theirs.items():
        assert ours[stream] == pytest.approx(irtt * 1000, abs=0.002)


def test_retransmission_count_matches_tshark(lossy_pcap: str) -> None:
    import json

    from tests.support.decode import cli

    n = len(tshark_fields(lossy_pcap, ["frame.number"], display_filter="tcp.analysis.retransmission"))
    conn = json.loads(cli("summary", lossy_pcap, "--json", check=True).stdout)["connections"][0]
    assert conn["tcp"]["retransmissions"] == n > 0
