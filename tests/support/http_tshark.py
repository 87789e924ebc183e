"""tshark's view of HTTP/2 frames, and ours, per capture frame, for differential tests."""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Sequence

from inspector.events import Event, Http2Frame

from .capture import TSHARK


def tshark_json(path: str, fields: Sequence[str], *, decode_as: Sequence[str] = (), options: Sequence[str] = (),
                display_filter: str | None = None) -> list[dict[str, list[str]]]:
    """``tshark -T json -e ...`` rows (field -> list of values), robust to commas in values."""
    cmd = [TSHARK, "-n", "-r", path, "-T", "json"]
    for d in decode_as:
        cmd += ["-d", d]
    for o in options:
        cmd += ["-o", o]
    if display_filter:
        cmd += ["-Y", display_filter]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    return [row["_source"]["layers"] for row in json.loads(out or "[]")]


def tshark_h2_frames(path: str, port: int | None = None, options: Sequence[str] = (), *, as_proto: str = "http2",
                     tcp_stream: int | None = None) -> dict[int, dict[str, list]]:
    """Per capture frame: tshark's HTTP/2 (type, stream) pairs and header names/values.

    ``port`` is decoded as ``as_proto`` ("http2" for prior knowledge, "http" to
    follow an ``Upgrade: h2c``); ``tcp_stream`` keeps one connection.
    """
    decode_as = [f"tcp.port=={port},{as_proto}"] if port else []
    flt = "http2" if tcp_stream is None else f"http2 && tcp.stream == {tcp_stream}"
    rows = tshark_json(path, ["frame.number", "http2.type", "http2.streamid", "http2.header.name",
                              "http2.header.value"], decode_as=decode_as, options=options, display_filter=flt)
    out: dict[int, dict[str, list]] = {}
    for row in rows:
        frame = int(row["frame.number"][0])
        types = [int(t) for t in row.get("http2.type", [])]
        streams = [int(s) for s in row.get("http2.streamid", [])]
        out[frame] = {
            "frames": list(zip(types, streams)),
            "names": row.get("http2.header.name", []),
            "values": row.get("http2.header.value", []),
        }
    return {k: v for k, v in out.items() if v["frames"]}


_TYPE_CODES = {"DATA": 0, "HEADERS": 1, "PRIORITY": 2, "RST_STREAM": 3, "SETTINGS": 4, "PUSH_PROMISE": 5,
               "PING": 6, "GOAWAY": 7, "WINDOW_UPDATE": 8, "CONTINUATION": 9, "ALTSVC": 10, "ORIGIN": 12,
               "PRIORITY_UPDATE": 16}


def type_code(name: str) -> int:
    """Frame type number from our type name (``UNKNOWN_0xnn`` included)."""
    if name.startswith("UNKNOWN_0x"):
        return int(name[10:], 16)
    return _TYPE_CODES[name]


def our_h2_frames(events: Iterable[Event]) -> dict[int, dict[str, list]]:
    """The same view built from our Http2Frame events."""
    out: dict[int, dict[str, list]] = defaultdict(lambda: {"frames": [], "names": [], "values": []})
    for e in events:
        if isinstance(e, Http2Frame) and e.type != "PREFACE":
            row = out[e.frame]
            row["frames"].append((type_code(e.type), e.stream))
            for name, value in e.headers or ():
                row["names"].append(name)
                row["values"].append(value)
    return dict(out)
