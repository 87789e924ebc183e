"""QUIC packet protection as an observer sees it (RFC 9001 §5, RFC 9369 §3.3).

The order is aioquic's: remove header protection with the ``hp`` key (which
reveals the packet-number length and, for short headers, the key phase),
recover the full packet number from the largest one seen in that space
(RFC 9000 Appendix A), then open the AEAD with the nonce built from it.

Initial keys come from the client's first Destination Connection ID and the
version's salt; all later keys from TLS secrets in the key log.  1-RTT keys
roll forward on a key update (RFC 9001 §6) while the header-protection key
stays: :class:`OneRttKeys` keeps the previous, current and next generation.
"""

from __future__ import annotations

from aioquic._crypto import AEAD, CryptoError, HeaderProtection
from aioquic.quic.crypto import (
    CIPHER_SUITES,
    INITIAL_CIPHER_SUITE,
    INITIAL_SALT_VERSION_1,
    INITIAL_SALT_VERSION_2,
    derive_key_iv_hp,
)
from aioquic.quic.packet import decode_packet_number
from aioquic.tls import CipherSuite, cipher_suite_hash, hkdf_expand_label, hkdf_extract

from .packet import VERSION_2

__all__ = [
    "CryptoError",
    "PacketKeys",
    "OneRttKeys",
    "initial_keys",
    "initial_secrets",
    "next_generation",
    "suites_for_secret",
    "unprotect",
]


def initial_secrets(dcid: bytes, version: int) -> tuple[bytes, bytes]:
    """Client and server Initial secrets for this DCID and version (RFC 9001 §5.2)."""
    salt = INITIAL_SALT_VERSION_2 if version == VERSION_2 else INITIAL_SALT_VERSION_1
    algorithm = cipher_suite_hash(INITIAL_CIPHER_SUITE)
    initial = hkdf_extract(algorithm, salt, dcid)
    size = algorithm.digest_size
    return (
        hkdf_expand_label(algorithm, initial, b"client in", b"", size),
        hkdf_expand_label(algorithm, initial, b"server in", b"", size),
    )


class PacketKeys:
    """AEAD and header-protection keys derived from one traffic secret."""

    __slots__ = ("suite", "version", "secret", "aead", "hp")

    def __init__(self, secret: bytes, suite: CipherSuite, version: int) -> None:
        key, iv, hp = derive_key_iv_hp(cipher_suite=suite, secret=secret, version=version)
        hp_name, aead_name = CIPHER_SUITES[suite]
        self.suite = suite
        self.version = version
        self.secret = secret
        self.aead = AEAD(aead_name, key, iv)
        self.hp = HeaderProtection(hp_name, hp)


def next_generation(suite: CipherSuite, version: int, secret: bytes) -> tuple[bytes, AEAD]:
    """The secret and AEAD of the next key phase (RFC 9001 §6.1; hp does not change)."""
    algorithm = cipher_suite_hash(suite)
    label = b"quicv2 ku" if version == VERSION_2 else b"quic ku"
    secret = hkdf_expand_label(algorithm, secret, label, b"", algorithm.digest_size)
    key, iv, _ = derive_key_iv_hp(cipher_suite=suite, secret=secret, version=version)
    return secret, AEAD(CIPHER_SUITES[suite][1], key, iv)


def initial_keys(dcid: bytes, version: int) -> tuple[PacketKeys, PacketKeys]:
    """Client and server Initial :class:`PacketKeys` (AES-128-GCM)."""
    client, server = initial_secrets(dcid, version)
    return (
        PacketKeys(client, INITIAL_CIPHER_SUITE, version),
        PacketKeys(server, INITIAL_CIPHER_SUITE, version),
    )


def suites_for_secret(secret: bytes) -> tuple[CipherSuite, ...]:
    """Cipher suites whose hash matches this secret's length (to try when the suite is unknown)."""
    if len(secret) == 48:
        return (CipherSuite.AES_256_GCM_SHA384,)
    return (CipherSuite.AES_128_GCM_SHA256, CipherSuite.CHACHA20_POLY1305_SHA256)


def remove_header_protection(hp: HeaderProtection, packet: bytes, pn_offset: int) -> tuple[bytes, int, int]:
    """Unmask the header: the plain header bytes, the truncated packet number and its bit width."""
    plain_header, truncated = hp.remove(packet, pn_offset)
    return plain_header, truncated, ((plain_header[0] & 0x03) + 1) * 8


def unprotect(keys: PacketKeys, packet: bytes, pn_offset: int, expected_pn: int) -> tuple[bytes, bytes, int]:
    """Open one long-header packet (``packet`` is just its bytes): header, payload, packet number.

    Raises :class:`CryptoError` when the packet is too short to sample or
    does not authenticate.
    """
    plain_header, truncated, bits = remove_header_protection(keys.hp, packet, pn_offset)
    pn = decode_packet_number(truncated, bits, expected_pn)
    payload = keys.aead.decrypt(packet[len(plain_header) :], plain_header, pn)
    return plain_header, payload, pn


class OneRttKeys:
    """1-RTT keys of one direction across key updates.

    Generation ``g`` has key phase bit ``g % 2``.  A packet whose phase bit
    differs from the current generation is tried with the next generation
    (a key update) and, if that fails, the previous one (a packet delayed
    across the update); the current generation moves forward only when a
    packet opens with the next one.
    """

    __slots__ = ("base", "generation", "_aeads", "_secrets", "updates")

    def __init__(self, base: PacketKeys) -> None:
        self.base = base
        self.generation = 0
        self._aeads: dict[int, AEAD] = {0: base.aead}
        self._secrets: dict[int, bytes] = {0: base.secret}
        self.updates: list[tuple[int, int]] = []  # (generation, first packet number)

    def _aead(self, generation: int) -> AEAD | None:
        if generation < 0:
            return None
        aead = self._aeads.get(generation)
        if aead is None:
            prev = self._secrets.get(generation - 1)
            if prev is None:
                return None
            secret, aead = next_generation(self.base.suite, self.base.version, prev)
            self._aeads[generation] = aead
            self._secrets[generation] = secret
            # keep three generations: previous, current, next
            for old in [g for g in self._aeads if g < generation - 2]:
                del self._aeads[old]
                del self._secrets[old]
        return aead

    def open(self, packet: bytes, pn_offset: int, expected_pn: int) -> tuple[bytes, bytes, int, int, int]:
        """Open a short-header packet: header, payload, packet number, key phase bit, generation."""
        plain_header, truncated, bits = remove_header_protection(self.base.hp, packet, pn_offset)
        pn = decode_packet_number(truncated, bits, expected_pn)
        phase = (plain_header[0] >> 2) & 1
        ciphertext = packet[len(plain_header) :]
        current = self.generation
        if phase == current % 2:
            order = (current,)
        else:
            order = (current + 1, current - 1)
        error: CryptoError | None = None
        for generation in order:
            aead = self._aead(generation)
            if aead is None:
                continue
            try:
                payload = aead.decrypt(ciphertext, plain_header, pn)
            except CryptoError as exc:
                error = exc
                continue
            if generation > current:
                self.generation = generation
                self.updates.append((generation, pn))
            return plain_header, payload, pn, phase, generation
        raise error or CryptoError("no key for this key phase")
