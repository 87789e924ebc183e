"""Many tiny complete TCP connections in one capture (a hand-built edge case, see below).

No lab stack opens 200,000 connections in a few seconds, so this capture is
built: one connection is made with scapy (the kernel's usual SYN options:
MSS, SACK permitted, timestamps, window scale) carrying one small HTTP/1.1
request and its response, closed with FIN/ACKs from both sides, and then
repeated with a new client port (and client address every 50,000
connections), 10 microseconds between packets.  Checksums are those of the
template (nothing here verifies them).  Written as a pcap directly: scapy
per packet would take minutes.
"""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

SERVER = "10.20.0.1"
REQUEST = b"GET /t HTTP/1.1\r\nHost: tiny.test\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
PER_ADDRESS = 50_000
PACKETS_PER_CONNECTION = 8


def _template() -> list[tuple[int, bytes]]:
    """The eight frames of one connection: (direction, bytes), client port 40000."""
    c, s = "10.10.0.1", SERVER
    cp, sp = 40000, 80
    eth_c = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    eth_s = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None), ("WScale", 7)]
    ci, si = 1000, 5000
    q, r = len(REQUEST), len(RESPONSE)
    frames = [
        (0, eth_c / IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="S", seq=ci, window=64240, options=opts)),
        (1, eth_s / IP(src=s, dst=c) / TCP(sport=sp, dport=cp, flags="SA", seq=si, ack=ci + 1, window=65160,
                                          options=opts)),
        (0, eth_c / IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="A", seq=ci + 1, ack=si + 1, window=502)),
        (0, eth_c / IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="PA", seq=ci + 1, ack=si + 1, window=502)
         / REQUEST),
        (1, eth_s / IP(src=s, dst=c) / TCP(sport=sp, dport=cp, flags="PA", seq=si + 1, ack=ci + 1 + q, window=509)
         / RESPONSE),
        (0, eth_c / IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="FA", seq=ci + 1 + q, ack=si + 1 + r,
                                          window=502)),
        (1, eth_s / IP(src=s, dst=c) / TCP(sport=sp, dport=cp, flags="FA", seq=si + 1 + r, ack=ci + 2 + q,
                                          window=509)),
        (0, eth_c / IP(src=c, dst=s) / TCP(sport=cp, dport=sp, flags="A", seq=ci + 2 + q, ack=si + 2 + r,
                                          window=502)),
    ]
    return [(d, bytes(f)) for d, f in frames]


def _scan_template() -> list[tuple[int, bytes]]:
    """A port scan's two frames: the client's SYN (as above) and the server's RST/ACK refusing it."""
    syn = _template()[0]
    rst = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") / IP(src=SERVER, dst="10.10.0.1") / TCP(
        sport=80, dport=40000, flags="RA", seq=0, ack=1001, window=0)
    return [syn, (1, bytes(rst))]


def write_tiny_connections(path: str, count: int, scan: bool = False) -> int:
    """Write ``count`` connections to a pcap at ``path`` (``scan``: refused SYNs, as a port scan leaves);
    returns the number of packets."""
    frames = _scan_template() if scan else _template()
    rec = struct.Struct("<IIII")
    ts_us = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n in range(count):
            port = struct.pack("!H", 1024 + n % PER_ADDRESS)
            addr = struct.pack("!4B", 10, 10, n // PER_ADDRESS // 256 % 256, n // PER_ADDRESS % 256 + 1)
            for d, frame in frames:
                b = bytearray(frame)
                if d == 0:  # client -> server: source address and port
                    b[26:30] = addr
                    b[34:36] = port
                else:
                    b[30:34] = addr
                    b[36:38] = port
                ts_us += 10
                f.write(rec.pack(ts_us // 1_000_000, ts_us % 1_000_000, len(b), len(b)))
                f.write(b)
    return count * len(frames)


DNS_SAMPLE = Path(__file__).resolve().parents[2] / "captures" / "samples" / "dns-then-connect.pcap"


def write_dns_flows(path: str, count: int, answered: bool = True) -> int:
    """Write ``count`` DNS lookups, each from its own client port (and client address every 60,000), as
    a busy resolver's capture has them: the first A query of ``captures/samples/dns-then-connect.pcap``
    and its answer (real bytes from the lab's dnsmasq), 10 microseconds apart, UDP checksums zeroed
    (the ports change; zero means "none" in IPv4).  ``answered=False``: the queries alone, as a flood
    of one question nobody answers leaves.  Returns the number of packets."""
    with open(DNS_SAMPLE, "rb") as f:
        frames = [bytes(buf) for _, buf in dpkt.pcap.Reader(f)]
    query, answer = frames[0], frames[2]
    rec = struct.Struct("<IIII")
    ts_us = 0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n in range(count):
            port = struct.pack("!H", 1024 + n % 60_000)
            addr = struct.pack("!4B", 10, 99, 1 + n // 60_000 // 256 % 256, 1 + n // 60_000 % 256)
            for d, frame in ((0, query), (1, answer)) if answered else ((0, query),):
                b = bytearray(frame)
                if d == 0:
                    b[26:30], b[34:36] = addr, port
                else:
                    b[30:34], b[36:38] = addr, port
                b[40:42] = b"\0\0"
                ts_us += 10
                f.write(rec.pack(ts_us // 1_000_000, ts_us % 1_000_000, len(b), len(b)))
                f.write(b)
    return 2 * count if answered else count
