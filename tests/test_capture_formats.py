"""Capture readers: every pcap/pcapng variant gives tshark's frame numbers and times.

The base capture is real (curl on loopback).  Variants are made with
Wireshark's own editcap/mergecap, gzip, by tcpdump itself (Linux cooked
captures on ``-i any``), and — for the few layouts no tool writes on demand
(big-endian pcap, simple packet blocks, binary if_tsresol) — by rewriting
the real capture's records byte for byte.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from inspector.capture.reader import CaptureReader
from tests.support.capture import loopback_capture, tshark_fields
from tests.support.decode import collect
from tests.support.tcp_captures import http_server


def tshark_frames(path: str) -> list[tuple[int, float, str]]:
    rows = tshark_fields(path, ["frame.number", "frame.time_epoch", "tcp.srcport"])
    return [(int(n), float(t), p) for n, t, p in rows]


def our_frames(path: str) -> list[tuple[int, float, str]]:
    pipe, events = collect(path)
    ports = {}
    for e in events:
        if e.layer == "tcp" and e.type == "segment":
            conn = pipe.connections[e.conn]
            ports[e.frame] = str(conn.ports[0] if e.direction == "c2s" else conn.ports[1])
    reader = CaptureReader(path)
    return [(i, ts, ports.get(i, "")) for i, (ts, _lt, _d, _o) in enumerate(reader, 1)]


def assert_same_frames(path: str) -> None:
    theirs, ours = tshark_frames(path), our_frames(path)
    assert len(theirs) == len(ours) > 0
    for (n1, t1, p1), (n2, t2, p2) in zip(theirs, ours):
        assert (n1, p1) == (n2, p2)
        assert t2 == pytest.approx(t1, abs=1e-6)


@pytest.fixture(scope="module")
def variants(http_pcap: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("variants")
    out = {"pcap-usec-le": http_pcap}

    def editcap(name: str, *args: str, src: str = http_pcap) -> None:
        out[name] = str(d / name)
        subprocess.run(["editcap", *args, src, out[name]], check=True, capture_output=True)

    editcap("pcap-nsec-le", "-F", "nsecpcap")
    editcap("pcapng", "-F", "pcapng")
    editcap("pcapng-nsec", "-F", "pcapng", src=out["pcap-nsec-le"])
    editcap("pcapng-comments", "-F", "pcapng", "-a", "2:first request", "-a", "5:another comment")
    out["pcap-usec-be"] = str(d / "be.pcap")
    Path(out["pcap-usec-be"]).write_bytes(pcap_to_big_endian(Path(http_pcap).read_bytes()))
    out["pcap-nsec-be"] = str(d / "be-ns.pcap")
    Path(out["pcap-nsec-be"]).write_bytes(pcap_to_big_endian(Path(out["pcap-nsec-le"]).read_bytes()))
    for name in ("pcap-usec-le", "pcapng"):
        gz = str(d / f"{name}.gz")
        with open(out[name], "rb") as src, gzip.open(gz, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out[f"{name}.gz"] = gz
    return out


def pcap_to_big_endian(data: bytes) -> bytes:
    """The same records with every header field byte-swapped (a big-endian writer's file)."""
    magic, vmaj, vmin, zone, sig, snap, lt = struct.unpack_from("<IHHiIII", data)
    out = [struct.pack(">IHHiIII", magic, vmaj, vmin, zone, sig, snap, lt)]
    pos = 24
    while pos < len(data):
        sec, frac, incl, orig = struct.unpack_from("<IIII", data, pos)
        out.append(struct.pack(">IIII", sec, frac, incl, orig) + data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
    return b"".join(out)


@pytest.mark.parametrize(
    "name",
    ["pcap-usec-le", "pcap-nsec-le", "pcap-usec-be", "pcap-nsec-be", "pcapng", "pcapng-nsec",
     "pcapng-comments", "pcap-usec-le.gz", "pcapng.gz"],
)
def test_variant_frames_agree_with_tshark(variants: dict[str, str], name: str) -> None:
    assert_same_frames(variants[name])


def test_nanosecond_timestamps_keep_their_precision(variants: dict[str, str]) -> None:
    reader = CaptureReader(variants["pcapng-nsec"])
    ts = [t for t, *_ in reader]
    theirs = [float(r[0]) for r in tshark_fields(variants["pcapng-nsec"], ["frame.time_epoch"])]
    assert ts == pytest.approx(theirs, abs=5e-7)


def test_pcapng_comments_are_read(variants: dict[str, str]) -> None:
    reader = CaptureReader(variants["pcapng-comments"])
    list(reader)
    assert reader.comments == {2: "first request", 5: "another comment"}


@pytest.fixture(scope="module")
def cooked_captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """tcpdump on the "any" device writes Linux cooked captures (v2 by default, v1 on request)."""
    d = tmp_path_factory.mktemp("cooked")
    out = {}
    with http_server() as port:
        for name, extra in (("sll2", []), ("sll", ["-y", "LINUX_SLL"])):
            path = str(d / f"{name}.pcap")
            tcpdump = ["tcpdump", *extra]
            with loopback_capture(path, f"tcp port {port}", interface="any", tcpdump=tcpdump):
                subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/x"], check=True)
            out[name] = path
    return out


@pytest.mark.parametrize("name,linktype", [("sll", 113), ("sll2", 276)])
def test_linux_cooked_captures(cooked_captures: dict[str, str], name: str, linktype: int) -> None:
    path = cooked_captures[name]
    assert next(iter(CaptureReader(path)))[1] == linktype
    assert_same_frames(path)


def test_pcapng_with_several_interfaces_and_link_types(variants: dict[str, str], cooked_captures: dict[str, str],
                                                        tmp_path: Path) -> None:
    merged = str(tmp_path / "merged.pcapng")
    subprocess.run(["mergecap", "-F", "pcapng", "-w", merged, variants["pcap-usec-le"], cooked_captures["sll2"]],
                   check=True, capture_output=True)
    linktypes = {lt for _t, lt, _d, _o in CaptureReader(merged)}
    assert linktypes == {1, 276}
    assert_same_frames(merged)


def _pcapng_block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def test_simple_packet_blocks_and_binary_tsresol(http_pcap: str, tmp_path: Path) -> None:
    """Rewrite the real records as pcapng: interface 0 with if_tsresol 2^-20 and
    EPBs, then the same packets again as simple packet blocks (no timestamps)."""
    recs = list(CaptureReader(http_pcap))
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = struct.pack("<HHB3x", 9, 1, 0x80 | 20) + struct.pack("<HH", 0, 0)
    idb = _pcapng_block(1, struct.pack("<HHI", 1, 0, 262144) + opts)
    blocks = [shb, idb]
    for ts, _lt, data, orig in recs:
        units = round(ts * (1 << 20))
        blocks.append(_pcapng_block(6, struct.pack("<IIIII", 0, units >> 32, units & 0xFFFFFFFF, len(data), orig) + data))
    for _ts, _lt, data, orig in recs:
        blocks.append(_pcapng_block(3, struct.pack("<I", orig) + data))
    path = tmp_path / "spb.pcapng"
    path.write_bytes(b"".join(blocks))
    got = list(CaptureReader(str(path)))
    assert len(got) == 2 * len(recs)
    theirs = tshark_fields(str(path), ["frame.number", "tcp.srcport"])
    assert len(theirs) == len(got)
    for (ts, _lt, data, _o), (ts2, _lt2, data2, _o2) in zip(recs, got):
        assert data2 == data and ts2 == pytest.approx(ts, abs=2e-6)
    assert [d for _t, _l, d, _o in got[len(recs):]] == [d for _t, _l, d, _o in recs]
