"""Key derivation: the TLS 1.3 HKDF key schedule (RFC 8446 §7) and the TLS 1.2 PRF (RFC 5246 §5).

A passive decoder gets traffic secrets (TLS 1.3) or the master secret
(TLS 1.2) from the key log, so it only needs the last steps: traffic keys
from a secret, the next secret after a KeyUpdate, and the TLS 1.2 key block.
The full TLS 1.3 schedule is here too so it can be checked against RFC 8448.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def hash_len(hash_name: str) -> int:
    return hashlib.new(hash_name).digest_size


def hkdf_extract(hash_name: str, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869 §2.2): HMAC(salt, IKM); an empty salt is HashLen zeros."""
    return hmac.digest(salt or bytes(hash_len(hash_name)), ikm, hash_name)


def hkdf_expand_label(hash_name: str, secret: bytes, label: str, context: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1) with the "tls13 " label prefix."""
    full = b"tls13 " + label.encode("ascii")
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(_HASHES[hash_name](), length, info).derive(secret)


def derive_secret(hash_name: str, secret: bytes, label: str, transcript_hash: bytes) -> bytes:
    """Derive-Secret (RFC 8446 §7.1), given the transcript hash rather than the messages."""
    return hkdf_expand_label(hash_name, secret, label, transcript_hash, hash_len(hash_name))


def empty_hash(hash_name: str) -> bytes:
    return hashlib.new(hash_name).digest()


def early_secret(hash_name: str, psk: bytes | None = None) -> bytes:
    return hkdf_extract(hash_name, b"", psk or bytes(hash_len(hash_name)))


def handshake_secret(hash_name: str, early: bytes, shared_secret: bytes) -> bytes:
    derived = derive_secret(hash_name, early, "derived", empty_hash(hash_name))
    return hkdf_extract(hash_name, derived, shared_secret)


def master_secret(hash_name: str, handshake: bytes) -> bytes:
    derived = derive_secret(hash_name, handshake, "derived", empty_hash(hash_name))
    return hkdf_extract(hash_name, derived, bytes(hash_len(hash_name)))


def traffic_keys(hash_name: str, secret: bytes, key_len: int, iv_len: int = 12) -> tuple[bytes, bytes]:
    """The write key and IV of a TLS 1.3 traffic secret (RFC 8446 §7.3)."""
    return (
        hkdf_expand_label(hash_name, secret, "key", b"", key_len),
        hkdf_expand_label(hash_name, secret, "iv", b"", iv_len),
    )


def next_traffic_secret(hash_name: str, secret: bytes) -> bytes:
    """application_traffic_secret_N+1 after a KeyUpdate (RFC 8446 §7.2)."""
    return hkdf_expand_label(hash_name, secret, "traffic upd", b"", hash_len(hash_name))


# --------------------------------------------------------------------------- TLS 1.2


def p_hash(hash_name: str, secret: bytes, seed: bytes, length: int) -> bytes:
    """P_hash (RFC 5246 §5): HMAC chained over A(i)."""
    out = bytearray()
    a = seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + seed, hash_name)
    return bytes(out[:length])


def prf12(hash_name: str, secret: bytes, label: bytes, seed: bytes, length: int) -> bytes:
    """TLS 1.2 PRF(secret, label, seed) with the suite's hash (SHA-256 unless the suite says SHA-384)."""
    return p_hash(hash_name, secret, label + seed, length)


def key_block12(
    hash_name: str,
    master: bytes,
    client_random: bytes,
    server_random: bytes,
    mac_len: int,
    key_len: int,
    iv_len: int,
) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
    """TLS 1.2 key expansion (RFC 5246 §6.3).

    Returns (client MAC key, server MAC key, client key, server key, client IV, server IV).
    """
    size = 2 * (mac_len + key_len + iv_len)
    block = prf12(hash_name, master, b"key expansion", server_random + client_random, size)
    parts = []
    pos = 0
    for n in (mac_len, mac_len, key_len, key_len, iv_len, iv_len):
        parts.append(block[pos : pos + n])
        pos += n
    return tuple(parts)  # type: ignore[return-value]
