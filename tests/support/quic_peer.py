"""Real HTTP/3 traffic for the QUIC tests: aioquic's client and server on 127.0.0.1.

:func:`run_scenario` starts an aioquic HTTP/3 server (self-signed
certificate, optional Retry, session tickets for resumption) and drives an
aioquic HTTP/3 client against it in one event loop.  The client logs its
TLS secrets (``secrets_log_file``) so captures can be decrypted; every
request and response header block the peers actually sent is recorded in
the returned :class:`ScenarioResult`, which is what decoded QPACK headers are
checked against.

Responses: ``GET /bytes/N`` answers N bytes; the first request of a
connection with ``push`` set also gets a server push (PUSH_PROMISE).
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, PushPromiseReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StopSendingReceived
from aioquic.tls import SessionTicket
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Headers = list[tuple[bytes, bytes]]


def make_certificate(directory: str, extra_names: int = 0) -> tuple[str, str]:
    """A self-signed EC certificate for ``localhost`` / 127.0.0.1; returns (cert path, key path).

    ``extra_names`` more DNS names make the certificate (and so the server's
    handshake flight) larger, so its CRYPTO data spans several packets.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                *(x509.DNSName(f"name-{n:03d}.netinspect.test") for n in range(extra_names)),
            ]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return cert_path, key_path


@dataclass
class Exchange:
    """One request as the client sent it and the response as the server sent it."""

    stream_id: int
    request: Headers
    response: Headers | None = None
    body: int = 0  # response body bytes the client received
    pushed: list[tuple[int, Headers]] = field(default_factory=list)


@dataclass
class ScenarioResult:
    """What the peers did, for the tests to compare decoded traffic against."""

    connections: list[list[Exchange]] = field(default_factory=list)  # per client connection
    server_sent: dict[int, Headers] = field(default_factory=dict)  # headers the server sent, by stream id
    promised: dict[int, Headers] = field(default_factory=dict)  # PUSH_PROMISE headers by push id
    key_updates: int = 0
    zero_rtt_requested: bool = False
    cid_changes: int = 0
    cancelled: list[Exchange] = field(default_factory=list)


class _ServerProtocol(QuicConnectionProtocol):
    result: ScenarioResult
    push: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = H3Connection(self._quic)
        self._pushed = False

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StopSendingReceived):
            # the client gave up on a response: abandon the rest of it (RESET_STREAM)
            self._quic.reset_stream(event.stream_id, event.error_code)
            self.transmit()
        for h3_event in self._http.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                self._respond(h3_event)

    def _respond(self, event: HeadersReceived) -> None:
        fields = dict(event.headers)
        path = fields.get(b":path", b"/").decode()
        size = int(path.rsplit("/", 1)[1]) if path.startswith("/bytes/") else 11
        sid = event.stream_id
        if self.push and not self._pushed:
            self._pushed = True
            promise = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                       (b":path", b"/pushed.css")]
            push_sid = self._http.send_push_promise(stream_id=sid, headers=promise)
            self.result.promised[len(self.result.promised)] = promise
            pushed_headers = [(b":status", b"200"), (b"content-type", b"text/css")]
            self._http.send_headers(stream_id=push_sid, headers=pushed_headers)
            self._http.send_data(stream_id=push_sid, data=b"body{}", end_stream=True)
            self.result.server_sent[push_sid] = pushed_headers
        headers = [
            (b":status", b"200"),
            (b"server", b"aioquic-test"),
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(size).encode()),
            (b"x-request-path", path.encode()),
        ]
        self._http.send_headers(stream_id=sid, headers=headers)
        self._http.send_data(stream_id=sid, data=bytes(i % 251 for i in range(size)), end_stream=True)
        self.result.server_sent[sid] = headers
        self.transmit()


class _ClientProtocol(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self.exchanges: dict[int, Exchange] = {}

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.http.handle_event(event):
            self._h3(h3_event)

    def _h3(self, event: H3Event) -> None:
        if isinstance(event, PushPromiseReceived):
            ex = self.exchanges.get(event.stream_id)
            if ex is not None:
                ex.pushed.append((event.push_id, event.headers))
            return
        sid = getattr(event, "stream_id", None)
        ex = self.exchanges.get(sid)
        if ex is None or getattr(event, "push_id", None) is not None:
            return
        if isinstance(event, HeadersReceived):
            ex.response = event.headers
        elif isinstance(event, DataReceived):
            ex.body += len(event.data)
        if getattr(event, "stream_ended", False):
            waiter = self._waiters.pop(sid, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def cancel(self, authority: str, path: str, error: int = 0x10C) -> Exchange:
        """Ask for ``path``, and once the response headers are in, ask the server to stop (STOP_SENDING)."""
        sid = self._quic.get_next_available_stream_id()
        headers = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", authority.encode()),
                   (b":path", path.encode()), (b"user-agent", b"netinspect-test/1.0")]
        ex = self.exchanges[sid] = Exchange(sid, headers)
        self.http.send_headers(stream_id=sid, headers=headers, end_stream=True)
        self.transmit()
        for _ in range(500):
            if ex.response is not None:
                break
            await asyncio.sleep(0.002)
        self._quic.stop_stream(sid, error)
        self.transmit()
        await asyncio.sleep(0.1)
        return ex

    async def get(self, authority: str, path: str, extra: Headers = ()) -> Exchange:
        sid = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            (b"user-agent", b"netinspect-test/1.0"),
            *extra,
        ]
        ex = self.exchanges[sid] = Exchange(sid, headers)
        waiter = self._waiters[sid] = asyncio.get_running_loop().create_future()
        self.http.send_headers(stream_id=sid, headers=headers, end_stream=True)
        self.transmit()
        await asyncio.wait_for(waiter, 20)
        return ex


@dataclass
class Scenario:
    """What to run: requests per connection and the features to exercise."""

    paths: list[list[str]]  # per connection, requests sent concurrently
    retry: bool = False
    resume_zero_rtt: bool = False  # connections after the first resume with a ticket and send 0-RTT
    key_update_after: int | None = None  # request a key update after this many requests (then send the rest)
    push: bool = False
    version: int | None = None  # QUIC version the client starts with
    server_versions: list[int] | None = None  # versions the server accepts (default: aioquic's)
    extra_headers: Headers = ()
    reject_zero_rtt: bool = False  # the server forgets its tickets: resumed 0-RTT is refused
    change_cid: bool = False  # the client moves to a new connection ID after the first requests
    datagram: bytes | None = None  # a QUIC DATAGRAM frame (RFC 9221) the client sends once connected
    cancel: str | None = None  # a path the client requests and then cancels (STOP_SENDING -> RESET_STREAM)
    between: Callable[[int], None] | None = None  # called between connections (e.g. to change nft rules)


async def _run(port: int, keylog: str, certs: tuple[str, str], scenario: Scenario) -> ScenarioResult:
    result = ScenarioResult()
    server_config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    forget = scenario.reject_zero_rtt
    server_config.load_cert_chain(*certs)
    if scenario.server_versions is not None:
        server_config.supported_versions = list(scenario.server_versions)
    tickets: dict[bytes, SessionTicket] = {}

    def factory(*args: Any, **kwargs: Any) -> _ServerProtocol:
        proto = _ServerProtocol(*args, **kwargs)
        proto.result = result
        proto.push = scenario.push
        return proto

    server = await serve(
        "127.0.0.1",
        port,
        configuration=server_config,
        create_protocol=factory,
        retry=scenario.retry,
        session_ticket_fetcher=(lambda t: None) if forget else tickets.pop if scenario.resume_zero_rtt else None,
        session_ticket_handler=(lambda t: tickets.__setitem__(t.ticket, t)) if scenario.resume_zero_rtt else None,
    )
    client_tickets: list[SessionTicket] = []
    try:
        with open(keylog, "a") as secrets:
            for n, paths in enumerate(scenario.paths):
                if scenario.between is not None:
                    scenario.between(n)
                config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, secrets_log_file=secrets,
                                           server_name="localhost", verify_mode=0,
                                           max_datagram_frame_size=65536 if scenario.datagram else None)
                if scenario.version is not None:
                    config.original_version = scenario.version
                resume = scenario.resume_zero_rtt and n > 0 and client_tickets
                if resume:
                    config.session_ticket = client_tickets[-1]
                async with connect(
                    "127.0.0.1", port, configuration=config, create_protocol=_ClientProtocol,
                    session_ticket_handler=client_tickets.append, wait_connected=not resume,
                ) as client:
                    assert isinstance(client, _ClientProtocol)
                    if resume:
                        result.zero_rtt_requested = True
                    if scenario.datagram is not None:
                        if not resume:
                            await client.wait_connected()  # already connected: returns at once
                        client._quic.send_datagram_frame(scenario.datagram)
                        client.transmit()
                    split = scenario.key_update_after if scenario.key_update_after is not None else len(paths)
                    first = await asyncio.gather(*(client.get("localhost", p, scenario.extra_headers)
                                                   for p in paths[:split]))
                    rest: list[Exchange] = []
                    if scenario.change_cid:
                        client.change_connection_id()
                        result.cid_changes += 1
                    if scenario.cancel is not None:
                        result.cancelled.append(await client.cancel("localhost", scenario.cancel))
                    if split < len(paths):
                        client.request_key_update()
                        result.key_updates += 1
                        rest = list(await asyncio.gather(*(client.get("localhost", p, scenario.extra_headers)
                                                           for p in paths[split:])))
                    result.connections.append([*first, *rest])
                    if scenario.resume_zero_rtt and n == 0:
                        # wait for the NewSessionTicket before closing
                        for _ in range(100):
                            if client_tickets:
                                break
                            await asyncio.sleep(0.01)
                    client.close()
                    await client.wait_closed()
                await asyncio.sleep(0.05)
    finally:
        server.close()
    return result


def run_scenario(port: int, keylog: str, certs: tuple[str, str], scenario: Scenario) -> ScenarioResult:
    """Run ``scenario`` against a fresh server on ``127.0.0.1:port`` (blocking)."""
    return asyncio.run(_run(port, keylog, certs, scenario))


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
