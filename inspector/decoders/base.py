"""The sans-IO interfaces every protocol decoder implements.

Decoders never read files, sockets or the clock: the pipeline feeds them
bytes with the stream's :class:`~inspector.flows.streamindex.StreamIndex`
(which tells, for any offset, the frame and times of the bytes) and they
return typed events from :mod:`inspector.events`.  A decoder may raise
:class:`~inspector.errors.DecodeError` (or anything else, by mistake): the
pipeline catches it at this boundary, records a ``malformed`` event and stops
feeding that decoder for that connection, never aborting the capture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..events import Event
    from ..flows.streamindex import StreamIndex
    from ..keylog import KeyLog


@dataclass(slots=True)
class DecodeContext:
    """What a decoder may know about the connection it decodes."""

    conn: int
    client: tuple[str, int]
    server: tuple[str, int]
    keylog: KeyLog | None = None
    #: free-form facts decoders share with their inner decoders (e.g. ALPN)
    facts: dict[str, Any] = field(default_factory=dict)


class StreamDecoder(Protocol):
    """Decodes the two ordered byte streams of one connection (TCP, or TLS plaintext).

    Optional: ``end(direction, frame, ts) -> list[Event]``, called once when a TCP
    direction's FIN is reached with every byte before it delivered (``frame`` is the
    frame that completed it); a decoder without it learns of the end in ``finish``.
    """

    def feed(self, direction: int, data: bytes, offset: int, index: StreamIndex) -> list[Event]:
        """Take the next in-order ``data`` of ``direction``, starting at stream ``offset``.

        ``index`` covers at least ``[offset, offset + len(data))`` and every
        byte the decoder still holds buffered.
        """
        ...

    def gap(self, direction: int, offset: int, length: int, index: StreamIndex) -> list[Event]:
        """``length`` bytes at ``offset`` are missing from the capture for good."""
        ...

    def finish(self) -> list[Event]:
        """The capture ended: flush what can still be said."""
        ...

    def summary(self) -> dict[str, Any]:
        """Keys this decoder adds to the connection's ``summary --json`` object."""
        ...


class DatagramDecoder(Protocol):
    """Decodes the datagrams of one UDP flow (QUIC, DNS)."""

    def datagram(self, direction: int, data: bytes, frame: int, ts: float) -> list[Event]:
        """Take one datagram's payload."""
        ...

    def finish(self) -> list[Event]:
        ...

    def summary(self) -> dict[str, Any]:
        ...
