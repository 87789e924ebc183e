"""gRPC with grpcio: the four call kinds on one channel (HTTP/2 over plain TCP, prior knowledge).

    python grpcpeer.py server --host IP [--port 50051]
    python grpcpeer.py client --ip IP --authority lab.test:50051 [--port 50051]

Service ``lab.Quotes`` (no generated code: the handlers take and return bytes, and the
messages are protobuf encoded by hand here, so no protobuf/grpcio-tools is needed)::

    message Quote  { string symbol = 1; int64 price = 2; }
    message Symbol { string symbol = 1; }
    message Summary { int64 count = 1; int64 total = 2; }

- ``GetQuote(Symbol) -> Quote``                   unary
- ``StreamQuotes(Symbol) -> stream Quote``        server streaming (4 quotes, 50 ms apart)
- ``RecordTrades(stream Quote) -> Summary``       client streaming (3 trades)
- ``Chat(stream Symbol) -> stream Quote``         bidirectional (3 round trips)

Plain TCP so the HTTP/2 frames read without a key log; grpcio's TLS (BoringSSL)
has no key log hook.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from concurrent import futures

import grpc

SERVICE = "lab.Quotes"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field_str(num: int, s: str) -> bytes:
    data = s.encode()
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _field_int(num: int, v: int) -> bytes:
    return _varint(num << 3) + _varint(v)


def quote(symbol: str, price: int) -> bytes:
    return _field_str(1, symbol) + _field_int(2, price)


def parse(msg: bytes) -> dict[int, object]:
    """Fields of a flat protobuf message: {field number: str or int} (the lab's messages only)."""
    out: dict[int, object] = {}
    i = 0
    while i < len(msg):
        key, i = _read_varint(msg, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], i = _read_varint(msg, i)
        elif wt == 2:
            n, i = _read_varint(msg, i)
            out[num] = msg[i : i + n].decode()
            i += n
        else:
            raise ValueError(f"wire type {wt}")
    return out


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


PRICES = {"ACME": 1234, "INIT": 777, "LAB": 4200}


def get_quote(req: bytes, ctx: grpc.ServicerContext) -> bytes:
    sym = str(parse(req)[1])
    return quote(sym, PRICES.get(sym, 0))


def stream_quotes(req: bytes, ctx: grpc.ServicerContext) -> Iterator[bytes]:
    sym = str(parse(req)[1])
    for k in range(4):
        yield quote(sym, PRICES.get(sym, 0) + k)
        time.sleep(0.05)


def record_trades(reqs: Iterator[bytes], ctx: grpc.ServicerContext) -> bytes:
    count = total = 0
    for r in reqs:
        count += 1
        total += int(parse(r)[2])  # type: ignore[arg-type]
    return _field_int(1, count) + _field_int(2, total)


def chat(reqs: Iterator[bytes], ctx: grpc.ServicerContext) -> Iterator[bytes]:
    for r in reqs:
        sym = str(parse(r)[1])
        yield quote(sym, PRICES.get(sym, 0))


def run_server(args: argparse.Namespace) -> None:
    handlers = {
        "GetQuote": grpc.unary_unary_rpc_method_handler(get_quote),
        "StreamQuotes": grpc.unary_stream_rpc_method_handler(stream_quotes),
        "RecordTrades": grpc.stream_unary_rpc_method_handler(record_trades),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()


def run_client(args: argparse.Namespace) -> None:
    opts = [("grpc.default_authority", args.authority), ("grpc.enable_http_proxy", 0), ("grpc.primary_user_agent", "lab-grpc-client")]
    with grpc.insecure_channel(f"{args.ip}:{args.port}", options=opts) as ch:
        unary = ch.unary_unary(f"/{SERVICE}/GetQuote")
        q = parse(unary(_field_str(1, "ACME"), timeout=10))
        assert q == {1: "ACME", 2: 1234}, q
        time.sleep(0.1)
        streamed = [parse(m) for m in ch.unary_stream(f"/{SERVICE}/StreamQuotes")(_field_str(1, "LAB"), timeout=10)]
        assert [m[2] for m in streamed] == [4200, 4201, 4202, 4203], streamed
        time.sleep(0.1)
        summary = parse(ch.stream_unary(f"/{SERVICE}/RecordTrades")(iter([quote("ACME", 10), quote("INIT", 20), quote("LAB", 30)]), timeout=10))
        assert summary == {1: 3, 2: 60}, summary
        time.sleep(0.1)

        def symbols() -> Iterator[bytes]:
            for s in ("ACME", "INIT", "LAB"):
                yield _field_str(1, s)
                time.sleep(0.1)

        replies = [parse(m) for m in ch.stream_stream(f"/{SERVICE}/Chat")(symbols(), timeout=10)]
        assert [m[1] for m in replies] == ["ACME", "INIT", "LAB"], replies
    print("ok")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=50051)
    c = sub.add_parser("client")
    c.add_argument("--ip", required=True)
    c.add_argument("--authority", required=True)
    c.add_argument("--port", type=int, default=50051)
    args = p.parse_args(argv)
    run_server(args) if args.cmd == "server" else run_client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
