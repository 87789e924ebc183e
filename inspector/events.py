"""Every event netinspect produces: small typed dataclasses, one module.

Each event carries the frame in which its unit completed (for reassembled
units, the frame that made the unit's last byte deliverable, as Wireshark
attributes reassembled PDUs), that frame's time ``ts`` (epoch seconds), the
connection id ``conn`` and the ``layer`` and ``type`` used by the JSON export.

Export rules (see :meth:`Event.to_dict`): every dataclass field is exported
under its own name except those listed in the class's ``EXPORT_EXCLUDE``
(raw bytes kept for the hex view); ``bytes`` values are written as hex.
Layers add their classes in their own section below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

#: Stream directions inside a connection: client to server and back.
C2S = 0
S2C = 1
DIRECTIONS = ("c2s", "s2c")

_export_cache: dict[type, tuple[str, ...]] = {}


@dataclass(slots=True, kw_only=True)
class Event:
    """Base of all events."""

    frame: int
    ts: float
    conn: int | None
    layer: str = ""
    type: str = ""

    EXPORT_EXCLUDE: ClassVar[frozenset[str]] = frozenset({"raw"})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON export (bytes become hex via :func:`json_default`)."""
        cls = type(self)
        names = _export_cache.get(cls)
        if names is None:
            names = tuple(f.name for f in fields(cls) if f.name not in cls.EXPORT_EXCLUDE)
            _export_cache[cls] = names
        return {name: getattr(self, name) for name in names}


def json_default(value: Any) -> Any:
    """``json.dumps`` hook for the few non-JSON types events hold."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# --------------------------------------------------------------------------- general


@dataclass(slots=True, kw_only=True)
class Malformed(Event):
    """A unit that could not be decoded; the rest of the capture goes on."""

    type: str = "malformed"
    reason: str
    direction: str | None = None


@dataclass(slots=True, kw_only=True)
class Note(Event):
    """An expert note: something worth a user's attention (severity note/warning/error)."""

    type: str = "note"
    severity: str = "note"
    message: str
    direction: str | None = None


# --------------------------------------------------------------------------- tcp / udp


@dataclass(slots=True, kw_only=True)
class TcpSegment(Event):
    """One TCP segment, with Wireshark's relative seq/ack and analysis flag names."""

    layer: str = "tcp"
    type: str = "segment"
    direction: str
    flags: str
    seq: int
    ack: int
    len: int
    window: int
    analysis: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True)
class StreamGap(Event):
    """Bytes of a TCP stream that never appeared in the capture."""

    layer: str = "tcp"
    type: str = "gap"
    direction: str
    offset: int
    length: int


@dataclass(slots=True, kw_only=True)
class UdpDatagram(Event):
    """One UDP datagram (exported only where no decoder claims the flow)."""

    layer: str = "udp"
    type: str = "datagram"
    direction: str
    len: int


# --------------------------------------------------------------------------- tls
# (TLS events go here)

# --------------------------------------------------------------------------- http1 / http2 / grpc
# (HTTP events go here)

# --------------------------------------------------------------------------- quic / http3
# (QUIC and HTTP/3 events go here)

# --------------------------------------------------------------------------- websocket / sse / dns
# (WebSocket, SSE and DNS events go here)

# --------------------------------------------------------------------------- analysis
# (ledger and HOL events go here)
