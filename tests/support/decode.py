"""Run our own pipeline over a capture the way the CLI does, for tests."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from inspector.events import Event
from inspector.pipeline import Pipeline, decode_file


def collect(path: str, **kw: Any) -> tuple[Pipeline, list[Event]]:
    """Decode ``path`` with segment events on; returns the pipeline and every event."""
    events: list[Event] = []
    pipe, _reader = decode_file(path, on_event=events.append, segments=True, **kw)
    return pipe, events


def cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``netinspect`` command line in a subprocess."""
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True, check=check)


def export_lines(path: str, *extra: str) -> list[dict[str, Any]]:
    out = cli("export", path, *extra, check=True).stdout
    return [json.loads(line) for line in out.splitlines()]
