"""A tiny TCP follower (and UDP lister) for decoder tests: in-order payload per direction, with spans.

Until a test goes through the real pipeline, this reads a loopback capture
with dpkt, follows each TCP connection (client = the side that sent the
SYN), drops retransmitted bytes, and replays the payload in capture order
into a decoder together with a :class:`StreamIndex` per direction, exactly
as the decoder interface describes.  Loopback captures have no loss, so
out-of-order data is not handled (the test would fail loudly on it).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import dpkt

from inspector.flows.streamindex import Span, StreamIndex

from .capture import TCPDUMP

#: tcpdump with a 32 MiB ring: with the default 2 MiB and a 256 KiB snap length the ring holds only a
#: few 64 KiB loopback segments, and on a busy machine the kernel drops packets ("dropped by kernel")
TCPDUMP_BIG_RING = (TCPDUMP, "-B", "32768")


@dataclass
class Segment:
    direction: int
    offset: int
    data: bytes
    frame: int
    ts: float


@dataclass
class TcpConn:
    client: tuple[str, int]
    server: tuple[str, int]
    segments: list[Segment] = field(default_factory=list)
    syn_frame: int = 0

    def stream(self, direction: int) -> bytes:
        return b"".join(s.data for s in self.segments if s.direction == direction)


def _packets(path: str):
    with open(path, "rb") as f:
        try:
            reader: Any = dpkt.pcap.Reader(f)
        except ValueError:
            f.seek(0)
            reader = dpkt.pcapng.Reader(f)
        link = reader.datalink()
        for n, (ts, buf) in enumerate(reader, start=1):
            if link == dpkt.pcap.DLT_EN10MB:
                ip = dpkt.ethernet.Ethernet(buf).data
            elif link == dpkt.pcap.DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(buf).data
            elif link == 276:
                ip = dpkt.sll2.SLL2(buf).data
            else:
                raise ValueError(f"link type {link} not handled by the test follower")
            yield n, float(ts), ip


def follow_tcp(path: str) -> list[TcpConn]:
    """Every TCP connection of the capture that starts with a SYN, in order of the SYN."""
    conns: dict[tuple, TcpConn] = {}
    nxt: dict[tuple, list[int | None]] = {}
    order: list[TcpConn] = []
    for n, ts, ip in _packets(path):
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or not isinstance(ip.data, dpkt.tcp.TCP):
            continue
        tcp = ip.data
        fam = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
        src = (socket.inet_ntop(fam, ip.src), tcp.sport)
        dst = (socket.inet_ntop(fam, ip.dst), tcp.dport)
        syn = tcp.flags & dpkt.tcp.TH_SYN
        ack = tcp.flags & dpkt.tcp.TH_ACK
        if syn and not ack:
            c = TcpConn(client=src, server=dst, syn_frame=n)
            conns[(src, dst)] = c
            nxt[(src, dst)] = [(tcp.seq + 1) & 0xFFFFFFFF, None]
            order.append(c)
            continue
        key, direction = ((src, dst), 0) if (src, dst) in conns else ((dst, src), 1)
        c = conns.get(key)
        if c is None:
            continue
        seqs = nxt[key]
        if syn:
            seqs[1] = (tcp.seq + 1) & 0xFFFFFFFF
            continue
        data = bytes(tcp.data)
        if not data or seqs[direction] is None:
            continue
        rel = (tcp.seq - seqs[direction]) & 0xFFFFFFFF
        if rel >= 0x80000000:  # starts before what we have: retransmission (maybe partly new)
            old = (-rel) & 0xFFFFFFFF
            if old >= len(data):
                continue
            data = data[old:]
        elif rel:
            raise AssertionError(f"frame {n}: out-of-order data; the test follower handles in-order streams only")
        offset = sum(len(s.data) for s in c.segments if s.direction == direction)
        c.segments.append(Segment(direction, offset, data, n, ts))
        seqs[direction] = (seqs[direction] + len(data)) & 0xFFFFFFFF
    return order


def replay(decoder: Any, conn: TcpConn, start: tuple[int, int] = (0, 0)) -> list[Any]:
    """Feed ``conn``'s payload from stream offsets ``start`` (per direction) into ``decoder``."""
    indexes = (StreamIndex(), StreamIndex())
    events: list[Any] = []
    for s in conn.segments:
        end = s.offset + len(s.data)
        if end <= start[s.direction]:
            continue
        indexes[s.direction].add(Span(s.offset, end, s.frame, s.ts, s.ts, s.frame))
        cut = max(start[s.direction] - s.offset, 0)
        events += decoder.feed(s.direction, s.data[cut:], s.offset + cut, indexes[s.direction])
    events += decoder.finish()
    return events


def http_head(stream: bytes) -> tuple[str, list[tuple[str, str]], int]:
    """Start line, headers and length of the HTTP/1.1 message head at the start of ``stream``."""
    end = stream.index(b"\r\n\r\n") + 4
    lines = stream[:end - 4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers, end


@dataclass
class Datagram:
    direction: int  # 0: towards ``port`` (client -> server)
    data: bytes
    frame: int
    ts: float
    client: tuple[str, int]


def udp_datagrams(path: str, port: int) -> list[Datagram]:
    """Every UDP datagram to or from ``port``, in capture order."""
    out = []
    for n, ts, ip in _packets(path):
        if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or not isinstance(ip.data, dpkt.udp.UDP):
            continue
        udp = ip.data
        fam = socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6
        if udp.dport == port:
            out.append(Datagram(0, bytes(udp.data), n, ts, (socket.inet_ntop(fam, ip.src), udp.sport)))
        elif udp.sport == port:
            out.append(Datagram(1, bytes(udp.data), n, ts, (socket.inet_ntop(fam, ip.dst), udp.dport)))
    return out


def tshark_ws_frames(path: str, args: list[str]) -> list[tuple[int, int, int, bool, bool, int]]:
    """(frame, opcode, payload length, FIN, MASK, RSV) of every WebSocket frame tshark dissects.

    ``args`` are extra tshark arguments (``-o`` preferences, ``-d`` decode-as) that make it find the
    HTTP upgrade on a test port; the 7-bit length is replaced by the 16/64-bit one where used.
    """
    import subprocess

    from .capture import TSHARK

    fields = ["frame.number", "websocket.opcode", "websocket.payload_length", "websocket.payload_length_ext_16",
              "websocket.payload_length_ext_64", "websocket.fin", "websocket.mask", "websocket.rsv"]
    cmd = [TSHARK, "-n", "-r", path, *args, "-Y", "websocket", "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    frames = []
    for line in out.stdout.splitlines():
        frame, ops, lens, l16, l64, fins, masks, rsvs = line.split("\t")
        ext16 = iter(l16.split(",")) if l16 else iter(())
        ext64 = iter(l64.split(",")) if l64 else iter(())
        for op, ln, fin, mask, rsv in zip(ops.split(","), lens.split(","), fins.split(","), masks.split(","),
                                          rsvs.split(",")):
            n = int(ln)
            n = int(next(ext16)) if n == 126 else int(next(ext64)) if n == 127 else n
            frames.append((int(frame), int(op), n, fin in ("1", "True"), mask in ("1", "True"), int(rsv, 16)))
    return frames
