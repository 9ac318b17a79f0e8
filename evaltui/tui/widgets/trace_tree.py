"""The span tree of one trace: name, type, duration, tokens, cost, scores, errors."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.trace_data import (
    SpanNode,
    TraceData,
    format_cost,
    format_duration,
    format_score,
    format_tokens,
)

TYPE_STYLES = {
    "eval": "bold #56b6c2",
    "task": "#61afef",
    "llm": "#c678dd",
    "tool": "#e5c07b",
    "function": "#98c379",
    "score": "#98c379",
    "review": "#d19a66",
}
NAME_CELLS = 40


def span_label(span: SpanNode) -> Text:
    """One tree line; every string from the span is made safe, never parsed as markup."""
    t = Text(no_wrap=True, overflow="ellipsis", end="")
    if span.has_error:
        t.append("✗ ", "bold red")
    t.append(safe_text(span.name, NAME_CELLS), "bold red" if span.has_error else "bold")
    if span.type and span.type != span.name:
        t.append(" " + safe_text(span.type, 12), TYPE_STYLES.get(span.type, "dim"))
    bits = [format_duration(span.duration), format_tokens(span.tokens), format_cost(span.cost)]
    bits = [b for b in bits if b]
    if bits:
        t.append("  " + " · ".join(bits), "dim")
    for name, value in list(span.scores.items())[:4]:
        t.append("  ")
        t.append(safe_text(name, 20), "#98c379" if (value or 0) >= 0.5 else "#e06c75")
        t.append(" " + format_score(value), "bold")
    if len(span.scores) > 4:
        t.append(f"  +{len(span.scores) - 4} scores", "dim")
    return t


def prepare_labels(trace: TraceData) -> None:
    """Make every span's tree line now (call it in the worker that loads the trace)."""
    trace.labels = {s.span_id: span_label(s) for s in trace.spans}


class TraceTree(Tree[str]):
    """Spans of one trace; highlighting a node posts SpanSelected."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="tree.cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="tree.cursor-up"),
        Binding("g,home", "cursor_first", "First span", show=False, id="tree.cursor-first"),
        Binding("G,end", "cursor_last", "Last span", show=False, id="tree.cursor-last"),
        Binding("l,right", "expand_node", "Expand", show=False, id="tree.expand"),
        Binding("h,left", "collapse_node", "Collapse / parent", show=False, id="tree.collapse"),
        Binding("space", "toggle_node", "Fold / unfold", show=False, id="tree.toggle"),
    ]
    HELP_GROUP = "Span tree"

    class SpanSelected(Message):
        def __init__(self, span_id: str | None) -> None:
            self.span_id = span_id
            super().__init__()

    def __init__(self, **kwargs) -> None:
        super().__init__("trace", **kwargs)
        self.show_root = True
        self.guide_depth = 3
        self._span_nodes: dict[str, TreeNode[str]] = {}

    def show_trace(self, trace: TraceData, select: str | None = None) -> None:
        self.clear()
        self._span_nodes = {}
        if trace.root is None:
            self.root.set_label(Text("(no spans)", "dim"))
            return
        labels = trace.labels

        def label(span: SpanNode) -> Text:
            made = labels.get(span.span_id)
            return made if made is not None else span_label(span)

        first = trace.spans[0]
        self.root.set_label(label(first))
        self.root.data = first.span_id
        self._span_nodes[first.span_id] = self.root

        def add(parent: TreeNode[str], span: SpanNode) -> None:
            for child in span.children:
                if child.children:
                    node = parent.add(label(child), data=child.span_id, expand=True)
                    add(node, child)
                else:
                    node = parent.add_leaf(label(child), data=child.span_id)
                self._span_nodes[child.span_id] = node

        add(self.root, first)
        # spans whose parent was never logged hang off the root, marked
        for orphan in trace.spans:
            if orphan.depth == 0 and orphan is not first:
                orphan_label = Text("(orphan) ", "italic dim") + label(orphan)
                node = self.root.add(orphan_label, data=orphan.span_id, expand=True)
                self._span_nodes[orphan.span_id] = node
                add(node, orphan)
        self.root.expand()
        self.select_span(select or first.span_id)

    def get_label_width(self, node: TreeNode[str]) -> int:
        # the tree measures every line on each rebuild; measure without re-rendering the label
        icon = (self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE) if node.allow_expand else ""
        return node.label.cell_len + cell_len(icon)

    def select_span(self, span_id: str) -> None:
        node = self._span_nodes.get(span_id)
        if node is None:
            return
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.call_after_refresh(self._move_to, node)

    def _move_to(self, node: TreeNode[str]) -> None:
        self.move_cursor(node)
        self.scroll_to_node(node, animate=False)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        event.stop()
        self.post_message(self.SpanSelected(event.node.data))

    def on_tree_node_selected(self, event: Tree.NodeSelected[str]) -> None:
        event.stop()

    def action_cursor_first(self) -> None:
        self.cursor_line = 0

    def action_cursor_last(self) -> None:
        self.cursor_line = self.last_line

    def action_expand_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.expand()

    def action_collapse_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded and node.children:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)
