"""One connection: timeline and annotations above, events and the selected event's detail below."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Static

from inspector.filter import Filter

from ..timeline import TimelineModel
from ..widgets.annotations import AnnotationList
from ..widgets.detail_tree import DetailTree
from ..widgets.event_list import EventList
from ..widgets.filter_bar import FilterBar
from ..widgets.footer import Footer
from ..widgets.hex_view import HexView
from ..widgets.status_bar import StatusBar
from ..widgets.timeline_view import TimelineView
from ..widgets.virtual_list import VirtualList

if TYPE_CHECKING:
    from ..app import NetinspectApp

#: a filter over more events than this runs in a worker thread
_SYNC_FILTER = 20000
#: events the timeline takes per step (the rest follows on a timer, keeping keys answered)
_TIMELINE_STEP = 2000
#: seconds of timeline building per timer tick while it catches up with a big connection
_TIMELINE_SLICE = 0.015
#: a catching-up timeline is redrawn at most this often (seconds)
_TIMELINE_REDRAW = 0.25
#: timelines of recently opened connections kept for a quick reopen (each bounded: see tui.timeline)
_TIMELINE_CACHE = 4


class ConnectionScreen(Screen[None]):
    BINDINGS = [
        Binding("slash", "open_filter", "Filter"),
        Binding("d", "sequence", "Sequence diagram"),
        Binding("left_square_bracket", "step(-1)", "Prev conn"),
        Binding("right_square_bracket", "step(1)", "Next conn"),
        Binding("n", "next_annotation", "Next note", show=False),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, cid: int) -> None:
        super().__init__()
        self.cid = cid
        self.filter: Filter | None = None
        self.timeline_model = TimelineModel()
        self._filtered_upto = 0
        self._shown_index: int | None = None
        self._stepping = False
        self._redrawn = 0.0
        self._pending: int | None = None  #: a connection to show when this (cached) screen is pushed again
        #: (connection, layout) -> its timeline, for connections opened recently (of model ``_timelines_of``)
        self._timelines: OrderedDict[tuple[int, int], TimelineModel] = OrderedDict()
        self._timelines_of: Any = None

    @property
    def ni(self) -> NetinspectApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("", id="conn-title")
        with Horizontal(id="top"):
            yield TimelineView(id="timeline")
            yield AnnotationList(id="annotations")
        with Horizontal(id="bottom"):
            yield EventList(id="events")
            with Vertical(id="detail-column"):
                yield DetailTree(id="detail")
                yield HexView(id="hex")
        yield FilterBar()
        yield Footer()

    # ------------------------------------------------------------------ parts

    @property
    def events(self) -> EventList:
        return self.query_one(EventList)

    @property
    def timeline(self) -> TimelineView:
        return self.query_one(TimelineView)

    @property
    def annotations(self) -> AnnotationList:
        return self.query_one(AnnotationList)

    def on_mount(self) -> None:
        self.query_one("#timeline").border_title = "Timeline  (+/- zoom · ←/→ pan · 0 fit)"
        self.query_one("#annotations").border_title = "Annotations"
        self.query_one("#detail").border_title = "Detail"
        self.query_one("#hex").border_title = "Bytes"
        self.load(self.cid)
        self.events.focus()
        self.ready = True  # from now on progress reports may redraw it

    def reopen(self, cid: int) -> None:
        """This screen is pushed again (Enter on a connection): show ``cid`` when it resumes."""
        self._pending = cid

    def _timeline_of(self, cid: int, summary: dict[str, Any] | None) -> TimelineModel:
        """Connection ``cid``'s timeline: the one built when it was last open, else a new one."""
        model = self.ni.model
        if model is not self._timelines_of:  # a new model (new secrets, decoded again): none of them holds
            self._timelines.clear()
            self._timelines_of = model
        key = (cid, model.layout)
        tl = self._timelines.get(key)
        if tl is None:
            tl = self._timelines[key] = TimelineModel(summary)
            while len(self._timelines) > _TIMELINE_CACHE:
                self._timelines.popitem(last=False)
        self._timelines.move_to_end(key)
        return tl

    def load(self, cid: int) -> None:
        """Show connection ``cid`` (also used by [ and ])."""
        self.cid = cid
        self._pending = None
        model = self.ni.model
        self._layout = model.layout
        row = model.row(cid)
        origin = row.start if row is not None else model.first_ts
        self.origin = origin
        self.timeline_model = self._timeline_of(cid, row.summary if row else None)
        self.timeline_model.update(model.events_of(cid), row.summary if row else None, limit=_TIMELINE_STEP)
        self.timeline.show(self.timeline_model, origin or 0.0)
        self._redrawn = time.monotonic()
        self._catch_up()
        self._filtered_upto = 0
        self._shown_index = None
        self._show_events(keep=False)
        self._refresh_side()
        if self.events.count:
            self.events.move_cursor(self.events.count - 1 if self.ni.follow else 0)
            self._show_detail()
        else:
            self.query_one(DetailTree).show_nothing("(no events)")
            self.query_one(HexView).show(b"")

    def _show_events(self, keep: bool) -> None:
        events = self.ni.model.events_of(self.cid)
        if self.filter is None:
            self.events.show(events, self.origin, None)
            self._filtered_upto = len(events)
        elif len(events) <= _SYNC_FILTER:
            row = self.ni.model.row(self.cid)
            summary = row.summary if row else None
            view = [i for i, e in enumerate(events) if self.filter.match_event(e, summary)]
            self._filtered_upto = len(events)
            self.events.show(events, self.origin, view)
        else:
            self.events.show(events, self.origin, [])
            self.filter_events(self.filter, self.cid)
        self._events_title()

    @work(thread=True, exclusive=True, group="event-filter")
    def filter_events(self, flt: Filter, cid: int) -> None:
        model = self.ni.model
        events = model.events_of(cid)
        n = len(events)
        row = model.row(cid)
        summary = row.summary if row else None
        view = [i for i in range(n) if flt.match_event(events[i], summary)]
        self.app.call_from_thread(self._filter_done, flt, cid, view, n)

    def _filter_done(self, flt: Filter, cid: int, view: list[int], upto: int) -> None:
        if flt is not self.filter or cid != self.cid:
            return
        self._filtered_upto = upto
        self.events.show(self.ni.model.events_of(cid), self.origin, view)
        self.events.move_cursor(0)
        self._events_title()
        self._show_detail()

    def _events_title(self) -> None:
        total = len(self.ni.model.events_of(self.cid))
        if self.filter is None:
            self.events.border_title = f"Events ({total:,})"
        else:
            self.events.border_title = f"Events ({self.events.count:,} of {total:,} · filter: {self.filter.text})"

    def _refresh_side(self) -> None:
        model = self.ni.model
        row = model.row(self.cid)
        title = self.query_one("#conn-title", Static)
        if row is None:
            title.update(f"connection {self.cid}")
            return
        parts = [f"[b]connection {row.id}[/b]", row.stack, f"{row.client} → {row.server}"]
        if row.name:
            parts.append(row.name)
        if row.setup:
            parts.append(f"setup {row.setup} RTT")
        if row.rtt_ms is not None:
            parts.append(f"RTT {row.rtt_ms:.1f} ms")
        parts.append(f"{row.duration_ms:.1f} ms")
        title.update("  ·  ".join(p.replace("[", r"\[") if not p.startswith("[b]") else p for p in parts))
        self.annotations.show(row.summary, model.annotations_of(self.cid), self.origin)
        self.query_one("#annotations").border_title = f"Annotations ({self.annotations.count})"

    def _catch_up(self) -> None:
        """Feed the timeline the rest of a big connection's events, a slice of time per timer tick."""
        events = self.ni.model.events_of(self.cid)
        if self.timeline_model.behind(events) and not self._stepping:
            self._stepping = True
            self.set_timer(0.005, self._timeline_step)

    def _timeline_step(self) -> None:
        self._stepping = False
        if not self.is_current:
            return  # left (Esc): the timeline carries on from here when the screen shows it again
        events = self.ni.model.events_of(self.cid)
        tl = self.timeline_model
        end = time.monotonic() + _TIMELINE_SLICE
        changed = False
        while time.monotonic() < end and tl.update(events, limit=_TIMELINE_STEP):
            changed = True
        now = time.monotonic()
        if changed and (not tl.behind(events) or now - self._redrawn > _TIMELINE_REDRAW):
            self._redrawn = now
            self.timeline.data_changed()
        self._catch_up()

    def data_changed(self) -> None:
        app = self.ni
        self.query_one(StatusBar).update(app.status_text, app.fraction, app.done)
        model = app.model
        if model.layout != self._layout:
            self._relayout()
            return
        events = model.events_of(self.cid)
        row = model.row(self.cid)
        if self.timeline_model.behind(events):
            self.timeline_model.summary = row.summary if row else self.timeline_model.summary
            self._catch_up()
        if self.filter is None:
            self.events.grow()
        elif self._filtered_upto < len(events):
            summary = row.summary if row else None
            new = [i for i in range(self._filtered_upto, len(events)) if self.filter.match_event(events[i], summary)]
            self._filtered_upto = len(events)
            if new and self.events.view is not None:
                self.events.view.extend(new)
                self.events.grow()
        if app.follow and self.events.count:
            self.events.move_cursor(self.events.count - 1)
        self._events_title()
        self._refresh_side()
        if self._shown_index is None and self.events.count:
            self._show_detail()

    def _relayout(self) -> None:
        """The analyses' events moved to their frames at the end of loading: rebuild, keeping the selection."""
        index = self.events.event_index(self.events.cursor)
        remap = self.ni.model.remap.get(self.cid)
        flt = self.filter
        self.load(self.cid)
        if flt is not None:
            self.filter = flt
            self._show_events(keep=False)
        if index is not None and remap is not None and index < len(remap):
            self.select_event(remap[index])

    def model_replaced(self) -> None:
        self.load(self.cid)

    def on_screen_resume(self) -> None:
        if self._pending is not None:  # Enter again: as a new screen would be (no filter, the list focused)
            self.filter = None
            bar = self.query_one(FilterBar)
            if bar.has_class("-open"):
                bar.action_close()
            self.load(self._pending)
            self.events.focus()
        self.data_changed()

    # ------------------------------------------------------------------ selection

    def _show_detail(self) -> None:
        e = self.events.current
        tree = self.query_one(DetailTree)
        hexv = self.query_one(HexView)
        if e is None:
            tree.show_nothing("(no event)")
            hexv.show(b"")
            self.timeline.set_cursor(None)
            return
        self._shown_index = self.events.event_index(self.events.cursor)
        tree.show_event(e, self.origin)
        tree.border_title = f"Detail · frame {e.frame}"
        raw = getattr(e, "raw", b"") or b""
        if raw:
            hexv.show(raw)
            hexv.border_title = f"Bytes of this {e.type} ({len(raw)})"
        else:
            frame = self.ni.model.frame_bytes(e.frame)
            hexv.show(frame)
            hexv.border_title = f"Frame {e.frame} ({len(frame)} bytes)" if frame else "Bytes"
        stream = getattr(e, "stream", None)
        self.timeline.set_cursor(e.ts, stream if isinstance(stream, int) else None)

    def select_event(self, index: int) -> None:
        """Move the event cursor to event ``index`` of this connection (clearing a filter that hides it)."""
        view = self.events.view
        if view is not None and not (0 <= (at := bisect_left(view, index)) < len(view) and view[at] == index):
            self.filter = None
            self._show_events(keep=True)
        self.events.move_cursor(self.events.row_of(index))
        self._show_detail()

    def on_virtual_list_highlighted(self, message: VirtualList.Highlighted) -> None:
        if message.widget is self.events:
            self._show_detail()

    def on_virtual_list_selected(self, message: VirtualList.Selected) -> None:
        if message.widget is self.events:
            self.query_one(DetailTree).focus()  # Enter drills into the detail
        elif message.widget is self.annotations:
            item = self.annotations.items[message.index]
            if item.index is not None:
                self.select_event(item.index)
                self.events.focus()
            elif item.ts is not None:
                self._jump_to_time(item.ts)

    def _jump_to_time(self, ts: float) -> None:
        events = self.ni.model.events_of(self.cid)
        # the first event at or after ``ts`` (read from the columns: events are in capture order)
        i = bisect_left(range(len(events)), ts, key=events.ts_at)
        if i < len(events):
            self.select_event(i)
            self.events.focus()

    def on_timeline_view_clicked(self, message: TimelineView.Clicked) -> None:
        self.select_event(message.index)
        self.events.focus()

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.has_class("-open"):
            bar.action_close()
            return
        self.app.pop_screen()

    def action_sequence(self) -> None:
        self.ni.open_sequence(self.cid, self.events.view, self.events.event_index(self.events.cursor))

    def action_step(self, delta: int) -> None:
        n = len(self.ni.model.rows)
        if n:
            self.load((self.cid + delta) % n)

    def action_next_annotation(self) -> None:
        ann = self.annotations
        if ann.count:
            ann.move_cursor((ann.cursor + 1) % ann.count)
            item = ann.items[ann.cursor]
            if item.index is not None:
                self.select_event(item.index)

    def action_open_filter(self) -> None:
        self.query_one(FilterBar).open(self.filter.text if self.filter else "")

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        self.filter = message.filter
        self._show_events(keep=False)
        self.events.move_cursor(0)
        self._show_detail()
        self.events.focus()

    def on_filter_bar_closed(self, message: FilterBar.Closed) -> None:
        self.events.focus()
