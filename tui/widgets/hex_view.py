"""A hex dump of the selected event's bytes (``raw``: as on the wire, or decrypted)."""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..describe import hex_lines

#: at most this many bytes are dumped (a DATA frame can be 16 MiB)
MAX_BYTES = 1 << 16


class HexView(ScrollView, can_focus=True):
    DEFAULT_CSS = "HexView { overflow-x: auto; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[str] = []
        self.size_text = ""
        self.data = b""

    def show(self, data: bytes | None) -> None:
        self.data = bytes(data or b"")
        self._layout()
        self.scroll_home(animate=False)

    def _layout(self) -> None:
        data = self.data
        cut = data[:MAX_BYTES]
        per_line = 16 if self.scrollable_content_region.width >= 74 or not self.scrollable_content_region.width else 8
        self.lines = hex_lines(cut, per_line) if cut else ["(no bytes kept for this event)"]
        if len(data) > MAX_BYTES:
            self.lines.append(f"… {len(data) - MAX_BYTES} more bytes")
        self.size_text = f"{len(data)} bytes" if data else ""
        width = max((len(line) for line in self.lines), default=0)
        self.virtual_size = Size(width, len(self.lines))
        self.refresh()

    def on_resize(self, event: Any) -> None:
        self._layout()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        i = int(self.scroll_y) + y
        base = self.rich_style
        if not 0 <= i < len(self.lines):
            return Strip.blank(width, base)
        x = int(self.scroll_x)
        return Strip([Segment(self.lines[i], base)]).crop_extend(x, x + width, base)
