"""The analyses in the export, and on captures cut short, started late or shuffled (never a crash)."""

from __future__ import annotations

import random

import dpkt
import pytest

from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.analysis_run import summary
from tests.support.analysis_tshark import SAMPLES, data_segments, first_retransmission, frame_times, sample
from tests.support.decode import collect


def _keylog(name: str) -> KeyLog | None:
    keys = SAMPLES / f"{name.split('.')[0]}.keys"
    return KeyLog.from_file(str(keys)) if keys.exists() else None


def test_export_carries_ledger_and_hol_events() -> None:
    name = "http2-lossy"
    _, events = collect(sample(f"{name}.pcap"), keylog=_keylog(name))
    ours = [e.to_dict() for e in events if e.layer == "analysis"]
    steps = [e for e in ours if e["type"] == "ledger"]
    assert [e["step"] for e in steps] == ["tcp", "tls", "request"]
    assert all(e["rtt_ms"] == summary(name)[0]["rtt_ms"] for e in steps)
    (hol,) = [e for e in ours if e["type"] == "hol"]
    fill = first_retransmission(data_segments(sample(f"{name}.pcap"), 443))
    assert hol["frame"] == fill.frame and hol["ts"] == frame_times(sample(f"{name}.pcap"))[fill.frame]
    assert hol["kind"] == "tcp" and hol["victims"] == summary(name)[0]["hol"][0]["victims"]
    assert hol["detail"]["lost"]["offset"] == fill.seq - 1
    assert any(e["type"] == "what_if" for e in ours)
    # the analysis comes after every decoder event
    last_decoder = max(i for i, e in enumerate(events) if e.layer != "analysis")
    assert all(i > last_decoder for i, e in enumerate(events) if e.layer == "analysis")


def _packets(path: str) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        return list(dpkt.pcap.Reader(f))


def _write(path: str, packets: list[tuple[float, bytes]]) -> None:
    with open(path, "wb") as f:
        w = dpkt.pcap.Writer(f, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, buf in packets:
            w.writepkt(buf, ts)


def _analysis_errors(path: str, keylog: KeyLog | None) -> tuple[list, list]:
    pipe, events = collect(path, keylog=keylog)
    bad = [e for e in events if e.layer == "analysis" and e.type == "note"]
    return bad, summaries(pipe.connections, pipe.registry)


@pytest.mark.parametrize("name", ["http2-lossy", "http3-lossy", "http1-keepalive", "websocket-lossy",
                                  "http2-lossy.server", "tls13-resumption-0rtt"])
def test_cut_late_started_and_shuffled_captures(name: str, tmp_path) -> None:
    """Real captures cut at random places, started after their handshakes, or in a shuffled order: the
    analyses say less, never fail."""
    packets = _packets(sample(f"{name}.pcap"))
    keylog = _keylog(name)
    rnd = random.Random(name)
    variants = {
        "cut": [packets[: rnd.randrange(3, len(packets))] for _ in range(3)],
        "late": [packets[k:] for k in (3, 6, len(packets) // 2)],
        "shuffled": [rnd.sample(packets, len(packets))],
    }
    for kind, cases in variants.items():
        for i, case in enumerate(cases):
            path = str(tmp_path / f"{kind}{i}.pcap")
            _write(path, case)
            bad, conns = _analysis_errors(path, keylog)
            assert bad == [], (kind, i, bad)
            for c in conns:
                for ep in c.get("hol") or []:
                    assert ep["duration_ms"] >= 0, ep
                    # a QUIC stream that lost data is named even if nothing of it waited; TCP victims waited
                    assert all(v["blocked_ms"] > 0 or ep["kind"] == "quic" for v in ep["victims"]), ep
                for step in c.get("ledger") or []:
                    assert step["rtts"] >= 0
            if kind == "late" and conns and conns[0]["transport"] == "tcp":
                rtt = conns[0].get("rtt")
                assert rtt is None or rtt["capture_point"] == "unknown"  # no handshake: no split to infer
                assert all(s["step"] != "tcp" for s in conns[0]["ledger"])


def test_summary_mode_and_full_decode_agree() -> None:
    """The analyses give the same answer whether or not an event consumer is attached."""
    for name in ("http2-lossy", "http3-lossy", "http1-keepalive", "http2-flow-control"):
        keylog = _keylog(name)
        fast, _ = decode_file(sample(f"{name}.pcap"), keylog=keylog)
        full, _ = decode_file(sample(f"{name}.pcap"), keylog=_keylog(name), on_event=lambda e: None, segments=True)
        assert summaries(fast.connections, fast.registry) == summaries(full.connections, full.registry)
