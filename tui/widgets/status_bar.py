"""The top line: what is shown, how far loading got, live counters."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar { height: 1; dock: top; }
    StatusBar > #status-text { width: 1fr; }
    StatusBar > ProgressBar { width: 34; }
    """

    def compose(self) -> ComposeResult:
        yield Label("", id="status-text")
        yield ProgressBar(total=100, show_eta=False, id="status-progress")

    def update(self, text: str, fraction: float | None, done: bool) -> None:
        self.query_one("#status-text", Label).update(text)
        bar = self.query_one(ProgressBar)
        bar.display = not done and fraction is not None
        if fraction is not None:
            bar.update(progress=max(0.0, min(fraction, 1.0)) * 100)

    @property
    def text(self) -> str:
        return str(self.query_one("#status-text", Label).render())

    def on_mount(self, event: Any) -> None:
        self.query_one(ProgressBar).display = False
