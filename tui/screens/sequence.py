"""A connection as a sequence diagram, with the selected event's detail beneath."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from ..widgets.detail_tree import DetailTree
from ..widgets.footer import Footer
from ..widgets.sequence_diagram import SequenceDiagram
from ..widgets.status_bar import StatusBar
from ..widgets.virtual_list import VirtualList

if TYPE_CHECKING:
    from ..app import NetinspectApp


class SequenceScreen(Screen[None]):
    BINDINGS = [
        Binding("a", "toggle_acks", "All segments"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
    ]

    def __init__(self, cid: int, view: list[int] | None = None, index: int | None = None) -> None:
        super().__init__()
        self.cid = cid
        self.view = view
        self.start_index = index

    @property
    def ni(self) -> NetinspectApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("", id="conn-title")
        yield SequenceDiagram(id="sequence")
        yield DetailTree(id="sequence-detail")
        yield Footer()

    @property
    def diagram(self) -> SequenceDiagram:
        return self.query_one(SequenceDiagram)

    def on_mount(self) -> None:
        model = self.ni.model
        self._layout = model.layout
        row = model.row(self.cid)
        origin = row.start if row else model.first_ts
        # no RTT gutter on loopback, where the RTT (tens of microseconds) is no unit of anything
        rtt = row.rtt_ms / 1000 if row and row.rtt_ms and row.rtt_ms >= 0.1 else None
        self.origin = origin
        self.diagram.show(model.events_of(self.cid), origin, rtt, row.client if row else "?",
                          row.server if row else "?", self.view)
        title = f"[b]connection {self.cid}[/b]  ·  sequence diagram"
        if row:
            title += f"  ·  {row.stack}"
        if rtt:
            title += f"  ·  RTT {rtt * 1000:.1f} ms (RTTs: round trips since the start)"
        self.query_one("#conn-title", Static).update(title)
        self._title()
        self.query_one("#sequence-detail").border_title = "Detail"
        if self.start_index is not None:
            self.diagram.grow(self.start_index)
        if self.start_index is not None and self.diagram.rows:
            from bisect import bisect_left

            self.diagram.move_cursor(min(bisect_left(self.diagram.rows, self.start_index), len(self.diagram.rows) - 1))
        self._detail()
        self.diagram.focus()
        self.data_changed()
        self.ready = True  # from now on progress reports may redraw it

    def data_changed(self) -> None:
        app = self.ni
        self.query_one(StatusBar).update(app.status_text, app.fraction, app.done)
        if app.model.layout != self._layout:  # the analyses' events moved to their frames: redraw
            remap = app.model.remap.get(self.cid)
            index = self.diagram.current_index()
            if remap is not None:
                if self.view is not None:
                    self.view = sorted(remap[i] for i in self.view if i < len(remap))
                self.start_index = remap[index] if index is not None and index < len(remap) else None
            self.on_mount()
            return
        if self.view is None:
            self.diagram.grow()

    def model_replaced(self) -> None:
        self.on_mount()

    def _detail(self) -> None:
        e = self.diagram.current
        tree = self.query_one(DetailTree)
        if e is None:
            tree.show_nothing("(no event)")
        else:
            tree.show_event(e, self.origin)

    def on_virtual_list_highlighted(self, message: VirtualList.Highlighted) -> None:
        self._detail()

    def on_virtual_list_selected(self, message: VirtualList.Selected) -> None:
        index = self.diagram.current_index()
        self.app.pop_screen()
        screen = self.app.screen
        if index is not None and hasattr(screen, "select_event"):
            screen.select_event(index)

    def action_toggle_acks(self) -> None:
        self.diagram.toggle_all()
        self._title()
        self._detail()

    def _title(self) -> None:
        d = self.diagram
        if d.show_all:
            d.border_title = "Sequence (every TCP segment; a: hide the plain ones)"
        elif d.decoded:
            d.border_title = "Sequence (decoded units; TCP segments only with SYN/FIN/RST or analysis; a: all)"
        else:
            d.border_title = "Sequence (bare ACKs hidden; a: all)"

    def action_back(self) -> None:
        self.app.pop_screen()
