"""One push feed delivered four ways: short polling, long polling, Server-Sent Events, WebSocket.

    python feedpeer.py server --host IP [--http-port 8080] [--ws-port 8081]
    python feedpeer.py client --ip IP --host lab.test [--http-port 8080] [--ws-port 8081]

Each way is a session of the same feed: ``UPDATES`` updates, one every ``INTERVAL``
seconds from the session's first request.  An update is a small JSON object
``{"seq": n, "t": <publish time, epoch seconds>, "price": ...}``; client and server
share the machine's clock, so arrival time in a capture minus ``t`` is the update's
delivery latency.

- short polling: ``GET /poll?since=N`` every ``POLL_EVERY`` s on one kept-alive
  connection; the answer is the JSON list of newer updates (often ``[]``).
- long polling: ``GET /longpoll?since=N``; the server holds the request until a newer
  update exists; the client asks again at once.
- SSE: ``GET /sse``; a ``text/event-stream`` response (chunked) with one event per
  update (``id``, ``event: price``, ``data``), ended after the last one.
- WebSocket: ``ws://HOST:8081/feed``; one text message per update, then close 1000.

The HTTP server is a minimal HTTP/1.1 server on asyncio streams (keep-alive,
Content-Length or chunked), the WebSocket side is the ``websockets`` library.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

UPDATES = 4
INTERVAL = 0.25
POLL_EVERY = 0.2


class Feed:
    """A session of the feed: update n is published INTERVAL*n seconds after the start."""

    def __init__(self) -> None:
        self.start = time.time()
        self.items: list[dict] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for n in range(1, UPDATES + 1):
            await asyncio.sleep(max(0.0, self.start + n * INTERVAL - time.time()))
            self.items.append({"seq": n, "t": round(time.time(), 6), "price": 100 + 7 * n})
            self.changed.set()
            self.changed = asyncio.Event()

    def since(self, n: int) -> list[dict]:
        return [u for u in self.items if u["seq"] > n]

    async def wait_after(self, n: int) -> list[dict]:
        while not self.since(n) and len(self.items) < UPDATES:
            await self.changed.wait()
        return self.since(n)


class FeedServer:
    def __init__(self) -> None:
        self.sessions: dict[str, Feed] = {}

    def session(self, kind: str, since: int) -> Feed:
        """The kind's running session; ``since=0`` after a finished one starts a new one."""
        if since == 0 and (kind not in self.sessions or len(self.sessions[kind].items) == UPDATES):
            self.sessions[kind] = Feed()
        return self.sessions[kind]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                url = urlsplit(target)
                since = int(parse_qs(url.query).get("since", ["0"])[0])
                if url.path == "/poll":
                    await self._json(writer, self.session("poll", since).since(since))
                elif url.path == "/longpoll":
                    await self._json(writer, await self.session("longpoll", since).wait_after(since))
                elif url.path == "/sse":
                    await self._sse(writer)
                    break
                else:
                    await self._send(writer, b"404 Not Found", b"text/plain", b"not found\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, status: bytes, ctype: bytes, body: bytes) -> None:
        writer.write(b"HTTP/1.1 " + status + b"\r\nServer: lab-feed\r\nContent-Type: " + ctype +
                     b"\r\nCache-Control: no-store\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()

    async def _json(self, writer: asyncio.StreamWriter, items: list[dict]) -> None:
        await self._send(writer, b"200 OK", b"application/json", json.dumps(items, separators=(",", ":")).encode())

    async def _sse(self, writer: asyncio.StreamWriter) -> None:
        feed = Feed()
        writer.write(b"HTTP/1.1 200 OK\r\nServer: lab-feed\r\nContent-Type: text/event-stream\r\n"
                     b"Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n")

        def chunk(data: bytes) -> bytes:
            return b"%x\r\n%s\r\n" % (len(data), data)

        writer.write(chunk(b"retry: 1000\n\n"))
        await writer.drain()
        sent = 0
        while sent < UPDATES:
            for u in await feed.wait_after(sent):
                data = json.dumps(u, separators=(",", ":"))
                writer.write(chunk(f"id: {u['seq']}\nevent: price\ndata: {data}\n\n".encode()))
                sent = u["seq"]
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def ws_feed(ws) -> None:  # type: ignore[no-untyped-def]
    feed = Feed()
    sent = 0
    while sent < UPDATES:
        for u in await feed.wait_after(sent):
            await ws.send(json.dumps(u, separators=(",", ":")))
            sent = u["seq"]
    await ws.close(1000, "feed done")


async def run_server(args: argparse.Namespace) -> None:
    from websockets.asyncio.server import serve as ws_serve

    fs = FeedServer()
    server = await asyncio.start_server(fs.handle, args.host, args.http_port)
    async with server, ws_serve(ws_feed, args.host, args.ws_port, compression=None, ping_interval=None, server_header="lab-feed"):
        print("ready", flush=True)
        await asyncio.Event().wait()


def _get(conn: http.client.HTTPConnection, host: str, path: str) -> list[dict]:
    conn.request("GET", path, headers={"Host": host, "Accept": "application/json"})
    return json.loads(conn.getresponse().read())


def client(args: argparse.Namespace) -> None:
    host = f"{args.host}:{args.http_port}"
    # Short polling: a fixed period, whether or not there is news (one kept-alive connection).
    conn = http.client.HTTPConnection(args.ip, args.http_port)
    last = 0
    while last < UPDATES:
        for u in _get(conn, host, f"/poll?since={last}"):
            last = u["seq"]
        if last < UPDATES:
            time.sleep(POLL_EVERY)
    conn.close()
    time.sleep(0.3)
    # Long polling: ask again as soon as an answer arrives.
    conn = http.client.HTTPConnection(args.ip, args.http_port)
    last = 0
    while last < UPDATES:
        for u in _get(conn, host, f"/longpoll?since={last}"):
            last = u["seq"]
    conn.close()
    time.sleep(0.3)
    # Server-Sent Events: one response, one event per update.
    conn = http.client.HTTPConnection(args.ip, args.http_port)
    conn.request("GET", "/sse", headers={"Host": host, "Accept": "text/event-stream"})
    resp = conn.getresponse()
    events = resp.read().decode().count("event: price")
    assert events == UPDATES, events
    conn.close()
    time.sleep(0.3)
    asyncio.run(_ws_client(args))
    print("ok")


async def _ws_client(args: argparse.Namespace) -> None:
    from websockets.asyncio.client import connect

    got = 0
    async with connect(f"ws://{args.host}:{args.ws_port}/feed", host=args.ip, port=args.ws_port, compression=None,
                       ping_interval=None, user_agent_header="lab-feed-client") as ws:
        async for _ in ws:
            got += 1
    assert got == UPDATES, got


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("server", "client"):
        s = sub.add_parser(name)
        s.add_argument("--http-port", type=int, default=8080)
        s.add_argument("--ws-port", type=int, default=8081)
        if name == "server":
            s.add_argument("--host", required=True)
        else:
            s.add_argument("--ip", required=True)
            s.add_argument("--host", required=True)
    args = p.parse_args(argv)
    if args.cmd == "server":
        asyncio.run(run_server(args))
    else:
        client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
