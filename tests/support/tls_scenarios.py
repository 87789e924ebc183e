"""Real TLS captures for the tests: each scenario runs real clients against nginx while tcpdump records.

:func:`make_captures` runs every scenario once (a session fixture calls it)
and returns, per scenario, the capture, its key log and what the client said
about the connection (curl's body, s_client's "Reused"/"Early data" lines),
so tests can check our reading against the stacks themselves and tshark.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .capture import free_port, loopback_capture
from .tls_stack import OPENSSL, curl, nginx_tls, s_client

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


@dataclass
class TlsCapture:
    name: str
    pcap: Path
    keylog: Path
    port: int
    outputs: list[bytes] = field(default_factory=list)  # client stdout per connection


def _curl(args: list[str], path: str = "/") -> Callable[[int, Path], list[bytes]]:
    def run(port: int, keylog: Path) -> list[bytes]:
        return [curl(f"https://localhost:{port}{path}", keylog, args)]

    return run


def _s_client_pair(first: list[str], second: list[str], early: bool = False) -> Callable[[int, Path], list[bytes]]:
    """Two s_client connections: the first saves its session, the second resumes it."""

    def run(port: int, keylog: Path) -> list[bytes]:
        sess = keylog.with_suffix(".sess")
        r1 = s_client(port, keylog, [*first, "-sess_out", str(sess)])
        time.sleep(0.1)
        args = [*second, "-sess_in", str(sess)]
        request = REQUEST
        if early:
            early_file = keylog.with_suffix(".early")
            early_file.write_bytes(b"GET /early HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            args += ["-early_data", str(early_file)]
            request = b""
        r2 = s_client(port, keylog, args, request=request)
        return [r1.stdout, r2.stdout]

    return run


def _hrr(port: int, keylog: Path) -> list[bytes]:
    # nginx offers X25519 and P-256 only; a client whose key share is P-521 gets a HelloRetryRequest
    return [s_client(port, keylog, ["-groups", "P-521:X25519"]).stdout]


def _no_shared_cipher(port: int, keylog: Path) -> list[bytes]:
    # nginx's OpenSSL does not enable the CCM suites: the handshake fails with a fatal alert
    return [s_client(port, keylog, ["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256"]).stdout]


def _key_update(port: int, keylog: Path) -> list[bytes]:
    """s_client's "k" (KeyUpdate) and "K" (KeyUpdate, update requested) commands between requests."""
    proc = subprocess.Popen(
        [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", "-keylogfile", str(keylog)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    time.sleep(0.4)
    keep = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for line in (keep, b"k\n", keep, b"K\n", REQUEST):
        proc.stdin.write(line)
        proc.stdin.flush()
        time.sleep(0.25)
    try:
        out, _ = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return [out]


def _python_ssl(port: int, keylog: Path) -> list[bytes]:
    """Python's ssl module (OpenSSL underneath) with keylog_filename, ALPN http/1.1."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.keylog_filename = str(keylog)
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        chunks = []
        while True:
            data = tls.recv(65536)
            if not data:
                break
            chunks.append(data)
    return [b"".join(chunks)]


SCENARIOS: dict[str, Callable[[int, Path], list[bytes]]] = {
    # TLS 1.3
    "curl13_h2_big": _curl(["--http2"], "/big.bin"),
    "curl13_h1_chacha": _curl(["--http1.1", "--tls13-ciphers", "TLS_CHACHA20_POLY1305_SHA256"]),
    "curl13_h2_aes128": _curl(["--http2", "--tls13-ciphers", "TLS_AES_128_GCM_SHA256"]),
    # TLS 1.2
    "curl12_h2_gcm": _curl(["--http2", "--tlsv1.2", "--tls-max", "1.2"], "/big.bin"),
    "curl12_h1_chacha": _curl(["--http1.1", "--tls-max", "1.2", "--ciphers", "ECDHE-RSA-CHACHA20-POLY1305"]),
    "curl12_cbc_sha256": _curl(["--http1.1", "--tls-max", "1.2", "--ciphers", "ECDHE-RSA-AES128-SHA256"]),
    "curl12_rsa_cbc_sha1": _curl(["--http1.1", "--tls-max", "1.2", "--ciphers", "AES256-SHA"], "/big.bin"),
    "curl12_rsa_gcm384": _curl(["--http2", "--tls-max", "1.2", "--ciphers", "AES256-GCM-SHA384"]),
    "s12_cbc_mac_then_encrypt": lambda port, keylog: [
        s_client(port, keylog, ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-SHA384", "-no_etm"]).stdout
    ],
    # resumption and 0-RTT
    "s13_resume_early": _s_client_pair([], [], early=True),
    "s12_resume_session_id": _s_client_pair(["-tls1_2", "-no_ticket"], ["-tls1_2", "-no_ticket"]),
    "s12_resume_ticket": _s_client_pair(["-tls1_2"], ["-tls1_2"]),
    "s13_hrr": _hrr,
    "s13_key_update": _key_update,
    "s13_alert": _no_shared_cipher,
    "python_ssl": _python_ssl,
}


def make_captures(directory: Path, names: list[str] | None = None) -> dict[str, TlsCapture]:
    """Run the scenarios against one nginx and capture each on its own."""
    port = free_port()
    prefix = directory / "nginx"
    prefix.mkdir()
    out: dict[str, TlsCapture] = {}
    with nginx_tls(prefix, port):
        for name, action in SCENARIOS.items():
            if names is not None and name not in names:
                continue
            cap = TlsCapture(name, directory / f"{name}.pcap", directory / f"{name}.keys", port)
            cap.keylog.touch()
            for _attempt in range(2):  # a capture that recorded nothing (tcpdump start race) is made again
                with loopback_capture(str(cap.pcap), f"tcp port {port}"):
                    cap.outputs = action(port, cap.keylog)
                if cap.pcap.stat().st_size > 200:
                    break
            out[name] = cap
        out["s13_early_rejected"] = _early_rejected(directory, port, out)
    return out


def _early_rejected(directory: Path, port: int, done: dict[str, TlsCapture]) -> TlsCapture:
    """0-RTT against a fresh nginx that cannot read the ticket: PSK and early data are refused."""
    sess_src = directory / "s13_resume_early.sess"
    cap = TlsCapture("s13_early_rejected", directory / "s13_early_rejected.pcap", directory / "s13_early_rejected.keys", 0)
    cap.keylog.touch()
    other = free_port()
    prefix = directory / "nginx2"
    prefix.mkdir()
    early_file = directory / "rejected.early"
    early_file.write_bytes(b"GET /early HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    with nginx_tls(prefix, other):
        cap.port = other
        with loopback_capture(str(cap.pcap), f"tcp port {other}"):
            # the early request is refused, so s_client sends the stdin request after the handshake
            r = s_client(other, cap.keylog, ["-sess_in", str(sess_src), "-early_data", str(early_file)])
        cap.outputs = [r.stdout]
    return cap
