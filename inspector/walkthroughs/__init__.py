"""Annotated walkthroughs: lab captures explained step by step, with numbers measured on them.

Each walkthrough is a module here with ``NAME``, ``TITLE``, ``DESCRIPTION``,
``CAPTURES`` (sample names under ``captures/samples/``; the first is the
main one) and ``script(decoded) -> (facts, steps)``.  :func:`load` decodes
the captures, runs the script and returns a :class:`Walkthrough`; its
``text()`` is what ``netinspect walkthrough NAME --text`` prints, and its
steps (``conn``, ``frames``, ``matches(event)``) are what a viewer selects
and highlights.  See ``README.md`` in this directory for the API a viewer
uses.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

from .model import CaptureRef, Pick, Step, StepSpec, Walkthrough, build

__all__ = ["CaptureRef", "Pick", "Step", "StepSpec", "Walkthrough", "NAMES", "catalog", "load", "samples_dir"]

#: module per walkthrough, in the order they are listed (and best read)
_MODULES = (
    "tcp_handshake",
    "tls12_vs_tls13",
    "tls13_resumption_0rtt",
    "http1",
    "http2_multiplex",
    "http2_lossy",
    "http3_lossy",
    "websocket",
    "push_feed",
    "grpc",
    "dns_then_connect",
)


def _module(mod: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{mod}")


NAMES: tuple[str, ...] = tuple(m.replace("_", "-") for m in _MODULES)


def catalog() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every walkthrough, in reading order."""
    return [(m.NAME, m.DESCRIPTION) for m in map(_module, _MODULES)]


def samples_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where the lab captures are: ``override``, else ``$NETINSPECT_SAMPLES``, else the source tree's."""
    if override:
        return Path(override)
    env = os.environ.get("NETINSPECT_SAMPLES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "captures" / "samples"


def capture_refs(names: tuple[str, ...], samples: Path) -> list[CaptureRef]:
    """The pcap (and key log, when there is one) of each sample name."""
    refs = []
    for name in names:
        pcap = samples / f"{name}.pcap"
        if not pcap.is_file():
            raise FileNotFoundError(f"sample capture {pcap} not found (set NETINSPECT_SAMPLES or --samples)")
        keys = samples / f"{name}.keys"
        refs.append(CaptureRef(name=name, path=pcap, keylog=keys if keys.is_file() else None))
    return refs


def load(name: str, samples: str | os.PathLike[str] | None = None) -> Walkthrough:
    """Decode the walkthrough's captures and build it (``KeyError`` for an unknown name)."""
    from .decoded import Decoded

    if name not in NAMES:
        raise KeyError(name)
    mod = _module(name.replace("-", "_"))
    refs = capture_refs(mod.CAPTURES, samples_dir(samples))
    tapped = set(getattr(mod, "TAPPED", ()))
    decoded = [Decoded(ref, tap=ref.name in tapped) for ref in refs]
    facts, specs = mod.script(decoded)
    return build(mod.NAME, mod.TITLE, mod.DESCRIPTION, refs, [d.events for d in decoded],
                 [d.frame_count for d in decoded], facts, specs)
