"""DNS before a connection, on the lab's sample capture: curl's stub resolver asks dnsmasq across a 40 ms path."""

from __future__ import annotations

import json
import os

import pytest

from inspector.events import DnsMessage
from tests.support.capture import tshark_fields
from tests.support.ws_registry import PushRegistry, run_pipeline

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "captures", "samples")


@pytest.fixture(scope="module")
def dns_then_connect():
    path = os.path.join(SAMPLES, "dns-then-connect.pcap")
    with open(os.path.join(SAMPLES, "dns-then-connect.json")) as f:
        meta = json.load(f)
    reg = PushRegistry()
    events, summaries = run_pipeline(path, reg)
    return path, meta, reg, events, summaries


def test_lookups_take_one_round_trip(dns_then_connect):
    path, meta, _, events, summaries = dns_then_connect
    rtt = meta["rtt_ms"]
    responses = [e for e in events if isinstance(e, DnsMessage) and e.type == "response"]
    assert {e.qtype for e in responses} == {"A", "AAAA"}
    theirs = {int(f): float(t) * 1000 for f, t in tshark_fields(path, ["frame.number", "dns.time"],
                                                                 display_filter="dns.flags.response == 1")}
    for e in responses:
        assert e.lookup_ms == pytest.approx(theirs[e.frame], abs=0.002)
        assert rtt <= e.lookup_ms <= rtt + 5
    (dns,) = [s for s in summaries if s.get("app") == "dns"]
    assert [lk["qname"] for lk in dns["dns"]["lookups"]] == ["lab.test", "lab.test"]


def test_lookup_linked_to_the_connection(dns_then_connect):
    """The TCP connection goes to the address the A lookup returned: the lookup is found for it."""
    _, meta, reg, events, summaries = dns_then_connect
    (tcp,) = [s for s in summaries if s["transport"] == "tcp"]
    server_ip = tcp["server"].rsplit(":", 1)[0]
    res = reg.dns.resolution_for(server_ip, tcp["start"])
    assert res is not None and res.qname == "lab.test" and res.address == server_ip
    a = next(e for e in events if isinstance(e, DnsMessage) and e.type == "response" and e.qtype == "A")
    assert (res.response_frame, res.lookup_ms) == (a.frame, a.lookup_ms)
    # naming cost in front of the connection: from the first query to the SYN
    assert (tcp["start"] - res.query_ts) * 1000 >= res.lookup_ms >= meta["rtt_ms"]
    assert reg.dns.resolution_for(server_ip, res.response_ts - 0.001) is None


def test_a_lookup_from_a_quic_port_to_port_53_is_dns(tmp_path):
    """The sample's lookup repeated from client ports 1024 to 8999: from 4433 and 8443 (ports QUIC
    servers use) to port 53 it is still DNS, frame for frame as tshark decodes it, not a QUIC guess."""
    from inspector.pipeline import decode_file
    from tests.support.hardening_tiny import write_dns_flows

    path = str(tmp_path / "ports.pcap")
    write_dns_flows(path, 8000)
    ours = []
    pipe, _ = decode_file(path, on_event=lambda e: ours.append(e.frame) if isinstance(e, DnsMessage) else None)
    theirs = [int(row[0]) for row in tshark_fields(path, ["frame.number"], display_filter="dns")]
    assert ours == theirs and len(ours) == 16000
    by_port = {c.ports[0]: c for c in pipe.connections}
    assert type(by_port[4433].decoder).__name__ == type(by_port[8443].decoder).__name__ == "DnsUdpDecoder"


def test_copies_of_an_unanswered_question_are_bounded(tmp_path):
    """One question from 100 client ports, then the answer to the first port and to the last: a lookup
    keeps at most 64 unanswered copies (a flood of one question must not grow it), so the first
    port's copy is gone and its answer is unmatched, while the last one's is timed from its query."""
    import struct

    import dpkt

    from inspector.pipeline import decode_file
    from tests.support.hardening_tiny import DNS_SAMPLE

    with open(DNS_SAMPLE, "rb") as f:
        frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(f)]
    query, answer = frames[0], frames[2]
    path = tmp_path / "copies.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        packets = [(0, port) for port in range(1024, 1124)] + [(1, 1024), (1, 1123)]
        for n, (d, port) in enumerate(packets):
            b = bytearray(query if d == 0 else answer)
            b[34 if d == 0 else 36:36 if d == 0 else 38] = struct.pack("!H", port)
            b[40:42] = b"\0\0"
            f.write(struct.pack("<IIII", 0, n, len(b), len(b)) + b)
    responses = []
    decode_file(str(path), on_event=lambda e: responses.append(e) if isinstance(e, DnsMessage)
                and e.type == "response" else None)
    assert [r.frame for r in responses] == [101, 102]
    assert getattr(responses[0], "query_frame", None) is None  # its copy (frame 1) dropped out
    assert responses[1].query_frame == 100
