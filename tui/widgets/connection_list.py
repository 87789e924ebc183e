"""The connection list: one row per connection, sortable, filterable, growing while loading."""

from __future__ import annotations

from textual.binding import Binding

from inspector.timeline import CaptureModel, ConnRow
from .virtual_list import Cell, Column, VirtualList

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan", "good": "green"}

#: Sortable columns in the order ``s`` cycles through them.
SORT_ORDER = ["id", "start", "duration_ms", "bytes", "packets", "requests", "setup_rtts", "rtt_ms", "badges",
              "stack", "server", "name"]
#: columns that give up width first when the terminal is narrow, and how narrow they may get
_SHRINK = [("name", 8), ("client", 12), ("server", 12), ("stack", 12), ("alpn", 4)]
_CAPS = {"stack": 30, "client": 28, "server": 28, "name": 28, "alpn": 10, "setup": 7}


class ConnectionList(VirtualList):
    """Rows from :attr:`CaptureModel.rows`, through the current sort order and filter."""

    columns = [
        Column("id", "#", 3, "right"),
        Column("stack", "stack", 5),
        Column("client", "client", 6),
        Column("server", "server", 6),
        Column("name", "SNI/host", 8),
        Column("alpn", "ALPN", 4),
        Column("start", "start s", 7, "right"),
        Column("duration_ms", "dur ms", 7, "right"),
        Column("requests", "req", 4, "right"),
        Column("setup_rtts", "setup", 5),
        Column("rtt_ms", "RTT ms", 6, "right"),
        Column("badges", "badges", 6, flex=True),
    ]

    BINDINGS = [
        Binding("s", "sort_next", "Sort"),
        Binding("r", "sort_reverse", "Reverse sort"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model: CaptureModel | None = None
        self.view: list[int] | None = None  #: connection ids in display order (None: all, by id)
        self.passing: set[int] | None = None  #: ids the filter lets through (None: no filter)
        self.sort_key = "id"
        self._measured = 0

    # ------------------------------------------------------------------ data

    def attach(self, model: CaptureModel) -> None:
        self.model = model
        self._measured = 0
        self.view = None
        self.refresh_rows()

    def refresh_rows(self) -> None:
        """New or changed rows were published: rebuild the view and redraw."""
        model = self.model
        if model is None:
            return
        rows = model.rows
        self._measure(rows)
        selected = self.selected_id()
        if self.sort_key == "id" and not self.sort_reverse and self.passing is None:
            self.view = None
            count = len(rows)
        else:
            ids = range(len(rows)) if self.passing is None else sorted(i for i in self.passing if i < len(rows))
            if self.sort_key != "id" or self.sort_reverse:
                key = self.sort_key
                ids = sorted(ids, key=lambda i: rows[i].sort_key(key), reverse=self.sort_reverse)
            self.view = list(ids)
            count = len(self.view)
        self.set_count(count)
        if selected is not None and self.view is not None:
            try:
                self.cursor = self.view.index(selected)
            except ValueError:
                pass
        self.refresh()

    def _measure(self, rows: list[ConnRow]) -> None:
        start = max(0, self._measured - 64)  # recent rows still change (a decoder just decided)
        cols = {c.key: c for c in self.columns}
        for row in rows[start:]:
            for key, text in (("stack", row.stack), ("client", row.client), ("server", row.server),
                              ("name", row.name), ("alpn", row.alpn), ("setup", row.setup)):
                col = cols.get(key if key != "setup" else "setup_rtts")
                if col is not None and len(text) > col.width:
                    col.width = min(len(text), _CAPS.get(key, 30))
            if len(str(row.id)) > cols["id"].width:
                cols["id"].width = len(str(row.id))
            if row.requests is not None and len(str(row.requests)) > cols["requests"].width:
                cols["requests"].width = len(str(row.requests))
        self._measured = len(rows)

    def _layout_widths(self, total: int) -> list[int]:
        widths = super()._layout_widths(total)
        need = sum(widths) + len(widths) - 1 - total
        index = {c.key: i for i, c in enumerate(self.columns)}
        for key, floor in _SHRINK:
            if need <= 0:
                break
            i = index[key]
            give = min(need, max(0, widths[i] - floor))
            widths[i] -= give
            need -= give
        return widths

    def row_at(self, index: int) -> ConnRow | None:
        if self.model is None:
            return None
        cid = self.view[index] if self.view is not None else index
        return self.model.row(cid)

    def selected_id(self) -> int | None:
        if self.count == 0 or self.model is None:
            return None
        row = self.row_at(self.cursor)
        return row.id if row is not None else None

    def select_id(self, cid: int) -> None:
        if self.view is None:
            self.move_cursor(cid)
        elif cid in self.view:
            self.move_cursor(self.view.index(cid))

    # ------------------------------------------------------------------ sorting

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.sort_reverse if key == self.sort_key else False
        self.sort_key = key
        self.sort_reverse = reverse
        self.refresh_rows()

    def action_sort_next(self) -> None:
        i = SORT_ORDER.index(self.sort_key) if self.sort_key in SORT_ORDER else -1
        self.sort_by(SORT_ORDER[(i + 1) % len(SORT_ORDER)], reverse=False)

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_key or "id", reverse=not self.sort_reverse)

    def on_virtual_list_header_clicked(self, message: VirtualList.HeaderClicked) -> None:
        message.stop()
        key = {"start": "start"}.get(message.column.key, message.column.key)
        self.sort_by(key)

    # ------------------------------------------------------------------ drawing

    def cells(self, index: int) -> list[Cell]:
        row = self.row_at(index)
        if row is None:
            return [""] * len(self.columns)
        origin = self.model.first_ts if self.model is not None else None
        start = f"{row.start - origin:.3f}" if origin is not None else ""
        badges: Cell = []
        for text, sev in row.badges:
            badges.append((text, SEVERITY_STYLE.get(sev, "")))
            badges.append((" ", ""))
        return [
            str(row.id), row.stack, row.client, row.server, row.name, row.alpn, start,
            f"{row.duration_ms:.1f}", "" if row.requests is None else str(row.requests), row.setup,
            "" if row.rtt_ms is None else f"{row.rtt_ms:.1f}", badges,
        ]
