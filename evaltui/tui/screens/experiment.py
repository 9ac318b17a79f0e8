"""One experiment: its traces (or spans) in the table, and the trace pane beside or over it."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from evaltui.config import ColumnSettings
from evaltui.lazy_polars import pl
from evaltui.store import load_span, load_span_rows, load_trace_rows, load_trace_spans
from evaltui.store.page import Page
from evaltui.store.readers import experiment_version, trace_page
from evaltui.tui.commands import ExperimentCommands
from evaltui.tui.screens.compare_support import CompareMixin
from evaltui.tui.screens.computed_columns import ComputedColumns
from evaltui.tui.screens.review import ReviewActions
from evaltui.tui.widgets.experiment_table import ColumnSpec, ExperimentTable
from evaltui.tui.screens.experiment_views import ExperimentViews
from evaltui.tui.widgets.footer import KeyFooter
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.trace_pane import TracePane

if TYPE_CHECKING:  # imported where used: start-up does not need the filter language or trace model
    from evaltui.query.filter import FilterError
    from evaltui.tui.widgets.filter_bar import FilterBar
    from evaltui.tui.widgets.trace_data import TraceData

FIRST_PAGE = 200
FIRST_PAGE_WAIT = 0.25  # seconds the screen waits for the first page read at start-up, before a worker takes over
WIDE = 120  # terminal columns from which the trace pane opens beside the table
FULL_FIELDS = ("input", "output", "expected", "error")
# Trace-row columns the issue asks to show that the table's defaults keep hidden.
SHOWN_BY_DEFAULT = ("llm_duration", "prompt_tokens", "completion_tokens", "errors", "created", "assignee")
TRACE_ORDER = (
    "input", "output", "expected", "@scores", "error", "duration", "llm_duration", "prompt_tokens",
    "completion_tokens", "tokens", "estimated_cost", "llm_calls", "tool_calls", "errors", "tags", "created",
    "review_status", "assignee", "@metadata",
)


def _import_arrange() -> None:
    import evaltui.query.filter  # noqa: F401


class FirstPage:
    """The experiment to open and its first page of trace rows, read in a thread started
    with the app: they are ready when the screen mounts instead of being read only then
    (at start-up that read also waited on the event loop's first layouts). The page is plain
    values (a store ``Page``): the table paints it before polars is imported."""

    def __init__(self, store: Any, ref: str) -> None:
        self.ref = ref
        self._store = store
        self._done = threading.Event()
        self._taken = False
        self.experiment: dict[str, Any] | None = None
        self.error: str | None = None  # why the read failed (the screen reads again and says so)
        self._page: tuple[tuple[int, int], Page] | None = None
        threading.Thread(target=self._read, name="evaltui-first-page", daemon=True).start()

    def _read(self) -> None:
        from evaltui.store import find_experiment

        try:
            exp = find_experiment(self._store, self.ref)
            self.experiment = exp
            version = experiment_version(self._store, exp["id"])  # before the rows, as load_rows reads them
            self._page = (version, trace_page(self._store, exp["id"], FIRST_PAGE))
        except Exception as e:  # noqa: BLE001 - the screen's own reads report what went wrong
            self.error = str(e)
        finally:
            self._done.set()

    def found(self, timeout: float = 10.0) -> dict[str, Any] | None:
        """The experiment ``ref`` names (None when it could not be read: look it up again)."""
        self._done.wait(timeout)
        return self.experiment

    def take(self, experiment_id: str, timeout: float = 10.0) -> tuple[tuple[int, int], Page] | None:
        """(version, first page) of ``experiment_id``, once; None when not read here."""
        known = self.experiment  # set by the thread before it reads the page
        if known is not None and known["id"] != experiment_id:
            return None  # another experiment's screen: no wait for this read
        if self._taken or not self._done.wait(timeout) or self.experiment is None:
            return None
        if self.experiment["id"] != experiment_id:
            return None
        self._taken = True
        page, self._page = self._page, None
        return page


def default_columns(frame: pl.DataFrame, row_type: str) -> list[ColumnSpec]:
    """The table's defaults, with the columns of issue 3 shown and in its order (trace rows)."""
    specs = ExperimentTable.default_columns(frame, row_type)
    if row_type != "traces":
        return specs
    specs = [replace(s, visible=True) if s.key in SHOWN_BY_DEFAULT else s for s in specs]

    def rank(s: ColumnSpec) -> tuple[int, int]:
        key = s.key
        group = "@scores" if key.startswith("scores.") else "@metadata" if key.startswith("metadata.") else key
        return (TRACE_ORDER.index(group) if group in TRACE_ORDER else len(TRACE_ORDER), 0)

    visible = sorted((s for s in specs if s.visible), key=rank)  # stable: scores keep their order
    return visible + [s for s in specs if not s.visible]


def apply_settings(specs: list[ColumnSpec], settings: ColumnSettings) -> list[ColumnSpec]:
    """The user's saved order / hidden / pinned / widths over the default specs.

    Columns saved in ``order`` take their saved visibility; columns new since then keep
    their defaults and go after the saved ones.
    """
    if settings.is_empty():
        return specs
    by_key = {s.key: s for s in specs}
    known = set(settings.order)
    hidden, pinned = set(settings.hidden), set(settings.pinned)
    out: list[ColumnSpec] = []
    for key in settings.order:
        s = by_key.get(key)
        if s is not None:
            out.append(s)
    out += [s for s in specs if s.key not in known]
    result = []
    for s in out:
        visible = (s.key not in hidden) if s.key in known or s.key in hidden else s.visible
        result.append(replace(
            s,
            visible=visible,
            pinned=(s.key in pinned) if (settings.pinned or s.key in known) else s.pinned,
            width=settings.widths.get(s.key, s.width),
        ))
    return result


def settings_from(specs: list[ColumnSpec], defaults: list[ColumnSpec]) -> ColumnSettings:
    """What to save for ``specs``: everything, so a column shown by hand stays shown."""
    default_width = {s.key: s.width for s in defaults}
    return ColumnSettings(
        order=[s.key for s in specs],
        hidden=[s.key for s in specs if not s.visible],
        pinned=[s.key for s in specs if s.pinned],
        widths={s.key: s.width for s in specs if default_width.get(s.key) != s.width},
    )


class ExperimentScreen(ComputedColumns, CompareMixin, ReviewActions, ExperimentViews, Screen[None]):
    """Trace rows of one experiment; enter opens a trace, t shows spans, esc goes back."""

    HELP_GROUP = "Experiment"
    COMMANDS = {ExperimentCommands}
    BINDINGS = [
        Binding("escape,q", "back", "Back", id="experiment.back"),
        Binding("slash", "filter", "Filter", id="experiment.filter"),
        Binding("t", "toggle_rows", "Traces/spans", id="experiment.toggle-rows"),
        Binding("y", "copy_cell", "Copy cell", id="experiment.copy-cell"),
        Binding("Y", "copy_row", "Copy row JSON", show=False, id="experiment.copy-row"),
        Binding("C", "columns", "Columns", id="experiment.columns"),
        Binding("D", "toggle_density", "Density", id="experiment.density"),
        Binding("1", "view('tree')", "Tree view", show=False, id="experiment.view-tree"),
        Binding("2", "view('timeline')", "Timeline view", show=False, id="experiment.view-timeline"),
        Binding("3", "view('thread')", "Thread view", show=False, id="experiment.view-thread"),
        Binding("f", "toggle_full", "Full screen", id="experiment.full-screen"),
        Binding("x", "export", "Export view…", show=False, id="experiment.export"),
        Binding("M", "make_dataset", "Dataset from rows…", show=False, id="experiment.dataset"),
        Binding("A", "analyze", "Analyze", show=False, id="experiment.analyze"),
        Binding("tab", "app.focus_next", "Next pane", show=False, id="experiment.focus-next"),
        Binding("shift+tab", "app.focus_previous", "Previous pane", show=False, id="experiment.focus-previous"),
        # views: sort, built-in and saved views, search, group by (experiment_views.py)
        Binding("left_square_bracket", "sort(False)", "Sort ascending (again: unsort)", show=False,
                id="experiment.sort-asc"),
        Binding("right_square_bracket", "sort(True)", "Sort descending (again: unsort)", show=False,
                id="experiment.sort-desc"),
        Binding("v", "views", "Views", id="experiment.views"),
        Binding("ctrl+s", "save_view", "Save view", show=False, id="experiment.save-view"),
        Binding("ctrl+f,backslash", "search", "Search text", show=False, id="experiment.search"),
        Binding("n", "search_next(1)", "Next match", show=False, id="experiment.search-next"),
        Binding("N", "search_next(-1)", "Previous match", show=False, id="experiment.search-previous"),
        Binding("b", "group", "Group by", show=False, id="experiment.group"),
        # review (screens/review.py)
        Binding("r", "toggle_review", "Reviewed / unreviewed", show=False, id="experiment.review"),
        Binding("a", "assign", "Assign…", show=False, id="experiment.assign"),
        Binding("s,space", "toggle_select", "Select row", show=False, id="experiment.select"),
        Binding("S", "select_matching", "Select all matching", show=False, id="experiment.select-all"),
        Binding("R", "review_mode", "Review mode", show=False, id="experiment.review-mode"),
        Binding("J", "review_next", "Next trace", show=False, id="experiment.review-next"),
        Binding("K", "review_previous", "Previous trace", show=False, id="experiment.review-previous"),
        Binding("H", "human_score", "Human score…", show=False, id="experiment.human-score"),
        Binding("i", "comment", "Comment…", show=False, id="experiment.comment"),
        # compare (screens/compare_support.py)
        Binding("c", "compare", "Compare", id="experiment.compare"),
        Binding("d", "diff_mode", "Diff mode", show=False, id="experiment.diff-mode"),
        Binding("X", "diff_target", "Diff against next", show=False, id="experiment.diff-target"),
        Binding("plus", "filter_changed('up')", "Filter to column's ↑", show=False, id="experiment.filter-improved"),
        Binding("minus", "filter_changed('down')", "Filter to column's ↓", show=False,
                id="experiment.filter-regressed"),
        Binding("L", "layout", "Layouts", show=False, id="experiment.layout"),
        Binding("vertical_line", "side_by_side", "Matching trace side by side", show=False,
                id="experiment.side-by-side"),
        Binding("O", "order_regressions", "Order by regressions", show=False, id="experiment.order-regressions"),
    ]

    class RowsLoaded(Message):
        def __init__(self, row_type: str, frame: pl.DataFrame, total: int | None, complete: bool) -> None:
            self.row_type = row_type
            self.frame = frame
            self.total = total
            self.complete = complete
            super().__init__()

    class TraceLoaded(Message):
        def __init__(self, trace: TraceData | None, select: str | None, error: str | None = None) -> None:
            self.trace = trace
            self.select = select
            self.error = error
            super().__init__()

    class CopyReady(Message):
        def __init__(self, text: str | None, what: str, error: str | None = None) -> None:
            self.text = text
            self.what = what
            self.error = error
            super().__init__()

    class FilterDone(Message):
        def __init__(self, row_type: str, text: str, frame: pl.DataFrame | None,
                     error: FilterError | None = None, failure: str | None = None, quiet: bool = False,
                     groups: list | None = None, state: tuple | None = None) -> None:
            self.groups = groups
            self.state = state
            self.row_type = row_type
            self.text = text
            self.frame = frame
            self.error = error
            self.failure = failure
            self.quiet = quiet
            super().__init__()

    class LoadFailed(Message):
        def __init__(self, error: str) -> None:
            self.error = error
            super().__init__()

    def __init__(self, experiment: dict[str, Any]) -> None:
        super().__init__(id="experiment")
        self.experiment = experiment
        self.row_type = "traces"
        self.frames: dict[str, pl.DataFrame] = {}
        self.complete: dict[str, bool] = {}
        self.total: int | None = None
        self.pane_open = False
        self.full = False
        self._follow_timer: Timer | None = None
        self._pending_cursor: str | None = None
        self._trace_key: str | None = None
        self._layout_state: tuple[bool, bool, bool] | None = None
        self._reveal_timer: Timer | None = None
        self._focus_on_reveal = False
        self.filter_text: str | None = None  # the applied filter (None: all rows)
        self.filtered: dict[str, pl.DataFrame] = {}  # row type -> the matching rows
        self._init_views()

    @property
    def project(self) -> str:
        return self.experiment["project"]

    @property
    def ref(self) -> str:
        return f"{self.experiment['project']}/{self.experiment['name']}"

    def compose(self) -> ComposeResult:
        yield Static("", id="exp-title", classes="title-line")
        with Horizontal(id="exp-body"):
            yield ExperimentTable(id="table")
            yield TracePane(id="pane")
        # the filter and search bars are mounted when first opened (see _bar): start-up has
        # seven widgets (and Textual's Input) less to import, style and visit
        yield KeyFooter()

    async def _bar(self, name: str) -> Any:
        """The filter (``name`` "filter") or search bar, mounted hidden the first time it is asked for,
        between the table and the footer (the filter bar above the search bar)."""
        found = self.query(f"#{name}-bar")
        if found:
            return found.first()
        if name == "filter":
            from evaltui.tui.widgets.filter_bar import FilterBar

            bar = FilterBar(id="filter-bar")
        else:
            from evaltui.tui.widgets.search_bar import SearchBar

            bar = SearchBar(id="search-bar")
        bar.display = False
        other = self.query("#search-bar")
        if name == "filter" and other:
            await self.mount(bar, before=other.first())
        else:
            await self.mount(bar, before=self.query_one(KeyFooter))
        return bar

    def _open_bar(self, name: str) -> Any:
        """The bar when it is mounted (None before its first use)."""
        found = self.query(f"#{name}-bar")
        return found.first() if found else None

    def on_mount(self) -> None:
        tables = self.query(ExperimentTable)
        if not tables:  # pushed as the app quits: Textual mounts it without composing it
            return
        table = tables.first()
        table.density = self.app.config.density  # type: ignore[attr-defined]
        self._update_title()
        table.focus()
        if not self._show_first_page():
            self.load_rows("traces")
        self.load_views()

    def _show_first_page(self) -> bool:
        """Show the first page the app read while starting (if it has it already): the first
        frame then has rows, without a worker's round trip behind the screen's first layouts."""
        preload: FirstPage | None = getattr(self.app, "first_page", None)
        # at start-up the screen can mount just before the read ends: waiting for it here (the
        # thread's SQL runs without the GIL) costs less than a worker and a "loading" frame
        read = preload.take(self.experiment["id"], timeout=FIRST_PAGE_WAIT) if preload is not None else None
        if read is None:
            return False
        version, page = read
        try:
            if any(self.computed_defs(refresh=True)):  # a small settings read
                # computed columns need polars: the worker turns the page into a frame first
                self._page_frame(version, page)
                return True
            columns, _ = self._columns_for("traces", page)
        except Exception:  # noqa: BLE001 - the worker reads and reports it again
            return False
        self.loaded_version = version
        self.total = version[1]
        self.complete["traces"] = False  # until the frame (polars) is in: see _page_frame
        table = self.query_one(ExperimentTable)
        table.set_data(page, columns, "root_span_id", keep_cursor=False)
        self._update_title()
        # painted first; polars loads (~150 ms) in the worker, which turns the page into the
        # screen's frame (then the rest loads as for any first page)
        self.call_after_refresh(self._page_frame, version, page)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="rows-page")
    def _page_frame(self, version: tuple[int, int], page: Page) -> None:
        """The first page (plain values) as the screen's first frame of trace rows (read again
        if the experiment changed since: a small one is complete with it, nothing reads it after)."""
        try:
            store, eid = self.app.store, self.experiment["id"]  # type: ignore[attr-defined]
            now = experiment_version(store, eid)
            if now != version:
                version, first = now, load_trace_rows(store, eid, limit=FIRST_PAGE)
            else:
                first = page.to_polars()
            first = self.with_computed(first, refresh=True)
            self.loaded_version = version
            self.post_message(self.RowsLoaded("traces", first, version[1], version[1] <= first.height))
        except Exception as e:
            self.post_message(self.LoadFailed(f"could not load traces of {self.ref}: {e}"))

    # -- loading ---------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="rows")
    def load_rows(self, row_type: str) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        eid = self.experiment["id"]
        try:
            if row_type == "spans":
                self.post_message(self.RowsLoaded("spans", load_span_rows(store, eid), None, True))
                return
            preload: FirstPage | None = getattr(self.app, "first_page", None)
            read = preload.take(eid) if preload is not None else None
            if read is not None:
                self.loaded_version, plain = read
                page = plain.to_polars()
            else:
                self.loaded_version = experiment_version(store, eid)  # (version, count): cheap
                page = load_trace_rows(store, eid, limit=FIRST_PAGE)
            total = self.loaded_version[1]
            first = self.with_computed(page, refresh=True)
            # the rest is loaded once this page is painted (see rows_loaded)
            self.post_message(self.RowsLoaded("traces", first, total, total <= first.height))
        except Exception as e:
            self.post_message(self.LoadFailed(f"could not load {row_type} of {self.ref}: {e}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="rows-rest")
    def load_rest(self) -> None:
        """All trace rows (served from the store's frame cache when it is current)."""
        try:
            frame = load_trace_rows(self.app.store, self.experiment["id"])  # type: ignore[attr-defined]
            frame = self.with_computed(frame)
            self.post_message(self.RowsLoaded("traces", frame, frame.height, True))
        except Exception as e:
            self.post_message(self.LoadFailed(f"could not load traces of {self.ref}: {e}"))

    def on_experiment_screen_load_failed(self, message: LoadFailed) -> None:
        self.app.notify(safe_text(message.error, 300), severity="error", markup=False)
        self._update_title(message.error)

    def on_experiment_screen_rows_loaded(self, message: RowsLoaded) -> None:
        if message.row_type == "traces" and message.total is not None:
            self.total = message.total
        self.frames[message.row_type] = self.with_comparison(message.frame, message.row_type)
        self.complete[message.row_type] = message.complete
        if message.row_type == "traces" and not message.complete:
            # the first page paints before the rest loads (the load would slow the paint)
            self.call_after_refresh(self.load_rest)
        elif message.complete:
            self.call_after_refresh(self._rows_settled)
        if self._arranging():
            self.filtered.pop(message.row_type, None)
            if message.row_type == self.row_type:
                # the filter goes on showing the rows it matched until it has run on these
                self.run_filter(message.row_type, self.filter_text or "", message.frame, quiet=True)
                self._update_title()
                return
        if message.row_type == self.row_type:
            self._show_frame()
        self._update_title()

    def _rows_settled(self) -> None:
        pending, self._pending_reload = self._pending_reload, None
        if pending is not None and pending != self.loaded_version:
            self.reload_rows(None if pending is True else pending)  # a change seen while loading
        self.query_one(TracePane).prepare()  # ready before the first enter
        self.app.freeze_heap()  # type: ignore[attr-defined]
        # the filter language (sort, group and filter run through it) loads now, while idle,
        # not on the first [ / b / enter (it was most of the first sort's 100 ms)
        threading.Thread(target=_import_arrange, name="evaltui-import-filter", daemon=True).start()

    def _columns_for(self, row_type: str, frame: pl.DataFrame | Page | None = None) -> tuple[list[ColumnSpec], list[ColumnSpec]]:
        """(the columns shown, the defaults) for ``frame`` (the screen's frame of ``row_type``,
        or the table's first page while that is all there is)."""
        if frame is None:
            frame = self.frames.get(row_type)
        if frame is None:
            frame = self.query_one(ExperimentTable).frame
        defaults = default_columns(frame, row_type)
        settings = self.app.config.column_settings(self.project, row_type)  # type: ignore[attr-defined]
        settings = self._view_columns_or(settings)
        columns = apply_settings(defaults, settings)
        return self.comparison_columns(columns, row_type), self.comparison_columns(defaults, row_type)

    def _show_frame(self) -> None:
        if self.row_type not in self.frames:  # (only the first page is in: the frame shows all)
            return
        table = self.query_one(ExperimentTable)
        frame = self.filtered.get(self.row_type, self.frames[self.row_type])
        columns, _ = self._columns_for(self.row_type)
        key_column = "root_span_id" if self.row_type == "traces" else "id"
        target = self._pending_cursor
        table.set_data(frame, columns, key_column, keep_cursor=target is None, groups=self._groups_for(self.row_type))
        if target is not None:
            self._pending_cursor = None
            row = self._row_of_trace(frame, target)
            if row is not None:
                table.move_cursor(row=table.display_row(row))
        self._after_show(table)

    def _row_of_trace(self, frame: pl.DataFrame, root_span_id: str) -> int | None:
        if frame.height == 0 or "root_span_id" not in frame.columns:
            return None
        mask = frame["root_span_id"] == root_span_id
        if self.row_type == "spans" and "span_id" in frame.columns:
            exact = (mask & (frame["span_id"] == root_span_id)).arg_true()
            if len(exact):
                return int(exact[0])
        hits = mask.arg_true()
        return int(hits[0]) if len(hits) else None

    def _update_title(self, note: str = "") -> None:
        frame = self.frames.get(self.row_type)
        loading = not self.complete.get(self.row_type, True)
        if frame is None and self.row_type == "traces":
            tables = self.query(ExperimentTable)  # the first page, painted before polars loads
            frame = tables.first().frame if tables and tables.first().frame.height else None
            loading = frame is not None and (self.total or 0) > frame.height
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        if frame is None:
            t.append("loading… ", "italic")
        else:
            shown = self.filtered.get(self.row_type, frame)
            n = shown.height
            if self.row_type == "traces":
                total = self.total if self.total is not None else frame.height
                t.append(f"{n:,} of {total:,} rows", "bold")
            else:
                t.append(f"{n:,} of {frame.height:,} span rows", "bold")
            if loading:
                t.append(" (loading the rest…)", "italic")
            self.comparison_title(t)
        t.append(" · ", "dim")
        t.append(safe_text(self.ref, 80), "bold")
        t.append(f"  [{self.row_type}]", "dim")
        if self.filter_text is not None:
            t.append(" · ", "dim")
            t.append("filter: ", "dim")
            t.append(safe_text(self.filter_text, 200), "bold")
        self._title_extras(t)
        self.review_title(t)
        if note:
            t.append("  " + safe_text(note, 200), "bold red")
        self.query_one("#exp-title", Static).update(t, layout=False)  # one line high: no relayout

    # -- rows and traces -------------------------------------------------------------------

    def _current_trace_id(self) -> str | None:
        row = self.query_one(ExperimentTable).current_row()
        return row.get("root_span_id") if row else None

    def action_toggle_rows(self) -> None:
        self._pending_cursor = self._current_trace_id()
        self.row_type = "spans" if self.row_type == "traces" else "traces"
        if self.row_type in self.frames and self._arranging() and self.row_type not in self.filtered:
            self.run_filter(self.row_type, self.filter_text or "", self.frames[self.row_type], quiet=True)
        elif self.row_type in self.frames:
            self._show_frame()
        else:
            self.load_rows(self.row_type)
        self._update_title()

    @on(ExperimentTable.RowSelected)
    def open_row(self, event: ExperimentTable.RowSelected) -> None:
        event.stop()
        row = self.query_one(ExperimentTable).current_row()
        if not row:
            return
        select = row.get("span_id") if self.row_type == "spans" else None
        self.open_trace(row["root_span_id"], select)

    @on(ExperimentTable.RowHighlighted)
    def follow_row(self, event: ExperimentTable.RowHighlighted) -> None:
        # beside the table the pane follows the cursor (after a short pause: holding j is cheap)
        if not (self.pane_open and not self.full and self._pane_mode() == "side"):
            return
        if self._follow_timer is not None:
            self._follow_timer.stop()
        self._follow_timer = self.set_timer(0.15, self._follow)

    def _follow(self) -> None:
        row = self.query_one(ExperimentTable).current_row()
        if row and row.get("root_span_id") != self._trace_key:
            select = row.get("span_id") if self.row_type == "spans" else None
            self.open_trace(row["root_span_id"], select, focus=False)

    def open_trace(self, root_span_id: str, select: str | None = None, *, focus: bool = True) -> None:
        pane = self.query_one(TracePane)
        self._trace_key = root_span_id
        self.load_trace(root_span_id, select)
        if focus and self.pane_open:
            pane.focus_view()
        elif focus:
            self._focus_on_reveal = True  # moving focus now would repaint the screen twice
        if self.pane_open:
            pane.show_loading("trace")
        elif self._reveal_timer is None:
            # a closed pane opens with its trace (one layout, not one for "loading" and one
            # for the trace), or after a short wait when the trace is slow to load
            self._reveal_timer = self.set_timer(0.15, self._reveal_pane)

    def _reveal_pane(self) -> None:
        if self._reveal_timer is not None:
            self._reveal_timer.stop()
            self._reveal_timer = None
        if self.pane_open or self._trace_key is None:
            return
        self.pane_open = True
        self._layout()
        pane = self.query_one(TracePane)
        if self._focus_on_reveal:
            self._focus_on_reveal = False
            pane.focus_view()
        if pane.trace is None or pane.trace.root_span_id != self._trace_key:
            pane.show_loading("trace")

    @work(thread=True, exclusive=True, exit_on_error=False, group="trace")
    def load_trace(self, root_span_id: str, select: str | None) -> None:
        from evaltui.tui.widgets.trace_data import TraceData
        from evaltui.tui.widgets.trace_tree import prepare_labels

        try:
            frame = load_trace_spans(self.app.store, self.experiment["id"], root_span_id)  # type: ignore[attr-defined]
            trace = TraceData.from_frame(self.experiment["id"], root_span_id, frame)
            prepare_labels(trace)  # the tree's lines, made here rather than on the event loop
            trace.totals()  # and the title's sums
            _ = trace.t0  # and the first start (the detail's "starts at"), cached
        except Exception as e:
            self.post_message(self.TraceLoaded(None, select, f"could not load the trace: {e}"))
            return
        self.post_message(self.TraceLoaded(trace, select))

    def on_experiment_screen_trace_loaded(self, message: TraceLoaded) -> None:
        pane = self.query_one(TracePane)
        if message.trace is None:
            self._reveal_pane()
            pane.show_error(message.error or "could not load the trace")
            return
        if message.trace.root_span_id != self._trace_key:
            return  # the cursor moved on meanwhile
        pane.show_trace(message.trace, message.select)
        self._reveal_pane()

    def _pane_mode(self) -> str:
        return "side" if self.size.width >= WIDE else "over"

    def _layout(self) -> None:
        mode = self._pane_mode()
        state = (self.pane_open and not self.full and mode == "side", self.pane_open and (self.full or mode == "over"),
                 self.pane_open and self.full)
        if state == self._layout_state:
            return  # a resize that changes nothing: no restyle, no footer rebuild
        old, self._layout_state = self._layout_state, state
        side, over, full = state
        self.set_class(side, "-pane-side", update=False)
        self.set_class(over, "-pane-over", update=False)
        self.set_class(full, "-pane-full", update=False)
        # restyle only what the -pane-* rules select (the children of #exp-body, the title
        # lines), not every node of the screen and their descendants: opening a trace spent
        # 14-30 ms restyling the table, the pane's views and the footer for nothing
        # the table's rules change only with -pane-over (or beside a compared twin pane, -twin):
        # restyling it (its many component styles) for nothing was a third of the cost
        table_too = old is None or old[1] != over or self.has_class("-twin")
        nodes: list[Any] = [n for n in self.query_one("#exp-body").children
                            if table_too or not isinstance(n, ExperimentTable)]
        if old is None or old[2] != full:
            nodes += list(self.query(".title-line"))
        self.app.stylesheet.update_nodes(nodes, animate=True)
        self.refresh_bindings()

    def on_resize(self, event: Resize) -> None:
        self._layout()

    def close_pane(self) -> None:
        self._focus_on_reveal = False
        if self._reveal_timer is not None:
            self._reveal_timer.stop()
            self._reveal_timer = None
        self.pane_open = False
        self.full = False
        self._trace_key = None
        self._layout()
        self.query_one(ExperimentTable).focus()

    def action_back(self) -> None:
        if self.pane_open or self._reveal_timer is not None:
            self.close_pane()
        elif self.unselect_rows():
            pass
        elif self.filter_text is not None:
            self.clear_filter()
        elif self.search_text:
            self.clear_search()
        else:
            self.app.pop_screen()

    def action_toggle_full(self) -> None:
        if not self.pane_open:
            return
        self.full = not self.full
        self._layout()
        self.query_one(TracePane).focus_view()

    def action_view(self, view: str) -> None:
        if not self.pane_open:
            return
        pane = self.query_one(TracePane)
        pane.view = view

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("view", "toggle_full"):
            return self.pane_open
        review = self.review_check_action(action)
        if review is not None:
            return review
        return True

    # -- filter ----------------------------------------------------------------------------

    async def action_filter(self) -> None:
        bar = await self._bar("filter")
        bar.history = list(self.app.config.filter_history)  # type: ignore[attr-defined]
        frame = self.frames.get(self.row_type)
        if frame is not None:
            bar.set_completion_source(frame.schema, self._completion_values(self.row_type), self.row_type)
        bar.open(self.filter_text or "")

    def on_filter_bar_applied(self, event: FilterBar.Applied) -> None:
        event.stop()
        text = event.text
        if not text.strip():
            self._close_filter_bar()
            self.clear_filter()
            return
        frame = self.frames.get(self.row_type)
        if frame is None:
            self.app.notify("The rows are still loading", severity="warning")
            return
        self.run_filter(self.row_type, text, frame)

    def on_filter_bar_closed(self, event: FilterBar.Closed) -> None:
        # esc in the bar clears the filter (the "esc clears it"); enter keeps it
        event.stop()
        self._close_filter_bar()
        if self.filter_text is not None:
            self.clear_filter()

    def _close_filter_bar(self) -> None:
        """Hide the bar and give the table the keys (j/k/r/a work at once); ``/`` reopens it."""
        bar = self._open_bar("filter")
        if bar is None:
            return
        bar.clear_error()
        if bar.display:
            bar.display = False
            self.query_one(ExperimentTable).focus()

    @work(thread=True, exclusive=True, exit_on_error=False, group="filter")
    def run_filter(self, row_type: str, text: str, frame: pl.DataFrame, quiet: bool = False) -> None:
        from evaltui.query.filter import FilterError

        store = self.app.store  # type: ignore[attr-defined]
        eid = self.experiment["id"]
        state = self._arrange_state()
        try:
            result, groups = self._arrange(row_type, text, frame, spans=lambda: load_span_rows(store, eid))
        except FilterError as e:
            self.post_message(self.FilterDone(row_type, text, None, error=e, quiet=quiet, state=state))
            return
        except Exception as e:
            self.post_message(self.FilterDone(row_type, text, None, failure=f"filter failed: {e}", quiet=quiet,
                                              state=state))
            return
        self.post_message(self.FilterDone(row_type, text, result, quiet=quiet, groups=groups, state=state))

    def on_experiment_screen_filter_done(self, message: FilterDone) -> None:
        bar = self._open_bar("filter")
        if message.frame is None:
            if message.quiet:
                # re-applying the active filter (other row type, newly loaded rows) failed
                if (self.filter_text or "") == message.text and message.state == self._arrange_state():
                    why = message.error.message if message.error else message.failure
                    if message.error is None and self.view_name != "Default":
                        self.app.notify(safe_text(f"View {self.view_name} left: {why}", 300), severity="warning",
                                        markup=False)
                        self.apply_builtin("Default")
                        return
                    if self.filter_text is not None:
                        self.app.notify(safe_text(f"Filter cleared: {why}", 300), severity="warning", markup=False)
                        self.clear_filter()
                        return
                    # nothing left to drop but the sort and group: show the rows as loaded
                    self.app.notify(safe_text(f"Sort and group cleared: {why}", 300), severity="warning",
                                    markup=False)
                    self.sort_keys, self.group_by = [], None
                    self.rearrange()
                return
            if bar is None:  # a filter applied from elsewhere (Analyze's findings) with the bar never opened
                why = message.error.message if message.error else (message.failure or "filter failed")
                self.app.notify(safe_text(f"Filter not applied: {why}", 300), severity="error", markup=False)
            elif message.error is not None:
                bar.show_error(message.text, message.error.message, message.error.column)
            else:
                bar.show_error(message.text, message.failure or "filter failed", 1)
            return
        if message.row_type not in self.frames or message.state != self._arrange_state():
            return
        if not message.quiet:
            self._close_filter_bar()  # applied: the filter stays, the table takes the keys
            self.filtered.clear()  # a new filter: other row types are filtered again when shown
            self.remember_filter(message.text)
        elif (self.filter_text or "") != message.text:
            return  # a stale re-application
        self.filter_text = message.text or None
        self.filtered[message.row_type] = message.frame
        self.groups[message.row_type] = message.groups
        if message.row_type == self.row_type:
            self._show_frame()
        self._update_title()

    def clear_filter(self) -> None:
        self.filter_text = None
        self.filtered.clear()
        if self._arranging():
            self.rearrange()  # the view, sort and group stay
            return
        if self.row_type in self.frames:
            self._show_frame()
        self._update_title()

    def apply_filter_text(self, text: str) -> None:
        """Filter the trace rows by ``text`` as the filter bar does (the Analyze screen's findings)."""
        if self.row_type != "traces":
            self._pending_cursor = None
            self.row_type = "traces"
        frame = self.frames.get("traces")
        if frame is None:
            self.filter_text = text  # runs when the rows arrive
            self.load_rows("traces")
        else:
            self.run_filter("traces", text, frame)
        self._update_title()

    def action_analyze(self) -> None:
        from evaltui.tui.screens.analyze import AnalyzeScreen

        self.app.push_screen(AnalyzeScreen(self.experiment, self.filter_text, origin=self))

    # -- density and columns ---------------------------------------------------------------

    def action_toggle_density(self) -> None:
        table = self.query_one(ExperimentTable)
        self.set_density("tall" if table.density == "compact" else "compact")

    def set_density(self, density: str) -> None:
        self.query_one(ExperimentTable).density = density
        self.app.config.density = density  # type: ignore[attr-defined]
        self.app.save_config()  # type: ignore[attr-defined]

    def rows_loading(self) -> bool:
        """Whether the rows shown are not the screen's frame yet (at start-up, for a few hundred
        ms, the table paints the first page before polars is loaded; or a row type still
        loading): says so to the user, for the actions that need the frame."""
        if self.row_type in self.frames:
            return False
        self.app.notify("The rows are still loading", severity="warning", timeout=2)
        return True

    def _has_columns(self) -> bool:
        """Whether there are columns to arrange (the frame's, or the first page's before it)."""
        return self.row_type in self.frames or bool(self.query_one(ExperimentTable).frame.height)

    def action_columns(self) -> None:
        if not self._has_columns():
            return
        from evaltui.tui.screens.columns import ColumnsScreen

        table = self.query_one(ExperimentTable)
        _, defaults = self._columns_for(self.row_type)
        self.app.push_screen(ColumnsScreen(table.columns, defaults, self.apply_columns,
                                           f"{self.project} · {self.row_type}"))

    def apply_columns(self, columns: list[ColumnSpec]) -> None:
        """Show ``columns`` now and remember them for this project and row type."""
        self.view_columns = None  # columns chosen by hand replace a loaded view's
        self.query_one(ExperimentTable).set_columns(columns)
        _, defaults = self._columns_for(self.row_type)
        settings = settings_from(columns, defaults)
        if [(s.key, s.visible, s.pinned, s.width) for s in columns] == [
            (s.key, s.visible, s.pinned, s.width) for s in defaults
        ]:
            settings = None
        self.app.config.set_column_settings(self.project, self.row_type, settings)  # type: ignore[attr-defined]
        self.app.save_config()  # type: ignore[attr-defined]

    def reset_columns(self) -> None:
        if not self._has_columns():
            return
        _, defaults = self._columns_for(self.row_type)
        self.apply_columns(defaults)
        self.app.notify("Columns reset to defaults", timeout=2)

    # -- copy ------------------------------------------------------------------------------

    def action_export(self) -> None:
        """The rows the table shows, in its order and with its visible columns, to a file."""
        from evaltui.tui.screens.export import ExportScreen

        if self.rows_loading():
            return
        table = self.query_one(ExperimentTable)
        frame = table.frame
        if frame.height == 0 or "id" not in frame.columns:
            self.app.notify("no rows to export", severity="warning")
            return
        self.app.push_screen(ExportScreen(
            self.app.store.path, self.experiment, frame["id"].to_list(),  # type: ignore[attr-defined]
            rows=self.row_type, columns=[c.key for c in table.visible_columns],
            note=f"filter: {self.filter_text}" if self.filter_text else "",
        ))

    def action_make_dataset(self) -> None:
        """A dataset (input, expected, metadata, tags) from the traces the table shows."""
        from evaltui.tui.screens.export import DatasetScreen

        if self.rows_loading():
            return
        frame = self.query_one(ExperimentTable).frame
        if frame.height == 0 or "root_span_id" not in frame.columns:
            self.app.notify("no rows to make a dataset from", severity="warning")
            return
        what = "the filtered rows" if self.filter_text else "all rows"
        self.app.push_screen(DatasetScreen(
            self.app.store.path, self.experiment, frame["root_span_id"].to_list(),  # type: ignore[attr-defined]
            what=what,
        ))

    def action_copy_cell(self) -> None:
        table = self.query_one(ExperimentTable)
        key, value = table.current_cell_value()
        row = table.current_row()
        if not key or not row:
            self.app.notify("Nothing to copy", severity="warning")
            return
        label = next((c.label for c in table.columns if c.key == key), key)
        what = f"{label} of row {table.cursor_row + 1}"
        if key in FULL_FIELDS and row.get("id"):
            # the table holds a 400-character preview; copy the whole field
            self.fetch_copy(row["id"], key, what)
            return
        if value is None:
            text = ""
        elif isinstance(value, float):
            text = repr(value)
        else:
            text = str(value)
        self.app.copy_text(text, what)  # type: ignore[attr-defined]

    def action_copy_row(self) -> None:
        table = self.query_one(ExperimentTable)
        row = table.current_row()
        if not row:
            self.app.notify("Nothing to copy", severity="warning")
            return
        what = f"{'trace' if self.row_type == 'traces' else 'span'} of row {table.cursor_row + 1} as JSON"
        self.fetch_copy(row["id"], None, what, row=row)

    @work(thread=True, exclusive=True, exit_on_error=False, group="copy")
    def fetch_copy(self, span_row_id: str, field: str | None, what: str, row: dict[str, Any] | None = None) -> None:
        try:
            record = load_span(self.app.store, span_row_id)  # type: ignore[attr-defined]
            if field is not None:
                from evaltui.tui.widgets.json_text import full_text

                text = full_text(record.get(field)) if record.get(field) is not None else ""
            elif self.row_type == "spans" or row is None:
                text = json.dumps(record, ensure_ascii=False, indent=2, default=str)
            else:
                text = json.dumps(trace_row_json(row, record), ensure_ascii=False, indent=2, default=str)
        except Exception as e:
            self.post_message(self.CopyReady(None, what, f"could not read the span: {e}"))
            return
        self.post_message(self.CopyReady(text, what))

    def on_experiment_screen_copy_ready(self, message: CopyReady) -> None:
        if message.text is None:
            self.app.notify(safe_text(message.error or "copy failed", 300), severity="error", markup=False)
            return
        self.app.copy_text(message.text, message.what)  # type: ignore[attr-defined]


def trace_row_json(row: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """A trace row with its full input/output/expected/error (not previews) and decoded JSON."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in FULL_FIELDS:
            out[k] = root.get(k)
        elif k in ("metadata", "tags") and isinstance(v, str):
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        elif k.startswith("metadata."):
            continue  # already inside metadata
        else:
            out[k] = v
    return out
