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
_field_names: dict[type, tuple[str, ...]] = {}


class DataRecord:
    """``__repr__`` and ``__eq__`` exactly as ``@dataclass`` writes them, shared by the dataclasses
    (declared ``repr=False, eq=False``) that derive from it instead of generated for each: Python
    compiles generated methods at import, and for the 39 event classes that was ~8 ms of every start."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in _names(type(self)))})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = _names(type(self))
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]  # as for dataclass(eq=True): mutable, so unhashable


def _names(cls: type) -> tuple[str, ...]:
    names = _field_names.get(cls)
    if names is None:
        names = _field_names[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Event(DataRecord):
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


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Malformed(Event):
    """A unit that could not be decoded; the rest of the capture goes on."""

    type: str = "malformed"
    reason: str
    direction: str | None = None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Note(Event):
    """An expert note: something worth a user's attention (severity note/warning/error)."""

    type: str = "note"
    severity: str = "note"
    message: str
    direction: str | None = None


# --------------------------------------------------------------------------- tcp / udp


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
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
    ack_rtt: float | None = None  #: seconds, as tshark's tcp.analysis.ack_rtt


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class StreamGap(Event):
    """Bytes of a TCP stream that never appeared in the capture."""

    layer: str = "tcp"
    type: str = "gap"
    direction: str
    offset: int
    length: int


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class UdpDatagram(Event):
    """One UDP datagram (exported only where no decoder claims the flow)."""

    layer: str = "udp"
    type: str = "datagram"
    direction: str
    len: int


# --------------------------------------------------------------------------- tls
# ``type`` is the message name ("ClientHello", "Finished", "ApplicationData"...);
# ``encrypted`` says the unit travelled in a protected record (and so was
# decrypted with the key log to be shown).


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsHandshake(Event):
    """One handshake message; messages without their own class put their fields in ``info``."""

    layer: str = "tls"
    direction: str
    length: int  #: body length (without the 4-byte header)
    encrypted: bool = False
    info: dict[str, Any] | None = None
    raw: bytes = b""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsClientHello(TlsHandshake):
    type: str = "ClientHello"
    version: str  #: highest version offered ("1.3" via supported_versions)
    sni: str | None = None
    alpn: list[str]
    cipher: str | None = None  #: always None: a client offers ``cipher_suites``
    versions: list[str]
    cipher_suites: list[str]
    extensions: list[str]
    groups: list[str]
    key_share: list[str]
    psk_modes: list[str]
    psk_identities: int = 0
    early_data: bool = False
    session_id: str = ""
    random: str = ""
    grease: list[str]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsServerHello(TlsHandshake):
    """ServerHello, or HelloRetryRequest (``type`` says which)."""

    type: str = "ServerHello"
    version: str
    sni: str | None = None
    alpn: list[str]  #: the selected protocol (TLS 1.2 only; TLS 1.3 sends it in EncryptedExtensions)
    cipher: str
    extensions: list[str]
    key_share: str | None = None
    psk_identity: int | None = None
    session_id: str = ""
    random: str = ""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsEncryptedExtensions(TlsHandshake):
    type: str = "EncryptedExtensions"
    alpn: list[str]
    early_data: bool = False  #: the server accepted 0-RTT
    extensions: list[str]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsCertificate(TlsHandshake):
    type: str = "Certificate"
    #: per certificate, leaf first: subject, issuer, sans, not_before, not_after, serial
    certificates: list[dict[str, Any]]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsChangeCipherSpec(Event):
    layer: str = "tls"
    type: str = "ChangeCipherSpec"
    direction: str


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsAlert(Event):
    """An alert; level and description are None when it was encrypted and no key opened it."""

    layer: str = "tls"
    type: str = "Alert"
    direction: str
    level: str | None = None
    description: str | None = None
    code: int | None = None
    encrypted: bool = False


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsApplicationData(Event):
    """One application_data record (TLS 1.3 without keys: every protected record)."""

    layer: str = "tls"
    type: str = "ApplicationData"
    direction: str
    length: int  #: record payload length on the wire
    plaintext_len: int | None = None  #: None when not decrypted
    early: bool = False  #: 0-RTT early data
    raw: bytes = b""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class TlsEncryptedHandshake(Event):
    """A protected handshake record that no key opened (TLS 1.2 Finished without keys)."""

    layer: str = "tls"
    type: str = "EncryptedHandshakeMessage"
    direction: str
    length: int

# --------------------------------------------------------------------------- http1 / http2 / grpc
# (HTTP events go here)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class HttpRequest(Event):
    """An HTTP/1.x request, emitted when its last byte (head, or end of body) is seen."""

    layer: str = "http"
    type: str = "request"
    direction: str = "c2s"
    method: str
    target: str
    version: str
    headers: list[list[str]]
    body_bytes: int  #: body length after de-chunking
    chunked: bool = False
    trailers: list[list[str]] | None = None
    start_ts: float  #: when the request's first byte became deliverable
    arrival: float  #: when the request's last byte was first seen
    raw: bytes = b""  #: the request head


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class HttpResponse(Event):
    """An HTTP/1.x response (interim 1xx ones too), matched in order to its request."""

    layer: str = "http"
    type: str = "response"
    direction: str = "s2c"
    status: int
    reason: str
    version: str
    headers: list[list[str]]
    body_bytes: int
    chunked: bool = False
    trailers: list[list[str]] | None = None
    request_method: str | None  #: the request it answers (None when not in the capture)
    request_target: str | None
    request_frame: int | None
    first_byte_ts: float  #: when the response's first byte became deliverable
    arrival: float
    raw: bytes = b""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Http2Frame(Event):
    """One HTTP/2 frame (RFC 9113 §4.1); ``type`` is its name, or ``UNKNOWN_0xNN``.

    ``headers`` holds the decoded header block for HEADERS/PUSH_PROMISE (on the
    frame that ended the block, with CONTINUATION frames folded in); a ``None``
    name or value is a dynamic-table entry the capture never showed, and
    ``headers_reliable`` is False whenever the HPACK state was out of sync.
    Header lists and their ``[name, value]`` pairs are shared with the
    stream's exchange and with repeated blocks: read them, never mutate them.
    ``detail`` carries the type-specific fields (padding, priority, error
    code, settings, increments, ...).
    """

    layer: str = "http2"
    direction: str
    stream: int
    flags: int
    flag_names: tuple[str, ...] = ()
    length: int  #: the payload length from the frame header
    headers: list[list[str | None]] | None = None
    headers_reliable: bool | None = None
    detail: dict[str, Any] | None = None
    arrival: float  #: when the frame's last byte was first seen (``ts`` is when it became deliverable)
    raw: bytes = b""  #: the frame as on the wire, header included


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Http2Stall(Event):
    """A sender at a zero flow-control window until a WINDOW_UPDATE let it go on (RFC 9113 §6.9)."""

    layer: str = "http2"
    type: str = "flow_control_stall"
    direction: str  #: the blocked sender
    stream: int  #: 0 when the connection window was the one at zero
    start: float  #: the DATA frame that exhausted the window
    end: float  #: the WINDOW_UPDATE that reopened it
    duration_ms: float
    start_frame: int


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class GrpcMessage(Event):
    """One length-prefixed gRPC message, its protobuf shown as a wire-format tree."""

    layer: str = "grpc"
    type: str = "message"
    direction: str
    stream: int
    method: str  #: the call's ``:path``
    compressed: bool
    length: int  #: message length from its prefix
    fields: list[dict[str, Any]] | None = None  #: protobuf wire tree (None if not protobuf / undecodable)
    raw: bytes = b""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class GrpcCall(Event):
    """A finished gRPC call: kind from its message pattern, status from its trailers."""

    layer: str = "grpc"
    type: str = "call"
    stream: int
    method: str
    kind: str  #: "unary", "server_streaming", "client_streaming", "bidirectional"
    requests: int
    responses: int
    status: int | None  #: grpc-status (None when the trailers were not seen)
    message: str | None  #: grpc-message, percent-decoded
    start_ts: float

# --------------------------------------------------------------------------- quic / http3
# (QUIC and HTTP/3 events go here)
# A datagram may hold several QUIC packets: one ``QuicPacket`` each, all with
# the datagram's frame.  Connection IDs are hex strings; ``version`` is the
# wire value as tshark shows it ("0x00000001"), None for short headers.


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class QuicPacket(Event):
    """One QUIC packet; ``pn`` is None (and ``reason`` says why) when it could not be decrypted.

    ``type`` is "initial", "0rtt", "handshake", "retry", "version_negotiation"
    or "1rtt"; ``frames`` lists the frame type names in order and ``details``
    their fields (ACK ranges, stream offsets, ...).
    """

    layer: str = "quic"
    direction: str
    version: str | None
    dcid: str | None
    scid: str | None
    pn: int | None
    length: int  #: bytes of this packet on the wire
    frames: list[str]
    details: list[dict[str, Any]] | None = None
    key_phase: int | None = None  #: 1-RTT only: the key phase bit (key updates flip it)
    reason: str | None = None
    coalesced: int = 0  #: position of the packet in its datagram
    raw: bytes = b""  #: the decrypted payload (empty when not decrypted)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class QuicRetry(QuicPacket):
    """A Retry packet (RFC 9000 §17.2.5): the handshake costs one more round trip."""

    type: str = "retry"
    token_length: int
    integrity: str  #: "valid", "invalid", or "unchecked" (the client's first Initial was not captured)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class QuicVersionNegotiation(QuicPacket):
    """A Version Negotiation packet (RFC 9000 §17.2.1) listing the server's versions."""

    type: str = "version_negotiation"
    versions: list[str]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class QuicLoss(Event):
    """A packet the capture shows lost, the streams whose data it carried and when that data came again.

    ``detected`` is "missing" (a packet number never captured: lost before
    the capture point) or "unacknowledged" (captured, never acknowledged by
    the peer: lost after it).  ``frame``/``ts`` are where the loss became
    visible.  ``resent`` lists ``{stream, offset, length, frame, ts}``.
    """

    layer: str = "quic"
    type: str = "loss"
    direction: str  #: the sender of the lost packet
    space: str  #: "initial", "handshake" or "application"
    pn: int
    detected: str
    streams: list[int]
    resent: list[dict[str, Any]]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Http3Frame(Event):
    """One HTTP/3 frame (RFC 9114 §7.2); ``type`` is its name, or ``UNKNOWN_0x..``.

    ``headers`` holds the QPACK-decoded field section of HEADERS and
    PUSH_PROMISE as [name, value] pairs; ``detail`` the type-specific fields
    (settings, GOAWAY id, ...).  ``ts`` is when the frame's last byte became
    deliverable on its stream, ``arrival`` when it was first captured.
    """

    layer: str = "http3"
    direction: str
    stream: int
    length: int  #: payload length from the frame header
    headers: list[list[str]] | None = None
    detail: dict[str, Any] | None = None
    arrival: float
    raw: bytes = b""  #: the frame's payload (cut for DATA)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Http3Stream(Event):
    """A unidirectional HTTP/3 stream announced its type (RFC 9114 §6.2, RFC 9204 §4.2)."""

    layer: str = "http3"
    type: str = "stream"
    direction: str
    stream: int
    stream_type: str  #: "control", "push", "qpack_encoder", "qpack_decoder", "reserved" or "unknown_0x.."

# --------------------------------------------------------------------------- websocket / sse / dns
# (WebSocket, SSE and DNS events go here)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WsHandshake(Event):
    """The checked WebSocket opening handshake (RFC 6455 §4, RFC 8441 over HTTP/2)."""

    layer: str = "websocket"
    type: str = "handshake"
    transport: str  #: "http/1.1" (Upgrade) or "h2" (extended CONNECT)
    accept_ok: bool | None  #: Sec-WebSocket-Accept matches the key (None over h2, which has no key)
    subprotocol: str | None
    extensions: list[str]
    deflate: dict[str, Any] | None  #: negotiated permessage-deflate parameters
    problems: list[str]


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WsFrame(Event):
    """One WebSocket frame as on the wire (RFC 6455 §5.2); ``type`` is the opcode name."""

    layer: str = "websocket"
    direction: str
    opcode: int
    fin: bool
    rsv: int  #: RSV1..RSV3 as a 3-bit number (RSV1 = 4: "compressed" under permessage-deflate)
    masked: bool
    payload_len: int  #: as on the wire (compressed size under permessage-deflate)
    header_len: int
    raw: bytes = b""  #: header and the first payload bytes, as on the wire


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WsClose(WsFrame):
    """A close frame: its status code and reason, and whether it started the closing handshake."""

    code: int | None
    reason: str
    initiator: bool  #: the first close frame of the connection


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WsPong(WsFrame):
    """A pong frame, with the round trip from the ping it answers (None if unsolicited)."""

    rtt_ms: float | None
    ping_frame: int | None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class WsMessage(Event):
    """A whole data message: reassembled, unmasked and decompressed."""

    layer: str = "websocket"
    type: str = "message"
    direction: str
    kind: str  #: "text" or "binary"
    size: int | None  #: application bytes after decompression (None: could not be decompressed)
    text: str | None = None  #: text messages (cut at the decoder's text limit; see ``truncated``)
    truncated: bool = False
    wire_size: int  #: payload bytes on the wire, summed over the message's frames
    frames: int
    compressed: bool
    first_frame: int  #: the frame that carried the message's first byte
    start_ts: float


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class SseEvent(Event):
    """One dispatched Server-Sent Event (WHATWG HTML §9.2.6), at the time its blank line arrived."""

    layer: str = "sse"
    type: str = "event"
    direction: str = "s2c"
    stream: int | None  #: HTTP/2 stream id (None on HTTP/1.x)
    event: str  #: event type ("message" unless an ``event:`` field set it)
    data: str
    id: str | None  #: the ``id:`` field of this event, if it had one
    last_event_id: str  #: the stream's last event id after this event


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class SseRetry(Event):
    """A ``retry:`` field that set the client's reconnection time."""

    layer: str = "sse"
    type: str = "retry"
    direction: str = "s2c"
    stream: int | None
    retry_ms: int


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class SseReconnect(Event):
    """A request carrying ``Last-Event-ID``, linked to the event stream it resumes."""

    layer: str = "sse"
    type: str = "reconnect"
    direction: str = "c2s"
    stream: int | None
    last_event_id: str
    resumes_conn: int | None  #: connection of the stream that delivered that id (None: not in capture)
    resumes_stream: int | None
    gap_ms: float | None  #: from that stream's last byte to this request


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class DnsMessage(Event):
    """A DNS query or response (RFC 1035 §4); ``type`` is "query" or "response"."""

    layer: str = "dns"
    direction: str
    transport: str  #: "udp" or "tcp"
    id: int
    qname: str
    qtype: str
    opcode: str
    rcode: str | None  #: responses only ("NOERROR", "NXDOMAIN", ...; EDNS extended codes included)
    flags: list[str]  #: header flags set ("qr", "aa", "tc", "rd", "ra", "ad", "cd")
    answers: list[dict[str, Any]]  #: {"name", "type", "ttl", "data"} in presentation format (as dig)
    authority: list[dict[str, Any]]
    additional: list[dict[str, Any]]
    retransmission: bool = False  #: a query repeating an unanswered (id, qname, qtype), or a second answer
    query_frame: int | None = None  #: responses: the (first) query they answer
    lookup_ms: float | None = None  #: responses: time since that query
    raw: bytes = b""

# --------------------------------------------------------------------------- analysis
# (ledger and HOL events go here)
# Computed when the capture ends (see :mod:`inspector.analysis`); ``frame``/``ts``
# are where the step or episode ended.


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class LedgerStep(Event):
    """One step of a connection's setup in round trips and milliseconds (the RTT ledger)."""

    layer: str = "analysis"
    type: str = "ledger"
    step: str  #: "dns", "tcp", "tls", "quic", "ws-upgrade" or "request"
    rtts: float  #: round trips the step cost by protocol (a request: its one network round trip)
    ms: float | None  #: the step's time from the client's point of view
    rtt_ms: float | None  #: the round-trip unit of the connection
    detail: dict[str, Any] | None = None  #: e.g. the request's network and server time


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class LedgerWhatIf(Event):
    """A what-if line computed from the measured RTT ("TLS 1.3 would have saved 1 RTT (41 ms)")."""

    layer: str = "analysis"
    type: str = "what_if"
    text: str
    saved_rtts: float
    saved_ms: float | None


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class HolEpisode(Event):
    """Data that had arrived but waited for other data: head-of-line blocking.

    ``kind`` is "tcp" (bytes held behind a hole in the byte stream), "http1"
    (a response behind an earlier one, or a request waiting for a free
    connection), "flow-control" (an HTTP/2 sender at a zero window) or "quic"
    (a lost packet's streams).  ``victims`` lists ``{"unit", "blocked_ms"}``.
    """

    layer: str = "analysis"
    type: str = "hol"
    kind: str
    direction: str | None = None
    start: float
    end: float
    duration_ms: float
    cause: str
    victims: list[dict[str, Any]]
    detail: dict[str, Any] | None = None
