"""The fuzz harness (``python -m tests.fuzz``): a short deterministic run of every target,
the harness's own detection, and the inputs its long runs found, replayed.

The short run must end with zero findings *and* show that each target reached
its decoder (events of the decoder's own layer, and mutants that produced
malformed events), so a harness that feeds nothing cannot pass.  Seeds come
from the real captures under ``captures/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inspector.decoders.base import DecodeContext
from inspector.decoders.http1 import Http1Decoder
from inspector.flows.streamindex import StreamIndex
from tests.fuzz import records as R
from tests.fuzz.runner import execute, fuzz
from tests.fuzz.seeds import extract
from tests.fuzz.targets import TARGETS, Swallowed, Target, Watch

REGRESSIONS = Path(__file__).parent / "fuzz" / "regressions"
#: executions per target in the suite's run (all targets together stay well under a minute)
SHORT_RUN = 300


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_short_run_finds_nothing_and_reaches_the_decoder(name: str, tmp_path: Path) -> None:
    stats = fuzz(name, seed=0, max_execs=SHORT_RUN, findings_dir=tmp_path, log=lambda *_: None)
    assert [f.summary for f in stats.findings] == []
    assert stats.seeds > 0, "no seed was extracted from the captures"
    assert stats.execs == SHORT_RUN
    assert stats.mutator_errors == 0
    assert stats.layer_events > stats.execs, "the decoder produced (almost) no events of its own"
    assert stats.traced > 0
    if name != "sse":  # the SSE parser has no malformed input: any bytes are an event stream
        assert stats.malformed > 0, "no mutant reached an error path"
    assert stats.corpus > stats.seeds, "no mutant behaved differently from the seeds"


def test_seeds_cover_every_decoder_and_transport() -> None:
    seeds = extract()
    assert set(seeds) == set(TARGETS)
    formats = {s[0][1][:4] for s in seeds["reader"]}
    assert {b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a"} <= formats  # pcap and pcapng (editcap)
    assert any(s[0][1][:2] == b"\x1f\x8b" for s in seeds["reader"])  # gzip
    assert any(k == R.KEYLOG for s in seeds["tls"] for k, _ in s)  # decryption path has its keys
    assert any(k in (R.GAP_C2S, R.GAP_S2C) for s in seeds["http2"] for k, _ in s)  # real capture gaps


def test_quic_plaintext_mutants_are_sealed_again() -> None:
    """The QUIC target mutates frames inside packets that still open (not just ciphertext)."""
    import random

    target = TARGETS["quic"]
    seeds = extract()["quic"]
    target.prepare(seeds)
    rng = random.Random(3)
    protector = target._protector(seeds[0])
    assert protector is not None
    mutant = protector.mutate(rng, seeds[0], lambda r, b: b + b"\x01")  # append a PING frame
    assert mutant is not None and mutant != seeds[0]
    from inspector.decoders.quic.decoder import QuicDecoder
    from tests.fuzz.targets import _ctx, _keys

    dec = QuicDecoder(_ctx(_keys(seeds[0])))
    events = []
    for i, (k, d) in enumerate(mutant):
        if k in (R.C2S, R.S2C):
            events += dec.datagram(k, d, i + 1, 1.0 + i / 1000)
    packets = [e for e in events if e.layer == "quic" and e.type in ("initial", "handshake", "0rtt", "1rtt")]
    assert packets and all(p.pn is not None for p in packets)  # every packet, the changed one too, opened
    assert any("PING" in p.frames for p in packets)


def test_watch_reports_an_exception_a_caller_would_swallow() -> None:
    """A decoder entry point raising anything but DecodeError is remembered even when caught."""
    watch = Watch()
    dec = watch(Http1Decoder(DecodeContext(conn=0, client=("a", 1), server=("b", 80))))
    with pytest.raises(IndexError):
        dec.feed(2, b"GET / HTTP/1.1\r\n\r\n", 0, StreamIndex())  # no direction 2: a real IndexError
    with pytest.raises(Swallowed, match="Http1Decoder.feed raised IndexError"):
        watch.check()


class _Explodes(Target):
    """A target of this test: fails on inputs containing b"boom" (tests the runner, not a decoder)."""

    name = "test-explodes"

    def execute(self, recs, out, watch):
        if any(b"boom" in d for _, d in recs):
            raise KeyError("boom")
        out.layer_events += 1


def test_runner_saves_a_finding_with_its_repro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TARGETS, "test-explodes", _Explodes())
    monkeypatch.setattr("tests.fuzz.runner.extract", lambda: {"test-explodes": [[(R.C2S, b"bo" + b"o" * 3 + b"m")]]})
    lines: list[str] = []
    stats = fuzz("test-explodes", max_execs=2000, findings_dir=tmp_path, log=lines.append)
    assert stats.findings and stats.findings[0].kind == "crash"
    saved = stats.findings[0].path
    assert saved is not None and b"boom" in saved.read_bytes()
    assert f"--target test-explodes --repro {saved}" in lines[0]
    outcome, finding, _, _ = execute(TARGETS["test-explodes"], R.load(saved.read_bytes()))
    assert outcome is None and finding is not None and "KeyError" in finding.summary


# ---------------------------------------------------------------- inputs found by the long runs


def _replay(name: str) -> tuple:
    path = REGRESSIONS / name
    target = TARGETS[name.split("-")[0] if not name.startswith("dns-") else "-".join(name.split("-")[:2])]
    if target.name == "quic":
        target.prepare(extract()["quic"])
    return execute(target, R.load(path.read_bytes()))


@pytest.mark.parametrize("name", sorted(p.name for p in REGRESSIONS.glob("*.nifz")))
def test_saved_findings_now_decode(name: str) -> None:
    outcome, finding, cpu, _ = _replay(name)
    assert finding is None, finding.detail if finding else ""
    assert outcome is not None and cpu < 1.0


def test_second_blocked_qpack_field_section_is_malformed_not_a_crash() -> None:
    """pylsqpack raises ValueError for a second field section on a stream whose first one is blocked."""
    from inspector.decoders.http3 import Http3Decoder
    from inspector.flows.streamindex import Span

    recs = R.load((REGRESSIONS / "http3-second-blocked-field-section.nifz").read_bytes())
    dec = Http3Decoder(DecodeContext(conn=0, client=("a", 1), server=("b", 443)))
    reasons = []
    for i, (_kind, data) in enumerate(recs):
        d, sid, fin, payload = data[0], int.from_bytes(data[1:9], "big"), data[9], data[10:]
        index = StreamIndex()
        index.add(Span(0, len(payload), i + 1, 1.0, 1.0, i + 1))
        events = dec.stream_data(d, sid, payload, 0, bool(fin), index, i + 1, 1.0)
        reasons += [e.reason for e in events if e.type == "malformed"]
    assert any("still waits for QPACK encoder instructions" in r for r in reasons)


def test_gzip_capture_damaged_in_its_first_block_is_a_clear_error(tmp_path: Path) -> None:
    (_kind, blob), = R.load((REGRESSIONS / "reader-gzip-damaged-first-block.nifz").read_bytes())
    path = tmp_path / "damaged.pcap.gz"
    path.write_bytes(blob)
    for verb in ("summary", "export"):
        run = subprocess.run([sys.executable, "-m", "inspector", verb, str(path)], capture_output=True, text=True)
        assert run.returncode == 2, run.stderr
        assert "damaged compressed data" in run.stderr and "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
