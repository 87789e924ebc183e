"""HTTP/2 inside TLS 1.3 (ALPN h2): curl --parallel against nginx, decrypted with the key log curl wrote,
through the real pipeline; every HTTP/2 frame and header agrees with tshark decrypting the same capture."""

from __future__ import annotations

import os

import pytest

from inspector.events import Http2Frame, Malformed
from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support import tls_registry
from tests.support.capture import free_port
from tests.support.http_servers import capture_clean, curl, start_nginx
from tests.support.http_tshark import our_h2_frames, tshark_h2_frames

N = 40


@pytest.fixture(scope="module")
def h2tls(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("h2tls"))
    port = free_port()
    files = {f"f{i}.txt": (f"file {i}\n" * (10 + 50 * i)).encode() for i in range(N)}
    ng = start_nginx(d, free_port(), free_port(), files, tls_port=port)
    keylog = os.path.join(d, "keys.log")
    pcap = os.path.join(d, "h2tls.pcap")
    os.environ["SSLKEYLOGFILE"] = keylog
    try:
        args = ["--http2", "-k", "--parallel", "--parallel-max", "10"]
        for i in range(N):
            args += [f"https://localhost:{port}/f{i}.txt", "-o", os.devnull]
        capture_clean(pcap, f"tcp port {port}", lambda: curl(*args))
    finally:
        del os.environ["SSLKEYLOGFILE"]
        ng.stop()
    events = []
    pipe, _ = decode_file(pcap, keylog=KeyLog.from_file(keylog), on_event=events.append, registry=tls_registry)
    return {"pcap": pcap, "keylog": keylog, "events": events, "summary": summaries(pipe.connections),
            "files": files}


def test_requests_over_one_tls_connection(h2tls):
    s = [c for c in h2tls["summary"] if c.get("requests")]
    assert len(s) == 1 and s[0]["app"] == "h2" and s[0]["tls"]["alpn"] == "h2"
    got = {r["path"]: (r["status"], r["bytes"]) for r in s[0]["requests"]}
    assert got == {f"/{k}": (200, len(v)) for k, v in h2tls["files"].items()}
    assert s[0]["http2"]["hpack"]["c2s"]["savings_pct"] > 50  # repeated request headers
    assert not [e for e in h2tls["events"] if isinstance(e, Malformed)]


def test_frames_and_headers_agree_with_tshark(h2tls):
    theirs = tshark_h2_frames(h2tls["pcap"], options=[f"tls.keylog_file:{h2tls['keylog']}"])
    ours = our_h2_frames(e for e in h2tls["events"] if isinstance(e, Http2Frame))
    assert sum(len(v["frames"]) for v in theirs.values()) > 3 * N
    assert ours == theirs
