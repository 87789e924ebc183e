"""`netinspect view` in a real terminal (tmux): keys sent, the pane read as a user sees it."""

from __future__ import annotations

import sys

from tests.support.capture import tshark_fields
from tests.support.tui_app import sample
from tests.support.tui_tmux import TmuxSession


def test_view_in_a_real_terminal():
    pcap, keys = sample("http2-multiplex")
    opts = [f"tls.keylog_file:{keys}"]
    streams = [s for r in tshark_fields(pcap, ["http2.streamid"], display_filter="http2", options=opts)
               for s in r[0].split(",")]
    request_streams = sorted({int(s) for s in streams if int(s) % 2})
    client_port = tshark_fields(pcap, ["tcp.srcport"], display_filter="tcp.flags.syn == 1 && tcp.flags.ack == 0")[0][0]
    with TmuxSession([sys.executable, "-m", "inspector", "view", pcap, "--keylog", keys]) as term:
        screen = term.wait_for("Connections (1)")
        assert "TCP › TLS 1.3 › h2" in screen and "lab.test" in screen and f":{client_port}" in screen
        assert "49 frames" in screen  # the provenance note's frame count
        term.keys("Enter")
        screen = term.wait_for(f"h2 s{request_streams[-1]}")
        for s in request_streams:  # a timeline lane per request stream
            assert f"h2 s{s}│" in screen
        assert "Timeline" in screen and "Annotations" in screen and "Events (" in screen
        # the / filter on the connection's events
        term.keys("/")
        term.wait_for('tls.sni contains "example"')  # the filter line is open (its placeholder shows)
        term.keys("http2.stream == 5", literal=True)
        term.keys("Enter")
        n = sum(1 for s in streams if s == "5")
        screen = term.wait_for(f"Events ({n} of")
        assert "filter: http2.stream == 5" in screen and "HEADERS" in screen
        # ? help, Esc closes it
        term.keys("?", literal=True)
        screen = term.wait_for("netinspect keys")
        assert "Filter language" in screen or "Everywhere" in screen
        term.keys("Escape")
        # d: the sequence diagram, Esc back, Esc back to the list, q quits
        term.keys("d")
        screen = term.wait_for("sequence diagram")
        assert "client 10.99.0.1" in screen and "server 10.99.0.2:443" in screen and "▶│" in screen
        term.keys("Escape")
        term.wait_for("Timeline")
        term.keys("Escape")
        term.wait_for("Connections (1)")
        term.keys("q")
        term.wait_for("[exited 0]")
