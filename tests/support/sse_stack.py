"""Real Server-Sent Events traffic: hypercorn serving an event stream, curl reconnecting with Last-Event-ID.

The ASGI app streams events in separate writes (so they arrive at different
times), in every line-ending style the standard allows, with comments,
multi-line data, named events, a ``retry`` field and ids; it ends the
response after a few events, and a request carrying ``Last-Event-ID``
resumes after that id.  curl is the client, over HTTP/1.1 (chunked) and
HTTP/2 (prior knowledge); like an EventSource, the test reconnects with the
last id curl saw.  What the server wrote is returned for the comparison.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, field


from .capture import loopback_capture
from .hypercorn_server import hypercorn_server
from .ws_follow import TCPDUMP_BIG_RING

#: the stream: (id, event, data lines, line end); ids are 1..N
EVENTS = [
    ("1", None, ["first"], b"\n"),
    ("2", "price", ["line one", "line two"], b"\r\n"),
    ("3", None, ["caf\u00e9 \u2615"], b"\r"),
    ("4", "price", ["", "after an empty line"], b"\n"),
    ("5", None, ["fifth"], b"\r\n"),
    ("6", "bye", ["sixth"], b"\n"),
]
PER_RESPONSE = 3  # events per response before the server ends it


def _encode(eid: str, event: str | None, lines: list[str], eol: bytes) -> bytes:
    out = b": keep-alive comment" + eol
    if event:
        out += b"event: " + event.encode() + eol
    for line in lines:
        out += b"data: " + line.encode() + eol
    return out + b"id: " + eid.encode() + eol + eol


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    last = headers.get(b"last-event-id")
    start = int(last) if last else 0
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    if not last:
        await send({"type": "http.response.body", "body": b"retry: 250\n\n", "more_body": True})
    for eid, event, lines, eol in EVENTS[start:start + PER_RESPONSE]:
        await asyncio.sleep(0.02)
        await send({"type": "http.response.body", "body": _encode(eid, event, lines, eol), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class SseRun:
    version: str  # "1.1" or "2"
    outputs: list[str] = field(default_factory=list)  # curl's body output per connection
    last_ids: list[str | None] = field(default_factory=list)  # Last-Event-ID sent on each connection


@dataclass
class SseCapture:
    path: str
    port: int
    runs: list[SseRun]


def _curl(url: str, version: str, last_id: str | None) -> str:
    cmd = ["curl", "-sSN", "--max-time", "10", "--http1.1" if version == "1.1" else "--http2-prior-knowledge", url]
    if last_id is not None:
        cmd += ["-H", f"Last-Event-ID: {last_id}"]
    return subprocess.run(cmd, capture_output=True, timeout=20, check=True).stdout.decode()


def _last_id(body: str) -> str | None:
    ids = [line[4:] for line in body.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.startswith("id: ")]
    return ids[-1] if ids else None


def record_sse_capture(path: str) -> SseCapture:
    runs = []
    with hypercorn_server(app) as port:
        with loopback_capture(path, f"tcp port {port}", tcpdump=TCPDUMP_BIG_RING):
            for version in ("1.1", "2"):
                run_ = SseRun(version)
                last = None
                for _ in range(2):  # the first stream, then the reconnection that resumes it
                    run_.last_ids.append(last)
                    body = _curl(f"http://127.0.0.1:{port}/events", version, last)
                    run_.outputs.append(body)
                    last = _last_id(body)
                runs.append(run_)
    return SseCapture(path, port, runs)
