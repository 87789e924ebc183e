"""The field tree of the selected event (or of a connection's summary record)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ..describe import Node, dict_tree, event_tree

#: nodes with more children than this start collapsed
_EXPAND_LIMIT = 16


class DetailTree(Tree[None]):
    """A read-only tree; :meth:`show_event` and :meth:`show_record` replace its content."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("(nothing selected)", **kwargs)
        self.show_root = True
        self.guide_depth = 2

    def _fill(self, node: TreeNode[None], kids: list[Node]) -> None:
        for label, children in kids:
            if children:
                child = node.add(label, expand=len(children) <= _EXPAND_LIMIT)
                self._fill(child, children)
            else:
                node.add_leaf(label)

    def show_tree(self, tree: Node) -> None:
        label, kids = tree
        self.clear()
        self.root.set_label(label)
        self._fill(self.root, kids)
        self.root.expand()
        self.scroll_home(animate=False)

    def show_event(self, event: Any, origin: float | None) -> None:
        self.show_tree(event_tree(event, origin))

    def show_record(self, title: str, record: dict[str, Any]) -> None:
        label, kids = dict_tree(title, record)
        self.show_tree((label, kids))

    def show_nothing(self, text: str = "(nothing selected)") -> None:
        self.clear()
        self.root.set_label(text)

    def lines(self) -> list[str]:
        """The labels of every node, depth-first (what a reader of the tree sees, for tests)."""
        out: list[str] = []

        def walk(node: TreeNode[None], depth: int) -> None:
            out.append("  " * depth + str(node.label))
            for child in node.children:
                walk(child, depth + 1)

        walk(self.root, 0)
        return out
