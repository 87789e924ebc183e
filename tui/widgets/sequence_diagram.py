"""A connection as a sequence diagram: client and server columns, one arrow per event,
with times, the gap since the previous arrow and an RTT gutter (time in round trips)."""

from __future__ import annotations

import time
from array import array
from typing import Any

from rich.cells import cell_len

from inspector.events import Event

from ..describe import arrow_label, rel_ms, severity
from .connection_list import SEVERITY_STYLE
from .virtual_list import Cell, Column, VirtualList


def is_plain_segment(e: Event, with_data: bool) -> bool:
    """A TCP segment with nothing to say: no SYN/FIN/RST, no analysis flag, and no
    payload (or payload that decoded events already show, ``with_data``)."""
    if e.layer != "tcp" or e.type != "segment" or e.analysis:  # type: ignore[attr-defined]
        return False
    flags = e.flags  # type: ignore[attr-defined]
    if "S" in flags or "F" in flags or "R" in flags:
        return False
    return with_data or not e.len  # type: ignore[attr-defined]


def arrow(text: str, direction: str | None, width: int) -> str:
    """``│── label ──▶│`` (client to server), ``│◀── label ──│`` (back), ``│ · label │`` (no direction)."""
    inner = max(width - 2, 4)
    body = inner - 1
    room = max(body - 4, 1)
    if cell_len(text) > room:
        text = text[: room - 1] + "…"
    label = f" {text} "
    if direction not in ("c2s", "s2c"):
        pad = inner - cell_len(label)
        return "│" + " " * (pad // 2) + label + " " * (pad - pad // 2) + "│"
    left = (body - cell_len(label)) // 2
    right = body - cell_len(label) - left
    if direction == "c2s":
        return "│" + "─" * left + label + "─" * right + "▶│"
    return "│◀" + "─" * left + label + "─" * right + "│"


#: seconds of scanning per step when a big connection's rows are worked out (the rest follows on a timer)
_SCAN_SLICE = 0.03
_LIGHT_LAYERS = {1: "tcp", 2: "tls", 3: "http2"}


def _plain_at(events: Any, i: int, with_data: bool) -> bool:
    """:func:`is_plain_segment` of event ``i``, read from an EventLog's columns when it keeps it there."""
    light = getattr(events, "light", None)
    u = light(i) if light is not None else None
    if u is None:
        return is_plain_segment(events[i], with_data)
    if u[0] != 1:
        return False
    _, flags, analysis = events.segment_code(u[1])
    if analysis or "S" in flags or "F" in flags or "R" in flags:
        return False
    return with_data or not u[2]


def _layer_at(events: Any, i: int) -> str:
    light = getattr(events, "light", None)
    u = light(i) if light is not None else None
    return _LIGHT_LAYERS[u[0]] if u is not None else events[i].layer


class SequenceDiagram(VirtualList):
    columns = [
        Column("time", "time ms", 9, "right", sortable=False),
        Column("delta", "+Δ ms", 8, "right", sortable=False),
        Column("rtt", "RTTs", 5, "right", sortable=False),
        Column("arrow", "", 30, flex=True, sortable=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[Event] = []
        self.rows: array[int] = array("q")  #: event indices shown (numbers, not objects: a connection can have 500,000)
        self.origin: float | None = None
        self.rtt: float | None = None
        self.client = "client"
        self.server = "server"
        self.show_all = False  #: include every TCP segment
        self.decoded = False  #: the connection has application events (then data segments are hidden too)
        self.view: list[int] | None = None  #: a filter's passing event indices
        self._scanned = 0
        self._scanning = False

    def show(self, events: list[Event], origin: float | None, rtt: float | None, client: str, server: str,
             view: list[int] | None = None) -> None:
        self.events, self.origin, self.rtt = events, origin, rtt
        self.client, self.server = client, server
        self.view = view
        self.rows = array("q")
        self._scanned = 0
        self.grow()
        self.move_cursor(0)

    def grow(self, upto: int = -1) -> None:
        """Take events added since the last call (a slice of time's worth, but at least those
        before event index ``upto``; the rest on a timer)."""
        events = self.events
        n = len(events)
        if not self.decoded and any(_layer_at(events, i) not in ("tcp", "udp")
                                    for i in range(self._scanned, min(n, self._scanned + 5000))):
            self.decoded = True
            self.rows, self._scanned = array("q"), 0
        hide = not self.show_all
        data = self.decoded
        source = self.view if self.view is not None else range(n)
        end = time.monotonic() + _SCAN_SLICE
        rows = self.rows
        at = self._scanned  # position in ``source``
        total = len(source)
        while at < total:
            stop = min(total, at + 2000)
            if hide:
                rows.extend(i for i in source[at:stop] if not _plain_at(events, i, data))
            else:
                rows.extend(source[at:stop])
            at = stop
            if time.monotonic() > end and source[at - 1] >= upto:
                break
        self._scanned = at
        self.set_count(len(rows))
        if at < total and not self._scanning:
            self._scanning = True
            self.set_timer(0.005, self._scan_more)

    def _scan_more(self) -> None:
        self._scanning = False
        if self.is_attached:
            self.grow()

    def toggle_all(self) -> None:
        current = self.rows[self.cursor] if self.rows else 0
        self.show_all = not self.show_all
        self.rows = array("q")
        self._scanned = 0
        self.grow(current)
        from bisect import bisect_left

        self.move_cursor(min(bisect_left(self.rows, current), max(len(self.rows) - 1, 0)))

    @property
    def current(self) -> Event | None:
        if 0 <= self.cursor < len(self.rows):
            return self.events[self.rows[self.cursor]]
        return None

    def current_index(self) -> int | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def header_cells(self) -> list[str]:
        heads = super().header_cells()
        width = self._layout_widths(self.scrollable_content_region.width)[-1]
        left, right = f"client {self.client}", f"server {self.server}"
        gap = max(1, width - cell_len(left) - cell_len(right))
        heads[-1] = left + " " * gap + right
        return heads

    def row_style(self, index: int) -> str:
        e = self.events[self.rows[index]]
        return SEVERITY_STYLE.get(severity(e), "")

    def cells(self, index: int) -> list[Cell]:
        i = self.rows[index]
        e = self.events[i]
        prev = self.events[self.rows[index - 1]] if index > 0 else None
        t = rel_ms(e.ts, self.origin)
        delta = f"{(e.ts - prev.ts) * 1000:.3f}" if prev is not None else ""
        rtts = f"{(e.ts - self.origin) / self.rtt:.1f}" if self.rtt and self.origin is not None else ""
        width = self._layout_widths(self.scrollable_content_region.width)[-1]
        d = getattr(e, "direction", None)
        style = "cyan" if d == "c2s" else "green" if d == "s2c" else "dim"
        return [f"{t:.3f}", delta, rtts, [(arrow(arrow_label(e), d, width), style)]]
