"""Seed corpus: every decoder's real input, recorded while the real captures decode.

The captures in ``captures/`` (made by real stacks) are decoded once with a
:class:`~inspector.decoders.registry.Registry` whose decoders have their
public entry points tapped: each call's arguments (stream bytes, gaps,
datagrams, HTTP/3 stream data, WebSocket handshakes, SSE bodies) become the
records of one seed, so every target starts from what real implementations
sent.  The readers' seeds are the capture files themselves, cut short, plus
pcapng conversions by ``editcap`` (with the key log injected as a Decryption
Secrets Block where there is one) and gzip-compressed copies.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import tempfile
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from inspector.capture.reader import CaptureReader
from inspector.decoders import quic
from inspector.decoders.base import DecodeContext
from inspector.decoders.http3 import Http3Decoder
from inspector.decoders.websocket import upgrade_factory
from inspector.keylog import KeyLog
from inspector.pipeline import decode_file

from . import records as R
from .patchable import PatchableRegistry, patchable

ROOT = Path(__file__).resolve().parents[2]
CAPTURE_DIRS = ("captures/samples", "captures/tls", "captures/http", "captures/quic", "captures/fuzz")
#: bytes of decoder input kept per seed (bigger seeds only make executions slower)
MAX_SEED_BYTES = 48 * 1024
#: frames per seed of the packet-level targets
MAX_SEED_FRAMES = 80
READER_FRAMES = 30

Seeds = dict[str, list[list[R.Record]]]


def captures() -> list[Path]:
    return sorted(p for d in CAPTURE_DIRS for p in (ROOT / d).glob("*.pcap"))


def keys_for(pcap: Path) -> Path | None:
    keys = pcap.with_suffix(".keys")
    if keys.exists():
        return keys
    # the lab's server-side captures share the client's key log
    if pcap.name.endswith(".server.pcap"):
        alt = pcap.with_name(pcap.name.replace(".server.pcap", ".keys"))
        return alt if alt.exists() else None
    return None


def _tap(obj: Any, names: tuple[str, ...], log: list) -> Any:
    """Record each call of ``obj``'s methods ``names`` (arguments copied) before running it."""
    for name in names:
        orig = getattr(obj, name, None)
        if orig is None:
            continue

        def tapped(*args: Any, _orig: Any = orig, _name: str = name, **kw: Any) -> Any:
            log.append((_name, tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)))
            return _orig(*args, **kw)

        setattr(obj, name, tapped)
    return obj


class _RecordingHttp3(Http3Decoder):
    """HTTP/3 decoder that records its stream calls (seed extraction only)."""

    def __init__(self, ctx: DecodeContext, log: list) -> None:
        super().__init__(ctx)
        _tap(self, ("stream_data", "stream_reset"), log)


class RecordingRegistry(PatchableRegistry):
    """A registry whose decoders' inputs are recorded per (kind, connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: dict[tuple[str, int], list] = defaultdict(list)
        self.upgrades: list[tuple[Any, list]] = []  # (handshake headers, feed log)
        self.bodies: list[tuple[dict, list]] = []  # (exchange, feed_body log)

    def _log(self, kind: str, ctx: DecodeContext) -> list:
        return self.logs[(kind, ctx.conn)]

    def choose_stream(self, ctx, direction, first):  # type: ignore[override]
        dec = super().choose_stream(ctx, direction, first)
        name = type(dec).__name__
        if name == "TlsDecoder":
            dec = patchable(type(dec))(ctx, inner_factory=dec.inner_factory)  # not fed yet: a patchable twin
            _tap(dec, ("feed", "gap"), self._log("tls", ctx))
        elif name == "DnsTcpDecoder":
            _tap(dec, ("feed", "gap"), self._log("dns-tcp", ctx))
        return dec

    def choose_datagram(self, ctx, direction, payload):  # type: ignore[override]
        if quic.looks_like_quic(payload, (ctx.client[1], ctx.server[1])):
            dec = quic.QuicDecoder(ctx, app=_RecordingHttp3(ctx, self._log("http3", ctx)))
            return _tap(dec, ("datagram",), self._log("quic", ctx))
        dec = super().choose_datagram(ctx, direction, payload)
        if dec is not None:
            _tap(dec, ("datagram",), self._log("dns-udp", ctx))
        return dec

    def _upgrade(self, ctx, protocol, request_headers, response_headers):
        dec = upgrade_factory(ctx, protocol, request_headers, response_headers)
        if dec is not None:
            log: list = []
            self.upgrades.append(([request_headers, response_headers], log))
            _tap(dec, ("feed", "gap"), log)
        return dec

    def _observer(self, ctx, ex):
        obs = self.sse.observer(ctx, ex)
        log: list = []
        self.bodies.append(({"request_headers": ex.request_headers, "response_headers": ex.response_headers,
                             "path": ex.path, "authority": ex.authority, "stream": ex.stream,
                             "method": ex.method}, log))
        return _tap(obs, ("feed_body",), log)

    def _h1(self, ctx):  # type: ignore[override]
        from inspector.decoders.http1 import Http1Decoder

        dec = patchable(Http1Decoder)(ctx, upgrade_factory=self._upgrade, body_observer_factory=self._observer)
        return _tap(dec, ("feed", "gap"), self._log("http1", ctx))

    def _h2(self, ctx):  # type: ignore[override]
        from inspector.decoders.http2 import Http2Decoder

        dec = patchable(Http2Decoder)(ctx, upgrade_factory=self._upgrade, body_observer_factory=self._observer)
        return _tap(dec, ("feed", "gap"), self._log("http2", ctx))


def _stream_records(log: list) -> list[R.Record]:
    """feed/gap calls as records, cut at :data:`MAX_SEED_BYTES`."""
    out: list[R.Record] = []
    total = 0
    for name, args in log:
        if name == "feed":
            out.append((args[0], bytes(args[1])))
            total += len(args[1])
        elif name == "gap":
            out.append(R.gap(args[0], args[2]))
        if total > MAX_SEED_BYTES:
            break
    return out


def _datagram_records(log: list) -> list[R.Record]:
    out: list[R.Record] = []
    total = 0
    for _name, (direction, data, _frame, _ts) in log:
        out.append((direction, bytes(data)))
        total += len(data)
        if total > MAX_SEED_BYTES:
            break
    return out


def _h3_records(log: list) -> list[R.Record]:
    out: list[R.Record] = []
    total = 0
    for name, args in log:
        if name == "stream_data":
            direction, sid, data, _offset, fin = args[:5]
            out.append((R.H3_DATA, bytes([direction]) + sid.to_bytes(8, "big") + bytes([fin]) + bytes(data)))
            total += len(data)
        else:
            direction, sid, error = args[:3]
            out.append((R.H3_RESET, bytes([direction]) + sid.to_bytes(8, "big") + (error & (2**64 - 1)).to_bytes(8, "big")))
        if total > MAX_SEED_BYTES:
            break
    return out


def _jsonable(headers: Any) -> Any:
    return [[n if isinstance(n, str) or n is None else bytes(n).decode("latin-1"),
             v if isinstance(v, str) or v is None else bytes(v).decode("latin-1")] for n, v in headers]


def _reader_seeds(pcap: Path, tmp: Path) -> list[list[R.Record]]:
    """The capture cut to its first frames, as pcap, pcapng (+DSB) and gzip."""
    raw = pcap.read_bytes()
    # pcap: 24-byte header, 16-byte record headers (little-endian in every capture here)
    pos, n = 24, 0
    while pos + 16 <= len(raw) and n < READER_FRAMES:
        pos += 16 + int.from_bytes(raw[pos + 8 : pos + 12], "little")
        n += 1
    cut = raw[:pos]
    out = [cut]
    if shutil.which("editcap"):
        src = tmp / f"{pcap.stem}.cut.pcap"
        src.write_bytes(cut)
        dst = tmp / f"{pcap.stem}.pcapng"
        cmd = ["editcap", "-F", "pcapng"]
        keys = keys_for(pcap)
        if keys is not None:
            cmd += ["--inject-secrets", f"tls,{keys}"]
        if subprocess.run(cmd + [str(src), str(dst)], capture_output=True).returncode == 0:
            out.append(dst.read_bytes())
    out += [gzip.compress(b, mtime=0) for b in out[:2]]
    return [[(R.FILE, b)] for b in out]


def _frames(pcap: Path) -> list[R.Record]:
    out = []
    with CaptureReader(str(pcap)) as reader:
        for i, (_ts, linktype, data, _orig) in enumerate(reader):
            if i >= MAX_SEED_FRAMES:
                break
            out.append((R.FRAME, linktype.to_bytes(2, "big") + data))
    return out


@lru_cache(maxsize=1)
def extract() -> Seeds:
    """Seeds per target name, from every capture in the tree (deterministic order)."""
    seeds: Seeds = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="netinspect-fuzz-") as tmp:
        for pcap in captures():
            keys = keys_for(pcap)
            keytext = keys.read_text() if keys is not None else ""
            key_rec = [(R.KEYLOG, keytext.encode())] if keytext else []
            reg = RecordingRegistry()
            keylog = KeyLog()
            if keytext:
                keylog.add_text(keytext)
            decode_file(str(pcap), keylog=keylog, on_event=lambda e: None, registry=reg)
            for (kind, _conn), log in sorted(reg.logs.items(), key=lambda kv: (kv[0][0], kv[0][1])):
                if kind in ("tls",):
                    recs = key_rec + _stream_records(log)
                elif kind in ("http1", "http2", "dns-tcp"):
                    recs = _stream_records(log)
                elif kind == "quic":
                    recs = key_rec + _datagram_records(log)
                elif kind == "dns-udp":
                    recs = _datagram_records(log)
                    # DNS over TCP seeds: the same real messages with RFC 1035 §4.2.2 length prefixes
                    tcp = [(d, len(m).to_bytes(2, "big") + m) for d, m in recs]
                    if tcp:
                        seeds["dns-tcp"].append(tcp)
                elif kind == "http3":
                    recs = _h3_records(log)
                else:
                    continue
                if any(k in (R.C2S, R.S2C, R.H3_DATA) for k, _ in recs):
                    seeds[kind].append(recs)
            for headers, log in reg.upgrades:
                recs = _stream_records(log)
                if recs:
                    hs = json.dumps([_jsonable(headers[0]), _jsonable(headers[1])]).encode()
                    seeds["websocket"].append([(R.UPGRADE, hs)] + recs)
            for exchange, log in reg.bodies:
                body = [(R.C2S, bytes(args[0])) for _name, args in log]
                if body:
                    ex = dict(exchange, request_headers=_jsonable(exchange["request_headers"]),
                              response_headers=_jsonable(exchange["response_headers"]))
                    seeds["sse"].append([(R.EXCHANGE, json.dumps(ex).encode())] + body)
            seeds["tcp"].append(key_rec + _frames(pcap))
            seeds["reader"].extend(_reader_seeds(pcap, Path(tmp)))
    return dict(seeds)


if __name__ == "__main__":
    for name, items in sorted(extract().items()):
        print(f"{name:10} {len(items):4} seeds, {sum(len(d) for s in items for _, d in s):9} bytes")
