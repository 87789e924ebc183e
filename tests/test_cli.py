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


def test_a_long_requests_list_is_written_in_parts_as_the_same_bytes() -> None:
    """write_json_record encodes a record with thousands of requests a batch at a time: its bytes must be
    json.dumps's, whatever the requests hold (quotes, non-ASCII, a value equal to a key) and wherever
    the list sits in the record."""
    import io

    from inspector.cli import _REQUEST_BATCH, write_json_record

    requests = [{"stream": 2 * i + 1, "method": "GET", "path": f'/p/{i}?q="x"&\u00e9\U0001f600',
                 "status": 200 if i % 7 else None, "request_ts": 1.5 + i / 3, "bytes": i,
                 "note": "requests"} for i in range(2 * _REQUEST_BATCH + 17)]
    for size in (0, 1, _REQUEST_BATCH, _REQUEST_BATCH + 1, len(requests)):
        record = {"id": 0, "app": "h2", "requests": requests[:size], "tls": {"sni": "requests"}, "end": 2.25}
        out = io.StringIO()
        write_json_record(record, out)
        assert out.getvalue() == json.dumps(record)
        assert record["requests"] == requests[:size]  # the caller's record is left as it was
