"""The trace pane: one trace as a span tree, a timeline or a conversation, with span details.

The screen loads the trace (a worker) and hands it over with :meth:`TracePane.show_trace`;
the pane only paints and routes keys.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import ContentSwitcher, Static

from evaltui.tui.widgets.text_safety import safe_text

if TYPE_CHECKING:
    from evaltui.tui.widgets.span_detail import SpanDetail
    from evaltui.tui.widgets.thread_view import ThreadView
    from evaltui.tui.widgets.timeline import Timeline
    from evaltui.tui.widgets.trace_data import SpanNode, TraceData
    from evaltui.tui.widgets.trace_tree import TraceTree

VIEWS = ("tree", "timeline", "thread")


def _views() -> tuple[type[SpanDetail], type[ThreadView], type[Timeline], type[TraceTree]]:
    """The view widgets, imported when the pane first shows a trace (not at start-up)."""
    from evaltui.tui.widgets.span_detail import SpanDetail
    from evaltui.tui.widgets.thread_view import ThreadView
    from evaltui.tui.widgets.timeline import Timeline
    from evaltui.tui.widgets.trace_tree import TraceTree

    return SpanDetail, ThreadView, Timeline, TraceTree


class TracePane(Vertical):
    """Views of one trace (the screen's 1 / 2 / 3 switch them); y / Y / e act on the selected span."""

    BINDINGS = [
        Binding("e", "edit_field", "Open in $EDITOR", id="pane.edit-field"),
        Binding("y", "copy_field", "Copy field", id="pane.copy-field"),
        Binding("Y", "copy_span", "Copy span JSON", show=False, id="pane.copy-span"),
    ]
    HELP_GROUP = "Trace pane"

    view: reactive[str] = reactive("tree")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace: TraceData | None = None
        self.selected: SpanNode | None = None
        self._thread_for: TraceData | None = None
        # the views are mounted on first use: a closed pane costs one widget, not twenty
        self._built = False
        self._building = False
        self._pending: tuple[TraceData, str | None] | None = None
        self._focus_pending = False

    def compose(self) -> ComposeResult:
        yield Static("", id="pane-title")

    @property
    def ready(self) -> bool:
        """True once the views are mounted (they are, soon after the first trace is shown)."""
        return self._built

    def prepare(self) -> None:
        """Mount the views now (call when idle), so the first trace opens without the wait."""
        self._build()

    def _build(self) -> None:
        if self._built or self._building:
            return
        self._building = True
        self.call_later(self._mount_views)

    async def _mount_views(self) -> None:
        SpanDetail, ThreadView, Timeline, TraceTree = _views()
        views = ContentSwitcher(
            Horizontal(
                ContentSwitcher(TraceTree(id="tree"), Timeline(id="timeline"), initial="tree", id="pane-left"),
                SpanDetail(id="detail"),
                id="spans-view",
            ),
            ThreadView(id="thread"),
            initial="spans-view",
            id="pane-views",
        )
        await self.mount(views)
        self._built = True
        self._building = False
        pending, self._pending = self._pending, None
        if pending is not None:
            self.show_trace(*pending)
        focus, self._focus_pending = self._focus_pending, False
        self._apply_view(self.view, focus)

    # -- showing a trace -------------------------------------------------------------------

    def show_loading(self, what: str) -> None:
        self.query_one("#pane-title", Static).update(Text(f"loading {what}…", "dim"))

    def show_error(self, message: str) -> None:
        self.query_one("#pane-title", Static).update(Text(safe_text(message, 400), "bold red"))

    def show_trace(self, trace: TraceData, select: str | None = None) -> None:
        """Show ``trace``; ``select`` is a span id or row id to put the cursor on."""
        self.trace = trace
        node = trace.find(select) or trace.root
        self.selected = node
        if not self._built:
            self._pending = (trace, select)
            self._update_title()
            self._build()
            return
        self.query_one("#tree").show_trace(trace, node.span_id if node else None)
        self.query_one("#timeline").show_trace(trace, node.span_id if node else None)
        self.query_one("#detail").show_span(trace, node)
        self._thread_for = None
        if self.view == "thread":
            self._show_thread()
        self._update_title()

    def _show_thread(self) -> None:
        if self.trace is not None and self._thread_for is not self.trace:
            self.query_one("#thread").show_trace(self.trace)
            self._thread_for = self.trace

    def _update_title(self) -> None:
        from evaltui.tui.widgets.trace_data import format_cost, format_duration, format_tokens

        t = Text(no_wrap=True, overflow="ellipsis", end="")
        trace = self.trace
        if trace is not None and trace.root is not None:
            root = trace.root
            t.append(safe_text(root.name, 40), "bold")
            n = len(trace.spans)
            bits = [f"{n} span{'s' if n != 1 else ''}", format_duration(root.duration)]
            tokens, cost, errors = trace.totals()
            bits += [format_tokens(tokens) if tokens else "", format_cost(cost) if cost else ""]
            t.append("  " + " · ".join(b for b in bits if b), "dim")
            if errors:
                t.append(f"  ✗ {errors} error{'s' if errors != 1 else ''}", "bold red")
            t.append("   ")
        for i, v in enumerate(VIEWS, 1):
            style = "reverse bold" if v == self.view else "dim"
            t.append(f" {i} {v} ", style)
        self.query_one("#pane-title", Static).update(t)

    # -- views -----------------------------------------------------------------------------

    def watch_view(self, view: str) -> None:
        if not self._built:
            self._update_title()
            return
        self._apply_view(view, True)

    def _apply_view(self, view: str, focus: bool) -> None:
        switcher = self.query_one("#pane-views", ContentSwitcher)
        if view == "thread":
            switcher.current = "thread"
            self._show_thread()
            if focus:
                self.query_one("#thread").focus()
        else:
            switcher.current = "spans-view"
            self.query_one("#pane-left", ContentSwitcher).current = view
            self.query_one("#spans-view").set_class(view == "timeline", "-timeline")
            target = self.query_one("#tree") if view == "tree" else self.query_one("#timeline")
            if self.selected is not None:
                target.select_span(self.selected.span_id)
            if focus:
                target.focus()
        self._update_title()

    def action_view(self, view: str) -> None:
        if view in VIEWS:
            self.view = view

    def focus_view(self) -> None:
        if not self._built:
            self._focus_pending = True  # the views are mounted with the first trace
            return
        if self.view == "thread":
            self.query_one("#thread").focus()
        elif self.view == "timeline":
            self.query_one("#timeline").focus()
        else:
            self.query_one("#tree").focus()

    def on_trace_tree_span_selected(self, event: TraceTree.SpanSelected) -> None:
        self._select(event.span_id)

    def on_timeline_span_selected(self, event: Timeline.SpanSelected) -> None:
        self._select(event.span_id)

    def _select(self, span_id: str | None) -> None:
        if self.trace is None or not self._built:
            return
        node = self.trace.find(span_id)
        if node is None or node is self.selected:
            return
        self.selected = node
        self.query_one("#detail").show_span(self.trace, node)

    # -- copy and edit ---------------------------------------------------------------------

    def _field(self) -> tuple[str, Any] | None:
        if not self._built:
            return None
        detail = self.query_one("#detail")
        field = detail.active_field()
        if field is None or self.selected is None:
            return None
        return field, detail.field_value(field)

    def action_copy_field(self) -> None:
        from evaltui.tui.widgets.json_text import full_text

        found = self._field()
        if found is None:
            self.app.notify("Nothing to copy: the span has no fields", severity="warning")
            return
        field, value = found
        self.app.copy_text(full_text(value), f"{field} of span {self.selected.name}")  # type: ignore[attr-defined]

    def action_copy_span(self) -> None:
        if self.selected is None:
            return
        text = json.dumps(self.selected.record, ensure_ascii=False, indent=2, default=str)
        self.app.copy_text(text, f"span {self.selected.name} as JSON")  # type: ignore[attr-defined]

    def action_edit_field(self) -> None:
        from evaltui.tui.widgets.json_text import full_text

        found = self._field()
        if found is None:
            self.app.notify("Nothing to open: the span has no fields", severity="warning")
            return
        field, value = found
        suffix = ".txt" if isinstance(value, str) else ".json"
        self.app.open_in_editor(full_text(value), f"{self.selected.name}-{field}", suffix)  # type: ignore[attr-defined]
