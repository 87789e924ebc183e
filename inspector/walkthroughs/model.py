"""What a walkthrough is once built: steps that point at events, with their narrative.

A walkthrough module computes *facts* (numbers measured on the decoded
capture) and returns :class:`StepSpec` objects: a title, a narrative
*template* whose ``{placeholders}`` are filled from the facts, and the
:class:`Pick` predicates that say which events the step is about.  The
engine (:func:`build`) formats the templates and resolves the picks into a
:class:`Walkthrough` whose :class:`Step` objects carry the connection, the
frames and the predicates a viewer needs to select and highlight them.

Templates never hold a measured number: every number in a narrative is a
placeholder, filled when the walkthrough runs.
"""

from __future__ import annotations

import string
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import Event


@dataclass(frozen=True, slots=True)
class Pick:
    """A predicate over events: every given attribute must match.

    ``type`` may be a string or a tuple of strings; ``frames`` limits the
    match to those frame numbers; ``where`` is an extra test on the event.
    A viewer decoding the same capture can call :meth:`matches` on its own
    event objects: only attribute values are compared, never identity.
    """

    conn: int | None = None
    layer: str | None = None
    type: str | tuple[str, ...] | None = None
    direction: str | None = None
    stream: int | None = None
    frames: tuple[int, ...] | None = None
    where: Callable[[Event], bool] | None = None

    def matches(self, ev: Event) -> bool:
        if self.conn is not None and ev.conn != self.conn:
            return False
        if self.layer is not None and ev.layer != self.layer:
            return False
        if self.type is not None:
            if isinstance(self.type, str):
                if ev.type != self.type:
                    return False
            elif ev.type not in self.type:
                return False
        if self.direction is not None and getattr(ev, "direction", None) != self.direction:
            return False
        if self.stream is not None and getattr(ev, "stream", None) != self.stream:
            return False
        if self.frames is not None and ev.frame not in self.frames:
            return False
        return self.where is None or bool(self.where(ev))

    def describe(self) -> dict[str, Any]:
        """The predicate as plain data (``where`` shown as present or not)."""
        out: dict[str, Any] = {}
        for name in ("conn", "layer", "type", "direction", "stream", "frames"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        if self.where is not None:
            out["where"] = True
        return out


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step as a walkthrough module writes it (before formatting)."""

    title: str
    template: str
    picks: tuple[Pick, ...] = ()
    capture: int = 0  #: index into the walkthrough's captures


@dataclass(frozen=True, slots=True)
class CaptureRef:
    """A capture file and its key log (``None`` when it needs none)."""

    name: str
    path: Path
    keylog: Path | None = None


@dataclass(slots=True)
class Step:
    """A built step: its narrative with numbers, and the events it points at.

    ``conn`` is the connection to select (None when the step spans several),
    ``frames`` the frames of the matched events (sorted), ``capture`` an index
    into :attr:`Walkthrough.captures`.  :meth:`matches` tells whether an event
    of that capture belongs to the step (for highlighting).
    """

    index: int
    title: str
    text: str
    template: str
    capture: int
    conn: int | None
    conns: tuple[int, ...]
    frames: tuple[int, ...]
    picks: tuple[Pick, ...]
    events: list[Event] = field(default_factory=list, repr=False)

    def matches(self, ev: Event) -> bool:
        return any(p.matches(ev) for p in self.picks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "title": self.title,
            "text": self.text,
            "capture": self.capture,
            "conn": self.conn,
            "conns": list(self.conns),
            "frames": list(self.frames),
            "picks": [p.describe() for p in self.picks],
        }


@dataclass(slots=True)
class Walkthrough:
    """A built walkthrough: captures, measured facts, and steps."""

    name: str
    title: str
    description: str
    captures: list[CaptureRef]
    facts: dict[str, Any]
    steps: list[Step]
    frames: list[int]  #: frame count of each capture

    @property
    def capture(self) -> CaptureRef:
        """The main capture (most steps point into it)."""
        return self.captures[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "captures": [
                {"name": c.name, "path": str(c.path), "keylog": str(c.keylog) if c.keylog else None, "frames": n}
                for c, n in zip(self.captures, self.frames)
            ],
            "facts": {k: v for k, v in self.facts.items() if isinstance(v, (int, float, str, bool)) or v is None},
            "steps": [s.to_dict() for s in self.steps],
        }

    def text(self, width: int = 88) -> str:
        """The narrative as plain text: a header, then each step with its events' frames."""
        lines = [f"{self.name}: {self.title}"]
        for ref, n in zip(self.captures, self.frames):
            keys = f", key log {_rel(ref.keylog)}" if ref.keylog else ""
            lines.append(f"capture: {_rel(ref.path)} ({n} frames{keys})")
        total = len(self.steps)
        for step in self.steps:
            lines.append("")
            where = []
            if len(self.captures) > 1:
                where.append(self.captures[step.capture].name)
            if step.conns:
                where.append(("conn " if len(step.conns) == 1 else "conns ") + ", ".join(map(str, step.conns)))
            if step.frames:
                where.append(("frame " if len(step.frames) == 1 else "frames ") + frame_ranges(step.frames))
            suffix = f"  [{'; '.join(where)}]" if where else ""
            lines.append(f"[{step.index}/{total}] {step.title}{suffix}")
            for para in step.text.split("\n"):
                lines.extend(textwrap.wrap(para, width=width, initial_indent="  ", subsequent_indent="  ",
                                           break_on_hyphens=False, break_long_words=False) or [""])
        return "\n".join(lines) + "\n"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def frame_ranges(frames: Sequence[int]) -> str:
    """``1, 2, 3, 7`` -> ``"1-3, 7"``."""
    out: list[str] = []
    start = prev = None
    for f in frames:
        if start is None:
            start = prev = f
        elif f == prev + 1:
            prev = f
        else:
            out.append(str(start) if start == prev else f"{start}-{prev}")
            start = prev = f
    if start is not None:
        out.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(out)


def placeholders(template: str) -> list[str]:
    """The field names a template uses."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def literal_text(template: str) -> str:
    """A template without its placeholders (what was typed, as opposed to measured)."""
    return "".join(lit for lit, _, _, _ in string.Formatter().parse(template))


def build(
    name: str,
    title: str,
    description: str,
    captures: list[CaptureRef],
    events: list[list[Event]],
    frames: list[int],
    facts: dict[str, Any],
    specs: Iterable[StepSpec],
) -> Walkthrough:
    """Format every step's template with ``facts`` and resolve its picks on ``events``.

    A template naming a fact that was not computed raises ``KeyError``: a
    walkthrough never prints a hole where a number should be.
    """
    steps: list[Step] = []
    for i, spec in enumerate(specs, 1):
        text = spec.template.format_map(facts)
        matched = [ev for ev in events[spec.capture] if any(p.matches(ev) for p in spec.picks)]
        conns = tuple(sorted({ev.conn for ev in matched if ev.conn is not None}))
        pick_conns = {p.conn for p in spec.picks}
        conn = conns[0] if len(conns) == 1 else (next(iter(pick_conns)) if len(pick_conns) == 1 else None)
        steps.append(Step(
            index=i, title=spec.title, text=text, template=spec.template, capture=spec.capture,
            conn=conn, conns=conns, frames=tuple(sorted({ev.frame for ev in matched})),
            picks=spec.picks, events=matched,
        ))
    return Walkthrough(name=name, title=title, description=description, captures=captures,
                       facts=facts, steps=steps, frames=frames)
