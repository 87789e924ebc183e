"""TlsDecoder on the RFC 8448 §3 byte streams and on damaged input.

The RFC trace is a complete TLS 1.3 exchange with published secrets, so the
decoder's whole path (records, handshake, key changes, plaintext spans) is
checked against bytes and secrets nobody here produced.  Damaged input
(wrong, partial and malformed key logs; truncation; a record failing
authentication; bogus headers; TCP gaps; garbage) must give clear notes and
never an exception.  Real-stack streams come from curl against nginx.
"""

from __future__ import annotations

import random

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.tls import TlsDecoder, looks_like_tls
from inspector.events import Malformed, Note, TlsAlert, TlsApplicationData, TlsHandshake
from inspector.flows.streamindex import Span, StreamIndex
from inspector.keylog import KeyLog
from tests.support import tls_rfc8448 as r
from tests.support.tls_follow import Collector, read_streams, run_decoder, tshark_follow_tls
from tests.support.tls_scenarios import make_captures

C2S_1 = r.CLIENT_HELLO_RECORD
S2C = r.SERVER_HELLO_RECORD + r.SERVER_HS_RECORD
C2S_2 = r.CLIENT_FINISHED_RECORD + r.CLIENT_APP_RECORD
CR = r.CLIENT_RANDOM.hex()


def rfc_keylog(*labels: str) -> KeyLog:
    secrets = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET": r.CLIENT_HS_TRAFFIC,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET": r.SERVER_HS_TRAFFIC,
        "CLIENT_TRAFFIC_SECRET_0": r.CLIENT_AP_TRAFFIC,
        "SERVER_TRAFFIC_SECRET_0": r.SERVER_AP_TRAFFIC,
    }
    log = KeyLog()
    log.add_text("\n".join(f"{k} {CR} {v.hex()}" for k, v in secrets.items() if not labels or k in labels))
    return log


class Feeder:
    """Feeds a decoder stream pieces, one frame per piece, keeping a StreamIndex per direction."""

    def __init__(self, decoder: TlsDecoder) -> None:
        self.decoder = decoder
        self.index = (StreamIndex(), StreamIndex())
        self.offset = [0, 0]
        self.frame = 0
        self.events: list = []

    def feed(self, direction: int, data: bytes) -> None:
        self.frame += 1
        off = self.offset[direction]
        self.index[direction].add(Span(off, off + len(data), self.frame, float(self.frame), float(self.frame), self.frame))
        self.offset[direction] += len(data)
        self.events += self.decoder.feed(direction, data, off, self.index[direction])

    def gap(self, direction: int, length: int) -> None:
        off = self.offset[direction]
        self.offset[direction] += length
        self.events += self.decoder.gap(direction, off, length, self.index[direction])


def rfc_decoder(keylog: KeyLog | None, inner=None):
    ctx = DecodeContext(conn=7, client=("192.0.2.1", 50000), server=("192.0.2.2", 443), keylog=keylog)
    col = inner if inner is not None else Collector()
    return TlsDecoder(ctx, lambda c, alpn, first, d: col), col


def run_rfc(keylog: KeyLog | None, pieces=None):
    dec, col = rfc_decoder(keylog)
    f = Feeder(dec)
    for d, data in pieces or [(0, C2S_1), (1, S2C), (0, C2S_2)]:
        f.feed(d, data)
    f.events += dec.finish()
    return dec, col, f.events


def shape(events):
    return [(e.type, getattr(e, "direction", None), e.frame) for e in events]


def test_rfc8448_trace_through_the_decoder():
    dec, col, events = run_rfc(rfc_keylog())
    assert [(e.type, e.direction) for e in events] == [
        ("ClientHello", "c2s"),
        ("ServerHello", "s2c"),
        ("EncryptedExtensions", "s2c"),
        ("Certificate", "s2c"),
        ("CertificateVerify", "s2c"),
        ("Finished", "s2c"),
        ("Finished", "c2s"),
        ("ApplicationData", "c2s"),
    ]
    assert all(e.encrypted for e in events[2:7])
    assert events[-1].plaintext_len == 50 and events[-1].length == 0x43
    assert bytes(col.data[0]) == r.APP_PAYLOAD and not col.data[1]
    (span,) = col.spans[0]
    assert (span.start, span.end, span.frame) == (0, 50, 3)
    s = dec.summary()
    assert s["collected"] == [50, 0]  # the inner decoder's summary passes through
    t = s["tls"]
    assert (t["version"], t["cipher"], t["sni"], t["decrypted"], t["decryption"]) == (
        "1.3",
        "TLS_AES_128_GCM_SHA256",
        "server",
        True,
        "decrypted",
    )
    assert (t["handshake_rtts"], t["resumed"], t["hrr"], t["early_data"]) == (1, False, False, None)
    assert t["certificate"]["subject"] == "CN=rsa"
    assert s["app"] == "tls"  # no ALPN and the inner decoder named no application


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_rfc8448_split_in_small_pieces(step):
    whole = shape(run_rfc(rfc_keylog())[2])
    pieces = []
    for d, data in [(0, C2S_1), (1, S2C), (0, C2S_2)]:
        pieces += [(d, data[i : i + step]) for i in range(0, len(data), step)]
    dec, col, events = run_rfc(rfc_keylog(), pieces)
    assert [(t, d) for t, d, _ in shape(events)] == [(t, d) for t, d, _ in whole]
    assert bytes(col.data[0]) == r.APP_PAYLOAD


def test_rfc8448_split_at_every_offset_of_each_flight():
    whole = [(t, d) for t, d, _ in shape(run_rfc(rfc_keylog())[2])]
    for which, data in ((0, C2S_1), (1, S2C), (2, C2S_2)):
        for cut in range(1, len(data)):
            flights = [(0, C2S_1), (1, S2C), (0, C2S_2)]
            d = flights[which][0]
            flights[which : which + 1] = [(d, data[:cut]), (d, data[cut:])]
            dec, col, events = run_rfc(rfc_keylog(), flights)
            assert [(t, dd) for t, dd, _ in shape(events)] == whole, f"flight {which} cut at {cut}"
            assert bytes(col.data[0]) == r.APP_PAYLOAD


def test_without_key_log_the_handshake_still_shows():
    dec, col, events = run_rfc(None)
    assert [(e.type, e.direction) for e in events] == [
        ("ClientHello", "c2s"),
        ("ServerHello", "s2c"),
        ("ApplicationData", "s2c"),
        ("ApplicationData", "c2s"),
        ("ApplicationData", "c2s"),
    ]
    assert [e.length for e in events[2:]] == [0x2A2, 0x35, 0x43] and all(e.plaintext_len is None for e in events[2:])
    t = dec.summary()["tls"]
    assert t["decryption"] == "encrypted, no key" and not t["decrypted"] and t["sni"] == "server"
    assert not any(isinstance(e, Note) for e in events)


def test_key_log_for_another_connection():
    log = KeyLog()
    log.add_text(f"SERVER_HANDSHAKE_TRAFFIC_SECRET {'ab' * 32} {r.SERVER_HS_TRAFFIC.hex()}")
    dec, col, events = run_rfc(log)
    t = dec.summary()["tls"]
    assert t["decryption"].startswith("encrypted, no key") and "no secrets for this client random" in t["decryption"]


def test_wrong_secrets_are_reported_once():
    log = KeyLog()
    # secrets for the right client random, but swapped between the directions
    log.add_text(
        f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR} {r.SERVER_HS_TRAFFIC.hex()}\n"
        f"SERVER_HANDSHAKE_TRAFFIC_SECRET {CR} {r.CLIENT_HS_TRAFFIC.hex()}\n"
        f"CLIENT_TRAFFIC_SECRET_0 {CR} {r.SERVER_AP_TRAFFIC.hex()}\n"
        f"SERVER_TRAFFIC_SECRET_0 {CR} {r.CLIENT_AP_TRAFFIC.hex()}\n"
    )
    dec, col, events = run_rfc(log)
    notes = [e for e in events if isinstance(e, Note)]
    assert len(notes) == 1 and "do not decrypt" in notes[0].message and notes[0].severity == "warning"
    assert notes[0].frame == 2  # reported at the first record that failed
    t = dec.summary()["tls"]
    assert t["decryption"] == "key does not decrypt" and not t["decrypted"]
    assert [e.type for e in events if isinstance(e, TlsApplicationData)] == ["ApplicationData"] * 3


def test_partial_key_log_decrypts_the_handshake_only():
    dec, col, events = run_rfc(rfc_keylog("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET"))
    types = [e.type for e in events if not isinstance(e, Note)]
    assert types == [
        "ClientHello",
        "ServerHello",
        "EncryptedExtensions",
        "Certificate",
        "CertificateVerify",
        "Finished",
        "Finished",
        "ApplicationData",
    ]
    notes = [e.message for e in events if isinstance(e, Note)]
    assert any("lacks the c2s application traffic secret" in n for n in notes)
    assert events[-1].plaintext_len is None if isinstance(events[-1], TlsApplicationData) else True
    t = dec.summary()["tls"]
    assert t["decryption"] == "partial" and t["decrypted"] is True and not col.data[0]


def test_malformed_key_log_lines_are_skipped():
    good = rfc_keylog()
    text = "\n".join(
        [
            "# comment",
            "CLIENT_RANDOM zz 00",
            f"CLIENT_HANDSHAKE_TRAFFIC_SECRET {CR[:-2]} {r.CLIENT_HS_TRAFFIC.hex()}",  # 31-byte random
            f"SERVER_TRAFFIC_SECRET_0 {CR} {r.SERVER_AP_TRAFFIC.hex()[:-1]}",  # odd-length hex
            "UNKNOWN_LABEL " + CR + " 00",
            "\x00\xff garbage",
            "CLIENT_TRAFFIC_SECRET_0 " + CR,  # missing field
        ]
    )
    log = KeyLog()
    log.add_text(text)
    assert log.bad_lines == 6 and len(log) == 0
    log.add_text("\n".join(f"{lab} {CR} {good.get(r.CLIENT_RANDOM, lab).hex()}" for lab in (
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")))
    dec, col, events = run_rfc(log)
    assert bytes(col.data[0]) == r.APP_PAYLOAD


def test_truncated_handshakes_give_notes_not_errors():
    # only the ClientHello
    dec, col, events = run_rfc(rfc_keylog(), [(0, C2S_1)])
    assert [e.type for e in events] == ["ClientHello", "note"]
    assert "no ServerHello" in events[-1].message
    assert dec.summary()["tls"]["handshake_rtts"] is None
    # cut inside the server's flight, at every offset
    for cut in range(0, len(S2C), 37):
        dec, col, events = run_rfc(rfc_keylog(), [(0, C2S_1), (1, S2C[:cut])])
        assert not any(isinstance(e, Malformed) for e in events)
        if cut % len(r.SERVER_HELLO_RECORD) and cut != len(r.SERVER_HELLO_RECORD):
            assert any(isinstance(e, Note) and "ended inside a TLS record" in e.message for e in events)


def test_record_failing_authentication():
    bad = bytearray(C2S_2)
    bad[len(r.CLIENT_FINISHED_RECORD) + 20] ^= 0x40
    dec, col, events = run_rfc(rfc_keylog(), [(0, C2S_1), (1, S2C), (0, bytes(bad))])
    app = [e for e in events if isinstance(e, TlsApplicationData)]
    assert len(app) == 1 and app[0].plaintext_len is None
    notes = [e for e in events if isinstance(e, Note)]
    assert len(notes) == 1 and "do not decrypt" in notes[0].message
    assert not col.data[0]


def test_bogus_record_header_stops_that_direction_only():
    dec, col, events = run_rfc(rfc_keylog(), [(0, C2S_1 + b"\x63\x03\x03\x00\x10" + bytes(16)), (1, S2C)])
    mal = [e for e in events if isinstance(e, Malformed)]
    assert len(mal) == 1 and "content type 99" in mal[0].reason and mal[0].direction == "c2s"
    assert any(isinstance(e, Note) and "stopped decoding TLS c2s" in e.message for e in events)
    assert [e.type for e in events if isinstance(e, TlsHandshake) and e.direction == "s2c"][-1] == "Finished"
    # an oversized length is just as fatal for the direction
    dec, col, events = run_rfc(rfc_keylog(), [(0, C2S_1 + b"\x17\x03\x03\xff\xff")])
    assert any(isinstance(e, Malformed) and "exceeds" in e.reason for e in events)


def test_garbage_never_raises():
    rng = random.Random(3)
    for _ in range(300):
        pieces = [(0, C2S_1), (1, S2C), (0, C2S_2)]
        d = rng.randrange(3)
        data = bytearray(pieces[d][1])
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.5:
            data += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        pieces[d] = (pieces[d][0], bytes(data))
        run_rfc(rfc_keylog(), pieces)  # must not raise


def test_inner_decoder_failure_is_contained():
    class Broken(Collector):
        def feed(self, direction, data, offset, index):
            raise ValueError("boom")

    dec, col = rfc_decoder(rfc_keylog(), Broken())
    f = Feeder(dec)
    for d, data in [(0, C2S_1), (1, S2C), (0, C2S_2)]:
        f.feed(d, data)
    mal = [e for e in f.events if isinstance(e, Malformed)]
    assert len(mal) == 1 and "Broken: ValueError: boom" in mal[0].reason
    assert dec.summary()["tls"]["decrypted"] is True


def test_looks_like_tls():
    assert looks_like_tls(C2S_1[:3]) and looks_like_tls(r.CLIENT_APP_RECORD[:5])
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n") and not looks_like_tls(b"\x17\x03\x03")
    assert not looks_like_tls(b"PRI * HTTP/2.0") and not looks_like_tls(b"\x16\x03\x05")


# --------------------------------------------------------------------------- real streams


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    caps = make_captures(tmp_path_factory.mktemp("tls_decoder"), ["curl13_h2_big", "curl12_h2_gcm"])
    out = {}
    for name in ("curl13_h2_big", "curl12_h2_gcm"):
        cap = caps[name]
        (stream,) = read_streams(str(cap.pcap))
        c2s, s2c = tshark_follow_tls(str(cap.pcap), str(cap.keylog), 0, stream.client[1])
        out[name] = (stream, KeyLog.from_file(str(cap.keylog)), s2c)
    return out


def records_of(stream, direction):
    """(offset, length) of each record of one direction (5-byte headers walked)."""
    data = stream.data(direction)
    out, pos = [], 0
    while pos + 5 <= len(data):
        n = int.from_bytes(data[pos + 3 : pos + 5], "big")
        out.append((pos, 5 + n))
        pos += 5 + n
    return out


@pytest.mark.parametrize("name", ["curl13_h2_big", "curl12_h2_gcm"])
def test_corrupted_record_is_reported_and_later_records_still_decrypt(real, name):
    stream, keylog, s2c = real[name]
    recs = records_of(stream, 1)
    target_off, target_len = recs[len(recs) // 2]  # an application record in the middle of the body

    def corrupt(d, data, _state={"pos": [0, 0]}):
        start = _state["pos"][d]
        _state["pos"][d] += len(data)
        if d == 1 and start <= target_off + 10 < start + len(data):
            data = bytearray(data)
            data[target_off + 10 - start] ^= 0xFF
            data = bytes(data)
        return [data]

    col = Collector()
    dec, events = run_decoder(stream, lambda ctx: TlsDecoder(ctx, lambda *a: col), keylog, split=corrupt)
    notes = [e for e in events if isinstance(e, Note)]
    assert len(notes) == 1 and "do not decrypt" in notes[0].message
    lost = [e for e in events if isinstance(e, TlsApplicationData) and e.direction == "s2c" and e.plaintext_len is None]
    assert len(lost) == 1 and lost[0].length == target_len - 5
    # everything else decrypted: tshark's bytes with exactly one record's plaintext missing
    got = bytes(col.data[1])
    assert len(s2c) - len(got) == target_len - 5 - (16 + (1 if name.startswith("curl13") else 8))
    assert s2c.startswith(got[:1000]) and s2c.endswith(got[-1000:])
    assert not any(isinstance(e, TlsAlert) and e.level is None for e in events)


@pytest.mark.parametrize("name", ["curl13_h2_big", "curl12_h2_gcm"])
def test_tcp_gap_resynchronises_on_the_next_record(real, name):
    stream, keylog, s2c = real[name]
    recs = records_of(stream, 1)
    # lose the bytes from the middle of one record to the middle of the next-but-one
    (a_off, a_len), _, (c_off, c_len) = recs[len(recs) // 2 : len(recs) // 2 + 3]
    lose_from, lose_to = a_off + a_len // 2, c_off + c_len // 2
    col = Collector()
    ctx = DecodeContext(conn=0, client=stream.client, server=stream.server, keylog=keylog)
    dec = TlsDecoder(ctx, lambda *a: col)
    f = Feeder(dec)
    gapped = False
    for d, off, chunk, frame, ts in stream.chunks:  # capture order; s2c bytes in [lose_from, lose_to) are lost
        if d == 0:
            f.feed(0, chunk)
            continue
        end = off + len(chunk)
        if off < lose_from:
            f.feed(1, chunk[: min(end, lose_from) - off])
        if end > lose_from and not gapped:
            f.gap(1, lose_to - lose_from)
            gapped = True
        if end > lose_to:
            rest = chunk[max(lose_to, off) - off :]
            for i in range(0, len(rest), 5000):  # resynchronising across piece boundaries
                f.feed(1, rest[i : i + 5000])
    f.events += dec.finish()
    assert any(isinstance(e, Note) and "missing from the capture" in e.message for e in f.events)
    assert not any(isinstance(e, Malformed) for e in f.events)
    assert len(col.gaps) == 1 and col.gaps[0][0] == 1
    got = bytes(col.data[1])
    # the records after the lost ones decrypt again: the stream's tail is intact
    tail_records = sum(1 for off, n in recs if off > lose_to)
    assert tail_records >= 2
    tail = sum(n - 5 - (17 if name.startswith("curl13") else 24) for off, n in recs if off > lose_to)
    assert got.endswith(s2c[-tail:]) and len(got) >= tail


def test_secrets_arriving_after_the_server_flight_open_later_records():
    # live capture: the key log grows while packets are decoded
    log = KeyLog()
    dec, col = rfc_decoder(log)
    f = Feeder(dec)
    f.feed(0, C2S_1)
    f.feed(1, S2C)
    assert [e.type for e in f.events][-1] == "ApplicationData"  # the flight stayed opaque
    log.add_text("\n".join(
        f"{lab} {CR} {sec.hex()}"
        for lab, sec in (("CLIENT_HANDSHAKE_TRAFFIC_SECRET", r.CLIENT_HS_TRAFFIC), ("CLIENT_TRAFFIC_SECRET_0", r.CLIENT_AP_TRAFFIC))
    ))
    f.feed(0, C2S_2)
    assert [e.type for e in f.events if e.direction == "c2s"][-2:] == ["Finished", "ApplicationData"]
    assert bytes(col.data[0]) == r.APP_PAYLOAD


def test_capture_starting_mid_connection():
    dec, col, events = run_rfc(rfc_keylog(), [(1, r.SERVER_HS_RECORD), (0, r.CLIENT_APP_RECORD)])
    assert [e.type for e in events] == ["ApplicationData", "ApplicationData"]
    assert dec.summary()["tls"]["decryption"] == "encrypted, no key (the handshake is not in the capture)"
