"""The committed TLS samples (captures/tls, provenance in its README) through the CLI, checked against tshark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.decoders.tls.constants import HANDSHAKE_NAMES
from tests.support.capture import tshark_fields

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "tls"
ISSUE_KEYS = {"version", "sni", "alpn_offered", "alpn", "cipher", "resumed", "hrr", "early_data", "decrypted", "handshake_rtts"}
CODES = {name: code for code, name in HANDSHAKE_NAMES.items()} | {"HelloRetryRequest": 2}


def cli(*args: str, env: dict | None = None) -> str:
    return subprocess.run(
        [sys.executable, "-m", "inspector", *args], capture_output=True, text=True, check=True, env=env
    ).stdout


def summary(name: str, keylog: bool = True, env: dict | None = None) -> list[dict]:
    args = ["summary", str(SAMPLES / f"{name}.pcap"), "--json"]
    if keylog:
        args += ["--keylog", str(SAMPLES / f"{name}.keys")]
    return json.loads(cli(*args, env=env))["connections"]


def test_summary_json_tls_object():
    (conn,) = summary("curl-h2-tls13")
    assert ISSUE_KEYS <= conn["tls"].keys()
    t = conn["tls"]
    assert (t["version"], t["sni"], t["alpn_offered"], t["alpn"], t["cipher"]) == (
        "1.3", "localhost", ["h2", "http/1.1"], "h2", "TLS_AES_128_GCM_SHA256")
    assert (t["resumed"], t["hrr"], t["early_data"], t["decrypted"], t["handshake_rtts"]) == (False, False, None, True, 1)
    assert conn["app"] == "h2" and conn["requests"][0]["status"] == 200


def test_summary_0rtt_and_tls12():
    full, resumed = summary("s_client-0rtt")
    assert (full["tls"]["handshake_rtts"], resumed["tls"]["handshake_rtts"]) == (1, 0)
    assert (resumed["tls"]["resumed"], resumed["tls"]["early_data"]) == (True, "accepted")
    assert resumed["app"] == "http/1.1" and resumed["requests"][0]["path"] == "/early"
    (conn,) = summary("curl-h1-tls12-chacha")
    assert conn["tls"]["version"] == "1.2" and conn["tls"]["handshake_rtts"] == 2
    assert conn["tls"]["cipher"] == "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" and conn["app"] == "http/1.1"


def test_keylog_from_environment_and_no_key():
    env = dict(os.environ, SSLKEYLOGFILE=str(SAMPLES / "curl-h2-tls13.keys"))
    (conn,) = summary("curl-h2-tls13", keylog=False, env=env)
    assert conn["tls"]["decrypted"] is True
    env.pop("SSLKEYLOGFILE")
    (conn,) = summary("curl-h2-tls13", keylog=False, env=env)
    assert conn["tls"]["decrypted"] is False and conn["tls"]["decryption"] == "encrypted, no key"
    assert conn["app"] == "tls"


@pytest.mark.parametrize("name", ["curl-h2-tls13", "curl-h1-tls12-chacha", "s_client-0rtt"])
def test_export_handshake_types_agree_with_tshark(name):
    pcap, keys = SAMPLES / f"{name}.pcap", SAMPLES / f"{name}.keys"
    lines = [json.loads(line) for line in cli("export", str(pcap), "--keylog", str(keys)).splitlines()]
    ours: dict[int, list[int]] = {}
    for e in lines:
        if e["layer"] == "tls" and e["type"] in CODES:
            ours.setdefault(e["frame"], []).append(CODES[e["type"]])
    rows = tshark_fields(str(pcap), ["frame.number", "tls.handshake.type"], display_filter="tls.handshake",
                         options=[f"tls.keylog_file:{keys}"])
    theirs = {int(f): sorted(int(t) for t in types.split(",")) for f, types in rows}
    assert {f: sorted(t) for f, t in ours.items()} == theirs
    hello = next(e for e in lines if e["type"] == "ClientHello")
    assert {"sni", "alpn", "version", "cipher"} <= hello.keys() and "raw" not in hello
