"""Real TLS stacks for tests: a self-signed certificate, nginx, curl, openssl s_client, Python ssl.

Everything binds to 127.0.0.1 on a free port and logs secrets in the NSS key
log format (``SSLKEYLOGFILE`` for curl, ``-keylogfile`` for s_client,
``keylog_filename`` for Python), so captures made around these runs can be
decrypted by netinspect and by tshark alike.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CURL = shutil.which("curl") or "curl"
OPENSSL = shutil.which("openssl") or "openssl"


def make_certificate(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A self-signed RSA-2048 certificate for ``name`` and 127.0.0.1: (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "netinspect tests")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def wait_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1", wrap: Sequence[str] = ()) -> None:
    """Wait until ``host:port`` accepts connections (inside a namespace when ``wrap`` is ``ip netns exec NS``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wrap:
            probe = [*wrap, "bash", "-c", f"exec 3<>/dev/tcp/{host}/{port}"]
            if subprocess.run(probe, capture_output=True).returncode == 0:
                return
        else:
            with socket.socket() as s:
                if s.connect_ex((host, port)) == 0:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port}")


NGINX_CONF = """
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
    server {{
        listen {host}:{port} ssl http2;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers "ALL:@SECLEVEL=0";
        ssl_prefer_server_ciphers off;
        ssl_ecdh_curve X25519:prime256v1;
        ssl_session_cache shared:NITLS:1m;
        ssl_session_tickets on;
        ssl_early_data on;
        root {prefix}/html;
        location = / {{ return 200 "hello from nginx\\n"; }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_tls(prefix: Path, port: int, host: str = "127.0.0.1", wrap: Sequence[str] = ()) -> Iterator[Path]:
    """nginx serving TLS 1.2/1.3 with h2 and http/1.1 ALPN, tickets, a session cache and 0-RTT.

    ``/`` returns a short text; files under ``prefix/html`` are served as they are.
    """
    cert, key = make_certificate(prefix)
    (prefix / "html").mkdir(exist_ok=True)
    # deterministic, incompressible-looking content for multi-record responses
    (prefix / "html" / "big.bin").write_bytes(bytes((i * 7 + (i >> 8)) & 0xFF for i in range(200_000)))
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, cert=cert, key=key, host=host))
    proc = subprocess.Popen(
        [*wrap, NGINX, "-c", str(conf), "-p", str(prefix)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_port(port, host=host, wrap=wrap)
        yield prefix
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def curl(url: str, keylog: Path, args: Sequence[str] = (), timeout: float = 20, wrap: Sequence[str] = ()) -> bytes:
    """Run curl with SSLKEYLOGFILE set; returns the body."""
    env = dict(os.environ, SSLKEYLOGFILE=str(keylog))
    return subprocess.run(
        [*wrap, CURL, "-sSk", "--max-time", str(timeout), *args, url], env=env, capture_output=True, check=True, timeout=timeout + 5
    ).stdout


def s_client(
    port: int,
    keylog: Path,
    args: Sequence[str] = (),
    request: bytes = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    timeout: float = 20,
) -> subprocess.CompletedProcess:
    """``openssl s_client`` to 127.0.0.1:port with a key log; ``request`` goes on stdin."""
    cmd = [
        OPENSSL,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        "-servername",
        "localhost",
        "-keylogfile",
        str(keylog),
        "-ign_eof",
        *args,
    ]
    return subprocess.run(cmd, input=request, capture_output=True, timeout=timeout)
