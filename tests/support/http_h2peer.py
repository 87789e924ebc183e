"""A scripted HTTP/2 server and client (the ``h2`` library over real loopback sockets).

The server answers by path, each path one edge case the observer must handle:

``/``            200 and a short body
``/padded``      HEADERS with PADDED and PRIORITY flags and padded DATA (hand-built frames
                 encoded with the connection's own HPACK encoder, since h2 pads DATA only)
``/big-headers`` response headers larger than a frame: HEADERS + CONTINUATION
``/reset``       response HEADERS, then RST_STREAM (CANCEL)
``/stall``       a 100 kB body against the client's 16 kB stream window: the server waits
                 for WINDOW_UPDATE, which the client sends late (a flow-control stall)
``/push``        PUSH_PROMISE for ``/pushed.css`` before the response
``/grpc-like``   trailers after the body
``/extensions``  ALTSVC (h2), then hand-built ORIGIN, PRIORITY_UPDATE and an unknown type 0xfa

It also speaks h2c via HTTP/1.1 ``Upgrade: h2c`` (RFC 7540 §3.2) when the
client's first bytes are not the preface.  The connection ends with GOAWAY.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from hyperframe.frame import DataFrame, HeadersFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STALL_BODY = 100_000
STALL_WINDOW = 16_384
STALL_DELAY = 0.15
BIG_HEADER = "h" * 2000


def _frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">HBBBL", len(payload) >> 8, len(payload) & 0xFF, ftype, flags, stream) + payload


class H2Server:
    """Serves connections one after another on ``port`` until :meth:`stop`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            conn, _ = self.sock.accept()
            if self._stop:
                conn.close()
                return
            try:
                _ServerConn(conn).run()
            except Exception as e:  # reported by the test
                self.errors.append(e)
            finally:
                conn.close()


class _ServerConn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.pending: dict[int, list[Any]] = {}  # stream -> [body remaining, trailers]
        self.done = False

    def run(self) -> None:
        first = self.sock.recv(65535, socket.MSG_PEEK)
        if not first:
            return
        if first.startswith(PREFACE[:3]):
            self.conn.initiate_connection()
            self.conn.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 65536})
            self.flush()
        else:
            self._upgrade()
        while not self.done:
            try:
                data = self.sock.recv(65535)
            except (ConnectionResetError, TimeoutError):
                return
            if not data:
                return
            for event in self.conn.receive_data(data):
                self.handle(event)
            self.pump()
            self.flush()

    def _upgrade(self) -> None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65535)
            if not chunk:
                return
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        path = lines[0].split(" ")[1]
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        self.conn.initiate_upgrade_connection(fields["http2-settings"])
        self.flush()
        self.respond(1, path)
        self.pump()
        self.flush()
        if rest:
            for event in self.conn.receive_data(rest):
                self.handle(event)

    def flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def handle(self, event: Any) -> None:
        if isinstance(event, h2.events.RequestReceived):
            path = dict(event.headers)[":path"]
            if path == "/goaway":
                self.conn.close_connection(error_code=0, last_stream_id=event.stream_id)
                self.flush()
                self.done = True
                return
            self.respond(event.stream_id, path)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.done = True

    def respond(self, sid: int, path: str) -> None:
        c = self.conn
        if path == "/padded":
            block = c.encoder.encode([(":status", "200"), ("content-type", "text/plain")])
            hf = HeadersFrame(sid, data=block, pad_length=7, depends_on=0, stream_weight=41, exclusive=True)
            for flag in ("END_HEADERS", "PADDED", "PRIORITY"):
                hf.flags.add(flag)
            df = DataFrame(sid, data=b"padded body", pad_length=10)
            for flag in ("END_STREAM", "PADDED"):
                df.flags.add(flag)
            self.flush()
            self.sock.sendall(hf.serialize() + df.serialize())
            # h2 never saw these frames: close the stream's state on its side quietly
            c.streams.pop(sid, None)
            return
        if path == "/big-headers":
            headers = [(":status", "200")] + [(f"x-big-{i}", BIG_HEADER) for i in range(12)]
            c.send_headers(sid, headers)
            self.pending[sid] = [b"big headers", None]
        elif path == "/reset":
            c.send_headers(sid, [(":status", "200")])
            c.reset_stream(sid, error_code=8)
        elif path == "/stall":
            c.send_headers(sid, [(":status", "200"), ("content-length", str(STALL_BODY))])
            self.pending[sid] = [b"s" * STALL_BODY, None]
        elif path == "/push":
            promised = c.get_next_available_stream_id()
            c.push_stream(sid, promised, [(":method", "GET"), (":scheme", "http"), (":authority", "peer"),
                                          (":path", "/pushed.css")])
            c.send_headers(sid, [(":status", "200")])
            self.pending[sid] = [b"page", None]
            c.send_headers(promised, [(":status", "200"), ("content-type", "text/css")])
            self.pending[promised] = [b"body{}", None]
        elif path == "/grpc-like":
            c.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
            self.pending[sid] = [b"with trailers", [("x-trailer", "done")]]
        elif path == "/extensions":
            c.advertise_alternative_service(b'h3=":443"; ma=60', origin=b"http://peer")
            self.flush()
            origin = b"".join(struct.pack(">H", len(o)) + o for o in (b"http://peer", b"http://other"))
            self.sock.sendall(_frame(0xC, 0, 0, origin) + _frame(0x10, 0, 0, struct.pack(">L", sid) + b"u=1, i")
                              + _frame(0xFA, 0x5, 0, b"opaque extension"))
            c.send_headers(sid, [(":status", "204")], end_stream=True)
        else:
            c.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
            self.pending[sid] = [b"ok " + path.encode(), None]

    def pump(self) -> None:
        """Send what the flow-control windows allow."""
        c = self.conn
        for sid in list(self.pending):
            body, trailers = self.pending[sid]
            while body:
                n = min(len(body), c.local_flow_control_window(sid), c.max_outbound_frame_size)
                if n <= 0:
                    break
                c.send_data(sid, body[:n])
                body = body[n:]
            if body:
                self.pending[sid][0] = body
                continue
            del self.pending[sid]
            if trailers:
                c.send_headers(sid, trailers, end_stream=True)
            else:
                c.send_data(sid, b"", end_stream=True)


def run_client(port: int, *, upgrade: bool = False) -> dict[str, Any]:
    """The scripted client; returns what it saw, for the test to compare with the capture."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    seen: dict[str, Any] = {"bodies": {}, "statuses": {}, "resets": [], "pushed": []}
    if upgrade:
        settings = conn.initiate_upgrade_connection()
        sock.sendall(b"GET /upgraded HTTP/1.1\r\nHost: peer\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                     b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65535)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(conn.data_to_send())
        pending_data = rest
    else:
        conn.local_settings = h2.settings.Settings(client=True)
        conn.initiate_connection()
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STALL_WINDOW})
        sock.sendall(conn.data_to_send())
        pending_data = b""
    open_streams: dict[int, str] = {}
    if upgrade:
        open_streams[1] = "/upgraded"
    names = {}

    def request(path: str, extra: list[tuple[str, str]] = (), end: bool = True) -> int:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "peer"), (":path", path),
                                *extra], end_stream=end)
        open_streams[sid] = path
        names[sid] = path
        sock.sendall(conn.data_to_send())
        return sid

    stall_got = 0

    def wait_all() -> None:
        nonlocal pending_data, stall_got
        while open_streams:
            data = pending_data or sock.recv(65535)
            pending_data = b""
            if not data:
                raise RuntimeError("server closed early")
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived):
                    seen["statuses"][open_streams.get(ev.stream_id, ev.stream_id)] = dict(ev.headers)[":status"]
                elif isinstance(ev, h2.events.DataReceived):
                    path = open_streams.get(ev.stream_id, str(ev.stream_id))
                    seen["bodies"][path] = seen["bodies"].get(path, b"") + ev.data
                    if path == "/stall":
                        stall_got += ev.flow_controlled_length
                        if stall_got >= STALL_WINDOW:
                            time.sleep(STALL_DELAY)  # the late WINDOW_UPDATE: the server sits at zero meanwhile
                            stall_got = 0
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    open_streams.pop(ev.stream_id, None)
                elif isinstance(ev, h2.events.StreamReset):
                    seen["resets"].append((open_streams.pop(ev.stream_id, ev.stream_id), ev.error_code))
                elif isinstance(ev, h2.events.PushedStreamReceived):
                    open_streams[ev.pushed_stream_id] = dict(ev.headers)[":path"]
                    seen["pushed"].append(ev.pushed_stream_id)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)

    if upgrade:
        wait_all()
        request("/")
        wait_all()
    else:
        request("/")
        wait_all()
        # a large dynamic table: the server allowed 64 kB; many distinct headers fill it past 4 kB
        for i in range(6):
            request("/", [(f"x-table-{i}-{j}", f"value-{i}-{j}-" + "v" * 100) for j in range(10)])
        wait_all()
        for i in range(6):  # the same headers again: now indexed from the big table
            request("/", [(f"x-table-{i}-{j}", f"value-{i}-{j}-" + "v" * 100) for j in range(10)])
        wait_all()
        request("/", [("x-big-request", "~" * 12000)])  # request HEADERS + CONTINUATION (~ is a 13-bit code)
        wait_all()
        request("/padded")
        request("/big-headers")
        wait_all()
        sid = request("/reset")
        wait_all()
        conn.prioritize(sid + 2, weight=16, depends_on=0, exclusive=False)
        request("/push")
        wait_all()
        request("/grpc-like")
        request("/extensions")
        conn.ping(b"netinsp!")
        sock.sendall(conn.data_to_send())
        wait_all()
        request("/stall")
        wait_all()
    request("/goaway")
    try:
        while True:
            data = sock.recv(65535)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    seen["goaway"] = (ev.error_code, ev.last_stream_id)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if "goaway" in seen:
                break
    except (ConnectionResetError, TimeoutError):
        pass
    sock.close()
    seen["streams"] = names
    return seen
