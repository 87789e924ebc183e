"""``?``: every key of every screen, taken from the bindings themselves, and the filter language."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {
    "up": "↑", "down": "↓", "left": "←", "right": "→", "pageup": "PgUp", "pagedown": "PgDn",
    "home": "Home", "end": "End", "enter": "Enter", "escape": "Esc", "tab": "Tab", "shift+tab": "Shift+Tab",
    "slash": "/", "question_mark": "?", "plus": "+", "minus": "-", "equals_sign": "=", "underscore": "_",
    "left_square_bracket": "[", "right_square_bracket": "]", "space": "Space", "ctrl+p": "Ctrl+P",
    "ctrl+b": "Ctrl+B", "ctrl+f": "Ctrl+F", "ctrl+c": "Ctrl+C", "ctrl+q": "Ctrl+Q",
}

#: Keys that Textual itself provides, listed for completeness.
GLOBAL_KEYS = [
    ("Tab / Shift+Tab", "move between panes"),
    ("Ctrl+P", "command palette (sort, filter presets, open a connection, follow, help...)"),
    ("mouse", "click a row to select it, double-click to open; click a column header to sort; "
              "click a timeline mark to select its event; the wheel scrolls"),
    ("Ctrl+Q / Ctrl+C", "quit"),
]

TREE_KEYS = [("↑ ↓", "move in the detail tree"), ("Enter / Space", "expand or collapse a node")]


def key_text(keys: str) -> str:
    return " ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


def bindings_of(cls: type) -> list[Binding]:
    """The bindings a class declares itself (not inherited ones)."""
    out: list[Binding] = []
    for b in cls.__dict__.get("BINDINGS", []):
        if isinstance(b, tuple):
            b = Binding(*b)
        out.append(b)
    return out


def sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(keys, what they do)]) for the help screen and the README."""
    from ..app import NetinspectApp
    from ..widgets.connection_list import ConnectionList
    from ..widgets.filter_bar import FilterBar
    from ..widgets.timeline_view import TimelineView
    from ..widgets.virtual_list import VirtualList
    from .connection import ConnectionScreen
    from .connections import ConnectionsScreen
    from .sequence import SequenceScreen

    def rows(*classes: type) -> list[tuple[str, str]]:
        return [(key_text(b.key), b.description) for cls in classes for b in bindings_of(cls)]

    return [
        ("Everywhere", rows(NetinspectApp) + GLOBAL_KEYS),
        ("Every list (connections, events, annotations, sequence)", rows(VirtualList)),
        ("Connection list", rows(ConnectionsScreen, ConnectionList)),
        ("Connection view", rows(ConnectionScreen)),
        ("Timeline (when focused)", rows(TimelineView)),
        ("Detail tree", TREE_KEYS),
        ("Sequence diagram", rows(SequenceScreen)),
        ("Filter line", [("Enter", "apply (an empty line clears the filter)")] + rows(FilterBar)),
    ]


FILTER_HELP = """\
[b]Filter language[/b] ([b]/[/b] on the connection list filters connections; in a connection, its events)

  http2.stream == 5                 field of an event of that layer (==, !=, <, <=, >, >=)
  tls.sni contains "example"        contains is case-sensitive; matches (or ~) is a regex, case-insensitive
  hol                               a bare name: layer, type or severity of an event (tls, HEADERS, warning,
                                    hol); on connections: a summary key or the app (h2, h3, dns, websocket)
  tcp.analysis.retransmission       a segment carrying that analysis flag; a connection that had any
  http2.headers.:path == "/a"       header values by name; http2.headers contains "gzip" searches them all
  requests.status >= 400            on connections: any request of the summary record
  port == 443 and not dns           port / addr match either end; and, or, not, && , ||, !, parentheses
  conn.tls.version == 1.3           in a connection's events: a field of the connection record
  "lab.test"                        a quoted string alone searches every field, case-insensitive
  frame > 100, direction == s2c     event attributes; tcp.port, ip.addr, http2.streamid, tcp.stream also work
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close help"),
    ]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 110; height: 90%; border: round $accent; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        lines: list[str] = ["[b]netinspect keys[/b]   (Esc, q or ? closes this help)", ""]
        for title, rows in sections():
            lines.append(f"[b u]{escape(title)}[/b u]")
            for keys, text in rows:
                lines.append(f"  [b]{escape(keys):<18}[/b] {escape(text)}")
            lines.append("")
        lines.append(FILTER_HELP)
        with VerticalScroll():
            yield Static("\n".join(lines), id="help-text")

    def text(self) -> str:
        return str(self.query_one("#help-text", Static).render())

