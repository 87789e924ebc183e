"""Per-segment TCP analysis with Wireshark's flag names and semantics.

This follows ``tcp_analyze_sequence_number()`` of Wireshark 4.0's
packet-tcp.c step by step (absolute sequence numbers, raw unscaled windows,
the same order of checks and the same quirks, e.g. ``nextseq == 0`` meaning
"unknown"), so our ``analysis`` lists agree with tshark's ``tcp.analysis.*``
frame by frame.  The differential tests in ``tests/test_tcp_tshark.py``
hold us to it.
"""

from __future__ import annotations

from collections import deque

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128
M32 = 0xFFFFFFFF
_HALF = 0x80000000
# C integers in the compiled build (tcp_analysis.pxd), so that analyze's sequence arithmetic stays in C
_M32, _ACK, _RST = M32, ACK, RST

# Analysis bits (Wireshark's TCP_A_* values).
RETRANSMISSION = 0x0001
LOST_PACKET = 0x0002
ACK_LOST_PACKET = 0x0004
KEEP_ALIVE = 0x0008
DUPLICATE_ACK = 0x0010
ZERO_WINDOW = 0x0020
ZERO_WINDOW_PROBE = 0x0040
ZERO_WINDOW_PROBE_ACK = 0x0080
KEEP_ALIVE_ACK = 0x0100
OUT_OF_ORDER = 0x0200
FAST_RETRANSMISSION = 0x0400
WINDOW_UPDATE = 0x0800
WINDOW_FULL = 0x1000
REUSED_PORTS = 0x2000
SPURIOUS_RETRANSMISSION = 0x4000

#: bit -> the names tshark shows for it (``tcp.analysis.<name>``); fast and
#: spurious retransmissions also carry the plain ``retransmission`` expert info.
FLAG_NAMES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (RETRANSMISSION, ("retransmission",)),
    (FAST_RETRANSMISSION, ("fast_retransmission", "retransmission")),
    (SPURIOUS_RETRANSMISSION, ("spurious_retransmission", "retransmission")),
    (OUT_OF_ORDER, ("out_of_order",)),
    (LOST_PACKET, ("lost_segment",)),
    (ACK_LOST_PACKET, ("ack_lost_segment",)),
    (WINDOW_UPDATE, ("window_update",)),
    (WINDOW_FULL, ("window_full",)),
    (KEEP_ALIVE, ("keep_alive",)),
    (KEEP_ALIVE_ACK, ("keep_alive_ack",)),
    (DUPLICATE_ACK, ("duplicate_ack",)),
    (ZERO_WINDOW_PROBE, ("zero_window_probe",)),
    (ZERO_WINDOW, ("zero_window",)),
    (ZERO_WINDOW_PROBE_ACK, ("zero_window_probe_ack",)),
    (REUSED_PORTS, ("reused_ports",)),
)
ANY_RETRANSMISSION = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION

_names_cache: dict[int, tuple[str, ...]] = {0: ()}


def flag_names(bits: int) -> tuple[str, ...]:
    """The sorted, de-duplicated analysis names for a bit set (memoised)."""
    names = _names_cache.get(bits)
    if names is None:
        seen: list[str] = []
        for bit, labels in FLAG_NAMES:
            if bits & bit:
                seen.extend(n for n in labels if n not in seen)
        names = _names_cache[bits] = tuple(seen)
    return names


def gt_seq(a: int, b: int) -> bool:
    """``a`` after ``b`` in 32-bit sequence space (Wireshark's GT_SEQ)."""
    return ((b - a) & M32) >= _HALF


def lt_seq(a: int, b: int) -> bool:
    """``a`` before ``b`` in 32-bit sequence space (LT_SEQ)."""
    return ((a - b) & M32) >= _HALF


#: Wireshark stops tracking unacked segments past this many (TCP_MAX_UNACKED_SEGMENTS).
MAX_UNACKED = 10000


class FlowAnalysis:
    """Wireshark's per-direction analysis state (``tcp_flow_t`` + ``tcp_analyze_seq_flow_info_t``)."""

    __slots__ = (
        "base_seq",
        "base_set",
        "nextseq",
        "nextseqtime",
        "nextseqframe",
        "maxseqtobeacked",
        "lastack",
        "lastacktime",
        "lastnondupack",
        "dupacknum",
        "window",
        "win_scale",
        "is_first_ack",
        "lastsegmentflags",
        "unacked",
        "acked_to",
    )

    def __init__(self) -> None:
        self.base_seq = 0
        self.base_set = False
        self.nextseq = 0
        self.nextseqtime = 0.0
        self.nextseqframe = 0
        self.maxseqtobeacked = 0
        self.lastack = 0
        self.lastacktime = 0.0
        self.lastnondupack = 0
        self.dupacknum = 0
        self.window = M32  # G_MAXUINT32: "no window seen yet"
        self.win_scale = -1  # -1 unknown, -2 "no scaling", else the shift
        self.is_first_ack = False
        self.lastsegmentflags = 0
        # unacked segments, oldest first: [seq, nextseq, ts, frame]
        self.unacked: deque[list] = deque()
        #: the highest ACK that took segments off ``unacked`` (not Wireshark's: ``lastack`` of the other
        #: direction goes back when ACKs arrive out of order; HOL's fill records need where it got to)
        self.acked_to: int | None = None


def analyze(
    fwd: FlowAnalysis,
    rev: FlowAnalysis,
    frame: int,
    ts: float,
    seq: int,
    ack: int,
    seglen: int,
    flags: int,
    window: int,
    first_rtt: float,
) -> tuple[int, float | None]:
    """Analyse one segment; returns (analysis bits, ACK RTT sample or None).

    ``seq``/``ack`` are absolute, ``window`` the raw header value, and
    ``first_rtt`` the connection's iRTT so far (0.0 while unknown).

    This runs for every segment, so sequence comparisons are inlined:
    ``((b - a) & _M32) >= _HALF`` is Wireshark's ``GT_SEQ(a, b)``.  The checks
    keep Wireshark's order; where two checks exclude each other (e.g. window
    update needs a changed window, duplicate ACK the same one) they are
    nested instead of repeated.
    """
    ta = 0
    nextseq_fwd = fwd.nextseq
    sfr = flags & 7  # FIN|SYN|RST

    if (not sfr and seq == nextseq_fwd and nextseq_fwd and window and flags & _ACK
            and (seglen > 1 or (not seglen and ack != fwd.lastack))):
        # Fast path for most segments: in-order data, or a pure ACK that moves the ACK
        # number, on a non-zero window.  These rule out by themselves the zero-window,
        # lost-segment, keep-alive, duplicate-ACK, retransmission and out-of-order
        # checks below, so only the rest is done, with the same results (Wireshark's
        # order is kept where one check reads what another writes).  The ACK-lost check
        # and the bookkeeping at the end repeat the general path's on purpose: a shared
        # helper would cost a call per packet.
        if seglen:
            rws = rev.win_scale
            if rws != -1:
                shift = 0 if rev.is_first_ack or rws == -2 else rws
                if (seq + seglen) & _M32 == (rev.lastack + (rev.window << shift)) & _M32:
                    ta = WINDOW_FULL
            if ack != fwd.lastack:
                fwd.lastnondupack = frame
                fwd.dupacknum = 0
        else:
            fwd.lastnondupack = frame
            fwd.dupacknum = 0
        rmax = rev.maxseqtobeacked
        if rmax and ((rmax - ack) & _M32) >= _HALF:
            rnext = rev.nextseq
            if ((rmax - rnext) & _M32) >= _HALF:
                rev.maxseqtobeacked = rnext
                ta |= ACK_LOST_PACKET
            else:
                if rev.dupacknum == 0:
                    ta |= ACK_LOST_PACKET
                rev.dupacknum = -1
        if seglen:
            rlast = rev.lastack
            if rlast and ((rlast - seq - seglen) & _M32) < _HALF:
                ta |= SPURIOUS_RETRANSMISSION
            nextseq_fwd = (seq + seglen) & _M32
            unacked = fwd.unacked
            if len(unacked) < MAX_UNACKED:
                unacked.append([seq, nextseq_fwd, ts, frame])
            fwd.nextseq = nextseq_fwd
            fwd.nextseqframe = frame
            fwd.nextseqtime = ts
        if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
            fwd.maxseqtobeacked = nextseq_fwd
        fwd.window = window
        fwd.lastack = ack
        fwd.lastacktime = ts
        fwd.lastsegmentflags = ta
        # _acked(rev, ack, ts) inlined: one call less per packet
        rtt = None
        unacked = rev.unacked
        while unacked:
            entry = unacked[0]
            unext = entry[1]
            if ((ack - unext) & _M32) >= _HALF:  # GT_SEQ(unext, ack): not (fully) acked yet
                if ((entry[0] - ack) & _M32) >= _HALF:
                    entry[0] = ack  # partially acked
                    rev.acked_to = ack
                break
            if rtt is None and unext == ack:
                rtt = ts - entry[2]
            unacked.popleft()
            rev.acked_to = ack
        return ta, rtt

    # ZERO WINDOW PROBE: exactly one byte at nextseq while the peer's window is 0.
    if seglen == 1 and seq == nextseq_fwd and rev.window == 0:
        ta = ZERO_WINDOW_PROBE
    else:
        if window == 0 and not sfr:
            ta = ZERO_WINDOW
        # LOST PACKET: beyond the highest sequence seen so far (not for RST).
        if nextseq_fwd and ((nextseq_fwd - seq) & _M32) >= _HALF and not flags & _RST:
            ta |= LOST_PACKET
        if seglen <= 1 and not sfr and seq == (nextseq_fwd - 1) & _M32:
            ta |= KEEP_ALIVE
        if seglen == 0:
            if not sfr and seq == nextseq_fwd and ack == fwd.lastack:
                fw = fwd.window
                if window:
                    if window != fw:
                        ta |= WINDOW_UPDATE
                    elif rev.lastsegmentflags & KEEP_ALIVE:
                        ta |= KEEP_ALIVE_ACK
                    else:
                        # DUPLICATE ACK (-1 neutralises a pending "ACKed unseen segment")
                        dn = fwd.dupacknum
                        fwd.dupacknum = 1 if dn == -1 else dn + 1
                        ta |= DUPLICATE_ACK
                elif fw == 0 and rev.lastsegmentflags & ZERO_WINDOW_PROBE:
                    ta |= ZERO_WINDOW_PROBE_ACK
        elif not sfr:
            # WINDOW FULL: the segment reaches the right edge of the peer's window.
            rws = rev.win_scale
            if rws != -1:
                shift = 0 if rev.is_first_ack or rws == -2 else rws
                if (seq + seglen) & _M32 == (rev.lastack + (rev.window << shift)) & _M32:
                    ta |= WINDOW_FULL

    # finished_fwd: a new ACK number resets the dupack counter
    if ack != fwd.lastack:
        fwd.lastnondupack = frame
        fwd.dupacknum = 0

    # ACKED LOST PACKET: this ACK covers bytes never seen in the other direction.
    rmax = rev.maxseqtobeacked
    if rmax and flags & _ACK and ((rmax - ack) & _M32) >= _HALF:
        rnext = rev.nextseq
        if ((rmax - rnext) & _M32) >= _HALF:
            rev.maxseqtobeacked = rnext
            ta |= ACK_LOST_PACKET
        else:
            if rev.dupacknum == 0:
                ta |= ACK_LOST_PACKET
            rev.dupacknum = -1

    # RETRANSMISSION / FAST RETRANSMISSION / SPURIOUS / OUT-OF-ORDER
    if (seglen or flags & 3) and not ta & KEEP_ALIVE:
        not_advanced = nextseq_fwd and ((seq - nextseq_fwd) & _M32) >= _HALF
        if not_advanced and seglen > 1 and (nextseq_fwd - 1) & _M32 == seq:
            not_advanced = False
        rlast = rev.lastack
        if seglen and rlast and ((rlast - seq - seglen) & _M32) < _HALF:
            ta |= SPURIOUS_RETRANSMISSION
        elif not_advanced:
            if rev.dupacknum >= 2 and rlast == seq and ts - rev.lastacktime < 0.020:
                ta |= FAST_RETRANSMISSION
            elif ts - fwd.nextseqtime < (first_rtt or 0.003) and nextseq_fwd != (
                seq + seglen + (1 if flags & 3 else 0)
            ) & _M32:
                ta |= OUT_OF_ORDER
            else:
                ta |= RETRANSMISSION

    # finished_checking_retransmission_type
    nextseq = (seq + seglen) & _M32
    if seglen or flags & 3:
        if flags & 3:
            nextseq = (nextseq + 1) & _M32
        if len(fwd.unacked) < MAX_UNACKED:
            fwd.unacked.append([seq, nextseq, ts, frame])
    if not ta & ZERO_WINDOW_PROBE:
        if not nextseq_fwd or ((nextseq_fwd - nextseq) & _M32) >= _HALF:
            fwd.nextseq = nextseq_fwd = nextseq
            fwd.nextseqframe = frame
            fwd.nextseqtime = ts
        if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
            fwd.maxseqtobeacked = nextseq_fwd

    fwd.window = window
    fwd.lastack = ack
    fwd.lastacktime = ts
    fwd.lastsegmentflags = ta

    # Remove what this ACK covers from the other direction's unacked list; an
    # exact match gives an RTT sample (tcp.analysis.ack_rtt).  Wireshark walks
    # its whole list (and, like it, we do not look at the ACK flag here); the
    # list is in sending order, so popping from the front is equivalent for
    # everything but reordered entries, which go once they reach the front.
    # With several exact matches Wireshark keeps the oldest's time, as we do.
    return ta, _acked(rev, ack, ts)


def _acked(flow: FlowAnalysis, ack: int, ts: float) -> float | None:
    """Drop the entries of ``flow.unacked`` that ``ack`` covers from the front; the RTT of an exact
    match, or None."""
    rtt = None
    unacked = flow.unacked
    while unacked:
        entry = unacked[0]
        unext = entry[1]
        if ((ack - unext) & _M32) >= _HALF:  # GT_SEQ(unext, ack): not (fully) acked yet
            if ((entry[0] - ack) & _M32) >= _HALF:
                entry[0] = ack  # partially acked
                flow.acked_to = ack
            break
        if rtt is None and unext == ack:
            rtt = ts - entry[2]
        unacked.popleft()
        flow.acked_to = ack
    return rtt
