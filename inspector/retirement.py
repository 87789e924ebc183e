"""Retiring finished connections while a capture is decoded, so that memory does not grow with them.

Without it, ``summary`` and ``export`` keep every connection (its TCP state, decoder and analysis
inputs) to the end of the capture: 9-14 KB each, so a capture of a million tiny connections would
need gigabytes.  With a :class:`Retirement` attached to the :class:`~inspector.pipeline.Pipeline`,
a TCP connection that has closed (a FIN each way, or a reset) is *retired* once it has been quiet
for :data:`QUIET` seconds of capture time, or sooner, oldest first, while more than
:data:`MAX_CLOSED` closed connections wait.  Retiring finishes its decoder, analyses it
(:class:`~inspector.analysis.Analyzer`), writes its ``summary --json`` record to a temporary file
(``summary``; ``export`` only emits its remaining events) and lets go of it: what stays per retired
connection is an 8-byte file offset and a ``None`` in ``pipeline.connections``.

The results are the ones the whole capture would give, because the analyses that look across
connections are fed in the order they need:

- the what-ifs compare a connection with the ones to the same server endpoint before it, so
  connections to one endpoint retire in id order (a closed connection waits for the earlier ones);
- the DNS step needs the start of the previous connection to the server address, recorded when the
  connection appears (``Connection.prev_start``);
- the HTTP/1.1 connection-wait analysis needs every connection to the server that overlapped in
  time, so an HTTP/1.1 connection's record is held (without its decoder) until no connection
  still open, or yet to come, can overlap the group of connections it overlaps.

UDP flows retire too: a DNS flow whose lookups are all answered as a closed connection does; any
other flow but QUIC after :data:`FLOW_QUIET` seconds without a datagram, or sooner, least recently
active first, while more than :data:`MAX_FLOWS` are open.

Limits, each counted in :attr:`Retirement.stats` and reported by the CLI when hit:

- a packet of a retired connection that arrives later (after :data:`QUIET` seconds, or after a
  retirement forced by :data:`MAX_CLOSED`) is counted and skipped rather than taken for a new
  connection (``late_packets``; flow keys of the last :data:`MAX_TOMBSTONES` retired connections
  are remembered), unless it is a SYN, which opens a new connection as usual;
- more than :data:`MAX_HELD` closed connections waiting behind an earlier, still open connection
  to their server (or held for the connection-wait analysis) retire anyway, oldest first
  (``out_of_order``): their what-ifs and waits then do not consider that open connection;
- a UDP flow retired before its quiet time (``flows_evicted``), and a datagram on a retired flow's
  ports, which starts a new flow (``resumed_flows``).

QUIC connections and TCP connections that never close are not retired.
"""

from __future__ import annotations

import gc
import tempfile
from array import array
from collections import OrderedDict, deque
from typing import IO, Any

from . import events as ev
from .analysis import Analysed, Analyzer, failure_note, wait_episodes
from .flows.connection import DECODING, Connection
from .output.jsontext import dumps

#: seconds of capture time a closed connection stays before it retires (late ACKs, FIN retransmissions)
QUIET = 5.0
#: closed connections kept at most; beyond, the oldest retire before their quiet time
MAX_CLOSED = 4096
#: closed connections waiting for an earlier one to the same server, or held for the wait analysis
#: (with MAX_CLOSED, what bounds memory: ~12k connections of 9-14 KB)
MAX_HELD = 8192
#: seconds of capture time a UDP flow (not QUIC) stays without a datagram before it retires, settled or not
FLOW_QUIET = 30.0
#: UDP flows kept at most; beyond, the least recently active retire before their quiet time
MAX_FLOWS = 16384
#: retired connections whose flow keys are remembered, to recognise their late packets
MAX_TOMBSTONES = 16384
#: retirements between two runs of the cycle collector (at most: see Retirement._collect)
COLLECT_EVERY = 4096
#: frames between two sweeps for connections ready to retire
SWEEP_EVERY = 64


def is_closed(conn: Connection) -> bool:
    """A TCP connection with a FIN each way or a reset; a UDP flow whose decoder says it is settled
    (DNS: every lookup answered).  Other UDP flows never close."""
    tcp = conn.tcp
    if tcp is not None:
        return tcp.rst[0] or tcp.rst[1] or (tcp.fin[0] and tcp.fin[1])
    settled = getattr(conn.decoder, "settled", None) if conn.decoder_state == DECODING else None
    return settled is not None and settled()


class _Light:
    """What the connection-wait analysis and the analysis events read of a retired connection."""

    __slots__ = ("id", "transport", "decoder", "addrs", "ports", "start", "end", "first_frame", "last_frame",
                 "server")

    def __init__(self, conn: Connection) -> None:
        self.id = conn.id
        self.transport = conn.transport
        self.decoder = True  # it had one: hol.connection_wait_episodes skips connections without
        self.addrs = conn.addrs
        self.ports = conn.ports
        self.start = conn.start
        self.end = conn.end
        self.first_frame = conn.first_frame
        self.last_frame = conn.last_frame
        self.server = conn.server


class _LightUnits:
    """The HTTP/1.1 exchanges of a retired connection (``Units.exchanges`` without the decoder)."""

    __slots__ = ("exchanges",)

    def __init__(self, exchanges: list[tuple[str, Any]]) -> None:
        self.exchanges = exchanges


class _Waiting:
    """An analysed HTTP/1.1 connection held for its connection-wait episodes."""

    __slots__ = ("conn", "units", "rtt", "done", "record", "owner")

    def __init__(self, owner: Retirement, conn: _Light, units: _LightUnits, done: Analysed,
                 record: dict[str, Any] | None) -> None:
        self.owner = owner
        self.conn = conn
        self.units = units
        self.rtt = done.rtt
        done.units = units  # let go of the decoder
        self.done = done
        self.record = record

    def finish(self, waits: list[Any]) -> list[ev.Event]:
        """Finalize with the episodes found; writes the record; returns the analysis events."""
        return self.owner._finalize(self.conn, self.done, waits, self.record)


class Retirement:
    """Retires closed TCP connections and finished UDP flows of a :class:`~inspector.pipeline.Pipeline`
    (module docstring).

    ``summaries``: keep each retired connection's ``summary --json`` record (in a temporary file)
    for :meth:`record`; without, only its events are emitted (``export``).
    """

    def __init__(self, summaries: bool = True, quiet: float = QUIET, max_closed: int = MAX_CLOSED,
                 max_held: int = MAX_HELD, sweep_every: int = SWEEP_EVERY, flow_quiet: float = FLOW_QUIET,
                 max_flows: int = MAX_FLOWS) -> None:
        self.summaries = summaries
        self.quiet = quiet
        self.flow_quiet = flow_quiet
        self.max_flows = max_flows
        #: frames between two sweeps (the pipeline reads it)
        self.sweep_every = sweep_every
        self.max_closed = max_closed
        self.max_held = max_held
        self.pipe: Any = None
        self.analyzer: Analyzer | None = None
        self.stats = {"retired": 0, "late_packets": 0, "out_of_order": 0, "resumed_flows": 0, "flows_evicted": 0}
        self._closing: deque[Connection] = deque()  # closed, in the order they closed
        self._closing_ids: set[int] = set()
        self._queues: dict[tuple, deque[Connection]] = {}  # unretired TCP connections per server endpoint
        self._ready: OrderedDict[int, Connection] = OrderedDict()  # closed and due, behind an earlier connection
        self._flows: OrderedDict[int, Connection] = OrderedDict()  # UDP flows (not QUIC), least recently active first
        self._waiting: dict[tuple, list[_Waiting]] = {}  # per endpoint, held for the wait analysis
        self._dirty: set[tuple] = set()  # endpoints whose waiting records may settle now
        self._held = 0  # waiting records in all
        self._tombs: OrderedDict[bytes, int] = OrderedDict()  # popitem(last=False) is O(1); a dict's first key is not
        self._spill: IO[bytes] | None = None
        self._spill_end = 0
        self._reading = False
        self._offsets = array("q")
        self._collect_every = COLLECT_EVERY
        self._next_collect = COLLECT_EVERY

    def bind(self, pipe: Any) -> None:
        """Attach to the pipeline (it calls this once)."""
        self.pipe = pipe
        self.analyzer = Analyzer(getattr(pipe.registry, "dns", None))

    # ------------------------------------------------------------------ the pipeline's calls

    def opened(self, conn: Connection) -> None:
        """A new TCP connection."""
        key = (conn.addrs[1], conn.ports[1])
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = deque()
        q.append(conn)

    def closed(self, conn: Connection) -> None:
        """A FIN or RST on a TCP connection, a response on a UDP flow: ``conn`` retires once it is
        closed (see :func:`is_closed`) and quiet."""
        if conn.id not in self._closing_ids and is_closed(conn):
            self._closing_ids.add(conn.id)
            self._closing.append(conn)

    def flow(self, conn: Connection, new: bool) -> None:
        """A datagram on UDP flow ``conn`` (``new``: its first; QUIC flows are not passed)."""
        if new:
            self._flows[conn.id] = conn
        elif conn.id in self._flows:
            self._flows.move_to_end(conn.id)

    def late(self, key: bytes) -> bool:
        """A TCP packet that is not a SYN on a flow no connection has: True if a retired one had it."""
        if key in self._tombs:
            self.stats["late_packets"] += 1
            return True
        return False

    def resumed(self, key: bytes) -> None:
        """A datagram on a UDP flow no connection has: counted if a retired flow had it (it starts a
        new flow, as the first datagram of any flow does)."""
        if key in self._tombs:
            self.stats["resumed_flows"] += 1

    def sweep(self, now: float) -> None:
        """Retire what is due at capture time ``now``."""
        flows = self._flows
        while flows:  # UDP flows, least recently active first
            conn = flows[next(iter(flows))]
            if len(flows) <= self.max_flows and conn.end + self.flow_quiet > now:
                break
            flows.popitem(last=False)
            if conn.end + self.flow_quiet > now:
                self.stats["flows_evicted"] += 1
            self._retire(conn)
        closing = self._closing
        excess = len(closing) - self.max_closed
        if not closing or (excess <= 0 and closing[0].end + self.quiet > now):
            return
        while closing:
            conn = closing[0]
            if excess <= 0 and conn.end + self.quiet > now:
                break
            closing.popleft()
            self._closing_ids.discard(conn.id)
            excess -= 1
            if conn.tcp is None:
                if not is_closed(conn) or conn.id not in flows:
                    continue  # a new lookup since (it comes back with its answer), or already retired
                del flows[conn.id]
                self._retire(conn)  # a UDP flow: nothing orders it
            else:
                self._due(conn)
        while len(self._ready) > self.max_held:  # held behind a connection that stays open
            conn = self._ready[next(iter(self._ready))]
            key = (conn.addrs[1], conn.ports[1])
            self._queues[key].remove(conn)
            if not self._queues[key]:
                del self._queues[key]
            self._dirty.add(key)
            self.stats["out_of_order"] += 1
            self._retire(conn)
        if self._waiting:
            self._settle(now)

    def waiting(self) -> list[_Waiting]:
        """At the end of the capture: the records still held for the wait analysis (which
        :func:`~inspector.analysis.analyze` finishes together with the connections left)."""
        out = [w for group in self._waiting.values() for w in group]
        self._waiting.clear()
        self._held = 0
        return out

    def record(self, cid: int) -> str:
        """The ``summary --json`` record of retired connection ``cid``, as JSON text."""
        self._reading = True
        self._spill.seek(self._offsets[cid])
        return self._spill.readline().decode()

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()

    # ------------------------------------------------------------------ retiring

    def _due(self, conn: Connection) -> None:
        """``conn`` may retire: it does, with the connections after it that waited for it."""
        key = (conn.addrs[1], conn.ports[1])
        q = self._queues[key]
        self._ready[conn.id] = conn
        while q and q[0].id in self._ready:
            self._retire(q.popleft())
            self._dirty.add(key)  # its earliest open connection changed
        if not q:
            del self._queues[key]

    def _retire(self, conn: Connection) -> None:
        self._ready.pop(conn.id, None)
        pipe = self.pipe
        pipe.finish_connection(conn)
        self.stats["retired"] += 1
        if self.stats["retired"] >= self._next_collect:
            self._collect()
        try:
            done = self.analyzer.connection(conn)
        except Exception as exc:  # noqa: BLE001 - as in analyze(): the capture's other results stay
            pipe.emit(failure_note(conn, exc))
            done = None
        record = None
        if self.summaries:
            from .output.summary import connection_summary

            record = connection_summary(conn, pipe.registry)  # without the analysis keys: added below
        if done is not None:
            exs = [(p, ex) for p, ex in done.units.exchanges if p == "HTTP/1.1" and ex.request_ts is not None]
            if exs:
                key = (conn.addrs[1], conn.ports[1])
                self._waiting.setdefault(key, []).append(_Waiting(self, _Light(conn), _LightUnits(exs), done, record))
                self._held += 1
                self._dirty.add(key)
            else:
                for event in self._finalize(conn, done, [], record):
                    pipe.emit(event)
        elif record is not None:
            self._write(conn.id, record)
        pipe.forget(conn)
        tombs = self._tombs
        for key in pipe.flow_keys(conn):
            tombs[key] = conn.id
        while len(tombs) > MAX_TOMBSTONES:
            tombs.popitem(last=False)

    def _settle(self, now: float) -> None:
        """Finish the held HTTP/1.1 records no connection still open, or yet to come, can overlap."""
        force = self._held > self.max_held
        # only endpoints where something changed (a sort per endpoint per sweep would be quadratic
        # while an open connection holds many records back), or all when over the limit
        keys = list(self._waiting) if force else [k for k in self._dirty if k in self._waiting]
        self._dirty.clear()
        for key in keys:
            group = sorted(self._waiting[key], key=lambda w: w.conn.start)
            q = self._queues.get(key)
            if not q:
                self._dirty.add(key)  # the horizon is the capture's time: it moves on by itself
            horizon = min(q[0].start, now) if q else now  # the earliest start that may still overlap
            cut = 0  # group[:cut] is a run of clusters that ended before the horizon
            end = float("-inf")
            for i, w in enumerate(group):
                if i and w.conn.start > end:  # a cluster ends before this record
                    if end < horizon:
                        cut = i
                    else:
                        break
                end = max(end, w.conn.end)
            else:
                if end < horizon:
                    cut = len(group)
            if force and not cut:
                cut = len(group)
                self.stats["out_of_order"] += cut
            if not cut:
                continue
            done, rest = group[:cut], group[cut:]
            if rest:
                self._waiting[key] = rest
            else:
                del self._waiting[key]
            self._held -= len(done)
            waits, failed = wait_episodes([w.conn for w in done], {w.conn.id: w.rtt for w in done},
                                          {w.conn.id: w.units for w in done})
            for event in failed:
                self.pipe.emit(event)
            for w in done:
                for event in w.finish(waits.get(w.conn.id, [])):
                    self.pipe.emit(event)

    def _collect(self) -> None:
        """Run the cycle collector: a retired connection whose decoder holds reference cycles (handler
        tables of bound methods) is only freed by it, and the CLI runs it rarely.  If it finds little
        (less than an object per connection retired since), it runs half as often next time."""
        found = gc.collect()
        every = self._collect_every
        self._collect_every = COLLECT_EVERY if found >= every else min(every * 2, 1 << 20)
        self._next_collect = self.stats["retired"] + self._collect_every

    def _finalize(self, conn: Any, done: Analysed, waits: list[Any], record: dict[str, Any] | None) -> list[ev.Event]:
        keys, events = self.analyzer.finalize(conn, done, waits, events=self.pipe.on_event is not None)
        if record is not None:
            record.update(keys)
            self._write(conn.id, record)
        return events

    def _write(self, cid: int, record: dict[str, Any]) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        offsets = self._offsets
        if len(offsets) <= cid:
            offsets.extend([-1] * (cid + 1 - len(offsets)))
        if self._reading:  # record() moved the position
            self._spill.seek(self._spill_end)
            self._reading = False
        offsets[cid] = self._spill_end  # (not seek(0, 2): that flushes the file's buffer each time)
        line = dumps(record).encode() + b"\n"
        self._spill.write(line)
        self._spill_end += len(line)
