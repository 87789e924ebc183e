"""Real WebSocket traffic for tests: the ``websockets`` library, client and server on loopback.

:func:`record_ws_capture` runs one server on a free port while tcpdump
captures it, and a series of client connections, each a scenario: plain,
permessage-deflate with and without context takeover and with window
bits, fragmented messages, pings both ways, closes with several codes by
either side, and a compression bomb.  It returns what the peers really sent
and received (keyed by the client's port), which is what the tests compare
the decoder with.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from .capture import free_port, loopback_capture
from .ws_follow import TCPDUMP_BIG_RING


@dataclass
class WsScenario:
    name: str
    client_port: int = 0
    sent: list[Any] = field(default_factory=list)  # client -> server messages (str or bytes), as received
    received: list[Any] = field(default_factory=list)  # server -> client messages, as the client got them
    client_pings: int = 0
    server_pings: int = 0
    close_by: str = ""
    close_code: int = 0
    close_reason: str = ""
    extensions: str | None = None


@dataclass
class WsCapture:
    path: str
    port: int
    scenarios: dict[str, WsScenario]


# the server's side of each scenario, by path
async def _handler(ws) -> None:
    path = ws.request.path
    async for msg in ws:
        if msg == "frag":  # a message the server sends in three fragments
            await ws.send(["alpha-", "beta-", "gamma \u00e9\u4e2d"])
        elif msg == "ping me":
            waiter = await ws.ping(b"srv-ping")
            await waiter
            await ws.send("pinged")
        elif isinstance(msg, str) and msg.startswith("close "):
            code = int(msg.split()[1])
            await ws.close(code, f"server says {code}")
            return
        elif path == "/bomb":
            await ws.send(f"got {len(msg)}")
        else:
            await ws.send(msg)  # echo


async def _scenarios(port: int) -> dict[str, WsScenario]:
    uri = f"ws://127.0.0.1:{port}"
    out: dict[str, WsScenario] = {}

    async def run(name: str, path: str, body, **kw) -> None:
        sc = WsScenario(name)
        async with connect(uri + path, ping_interval=None, max_size=None, **kw) as ws:
            sc.client_port = ws.local_address[1]
            sc.extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            await body(ws, sc)
        out[name] = sc

    async def plain(ws, sc: WsScenario) -> None:
        for msg in ["hello", b"\x00\x01\x02binary", "x" * 200, os.urandom(70_000), "caf\u00e9 \U0001f600"]:
            await ws.send(msg)
            sc.sent.append(msg)
            sc.received.append(await ws.recv())
        await ws.send(["part one, ", "part two, ", "part three"])  # fragmented client message
        sc.sent.append("part one, part two, part three")
        sc.received.append(await ws.recv())
        await ws.send("frag")
        sc.sent.append("frag")
        sc.received.append(await ws.recv())
        waiter = await ws.ping(b"cli-ping-1")
        await waiter
        sc.client_pings += 1
        await ws.send("ping me")
        sc.sent.append("ping me")
        sc.received.append(await ws.recv())
        sc.server_pings += 1
        await ws.close(1000, "done")
        sc.close_by, sc.close_code, sc.close_reason = "client", 1000, "done"

    async def chatty(ws, sc: WsScenario) -> None:
        for i in range(12):
            msg = f'{{"seq": {i}, "event": "price-update", "symbol": "EXMPL", "price": {100 + i}.25}}'
            await ws.send(msg)
            sc.sent.append(msg)
            sc.received.append(await ws.recv())
        big = ("lorem ipsum dolor sit amet " * 3000).encode()
        await ws.send(big)
        sc.sent.append(big)
        sc.received.append(await ws.recv())
        await ws.send("frag")
        sc.sent.append("frag")
        sc.received.append(await ws.recv())
        await ws.send("close 4000")
        sc.sent.append("close 4000")
        try:
            await ws.recv()
        except Exception:
            pass
        sc.close_by, sc.close_code, sc.close_reason = "server", 4000, "server says 4000"

    async def going_away(ws, sc: WsScenario) -> None:
        await chatty_short(ws, sc)
        await ws.close(1001, "going away")
        sc.close_by, sc.close_code, sc.close_reason = "client", 1001, "going away"

    async def chatty_short(ws, sc: WsScenario) -> None:
        for i in range(6):
            msg = f"update number {i}: " + "abcdefgh" * 20
            await ws.send(msg)
            sc.sent.append(msg)
            sc.received.append(await ws.recv())

    async def app_close(ws, sc: WsScenario) -> None:
        await chatty_short(ws, sc)
        await ws.send("close 3001")
        sc.sent.append("close 3001")
        try:
            await ws.recv()
        except Exception:
            pass
        sc.close_by, sc.close_code, sc.close_reason = "server", 3001, "server says 3001"

    async def bomb(ws, sc: WsScenario) -> None:
        payload = bytes(8 << 20)  # 8 MiB of zeros: about 8 KiB once deflated
        await ws.send(payload)
        sc.sent.append(payload)
        sc.received.append(await ws.recv())
        await ws.send("after the bomb")
        sc.sent.append("after the bomb")
        sc.received.append(await ws.recv())
        await ws.close(1000)
        sc.close_by, sc.close_code, sc.close_reason = "client", 1000, ""

    await run("plain", "/plain", plain, compression=None)
    await run("deflate", "/deflate", chatty)  # library default: context takeover, window bits negotiated
    await run("no_takeover", "/nt", going_away, compression=None, extensions=[ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True,
        server_max_window_bits=10, client_max_window_bits=10)])
    await run("window9", "/w9", app_close, compression=None, extensions=[ClientPerMessageDeflateFactory(
        server_max_window_bits=9, client_max_window_bits=9)])
    await run("bomb", "/bomb", bomb)
    return out


def record_ws_capture(path: str) -> WsCapture:
    """Run every scenario against one server while tcpdump records it into ``path``."""
    port = free_port()

    async def main() -> dict[str, WsScenario]:
        async with serve(_handler, "127.0.0.1", port, ping_interval=None, max_size=None):
            return await _scenarios(port)

    with loopback_capture(path, f"tcp port {port}", tcpdump=TCPDUMP_BIG_RING):
        scenarios = asyncio.run(main())
    return WsCapture(path, port, scenarios)


def make_cert(directory: str) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem) made with cryptography."""
    import datetime
    import ipaddress
    import os.path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class WssCapture:
    path: str
    keylog: str
    port: int
    sent: list[Any]
    received: list[Any]
    version: str


def record_wss_capture(path: str, keylog: str, workdir: str, tls_version: str = "1.3") -> WssCapture:
    """wss:// with Python ssl on both ends; the client writes its secrets to ``keylog``."""
    import ssl

    cert, key = make_cert(workdir)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cert)
    client_ctx.keylog_filename = keylog
    if tls_version == "1.2":
        client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    port = free_port()
    sent: list[Any] = []
    received: list[Any] = []

    async def main() -> str:
        async with serve(_handler, "127.0.0.1", port, ssl=server_ctx, ping_interval=None, max_size=None):
            async with connect(f"wss://127.0.0.1:{port}/tls", ssl=client_ctx, ping_interval=None) as ws:
                for msg in ["secret hello", os.urandom(3000), "frag"]:
                    await ws.send(msg)
                    sent.append(msg)
                    received.append(await ws.recv())
                await ws.close(1000, "bye")
                return ws.transport.get_extra_info("ssl_object").version()

    with loopback_capture(path, f"tcp port {port}", tcpdump=TCPDUMP_BIG_RING):
        version = asyncio.run(main())
    return WssCapture(path, keylog, port, sent, received, version)
