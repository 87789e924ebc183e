"""The first screen: every connection of the capture, and the record of the highlighted one."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen

from ..widgets.connection_list import ConnectionList
from ..widgets.detail_tree import DetailTree
from ..widgets.filter_bar import FilterBar
from ..widgets.footer import Footer
from ..widgets.status_bar import StatusBar
from ..widgets.virtual_list import VirtualList

if TYPE_CHECKING:
    from inspector.filter import Filter

    from ..app import NetinspectApp


def _preload_screens() -> None:
    from . import connection, help, sequence  # noqa: F401


class ConnectionsScreen(Screen[None]):
    """Connection list (sortable, filterable) over the highlighted connection's summary record."""

    BINDINGS = [
        Binding("slash", "open_filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter: Filter | None = None
        self._filter_run = 0.0
        self._preview_row: object = None
        self._preview_at = 0.0

    @property
    def ni(self) -> NetinspectApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield ConnectionList(id="connections")
        yield DetailTree(id="preview")
        yield FilterBar()
        yield Footer()

    def on_mount(self) -> None:
        self.list.attach(self.ni.model)
        self.list.focus()
        self.data_changed()
        self.ready = True  # from now on progress reports may redraw it

    @property
    def list(self) -> ConnectionList:
        return self.query_one(ConnectionList)

    # ------------------------------------------------------------------ data

    def data_changed(self) -> None:
        app = self.ni
        self.query_one(StatusBar).update(app.status_text, app.fraction, app.done)
        if self.filter is not None and time.monotonic() - self._filter_run > 1.0:
            self.run_filter(self.filter)
        lst = self.list
        lst.refresh_rows()
        painted = app.source.first_paint
        if lst.count and painted is not None and not painted.is_set():
            self.call_after_refresh(self._first_paint_done, painted)
        if app.follow and lst.count:
            lst.move_cursor(lst.count - 1)
        self._title()
        self._preview(force=False)

    def _first_paint_done(self, painted: threading.Event) -> None:
        painted.set()
        # the other screens were left out of the start-up: load them now, before anyone presses Enter
        self.set_timer(0.05, _preload_screens)

    def model_replaced(self) -> None:
        self.list.attach(self.ni.model)
        if self.filter is not None:
            self.run_filter(self.filter)
        self._preview(force=True)

    def on_screen_resume(self) -> None:
        self.data_changed()

    def _title(self) -> None:
        lst = self.list
        total = len(self.ni.model.rows)
        title = f"Connections ({total:,})"
        if self.filter is not None:
            title = f"Connections ({lst.count:,} of {total:,} · filter: {self.filter.text})"
        lst.border_title = title
        lst.border_subtitle = f"sort: {lst.sort_key}{' ▼' if lst.sort_reverse else ''}"

    def _preview(self, force: bool) -> None:
        row = self.list.row_at(self.list.cursor) if self.list.count else None
        tree = self.query_one("#preview", DetailTree)
        if row is None:
            if force or self._preview_row is not None:
                tree.show_nothing("(no connection)")
            self._preview_row = None
            return
        now = time.monotonic()
        if not force and (row is self._preview_row or now - self._preview_at < 2.0 and
                          getattr(self._preview_row, "id", None) == row.id):
            return
        self._preview_row = row
        self._preview_at = now
        tree.show_record(f"connection {row.id}: {row.stack}  {row.client} → {row.server}", row.summary)
        tree.border_title = f"Connection {row.id}"

    def on_virtual_list_highlighted(self, message: VirtualList.Highlighted) -> None:
        if message.widget is self.list:
            self._preview(force=True)

    def on_virtual_list_selected(self, message: VirtualList.Selected) -> None:
        if message.widget is self.list:
            cid = self.list.selected_id()
            if cid is not None:
                self.ni.open_connection(cid)

    # ------------------------------------------------------------------ filter

    def action_open_filter(self) -> None:
        self.query_one(FilterBar).open(self.filter.text if self.filter else "")

    def action_clear_filter(self) -> None:
        if self.filter is not None:
            self.apply_filter(None)

    def on_filter_bar_applied(self, message: FilterBar.Applied) -> None:
        self.apply_filter(message.filter)
        self.list.focus()

    def on_filter_bar_closed(self, message: FilterBar.Closed) -> None:
        self.list.focus()

    def apply_filter(self, flt: Filter | None) -> None:
        self.filter = flt
        if flt is None:
            self.list.passing = None
            self.list.refresh_rows()
            self._title()
            self._preview(force=True)
        else:
            self.run_filter(flt)

    @work(thread=True, exclusive=True, group="connection-filter")
    def run_filter(self, flt: Filter) -> None:
        """Test every connection (its record, else its events) in a worker thread."""
        self._filter_run = time.monotonic()
        model = self.ni.model
        passing = set()
        for row in list(model.rows):
            if flt.match_connection(model.full_summary(row.id) or row.summary, model.events_of(row.id)):
                passing.add(row.id)
        self.app.call_from_thread(self._filter_done, flt, passing)

    def _filter_done(self, flt: Filter, passing: set[int]) -> None:
        if flt is not self.filter:
            return
        self.list.passing = passing
        self.list.refresh_rows()
        if self.list.count:
            self.list.move_cursor(min(self.list.cursor, self.list.count - 1))
        self._title()
        self._preview(force=True)

    # ------------------------------------------------------------------ commands

    def sort_by(self, key: str, reverse: bool = False) -> None:
        self.list.sort_by(key, reverse)
        self._title()
