"""Cipher suites and record protection (opening protected records).

``SUITES`` says what each supported suite needs (AEAD or CBC+HMAC, key
sizes, PRF hash).  The ``*Opener`` classes open one record given its
sequence number and return ``None`` when authentication fails, so a wrong
key or a corrupted record is a result, not an exception.  The AEAD work is
``cryptography``'s; MAC checks use the stdlib's C ``hmac.digest`` (one call
per CBC record, cheaper than building a ``cryptography`` HMAC object).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305

from . import keyschedule

_SEQ = struct.Struct("!Q")
_AAD12 = struct.Struct("!QBHH")  # seq, type, version, length
_HDR = struct.Struct("!BHH")


@dataclass(frozen=True, slots=True)
class Suite:
    """What decrypting a suite takes."""

    name: str
    kx: str  # "ecdhe", "dhe", "rsa" or "tls13"
    cipher: str  # "aes-gcm", "chacha20", "aes-ccm", "aes-ccm8", "aes-cbc", "3des-cbc"
    key_len: int
    hash: str  # TLS 1.3 HKDF hash / TLS 1.2 PRF hash
    mac: str | None = None  # CBC suites: the HMAC hash
    mac_len: int = 0

    @property
    def tls13(self) -> bool:
        return self.kx == "tls13"

    @property
    def fixed_iv_len(self) -> int:
        """Implicit IV bytes from the TLS 1.2 key block (RFC 5288, RFC 7905)."""
        if self.cipher == "aes-gcm" or self.cipher.startswith("aes-ccm"):
            return 4
        if self.cipher == "chacha20":
            return 12
        return 0  # CBC in TLS 1.1+: explicit per-record IV


def _s(name: str, kx: str, cipher: str, key_len: int, hash_: str, mac: str | None = None) -> Suite:
    mac_len = {"sha1": 20, "sha256": 32, "sha384": 48, None: 0}[mac]
    return Suite(name, kx, cipher, key_len, hash_, mac, mac_len)


SUITES: dict[int, Suite] = {
    0x1301: _s("TLS_AES_128_GCM_SHA256", "tls13", "aes-gcm", 16, "sha256"),
    0x1302: _s("TLS_AES_256_GCM_SHA384", "tls13", "aes-gcm", 32, "sha384"),
    0x1303: _s("TLS_CHACHA20_POLY1305_SHA256", "tls13", "chacha20", 32, "sha256"),
    0x1304: _s("TLS_AES_128_CCM_SHA256", "tls13", "aes-ccm", 16, "sha256"),
    0x1305: _s("TLS_AES_128_CCM_8_SHA256", "tls13", "aes-ccm8", 16, "sha256"),
    0xC02B: _s("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ecdhe", "aes-gcm", 16, "sha256"),
    0xC02C: _s("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ecdhe", "aes-gcm", 32, "sha384"),
    0xC02F: _s("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ecdhe", "aes-gcm", 16, "sha256"),
    0xC030: _s("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ecdhe", "aes-gcm", 32, "sha384"),
    0xCCA8: _s("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ecdhe", "chacha20", 32, "sha256"),
    0xCCA9: _s("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ecdhe", "chacha20", 32, "sha256"),
    0xCCAA: _s("TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "dhe", "chacha20", 32, "sha256"),
    0x009E: _s("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "dhe", "aes-gcm", 16, "sha256"),
    0x009F: _s("TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "dhe", "aes-gcm", 32, "sha384"),
    0x009C: _s("TLS_RSA_WITH_AES_128_GCM_SHA256", "rsa", "aes-gcm", 16, "sha256"),
    0x009D: _s("TLS_RSA_WITH_AES_256_GCM_SHA384", "rsa", "aes-gcm", 32, "sha384"),
    0xC009: _s("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ecdhe", "aes-cbc", 16, "sha256", "sha1"),
    0xC00A: _s("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ecdhe", "aes-cbc", 32, "sha256", "sha1"),
    0xC013: _s("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ecdhe", "aes-cbc", 16, "sha256", "sha1"),
    0xC014: _s("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ecdhe", "aes-cbc", 32, "sha256", "sha1"),
    0xC023: _s("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ecdhe", "aes-cbc", 16, "sha256", "sha256"),
    0xC024: _s("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ecdhe", "aes-cbc", 32, "sha384", "sha384"),
    0xC027: _s("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ecdhe", "aes-cbc", 16, "sha256", "sha256"),
    0xC028: _s("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ecdhe", "aes-cbc", 32, "sha384", "sha384"),
    0x002F: _s("TLS_RSA_WITH_AES_128_CBC_SHA", "rsa", "aes-cbc", 16, "sha256", "sha1"),
    0x0035: _s("TLS_RSA_WITH_AES_256_CBC_SHA", "rsa", "aes-cbc", 32, "sha256", "sha1"),
    0x003C: _s("TLS_RSA_WITH_AES_128_CBC_SHA256", "rsa", "aes-cbc", 16, "sha256", "sha256"),
    0x003D: _s("TLS_RSA_WITH_AES_256_CBC_SHA256", "rsa", "aes-cbc", 32, "sha256", "sha256"),
    0x0033: _s("TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "dhe", "aes-cbc", 16, "sha256", "sha1"),
    0x0039: _s("TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "dhe", "aes-cbc", 32, "sha256", "sha1"),
    0x0067: _s("TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "dhe", "aes-cbc", 16, "sha256", "sha256"),
    0x006B: _s("TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "dhe", "aes-cbc", 32, "sha256", "sha256"),
}


def suite_kx(suite_id: int) -> str | None:
    """The key exchange of a suite, for parsing ServerKeyExchange/ClientKeyExchange."""
    suite = SUITES.get(suite_id)
    return suite.kx if suite else None


def _aead(cipher: str, key: bytes) -> AESGCM | ChaCha20Poly1305 | AESCCM:
    if cipher == "aes-gcm":
        return AESGCM(key)
    if cipher == "chacha20":
        return ChaCha20Poly1305(key)
    if cipher == "aes-ccm":
        return AESCCM(key, 16)
    if cipher == "aes-ccm8":
        return AESCCM(key, 8)
    raise ValueError(f"not an AEAD: {cipher}")


def _tag_len(cipher: str) -> int:
    return 8 if cipher == "aes-ccm8" else 16


class Tls13Opener:
    """TLS 1.3 record protection (RFC 8446 §5.2-5.4) for one traffic secret."""

    __slots__ = ("suite", "secret", "_aead", "_iv", "_tag")

    def __init__(self, suite: Suite, secret: bytes) -> None:
        self.suite = suite
        self.secret = secret
        key, iv = keyschedule.traffic_keys(suite.hash, secret, suite.key_len)
        self._aead = _aead(suite.cipher, key)
        self._iv = int.from_bytes(iv, "big")
        self._tag = _tag_len(suite.cipher)

    def open(self, seq: int, header: bytes, payload: bytes | memoryview) -> tuple[int, bytes] | None:
        """(inner content type, content) or None when the record does not authenticate."""
        if len(payload) < self._tag + 1:
            return None
        nonce = (self._iv ^ seq).to_bytes(12, "big")
        try:
            inner = self._aead.decrypt(nonce, payload, header)
        except InvalidTag:
            return None
        # TLSInnerPlaintext: content, type byte, zero padding (RFC 8446 §5.4)
        last = inner[-1]
        if last:  # no padding: the usual case, one copy fewer
            return last, inner[:-1]
        end = len(inner.rstrip(b"\x00"))
        if end == 0:
            return None  # all padding: a protocol error; treat as not opened
        return inner[end - 1], inner[: end - 1]

    def next(self) -> Tls13Opener:
        """The opener after a KeyUpdate."""
        return Tls13Opener(self.suite, keyschedule.next_traffic_secret(self.suite.hash, self.secret))


class Tls12AeadOpener:
    """TLS 1.2 AEAD records: AES-GCM/CCM with an 8-byte explicit nonce, or ChaCha20 (RFC 7905)."""

    __slots__ = ("suite", "_aead", "_iv", "_ivint", "_explicit", "_tag")

    def __init__(self, suite: Suite, key: bytes, iv: bytes) -> None:
        self.suite = suite
        self._aead = _aead(suite.cipher, key)
        self._iv = iv
        self._ivint = int.from_bytes(iv, "big")
        self._explicit = 0 if suite.cipher == "chacha20" else 8
        self._tag = _tag_len(suite.cipher)

    def open(self, seq: int, header: bytes, payload: bytes | memoryview) -> tuple[int, bytes] | None:
        ex = self._explicit
        n = len(payload) - ex - self._tag
        if n < 0:
            return None
        if ex:
            nonce = self._iv + bytes(payload[:ex])
            payload = payload[ex:]
        else:
            nonce = (self._ivint ^ seq).to_bytes(12, "big")
        ctype, version, _ = _HDR.unpack(header)
        aad = _AAD12.pack(seq, ctype, version, n)
        try:
            return ctype, self._aead.decrypt(nonce, payload, aad)
        except InvalidTag:
            return None


class Tls12CbcOpener:
    """TLS 1.1/1.2 CBC records with HMAC, MAC-then-encrypt or encrypt-then-MAC (RFC 7366)."""

    __slots__ = ("suite", "_key", "_mac_key", "_mac", "_mac_len", "_etm", "_block", "_algo")

    def __init__(self, suite: Suite, key: bytes, mac_key: bytes, *, encrypt_then_mac: bool) -> None:
        self.suite = suite
        self._key = key
        self._mac_key = mac_key
        self._mac = suite.mac
        self._mac_len = suite.mac_len
        self._etm = encrypt_then_mac
        self._algo = algorithms.AES(key)
        self._block = 16

    def _decrypt(self, data: bytes | memoryview) -> bytes | None:
        bs = self._block
        if len(data) < 2 * bs or len(data) % bs:
            return None
        dec = Cipher(self._algo, modes.CBC(bytes(data[:bs]))).decryptor()
        return dec.update(bytes(data[bs:])) + dec.finalize()

    def open(self, seq: int, header: bytes, payload: bytes | memoryview) -> tuple[int, bytes] | None:
        ctype, version, _ = _HDR.unpack(header)
        ml = self._mac_len
        if self._etm:
            if len(payload) < ml:
                return None
            body, tag = payload[:-ml], bytes(payload[-ml:])
            mac = hmac.digest(self._mac_key, _AAD12.pack(seq, ctype, version, len(body)) + bytes(body), self._mac)
            if not hmac.compare_digest(mac, tag):
                return None
            plain = self._decrypt(body)
            if plain is None:
                return None
            pad = plain[-1]
            if pad + 1 > len(plain):
                return None
            return ctype, plain[: -pad - 1]
        plain = self._decrypt(payload)
        if plain is None:
            return None
        pad = plain[-1]
        if pad + 1 + ml > len(plain) or plain[-pad - 1 :] != bytes([pad]) * (pad + 1):
            return None
        content = plain[: -pad - 1 - ml]
        tag = plain[-pad - 1 - ml : -pad - 1]
        mac = hmac.digest(self._mac_key, _AAD12.pack(seq, ctype, version, len(content)) + content, self._mac)
        if not hmac.compare_digest(mac, tag):
            return None
        return ctype, content


Opener = Tls13Opener | Tls12AeadOpener | Tls12CbcOpener


def tls12_openers(
    suite: Suite, master: bytes, client_random: bytes, server_random: bytes, *, encrypt_then_mac: bool
) -> tuple[Opener, Opener]:
    """(client->server, server->client) openers from a TLS 1.2 master secret."""
    mac_c, mac_s, key_c, key_s, iv_c, iv_s = keyschedule.key_block12(
        suite.hash, master, client_random, server_random, suite.mac_len, suite.key_len, suite.fixed_iv_len
    )
    if suite.mac:
        return (
            Tls12CbcOpener(suite, key_c, mac_c, encrypt_then_mac=encrypt_then_mac),
            Tls12CbcOpener(suite, key_s, mac_s, encrypt_then_mac=encrypt_then_mac),
        )
    return Tls12AeadOpener(suite, key_c, iv_c), Tls12AeadOpener(suite, key_s, iv_s)
