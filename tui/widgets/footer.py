"""Textual's footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    """The key bar at the bottom of a screen.

    Textual's footer composes its keys anew whenever the screen's bindings are updated, which
    happens at every focus change and every switch of screens (Enter, Esc): mounting and styling
    a dozen key widgets took about half of an Esc.  This one does so only when the keys it would
    show (binding, enabled, tooltip) differ from those it shows."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shown: tuple[Any, ...] | None = None

    def bindings_changed(self, screen: Any) -> None:
        keys = tuple((b.binding, b.enabled, b.tooltip) for b in screen.active_bindings.values() if b.binding.show)
        if keys == self._shown and self._bindings_ready and self.children:
            return
        self._shown = keys
        super().bindings_changed(screen)
