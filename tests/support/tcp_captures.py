"""Real TCP captures for the foundation tests, made on loopback while tests run.

* ``http_capture``: curl against Python's threaded HTTP server: keep-alive
  requests, a request per connection, a POST body, normal FIN teardown.
* ``lossy_capture``: a bulk transfer in both directions through the kernel's
  TCP with a small MSS while an nftables rule drops a share of segments,
  either before the capture point (``hook="output"``: the capture looks like
  the receiver's, originals missing) or after it (``hook="input"``: the
  capture sees originals and their retransmissions, like the sender's).
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from collections.abc import Iterator

from .capture import TCPDUMP, free_port, loopback_capture

NFT = "nft"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = (b"hello from netinspect tests\n" * (1 + len(self.path))) [:4000]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length", "0"))
        data = self.rfile.read(n)
        body = f"got {len(data)} bytes\n".encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server() -> Iterator[int]:
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield port
    finally:
        srv.shutdown()
        srv.server_close()


def http_capture(path: str) -> str:
    """curl: two keep-alive GETs on one connection, a GET and a POST on their own."""
    with http_server() as port:
        url = f"http://127.0.0.1:{port}"
        with loopback_capture(path, f"tcp port {port}"):
            subprocess.run(["curl", "-s", "-o", "/dev/null", "-o", "/dev/null", f"{url}/a", f"{url}/bb"], check=True)
            subprocess.run(["curl", "-s", "-o", "/dev/null", f"{url}/c"], check=True)
            subprocess.run(["curl", "-s", "-o", "/dev/null", "--data-binary", "x" * 3000, f"{url}/post"], check=True)
            time.sleep(0.1)
    return path


def nft_forward_drop_rules(table: str, port: int, percent_s2c: int, percent_c2s: int) -> str:
    """nftables rules dropping a share of data segments forwarded to and from ``port``."""
    data = "tcp flags & (syn|fin|rst) == 0 meta length > 100"
    return (
        f"table inet {table} {{\n chain f {{\n  type filter hook forward priority 0;\n"
        f"  tcp sport {port} {data} numgen random mod 1000 < {percent_s2c * 10} drop\n"
        f"  tcp dport {port} {data} numgen random mod 1000 < {percent_c2s * 10} drop\n }}\n}}\n"
    )


# The server side of the bulk exchange, run inside the peer namespace.
_BULK_SERVER = """
import socket, sys
port, up, down = map(int, sys.argv[1:4])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(1)
print("ready", flush=True)
conn, _ = srv.accept()
got = 0
while got < up:
    chunk = conn.recv(65536)
    if not chunk:
        break
    got += len(chunk)
payload = bytes(range(256)) * (down // 256 + 1)
conn.sendall(payload[:down])
conn.shutdown(socket.SHUT_WR)
while conn.recv(65536):
    pass
conn.close()
"""


_BULK_CLIENT = """
import socket, sys
host, port, up = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cli = socket.create_connection((host, port), timeout=60)
cli.sendall(b"u" * up)
while cli.recv(65536):
    pass
cli.close()
"""


def lossy_capture(path: str, percent_s2c: int = 3, percent_c2s: int = 3, up: int = 300_000, down: int = 600_000) -> str:
    """A bulk transfer both ways through a router that drops a share of data
    segments (real loss for the kernel's TCP), captured on the router's
    client-side interface: client data is seen before the drop (original and
    retransmission), server data after it (the original never appears)."""
    from .netns import routed_path

    port = free_port()
    with routed_path("tcp") as net:
        server = subprocess.Popen(
            net.in_ns(net.server_ns, "python3", "-c", _BULK_SERVER, str(port), str(up), str(down)),
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            rules = nft_forward_drop_rules("netinspect_tcp", port, percent_s2c, percent_c2s)
            subprocess.run(net.in_ns(net.router_ns, NFT, "-f", "-"), input=rules, text=True, check=True)
            tcpdump = net.in_ns(net.router_ns, TCPDUMP)
            with loopback_capture(path, f"tcp port {port}", interface=net.router_client_if, tcpdump=tcpdump):
                subprocess.run(net.in_ns(net.client_ns, "python3", "-c", _BULK_CLIENT, net.server_ip, str(port), str(up)),
                               check=True, timeout=120)
                server.wait(timeout=60)
        finally:
            server.kill()
            server.wait()
    return path
