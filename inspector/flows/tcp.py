"""TCP connection state: handshake, options, analysis, teardown and reassembly.

:class:`TcpState` belongs to one :class:`~inspector.flows.connection.Connection`
and sees its segments in capture order.  Sequence analysis is delegated to
:mod:`.tcp_analysis` (Wireshark's rules), byte streams to
:class:`~.reassembly.Reassembler`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial

from .reassembly import Reassembler, record_fill
from .streamindex import Span
from .tcp_analysis import (ACK, ANY_RETRANSMISSION, FAST_RETRANSMISSION, FIN, M32, OUT_OF_ORDER, RETRANSMISSION,
                           REUSED_PORTS, RST, SYN, FlowAnalysis, analyze, flag_names, gt_seq)

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

#: how many ACK RTT samples a connection keeps (count/min/sum cover the rest)
MAX_RTT_SAMPLES = 2048
#: segments that went back below the highest sequence seen: kept for HOL where nothing reassembles
_REFILL = RETRANSMISSION | FAST_RETRANSMISSION | OUT_OF_ORDER


class TcpOptions:
    """Options a side announced in its SYN."""

    __slots__ = ("mss", "wscale", "sack_permitted", "timestamps", "tfo_cookie", "tfo_data")

    def __init__(self) -> None:
        self.mss: int | None = None
        self.wscale: int | None = None
        self.sack_permitted = False
        self.timestamps = False
        self.tfo_cookie: bytes | None = None  # TFO option (34, or experimental 254/0xF989)
        self.tfo_data = 0  # payload bytes carried on the SYN

    def to_dict(self) -> dict:
        return {
            "mss": self.mss,
            "wscale": self.wscale,
            "sack_permitted": self.sack_permitted,
            "timestamps": self.timestamps,
            "tfo": self.tfo_cookie is not None,
            "syn_data": self.tfo_data,
        }


def parse_options(opts: bytes, into: TcpOptions) -> int | None:
    """Fill ``into`` from a SYN's option bytes; returns the window scale shift if present."""
    i, n = 0, len(opts)
    ws = None
    while i < n:
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= n:
            break
        length = opts[i + 1]
        if length < 2 or i + length > n:
            break
        body = opts[i + 2 : i + length]
        if kind == 2 and length == 4:
            into.mss = _U16.unpack(body)[0]
        elif kind == 3 and length == 3:
            ws = min(body[0], 14)  # RFC 7323 §2.3: use 14 for larger shifts, as Wireshark does
            into.wscale = body[0]
        elif kind == 4:
            into.sack_permitted = True
        elif kind == 8:
            into.timestamps = True
        elif kind == 34:
            into.tfo_cookie = body
        elif kind == 254 and len(body) >= 2 and body[:2] == b"\xf9\x89":
            into.tfo_cookie = body[2:]
        i += length
    return ws


class TcpState:
    """Everything TCP-specific about a connection; index 0 is the client side."""

    __slots__ = (
        "an",
        "_pairs",
        "reasm",
        "_sinks",
        "_stream_start",
        "options",
        "syn",
        "synack",
        "ack3",
        "syn_ts",
        "synack_ts",
        "first_rtt",
        "irtt_frame",
        "ts_mru_syn",
        "fin",
        "fin_seq",
        "fin_first",
        "rst",
        "rst_first",
        "closed_at",
        "data_after_fin",
        "retransmissions",
        "counts",
        "rtt_count",
        "rtt_sum",
        "rtt_min",
        "rtt_samples",
        "mismatches",
        "fills",
    )

    def __init__(self) -> None:
        self.an = (FlowAnalysis(), FlowAnalysis())
        self._pairs = ((self.an[0], self.an[1]), (self.an[1], self.an[0]))  # (fwd, rev) by direction
        self.reasm: list[Reassembler | None] = [None, None]
        #: the callbacks of attach_streams; a direction's Reassembler is made when it first has bytes or a FIN
        #: (a SYN scan's million connections never do: ~5 KB each saved)
        self._sinks: tuple[Callable, Callable, Callable | None, Callable | None] | None = None
        self._stream_start: list[int | None] = [None, None]  # the byte after a direction's SYN, until then
        self.options = (TcpOptions(), TcpOptions())
        self.syn = False
        self.synack = False
        self.ack3 = False
        self.syn_ts: float | None = None
        self.synack_ts: float | None = None
        self.first_rtt = 0.0  # Wireshark's ts_first_rtt (iRTT); 0.0 while unknown
        self.irtt_frame = 0  # the frame whose ACK gave the iRTT (the handshake's completion)
        self.ts_mru_syn = 0.0
        self.fin = [False, False]
        self.fin_seq: list[int | None] = [None, None]
        self.fin_first: int | None = None  # direction that sent the first FIN
        self.rst = [False, False]
        self.rst_first: int | None = None
        self.closed_at: float | None = None
        self.data_after_fin = False  # half-close: data flowed after the other side's FIN
        self.retransmissions = 0
        self.counts: dict[str, int] = {}
        self.rtt_count = 0
        self.rtt_sum = 0.0
        self.rtt_min: float | None = None
        self.rtt_samples: list[tuple[float, float, int]] = []  # (ts, rtt, frame)
        self.mismatches = 0
        self.fills: tuple[list, list] = ([], [])  # see reassembly.record_fill

    # ------------------------------------------------------------------ facts

    @property
    def handshake(self) -> str:
        """"complete" (SYN, SYN/ACK, ACK), "partial" (some of them) or "none"."""
        if self.syn and self.synack and self.ack3:
            return "complete"
        if self.syn or self.synack:
            return "partial"
        return "none"

    @property
    def closed_by(self) -> str | None:
        """Who closed: "client"/"server" (first FIN), "reset", or None while open."""
        if self.rst_first is not None and not (self.fin[0] and self.fin[1]):
            return "reset"
        if self.fin_first is not None:
            return "client" if self.fin_first == 0 else "server"
        if self.rst_first is not None:
            return "reset"
        return None

    @property
    def irtt(self) -> float | None:
        return self.first_rtt or None

    # ------------------------------------------------------------------ segments

    def segment(
        self,
        d: int,
        frame: int,
        ts: float,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        seglen: int,
        options: bytes,
    ) -> tuple[int, float | None]:
        """Account for one segment in direction ``d``; returns (analysis bits, ACK RTT)."""
        fwd, rev = self._pairs[d]
        if not flags & 7 and fwd.base_set and rev.base_set:
            # Fast path: no SYN/FIN/RST on an established conversation (most segments).
            bits, rtt = analyze(fwd, rev, frame, ts, seq, ack, seglen, flags, window, self.first_rtt)
            if flags & ACK:
                if not self.first_rtt and self.ts_mru_syn:
                    self.first_rtt = ts - self.ts_mru_syn
                    self.irtt_frame = frame
                fwd.is_first_ack = False
                if d == 0 and not self.ack3 and self.synack:
                    self.ack3 = True
            if seglen and self.fin_first is not None and not self.fin[d]:
                self.data_after_fin = True
            if rtt is not None:  # most ACKs give a sample: accounted inline
                self.rtt_count += 1
                self.rtt_sum += rtt
                if self.rtt_min is None or rtt < self.rtt_min:
                    self.rtt_min = rtt
                if len(self.rtt_samples) < MAX_RTT_SAMPLES:
                    self.rtt_samples.append((ts, rtt, frame))
            if bits:
                self._account(bits, None, ts, frame)
                if bits & _REFILL and seglen:
                    record_fill(self, d, frame, ts, seq, seglen)
            return bits, rtt
        syn = flags & SYN
        if syn and not flags & ACK and fwd.base_set and seq == fwd.base_seq:
            # Retransmitted SYN: Wireshark restores nextseq (issue 17616) before analysing.
            fwd.nextseq = fwd.maxseqtobeacked
        reused = 0
        if syn and flags & ACK and fwd.base_set and seq != fwd.base_seq:
            fwd.base_seq = seq  # SYN/ACK on a reused conversation (Wireshark issue 16944)
            reused = REUSED_PORTS
        # base sequence numbers for relative seq/ack (Wireshark's rules)
        if not fwd.base_set:
            fwd.base_seq = seq if syn else (seq - 1) & M32
            fwd.base_set = True
        if not rev.base_set and flags & ACK:
            rev.base_seq = (ack - 1) & M32
            rev.base_set = True

        bits, rtt = analyze(fwd, rev, frame, ts, seq, ack, seglen, flags, window, self.first_rtt)
        bits |= reused

        if syn:
            opts = self.options[d]
            ws = parse_options(options, opts) if options else None
            if ws is not None:
                fwd.win_scale = ws
            if flags & ACK:
                if not self.synack:
                    self.synack = True
                    self.synack_ts = ts
            else:
                if not self.syn:
                    self.syn = True
                    self.syn_ts = ts
                self.ts_mru_syn = ts
            fwd.is_first_ack = True
            if seglen:
                opts.tfo_data = max(opts.tfo_data, seglen)
            # verify_tcp_window_scaling(): scaling only if both SYNs carry the option
            if fwd.win_scale == -1:
                fwd.win_scale = -2
                rev.win_scale = -2
            elif flags & ACK and rev.win_scale == -2:
                fwd.win_scale = -2
        elif flags & ACK:
            if self.ts_mru_syn and not self.first_rtt:
                self.first_rtt = ts - self.ts_mru_syn
                self.irtt_frame = frame
            if fwd.is_first_ack:
                fwd.is_first_ack = False
            if d == 0 and self.synack and not self.ack3:
                self.ack3 = True

        if flags & FIN:
            fin_seq = (seq + seglen) & M32
            if not self.fin[d]:
                self.fin[d] = True
                self.fin_seq[d] = fin_seq
                if self.fin_first is None:
                    self.fin_first = d
                if self.fin[1 - d]:
                    self.closed_at = ts
        elif seglen and self.fin[1 - d] and not self.fin[d]:
            self.data_after_fin = True
        if flags & RST:
            if not self.rst[d]:
                self.rst[d] = True
                if self.rst_first is None:
                    self.rst_first = d
                    if self.closed_at is None:
                        self.closed_at = ts

        if bits or rtt is not None:
            self._account(bits, rtt, ts, frame)
            if bits & _REFILL and seglen and not syn:
                record_fill(self, d, frame, ts, seq, seglen)
        return bits, rtt

    def _account(self, bits: int, rtt: float | None, ts: float, frame: int) -> None:
        if bits:
            counts = self.counts
            for name in flag_names(bits):
                counts[name] = counts.get(name, 0) + 1
            if bits & ANY_RETRANSMISSION:
                self.retransmissions += 1
        if rtt is not None:
            self.rtt_count += 1
            self.rtt_sum += rtt
            if self.rtt_min is None or rtt < self.rtt_min:
                self.rtt_min = rtt
            if len(self.rtt_samples) < MAX_RTT_SAMPLES:
                self.rtt_samples.append((ts, rtt, frame))

    # ------------------------------------------------------------------ streams

    def attach_streams(self, deliver: Callable[[int, bytes, int, Span], None], gap: Callable[[int, int, int, Span], None],
                       end: Callable[[int, int, float], None] | None = None,
                       resent: Callable[[int, int, int, float], None] | None = None) -> None:
        """Reassemble both directions, handing bytes, gaps, the FIN's arrival (``end(direction, frame,
        ts)``, once all bytes before it are in) and retransmissions of bytes already delivered
        (``resent(direction, first_frame, frame, ts)``) to the callbacks.  Each direction's
        :class:`Reassembler` is made when it first needs one (see :meth:`stream`)."""
        self._sinks = (deliver, gap, end, resent)

    def detach_streams(self) -> None:
        """Stop reassembling (nothing wants the bytes, or nothing more is needed from them)."""
        self._sinks = None
        self.reasm = [None, None]

    def stream(self, d: int) -> Reassembler | None:
        """Direction ``d``'s reassembler, made now if streams are attached; None if they are not."""
        r = self.reasm[d]
        if r is None and self._sinks is not None:
            deliver, gap, end, resent = self._sinks
            # Stream offset 0 is the byte after the SYN when we saw it, else the first byte seen.
            r = self.reasm[d] = Reassembler(partial(deliver, d), partial(gap, d), None if end is None else partial(end, d))
            if resent is not None:
                r.on_resent = partial(resent, d)
            start = self._stream_start[d]
            if start is not None:
                r.start(start)
        return r

    def stream_segment(self, d: int, seq: int, flags: int, seglen: int, payload: bytes, frame: int, ts: float) -> bool:
        """Feed a segment's payload to direction ``d``'s reassembler (if attached)."""
        r = self.reasm[d]
        if r is None:
            if self._sinks is None:
                return False
            if flags & SYN and not seglen and not flags & FIN:
                if self._stream_start[d] is None:
                    self._stream_start[d] = (seq + 1) & M32  # a bare SYN: no reassembler yet
                return False
            r = self.stream(d)
            assert r is not None
        if flags & SYN:
            if r.next_seq is None:
                r.start((seq + 1) & M32)
            seq = (seq + 1) & M32  # TFO data follows the SYN's sequence number
        differs = False
        if seglen:
            differs = r.segment(seq, payload, seglen, frame, ts)
            if differs:
                self.mismatches += 1
        if flags & FIN:
            r.fin_at(seq + seglen, frame, ts)
        return differs

    def acked(self, d: int, ack: int, frame: int, ts: float) -> None:
        """Direction ``d`` ACKed ``ack``: bytes of the other direction before it will never
        be retransmitted, so a hole there is data missing from the capture."""
        o = 1 - d
        r = self.reasm[o]
        if r is None:
            # bytes ACKed past the other side's SYN that the capture never carried: a hole from the start
            start = self._stream_start[o]
            if start is None or self._sinks is None or not gt_seq(ack, start):
                return
            r = self.stream(o)
        if r is None:
            return
        nxt = r.next_seq
        # not gt_seq(ack, nxt), inlined: this runs for every ACK
        if nxt is None or ((nxt - ack) & M32) < 0x80000000:
            return
        limit = self.an[o].nextseq  # never skip past what was seen
        fin_seq = self.fin_seq[o]
        if fin_seq is not None and gt_seq(limit, fin_seq):
            limit = fin_seq
        target = ack if not gt_seq(ack, limit) else limit
        if gt_seq(target, r.next_seq):
            r.skip_to(target, frame, ts)
