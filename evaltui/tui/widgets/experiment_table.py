"""The experiment table: traces (or spans) of an experiment as a scrolling grid.

Built on Textual's Line API so it scales to 100k+ rows: a ``ScrollView`` whose
``virtual_size`` is the whole table, and ``render_line(y)`` paints one screen line on
demand. Only rows that are on screen are ever formatted: on a cache miss the table slices
the polars frame for the missing visible rows, turns just those cells into Python values
and renders them into ``Strip``s, which go into an LRU cache keyed by display row. Cursor
moves evict only the two rows they touch; data, column, width, density and style changes
clear the cache.

Layout (screen lines)::

    0        header labels       ┐ fixed: always drawn at the top, whatever scroll_y is
    1        header summaries    ┘
    2..      body: display rows, each ``row_height`` lines (1 compact, 3 tall)

Columns: pinned columns are drawn first and never scroll horizontally; a ``│`` divides
them from the rest, which scroll with ``scroll_x``. Every column is one padding cell plus
``width`` content cells.

The row model (``_RowModel``) maps display rows to frame rows: the identity, or with
groups (``set_data(..., groups=...)``) a header row per group followed by its rows unless
the group is collapsed (enter on a header toggles it). Sort keys show in the header
(``set_sort_keys``: ``▲1``/``▼2``), search matches are highlighted (``set_search``).
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import orjson
from rich.cells import cell_len, chop_cells, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.color import Color
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar
from textual.strip import Strip

from evaltui.lazy_polars import pl
from evaltui.query.arrange import Group
from evaltui.store.page import Page
from evaltui.tui.widgets.text_safety import ELLIPSIS, safe_text

__all__ = [
    "ColumnSpec",
    "ExperimentTable",
    "SubRowSpec",
    "column_summary",
    "format_cost",
    "format_duration",
    "format_tokens",
]

HEADER_HEIGHT = 2
TALL_LINES = 3
_ROW_CACHE_SIZE = 1024
_NUMERIC_KINDS = frozenset({"score", "number", "duration", "cost", "tokens"})
_COUNT_KEYS = frozenset({"errors", "scorer_errors", "llm_calls", "tool_calls", "span_count"})
_ERROR_KEYS = frozenset({"error", "has_error", "errors", "scorer_errors"})
# the table's styles that only the cursor row or the header use (focus changes them)
_CURSOR_STYLES = frozenset({"cursor-row", "cursor-cell", "header-cursor", "group-cursor"})


@dataclass
class ColumnSpec:
    """One column of the table.

    ``summary``: the header's second line. ``None`` (default) lets the table compute it from
    the frame it shows (``column_summary``: μ for scores, Σ for cost/tokens, p50 for
    durations, counts for errors/review); a string is shown as given (``""`` for none).
    """

    key: str  # frame column name, e.g. "output", "scores.Factuality", "metadata.category"
    label: str  # header text
    width: int  # content cells (the table adds one padding cell)
    kind: str = "text"  # text | score | number | duration | cost | tokens | tags | status
    visible: bool = True
    pinned: bool = False
    summary: str | None = None
    # a frame column of deltas (this - base) shown after the value, green when better; lower
    # is better for durations, tokens, cost and errors (``lower_is_better``)
    delta_key: str | None = None
    lower_is_better: bool = False


@dataclass
class SubRowSpec:
    """A line under every row (diff mode): one compared experiment's values for the row's case.

    ``columns`` maps a table column's key to the frame column holding the compared
    experiment's value (its trials averaged). In numeric columns a sub-row shows the value and
    its delta against the row above (that − this row), coloured for the compared experiment
    (green: it did better than this row). ``match`` names the frame column saying
    "matched" / "no match". Group header rows show the compared experiment's means over the
    group against the group's own means.
    """

    label: str
    match: str
    columns: dict[str, str] = field(default_factory=dict)


# -- formatting (pure functions; a cell is a (text, tone) pair) -----------------------------
#
# tone: "" plain, "dim", "error", "success", "warning", or a float in [0, 1] (score colour).


def format_duration(seconds: float) -> str:
    """``1.23s`` under a minute, ``2m05s`` under an hour, ``1h02m`` beyond."""
    if not math.isfinite(seconds):
        return str(seconds)
    if abs(seconds) < 60:
        return f"{seconds:.2f}s"
    total = int(round(seconds))
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


def _format_duration_short(seconds: float) -> str:
    """Three significant digits for header summaries: ``1.23s``, ``49.5s``, ``2m05s``."""
    if 10 <= abs(seconds) < 60:
        return f"{seconds:.1f}s"
    return format_duration(seconds)


def format_cost(dollars: float) -> str:
    """``$0.0012`` for fractions of a dollar, ``$1.23`` beyond, ``$12,345`` for large sums."""
    if not math.isfinite(dollars):
        return f"${dollars}"
    if dollars == 0:
        return "$0"
    if abs(dollars) < 1:
        return f"${dollars:.4f}"
    if abs(dollars) < 10_000:
        return f"${dollars:,.2f}"
    return f"${dollars:,.0f}"


def format_tokens(count: float) -> str:
    """Thousands separators: ``12,345``."""
    if isinstance(count, float) and not math.isfinite(count):
        return str(count)
    return f"{int(round(count)):,}"


def _format_compact(value: float) -> str:
    """``950``, ``12.3k``, ``4.5M`` (header summaries)."""
    value = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"


def _format_number(value: float | int) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _format_tags(value: Any) -> str:
    if isinstance(value, list):
        items = value
    elif isinstance(value, str):
        try:
            items = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if not isinstance(items, list):
            return value
    else:
        return str(value)
    return ", ".join(str(t) for t in items)


_STATUS_TONES = {"reviewed": "success", "in review": "warning", "in_review": "warning", "unreviewed": "dim"}


def format_cell(value: Any, kind: str, key: str = "") -> tuple[str, Any]:
    """A cell's raw (not yet made safe) text and tone for a frame value of a column kind."""
    if value is None or (isinstance(value, float) and math.isnan(value) and kind != "score"):
        return "–", "dim"
    if isinstance(value, bool):
        if key in _ERROR_KEYS:
            return ("✗ error", "error") if value else ("·", "dim")
        return ("✓", "success") if value else ("✗", "dim")
    if kind == "score" and isinstance(value, (int, float)):
        if math.isnan(value):
            return "–", "dim"
        return f"{value:.2f}", min(1.0, max(0.0, float(value)))
    if kind == "duration" and isinstance(value, (int, float)):
        return format_duration(float(value)), ""
    if kind == "cost" and isinstance(value, (int, float)):
        return format_cost(float(value)), ""
    if kind == "tokens" and isinstance(value, (int, float)):
        return format_tokens(value), ""
    if isinstance(value, (int, float)) and kind in ("number", "status", "text"):
        text = _format_number(value)
        if key in _ERROR_KEYS:
            return text, ("error" if value else "dim")
        return text, ""
    if kind == "tags":
        return _format_tags(value), ""
    if kind == "status" and isinstance(value, str):
        return value, _STATUS_TONES.get(value, "")
    if key in _ERROR_KEYS:
        return str(value), "error"
    return (value if isinstance(value, str) else str(value)), ""


class DeltaTone(tuple):
    """A cell's tone when a delta follows its value: (value tone, delta cells, delta tone)."""

    __slots__ = ()

    def __new__(cls, value: Any, suffix: int, delta: Any) -> DeltaTone:
        return super().__new__(cls, (value, suffix, delta))

    value = property(lambda self: self[0])
    suffix = property(lambda self: self[1])
    delta = property(lambda self: self[2])


def format_delta(delta: Any, kind: str, lower_is_better: bool = False) -> tuple[str, Any]:
    """A delta's text and tone: ``+0.12`` green when better, red when worse, ``=`` when equal."""
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return "–", "dim"
    d = float(delta)
    if abs(d) <= 1e-9:
        return "=", "dim"
    sign = "+" if d > 0 else "-"
    size = abs(d)
    if kind == "score":
        text = f"{size:.2f}"
    elif kind == "duration":
        text = format_duration(size)
    elif kind == "cost":
        text = format_cost(size)
    elif kind == "tokens":
        text = format_tokens(size)
    else:
        text = _format_number(round(size, 4) if size != int(size) else int(size))
    better = (d < 0) if lower_is_better else (d > 0)
    return sign + text, "success" if better else "error"


def with_delta(text: str, tone: Any, delta: Any, spec: ColumnSpec) -> tuple[str, Any]:
    """A value cell's text and tone with its delta appended (see ``ColumnSpec.delta_key``)."""
    if delta is None and text in ("–", ""):
        return text, tone
    dtext, dtone = format_delta(delta, spec.kind if spec.kind != "status" else "number", spec.lower_is_better)
    dtext = dtext.rjust(5)  # values of one column line up above "=" and "-0.20"
    return f"{text} {dtext}", DeltaTone(tone, cell_len(dtext), dtone)


def column_summary(frame: pl.DataFrame, spec: ColumnSpec) -> str | None:
    """The header summary of one column over ``frame`` (``None`` when the kind has none)."""
    if isinstance(frame, Page) or spec.key not in frame.columns or frame.height == 0:
        return None  # (a first page painted before polars is loaded: its summaries come with the frame)
    series = frame.get_column(spec.key)
    dtype = series.dtype
    try:
        if dtype == pl.Boolean:
            return f"Σ {int(series.sum() or 0):,}"
        numeric = dtype.is_numeric()
        if spec.kind == "score" and numeric:
            mean = series.mean()
            return None if mean is None else f"μ {mean:.2f}"
        if spec.kind == "cost" and numeric:
            return f"Σ {format_cost(float(series.sum() or 0))}"
        if spec.kind == "duration" and numeric:
            p50 = series.median()
            return None if p50 is None else f"p50 {_format_duration_short(float(p50))}"
        if spec.kind == "tokens" and numeric:
            return f"Σ {_format_compact(series.sum() or 0)}"
        if numeric and spec.key in _COUNT_KEYS:
            return f"Σ {_format_compact(series.sum() or 0)}"
        if numeric:
            mean = series.mean()
            return None if mean is None else f"μ {_format_compact(mean)}"
        if spec.key == "review_status":
            done = int((series == "reviewed").sum())
            return f"✓ {done:,}/{frame.height:,}"
        if spec.key == "error":
            return f"{frame.height - series.null_count():,} errors"
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return None
    return None


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to ``width`` cells, at most ``max_lines`` lines; a cut ends with ``…``.

    ``text`` is already cut short (see ``safe_text``), so wrapping all of it is cheap.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if cell_len(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            pieces = chop_cells(word, width) if cell_len(word) > width else [word]
            lines.extend(pieces[:-1])
            line = pieces[-1] if pieces else ""
        lines.append(line)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        if cell_len(last) >= width:
            last = set_cell_size(last, width - 1).rstrip(" ")
        lines[-1] = last + ELLIPSIS
    return lines


# -- row model -------------------------------------------------------------------------------


class _RowModel:
    """Display rows → frame rows: the identity, or group header rows each followed by the
    group's frame rows (none when collapsed). Groups hold consecutive frame rows.

    A display row whose ``frame_index`` is ``None`` is not a frame row (a group header);
    ``kind`` tells the renderer how to draw it.
    """

    def __init__(self, frame_rows: int, groups: list[Group] | None = None) -> None:
        self._count = frame_rows
        self.groups: list[Group] = list(groups or [])
        self._starts: list[int] = []  # display row of each group's header
        self._frame_starts = [g.start for g in self.groups]
        self._len = frame_rows
        self.rebuild()

    def rebuild(self) -> None:
        """Recount display rows (after a group is collapsed or expanded)."""
        if not self.groups:
            self._len = self._count
            return
        starts, pos = [], 0
        for g in self.groups:
            starts.append(pos)
            pos += 1 + (0 if g.collapsed else g.count)
        self._starts, self._len = starts, pos

    def __len__(self) -> int:
        return self._len

    def _group_index(self, row: int) -> int:
        return bisect.bisect_right(self._starts, row) - 1

    def group_at(self, row: int) -> Group | None:
        """The group whose header is display row ``row`` (None for data rows)."""
        if not self.groups or not 0 <= row < self._len:
            return None
        i = self._group_index(row)
        return self.groups[i] if self._starts[i] == row else None

    def group_of(self, row: int) -> Group | None:
        """The group display row ``row`` belongs to (header or member)."""
        if not self.groups or not 0 <= row < self._len:
            return None
        return self.groups[self._group_index(row)]

    def frame_index(self, row: int) -> int | None:
        if not 0 <= row < self._len:
            return None
        if not self.groups:
            return row
        i = self._group_index(row)
        offset = row - self._starts[i]
        return None if offset == 0 else self.groups[i].start + offset - 1

    def frame_indices(self, start: int, end: int) -> list[int | None]:
        if not self.groups:
            return list(range(start, end))
        return [self.frame_index(r) for r in range(start, end)]

    def display_row(self, frame_index: int) -> int:
        """Where frame row ``frame_index`` shows (its group's header when collapsed)."""
        if not self.groups:
            return frame_index
        i = max(0, bisect.bisect_right(self._frame_starts, frame_index) - 1)
        g = self.groups[i]
        return self._starts[i] if g.collapsed else self._starts[i] + 1 + (frame_index - g.start)

    def kind(self, row: int) -> str:
        return "group" if self.group_at(row) is not None else "data"


@dataclass(frozen=True)
class _Layout:
    """Where each visible column sits: pinned columns first, then the scrolling ones."""

    columns: tuple[ColumnSpec, ...]  # display order
    pinned_count: int
    pinned_width: int  # cells, including the divider when there are pinned columns
    offsets: tuple[int, ...]  # x of each column within its part (pinned part / scroll part)
    scroll_width: int

    def cell_width(self, index: int) -> int:
        return self.columns[index].width + 1


def _make_layout(columns: Iterable[ColumnSpec], view_width: int | None) -> _Layout:
    shown = [c for c in columns if c.visible]
    pinned = [c for c in shown if c.pinned]
    rest = [c for c in shown if not c.pinned]
    # Pinned columns that would leave less than a third of the screen become scrolling ones.
    if view_width:
        while pinned and sum(c.width + 1 for c in pinned) + 1 > view_width * 2 // 3:
            rest.insert(0, pinned.pop())
    offsets: list[int] = []
    x = 0
    for col in pinned:
        offsets.append(x)
        x += col.width + 1
    pinned_width = x + 1 if pinned else 0
    x = 0
    for col in rest:
        offsets.append(x)
        x += col.width + 1
    return _Layout(tuple(pinned + rest), len(pinned), pinned_width, tuple(offsets), x)


# -- the widget ----------------------------------------------------------------------------


class ExperimentTable(ScrollView, can_focus=True):
    """A virtual table over a polars frame: tall rows, pinned columns, summary headers."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="table.cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="table.cursor-up"),
        Binding("h,left", "cursor_left", "Left", show=False, id="table.cursor-left"),
        Binding("l,right", "cursor_right", "Right", show=False, id="table.cursor-right"),
        Binding("g,home", "cursor_first", "First row", show=False, id="table.first-row"),
        Binding("G,end", "cursor_last", "Last row", show=False, id="table.last-row"),
        Binding("ctrl+d,pagedown", "page_down", "Page down", show=False, id="table.page-down"),
        Binding("ctrl+u,pageup", "page_up", "Page up", show=False, id="table.page-up"),
        Binding("enter", "select_row", "Open", id="table.select-row"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "experiment-table--header",
        "experiment-table--header-cursor",
        "experiment-table--summary",
        "experiment-table--cursor-row",
        "experiment-table--odd-row",
        "experiment-table--cursor-cell",
        "experiment-table--divider",
        "experiment-table--dim",
        "experiment-table--error",
        "experiment-table--success",
        "experiment-table--warning",
        "experiment-table--score-low",
        "experiment-table--score-mid",
        "experiment-table--score-high",
        "experiment-table--group-row",
        "experiment-table--match",
        "experiment-table--selected-row",
    }

    DEFAULT_CSS = """
    ExperimentTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        & > .experiment-table--header { background: $panel; color: $foreground; text-style: bold; }
        & > .experiment-table--header-cursor { background: $panel; color: $accent; text-style: bold underline; }
        & > .experiment-table--summary { background: $panel; color: $text-muted; }
        & > .experiment-table--cursor-row { background: $boost; }
        & > .experiment-table--odd-row { background: $surface-lighten-1 50%; }
        & > .experiment-table--cursor-cell {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .experiment-table--divider { color: $panel-lighten-2; }
        & > .experiment-table--dim { color: $text-muted; }
        & > .experiment-table--error { color: $text-error; }
        & > .experiment-table--success { color: $text-success; }
        & > .experiment-table--warning { color: $text-warning; }
        & > .experiment-table--score-low { color: $error; }
        & > .experiment-table--score-mid { color: $warning; }
        & > .experiment-table--score-high { color: $success; }
        & > .experiment-table--group-row { background: $panel; text-style: bold; }
        & > .experiment-table--match { background: $warning 40%; color: $foreground; text-style: bold; }
        & > .experiment-table--selected-row { background: $accent 30%; }
        &:focus {
            & > .experiment-table--cursor-row { background: $primary 20%; }
            & > .experiment-table--cursor-cell {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """

    density: reactive[str] = reactive("compact", layout=False, init=False)
    _sub_rows: list[SubRowSpec] = []  # diff mode's sub-rows (set_sub_rows; replaced, never mutated)

    class RowHighlighted(Message):
        """The cursor is on a new row (``row`` -1 and ``key`` None when the table is empty).

        A newer one waiting in the queue replaces an older one, so holding ``j`` does not
        flood listeners.
        """

        def __init__(self, table: ExperimentTable, row: int, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.row = row
            self.key = key

        @property
        def control(self) -> ExperimentTable:
            return self.table

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ExperimentTable.RowHighlighted) and message.table is self.table

    class RowSelected(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, table: ExperimentTable, row: int, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.row = row
            self.key = key

        @property
        def control(self) -> ExperimentTable:
            return self.table

    def __init__(
        self,
        frame: pl.DataFrame | None = None,
        columns: list[ColumnSpec] | None = None,
        key_column: str = "root_span_id",
        *,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's name
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._frame: pl.DataFrame | Page = Page([], [], [])
        self._columns: list[ColumnSpec] = []
        self._key_column = key_column
        self._rows = _RowModel(0)
        self._summaries: dict[str, str | None] = {}
        self._layout = _make_layout([], None)
        self._layout_width: int | None = None
        self._cursor_row = 0
        self._cursor_column = 0
        self._row_cache: LRUCache[int, list[tuple[Strip, Strip]]] = LRUCache(_ROW_CACHE_SIZE)
        # the cursor row's own look, (row, column, strips): _row_cache keeps every row's plain
        # look, so a j renders one row (the new cursor row) and the row it left is a cache hit
        self._cursor_strips: tuple[int, int, list[tuple[Strip, Strip]]] | None = None
        # each row's cell lines and tones: a cursor move restyles the row it lands on from here
        # instead of slicing and formatting them again
        self._cell_cache: LRUCache[int, list[tuple[list[str], Any]]] = LRUCache(_ROW_CACHE_SIZE)
        self._header_cache: list[tuple[Strip, Strip]] | None = None
        # finished screen lines: (row, sub-line) -> (the row's strips, scroll_x, width, line);
        # valid while the row's strips are the cached ones (a re-rendered row is a new list)
        self._line_cache: LRUCache[tuple[int, int], tuple[Any, int, int, Strip]] = LRUCache(_ROW_CACHE_SIZE * 2)
        self._styles: dict[str, Any] | None = None
        self._styles_before: dict[str, Any] | None = None  # the styles before a restyle
        self._view_cache: tuple[tuple[Size, Size], Size] | None = None
        self._sort_keys: list[tuple[str, bool]] = []
        self._search = ""  # lower-cased text highlighted in cells
        self.selected: set[str] = set()  # row keys marked with s / space (see set_selected)
        if frame is not None:
            self.set_data(frame, columns or self.default_columns(frame), key_column)

    # -- public interface ------------------------------------------------------------------

    @property
    def cursor_row(self) -> int:
        """Display row under the cursor (0 when empty)."""
        return self._cursor_row

    @cursor_row.setter
    def cursor_row(self, row: int) -> None:
        self.move_cursor(row=row)

    @property
    def cursor_column(self) -> int:
        """Index into ``visible_columns`` (display order: pinned first)."""
        return self._cursor_column

    @cursor_column.setter
    def cursor_column(self, column: int) -> None:
        self.move_cursor(column=column)

    @property
    def frame(self) -> pl.DataFrame | Page:
        """The rows shown: a polars frame, or at start-up a first page of plain values."""
        return self._frame

    @property
    def columns(self) -> list[ColumnSpec]:
        """All column specs as given (hidden ones included)."""
        return list(self._columns)

    @property
    def visible_columns(self) -> list[ColumnSpec]:
        """Columns on screen in display order (pinned first); ``cursor_column`` indexes this."""
        return list(self._layout.columns)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def row_height(self) -> int:
        """Screen lines per display row: its own lines plus one per sub-row (diff mode)."""
        return (TALL_LINES if self.density == "tall" else 1) + len(self._sub_rows)

    @property
    def _line_height(self) -> int:
        """A row's own lines (without sub-rows)."""
        return TALL_LINES if self.density == "tall" else 1

    def set_data(
        self,
        frame: pl.DataFrame,
        columns: list[ColumnSpec],
        key_column: str,
        *,
        keep_cursor: bool = True,
        groups: list[Group] | None = None,
    ) -> None:
        """Show ``frame`` with ``columns``; ``key_column`` names each row's key.

        With ``keep_cursor`` the cursor stays on the row with the same key (and the same
        column) when the new frame still has it, else it goes to the first row. ``groups``
        (consecutive frame rows each) puts a header row before each group. Posts
        RowHighlighted. A first page of plain values (a store ``Page``, shown before polars
        is loaded) comes with ``keep_cursor=False``: its rows are the first ones.
        """
        old_key = self.row_key(self._cursor_row) if keep_cursor else None
        old_column = self._cursor_column_key() if keep_cursor else None
        self._frame = frame
        self._key_column = key_column
        self._rows = _RowModel(frame.height, groups)
        self._columns = [c if c.width >= 1 else replace(c, width=1) for c in columns]
        self._summaries = {c.key: column_summary(frame, c) for c in self._columns if c.summary is None}
        row = 0
        if old_key is not None and key_column in frame.columns:
            hits = frame.get_column(key_column).cast(pl.Utf8).eq(old_key).arg_true()
            if len(hits):
                row = self._rows.display_row(int(hits[0]))
        self._cursor_row = row
        self._relayout()
        self._cursor_column = self._column_index(old_column) if old_column else 0
        self._clamp_cursor()
        self._invalidate()
        self._update_virtual_size()
        self._scroll_cursor_into_view()
        self._post_highlighted()

    def set_columns(self, columns: list[ColumnSpec]) -> None:
        """Change columns (order, width, visibility, pinning) keeping the data and cursor cell."""
        old_column = self._cursor_column_key()
        self._columns = [c if c.width >= 1 else replace(c, width=1) for c in columns]
        for c in self._columns:
            if c.summary is None and c.key not in self._summaries:
                self._summaries[c.key] = column_summary(self._frame, c)
        self._relayout()
        self._cursor_column = self._column_index(old_column) if old_column else 0
        self._clamp_cursor()
        self._invalidate()
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def move_cursor(self, row: int | None = None, column: int | None = None) -> None:
        """Put the cursor on ``row`` / ``column`` (clamped), scroll it into view; posts
        RowHighlighted when the row changes."""
        old_row, old_column = self._cursor_row, self._cursor_column
        if row is not None:
            self._cursor_row = row
        if column is not None:
            self._cursor_column = column
        self._clamp_cursor()
        if self._cursor_column != old_column:
            self._header_cache = None
            self._refresh_content_lines(0, HEADER_HEIGHT)
        if (self._cursor_row, self._cursor_column) != (old_row, old_column):
            self._cursor_strips = None  # the rows' plain looks stand: the old row shows its own again
            if not self._scroll_cursor_into_view():
                # one repaint region when the rows touch (the usual j / k step)
                low, high = sorted((old_row, self._cursor_row))
                rh = self.row_height
                if high - low <= 1:
                    self._refresh_content_lines(HEADER_HEIGHT + low * rh, (high - low + 1) * rh)
                else:
                    self._refresh_row(low)
                    self._refresh_row(high)
        else:
            self._scroll_cursor_into_view()
        if self._cursor_row != old_row:
            self._post_highlighted()

    def row_key(self, row: int) -> str | None:
        """The key (``key_column`` value) of display row ``row``; None when out of range."""
        index = self._rows.frame_index(row)
        if index is None or self._key_column not in self._frame.columns:
            return None
        value = self._frame.get_column(self._key_column)[index]
        return None if value is None else str(value)

    def current_cell_value(self) -> tuple[str, object]:
        """(column key, full value from the frame) under the cursor; ("", None) when empty."""
        key = self._cursor_column_key()
        index = self._rows.frame_index(self._cursor_row)
        if key is None or index is None or key not in self._frame.columns:
            return (key or "", None)
        return key, self._frame.get_column(key)[index]

    def current_row(self) -> dict:
        """The frame row under the cursor as a dict ({} when empty)."""
        index = self._rows.frame_index(self._cursor_row)
        if index is None:
            return {}
        return self._frame.row(index, named=True)

    def set_selected(self, keys: Iterable[str]) -> None:
        """Mark the rows with these keys as selected (a background of their own) and repaint."""
        self.selected = set(keys)
        self._row_cache.clear()
        self._cursor_strips = None
        self.refresh()

    def update_rows(self, frame: pl.DataFrame, keys: Iterable[str], columns: Iterable[str] | None = None) -> None:
        """Show ``frame`` (the same rows in the same order, some values changed) repainting only
        the rows with these keys and the header summaries of ``columns`` (None: all)."""
        self._frame = frame
        changed = None if columns is None else set(columns)
        for c in self._columns:
            if c.summary is None and (changed is None or c.key in changed):
                self._summaries[c.key] = column_summary(frame, c)
        self._header_cache = None
        self._refresh_content_lines(0, HEADER_HEIGHT)
        wanted = set(keys)
        if not wanted or self._key_column not in frame.columns:
            return
        for index in frame.get_column(self._key_column).cast(pl.Utf8).is_in(list(wanted)).arg_true().to_list():
            row = self._rows.display_row(index)  # grouped tables: frame rows sit below group headers
            self._cell_cache.discard(row)
            self._refresh_row(row)

    @staticmethod
    def default_columns(frame: pl.DataFrame, row_type: str = "traces") -> list[ColumnSpec]:
        """A sensible column set for trace (or span) rows of ``frame``.

        Everything in the frame gets a spec; ids, timestamps and raw JSON start hidden so a
        column chooser can offer them.
        """
        present = set(frame.columns)
        specs: list[ColumnSpec] = []
        seen: set[str] = set()

        def add(key: str, label: str, width: int, kind: str = "text", **kw: Any) -> None:
            if key in present and key not in seen:
                specs.append(ColumnSpec(key, label, width, kind, **kw))
                seen.add(key)

        if row_type == "spans":
            add("name", "Name", 18, pinned=True)
            add("type", "Type", 8)
        add("input", "Input", 28, pinned=row_type != "spans")
        add("output", "Output", 28)
        add("expected", "Expected", 20)
        for key in frame.columns:
            if key.startswith("scores."):
                label = key[len("scores."):]
                add(key, label, max(6, min(14, cell_len(label))), "score")
        for key in frame.columns:
            if key.startswith("custom."):
                label = key[len("custom."):]
                add(key, label, max(8, min(14, cell_len(label))), "number" if frame.schema[key].is_numeric() else "text")
        add("error", "Error", 18)
        add("duration", "Duration", 9, "duration")
        add("tokens", "Tokens", 8, "tokens")
        add("estimated_cost", "Cost", 9, "cost")
        add("llm_calls", "LLM", 5, "number")
        add("tool_calls", "Tools", 5, "number")
        add("tags", "Tags", 14, "tags")
        add("review_status", "Review", 10, "status")
        for key in frame.columns:
            if key.startswith("metadata."):
                label = key[len("metadata."):]
                dtype = frame.schema[key]
                add(key, label, 8 if dtype.is_numeric() else max(8, min(16, cell_len(label))),
                    "number" if dtype.is_numeric() else "text")
        hidden = {
            "llm_duration": ("LLM time", 9, "duration"),
            "ttft": ("TTFT", 9, "duration"),
            "prompt_tokens": ("Prompt tok", 10, "tokens"),
            "completion_tokens": ("Compl. tok", 10, "tokens"),
            "prompt_cached_tokens": ("Cached tok", 10, "tokens"),
            "completion_reasoning_tokens": ("Reason tok", 10, "tokens"),
            "span_count": ("Spans", 5, "number"),
            "errors": ("Errors", 6, "number"),
            "has_error": ("Err", 7, "status"),
            "scorer_errors": ("Scorer err", 10, "number"),
            "assignee": ("Assignee", 10, "text"),
            "reviewed_by": ("Reviewed by", 11, "text"),
            "created": ("Created", 19, "text"),
            "start": ("Start", 10, "number"),
            "end": ("End", 10, "number"),
            "name": ("Name", 14, "text"),
            "type": ("Type", 8, "text"),
            "id": ("Id", 12, "text"),
            "span_id": ("Span id", 12, "text"),
            "root_span_id": ("Trace id", 12, "text"),
            "parent_id": ("Parent", 12, "text"),
            "comparison_key": ("Comparison key", 14, "text"),
            "dataset_record_id": ("Dataset record", 14, "text"),
            "metadata": ("Metadata", 20, "text"),
        }
        for key in frame.columns:
            if key in hidden:
                label, width, kind = hidden[key]
                add(key, label, width, kind, visible=False)
            elif key not in seen:
                dtype = frame.schema[key]
                add(key, key, 10, "number" if dtype.is_numeric() else "text", visible=False)
        return specs

    # -- actions ---------------------------------------------------------------------------

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self._cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self._cursor_row - 1)

    def action_cursor_left(self) -> None:
        self.move_cursor(column=self._cursor_column - 1)

    def action_cursor_right(self) -> None:
        self.move_cursor(column=self._cursor_column + 1)

    def action_cursor_first(self) -> None:
        self.move_cursor(row=0)

    def action_cursor_last(self) -> None:
        self.move_cursor(row=len(self._rows) - 1)

    def action_page_down(self) -> None:
        self.move_cursor(row=self._cursor_row + self._page_rows())

    def action_page_up(self) -> None:
        self.move_cursor(row=self._cursor_row - self._page_rows())

    def action_select_row(self) -> None:
        if self._rows.group_at(self._cursor_row) is not None:
            self.toggle_group(self._cursor_row)
            return
        if len(self._rows):
            self.post_message(self.RowSelected(self, self._cursor_row, self.row_key(self._cursor_row)))

    # -- events ----------------------------------------------------------------------------

    def validate_density(self, density: str) -> str:
        return density if density in ("compact", "tall") else "compact"

    def watch_density(self) -> None:
        self._invalidate()
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        # Textual updates the component styles (cursor row, tones) after this call, so what
        # changed is found at the next paint (see _get_styles): a focus change, or the pane
        # opening beside the table, then repaints one row, not every row on screen.
        if self._styles is not None:
            self._styles_before = self._styles
        self._styles = None
        self._view_cache = None
        self._header_cache = None

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        # ScrollView moves the scrollbar on every scroll, and the bar repaints all its lines. Over
        # 100k rows its thumb moves an eighth of a cell every few hundred rows: while it would be
        # drawn in the same place, the bar only takes the new position (no repaint).
        if self.show_vertical_scrollbar:
            bar = self.vertical_scrollbar
            position = bar.validate_position(new_value)
            if _thumb_at(bar, bar.position) == _thumb_at(bar, position) is not None:
                bar.set_reactive(ScrollBar.position, position)
            else:
                bar.position = position
        if round(old_value) != round(new_value):
            self.refresh(self.size.region)

    def on_resize(self, event: events.Resize) -> None:
        self._view_cache = None
        layout = self._layout
        self._relayout()
        if self._layout != layout:  # same columns: the rendered rows stand (lines are cut to width)
            self._invalidate()
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        column = self._column_at(offset.x)
        if offset.y < HEADER_HEIGHT:
            if column is not None:
                self.move_cursor(column=column)
            return
        line = offset.y - HEADER_HEIGHT + round(self.scroll_y)
        row = line // self.row_height
        if row >= len(self._rows):
            return
        self.move_cursor(row=row, column=column)
        if event.chain >= 2:
            self.action_select_row()

    # -- groups, sort keys, search (issue 4) ------------------------------------------------

    @property
    def groups(self) -> list[Group]:
        return self._rows.groups

    def group_at(self, row: int) -> Group | None:
        """The group whose header is display row ``row`` (None for a data row)."""
        return self._rows.group_at(row)

    def display_row(self, frame_index: int) -> int:
        """The display row of frame row ``frame_index``."""
        return self._rows.display_row(frame_index)

    def toggle_group(self, row: int, collapsed: bool | None = None) -> None:
        """Collapse or expand the group whose header is ``row``; the cursor stays on it."""
        group = self._rows.group_at(row)
        if group is None:
            return
        group.collapsed = (not group.collapsed) if collapsed is None else collapsed
        self._relayout_rows(row)

    def set_all_groups(self, collapsed: bool) -> None:
        """Collapse (or expand) every group; the cursor goes to its group's header."""
        if not self._rows.groups:
            return
        current = self._rows.group_of(self._cursor_row)
        for g in self._rows.groups:
            g.collapsed = collapsed
        self._rows.rebuild()
        row = self._rows._starts[self._rows.groups.index(current)] if current is not None else 0
        self._relayout_rows(row)

    def _relayout_rows(self, cursor_row: int) -> None:
        self._rows.rebuild()
        self._cursor_row = cursor_row
        self._clamp_cursor()
        self._invalidate()
        self._update_virtual_size()
        self._scroll_cursor_into_view()
        self._post_highlighted()

    def set_sort_keys(self, keys: list[tuple[str, bool]]) -> None:
        """Show ``keys`` ((column, descending), most significant first) in the header."""
        if keys != self._sort_keys:
            self._sort_keys = list(keys)
            self._header_cache = None
            self._refresh_content_lines(0, HEADER_HEIGHT)

    def set_search(self, text: str | None) -> None:
        """Highlight ``text`` (case-insensitive) wherever it shows in a cell."""
        text = (text or "").lower()
        if text != self._search:
            self._search = text
            self._invalidate()

    def _header_label(self, col: ColumnSpec) -> str:
        mark = ""
        for n, (key, descending) in enumerate(self._sort_keys, 1):
            if key == col.key:
                mark = ("▼" if descending else "▲") + (str(n) if len(self._sort_keys) > 1 else "")
        if not mark:
            return _fit_cell(safe_text(col.label, col.width), col.width, col.kind in _NUMERIC_KINDS)
        room = max(0, col.width - len(mark) - 1)
        label = safe_text(col.label, room) if room else ""
        return _fit_cell(f"{label} {mark}" if label else mark, col.width, col.kind in _NUMERIC_KINDS)

    def _group_cells(self, group: Group, rh: int) -> list[tuple[list[str], Any]]:
        """A group header: arrow, label and count in the first column; each column's mean."""
        out: list[tuple[list[str], Any]] = []
        for i, col in enumerate(self._layout.columns):
            if i == 0:
                arrow = "▸" if group.collapsed else "▾"
                text = f"{arrow} {safe_text(group.label, 200)} · {group.count:,}"
                if group.note:
                    text += f" · {group.note}"
                out.append(([safe_text(text, col.width)], ""))
                continue
            mean = group.means.get(col.key)
            if mean is None or (isinstance(mean, float) and math.isnan(mean)):
                out.append(([""], ""))
                continue
            text, tone = format_cell(mean, col.kind if col.kind in _NUMERIC_KINDS else "number", col.key)
            out.append(([safe_text("μ " + text if col.kind == "score" else text, col.width)], tone))
        return out

    def _highlight(self, text: str, style: Style) -> list[Segment]:
        """``text`` split so each occurrence of the search text has the match style."""
        match = style + self._get_styles()["match"]
        lower = text.lower()
        needle = self._search
        out: list[Segment] = []
        pos = 0
        while True:
            at = lower.find(needle, pos)
            if at < 0 or len(lower) != len(text):
                break
            if at > pos:
                out.append(Segment(text[pos:at], style))
            out.append(Segment(text[at:at + len(needle)], match))
            pos = at + len(needle)
        if pos < len(text):
            out.append(Segment(text[pos:], style))
        return out

    # -- geometry --------------------------------------------------------------------------

    def _view_size(self) -> Size:
        """Cells available for content (scrollbars excluded); asked for on every line painted."""
        key = (self.container_size, self.virtual_size)
        if self._view_cache is not None and self._view_cache[0] == key:
            return self._view_cache[1]
        width = max(0, self.container_size.width - self.scrollbar_size_vertical)
        height = max(0, self.container_size.height - self.scrollbar_size_horizontal)
        size = Size(width, height)
        self._view_cache = (key, size)
        return size

    def _body_height(self) -> int:
        return max(1, self._view_size().height - HEADER_HEIGHT)

    def _page_rows(self) -> int:
        return max(1, self._body_height() // self.row_height)

    def _relayout(self) -> None:
        width = self._view_size().width or None
        self._layout = _make_layout(self._columns, width)
        self._layout_width = width

    def _update_virtual_size(self) -> None:
        layout = self._layout
        width = layout.pinned_width + layout.scroll_width
        height = HEADER_HEIGHT + max(1, len(self._rows) * self.row_height)
        if self._sub_rows and height - HEADER_HEIGHT > self._body_height():
            # room to end on whole rows, so no sub-row shows at the top without its row
            height += -(height - HEADER_HEIGHT - self._body_height()) % self.row_height
        self.virtual_size = Size(width, height)

    def _column_at(self, x: int) -> int | None:
        layout = self._layout
        if x < layout.pinned_width:
            for i in range(layout.pinned_count):
                if layout.offsets[i] <= x < layout.offsets[i] + layout.cell_width(i):
                    return i
            return None
        sx = x - layout.pinned_width + round(self.scroll_x)
        for i in range(layout.pinned_count, len(layout.columns)):
            if layout.offsets[i] <= sx < layout.offsets[i] + layout.cell_width(i):
                return i
        return None

    def _cursor_column_key(self) -> str | None:
        columns = self._layout.columns
        if 0 <= self._cursor_column < len(columns):
            return columns[self._cursor_column].key
        return None

    def _column_index(self, key: str) -> int:
        for i, col in enumerate(self._layout.columns):
            if col.key == key:
                return i
        return 0

    def _clamp_cursor(self) -> None:
        self._cursor_row = max(0, min(self._cursor_row, len(self._rows) - 1))
        self._cursor_column = max(0, min(self._cursor_column, len(self._layout.columns) - 1))

    def _scroll_cursor_into_view(self) -> bool:
        """Scroll so the cursor cell shows; True when it scrolled (a full repaint follows)."""
        view = self._view_size()
        if not view.height:
            return False  # not laid out yet; on_resize scrolls
        rh = self.row_height
        body = self._body_height()
        top = self._cursor_row * rh
        y = self.scroll_y
        if top < y:
            y = top
        elif top + rh > y + body:
            y = top + rh - body
            if self._sub_rows:  # whole rows at the top: no sub-row shows without its row
                y = -(-y // rh) * rh
        layout = self._layout
        x = self.scroll_x
        column = self._cursor_column
        if layout.columns and column >= layout.pinned_count:
            visible = max(1, view.width - layout.pinned_width)
            left = layout.offsets[column]
            right = left + layout.cell_width(column)
            if left < x:
                x = left
            elif right > x + visible:
                # snap to a column start so no sliver of a column shows at the left edge
                need = right - visible
                starts = [o for o in layout.offsets[layout.pinned_count:] if need <= o <= left]
                x = starts[0] if starts else left
        if (round(x), round(y)) != (round(self.scroll_x), round(self.scroll_y)):
            self.scroll_to(x=x, y=y, animate=False, force=True)
            return True
        return False

    # -- caching ---------------------------------------------------------------------------

    def _invalidate(self, cells: bool = True) -> None:
        self._row_cache.clear()
        self._cursor_strips = None
        if cells:
            self._cell_cache.clear()
        self._header_cache = None
        self.refresh()

    def _refresh_row(self, row: int) -> None:
        self._row_cache.discard(row)
        if row == self._cursor_row:
            self._cursor_strips = None
        rh = self.row_height
        self._refresh_content_lines(HEADER_HEIGHT + row * rh, rh)

    def _refresh_content_lines(self, y_start: int, line_count: int) -> None:
        """Repaint content lines (header lines are fixed, body lines move with scroll_y)."""
        if y_start >= HEADER_HEIGHT:
            y_start -= round(self.scroll_y)
        # as wide as the table on screen: the compositor clips a repaint to the table's parent, so
        # a wider region (the virtual width) also repainted every widget beside the table (the pane)
        self.refresh(Region(0, y_start, self.size.width, line_count))

    def _post_highlighted(self) -> None:
        if len(self._rows):
            message = self.RowHighlighted(self, self._cursor_row, self.row_key(self._cursor_row))
        else:
            message = self.RowHighlighted(self, -1, None)
        # Straight to the screen, where its listeners are (it bubbles on to the app from there):
        # bubbling through the table's containers was a quarter of the CPU of a cursor move.
        try:
            target: Any = self.screen
        except NoScreen:  # not mounted (yet): the usual way
            target = self
        target.post_message(message)

    # -- styles ----------------------------------------------------------------------------

    def _get_styles(self) -> dict[str, Any]:
        if self._styles is not None:
            return self._styles
        styles = self._make_styles()
        before, self._styles_before = self._styles_before, None
        if before is not None and before != styles:
            changed = {k for k, v in styles.items() if before.get(k) != v}
            self._cursor_strips = None
            if not changed <= _CURSOR_STYLES:  # (a focus change: only the cursor row looks different)
                self._row_cache.clear()  # a restyle (theme) keeps the formatted cells
        self._styles = styles
        return styles

    def _make_styles(self) -> dict[str, Any]:
        base = self.rich_style

        def full(name: str) -> Style:
            return self.get_component_rich_style(name)

        def fg(name: str) -> Style:
            style = full(name)
            return Style(color=style.color, bold=style.bold, italic=style.italic, underline=style.underline)

        def color(name: str) -> Color:
            return self.get_component_styles(name).color

        low, mid, high = color("experiment-table--score-low"), color("experiment-table--score-mid"), color(
            "experiment-table--score-high"
        )
        scores = []
        for i in range(101):
            t = i / 100
            c = low.blend(mid, t * 2) if t <= 0.5 else mid.blend(high, (t - 0.5) * 2)
            scores.append(Style(color=c.rich_color))
        cursor_row = full("experiment-table--cursor-row")
        return {
            "base": base,
            "header": base + full("experiment-table--header"),
            "header-cursor": base + full("experiment-table--header-cursor"),
            "summary": base + full("experiment-table--summary"),
            "cursor-row": base + Style(bgcolor=cursor_row.bgcolor),
            "odd-row": base + Style(bgcolor=full("experiment-table--odd-row").bgcolor),
            "selected-row": base + Style(bgcolor=full("experiment-table--selected-row").bgcolor),
            "cursor-cell": base + full("experiment-table--cursor-cell"),
            "divider": fg("experiment-table--divider"),
            "dim": fg("experiment-table--dim"),
            "error": fg("experiment-table--error"),
            "success": fg("experiment-table--success"),
            "warning": fg("experiment-table--warning"),
            "scores": scores,
            "group-row": base + full("experiment-table--group-row"),
            "group-cursor": Style(bold=True),
            "match": full("experiment-table--match"),
        }

    def _tone_style(self, tone: Any) -> Style | None:
        if isinstance(tone, DeltaTone):
            tone = tone.value
        if tone == "":
            return None
        styles = self._get_styles()
        if isinstance(tone, float):
            return styles["scores"][int(round(tone * 100))]
        return styles.get(tone)

    def _row_style(self, row: int, cursor: bool = False) -> Style:
        """The background of ``row`` in its plain look, or in the cursor's (``cursor``)."""
        styles = self._get_styles()
        if self.selected and self.row_key(row) in self.selected:
            return styles["selected-row"]  # over the cursor row's: a selected cursor row shows it
        if self._rows.groups and self._rows.group_at(row) is not None:
            return styles["cursor-row"] + styles["group-cursor"] if cursor else styles["group-row"]
        if cursor:
            return styles["cursor-row"]
        # tall rows are told apart by alternating backgrounds
        if self.density == "tall" and row % 2:
            return styles["odd-row"]
        return styles["base"]

    # -- rendering -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        view = self._view_size()
        width = max(view.width, self.size.width)
        layout = self._layout
        styles = self._get_styles()
        scroll_x = round(self.scroll_x)
        if y < HEADER_HEIGHT:
            if self._header_cache is None:
                self._header_cache = self._render_header()
            pinned, scrolling = self._header_cache[y]
            fill = styles["header"] if y == 0 else styles["summary"]
        else:
            line = y - HEADER_HEIGHT + round(self.scroll_y)
            rh = self.row_height
            row, sub = divmod(line, rh)
            if row >= len(self._rows):
                if not len(self._rows) and line == 0:
                    return Strip([Segment(" (no rows)", styles["base"] + styles["dim"])]).extend_cell_length(
                        width, styles["base"]
                    )
                return Strip.blank(width, styles["base"])
            cursor = row == self._cursor_row
            strips = self._cursor_row_strips() if cursor else self._row_cache.get(row)
            if strips is None:  # (a plain row not rendered yet)
                self._render_rows(row)
                strips = self._row_cache.get(row)
                assert strips is not None
            done = None if cursor else self._line_cache.get((row, sub))
            if done is not None and done[0] is strips and done[1] == scroll_x and done[2] == width:
                return done[3]  # scrolling back and forth, repaints: the same line again
            pinned, scrolling = strips[sub]
            visible = max(0, width - layout.pinned_width)
            shown = scrolling.crop(scroll_x, scroll_x + visible)
            cells = pinned.cell_length + shown.cell_length
            # one Strip for the line (join + pad would make two more on every repaint)
            segments = [*pinned, *shown]
            if cells < width:
                segments.append(Segment(" " * (width - cells), self._row_style(row, cursor)))
                strip = Strip(segments, width)
            else:
                strip = Strip(segments, cells).crop(0, width)
            if not cursor:  # (the cursor row's line changes with every move: the row's plain line stays cached)
                self._line_cache.discard((row, sub))  # (LRUCache.set keeps an old value: a stale line never hit)
                self._line_cache.set((row, sub), (strips, scroll_x, width, strip))
            return strip
        visible = max(0, width - layout.pinned_width)
        strip = Strip.join([pinned, scrolling.crop(scroll_x, scroll_x + visible)])
        return strip.adjust_cell_length(width, fill)

    def _cursor_row_strips(self) -> list[tuple[Strip, Strip]]:
        """The cursor row in the cursor's look, from its formatted cells."""
        row, column = self._cursor_row, self._cursor_column
        cached = self._cursor_strips
        if cached is not None and cached[0] == row and cached[1] == column:
            return cached[2]
        cells = self._cell_cache.get(row)
        if cells is None:
            self._render_rows(row)  # formats the row's cells (and renders its plain look)
            cells = self._cell_cache.get(row)
            assert cells is not None
        strips = self._render_row(row, cells, cursor=True)
        if self._sub_rows:
            strips += self._render_sub_rows(row, self._sub_cells(row, row + 1)[0], cursor=True)
        self._cursor_strips = (row, column, strips)
        return strips

    def _render_header(self) -> list[tuple[Strip, Strip]]:
        layout = self._layout
        styles = self._get_styles()
        labels: list[list[Segment]] = [[], []]
        summaries: list[list[Segment]] = [[], []]
        for i, col in enumerate(layout.columns):
            part = 0 if i < layout.pinned_count else 1
            align_right = col.kind in _NUMERIC_KINDS
            label_style = styles["header-cursor"] if i == self._cursor_column else styles["header"]
            labels[part].append(Segment(" " + self._header_label(col), label_style))
            summary = col.summary if col.summary is not None else self._summaries.get(col.key)
            summaries[part].append(Segment(" " + _fit_cell(safe_text(summary or "", col.width), col.width,
                                                           align_right), styles["summary"]))
            if part == 0 and i == layout.pinned_count - 1:
                labels[0].append(Segment("│", styles["header"] + styles["divider"]))
                summaries[0].append(Segment("│", styles["summary"] + styles["divider"]))
        return [
            (Strip(labels[0], layout.pinned_width), Strip(labels[1], layout.scroll_width)),
            (Strip(summaries[0], layout.pinned_width), Strip(summaries[1], layout.scroll_width)),
        ]

    def _render_rows(self, row: int) -> None:
        """Render the run of uncached on-screen rows around ``row`` in one frame slice."""
        rh = self.row_height
        first_visible = round(self.scroll_y) // rh
        last_visible = first_visible + self._body_height() // rh + 1
        start = row
        while start - 1 >= first_visible and (start - 1) not in self._row_cache:
            start -= 1
        end = row + 1
        while end <= last_visible and end < len(self._rows) and end not in self._row_cache:
            end += 1
        cells = self._cell_cache
        missing = [r for r in range(start, end) if r not in cells]
        if missing:
            low, high = missing[0], missing[-1] + 1
            values = self._slice_values(self._rows.frame_indices(low, high))
            deltas = self._slice_deltas(self._rows.frame_indices(low, high))
            layout, rh = self._layout, self._line_height
            for offset, display_row in enumerate(range(low, high)):
                group = self._rows.group_at(display_row)
                if group is not None:
                    cells.set(display_row, self._group_cells(group, rh))
                    continue
                row_cells = []
                for col, column_values in zip(layout.columns, values, strict=True):
                    text, tone = format_cell(column_values[offset], col.kind, col.key)
                    if col.delta_key is not None:
                        text, tone = with_delta(text, tone, deltas.get(col.delta_key, [None] * (high - low))[offset], col)
                    row_cells.append((self._cell_lines(text, col, rh), tone))
                cells.set(display_row, row_cells)
        subs = self._sub_cells(start, end) if self._sub_rows else None
        for display_row in range(start, end):
            strips = self._render_row(display_row, cells.get(display_row))
            if subs is not None:
                strips += self._render_sub_rows(display_row, subs[display_row - start])
            self._row_cache.set(display_row, strips)

    def _slice_values(self, indices: list[int | None]) -> list[list[Any]]:
        """Python values of the visible columns for these frame rows (only these rows)."""
        layout = self._layout
        real = [i for i in indices if i is not None]
        if not real:
            return [[None] * len(indices) for _ in layout.columns]
        contiguous = real == list(range(real[0], real[0] + len(real)))
        frame = self._frame
        by_key: dict[str, list[Any]] = {}
        for col in layout.columns:
            if col.key in by_key or col.key not in frame.columns:
                continue
            series = frame.get_column(col.key)
            if isinstance(series, list):  # a first page's plain values
                by_key[col.key] = series[real[0]:real[0] + len(real)] if contiguous else [series[i] for i in real]
                continue
            # only these rows become Python objects
            part = series.slice(real[0], len(real)) if contiguous else series.gather(real)
            by_key[col.key] = part.to_list()
        out: list[list[Any]] = []
        for col in layout.columns:
            column_values = by_key.get(col.key)
            if column_values is None:
                out.append([None] * len(indices))
                continue
            it = iter(column_values)
            out.append([None if i is None else next(it) for i in indices])
        return out

    def _slice_deltas(self, indices: list[int | None]) -> dict[str, list[Any]]:
        """Values of the visible columns' ``delta_key`` columns for these frame rows."""
        keys = {c.delta_key for c in self._layout.columns if c.delta_key is not None}
        keys &= set(self._frame.columns)
        if not keys:
            return {}
        view = self._frame.select(sorted(keys))
        real = [i for i in indices if i is not None]
        got = {k: iter(view.get_column(k).gather(real).to_list()) for k in keys}
        return {k: [None if i is None else next(it) for i in indices] for k, it in got.items()}

    def _render_row(self, row: int, cells: list[tuple[list[str], Any]], cursor: bool = False) -> list[tuple[Strip, Strip]]:
        """``row``'s strips in its plain look, or with the cursor on it (``cursor``)."""
        layout = self._layout
        styles = self._get_styles()
        rh = self._line_height
        row_style = self._row_style(row, cursor)
        # runs of (texts, style): neighbouring cells in one style become one segment, so every
        # later crop, divide and repaint of this row handles a few segments, not one per cell
        parts: list[list[list[tuple[list[str], Style]]]] = [[[] for _ in range(rh)], [[] for _ in range(rh)]]

        def add(part: int, sub: int, text: str, style: Style) -> None:
            runs = parts[part][sub]
            if runs and (runs[-1][1] is style or runs[-1][1] == style):
                runs[-1][0].append(text)
            else:
                runs.append(([text], style))

        search = self._search
        cursor_column = self._cursor_column if cursor else -1
        toned: dict[Style, Style] = {}  # tone style -> row style + tone style (a few tones per row)
        for i, (col, (lines, tone)) in enumerate(zip(layout.columns, cells, strict=True)):
            part = 0 if i < layout.pinned_count else 1
            tone_style = self._tone_style(tone)
            if i == cursor_column:
                style = styles["cursor-cell"]
            elif tone_style is None:
                style = row_style
            else:
                style = toned.get(tone_style)
                if style is None:
                    style = toned[tone_style] = row_style + tone_style
            align_right = col.kind in _NUMERIC_KINDS
            delta = isinstance(tone, DeltaTone) and i != cursor_column
            for sub in range(rh):
                content = lines[sub] if sub < len(lines) else ""
                if delta and sub == 0:
                    for seg in self._delta_segments(content, col, tone, row_style):
                        add(part, sub, seg.text, seg.style or row_style)
                    continue
                text = " " + _fit_cell(content, col.width, align_right)
                if search and search in text.lower():
                    for seg in self._highlight(text, style):
                        add(part, sub, seg.text, seg.style or style)
                else:
                    add(part, sub, text, style)
            if part == 0 and i == layout.pinned_count - 1:
                for sub in range(rh):
                    add(0, sub, "│", row_style + styles["divider"])

        def strip(runs: list[tuple[list[str], Style]], cells: int) -> Strip:
            return Strip([Segment("".join(texts), style) for texts, style in runs], cells)

        return [
            (strip(parts[0][sub], layout.pinned_width), strip(parts[1][sub], layout.scroll_width))
            for sub in range(rh)
        ]

    def _delta_segments(self, content: str, col: ColumnSpec, tone: DeltaTone, row_style: Style) -> list[Segment]:
        """A value cell with its delta (the last ``tone.suffix`` cells) in the delta's tone."""
        text = " " + _fit_cell(content, col.width, True)
        cut = len(text) - tone.suffix if cell_len(text) == len(text) else len(text)
        value_style, delta_style = self._tone_style(tone.value), self._tone_style(tone.delta)
        return [
            Segment(text[:cut], row_style + value_style if value_style is not None else row_style),
            Segment(text[cut:], row_style + delta_style if delta_style is not None else row_style),
        ]

    @staticmethod
    def _cell_lines(text: str, col: ColumnSpec, rh: int) -> list[str]:
        if col.kind in _NUMERIC_KINDS:
            return [safe_text(text, col.width)]
        limit = col.width * rh
        text = _squeeze_breaks(text, limit * 2 + 16, keep=rh > 1)
        if rh == 1:
            return [safe_text(text, col.width)]
        # tall: wrap within the column (the text is already cut to a few hundred chars)
        return _wrap(safe_text(text, limit + 1, newlines=True), col.width, rh)

    # -- sub-rows (diff mode): a line per compared experiment under each row ---------------
    #
    # Sub-rows are extra lines of their row, not rows: the cursor, selection, enter, y / Y,
    # sort, filter and groups see one row per trace, and a click on a sub-row is its row.

    @property
    def sub_rows(self) -> list[SubRowSpec]:
        return list(self._sub_rows)

    def set_sub_rows(self, specs: list[SubRowSpec] | None) -> None:
        """Show one sub-row per spec under every row (none: plain rows); the cursor stays."""
        specs = list(specs or [])
        if specs == self._sub_rows:
            return
        self._sub_rows = specs
        self._invalidate(cells=False)  # the rows' own cells stand; their strips gain lines
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def _sub_cells(self, start: int, end: int) -> list[list[list[tuple[str, Any]]]]:
        """Per display row in [start, end), per sub-row, per visible column: (text, tone)."""
        layout = self._layout
        frame = self._frame
        indices = self._rows.frame_indices(start, end)
        real = [i for i in indices if i is not None]
        wanted: set[str] = set()
        for spec in self._sub_rows:
            wanted.add(spec.match)
            for col in layout.columns:
                source = spec.columns.get(col.key)
                if source is not None:
                    wanted.update((source, col.key))
        wanted &= set(frame.columns)
        # one gather per column for the whole run of rows; only these rows become Python values
        values = {k: frame.get_column(k).gather(real).to_list() for k in wanted} if real else {}
        position = {index: n for n, index in enumerate(real)}
        out: list[list[list[tuple[str, Any]]]] = []
        for display_row, index in zip(range(start, end), indices, strict=True):
            if index is None:
                group = self._rows.group_at(display_row)
                out.append([self._sub_group_cells(spec, group) for spec in self._sub_rows])
                continue
            n = position[index]
            rows = []
            for spec in self._sub_rows:
                match = values.get(spec.match)
                matched = match is not None and match[n] == "matched"
                cells: list[tuple[str, Any]] = []
                for i, col in enumerate(layout.columns):
                    if i == 0:
                        label = f"  ↳ {spec.label}" + ("" if matched else ": no match")
                        cells.append((label, "dim" if matched else "warning"))
                        continue
                    source = spec.columns.get(col.key)
                    if not matched or source is None or source not in values:
                        cells.append(("", ""))
                        continue
                    mine = values[col.key][n] if col.key in values else None
                    cells.append(self._sub_cell(values[source][n], mine, col))
                rows.append(cells)
            out.append(rows)
        return out

    def _sub_cell(self, value: Any, mine: Any, col: ColumnSpec) -> tuple[str, Any]:
        """A compared value, dim, and in numeric columns its delta against ``mine`` (this row's)."""
        text, tone = format_cell(value, col.kind, col.key)
        tone = "dim" if not isinstance(tone, str) or tone in ("", "success") else tone
        if col.kind not in _NUMERIC_KINDS or value is None:
            return text, tone
        number = (int, float)
        delta = (float(value) - float(mine)) if isinstance(value, number) and isinstance(mine, number) else None
        text, delta_tone = with_delta(text, tone, delta, col)
        if isinstance(delta_tone, DeltaTone):
            return text, DeltaTone("dim", delta_tone.suffix, delta_tone.delta)
        return text, "dim"

    def _sub_group_cells(self, spec: SubRowSpec, group: Group | None) -> list[tuple[str, Any]]:
        """A group header's sub-row: the compared experiment's means over the group's cases."""
        cells: list[tuple[str, Any]] = []
        for i, col in enumerate(self._layout.columns):
            if i == 0:
                cells.append((f"  ↳ {spec.label}", "dim"))
                continue
            source = spec.columns.get(col.key)
            mean = group.means.get(source) if group is not None and source is not None else None
            if mean is None or (isinstance(mean, float) and math.isnan(mean)):
                cells.append(("", ""))
                continue
            text, tone = self._sub_cell(mean, group.means.get(col.key) if group is not None else None, col)
            if col.kind == "score":
                text = "μ " + text
            cells.append((text, tone))
        return cells

    def _render_sub_rows(self, row: int, subs: list[list[tuple[str, Any]]],
                         cursor: bool = False) -> list[tuple[Strip, Strip]]:
        """The strips of ``row``'s sub-rows: dim, indented, in the row's background."""
        layout = self._layout
        styles = self._get_styles()
        row_style = self._row_style(row, cursor)
        out = []
        for cells in subs:
            parts: list[list[Segment]] = [[], []]
            for i, (col, (text, tone)) in enumerate(zip(layout.columns, cells, strict=True)):
                part = 0 if i < layout.pinned_count else 1
                content = self._cell_lines(text, col, 1)[0] if text else ""
                if isinstance(tone, DeltaTone):
                    parts[part].extend(self._delta_segments(content, col, tone, row_style))
                else:
                    tone_style = self._tone_style(tone)
                    style = row_style + tone_style if tone_style is not None else row_style
                    parts[part].append(Segment(" " + _fit_cell(content, col.width, col.kind in _NUMERIC_KINDS),
                                               style))
                if part == 0 and i == layout.pinned_count - 1:
                    parts[0].append(Segment("│", row_style + styles["divider"]))
            out.append((Strip(parts[0], layout.pinned_width), Strip(parts[1], layout.scroll_width)))
        return out


def _thumb_at(bar: ScrollBar, position: float) -> int | None:
    """Where ``bar`` draws its thumb at ``position``, in eighths of a cell (None: no thumb), as
    Textual's ScrollBarRender places it."""
    size = bar.size.height
    virtual = math.ceil(bar.window_virtual_size)
    window = math.ceil(bar.window_size) if bar.window_size < bar.window_virtual_size else 0
    if not (window and size and virtual and size != virtual):
        return None
    thumb = max(1, window / (virtual / size))
    return int((size - thumb) * (position / (virtual - window)) * 8)


_LINE_BREAKS = re.compile(r"[ \t]*(?:\r?\n[ \t]*)+")


def _squeeze_breaks(text: str, budget: int, *, keep: bool) -> str:
    """``text`` cut to ``budget`` chars, each run of line breaks (CRLF included) and the
    blanks around it made one space (one-line cells) or one newline (tall cells).

    A cut is marked with ``…``; lone CRs and other controls are left for ``safe_text``.
    """
    cut = len(text) > budget
    if cut:
        text = text[:budget]
    if "\n" in text:
        text = _LINE_BREAKS.sub("\n" if keep else " ", text)
    return text + ELLIPSIS if cut else text


def _fit_cell(text: str, width: int, align_right: bool) -> str:
    """Pad (or cut) an already-safe ``text`` to exactly ``width`` cells."""
    length = cell_len(text)
    if length == width:
        return text
    if length > width:
        return set_cell_size(text, width)
    pad = " " * (width - length)
    return pad + text if align_right else text + pad


def with_width(spec: ColumnSpec, width: int) -> ColumnSpec:
    """A copy of ``spec`` with another width (for resizing columns)."""
    return replace(spec, width=max(1, width))
