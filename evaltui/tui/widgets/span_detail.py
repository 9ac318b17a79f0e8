"""The selected span's fields: input, output, expected, metadata, scores, metrics, error.

Each field is a focusable box of coloured JSON built from the parsed value (never markup);
a huge value paints its first 200 KB and says so in the box's subtitle.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from evaltui.tui.clipboard import human_size
from evaltui.tui.widgets.comments import ReviewNotes
from evaltui.tui.widgets.json_text import PAINT_LIMIT, STYLE_NOTE, render_value
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.trace_data import SpanNode, TraceData, format_duration, format_score
from evaltui.tui.widgets.trace_tree import TYPE_STYLES

FIELDS = ("input", "output", "expected", "error", "scores", "metadata", "metrics")


class FieldView(Static, can_focus=True):
    """One field of the span; focus it (tab) to make y / e act on it."""

    def __init__(self, field: str, **kwargs: Any) -> None:
        super().__init__("", id=f"field-{field}", classes="field-view", **kwargs)
        self.field = field
        self.border_title = field

    def on_focus(self) -> None:
        detail = next((a for a in self.ancestors if isinstance(a, SpanDetail)), None)
        if detail is not None:
            detail.current_field = self.field


class SpanDetail(VerticalScroll, can_focus=False):
    """Fields of one span, scrollable; long strings wrap."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace: TraceData | None = None
        self.span: SpanNode | None = None
        self.current_field: str | None = None
        self._scorers_of: tuple[SpanNode, list[SpanNode]] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="span-head")
        for f in FIELDS:
            yield FieldView(f)
        yield ReviewNotes(id="review-notes")  # the trace's comments and history

    def field_value(self, field: str) -> Any:
        """The full value of a field of the shown span (scores include the scorers' notes)."""
        if self.span is None:
            return None
        return self.span.record.get(field)

    def present_fields(self) -> list[str]:
        return [f for f in FIELDS if self._has(f)]

    def _has(self, field: str) -> bool:
        if self.span is None:
            return False
        if field == "scores":
            return bool(self.span.scores) or any(d.scores for d in self._scorers())
        v = self.span.record.get(field)
        return v is not None and v != {} and v != []

    def active_field(self) -> str | None:
        """The field y / e act on: the focused one, else the last focused, else output/input."""
        present = self.present_fields()
        if self.current_field in present:
            return self.current_field
        for f in ("output", "input", "error", "expected", "metadata"):
            if f in present:
                return f
        return present[0] if present else None

    def _scorers(self) -> list[SpanNode]:
        if self.trace is None or self.span is None:
            return []
        # asked twice a span shown (has it scores, then their text): a root has every span below it
        if self._scorers_of is not None and self._scorers_of[0] is self.span:
            return self._scorers_of[1]
        found = [d for d in self.trace.descendants(self.span) if d.type == "score" or d.scores]
        self._scorers_of = (self.span, found)
        return found

    def show_span(self, trace: TraceData, span: SpanNode | None) -> None:
        self.trace, self.span = trace, span
        self.query_one(ReviewNotes).for_trace(trace)
        head = self.query_one("#span-head", Static)
        if span is None:
            head.update(Text("no span selected", "dim"))
            for fv in self.query(FieldView):
                fv.display = False
            return
        t = Text(no_wrap=False, end="")
        t.append(safe_text(span.name, 80), "bold")
        if span.type and span.type != span.name:
            t.append("  " + safe_text(span.type, 20), TYPE_STYLES.get(span.type, "dim"))
        dur = format_duration(span.duration)
        if dur:
            t.append("  " + dur, "dim")
        t.append("\nspan " + safe_text(span.span_id, 40), "dim")
        if span.record.get("created"):
            t.append("  ·  " + safe_text(span.record["created"], 40), "dim")
        head.update(t)
        for fv in self.query(FieldView):
            present = self._has(fv.field)
            fv.display = present
            if not present:
                continue
            if fv.field == "scores":
                fv.update(self._scores_text(span))
                fv.border_title = fv.field
            elif fv.field == "metrics":
                fv.update(render_value(self._metrics_value(span)).text)
                fv.border_title = fv.field
            else:
                value = span.record.get(fv.field)
                rendered = render_value(value, PAINT_LIMIT)
                text = rendered.text
                if fv.field == "error":
                    text.stylize("#e06c75")
                fv.update(text)
                # said at the top of the box: its bottom is 200 KB further down
                fv.border_title = (
                    f"{fv.field} · showing {human_size(rendered.painted)} of {human_size(rendered.total)};"
                    " e opens all" if rendered.truncated else fv.field
                )
        self.scroll_home(animate=False)

    def _metrics_value(self, span: SpanNode) -> dict[str, Any]:
        m = dict(span.metrics)
        out: dict[str, Any] = {}
        if span.duration is not None:
            out["duration"] = format_duration(span.duration)
        if self.trace is not None and self.trace.t0 is not None and span.start is not None:
            out["starts_at"] = "+" + format_duration(span.start - self.trace.t0)
        out.update(m)
        return out

    def _scores_text(self, span: SpanNode) -> Text:
        t = Text(no_wrap=False, end="")
        lines = 0

        def score_line(name: str, value: Any, explanation: str | None, source: str | None) -> None:
            nonlocal lines
            if lines:
                t.append("\n")
            lines += 1
            ok = isinstance(value, (int, float)) and value >= 0.5
            t.append(safe_text(name, 40), "bold #98c379" if ok else "bold #e06c75")
            t.append("  " + (format_score(value) if value is None or isinstance(value, (int, float))
                             else safe_text(value, 20)), "bold")
            if source:
                t.append("  from " + safe_text(source, 40), "dim")
            if explanation:
                t.append("\n  ")
                t.append(safe_text(explanation, 4000, newlines=True).replace("\n", "\n  "), STYLE_NOTE)

        for name, value in span.scores.items():
            score_line(name, value, span.explanation() if span.type == "score" else None, None)
        for scorer in self._scorers():
            if scorer is span:
                continue
            if scorer.has_error and not scorer.scores:
                if lines:
                    t.append("\n")
                lines += 1
                t.append(safe_text(scorer.name, 40) + "  raised an error", "bold #e06c75")
                continue
            for name, value in scorer.scores.items():
                score_line(name, value, scorer.explanation(), scorer.name)
        return t
