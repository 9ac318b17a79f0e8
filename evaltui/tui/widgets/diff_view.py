"""Diff mode (``d``): under the table, a word-level diff of the current row's output against
its match in a compared experiment (or against its own expected output), with each compared
experiment's scores for that case.

Full fields are read from the store and diffed in a worker (no size cap: a 1 MB output
shows "computing diff…" meanwhile, and the table stays responsive); the result is wrapped
into strips in the worker too and painted on the Line API, so scrolling a long diff costs
only the lines on screen.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from evaltui.query.compare import KEY, SCORE_PREFIX
from evaltui.query.textdiff import DELETE, EQUAL, INSERT, as_text, diff_stats, word_diff
from evaltui.store import load_span
from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["DiffPanel", "DiffView", "wrap_ops"]

_STYLES = {
    EQUAL: Style(),
    DELETE: Style(color="#ff8787", bgcolor="#4b1d1d", strike=True),
    INSERT: Style(color="#87ff87", bgcolor="#1d4b26", bold=True),
}


def wrap_ops(ops: list[tuple[str, str]], width: int) -> list[Strip]:
    """Diff runs as screen lines of at most ``width`` cells (text made safe, breaks kept)."""
    width = max(4, width)
    lines: list[Strip] = []
    segs: list[Segment] = []
    used = 0

    def flush() -> None:
        nonlocal segs, used
        lines.append(Strip(segs, used))
        segs, used = [], 0

    for op, raw in ops:
        style = _STYLES[op]
        text = safe_text(raw, newlines=True)
        pieces = text.split("\n")
        for n, piece in enumerate(pieces):
            if n:
                if op != EQUAL and not piece and n == len(pieces) - 1:
                    segs.append(Segment("↵", style))  # a removed / added line break shows
                    used += 1
                flush()
            while piece:
                room = width - used
                if piece.isascii():
                    part, piece = piece[:room], piece[room:]
                    size = len(part)
                else:
                    chopped = chop_cells(piece, room)
                    part = chopped[0]
                    if cell_len(part) > room:  # a wide character that does not fit
                        flush()
                        continue
                    piece = piece[len(part):]
                    size = cell_len(part)
                if part:
                    segs.append(Segment(part, style))
                    used += size
                if piece:
                    flush()
    if segs or not lines:
        flush()
    return lines


class DiffView(ScrollView, can_focus=True):
    """Pre-wrapped diff lines on the Line API."""

    BINDINGS = [
        Binding("j,down", "scroll_down", "Down", show=False, id="diff.scroll-down"),
        Binding("k,up", "scroll_up", "Up", show=False, id="diff.scroll-up"),
    ]

    DEFAULT_CSS = """
    DiffView { height: 1fr; background: $surface; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lines: list[Strip] = []

    def set_lines(self, lines: list[Strip]) -> None:
        self._lines = lines
        width = max((s.cell_length for s in lines), default=0)
        self.virtual_size = Size(width, len(lines))
        self.scroll_to(0, 0, animate=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        index = y + round(self.scroll_y)
        width = self.size.width
        if 0 <= index < len(self._lines):
            return self._lines[index].crop(round(self.scroll_x), round(self.scroll_x) + width).extend_cell_length(width)
        return Strip.blank(width)


class DiffPanel(Vertical):
    """The diff of the current row: a title line, per-experiment values, the diff."""

    class Ready(Message):
        def __init__(self, token: int, header: Text, values: Text, ops: list[tuple[str, str]] | None,
                     error: str | None = None) -> None:
            self.token = token
            self.header = header
            self.values = values
            self.ops = ops
            self.error = error
            super().__init__()

    class Wrapped(Message):
        def __init__(self, token: int, lines: list[Strip]) -> None:
            self.token = token
            self.lines = lines
            super().__init__()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = 0  # index of the compared experiment; == len(bases) means "expected"
        self._token = 0
        self._ops: list[tuple[str, str]] | None = None
        self._wrapped_width = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="diff-header", markup=False)
        yield Static("", id="diff-values", markup=False)
        yield DiffView(id="diff-view")

    def next_target(self, bases: int) -> None:
        self.target = (self.target + 1) % (bases + 1)

    def show_message(self, text: str) -> None:
        self.query_one("#diff-header", Static).update(Text(text, "italic"))
        self.query_one("#diff-values", Static).update("")
        self.query_one(DiffView).set_lines([])

    def load(self, store: Any, experiment: dict[str, Any], row: dict[str, Any], comparison: Any) -> None:
        self._token += 1
        bases = comparison.bases if comparison is not None else []
        if self.target > len(bases):
            self.target = 0
        self.query_one("#diff-header", Static).update(Text("computing diff…", "italic"))
        self._diff(self._token, store, experiment, row, comparison)

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff")
    def _diff(self, token: int, store: Any, experiment: dict[str, Any], row: dict[str, Any], comparison: Any) -> None:
        try:
            header, values, ops = compute_diff(store, experiment, row, comparison, self.target)
        except Exception as e:
            self.post_message(self.Ready(token, Text(), Text(), None, f"could not diff: {e}"))
            return
        self.post_message(self.Ready(token, header, values, ops))
        if ops is not None:
            self.post_message(self.Wrapped(token, wrap_ops(ops, self._width())))

    def _width(self) -> int:
        view = self.query_one(DiffView)
        return max(20, (view.size.width or self.app.size.width) - 1)

    def on_diff_panel_ready(self, message: Ready) -> None:
        if message.token != self._token:
            return
        if message.error:
            self.show_message(safe_text(message.error, 300))
            return
        self.query_one("#diff-header", Static).update(message.header)
        self.query_one("#diff-values", Static).update(message.values)
        self._ops = message.ops
        if message.ops is None:
            self.query_one(DiffView).set_lines([])

    def on_diff_panel_wrapped(self, message: Wrapped) -> None:
        if message.token != self._token:
            return
        self._wrapped_width = self._width()
        self.query_one(DiffView).set_lines(message.lines)

    def on_resize(self) -> None:
        if self._ops is not None and self._width() != self._wrapped_width:
            self._rewrap(self._token, self._ops, self._width())

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff-wrap")
    def _rewrap(self, token: int, ops: list[tuple[str, str]], width: int) -> None:
        self.post_message(self.Wrapped(token, wrap_ops(ops, width)))


def _partner(frame: pl.DataFrame, key: str | None) -> dict[str, Any] | None:
    if key is None or KEY not in frame.columns:
        return None
    hit = frame.filter(pl.col(KEY) == key)
    return hit.row(0, named=True) if hit.height else None


def _scores_text(row: dict[str, Any] | None) -> str:
    if row is None:
        return "no match"
    parts = [f"{k[len(SCORE_PREFIX):]} {v:.2f}" for k, v in row.items() if k.startswith(SCORE_PREFIX) and v is not None]
    if row.get("has_error"):
        parts.append("error")
    return " · ".join(parts) or "no scores"


def compute_diff(store: Any, experiment: dict[str, Any], row: dict[str, Any], comparison: Any,
                 target: int) -> tuple[Text, Text, list[tuple[str, str]] | None]:
    """(title, per-experiment values, diff runs) for one row; runs None when nothing to diff."""
    record = load_span(store, row["id"])
    output = as_text(record.get("output"))
    bases = comparison.bases if comparison is not None else []
    this_row = row
    key = row.get(KEY)
    if comparison is not None and "root_span_id" in comparison.this.columns:
        found = comparison.this.filter(pl.col("root_span_id") == row.get("root_span_id"))
        if found.height:
            this_row = found.row(0, named=True)
            key = this_row.get(KEY)
    values = Text(no_wrap=True, overflow="ellipsis", end="")
    values.append(safe_text(experiment["name"], 24), "bold")
    values.append(": " + safe_text(_scores_text(this_row), 120))
    partners: list[dict[str, Any] | None] = []
    for base, frame in zip(bases, comparison.base_frames if comparison else [], strict=False):
        partner = _partner(frame, key)
        partners.append(partner)
        values.append("\n")
        values.append(safe_text(base["name"], 24), "bold")
        values.append(": " + safe_text(_scores_text(partner), 120), "dim" if partner is None else "")
    header = Text(no_wrap=True, overflow="ellipsis", end="")
    header.append("Diff of output ", "bold")
    if target < len(bases):
        partner = partners[target]
        header.append(f"{safe_text(bases[target]['name'], 30)} → {safe_text(experiment['name'], 30)}", "bold")
        if partner is None:
            header.append("  no match in this experiment", "bold red")
            header.append("  (x: next)", "dim")
            return header, values, None
        other = as_text(load_span(store, partner["id"]).get("output"))
    else:
        header.append(f"expected → {safe_text(experiment['name'], 30)}", "bold")
        other = as_text(record.get("expected"))
    ops = word_diff(other, output)
    stats = diff_stats(ops)
    header.append(f"  −{stats['deleted']:,} +{stats['inserted']:,} words", "")
    header.append(f"  ({len(other):,} → {len(output):,} chars)", "dim")
    header.append("  X: diff against next", "dim")
    return header, values, ops
