"""The timeline of one connection: a time axis over lanes, with zoom, pan and a cursor."""

from __future__ import annotations

import math
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..timeline import TimelineModel
from .virtual_list import rich_style

GUTTER = 10


def nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if raw <= 0:
        return 1.0
    exp = math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        step = m * 10**exp
        if step >= raw:
            return step
    return 10 ** (exp + 1)


class TimelineView(ScrollView, can_focus=True):
    """Lanes of a :class:`TimelineModel` between ``t0`` and ``t0 + span`` (seconds)."""

    DEFAULT_CSS = "TimelineView { overflow-x: hidden; }"

    BINDINGS = [
        Binding("left,h", "pan(-1)", "Pan left", show=False),
        Binding("right,l", "pan(1)", "Pan right", show=False),
        Binding("plus,equals_sign", "zoom(0.5)", "Zoom in"),
        Binding("minus,underscore", "zoom(2)", "Zoom out"),
        Binding("0", "fit", "Fit", show=False),
    ]

    class Clicked(Message):
        """A mark was clicked: ``index`` is its event's index in the connection's event list."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model: TimelineModel | None = None
        self.origin = 0.0  #: times are shown relative to this (the connection's start)
        self.t0 = 0.0
        self.span = 1.0
        self.cursor_ts: float | None = None
        self.fitted = True
        self._cache: dict[tuple[Any, ...], list[Any]] = {}
        #: the marks of a zoomed-in window, scanned from its events: (t0, span, width, model version, window)
        self._window: tuple[float, float, int, int, Any] | None = None
        #: the marks of the short streams' lanes in view, scanned from their events: (key, scan)
        self._lazy: tuple[tuple[Any, ...], Any] | None = None

    def show(self, model: TimelineModel, origin: float) -> None:
        self.model = model
        self.origin = origin
        self._cache.clear()
        self._window = None
        self._lazy = None
        self.scroll_to(y=0, animate=False, immediate=True)
        self.fit()

    def data_changed(self) -> None:
        if self.model is None:
            return
        self._cache.clear()
        if self.fitted:
            self.fit()
        else:
            self._resize()

    def _resize(self) -> None:
        lanes = len(self.model.ordered()) if self.model else 0
        self.virtual_size = Size(self.scrollable_content_region.width, lanes + 1)
        self.refresh()

    # ------------------------------------------------------------------ view window

    def fit(self) -> None:
        m = self.model
        if m is None or m.t_min is None or m.t_max is None:
            self.t0, self.span = self.origin, 0.001
        else:
            start = min(self.origin, m.t_min)
            self.t0 = start
            self.span = max(m.t_max - start, 0.001) * 1.02
        self.fitted = True
        self._resize()

    def action_fit(self) -> None:
        self.fit()

    def action_pan(self, direction: int) -> None:
        self.t0 += direction * self.span * 0.2
        self.fitted = False
        self.refresh()

    def action_zoom(self, factor: float) -> None:
        center = self.cursor_ts if self.cursor_ts is not None and self.t0 <= self.cursor_ts <= self.t0 + self.span \
            else self.t0 + self.span / 2
        new = max(self.span * factor, 1e-6)
        self.t0 = center - (center - self.t0) * (new / self.span)
        self.span = new
        self.fitted = False
        self.refresh()

    def set_cursor(self, ts: float | None, stream: int | None = None) -> None:
        """Highlight time ``ts`` (panning to it if outside the window) and bring the lane of
        ``stream`` into view when there are more lanes than rows."""
        self.cursor_ts = ts
        if ts is not None and not (self.t0 <= ts <= self.t0 + self.span):
            self.t0 = ts - self.span / 2  # follow the selection
            self.fitted = False
        if stream is not None and self.model is not None:
            index = self.model.position(("stream", stream))
            if index is not None:
                rows = self.scrollable_content_region.height - 1
                top = int(self.scroll_y)
                if not top <= index < top + rows:
                    self.scroll_to(y=max(0, index - rows // 2), animate=False, immediate=True)
        self.refresh()

    # ------------------------------------------------------------------ drawing

    @property
    def _width(self) -> int:
        return max(1, self.scrollable_content_region.width - GUTTER)

    def _col_of(self, ts: float) -> int:
        return int((ts - self.t0) / self.span * self._width)

    def _axis(self, width: int) -> str:
        w = self._width
        span_ms = self.span * 1000
        step = nice_step(span_ms * 12 / w)
        start_ms = (self.t0 - self.origin) * 1000
        chars = [" "] * w
        tick = math.ceil(start_ms / step) * step
        while tick <= start_ms + span_ms:
            col = int((tick - start_ms) / span_ms * w)
            label = f"{tick:g}" if abs(tick) >= 1e-9 else "0"
            if 0 <= col and col + len(label) <= w and all(c == " " for c in chars[max(0, col - 1) : col + len(label) + 1]):
                chars[col : col + len(label)] = label
            tick += step
        return f"{'ms':>{GUTTER - 1}} " + "".join(chars)

    def _marks_of(self, lane: Any) -> Any:
        """Where ``lane``'s marks come from: its bins; when zoomed in finer than them, a scan of
        the window's events; for a short stream's lane (which keeps no marks), a scan of the
        events of the streams in view.  Scans are made once per window, rows and model version."""
        m = self.model
        if m is None:
            return True
        w = self._width
        t1 = self.t0 + self.span
        if not m.fine_enough(self.t0, t1, w):
            win = self._window
            if win is None or win[:4] != (self.t0, self.span, w, m.version):
                win = self._window = (self.t0, self.span, w, m.version, m.window(self.t0, t1, w))
            if win[4] is not None:
                return win[4].lanes.get(lane.key) or False
            # too many events to scan: the bins, coarse as they are
        if not lane.lazy:
            return True
        top = int(self.scroll_y)
        rows = max(1, self.scrollable_content_region.height - 1)
        key = (self.t0, self.span, w, m.version, top, rows)
        scan = self._lazy
        if scan is None or scan[0] != key:
            scan = self._lazy = (key, m.lazy_marks(m.ordered()[top : top + rows], self.t0, t1, w))
        if scan[1] is None:
            return False
        return scan[1].lanes.get(lane.key) or False

    def _columns(self, lane: Any) -> list[Any]:
        w = self._width
        key = (lane.key, lane.version, len(lane.spans), self.t0, self.span, w)
        cols = self._cache.get(key)
        if cols is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            cols = lane.columns(self.t0, self.t0 + self.span, w, self._marks_of(lane))
            self._cache[key] = cols
        return cols

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        m = self.model
        if m is None:
            return Strip.blank(width, base)
        if y == 0:
            style = base + Style(bold=True)
            return Strip([Segment(self._axis(width), style)]).crop_extend(0, width, base)
        lanes = m.ordered()
        li = int(self.scroll_y) + y - 1
        if not 0 <= li < len(lanes):
            return Strip.blank(width, base)
        lane = lanes[li]
        cols = self._columns(lane)
        cursor_col = self._col_of(self.cursor_ts) if self.cursor_ts is not None else -1
        segs = [Segment(f"{lane.name[: GUTTER - 1]:>{GUTTER - 1}}│", base + Style(dim=not self.has_focus))]
        for c, cell in enumerate(cols):
            if cell is None:
                text, style = " ", base
            else:
                text, style = cell[0], base + rich_style(cell[1])
            if c == cursor_col:
                style = style + Style(reverse=True)
            segs.append(Segment(text, style))
        return Strip(segs).crop_extend(0, width, base)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or self.model is None or offset.y == 0 or offset.x < GUTTER:
            return
        lanes = self.model.ordered()
        li = int(self.scroll_y) + offset.y - 1
        if not 0 <= li < len(lanes):
            return
        col = offset.x - GUTTER
        cols = self._columns(lanes[li])
        cell = cols[col] if 0 <= col < len(cols) else None
        # what is drawn in that cell (the most important mark there), else the nearest mark
        marks = self._marks_of(lanes[li])
        source = lanes[li] if marks is True else marks or lanes[li]
        index = cell[2] if cell is not None and cell[2] >= 0 else source.nearest(
            self.t0 + (col + 0.5) / self._width * self.span)
        if index is not None:
            self.post_message(self.Clicked(index))

    def on_resize(self, event: Any) -> None:
        self._cache.clear()
        self._resize()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
