"""Hostile input: real captures cut at every offset of their last packets and
with random bytes flipped still decode to the end without an exception.

Decoder errors become ``malformed`` events at the pipeline's boundary; the
reader and the packet layers must never raise at all.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from inspector.keylog import KeyLog
from inspector.output.summary import connection_summary, summaries
from inspector.pipeline import decode_file
from inspector.retirement import Retirement

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"
CAPTURES = ["http2-lossy", "http3-lossy", "websocket", "dns-then-connect", "tls13-resumption-0rtt", "grpc"]


def decode_everything(path: str, keys: Path) -> int:
    events: list = []
    keylog = KeyLog.from_file(str(keys)) if keys.exists() else None
    pipe, reader = decode_file(path, keylog=keylog, on_event=events.append, segments=True)
    summaries(pipe.connections, pipe.registry)
    for e in events:
        e.to_dict()
    return pipe.frame


def summarise_retiring(path: str, keys: Path) -> int:
    """``summary --json`` as the CLI makes it, retiring every connection the moment it closes (quiet
    time 0, no closed connection kept), then reading every record back."""
    keylog = KeyLog.from_file(str(keys)) if keys.exists() else None
    retirement = Retirement(quiet=0.0, max_closed=0, sweep_every=1, flow_quiet=0.0)
    pipe, _ = decode_file(path, keylog=keylog, retirement=retirement)
    for cid, conn in enumerate(pipe.connections):
        json.loads(retirement.record(cid)) if conn is None else connection_summary(conn, pipe.registry)
    retirement.close()
    return retirement.stats["retired"]


@pytest.mark.parametrize("name", CAPTURES)
def test_random_byte_flips(name: str, tmp_path: Path) -> None:
    data = (SAMPLES / f"{name}.pcap").read_bytes()
    rng = random.Random(name)
    retired = 0
    for trial in range(12):
        buf = bytearray(data)
        for _ in range(rng.choice((1, 8, 64))):
            pos = rng.randrange(24, len(buf))
            buf[pos] = rng.randrange(256)
        p = tmp_path / f"flip{trial}.pcap"
        p.write_bytes(bytes(buf))
        decode_everything(str(p), SAMPLES / f"{name}.keys")
        retired += summarise_retiring(str(p), SAMPLES / f"{name}.keys")
    # the damaged captures' connections went through retirement too, where one closes before the end
    # (in these two the only TCP connection closes with the capture's last packets)
    assert retired or name in ("http2-lossy", "websocket")


@pytest.mark.parametrize("name", ["http2-multiplex", "websocket"])
def test_cut_at_every_offset_of_the_last_packets(name: str, tmp_path: Path) -> None:
    data = (SAMPLES / f"{name}.pcap").read_bytes()
    full = decode_everything(str(SAMPLES / f"{name}.pcap"), SAMPLES / f"{name}.keys")
    p = tmp_path / "cut.pcap"
    for cut in range(len(data) - 1, len(data) - 400, -3):
        p.write_bytes(data[:cut])
        assert decode_everything(str(p), SAMPLES / f"{name}.keys") <= full


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inspector.pipeline import Pipeline  # noqa: E402

_ETH_V4 = bytes(12) + b"\x08\x00"
_ETH_V6 = bytes(12) + b"\x86\xdd"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from([0, 1, 101, 113, 276, 999]),
                          st.sampled_from([b"", _ETH_V4 + b"\x45", _ETH_V6 + b"\x60", b"\x45", b"\x60"]),
                          st.binary(max_size=200)), max_size=30))
def test_random_frames_never_raise(frames: list[tuple[int, bytes, bytes]]) -> None:
    events: list = []
    pipe = Pipeline(on_event=events.append, segments=True)
    for i, (linktype, prefix, body) in enumerate(frames):
        pipe.feed(1.0 + i / 1000, linktype, prefix + body)
    pipe.finish()
    summaries(pipe.connections, pipe.registry)
    assert pipe.frame == len(frames)
