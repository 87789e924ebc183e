"""Handshake message parsers against the RFC 8448 §3 "Simple 1-RTT Handshake" messages
(hex in tests/support/tls_rfc8448.py, copied from the RFC), plus truncation fuzzing."""

from __future__ import annotations

import random

import pytest

from inspector.decoders.tls.constants import HRR_RANDOM, cipher_name, is_grease, version_name
from inspector.decoders.tls.handshake import (
    Certificate,
    ClientHello,
    EncryptedExtensions,
    HandshakeBuffer,
    ServerHello,
    message_event,
    parse_alert,
    parse_message,
)
from inspector.errors import DecodeError
from tests.support.tls_rfc8448 import (
    CERTIFICATE,
    CERTIFICATE_VERIFY,
    CLIENT_HELLO,
    ENCRYPTED_EXTENSIONS,
    SERVER_FINISHED,
    SERVER_HELLO,
)


ALL = [CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE, CERTIFICATE_VERIFY, SERVER_FINISHED]


def parse(msg: bytes, **kw):
    return parse_message(msg[0], msg[4:], tls13=True, **kw)


def test_client_hello_fields_from_rfc8448():
    ch = parse(CLIENT_HELLO)
    assert isinstance(ch, ClientHello)
    assert ch.random.hex().startswith("cb34ecb1e78163ba")
    assert ch.sni == "server"
    assert [cipher_name(c) for c in ch.cipher_suites] == [
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_256_GCM_SHA384",
    ]
    assert ch.supported_versions == [0x0304] and version_name(ch.max_version) == "1.3"
    assert ch.key_share_groups == [29]  # x25519
    assert ch.supported_groups[:4] == [29, 23, 24, 25]
    assert ch.psk_modes == [1]  # psk_dhe_ke
    assert ch.session_ticket == b""  # empty session_ticket extension
    assert ch.signature_algorithms[0] == 0x0403 and len(ch.signature_algorithms) == 15
    assert not ch.early_data and not ch.psk_identities and ch.alpn == []
    ev = message_event(ch, frame=1, ts=0.0, conn=0, direction="c2s")
    assert ev.type == "ClientHello" and ev.layer == "tls" and ev.sni == "server"
    assert ev.version == "1.3" and ev.cipher is None and ev.alpn == []
    assert ev.extensions[-1] == "record_size_limit"


def test_server_hello_fields_from_rfc8448():
    sh = parse(SERVER_HELLO)
    assert isinstance(sh, ServerHello)
    assert not sh.is_hrr
    assert sh.cipher_suite == 0x1301 and sh.version == 0x0304 and sh.legacy_version == 0x0303
    assert sh.key_share_group == 29
    ev = message_event(sh, frame=2, ts=0.0, conn=0, direction="s2c")
    assert (ev.type, ev.version, ev.cipher, ev.alpn) == ("ServerHello", "1.3", "TLS_AES_128_GCM_SHA256", [])


def test_hello_retry_request_recognised_by_its_random():
    # RFC 8446 §4.1.3: an HRR is a ServerHello whose random is SHA-256("HelloRetryRequest").
    import hashlib

    assert HRR_RANDOM == hashlib.sha256(b"HelloRetryRequest").digest()
    body = bytearray(SERVER_HELLO[4:])
    body[2:34] = HRR_RANDOM
    # an HRR's key_share carries only the selected group: rebuild the extensions
    exts = bytes.fromhex("0033 0002 0017" "002b 0002 0304")
    session = body[34 : 35 + body[34]]
    hrr = bytes(body[:34]) + bytes(session) + bytes.fromhex("1301 00") + len(exts).to_bytes(2, "big") + exts
    msg = parse_message(2, hrr, tls13=True)
    assert msg.is_hrr and msg.name == "HelloRetryRequest" and msg.key_share_group == 23


def test_encrypted_extensions_certificate_verify_finished():
    ee = parse(ENCRYPTED_EXTENSIONS)
    assert isinstance(ee, EncryptedExtensions)
    assert [e.name for e in ee.extensions] == ["supported_groups", "record_size_limit", "server_name"]
    assert ee.server_name_ack and ee.alpn is None and not ee.early_data
    cert = parse(CERTIFICATE)
    assert isinstance(cert, Certificate) and len(cert.certificates) == 1
    (info,) = cert.describe()
    assert info.subject == "CN=rsa" and info.issuer == "CN=rsa"
    assert info.not_before.startswith("2016-07-30T01:23:59") and info.not_after.startswith("2026-07-30T01:23:59")
    cv = parse(CERTIFICATE_VERIFY)
    assert cv.info() == {"scheme": "rsa_pss_rsae_sha256", "signature_len": 128}
    fin = parse(SERVER_FINISHED)
    assert fin.verify_data.hex().startswith("9b9b141d906337fb")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64, 1000])
def test_handshake_buffer_split_at_every_offset(chunk):
    stream = b"".join(ALL)
    buf = HandshakeBuffer()
    got = []
    for i in range(0, len(stream), chunk):
        got += buf.feed(stream[i : i + chunk])
    assert [(t, len(b)) for t, b in got] == [(m[0], len(m) - 4) for m in ALL]
    assert buf.pending == 0 and buf.consumed == len(stream)


def test_handshake_buffer_holds_partial_message_as_need_more_data():
    for cut in range(len(CERTIFICATE)):
        buf = HandshakeBuffer()
        assert buf.feed(CERTIFICATE[:cut]) == []
        assert buf.pending == cut
        assert len(buf.feed(CERTIFICATE[cut:])) == 1


def test_handshake_buffer_rejects_oversized_length():
    buf = HandshakeBuffer(max_size=1000)
    with pytest.raises(DecodeError):
        buf.feed(b"\x0b\x01\x00\x00")


@pytest.mark.parametrize("msg", ALL, ids=["CH", "SH", "EE", "Cert", "CV", "Fin"])
def test_truncated_and_padded_bodies_raise_decode_error_only(msg):
    body = msg[4:]
    for cut in range(len(body)):
        try:
            parse_message(msg[0], body[:cut], tls13=True)
        except DecodeError:
            pass
    # a body with trailing garbage is invalid for every length-checked message
    rng = random.Random(8448)
    for _ in range(20):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        if msg is SERVER_FINISHED:
            continue  # Finished is just verify_data: any length parses
        with pytest.raises(DecodeError):
            parse_message(msg[0], body + junk, tls13=True)


def test_truncated_hello_bodies_are_never_accepted():
    for msg in (CLIENT_HELLO, SERVER_HELLO):
        body = msg[4:]
        full = parse_message(msg[0], body)
        no_ext = len(body) - 2 - sum(4 + len(e.data) for e in full.extensions)
        for cut in range(len(body)):
            if cut == no_ext:  # a hello may end before its (optional) extensions block
                assert parse_message(msg[0], body[:cut]).extensions == []
                continue
            with pytest.raises(DecodeError):
                parse_message(msg[0], body[:cut], tls13=True)


def test_random_bytes_never_raise_anything_but_decode_error():
    rng = random.Random(1)
    for _ in range(3000):
        t = rng.choice([1, 2, 4, 8, 11, 12, 13, 15, 16, 24, 99])
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        try:
            parse_message(t, body, tls13=rng.random() < 0.5)
        except DecodeError:
            pass


def test_grease_and_alerts():
    assert all(is_grease(v) for v in (0x0A0A, 0x1A1A, 0xFAFA)) and not is_grease(0x0A1A)
    assert cipher_name(0x2A2A) == "GREASE (0x2a2a)"
    (alert,) = parse_alert(b"\x02\x28")
    assert (alert.level_name, alert.description_name) == ("fatal", "handshake_failure")
    with pytest.raises(DecodeError):
        parse_alert(b"\x01")
