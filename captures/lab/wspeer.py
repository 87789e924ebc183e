"""WebSocket (RFC 6455) with the ``websockets`` library: an echo server and a scripted client.

    python wspeer.py server --host IP --port 8765
    python wspeer.py client --url ws://lab.test:8765/echo --ip IP
    python wspeer.py client --url ws://lab.test:8765/burst --ip IP

The client upgrades, sends three text messages and one binary message (each echoed),
sends a ping and waits for its pong, then receives a ping the server sends (the
library answers it with a pong), and closes with code 1000.  permessage-deflate is
off on both sides so each message is one plain frame (masked client->server) and
the framing overhead is visible; automatic keepalive pings are off so the only
pings are the two above.  On ``/burst`` the server instead pushes ``BURST`` binary
messages of ``BURST_SIZE`` bytes back to back, and the client closes after the last.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

MESSAGES = ["hello lab", "a second, slightly longer text message for the framing comparison", '{"op":"sub","topic":"prices"}']
BINARY = bytes(range(64))


BURST = 8  # messages the server pushes at once on /burst
BURST_SIZE = 1200  # bytes each: one TCP segment per message


async def echo(ws) -> None:  # type: ignore[no-untyped-def]
    if ws.request.path == "/burst":
        # A burst of server->client messages written back to back, then wait for the client's close.
        for i in range(BURST):
            await ws.send(bytes([0x30 + i]) * BURST_SIZE)
        await ws.wait_closed()
        return
    n = 0
    async for msg in ws:
        await ws.send(msg)
        n += 1
        if n == len(MESSAGES) + 1:
            # Heartbeat from the server side: the client's library answers with a pong.
            await (await ws.ping(b"server-heartbeat"))


async def run_server(args: argparse.Namespace) -> None:
    async with serve(echo, args.host, args.port, compression=None, ping_interval=None, server_header="lab-ws"):
        print("ready", flush=True)
        await asyncio.Event().wait()


async def run_client(args: argparse.Namespace) -> None:
    host = args.url.split("//", 1)[1].split("/", 1)[0]
    name, port = host.rsplit(":", 1)
    sock_args = {"host": args.ip, "port": int(port)} if args.ip else {}
    async with connect(args.url, compression=None, ping_interval=None, user_agent_header="lab-ws-client", **sock_args) as ws:
        if args.url.endswith("/burst"):
            got = [await ws.recv() for _ in range(BURST)]
            assert [m[0] - 0x30 for m in got] == list(range(BURST))
            await ws.close(1000, "done")
            print("ok")
            return
        for m in MESSAGES:
            await ws.send(m)
            assert await ws.recv() == m
        await ws.send(BINARY)
        assert await ws.recv() == BINARY
        await (await ws.ping(b"client-heartbeat"))
        await asyncio.sleep(0.2)  # the server's ping arrives and is answered meanwhile
        await ws.close(1000, "done")
    print("ok")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=8765)
    c = sub.add_parser("client")
    c.add_argument("--url", required=True)
    c.add_argument("--ip", help="connect to this address instead of resolving the URL's host")
    args = p.parse_args(argv)
    asyncio.run(run_server(args) if args.cmd == "server" else run_client(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
