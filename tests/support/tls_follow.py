"""A minimal TCP follower to drive the TLS decoder directly from a capture.

This lets the TLS tests feed a :class:`TlsDecoder` exactly the in-order
stream a reassembler would (and with the same Span bookkeeping: a span per
delivered run, its frame, first-arrival time and delivery time), and also
split the stream at chosen points.  It handles what loopback captures of
well-behaved stacks contain (in-order data, the odd retransmission); the
real pipeline is exercised by the end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dpkt

from inspector.decoders.base import DecodeContext
from inspector.events import Event
from inspector.flows.streamindex import Span, StreamIndex
from inspector.keylog import KeyLog


@dataclass
class Stream:
    """One TCP connection: in-order chunks per direction with frame and time."""

    client: tuple[str, int]
    server: tuple[str, int]
    # (direction, offset, data, frame, ts) in capture order
    chunks: list[tuple[int, int, bytes, int, float]] = field(default_factory=list)

    def data(self, direction: int) -> bytes:
        return b"".join(c[2] for c in self.chunks if c[0] == direction)


def read_streams(path: str) -> list[Stream]:
    """TCP connections of a capture (started by a SYN), with their in-order payload."""
    streams: dict[tuple, Stream] = {}
    nxt: dict[tuple, list[int | None]] = {}
    pending: dict[tuple, dict[int, tuple[bytes, float, int]]] = {}
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        for frame, (ts, buf) in enumerate(reader, start=1):
            if linktype == dpkt.pcap.DLT_EN10MB:
                ip = dpkt.ethernet.Ethernet(buf).data
            elif linktype == dpkt.pcap.DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(buf).data
            else:
                raise ValueError(f"link type {linktype}")
            if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            tcp = ip.data
            src = (_addr(ip.src), tcp.sport)
            dst = (_addr(ip.dst), tcp.dport)
            syn = tcp.flags & dpkt.tcp.TH_SYN
            ack = tcp.flags & dpkt.tcp.TH_ACK
            if syn and not ack:
                key = (src, dst)
                streams[key] = Stream(client=src, server=dst)
                nxt[key] = [tcp.seq + 1, None]
                continue
            if (src, dst) in streams:
                key, d = (src, dst), 0
            elif (dst, src) in streams:
                key, d = (dst, src), 1
            else:
                continue
            if syn:
                nxt[key][1] = tcp.seq + 1
                continue
            payload = bytes(tcp.data)
            if not payload or nxt[key][d] is None:
                continue
            pending.setdefault((key, d), {})[tcp.seq] = (payload, float(ts), frame)
            # deliver whatever is now in order (segments that came early wait for the hole to fill)
            s = streams[key]
            stash = pending[(key, d)]
            progressed = True
            while progressed:
                progressed = False
                expected = nxt[key][d]
                for seq in list(stash):
                    data, arrival, first_frame = stash[seq]
                    rel = (seq - expected) & 0xFFFFFFFF
                    if rel >= 0x80000000:  # starts before the expected byte: keep only new bytes
                        overlap = (expected - seq) & 0xFFFFFFFF
                        data = data[overlap:]
                        rel = 0
                    if rel != 0:
                        continue
                    del stash[seq]
                    if data:
                        offset = sum(len(c[2]) for c in s.chunks if c[0] == d)
                        s.chunks.append((d, offset, data, frame, arrival))
                        nxt[key][d] = (expected + len(data)) & 0xFFFFFFFF
                    progressed = True
                    break
    return list(streams.values())


def _addr(raw: bytes) -> str:
    import ipaddress

    return str(ipaddress.ip_address(raw))


def run_decoder(
    stream: Stream,
    make: Callable[[DecodeContext], object],
    keylog: KeyLog | None,
    *,
    conn: int = 0,
    split: Callable[[int, bytes], list[bytes]] | None = None,
) -> tuple[object, list[Event]]:
    """Feed a decoder a stream's chunks in capture order; ``split`` may re-cut each chunk."""
    ctx = DecodeContext(conn=conn, client=stream.client, server=stream.server, keylog=keylog)
    decoder = make(ctx)
    indexes = (StreamIndex(), StreamIndex())
    events: list[Event] = []
    for d, offset, data, frame, ts in stream.chunks:
        pieces = split(d, data) if split else [data]
        pos = offset
        for piece in pieces:
            indexes[d].add(Span(pos, pos + len(piece), frame, ts, ts, frame))
            events += decoder.feed(d, piece, pos, indexes[d])
            pos += len(piece)
    events += decoder.finish()
    return decoder, events


class Collector:
    """An inner decoder that keeps the plaintext it is fed (and checks offsets and spans)."""

    def __init__(self) -> None:
        self.data = [bytearray(), bytearray()]
        self.spans: list[list[Span]] = [[], []]
        self.gaps: list[tuple[int, int, int]] = []

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        assert offset == len(self.data[direction]) + sum(g[2] for g in self.gaps if g[0] == direction)
        self.data[direction] += data
        self.spans[direction] += index.spans(offset, offset + len(data))
        return []

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        self.gaps.append((direction, offset, length))
        return []

    def finish(self) -> list[Event]:
        return []

    def summary(self) -> dict:
        return {"collected": [len(self.data[0]), len(self.data[1])]}


# --------------------------------------------------------------------------- tshark, the oracle


def tshark_tls_frames(pcap: str, keylog: str | None) -> dict[int, tuple[list[int], list[int]]]:
    """Per frame: TLS record content types and handshake message types, as tshark decodes them."""
    from .capture import tshark_fields

    options = [f"tls.keylog_file:{keylog}"] if keylog else []
    fields = ["frame.number", "tls.record.content_type", "tls.handshake.type", "tls.record.opaque_type"]
    rows = tshark_fields(pcap, fields, options=options)
    out = {}
    for row in rows:
        row += [""] * (4 - len(row))
        if row[1] or row[2] or row[3]:
            types = _ints(row[1])
            if not keylog:
                # TLS 1.3 records tshark cannot open show only their outer (opaque) type
                types = sorted(types + _ints(row[3]))
            out[int(row[0])] = (types, _ints(row[2]))
    return out


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def tshark_follow_tls(
    pcap: str, keylog: str, stream: int, client_port: int, options: Sequence[str] = ()
) -> tuple[bytes, bytes]:
    """Decrypted bytes of one TCP stream per direction (client first), from ``-z follow,tls,raw``.

    tshark prints "Node 0" (unindented lines) for whichever side it saw first
    decrypting, so the node's port tells which direction is which.
    """
    import subprocess

    from .capture import TSHARK

    out = subprocess.run(
        [TSHARK, "-n", "-r", pcap, "-o", f"tls.keylog_file:{keylog}", *(a for o in options for a in ("-o", o)),
         "-q", "-z", f"follow,tls,raw,{stream}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    node0, node1 = bytearray(), bytearray()
    node0_port = int(out.split("Node 0:", 1)[1].split("\n", 1)[0].rsplit(":", 1)[1])
    body = out.split("Node 1:", 1)[1].split("\n", 1)[1]
    for line in body.splitlines():
        if line.startswith("====="):
            break
        if line.startswith("\t"):
            node1 += bytes.fromhex(line.strip())
        elif line.strip():
            node0 += bytes.fromhex(line.strip())
    if node0_port == client_port:
        return bytes(node0), bytes(node1)
    return bytes(node1), bytes(node0)
