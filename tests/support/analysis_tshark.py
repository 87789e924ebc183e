"""What tshark says about the lab captures, for the analysis tests' expected numbers.

Everything here comes from tshark's own dissection (frame times, TCP sequence
numbers, reassembly, TLS/QUIC decryption with the key log, HTTP/2 and HTTP/3
fields), never from netinspect, so the tests compare our analyses with
numbers derived independently from the packets.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.capture import TSHARK, tshark_fields

SAMPLES = Path(__file__).resolve().parents[2] / "captures" / "samples"


def sample(name: str) -> str:
    return str(SAMPLES / name)


def keylog_options(name: str) -> list[str]:
    """tshark options: the capture's key log (TLS and QUIC) and reassembly across TCP holes."""
    base = name.split(".")[0]
    keys = SAMPLES / f"{base}.keys"
    opts = ["tcp.reassemble_out_of_order:TRUE"]
    if keys.exists():
        opts.append(f"tls.keylog_file:{keys}")
    return opts


def tshark_decoded(path: str, fields: list[str], display_filter: str, decode_as: list[str]) -> list[list[str]]:
    """``tshark -T fields`` with "decode as" rules (e.g. h2c on a port tshark does not know)."""
    cmd = [TSHARK, "-n", "-r", path, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,",
           "-Y", display_filter]
    for rule in decode_as:
        cmd += ["-d", rule]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    return [line.split("\t") for line in out.splitlines()]


def frame_times(path: str) -> dict[int, float]:
    """frame number -> epoch time."""
    return {int(n): float(t) for n, t in tshark_fields(path, ["frame.number", "frame.time_epoch"])}


def handshake_times(path: str, stream: int = 0) -> tuple[float, float, float]:
    """(SYN, SYN/ACK, first ACK from the client) times of a TCP stream, as tshark sees them."""
    rows = tshark_fields(path, ["frame.time_epoch", "tcp.flags.syn", "tcp.flags.ack", "tcp.len"],
                         display_filter=f"tcp.stream=={stream}")
    syn = next(float(r[0]) for r in rows if r[1] == "1" and r[2] == "0")
    synack = next(float(r[0]) for r in rows if r[1] == "1" and r[2] == "1")
    ack = next(float(r[0]) for r in rows if r[1] == "0" and r[2] == "1" and float(r[0]) > synack)
    return syn, synack, ack


@dataclass
class Segment:
    frame: int
    seq: int  #: relative sequence number (stream offset + 1)
    length: int
    ts: float


def data_segments(path: str, src_port: int, stream: int = 0) -> list[Segment]:
    """TCP segments with payload from ``src_port`` in capture order (relative sequence numbers)."""
    rows = tshark_fields(path, ["frame.number", "tcp.seq", "tcp.len", "frame.time_epoch"],
                         display_filter=f"tcp.stream=={stream} && tcp.srcport=={src_port} && tcp.len>0")
    return [Segment(int(f), int(s), int(n), float(t)) for f, s, n, t in rows]


def first_retransmission(segments: list[Segment]) -> Segment:
    """The first segment starting below the highest sequence number already seen (a retransmission,
    or at a receiver the late copy filling a hole)."""
    top = 0
    for seg in segments:
        if seg.seq < top:
            return seg
        top = max(top, seg.seq + seg.length)
    raise AssertionError("no retransmission in the capture")


@dataclass
class Record:
    """A TLS record tshark reassembled, with the frames whose bytes it holds and its HTTP/2 streams."""

    frames: list[int]
    streams: list[int]
    #: streams whose HEADERS or END_STREAM DATA frame the record carried (what an exchange marks)
    heads_or_ends: list[int] = field(default_factory=list)


def reassembled_records(path: str, frame: int, options: list[str]) -> list[Record]:
    """The TLS records tshark reassembled in ``frame`` (pdml): each with its segments' frames and the
    HTTP/2 stream ids of the frames its plaintext carried."""
    cmd = [TSHARK, "-n", "-r", path, "-T", "pdml", "-Y", f"frame.number=={frame}"]
    for opt in options:
        cmd += ["-o", opt]
    xml = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    root = ET.fromstring(xml)
    packet = root.find("packet")
    assert packet is not None
    segments = [(int(f.get("show")), int(f.get("pos")), int(f.get("size")))
                for f in packet.iter("field") if f.get("name") == "tcp.segment"]
    records = []
    for tls in packet.iter("proto"):
        if tls.get("name") != "tls":
            continue
        for rec in tls:
            if rec.get("name") != "tls.record":
                continue
            lo = int(rec.get("pos"))
            hi = lo + int(rec.get("size"))
            frames = sorted({f for f, pos, size in segments if pos < hi and pos + size > lo})
            records.append(Record(frames, []))
    # each record's plaintext is its own data source: its first HTTP/2 frame starts at position 0
    groups: list[list[int]] = []
    marks: list[list[int]] = []
    for proto in packet.iter("proto"):
        if proto.get("name") != "http2":
            continue
        if int(proto.get("pos")) == 0 or not groups:
            groups.append([])
            marks.append([])
        ftype = end_stream = None
        for f in proto.iter("field"):  # per frame: type, flags, then the stream id
            name = f.get("name")
            if name == "http2.type":
                ftype = f.get("show")
            elif name == "http2.flags.end_stream":
                end_stream = f.get("show")
            elif name == "http2.streamid":
                sid = int(f.get("show"))
                groups[-1].append(sid)
                if ftype == "1" or (ftype == "0" and end_stream == "1"):
                    marks[-1].append(sid)
                ftype = end_stream = None
    app = [r for r in records]
    assert len(groups) <= len(app)
    for rec, streams, ends in zip(app[len(app) - len(groups):], groups, marks):
        rec.streams = sorted(set(streams))
        rec.heads_or_ends = sorted(set(ends))
    return records


def quic_stream_frames(path: str, options: list[str], src_port: int) -> list[tuple[int, float, int, int, int]]:
    """(frame, time, stream id, offset, length) of every decrypted STREAM frame sent from ``src_port``."""
    rows = tshark_fields(path, ["frame.number", "frame.time_epoch", "quic.stream.stream_id", "quic.stream.off",
                                "quic.stream.offset", "quic.stream.length"],
                         display_filter=f"udp.srcport=={src_port} && quic.stream.stream_id", options=options)
    out = []
    for frame, ts, sids, offs, offsets, lengths in rows:
        given = iter(offsets.split(",") if offsets else [])
        # a STREAM frame without the OFF bit starts at offset 0 and has no offset field
        for s, has_off, n in zip(sids.split(","), offs.split(","), lengths.split(",")):
            out.append((int(frame), float(ts), int(s), int(next(given)) if has_off == "1" else 0, int(n)))
    return out
