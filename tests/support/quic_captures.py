"""Capture real aioquic HTTP/3 traffic and read it back for the QUIC tests.

:func:`capture_scenario` runs a :class:`~tests.support.quic_peer.Scenario`
on a free UDP port while tcpdump captures ``udp port N`` on loopback, with
the client's key log beside the capture.  :func:`nft_drop` adds a drop rule
in the table ``netinspect_quic`` (deleted on exit).  :func:`decode_capture`
feeds the capture's UDP payloads straight to one :class:`QuicDecoder` per
flow (frames numbered from 1 in capture order); :func:`tshark_packets`
reads the same capture with tshark, packet by packet.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dpkt

from inspector.decoders.base import DecodeContext
from inspector.decoders.quic import QuicDecoder
from inspector.events import Event
from inspector.keylog import KeyLog

from .capture import TSHARK, loopback_capture, tshark_fields
from .quic_peer import Scenario, ScenarioResult, free_udp_port, run_scenario

NFT_TABLE = "netinspect_quic"

#: tshark's long packet type numbers (v1 encoding, ``quic.long.packet_type``) to our names
TSHARK_LONG_TYPES = {0: "initial", 1: "0rtt", 2: "handshake", 3: "retry"}
#: QUIC v2 encodes them differently (``quic.long.packet_type_v2``)
TSHARK_LONG_TYPES_V2 = {1: "initial", 2: "0rtt", 3: "handshake", 0: "retry"}


@dataclass
class Capture:
    pcap: str
    keylog: str
    port: int
    result: ScenarioResult
    dropped: int = 0  # packets the nft rule dropped


def capture_scenario(directory: str, name: str, scenario: Scenario, certs: tuple[str, str],
                     drop_rule: str | None = None) -> Capture:
    """Run ``scenario`` under tcpdump; ``drop_rule`` (an nft rule body with ``{port}``) adds loss."""
    port = free_udp_port()
    pcap = os.path.join(directory, f"{name}.pcap")
    keylog = os.path.join(directory, f"{name}.keys")
    dropped = 0
    with loopback_capture(pcap, f"udp port {port}"):
        if drop_rule:
            with nft_drop(drop_rule.format(port=port)) as counter:
                result = run_scenario(port, keylog, certs, scenario)
                dropped = counter()
        else:
            result = run_scenario(port, keylog, certs, scenario)
    return Capture(pcap, keylog, port, result, dropped)


@contextlib.contextmanager
def nft_drop(rule: str) -> Iterator[Callable[[], int]]:
    """An nftables output-hook rule in our own table, e.g. ``udp sport 4433 numgen inc mod 9 == 4 counter drop``.

    Yields a function that reads how many packets the rule's counter saw.
    The output hook drops before tcpdump on ``lo`` sees the packet, so the
    capture shows the receiver's view: the packet is simply missing.
    """
    script = (
        f"table inet {NFT_TABLE} {{\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f"    {rule}\n"
        "  }\n"
        "}\n"
    )
    subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True)
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True)
    def counter() -> int:
        listing = subprocess.run(["nft", "-j", "list", "table", "inet", NFT_TABLE], capture_output=True,
                                 text=True, check=True).stdout
        total = 0
        for item in json.loads(listing)["nftables"]:
            for expr in item.get("rule", {}).get("expr", []):
                if "counter" in expr:
                    total += expr["counter"]["packets"]
        return total

    try:
        yield counter
    finally:
        subprocess.run(["nft", "delete", "table", "inet", NFT_TABLE], capture_output=True)


def udp_datagrams(pcap: str) -> Iterator[tuple[int, float, tuple[int, int], bytes]]:
    """(frame number, time, (sport, dport), UDP payload) of every frame, numbered from 1."""
    with open(pcap, "rb") as f:
        for frame, (ts, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            ip = dpkt.ethernet.Ethernet(buf).data
            udp = ip.data
            yield frame, ts, (udp.sport, udp.dport), bytes(udp.data)


def decode_capture(pcap: str, keylog: str | None, server_port: int) -> tuple[list[QuicDecoder], list[Event]]:
    """One QuicDecoder per client port (each a connection), fed in capture order; events include finish()."""
    log = KeyLog.from_file(keylog) if keylog else None
    decoders: dict[int, QuicDecoder] = {}
    events: list[Event] = []
    for frame, ts, (sport, dport), payload in udp_datagrams(pcap):
        direction = 0 if dport == server_port else 1
        client_port = sport if direction == 0 else dport
        dec = decoders.get(client_port)
        if dec is None:
            ctx = DecodeContext(conn=len(decoders), client=("127.0.0.1", client_port),
                                server=("127.0.0.1", server_port), keylog=log)
            dec = decoders[client_port] = QuicDecoder(ctx)
        events.extend(dec.datagram(direction, payload, frame, ts))
    for dec in decoders.values():
        events.extend(dec.finish())
    return list(decoders.values()), events


def tshark_packets(pcap: str, keylog: str | None) -> dict[int, list[tuple[str, int | None, list[int] | None, str]]]:
    """Per frame, tshark's QUIC packets in datagram order: (type name, packet number, frame type codes, DCID hex).

    ``-T json --no-duplicate-keys`` keeps coalesced packets apart (one
    element each).  A packet tshark did not open has no frames; its packet
    number is then None too (tshark may still print one unmasked with a
    wrong key).
    tshark's QUIC heuristic finds the flow on any port (it starts with a client Initial).
    """
    cmd = [TSHARK, "-n", "-r", pcap, "-T", "json", "--no-duplicate-keys", "-J", "frame quic"]
    if keylog:
        cmd += ["-o", f"tls.keylog_file:{keylog}"]
    env = dict(os.environ, LC_ALL="C")
    frames = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout or "[]")
    out: dict[int, list[tuple[str, int | None, list[int] | None, str]]] = {}
    for item in frames:
        layers = item["_source"]["layers"]
        number = int(_first(layers["frame"]["frame.number"]))
        quic = layers.get("quic")
        if quic is None:
            continue
        packets = []
        for pkt in quic if isinstance(quic, list) else [quic]:
            if "quic.header_form" not in pkt and "quic.short" not in pkt:
                continue  # datagram padding tshark shows as its own item
            if pkt.get("quic.header_form") == "1":
                version = int(pkt["quic.version"], 16)
                if version == 0:
                    kind = "version_negotiation"
                elif version == 0x6B3343CF:
                    kind = TSHARK_LONG_TYPES_V2[int(pkt["quic.long.packet_type_v2"])]
                else:
                    kind = TSHARK_LONG_TYPES[int(pkt["quic.long.packet_type"])]
                pn = pkt.get("quic.packet_number")
                dcid = pkt.get("quic.dcid", "")
            else:
                kind = "1rtt"
                pn = pkt.get("quic.packet_number") or pkt["quic.short"].get("quic.packet_number")
                dcid = pkt["quic.short"].get("quic.dcid", "")
            dcid = dcid.replace(":", "")
            frame_list = pkt.get("quic.frame")
            if frame_list is None:
                packets.append((kind, None, None, dcid))
                continue
            if isinstance(frame_list, dict):
                frame_list = [frame_list]
            types = [int(f["quic.frame_type"]) for f in frame_list if f and "quic.frame_type" in f]
            packets.append((kind, int(pn) if pn is not None else None, types, dcid))
        out[number] = packets
    return out


def tshark_stream_frames(pcap: str, keylog: str) -> dict[int, list[tuple[int, int, int]]]:
    """Per frame, tshark's STREAM frames as (stream id, offset, length), offset 0 and the data's length
    filled in where the frame omits them."""
    cmd = [TSHARK, "-n", "-r", pcap, "-T", "json", "--no-duplicate-keys", "-J", "frame quic",
           "-o", f"tls.keylog_file:{keylog}", "-Y", "quic.stream.stream_id"]
    env = dict(os.environ, LC_ALL="C")
    out: dict[int, list[tuple[int, int, int]]] = {}
    for item in json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout or "[]"):
        layers = item["_source"]["layers"]
        number = int(_first(layers["frame"]["frame.number"]))
        quic = layers["quic"]
        for pkt in quic if isinstance(quic, list) else [quic]:
            frames = pkt.get("quic.frame") or []
            for f in frames if isinstance(frames, list) else [frames]:
                if "quic.stream.stream_id" not in f:
                    continue
                data = f.get("quic.stream_data", "")
                length = int(f.get("quic.stream.length", (len(data) + 1) // 3 if data else 0))
                out.setdefault(number, []).append(
                    (int(f["quic.stream.stream_id"]), int(f.get("quic.stream.offset", 0)), length))
    return out


def tshark_http3(pcap: str, keylog: str) -> dict[int, list[int]]:
    """Per frame, the HTTP/3 frame types tshark decoded, in order."""
    rows = tshark_fields(pcap, ["frame.number", "http3.frame_type"], options=[f"tls.keylog_file:{keylog}"],
                         display_filter="http3.frame_type")
    return {int(row[0]): _ints(row[1]) for row in rows}


def _first(value: str | list[str]) -> str:
    return value[0] if isinstance(value, list) else value


def _ints(field: str) -> list[int]:
    return [int(v, 0) for v in field.split(",") if v] if field else []
