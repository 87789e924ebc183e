"""Our summary of a lab capture, as ``netinspect summary --json`` builds it (in process, cached)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from inspector.keylog import KeyLog
from inspector.output.summary import summaries
from inspector.pipeline import decode_file
from tests.support.analysis_tshark import SAMPLES, sample


@lru_cache(maxsize=None)
def summary(name: str) -> tuple[dict[str, Any], ...]:
    """The ``connections`` of ``summary --json`` for ``captures/samples/<name>.pcap`` (with its key log)."""
    keys = SAMPLES / f"{name.split('.')[0]}.keys"
    keylog = KeyLog.from_file(str(keys)) if keys.exists() else None
    pipe, _ = decode_file(sample(f"{name}.pcap"), keylog=keylog)
    return tuple(summaries(pipe.connections, pipe.registry))


def episodes(name: str, kind: str | None = None) -> list[dict[str, Any]]:
    """Every HOL episode of a capture (of one kind), with the connection id added."""
    out = []
    for conn in summary(name):
        for ep in conn.get("hol") or []:
            if kind is None or ep["kind"] == kind:
                out.append(dict(ep, conn=conn["id"]))
    return out


def victims(ep: dict[str, Any]) -> dict[str, float]:
    return {v["unit"]: v["blocked_ms"] for v in ep["victims"]}
