"""QUIC packet headers (RFC 9000 §17, RFC 8999 invariants) and connection-ID tracking.

A datagram holds one or more packets: long-header packets carry their own
length and may be coalesced; a short-header (1-RTT) packet runs to the end
of the datagram.  Short headers do not say how long their Destination
Connection ID is, so :class:`CidTracker` learns the IDs each endpoint chose
(long-header Source CIDs, NEW_CONNECTION_ID frames, preferred_address) and
matches them against the bytes that follow the first byte.

Header parsing stops before the protected part: the first byte's low bits and
the packet number are still masked here (see :mod:`.protection`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aioquic.buffer import Buffer, BufferReadError
from aioquic.quic.packet import (
    CONNECTION_ID_MAX_SIZE,
    PACKET_FIXED_BIT,
    PACKET_LONG_HEADER,
    QuicPacketType,
    pull_quic_header,
)

from ...errors import DecodeError

VERSION_1 = 0x00000001
VERSION_2 = 0x6B3343CF  # RFC 9369
#: versions whose Initial protection and long-header types we know
SUPPORTED_VERSIONS = frozenset({VERSION_1, VERSION_2})

#: export names of the packet types (``QuicPacket.type``)
TYPE_NAMES = {
    QuicPacketType.INITIAL: "initial",
    QuicPacketType.ZERO_RTT: "0rtt",
    QuicPacketType.HANDSHAKE: "handshake",
    QuicPacketType.RETRY: "retry",
    QuicPacketType.VERSION_NEGOTIATION: "version_negotiation",
    QuicPacketType.ONE_RTT: "1rtt",
}

#: packet-number space of each packet type (0-RTT and 1-RTT share one, RFC 9000 §12.3)
SPACE_OF = {
    QuicPacketType.INITIAL: "initial",
    QuicPacketType.HANDSHAKE: "handshake",
    QuicPacketType.ZERO_RTT: "application",
    QuicPacketType.ONE_RTT: "application",
}


def version_name(version: int | None) -> str | None:
    """A version as tshark shows ``quic.version`` (``0x00000001``)."""
    return None if version is None else f"0x{version:08x}"


def is_grease_version(version: int) -> bool:
    """Versions of the form 0x?a?a?a?a are reserved to exercise negotiation (RFC 9000 §15)."""
    return version & 0x0F0F0F0F == 0x0A0A0A0A


@dataclass(slots=True)
class Header:
    """The unprotected part of one packet, with absolute offsets into its datagram."""

    type: QuicPacketType
    version: int | None
    dcid: bytes
    scid: bytes | None
    start: int  #: offset of the first byte in the datagram
    pn_offset: int  #: offset of the (protected) packet number; the end for Retry/VN
    end: int  #: offset just past the packet
    token: bytes = b""
    integrity_tag: bytes = b""
    supported_versions: list[int] = field(default_factory=list)


def parse_long_invariants(data: bytes, offset: int) -> tuple[int, bytes, bytes]:
    """Version, DCID and SCID of a long header of any version (RFC 8999 §5.1)."""
    buf = Buffer(data=data)
    buf.seek(offset + 1)
    try:
        version = buf.pull_uint32()
        dcid = buf.pull_bytes(buf.pull_uint8())
        scid = buf.pull_bytes(buf.pull_uint8())
    except BufferReadError:
        raise DecodeError("truncated long header", offset) from None
    return version, dcid, scid


def parse_header(data: bytes, offset: int, short_dcid_len: int) -> Header:
    """Parse the header of the packet starting at ``offset`` of datagram ``data``.

    ``short_dcid_len`` is the DCID length to assume for a short header.
    Raises :class:`DecodeError` for a truncated or invalid header, or a long
    header of a version we cannot decode (its invariant fields are in the
    message).
    """
    first = data[offset]
    if first & PACKET_LONG_HEADER:
        version, dcid, scid = parse_long_invariants(data, offset)
        if len(dcid) > CONNECTION_ID_MAX_SIZE or len(scid) > CONNECTION_ID_MAX_SIZE:
            raise DecodeError(f"connection ID longer than 20 bytes ({len(dcid)}/{len(scid)})", offset)
        if version and version not in SUPPORTED_VERSIONS:
            raise DecodeError(f"unsupported QUIC version {version_name(version)}", offset)
    elif not first & PACKET_FIXED_BIT:
        raise DecodeError("not QUIC: fixed bit is 0", offset)
    buf = Buffer(data=data)
    buf.seek(offset)
    try:
        hdr = pull_quic_header(buf, host_cid_length=short_dcid_len)
    except (BufferReadError, ValueError) as exc:
        raise DecodeError(_header_reason(exc), offset) from None
    if hdr.packet_type in (QuicPacketType.RETRY, QuicPacketType.VERSION_NEGOTIATION):
        pn_offset = end = len(data)
    else:
        pn_offset = buf.tell()
        end = offset + hdr.packet_length
    if hdr.packet_type is QuicPacketType.VERSION_NEGOTIATION and (len(data) - pn_offset) % 4:
        raise DecodeError("version negotiation list is not a multiple of 4 bytes", offset)
    return Header(
        type=hdr.packet_type,
        version=hdr.version,
        dcid=hdr.destination_cid,
        scid=hdr.source_cid if first & PACKET_LONG_HEADER else None,
        start=offset,
        pn_offset=pn_offset,
        end=end,
        token=hdr.token,
        integrity_tag=hdr.integrity_tag,
        supported_versions=hdr.supported_versions,
    )


def _header_reason(exc: Exception) -> str:
    if isinstance(exc, BufferReadError):
        return "truncated packet header"
    text = str(exc)
    return "truncated packet: length field runs past the datagram" if "truncated" in text else text


#: connection IDs remembered per direction (peers keep a handful; RFC 9000 §5.1.1)
MAX_CIDS = 256


class CidTracker:
    """The connection IDs each endpoint asked its peer to use, per direction of travel.

    ``issued[d]`` holds the IDs that packets travelling in direction ``d``
    carry as their Destination CID: for client-to-server packets, the IDs
    the server chose (its long-header SCID, its NEW_CONNECTION_IDs), and the
    other way round.
    """

    __slots__ = ("issued", "retired", "in_use")

    def __init__(self) -> None:
        self.issued: tuple[dict[bytes, int], dict[bytes, int]] = ({}, {})  # cid -> sequence number
        self.retired: tuple[set[int], set[int]] = (set(), set())
        self.in_use: list[bytes | None] = [None, None]  # DCID of the last short header per direction

    def issue(self, direction: int, cid: bytes, sequence: int = 0) -> None:
        """Packets in ``direction`` may carry ``cid`` as their DCID from now on (at most MAX_CIDS kept)."""
        issued = self.issued[direction]
        if len(issued) >= MAX_CIDS and cid not in issued:
            del issued[next(iter(issued))]  # a peer issuing without end: forget the oldest
        issued.setdefault(bytes(cid), sequence)

    def known(self, direction: int) -> bool:
        return bool(self.issued[direction])

    def short_dcid_len(self, direction: int, data: bytes, offset: int) -> tuple[int, bool]:
        """The DCID length of the short header at ``offset``, and whether a known CID matched.

        When IDs of several lengths are known, the one whose bytes are there
        wins; when none match, the length of the ID used last (or any known)
        is assumed and ``False`` says it is a guess.
        """
        issued = self.issued[direction]
        if not issued:
            return 0, False
        body = data[offset + 1 : offset + 1 + CONNECTION_ID_MAX_SIZE]
        best = -1
        for cid in issued:
            if body.startswith(cid) and len(cid) > best:
                best = len(cid)
        if best >= 0:
            return best, True
        last = self.in_use[direction]
        if last is not None:
            return len(last), False
        return len(next(iter(issued))), False
