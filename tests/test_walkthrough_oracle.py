"""Shared helpers for the walkthrough tests: run the verb, split its text, ask tshark.

Expected numbers are always derived here from the capture by tshark (frame
times, flags, decoded fields), never copied from a walkthrough's output.
The tests in this file check the helpers themselves against the captures'
provenance notes, so a broken oracle cannot make the other tests pass.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import pytest

from tui.walkthrough_verb import register_walkthrough

SAMPLES = Path(__file__).resolve().parent.parent / "captures" / "samples"
CLIENT, SERVER = "10.99.0.1", "10.99.0.2"
OOO = "tcp.reassemble_out_of_order:TRUE"


# --------------------------------------------------------------------------- the verb


def run_verb(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run ``netinspect walkthrough ARGV`` through the verb's own registration hook, in process.

    The parser is built as ``inspector.cli`` builds it for entry-point verbs
    (a subparsers action and a ``verb(name, help, example)`` factory).
    """
    parser = argparse.ArgumentParser(prog="netinspect")
    sub = parser.add_subparsers(dest="verb")

    def verb(name: str, help_text: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text, epilog=f"Example:\n  {example}")

    register_walkthrough(sub, verb)
    args = parser.parse_args(["walkthrough", *argv])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = args.func(args)
    return rc, out.getvalue(), err.getvalue()


@lru_cache(maxsize=None)
def text_of(name: str) -> str:
    rc, out, err = run_verb([name, "--text"])
    assert rc == 0, err
    return out


@lru_cache(maxsize=None)
def json_of(name: str) -> dict:
    rc, out, err = run_verb([name, "--json"])
    assert rc == 0, err
    return json.loads(out)


_STEP = re.compile(r"^\[(\d+)/(\d+)\] (.*?)(?:  \[(.*)\])?$")


def steps(text: str) -> list[dict]:
    """The ``--text`` output split into steps: index, total, title, where (conn/frames), body (one line)."""
    out: list[dict] = []
    for line in text.splitlines():
        m = _STEP.match(line)
        if m:
            out.append({"index": int(m[1]), "total": int(m[2]), "title": m[3], "where": m[4] or "", "body": []})
        elif out and line.startswith("  "):
            out[-1]["body"].append(line.strip())
    for s in out:
        s["body"] = " ".join(s["body"])
    return out


def step(name: str, title_start: str) -> str:
    """The body of the step whose title starts with ``title_start``."""
    for s in steps(text_of(name)):
        if s["title"].startswith(title_start):
            return s["body"]
    raise AssertionError(f"{name}: no step titled {title_start!r}")


NUM = r"(-?\d+(?:\.\d+)?)"


def num(pattern: str, text: str) -> float:
    """The first number captured by ``pattern`` (use ``{n}`` where the number is) in ``text``."""
    m = re.search(pattern.replace("{n}", NUM), text)
    assert m, f"{pattern!r} not in: {text}"
    return float(m.group(1))


def nums(pattern: str, text: str) -> list[float]:
    return [float(x) for x in re.findall(pattern.replace("{n}", NUM), text)]


def close(measured: float, expected: float, tol: float = 0.11) -> bool:
    """Printed values are rounded to 0.1 ms (or so); allow that much."""
    return abs(measured - expected) <= tol


# --------------------------------------------------------------------------- tshark


def capture(name: str, server: bool = False) -> tuple[Path, Path | None]:
    pcap = SAMPLES / (f"{name}.server.pcap" if server else f"{name}.pcap")
    keys = SAMPLES / f"{name}.keys"
    return pcap, keys if keys.is_file() else None


def tshark(name: str, flds: list[str], dfilter: str = "frame", extra: Sequence[str] = ()) -> list[list[list[str]]]:
    """Rows per frame; every field a list of its occurrences (aggregated with '|')."""
    pcap, keys = capture(name)
    cmd = ["tshark", "-n", "-r", str(pcap), "-o", OOO, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=|", "-Y", dfilter, *extra]
    if keys:
        cmd += ["-o", f"tls.keylog_file:{keys}"]
    for f in flds:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=dict(os.environ, LC_ALL="C")).stdout
    return [[v.split("|") if v else [] for v in line.split("\t")] for line in out.splitlines()]


def one_each(name: str, flds: list[str], dfilter: str = "frame", extra: Sequence[str] = ()) -> list[list[str]]:
    """Rows with the first occurrence of each field ('' when absent)."""
    return [[v[0] if v else "" for v in row] for row in tshark(name, flds, dfilter, extra)]


@lru_cache(maxsize=None)
def frames(name: str) -> dict[int, tuple[float, str, int, int]]:
    """frame -> (time, source address, TCP or UDP stream index, TCP payload length) for every frame."""
    out = {}
    for f, t, src, ts, us, ln in one_each(name, ["frame.number", "frame.time_epoch", "ip.src", "tcp.stream", "udp.stream", "tcp.len"]):
        out[int(f)] = (float(t), src, int(ts or us or -1), int(ln or 0))
    return out


def t(name: str, frame: int) -> float:
    return frames(name)[frame][0]


def ms_between(name: str, a: int, b: int) -> float:
    return (t(name, b) - t(name, a)) * 1000.0


def initial_rtts(name: str) -> dict[int, float]:
    """tshark's initial RTT per TCP stream, in ms."""
    out: dict[int, float] = {}
    for s, r in one_each(name, ["tcp.stream", "tcp.analysis.initial_rtt"], "tcp.analysis.initial_rtt"):
        out.setdefault(int(s), float(r) * 1000.0)
    return out


def flights(name: str, frame: int, streams: set[int] | None = None) -> int:
    """Round trips the client waited before ``frame`` left: client runs of packets, minus one.

    Only frames of the given TCP/UDP stream indexes count (all when None).
    """
    runs: list[str] = []
    for f, (_, src, stream, _) in sorted(frames(name).items()):
        if f > frame:
            break
        if streams is not None and stream not in streams:
            continue
        if not runs or runs[-1] != src:
            runs.append(src)
    assert runs[0] == CLIENT
    return runs.count(CLIENT) - 1


@lru_cache(maxsize=None)
def summary(name: str) -> dict[int, dict]:
    """netinspect's own ``summary --json`` connections (only to know which analysis keys it offers)."""
    from inspector.keylog import KeyLog
    from inspector.output.summary import summaries
    from inspector.pipeline import decode_file

    pcap, keys = capture(name)
    pipe, _ = decode_file(str(pcap), keylog=KeyLog.from_file(str(keys)) if keys else KeyLog())
    return {c["id"]: c for c in summaries(pipe.connections, pipe.registry)}


def provenance(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


# --------------------------------------------------------------------------- the oracle's own checks


def test_flights_count_the_lab_path_round_trips() -> None:
    # tcp-handshake: SYN, SYN-ACK, then the client's ACK and request: one wait.
    req = int(one_each("tcp-handshake", ["frame.number"], "http.request")[0][0])
    assert flights("tcp-handshake", req) == 1
    # The delay line's one-way delay, doubled, is the iRTT tshark measures (within the lab's stated slack).
    rtt = initial_rtts("tcp-handshake")[0]
    assert 2 * provenance("tcp-handshake")["one_way_delay_ms"] <= rtt < 2 * provenance("tcp-handshake")["one_way_delay_ms"] + 2


def test_step_splitter_and_number_reader() -> None:
    text = "x: y\ncapture: c\n\n[1/2] First  [conn 0; frame 1]\n  a 40.5 ms\n  b\n\n[2/2] Second\n  2 RTT\n"
    parsed = steps(text)
    assert [(s["index"], s["title"], s["where"], s["body"]) for s in parsed] == [
        (1, "First", "conn 0; frame 1", "a 40.5 ms b"), (2, "Second", "", "2 RTT")]
    assert num(r"a {n} ms", parsed[0]["body"]) == 40.5
    with pytest.raises(AssertionError):
        num(r"c {n} ms", parsed[0]["body"])
