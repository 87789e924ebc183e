"""The netinspect terminal UI: the App, its loading worker and the screens it moves between.

The app owns one :class:`~inspector.timeline.CaptureModel` and one source (file, live
capture, or packets in memory).  The source runs in a ``@work(thread=True)``
worker and posts :mod:`tui.messages` about ten times a second; the screens
then redraw from the model (only the rows in view).  Screens:
:class:`~tui.screens.connections.ConnectionsScreen` (first),
:class:`~tui.screens.connection.ConnectionScreen` (Enter on a connection),
:class:`~tui.screens.sequence.SequenceScreen` (``d``), and the help (``?``).
"""

from __future__ import annotations

import gc
import threading
from typing import TYPE_CHECKING, Any

from textual import events, on, work
from textual.app import App
from textual.binding import Binding

from .messages import ModelReplaced, Progress, SourceFailed
from .screens.connections import ConnectionsScreen
from .sources import FileSource, Source

if TYPE_CHECKING:
    from textual.command import Provider

    from inspector.filter import Filter
    from inspector.timeline import CaptureModel

# Only the first screen is imported up front: the connection view, sequence diagram, help,
# walkthrough and command palette load when first used (the first screen comes sooner).


def _commands() -> type[Provider]:
    from .commands import NetinspectCommands

    return NetinspectCommands


def _is_screen(screen: Any, *names: str) -> bool:
    """Is ``screen`` one of these screen classes (by name: their modules may not be loaded yet)?"""
    return any(cls.__name__ in names and cls.__module__.startswith("tui.screens.") for cls in type(screen).__mro__)


class NetinspectApp(App[int]):
    """``netinspect view`` / ``live`` / ``run``: see the module docstring."""

    CSS_PATH = "netinspect.tcss"
    TITLE = "netinspect"
    COMMANDS = App.COMMANDS | {_commands}
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("f", "toggle_follow", "Follow"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, source: Source, ansi: bool = False, walkthrough: Any = None) -> None:
        super().__init__()
        self.source = source
        source.first_paint = threading.Event()  # the worker waits for the first rows to be on screen
        self.walkthrough = walkthrough  #: an inspector.walkthroughs.Walkthrough to step through, if any
        self.model: CaptureModel = source.new_model()
        self.follow = source.live  #: jump to the newest connection/event as they arrive
        self.status_text = f"{source.label} · opening…"
        self.fraction: float | None = None
        self.done = False
        self.error: str | None = None
        self._ansi = ansi
        self._connection_screen: Any = None

    # ------------------------------------------------------------------ start and stop

    def on_mount(self) -> None:
        if self._ansi:
            self.theme = "ansi-dark"
        self.push_screen(ConnectionsScreen())
        self.run_source()

    @work(thread=True, exclusive=True, group="source", exit_on_error=False)
    def run_source(self) -> None:
        self.source.run(self)

    def on_unmount(self) -> None:
        self.source.stop()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.MouseScrollDown, events.MouseScrollUp)):
            self.source.interactive()  # decoding steps aside while the UI answers
        await super().on_event(event)

    async def action_quit(self) -> None:
        self.source.stop()
        self.exit(0)

    # ------------------------------------------------------------------ the source's host (worker thread)

    def source_progress(self, text: str, fraction: float | None, done: bool) -> None:
        self.post_message(Progress(text, fraction, done))

    def source_replaced(self, model: CaptureModel) -> None:
        self.post_message(ModelReplaced(model))

    def source_failed(self, error: str) -> None:
        self.post_message(SourceFailed(error))

    # ------------------------------------------------------------------ messages (UI thread)

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.status_text = message.text + (f" · {self.error}" if self.error else "")
        self.fraction = message.fraction
        first_done = message.done and not self.done
        self.done = message.done
        if first_done:
            # A loaded capture is millions of long-lived objects (connections, decoder state): each
            # full collection walked them all (50-200 ms, stalling keys at random).  Nothing loaded
            # is freed any more, so the collector may leave it alone from now on.
            gc.freeze()
        if first_done and self.walkthrough is not None and not _is_screen(self.screen, "WalkthroughScreen"):
            from .screens.walkthrough import WalkthroughScreen

            self.push_screen(WalkthroughScreen(self.walkthrough))
            return
        screen = self.screen
        if getattr(screen, "ready", False):  # not while a screen is still being composed
            screen.data_changed()

    @on(ModelReplaced)
    def _replaced(self, message: ModelReplaced) -> None:
        gc.unfreeze()  # the old model is garbage now: let the collector have it
        self.model = message.model
        for screen in self.screen_stack:
            if getattr(screen, "ready", False):
                screen.model_replaced()
        self.notify("new secrets: the capture was decoded again", timeout=3)

    @on(SourceFailed)
    def _failed(self, message: SourceFailed) -> None:
        self.error = message.error
        self.status_text = f"{self.source.label} · {message.error}"
        self.notify(message.error, severity="error", timeout=8)
        screen = self.screen
        if getattr(screen, "ready", False):
            screen.data_changed()

    # ------------------------------------------------------------------ navigation and commands

    def open_connection(self, cid: int) -> None:
        if self.model.row(cid) is None:
            return
        from .screens.connection import ConnectionScreen

        while _is_screen(self.screen, "ConnectionScreen", "SequenceScreen", "HelpScreen"):
            self.pop_screen()
        # one connection screen, kept installed: Esc pops it (no teardown of its widgets) and the
        # next Enter pushes it again on the new connection (no composition)
        screen = self._connection_screen
        if screen is None:
            screen = self._connection_screen = ConnectionScreen(cid)
            self.install_screen(screen, "connection")
        else:
            screen.reopen(cid)
        self.push_screen(screen)

    def open_sequence(self, cid: int, view: list[int] | None = None, index: int | None = None) -> None:
        from .screens.sequence import SequenceScreen

        self.push_screen(SequenceScreen(cid, view, index))

    def sequence_of_current(self) -> None:
        screen = self.screen
        if _is_screen(screen, "ConnectionScreen"):
            screen.action_sequence()
        elif isinstance(screen, ConnectionsScreen):
            cid = screen.list.selected_id()
            if cid is not None:
                self.open_sequence(cid)

    def _connections_screen(self) -> ConnectionsScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, ConnectionsScreen):
                return screen
        return None

    def sort_connections(self, key: str, reverse: bool = False) -> None:
        while not isinstance(self.screen, ConnectionsScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        screen = self._connections_screen()
        if screen is not None:
            screen.sort_by(key, reverse)

    def apply_filter(self, flt: Filter | None) -> None:
        """Filter what the current screen lists (connections, or the connection's events)."""
        screen: Any = self.screen
        if _is_screen(screen, "ConnectionScreen"):
            screen.filter = flt
            screen._show_events(keep=False)
            screen.events.move_cursor(0)
            screen._show_detail()
        elif isinstance(screen, ConnectionsScreen):
            screen.apply_filter(flt)

    def action_help(self) -> None:
        if not _is_screen(self.screen, "HelpScreen"):
            from .screens.help import HelpScreen

            self.push_screen(HelpScreen())

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.notify(f"auto-follow {'on' if self.follow else 'off'}", timeout=2)
        screen = self.screen
        if self.follow and getattr(screen, "ready", False):
            screen.data_changed()


def run_walkthrough(walkthrough: Any) -> int:
    """Open a walkthrough's main capture with its narrative pane (``netinspect walkthrough NAME``)."""
    from inspector.keylog import KeyLog

    from .verbs import _few_colours

    ref = walkthrough.capture
    keylog = KeyLog.from_file(str(ref.keylog)) if ref.keylog else KeyLog()
    app = NetinspectApp(FileSource(str(ref.path), keylog), ansi=_few_colours(), walkthrough=walkthrough)
    app.run()
    return 0
