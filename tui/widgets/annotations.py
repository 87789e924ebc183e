"""The annotation panel: setup cost and request timing, expert notes, losses, stalls, HOL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inspector.events import Event

from ..describe import annotation_text, rel_ms, severity, summary_notes
from .connection_list import SEVERITY_STYLE
from .virtual_list import Cell, Column, VirtualList


@dataclass(slots=True)
class Annotation:
    severity: str  #: "error", "warning", "note" or "info"
    ts: float | None
    text: str
    index: int | None  #: the event's index in the connection's event list (Enter jumps there)


class AnnotationList(VirtualList):
    columns = [
        Column("severity", "", 1, sortable=False),
        Column("time", "time ms", 8, "right", sortable=False),
        Column("text", "annotation", 20, flex=True, sortable=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.items: list[Annotation] = []
        self.origin: float | None = None
        self._seen = (-1, -1)

    def show(self, summary: dict[str, Any], events: list[tuple[int, Event]], origin: float | None) -> None:
        key = (id(summary), len(events))
        if key == self._seen:
            return
        self._seen = key
        self.origin = origin
        analysed = any(e.layer == "analysis" for _, e in events)
        items = [Annotation(sev, ts, text, None) for sev, ts, text in summary_notes(summary, analysed)]
        for index, e in events:
            items.append(Annotation(severity(e) or "note", e.ts, annotation_text(e), index))
        # in time order; lines without a time (decryption, alerts) last
        items.sort(key=lambda a: (a.ts is None, a.ts or 0.0))
        self.items = items
        self.set_count(len(items))
        self.refresh()

    def row_style(self, index: int) -> str:
        return SEVERITY_STYLE.get(self.items[index].severity, "") if index < len(self.items) else ""

    def cells(self, index: int) -> list[Cell]:
        a = self.items[index]
        sev = {"error": "E", "warning": "W", "note": "N", "info": "·"}.get(a.severity, "?")
        return [sev, "" if a.ts is None else f"{rel_ms(a.ts, self.origin):.1f}", a.text]
