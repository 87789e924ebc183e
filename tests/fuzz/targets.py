"""Fuzz targets: one per reader/decoder, each fed through its public interface.

A target turns a list of records into calls: ``feed``/``gap``/``finish``
with a :class:`~inspector.flows.streamindex.StreamIndex` per direction
(stream decoders, exactly as the pipeline drives them), ``datagram`` (QUIC,
DNS over UDP), ``stream_data``/``stream_reset`` (HTTP/3, as the QUIC decoder
drives it), ``feed_body`` (SSE), or whole frames and files through the
:class:`~inspector.pipeline.Pipeline` (TCP reassembly, capture readers).

What counts as documented: a decoder may raise
:class:`~inspector.errors.DecodeError` (the pipeline then records a
``malformed`` event and stops that decoder, and so does a target); a capture
reader may raise :class:`~inspector.errors.CaptureError` for a file that is
not a capture.  Anything else escaping is a finding, and so is an exception
that a layer swallowed on purpose to protect the rest (the pipeline's
``decoder error:``, TLS's failed inner decoder, a summary's
``decoder_error``, ``analysis failed``): those are watched here with
wrappers on the decoders' entry points.
"""

from __future__ import annotations

import json
import os
import random
import re
import struct
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inspector.decoders.base import DecodeContext
from inspector.decoders.dns import DnsLookups, DnsTcpDecoder, DnsUdpDecoder
from inspector.decoders.http1 import MAX_HEAD, Http1Decoder
from inspector.decoders.http2 import MAX_HEADER_BLOCK, Http2Decoder
from inspector.decoders.http3 import MAX_BUFFERED as H3_MAX_BUFFERED
from inspector.decoders.http3 import MAX_TABLE_CAPACITY, Http3Decoder
from inspector.decoders.grpc import MAX_DECOMPRESSED, MAX_MESSAGE
from inspector.decoders.http_exchange import HttpExchange
from inspector.decoders.quic.decoder import CONNECTION_BUFFER_LIMIT, QuicDecoder
from inspector.decoders.sse import _MAX_DATA as SSE_MAX_DATA
from inspector.decoders.sse import _MAX_LINE as SSE_MAX_LINE
from inspector.decoders.sse import SseStreams
from inspector.decoders.tls import TlsDecoder
from inspector.decoders.tls.decoder import MAX_PENDING_PLAINTEXT
from inspector.decoders.websocket import _INFLATE_STEP, upgrade_factory
from inspector.errors import CaptureError, DecodeError
from inspector.events import Event, json_default
from inspector.flows.reassembly import MAX_BUFFERED as TCP_MAX_BUFFERED
from inspector.flows.streamindex import Span, StreamIndex
from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import Pipeline, decode_file

from . import mutate as M
from . import records as R
from .patchable import PatchableRegistry, patchable
from .quic_protect import Protector

MiB = 1 << 20
_DUMPS = json.JSONEncoder(default=json_default, separators=(",", ":")).encode
_DIGITS = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+")
#: messages of the layers that swallow an exception on purpose (so one bug cannot end a capture)
_SWALLOWED = ("decoder error:", "decoder selection failed", "analysis failed:")
STREAM_KINDS = frozenset({R.C2S, R.S2C})


class Swallowed(Exception):
    """An exception a protecting layer caught and turned into a malformed event or note."""


@dataclass
class Outcome:
    """What one execution produced."""

    events: int = 0
    layer_events: int = 0  #: events of the target's own layers: proof the decoder ran
    malformed: int = 0
    signatures: set[str] = field(default_factory=set)


class Watch:
    """Wraps decoder entry points: a non-DecodeError exception is remembered, then re-raised."""

    NAMES = ("feed", "gap", "finish", "summary", "datagram", "stream_data", "stream_reset", "feed_body", "end_body")

    def __init__(self) -> None:
        self.escaped: list[tuple[str, BaseException, str]] = []

    def __call__(self, obj: Any) -> Any:
        if obj is None:
            return obj
        for name in self.NAMES:
            orig = getattr(obj, name, None)
            if orig is None or getattr(orig, "_watched", False):
                continue
            where = f"{type(obj).__name__}.{name}"

            def watched(*args: Any, _orig: Any = orig, _where: str = where, **kw: Any) -> Any:
                try:
                    return _orig(*args, **kw)
                except DecodeError:
                    raise
                except Exception as e:
                    self.escaped.append((_where, e, traceback.format_exc()))
                    raise

            watched._watched = True  # type: ignore[attr-defined]
            try:
                setattr(obj, name, watched)
            except AttributeError:  # a __slots__ class: it is still driven, just not watched
                break
        return obj

    def factory(self, make: Callable[..., Any]) -> Callable[..., Any]:
        """A decoder factory whose products are watched."""
        return lambda *a, **kw: self(make(*a, **kw))

    def check(self) -> None:
        if self.escaped:
            where, exc, tb = self.escaped[0]
            raise Swallowed(f"{where} raised {type(exc).__name__}: {exc}\n{tb}") from exc


def _ctx(keys: bytes = b"", port: int = 443, events: bool = True) -> DecodeContext:
    keylog = None
    if keys:
        keylog = KeyLog()
        keylog.add_text(keys.decode(errors="replace"))
    return DecodeContext(conn=0, client=("10.0.0.1", 50000), server=("10.0.0.2", port), keylog=keylog,
                         facts={"events": events})


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|b'[^']*'")


def _norm(text: str) -> str:
    """A reason without its numbers and quoted input (so echoed bytes do not make new signatures)."""
    return _DIGITS.sub("#", _QUOTED.sub("''", text))[:60]


def _take(events: Any, out: Outcome, layers: frozenset[str]) -> None:
    """Count events, export each one (as ``export`` would), collect signatures."""
    for e in events or ():
        _DUMPS(e.to_dict())
        out.events += 1
        if e.layer in layers:
            out.layer_events += 1
        if e.type == "malformed":
            out.malformed += 1
            reason = e.reason or ""
            if reason.startswith(_SWALLOWED[:2]):
                raise Swallowed(f"pipeline caught: {reason}")
            out.signatures.add(f"M:{e.layer}:{_norm(reason)}")
        elif e.type == "note":
            msg = getattr(e, "message", "") or ""
            if msg.startswith("analysis failed:"):
                raise Swallowed(msg)
            out.signatures.add(f"N:{e.layer}:{_norm(msg)}")
        else:
            out.signatures.add(f"E:{e.layer}:{e.type}")


def _summary(dec: Any, out: Outcome) -> None:
    s = dec.summary() or {}
    if "decoder_error" in s:
        raise Swallowed(f"summary: {s['decoder_error']}")
    _DUMPS(s)
    out.signatures.update(f"S:{k}" for k in s)


def feed_stream(dec: Any, recs: list[R.Record], out: Outcome, layers: frozenset[str]) -> None:
    """Drive a StreamDecoder as the pipeline does: in-order bytes with their spans, gaps, finish."""
    index = (StreamIndex(), StreamIndex())
    off = [0, 0]
    frame, ts = 0, 1.0
    try:
        for kind, data in recs:
            if kind in STREAM_KINDS:
                if not data:
                    continue  # the reassembler never delivers empty runs
                d, n = kind, len(data)
            elif kind in (R.GAP_C2S, R.GAP_S2C):
                d, n = kind - R.GAP_C2S, max(1, int.from_bytes(data[:4].rjust(4, b"\0"), "big"))
            else:
                continue
            frame += 1
            ts += 0.001
            index[d].add(Span(off[d], off[d] + n, frame, ts, ts, frame))
            if kind in STREAM_KINDS:
                _take(dec.feed(d, data, off[d], index[d]), out, layers)
            else:
                _take(dec.gap(d, off[d], n, index[d]), out, layers)
            off[d] += n
        _take(dec.finish(), out, layers)
    except DecodeError as e:  # documented: the pipeline stops this decoder here
        out.malformed += 1
        out.signatures.add(f"D:{_norm(e.reason)}")
    _summary(dec, out)


class Target:
    """One fuzz target; subclasses define :meth:`execute` and may refine :meth:`mutate`."""

    name = ""
    layers: frozenset[str] = frozenset()
    kinds: frozenset[int] = STREAM_KINDS  #: records the mutators may change
    gaps = False  #: whether gap records make sense
    #: most memory one input may hold, from the documented limits the target's decoders enforce
    memory_bound = 16 * MiB
    bound_note = ""

    def run(self, recs: list[R.Record]) -> Outcome:
        watch = Watch()
        out = Outcome()
        self.execute(recs, out, watch)
        watch.check()
        return out

    def execute(self, recs: list[R.Record], out: Outcome, watch: Watch) -> None:
        raise NotImplementedError

    def prepare(self, seeds: list[list[R.Record]]) -> None:
        """Per-seed helpers (QUIC keys); called once before fuzzing."""

    def mutate(self, rng: random.Random, recs: list[R.Record], donor: list[R.Record]) -> list[R.Record]:
        return M.mutate_records(rng, recs, self.kinds, donor, self.gaps)


def _keys(recs: list[R.Record]) -> bytes:
    return b"".join(d for k, d in recs if k == R.KEYLOG)


class TlsTarget(Target):
    name = "tls"
    layers = frozenset({"tls"})
    gaps = True
    memory_bound = 4 * MAX_PENDING_PLAINTEXT + 8 * MiB
    bound_note = "TLS record buffer (one record, 16 KiB + expansion), early plaintext held (128 KiB)"

    def execute(self, recs, out, watch):
        ctx = _ctx(_keys(recs))
        reg = PatchableRegistry()
        dec = watch(patchable(TlsDecoder)(ctx, inner_factory=watch.factory(reg.inner_stream)))
        feed_stream(dec, recs, out, self.layers)


class _HttpTarget(Target):
    gaps = True
    cls: Any = None

    def execute(self, recs, out, watch):
        ctx = _ctx(port=80)
        sse = SseStreams()
        dec = watch(patchable(self.cls)(ctx, upgrade_factory=watch.factory(upgrade_factory),
                             body_observer_factory=watch.factory(sse.observer)))
        feed_stream(dec, recs, out, self.layers)
        _DUMPS(sse.summary(ctx.conn))


class Http1Target(_HttpTarget):
    name = "http1"
    layers = frozenset({"http"})
    cls = Http1Decoder
    memory_bound = 2 * MAX_HEAD + 8 * MiB
    bound_note = "message head 64 KiB per direction, chunk line 4 KiB"


class Http2Target(_HttpTarget):
    name = "http2"
    layers = frozenset({"http2", "grpc"})
    cls = Http2Decoder
    memory_bound = MAX_MESSAGE + MAX_DECOMPRESSED + 2 * MAX_HEADER_BLOCK + 8 * MiB
    bound_note = "gRPC message 16 MiB + decompressed 16 MiB, header block 1 MiB per direction"


class WebSocketTarget(Target):
    name = "websocket"
    layers = frozenset({"websocket"})
    gaps = True
    memory_bound = 4 * _INFLATE_STEP + 8 * MiB
    bound_note = "one inflate step (1 MiB) at a time; messages are counted, not kept"

    def execute(self, recs, out, watch):
        heads = next((d for k, d in recs if k == R.UPGRADE), b"[[], []]")
        req, resp = json.loads(heads)
        dec = watch(upgrade_factory(_ctx(port=80), "websocket", req, resp))
        feed_stream(dec, recs, out, self.layers)


class SseTarget(Target):
    name = "sse"
    layers = frozenset({"sse"})
    memory_bound = SSE_MAX_LINE + SSE_MAX_DATA + 8 * MiB
    bound_note = "line 1 MiB, event data 4 MiB"

    def execute(self, recs, out, watch):
        raw = json.loads(next((d for k, d in recs if k == R.EXCHANGE), b"{}") or b"{}")
        ex = HttpExchange(stream=raw.get("stream"), method=raw.get("method"), path=raw.get("path"),
                          authority=raw.get("authority"), request_headers=raw.get("request_headers", []),
                          response_headers=raw.get("response_headers", []), status=200,
                          content_type="text/event-stream", request_ts=1.0, request_frame=1)
        streams = SseStreams()
        ctx = _ctx(port=80)
        obs = watch(streams.observer(ctx, ex))
        frame, ts = 1, 1.0
        for kind, data in recs:
            if kind in STREAM_KINDS and data:
                frame += 1
                ts += 0.001
                _take(obs.feed_body(data, ts, frame), out, self.layers)
        _take(obs.end_body(ts, frame), out, self.layers)
        _DUMPS(streams.summary(ctx.conn))


class DnsUdpTarget(Target):
    name = "dns-udp"
    layers = frozenset({"dns"})
    memory_bound = 8 * MiB
    bound_note = "256 records per message, 128 compression hops"

    def execute(self, recs, out, watch):
        lookups = DnsLookups()
        dec = watch(DnsUdpDecoder(_ctx(port=53), lookups))
        for i, (kind, data) in enumerate(recs):
            if kind in STREAM_KINDS:
                try:
                    _take(dec.datagram(kind, data, i + 1, 1.0 + i / 1000), out, self.layers)
                except DecodeError as e:  # documented (the pipeline makes it a malformed event)
                    out.malformed += 1
                    out.signatures.add(f"D:{_norm(e.reason)}")
                    break
        _take(dec.finish(), out, self.layers)
        _summary(dec, out)
        lookups.resolution_for("127.0.0.2", 10.0)


class DnsTcpTarget(Target):
    name = "dns-tcp"
    layers = frozenset({"dns"})
    gaps = True
    memory_bound = 8 * MiB
    bound_note = "one 64 KiB message buffered per direction"

    def execute(self, recs, out, watch):
        feed_stream(watch(DnsTcpDecoder(_ctx(port=53), DnsLookups())), recs, out, self.layers)


class QuicTarget(Target):
    name = "quic"
    layers = frozenset({"quic", "http3"})
    kinds = STREAM_KINDS
    memory_bound = CONNECTION_BUFFER_LIMIT + H3_MAX_BUFFERED + 16 * MiB
    bound_note = "stream reassembly 32 MiB per connection, CRYPTO 64 KiB per level, HTTP/3 partial frames 32 MiB"

    def __init__(self) -> None:
        self._protectors: dict[bytes, Protector] = {}

    def prepare(self, seeds):
        for s in seeds:
            keys = _keys(s)
            first = next((d for k, d in s if k == R.C2S), b"")
            p = Protector(s)
            if p.usable:
                self._protectors[keys + first[:64]] = p

    def _protector(self, recs: list[R.Record]) -> Protector | None:
        keys = _keys(recs)
        first = next((d for k, d in recs if k == R.C2S), b"")
        return self._protectors.get(keys + first[:64])

    def mutate(self, rng, recs, donor):
        if rng.random() < 0.6:
            p = self._protector(recs)
            if p is not None:
                donors = [d for k, d in donor if k in STREAM_KINDS]
                out = p.mutate(rng, recs, lambda r, b: M.mutate_bytes(r, b, r.choice(donors) if donors else b""))
                if out is not None:
                    return out
        return super().mutate(rng, recs, donor)

    def execute(self, recs, out, watch):
        dec = watch(QuicDecoder(_ctx(_keys(recs))))
        for i, (kind, data) in enumerate(recs):
            if kind in STREAM_KINDS:
                _take(dec.datagram(kind, data, i + 1, 1.0 + i / 1000), out, self.layers)
                if dec.app is not None:
                    watch(dec.app)
        _take(dec.finish(), out, self.layers)
        _summary(dec, out)


_H3 = struct.Struct(">BQB")


class Http3Target(Target):
    name = "http3"
    layers = frozenset({"http3"})
    kinds = frozenset({R.H3_DATA, R.H3_RESET})
    memory_bound = H3_MAX_BUFFERED + 2 * MAX_TABLE_CAPACITY + 16 * MiB
    bound_note = "partial frames 32 MiB per connection, QPACK table 1 MiB per direction"

    def execute(self, recs, out, watch):
        dec = watch(Http3Decoder(_ctx()))
        indexes: dict[tuple[int, int], list[Any]] = {}
        for i, (kind, data) in enumerate(recs):
            frame, ts = i + 1, 1.0 + i / 1000
            if len(data) < _H3.size:
                continue
            d, sid, tail = _H3.unpack_from(data)
            d &= 1
            sid &= (1 << 62) - 1  # a QUIC stream id is a 62-bit varint
            try:
                if kind == R.H3_DATA:
                    payload = data[_H3.size :]
                    st = indexes.setdefault((d, sid), [StreamIndex(), 0])
                    st[0].add(Span(st[1], st[1] + len(payload), frame, ts, ts, frame))
                    _take(dec.stream_data(d, sid, payload, st[1], bool(tail & 1), st[0], frame, ts), out, self.layers)
                    st[1] += len(payload)
                elif kind == R.H3_RESET:
                    _take(dec.stream_reset(d, sid, int.from_bytes(data[_H3.size - 1 :][:8], "big"), frame, ts),
                          out, self.layers)
            except DecodeError as e:  # the QUIC decoder reports it for that stream and goes on
                out.malformed += 1
                out.signatures.add(f"D:{_norm(e.reason)}")
        _take(dec.finish(), out, self.layers)
        _summary(dec, out)


class _PipelineTarget(Target):
    """Targets driven through the whole pipeline (frames or files)."""

    memory_bound = 2 * TCP_MAX_BUFFERED * 4 + 32 * MiB
    bound_note = "out-of-order buffer 8 MiB per direction (a few connections per input)"

    def _finish(self, pipe: Pipeline, events: list[Event], out: Outcome) -> None:
        _take(events, out, self.layers)
        for s in summaries(pipe.connections, pipe.registry):
            if "decoder_error" in s:
                raise Swallowed(f"summary: {s['decoder_error']}")
            _DUMPS(s)


class TcpTarget(_PipelineTarget):
    name = "tcp"
    layers = frozenset({"tcp"})
    kinds = frozenset({R.FRAME})

    def execute(self, recs, out, watch):
        keys = _keys(recs)
        keylog = KeyLog()
        keylog.add_text(keys.decode(errors="replace"))
        events: list[Event] = []
        pipe = Pipeline(keylog=keylog, on_event=events.append, segments=True)
        for i, (kind, data) in enumerate(recs):
            if kind == R.FRAME and len(data) >= 2:
                pipe.feed(1.0 + i / 1000, int.from_bytes(data[:2], "big"), data[2:])
        pipe.finish()
        self._finish(pipe, events, out)

    def mutate(self, rng, recs, donor):
        if rng.random() < 0.5:
            out = tcp_surgery(rng, recs)
            if out is not None:
                return out
        return super().mutate(rng, recs, donor)


class ReaderTarget(_PipelineTarget):
    name = "reader"
    layers = frozenset({"tcp", "udp", "frame", "ip"})
    kinds = frozenset({R.FILE})

    def __init__(self) -> None:
        d = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self._path = os.path.join(d or tempfile.gettempdir(), f"netinspect-fuzz-{os.getpid()}.pcap")

    def mutate(self, rng, recs, donor):
        if recs and recs[0][0] == R.FILE and recs[0][1][:2] == b"\x1f\x8b" and rng.random() < 0.7:
            import gzip
            import zlib

            try:  # mutate inside the gzip stream, then compress again
                inner = gzip.decompress(recs[0][1])
            except (OSError, EOFError, zlib.error):
                inner = None
            if inner is not None:
                return [(R.FILE, gzip.compress(M.mutate_bytes(rng, inner), mtime=0))]
        return super().mutate(rng, recs, donor)

    def execute(self, recs, out, watch):
        blob = b"".join(d for k, d in recs if k == R.FILE)
        with open(self._path, "wb") as f:
            f.write(blob)
        events: list[Event] = []
        try:
            pipe, reader = decode_file(self._path, on_event=events.append, segments=True)
        except CaptureError as e:  # documented: not a capture at all
            out.signatures.add(f"C:{_norm(str(e).split(': ', 1)[-1])}")
            return
        if reader.warning:
            out.signatures.add(f"W:{_norm(reader.warning)}")
        self._finish(pipe, events, out)


# ---------------------------------------------------------------- TCP segment surgery

_ETH_IPV4 = b"\x08\x00"


def _tcp_parts(frame: bytes) -> tuple[int, int, int] | None:
    """(IP offset, TCP offset, payload offset) of an Ethernet/IPv4/TCP frame, else None."""
    if len(frame) < 2 + 14 + 40 or frame[2 + 12 : 2 + 14] != _ETH_IPV4 or frame[0:2] != b"\x00\x01":
        return None
    ip = 2 + 14
    if frame[ip] >> 4 != 4 or frame[ip + 9] != 6:
        return None
    t = ip + (frame[ip] & 15) * 4
    if t < ip + 20 or len(frame) < t + 20:
        return None
    p = t + (frame[t + 12] >> 4) * 4
    return (ip, t, p) if t + 20 <= p <= len(frame) else None


def _rebuild(frame: bytes, parts: tuple[int, int, int], seq: int, payload: bytes, flags: int | None = None) -> bytes:
    ip, t, p = parts
    head = bytearray(frame[:p])
    struct.pack_into(">H", head, ip + 2, p - ip + len(payload))
    struct.pack_into(">I", head, t + 4, seq & 0xFFFFFFFF)
    if flags is not None:
        head[t + 13] = flags
    return bytes(head) + payload


def tcp_surgery(rng: random.Random, recs: list[R.Record]) -> list[R.Record] | None:
    """Re-segment TCP: split a segment, overlap it with different bytes, shift its sequence number,
    or change its flags (the segments stay valid Ethernet/IPv4/TCP frames)."""
    cands = [i for i, (k, d) in enumerate(recs) if k == R.FRAME and (pp := _tcp_parts(d)) and len(d) > pp[2]]
    if not cands:
        return None
    i = rng.choice(cands)
    frame = recs[i][1]
    parts = _tcp_parts(frame)
    assert parts is not None
    seq = struct.unpack_from(">I", frame, parts[1] + 4)[0]
    payload = frame[parts[2] :]
    out = list(recs)
    op = rng.randrange(5)
    if op == 0 and len(payload) > 1:  # split in two, second one first (out of order)
        cut = rng.randrange(1, len(payload))
        a = _rebuild(frame, parts, seq, payload[:cut])
        b = _rebuild(frame, parts, seq + cut, payload[cut:])
        out[i : i + 1] = [(R.FRAME, b), (R.FRAME, a)] if rng.random() < 0.5 else [(R.FRAME, a), (R.FRAME, b)]
    elif op == 1 and len(payload) > 2:  # overlapping retransmission with different bytes in the overlap
        cut = rng.randrange(1, len(payload))
        back = rng.randrange(1, cut + 1)
        changed = bytes(rng.randrange(256) for _ in range(back)) + payload[cut:]
        out.insert(i + 1, (R.FRAME, _rebuild(frame, parts, seq + cut - back, changed)))
    elif op == 2:  # sequence number shifted (overlap or hole)
        delta = rng.choice((-1, 1, -len(payload), len(payload), rng.randrange(-65536, 65536), 1 << 31))
        out[i] = (R.FRAME, _rebuild(frame, parts, seq + delta, payload))
    elif op == 3:  # different flags (FIN, RST, SYN in the middle)
        out[i] = (R.FRAME, _rebuild(frame, parts, seq, payload, rng.choice((0x01, 0x04, 0x02, 0x12, 0x11, 0x19,
                                                                             0x14, 0x18, 0x00, 0xFF))))
    else:  # moved far later (a long-held out-of-order segment)
        rec = out.pop(i)
        out.insert(rng.randrange(i, len(out) + 1), rec)
    return out


TARGETS: dict[str, Target] = {t.name: t for t in (
    ReaderTarget(), TcpTarget(), TlsTarget(), Http1Target(), Http2Target(), QuicTarget(), Http3Target(),
    WebSocketTarget(), SseTarget(), DnsUdpTarget(), DnsTcpTarget())}
