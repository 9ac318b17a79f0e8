"""A trace's review notes in the trace pane: comments (author, time), reviewers' human
answers, and the history of review actions from the events table."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Static

from evaltui.store.review import human_answers, list_comments, trace_history
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.trace_data import TraceData

__all__ = ["ReviewNotes", "notes_text"]

HISTORY_LINES = 12  # the newest entries; older ones are counted, not shown


def _when(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def _answer(value: Any) -> str:
    if isinstance(value, float):
        return f"{value * 100:.0f}%" if 0 <= value <= 1 else f"{value:.3g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def notes_text(comments: list[dict[str, Any]], answers: dict[str, dict[str, Any]],
               history: list[dict[str, Any]], spans: dict[str, str] | None = None) -> Text:
    """The section's text: comments, human answers per reviewer, then the newest history.

    ``spans``: span id -> name, to say which span a comment is on.
    """
    spans = spans or {}
    t = Text(end="")
    t.append(f"Comments ({len(comments)})", "bold")
    if not comments:
        t.append("  none yet · i adds one", "dim")
    for c in comments:
        t.append("\n")
        t.append(safe_text(c["author"], 30), "bold #61afef")
        t.append("  " + _when(c["created"]), "dim")
        if c.get("span_id"):
            t.append("  on span " + safe_text(spans.get(c["span_id"], c["span_id"]), 40), "dim italic")
        t.append("\n  " + safe_text(c["text"], 2000, newlines=True).replace("\n", "\n  "))
    if answers:
        t.append("\n\nHuman scores", "bold")
        for reviewer, given in answers.items():
            t.append("\n")
            t.append(safe_text(reviewer, 30), "bold #61afef")
            for name, value in given.items():
                t.append("  " + safe_text(name, 30) + " ", "dim")
                t.append(safe_text(_answer(value), 200))
    t.append(f"\n\nHistory ({len(history)})", "bold")
    if not history:
        t.append("  no review actions yet", "dim")
    shown = history[-HISTORY_LINES:]
    if len(history) > len(shown):
        t.append(f"\n  … {len(history) - len(shown)} older", "dim")
    for e in shown:
        t.append("\n" + _when(e["ts"]) + "  ", "dim")
        t.append(safe_text(e["text"], 300))
    return t


class ReviewNotes(Static):
    """Comments, human answers and history of the trace the pane shows (read in a worker)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", classes="field-view", **kwargs)
        self.border_title = "review"
        self.key: tuple[str, str] | None = None  # (experiment id, root span id) shown
        self.comments: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.span_names: dict[str, str] = {}

    def for_trace(self, trace: TraceData) -> None:
        """Show this trace's notes (read again only when it is another trace)."""
        if getattr(self.app, "store", None) is None:
            self.display = False  # a pane outside evaltui's app (tests, embedding): no store to read
            return
        experiment_id, root_span_id = trace.experiment_id, trace.root_span_id
        self.span_names = {s.span_id: s.name for s in trace.spans}
        if self.key == (experiment_id, root_span_id):
            return
        self.key = (experiment_id, root_span_id)
        self.update(Text("loading comments…", "dim"))
        self._load(experiment_id, root_span_id)

    def reload(self) -> None:
        if self.key is not None:
            self._load(*self.key)

    @work(thread=True, exclusive=True, exit_on_error=False, group="review-notes")
    def _load(self, experiment_id: str, root_span_id: str) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        try:
            comments = list_comments(store, experiment_id, root_span_id)
            answers = human_answers(store, experiment_id, root_span_id)
            history = trace_history(store, experiment_id, root_span_id)
        except Exception as e:
            self.app.call_from_thread(self.update, Text(safe_text(f"could not read comments: {e}", 300), "red"))
            return
        self.app.call_from_thread(self._show, (experiment_id, root_span_id), comments, answers, history)

    def _show(self, key: tuple[str, str], comments: list[dict[str, Any]], answers: dict[str, dict[str, Any]],
              history: list[dict[str, Any]]) -> None:
        if key != self.key:
            return  # another trace is shown meanwhile
        self.comments, self.history = comments, history
        self.border_title = f"review · {len(comments)} comment{'s' if len(comments) != 1 else ''}"
        self.update(notes_text(comments, answers, history, self.span_names))
