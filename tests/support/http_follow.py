"""Drive HTTP decoders over a real capture without the full pipeline.

A deliberately small TCP follower built on dpkt: connections keyed by their
endpoints (client = the SYN's sender), each direction's payload delivered in
sequence order (retransmitted bytes trimmed, out-of-order segments held until
the hole fills) into a :class:`StreamIndex` of spans, frames numbered from 1
in capture order as Wireshark does.  Good for clean loopback captures; the
project's pipeline is the real thing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dpkt

from inspector.decoders.base import DecodeContext
from inspector.events import Event
from inspector.flows.streamindex import Span, StreamIndex


@dataclass
class _Dir:
    next_seq: int | None = None
    base_seq: int | None = None
    index: StreamIndex = field(default_factory=StreamIndex)
    held: dict[int, tuple[bytes, int, float]] = field(default_factory=dict)


@dataclass
class Followed:
    """One followed connection, its decoder and what it produced."""

    conn: int
    client: tuple[str, int]
    server: tuple[str, int]
    decoder: Any
    events: list[Event] = field(default_factory=list)
    dirs: tuple[_Dir, _Dir] = field(default_factory=lambda: (_Dir(), _Dir()))
    closed: bool = False


def _packets(path: str):
    with open(path, "rb") as f:
        try:
            reader = dpkt.pcap.Reader(f)
        except ValueError:
            f.seek(0)
            reader = dpkt.pcapng.Reader(f)
        link = reader.datalink()
        for ts, buf in reader:
            yield float(ts), link, buf


def _ip(link: int, buf: bytes):
    if link == dpkt.pcap.DLT_EN10MB:
        eth = dpkt.ethernet.Ethernet(buf)
        return eth.data
    if link == dpkt.pcap.DLT_LINUX_SLL:
        return dpkt.sll.SLL(buf).data
    if link == 0:  # BSD loopback
        return dpkt.loopback.Loopback(buf).data
    raise ValueError(f"link type {link} not handled by the test follower")


def follow(path: str, make_decoder: Callable[[DecodeContext], Any], *, server_port: int | None = None,
           gap_at: Callable[[int, int, int], bool] | None = None) -> list[Followed]:
    """Feed every TCP connection of ``path`` to a decoder from ``make_decoder(ctx)``.

    ``server_port`` restricts to connections with that server port.
    ``gap_at(conn, direction, frame)`` may drop a segment to simulate bytes
    missing from the capture: the decoder is then told about the gap.
    """
    conns: dict[tuple, Followed] = {}
    out: list[Followed] = []
    frame = 0
    for ts, link, buf in _packets(path):
        frame += 1
        ip = _ip(link, buf)
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        fam = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
        src = (socket.inet_ntop(fam, ip.src), tcp.sport)
        dst = (socket.inet_ntop(fam, ip.dst), tcp.dport)
        key = (min(src, dst), max(src, dst))
        f = conns.get(key)
        syn = tcp.flags & dpkt.tcp.TH_SYN
        if syn and not tcp.flags & dpkt.tcp.TH_ACK and (f is None or f.closed):
            if server_port is not None and dst[1] != server_port:
                continue
            ctx = DecodeContext(conn=len(out), client=src, server=dst)
            f = Followed(conn=len(out), client=src, server=dst, decoder=make_decoder(ctx))
            conns[key] = f
            out.append(f)
        if f is None:
            continue
        direction = 0 if src == f.client else 1
        d = f.dirs[direction]
        if syn:
            d.base_seq = (tcp.seq + 1) & 0xFFFFFFFF
            d.next_seq = d.base_seq
            continue
        if tcp.flags & (dpkt.tcp.TH_FIN | dpkt.tcp.TH_RST):
            f.closed = True
        other = f.dirs[1 - direction]
        if other.held and other.base_seq is not None and tcp.flags & dpkt.tcp.TH_ACK:
            # the peer acknowledged bytes past a hole: the hole will never be filled in this capture
            acked = (tcp.ack - other.base_seq) & 0xFFFFFFFF
            _skip_holes(f, 1 - direction, acked)
        data = bytes(tcp.data)
        if not data or d.base_seq is None:
            continue
        rel = (tcp.seq - d.base_seq) & 0xFFFFFFFF
        expected = (d.next_seq - d.base_seq) & 0xFFFFFFFF
        if gap_at is not None and rel == expected and gap_at(f.conn, direction, frame):
            # pretend this segment never reached the capture
            f.events += f.decoder.gap(direction, expected, len(data), d.index)
            d.next_seq = (d.base_seq + expected + len(data)) & 0xFFFFFFFF
            continue
        if rel + len(data) <= expected:
            continue  # retransmission of delivered bytes
        if rel > expected:
            d.held[rel] = (data, frame, ts)
            continue
        data = data[expected - rel:]
        _deliver(f, direction, data, expected, frame, ts, ts, frame)
        expected += len(data)
        while True:  # held segments that now fit
            nxt = [k for k in d.held if k <= expected]
            if not nxt:
                break
            k = min(nxt)
            hdata, hframe, hts = d.held.pop(k)
            if k + len(hdata) > expected:
                part = hdata[expected - k:]
                _deliver(f, direction, part, expected, frame, hts, ts, hframe)
                expected += len(part)
        d.next_seq = (d.base_seq + expected) & 0xFFFFFFFF
    for f in out:
        for direction in (0, 1):
            _skip_holes(f, direction, 1 << 40)
        f.events += f.decoder.finish()
    return out


def _skip_holes(f: Followed, direction: int, upto: int) -> None:
    """Tell the decoder about holes below ``upto`` and deliver the held segments after them."""
    d = f.dirs[direction]
    expected = (d.next_seq - d.base_seq) & 0xFFFFFFFF
    while d.held:
        k = min(d.held)
        if k >= upto:
            break
        if k > expected:
            f.events += f.decoder.gap(direction, expected, k - expected, d.index)
            expected = k
        hdata, hframe, hts = d.held.pop(k)
        if k + len(hdata) > expected:
            part = hdata[expected - k:]
            _deliver(f, direction, part, expected, hframe, hts, hts, hframe)
            expected += len(part)
    d.next_seq = (d.base_seq + expected) & 0xFFFFFFFF


def _deliver(f: Followed, direction: int, data: bytes, offset: int, frame: int, arrival: float, delivered: float,
             arrival_frame: int) -> None:
    d = f.dirs[direction]
    d.index.add(Span(offset, offset + len(data), frame, arrival, delivered, arrival_frame))
    f.events += f.decoder.feed(direction, data, offset, d.index)


def events_of(followed: list[Followed]) -> list[Event]:
    """All events of all connections, in the order the decoders produced them."""
    return [e for f in followed for e in f.events]
