"""The command line: help with examples for every verb, version, exit codes, and
the architecture rule that the library never imports the UI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inspector import __version__
from inspector.cli import build_parser
from tests.support.decode import cli

VERBS = sorted(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"netinspect {__version__}"


def test_help_lists_every_verb() -> None:
    r = cli("--help")
    assert r.returncode == 0
    for verb in VERBS:
        assert verb in r.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help_with_an_example(verb: str) -> None:
    r = cli(verb, "--help")
    assert r.returncode == 0
    assert "Example:" in r.stdout and f"netinspect {verb}" in r.stdout


def test_no_verb_is_a_usage_error() -> None:
    r = cli()
    assert r.returncode == 2 and "usage:" in r.stderr


def test_console_script_is_installed() -> None:
    r = subprocess.run(["netinspect", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and __version__ in r.stdout


def test_export_writes_to_a_file(http_pcap: str, tmp_path) -> None:
    out = tmp_path / "events.jsonl"
    r = cli("export", http_pcap, "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert {"frame", "ts", "conn", "layer", "type"} <= set(lines[0])
    segs = [e for e in lines if e["type"] == "segment"]
    assert segs[0]["flags"] == "S" and segs[1]["flags"] == "SA" and segs[2]["flags"] == "A"
    assert [e["frame"] for e in segs] == sorted(e["frame"] for e in segs)


def test_summary_text_lists_connections(http_pcap: str) -> None:
    r = cli("summary", http_pcap)
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert "3 connections" in lines[0] and "iRTT" in lines[1]
    rows = [line.split() for line in lines[2:] if line[:4].strip().isdigit()]
    assert [r[0] for r in rows] == ["0", "1", "2"] and all(r[1] == "http/1.1" for r in rows)
    # the requests curl made are listed under their connections
    assert sum(1 for line in lines if line.strip().startswith(("GET ", "POST "))) == 4


def test_library_never_imports_the_ui() -> None:
    """Import every inspector module in a fresh interpreter; no tui/textual may load."""
    code = (
        "import pkgutil, importlib, sys, inspector\n"
        "for m in pkgutil.walk_packages(inspector.__path__, 'inspector.'):\n"
        "    if m.name != 'inspector.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n == 'tui' or n.startswith(('tui.', 'textual')))\n"
        "print(bad)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
