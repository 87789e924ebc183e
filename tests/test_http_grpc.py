"""gRPC from grpcio client and server (generic handlers, no codegen): the four call kinds,
gzip-compressed messages, an error status, checked against tshark's gRPC and protobuf dissectors."""

from __future__ import annotations

import os
import threading
from concurrent import futures

import grpc
import pytest

from inspector.decoders.protobuf_wire import parse_message, try_parse
from inspector.errors import DecodeError
from inspector.events import GrpcCall, GrpcMessage, Http2Frame, Malformed
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.http_registry import HttpRegistry
from tests.support.http_servers import capture_clean
from tests.support.http_tshark import our_h2_frames, tshark_h2_frames, tshark_json

# field 1 (string) "hello", field 2 (varint) 150, field 3 (message) { field 1 (fixed32) 7 }
MSG = bytes.fromhex("0a0568656c6c6f1096011a050d07000000")
ERROR_TEXT = "no such thing: ä/100%"


def _unary(req, ctx):
    return req + bytes.fromhex("2001")  # field 4 varint 1


def _server_stream(req, ctx):
    for i in range(3):
        yield req + bytes([0x20, i + 1])


def _client_stream(reqs, ctx):
    return b"".join(reqs)


def _bidi(reqs, ctx):
    for r in reqs:
        yield r


def _fail(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, ERROR_TEXT)


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    handlers = grpc.method_handlers_generic_handler("demo.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(_fail),
    })
    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((handlers,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    pcap = os.path.join(tmp_path_factory.mktemp("grpc"), "grpc.pcap")
    got: dict = {}

    def run():
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            got["unary"] = ch.unary_unary("/demo.Echo/Unary")(MSG, timeout=10)
            got["server"] = list(ch.unary_stream("/demo.Echo/ServerStream")(MSG, timeout=10))
            got["client"] = ch.stream_unary("/demo.Echo/ClientStream")(iter([MSG] * 3), timeout=10)
            first_reply = threading.Event()

            def paced():  # the second request waits for the first reply: the calls interleave
                yield MSG
                first_reply.wait(5)
                yield MSG
                yield MSG

            replies = []
            for r in ch.stream_stream("/demo.Echo/Bidi")(paced(), timeout=10):
                replies.append(r)
                first_reply.set()
            got["bidi"] = replies
            got["gzip"] = ch.unary_unary("/demo.Echo/Unary")(MSG * 20, timeout=10, compression=grpc.Compression.Gzip)
            try:
                ch.unary_unary("/demo.Echo/Fail")(MSG, timeout=10)
            except grpc.RpcError as e:
                got["fail"] = (e.code(), e.details())

    try:
        capture_clean(pcap, f"tcp port {port}", run)
    finally:
        server.stop(0)
    events = []
    pipe, _ = decode_file(pcap, on_event=events.append, registry=HttpRegistry())
    summary = [s for s in summaries(pipe.connections) if s.get("requests")]
    return {"pcap": pcap, "port": port, "events": events, "summary": summary, "got": got}


def _calls(calls):
    return {e.method: e for e in calls["events"] if isinstance(e, GrpcCall)}


def test_app_and_requests(calls):
    assert len(calls["summary"]) == 1
    s = calls["summary"][0]
    assert s["app"] == "grpc"
    paths = [r["path"] for r in s["requests"]]
    assert paths == ["/demo.Echo/Unary", "/demo.Echo/ServerStream", "/demo.Echo/ClientStream", "/demo.Echo/Bidi",
                     "/demo.Echo/Unary", "/demo.Echo/Fail"]
    assert not [e for e in calls["events"] if isinstance(e, Malformed)]


def test_call_kinds_from_message_pattern(calls):
    kinds = {}
    for e in calls["events"]:
        if isinstance(e, GrpcCall):
            kinds.setdefault(e.method, []).append((e.kind, e.requests, e.responses, e.status))
    assert kinds == {
        "/demo.Echo/Unary": [("unary", 1, 1, 0), ("unary", 1, 1, 0)],
        "/demo.Echo/ServerStream": [("server_streaming", 1, 3, 0)],
        "/demo.Echo/ClientStream": [("client_streaming", 3, 1, 0)],
        "/demo.Echo/Bidi": [("bidirectional", 3, 3, 0)],
        "/demo.Echo/Fail": [("unary", 1, 0, 5)],
    }


def test_error_status_and_message(calls):
    fail = _calls(calls)["/demo.Echo/Fail"]
    code, details = calls["got"]["fail"]
    assert (fail.status, fail.message) == (code.value[0], details) == (5, ERROR_TEXT)


def test_messages_agree_with_tshark(calls):
    """Per frame: message lengths, compressed flags, and the top-level protobuf (field, wire type) list
    (tshark decompresses gzip messages too; it does not guess nested messages without a .proto)."""
    rows = tshark_json(calls["pcap"], ["frame.number", "grpc.message_length", "grpc.compressed_flag",
                                       "protobuf.field.number", "protobuf.field.wiretype"],
                       decode_as=[f"tcp.port=={calls['port']},http2"], display_filter="grpc.message_length")
    wire = {"varint": "0", "fixed64": "1", "len": "2", "fixed32": "5"}
    theirs = {}
    for r in rows:
        theirs[int(r["frame.number"][0])] = (r["grpc.message_length"], [str(int(f, 0)) for f in r["grpc.compressed_flag"]],
                                             r.get("protobuf.field.number", []), r.get("protobuf.field.wiretype", []))
    ours: dict[int, tuple[list, list, list, list]] = {}
    for e in calls["events"]:
        if isinstance(e, GrpcMessage):
            row = ours.setdefault(e.frame, ([], [], [], []))
            row[0].append(str(e.length))
            row[1].append(str(int(e.compressed)))
            for f in e.fields or ():
                row[2].append(str(f["field"]))
                row[3].append(wire[f["wire_type"]])
    assert sum(len(v[0]) for v in theirs.values()) == 1 + 1 + 1 + 3 + 3 + 1 + 3 + 3 + 1 + 1 + 1
    assert ours == {k: tuple(v) for k, v in theirs.items()}


def test_protobuf_tree_and_decompression(calls):
    msgs = [e for e in calls["events"] if isinstance(e, GrpcMessage)]
    first = msgs[0]
    assert (first.direction, first.method, first.compressed, first.length) == ("c2s", "/demo.Echo/Unary", False,
                                                                               len(MSG))
    assert first.fields == [
        {"field": 1, "wire_type": "len", "length": 5, "text": "hello"},
        {"field": 2, "wire_type": "varint", "value": 150},
        {"field": 3, "wire_type": "len", "length": 5, "message": [{"field": 1, "wire_type": "fixed32", "value": 7}]},
    ]
    gz = [e for e in msgs if e.compressed]
    assert len(gz) == 1 and gz[0].length < len(MSG * 20)  # the request; grpcio answers uncompressed
    assert len(gz[0].fields) == 60 and gz[0].fields[:3] == first.fields


def test_http2_frames_agree_with_tshark(calls):
    theirs = tshark_h2_frames(calls["pcap"], calls["port"])
    assert our_h2_frames(e for e in calls["events"] if isinstance(e, Http2Frame)) == theirs


# --------------------------------------------------------------------------- protobuf wire format


def test_protobuf_wire_examples():
    # protobuf.dev "Encoding": field 1 varint 150 is 08 96 01; field 2 string "testing" is 12 07 74657374696e67
    assert parse_message(bytes.fromhex("089601")) == [{"field": 1, "wire_type": "varint", "value": 150}]
    assert parse_message(bytes.fromhex("120774657374696e67")) == [
        {"field": 2, "wire_type": "len", "length": 7, "text": "testing"}]
    # zigzag: sint32 -2 encodes as 3
    assert parse_message(bytes.fromhex("0803"))[0]["sint"] == -2
    # fixed64
    assert parse_message(bytes.fromhex("0901000000000000ff")) == [
        {"field": 1, "wire_type": "fixed64", "value": 0xFF00000000000001}]


@pytest.mark.parametrize("data,reason", [
    ("08", "varint cut off"),
    ("0a05616263", "runs past"),
    ("0b", "wire type 3"),
    ("00", "field number 0"),
    ("08ffffffffffffffffffff01", "longer than 10 bytes"),
])
def test_protobuf_invalid(data, reason):
    with pytest.raises(DecodeError) as exc:
        parse_message(bytes.fromhex(data))
    assert reason in exc.value.reason
    assert try_parse(bytes.fromhex(data)) is None


def test_protobuf_depth_and_size_bounded():
    # 200 nested length-delimited layers: parsed to the depth limit, the rest shown as bytes, no recursion error
    msg = b""
    for _ in range(200):
        msg = bytes([0x0A, len(msg)]) + msg if len(msg) < 128 else bytes([0x0A]) + _varint(len(msg)) + msg
    tree = try_parse(msg)
    depth = 0
    node = tree
    while node and "message" in node[0]:
        node = node[0]["message"]
        depth += 1
    assert depth == 8
    assert try_parse(bytes.fromhex("0801") * 5000) is None  # more fields than the budget


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_sniffing_either_side_first(calls):
    """Which side's bytes the pipeline sees first depends on timing (grpc's server sends its SETTINGS
    without waiting for the client): both first payloads must identify HTTP/2."""
    from inspector.decoders.http1 import looks_like_http1
    from inspector.decoders.http2 import looks_like_h2, looks_like_h2_server

    rows = tshark_json(calls["pcap"], ["tcp.srcport", "tcp.payload"], display_filter="tcp.len > 0")
    client = next(bytes.fromhex(r["tcp.payload"][0]) for r in rows if int(r["tcp.srcport"][0]) != calls["port"])
    server = next(bytes.fromhex(r["tcp.payload"][0]) for r in rows if int(r["tcp.srcport"][0]) == calls["port"])
    assert looks_like_h2(client) and not looks_like_h2_server(client)
    assert looks_like_h2_server(server) and not looks_like_h2(server) and not looks_like_http1(server)
