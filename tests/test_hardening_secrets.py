"""Key material is never printed, logged or exported; captures embed secrets only when asked.

Every capture that has a key log is decoded (decrypted) and everything the
user can see is searched for the secrets of that key log, as the hex the key
log holds (either case): ``summary`` (text and JSON), ``export``, stderr,
the UI's detail trees of every event and every connection record, and the
output for a key log with broken lines and one with wrong secrets (whose
records fail to open, so malformed events and notes talk about keys).
``live -w`` without a key log must not write a Decryption Secrets Block.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.capture import free_port

ROOT = Path(__file__).resolve().parent.parent
KEYED = sorted(p for d in ("captures/samples", "captures/tls", "captures/quic")
               for p in (ROOT / d).glob("*.pcap") if p.with_suffix(".keys").exists())
#: one per kind of decryption: TLS 1.2 (CBC/GCM and ChaCha20), TLS 1.3 with h2, 0-RTT, QUIC
CLI_CASES = [ROOT / p for p in ("captures/samples/tls12-vs-tls13.pcap", "captures/samples/http2-lossy.pcap",
                                "captures/samples/tls13-resumption-0rtt.pcap", "captures/samples/http3-multiplex.pcap",
                                "captures/tls/curl-h1-tls12-chacha.pcap")]


def secrets_of(keys: Path) -> list[str]:
    """The secret values of a key log, lowercase hex (the random is public: it is in the ClientHello)."""
    out = []
    for line in keys.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            out.append(parts[2].lower())
    assert out
    return out


def assert_no_secret(text: str, secrets: list[str], where: str) -> None:
    low = text.lower()
    for s in secrets:
        assert s not in low, f"a secret value appears in {where}"
        assert s[:32] not in low, f"half a secret value appears in {where}"


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True,
                          env=env or {k: v for k, v in os.environ.items() if k != "SSLKEYLOGFILE"})


@pytest.mark.parametrize("pcap", CLI_CASES, ids=lambda p: p.stem)
def test_decrypted_outputs_never_show_secrets(pcap: Path) -> None:
    keys = pcap.with_suffix(".keys")
    secrets = secrets_of(keys)
    for args in (("summary",), ("summary", "--json"), ("export",)):
        run = cli(*args, str(pcap), "--keylog", str(keys))
        assert run.returncode == 0, run.stderr
        assert_no_secret(run.stdout + run.stderr, secrets, f"{' '.join(args)} of {pcap.name}")
    # it did decrypt (so the search looked at decrypted output)
    decoded = [json.loads(line) for line in run.stdout.splitlines()]
    assert any(e["layer"] in ("http", "http2", "http3", "grpc", "websocket") for e in decoded)


@pytest.mark.parametrize("pcap", KEYED, ids=lambda p: p.stem)
def test_events_and_ui_detail_trees_never_show_secrets(pcap: Path) -> None:
    from tui.describe import dict_tree, event_tree

    secrets = secrets_of(pcap.with_suffix(".keys"))
    events: list = []
    pipe, _ = decode_file(str(pcap), keylog=KeyLog.from_file(str(pcap.with_suffix(".keys"))),
                          on_event=events.append, segments=True)

    def flat(node) -> str:
        label, kids = node
        return str(label) + "\n" + "".join(flat(k) for k in kids)

    text = "".join(flat(event_tree(e, pipe.first_ts)) for e in events)
    text += "".join(json.dumps(e.to_dict(), default=str) for e in events)  # export, in process
    text += "".join(flat(dict_tree(f"connection {s['id']}", s)) for s in summaries(pipe.connections, pipe.registry))
    assert len(events) > 20
    assert_no_secret(text, secrets, f"the UI detail of {pcap.name}")


def test_broken_and_wrong_key_logs_are_not_echoed(tmp_path: Path) -> None:
    pcap = ROOT / "captures/samples/http2-multiplex.pcap"
    good = (ROOT / "captures/samples/http2-multiplex.keys").read_text().splitlines()
    wrong: list[str] = []
    for line in good:
        label, random, secret = line.split()
        flipped = "".join("0123456789abcdef"[(int(c, 16) + 1) % 16] for c in secret.lower())
        wrong.append(f"{label} {random} {flipped}")
    broken = [
        f"{good[0]} trailing-field",  # four fields
        good[1].replace(" ", "  ").replace(good[1].split()[2], good[1].split()[2][:-1] + "z"),  # bad hex
        "CLIENT_TRAFFIC_SECRET_9 " + " ".join(good[2].split()[1:]),  # unknown label
        good[3].split()[2],  # a secret alone on a line
    ]
    keys = tmp_path / "keys.log"
    keys.write_text("\n".join(wrong + broken) + "\n")
    secrets = [line.split()[2].lower() for line in good + wrong]
    for args in (("summary",), ("summary", "--json"), ("export",)):
        run = cli(*args, str(pcap), "--keylog", str(keys))
        assert run.returncode == 0, run.stderr
        assert_no_secret(run.stdout + run.stderr, secrets, " ".join(args))
    events = [json.loads(line) for line in cli("export", str(pcap), "--keylog", str(keys)).stdout.splitlines()]
    # the wrong secrets were used and failed: the output talks about keys without showing them
    about_keys = [e for e in events if e["type"] in ("malformed", "note")
                  and re.search(r"key|secret|decrypt", e.get("reason") or e.get("message") or "", re.I)]
    assert about_keys
    log = KeyLog.from_file(str(keys))
    assert log.bad_lines == len(broken)
    assert all(s not in repr(log).lower() for s in secrets)


def test_unreadable_key_log_error_names_the_file_only(tmp_path: Path) -> None:
    pcap = ROOT / "captures/samples/http2-multiplex.pcap"
    run = cli("summary", str(pcap), "--keylog", str(tmp_path))  # a directory
    assert run.returncode == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def _block_types(path: Path) -> list[int]:
    data = path.read_bytes()
    types, pos = [], 0
    while pos + 12 <= len(data):
        btype, total = struct.unpack_from("<II", data, pos)
        types.append(btype)
        if total < 12:
            break
        pos += total
    return types


@pytest.mark.parametrize("environment_keylog", [False, True])
def test_live_write_without_a_key_log_embeds_no_secrets(tmp_path: Path, environment_keylog: bool) -> None:
    """``live -w`` without ``--keylog``: packets, and no Decryption Secrets Block, even when
    ``$SSLKEYLOGFILE`` names a key log (it is read, but embedding needs ``--keylog``)."""
    port = free_port()
    out = tmp_path / "out.pcapng"
    env = {k: v for k, v in os.environ.items() if k != "SSLKEYLOGFILE"}
    if environment_keylog:
        keys = tmp_path / "env.keys"
        keys.write_text(f"CLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n")
        env["SSLKEYLOGFILE"] = str(keys)
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "live", "-i", "lo", "-f", f"tcp port {port}",
                             "--no-ui", "--duration", "3", "-w", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import socket
    import time

    time.sleep(1.2)
    srv = socket.create_server(("127.0.0.1", port))
    c = socket.create_connection(("127.0.0.1", port))
    s, _ = srv.accept()
    c.sendall(b"hello")
    s.recv(10)
    c.close(), s.close(), srv.close()
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    types = _block_types(out)
    assert types[:2] == [0x0A0D0D0A, 1] and types.count(6) >= 3  # SHB, IDB, the connection's packets
    assert 0x0000000A not in types
    assert "0 secrets embedded" in stderr
    assert ("embedded only with --keylog" in stderr) == environment_keylog
