"""Handshake message parsers against the RFC 8448 §3 "Simple 1-RTT Handshake" messages.

Every hex constant below is copied from RFC 8448 section 3 (the plaintext
handshake messages the client and server send).
"""

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


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 8448 §3, {client} send handshake record: ClientHello (196 octets)
CLIENT_HELLO = h("""
01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99 12 ec 18 a2 ef 62 83
02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b 00 09 00 00 06 73 65 72 76 65 72 ff 01
00 01 00 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 23 00 00 00 33 00
26 00 24 00 1d 00 20 99 38 1d e5 60 e4 bd 43 d2 3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69
1e 52 9a af 2c 00 2b 00 03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06 04 01
05 01 06 01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c 00 02 40 01""")

# RFC 8448 §3, {server} construct a ServerHello (90 octets)
SERVER_HELLO = h("""
02 00 00 56 03 03 a6 af 06 a4 12 18 60 dc 5e 6e 60 24 9c d3 4c 95 93 0c 8a c5 cb 14 34 da c1 55 77 2e
d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00 1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72 e1
56 d6 cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04""")

# RFC 8448 §3, {server} construct an EncryptedExtensions (40 octets)
ENCRYPTED_EXTENSIONS = h("""
08 00 00 24 00 22 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c 00 02
40 01 00 00 00 00""")

# RFC 8448 §3, {server} construct a Certificate (445 octets)
CERTIFICATE = h("""
0b 00 01 b9 00 00 01 b5 00 01 b0 30 82 01 ac 30 82 01 15 a0 03 02 01 02 02 01 02 30 0d 06 09 2a 86 48
86 f7 0d 01 01 0b 05 00 30 0e 31 0c 30 0a 06 03 55 04 03 13 03 72 73 61 30 1e 17 0d 31 36 30 37 33 30
30 31 32 33 35 39 5a 17 0d 32 36 30 37 33 30 30 31 32 33 35 39 5a 30 0e 31 0c 30 0a 06 03 55 04 03 13
03 72 73 61 30 81 9f 30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4
bb 49 8f 82 79 30 3d 98 08 36 39 9b 36 c6 98 8c 0c 68 de 55 e1 bd b8 26 d3 90 1a 24 61 ea fd 2d e4 9a
91 d0 15 ab bc 9a 95 13 7a ce 6c 1a f1 9e aa 6a f9 8c 7c ed 43 12 09 98 e1 87 a8 0e e0 cc b0 52 4b 1b
01 8c 3e 0b 63 26 4d 44 9a 6d 38 e2 2a 5f da 43 08 46 74 80 30 53 0e f0 46 1c 8c a9 d9 ef bf ae 8e a6
d1 d0 3e 2b d1 93 ef f0 ab 9a 80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02 03 01 00 01 a3 1a 30 18
30 09 06 03 55 1d 13 04 02 30 00 30 0b 06 03 55 1d 0f 04 04 03 02 05 a0 30 0d 06 09 2a 86 48 86 f7 0d
01 01 0b 05 00 03 81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a 72 67 17 06 18 a5 4c 5f 8a 7b 33 7d
2d f7 a5 94 36 54 17 f2 ea e8 f8 a5 8c 8f 81 72 f9 31 9c f3 6b 7f d6 c5 5b 80 f2 1a 03 01 51 56 72 60
96 fd 33 5e 5e 67 f2 db f1 02 70 2e 60 8c ca e6 be c1 fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c 54 e9 b9 eb
2b d5 20 3b 1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40 2d cc 0c c8 f8 96 12 29 ac 91 87 b4 2b 4d
e1 00 00""")

# RFC 8448 §3, {server} construct a CertificateVerify (136 octets)
CERTIFICATE_VERIFY = h("""
0f 00 00 84 08 04 00 80 5a 74 7c 5d 88 fa 9b d2 e5 5a b0 85 a6 10 15 b7 21 1f 82 4c d4 84 14 5a b3 ff
52 f1 fd a8 47 7b 0b 7a bc 90 db 78 e2 d3 3a 5c 14 1a 07 86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85 c4
f3 94 ca b6 d3 0b be 8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71 45 9e 46 44 5c 9e a5 8c 18 1e 81
8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15 2a 3d a5 04 3e 06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3""")

# RFC 8448 §3, {server} calculate finished "tls13 finished" -> Finished (36 octets)
SERVER_FINISHED = h("""
14 00 00 20 9b 9b 14 1d 90 63 37 fb d2 cb dc e7 1d f4 de da 4a b4 2c 30 95 72 cb 7f ff ee 54 54 b7 8f
07 18""")

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
