"""HTTP/1.x against real stacks, through the real pipeline, checked against tshark.

nginx with curl (keep-alive, HEAD, 304, gzip-chunked responses, chunked
upload with ``Expect: 100-continue``), pipelined requests from a socket
client, Python's http.server for HTTP/1.0 close-delimited bodies, a CONNECT
tunnel, a WebSocket upgrade (the ``websockets`` library) handed to an
``upgrade_factory``, and text/event-stream bodies handed to a body observer.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading

import pytest

from inspector.events import HttpRequest, HttpResponse, Malformed
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.capture import free_port
from tests.support.http_registry import HttpRegistry
from tests.support.http_servers import capture_clean, curl, start_nginx
from tests.support.http_tshark import tshark_json

A_TXT = b"plain text body\n" * 50
GZ_TXT = b"compress me please " * 3000
SSE = b"retry: 1000\n\nid: 1\ndata: first\n\nid: 2\nevent: tick\ndata: second\ndata: line\n\n"


class RecordingDecoder:
    """A StreamDecoder that records what an upgrade hands it (offsets and bytes)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, int, bytes]] = []
        self.finished = False

    def feed(self, direction, data, offset, index):
        index.locate(offset + len(data) - 1)  # the index must cover what we are given
        self.chunks.append((direction, offset, bytes(data)))
        return []

    def gap(self, direction, offset, length, index):
        return []

    def finish(self):
        self.finished = True
        return []

    def summary(self):
        return {"app": "recorded"}

    def stream(self, direction):
        return b"".join(c for d, _, c in self.chunks if d == direction)


class RecordingObserver:
    def __init__(self, exchange) -> None:
        self.exchange = exchange
        self.body = b""
        self.ended = None

    def feed_body(self, data, ts, frame):
        self.body += data
        return []

    def end_body(self, ts, frame):
        self.ended = frame
        return []


class _Close10(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()  # no Content-Length: the body ends when the connection closes
        self.wfile.write(b"until close " * 100)

    def log_message(self, *args):
        pass


def _connect_proxy(sock: socket.socket, target_port: int) -> None:
    """A one-shot CONNECT proxy: answers 200 and relays bytes both ways."""
    conn, _ = sock.accept()
    head = b""
    while b"\r\n\r\n" not in head:
        head += conn.recv(4096)
    upstream = socket.create_connection(("127.0.0.1", target_port))
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

    def pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    t = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
    t.start()
    pipe(conn, upstream)
    t.join(5)
    conn.close()
    upstream.close()


@pytest.fixture(scope="module")
def h1(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("h1"))
    port, h2c = free_port(), free_port()
    ng = start_nginx(d, port, h2c, {"a.txt": A_TXT, "gz/t.txt": GZ_TXT, "ev.sse": SSE})
    py_srv = http.server.HTTPServer(("127.0.0.1", 0), _Close10)
    py_port = py_srv.server_address[1]
    threading.Thread(target=py_srv.serve_forever, daemon=True).start()
    proxy = socket.socket()
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(1)
    proxy_port = proxy.getsockname()[1]
    import asyncio

    import websockets.asyncio.server
    import websockets.sync.client

    ws_port = free_port()
    ws_ready = threading.Event()
    ws_stop = threading.Event()

    def ws_server():
        async def echo(ws):
            async for msg in ws:
                await ws.send(msg)

        async def main():
            async with websockets.asyncio.server.serve(echo, "127.0.0.1", ws_port, compression=None):
                ws_ready.set()
                while not ws_stop.is_set():
                    await asyncio.sleep(0.05)

        asyncio.run(main())

    threading.Thread(target=ws_server, daemon=True).start()
    ws_ready.wait(10)
    pcap = os.path.join(d, "h1.pcap")
    upload = os.urandom(30_000)
    base = f"http://127.0.0.1:{port}"

    def run():
        # one keep-alive connection: GET, gzip-chunked GET, HEAD, conditional GET answered 304
        etag = curl("--http1.1", "-sI", f"{base}/a.txt").stdout.decode().lower().split("etag: ")[1].split("\r\n")[0]
        curl("--http1.1", f"{base}/a.txt", "-o", os.devnull, "-H", "Accept-Encoding: gzip", f"{base}/gz/t.txt",
             "-o", os.devnull, f"{base}/a.txt", "-o", os.devnull)
        curl("--http1.1", f"{base}/a.txt", "-H", f"If-None-Match: {etag}", "-o", os.devnull)
        # chunked upload with Expect: 100-continue (curl reads the body from stdin)
        curl("--http1.1", "-T", "-", f"{base}/dav/up.bin", input=upload)
        # three pipelined requests in one write
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"".join(f"GET /{p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in ("a.txt", "nope", "a.txt")))
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        # HTTP/1.0, close-delimited body
        curl("--http1.0", f"http://127.0.0.1:{py_port}/close", "-o", os.devnull)
        # a CONNECT tunnel to nginx
        t = threading.Thread(target=_connect_proxy, args=(proxy, port), daemon=True)
        t.start()
        curl("--http1.1", "-p", "-x", f"http://127.0.0.1:{proxy_port}", f"{base}/a.txt", "-o", os.devnull)
        t.join(10)
        # WebSocket upgrade
        with websockets.sync.client.connect(f"ws://127.0.0.1:{ws_port}/chat", compression=None) as ws:
            ws.send("hello")
            assert ws.recv() == "hello"
        # an event stream
        curl("--http1.1", f"{base}/ev.sse", "-o", os.devnull)

    bpf = f"tcp port {port} or tcp port {py_port} or tcp port {proxy_port} or tcp port {ws_port}"
    try:
        capture_clean(pcap, bpf, run)
    finally:
        ng.stop()
        py_srv.shutdown()
        ws_stop.set()
        proxy.close()
    upgrades: list[tuple[str, list, list, RecordingDecoder]] = []
    observers: list[RecordingObserver] = []

    def upgrade_factory(ctx, protocol, req, resp):
        if protocol == "connect":
            return None  # let the HTTP decoder look inside the tunnel itself
        dec = RecordingDecoder()
        upgrades.append((protocol, req, resp, dec))
        return dec

    def body_observer_factory(ctx, exchange):
        obs = RecordingObserver(exchange)
        observers.append(obs)
        return obs

    events = []
    pipe, _ = decode_file(pcap, on_event=events.append,
                          registry=HttpRegistry(upgrade_factory=upgrade_factory,
                                                body_observer_factory=body_observer_factory))
    return {"pcap": pcap, "ports": (port, py_port, proxy_port, ws_port), "events": events,
            "summary": summaries(pipe.connections), "upgrades": upgrades, "observers": observers,
            "upload": upload, "pipe": pipe}


def _conn_by_port(h1, port):
    return [s for s in h1["summary"] if s["server"].endswith(f":{port}")]


def test_no_malformed(h1):
    assert not [e for e in h1["events"] if isinstance(e, Malformed)]


def test_messages_agree_with_tshark(h1):
    """Per frame: request method/URI and response code, as tshark's HTTP dissector reassembles them."""
    port, py_port, proxy_port, ws_port = h1["ports"]
    rows = tshark_json(h1["pcap"], ["frame.number", "http.request.method", "http.request.uri",
                                    "http.response.code"],
                       decode_as=[f"tcp.port=={p},http" for p in (port, py_port, proxy_port)],
                       display_filter="http.request || http.response")
    theirs = {}
    for r in rows:
        theirs[int(r["frame.number"][0])] = (r.get("http.request.method", []) + r.get("http.response.code", []),
                                             r.get("http.request.uri", []))
    ours = {}
    for e in h1["events"]:
        if isinstance(e, HttpRequest):
            m, u = ours.setdefault(e.frame, ([], []))
            m.append(e.method)
            u.append(e.target)
        elif isinstance(e, HttpResponse):
            ours.setdefault(e.frame, ([], []))[0].append(str(e.status))
    assert len(theirs) > 20
    # A close-delimited body (HTTP/1.0 from http.server) is complete in the server's FIN, where tshark
    # reports the response too: not in the frame with the body's last byte.
    srv = tshark_json(h1["pcap"], ["frame.number", "tcp.len", "tcp.flags.fin"],
                      display_filter=f"tcp.srcport == {py_port} && (tcp.len > 0 || tcp.flags.fin == 1)")
    last_data = max(int(r["frame.number"][0]) for r in srv if r["tcp.len"][0] != "0")
    fin = min(int(r["frame.number"][0]) for r in srv if r["tcp.flags.fin"][0] in ("1", "True"))
    assert fin >= last_data and theirs[fin] == ours[fin] == (["200"], [])
    if fin > last_data:  # (the kernel may also send the FIN with the last bytes)
        assert last_data not in ours
    assert ours == theirs


def test_keep_alive_head_304_chunked(h1):
    port = h1["ports"][0]
    conns = _conn_by_port(h1, port)
    reqs = [r for c in conns for r in c["requests"]]
    keep = next(c for c in conns if [r["path"] for r in c["requests"]] == ["/a.txt", "/gz/t.txt", "/a.txt"])
    assert keep["app"] == "http/1.1" and not keep["http1"]["pipelined"]  # one keep-alive connection
    assert [(r["method"], r["status"], r["bytes"]) for r in keep["requests"]] == [
        ("GET", 200, len(A_TXT)), ("GET", 200, keep["requests"][1]["bytes"]), ("GET", 200, len(A_TXT))]
    head = next(r for r in reqs if r["method"] == "HEAD")
    assert (head["status"], head["bytes"]) == (200, 0)  # Content-Length but no body
    gz = [e for e in h1["events"] if isinstance(e, HttpResponse) and e.request_target == "/gz/t.txt"][0]
    assert gz.chunked and 0 < gz.body_bytes < len(GZ_TXT) / 10  # gzip-compressed, de-chunked
    assert ["content-encoding", "gzip"] in gz.headers
    assert any(r["status"] == 304 and r["bytes"] == 0 for r in reqs)
    for r in reqs:
        assert r["request_ts"] <= r["response_ts"] <= r["end_ts"]


def test_chunked_upload_with_100_continue(h1):
    up = [r for c in _conn_by_port(h1, h1["ports"][0]) for r in c["requests"] if r["method"] == "PUT"][0]
    assert up["status"] == 201 and up["interim"] == [100] and up["request_bytes"] == len(h1["upload"])
    req = [e for e in h1["events"] if isinstance(e, HttpRequest) and e.method == "PUT"][0]
    assert req.chunked and ["expect", "100-continue"] in req.headers
    cont = [e for e in h1["events"] if isinstance(e, HttpResponse) and e.status == 100][0]
    assert cont.frame < req.frame  # 100 Continue came before the body was complete


def test_pipelined_responses_matched_in_order(h1):
    c = next(c for c in _conn_by_port(h1, h1["ports"][0]) if c["http1"]["pipelined"])
    assert c["http1"]["pipelined"] == 2
    assert [(r["path"], r["status"]) for r in c["requests"]] == [("/a.txt", 200), ("/nope", 404), ("/a.txt", 200)]
    # all three requests arrived in one segment, before any response
    assert len({r["request_ts"] for r in c["requests"]}) == 1


def test_close_delimited_http10(h1):
    c = _conn_by_port(h1, h1["ports"][1])[0]
    r = c["requests"][0]
    assert (r["method"], r["status"], r["bytes"]) == ("GET", 200, len(b"until close " * 100))
    resp = [e for e in h1["events"] if isinstance(e, HttpResponse) and e.conn == c["id"]][0]
    assert resp.version == "HTTP/1.0"


def test_connect_tunnel_decoded_inside(h1):
    c = _conn_by_port(h1, h1["ports"][2])[0]
    assert [(r["method"], r["path"], r["status"]) for r in c["requests"]] == [
        ("CONNECT", f"127.0.0.1:{h1['ports'][0]}", 200)]
    # nobody claimed the tunnel, so the HTTP/1.1 exchange inside it is decoded (tshark does the same)
    inner = c["tunnel"]["requests"]
    assert [(r["method"], r["path"], r["status"], r["bytes"]) for r in inner] == [("GET", "/a.txt", 200, len(A_TXT))]


def test_websocket_upgrade_handed_over(h1):
    proto, req, resp, dec = next(u for u in h1["upgrades"] if u[0] == "websocket")
    assert ["upgrade", "websocket"] in req and any(n == "sec-websocket-key" for n, _ in req)
    assert any(n == "sec-websocket-accept" for n, _ in resp)
    c = _conn_by_port(h1, h1["ports"][3])[0]
    assert c["app"] == "recorded" and c["requests"][0]["status"] == 101
    # what the decoder got is exactly the TCP payload after the request and after the 101 head
    rows = tshark_json(h1["pcap"], ["tcp.srcport", "tcp.payload"], display_filter=f"tcp.port == {h1['ports'][3]} "
                                                                                   "&& tcp.len > 0")
    c2s = b"".join(bytes.fromhex(r["tcp.payload"][0]) for r in rows if int(r["tcp.srcport"][0]) != h1["ports"][3])
    s2c = b"".join(bytes.fromhex(r["tcp.payload"][0]) for r in rows if int(r["tcp.srcport"][0]) == h1["ports"][3])
    head_c = c2s.index(b"\r\n\r\n") + 4
    head_s = s2c.index(b"\r\n\r\n") + 4
    assert dec.stream(0) == c2s[head_c:] and dec.stream(1) == s2c[head_s:]
    assert [(d, off) for d, off, _ in dec.chunks if d == 0][0] == (0, head_c)
    assert [(d, off) for d, off, _ in dec.chunks if d == 1][0] == (1, head_s)


def test_event_stream_body_observed(h1):
    obs = [o for o in h1["observers"] if o.exchange.path == "/ev.sse"]
    assert len(obs) == 1
    assert obs[0].body == SSE and obs[0].ended is not None
    assert obs[0].exchange.content_type == "text/event-stream"
