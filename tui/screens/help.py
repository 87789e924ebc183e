"""``?``: every key of every screen, taken from the bindings themselves, and the filter language."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
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

#: What a short binding label means, for the help and the README.
LONG = {
    "Help": "this help: every key and the filter language",
    "Follow": "auto-follow on/off: jump to the newest connection and event as they arrive (on by default in live)",
    "Quit": "quit netinspect",
    "Open": "connection list: open the connection; events: into the detail tree; annotations and sequence: "
            "go to the event",
    "Filter": "open the filter line (on the connection list it filters connections, in a connection its events)",
    "Clear filter": "show every connection again",
    "Sort": "sort by the next column (id, start, duration, bytes, packets, requests, setup, RTT, badges, "
            "stack, server, SNI)",
    "Reverse sort": "reverse the sort order",
    "Sequence diagram": "the connection as a sequence diagram",
    "Prev conn": "previous connection",
    "Next conn": "next connection",
    "Next note": "next annotation, and select its event",
    "Back": "back to the previous screen",
    "Pan left": "move the time window left",
    "Pan right": "move the time window right",
    "Zoom in": "halve the time window (around the selected event)",
    "Zoom out": "double the time window",
    "Fit": "fit the whole connection",
    "All segments": "show or hide the plain TCP segments (bare ACKs; data already shown decoded)",
    "Close filter": "close the filter line, keeping the current filter",
    "Next step": "the next step: its connection, its events highlighted (▶), the cursor on the first",
    "Previous step": "the previous step",
    "First step": "the first step (when no list has the focus)",
    "Last step": "the last step (when no list has the focus)",
}

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
    from .walkthrough import WalkthroughScreen

    def rows(*classes: type) -> list[tuple[str, str]]:
        out = []
        for cls in classes:
            for b in bindings_of(cls):
                if not b.show and b.description in ("Quit",) and cls.__name__ == "NetinspectApp":
                    continue  # Ctrl+C: listed with Ctrl+Q below
                long = LONG.get(b.description)
                out.append((key_text(b.key), f"{b.description} — {long}" if long else b.description))
        return out

    return [
        ("Everywhere", rows(NetinspectApp) + GLOBAL_KEYS),
        ("Every list (connections, events, annotations, sequence)", rows(VirtualList)),
        ("Connection list", rows(ConnectionsScreen, ConnectionList)),
        ("Connection view", rows(ConnectionScreen)),
        ("Timeline (when focused)", rows(TimelineView)),
        ("Detail tree", TREE_KEYS),
        ("Sequence diagram", rows(SequenceScreen)),
        ("Filter line", [("Enter", "apply (an empty line clears the filter)")] + rows(FilterBar)),
        ("Walkthrough (netinspect walkthrough NAME)", rows(WalkthroughScreen)
         + [("Esc / q", "leave the walkthrough")]),
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
        parts: list[object] = [Text.from_markup("[b]netinspect keys[/b]   (Esc, q or ? closes this help)\n")]
        plain = ["netinspect keys"]
        for title, rows in sections():
            table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
            table.add_column(width=20, style="bold", no_wrap=True)
            table.add_column(ratio=1)
            for keys, text in rows:
                table.add_row(keys, text)
                plain.append(f"{keys}  {text}")
            parts += [Text(title, style="bold underline"), table, Text("")]
            plain.append(title)
        parts.append(Text.from_markup(FILTER_HELP))
        plain.append(Text.from_markup(FILTER_HELP).plain)
        self._plain = "\n".join(plain)
        with VerticalScroll():
            yield Static(Group(*parts), id="help-text")

    def text(self) -> str:
        """The help as plain text (what the tests read)."""
        return self._plain

