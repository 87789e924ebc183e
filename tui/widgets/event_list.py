"""The events of one connection: frame, time, direction, layer, type, stream and a one-line summary."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from inspector.events import Event

from ..describe import info, rel_ms, severity
from .connection_list import SEVERITY_STYLE
from .virtual_list import Cell, Column, VirtualList


LAYER_SHORT = {"websocket": "ws", "analysis": "anlys"}


class EventList(VirtualList):
    """Shows ``events`` (a list that may still grow) through an optional filter view."""

    columns = [
        Column("frame", "frame", 5, "right", sortable=False),
        Column("time", "time ms", 9, "right", sortable=False),
        Column("dir", "", 1, sortable=False),
        Column("layer", "layer", 5, sortable=False),
        Column("type", "type", 12, sortable=False),
        Column("stream", "str", 5, "right", sortable=False),
        Column("info", "info", 20, flex=True, sortable=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[Event] = []
        self.view: list[int] | None = None  #: indices into ``events`` that pass the filter (None: all)
        self.origin: float | None = None
        self.marked: set[int] = set()  #: event indices to highlight (a walkthrough step's events)

    def show(self, events: list[Event], origin: float | None, view: list[int] | None = None) -> None:
        same = events is self.events
        self.events = events
        self.origin = origin
        self.view = view
        self.set_count(len(view) if view is not None else len(events), keep_cursor=same)

    def grow(self) -> None:
        """The event list got longer (loading or live): show the new rows."""
        self.set_count(len(self.view) if self.view is not None else len(self.events))

    def event_index(self, row: int) -> int | None:
        """Index into ``events`` of display row ``row``."""
        if not 0 <= row < self.count:
            return None
        return self.view[row] if self.view is not None else row

    def event_at(self, row: int) -> Event | None:
        i = self.event_index(row)
        return self.events[i] if i is not None and i < len(self.events) else None

    @property
    def current(self) -> Event | None:
        return self.event_at(self.cursor)

    def row_of(self, event_index: int) -> int:
        """The display row showing event ``event_index`` (or the nearest row after it)."""
        if self.view is None:
            return min(event_index, max(self.count - 1, 0))
        return min(bisect_left(self.view, event_index), max(self.count - 1, 0))

    def row_style(self, index: int) -> str:
        e = self.event_at(index)
        if e is None:
            return ""
        if self.marked and self.event_index(index) in self.marked:
            return "bold magenta"
        return SEVERITY_STYLE.get(severity(e), "")

    def cells(self, index: int) -> list[Cell]:
        e = self.event_at(index)
        if e is None:
            return [""] * len(self.columns)
        d = getattr(e, "direction", None)
        stream = getattr(e, "stream", None)
        frame = str(e.frame)
        if self.marked and self.event_index(index) in self.marked:
            frame = "▶" + frame
        layer_style = "dim" if e.layer == "tcp" else ""
        text = info(e)
        # the type and stream have their own columns
        if text.startswith(e.type + " "):
            text = text[len(e.type) + 1 :]
            if stream is not None and text.startswith(f"s{stream} "):
                text = text[len(str(stream)) + 2 :]
        return [
            frame,
            f"{rel_ms(e.ts, self.origin):.3f}",
            "→" if d == "c2s" else "←" if d == "s2c" else "",
            [(LAYER_SHORT.get(e.layer, e.layer), layer_style)],
            e.type,
            "" if stream is None else str(stream),
            text,
        ]
