"""TLS handshake messages: parsers that know nothing of records.

Everything here works on one handshake message body (the bytes after the
4-byte type/length header), so the TLS record decoder and the QUIC decoder
(handshake bytes in CRYPTO frames) share it:

    >>> buf = HandshakeBuffer()
    >>> for msg_type, body in buf.feed(crypto_bytes):
    ...     msg = parse_message(msg_type, body)

Parsers return dataclasses (``ClientHello``, ``ServerHello``...), raise
:class:`~inspector.errors.DecodeError` for invalid input, and are strict
about length-prefixed blocks being consumed exactly (as aioquic's are).
Unknown extensions are kept raw; GREASE values are kept and named as such.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...errors import DecodeError
from ...events import (
    DataRecord,
    Event,
    TlsCertificate,
    TlsClientHello,
    TlsEncryptedExtensions,
    TlsHandshake,
    TlsServerHello,
)
from .constants import (
    HRR_RANDOM,
    PSK_MODE_NAMES,
    ExtensionType,
    HandshakeType,
    alert_name,
    cipher_name,
    extension_name,
    group_name,
    handshake_name,
    is_grease,
    signature_scheme_name,
    version_name,
)

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")

#: Largest handshake message we buffer (certificate chains are the big ones).
MAX_MESSAGE_SIZE = 1 << 18


class Reader:
    """A cursor over a bytes-like object; every pull checks bounds."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def _need(self, n: int, what: str) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise DecodeError(f"truncated {what}: need {n} bytes, {self.end - pos} left", pos)
        self.pos = pos + n
        return pos

    def u8(self, what: str = "u8") -> int:
        return self.data[self._need(1, what)]

    def u16(self, what: str = "u16") -> int:
        return _U16.unpack_from(self.data, self._need(2, what))[0]

    def u24(self, what: str = "u24") -> int:
        p = self._need(3, what)
        d = self.data
        return (d[p] << 16) | (d[p + 1] << 8) | d[p + 2]

    def u32(self, what: str = "u32") -> int:
        return _U32.unpack_from(self.data, self._need(4, what))[0]

    def take(self, n: int, what: str = "bytes") -> bytes:
        p = self._need(n, what)
        return bytes(self.data[p : p + n])

    def vec8(self, what: str = "vector") -> bytes:
        return self.take(self.u8(what), what)

    def vec16(self, what: str = "vector") -> bytes:
        return self.take(self.u16(what), what)

    def vec24(self, what: str = "vector") -> bytes:
        return self.take(self.u24(what), what)

    def block(self, length: int, what: str) -> Reader:
        """A sub-reader over the next ``length`` bytes (which this reader skips)."""
        p = self._need(length, what)
        return Reader(self.data, p, p + length)

    def block8(self, what: str) -> Reader:
        return self.block(self.u8(what), what)

    def block16(self, what: str) -> Reader:
        return self.block(self.u16(what), what)

    def block24(self, what: str) -> Reader:
        return self.block(self.u24(what), what)

    @property
    def left(self) -> int:
        return self.end - self.pos

    def done(self, what: str) -> None:
        """Check the block was consumed exactly."""
        if self.pos != self.end:
            raise DecodeError(f"{self.end - self.pos} trailing bytes in {what}", self.pos)

    def rest(self) -> bytes:
        data = bytes(self.data[self.pos : self.end])
        self.pos = self.end
        return data


# --------------------------------------------------------------------------- messages


@dataclass(slots=True)
class Extension:
    """One extension as sent; ``data`` is its raw body."""

    type: int
    data: bytes

    @property
    def name(self) -> str:
        return extension_name(self.type)


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class HandshakeMessage(DataRecord):
    """Base: a message type and its body length."""

    msg_type: int
    length: int

    @property
    def name(self) -> str:
        return handshake_name(self.msg_type)

    def info(self) -> dict[str, Any]:
        """Fields worth exporting for messages without a dedicated event class."""
        return {}


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ClientHello(HandshakeMessage):
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: list[Extension] = field(default_factory=list)
    # derived from extensions
    sni: str | None = None
    alpn: list[str] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    supported_groups: list[int] = field(default_factory=list)
    key_share_groups: list[int] = field(default_factory=list)
    signature_algorithms: list[int] = field(default_factory=list)
    psk_modes: list[int] = field(default_factory=list)
    psk_identities: list[tuple[bytes, int]] = field(default_factory=list)  # (identity, obfuscated age)
    psk_binders: list[bytes] = field(default_factory=list)
    early_data: bool = False
    session_ticket: bytes | None = None  # TLS 1.2 ticket extension (b"" = empty, asking for one)
    extended_master_secret: bool = False
    encrypt_then_mac: bool = False
    quic_transport_parameters: bytes | None = None

    @property
    def max_version(self) -> int:
        """Highest non-GREASE version offered (supported_versions, else legacy_version)."""
        versions = [v for v in self.supported_versions if not is_grease(v)]
        return max(versions) if versions else self.legacy_version

    @property
    def grease(self) -> list[int]:
        """GREASE values seen anywhere in the hello (suites, extensions, groups, versions)."""
        seen = [
            v
            for v in (
                *self.cipher_suites,
                *(e.type for e in self.extensions),
                *self.supported_groups,
                *self.supported_versions,
                *self.key_share_groups,
            )
            if is_grease(v)
        ]
        return list(dict.fromkeys(seen))


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ServerHello(HandshakeMessage):
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression_method: int
    extensions: list[Extension] = field(default_factory=list)
    selected_version: int | None = None  # from supported_versions (TLS 1.3)
    key_share_group: int | None = None  # the server's share, or the group an HRR asks for
    psk_identity: int | None = None  # selected PSK (TLS 1.3 resumption)
    alpn: str | None = None  # TLS 1.2 puts the selected protocol here
    cookie: bytes | None = None  # HRR
    session_ticket: bool = False  # TLS 1.2: server will send a NewSessionTicket
    extended_master_secret: bool = False
    encrypt_then_mac: bool = False

    @property
    def is_hrr(self) -> bool:
        """HelloRetryRequest: a ServerHello with the special random (RFC 8446 §4.1.3)."""
        return self.random == HRR_RANDOM

    @property
    def version(self) -> int:
        """The negotiated version."""
        return self.selected_version if self.selected_version is not None else self.legacy_version

    @property
    def name(self) -> str:
        return "HelloRetryRequest" if self.is_hrr else "ServerHello"


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class EncryptedExtensions(HandshakeMessage):
    extensions: list[Extension] = field(default_factory=list)
    alpn: str | None = None
    early_data: bool = False  # the server accepted 0-RTT
    server_name_ack: bool = False
    quic_transport_parameters: bytes | None = None


@dataclass(slots=True)
class CertificateInfo:
    """The parts of an X.509 certificate people look at."""

    subject: str
    issuer: str
    sans: list[str]
    not_before: str
    not_after: str
    serial: str
    error: str | None = None  # set when the DER could not be parsed


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Certificate(HandshakeMessage):
    request_context: bytes = b""
    certificates: list[bytes] = field(default_factory=list)  # DER, leaf first

    def describe(self) -> list[CertificateInfo]:
        """Subject, issuer, SANs and validity of each certificate (parsed lazily)."""
        return [describe_certificate(der) for der in self.certificates]

    def info(self) -> dict[str, Any]:
        return {"count": len(self.certificates)}


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class CertificateVerify(HandshakeMessage):
    scheme: int
    signature: bytes

    def info(self) -> dict[str, Any]:
        return {"scheme": signature_scheme_name(self.scheme), "signature_len": len(self.signature)}


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class Finished(HandshakeMessage):
    verify_data: bytes

    def info(self) -> dict[str, Any]:
        return {"verify_data_len": len(self.verify_data)}


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class NewSessionTicket(HandshakeMessage):
    lifetime: int
    ticket: bytes
    age_add: int | None = None  # TLS 1.3
    nonce: bytes | None = None  # TLS 1.3
    max_early_data: int | None = None  # TLS 1.3 early_data extension
    extensions: list[Extension] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"lifetime": self.lifetime, "ticket_len": len(self.ticket)}
        if self.max_early_data is not None:
            out["max_early_data"] = self.max_early_data
        return out


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class KeyUpdate(HandshakeMessage):
    update_requested: bool

    def info(self) -> dict[str, Any]:
        return {"update_requested": self.update_requested}


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ServerKeyExchange(HandshakeMessage):
    kind: str  # "ecdhe", "dhe" or "unknown"
    group: int | None = None
    public_key: bytes = b""
    scheme: int | None = None
    signature: bytes = b""

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "public_key_len": len(self.public_key)}
        if self.group is not None:
            out["group"] = group_name(self.group)
        if self.scheme is not None:
            out["scheme"] = signature_scheme_name(self.scheme)
        return out


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class ClientKeyExchange(HandshakeMessage):
    exchange: bytes  # ECDHE point, DHE Yc, or RSA-encrypted premaster

    def info(self) -> dict[str, Any]:
        return {"exchange_len": len(self.exchange)}


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class CertificateRequest(HandshakeMessage):
    request_context: bytes = b""
    extensions: list[Extension] = field(default_factory=list)
    raw: bytes = b""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class OpaqueMessage(HandshakeMessage):
    """A message we do not parse further (empty ones like ServerHelloDone too)."""

    body: bytes = b""


@dataclass(slots=True, kw_only=True, repr=False, eq=False)
class AlertMessage(DataRecord):
    """One alert (not a handshake message, parsed here for reuse)."""

    level: int
    description: int

    @property
    def level_name(self) -> str:
        return {1: "warning", 2: "fatal"}.get(self.level, f"unknown_{self.level}")

    @property
    def description_name(self) -> str:
        return alert_name(self.description)


# --------------------------------------------------------------------------- extensions


def parse_extensions(r: Reader) -> list[Extension]:
    """The extensions block (u16 length, then type/u16-length/body items)."""
    if r.left == 0:  # extensions are optional in TLS <= 1.2 hellos
        return []
    block = r.block16("extensions")
    out: list[Extension] = []
    while block.left:
        ext_type = block.u16("extension type")
        out.append(Extension(ext_type, block.vec16(f"extension {extension_name(ext_type)}")))
    return out


def _alpn_list(data: bytes) -> list[str]:
    r = Reader(data)
    block = r.block16("ALPN list")
    r.done("ALPN extension")
    out = []
    while block.left:
        out.append(block.vec8("ALPN protocol").decode("ascii", "replace"))
    return out


def _u16_list(data: bytes, what: str, prefix: int = 2) -> list[int]:
    r = Reader(data)
    block = r.block16(what) if prefix == 2 else r.block8(what)
    r.done(what)
    if block.left % 2:
        raise DecodeError(f"odd length in {what}", block.pos)
    return [block.u16(what) for _ in range(block.left // 2)]


def _server_name(data: bytes) -> str | None:
    r = Reader(data)
    block = r.block16("server_name list")
    r.done("server_name extension")
    while block.left:
        name_type = block.u8("server_name type")
        name = block.vec16("server_name")
        if name_type == 0:
            return name.decode("ascii", "replace")
    return None


def _client_hello_extension(hello: ClientHello, ext: Extension) -> None:
    t, data = ext.type, ext.data
    if t == ExtensionType.SERVER_NAME:
        if data:  # empty in a server's acknowledgement, never in a client's
            hello.sni = _server_name(data)
    elif t == ExtensionType.ALPN:
        hello.alpn = _alpn_list(data)
    elif t == ExtensionType.SUPPORTED_VERSIONS:
        hello.supported_versions = _u16_list(data, "supported_versions", prefix=1)
    elif t == ExtensionType.SUPPORTED_GROUPS:
        hello.supported_groups = _u16_list(data, "supported_groups")
    elif t == ExtensionType.SIGNATURE_ALGORITHMS:
        hello.signature_algorithms = _u16_list(data, "signature_algorithms")
    elif t == ExtensionType.KEY_SHARE:
        r = Reader(data)
        block = r.block16("key_share list")
        r.done("key_share extension")
        while block.left:
            hello.key_share_groups.append(block.u16("key_share group"))
            block.vec16("key_exchange")
    elif t == ExtensionType.PSK_KEY_EXCHANGE_MODES:
        hello.psk_modes = list(Reader(data).vec8("psk_key_exchange_modes"))
    elif t == ExtensionType.PRE_SHARED_KEY:
        r = Reader(data)
        ids = r.block16("psk identities")
        while ids.left:
            identity = ids.vec16("psk identity")
            hello.psk_identities.append((identity, ids.u32("obfuscated_ticket_age")))
        binders = r.block16("psk binders")
        r.done("pre_shared_key extension")
        while binders.left:
            hello.psk_binders.append(binders.vec8("psk binder"))
    elif t == ExtensionType.EARLY_DATA:
        hello.early_data = True
    elif t == ExtensionType.SESSION_TICKET:
        hello.session_ticket = data
    elif t == ExtensionType.EXTENDED_MASTER_SECRET:
        hello.extended_master_secret = True
    elif t == ExtensionType.ENCRYPT_THEN_MAC:
        hello.encrypt_then_mac = True
    elif t in (ExtensionType.QUIC_TRANSPORT_PARAMETERS, ExtensionType.QUIC_TRANSPORT_PARAMETERS_DRAFT):
        hello.quic_transport_parameters = data


def parse_client_hello(body: bytes | memoryview) -> ClientHello:
    """ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2)."""
    r = Reader(body)
    hello = ClientHello(
        msg_type=HandshakeType.CLIENT_HELLO,
        length=len(body),
        legacy_version=r.u16("legacy_version"),
        random=r.take(32, "random"),
        session_id=r.vec8("session_id"),
        cipher_suites=[],
        compression_methods=b"",
    )
    suites = r.block16("cipher_suites")
    if suites.left % 2:
        raise DecodeError("odd cipher_suites length", suites.pos)
    hello.cipher_suites = [suites.u16() for _ in range(suites.left // 2)]
    hello.compression_methods = r.vec8("compression_methods")
    hello.extensions = parse_extensions(r)
    r.done("ClientHello")
    for ext in hello.extensions:
        _client_hello_extension(hello, ext)
    return hello


def parse_server_hello(body: bytes | memoryview) -> ServerHello:
    """ServerHello or HelloRetryRequest body (RFC 8446 §4.1.3)."""
    r = Reader(body)
    hello = ServerHello(
        msg_type=HandshakeType.SERVER_HELLO,
        length=len(body),
        legacy_version=r.u16("legacy_version"),
        random=r.take(32, "random"),
        session_id=r.vec8("session_id"),
        cipher_suite=r.u16("cipher_suite"),
        compression_method=r.u8("compression_method"),
    )
    hello.extensions = parse_extensions(r)
    r.done("ServerHello")
    hrr = hello.is_hrr
    for ext in hello.extensions:
        t, data = ext.type, ext.data
        if t == ExtensionType.SUPPORTED_VERSIONS:
            er = Reader(data)
            hello.selected_version = er.u16("selected_version")
            er.done("supported_versions")
        elif t == ExtensionType.KEY_SHARE:
            er = Reader(data)
            hello.key_share_group = er.u16("key_share group")
            if not hrr:  # an HRR names only the group
                er.vec16("key_exchange")
            er.done("key_share")
        elif t == ExtensionType.PRE_SHARED_KEY:
            er = Reader(data)
            hello.psk_identity = er.u16("selected_identity")
            er.done("pre_shared_key")
        elif t == ExtensionType.ALPN:
            protocols = _alpn_list(data)
            hello.alpn = protocols[0] if protocols else None
        elif t == ExtensionType.COOKIE:
            hello.cookie = Reader(data).vec16("cookie")
        elif t == ExtensionType.SESSION_TICKET:
            hello.session_ticket = True
        elif t == ExtensionType.EXTENDED_MASTER_SECRET:
            hello.extended_master_secret = True
        elif t == ExtensionType.ENCRYPT_THEN_MAC:
            hello.encrypt_then_mac = True
    return hello


def parse_encrypted_extensions(body: bytes | memoryview) -> EncryptedExtensions:
    """EncryptedExtensions (RFC 8446 §4.3.1): ALPN, early_data acceptance, QUIC parameters."""
    r = Reader(body)
    msg = EncryptedExtensions(msg_type=HandshakeType.ENCRYPTED_EXTENSIONS, length=len(body))
    msg.extensions = parse_extensions(r) if r.left else []
    r.done("EncryptedExtensions")
    for ext in msg.extensions:
        if ext.type == ExtensionType.ALPN:
            protocols = _alpn_list(ext.data)
            msg.alpn = protocols[0] if protocols else None
        elif ext.type == ExtensionType.EARLY_DATA:
            msg.early_data = True
        elif ext.type == ExtensionType.SERVER_NAME:
            msg.server_name_ack = True
        elif ext.type in (ExtensionType.QUIC_TRANSPORT_PARAMETERS, ExtensionType.QUIC_TRANSPORT_PARAMETERS_DRAFT):
            msg.quic_transport_parameters = ext.data
    return msg


def parse_certificate(body: bytes | memoryview, *, tls13: bool) -> Certificate:
    """Certificate (TLS 1.3 §4.4.2 with context and per-entry extensions; TLS 1.2 §7.4.2)."""
    r = Reader(body)
    msg = Certificate(msg_type=HandshakeType.CERTIFICATE, length=len(body))
    if tls13:
        msg.request_context = r.vec8("certificate_request_context")
    chain = r.block24("certificate_list")
    r.done("Certificate")
    while chain.left:
        msg.certificates.append(chain.vec24("certificate"))
        if tls13:
            chain.vec16("certificate entry extensions")
    return msg


def parse_certificate_verify(body: bytes | memoryview) -> CertificateVerify:
    r = Reader(body)
    msg = CertificateVerify(
        msg_type=HandshakeType.CERTIFICATE_VERIFY,
        length=len(body),
        scheme=r.u16("signature scheme"),
        signature=r.vec16("signature"),
    )
    r.done("CertificateVerify")
    return msg


def parse_finished(body: bytes | memoryview) -> Finished:
    return Finished(msg_type=HandshakeType.FINISHED, length=len(body), verify_data=bytes(body))


def parse_new_session_ticket(body: bytes | memoryview, *, tls13: bool) -> NewSessionTicket:
    """NewSessionTicket (RFC 8446 §4.6.1; RFC 5077 §3.3 for TLS 1.2)."""
    r = Reader(body)
    if not tls13:
        msg = NewSessionTicket(
            msg_type=HandshakeType.NEW_SESSION_TICKET,
            length=len(body),
            lifetime=r.u32("ticket_lifetime_hint"),
            ticket=r.vec16("ticket"),
        )
        r.done("NewSessionTicket")
        return msg
    msg = NewSessionTicket(
        msg_type=HandshakeType.NEW_SESSION_TICKET,
        length=len(body),
        lifetime=r.u32("ticket_lifetime"),
        age_add=r.u32("ticket_age_add"),
        nonce=r.vec8("ticket_nonce"),
        ticket=r.vec16("ticket"),
    )
    msg.extensions = parse_extensions(r)
    r.done("NewSessionTicket")
    for ext in msg.extensions:
        if ext.type == ExtensionType.EARLY_DATA:
            er = Reader(ext.data)
            msg.max_early_data = er.u32("max_early_data_size")
            er.done("early_data")
    return msg


def parse_key_update(body: bytes | memoryview) -> KeyUpdate:
    r = Reader(body)
    request = r.u8("request_update")
    r.done("KeyUpdate")
    if request > 1:
        raise DecodeError(f"KeyUpdate request_update {request} is not 0 or 1", 0)
    return KeyUpdate(msg_type=HandshakeType.KEY_UPDATE, length=len(body), update_requested=bool(request))


def parse_server_key_exchange(body: bytes | memoryview, *, kx: str | None = None) -> ServerKeyExchange:
    """ServerKeyExchange (RFC 8422 §5.4 ECDHE, RFC 5246 §7.4.3 DHE).

    ``kx`` is the suite's key exchange ("ecdhe"/"dhe") when known; otherwise a
    named-curve ECDHE body is recognised by its first byte (curve_type 3).
    """
    r = Reader(body)
    msg = ServerKeyExchange(msg_type=HandshakeType.SERVER_KEY_EXCHANGE, length=len(body), kind="unknown")
    if kx == "ecdhe" or (kx is None and len(body) > 4 and body[0] == 3):
        curve_type = r.u8("curve_type")
        if curve_type != 3:
            raise DecodeError(f"ECDHE curve_type {curve_type} is not named_curve", 0)
        msg.kind = "ecdhe"
        msg.group = r.u16("named_curve")
        msg.public_key = r.vec8("ECDH public")
    elif kx == "dhe":
        msg.kind = "dhe"
        r.vec16("dh_p")
        r.vec16("dh_g")
        msg.public_key = r.vec16("dh_Ys")
    else:
        r.rest()
        return msg
    if r.left:  # TLS 1.2 signature: scheme + signature (anonymous suites have none)
        msg.scheme = r.u16("signature scheme")
        msg.signature = r.vec16("signature")
    r.done("ServerKeyExchange")
    return msg


def parse_client_key_exchange(body: bytes | memoryview, *, kx: str | None = None) -> ClientKeyExchange:
    """ClientKeyExchange: u8-prefixed ECDHE point, or u16-prefixed DHE/RSA value."""
    r = Reader(body)
    if kx == "ecdhe" or (kx is None and len(body) >= 1 and body[0] + 1 == len(body)):
        exchange = r.vec8("ECDH public")
    else:
        exchange = r.vec16("exchange keys")
    r.done("ClientKeyExchange")
    return ClientKeyExchange(msg_type=HandshakeType.CLIENT_KEY_EXCHANGE, length=len(body), exchange=exchange)


def parse_certificate_request(body: bytes | memoryview, *, tls13: bool) -> CertificateRequest:
    msg = CertificateRequest(msg_type=HandshakeType.CERTIFICATE_REQUEST, length=len(body), raw=bytes(body))
    if tls13:
        r = Reader(body)
        msg.request_context = r.vec8("certificate_request_context")
        msg.extensions = parse_extensions(r)
        r.done("CertificateRequest")
    return msg


def parse_alert(payload: bytes | memoryview) -> list[AlertMessage]:
    """Alerts in one record's payload (2 bytes each)."""
    if len(payload) % 2 or not payload:
        raise DecodeError(f"alert payload of {len(payload)} bytes", 0)
    return [AlertMessage(level=payload[i], description=payload[i + 1]) for i in range(0, len(payload), 2)]


def _empty(msg_type: int) -> Callable[..., HandshakeMessage]:
    def parse(body: bytes | memoryview, **_: Any) -> HandshakeMessage:
        if len(body):
            raise DecodeError(f"{handshake_name(msg_type)} must be empty, has {len(body)} bytes", 0)
        return OpaqueMessage(msg_type=msg_type, length=0)

    return parse


_PARSERS: dict[int, Callable[..., HandshakeMessage]] = {
    HandshakeType.CLIENT_HELLO: lambda b, **k: parse_client_hello(b),
    HandshakeType.SERVER_HELLO: lambda b, **k: parse_server_hello(b),
    HandshakeType.ENCRYPTED_EXTENSIONS: lambda b, **k: parse_encrypted_extensions(b),
    HandshakeType.CERTIFICATE: lambda b, tls13=False, **k: parse_certificate(b, tls13=tls13),
    HandshakeType.CERTIFICATE_VERIFY: lambda b, **k: parse_certificate_verify(b),
    HandshakeType.FINISHED: lambda b, **k: parse_finished(b),
    HandshakeType.NEW_SESSION_TICKET: lambda b, tls13=False, **k: parse_new_session_ticket(b, tls13=tls13),
    HandshakeType.KEY_UPDATE: lambda b, **k: parse_key_update(b),
    HandshakeType.SERVER_KEY_EXCHANGE: lambda b, kx=None, **k: parse_server_key_exchange(b, kx=kx),
    HandshakeType.CLIENT_KEY_EXCHANGE: lambda b, kx=None, **k: parse_client_key_exchange(b, kx=kx),
    HandshakeType.CERTIFICATE_REQUEST: lambda b, tls13=False, **k: parse_certificate_request(b, tls13=tls13),
    HandshakeType.SERVER_HELLO_DONE: _empty(HandshakeType.SERVER_HELLO_DONE),
    HandshakeType.END_OF_EARLY_DATA: _empty(HandshakeType.END_OF_EARLY_DATA),
    HandshakeType.HELLO_REQUEST: _empty(HandshakeType.HELLO_REQUEST),
}


def parse_message(
    msg_type: int, body: bytes | memoryview, *, tls13: bool = False, kx: str | None = None
) -> HandshakeMessage:
    """Parse one handshake message body by type; unknown types come back opaque.

    ``tls13`` selects the TLS 1.3 layouts of Certificate, CertificateRequest
    and NewSessionTicket (QUIC is always TLS 1.3); ``kx`` is the TLS 1.2
    suite's key exchange ("ecdhe", "dhe", "rsa") for the key exchange messages.
    """
    parser = _PARSERS.get(msg_type)
    if parser is None:
        return OpaqueMessage(msg_type=msg_type, length=len(body), body=bytes(body))
    return parser(body, tls13=tls13, kx=kx)


class HandshakeBuffer:
    """Splits a handshake byte stream (records' or CRYPTO frames' payloads) into messages.

    ``feed`` returns complete ``(msg_type, body)`` pairs and keeps a partial
    message buffered; a declared length above ``max_size`` raises DecodeError
    (the stream cannot be trusted any more).
    """

    __slots__ = ("_buf", "max_size", "consumed")

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buf = bytearray()
        self.max_size = max_size
        self.consumed = 0  # handshake-stream offset of the first buffered byte

    def feed(self, data: bytes | memoryview) -> list[tuple[int, bytes]]:
        buf = self._buf
        buf += data
        out: list[tuple[int, bytes]] = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            length = (buf[pos + 1] << 16) | (buf[pos + 2] << 8) | buf[pos + 3]
            if length > self.max_size:
                raise DecodeError(
                    f"{handshake_name(buf[pos])} message length {length} exceeds {self.max_size}",
                    self.consumed + pos,
                )
            if n - pos - 4 < length:
                break
            out.append((buf[pos], bytes(buf[pos + 4 : pos + 4 + length])))
            pos += 4 + length
        if pos:
            del buf[:pos]
            self.consumed += pos
        return out

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still buffered."""
        return len(self._buf)

    def clear(self) -> None:
        self.consumed += len(self._buf)
        self._buf.clear()


# --------------------------------------------------------------------------- events


def message_event(
    msg: HandshakeMessage,
    *,
    frame: int,
    ts: float,
    conn: int | None,
    direction: str,
    encrypted: bool = False,
    raw: bytes = b"",
    layer: str = "tls",
) -> Event:
    """The export event for a parsed message (``layer`` lets QUIC label its own)."""
    common: dict[str, Any] = dict(
        frame=frame, ts=ts, conn=conn, layer=layer, direction=direction, length=msg.length, encrypted=encrypted, raw=raw
    )
    if isinstance(msg, ClientHello):
        return TlsClientHello(
            **common,
            version=version_name(msg.max_version),
            sni=msg.sni,
            alpn=list(msg.alpn),
            versions=[version_name(v) for v in msg.supported_versions],
            cipher_suites=[cipher_name(c) for c in msg.cipher_suites],
            extensions=[e.name for e in msg.extensions],
            groups=[group_name(g) for g in msg.supported_groups],
            key_share=[group_name(g) for g in msg.key_share_groups],
            psk_modes=[PSK_MODE_NAMES.get(m, str(m)) for m in msg.psk_modes],
            psk_identities=len(msg.psk_identities),
            early_data=msg.early_data,
            session_id=msg.session_id.hex(),
            random=msg.random.hex(),
            grease=[f"0x{g:04x}" for g in msg.grease],
        )
    if isinstance(msg, ServerHello):
        return TlsServerHello(
            **common,
            type=msg.name,
            version=version_name(msg.version),
            alpn=[msg.alpn] if msg.alpn else [],
            cipher=cipher_name(msg.cipher_suite),
            extensions=[e.name for e in msg.extensions],
            key_share=group_name(msg.key_share_group) if msg.key_share_group is not None else None,
            psk_identity=msg.psk_identity,
            session_id=msg.session_id.hex(),
            random=msg.random.hex(),
        )
    if isinstance(msg, EncryptedExtensions):
        return TlsEncryptedExtensions(
            **common,
            alpn=[msg.alpn] if msg.alpn else [],
            early_data=msg.early_data,
            extensions=[e.name for e in msg.extensions],
        )
    if isinstance(msg, Certificate):
        certs = []
        for info in msg.describe():
            d = {f: getattr(info, f) for f in info.__slots__}
            if d["error"] is None:
                del d["error"]
            certs.append(d)
        return TlsCertificate(**common, certificates=certs)
    return TlsHandshake(**common, type=msg.name, info=msg.info() or None)


# --------------------------------------------------------------------------- certificates


def describe_certificate(der: bytes) -> CertificateInfo:
    """Subject, issuer, SANs and validity via ``cryptography.x509`` (never raises)."""
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(der)
        sans: list[str] = []
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            sans = [*ext.get_values_for_type(x509.DNSName), *(str(a) for a in ext.get_values_for_type(x509.IPAddress))]
        except x509.ExtensionNotFound:
            pass
        return CertificateInfo(
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            sans=sans,
            not_before=cert.not_valid_before_utc.isoformat(),
            not_after=cert.not_valid_after_utc.isoformat(),
            serial=format(cert.serial_number, "x"),
        )
    except Exception as exc:  # noqa: BLE001 - a hostile certificate must not stop decoding
        return CertificateInfo("", "", [], "", "", "", error=f"{type(exc).__name__}: {exc}")


__all__ = [
    "AlertMessage",
    "Certificate",
    "CertificateInfo",
    "CertificateRequest",
    "CertificateVerify",
    "ClientHello",
    "ClientKeyExchange",
    "EncryptedExtensions",
    "Extension",
    "Finished",
    "HandshakeBuffer",
    "HandshakeMessage",
    "KeyUpdate",
    "NewSessionTicket",
    "OpaqueMessage",
    "Reader",
    "ServerHello",
    "ServerKeyExchange",
    "cipher_name",
    "describe_certificate",
    "message_event",
    "group_name",
    "parse_alert",
    "parse_certificate",
    "parse_client_hello",
    "parse_encrypted_extensions",
    "parse_extensions",
    "parse_message",
    "parse_server_hello",
    "version_name",
]
