"""Walkthroughs about loss: HTTP/2 over TCP (every stream behind the hole waits) and HTTP/3 over QUIC (only one).

The oracle is tshark.  For HTTP/2 it reassembles the TLS records that the
retransmitted segment completed; from its PDML we take each record's byte
range, the segments that carried those bytes and the HTTP/2 streams inside,
so a record's data had fully arrived when its last segment did, and waited
until the retransmission.  For HTTP/3 we walk tshark's decrypted STREAM
frames in arrival order: data beyond a missing offset waits until the hole
is filled, on its own stream only.
"""

from __future__ import annotations

import os
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict

from tests.test_walkthrough_oracle import (CLIENT, OOO, SERVER, capture, close, flights, frames, initial_rtts,
                                           ms_between, num, one_each, step, summary, t, tshark)


def _pdml(name: str, frame: int) -> ET.Element:
    pcap, keys = capture(name)
    cmd = ["tshark", "-n", "-r", str(pcap), "-o", OOO, "-o", f"tls.keylog_file:{keys}", "-Y", f"frame.number == {frame}",
           "-T", "pdml"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    return ET.fromstring(out)


def h2_loss(name: str) -> dict:
    """The lost server segment and, per HTTP/2 stream, whether it lost data, waited (and how long) or neither."""
    segs = one_each(name, ["frame.number", "ip.src", "tcp.seq", "tcp.len", "tcp.analysis.lost_segment",
                           "tcp.analysis.retransmission", "tcp.analysis.duplicate_ack"], "tcp")
    gap = next(int(r[0]) for r in segs if r[1] == SERVER and r[4])
    retx, seq, length = next((int(r[0]), int(r[2]), int(r[3])) for r in segs if r[1] == SERVER and r[5])
    held = [r for r in segs if r[1] == SERVER and gap <= int(r[0]) < retx and int(r[3]) > 0]
    dup = [r for r in segs if r[1] == CLIENT and r[6] and int(r[0]) < retx]
    doc = _pdml(name, retx)
    pieces = []  # (frame, start, end) of the reassembled PDU
    for fld in doc.iter("field"):
        if fld.get("name") == "tcp.segment":
            m = re.match(r"Frame: (\d+), payload: (\d+)-(\d+)", fld.get("showname", ""))
            pieces.append((int(m[1]), int(m[2]), int(m[3]) + 1))
    records = [(int(r.get("pos")), int(r.get("pos")) + int(r.get("size")))
               for r in doc.iter("field") if r.get("name") == "tls.record"]
    # HTTP/2 frames in record order; a record's frames restart their positions at its start
    groups: list[set[int]] = []
    last_pos = None
    for proto in doc.iter("proto"):
        if proto.get("name") != "http2":
            continue
        sid = next(f for f in proto.iter("field") if f.get("name") == "http2.streamid")
        pos = int(sid.get("pos"))
        if last_pos is None or pos <= last_pos:
            groups.append(set())
        groups[-1].add(int(sid.get("show")))
        last_pos = pos
    assert len(groups) == len(records)
    lost, waited = set(), {}
    for (start, end), sids in zip(records, groups):
        carriers = [f for f, a, b in pieces if a < end and b > start]
        if retx in carriers:
            lost |= sids
        else:
            arrived = max(t(name, f) for f in carriers)
            for sid in sids:
                waited[sid] = (t(name, retx) - arrived) * 1000.0
    all_streams = {int(s) for (sids,) in tshark(name, ["http2.streamid"], "http2") for s in sids if s != "0"}
    return {"gap": gap, "retx": retx, "seq": seq, "len": length, "held": held, "dup": dup, "lost": lost,
            "waited": waited, "clear": all_streams - lost - set(waited), "streams": all_streams}


def test_http2_lossy_cross_stream_hol() -> None:
    name = "http2-lossy"
    loss = h2_loss(name)
    rtt = initial_rtts(name)[0]
    # the HTTP/2 capture has cross-stream victims: complete streams that waited for another stream's bytes
    assert loss["waited"] and all(v > 0 for v in loss["waited"].values()) and len(loss["lost"]) == 1

    b = step(name, "A hole in the byte stream")
    assert f"Frame {loss['gap']} arrives" in b
    assert f"relative sequence numbers {loss['seq']}-{loss['seq'] + loss['len']} ({loss['len']} bytes)" in b
    b = step(name, "Waiting for the retransmission")
    assert f"{len(loss['held'])} segments ({sum(int(r[3]) for r in loss['held'])} bytes)" in b
    assert f"({len(loss['dup'])} duplicate ACKs)" in b and f"arrives in frame {loss['retx']}," in b
    rec = ms_between(name, loss["gap"], loss["retx"])
    assert close(num(r"frame \d+, {n} ms", b), rec) and close(num(r"ms \({n} RTT\)", b), rec / rtt, 0.006)

    b = step(name, "Whose bytes were lost")
    (lost,) = loss["lost"]
    assert f"belonged to stream {lost} (" in b and f"(frame {loss['retx']})" in b
    b = step(name, "Head-of-line victims")
    assert f"released {len(loss['waited'])} other streams" in b
    for sid, ms in loss["waited"].items():
        assert close(num(rf"stream {sid} \([^)]*\) {{n}} ms", b), ms), sid
    assert close(num(r"victims lost {n} ms", b), sum(loss["waited"].values()), 0.11 * len(loss["waited"]))

    # the HOL analysis, when the summary has it, is quoted with the same victims and times
    if summary(name)[0].get("hol"):
        quoted = b.split("HOL analysis")[1]
        for sid, ms in loss["waited"].items():
            assert close(num(rf"HTTP/2 stream {sid} \([^)]*\) {{n}} ms", quoted), ms)
        assert close(num(r"reports: {n} ms", quoted), rec)
    else:
        assert "HOL analysis" not in b

    b = step(name, "Untouched streams")
    for sid in sorted(loss["streams"]):
        if sid in loss["lost"]:
            assert f"{sid}: lost data" in b
        elif sid in loss["waited"]:
            assert close(num(rf"\b{sid}: {{n}} ms", b), loss["waited"][sid])
        else:
            assert f"{sid}: 0.0 ms" in b and f"stream {sid} (" in b.split("Not delayed by the hole:")[1]


def quic_stalls(name: str) -> tuple[dict[int, float], dict[int, int], list[tuple[int, int, int, int, int]]]:
    """Per server stream: ms its received data waited for a missing earlier offset; the frame that filled each hole."""
    frames_ = []  # (frame, pn, stream, offset, length) from the server, in arrival order
    for f, src, pns, sids, offbits, offs, lenbits, lens in tshark(
            name, ["frame.number", "ip.src", "quic.packet_number", "quic.stream.stream_id", "quic.stream.off",
                   "quic.stream.offset", "quic.stream.len", "quic.stream.length"], "quic.stream.stream_id"):
        if src[0] != SERVER:
            continue
        offs_it, lens_it = iter(offs), iter(lens)
        for sid, ob, lb in zip(sids, offbits, lenbits):
            off = int(next(offs_it)) if ob in ("1", "True") else 0
            ln = int(next(lens_it)) if lb in ("1", "True") else 0
            frames_.append((int(f[0]), int(pns[-1]), int(sid), off, ln))
    end: dict[int, int] = defaultdict(int)
    held: dict[int, list[tuple[int, int]]] = defaultdict(list)
    since: dict[int, int] = {}
    stalled: dict[int, float] = defaultdict(float)
    filled: dict[int, int] = {}
    for f, _, sid, off, ln in frames_:
        if off > end[sid]:
            held[sid].append((off, off + ln))
            since.setdefault(sid, f)
            continue
        end[sid] = max(end[sid], off + ln)
        for a, z in sorted(held[sid]):
            if a <= end[sid]:
                end[sid] = max(end[sid], z)
                held[sid].remove((a, z))
        if sid in since and not held[sid]:
            stalled[sid] += (t(name, f) - t(name, since.pop(sid))) * 1000.0
            filled[sid] = f
    return {sid: stalled[sid] for sid in end}, filled, frames_


def test_http3_lossy_only_the_affected_stream_stalls() -> None:
    name = "http3-lossy"
    stalls, filled, sframes = quic_stalls(name)
    requests = sorted(sid for sid in stalls if sid % 4 == 0)
    stalled = [sid for sid in requests if stalls[sid] > 0]
    # only one stream waited: the one whose data the lost packet carried
    assert len(stalled) == 1
    (sid,) = stalled
    pns = sorted({int(p[-1]) for (p,) in tshark(name, ["quic.packet_number"], f"ip.src == {SERVER} && quic.short")})
    (missing,) = sorted(set(range(pns[0], pns[-1] + 1)) - set(pns))
    fill = filled[sid]
    resent = next((off, ln) for f, _, s, off, ln in sframes if f == fill and s == sid)

    b = step(name, "The same workload over HTTP/3")
    assert f"request streams {', '.join(map(str, requests))}" in b
    b = step(name, "One handshake instead of two")
    first = min(frames(name))
    reply = next(f for f, (_, src, _, _) in sorted(frames(name).items()) if src == SERVER)
    req = int(one_each(name, ["frame.number"], f"ip.src == {CLIENT} && quic.stream.stream_id == 0")[0][0])
    assert f"(frame {first}, a " in b and f"(frame {reply})" in b and f"leaves in frame {req}," in b
    assert close(num(r"arrives {n} ms later", b), ms_between(name, first, reply))
    assert close(num(r"{n} ms after the first packet", b), ms_between(name, first, req))
    # QUIC: one round trip before the request; TCP + TLS 1.3 on the same path: two
    h2 = "http2-lossy"
    h2_req = int(one_each(h2, ["frame.number"], f"ip.src == {CLIENT} && http2.type == 1")[0][0])
    assert num(r"the client waited {n} round trip", b) == flights(name, req) == 1
    assert num(r"same request waited {n} round trips", b) == flights(h2, h2_req) == 2
    syn = int(one_each(h2, ["frame.number"], "tcp.flags.syn == 1 && tcp.flags.ack == 0")[0][0])
    assert close(num(r"\({n} ms from the SYN", b), ms_between(h2, syn, h2_req))

    b = step(name, "A lost packet")
    assert f"Server packet number {missing} " in b
    assert f"stream {sid}'s bytes {resent[0]}-{resent[0] + resent[1]} ({resent[1]} bytes)" in b
    pn_fill = int(one_each(name, ["quic.packet_number"], f"frame.number == {fill}")[0][0])
    assert f"in a new packet, number {pn_fill} (frame {fill})" in b and pn_fill != missing

    b = step(name, "Only that stream waits")
    assert close(num(rf"stream {sid} {{n}} ms", b), stalls[sid])
    for other in requests:
        assert close(num(rf"\b{other}: {{n}} ms", b.split("Blocked time per stream:")[1]), stalls[other])
    assert f"({', '.join(str(s) for s in requests if s != sid)})" in b
    if summary(name)[0].get("hol"):
        quoted = b.split("HOL analysis")[1]
        assert close(num(rf"blocked: HTTP/3 stream {sid} \([^)]*\) {{n}} ms", quoted), stalls[sid])
        assert all(f"HTTP/3 stream {s} " not in quoted.split("blocked:")[1] for s in requests if s != sid)
    else:
        assert "HOL analysis" not in b

    b = step(name, "Against HTTP/2 on TCP")
    loss = h2_loss(h2)
    assert f"held up {len(loss['waited'])} other streams besides" in b and f"(frame {loss['gap']} of http2-lossy)" in b
    assert close(num(r"up to {n} ms each", b), max(loss["waited"].values()))
    # ...and HTTP/3 none beyond the lossy stream
    assert "delayed 0 streams beyond the one whose packet was lost" in b
