"""The span tree of one trace: name, type, duration, tokens, cost, scores, errors.

Line API: the tree is a flat list of the lines that are shown (expanded parents' children),
rebuilt only on expand / collapse, and ``render_line`` paints the ones on screen. A span's
label is made the first time it is painted, so a 1,000-span trace costs a screenful of
labels, not a thousand widgets' worth of layout.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

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


def prepare_labels(trace: TraceData, limit: int = 200) -> None:
    """Make the first ``limit`` spans' tree lines now (in the worker that loads the trace).

    The rest are made when they are first painted: a big trace's labels are not all needed.
    """
    trace.labels = {s.span_id: span_label(s) for s in trace.spans[:limit]}
    # and their segments (what the tree paints): rendering them was half of the first frame's
    # tree on the event loop. Styles here are plain style strings, so any console renders
    # them alike; a private one, as the app's console belongs to the event loop.
    console = Console(markup=False, highlight=False, emoji=False)
    trace.segments = {key: list(label.render(console)) for key, label in trace.labels.items()}


ORPHAN = Text("(orphan) ", "italic dim")
ICON_EXPANDED = "▼ "
ICON_COLLAPSED = "▶ "


class SpanLine:
    """One span's node in the tree: what the cursor is on (``data`` is the span id)."""

    __slots__ = ("_expanded", "_tree", "children", "orphan", "parent", "span")

    def __init__(self, tree: TraceTree, span: SpanNode, parent: SpanLine | None, orphan: bool = False) -> None:
        self._tree = tree
        self.span = span
        self.parent = parent
        self.children: list[SpanLine] = []
        self.orphan = orphan
        self._expanded = True

    @property
    def data(self) -> str:
        return self.span.span_id

    @property
    def label(self) -> Text:
        return self._tree.label_of(self)

    @property
    def allow_expand(self) -> bool:
        return bool(self.children)

    @property
    def is_expanded(self) -> bool:
        return self._expanded and bool(self.children)

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def expand(self) -> None:
        if not self._expanded:
            self._expanded = True
            self._tree.lines_changed()

    def collapse(self) -> None:
        if self._expanded:
            self._expanded = False
            self._tree.lines_changed()

    def toggle(self) -> None:
        if self._expanded:
            self.collapse()
        else:
            self.expand()

    def __repr__(self) -> str:
        return f"SpanLine({self.span.span_id!r})"


class TraceTree(ScrollView, can_focus=True):
    """Spans of one trace; moving the cursor posts SpanSelected."""

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
    COMPONENT_CLASSES: ClassVar[set[str]] = {"trace-tree--guides", "trace-tree--cursor"}
    DEFAULT_CSS = """
    TraceTree {
        background: $surface;
        color: $foreground;
        & > .trace-tree--guides { color: $surface-lighten-2; }
        & > .trace-tree--cursor {
            text-style: $block-cursor-blurred-text-style;
            background: $block-cursor-blurred-background;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .trace-tree--guides { color: $surface-lighten-3; }
            & > .trace-tree--cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    GUIDE_CELLS = 3

    class SpanSelected(Message):
        """The cursor is on another span; a newer one in the queue replaces an older one."""

        def __init__(self, span_id: str | None) -> None:
            self.span_id = span_id
            super().__init__()

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, TraceTree.SpanSelected)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace: TraceData | None = None
        self.root: SpanLine | None = None
        self._by_span: dict[str, SpanLine] = {}
        self._lines: list[tuple[SpanLine, str]] = []  # shown lines: node and its guides
        self._index: dict[str, int] | None = None  # span id -> line, made on demand
        self._cursor = 0
        self._labels: dict[str, list[Segment]] = {}
        self._styles: dict[str, Style] | None = None
        self._empty = False

    # -- the model -------------------------------------------------------------------------

    def show_trace(self, trace: TraceData, select: str | None = None) -> None:
        self.trace = trace
        self._labels = {}
        self._by_span = {}
        self._empty = trace.root is None
        if trace.root is None or not trace.spans:
            self.root = None
            self._set_lines([])
            self.refresh()
            return
        first = trace.spans[0]

        def add(line: SpanLine) -> None:
            self._by_span[line.span.span_id] = line
            stack = [line]
            while stack:
                parent = stack.pop()
                for child in parent.span.children:
                    node = SpanLine(self, child, parent)
                    parent.children.append(node)
                    self._by_span[child.span_id] = node
                    stack.append(node)

        self.root = SpanLine(self, first, None)
        add(self.root)
        # spans whose parent was never logged hang off the root, marked
        for span in trace.spans:
            if span.depth == 0 and span is not first:
                orphan = SpanLine(self, span, self.root, orphan=True)
                self.root.children.append(orphan)
                add(orphan)
        self._cursor = 0
        self._set_lines(self._flatten())
        self.select_span(select or first.span_id)
        self.refresh()

    def _flatten(self) -> list[tuple[SpanLine, str]]:
        if self.root is None:
            return []
        out: list[tuple[SpanLine, str]] = [(self.root, "")]
        # (node, the guides of its parent's column, is last child)
        stack: list[tuple[SpanLine, str, bool]] = []
        if self.root.is_expanded:
            kids = self.root.children
            stack.extend((c, "", i == len(kids) - 1) for i, c in reversed(list(enumerate(kids))))
        while stack:
            node, above, last = stack.pop()
            out.append((node, above + ("└─ " if last else "├─ ")))
            if node.is_expanded:
                below = above + ("   " if last else "│  ")
                kids = node.children
                stack.extend((c, below, i == len(kids) - 1) for i, c in reversed(list(enumerate(kids))))
        return out

    def _set_lines(self, lines: list[tuple[SpanLine, str]]) -> None:
        self._lines = lines
        self._index = None
        self.virtual_size = Size(0, max(len(lines), 1))  # no horizontal scrolling
        self._cursor = max(0, min(self._cursor, len(lines) - 1))

    def lines_changed(self) -> None:
        """A node was expanded or collapsed: rebuild the shown lines, keep the cursor's span."""
        node = self.cursor_node
        self._set_lines(self._flatten())
        if node is not None:
            index = self._line_of(node.span.span_id)
            if index is None:  # hidden under a collapsed parent: go to the nearest shown one
                parent = node.parent
                while parent is not None and self._line_of(parent.span.span_id) is None:
                    parent = parent.parent
                index = self._line_of(parent.span.span_id) if parent is not None else 0
            self._set_cursor(index or 0, force=True)
        self.refresh()

    def _line_of(self, span_id: str) -> int | None:
        if self._index is None:
            self._index = {node.span.span_id: i for i, (node, _) in enumerate(self._lines)}
        return self._index.get(span_id)

    def label_of(self, node: SpanLine) -> Text:
        made = self.trace.labels.get(node.span.span_id) if self.trace is not None else None
        label = made if made is not None else span_label(node.span)
        return ORPHAN + label if node.orphan else label

    # -- the cursor (the names follow Textual's Tree, which the tests and pane use) --------

    @property
    def cursor_line(self) -> int:
        return self._cursor

    @cursor_line.setter
    def cursor_line(self, line: int) -> None:
        self._set_cursor(line)

    @property
    def last_line(self) -> int:
        return len(self._lines) - 1

    @property
    def cursor_node(self) -> SpanLine | None:
        if 0 <= self._cursor < len(self._lines):
            return self._lines[self._cursor][0]
        return None

    def _set_cursor(self, line: int, force: bool = False) -> None:
        line = max(0, min(line, len(self._lines) - 1))
        old = self._cursor
        if line == old and not force:
            return
        self._cursor = line
        if not self._scroll_cursor_into_view():
            self._refresh_line(old)
            self._refresh_line(line)
        node = self.cursor_node
        self.post_message(self.SpanSelected(node.span.span_id if node else None))

    def _refresh_line(self, line: int) -> None:
        y = line - round(self.scroll_y)
        if 0 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_cursor_into_view(self) -> bool:
        height = self.scrollable_content_region.height
        if not height:
            return False
        y = self.scroll_y
        if self._cursor < y:
            y = self._cursor
        elif self._cursor >= y + height:
            y = self._cursor - height + 1
        if round(y) != round(self.scroll_y):
            self.scroll_to(y=y, animate=False, immediate=True)
            return True
        return False

    def select_span(self, span_id: str) -> None:
        """Put the cursor on a span, unfolding its parents."""
        node = self._by_span.get(span_id)
        if node is None:
            return
        parent, folded = node.parent, False
        while parent is not None:
            if not parent._expanded:
                parent._expanded = True
                folded = True
            parent = parent.parent
        if folded:
            self._set_lines(self._flatten())
            self.refresh()
        line = self._line_of(span_id)
        if line is not None:
            self._set_cursor(line)

    def on_resize(self) -> None:
        self._scroll_cursor_into_view()

    # -- actions ---------------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self._set_cursor(self._cursor + 1)

    def action_cursor_up(self) -> None:
        self._set_cursor(self._cursor - 1)

    def action_cursor_first(self) -> None:
        self._set_cursor(0)

    def action_cursor_last(self) -> None:
        self._set_cursor(self.last_line)

    def action_page_down(self) -> None:
        self._set_cursor(self._cursor + max(1, self.scrollable_content_region.height - 1))

    def action_page_up(self) -> None:
        self._set_cursor(self._cursor - max(1, self.scrollable_content_region.height - 1))

    def action_expand_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.expand()

    def action_collapse_node(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            line = self._line_of(node.parent.span.span_id)
            if line is not None:
                self._set_cursor(line)

    def action_toggle_node(self) -> None:
        node = self.cursor_node
        if node is not None and node.allow_expand:
            node.toggle()

    def on_click(self, event: events.Click) -> None:
        line = event.y + round(self.scroll_y)
        if not 0 <= line < len(self._lines):
            return
        node, guides = self._lines[line]
        self._set_cursor(line)
        # a click on the ▼ / ▶ folds or unfolds
        if node.allow_expand and len(guides) <= event.x + round(self.scroll_x) < len(guides) + 2:
            node.toggle()

    # -- painting --------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles = None

    def _get_styles(self) -> dict[str, Style]:
        if self._styles is None:
            base = self.rich_style
            self._styles = {
                "base": base,
                "guides": base + Style(color=self.get_component_rich_style("trace-tree--guides").color),
                "cursor": self.get_component_rich_style("trace-tree--cursor", partial=True),
            }
        return self._styles

    def _label_segments(self, node: SpanLine) -> list[Segment]:
        key = node.span.span_id
        segments = self._labels.get(key)
        if segments is None and not node.orphan and self.trace is not None:
            segments = self.trace.segments.get(key)
        if segments is None:
            segments = list(self.label_of(node).render(self.app.console))
            if len(self._labels) > 4096:
                self._labels.clear()
            self._labels[key] = segments
        return segments

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        styles = self._get_styles()
        base = styles["base"]
        line = y + round(self.scroll_y)
        if line >= len(self._lines):
            if line == 0 and self._empty:
                return Strip([Segment("(no spans)", base + Style(dim=True))]).adjust_cell_length(width, base)
            return Strip.blank(width, base)
        node, guides = self._lines[line]
        label = self._label_segments(node)
        if line == self._cursor:
            label = list(Segment.apply_style(label, base, styles["cursor"]))
        else:
            label = list(Segment.apply_style(label, base))
        segments = [Segment(guides, styles["guides"])] if guides else []
        if node.allow_expand:
            icon = Segment(ICON_EXPANDED if node.is_expanded else ICON_COLLAPSED)
            segments += Segment.apply_style([icon], base, styles["cursor"] if line == self._cursor else None)
        segments += label
        return Strip(segments).crop(0, width).adjust_cell_length(width, base)
