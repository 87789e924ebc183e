"""Summary mode may stop reassembling a connection once its decoder is idle
(TLS without keys past the first application data); the summary it gives must
be the one a full decode gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspector.flows.connection import IDLE
from inspector.output.summary import summaries
from inspector.pipeline import decode_file

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"


@pytest.mark.parametrize("name", ["http2-lossy", "tls12-vs-tls13", "tls13-resumption-0rtt", "dns-then-connect"])
def test_idle_summary_equals_full_summary(name: str) -> None:
    path = str(SAMPLES / f"{name}.pcap")
    fast, _ = decode_file(path)  # no key log, no event consumer: summary mode
    full, _ = decode_file(path, on_event=lambda e: None, segments=True)
    assert any(c.decoder_state == IDLE for c in fast.connections if c.transport == "tcp")
    assert summaries(fast.connections, fast.registry) == summaries(full.connections, full.registry)
