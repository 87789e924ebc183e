"""QUIC (RFC 9000/9001, v2 RFC 9369) with HTTP/3 on top: see :class:`QuicDecoder`.

The registry claims a UDP flow for QUIC with :func:`looks_like_quic` on its
first datagram.
"""

from __future__ import annotations

import struct

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .decoder import QuicDecoder

__all__ = ["QuicDecoder", "looks_like_quic", "QUIC_PORTS"]

#: ports where a short header (a capture that starts mid-connection) or an
#: unknown version is still taken for QUIC
QUIC_PORTS = frozenset({443, 4433, 8443})

_U32 = struct.Struct("!I")
# The same versions as packet.SUPPORTED_VERSIONS (v1, RFC 9000; v2, RFC 9369), spelled
# out here so that sniffing UDP flows does not import aioquic.
_VERSIONS = frozenset({0x00000001, 0x6B3343CF})


def __getattr__(name: str) -> Any:
    # QuicDecoder pulls in aioquic (~0.2 s of start-up): load it on first use,
    # so captures without QUIC never pay for it.
    if name == "QuicDecoder":
        from .decoder import QuicDecoder

        return QuicDecoder
    raise AttributeError(name)


def looks_like_quic(payload: bytes, ports: tuple[int, int] = (0, 0)) -> bool:
    """Whether a UDP flow whose first datagram is ``payload`` is QUIC.

    True for a long header of QUIC v1 or v2 (any port), a Version
    Negotiation packet, and, on :data:`QUIC_PORTS`, a long header of another
    version or a short header (the capture began mid-connection).
    """
    if len(payload) < 7:
        return False
    first = payload[0]
    on_quic_port = ports[0] in QUIC_PORTS or ports[1] in QUIC_PORTS
    if first & 0x80:
        version = _U32.unpack_from(payload, 1)[0]
        dcid_len = payload[5]
        if dcid_len > 20 or len(payload) < 7 + dcid_len:
            return False
        scid_len = payload[6 + dcid_len]
        if scid_len > 20 or len(payload) < 7 + dcid_len + scid_len:
            return False
        if version == 0:
            return (len(payload) - 7 - dcid_len - scid_len) % 4 == 0
        if not first & 0x40:
            return False
        return version in _VERSIONS or on_quic_port
    return bool(first & 0x40) and on_quic_port and len(payload) >= 21  # 1 + DCID + 4-byte sample room
