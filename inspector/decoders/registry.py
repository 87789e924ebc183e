"""Which decoder takes a flow: chosen from the first bytes (and ports) of the flow.

The pipeline asks :func:`choose_stream` when a TCP connection delivers its
first in-order bytes, and :func:`choose_datagram` for a UDP flow's first
datagram.  ``None`` means "no decoder": the pipeline then stops reassembling
that connection, which keeps undecoded bulk traffic cheap.
"""

from __future__ import annotations

from typing import Any

from .base import DatagramDecoder, DecodeContext, StreamDecoder


def choose_stream(ctx: DecodeContext, direction: int, first: bytes) -> StreamDecoder | None:
    """A decoder for a TCP connection whose first delivered bytes (in ``direction``) are ``first``."""
    return None


def choose_datagram(ctx: DecodeContext, direction: int, payload: bytes) -> DatagramDecoder | None:
    """A decoder for a UDP flow whose first datagram is ``payload``."""
    return None


def inner_stream(ctx: DecodeContext, alpn: str | None, first: bytes, direction: int) -> Any:
    """A decoder for the plaintext inside TLS, by ALPN or by content."""
    return None
