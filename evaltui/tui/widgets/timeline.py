"""A bar per span on a shared axis: time (offset and length), tokens or cost.

Line API: only the visible lines are rendered, so a trace of thousands of spans scrolls.
The axis line stays on top while the spans scroll under it.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.trace_data import SpanNode, TraceData, format_cost, format_duration, format_tokens

SCALES = ("duration", "tokens", "cost")
TYPE_COLOURS = {
    "eval": "#56b6c2",
    "task": "#61afef",
    "llm": "#c678dd",
    "tool": "#e5c07b",
    "function": "#98c379",
    "score": "#98c379",
    "review": "#d19a66",
}
OTHER_COLOUR = "#8b949e"
ERROR_COLOUR = "#e06c75"
EIGHTHS = " ▏▎▍▌▋▊▉█"
VALUE_CELLS = 10


class Timeline(ScrollView, can_focus=True):
    """Spans of one trace as bars; j / k move, m changes what the bars measure."""

    BINDINGS = [
        Binding("j,down", "cursor(1)", "Down", show=False, id="timeline.cursor-down"),
        Binding("k,up", "cursor(-1)", "Up", show=False, id="timeline.cursor-up"),
        Binding("g,home", "cursor_to(0)", "First span", show=False, id="timeline.cursor-first"),
        Binding("G,end", "cursor_to(-1)", "Last span", show=False, id="timeline.cursor-last"),
        Binding("m", "cycle_scale", "Scale: time/tokens/cost", id="timeline.scale"),
    ]
    HELP_GROUP = "Timeline"
    COMPONENT_CLASSES = {"timeline--cursor", "timeline--axis", "timeline--label"}
    DEFAULT_CSS = """
    Timeline { height: 1fr; }
    Timeline > .timeline--cursor { background: $accent 40%; }
    Timeline:focus > .timeline--cursor { background: $accent 70%; }
    Timeline > .timeline--axis { color: $text-muted; }
    Timeline > .timeline--label { color: $text; }
    """

    scale: reactive[str] = reactive("duration")
    cursor: reactive[int] = reactive(0)

    class SpanSelected(Message):
        def __init__(self, span_id: str | None) -> None:
            self.span_id = span_id
            super().__init__()

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.trace: TraceData | None = None
        self.spans: list[SpanNode] = []

    def show_trace(self, trace: TraceData, select: str | None = None) -> None:
        self.trace = trace
        self.spans = list(trace.spans)
        self.virtual_size = Size(0, len(self.spans) + 1)  # no horizontal scrolling
        idx = next((i for i, s in enumerate(self.spans) if s.span_id == select), 0)
        self.set_reactive(Timeline.cursor, idx)
        self._scroll_cursor_into_view()
        self.refresh()

    def select_span(self, span_id: str) -> None:
        idx = next((i for i, s in enumerate(self.spans) if s.span_id == span_id), None)
        if idx is not None and idx != self.cursor:
            self.set_reactive(Timeline.cursor, idx)
            self._scroll_cursor_into_view()
            self.refresh()

    @property
    def selected(self) -> SpanNode | None:
        return self.spans[self.cursor] if 0 <= self.cursor < len(self.spans) else None

    # -- actions ---------------------------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        if self.spans:
            self.cursor = max(0, min(len(self.spans) - 1, self.cursor + delta))

    def action_cursor_to(self, index: int) -> None:
        if self.spans:
            self.cursor = index % len(self.spans)

    def action_cycle_scale(self) -> None:
        self.scale = SCALES[(SCALES.index(self.scale) + 1) % len(SCALES)]

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_cursor_into_view()
        self.refresh()
        span = self.selected
        self.post_message(self.SpanSelected(span.span_id if span else None))

    def watch_scale(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(0, len(self.spans) + 1)  # no horizontal scrolling

    def _scroll_cursor_into_view(self) -> None:
        body = max(self.scrollable_content_region.height - 1, 1)
        if self.cursor < self.scroll_y:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= self.scroll_y + body:
            self.scroll_to(y=self.cursor - body + 1, animate=False, immediate=True)

    # -- painting --------------------------------------------------------------------------

    def _measure(self, span: SpanNode) -> tuple[float, float] | None:
        """(offset, length) of a span's bar in axis units, or None when it has no value."""
        if self.scale == "duration":
            t0 = self.trace.t0 if self.trace else None
            if span.start is None or t0 is None:
                return None
            return (span.start - t0, max((span.end or span.start) - span.start, 0.0))
        value = span.tokens if self.scale == "tokens" else span.cost
        return None if value is None else (0.0, float(value))

    def _axis_max(self) -> float:
        if self.scale == "duration" and self.trace is not None:
            t0, t1 = self.trace.t0, self.trace.t1
            return (t1 - t0) if t0 is not None and t1 is not None and t1 > t0 else 0.0
        # tokens/cost: the largest single span (parents do not sum children)
        vals = [m[1] for s in self.spans if (m := self._measure(s)) is not None]
        return max(vals) if vals else 0.0

    def _format(self, value: float | None) -> str:
        if value is None:
            return ""
        if self.scale == "duration":
            return format_duration(value)
        if self.scale == "tokens":
            return format_tokens(value)
        return format_cost(value)

    def _label_cells(self) -> int:
        return max(12, min(32, self.scrollable_content_region.width // 3))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width  # without the scrollbar
        label_w = self._label_cells()
        bar_w = max(width - label_w - VALUE_CELLS - 2, 4)
        # only the colours of the component styles: their backgrounds would hide the cursor row
        axis_style = Style(color=self.get_component_rich_style("timeline--axis").color)
        label_style = Style(color=self.get_component_rich_style("timeline--label").color)
        if y == 0:
            return self._axis_line(width, label_w, bar_w, axis_style)
        idx = int(self.scroll_y) + y - 1
        if idx >= len(self.spans):
            return Strip.blank(width, self.rich_style)
        span = self.spans[idx]
        base = self.rich_style
        if idx == self.cursor:
            base = base + self.get_component_rich_style("timeline--cursor")
        label = ("  " * min(span.depth, 8)) + safe_text(span.name, label_w)
        label = safe_text(label, label_w - 1)
        segments = [Segment(label.ljust(label_w - 1) + " ", base + label_style)]
        colour = ERROR_COLOUR if span.has_error else TYPE_COLOURS.get(span.type, OTHER_COLOUR)
        bar_style = base + Style(color=colour)
        measure = self._measure(span)
        total = self._axis_max()
        if measure is None or total <= 0:
            segments.append(Segment(" " * bar_w, base))
            value_text = "" if measure is None else self._format(measure[1])
        else:
            offset, length = measure
            start_cells = offset / total * bar_w
            length_cells = length / total * bar_w
            lead = min(int(start_cells), bar_w - 1)
            eighths = max(round(length_cells * 8), 1)  # every span shows at least a sliver
            full, part = divmod(eighths, 8)
            full = min(full, bar_w - lead)
            bar = "█" * full + (EIGHTHS[part] if part and lead + full < bar_w else "")
            segments.append(Segment(" " * lead, base))
            segments.append(Segment(bar, bar_style))
            segments.append(Segment(" " * max(bar_w - lead - len(bar), 0), base))
            value_text = self._format(length)
        segments.append(Segment(" " + value_text.rjust(VALUE_CELLS)[:VALUE_CELLS] + " ", base + axis_style))
        return Strip(segments).adjust_cell_length(width, base).crop(0, width)

    def _axis_line(self, width: int, label_w: int, bar_w: int, style: Style) -> Strip:
        total = self._axis_max()
        title = {"duration": "time", "tokens": "tokens", "cost": "cost"}[self.scale]
        left = f"{title} (m: change)".ljust(label_w)[:label_w]
        axis = [" "] * bar_w
        marks = [0.0, 0.25, 0.5, 0.75, 1.0] if bar_w >= 40 else [0.0, 0.5, 1.0]
        for f in marks:
            pos = min(int(f * (bar_w - 1)), bar_w - 1)
            axis[pos] = "┬" if f == 0 else ("┤" if f == 1 else "┼")
        for i, ch in enumerate(axis):
            if ch == " ":
                axis[i] = "─"
        label = self._format(total) if total else ""
        text = left + "".join(axis) + " " + label.rjust(VALUE_CELLS)[:VALUE_CELLS] + " "
        return Strip([Segment(text, self.rich_style + style)]).adjust_cell_length(width, self.rich_style)
