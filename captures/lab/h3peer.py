"""HTTP/3 over QUIC with aioquic: a static file server and a parallel GET client for the lab.

    python h3peer.py server --host IP --port 443 --root DIR --cert C --key K
    python h3peer.py client --host IP --port 443 --server-name lab.test --ca CA \
        --keylog F PATH [PATH ...]

The server answers GET with the file under ``--root`` (the same bytes nginx serves
in the HTTP/2 scenarios).  The client opens one connection, sends every request at
once (one bidirectional stream each), waits for all responses, then closes the
connection with CONNECTION_CLOSE.  QUIC secrets go to ``--keylog`` in the NSS
key log format (aioquic's ``secrets_log_file``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

EXTRA_HEADERS = [(b"x-lab-client", b"netinspect-lab"), (b"accept-language", b"en")]


class H3Server(QuicConnectionProtocol):
    root: Path = Path(".")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic)
        if self._h3 is None:
            return
        for ev in self._h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                self._answer(ev)

    def _answer(self, ev: HeadersReceived) -> None:
        assert self._h3 is not None
        headers = dict(ev.headers)
        path = headers.get(b":path", b"/").decode()
        target = (self.root / path.lstrip("/")).resolve()
        if self.root.resolve() in target.parents and target.is_file():
            status, data, ctype = b"200", target.read_bytes(), b"application/octet-stream"
        else:
            status, data, ctype = b"404", b"not found\n", b"text/plain"
        self._h3.send_headers(ev.stream_id, [(b":status", status), (b"server", b"aioquic"),
                                             (b"content-type", ctype), (b"content-length", str(len(data)).encode())])
        self._h3.send_data(ev.stream_id, data, end_stream=True)
        self.transmit()


class H3Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._h3 = H3Connection(self._quic)
        self._pending: dict[int, tuple[asyncio.Future, list[H3Event]]] = {}

    async def get(self, authority: str, path: str) -> list[H3Event]:
        stream_id = self._quic.get_next_available_stream_id()
        self._h3.send_headers(stream_id, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
                                          (b":path", path.encode()), (b"user-agent", b"aioquic-lab-client"), *EXTRA_HEADERS],
                              end_stream=True)
        fut = asyncio.get_running_loop().create_future()
        self._pending[stream_id] = (fut, [])
        self.transmit()
        return await fut

    def quic_event_received(self, event: QuicEvent) -> None:
        for ev in self._h3.handle_event(event):
            if isinstance(ev, (HeadersReceived, DataReceived)) and ev.stream_id in self._pending:
                fut, events = self._pending[ev.stream_id]
                events.append(ev)
                if ev.stream_ended and not fut.done():
                    fut.set_result(events)


async def run_server(args: argparse.Namespace) -> None:
    cfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN)
    cfg.load_cert_chain(args.cert, args.key)
    H3Server.root = Path(args.root)
    await serve(args.host, args.port, configuration=cfg, create_protocol=H3Server)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def run_client(args: argparse.Namespace) -> None:
    cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=args.server_name)
    cfg.load_verify_locations(args.ca)
    keylog = open(args.keylog, "a") if args.keylog else None
    cfg.secrets_log_file = keylog
    try:
        async with connect(args.host, args.port, configuration=cfg, create_protocol=H3Client) as client:
            assert isinstance(client, H3Client)
            results = await asyncio.gather(*(client.get(args.server_name, p) for p in args.paths))
            for path, events in zip(args.paths, results):
                size = sum(len(e.data) for e in events if isinstance(e, DataReceived))
                print(f"{path} {size}")
    finally:
        if keylog:
            keylog.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=443)
    s.add_argument("--root", required=True)
    s.add_argument("--cert", required=True)
    s.add_argument("--key", required=True)
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, default=443)
    c.add_argument("--server-name", required=True)
    c.add_argument("--ca", required=True)
    c.add_argument("--keylog")
    c.add_argument("paths", nargs="+")
    args = p.parse_args(argv)
    asyncio.run(run_server(args) if args.cmd == "server" else run_client(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
