"""DNS (RFC 1035) over UDP and TCP: messages, query/response matching, lookup times.

:func:`parse_message` reads one message with a cursor over the bytes:
names follow compression pointers with a loop guard (bounded hops, names at
most 255 octets), record data is shown in presentation format as dig prints
it (A, AAAA, CNAME, NS, SOA, MX, TXT, PTR, SRV, HTTPS/SVCB with its SvcParams,
OPT; anything else in RFC 3597 ``\\# len hex`` form).  Names are written
without the trailing dot, as Wireshark shows them ("." is the root).

:class:`DnsUdpDecoder` (one datagram, one message) and :class:`DnsTcpDecoder`
(2-byte length prefix, RFC 1035 §4.2.2) share :class:`_Transactions`, which
matches responses to queries by (id, qname, qtype), times lookups and spots
retransmitted queries (also from a new source port, through the capture-wide
:class:`DnsLookups`, which also keeps the answered addresses so a later
connection can find the lookup that named its server).
"""

from __future__ import annotations

import base64
import re
import socket
import struct
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import DecodeError
from ..events import DIRECTIONS, DnsMessage, Event, Malformed, Note

if TYPE_CHECKING:
    from ..flows.streamindex import StreamIndex
    from .base import DecodeContext

#: RR types (IANA DNS parameters registry) shown by name; others as "TYPEnnn" (RFC 3597 §5)
TYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA",
    33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
    50: "NSEC3", 52: "TLSA", 64: "SVCB", 65: "HTTPS", 99: "SPF", 251: "IXFR", 252: "AXFR", 255: "ANY", 257: "CAA",
}
RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN",
    7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE", 16: "BADVERS",
}
OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE", 6: "DSO"}
#: header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD/CD), in dig's order
_FLAGS = (("qr", 0x8000), ("aa", 0x0400), ("tc", 0x0200), ("rd", 0x0100), ("ra", 0x0080),
          ("ad", 0x0020), ("cd", 0x0010))
#: SvcParamKeys (RFC 9460 §14.3.2)
_SVC_KEYS = {0: "mandatory", 1: "alpn", 2: "no-default-alpn", 3: "port", 4: "ipv4hint", 5: "ech", 6: "ipv6hint"}

_HEADER = struct.Struct("!HHHHHH")
_U16 = struct.Struct("!H")
_RR_FIXED = struct.Struct("!HHIH")  # type, class, ttl, rdlength
_Q_FIXED = struct.Struct("!HH")
_SOA_FIXED = struct.Struct("!IIIII")
_SRV_FIXED = struct.Struct("!HHH")

#: a name may not need more pointer hops than it can hold labels (RFC 1035 §2.3.4: 255 octets)
_MAX_HOPS = 128
_MAX_NAME = 255
#: records decoded per section; more is counted, not shown (a hostile count cannot cost memory)
_MAX_RECORDS = 256


def type_name(t: int) -> str:
    return TYPES.get(t) or f"TYPE{t}"


_PLAIN_LABEL = re.compile(rb"[A-Za-z0-9_*-]+")


def _label(raw: bytes) -> str:
    if _PLAIN_LABEL.fullmatch(raw):
        return raw.decode("ascii")
    # RFC 4343 §2.1: escape dots, backslashes, specials and non-printables as dig does
    out = []
    for b in raw:
        if b in (0x2E, 0x5C, 0x22, 0x28, 0x29, 0x3B, 0x40, 0x24):
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def read_name(buf: bytes, pos: int) -> tuple[str, int]:
    """The name at ``pos`` and the offset just after it (after the first pointer, if any)."""
    n = len(buf)
    labels: list[str] = []
    end = -1
    hops = 0
    length = 1  # the root's zero octet
    while True:
        if pos >= n:
            raise DecodeError("name runs past the end of the message", pos)
        ln = buf[pos]
        if ln >= 0xC0:
            if pos + 1 >= n:
                raise DecodeError("compression pointer cut off", pos)
            if end < 0:
                end = pos + 2
            hops += 1
            if hops > _MAX_HOPS:
                raise DecodeError("compression pointer loop", pos)
            pos = ((ln & 0x3F) << 8) | buf[pos + 1]
            continue
        if ln & 0xC0:
            raise DecodeError(f"reserved label type 0x{ln & 0xC0:02x}", pos)
        if ln == 0:
            pos += 1
            break
        length += ln + 1
        if length > _MAX_NAME:
            raise DecodeError("name longer than 255 octets", pos)
        if pos + 1 + ln > n:
            raise DecodeError("label runs past the end of the message", pos)
        labels.append(_label(buf[pos + 1:pos + 1 + ln]))
        pos += 1 + ln
    return (".".join(labels) if labels else "."), (end if end >= 0 else pos)


def _char_strings(buf: bytes, pos: int, end: int) -> list[bytes]:
    out = []
    while pos < end:
        ln = buf[pos]
        if pos + 1 + ln > end:
            raise DecodeError("character-string runs past its record", pos)
        out.append(buf[pos + 1:pos + 1 + ln])
        pos += 1 + ln
    return out


def _quote(raw: bytes) -> str:
    out = ['"']
    for b in raw:
        if b in (0x22, 0x5C):
            out.append("\\" + chr(b))
        elif 0x20 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    out.append('"')
    return "".join(out)


def _svcb(buf: bytes, pos: int, end: int, rr: dict[str, Any]) -> str:
    """SVCB/HTTPS RDATA (RFC 9460 §2.2) in dig's presentation format; params also kept in ``rr``."""
    if end - pos < 3:
        raise DecodeError("SVCB record too short", pos)
    prio = _U16.unpack_from(buf, pos)[0]
    target, pos = read_name(buf, pos + 2)
    parts = [str(prio), target]
    params: dict[str, Any] = {}
    while pos < end:
        if end - pos < 4:
            raise DecodeError("SvcParam header cut off", pos)
        key, ln = struct.unpack_from("!HH", buf, pos)
        pos += 4
        if pos + ln > end:
            raise DecodeError("SvcParam value runs past its record", pos)
        val = buf[pos:pos + ln]
        pos += ln
        name = _SVC_KEYS.get(key, f"key{key}")
        if key == 1:
            ids = [s.decode("latin-1") for s in _char_strings(val, 0, len(val))]
            params["alpn"] = ids
            rr["alpn"] = ids
            parts.append('alpn="' + ",".join(i.replace(",", "\\,") for i in ids) + '"')
        elif key == 2:
            params[name] = True
            parts.append(name)
        elif key == 3 and ln == 2:
            params[name] = _U16.unpack(val)[0]
            parts.append(f"port={params[name]}")
        elif key in (4, 6):
            size, fam = (4, socket.AF_INET) if key == 4 else (16, socket.AF_INET6)
            if ln % size:
                raise DecodeError(f"{name} length {ln} not a multiple of {size}", pos)
            addrs = [socket.inet_ntop(fam, val[i:i + size]) for i in range(0, ln, size)]
            params[name] = addrs
            parts.append(f"{name}={','.join(addrs)}")
        elif key == 0:
            keys = [_SVC_KEYS.get(k, f"key{k}") for (k,) in struct.iter_unpack("!H", val[: ln - ln % 2])]
            params[name] = keys
            parts.append(f"mandatory={','.join(keys)}")
        elif key == 5:  # RFC 9460 §7.3 / the ECH draft: base64 in presentation format
            params[name] = base64.b64encode(val).decode("ascii")
            parts.append(f"ech={params[name]}")
        else:  # RFC 9460 §2.1: unknown keys as key65535-style names with a quoted value
            params[name] = val.hex()
            parts.append(f"{name}={_quote(val)}")
    rr["params"] = params
    return " ".join(parts)


def _rdata(buf: bytes, rtype: int, pos: int, end: int, rr: dict[str, Any]) -> str:
    """Presentation format of one record's data (RFC 1035 §5.1 and the types' own RFCs)."""
    ln = end - pos
    if rtype == 1:
        if ln != 4:
            raise DecodeError(f"A record of {ln} bytes", pos)
        return socket.inet_ntop(socket.AF_INET, buf[pos:end])
    if rtype == 28:
        if ln != 16:
            raise DecodeError(f"AAAA record of {ln} bytes", pos)
        return socket.inet_ntop(socket.AF_INET6, buf[pos:end])
    if rtype in (2, 5, 12, 39):
        return read_name(buf, pos)[0]
    if rtype == 15:
        if ln < 3:
            raise DecodeError("MX record too short", pos)
        return f"{_U16.unpack_from(buf, pos)[0]} {read_name(buf, pos + 2)[0]}"
    if rtype == 16 or rtype == 99:
        strings = _char_strings(buf, pos, end)
        rr["strings"] = [s.decode("utf-8", "replace") for s in strings]
        return " ".join(_quote(s) for s in strings)
    if rtype == 6:
        mname, p = read_name(buf, pos)
        rname, p = read_name(buf, p)
        if end - p != 20:
            raise DecodeError("SOA record has the wrong length", p)
        return f"{mname} {rname} " + " ".join(str(v) for v in _SOA_FIXED.unpack_from(buf, p))
    if rtype == 33:
        if ln < 7:
            raise DecodeError("SRV record too short", pos)
        prio, weight, port = _SRV_FIXED.unpack_from(buf, pos)
        return f"{prio} {weight} {port} {read_name(buf, pos + 6)[0]}"
    if rtype in (64, 65):
        return _svcb(buf, pos, end, rr)
    return f"\\# {ln} {buf[pos:end].hex()}" if ln else "\\# 0"


class Question(NamedTuple):
    name: str
    type: int
    cls: int


@dataclass(slots=True)
class Message:
    """A parsed DNS message."""

    id: int
    flags: int
    opcode: int
    rcode: int  #: with the EDNS extended bits (RFC 6891 §6.1.3) when an OPT record is present
    questions: list[Question]
    answers: list[dict[str, Any]]
    authority: list[dict[str, Any]]
    additional: list[dict[str, Any]]

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    def flag_names(self) -> list[str]:
        return [name for name, bit in _FLAGS if self.flags & bit]


def parse_message(buf: bytes) -> Message:
    """Parse one DNS message; :class:`DecodeError` if it is truncated or malformed."""
    if len(buf) < 12:
        raise DecodeError(f"DNS message of {len(buf)} bytes is shorter than its header", 0)
    mid, flags, qd, an, ns, ar = _HEADER.unpack_from(buf)
    pos = 12
    questions = []
    for _ in range(qd):
        name, pos = read_name(buf, pos)
        if pos + 4 > len(buf):
            raise DecodeError("question cut off", pos)
        qtype, qcls = _Q_FIXED.unpack_from(buf, pos)
        pos += 4
        if len(questions) < _MAX_RECORDS:
            questions.append(Question(name, qtype, qcls))
    sections: list[list[dict[str, Any]]] = [[], [], []]
    rcode = flags & 0xF
    for sec, count in zip(sections, (an, ns, ar)):
        for _ in range(count):
            name, pos = read_name(buf, pos)
            if pos + 10 > len(buf):
                raise DecodeError("resource record cut off", pos)
            rtype, rcls, ttl, rdlen = _RR_FIXED.unpack_from(buf, pos)
            pos += 10
            end = pos + rdlen
            if end > len(buf):
                raise DecodeError("record data runs past the end of the message", pos)
            if rtype == 41:  # OPT (RFC 6891 §6.1.2): class is the UDP size, TTL holds flags
                rcode |= (ttl >> 24) << 4
                rr: dict[str, Any] = {"name": name, "type": "OPT", "udp_size": rcls, "version": (ttl >> 16) & 0xFF,
                                      "do": bool(ttl & 0x8000), "data": f"\\# {rdlen} {buf[pos:end].hex()}"}
            else:
                rr = {"name": name, "type": type_name(rtype), "ttl": ttl}
                if rcls != 1:
                    rr["class"] = rcls
                rr["data"] = _rdata(buf, rtype, pos, end, rr)
            pos = end
            if len(sec) < _MAX_RECORDS:
                sec.append(rr)
    return Message(mid, flags, (flags >> 11) & 0xF, rcode, questions, *sections)


# --------------------------------------------------------------------------- lookups


class Resolution(NamedTuple):
    """One address a lookup returned, and when."""

    qname: str  #: the name the client asked for (CNAMEs followed to this address)
    address: str
    conn: int | None
    query_frame: int
    query_ts: float
    response_frame: int
    response_ts: float
    lookup_ms: float
    ttl: int


#: unanswered copies of one question kept (see _Lookup.waiting)
_MAX_WAITING = 64


class _Lookup:
    """One question asked (maybe several times, maybe from several ports) and its first answer."""

    __slots__ = ("id", "qname", "qtype", "query_frame", "query_ts", "retransmissions", "response_frame",
                 "response_ts", "rcode", "answers", "waiting")

    def __init__(self, mid: int, qname: str, qtype: str, frame: int, ts: float, conn: int | None) -> None:
        self.id = mid
        self.qname = qname
        self.qtype = qtype
        self.query_frame = frame
        self.query_ts = ts
        self.retransmissions = 0
        self.response_frame: int | None = None
        self.response_ts: float | None = None
        self.rcode: str | None = None
        self.answers: list[dict[str, Any]] = []
        # copies of the query not answered yet (frame, ts, conn), oldest first: a response answers
        # its own flow's oldest copy (as Wireshark pairs them), so each copy's answer is timed from it.
        # At most _MAX_WAITING: the same question asked from ever new ports and never answered (a flood)
        # would grow it without end; an answer to a copy that dropped out counts as unmatched.
        self.waiting: deque[tuple[int, float, int | None]] = deque([(frame, ts, conn)], maxlen=_MAX_WAITING)

    def answer(self, conn: int | None) -> tuple[int, float] | None:
        for i, (frame, ts, c) in enumerate(self.waiting):
            if c == conn:
                del self.waiting[i]
                return frame, ts
        return None

    def as_dict(self) -> dict[str, Any]:
        lookup_ms = None if self.response_ts is None else round((self.response_ts - self.query_ts) * 1000.0, 3)
        return {
            "id": self.id, "qname": self.qname, "qtype": self.qtype,
            "query_frame": self.query_frame, "query_ts": self.query_ts,
            "response_frame": self.response_frame, "response_ts": self.response_ts, "lookup_ms": lookup_ms,
            "retransmissions": self.retransmissions, "rcode": self.rcode,
            "answers": [f"{a['type']} {a['data']}" for a in self.answers],
        }


_MAX_LOOKUPS = 50_000
_MAX_PENDING = 4096


class DnsLookups:
    """DNS state shared by every DNS flow of a capture (the pipeline makes one and hands it to each decoder).

    Two things need more than one flow: a client that retransmits a query
    from a new source port (dig, glibc) is a new UDP flow, so unanswered
    questions are kept here by (client address, server address, id, qname,
    qtype); and a later TCP/QUIC connection to an address should find the
    lookup that returned it: :meth:`resolution_for` gives the latest lookup
    answered at or before the connection's start, :meth:`names` everything
    learned (name -> addresses).  Both tables are bounded.
    """

    def __init__(self, max_addresses: int = 100_000, per_address: int = 16) -> None:
        self.pending: OrderedDict[tuple[str, str, int, str, str], _Lookup] = OrderedDict()
        self._by_addr: OrderedDict[str, list[Resolution]] = OrderedDict()
        self._max = max_addresses
        self._per = per_address

    def add(self, res: Resolution) -> None:
        lst = self._by_addr.get(res.address)
        if lst is None:
            if len(self._by_addr) >= self._max:
                self._by_addr.popitem(last=False)
            lst = self._by_addr[res.address] = []
        lst.append(res)
        if len(lst) > self._per:
            del lst[0]

    def resolution_for(self, address: str, ts: float) -> Resolution | None:
        """The latest lookup answered at or before ``ts`` that returned ``address``."""
        best = None
        for res in self._by_addr.get(address, ()):
            if res.response_ts <= ts and (best is None or res.response_ts >= best.response_ts):
                best = res
        return best

    def names(self) -> dict[str, list[str]]:
        """name -> addresses, everything learned so far."""
        out: dict[str, list[str]] = {}
        for addr, lst in self._by_addr.items():
            for res in lst:
                if addr not in out.setdefault(res.qname, []):
                    out[res.qname].append(addr)
        return out


class _Transactions:
    """Query/response matching for one flow, by (id, qname, qtype) between the same two hosts."""

    def __init__(self, ctx: DecodeContext, transport: str, lookups: DnsLookups | None) -> None:
        self.ctx = ctx
        self.transport = transport
        self.shared = lookups if lookups is not None else DnsLookups()
        self.lookups: list[_Lookup] = []  # the lookups this flow started
        self.queries = 0
        self.responses = 0
        self.unmatched_responses = 0

    def message(self, direction: int, data: bytes, frame: int, ts: float) -> Event:
        """One whole DNS message: a query/response event, or ``malformed`` (and decoding goes on)."""
        conn = self.ctx.conn
        try:
            msg = parse_message(data)
        except DecodeError as exc:
            where = f" at byte {exc.offset}" if exc.offset is not None else ""
            return Malformed(frame=frame, ts=ts, conn=conn, layer="dns", direction=DIRECTIONS[direction],
                             reason=f"DNS: {exc.reason}{where}")
        q = msg.questions[0] if msg.questions else Question("", 0, 1)
        qtype = type_name(q.type)
        ev = DnsMessage(
            frame=frame, ts=ts, conn=conn, type="response" if msg.is_response else "query",
            direction=DIRECTIONS[direction], transport=self.transport, id=msg.id, qname=q.name, qtype=qtype,
            opcode=OPCODES.get(msg.opcode, str(msg.opcode)),
            rcode=RCODES.get(msg.rcode, str(msg.rcode)) if msg.is_response else None,
            flags=msg.flag_names(), answers=msg.answers, authority=msg.authority, additional=msg.additional,
            raw=bytes(data[:512]),
        )
        pending = self.shared.pending
        key = (self.ctx.client[0], self.ctx.server[0], msg.id, q.name.lower(), qtype)
        lk = pending.get(key)
        if not msg.is_response:
            self.queries += 1
            if lk is not None and lk.response_frame is None:
                lk.retransmissions += 1
                lk.waiting.append((frame, ts, conn))
                ev.retransmission = True
                return ev
            lk = _Lookup(msg.id, q.name, qtype, frame, ts, conn)
            pending[key] = lk
            pending.move_to_end(key)
            if len(pending) > _MAX_PENDING:
                pending.popitem(last=False)
            if len(self.lookups) < _MAX_LOOKUPS:
                self.lookups.append(lk)
            return ev
        self.responses += 1
        asked = lk.answer(conn) if lk is not None else None
        if asked is None:
            self.unmatched_responses += 1
            return ev
        ev.query_frame = asked[0]
        ev.lookup_ms = round((ts - asked[1]) * 1000.0, 3)
        if lk.response_frame is not None:  # a second answer, to a retransmitted copy
            ev.retransmission = True
        else:
            lk.response_frame, lk.response_ts = frame, ts
            lk.rcode = ev.rcode
            lk.answers = msg.answers
            first_ms = round((ts - lk.query_ts) * 1000.0, 3)
            for rr in msg.answers:
                if rr["type"] in ("A", "AAAA"):
                    self.shared.add(Resolution(q.name, rr["data"], conn, lk.query_frame, lk.query_ts,
                                               frame, ts, first_ms, rr["ttl"]))
        if not lk.waiting:
            del pending[key]
        return ev

    def summary(self) -> dict[str, Any]:
        return {"app": "dns", "dns": {
            "transport": self.transport,
            "queries": self.queries,
            "responses": self.responses,
            "unanswered": sum(1 for lk in self.lookups if lk.response_frame is None),
            "unmatched_responses": self.unmatched_responses,
            "lookups": [lk.as_dict() for lk in self.lookups],
        }}


class DnsUdpDecoder:
    """DNS over UDP: each datagram is one message (RFC 1035 §4.2.1)."""

    layer = "dns"

    def __init__(self, ctx: DecodeContext, lookups: DnsLookups | None = None) -> None:
        self._tx = _Transactions(ctx, "udp", lookups)

    def datagram(self, direction: int, data: bytes, frame: int, ts: float) -> list[Event]:
        return [self._tx.message(direction, data, frame, ts)]

    def finish(self) -> list[Event]:
        return []

    def summary(self) -> dict[str, Any]:
        return self._tx.summary()

    def settled(self) -> bool:
        """Every lookup this flow started has its answer: the flow may retire (see
        inspector.retirement).  A flow of more than 64 lookups (a resolver's long-lived port) never
        counts as settled; this runs after each response, so it must stay cheap."""
        lookups = self._tx.lookups
        return 0 < len(lookups) <= 64 and all(lk.response_frame is not None for lk in lookups)


class DnsTcpDecoder:
    """DNS over TCP: messages with a 2-byte length prefix (RFC 1035 §4.2.2, RFC 7766)."""

    layer = "dns"

    def __init__(self, ctx: DecodeContext, lookups: DnsLookups | None = None) -> None:
        self._tx = _Transactions(ctx, "tcp", lookups)
        self._buf = (bytearray(), bytearray())
        self._start = [0, 0]  # stream offset of each buffer's first byte
        self._dead = [False, False]
        self._last = [(0, 0.0), (0, 0.0)]  # frame and time of the last bytes fed, per direction

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        if self._dead[direction]:
            return []
        buf = self._buf[direction]
        if not buf:
            self._start[direction] = offset
        buf += data
        span = index.locate(offset + len(data) - 1) if data else None
        if span is not None:
            self._last[direction] = (span.frame, span.delivered)
        out: list[Event] = []
        pos = 0
        while len(buf) - pos >= 2:
            ln = _U16.unpack_from(buf, pos)[0]
            if len(buf) - pos - 2 < ln:
                break
            last = self._start[direction] + pos + 2 + ln - 1
            span = index.locate(last)
            out.append(self._tx.message(direction, bytes(buf[pos + 2:pos + 2 + ln]), span.frame, span.delivered))
            pos += 2 + ln
        if pos:
            del buf[:pos]
            self._start[direction] += pos
            index.release(self._start[direction])
        return out

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        """A hole in the stream loses the length framing for this direction."""
        if self._dead[direction]:
            return []
        self._dead[direction] = True
        self._buf[direction].clear()
        try:
            span = index.locate(offset)
            frame, ts = span.frame, span.delivered
        except LookupError:
            frame, ts = 0, 0.0
        return [Note(frame=frame, ts=ts, conn=self._tx.ctx.conn, layer="dns", severity="warning",
                     direction=DIRECTIONS[direction],
                     message=f"{length} bytes missing from the capture: DNS message framing lost")]

    def finish(self) -> list[Event]:
        out: list[Event] = []
        for d, buf in enumerate(self._buf):
            if buf and not self._dead[d]:
                frame, ts = self._last[d]
                out.append(Note(frame=frame, ts=ts, conn=self._tx.ctx.conn, layer="dns", direction=DIRECTIONS[d],
                                message=f"capture ended inside a DNS message ({len(buf)} bytes buffered)"))
        return out

    def summary(self) -> dict[str, Any]:
        return self._tx.summary()


def looks_like_dns(payload: bytes) -> bool:
    """Whether a datagram (or a TCP stream's first message, without its length prefix) parses as DNS.

    For choosing a decoder on ports other than 53: a header with at most a
    few questions and a first question that parses.
    """
    if len(payload) < 17:
        return False
    qd, an, ns, ar = struct.unpack_from("!HHHH", payload, 4)
    if not 1 <= qd <= 4 or an + ns + ar > 512 or (payload[2] >> 3) & 0xF not in OPCODES:
        return False
    try:
        _, pos = read_name(payload, 12)
    except DecodeError:
        return False
    return pos + 4 <= len(payload)
