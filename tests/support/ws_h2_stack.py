"""WebSocket over HTTP/2 (RFC 8441 extended CONNECT): hypercorn serving, python-hyper h2 + wsproto as client.

hypercorn announces SETTINGS_ENABLE_CONNECT_PROTOCOL and runs an ASGI
WebSocket app (echo; "close" makes the server close with 4001); the client
opens a ``:protocol websocket`` stream with h2 (h2c prior knowledge) and
frames its messages with wsproto's frame protocol (masked, as RFC 8441 §5
keeps them), so every byte on the wire is written by a real library.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
from wsproto.frame_protocol import FrameProtocol, Opcode

from .capture import loopback_capture
from .hypercorn_server import hypercorn_server
from .ws_follow import TCPDUMP_BIG_RING

CLOSE_CODE = 4001


async def ws_app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    sub = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": sub[0] if sub else None})
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        text, data = msg.get("text"), msg.get("bytes")
        if text == "close":
            await send({"type": "websocket.close", "code": CLOSE_CODE, "reason": "server done"})
            return
        await send({"type": "websocket.send", "text": text} if text is not None else
                   {"type": "websocket.send", "bytes": data})


@dataclass
class H2WsCapture:
    path: str
    port: int
    sent: list[str | bytes] = field(default_factory=list)
    received: list[str | bytes] = field(default_factory=list)
    close_code: int | None = None


def _client(port: int, cap: H2WsCapture) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    fp = FrameProtocol(client=True, extensions=[])
    sid = None
    pending = ["hello over h2", b"\x00\x01binary\xff" * 50, "x" * 300, "close"]
    done = False
    while not done:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged) and sid is None:
                assert conn.remote_settings.enable_connect_protocol == 1
                sid = conn.get_next_available_stream_id()
                conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                        (":path", "/chat"), (":authority", f"127.0.0.1:{port}"),
                                        ("sec-websocket-version", "13"), ("sec-websocket-protocol", "chat, other")])
            elif isinstance(event, h2.events.ResponseReceived):
                assert dict(event.headers)[":status"] == "200"
                conn.send_data(sid, fp.send_data(pending[0], fin=True))
                cap.sent.append(pending.pop(0))
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                fp.receive_bytes(event.data)
                for frame in fp.received_frames():
                    if frame.opcode == Opcode.CLOSE:
                        cap.close_code = frame.payload[0]
                        conn.send_data(sid, fp.close(cap.close_code, "ok"), end_stream=True)
                        done = True
                    elif frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                        cap.received.append(frame.payload)
                        if pending:
                            conn.send_data(sid, fp.send_data(pending[0], fin=True))
                            cap.sent.append(pending.pop(0))
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        sock.sendall(conn.data_to_send())
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()


def record_h2_ws_capture(path: str) -> H2WsCapture:
    with hypercorn_server(ws_app) as port:
        cap = H2WsCapture(path, port)
        with loopback_capture(path, f"tcp port {port}", tcpdump=TCPDUMP_BIG_RING):
            _client(port, cap)
    return cap
