"""The README documents every key the UI binds, and its filter examples parse."""

from __future__ import annotations

import re
from pathlib import Path

from inspector.filter import Filter

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_binding_is_in_the_readme():
    from tui.app import NetinspectApp
    from tui.screens.connection import ConnectionScreen
    from tui.screens.connections import ConnectionsScreen
    from tui.screens.help import KEY_NAMES, bindings_of
    from tui.screens.sequence import SequenceScreen
    from tui.screens.walkthrough import WalkthroughScreen
    from tui.widgets.connection_list import ConnectionList
    from tui.widgets.filter_bar import FilterBar
    from tui.widgets.timeline_view import TimelineView
    from tui.widgets.virtual_list import VirtualList

    text = README.read_text()
    keys_table = text[text.index("### Keys"): text.index("### The filter language")]
    missing = []
    for cls in (NetinspectApp, ConnectionsScreen, ConnectionScreen, SequenceScreen, ConnectionList, TimelineView,
                VirtualList, FilterBar, WalkthroughScreen):
        for b in bindings_of(cls):
            for key in b.key.split(","):
                shown = KEY_NAMES.get(key, key)
                if f"`{shown}`" not in keys_table:
                    missing.append((cls.__name__, key, shown))
    assert not missing


def test_filter_examples_in_the_readme_parse():
    text = README.read_text()
    table = text[text.index("### The filter language"): text.index("### `netinspect live")]
    examples = []
    for line in table.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0]
            examples += [e.replace("\\|", "|") for e in re.findall(r"`([^`]+)`", first)]
    assert len(examples) >= 12
    for example in examples:
        Filter(example)
