"""Link layers and IP edge cases, built with scapy and checked against tshark.

Hand-built packets are fine here (edge cases no stack on this machine makes
on demand: VLAN tags, BSD loopback, raw IP, IPv4 options and fragments, IPv6
extension headers and fragments).  tshark decides what the right answer is:
which frames carry which ports once reassembled.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import (  # type: ignore[import-untyped]
    IP,
    TCP,
    UDP,
    Dot1Q,
    Ether,
    IPOption_RR,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    Raw,
    fragment,
    fragment6,
    wrpcap,
)
from scapy.layers.l2 import Loopback  # type: ignore[import-untyped]

from tests.support.capture import tshark_fields
from tests.support.decode import collect


def handshake(ip_a, ip_b, sport=40000, dport=80):
    """A three-way handshake plus a data segment, as IP packets."""
    return [
        ip_a / TCP(sport=sport, dport=dport, flags="S", seq=1000),
        ip_b / TCP(sport=dport, dport=sport, flags="SA", seq=5000, ack=1001),
        ip_a / TCP(sport=sport, dport=dport, flags="A", seq=1001, ack=5001),
        ip_a / TCP(sport=sport, dport=dport, flags="PA", seq=1001, ack=5001) / Raw(b"GET / HTTP/1.1\r\n\r\n"),
    ]


def ports_by_frame_tshark(path: str) -> dict[int, tuple[int, int]]:
    rows = tshark_fields(path, ["frame.number", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport"])
    out = {}
    for n, ts, td, us, ud in rows:
        if ts:
            out[int(n)] = (int(ts), int(td))
        elif us:
            out[int(n)] = (int(us), int(ud))
    return out


def ports_by_frame_ours(path: str) -> dict[int, tuple[int, int]]:
    pipe, events = collect(path)
    out = {}
    for e in events:
        if e.layer in ("tcp", "udp") and e.type in ("segment", "datagram"):
            c = pipe.connections[e.conn]
            p = c.ports if e.direction == "c2s" else c.ports[::-1]
            out[e.frame] = (p[0], p[1])
    return out


def check(path: Path, packets, linktype: int | None = None) -> dict[int, tuple[int, int]]:
    wrpcap(str(path), packets, linktype=linktype) if linktype is not None else wrpcap(str(path), packets)
    theirs = ports_by_frame_tshark(str(path))
    assert theirs
    assert ports_by_frame_ours(str(path)) == theirs
    return theirs


V4A, V4B = IP(src="192.0.2.1", dst="192.0.2.2"), IP(src="192.0.2.2", dst="192.0.2.1")
V6A, V6B = IPv6(src="2001:db8::1", dst="2001:db8::2"), IPv6(src="2001:db8::2", dst="2001:db8::1")


def test_ethernet_with_stacked_vlan_tags(tmp_path: Path) -> None:
    pkts = [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=10) / Dot1Q(vlan=20) / p
            for p in handshake(V4A, V4B)]
    assert len(check(tmp_path / "vlan.pcap", pkts)) == 4


def test_bsd_null_loopback_ipv4_and_ipv6(tmp_path: Path) -> None:
    pkts = [Loopback(type=2) / p for p in handshake(V4A, V4B)] + [Loopback(type=24) / p for p in handshake(V6A, V6B, 40001)]
    assert len(check(tmp_path / "null.pcap", pkts, linktype=0)) == 8


@pytest.mark.parametrize("linktype", [101, 228])
def test_raw_ipv4(tmp_path: Path, linktype: int) -> None:
    assert len(check(tmp_path / "raw.pcap", handshake(V4A, V4B), linktype=linktype)) == 4


def test_raw_ipv6_with_extension_headers(tmp_path: Path) -> None:
    a = V6A / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
    pkts = handshake(a, V6B)
    ports = check(tmp_path / "v6ext.pcap", pkts, linktype=101)
    assert len(ports) == 4


def test_ipv4_options(tmp_path: Path) -> None:
    a = IP(src="192.0.2.1", dst="192.0.2.2", options=[IPOption_RR(routers=["192.0.2.9"])])
    assert len(check(tmp_path / "opts.pcap", handshake(a, V4B), linktype=101)) == 4


def test_ipv4_fragments_complete_in_the_last_fragment_frame(tmp_path: Path) -> None:
    big = V4A / UDP(sport=7777, dport=40000) / Raw(b"z" * 3000)
    frags = fragment(big, fragsize=1000)
    frags = [frags[1], frags[0], frags[2], frags[3]]  # out of order, as on a real network
    ports = check(tmp_path / "frag4.pcap", [Ether() / f for f in frags])
    assert list(ports) == [4]  # reassembled in the frame that completed it


def test_ipv6_fragments(tmp_path: Path) -> None:
    big = V6A / IPv6ExtHdrFragment() / UDP(sport=7777, dport=40000) / Raw(b"q" * 3000)
    frags = fragment6(big, 1280)
    ports = check(tmp_path / "frag6.pcap", [Ether() / f for f in frags])
    assert list(ports) == [len(frags)]


def test_ethernet_padding_does_not_leak_into_tcp(tmp_path: Path) -> None:
    """A bare ACK is padded to 60 bytes on Ethernet; the segment length stays 0."""
    pkts = [Ether() / p for p in handshake(V4A, V4B)]
    path = tmp_path / "pad.pcap"
    wrpcap(str(path), [Raw(bytes(p) + b"\0" * max(0, 60 - len(p))) for p in pkts], linktype=1)
    _pipe, events = collect(str(path))
    lens = [e.len for e in events if e.type == "segment"]
    theirs = [int(r[0]) for r in tshark_fields(str(path), ["tcp.len"])]
    assert lens == theirs == [0, 0, 0, 18]
