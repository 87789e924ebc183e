"""Bad input never crashes: clear one-line errors, exit codes, malformed events.

The damaged captures are the real http capture cut or corrupted in known
places, so what must still be decoded is known from tshark on the intact part.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from tests.support.capture import tshark_fields
from tests.support.decode import cli, collect


def assert_one_clean_error(result, code: int = 2) -> str:
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netinspect: ")
    return lines[0]


@pytest.mark.parametrize("verb", ["summary", "export"])
def test_not_a_capture(tmp_path: Path, verb: str) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not a capture\n")
    assert "not a pcap or pcapng capture" in assert_one_clean_error(cli(verb, str(p)))


@pytest.mark.parametrize("verb", ["summary", "export"])
def test_empty_missing_and_directory(tmp_path: Path, verb: str) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    assert "empty file" in assert_one_clean_error(cli(verb, str(empty)))
    assert "No such file" in assert_one_clean_error(cli(verb, str(tmp_path / "missing.pcap")))
    assert "directory" in assert_one_clean_error(cli(verb, str(tmp_path)))


def test_unreadable_keylog_is_a_usage_error(http_pcap: str, tmp_path: Path) -> None:
    assert "key log" in assert_one_clean_error(cli("summary", http_pcap, "--keylog", str(tmp_path / "nope.keys")))


def test_truncated_capture_decodes_what_is_there(http_pcap: str, tmp_path: Path) -> None:
    data = Path(http_pcap).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 37])  # in the middle of the last packet
    full = tshark_fields(http_pcap, ["frame.number"])
    r = cli("export", str(cut))
    assert r.returncode == 0
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == 1 and "cut short" in warnings[0]
    frames = {int(line.split('"frame":')[1].split(",")[0]) for line in r.stdout.splitlines()}
    assert frames == set(range(1, len(full)))  # every frame but the cut one


def test_truncated_gzip_capture(http_pcap: str, tmp_path: Path) -> None:
    packed = gzip.compress(Path(http_pcap).read_bytes())
    cut = tmp_path / "cut.pcap.gz"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    r = cli("summary", str(cut), "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert r.stderr.count("warning") == 1


def test_corrupt_record_length(http_pcap: str, tmp_path: Path) -> None:
    data = bytearray(Path(http_pcap).read_bytes())
    # third record's captured length -> absurd
    pos = 24
    for _ in range(2):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        pos += 16 + incl
    struct.pack_into("<I", data, pos + 8, 0x7FFFFFFF)
    bad = tmp_path / "corrupt.pcap"
    bad.write_bytes(bytes(data))
    r = cli("summary", str(bad))
    assert r.returncode == 0 and "corrupt" in r.stderr and "Traceback" not in r.stderr
    assert "2 frames" in r.stdout


def test_malformed_packets_become_events_and_the_rest_decodes(http_pcap: str, tmp_path: Path) -> None:
    """Break the IP header of frame 2 and the TCP header length of frame 4."""
    data = bytearray(Path(http_pcap).read_bytes())
    offsets, pos = [], 24
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        offsets.append(pos + 16)
        pos += 16 + incl
    data[offsets[1] + 14] = 0x46 & 0xF0 | 0x02  # IPv4 with IHL 2 (8 bytes): invalid
    data[offsets[3] + 14 + 20 + 12] = 0x10  # TCP data offset 1 word: invalid
    bad = tmp_path / "malformed.pcap"
    bad.write_bytes(bytes(data))
    pipe, events = collect(str(bad))
    malformed = [(e.frame, e.layer) for e in events if e.type == "malformed"]
    assert malformed == [(2, "ip"), (4, "tcp")]
    segs = {e.frame for e in events if e.type == "segment"}
    assert segs == set(range(1, len(offsets) + 1)) - {2, 4}
    assert all(e.reason for e in events if e.type == "malformed")


def test_non_ip_frames_are_counted_not_decoded(tmp_path: Path) -> None:
    from scapy.all import ARP, Ether, wrpcap  # type: ignore[import-untyped]

    p = tmp_path / "arp.pcap"
    wrpcap(str(p), [Ether() / ARP(), Ether() / ARP(op=2)])
    r = cli("summary", str(p), "--json")
    assert r.returncode == 0 and '"frames": 2' in r.stdout and '"connections": []' in r.stdout


def test_unsupported_link_type_is_noted_once(tmp_path: Path) -> None:
    from scapy.all import Raw, wrpcap  # type: ignore[import-untyped]

    p = tmp_path / "usb.pcap"
    wrpcap(str(p), [Raw(b"\x00" * 40)] * 3, linktype=189)  # LINKTYPE_USB_LINUX
    _pipe, events = collect(str(p))
    notes = [e for e in events if e.type == "note"]
    assert len(notes) == 1 and "189" in notes[0].message
