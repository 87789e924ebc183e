"""Ctrl+P: netinspect's commands in Textual's command palette."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from inspector.filter import Filter

if TYPE_CHECKING:
    from .app import NetinspectApp

SORTS = [("id", "id"), ("start", "start time"), ("duration_ms", "duration"), ("bytes", "bytes"),
         ("packets", "packets"), ("requests", "requests"), ("setup_rtts", "setup round trips"),
         ("rtt_ms", "RTT"), ("badges", "number of badges"), ("stack", "protocol stack"), ("server", "server"),
         ("name", "SNI/host")]

#: Filter presets: (title, expression).
PRESETS = [
    ("retransmissions", "tcp.analysis.retransmission"),
    ("lost segments / packets", "tcp.analysis.lost_segment or quic.type == loss"),
    ("head-of-line blocking", "hol"),
    ("expert notes (warnings and errors)", "warning or error or malformed"),
    ("TLS handshakes", "tls and not tls.type == ApplicationData"),
    ("HTTP/2 HEADERS frames", "http2.type == HEADERS"),
    ("HTTP/3 HEADERS frames", "http3.type == HEADERS"),
    ("DNS", "dns"),
    ("WebSocket", "websocket"),
    ("no TCP segments (application events only)", "not tcp.type == segment"),
]


class NetinspectCommands(Provider):
    """Sort, filter presets, open a connection, sequence diagram, follow, help."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app: NetinspectApp = self.app  # type: ignore[assignment]
        out: list[tuple[str, Callable[[], object], str]] = []
        for key, label in SORTS:
            out.append((f"Sort connections by {label}", partial(app.sort_connections, key, False), "connection list"))
            out.append((f"Sort connections by {label}, descending", partial(app.sort_connections, key, True),
                        "connection list"))
        for title, expr in PRESETS:
            out.append((f"Filter: {title}", partial(app.apply_filter, Filter(expr)), expr))
        out.append(("Clear the filter", partial(app.apply_filter, None), "show everything"))
        out.append(("Toggle auto-follow", app.action_toggle_follow, "jump to the newest connection/event as they arrive"))
        out.append(("Sequence diagram of this connection", app.sequence_of_current, "client ↔ server arrows"))
        out.append(("Help: keys and filter language", app.action_help, "?"))
        for row in list(app.model.rows)[:500]:
            out.append((f"Open connection {row.id}: {row.stack} {row.name or row.server}",
                        partial(app.open_connection, row.id), f"{row.client} → {row.server}"))
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands()[:40]:
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
