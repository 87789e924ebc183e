"""The QUIC decoder of one UDP flow: packets, decryption, frames, TLS, streams, loss.

Per datagram: split the coalesced packets, parse each unprotected header,
pick the keys of its packet type and direction, remove header protection,
recover the packet number, decrypt, parse the frames; CRYPTO bytes go
through a per-epoch reassembler into the TLS handshake parsers (which give
the client random that finds the other keys in the key log), STREAM bytes
through a per-stream reassembler into HTTP/3.  A packet that cannot be
opened is still shown, with ``pn`` None and the reason; a malformed one
becomes a ``Malformed`` event and the datagram's remaining bytes are skipped.

The flow table keys UDP flows by 5-tuple, so a connection that migrates to
a new address continues in another flow (and decoder); this one notes path
validation (PATH_CHALLENGE) and short headers it cannot attribute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aioquic.buffer import Buffer
from aioquic.quic.packet import (
    PACKET_LONG_HEADER,
    QuicPacketType,
    get_retry_integrity_tag,
    pull_quic_transport_parameters,
)
from aioquic.tls import CipherSuite

from ...errors import DecodeError
from ...events import (
    DIRECTIONS,
    Event,
    Malformed,
    Note,
    QuicLoss,
    QuicPacket,
    QuicRetry,
    QuicVersionNegotiation,
)
from ...flows.streamindex import Span, StreamIndex
from ..base import DecodeContext
from ..tls.handshake import (
    ClientHello,
    EncryptedExtensions,
    HandshakeBuffer,
    NewSessionTicket,
    ServerHello,
    message_event,
    parse_message,
)
from .frames import FRAME_NAMES, Frame, FrameError, ack_eliciting, parse_frames
from .packet import (
    SPACE_OF,
    SUPPORTED_VERSIONS,
    TYPE_NAMES,
    CidTracker,
    Header,
    is_grease_version,
    parse_header,
    parse_long_invariants,
    version_name,
)
from .protection import CryptoError, OneRttKeys, PacketKeys, initial_keys, suites_for_secret, unprotect
from .recovery import Chunk, Reassembler, SpaceLedger, delivery

C2S, S2C = 0, 1

#: key-log labels per (packet type, direction)
SECRET_LABELS = {
    (QuicPacketType.ZERO_RTT, C2S): "CLIENT_EARLY_TRAFFIC_SECRET",
    (QuicPacketType.HANDSHAKE, C2S): "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
    (QuicPacketType.HANDSHAKE, S2C): "SERVER_HANDSHAKE_TRAFFIC_SECRET",
    (QuicPacketType.ONE_RTT, C2S): "CLIENT_TRAFFIC_SECRET_0",
    (QuicPacketType.ONE_RTT, S2C): "SERVER_TRAFFIC_SECRET_0",
}

#: CRYPTO streams use negative ids in the loss records: one per encryption level
CRYPTO_STREAM = {
    QuicPacketType.INITIAL: -1,
    QuicPacketType.HANDSHAKE: -2,
    QuicPacketType.ONE_RTT: -3,
    QuicPacketType.ZERO_RTT: -3,  # 0-RTT cannot carry CRYPTO; a peer that does is noted
}

#: bounds that keep memory flat on hostile input
STREAM_BUFFER_LIMIT = 1 << 20  #: out-of-order bytes buffered per stream
CONNECTION_BUFFER_LIMIT = 1 << 25  #: out-of-order stream bytes buffered per connection, all streams
MAX_HOLES = 256  #: open gaps tracked per stream for loss attribution
CRYPTO_BUFFER_LIMIT = 1 << 16  #: out-of-order CRYPTO bytes per encryption level
MAX_STREAMS = 1 << 16  #: streams tracked per connection
MAX_MALFORMED = 64  #: malformed datagrams reported before the rest are only counted

H3_ALPNS = ("h3", "h3-29", "h3-30", "h3-31", "h3-32")

_ARTICLED = {QuicPacketType.INITIAL: "an Initial", QuicPacketType.HANDSHAKE: "a Handshake",
             QuicPacketType.ZERO_RTT: "a 0-RTT"}

#: frame types each long-header packet type may carry (RFC 9000 §12.4, Table 3)
_HANDSHAKE_FRAMES = frozenset({0x00, 0x01, 0x02, 0x03, 0x06, 0x1C})
ALLOWED_FRAMES = {
    QuicPacketType.INITIAL: _HANDSHAKE_FRAMES,
    QuicPacketType.HANDSHAKE: _HANDSHAKE_FRAMES,
    QuicPacketType.ZERO_RTT: frozenset(FRAME_NAMES) - {0x02, 0x03, 0x06, 0x07, 0x1B, 0x19, 0x1E},
}


@dataclass(slots=True)
class StreamState:
    """One direction of one stream: its reassembler and the index HTTP/3 reads times from."""

    direction: int
    stream_id: int
    asm: Reassembler
    index: StreamIndex = field(default_factory=StreamIndex)
    last_pn: int = -1  #: packet that carried the highest bytes so far
    holes: list[list[Any]] = field(default_factory=list)  # [start, end, candidate lost pns]
    reset: int | None = None  #: RESET_STREAM error code
    finished: bool = False


class QuicDecoder:
    """A :class:`~inspector.decoders.base.DatagramDecoder` for one QUIC connection's UDP flow.

    Besides events, it keeps what the RTT ledger and head-of-line analyses read:

    * :meth:`stream_chunks` ``(direction, stream_id)``: per run of stream bytes
      (offset, length, arrival_ts, delivered_ts, frame, arrival_frame, pn),
      as seen at the capture point or, with ``receiver_view``, without the
      packets the peer never acknowledged; :attr:`streams` lists the streams;
    * :attr:`losses` (after :meth:`finish`): :class:`~inspector.events.QuicLoss`
      per lost packet, with the streams it carried and where their data was resent;
    * :attr:`ledgers`: per ``(direction, space)`` the packet-number records;
    * :meth:`rtt`: the path round trip from ACK samples, and the handshake
      facts in :meth:`summary` (``handshake_rtts``, ``zero_rtt``, ``retry``...).
    """

    def __init__(self, ctx: DecodeContext, *, app: Any = None, records: bool = True) -> None:
        """``app`` replaces the HTTP/3 decoder; ``records=False`` drops the per-stream chunk records
        (memory for very large captures; :meth:`stream_chunks` is then empty)."""
        self.ctx = ctx
        self.records = records
        self._last = (0, 0.0)  # frame and time of the last datagram
        self.conn = ctx.conn
        self.keylog = ctx.keylog
        self.cids = CidTracker()
        self.version: int | None = None
        self._server_version_seen = False
        self.initial_dcid: bytes | None = None  #: DCID the Initial keys come from
        self.original_dcid: bytes | None = None  #: DCID of the client's very first Initial
        self.client_random: bytes | None = None
        self.suite: CipherSuite | None = None
        self._initial: dict[tuple[bytes, int], tuple[PacketKeys, PacketKeys]] = {}
        self._keys: dict[tuple[QuicPacketType, int], PacketKeys | OneRttKeys] = {}
        self._key_miss: dict[tuple[QuicPacketType, int], tuple[int, str]] = {}  # reason and keylog generation
        self.ledgers: dict[tuple[int, str], SpaceLedger] = {}
        self._senders: dict[int, list[SpaceLedger]] = {}
        self._crypto: dict[tuple[int, QuicPacketType], tuple[StreamState, HandshakeBuffer]] = {}
        self.streams: dict[tuple[int, int], StreamState] = {}
        self._budget = [0, CONNECTION_BUFFER_LIMIT]
        self.app = app  #: the HTTP/3 decoder (created when ALPN says h3)
        self._app_checked = app is not None
        self.losses: list[QuicLoss] = []
        # what the summary reports
        self.sni: str | None = None
        self.alpn_offered: list[str] = []
        self.alpn: str | None = None
        self.retry = False
        self.version_negotiation = False
        self.hrr = False
        self.zero_rtt_sent = False
        self.zero_rtt_pns: set[int] = set()
        self.early_data_accepted: bool | None = None
        self.resumed = False
        self.transport_params: dict[int, dict[str, Any]] = {}
        self.packets = 0
        self.decrypted = {name: 0 for name in TYPE_NAMES.values()}
        self.undecrypted = {name: 0 for name in TYPE_NAMES.values()}
        self.malformed = 0
        self.first_initial_ts: float | None = None
        self.client_finished_ts: float | None = None
        # the frames of the three times above and below (where the ledger's quic step completes)
        self.first_initial_frame = self.client_finished_frame = self.first_handshake_c2s_frame = 0
        self.first_1rtt_c2s_ts: float | None = None
        self.first_handshake_c2s_ts: float | None = None
        self.handshake_done_ts: float | None = None
        self.closed: dict[str, Any] | None = None
        self.path_challenges = 0
        self.datagrams = 0
        self._ack_delay_exponent = [3, 3]  # per sender of the ACK (from its transport parameters)
        self._noted: set[str] = set()
        self.initial_version_mismatch: tuple[int, int] | None = None

    # ------------------------------------------------------------------ datagrams

    def datagram(self, direction: int, data: bytes, frame: int, ts: float) -> list[Event]:
        """Decode every packet of one UDP payload."""
        self.datagrams += 1
        self._last = (frame, ts)
        events: list[Event] = []
        data = bytes(data)
        offset = 0
        index = 0
        first_dcid: bytes | None = None
        while offset < len(data):
            if index and not self._same_connection(data, offset, first_dcid):
                # RFC 9000 §12.2: coalesced packets share the first one's DCID; anything else is
                # datagram padding (aioquic pads Initial datagrams with random bytes)
                self._note(events, frame, ts, direction, "padding",
                           f"{len(data) - offset} bytes of padding after the last QUIC packet of a datagram ignored")
                break
            try:
                end, dcid = self._packet(direction, data, offset, index, frame, ts, events)
            except DecodeError as exc:
                self._malformed(events, frame, ts, direction, exc.reason)
                break
            if end <= offset:
                break
            if first_dcid is None:
                first_dcid = dcid
            offset = end
            index += 1
        return events

    @staticmethod
    def _same_connection(data: bytes, offset: int, first_dcid: bytes | None) -> bool:
        """Whether the bytes at ``offset`` start a packet with the datagram's first DCID."""
        if first_dcid is None:
            return False
        first = data[offset]
        if not first & 0x40:
            return False
        if first & PACKET_LONG_HEADER:
            try:
                _, dcid, _ = parse_long_invariants(data, offset)
            except DecodeError:
                return False
            return dcid == first_dcid
        return data[offset + 1 : offset + 1 + len(first_dcid)] == first_dcid

    def _packet(self, direction: int, data: bytes, offset: int, index: int, frame: int, ts: float,
                events: list[Event]) -> tuple[int, bytes | None]:
        """Decode the packet at ``offset``; returns where the next one starts and its DCID."""
        first = data[offset]
        if first & PACKET_LONG_HEADER:
            return self._long_packet(direction, data, offset, index, frame, ts, events)
        if not first & 0x40:
            raise DecodeError("not QUIC: fixed bit is 0", offset)
        return self._short_packet(direction, data, offset, index, frame, ts, events)

    def _long_packet(self, direction: int, data: bytes, offset: int, index: int, frame: int, ts: float,
                     events: list[Event]) -> tuple[int, bytes | None]:
        try:
            hdr = parse_header(data, offset, 0)
        except DecodeError as exc:
            if exc.reason.startswith("unsupported QUIC version"):
                version, dcid, scid = parse_long_invariants(data, offset)
                what = "a GREASE version" if is_grease_version(version) else "a version this decoder does not know"
                self._note(events, frame, ts, direction, f"version-{version}",
                           f"long header with {what} {version_name(version)} (dcid {dcid.hex()}, scid "
                           f"{scid.hex()}): not decoded")
                return len(data), dcid
            raise
        self.packets += 1
        ptype = hdr.type
        name = TYPE_NAMES[ptype]
        length = hdr.end - hdr.start
        if ptype is QuicPacketType.VERSION_NEGOTIATION:
            self.version_negotiation = True
            # the client starts over in another version: new Initial keys, packet numbers and ClientHello
            self.initial_dcid = None
            self.original_dcid = None
            self._crypto.pop((1 - direction, QuicPacketType.INITIAL), None)
            for space in ("initial", "application"):
                old = self.ledgers.pop((1 - direction, space), None)
                if old is not None:
                    self._senders[1 - direction].remove(old)
            events.append(QuicVersionNegotiation(
                frame=frame, ts=ts, conn=self.conn, direction=DIRECTIONS[direction], version=version_name(0),
                dcid=hdr.dcid.hex(), scid=hdr.scid.hex() if hdr.scid is not None else None, pn=None,
                length=length, frames=[], coalesced=index,
                versions=[version_name(v) for v in hdr.supported_versions]))
            return hdr.end, hdr.dcid
        if ptype is QuicPacketType.RETRY:
            events.append(self._retry(direction, data, hdr, index, frame, ts))
            return hdr.end, hdr.dcid
        if direction == S2C or not self._server_version_seen:
            # the connection's version is the server's (compatible negotiation, RFC 9368, may change it)
            self.version = hdr.version
            self._server_version_seen = direction == S2C
        if ptype is QuicPacketType.ZERO_RTT:
            self.zero_rtt_sent = True
        elif ptype is QuicPacketType.HANDSHAKE and direction == C2S and self.first_handshake_c2s_ts is None:
            self.first_handshake_c2s_ts = ts
            self.first_handshake_c2s_frame = frame
        self.initial_version_mismatch = None
        pn, payload, reason = self._open_long(direction, data, hdr)
        if self.initial_version_mismatch is not None:
            said, used = self.initial_version_mismatch
            self._note(events, frame, ts, direction, f"salt-{direction}",
                       f"Initial packet with version {version_name(said)} in its header is protected with "
                       f"version {version_name(used)} keys (a sender keeping its original version's Initial "
                       "keys after compatible version negotiation, RFC 9368)", "warning")
        self._count(name, pn)
        if pn is not None and ptype is QuicPacketType.INITIAL and direction == C2S and self.first_initial_ts is None:
            self.first_initial_ts = ts
            self.first_initial_frame = frame
        if pn is not None and ptype is QuicPacketType.ZERO_RTT:
            self.zero_rtt_pns.add(pn)
        if pn is not None or not self.cids.known(1 - direction):
            if hdr.scid is not None:
                self.cids.issue(1 - direction, hdr.scid)
        event = QuicPacket(
            frame=frame, ts=ts, conn=self.conn, type=name, direction=DIRECTIONS[direction],
            version=version_name(hdr.version), dcid=hdr.dcid.hex(), scid=hdr.scid.hex() if hdr.scid is not None else None,
            pn=pn, length=length, frames=[], reason=reason, coalesced=index, raw=payload or b"")
        events.append(event)
        if pn is not None and payload is not None:
            self._frames(event, direction, ptype, pn, payload, frame, ts, events)
        return hdr.end, hdr.dcid

    def _short_packet(self, direction: int, data: bytes, offset: int, index: int, frame: int, ts: float,
                      events: list[Event]) -> tuple[int, bytes | None]:
        self.packets += 1
        if not self.cids.known(direction):
            self.undecrypted["1rtt"] += 1
            events.append(QuicPacket(
                frame=frame, ts=ts, conn=self.conn, type="1rtt", direction=DIRECTIONS[direction], version=None,
                dcid=None, scid=None, pn=None, length=len(data) - offset, frames=[], coalesced=index,
                reason="DCID length unknown: no long-header packet of this connection was captured "
                       "(capture started mid-connection, or the connection migrated here)"))
            return len(data), None
        dcid_len, matched = self.cids.short_dcid_len(direction, data, offset)
        hdr = pn = payload = phase = None
        reason = None
        for n in self._dcid_lengths(direction, dcid_len):
            try:
                candidate = parse_header(data, offset, n)
            except DecodeError as exc:
                reason = exc.reason
                continue
            pn, payload, reason, phase = self._open_short(direction, data, candidate)
            hdr = candidate
            if pn is not None:
                if n != dcid_len:
                    self._note(events, frame, ts, direction, "cid-length",
                               f"short header opened with a {n}-byte DCID, not the {dcid_len} bytes first assumed")
                break
            if reason and not reason.startswith("decryption failed"):
                break  # no key at all: other lengths cannot help
        if hdr is None:
            raise DecodeError(reason or "short header could not be parsed", offset)
        if pn is not None:
            if not matched and hdr.dcid not in self.cids.issued[direction]:
                self.cids.issue(direction, hdr.dcid, -1)
            if self.cids.in_use[direction] is not None and hdr.dcid != self.cids.in_use[direction]:
                self._note(events, frame, ts, direction, f"cid-{hdr.dcid.hex()}",
                           f"{DIRECTIONS[direction]} packets now use DCID {hdr.dcid.hex()} "
                           "(connection ID rotation or path migration)")
            self.cids.in_use[direction] = hdr.dcid
            if direction == C2S and self.first_1rtt_c2s_ts is None:
                self.first_1rtt_c2s_ts = ts
        elif not matched:
            reason = f"{reason}; DCID matches no connection ID seen" if reason else "DCID matches no connection ID seen"
        self._count("1rtt", pn)
        event = QuicPacket(
            frame=frame, ts=ts, conn=self.conn, type="1rtt", direction=DIRECTIONS[direction], version=None,
            dcid=hdr.dcid.hex(), scid=None, pn=pn, length=hdr.end - hdr.start, frames=[], key_phase=phase,
            reason=reason, coalesced=index, raw=payload or b"")
        events.append(event)
        if pn is not None and payload is not None:
            self._frames(event, direction, QuicPacketType.ONE_RTT, pn, payload, frame, ts, events)
        return hdr.end, hdr.dcid

    def _dcid_lengths(self, direction: int, first: int) -> Iterator[int]:
        """DCID lengths to try for a short header: the likely one, then the other known lengths."""
        yield first
        yield from sorted({len(c) for c in self.cids.issued[direction]} - {first})

    def _retry(self, direction: int, data: bytes, hdr: Header, index: int, frame: int, ts: float) -> QuicRetry:
        self.retry = True
        # the server discarded the client's Initials: they are answered, not lost, and the client
        # starts its Initial CRYPTO stream again (aioquic even with a new ClientHello)
        ledger = self.ledgers.get((1 - direction, "initial"))
        if ledger is not None:
            ledger.unacked.clear()
        self._crypto.pop((1 - direction, QuicPacketType.INITIAL), None)
        integrity = "unchecked"
        if self.original_dcid is not None and hdr.version is not None:
            expected = get_retry_integrity_tag(data[hdr.start : hdr.end - 16], self.original_dcid, hdr.version)
            integrity = "valid" if expected == hdr.integrity_tag else "invalid"
        if hdr.scid:
            self.cids.issue(1 - direction, hdr.scid)
        return QuicRetry(
            frame=frame, ts=ts, conn=self.conn, direction=DIRECTIONS[direction], version=version_name(hdr.version),
            dcid=hdr.dcid.hex(), scid=hdr.scid.hex() if hdr.scid is not None else None, pn=None,
            length=hdr.end - hdr.start, frames=[], coalesced=index, token_length=len(hdr.token), integrity=integrity,
            reason=None if integrity != "invalid" else "Retry integrity tag does not match the original DCID")

    def _count(self, name: str, pn: int | None) -> None:
        if pn is None:
            self.undecrypted[name] += 1
        else:
            self.decrypted[name] += 1

    # ------------------------------------------------------------------ keys

    def _expected(self, direction: int, ptype: QuicPacketType) -> int:
        ledger = self.ledgers.get((direction, SPACE_OF[ptype]))
        return ledger.largest + 1 if ledger else 0

    def _open_long(self, direction: int, data: bytes, hdr: Header) -> tuple[int | None, bytes | None, str | None]:
        """Packet number, payload and (when not opened) the reason, for a long-header packet."""
        packet = data[hdr.start : hdr.end]
        pn_offset = hdr.pn_offset - hdr.start
        expected = self._expected(direction, hdr.type)
        if hdr.type is QuicPacketType.INITIAL:
            return self._open_initial(direction, packet, pn_offset, hdr, expected)
        candidates, reason = self._secret_keys(hdr.type, direction)
        last_error = reason
        for keys in candidates:
            try:
                _, payload, pn = unprotect(keys, packet, pn_offset, expected)
            except CryptoError as exc:
                last_error = _crypto_reason(exc)
                continue
            self._keys[(hdr.type, direction)] = keys  # the suite that worked
            return pn, payload, None
        return None, None, last_error

    def _open_initial(self, direction: int, packet: bytes, pn_offset: int, hdr: Header,
                      expected: int) -> tuple[int | None, bytes | None, str | None]:
        """Open an Initial: keys from the client's first DCID (after a Retry, the Retry's SCID)."""
        dcids = [self.initial_dcid] if self.initial_dcid is not None else []
        if direction == C2S and hdr.dcid not in dcids:
            # the first Initial, the one after a Retry, or a capture that missed the first
            dcids.append(hdr.dcid)
        if not dcids:
            return None, None, "Initial keys unknown: the client's first Initial packet was not captured"
        version = hdr.version or 1
        tries = [(dcid, version) for dcid in dcids]
        # after compatible version negotiation (RFC 9368) a sender may keep the other version's keys
        tries += [(dcids[0], other) for other in SUPPORTED_VERSIONS if other != version]
        reason = None
        for dcid, salt_version in tries:
            keys = self._initial.get((dcid, salt_version))
            if keys is None:
                if len(self._initial) > 16:
                    self._initial.clear()  # hostile input naming ever new DCIDs
                keys = self._initial[(dcid, salt_version)] = initial_keys(dcid, salt_version)
            try:
                _, payload, pn = unprotect(keys[direction], packet, pn_offset, expected)
            except CryptoError as exc:
                if reason is None:
                    reason = _crypto_reason(exc)
                continue
            # only an Initial that authenticates fixes the keys (a forged one must not)
            self.initial_dcid = dcid
            if self.original_dcid is None:
                self.original_dcid = dcid
            if salt_version != version:
                self.initial_version_mismatch = (version, salt_version)
            return pn, payload, None
        return None, None, reason

    def _secret_keys(self, ptype: QuicPacketType, direction: int) -> tuple[list[PacketKeys], str | None]:
        """Keys to try for a Handshake/0-RTT packet (several when the cipher suite is not known yet)."""
        known = self._keys.get((ptype, direction))
        if isinstance(known, PacketKeys):
            return [known], None
        secret, reason = self._secret(ptype, direction)
        if secret is None:
            return [], reason
        suites = (self.suite,) if self.suite is not None and ptype is not QuicPacketType.ZERO_RTT else \
            suites_for_secret(secret)
        version = self.version or 1
        return [PacketKeys(secret, suite, version) for suite in suites], None

    def _secret(self, ptype: QuicPacketType, direction: int) -> tuple[bytes | None, str | None]:
        label = SECRET_LABELS.get((ptype, direction))
        if label is None:
            return None, f"{TYPE_NAMES[ptype]} packets are not sent in this direction"
        miss = self._key_miss.get((ptype, direction))
        generation = self.keylog.generation if self.keylog is not None else 0
        if miss is not None and miss[0] == generation and self.client_random is not None:
            return None, miss[1]
        if self.keylog is None or not len(self.keylog):
            return None, "no key log"
        if self.client_random is None:
            return None, "no ClientHello captured: no client random to find keys with"
        secret = self.keylog.get(self.client_random, label)
        if secret is None:
            reason = f"no {label} in the key log for this ClientHello"
            self._key_miss[(ptype, direction)] = (generation, reason)
            return None, reason
        return secret, None

    def _open_short(self, direction: int, data: bytes, hdr: Header) -> tuple[int | None, bytes | None, str | None,
                                                                           int | None]:
        packet = data[hdr.start : hdr.end]
        pn_offset = hdr.pn_offset - hdr.start
        expected = self._expected(direction, QuicPacketType.ONE_RTT)
        keys = self._keys.get((QuicPacketType.ONE_RTT, direction))
        candidates: list[OneRttKeys]
        if isinstance(keys, OneRttKeys):
            candidates = [keys]
        else:
            secret, reason = self._secret(QuicPacketType.ONE_RTT, direction)
            if secret is None:
                return None, None, reason, None
            suites = (self.suite,) if self.suite is not None else suites_for_secret(secret)
            candidates = [OneRttKeys(PacketKeys(secret, suite, self.version or 1)) for suite in suites]
        reason = None
        for keys in candidates:
            try:
                _, payload, pn, phase, _ = keys.open(packet, pn_offset, expected)
            except CryptoError as exc:
                reason = _crypto_reason(exc)
                continue
            self._keys[(QuicPacketType.ONE_RTT, direction)] = keys
            return pn, payload, None, phase
        return None, None, reason, None

    # ------------------------------------------------------------------ frames

    def _ledger(self, direction: int, space: str) -> SpaceLedger:
        ledger = self.ledgers.get((direction, space))
        if ledger is None:
            siblings = self._senders.setdefault(direction, [])
            ledger = self.ledgers[(direction, space)] = SpaceLedger(siblings)
            siblings.append(ledger)
        return ledger

    def _frames(self, event: QuicPacket, direction: int, ptype: QuicPacketType, pn: int, payload: bytes,
                frame: int, ts: float, events: list[Event]) -> None:
        try:
            frames = parse_frames(payload)
        except FrameError as exc:
            frames = exc.frames
            event.reason = exc.reason
            self._malformed(events, frame, ts, direction, f"{TYPE_NAMES[ptype]} packet {pn}: {exc.reason}")
        event.frames = [f.name for f in frames]
        event.details = [f.to_dict() for f in frames]
        allowed = ALLOWED_FRAMES.get(ptype)
        if allowed is not None:
            for f in frames:
                if f.code not in allowed and f.code in FRAME_NAMES:
                    self._note(events, frame, ts, direction, f"frame-{ptype.name}-{f.name}",
                               f"{f.name} frame in {_ARTICLED[ptype]} packet (not allowed there, RFC 9000 §12.4)",
                               "warning")
        space = SPACE_OF[ptype]
        ranges = tuple(
            (f.fields["stream"] if f.code != 0x06 else CRYPTO_STREAM[ptype], f.fields["offset"],
             f.fields["offset"] + f.fields["length"])
            for f in frames if f.code == 0x06 or 0x08 <= f.code <= 0x0F
        )
        ledger = self._ledger(direction, space)
        ledger.packet(pn, frame, ts, ack_eliciting(frames), ranges)
        for f in frames:
            handler = _FRAME_HANDLERS.get(f.name)
            if handler is not None:
                handler(self, f, direction, ptype, pn, frame, ts, events)

    def _ack(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
             events: list[Event]) -> None:
        space = SPACE_OF[ptype]
        # ack delay counts only in the application space (RFC 9002 §5.3)
        delay = f.fields["delay"] * (1 << self._ack_delay_exponent[direction]) / 1e6 if space == "application" else 0.0
        self._ledger(1 - direction, space).acknowledged(f.fields["ranges"], frame, ts, delay)

    def _crypto_frame(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                      events: list[Event]) -> None:
        level = QuicPacketType.ONE_RTT if ptype is QuicPacketType.ZERO_RTT else ptype
        entry = self._crypto.get((direction, level))
        if entry is None:
            st = StreamState(direction, CRYPTO_STREAM[level], Reassembler(CRYPTO_BUFFER_LIMIT, keep_records=False))
            entry = self._crypto[(direction, level)] = (st, HandshakeBuffer())
        st, hbuf = entry
        asm = st.asm
        self._track_data(st, self._ledger(direction, SPACE_OF[ptype]), st.stream_id, f.fields["offset"], f.data, pn,
                         frame, ts)
        data, _, _ = asm.add(f.fields["offset"], f.data, frame, ts, pn)
        if asm.overflowed and "crypto-overflow" not in self._noted:
            self._note(events, frame, ts, direction, "crypto-overflow",
                       "CRYPTO reassembly buffer full: handshake bytes past a gap were dropped")
        if not data:
            return
        try:
            messages = hbuf.feed(data)
        except DecodeError as exc:
            hbuf.clear()
            self._malformed(events, frame, ts, direction, f"TLS in CRYPTO frames: {exc.reason}")
            return
        for msg_type, body in messages:
            try:
                msg = parse_message(msg_type, body, tls13=True)
            except DecodeError as exc:
                self._malformed(events, frame, ts, direction, f"TLS message type {msg_type} in CRYPTO: {exc.reason}")
                continue
            self._tls_message(msg, direction, level, frame, ts, events)
            tls_event = message_event(msg, frame=frame, ts=ts, conn=self.conn, direction=DIRECTIONS[direction],
                                      encrypted=level is not QuicPacketType.INITIAL, raw=body)
            params = getattr(msg, "quic_transport_parameters", None)
            if params is not None and hasattr(tls_event, "info"):
                tls_event.info = {"quic_transport_parameters": self.transport_params.get(direction)}
            events.append(tls_event)

    def _tls_message(self, msg: Any, direction: int, level: QuicPacketType, frame: int, ts: float,
                     events: list[Event]) -> None:
        if isinstance(msg, ClientHello):
            if direction != C2S:
                self._note(events, frame, ts, direction, "ch-dir", "ClientHello sent by the server side of the flow")
            if self.client_random is not None and msg.random != self.client_random and not (self.retry or self.version_negotiation):
                self._note(events, frame, ts, direction, "ch-random", "a second ClientHello with another random")
            self._key_miss.clear()
            self.client_random = msg.random
            self.sni = msg.sni
            self.alpn_offered = list(msg.alpn)
            self.resumed = self.resumed or bool(msg.psk_identities)
            self._transport_params(msg.quic_transport_parameters, direction, frame, ts, events)
        elif isinstance(msg, ServerHello):
            if msg.is_hrr:
                self.hrr = True
                return
            try:
                self.suite = CipherSuite(msg.cipher_suite)
            except ValueError:
                self._note(events, frame, ts, direction, "suite", f"unknown cipher suite 0x{msg.cipher_suite:04x}")
            self.resumed = msg.psk_identity is not None
        elif isinstance(msg, EncryptedExtensions):
            self.alpn = msg.alpn
            self.early_data_accepted = msg.early_data
            if self.zero_rtt_sent and not msg.early_data:
                self._note(events, frame, ts, direction, "0rtt-rejected",
                           f"the server rejected 0-RTT: {len(self.zero_rtt_pns)} early-data packets were discarded "
                           "and their data is sent again in 1-RTT packets (requests in them are shown when first "
                           "sent)", "warning")
            self._transport_params(msg.quic_transport_parameters, direction, frame, ts, events)
        elif isinstance(msg, NewSessionTicket):
            pass
        elif msg.name == "Finished" and direction == C2S and self.client_finished_ts is None:
            self.client_finished_ts = ts
            self.client_finished_frame = frame

    def _transport_params(self, data: bytes | None, direction: int, frame: int, ts: float,
                          events: list[Event]) -> None:
        if data is None:
            return
        try:
            params = pull_quic_transport_parameters(Buffer(data=data))
        except ValueError as exc:
            self._malformed(events, frame, ts, direction, f"QUIC transport parameters: {exc}")
            return
        out: dict[str, Any] = {}
        for name in params.__dataclass_fields__:
            value = getattr(params, name)
            if value is None or value is False:
                continue
            if isinstance(value, bytes):
                value = value.hex()
            elif hasattr(value, "__dataclass_fields__"):
                value = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in vars(value).items()} \
                    if hasattr(value, "__dict__") else str(value)
            out[name] = value
        self.transport_params[direction] = out
        if params.ack_delay_exponent is not None and params.ack_delay_exponent <= 20:
            self._ack_delay_exponent[direction] = params.ack_delay_exponent
        if params.preferred_address is not None:
            # packets to the preferred address carry this server-chosen CID
            self.cids.issue(1 - direction, params.preferred_address.connection_id, 1)

    def _stream_frame(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                      events: list[Event]) -> None:
        sid = f.fields["stream"]
        st = self.streams.get((direction, sid))
        if st is None:
            if len(self.streams) >= MAX_STREAMS:
                self._note(events, frame, ts, direction, "max-streams",
                           f"more than {MAX_STREAMS} streams: later streams are not reassembled")
                return
            st = self.streams[(direction, sid)] = StreamState(direction, sid,
                                                              Reassembler(STREAM_BUFFER_LIMIT, self.records,
                                                                          self._budget))
        asm = st.asm
        offset = f.fields["offset"]
        if f.fields["fin"]:
            final = offset + len(f.data)
            if asm.fin is not None and asm.fin != final:
                self._malformed(events, frame, ts, direction, f"stream {sid}: final size changed {asm.fin} -> {final}")
            asm.fin = final
        self._track_data(st, self._ledger(direction, "application"), sid, offset, f.data, pn, frame, ts)
        before = asm.delivered
        data, _, _ = asm.add(offset, f.data, frame, ts, pn)
        if asm.overflowed and f"overflow-{sid}" not in self._noted:
            self._note(events, frame, ts, direction, f"overflow-{sid}",
                       f"stream {sid}: reassembly buffer full, bytes past a gap dropped")
        for chunk in asm.last_chunks:
            st.index.add(Span(chunk.offset, chunk.offset + chunk.length, chunk.frame, chunk.arrival_ts,
                              chunk.delivered_ts, chunk.arrival_frame))
        done = asm.fin is not None and asm.delivered >= asm.fin and not st.finished
        if done:
            st.finished = True
        if data or done:
            self._to_app(direction, sid, data, before, done, st, frame, ts, events)

    def _track_data(self, st: Any, ledger: SpaceLedger, sid: int, offset: int, data: bytes, pn: int, frame: int,
                    ts: float) -> None:
        """Loss bookkeeping for one frame's bytes: holes it opens, holes it fills, resends of unacknowledged data."""
        asm = st.asm
        end = offset + len(data)
        if offset > asm.highest:
            lost = ledger.missing_between(st.last_pn, pn)
            if lost and len(st.holes) < MAX_HOLES:
                st.holes.append([asm.highest, offset, lost])
                for lost_pn in lost:
                    ledger.hole_owner.setdefault(lost_pn, set()).add(sid)
        elif offset < asm.highest and st.holes:
            for hole in st.holes:
                lo, hi = max(hole[0], offset), min(hole[1], end)
                if lo < hi:
                    for lost_pn in hole[2]:
                        ledger.resent.setdefault(lost_pn, []).append((sid, lo, hi - lo, frame, ts))
        if offset < asm.highest:
            for lost_pn in ledger.find_unacked(sid, offset, min(end, asm.highest), pn):
                ledger.resent.setdefault(lost_pn, []).append((sid, offset, min(end, asm.highest) - offset, frame, ts))
        if end >= asm.highest:
            st.last_pn = pn
        if st.holes:
            st.holes = [h for h in st.holes if h[1] > asm.delivered]

    def _to_app(self, direction: int, sid: int, data: bytes, offset: int, fin: bool, st: StreamState, frame: int,
                ts: float, events: list[Event]) -> None:
        app = self._application()
        if app is None:
            return
        try:
            events.extend(app.stream_data(direction, sid, data, offset, fin, st.index, frame, ts))
        except DecodeError as exc:
            self._malformed(events, frame, ts, direction, f"HTTP/3 stream {sid}: {exc.reason}")

    def _application(self) -> Any:
        if not self._app_checked:
            alpn = self.alpn
            if alpn is None and any(a in H3_ALPNS for a in self.alpn_offered):
                alpn = next(a for a in self.alpn_offered if a in H3_ALPNS)
            if alpn in H3_ALPNS or (alpn is None and not self.alpn_offered):
                from ..http3 import Http3Decoder

                self.app = Http3Decoder(self.ctx)
            self._app_checked = True
        return self.app

    def _reset_stream(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                      events: list[Event]) -> None:
        sid = f.fields["stream"]
        st = self.streams.get((direction, sid))
        if st is not None:
            st.reset = f.fields["error"]
        app = self._application()
        if app is not None:
            events.extend(app.stream_reset(direction, sid, f.fields["error"], frame, ts))

    def _new_connection_id(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                           events: list[Event]) -> None:
        # an endpoint issues IDs for the packets its peer sends to it
        self.cids.issue(1 - direction, f.data, f.fields["sequence"])

    def _retire_connection_id(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int,
                              ts: float, events: list[Event]) -> None:
        self.cids.retired[direction].add(f.fields["sequence"])

    def _path_challenge(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                        events: list[Event]) -> None:
        self.path_challenges += 1
        if self.path_challenges == 1:
            self._note(events, frame, ts, direction, "path",
                       "PATH_CHALLENGE: path validation (a migration to a new address continues in another UDP flow)")

    def _connection_close(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                          events: list[Event]) -> None:
        if self.closed is None:
            self.closed = {"by": "client" if direction == C2S else "server", **f.fields, "frame": frame}

    def _handshake_done(self, f: Frame, direction: int, ptype: QuicPacketType, pn: int, frame: int, ts: float,
                        events: list[Event]) -> None:
        if self.handshake_done_ts is None:
            self.handshake_done_ts = ts

    # ------------------------------------------------------------------ notes

    def _malformed(self, events: list[Event], frame: int, ts: float, direction: int, reason: str) -> None:
        self.malformed += 1
        if self.malformed <= MAX_MALFORMED:
            events.append(Malformed(frame=frame, ts=ts, conn=self.conn, layer="quic", reason=reason,
                                    direction=DIRECTIONS[direction]))
        elif self.malformed == MAX_MALFORMED + 1:
            events.append(Note(frame=frame, ts=ts, conn=self.conn, layer="quic", severity="warning",
                               message=f"more than {MAX_MALFORMED} malformed QUIC datagrams: the rest are only counted",
                               direction=DIRECTIONS[direction]))

    def _note(self, events: list[Event], frame: int, ts: float, direction: int, key: str, message: str,
              severity: str = "note") -> None:
        """A note said once per connection per ``key``."""
        if key in self._noted:
            return
        self._noted.add(key)
        events.append(Note(frame=frame, ts=ts, conn=self.conn, layer="quic", severity=severity, message=message,
                           direction=DIRECTIONS[direction]))

    # ------------------------------------------------------------------ end

    def finish(self) -> list[Event]:
        """Losses, unfilled stream gaps and the application's last word."""
        events: list[Event] = []
        self.losses = []
        for (direction, space), ledger in sorted(self.ledgers.items()):
            ledger.settle()
            lost: list[tuple[int, str, int, float, set[int]]] = []
            for pn, (frame, ts) in ledger.missing.items():
                # a gap alone may be a deliberately skipped number (RFC 9000 §21.4): report it as a
                # loss only when later packets had to fill stream bytes it must have carried
                if pn in ledger.resent:
                    lost.append((pn, "missing", frame, ts, ledger.hole_owner.get(pn, set())))
            for pn, (sent, frame, ts) in ledger.lost_unacked.items():
                if self.early_data_accepted is False and direction == C2S and pn in self.zero_rtt_pns:
                    continue  # rejected early data: discarded by the server, not lost on the path
                lost.append((pn, "unacknowledged", frame, ts, {r[0] for r in sent.ranges}))
            for pn, detected, frame, ts, streams in sorted(lost):
                resent = [{"stream": s, "offset": o, "length": n, "frame": fr, "ts": t}
                          for s, o, n, fr, t in ledger.resent.get(pn, ())]
                self.losses.append(QuicLoss(
                    frame=frame, ts=ts, conn=self.conn, direction=DIRECTIONS[direction], space=space, pn=pn,
                    detected=detected, streams=sorted(s for s in streams if s >= 0), resent=resent))
        events.extend(self.losses)
        last_frame, last_ts = self._last
        for (direction, sid), st in sorted(self.streams.items()):
            holes = st.asm.holes()
            if holes and st.reset is None:
                self._note(events, last_frame, last_ts, direction, f"gap-{direction}-{sid}",
                           f"stream {sid} ({DIRECTIONS[direction]}): bytes {holes[0][0]}..{holes[0][1]} never captured; "
                           "later bytes of the stream could not be delivered", "warning")
        if self.app is not None:
            events.extend(self.app.finish())
        return events

    # ------------------------------------------------------------------ analyses

    def stream_chunks(self, direction: int, stream_id: int, *, receiver_view: bool = False) -> list[Chunk]:
        """When each run of a stream's bytes arrived and became deliverable.

        By default as seen at the capture point; with ``receiver_view``,
        packets the peer never acknowledged (lost after the capture point)
        are left out, so their bytes count from the retransmission.
        """
        st = self.streams.get((direction, stream_id))
        if st is None:
            return []
        if not receiver_view:
            return list(st.asm.chunks)
        excluded = {loss.pn for loss in self.losses
                    if loss.detected == "unacknowledged" and loss.space == "application"
                    and loss.direction == DIRECTIONS[direction]}
        return delivery(st.asm.arrivals, excluded)

    def rtt_samples(self, direction: int) -> list[tuple[float, float]]:
        """(time, seconds) samples for packets sent in ``direction``: from their capture to their ACK's."""
        return sorted(s for (d, _), ledger in self.ledgers.items() if d == direction for s in ledger.rtt_samples)

    def rtt(self) -> tuple[float | None, float | None]:
        """The path RTT as seen from the capture point: (from the smallest samples, from the first ones).

        A client-to-server packet's sample covers the capture point -> server
        -> capture point; a server-to-client one the capture point -> client
        -> capture point.  Their sum is the round trip wherever the capture
        was taken (at an endpoint one part is just that endpoint's ACK delay).
        """
        c2s, s2c = self.rtt_samples(C2S), self.rtt_samples(S2C)
        if not c2s or not s2c:
            return None, None
        return min(v for _, v in c2s) + min(v for _, v in s2c), c2s[0][1] + s2c[0][1]

    def summary(self) -> dict[str, Any]:
        """``app`` "h3" (or "quic"), the ``quic`` object, and HTTP/3 ``requests``."""
        zero_rtt: str | None = None
        if self.zero_rtt_sent:
            zero_rtt = {True: "accepted", False: "rejected", None: "attempted"}[self.early_data_accepted]
        rtts = 0 if zero_rtt == "accepted" else 1
        rtts += int(self.retry) + int(self.version_negotiation) + int(self.hrr)
        rtt, first_rtt = self.rtt()
        handshake_end = self.client_finished_ts or self.first_handshake_c2s_ts
        quic: dict[str, Any] = {
            "version": version_name(self.version),
            "sni": self.sni,
            "alpn": self.alpn,
            "alpn_offered": self.alpn_offered,
            "handshake_rtts": rtts,
            "zero_rtt": zero_rtt,
            "retry": self.retry,
            "version_negotiation": self.version_negotiation,
            "resumed": self.resumed,
            "decrypted": self.decrypted["1rtt"] > 0,
            "rtt_ms": _ms(rtt),
            "first_rtt_ms": _ms(first_rtt),
            "handshake_ms": round((handshake_end - self.first_initial_ts) * 1000, 3)
            if handshake_end is not None and self.first_initial_ts is not None else None,
            "packets": self.packets,
            "undecrypted": sum(self.undecrypted.values()),
            "lost_packets": len(self.losses),
            "key_updates": sum(len(k.updates) for k in self._keys.values() if isinstance(k, OneRttKeys)),
            "closed_by": self.closed["by"] if self.closed else None,
        }
        # without the handshake keys the selected ALPN is unknown: h3 if that is all the client offered
        offered_h3 = bool(self.alpn_offered) and all(a in H3_ALPNS for a in self.alpn_offered)
        is_h3 = self.alpn in H3_ALPNS or (self.alpn is None and (offered_h3 or self.app is not None))
        out: dict[str, Any] = {"app": "h3" if is_h3 else "quic", "quic": quic}
        if self.app is not None:
            out.update(self.app.summary())
        else:
            out["requests"] = []
        return out

def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _crypto_reason(exc: Exception) -> str:
    text = str(exc)
    if "too short" in text:
        return "packet too short for the header-protection sample"
    return "decryption failed: the key does not open this packet (wrong key or corrupted packet)"


_FRAME_HANDLERS = {
    "ACK": QuicDecoder._ack,
    "ACK_ECN": QuicDecoder._ack,
    "CRYPTO": QuicDecoder._crypto_frame,
    "STREAM": QuicDecoder._stream_frame,
    "RESET_STREAM": QuicDecoder._reset_stream,
    "NEW_CONNECTION_ID": QuicDecoder._new_connection_id,
    "RETIRE_CONNECTION_ID": QuicDecoder._retire_connection_id,
    "PATH_CHALLENGE": QuicDecoder._path_challenge,
    "CONNECTION_CLOSE": QuicDecoder._connection_close,
    "HANDSHAKE_DONE": QuicDecoder._handshake_done,
}
