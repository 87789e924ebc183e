"""``netinspect export``: every event as one JSON object per line (JSON Lines)."""

from __future__ import annotations

import json
from typing import TextIO

from ..events import Event, json_default


class JsonLinesWriter:
    """An event sink that writes each event as it arrives (memory stays flat)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._dumps = json.JSONEncoder(default=json_default, separators=(",", ":"), ensure_ascii=False).encode
        self.count = 0

    def __call__(self, event: Event) -> None:
        self._out.write(self._dumps(event.to_dict()))
        self._out.write("\n")
        self.count += 1
