"""Real servers and clients on loopback for the live-capture tests.

nginx (HTTP/1.1, h2c, HTTP/2 over TLS 1.3) from the HTTP tests' helper, a
``websockets`` echo server in a thread, and curl / a websockets client
making the traffic.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.capture import free_port
from tests.support.http_servers import CURL, start_nginx

BODY = b"hello from the live test\n"


@dataclass
class Servers:
    h1: int
    h2c: int
    tls: int
    ws: int

    @property
    def bpf(self) -> str:
        return " or ".join(f"tcp port {p}" for p in (self.h1, self.h2c, self.tls, self.ws))


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    from websockets.sync.server import serve

    ports = Servers(free_port(), free_port(), free_port(), free_port())
    nginx = start_nginx(str(workdir / "nginx"), ports.h1, ports.h2c, {"/live.txt": BODY}, tls_port=ports.tls)

    def echo(ws) -> None:
        for message in ws:
            ws.send(message)

    ws_server = serve(echo, "127.0.0.1", ports.ws)
    thread = threading.Thread(target=ws_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ports
    finally:
        ws_server.shutdown()
        thread.join(5)
        nginx.stop()


def curl(*args: str, keylog: Path | None = None) -> bytes:
    env = dict(os.environ)
    env.pop("SSLKEYLOGFILE", None)
    if keylog is not None:
        env["SSLKEYLOGFILE"] = str(keylog)
    return subprocess.run([CURL, "-sS", "--max-time", "10", *args], env=env, capture_output=True,
                          check=True, timeout=20).stdout


def http1(ports: Servers) -> None:
    assert curl(f"http://127.0.0.1:{ports.h1}/live.txt") == BODY


def h2c(ports: Servers) -> None:
    assert curl("--http2-prior-knowledge", f"http://127.0.0.1:{ports.h2c}/live.txt") == BODY


def tls_h2(ports: Servers, keylog: Path) -> None:
    assert curl("-k", "--http2", "--tlsv1.3", f"https://127.0.0.1:{ports.tls}/live.txt", keylog=keylog) == BODY


def websocket(ports: Servers) -> None:
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{ports.ws}/echo") as ws:
        ws.send("ping from the live test")
        assert ws.recv(timeout=5) == "ping from the live test"
