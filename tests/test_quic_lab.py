"""The lab's HTTP/3 captures (captures/samples, made by captures/lab/netlab.py): real delay, a known drop.

The lab puts a 20 ms one-way delay between aioquic's client and server and
drops the Nth server-to-client datagram (its JSON note says which); it
captures at the client (the drop never appears) and at the server (the drop
appears as sent).  Both views must name the same lost packet, the one
stream whose data it carried, and a round trip of about 40 ms.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.quic import QuicDecoder
from inspector.events import QuicLoss
from inspector.keylog import KeyLog
from tests.support.capture import tshark_fields
from tests.support.quic_captures import udp_datagrams

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"
LOSSY = SAMPLES / "http3-lossy.json"


def decode(pcap: Path, keys: Path, server_port: int) -> tuple[QuicDecoder, list]:
    dec = QuicDecoder(DecodeContext(conn=0, client=("10.99.0.1", 0), server=("10.99.0.2", server_port),
                                    keylog=KeyLog.from_file(str(keys))))
    events = []
    for frame, ts, (sport, dport), payload in udp_datagrams(str(pcap)):
        events += dec.datagram(0 if dport == server_port else 1, payload, frame, ts)
    events += dec.finish()
    return dec, events


@pytest.fixture(scope="module")
def note() -> dict:
    return json.loads(LOSSY.read_text())


def test_both_views_name_the_dropped_packet(note: dict) -> None:
    (drop,) = note["drops"]
    assert drop["dir"] == "s2c"
    (nth,) = drop["nth"]
    port = drop["port"]
    keys = SAMPLES / note["keylog"]
    server_pcap = SAMPLES / note["server_capture"]
    # the Nth server datagram, as the server sent it, by tshark's packet number
    rows = tshark_fields(str(server_pcap), ["quic.packet_number"], options=[f"tls.keylog_file:{keys}"],
                         display_filter=f"udp.srcport == {port}")
    dropped_pn = int(rows[nth - 1][0].split(",")[-1])

    client_dec, client_events = decode(SAMPLES / f"{note['name']}.pcap", keys, port)
    server_dec, server_events = decode(server_pcap, keys, port)
    (client_loss,) = [e for e in client_events if isinstance(e, QuicLoss)]
    (server_loss,) = [e for e in server_events if isinstance(e, QuicLoss)]
    assert client_loss.pn == server_loss.pn == dropped_pn
    assert (client_loss.detected, server_loss.detected) == ("missing", "unacknowledged")
    assert client_loss.streams == server_loss.streams and len(client_loss.streams) == 1
    (lossy_stream,) = client_loss.streams
    # at the client, only that stream ever had bytes waiting behind a hole
    for sid in range(0, 24, 4):
        waited = any(c.delivered_ts > c.arrival_ts for c in client_dec.stream_chunks(1, sid))
        assert waited == (sid == lossy_stream), sid
    # at the server the bytes were captured before the drop: from the receiver's view they arrive with the resend
    receiver = server_dec.stream_chunks(1, lossy_stream, receiver_view=True)
    assert any(c.delivered_ts > c.arrival_ts for c in receiver)
    assert not any(c.delivered_ts > c.arrival_ts for c in server_dec.stream_chunks(1, lossy_stream))
    for dec in (client_dec, server_dec):
        summary = dec.summary()
        assert [r["status"] for r in summary["requests"]] == [200] * 6
        # 2 x 20 ms one-way delay, plus the delay line's lateness and the endpoints' ACK delay
        assert note["rtt_ms"] <= summary["quic"]["rtt_ms"] <= note["rtt_ms"] + 3
