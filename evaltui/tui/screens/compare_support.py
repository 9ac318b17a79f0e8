"""Comparing the experiment screen's experiment with others (issue 5), kept out of the screen.

``CompareMixin`` gives :class:`~evaltui.tui.screens.experiment.ExperimentScreen` its keys:
``c`` picks experiments to compare with, ``+`` / ``-`` filter to the current column's
improvements / regressions, ``d`` (diff mode) puts a sub-row per compared experiment under
each trace row and shows a word diff of the current row against its match, ``O`` orders the
score columns (and, grouped, the groups) by regressions, ``L`` switches layouts (grid,
summary cards, summary table, details). A saved view keeps the layout, the compared
experiments and diff mode (``with_comparison_of`` / ``apply_comparison_of``). The numbers come from
:mod:`evaltui.query.compare` (the functions ``evaltui summary --compare`` calls), so they are
the CLI's by construction.

The table shows deltas through a generic hook: :func:`compare_columns` gives each score and
metric column a ``delta_key`` naming a ``compare.delta.*`` column that
:func:`~evaltui.query.compare.join_row_deltas` adds to the screen's trace frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text
from textual import work
from textual.message import Message
from textual.timer import Timer

from evaltui.lazy_polars import pl
from evaltui.query.compare import (
    MATCH_COLUMN,
    METRICS,
    SCORE_PREFIX,
    _fmt,
    base_column,
    compare_frames,
    comparison_sources,
    delta_column,
    improved_column,
    join_row_deltas,
    match_column,
    output_column,
    partner_prefix,
    partner_rows,
    regressed_column,
    regression_order,
    summary_histograms,
)
from evaltui.store import (
    find_experiment,
    load_experiments,
    load_trace_rows,
    project_settings,
)
from evaltui.tui.widgets.experiment_table import ColumnSpec, ExperimentTable, SubRowSpec
from evaltui.tui.widgets.text_safety import safe_text

MAX_COMPARED = 8
# table column -> the trace-row column compare_frames reports it under
_METRIC_SOURCE = {"duration": "duration", "tokens": "tokens", "estimated_cost": "estimated_cost",
                  "errors": "has_error", "has_error": "has_error"}
_METRIC_NAME = {col: name for name, col in METRICS.items()}
# the widest value + delta each kind needs, so the two fit side by side
_MIN_WIDTH = {"score": 11, "duration": 15, "tokens": 15, "cost": 17, "number": 8, "status": 10}
MAX_SUMMARY_WIDTH = 24


@dataclass
class Comparison:
    """This experiment compared with ``bases`` (the first is the base the table's deltas use)."""

    experiment: dict[str, Any]
    bases: list[dict[str, Any]]
    this: pl.DataFrame  # trace rows of this experiment, as compared
    base_frames: list[pl.DataFrame]
    results: list[dict[str, Any]]  # compare_frames(this, base) per base
    rows: pl.DataFrame  # partner_rows(this, base_frames): bases[0] as compare.*, the others compare.b<i>.*
    key_spec: Any = "input"
    only: dict[str, Any] = field(default_factory=dict)  # compare_frames(this) (no base)
    # the summary cards' distributions of this experiment, made in the worker (see summary_histograms)
    histograms: dict[str, list[int]] = field(default_factory=dict)

    @property
    def base(self) -> dict[str, Any]:
        return self.bases[0]

    @property
    def result(self) -> dict[str, Any]:
        return self.results[0]

    def entry(self, source: str) -> tuple[str, dict[str, Any], bool] | None:
        """(name, compare_frames entry, is_score) of a trace-row column, or None."""
        if source.startswith(SCORE_PREFIX):
            name = source[len(SCORE_PREFIX):]
            e = self.result["scores"].get(name)
            return (name, e, True) if e else None
        name = _METRIC_NAME.get(source)
        e = self.result["metrics"].get(name) if name else None
        return (name, e, False) if e and name else None

    def matched_rows(self) -> int:
        return int((self.rows.get_column(MATCH_COLUMN) == "matched").sum()) if self.rows.height else 0


def compute_comparison(store: Any, experiment: dict[str, Any], base_ids: list[str]) -> Comparison:
    """Load and compare (call from a worker): the same functions as ``evaltui summary``."""
    this = load_trace_rows(store, experiment["id"])
    bases = [find_experiment(store, b) for b in base_ids]
    frames = [load_trace_rows(store, b["id"]) for b in bases]
    results = [compare_frames(this, f) for f in frames]
    rows = partner_rows(this, frames)
    spec = project_settings(store, experiment["project_id"]).get("comparison_key") or "input"
    only = compare_frames(this)
    return Comparison(experiment, bases, this, frames, results, rows, spec, only, summary_histograms(this, only))


def sub_row_specs(comparison: Comparison, label_width: int = 24) -> list[SubRowSpec]:
    """Diff mode's sub-rows: one per compared experiment, mapping the table's score, metric
    and output columns to that experiment's per-row columns (see :func:`partner_rows`)."""
    out = []
    for i, (base, frame) in enumerate(zip(comparison.bases, comparison.base_frames, strict=True)):
        prefix = partner_prefix(i)
        sources = comparison_sources(comparison.this, frame)
        if match_column(prefix) not in comparison.rows.columns:
            continue
        columns = {"output": output_column(prefix)}
        for _, src, _ in sources:
            # a metric shows under its own column only (the errors count is not has_error)
            columns[src] = base_column(src, prefix)
        columns = {k: v for k, v in columns.items() if v in comparison.rows.columns}
        label = str(base["name"])
        if len(label) > label_width:
            label = label[: label_width - 1] + "…"
        out.append(SubRowSpec(label, match_column(prefix), columns))
    return out


def source_of(key: str) -> str | None:
    """The compared trace-row column a table column shows (``errors`` counts: the error rate)."""
    if key.startswith(SCORE_PREFIX):
        return key
    return _METRIC_SOURCE.get(key)


def header_summary(name: str, entry: dict[str, Any], is_score: bool) -> str:
    """``μ 85.00% +3.00pp ↑12 ↓30``: the figures ``evaltui summary --compare`` prints."""
    mean = _fmt(name, entry["mean"], is_score=is_score)
    diff = _fmt(name, entry["diff"], signed=True, is_score=is_score)
    return f"{mean} {diff} ↑{entry['improvements']} ↓{entry['regressions']}"


def compare_columns(columns: list[ColumnSpec], comparison: Comparison | None) -> list[ColumnSpec]:
    """``columns`` with deltas on compared scores and metrics and a "Base match" column.

    Widths only grow to a minimum (never add up), so saving these specs and applying them
    again gives the same widths.
    """
    if comparison is None or not columns or "root_span_id" not in comparison.rows.columns:
        return columns
    out: list[ColumnSpec] = []
    for spec in columns:
        source = source_of(spec.key)
        found = comparison.entry(source) if source else None
        if found is None or delta_column(source or "") not in comparison.rows.columns:
            out.append(spec)
            continue
        name, entry, is_score = found
        summary = header_summary(name, entry, is_score)
        width = max(spec.width, _MIN_WIDTH.get(spec.kind, 10), min(len(summary), MAX_SUMMARY_WIDTH))
        out.append(replace(spec, width=width, summary=summary, delta_key=delta_column(source or ""),
                           lower_is_better=not is_score))
    # the frame's compare.match column gets a generic hidden spec from the defaults: ours wins
    out = [s for s in out if s.key != MATCH_COLUMN]
    matched = comparison.matched_rows()
    label = "vs " + str(comparison.base["name"])
    spec = ColumnSpec(MATCH_COLUMN, label, max(10, min(16, len(label))), "status",
                      summary=f"{matched:,}/{comparison.rows.height:,}")
    at = next((i for i, s in enumerate(out) if s.visible and not s.pinned), len(out))
    out.insert(at, spec)
    return out


class CompareMixin:
    """The experiment screen's compare keys and state (see the module docstring)."""

    comparison: Comparison | None = None
    diff_mode: bool = False
    _diff_timer: Timer | None = None
    _pending_layout: dict[str, Any] | None = None  # a loaded view's layout, shown once rows and comparison are in
    _view_comparing = False

    class ComparisonReady(Message):
        def __init__(self, comparison: Comparison | None, error: str | None = None, note: str = "") -> None:
            self.comparison = comparison
            self.error = error
            self.note = note
            super().__init__()

    # -- picking -----------------------------------------------------------------------------

    def action_compare(self) -> None:
        from evaltui.tui.screens.compare_picker import ComparePicker

        current = [b["id"] for b in self.comparison.bases] if self.comparison else None
        self.app.push_screen(ComparePicker(self.experiment, current), self._compare_chosen)  # type: ignore[attr-defined]

    def _compare_chosen(self, choice: Any) -> None:
        if choice is None:
            return
        ids, note = choice
        if not ids:
            self.clear_comparison()
            return
        self._set_title_note("comparing…")
        self.run_comparison(list(ids)[:MAX_COMPARED], note)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def run_comparison(self, base_ids: list[str], note: str = "", skip_missing: bool = False) -> None:
        """Compare with ``base_ids``; ``skip_missing`` (a loaded view) leaves out experiments
        that no longer exist and says so."""
        from evaltui.store.errors import NotFound

        store = self.app.store  # type: ignore[attr-defined]
        try:
            if skip_missing:
                found = []
                for b in base_ids:
                    try:
                        found.append(find_experiment(store, b)["id"])
                    except NotFound:
                        continue
                if len(found) < len(base_ids):
                    n = len(base_ids) - len(found)
                    gone = f"{n} compared experiment{'s' if n > 1 else ''} of the view no longer exist{'s' if n == 1 else ''}"
                    note = f"{note}: {gone}, skipped" if note else f"{gone}, skipped"
                if not found:
                    self.post_message(self.ComparisonReady(None, note or "nothing to compare"))  # type: ignore[attr-defined]
                    return
                base_ids = found
            comparison = compute_comparison(store, self.experiment, base_ids)  # type: ignore[attr-defined]
        except Exception as e:
            self.post_message(self.ComparisonReady(None, f"could not compare: {e}"))  # type: ignore[attr-defined]
            return
        self.post_message(self.ComparisonReady(comparison, note=note))  # type: ignore[attr-defined]

    def on_compare_mixin_comparison_ready(self, message: ComparisonReady) -> None:
        view_load, self._view_comparing = self._view_comparing, False
        if message.comparison is None:
            self.app.notify(safe_text(message.error or "compare failed", 300),  # type: ignore[attr-defined]
                            severity="warning" if view_load else "error", markup=False)
            self._set_title_note("")
            if view_load:
                self.clear_comparison()
                self.apply_pending_layout()
            return
        c = message.comparison
        self.comparison = c
        self._refresh_comparison()
        matched, rows = c.matched_rows(), c.rows.height
        text = (f"Compared with {c.base['name']}: {c.result['matched']:,} cases matched"
                f" ({matched:,} of {rows:,} rows)")
        if len(c.bases) > 1:
            text += f" (+{len(c.bases) - 1} more in the layouts, L)"
        if message.note:
            text = message.note + ". " + text
        self.app.notify(safe_text(text, 300), markup=False, timeout=4)  # type: ignore[attr-defined]
        self.apply_pending_layout()

    # -- layout and comparisons in saved views ------------------------------------------------------

    def current_layout(self) -> dict[str, Any]:
        """The layout on screen for this experiment: ``{"name": list|grid|cards|table|details,
        "diff": diff mode on, "grid_field": the grid's field (grid only)}``."""
        from evaltui.tui.screens.compare_layouts import LayoutScreen

        out: dict[str, Any] = {"name": "list", "diff": bool(self.diff_mode)}
        for screen in reversed(self.app.screen_stack):  # type: ignore[attr-defined]
            if isinstance(screen, LayoutScreen) and screen.owner is self:
                out["name"] = screen.LAYOUT
                field_ = getattr(screen, "field", None)
                if field_:
                    out["grid_field"] = field_
                break
        return out

    def with_comparison_of(self, view: Any) -> Any:
        """``view`` (a SavedView being saved) with the layout and the compared experiments.

        The plain arrangement (the list, diff mode off, nothing compared) records nothing, so
        loading such a view leaves the comparison as it is (as views saved before this did)."""
        layout = self.current_layout()
        compared = [str(b["id"]) for b in self.comparison.bases] if self.comparison is not None else []
        if layout == {"name": "list", "diff": False} and not compared:
            return view
        view.layout = layout
        view.comparisons = compared
        return view

    def apply_comparison_of(self, view: Any) -> None:
        """Compare with a loaded view's experiments (missing ones skipped, with a notice), then
        show its diff mode and layout. A view without a layout leaves all this as it is."""
        layout = view.layout if isinstance(view.layout, dict) else {}
        if not layout:
            return
        self._pending_layout = dict(layout)
        wanted = [str(i) for i in view.comparisons][:MAX_COMPARED]
        current = [str(b["id"]) for b in self.comparison.bases] if self.comparison is not None else []
        if wanted == current:
            self.call_after_refresh(self.apply_pending_layout)  # type: ignore[attr-defined]
            return
        if not wanted:
            self.clear_comparison()
            self.call_after_refresh(self.apply_pending_layout)  # type: ignore[attr-defined]
            return
        self._view_comparing = True
        self._set_title_note("comparing…")
        self.run_comparison(wanted, f"View {view.name}", skip_missing=True)

    def apply_pending_layout(self) -> None:
        """Show the loaded view's diff mode and layout once its rows and comparison are in."""
        layout = self._pending_layout
        if layout is None or self._view_comparing or not self.complete.get("traces"):  # type: ignore[attr-defined]
            return  # rows_loaded / comparison_ready call again
        self._pending_layout = None
        if bool(layout.get("diff")) != self.diff_mode:
            self.call_later(self.action_diff_mode)  # type: ignore[attr-defined]
        from evaltui.tui.screens.compare_layouts import LAYOUTS, open_layout

        name = layout.get("name")
        if name in LAYOUTS:
            field_ = layout.get("grid_field")
            self.call_later(open_layout, self, name, field_ if isinstance(field_, str) else None)  # type: ignore[attr-defined]

    def on_experiment_screen_rows_loaded(self, message: Any) -> None:
        # runs after the screen's own handler (Textual calls each class's handler in the MRO)
        if self._pending_layout is not None and message.row_type == "traces" and message.complete:
            self.call_after_refresh(self.apply_pending_layout)  # type: ignore[attr-defined]

    def clear_comparison(self) -> None:
        self.comparison = None
        self._refresh_comparison()
        if self.diff_mode:
            self.update_diff()

    def _refresh_comparison(self) -> None:
        """Join (or drop) the deltas in the trace frame and show it again, filter included."""
        frame = self.frames.get("traces")  # type: ignore[attr-defined]
        if frame is not None:
            self.frames["traces"] = self.with_comparison(frame, "traces")  # type: ignore[attr-defined]
            self.filtered.pop("traces", None)  # type: ignore[attr-defined]
            if self.row_type == "traces":  # type: ignore[attr-defined]
                if self.filter_text is not None:  # type: ignore[attr-defined]
                    self.run_filter("traces", self.filter_text, self.frames["traces"], quiet=True)  # type: ignore[attr-defined]
                else:
                    self._show_frame()  # type: ignore[attr-defined]
        self._set_title_note("")
        self.refresh_bindings()  # type: ignore[attr-defined]

    def _set_title_note(self, note: str) -> None:
        self._update_title(note)  # type: ignore[attr-defined]

    # -- hooks the screen calls ----------------------------------------------------------------

    def with_comparison(self, frame: pl.DataFrame, row_type: str) -> pl.DataFrame:
        """``frame`` with the comparison's per-row columns (trace rows), or without any."""
        if row_type != "traces":
            return frame
        if self.comparison is None:
            old = [c for c in frame.columns if c.startswith("compare.")]
            return frame.drop(old) if old else frame
        return join_row_deltas(frame, self.comparison.rows)

    def comparison_columns(self, columns: list[ColumnSpec], row_type: str) -> list[ColumnSpec]:
        return compare_columns(columns, self.comparison) if row_type == "traces" else columns

    def comparison_title(self, t: Text) -> None:
        c = self.comparison
        if c is None:
            return
        t.append(" · ", "dim")
        t.append("vs ", "dim")
        t.append(safe_text(str(c.base["name"]), 40), "bold")
        r = c.result
        # the case counts of `evaltui summary --compare` (trials are one case)
        t.append(f" {r['matched']:,} cases matched", "")
        t.append(f", {r['unmatched']:,} no match", "bold yellow" if r["unmatched"] else "dim")
        if len(c.bases) > 1:
            t.append(f" (+{len(c.bases) - 1})", "dim")

    # -- ↑ / ↓ filters ----------------------------------------------------------------------------

    def action_filter_changed(self, which: str) -> None:
        """Filter the table to the current column's improvements (``up``) or regressions."""
        c = self.comparison
        if c is None:
            self.app.notify("Compare first (c), then + / - filter to a column's ↑ / ↓ rows", severity="warning")  # type: ignore[attr-defined]
            return
        if self.row_type != "traces":  # type: ignore[attr-defined]
            self.app.notify("↑ / ↓ filters work on trace rows (t)", severity="warning")  # type: ignore[attr-defined]
            return
        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        cols = table.visible_columns
        key = cols[table.cursor_column].key if cols else ""
        source = source_of(key)
        if source is None or c.entry(source) is None:
            self.app.notify("Put the cursor on a score or metric column to filter by its ↑ / ↓", severity="warning")  # type: ignore[attr-defined]
            return
        self.filter_to(improved_column(source) if which == "up" else regressed_column(source))

    def filter_to(self, text: str) -> None:
        """Apply ``text`` through the screen's filter flow (shown in the title, esc clears)."""
        frame = self.frames.get("traces")  # type: ignore[attr-defined]
        if frame is None:
            return
        if self.row_type != "traces":  # type: ignore[attr-defined]
            self.action_toggle_rows()  # type: ignore[attr-defined]
        self.run_filter("traces", text, frame)  # type: ignore[attr-defined]

    # -- order by regressions ------------------------------------------------------------------

    def action_order_regressions(self) -> None:
        """Score columns by regression count (most first); grouped, the groups by the
        regressions of the score under the cursor (else the most regressed score)."""
        c = self.comparison
        if c is None:
            self.app.notify("Compare first (c), then O orders the scores by their regressions",  # type: ignore[attr-defined]
                            severity="warning")
            return
        if self.row_type != "traces" or "traces" not in self.frames:  # type: ignore[attr-defined]
            self.app.notify("Order by regressions works on trace rows (t)", severity="warning")  # type: ignore[attr-defined]
            return
        from evaltui.tui.screens.experiment import settings_from

        order = regression_order(c.result)
        if not order:
            self.app.notify("No scores to order", severity="warning")  # type: ignore[attr-defined]
            return
        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        rank = {SCORE_PREFIX + name: i for i, (name, _) in enumerate(order)}
        columns = table.columns
        slots = [i for i, spec in enumerate(columns) if spec.key in rank]
        for i, spec in zip(slots, sorted((columns[i] for i in slots), key=lambda s: rank[s.key]), strict=True):
            columns[i] = spec
        _, defaults = self._columns_for("traces")  # type: ignore[attr-defined]
        self.view_columns = settings_from(columns, defaults)  # like a view's columns: ctrl+s saves them
        shown = ", ".join(f"{safe_text(name, 30)} ↓{n}" for name, n in order[:4])
        if self.group_by:  # type: ignore[attr-defined]
            visible = table.visible_columns
            here = visible[table.cursor_column].key if visible else ""
            score = here if here in rank else SCORE_PREFIX + order[0][0]
            self.group_sort = f"regressions:{score}"  # type: ignore[attr-defined]
            self.rearrange()  # type: ignore[attr-defined]
            shown = f"groups by {safe_text(score[len(SCORE_PREFIX):], 30)} regressions; scores: {shown}"
            if here not in rank:
                shown += " (O on a score column orders the groups by that score)"
        else:
            self._show_frame()  # type: ignore[attr-defined]
        self.app.notify(f"Ordered by regressions: {shown}", timeout=4, markup=False)  # type: ignore[attr-defined]

    # -- diff mode -------------------------------------------------------------------------------

    async def action_diff_mode(self) -> None:
        from evaltui.tui.widgets.diff_view import DiffPanel

        if self.diff_mode:
            self._hide_diff()
            return
        if self.rows_loading():  # type: ignore[attr-defined]
            return
        self.diff_mode = True
        self.sync_sub_rows()  # the table's sub-rows paint first; the word diff follows from a worker
        panels = self.query(DiffPanel)  # type: ignore[attr-defined]
        if panels:
            panels.first().display = True
        else:
            await self.mount(DiffPanel(id="diff-panel"), after=self.query_one("#exp-body"))  # type: ignore[attr-defined]
        self.update_diff()

    def _hide_diff(self) -> None:
        from evaltui.tui.widgets.diff_view import DiffPanel

        self.diff_mode = False
        self.sync_sub_rows()
        for p in self.query(DiffPanel):  # type: ignore[attr-defined]
            p.display = False

    def sync_sub_rows(self, table: ExperimentTable | None = None) -> None:
        """Sub-rows under each trace row while diff mode is on and experiments are compared."""
        table = table or self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        c = self.comparison
        show = self.diff_mode and c is not None and self.row_type == "traces"  # type: ignore[attr-defined]
        table.set_sub_rows(sub_row_specs(c) if show and c is not None else None)

    def action_diff_target(self) -> None:
        from evaltui.tui.widgets.diff_view import DiffPanel

        if not self.diff_mode:
            return
        panel = self.query_one(DiffPanel)  # type: ignore[attr-defined]
        panel.next_target(len(self.comparison.bases) if self.comparison else 0)
        self.update_diff()

    def on_experiment_table_row_highlighted(self, event: ExperimentTable.RowHighlighted) -> None:
        if not self.diff_mode:
            return
        if self._diff_timer is not None:
            self._diff_timer.stop()
        self._diff_timer = self.set_timer(0.1, self.update_diff)  # type: ignore[attr-defined]

    def update_diff(self) -> None:
        from evaltui.tui.widgets.diff_view import DiffPanel

        if not self.diff_mode:
            return
        panel = self.query_one(DiffPanel)  # type: ignore[attr-defined]
        row = self.query_one(ExperimentTable).current_row()  # type: ignore[attr-defined]
        if not row:
            panel.show_message("no row")
            return
        panel.load(self.app.store, self.experiment, row, self.comparison)  # type: ignore[attr-defined]

    # -- the compared experiment's trace beside this one ----------------------------------------

    side_by_side: bool = False

    class TwinLoaded(Message):
        def __init__(self, for_root: str, trace: Any, note: str = "") -> None:
            self.for_root = for_root
            self.trace = trace
            self.note = note
            super().__init__()

    async def action_side_by_side(self) -> None:
        """Show the matching trace of the base experiment in a second trace pane (or hide it)."""
        from evaltui.tui.widgets.trace_pane import TracePane

        if self.side_by_side:
            self.side_by_side = False
            self.remove_class("-twin")  # type: ignore[attr-defined]
            return
        if self.comparison is None or not self.pane_open:  # type: ignore[attr-defined]
            self.app.notify("Compare (c) and open a trace (enter) to see its match side by side",  # type: ignore[attr-defined]
                            severity="warning")
            return
        self.side_by_side = True
        if not self.query("#pane-compare"):  # type: ignore[attr-defined]
            await self.query_one("#exp-body").mount(TracePane(id="pane-compare"))  # type: ignore[attr-defined]
        self.add_class("-twin")  # type: ignore[attr-defined]
        main = self.query_one("#pane", TracePane)  # type: ignore[attr-defined]
        main.border_title = safe_text(str(self.experiment["name"]), 40)  # type: ignore[attr-defined]
        if main.trace is not None:
            self._load_twin(main.trace.root_span_id)

    def on_experiment_screen_trace_loaded(self, message: Any) -> None:
        # runs after the screen's own handler (Textual calls each class's handler in the MRO)
        if self.side_by_side and message.trace is not None:
            self._load_twin(message.trace.root_span_id)

    def _load_twin(self, root_span_id: str) -> None:
        from evaltui.tui.widgets.trace_pane import TracePane

        c = self.comparison
        if c is None:
            return
        pane = self.query_one("#pane-compare", TracePane)  # type: ignore[attr-defined]
        pane.border_title = safe_text(str(c.base["name"]), 40)
        pane.show_loading("the matching trace")
        self.load_twin(root_span_id, c)

    @work(thread=True, exclusive=True, exit_on_error=False, group="twin")
    def load_twin(self, root_span_id: str, c: Comparison) -> None:
        from evaltui.query.compare import KEY
        from evaltui.store import load_trace_spans
        from evaltui.tui.widgets.trace_data import TraceData
        from evaltui.tui.widgets.trace_tree import prepare_labels

        store = self.app.store  # type: ignore[attr-defined]
        try:
            mine = c.this.filter(pl.col("root_span_id") == root_span_id)
            key = mine[KEY][0] if mine.height and KEY in mine.columns else None
            base = c.base_frames[0]
            partner = base.filter(pl.col(KEY) == key) if key is not None and KEY in base.columns else base.clear()
            if partner.height == 0:
                self.post_message(self.TwinLoaded(root_span_id, None, "no match in " + str(c.base["name"])))  # type: ignore[attr-defined]
                return
            root = partner["root_span_id"][0]
            trace = TraceData.from_frame(c.base["id"], root, load_trace_spans(store, c.base["id"], root))
            prepare_labels(trace)
        except Exception as e:
            self.post_message(self.TwinLoaded(root_span_id, None, f"could not load the matching trace: {e}"))  # type: ignore[attr-defined]
            return
        note = f"{partner.height} trials; showing the first" if partner.height > 1 else ""
        self.post_message(self.TwinLoaded(root_span_id, trace, note))  # type: ignore[attr-defined]

    def on_compare_mixin_twin_loaded(self, message: TwinLoaded) -> None:
        from evaltui.tui.widgets.trace_pane import TracePane

        if not self.side_by_side or not self.query("#pane-compare"):  # type: ignore[attr-defined]
            return
        pane = self.query_one("#pane-compare", TracePane)  # type: ignore[attr-defined]
        if message.trace is None:
            pane.show_error(message.note)
            return
        pane.show_trace(message.trace)
        if message.note:
            pane.border_subtitle = safe_text(message.note, 60)

    # -- layouts -----------------------------------------------------------------------------------

    def action_layout(self) -> None:
        from evaltui.tui.screens.compare_layouts import LAYOUTS, open_layout

        open_layout(self, LAYOUTS[0])


def other_experiments(store: Any, experiment: dict[str, Any]) -> pl.DataFrame:
    """The project's experiments but this one, newest first (the picker's list)."""
    frame = load_experiments(store, experiment["project"])
    return frame.filter(pl.col("id") != experiment["id"])
