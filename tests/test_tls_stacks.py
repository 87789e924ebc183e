"""TLS on real stacks (curl, openssl s_client, Python ssl against nginx), checked against tshark.

Per frame, the TLS record content types and handshake message types we
decode agree with tshark's ``tls.record.content_type``/``tls.handshake.type``
(with the same key log, and without any); the decrypted application bytes
agree with tshark's ``follow,tls,raw``; version, cipher, SNI and ALPN agree
with tshark's fields; resumption and 0-RTT agree with what s_client printed.
"""

from __future__ import annotations

import pytest

from inspector.decoders.tls.constants import HANDSHAKE_NAMES, HRR_RANDOM
from inspector.decoders.tls.decoder import TlsDecoder
from inspector.events import (
    Note,
    TlsAlert,
    TlsApplicationData,
    TlsHandshake,
)
from inspector.keylog import KeyLog
from tests.support.capture import tshark_fields
from tests.support.tls_follow import (
    Collector,
    read_streams,
    run_decoder,
    tshark_follow_tls,
    tshark_tls_frames,
)
from tests.support.tls_scenarios import make_captures

CODES = {name: code for code, name in HANDSHAKE_NAMES.items()} | {"HelloRetryRequest": 2}
ALL = [
    "curl13_h2_big",
    "curl13_h1_chacha",
    "curl13_h2_aes128",
    "curl12_h2_gcm",
    "curl12_h1_chacha",
    "curl12_cbc_sha256",
    "curl12_rsa_cbc_sha1",
    "curl12_rsa_gcm384",
    "s12_cbc_mac_then_encrypt",
    "s13_resume_early",
    "s12_resume_session_id",
    "s12_resume_ticket",
    "s13_hrr",
    "s13_key_update",
    "s13_alert",
    "python_ssl",
    "s13_early_rejected",
]


@pytest.fixture(scope="session")
def captures(tmp_path_factory):
    return make_captures(tmp_path_factory.mktemp("tls_stacks"))


class Decoded:
    def __init__(self, cap, keylog: KeyLog | None):
        self.cap = cap
        self.conns = []
        for i, stream in enumerate(read_streams(str(cap.pcap))):
            col = Collector()
            records: list[tuple[int, int]] = []

            def make(ctx, col=col, records=records):
                dec = TlsDecoder(ctx, lambda c, alpn, first, d: col)
                dec.record_log = records
                return dec

            dec, events = run_decoder(stream, make, keylog, conn=i)
            self.conns.append((dec, events, col, records))

    def frames(self) -> dict[int, tuple[list[int], list[int]]]:
        out: dict[int, tuple[list[int], list[int]]] = {}
        for dec, events, _, records in self.conns:
            for frame, ctype in records:
                out.setdefault(frame, ([], []))[0].append(ctype)
            for ev in events:
                if isinstance(ev, TlsHandshake):
                    out.setdefault(ev.frame, ([], []))[1].append(CODES[ev.type])
        return out


_decoded: dict[tuple[str, bool], Decoded] = {}


def decoded(captures, name: str, keys: bool = True) -> Decoded:
    key = (name, keys)
    if key not in _decoded:
        cap = captures[name]
        _decoded[key] = Decoded(cap, KeyLog.from_file(str(cap.keylog)) if keys else None)
    return _decoded[key]


@pytest.mark.parametrize("name", ALL)
def test_record_and_handshake_types_agree_with_tshark(captures, name):
    d = decoded(captures, name)
    ours = d.frames()
    theirs = tshark_tls_frames(str(d.cap.pcap), str(d.cap.keylog))
    assert ours.keys() == theirs.keys()
    for frame in theirs:
        assert ours[frame][0] == theirs[frame][0], f"frame {frame}: content types"
        assert sorted(ours[frame][1]) == sorted(theirs[frame][1]), f"frame {frame}: handshake types"


@pytest.mark.parametrize("name", ALL)
def test_without_keys_types_agree_with_tshark(captures, name):
    d = decoded(captures, name, keys=False)
    ours = d.frames()
    theirs = tshark_tls_frames(str(d.cap.pcap), None)
    assert ours.keys() == theirs.keys()
    for frame in theirs:
        assert sorted(ours[frame][0]) == theirs[frame][0], f"frame {frame}: content types"
        assert sorted(ours[frame][1]) == sorted(theirs[frame][1]), f"frame {frame}: handshake types"
    for dec, events, col, _ in d.conns:
        assert not any(col.data), "nothing decrypts without keys"
        summary = dec.summary()["tls"]
        if summary["version"] is not None and name != "s13_alert":
            assert summary["decryption"] == "encrypted, no key" and summary["decrypted"] is False
        assert not [e for e in events if isinstance(e, Note) and "do not decrypt" in e.message]


@pytest.mark.parametrize("name", [n for n in ALL if n != "s13_alert"])
def test_decrypted_bytes_agree_with_tshark(captures, name):
    d = decoded(captures, name)
    assert d.conns
    for i, (dec, events, col, _) in enumerate(d.conns):
        c2s, s2c = tshark_follow_tls(str(d.cap.pcap), str(d.cap.keylog), i, dec.ctx.client[1])
        if name == "s13_early_rejected":
            # tshark shows the refused 0-RTT request too; the server never processed it, so we hold it back
            assert c2s.endswith(bytes(col.data[0])) and c2s.startswith(b"GET /early")
            assert bytes(col.data[0]).startswith(b"GET / HTTP/1.1")
        else:
            assert bytes(col.data[0]) == c2s
        assert bytes(col.data[1]) == s2c
        assert len(s2c) > 0
        summary = dec.summary()["tls"]
        assert summary["decrypted"] is True and summary["decryption"] == "decrypted"
        assert not [e for e in events if isinstance(e, Note) and e.severity != "note"]


@pytest.mark.parametrize("name", [n for n in ALL if n != "s13_alert"])
def test_hello_fields_agree_with_tshark(captures, name):
    d = decoded(captures, name)
    rows = tshark_fields(
        str(d.cap.pcap),
        [
            "tcp.stream",
            "tls.handshake.type",
            "tls.handshake.extensions_server_name",
            "tls.handshake.ciphersuite",
            "tls.handshake.extensions.supported_version",
            "tls.handshake.version",
            "tls.handshake.extensions_alpn_str",
            "tls.handshake.random",
        ],
        display_filter="tls.handshake.type == 2 or tls.handshake.type == 1 or tls.handshake.type == 8",
        options=[f"tls.keylog_file:{d.cap.keylog}"],
    )
    per_stream: dict[int, dict] = {}
    for stream, types, sni, suites, sv, hv, alpn, rnd in rows:
        info = per_stream.setdefault(int(stream), {"alpn": None})
        types = types.split(",")
        if "1" in types and "sni" not in info:
            info["sni"] = sni or None
            info["alpn_offered"] = alpn.split(",") if alpn else []
        if "2" in types and rnd.split(",")[0] != HRR_RANDOM.hex():
            info["cipher"] = int(suites.split(",")[0], 16)
            info["version"] = int((sv or hv).split(",")[-1], 16)
            if alpn:
                info["alpn"] = alpn
        if "8" in types and alpn:
            info["alpn"] = alpn
    for i, (dec, *_rest) in enumerate(d.conns):
        s = dec.summary()["tls"]
        t = per_stream[i]
        assert s["sni"] == t["sni"]
        assert s["alpn_offered"] == t["alpn_offered"]
        assert s["alpn"] == t["alpn"]
        assert dec.suite_id == t["cipher"] and dec.version == t["version"]
        assert dec.summary()["app"] == (t["alpn"] or "tls")


def captures_etm(captures, name) -> bool:
    """Whether tshark sees encrypt_then_mac (extension 22) in the ServerHello."""
    rows = tshark_fields(str(captures[name].pcap), ["tls.handshake.extension.type"], display_filter="tls.handshake.type == 2")
    return "22" in rows[0][0].split(",")


def _summaries(captures, name):
    return [dec.summary()["tls"] for dec, *_ in decoded(captures, name).conns]


def test_handshake_cost_full_handshakes(captures):
    for name in ("curl13_h2_big", "curl13_h1_chacha", "python_ssl"):
        (s,) = _summaries(captures, name)
        assert (s["version"], s["handshake_rtts"], s["resumed"], s["hrr"]) == ("1.3", 1, False, False)
        t = s["times_ms"]
        assert 0 < t["server_hello"] <= t["client_finished"] <= t["first_app_data"]
    for name in ("curl12_h2_gcm", "curl12_rsa_cbc_sha1"):
        (s,) = _summaries(captures, name)
        assert (s["version"], s["handshake_rtts"], s["resumed"]) == ("1.2", 2, False)
        t = s["times_ms"]
        assert 0 < t["server_hello"] <= t["client_finished"] <= t["server_finished"] <= t["first_app_data"]
    (s,) = _summaries(captures, "s12_cbc_mac_then_encrypt")
    assert s["cipher"] == "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384" and not captures_etm(captures, "s12_cbc_mac_then_encrypt")
    assert captures_etm(captures, "curl12_cbc_sha256")  # the other CBC capture is encrypt-then-MAC
    (s,) = _summaries(captures, "curl12_h1_chacha")
    assert s["cipher"] == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    (s,) = _summaries(captures, "curl13_h2_aes128")
    assert s["cipher"] == "TLS_AES_128_GCM_SHA256" and s["alpn"] == "h2"


def test_tls12_resumption_matches_s_client(captures):
    for name, kind in (("s12_resume_session_id", "session_id"), ("s12_resume_ticket", "ticket")):
        cap = captures[name]
        first, second = _summaries(captures, name)
        assert b"New, TLSv1.2" in cap.outputs[0] and b"Reused, TLSv1.2" in cap.outputs[1]
        assert (first["resumed"], first["handshake_rtts"]) == (False, 2)
        assert (second["resumed"], second["resumption"], second["handshake_rtts"]) == (True, kind, 1)
        assert second["certificate"] is None  # an abbreviated handshake sends no Certificate


def test_tls13_resumption_and_accepted_early_data(captures):
    cap = captures["s13_resume_early"]
    assert b"Early data was accepted" in cap.outputs[1] and b"Reused, TLSv1.3" in cap.outputs[1]
    first, second = _summaries(captures, "s13_resume_early")
    assert (first["resumed"], first["early_data"], first["handshake_rtts"]) == (False, None, 1)
    assert (second["resumed"], second["resumption"], second["early_data"], second["handshake_rtts"]) == (
        True,
        "psk",
        "accepted",
        0,
    )
    assert second["times_ms"]["first_app_data"] == 0.0  # sent with the ClientHello
    assert 0 < second["times_ms"]["server_hello"] <= second["times_ms"]["client_finished"]
    _, events, col, _ = decoded(captures, "s13_resume_early").conns[1]
    early = [e for e in events if isinstance(e, TlsApplicationData) and e.early]
    assert early and all(e.direction == "c2s" for e in early)
    assert bytes(col.data[0]).startswith(b"GET /early HTTP/1.1")
    assert [e.type for e in events if isinstance(e, TlsHandshake) and e.direction == "c2s"][-2:] == [
        "EndOfEarlyData",
        "Finished",
    ]


def test_tls13_rejected_early_data(captures):
    cap = captures["s13_early_rejected"]
    assert b"Early data was rejected" in cap.outputs[0]
    (s,) = _summaries(captures, "s13_early_rejected")
    assert (s["resumed"], s["early_data"], s["handshake_rtts"]) == (False, "rejected", 1)
    t = s["times_ms"]
    assert 0 < t["server_hello"] <= t["client_finished"] <= t["first_app_data"]  # the refused 0-RTT does not count
    _, events, _, _ = decoded(captures, "s13_early_rejected").conns[0]
    assert any(isinstance(e, Note) and "0-RTT data rejected" in e.message for e in events)


def test_hello_retry_request(captures):
    (s,) = _summaries(captures, "s13_hrr")
    assert (s["hrr"], s["handshake_rtts"], s["version"]) == (True, 2, "1.3")
    _, events, _, _ = decoded(captures, "s13_hrr").conns[0]
    hellos = [(e.type, e.direction) for e in events if e.type in ("ClientHello", "ServerHello", "HelloRetryRequest")]
    assert hellos == [("ClientHello", "c2s"), ("HelloRetryRequest", "s2c"), ("ClientHello", "c2s"), ("ServerHello", "s2c")]
    hrr = next(e for e in events if e.type == "HelloRetryRequest")
    assert hrr.random == HRR_RANDOM.hex() and hrr.key_share in ("x25519", "secp256r1")
    ch1 = next(e for e in events if e.type == "ClientHello")
    assert ch1.key_share == ["secp521r1"]


def test_key_update_both_directions(captures):
    dec, events, col, _ = decoded(captures, "s13_key_update").conns[0]
    kus = [(e.direction, e.info["update_requested"]) for e in events if e.type == "KeyUpdate"]
    assert kus == [("c2s", False), ("c2s", True), ("s2c", False)]
    assert bytes(col.data[0]).count(b"GET / HTTP/1.1") == 3
    assert bytes(col.data[1]).count(b"HTTP/1.1 200 OK") == 3


def test_fatal_alert_in_the_clear(captures):
    dec, events, col, _ = decoded(captures, "s13_alert").conns[0]
    alerts = [e for e in events if isinstance(e, TlsAlert)]
    assert [(a.direction, a.level, a.description, a.encrypted) for a in alerts] == [
        ("s2c", "fatal", "handshake_failure", False)
    ]
    rows = tshark_fields(str(captures["s13_alert"].pcap), ["tls.alert_message.level", "tls.alert_message.desc"], display_filter="tls.alert_message")
    assert rows == [["2", "40"]]
    s = dec.summary()["tls"]
    assert s["version"] is None and s["handshake_rtts"] is None and s["alerts"] == ["s2c fatal handshake_failure"]


def test_plaintext_spans_point_at_the_tcp_frames_that_completed_records(captures):
    d = decoded(captures, "curl13_h2_big")
    dec, events, col, _ = d.conns[0]
    records = {e.frame for e in events if isinstance(e, TlsApplicationData) and e.direction == "s2c"}
    spans = col.spans[1]
    assert sum(s.end - s.start for s in spans) == len(col.data[1])
    assert {s.frame for s in spans} <= records
    # a 16 KiB record spans several loopback segments: its arrival is its last segment's, not earlier
    assert all(s.arrival <= s.delivered for s in spans)
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
