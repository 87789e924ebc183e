"""The ``/`` filter line: an input for the filter language and the parse error, if any."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label

if TYPE_CHECKING:  # the filter language is imported when a filter is first applied
    from inspector.filter import Filter

PLACEHOLDER = 'filter: http2.stream == 5 · tls.sni contains "example" · hol · tcp.analysis.retransmission'


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar { height: auto; dock: bottom; display: none; }
    FilterBar.-open { display: block; }
    FilterBar > #filter-error { color: $error; height: auto; display: none; }
    FilterBar > #filter-error.-shown { display: block; }
    """

    BINDINGS = [Binding("escape", "close", "Close filter", show=False)]

    class Applied(Message):
        """A filter was entered (``filter`` is None: cleared)."""

        def __init__(self, filter: Filter | None) -> None:
            super().__init__()
            self.filter = filter

    class Closed(Message):
        pass

    def compose(self) -> ComposeResult:
        yield Label("", id="filter-error")
        yield Input(placeholder=PLACEHOLDER, id="filter-input")

    def open(self, text: str | None = None) -> None:
        self.add_class("-open")
        field = self.query_one(Input)
        if text is not None:
            field.value = text
        field.focus()
        field.cursor_position = len(field.value)

    def action_close(self) -> None:
        self.remove_class("-open")
        self._error("")
        self.post_message(self.Closed())

    def _error(self, text: str) -> None:
        label = self.query_one("#filter-error", Label)
        label.update(text)
        label.set_class(bool(text), "-shown")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self._error("")
            self.remove_class("-open")
            self.post_message(self.Applied(None))
            return
        from inspector.filter import Filter, FilterError

        try:
            flt = Filter(text)
        except FilterError as e:
            self._error(f"✗ {e}")
            return
        self._error("")
        self.remove_class("-open")
        self.post_message(self.Applied(flt))
