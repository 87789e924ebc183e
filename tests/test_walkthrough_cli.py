"""The walkthrough verb: listing, --text/--json, the UI hand-off, and the library's promises.

The promises checked here hold for every walkthrough: narratives type no
numbers (every number is a placeholder filled from the capture), every step
points at events that exist, and a viewer that decodes the capture itself
finds exactly the step's frames with ``Step.matches``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from inspector import walkthroughs
from inspector.keylog import KeyLog
from inspector.pipeline import decode_file
from inspector.walkthroughs.model import literal_text
from tests.test_walkthrough_oracle import SAMPLES, json_of, run_verb, steps, text_of
from tui import walkthrough_verb

ISSUE_ORDER = ["tcp-handshake", "tls12-vs-tls13", "tls13-resumption-0rtt", "http1", "http2-multiplex", "http2-lossy",
               "http3-lossy", "websocket", "push-feed", "grpc", "dns-then-connect"]

# Digits a narrative may type: protocol names and the names of other walkthroughs, nothing measured.
_NAMES = re.compile(r"TLS 1\.[0-3]|HTTP/1\.[01]|HTTP/[23]|\b[01]-RTT\b|\bh[23]\b|\bIPv[46]\b|"
                    + "|".join(re.escape(n) for n in ISSUE_ORDER))


def test_list_names_and_descriptions_one_per_line() -> None:
    rc, out, err = run_verb([])
    assert rc == 0 and not err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ISSUE_ORDER
    for line in lines:
        name, description = line.split(None, 1)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
        assert len(description) > 30 and "\n" not in description
        assert not re.search(r"\d", _NAMES.sub("", description)), description


def test_unknown_walkthrough_is_a_usage_error() -> None:
    rc, out, err = run_verb(["tcp-handshakes", "--text"])
    assert rc == 2 and not out and "tcp-handshakes" in err


def test_missing_samples_directory_is_a_usage_error(tmp_path) -> None:
    rc, out, err = run_verb(["tcp-handshake", "--text", "--samples", str(tmp_path)])
    assert rc == 2 and not out and "tcp-handshake.pcap" in err


def test_samples_directory_override(tmp_path) -> None:
    for suffix in (".pcap", ".json"):
        shutil.copy(SAMPLES / f"tcp-handshake{suffix}", tmp_path / f"tcp-handshake{suffix}")
    rc, out, _ = run_verb(["tcp-handshake", "--text", "--samples", str(tmp_path)])
    assert rc == 0 and str(tmp_path / "tcp-handshake.pcap") in out
    # the same capture gives the same narrative wherever it lives
    assert out.split("\n", 2)[2] == text_of("tcp-handshake").split("\n", 2)[2]


def test_without_text_the_ui_gets_it_or_the_text_is_printed() -> None:
    rc, out, err = run_verb(["tls12-vs-tls13"])
    assert rc == 0
    # Not a terminal here, so the narrative is printed either way; without the UI's hook it says why.
    assert out == text_of("tls12-vs-tls13")
    if walkthrough_verb._ui_runner() is None:
        assert "terminal UI" in err and "--text" in err
    else:
        assert not err


@pytest.mark.parametrize("name", ISSUE_ORDER)
def test_text_steps_match_the_json_steps(name: str) -> None:
    parsed = steps(text_of(name))
    data = json_of(name)
    assert data["name"] == name and len(parsed) == len(data["steps"]) >= 5
    for s, j in zip(parsed, data["steps"]):
        assert s["total"] == len(parsed) and s["title"] == j["title"]
        assert s["body"] == " ".join(j["text"].split())
        assert j["frames"], f"{name} step {j['index']} points at no event"
        assert re.search(r"\bframes? ", s["where"])
    # Every placeholder was filled: no braces left, no "None" where a number should be.
    assert "{" not in text_of(name) and "None" not in text_of(name)


@pytest.mark.parametrize("name", ISSUE_ORDER)
def test_narratives_type_no_numbers(name: str) -> None:
    wt = walkthroughs.load(name)
    for st in wt.steps:
        typed = _NAMES.sub("", literal_text(st.template) + " " + st.title)
        assert not re.search(r"\d", typed), f"{name} step {st.index} types a number: {typed!r}"


@pytest.mark.parametrize("name", ["tcp-handshake", "http2-lossy", "http3-lossy", "websocket", "grpc"])
def test_a_viewer_finds_the_step_events_in_its_own_decode(name: str) -> None:
    """Step.matches on events from a separate decode (as the UI has) selects exactly the step's frames."""
    wt = walkthroughs.load(name)
    for i, ref in enumerate(wt.captures):
        events: list = []
        keylog = KeyLog.from_file(str(ref.keylog)) if ref.keylog else KeyLog()
        decode_file(str(ref.path), keylog=keylog, on_event=events.append, segments=True)
        for st in wt.steps:
            if st.capture != i:
                continue
            found = sorted({ev.frame for ev in events if st.matches(ev)})
            assert found == list(st.frames), (name, st.index)
            assert st.conn is None or all(ev.conn == st.conn for ev in events if st.matches(ev))


def test_installed_cli_has_the_verb() -> None:
    """``netinspect walkthrough`` through the console entry point (needs the netinspect.verbs entry point)."""
    proc = subprocess.run([sys.executable, "-m", "inspector", "walkthrough"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()] == ISSUE_ORDER
