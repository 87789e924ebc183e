"""TLS over TCP: record layer, handshake messages, key schedules and decryption.

``handshake`` parses handshake message bodies independently of the record
layer (QUIC reuses it); :class:`TlsDecoder` (in ``decoder``) is the
StreamDecoder; :func:`looks_like_tls` is the registry's test for a flow's
first bytes.
"""

from __future__ import annotations

from .decoder import TlsDecoder
from .record import looks_like_record


def looks_like_tls(first: bytes) -> bool:
    """Whether a TCP flow's first delivered bytes start a TLS stream.

    A handshake record (0x16 0x03 0x00-0x04) is enough even from fewer than 5
    bytes; a capture that starts mid-connection must show a whole plausible
    record header of another content type.
    """
    if len(first) >= 3 and first[0] == 0x16 and first[1] == 0x03 and first[2] <= 0x04:
        return True
    return looks_like_record(first) and first[0] in (0x14, 0x15, 0x17)


__all__ = ["TlsDecoder", "looks_like_tls"]
