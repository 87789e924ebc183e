"""TLS end to end through the real pipeline (reader, flows, TCP reassembly, decoders).

Captures come from curl against nginx; one is made lossy with an nftables
rule so the TLS records reach the decoder through retransmissions and
out-of-order reassembly.  HTTP/2 frame types inside TLS agree with tshark's
``http2.type`` (same key log), and secrets injected into a pcapng with
``editcap --inject-secrets`` decrypt without any ``--keylog``.
"""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from inspector.decoders.registry import Registry
from inspector.decoders.tls import TlsDecoder, looks_like_tls
from inspector.events import Note, StreamGap, TlsApplicationData
from inspector.keylog import KeyLog
from inspector.output.summary import connection_summary
from inspector.pipeline import decode_file
from tests.support.capture import TCPDUMP, free_port, loopback_capture, tshark_fields
from tests.support.netns import routed_path
from tests.support.tcp_captures import nft_forward_drop_rules
from tests.support.tls_follow import tshark_follow_tls
from tests.support.tls_stack import curl, nginx_tls

REASM = "tcp.reassemble_out_of_order:TRUE"


@pytest.fixture(scope="module")
def caps(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls_pipeline")
    port = free_port()
    (d / "nginx").mkdir()
    out = {}
    with nginx_tls(d / "nginx", port):
        for name, args, path in (
            ("h2", ["--http2"], "/big.bin"),
            ("h1_12", ["--http1.1", "--tls-max", "1.2"], "/"),
        ):
            keys = d / f"{name}.keys"
            with loopback_capture(str(d / f"{name}.pcap"), f"tcp port {port}"):
                curl(f"https://localhost:{port}{path}", keys, args)
            out[name] = (d / f"{name}.pcap", keys)
    out["lossy"] = lossy(d)
    return out


def lossy(d):
    """curl -> router -> nginx in three namespaces; the router drops 1 in 20 server data segments.

    The capture on the router's client side sees server data after the drop:
    holes, then the retransmissions that fill them, as a receiver does.
    """
    keys = d / "lossy.keys"
    port = free_port()
    (d / "nginx_lossy").mkdir()
    with routed_path("tls") as net:
        wrap = ["ip", "netns", "exec", net.server_ns]
        with nginx_tls(d / "nginx_lossy", port, host=net.server_ip, wrap=wrap):
            rules = nft_forward_drop_rules("netinspect_tls", port, percent_s2c=5, percent_c2s=0)
            subprocess.run(net.in_ns(net.router_ns, "nft", "-f", "-"), input=rules, text=True, check=True)
            with loopback_capture(str(d / "lossy.pcap"), f"tcp port {port}", interface=net.router_client_if,
                                  tcpdump=net.in_ns(net.router_ns, TCPDUMP)):
                body = curl(f"https://{net.server_ip}:{port}/big.bin", keys, ["--http2"], timeout=60,
                            wrap=["ip", "netns", "exec", net.client_ns])
    assert len(body) == 200_000
    return d / "lossy.pcap", keys


def run(pcap, keylog, registry=None):
    """Decode with the project's registry (``None``) unless a test passes its own."""
    events = []
    pipe, _ = decode_file(str(pcap), keylog=keylog, on_event=events.append, registry=registry)
    return pipe, events


class SpanRecorder:
    """Wraps the inner decoder and records the plaintext spans it was fed (before it releases them)."""

    spans: list = []

    def __init__(self, inner):
        self.inner = inner

    def feed(self, direction, data, offset, index):
        if direction == 1:
            SpanRecorder.spans += index.spans(offset, offset + len(data))
        return self.inner.feed(direction, data, offset, index)

    def __getattr__(self, name):
        return getattr(self.inner, name)


class RecordingRegistry(Registry):
    """The project's registry, with the TLS decoder's inner decoder wrapped in a SpanRecorder."""

    def choose_stream(self, ctx, direction, first):
        if looks_like_tls(first):
            return TlsDecoder(ctx, lambda *a: SpanRecorder(self.inner_stream(*a)))
        return super().choose_stream(ctx, direction, first)


def http2_types_by_frame(events):
    out: dict[int, list[int]] = {}
    codes = {"DATA": 0, "HEADERS": 1, "PRIORITY": 2, "RST_STREAM": 3, "SETTINGS": 4, "PUSH_PROMISE": 5, "PING": 6,
             "GOAWAY": 7, "WINDOW_UPDATE": 8, "CONTINUATION": 9}
    for e in events:
        if e.layer == "http2" and e.type in codes:
            out.setdefault(e.frame, []).append(codes[e.type])
    return out


@pytest.mark.parametrize("name", ["h2", "lossy"])
def test_http2_inside_tls_agrees_with_tshark(caps, name):
    pcap, keys = caps[name]
    pipe, events = run(pcap, KeyLog.from_file(str(keys)))
    rows = tshark_fields(str(pcap), ["frame.number", "http2.type"], display_filter="http2",
                         options=[f"tls.keylog_file:{keys}", REASM])
    theirs = {int(f): sorted(int(t) for t in types.split(",")) for f, types in rows}
    ours = {f: sorted(t) for f, t in http2_types_by_frame(events).items()}
    assert ours == theirs
    (conn,) = pipe.connections
    s = connection_summary(conn)
    assert s["app"] == "h2" and s["tls"]["alpn"] == "h2" and s["tls"]["decrypted"] is True
    assert s["tls"]["version"] == "1.3" and s["tls"]["handshake_rtts"] == 1
    assert [r["path"] for r in s["requests"]] == ["/big.bin"] and s["requests"][0]["status"] == 200


def test_lossy_capture_decrypts_like_tshark_and_shows_waiting(caps):
    pcap, keys = caps["lossy"]
    SpanRecorder.spans = []
    pipe, events = run(pcap, KeyLog.from_file(str(keys)), RecordingRegistry())
    (conn,) = pipe.connections
    s = connection_summary(conn)
    assert s["app"] == "h2" and s["requests"][0]["status"] == 200
    assert s["tcp"]["retransmissions"] > 0, "the nftables rule dropped nothing"
    assert not [e for e in events if e.type == "malformed"]
    assert not [e for e in events if isinstance(e, StreamGap)]
    decoder = conn.decoder
    c2s, s2c = tshark_follow_tls(str(pcap), str(keys), 0, decoder.ctx.client[1], options=[REASM])
    plain = decoder.sides[1].plain_index
    assert plain.end == len(s2c) and decoder.sides[0].plain_offset == len(c2s)
    inner = decoder._inner
    assert bytes(c2s).startswith(b"PRI * HTTP/2.0") and inner is not None
    # Some records became readable only when a retransmission filled a hole: their
    # completing frame is one tshark flags as a retransmission.  (Whether a whole
    # record also waited behind the hole depends on how many segments arrived
    # before the fast retransmit, so that is not asserted.)
    spans = SpanRecorder.spans
    assert sum(sp.end - sp.start for sp in spans) == len(s2c)
    assert all(sp.delivered >= sp.arrival for sp in spans)
    filled = {int(r[0]) for r in tshark_fields(str(pcap), ["frame.number"], display_filter=(
        f"tcp.srcport == {decoder.ctx.server[1]} && (tcp.analysis.retransmission || tcp.analysis.out_of_order)"))}
    assert filled and {sp.frame for sp in spans} & filled
    records = [e for e in events if isinstance(e, TlsApplicationData) and e.direction == "s2c"]
    assert sum(e.plaintext_len for e in records) == len(s2c)


def test_tls12_http1_summary_and_events(caps):
    pcap, keys = caps["h1_12"]
    pipe, events = run(pcap, KeyLog.from_file(str(keys)))
    (conn,) = pipe.connections
    s = connection_summary(conn)
    assert s["app"] == "http/1.1" and s["tls"]["version"] == "1.2" and s["tls"]["handshake_rtts"] == 2
    assert s["requests"][0]["status"] == 200 and s["requests"][0]["path"] == "/"
    types = Counter(e.type for e in events if e.layer == "tls")
    assert types["ClientHello"] == 1 and types["ServerHelloDone"] == 1 and types["Finished"] == 2


def test_no_key_says_so_and_still_shows_the_handshake(caps):
    pcap, _ = caps["h2"]
    pipe, events = run(pcap, KeyLog())
    (conn,) = pipe.connections
    s = connection_summary(conn)
    assert s["app"] == "tls" and s["tls"]["decryption"] == "encrypted, no key" and s["tls"]["decrypted"] is False
    assert s["tls"]["sni"] == "localhost" and s["tls"]["alpn_offered"] == ["h2", "http/1.1"]
    assert s["tls"]["alpn"] is None  # TLS 1.3 sends it encrypted
    assert "requests" not in s
    sizes = [e.length for e in events if isinstance(e, TlsApplicationData)]
    assert sizes and all(n > 0 for n in sizes)


def test_secrets_injected_in_pcapng(caps, tmp_path):
    pcap, keys = caps["h2"]
    out = tmp_path / "with_secrets.pcapng"
    subprocess.run(["editcap", "--inject-secrets", f"tls,{keys}", str(pcap), str(out)], check=True)
    pipe, events = run(out, None)
    (conn,) = pipe.connections
    s = connection_summary(conn)
    assert s["tls"]["decrypted"] is True and s["app"] == "h2"
    assert not [e for e in events if isinstance(e, Note) and e.severity != "note"]
