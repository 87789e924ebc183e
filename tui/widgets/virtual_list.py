"""A table that draws only the rows on screen (the base of every list in the UI).

Textual's ``DataTable`` keeps a row object per row; a capture has hundreds
of thousands of events, so lists here hold nothing but a row count and ask
their subclass for the cells of the few rows in view (Textual's line API).
Columns have a natural width; one flexible column takes what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

#: A cell: plain text, or fragments of (text, style) drawn one after another.
Cell = str | list[tuple[str, str]]


@lru_cache(maxsize=256)
def rich_style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style()


@dataclass(slots=True)
class Column:
    key: str
    title: str
    width: int
    align: str = "left"
    flex: bool = False  #: takes the remaining width (at least ``width``)
    sortable: bool = True


def _fit(text: str, width: int, align: str) -> str:
    n = cell_len(text)
    if n > width:
        if width <= 1:
            return text[:width]
        out = ""
        for ch in text:
            if cell_len(out + ch) > width - 1:
                break
            out += ch
        return out + "…" + " " * (width - 1 - cell_len(out))
    pad = " " * (width - n)
    return pad + text if align == "right" else text + pad


class VirtualList(ScrollView, can_focus=True):
    """Rows ``0..count-1`` drawn on demand by :meth:`cells`; a header; a cursor."""

    COMPONENT_CLASSES = {"virtual-list--header", "virtual-list--cursor", "virtual-list--cursor-blur"}

    DEFAULT_CSS = """
    VirtualList { overflow-x: hidden; }
    VirtualList > .virtual-list--header { text-style: bold underline; }
    VirtualList > .virtual-list--cursor { text-style: reverse bold; }
    VirtualList > .virtual-list--cursor-blur { text-style: underline; }
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup,ctrl+b", "page_up", "Page up", show=False),
        Binding("pagedown,ctrl+f,space", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First row", show=False),
        Binding("end,G", "last", "Last row", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to ``index`` (a row of the list's current view)."""

        def __init__(self, widget: VirtualList, index: int) -> None:
            super().__init__()
            self.widget = widget
            self.index = index

        @property
        def control(self) -> VirtualList:
            return self.widget

    class Selected(Highlighted):
        """Enter (or a double click) on row ``index``."""

    class HeaderClicked(Message):
        def __init__(self, widget: VirtualList, column: Column) -> None:
            super().__init__()
            self.widget = widget
            self.column = column

        @property
        def control(self) -> VirtualList:
            return self.widget

    columns: list[Column] = []
    show_header = True

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.cursor = 0
        self._count = 0
        self.columns = [Column(c.key, c.title, c.width, c.align, c.flex, c.sortable) for c in type(self).columns]
        self.sort_key: str | None = None
        self.sort_reverse = False

    # ------------------------------------------------------------------ subclass API

    def cells(self, index: int) -> list[Cell]:
        """The cells of row ``index`` (one per column)."""
        raise NotImplementedError

    def row_style(self, index: int) -> str:
        """A style for a whole row (e.g. a severity colour)."""
        return ""

    # ------------------------------------------------------------------ size and cursor

    @property
    def count(self) -> int:
        return self._count

    def set_count(self, count: int, keep_cursor: bool = True) -> None:
        """The number of rows changed: resize the scroll area and redraw."""
        changed = count != self._count
        self._count = count
        header = 1 if self.show_header else 0
        self.virtual_size = Size(self.size.width, count + header)
        if self.cursor >= count:
            self.cursor = max(0, count - 1)
        if not keep_cursor:
            self.cursor = 0
        if changed:
            self.refresh()

    def _layout_widths(self, total: int) -> list[int]:
        widths = [c.width for c in self.columns]
        gaps = max(0, len(widths) - 1)
        fixed = sum(w for w, c in zip(widths, self.columns) if not c.flex)
        flex = [i for i, c in enumerate(self.columns) if c.flex]
        room = total - gaps - fixed
        if flex:
            share = max(room // len(flex), 0)
            for i in flex:
                widths[i] = max(share, min(self.columns[i].width, 8))
        return widths

    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - (1 if self.show_header else 0))

    def move_cursor(self, index: int, select: bool = False) -> None:
        if self._count == 0:
            return
        index = max(0, min(index, self._count - 1))
        old = self.cursor
        self.cursor = index
        self.scroll_to_cursor()
        self.refresh()
        if old != index or select:
            self.post_message(self.Highlighted(self, index))
        if select:
            self.post_message(self.Selected(self, index))

    def scroll_to_cursor(self) -> None:
        top = int(self.scroll_y)
        page = self.page
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + page:
            self.scroll_to(y=self.cursor - page + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self.page)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self.page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self._count - 1)

    def action_select(self) -> None:
        if self._count:
            self.post_message(self.Selected(self, self.cursor))

    # ------------------------------------------------------------------ mouse

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        header = 1 if self.show_header else 0
        if header and offset.y == 0:
            x = 0
            for col, w in zip(self.columns, self._layout_widths(self.scrollable_content_region.width)):
                if x <= offset.x < x + w + 1:
                    if col.sortable:
                        self.post_message(self.HeaderClicked(self, col))
                    return
                x += w + 1
            return
        index = int(self.scroll_y) + offset.y - header
        if 0 <= index < self._count:
            self.focus()
            self.move_cursor(index, select=event.chain >= 2)

    # ------------------------------------------------------------------ drawing

    def header_cells(self) -> list[str]:
        out = []
        for c in self.columns:
            title = c.title
            if self.sort_key == c.key and c.sortable:
                title += " ▼" if self.sort_reverse else " ▲"
            out.append(title)
        return out

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        header = 1 if self.show_header else 0
        widths = self._layout_widths(width)
        if header and y == 0:
            style = base + self.get_component_rich_style("virtual-list--header")
            text = " ".join(_fit(t, w, c.align) for t, w, c in zip(self.header_cells(), widths, self.columns))
            return Strip([Segment(text, style)]).crop_extend(0, width, style)
        index = int(self.scroll_y) + y - header
        if index < 0 or index >= self._count:
            return Strip.blank(width, base)
        try:
            cells = self.cells(index)
        except (IndexError, KeyError):
            return Strip.blank(width, base)
        row = base + rich_style(self.row_style(index))
        if index == self.cursor:
            cur = "virtual-list--cursor" if self.has_focus else "virtual-list--cursor-blur"
            row = row + self.get_component_rich_style(cur)
        segments: list[Segment] = []
        for i, (cell, w, col) in enumerate(zip(cells, widths, self.columns)):
            if i:
                segments.append(Segment(" ", row))
            if isinstance(cell, str):
                segments.append(Segment(_fit(cell, w, col.align), row))
                continue
            used = 0
            for text, spec in cell:
                if used >= w:
                    break
                text = _fit(text, w - used, "left") if cell_len(text) > w - used else text
                segments.append(Segment(text, row + rich_style(spec)))
                used += cell_len(text)
            if used < w:
                segments.append(Segment(" " * (w - used), row))
        return Strip(segments).crop_extend(0, width, row)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self, event: Any) -> None:
        self.set_count(self._count)
