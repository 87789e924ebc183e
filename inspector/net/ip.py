"""IPv4 and IPv6: addresses, the transport payload, and fragment reassembly.

:func:`parse_ip` returns ``(proto, src, dst, payload, reported_len)`` with addresses as
packed bytes (cheap dict keys; formatted only when a flow is created) or
``None`` when the packet is a fragment still waiting for its siblings.  The
payload is bounded by the IP length fields, so Ethernet padding never leaks
into TCP; ``reported_len`` is the length the IP header claims, which exceeds
``len(payload)`` when the capture's snap length cut the packet.  Invalid headers raise :class:`~inspector.errors.DecodeError`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from ..errors import DecodeError

_V4 = struct.Struct("!BBHHHBBH4s4s")
_V6_PLEN = struct.Struct("!H")

# IPv6 extension headers we walk past (RFC 8200 §4): hop-by-hop, routing,
# destination options, mobility, HIP, shim6; fragment (44) and AH (51) differ.
_V6_EXT_GENERIC = {0, 43, 60, 135, 139, 140}

#: Fragment reassembly bounds: pending datagrams, and bytes per datagram.
MAX_PENDING_DATAGRAMS = 4096
MAX_DATAGRAM = 65535 + 8


def format_addr(addr: bytes) -> str:
    """Text form of a packed IPv4/IPv6 address."""
    if len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr)
    return str(ipaddress.IPv6Address(addr))


def format_endpoint(addr: bytes, port: int) -> str:
    """``ip:port``, with IPv6 addresses in brackets."""
    return f"{format_addr(addr)}:{port}" if len(addr) == 4 else f"[{format_addr(addr)}]:{port}"


class Fragments:
    """IPv4/IPv6 fragment reassembly; the datagram completes in the frame of its last piece."""

    __slots__ = ("_pending", "dropped")

    def __init__(self) -> None:
        # key -> [pieces {offset: bytes}, total length or -1, first-fragment header info]
        self._pending: dict[tuple, list] = {}
        self.dropped = 0

    def add(self, key: tuple, offset: int, more: bool, data: bytes) -> bytes | None:
        """Add one fragment; return the whole payload once every piece is in."""
        entry = self._pending.get(key)
        if entry is None:
            if len(self._pending) >= MAX_PENDING_DATAGRAMS:
                # Oldest first (dicts keep insertion order): bounded memory under floods.
                self._pending.pop(next(iter(self._pending)))
                self.dropped += 1
            entry = self._pending[key] = [{}, -1]
        pieces, total = entry
        if offset + len(data) > MAX_DATAGRAM:
            del self._pending[key]
            raise DecodeError("IP fragment beyond the 65535-byte datagram limit")
        pieces.setdefault(offset, data)
        if not more:
            total = entry[1] = offset + len(data)
        if total < 0:
            return None
        # Complete when the pieces cover [0, total) without holes.
        have = 0
        for off in sorted(pieces):
            if off > have:
                return None
            have = max(have, off + len(pieces[off]))
        if have < total:
            return None
        del self._pending[key]
        buf = bytearray(total)
        for off in sorted(pieces):
            piece = pieces[off][: total - off]
            buf[off : off + len(piece)] = piece
        return bytes(buf)


def parse_ip(data: bytes, off: int, frags: Fragments) -> tuple[int, bytes, bytes, bytes, int] | None:
    """Parse the IP header at ``off``; see the module docstring."""
    if off >= len(data):
        raise DecodeError("frame ends before the IP header")
    version = data[off] >> 4
    if version == 4:
        if len(data) - off < 20:
            raise DecodeError("IPv4 header truncated")
        vihl, _tos, total, ident, frag, _ttl, proto, _csum, src, dst = _V4.unpack_from(data, off)
        ihl = (vihl & 15) * 4
        if ihl < 20:
            raise DecodeError(f"IPv4 header length {ihl} < 20")
        if total == 0:  # TSO: the capturing host left the length unset; trust the frame
            end = len(data)
        else:
            if total < ihl:
                raise DecodeError(f"IPv4 total length {total} < header length {ihl}")
            end = off + total
        if off + ihl > len(data):
            raise DecodeError("IPv4 header truncated")
        payload = data[off + ihl : end]
        if frag & 0x3FFF:  # MF set or offset non-zero
            whole = frags.add((4, src, dst, ident, proto), (frag & 0x1FFF) * 8, bool(frag & 0x2000), payload)
            if whole is None:
                return None
            return proto, src, dst, whole, len(whole)
        return proto, src, dst, payload, end - off - ihl
    if version == 6:
        if len(data) - off < 40:
            raise DecodeError("IPv6 header truncated")
        (plen,) = _V6_PLEN.unpack_from(data, off + 4)
        nxt = data[off + 6]
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        end = off + 40 + plen if plen else len(data)  # 0: jumbogram or TSO
        pos = off + 40
        frag_info = None
        for _ in range(16):  # bounded walk of the extension header chain
            if nxt in _V6_EXT_GENERIC:
                if pos + 2 > end:
                    raise DecodeError("IPv6 extension header truncated")
                nxt, hlen = data[pos], (data[pos + 1] + 1) * 8
                pos += hlen
            elif nxt == 44:  # fragment header
                if pos + 8 > end:
                    raise DecodeError("IPv6 fragment header truncated")
                fo = (data[pos + 2] << 8) | data[pos + 3]
                ident = int.from_bytes(data[pos + 4 : pos + 8], "big")
                frag_info = (fo & 0xFFF8, bool(fo & 1), ident)
                nxt = data[pos]
                pos += 8
            elif nxt == 51:  # AH: length in 4-octet units, minus 2
                if pos + 2 > end:
                    raise DecodeError("IPv6 AH header truncated")
                nxt, hlen = data[pos], (data[pos + 1] + 2) * 4
                pos += hlen
            else:
                break
        else:
            raise DecodeError("IPv6 extension header chain too long")
        if pos > end:
            raise DecodeError("IPv6 extension headers overrun the payload")
        payload = data[pos:end]
        if frag_info is not None:
            fo, more, ident = frag_info
            if fo or more:
                whole = frags.add((6, src, dst, ident, nxt), fo, more, payload)
                if whole is None:
                    return None
                return nxt, src, dst, whole, len(whole)
        return nxt, src, dst, payload, end - pos
    raise DecodeError(f"IP version {version}")
