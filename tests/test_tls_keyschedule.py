"""Key schedule and record protection against published vectors.

TLS 1.3: RFC 8448 §3 (values in tests/support/tls_rfc8448.py, each with the
trace step it comes from).  TLS 1.2 PRF: the P_SHA256/P_SHA384 vectors posted
to the IETF TLS WG list (msg03416), used by BearSSL's and others' test suites.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from inspector.decoders.tls import keyschedule as ks
from inspector.decoders.tls.ciphers import SUITES, Tls12AeadOpener, Tls12CbcOpener, Tls13Opener
from tests.support import tls_rfc8448 as r


def test_rfc8448_early_handshake_master_secrets():
    # RFC 8448 §3 {server} extract secret "early" / derive "tls13 derived" / extract "handshake" / "master"
    early = ks.early_secret("sha256")
    assert early == r.EARLY_SECRET
    assert ks.derive_secret("sha256", early, "derived", ks.empty_hash("sha256")) == r.DERIVED_FOR_HANDSHAKE
    hs = ks.handshake_secret("sha256", early, r.ECDHE_SHARED)
    assert hs == r.HANDSHAKE_SECRET
    assert ks.master_secret("sha256", hs) == r.MASTER_SECRET


def test_rfc8448_transcript_hash_and_traffic_secrets():
    # RFC 8448 §3: the transcript hash over ClientHello..ServerHello, and "c/s hs traffic"
    assert hashlib.sha256(r.CLIENT_HELLO + r.SERVER_HELLO).digest() == r.HASH_CH_SH
    assert ks.derive_secret("sha256", r.HANDSHAKE_SECRET, "c hs traffic", r.HASH_CH_SH) == r.CLIENT_HS_TRAFFIC
    assert ks.derive_secret("sha256", r.HANDSHAKE_SECRET, "s hs traffic", r.HASH_CH_SH) == r.SERVER_HS_TRAFFIC
    transcript = (
        r.CLIENT_HELLO + r.SERVER_HELLO + r.ENCRYPTED_EXTENSIONS + r.CERTIFICATE + r.CERTIFICATE_VERIFY + r.SERVER_FINISHED
    )
    assert hashlib.sha256(transcript).digest() == r.HASH_CH_SF
    assert ks.derive_secret("sha256", r.MASTER_SECRET, "c ap traffic", r.HASH_CH_SF) == r.CLIENT_AP_TRAFFIC
    assert ks.derive_secret("sha256", r.MASTER_SECRET, "s ap traffic", r.HASH_CH_SF) == r.SERVER_AP_TRAFFIC
    assert ks.derive_secret("sha256", r.MASTER_SECRET, "exp master", r.HASH_CH_SF) == r.EXPORTER_MASTER


def test_rfc8448_hkdf_expand_label_keys_ivs_and_finished():
    # RFC 8448 §3 {server} derive write traffic keys for handshake / application data
    assert ks.traffic_keys("sha256", r.SERVER_HS_TRAFFIC, 16) == (r.SERVER_HS_KEY, r.SERVER_HS_IV)
    assert ks.traffic_keys("sha256", r.CLIENT_HS_TRAFFIC, 16) == (r.CLIENT_HS_KEY, r.CLIENT_HS_IV)
    assert ks.traffic_keys("sha256", r.SERVER_AP_TRAFFIC, 16) == (r.SERVER_AP_KEY, r.SERVER_AP_IV)
    assert ks.traffic_keys("sha256", r.CLIENT_AP_TRAFFIC, 16) == (r.CLIENT_AP_KEY, r.CLIENT_AP_IV)
    # {server} calculate finished "tls13 finished": the finished key, then HMAC over the transcript
    fk = ks.hkdf_expand_label("sha256", r.SERVER_HS_TRAFFIC, "finished", b"", 32)
    assert fk == r.SERVER_FINISHED_KEY
    transcript = r.CLIENT_HELLO + r.SERVER_HELLO + r.ENCRYPTED_EXTENSIONS + r.CERTIFICATE + r.CERTIFICATE_VERIFY
    verify = hmac.digest(fk, hashlib.sha256(transcript).digest(), "sha256")
    assert verify == r.SERVER_FINISHED[4:]


def test_rfc8448_records_open_with_derived_keys():
    suite = SUITES[0x1301]
    # the server's encrypted flight (sequence 0 under the server handshake secret)
    opener = Tls13Opener(suite, r.SERVER_HS_TRAFFIC)
    ctype, content = opener.open(0, r.SERVER_HS_RECORD[:5], r.SERVER_HS_RECORD[5:])
    assert ctype == 22
    assert content == r.ENCRYPTED_EXTENSIONS + r.CERTIFICATE + r.CERTIFICATE_VERIFY + r.SERVER_FINISHED
    # client Finished (sequence 0 under the client handshake secret)
    ctype, content = Tls13Opener(suite, r.CLIENT_HS_TRAFFIC).open(0, r.CLIENT_FINISHED_RECORD[:5], r.CLIENT_FINISHED_RECORD[5:])
    assert ctype == 22 and content[:4] == bytes.fromhex("14000020")
    # application data: client at sequence 0, server at sequence 1 (after its NewSessionTicket)
    client = Tls13Opener(suite, r.CLIENT_AP_TRAFFIC)
    assert client.open(0, r.CLIENT_APP_RECORD[:5], r.CLIENT_APP_RECORD[5:]) == (23, r.APP_PAYLOAD)
    server = Tls13Opener(suite, r.SERVER_AP_TRAFFIC)
    assert server.open(1, r.SERVER_APP_RECORD[:5], memoryview(r.SERVER_APP_RECORD)[5:]) == (23, r.APP_PAYLOAD)


def test_rfc8448_records_fail_closed():
    suite = SUITES[0x1301]
    client = Tls13Opener(suite, r.CLIENT_AP_TRAFFIC)
    for seq in (1, 2, 255, 2**64 - 1):  # the nonce really depends on the sequence number
        assert client.open(seq, r.CLIENT_APP_RECORD[:5], r.CLIENT_APP_RECORD[5:]) is None
    assert Tls13Opener(suite, r.SERVER_AP_TRAFFIC).open(0, r.CLIENT_APP_RECORD[:5], r.CLIENT_APP_RECORD[5:]) is None
    bad = bytearray(r.CLIENT_APP_RECORD)
    bad[20] ^= 1
    assert client.open(0, bytes(bad[:5]), bytes(bad[5:])) is None
    # the header is authenticated data too
    assert client.open(0, b"\x17\x03\x03\x00\x44", r.CLIENT_APP_RECORD[5:]) is None
    assert client.open(0, r.CLIENT_APP_RECORD[:5], b"short") is None


def test_key_update_secret_and_sha384_suite():
    # RFC 8446 §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)
    nxt = ks.next_traffic_secret("sha256", r.CLIENT_AP_TRAFFIC)
    info = b"\x00\x20" + bytes([len(b"tls13 traffic upd")]) + b"tls13 traffic upd" + b"\x00"
    # HKDF-Expand with one block: T(1) = HMAC(PRK, info || 0x01)
    assert nxt == hmac.digest(r.CLIENT_AP_TRAFFIC, info + b"\x01", "sha256")
    assert Tls13Opener(SUITES[0x1301], r.CLIENT_AP_TRAFFIC).next().secret == nxt
    key, iv = ks.traffic_keys("sha384", bytes(48), 32)
    assert len(key) == 32 and len(iv) == 12


# IETF TLS WG list, msg03416: "test label" vectors for the TLS 1.2 PRF.
PRF_SHA256 = (
    "9bbe436ba940f017b17652849a71db35",
    "a0ba9f936cda311827a6f796ffd5198c",
    "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af"
    "0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66",
)
PRF_SHA384 = (
    "b80b733d6ceefcdc71566ea48e5567df",
    "cd665cf6a8447dd6ff8b27555edb7465",
    "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0"
    "e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b"
    "5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f",
)


@pytest.mark.parametrize("hash_name,vector", [("sha256", PRF_SHA256), ("sha384", PRF_SHA384)])
def test_tls12_prf_published_vectors(hash_name, vector):
    secret, seed, out = (bytes.fromhex(v) for v in vector)
    assert ks.prf12(hash_name, secret, b"test label", seed, len(out)) == out
    assert ks.prf12(hash_name, secret, b"test label", seed, 16) == out[:16]


def test_tls12_key_block_is_prf_split_in_rfc5246_order():
    master, cr, sr = bytes(range(48)), b"c" * 32, b"s" * 32
    parts = ks.key_block12("sha256", master, cr, sr, 20, 16, 4)
    block = ks.prf12("sha256", master, b"key expansion", sr + cr, 2 * (20 + 16 + 4))
    assert b"".join(parts) == block and [len(p) for p in parts] == [20, 20, 16, 16, 4, 4]


def test_tls12_openers_reject_garbage_without_raising():
    gcm = Tls12AeadOpener(SUITES[0xC02F], bytes(16), bytes(4))
    cha = Tls12AeadOpener(SUITES[0xCCA8], bytes(32), bytes(12))
    cbc = Tls12CbcOpener(SUITES[0xC027], bytes(16), bytes(32), encrypt_then_mac=False)
    etm = Tls12CbcOpener(SUITES[0xC027], bytes(16), bytes(32), encrypt_then_mac=True)
    for opener in (gcm, cha, cbc, etm):
        for n in (0, 1, 15, 16, 24, 31, 32, 48, 80, 100):
            assert opener.open(0, bytes([23, 3, 3, 0, n]), bytes(range(n))) is None
