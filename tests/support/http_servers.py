"""Real HTTP servers and clients for the HTTP tests: nginx, curl, and capture helpers.

nginx runs from a temporary prefix with its own config (``nginx -c conf -p
prefix``) on free loopback ports: one HTTP/1.1 listener and one h2c
prior-knowledge listener (nginx 1.22 spells it ``listen ... http2``; the
``http2 on;`` directive arrived in 1.25.1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CURL = shutil.which("curl") or "curl"

_CONF = """
worker_processes 1;
daemon off;
master_process off;
error_log {prefix}/error.log warn;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ text/plain txt; text/html html; application/octet-stream bin; text/event-stream sse; }}
    default_type application/octet-stream;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{h1_port};
        listen 127.0.0.1:{h2c_port} http2;
        root {prefix}/www;
        location /gz/ {{ gzip on; gzip_types text/plain; gzip_min_length 0; }}
        location /dav/ {{ dav_methods PUT DELETE; create_full_put_path on; client_max_body_size 10m; }}
    }}
{tls_server}}}
"""

_TLS_SERVER = """
    server {{
        listen 127.0.0.1:{tls_port} ssl http2;
        ssl_certificate {prefix}/cert.pem;
        ssl_certificate_key {prefix}/key.pem;
        ssl_protocols TLSv1.3;
        root {prefix}/www;
    }}
"""


@dataclass
class Nginx:
    prefix: str
    h1_port: int
    h2c_port: int
    proc: subprocess.Popen

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_nginx(prefix: str, h1_port: int, h2c_port: int, files: dict[str, bytes], tls_port: int | None = None) -> Nginx:
    """Start nginx serving ``files`` (path under the web root -> content); with ``tls_port``, also
    HTTP/2 over TLS 1.3 there (a fresh self-signed certificate for localhost)."""
    for sub in ("www", "www/dav", "body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(prefix, sub), exist_ok=True)
    for rel, content in files.items():
        path = os.path.join(prefix, "www", rel.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    tls_server = ""
    if tls_port:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout", os.path.join(prefix, "key.pem"),
                        "-out", os.path.join(prefix, "cert.pem")], check=True, capture_output=True)
        tls_server = _TLS_SERVER.format(prefix=prefix, tls_port=tls_port)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(_CONF.format(prefix=prefix, h1_port=h1_port, h2c_port=h2c_port, tls_server=tls_server))
    proc = subprocess.Popen([NGINX, "-c", conf, "-p", prefix, "-e", os.path.join(prefix, "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(h1_port)
        _wait_port(h2c_port)
        if tls_port:
            _wait_port(tls_port)
    except RuntimeError:
        proc.kill()
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"nginx did not start: {err}") from None
    return Nginx(prefix, h1_port, h2c_port, proc)


def lost_segments(pcap: str) -> int:
    """Segments tshark says the capture missed (tcpdump drops them now and then under load)."""
    out = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", "tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment"],
                         capture_output=True, text=True, check=True).stdout
    return len(out.splitlines())


@contextlib.contextmanager
def http_capture(path: str, bpf: str) -> Iterator[str]:
    """tcpdump on ``lo`` while the block runs, tuned for bursty loopback HTTP traffic.

    Without ``--immediate-mode`` and with a 32 MiB buffer: in immediate mode the
    kernel dropped about a quarter of the packets of an h2load burst here.  The
    ring's blocks are retired after at most a second, so the block waits 1.2 s
    before stopping tcpdump to keep the last packets.
    """
    proc = subprocess.Popen(["tcpdump", "-i", "lo", "-B", "32768", "-U", "-n", "-w", path, bpf],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        if "listening on" not in line:
            raise RuntimeError(f"tcpdump did not start: {line!r}")
        time.sleep(0.2)
        yield path
        time.sleep(1.2)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def capture_clean(pcap: str, bpf: str, run: Callable[[], object], attempts: int = 3) -> str:
    """Capture ``run()``'s traffic; capture again if tcpdump missed segments (not what these tests are about)."""
    for _ in range(attempts):
        with http_capture(pcap, bpf):
            run()
        if lost_segments(pcap) == 0:
            return pcap
    raise RuntimeError(f"every capture of {attempts} missed segments")


def curl(*args: str, input: bytes | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run curl quietly; raises if it fails."""
    return subprocess.run([CURL, "-s", "-S", *args], input=input, capture_output=True, timeout=timeout, check=True)
