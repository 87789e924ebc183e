"""The one incremental pipeline: frames in, connections and events out.

File reading, live capture and the UI all drive the same :class:`Pipeline`:
``feed()`` one frame at a time, ``finish()`` at the end.  Each frame goes
link -> IP -> TCP/UDP -> flow table -> TCP analysis and reassembly ->
decoders; events are handed to ``on_event`` as soon as they exist, so a
consumer can show results while a large file is still loading.

This is the hot path: precompiled structs, no per-packet objects unless an
event consumer asked for segment events, and no reassembly for connections
that no decoder claimed.  Decoder exceptions stop at :meth:`Pipeline._guard`
and become ``malformed`` events.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from functools import partial
from itertools import chain
from collections.abc import Callable, Iterable
from typing import Any

from . import events as ev
from .capture.reader import CaptureReader
from .decoders.registry import Registry
from .decoders.base import DecodeContext
from .errors import DecodeError
from .flows.connection import DECODING, IDLE, NO_DECODER, UNDECIDED, Connection, sender_is_client
from .flows.streamindex import Span
from .flows.tcp import TcpState
from .flows.tcp_analysis import ACK, FIN, REUSED_PORTS, RST, SYN, flag_names
from .keylog import KeyLog
from .net.ip import Fragments, format_addr, parse_ip
from .net.link import LINK_TYPES

_TCP = struct.Struct("!HHIIBBH")
# IPv4 header without options then the TCP header: version/IHL, total length,
# flags+fragment offset, protocol, then ports, seq, ack, data offset, flags, window
_V4_TCP = struct.Struct("!BxH2xHxB10xHHIIBBH")
_UDP = struct.Struct("!HHH")
_PORT = struct.Struct("!H")
_FLAG_LETTERS = "FSRPAUEC"
_flags_cache: dict[int, str] = {}


def flags_text(flags: int) -> str:
    """TCP flags as letters in bit order: SYN/ACK is "SA", FIN/ACK "FA"."""
    text = _flags_cache.get(flags)
    if text is None:
        text = _flags_cache[flags] = "".join(c for i, c in enumerate(_FLAG_LETTERS) if flags >> i & 1)
    return text


EventSink = Callable[[ev.Event], Any]

#: server addresses whose latest connection start is remembered (Connection.prev_start)
MAX_SERVER_ADDRESSES = 65536


class Pipeline:
    """Decode frames incrementally; see the module docstring."""

    def __init__(
        self,
        keylog: KeyLog | None = None,
        on_event: EventSink | None = None,
        segments: bool = False,
        registry: Any = None,
        retirement: Any = None,
    ) -> None:
        self.keylog = keylog if keylog is not None else KeyLog()
        self.on_event = on_event
        #: emit a ``tcp``/``segment`` event per TCP segment (export and UI; not summary)
        self.segments = segments and on_event is not None
        #: someone wants every event: decoders are fed to the end even when ``idle``
        self.detail = on_event is not None
        #: decoder selection and capture-wide decoder state (one per capture)
        self.registry = registry if registry is not None else Registry()
        self.frame = 0
        self.connections: list[Connection] = []
        # flow key (src + dst + sport + dport bytes; UDP keys carry a prefix) -> (connection, direction)
        self._flows: dict[bytes, tuple[Connection, int]] = {}
        self._udp_key = b"u"
        self._frags = Fragments()
        self.malformed = 0
        self.unknown_links: set[int] = set()
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        # server address -> start of the latest TCP or QUIC connection to it (Connection.prev_start)
        self._last_start: OrderedDict[bytes, float] = OrderedDict()
        #: server addresses dropped from ``_last_start`` (MAX_SERVER_ADDRESSES; reported by the CLI)
        self.addresses_forgotten = 0
        #: retires closed connections while decoding (summary and export; see inspector.retirement)
        self.retirement = retirement
        self._next_sweep = 0
        if retirement is not None:
            retirement.bind(self)

    # ------------------------------------------------------------------ input

    def feed(self, ts: float, linktype: int, data: bytes, orig_len: int | None = None) -> None:
        """Decode one captured frame (frames are numbered from 1 in feed order)."""
        self.run(((ts, linktype, data, len(data) if orig_len is None else orig_len),))

    def run(self, packets: Iterable[tuple[float, int, bytes, int]]) -> None:
        """Decode every packet of an iterable of ``(ts, linktype, data, orig_len)``.

        The loop handles the common case inline, on purpose: Ethernet or Linux
        cooked frames carrying IPv4 without options or fragmentation, on a TCP
        connection already known, without SYN/FIN/RST and with no decoder
        attached.  Function calls cost as much as the work itself here (one
        call per packet saved is ~8% of the summary time on a 400k-packet
        capture).  Everything else goes through :meth:`_slow`.
        """
        flows_get = self._flows.get
        v4tcp = _V4_TCP.unpack_from
        segments = self.segments
        frame = self.frame
        ts = None
        if self.first_ts is None:
            packets = iter(packets)
            for first in packets:  # peek at the first packet for the capture's start time
                self.first_ts = first[0]
                packets = chain((first,), packets)
                break
        for ts, linktype, data, wire in packets:
            frame += 1
            if linktype == 1 and len(data) >= 54 and data[12] == 8 and data[13] == 0:
                off = 14
            elif linktype == 276 and len(data) >= 60 and data[0] == 8 and data[1] == 0:
                off = 20
            else:
                self.frame = frame
                self._slow(frame, ts, linktype, data, wire)
                continue
            # IPv4 and TCP fixed headers in one unpack
            vihl, total, fragment, proto, sport, dport, seq, ack, offb, flags, win = v4tcp(data, off)
            if vihl != 0x45 or fragment & 0x3FFF or total < 40 or proto != 6:
                self.frame = frame
                self._slow(frame, ts, linktype, data, wire)
                continue
            t = off + 20
            # src, dst, sport, dport are contiguous here: one slice is the flow key
            entry = flows_get(data[off + 12 : t + 4])
            thl = (offb >> 4) << 2
            seglen = total - 20 - thl
            if entry is None or flags & 7 or thl < 20 or seglen < 0 or segments:
                self.frame = frame
                self._tcp(frame, ts, data[off + 12 : t + 4], data, t, total - 20, wire)
                continue
            conn, d = entry
            conn.bytes += wire
            conn.dir_packets[d] += 1
            if seglen:
                conn.dir_bytes[d] += seglen
            conn.end = ts
            conn.last_frame = frame
            tcp = conn.tcp
            tcp.segment(d, frame, ts, seq, ack, flags, win, seglen, b"")
            if conn.decoder_state <= DECODING:
                self.frame = frame
                # _stream inlined (one call less per packet); no SYN, FIN or RST on this path
                if seglen:
                    p = t + thl
                    if tcp.stream_segment(d, seq, flags, seglen, data[p : p + seglen], frame, ts):
                        self._resent_differs(conn, d, frame, ts)
                if flags & ACK:
                    tcp.acked(d, ack, frame, ts)
        self.frame = frame
        if ts is not None:
            self.last_ts = ts

    def _slow(self, frame: int, ts: float, linktype: int, data: bytes, wire: int) -> None:
        """Any frame the fast loop in :meth:`run` does not handle itself."""
        if self.first_ts is None:
            self.first_ts = ts
        link = LINK_TYPES.get(linktype)
        if link is None:
            if linktype not in self.unknown_links:
                self.unknown_links.add(linktype)
                self._emit(ev.Note(frame=frame, ts=ts, conn=None, layer="frame", severity="warning",
                                   message=f"link type {linktype} is not supported; its frames are skipped"))
            return
        off = link(data)
        if off < 0:
            return  # not IP (ARP, LLDP...): counted as a frame, nothing to decode
        try:
            parsed = parse_ip(data, off, self._frags)
        except DecodeError as e:
            self._malformed(frame, ts, None, "ip", e.reason)
            return
        if parsed is None:
            return  # a fragment waiting for the rest of its datagram
        proto, src, dst, l4, reported = parsed
        if proto == 6:
            self._tcp(frame, ts, src + dst + l4[:4], l4, 0, reported, wire)
        elif proto == 17:
            self._udp(frame, ts, src, dst, l4, wire)

    def finish(self) -> None:
        """End of input: deliver buffered bytes across holes and flush decoders."""
        for conn in self.connections:
            if conn is not None:
                self.finish_connection(conn)
        # analysis (RTT ledger, head-of-line blocking): see inspector.analysis
        from .analysis import analyze

        retirement = self.retirement
        if retirement is None:
            events = analyze(self)
        else:
            events = analyze(self, retirement.analyzer, retirement.waiting())
            late = retirement.stats["late_packets"]
            if late:
                events.append(ev.Note(frame=self.frame, ts=self.last_ts or 0.0, conn=None, layer="tcp",
                                      severity="warning",
                                      message=f"{late} packet{'s' if late != 1 else ''} arrived after their "
                                              "connection had closed and was retired: not counted"))
        for event in events:
            self._emit(event)

    def finish_connection(self, conn: Connection) -> None:
        """Deliver a connection's buffered bytes across holes and flush its decoder (end of input,
        or its retirement)."""
        tcp = conn.tcp
        if tcp is not None and conn.decoder_state <= DECODING:
            for r in tcp.reasm:
                if r is not None and r.buffered:
                    r.flush(conn.last_frame, conn.end)
        if conn.decoder_state in (DECODING, IDLE):
            self._guard(conn, conn.decoder.finish, conn.last_frame, conn.end)

    def forget(self, conn: Connection) -> None:
        """Drop a retired connection: its flow keys and its place in :attr:`connections` (None)."""
        for key in self.flow_keys(conn):
            if self._flows.get(key, (None,))[0] is conn:
                del self._flows[key]
        self.connections[conn.id] = None
        if conn.tcp is not None:
            conn.tcp.detach_streams()  # its callbacks refer back to it: let reference counting free it

    def flow_keys(self, conn: Connection) -> tuple[bytes, bytes]:
        """A connection's two flow keys, client to server and back: the packet's src + dst addresses
        + ports, as bytes (cheap to slice and hash; UDP keys carry a prefix)."""
        (caddr, saddr), (cport, sport) = conn.addrs, conn.ports
        cp, sp = _PORT.pack(cport), _PORT.pack(sport)
        prefix = self._udp_key if conn.transport == "udp" else b""
        return prefix + caddr + saddr + cp + sp, prefix + saddr + caddr + sp + cp

    # ------------------------------------------------------------------ tcp

    def _tcp(self, frame: int, ts: float, key: bytes, data: bytes, t: int, reported: int, wire: int) -> None:
        """One TCP segment whose header starts at ``data[t]``; ``key`` is src+dst+ports."""
        if len(data) < t + 20 or reported < 20:
            self._malformed(frame, ts, None, "tcp", f"TCP header truncated ({min(len(data) - t, reported)} bytes)")
            return
        sport, dport, seq, ack, offb, flags, win = _TCP.unpack_from(data, t)
        thl = (offb >> 4) << 2
        if thl < 20 or reported < thl:
            self._malformed(frame, ts, None, "tcp", f"bad TCP header length {thl}")
            return
        seglen = reported - thl
        entry = self._flows.get(key)
        reused = False
        retirement = self.retirement
        if retirement is not None and frame >= self._next_sweep:
            self._next_sweep = frame + retirement.sweep_every
            retirement.sweep(ts)
            entry = self._flows.get(key)  # it may have just retired
        if entry is None:
            if retirement is not None and not flags & SYN and retirement.late(key):
                return  # a straggler of a retired connection (counted there)
            conn, d = self._new_tcp(frame, ts, key, sport, dport, flags)
        else:
            conn, d = entry
            if flags & 0x12 == SYN:
                an = conn.tcp.an[d]
                if an.base_set and seq != an.base_seq:
                    # A new SYN on a known 4-tuple with another ISN: port reuse, a new connection.
                    conn, d = self._new_tcp(frame, ts, key, sport, dport, flags)
                    reused = True
        tcp = conn.tcp
        conn.bytes += wire
        conn.dir_packets[d] += 1
        conn.dir_bytes[d] += seglen
        conn.end = ts
        conn.last_frame = frame
        bits, rtt = tcp.segment(d, frame, ts, seq, ack, flags, win, seglen, data[t + 20 : t + thl] if flags & SYN else b"")
        if reused:
            bits |= REUSED_PORTS
            tcp.counts["reused_ports"] = 1
        if self.segments:
            an = tcp.an
            base = an[d].base_seq
            rack = (ack - an[1 - d].base_seq) & 0xFFFFFFFF if flags & ACK else 0
            ws = an[d].win_scale
            window = win << ws if ws >= 0 and not flags & SYN else win
            self.on_event(ev.TcpSegment(
                frame=frame, ts=ts, conn=conn.id, direction=ev.DIRECTIONS[d], flags=flags_text(flags),
                seq=(seq - base) & 0xFFFFFFFF, ack=rack, len=seglen, window=window,
                analysis=flag_names(bits), ack_rtt=rtt))
        if conn.decoder_state <= DECODING:
            self._stream(conn, tcp, d, frame, ts, seq, ack, flags, seglen, data, t + thl)
        if flags & (FIN | RST) and retirement is not None:
            retirement.closed(conn)

    def _stream(self, conn: Connection, tcp: TcpState, d: int, frame: int, ts: float, seq: int, ack: int,
                flags: int, seglen: int, data: bytes, p: int) -> None:
        """Hand a segment's payload (at ``data[p:]``) and its ACK to the reassemblers."""
        # the captured payload may be shorter than seglen (snap length): the rest is a gap
        if (seglen or flags & (SYN | FIN)) and tcp.stream_segment(d, seq, flags, seglen, data[p : p + seglen], frame, ts):
            self._resent_differs(conn, d, frame, ts)
        if flags & ACK:
            tcp.acked(d, ack, frame, ts)
        if flags & FIN and not self.detail:
            self._release_closed(tcp)

    def _resent_differs(self, conn: Connection, d: int, frame: int, ts: float) -> None:
        self._emit(ev.Note(frame=frame, ts=ts, conn=conn.id, layer="tcp", severity="warning",
                           direction=ev.DIRECTIONS[d],
                           message="retransmitted bytes differ from the original transmission"))

    @staticmethod
    def _release_closed(tcp: TcpState) -> None:
        """Summary mode: a connection whose two streams both reached their FIN, every byte delivered and
        nothing held, lost or resent, needs its reassemblers no more (buffers, the history retransmissions
        are compared with, stream indexes: about 40% of what a closed tiny connection kept, see README).

        The decoder and TCP's analysis stay, since the summary reads them; segments that still come are
        analysed but not reassembled, as for an idle connection, and the HOL analysis reads TCP's own
        records instead (empty for a connection without retransmissions or reordering)."""
        for r in tcp.reasm:
            if r is None or r.fin is None or r.on_end is not None or r.buffered or r.hol or r.resent or r.gaps:
                return
        if tcp.fills[0] or tcp.fills[1]:
            return
        tcp.detach_streams()

    def _new_tcp(self, frame: int, ts: float, key: bytes, sport: int, dport: int, flags: int) -> tuple[Connection, int]:
        alen = (len(key) - 4) >> 1
        src, dst = key[:alen], key[alen : 2 * alen]
        if flags & SYN:
            from_client = not flags & ACK  # SYN: the sender is the client; SYN/ACK: the server
        else:
            from_client = sender_is_client(sport, dport)
        if from_client:
            client, server = (src, sport), (dst, dport)
        else:
            client, server = (dst, dport), (src, sport)
        conn = Connection(len(self.connections), "tcp", client, server, ts, frame)
        conn.tcp = TcpState()
        self._attach_context(conn)
        self.connections.append(conn)
        self._register(conn)
        self._note_start(conn)
        if self.retirement is not None:
            self.retirement.opened(conn)
        # Reassemble from the start; dropped again if no decoder claims the stream.
        conn.tcp.attach_streams(partial(self._deliver, conn), partial(self._gap, conn), partial(self._end, conn),
                                partial(self._resent, conn))
        return conn, 0 if from_client else 1

    def _note_start(self, conn: Connection) -> None:
        """Record the start of the previous connection to the same server address (the ledger's
        DNS step counts a lookup for the first connection after it only), for at most
        MAX_SERVER_ADDRESSES addresses (a scan of more forgets the least recent)."""
        starts = self._last_start
        addr = conn.addrs[1]
        conn.prev_start = starts.pop(addr, None)
        starts[addr] = conn.start
        if len(starts) > MAX_SERVER_ADDRESSES:
            starts.popitem(last=False)
            self.addresses_forgotten += 1

    def _register(self, conn: Connection) -> None:
        to_server, to_client = self.flow_keys(conn)
        self._flows[to_server] = (conn, 0)
        self._flows[to_client] = (conn, 1)

    def _attach_context(self, conn: Connection) -> None:
        conn.ctx = DecodeContext(
            conn=conn.id,
            client=(format_addr(conn.addrs[0]), conn.ports[0]),
            server=(format_addr(conn.addrs[1]), conn.ports[1]),
            keylog=self.keylog,
            # summary mode: decoders may skip building events nobody will read
            facts={"events": self.detail},
        )

    def _deliver(self, conn: Connection, d: int, data: bytes, off: int, span: Span) -> None:
        state = conn.decoder_state
        if state == UNDECIDED:
            try:
                decoder = self.registry.choose_stream(conn.ctx, d, data)
            except Exception as e:  # a decoder's sniffing must never take the capture down
                self._malformed(span.frame, span.delivered, conn, "tcp", f"decoder selection failed: {e!r}")
                decoder = None
            if decoder is None:
                conn.decoder_state = NO_DECODER
                conn.tcp.detach_streams()  # nothing wants these bytes: stop reassembling
                return
            conn.decoder = decoder
            conn.decoder_state = DECODING
            for gd, goff, glen, gspan in conn.early_gaps:
                index = conn.tcp.reasm[gd].index
                self._guard(conn, lambda: decoder.gap(gd, goff, glen, index), gspan.frame, gspan.delivered)
            conn.early_gaps = []
            if conn.decoder_state != DECODING:
                return
        elif state != DECODING:
            return
        decoder = conn.decoder
        try:  # the decoder boundary (as in _guard, inlined: this runs per segment)
            out = decoder.feed(d, data, off, conn.tcp.reasm[d].index)
        except Exception as e:
            self._decoder_failed(conn, e, span.frame, span.delivered)
            return
        if out:
            self._deliver_events(conn, out)
        if not self.detail and getattr(decoder, "idle", False) and conn.decoder_state == DECODING:
            # Nothing the summary shows depends on further bytes: stop reassembling.
            conn.decoder_state = IDLE
            conn.tcp.detach_streams()

    def _gap(self, conn: Connection, d: int, off: int, length: int, span: Span) -> None:
        self._emit(ev.StreamGap(frame=span.frame, ts=span.delivered, conn=conn.id,
                                direction=ev.DIRECTIONS[d], offset=off, length=length))
        if conn.decoder_state == DECODING:
            index = conn.tcp.reasm[d].index
            self._guard(conn, lambda: conn.decoder.gap(d, off, length, index), span.frame, span.delivered)
        elif conn.decoder_state == UNDECIDED and len(conn.early_gaps) < 64:
            conn.early_gaps.append((d, off, length, span))

    def _end(self, conn: Connection, d: int, frame: int, ts: float) -> None:
        """Direction ``d`` ended with a FIN and every byte before it was delivered."""
        if conn.decoder_state == DECODING:
            end = getattr(conn.decoder, "end", None)
            if end is not None:
                self._guard(conn, lambda: end(d, frame, ts), frame, ts)

    def _resent(self, conn: Connection, d: int, since: int, frame: int, ts: float) -> None:
        """Direction ``d`` sent again in ``frame`` bytes first sent in frame ``since`` (rare: never per
        packet): each decoder layer with ``hol_resent`` names the units it completed since (HOL at the sender)."""
        if conn.decoder_state != DECODING:
            return
        from .analysis.units import layers  # the analyses' layer walk (imported on the first retransmission)

        for layer in layers(conn.decoder):
            hook = getattr(layer, "hol_resent", None)
            if hook is not None:
                self._guard(conn, partial(hook, d, since, frame, ts), frame, ts)

    # ------------------------------------------------------------------ udp

    def _udp(self, frame: int, ts: float, src: bytes, dst: bytes, l4: bytes, wire: int) -> None:
        if len(l4) < 8:
            self._malformed(frame, ts, None, "udp", f"UDP header truncated ({len(l4)} bytes)")
            return
        sport, dport, ulen = _UDP.unpack_from(l4)
        payload = l4[8:ulen] if 8 <= ulen <= len(l4) else l4[8:]
        key = self._udp_key + src + dst + l4[:4]
        entry = self._flows.get(key)
        retirement = self.retirement
        if retirement is not None and frame >= self._next_sweep:
            self._next_sweep = frame + retirement.sweep_every
            retirement.sweep(ts)
            entry = self._flows.get(key)  # it may have just retired
        if entry is None:
            if retirement is not None:
                retirement.resumed(key)  # counts a retired flow's key coming back (a new flow all the same)
            if sender_is_client(sport, dport):
                client, server = (src, sport), (dst, dport)
            else:
                client, server = (dst, dport), (src, sport)
            conn = Connection(len(self.connections), "udp", client, server, ts, frame)
            self._attach_context(conn)
            self.connections.append(conn)
            self._register(conn)
            d = 0 if client[1] == sport and client[0] == src else 1
        else:
            conn, d = entry
        conn.bytes += wire
        conn.dir_packets[d] += 1
        conn.dir_bytes[d] += len(payload)
        conn.end = ts
        conn.last_frame = frame
        if conn.decoder_state == UNDECIDED:
            try:
                decoder = self.registry.choose_datagram(conn.ctx, d, payload)
            except Exception as e:
                self._malformed(frame, ts, conn, "udp", f"decoder selection failed: {e!r}")
                decoder = None
            conn.decoder = decoder
            conn.decoder_state = DECODING if decoder is not None else NO_DECODER
            from .analysis.units import quic_of  # (imported once: this runs per new UDP flow)

            if quic_of(decoder) is not None:
                self._note_start(conn)
            elif retirement is not None:
                retirement.flow(conn, True)
        elif retirement is not None:
            retirement.flow(conn, False)
        if conn.decoder_state == DECODING:
            self._guard(conn, lambda: conn.decoder.datagram(d, payload, frame, ts), frame, ts)
            if d and retirement is not None:
                retirement.closed(conn)  # a DNS flow whose lookups are all answered may retire
        elif self.segments:
            self.on_event(ev.UdpDatagram(frame=frame, ts=ts, conn=conn.id, direction=ev.DIRECTIONS[d], len=len(payload)))

    # ------------------------------------------------------------------ events

    def _guard(self, conn: Connection, call: Callable[[], list[ev.Event] | None], frame: int, ts: float) -> None:
        """Run a decoder call; a decoder error becomes a malformed event and stops that decoder."""
        try:
            out = call()
        except Exception as e:
            self._decoder_failed(conn, e, frame, ts)
            return
        if out:
            self._deliver_events(conn, out)

    def _decoder_failed(self, conn: Connection, e: Exception, frame: int, ts: float) -> None:
        """A decoder raised: a malformed event, and that decoder stops for this connection."""
        if isinstance(e, DecodeError):
            reason = e.reason
        else:  # a bug in a decoder must not end the capture
            reason = f"decoder error: {type(e).__name__}: {e}"
        self._malformed(frame, ts, conn, _layer_of(conn.decoder), reason)
        self._stop_decoder(conn)

    def _deliver_events(self, conn: Connection, out: list[ev.Event]) -> None:
        sink = self.on_event
        for event in out:
            if event.type == "malformed":
                self.malformed += 1
                conn.malformed += 1
            if sink is not None:
                sink(event)

    def _stop_decoder(self, conn: Connection) -> None:
        conn.decoder_state = NO_DECODER
        if conn.tcp is not None:
            conn.tcp.detach_streams()

    def _malformed(self, frame: int, ts: float, conn: Connection | None, layer: str, reason: str) -> None:
        self.malformed += 1
        if conn is not None:
            conn.malformed += 1
        self._emit(ev.Malformed(frame=frame, ts=ts, conn=conn.id if conn else None, layer=layer, reason=reason))

    def _emit(self, event: ev.Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    emit = _emit


def _layer_of(decoder: Any) -> str:
    return getattr(decoder, "layer", None) or type(decoder).__name__.lower().removesuffix("decoder") or "app"


def decode_file(
    path: str,
    keylog: KeyLog | None = None,
    on_event: EventSink | None = None,
    segments: bool = False,
    on_progress: Callable[[int], Any] | None = None,
    registry: Any = None,
    retirement: Any = None,
) -> tuple[Pipeline, CaptureReader]:
    """Decode a whole capture file; returns the finished pipeline and its reader.

    pcapng Decryption Secrets Blocks are added to the key log as they are met.
    Raises :class:`~inspector.errors.CaptureError` if the file is not a capture.
    With a :class:`~inspector.retirement.Retirement`, closed connections retire while decoding
    (their entries in ``pipe.connections`` become None).
    """
    pipe = Pipeline(keylog=keylog, on_event=on_event, segments=segments, registry=registry, retirement=retirement)
    reader = CaptureReader(path, on_secrets=pipe.keylog.add_text)
    if on_progress is None:
        pipe.run(reader)
    else:
        pipe.run(_with_progress(reader, on_progress))
    pipe.finish()
    return pipe, reader


def _with_progress(packets: Iterable[tuple[float, int, bytes, int]], on_progress: Callable[[int], Any]):
    """Pass packets through, reporting the count every 16384."""
    for n, packet in enumerate(packets, 1):
        yield packet
        if not n & 0x3FFF:
            on_progress(n)
