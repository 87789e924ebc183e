"""A walkthrough (inspector.walkthroughs): the connection view with a narrative pane.

Each step selects its connection, highlights the events it is about
(``step.matches``) and puts the cursor on the first of them; ``n``/``p`` move
between steps, ``Home``/``End`` (outside the lists) to the first/last.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ..widgets.annotations import AnnotationList
from ..widgets.detail_tree import DetailTree
from ..widgets.event_list import EventList
from ..widgets.filter_bar import FilterBar
from ..widgets.footer import Footer
from ..widgets.hex_view import HexView
from ..widgets.status_bar import StatusBar
from ..widgets.timeline_view import TimelineView
from .connection import ConnectionScreen


class WalkthroughScreen(ConnectionScreen):
    BINDINGS = [
        Binding("n", "step_to(1)", "Next step"),
        Binding("p", "step_to(-1)", "Previous step"),
        Binding("home", "first_step", "First step", show=False),
        Binding("end", "last_step", "Last step", show=False),
    ]

    def __init__(self, walkthrough: Any) -> None:
        self.walkthrough = walkthrough
        self.step_index = 0
        first = walkthrough.steps[0] if walkthrough.steps else None
        super().__init__(_conn_of(first))

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield Static("", id="conn-title")
        with Horizontal(id="top"):
            yield TimelineView(id="timeline")
            with VerticalScroll(id="narrative"):
                yield Static("", id="narrative-text")
            yield AnnotationList(id="annotations", classes="hidden")
        with Horizontal(id="bottom"):
            yield EventList(id="events")
            with Vertical(id="detail-column"):
                yield DetailTree(id="detail")
                yield HexView(id="hex")
        yield FilterBar()
        yield Footer()

    def on_mount(self) -> None:
        # ConnectionScreen.on_mount runs too (Textual calls the handlers of every class);
        # the first step is shown once it has loaded the connection.
        self.query_one("#annotations").display = False
        self.call_after_refresh(self.show_step, 0)

    # ------------------------------------------------------------------ steps

    @property
    def step(self) -> Any:
        steps = self.walkthrough.steps
        return steps[self.step_index] if steps else None

    def show_step(self, index: int) -> None:
        steps = self.walkthrough.steps
        if not steps:
            return
        self.step_index = max(0, min(index, len(steps) - 1))
        step = self.step
        pane = self.query_one("#narrative", VerticalScroll)
        pane.border_title = f"Walkthrough · step {step.index}/{len(steps)}  (n next · p previous)"
        text = self.query_one("#narrative-text", Static)
        head = f"[b]{_esc(self.walkthrough.title)}[/b]\n\n[b]\\[{step.index}/{len(steps)}] {_esc(step.title)}[/b]\n\n"
        body = _esc(step.text)
        if step.capture != 0:
            name = self.walkthrough.captures[step.capture].name
            body += f"\n\n[i](this step is about the capture {_esc(name)}, not the one shown)[/i]"
        text.update(head + body)
        pane.scroll_home(animate=False)
        if step.capture != 0:
            self.events.marked = set()
            self.events.refresh()
            return
        cid = _conn_of(step)
        if cid != self.cid:
            self.filter = None
            self.load(cid)
        events = self.ni.model.events_of(self.cid)
        marked = {i for i, e in enumerate(events) if step.matches(e)}
        self.events.marked = marked
        self.events.refresh()
        if marked:
            self.select_event(min(marked, key=lambda i: (events[i].frame, i)))
        self.step_marked = marked

    def action_step_to(self, delta: int) -> None:
        self.show_step(self.step_index + delta)

    def action_first_step(self) -> None:
        self.show_step(0)

    def action_last_step(self) -> None:
        self.show_step(len(self.walkthrough.steps) - 1)

    def action_back(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.has_class("-open"):
            bar.action_close()
            return
        self.app.exit(0)  # a walkthrough has nothing behind it


def _conn_of(step: Any) -> int:
    if step is None:
        return 0
    if step.conn is not None:
        return step.conn
    return step.conns[0] if step.conns else 0


def _esc(text: str) -> str:
    return text.replace("[", "\\[")
