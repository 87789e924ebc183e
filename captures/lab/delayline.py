"""A user-space delay line between two interfaces: holds every frame, then forwards it.

Runs inside the lab's middle namespace (``ip netns exec NS python3 delayline.py ...``)
with one AF_PACKET socket on each of two veth ends that carry no IP address.
Every Ethernet frame read on one side is sent out of the other side once it has
waited the configured one-way delay, measured from the kernel's receive timestamp
(``SO_TIMESTAMPNS``) so that our own scheduling latency is not added twice.
A constant delay keeps each direction in order, like a long wire.

Losses are deterministic, named by the scenario, never random: a rule picks
packets by direction, protocol, port and either a position (the Nth datagram,
the Nth TCP segment with payload) or a TCP stream byte offset (the first segment
whose payload holds that byte of the direction's stream; its retransmission
passes).  Same workload, same drop.

Why not ``tc netem`` or nftables ``queue``: this kernel has neither netem nor
``CONFIG_NFT_QUEUE``, and reading frames from packet sockets needs no extra
package.  Output: a JSON report (frames forwarded, frames dropped with what they
were, delay error statistics) written at SIGTERM/SIGINT to ``--report``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
PR_SET_TIMERSLACK = 29

C2S, S2C = "c2s", "s2c"

_ETH_TYPE = struct.Struct("!H")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_PORTS = struct.Struct("!HH")
_TCP_SEQ = struct.Struct("!HHIIBB")
_TIMESPEC = struct.Struct("@qq")


class Rule:
    """One drop rule: which packets of one direction/protocol/port to drop.

    ``spec`` keys: ``dir`` ("c2s"/"s2c"), ``proto`` ("tcp"/"udp"), ``port`` (the
    server port, either end), and one of ``nth`` (list of 1-based datagram or
    packet positions, all packets counted), ``nth_data`` (list of 1-based TCP
    segments with payload), ``byte`` (list of stream offsets, 0 = first payload
    byte of that direction).
    """

    def __init__(self, spec: dict) -> None:
        self.spec = dict(spec)
        self.dir = spec["dir"]
        self.proto = {"tcp": 6, "udp": 17}[spec["proto"]]
        self.port = int(spec["port"])
        self.nth = set(spec.get("nth", ()))
        self.nth_data = set(spec.get("nth_data", ()))
        self.bytes = set(spec.get("byte", ()))
        self.count = 0
        self.count_data = 0
        self.isn: dict[tuple, int] = {}
        self.hit_bytes: set[int] = set()

    def matches(self, direction: str, proto: int, sport: int, dport: int, l4: memoryview) -> str | None:
        """A description of the packet if the rule drops it, else None (counts as it goes)."""
        if direction != self.dir or proto != self.proto or self.port not in (sport, dport):
            return None
        self.count += 1
        if proto == 17:
            if self.count in self.nth:
                return f"udp datagram #{self.count} ({len(l4) - 8} payload bytes)"
            return None
        _, _, seq, _, off, flags = _TCP_SEQ.unpack_from(l4)
        hlen = (off >> 4) * 4
        plen = len(l4) - hlen
        flow = (sport, dport)
        if flags & 0x02:  # SYN: remember the ISN; the stream starts at ISN+1
            self.isn[flow] = seq
        if plen <= 0:
            return None
        self.count_data += 1
        start = (seq - self.isn[flow] - 1) & 0xFFFFFFFF if flow in self.isn else None
        if self.count_data in self.nth_data:
            return f"tcp data segment #{self.count_data}: rel_seq={start} len={plen}"
        if self.bytes and start is not None:
            for b in self.bytes - self.hit_bytes:
                if start <= b < start + plen:
                    self.hit_bytes.add(b)
                    return f"tcp segment holding stream byte {b}: rel_seq={start} len={plen}"
        return None


def _l4(frame: memoryview) -> tuple[int, int, int, memoryview] | None:
    """(proto, sport, dport, transport bytes) of an IPv4 TCP/UDP frame, else None."""
    if len(frame) < 34 or _ETH_TYPE.unpack_from(frame, 12)[0] != 0x0800:
        return None
    vihl, _, total, _, frag, _, proto, _, _, _ = _IPV4.unpack_from(frame, 14)
    ihl = (vihl & 0x0F) * 4
    if proto not in (6, 17) or frag & 0x1FFF:
        return None
    l4 = frame[14 + ihl : 14 + total]
    if len(l4) < 8:
        return None
    sport, dport = _PORTS.unpack_from(l4)
    return proto, sport, dport, l4


def _open(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((iface, ETH_P_ALL))
    s.setblocking(False)
    return s


def run(a_iface: str, b_iface: str, delay_s: float, rules: list[Rule], report_path: str | None) -> None:
    """Forward frames a<->b after ``delay_s`` until SIGTERM/SIGINT; write the report."""
    sa, sb = _open(a_iface), _open(b_iface)
    out = {sa: sb, sb: sa}
    direction = {sa: C2S, sb: S2C}
    queues: dict[socket.socket, collections.deque] = {sa: collections.deque(), sb: collections.deque()}
    forwarded = {C2S: 0, S2C: 0}
    dropped: list[dict] = []
    lateness: list[float] = []  # send time minus due time, seconds
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    try:  # wake up on time: the default 50 us timer slack adds up over many packets
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:  # on a busy 2-core machine a normal-priority wakeup can be late by milliseconds
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print("ready", flush=True)
    while not stop:
        now = time.time()
        heads = [q[0][0] for q in queues.values() if q]
        timeout = max(0.0, min(heads) - now) if heads else 0.5
        try:
            readable, _, _ = select.select([sa, sb], [], [], timeout)
        except InterruptedError:
            continue
        for s in readable:
            while True:
                try:
                    data, anc, _, _ = s.recvmsg(65536, 64)
                except BlockingIOError:
                    break
                except OSError:  # the link went away (lab teardown): stop and report
                    stop = True
                    break
                ts = time.time()
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                        sec, nsec = _TIMESPEC.unpack_from(payload)
                        ts = sec + nsec / 1e9
                d = direction[s]
                if rules:
                    parsed = _l4(memoryview(data))
                    if parsed is not None:
                        why = None
                        for rule in rules:
                            why = rule.matches(d, *parsed) or why
                        if why:
                            dropped.append({"ts": round(ts, 6), "dir": d, "what": why})
                            continue
                queues[s].append((ts + delay_s, data))
        now = time.time()
        for s, q in queues.items():
            while q and q[0][0] <= now:
                due, data = q.popleft()
                try:
                    out[s].send(data)
                except BlockingIOError:
                    q.appendleft((due, data))
                    break
                lateness.append(time.time() - due)
                forwarded[direction[s]] += 1
    lateness.sort()
    report = {
        "delay_ms": delay_s * 1000,
        "forwarded": forwarded,
        "dropped": dropped,
        "rules": [r.spec for r in rules],
        "send_lateness_ms": {
            "median": round(lateness[len(lateness) // 2] * 1000, 3) if lateness else None,
            "max": round(lateness[-1] * 1000, 3) if lateness else None,
        },
    }
    if report_path:
        with open(report_path, "w") as f:
            json.dump(report, f, indent=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="client-side interface (frames read here travel c2s)")
    p.add_argument("b", help="server-side interface (frames read here travel s2c)")
    p.add_argument("--delay-ms", type=float, required=True, help="one-way delay")
    p.add_argument("--drop", action="append", default=[], help="a JSON drop rule (see Rule)")
    p.add_argument("--report", help="write a JSON report here on exit")
    args = p.parse_args(argv)
    rules = [Rule(json.loads(r)) for r in args.drop]
    run(args.a, args.b, args.delay_ms / 1000, rules, args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
