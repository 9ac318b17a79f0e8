"""Reviewing on the experiment screen: mark reviewed, assign, select, review mode, human
scores, comments, rescoring, and live refresh of the rows.

``ReviewActions`` is mixed into ``ExperimentScreen`` (its bindings are listed there). Every
change goes through ``evaltui.store.review`` (so it is logged in the events table) in a
thread worker; the reply patches the shown frames and repaints only the rows it touched.
Changes made by other processes arrive through ``evaltui.tui.live``: ``live_refresh``
reloads the rows when the experiment's version moved, keeping cursor, filter and scroll.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.message import Message

from evaltui.lazy_polars import pl
from evaltui.store import NotFound, load_span_rows, load_trace_rows
from evaltui.store.readers import experiment_version, query_trace_rows
from evaltui.store.review import (
    add_comment,
    assign,
    human_answers,
    human_score_definitions,
    mark_reviewed,
    set_human_score,
    toggle_reviewed,
)
from evaltui.tui.widgets.text_safety import safe_text

if TYPE_CHECKING:
    from evaltui.tui.live import LiveChange
    from evaltui.tui.widgets.experiment_table import ExperimentTable

__all__ = ["ReviewActions", "ReviewApplied", "RowsChanged", "merge_changed_rows"]


def merge_changed_rows(frame: pl.DataFrame, delta: pl.DataFrame) -> tuple[pl.DataFrame, list[str]] | None:
    """``frame`` with the trace rows in ``delta`` (the same traces, newer values) put in place.

    Returns (the new frame, the columns whose values changed), or None when ``delta`` has
    traces ``frame`` does not (new rows: load them all). Only changed columns are copied, so
    a review of one trace in a 100k-row frame costs a few small columns, not the frame.
    """
    key = "root_span_id"
    if delta.height == 0:
        return frame, []
    hit = frame.get_column(key).is_in(delta.get_column(key).implode())
    if int(hit.sum()) != delta.height or delta.get_column(key).n_unique() != delta.height:
        return None
    index = frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("__row"), key).filter(hit)
    old = frame.filter(hit)
    new = index.join(delta, on=key, how="left")  # the delta in frame order, with each row's index
    rows = new.get_column("__row")
    changed: list[str] = []
    columns: list[pl.Series] = []
    for name in delta.columns:
        if name == key:
            continue
        if name in frame.columns:
            values = new.get_column(name).cast(frame.schema[name])
            if old.get_column(name).equals(values):
                continue
            base = frame.get_column(name).clone()
        else:
            values = new.get_column(name)
            base = pl.Series(name, [None] * frame.height, dtype=values.dtype)
        columns.append(base.scatter(rows, values))
        changed.append(name)
    return (frame.with_columns(columns) if columns else frame), changed


class RowsChanged(Message):
    """Trace rows changed since the frames were loaded (``delta``: those rows, as stored now)."""

    def __init__(self, delta: pl.DataFrame, version: tuple[int, int] | None) -> None:
        self.delta = delta
        self.version = version
        super().__init__()


class ReviewApplied(Message):
    """A review action was stored: patch these traces' columns (or say why it failed)."""

    def __init__(self, roots: list[str], values: dict[str, Any], note: str, *, error: str | None = None,
                 reload: bool = False) -> None:
        self.roots = roots
        self.values = values  # trace-row column -> new value
        self.note = note
        self.error = error
        self.reload = reload  # values not known here (scores): reload the rows
        super().__init__()


class ReviewActions:
    """r / a / s / S / R / J / K / H / i on the experiment screen, and live refresh."""

    review_mode = False
    loaded_version: tuple[int, int] | None = None  # set by load_rows: what the frames show
    _pending_reload: tuple[int, int] | bool | None = None  # a reload asked for while the rows loaded

    # -- helpers -------------------------------------------------------------------------------

    def _table(self) -> ExperimentTable:
        from evaltui.tui.widgets.experiment_table import ExperimentTable

        return self.query_one(ExperimentTable)  # type: ignore[attr-defined]

    def _shown_frame(self) -> pl.DataFrame | None:
        frames = self.frames  # type: ignore[attr-defined]
        if self.row_type not in frames:  # type: ignore[attr-defined]
            return None
        return self.filtered.get(self.row_type, frames[self.row_type])  # type: ignore[attr-defined]

    def _current_root(self) -> str | None:
        row = self._table().current_row()
        return row.get("root_span_id") if row else None

    @property
    def selected_roots(self) -> set[str]:
        """Traces selected with s / space / S (their root span ids)."""
        return self._table().selected

    def _targets(self) -> list[str]:
        """The selected traces (in table order), else the trace under the cursor."""
        selected = self.selected_roots
        if selected:
            frame = self.frames.get("traces")  # type: ignore[attr-defined]
            if frame is not None and "root_span_id" in frame.columns:
                order = frame["root_span_id"].to_list()
                ordered = [r for r in order if r in selected]
                return ordered + sorted(selected - set(ordered))
            return sorted(selected)
        root = self._current_root()
        return [root] if root else []

    def _user(self) -> str:
        return self.app.user  # type: ignore[attr-defined]

    def _eid(self) -> str:
        return self.experiment["id"]  # type: ignore[attr-defined]

    def _pane_focused(self) -> bool:
        from evaltui.tui.widgets.trace_pane import TracePane

        focused = self.focused  # type: ignore[attr-defined]
        return focused is not None and any(isinstance(n, TracePane) for n in focused.ancestors_with_self)

    def review_title(self, t: Text) -> None:
        """The title's review part: selection count and review-mode progress."""
        selected = self.selected_roots
        if selected:
            t.append(" · ", "dim")
            t.append(f"{len(selected):,} selected", "bold #e5c07b")
        if self.review_mode:
            frame = self._shown_frame()
            done = total = 0
            if frame is not None and "review_status" in frame.columns:
                total = frame.height
                done = int((frame["review_status"] == "reviewed").sum())
            t.append(" · ", "dim")
            t.append(f"review: {done:,} of {total:,} reviewed", "bold #98c379")

    # -- r: reviewed / unreviewed ------------------------------------------------------------

    def action_toggle_review(self) -> None:
        if self.rows_loading():  # type: ignore[attr-defined]
            return
        root = self._current_root()
        if root is None:
            self.app.notify("No trace under the cursor", severity="warning")  # type: ignore[attr-defined]
            return
        if self.review_mode and self._table().current_row().get("review_status") != "reviewed":
            # mark and go on at once: a second r lands on the next trace, never undoes this one
            self._toggle_review(root, "reviewed")
            self.action_review_next()
            return
        self._toggle_review(root, None)

    @work(thread=True, exit_on_error=False, group="review")
    def _toggle_review(self, root: str, status: str | None) -> None:
        """Toggle (``status`` None) or set a trace's review status, then patch its row."""
        store, eid, user = self.app.store, self._eid(), self._user()  # type: ignore[attr-defined]
        try:
            if status is None:
                status = toggle_reviewed(store, eid, root, user)
            else:
                mark_reviewed(store, eid, [root], user, reviewed=status == "reviewed")
        except Exception as e:
            self.post_message(ReviewApplied([root], {}, "", error=f"could not mark the trace: {e}"))  # type: ignore[attr-defined]
            return
        self.post_message(ReviewApplied(  # type: ignore[attr-defined]
            [root], {"review_status": status, "reviewed_by": user if status == "reviewed" else None},
            f"Marked {status}",
        ))

    def on_review_applied(self, message: ReviewApplied) -> None:
        if message.error:
            self.app.notify(safe_text(message.error, 300), severity="error", markup=False)  # type: ignore[attr-defined]
            return
        if message.values:
            self._patch_rows(message.roots, message.values)
        if message.reload:
            self.reload_rows()
        self._update_title()  # type: ignore[attr-defined]
        if message.note and len(message.roots) > 1:
            self.app.notify(safe_text(message.note, 200), timeout=3, markup=False)  # type: ignore[attr-defined]

    def _patch_rows(self, roots: list[str], values: dict[str, Any]) -> None:
        """Set trace-row columns of these traces in the loaded frames; repaint only those rows."""
        keys = pl.Series(roots, dtype=pl.Utf8)

        def patch(frame: pl.DataFrame) -> pl.DataFrame:
            if "root_span_id" not in frame.columns:
                return frame
            rows = frame.get_column("root_span_id").is_in(keys.implode()).arg_true()
            # copy and set only the changed columns (half the time of a when/then over all rows)
            return frame.with_columns([
                frame.get_column(k).clone().scatter(rows, pl.Series([v] * len(rows), dtype=frame.schema[k]))
                for k, v in values.items() if k in frame.columns
            ])

        frames, filtered = self.frames, self.filtered  # type: ignore[attr-defined]
        if "traces" in frames:
            frames["traces"] = patch(frames["traces"])
        if "traces" in filtered:
            filtered["traces"] = patch(filtered["traces"])
        if self.row_type == "traces":  # type: ignore[attr-defined]
            shown = self._shown_frame()
            if shown is not None:
                self._table().update_rows(shown, roots, values)

    # -- a: assign ----------------------------------------------------------------------------

    def action_assign(self) -> None:
        from evaltui.tui.screens.assign import AssignScreen

        if self.rows_loading():  # type: ignore[attr-defined]
            return
        roots = self._targets()
        if not roots:
            self.app.notify("No trace to assign", severity="warning")  # type: ignore[attr-defined]
            return
        current = None
        if len(roots) == 1:
            row = self._table().current_row()
            current = row.get("assignee") if row else None

        def chosen(result: tuple[str | None] | None) -> None:
            if result is not None:
                self._assign(roots, result[0])

        self.app.push_screen(AssignScreen(len(roots), self._user(), current), chosen)  # type: ignore[attr-defined]

    @work(thread=True, exit_on_error=False, group="review")
    def _assign(self, roots: list[str], assignee: str | None) -> None:
        store, eid = self.app.store, self._eid()  # type: ignore[attr-defined]
        try:
            changed = assign(store, eid, roots, assignee, self._user())
        except Exception as e:
            self.post_message(ReviewApplied(roots, {}, "", error=f"could not assign: {e}"))  # type: ignore[attr-defined]
            return
        who = assignee or "nobody"
        self.post_message(ReviewApplied(  # type: ignore[attr-defined]
            roots, {"assignee": assignee}, f"Assigned {changed:,} of {len(roots):,} traces to {who}",
        ))

    # -- s / space / S: selection -------------------------------------------------------------

    def action_toggle_select(self) -> None:
        table = self._table()
        root = self._current_root()
        if root is None:
            return
        selected = set(table.selected)
        selected.symmetric_difference_update({root})
        table.set_selected(selected)
        table.move_cursor(row=table.cursor_row + 1)
        self._update_title()  # type: ignore[attr-defined]

    def action_select_matching(self) -> None:
        if self.rows_loading():  # type: ignore[attr-defined]
            return
        frame = self._shown_frame()
        if frame is None or "root_span_id" not in frame.columns:
            return
        table = self._table()
        roots = set(frame["root_span_id"].drop_nulls().to_list())
        table.set_selected(set() if roots <= table.selected else table.selected | roots)
        self._update_title()  # type: ignore[attr-defined]

    def unselect_rows(self) -> bool:
        """Unselect every row; True when there was a selection (esc does this first)."""
        table = self._table()
        if not table.selected:
            return False
        table.set_selected(())
        self._update_title()  # type: ignore[attr-defined]
        return True

    # -- R / J / K: review mode ---------------------------------------------------------------

    def action_review_mode(self) -> None:
        if not self.review_mode and self.rows_loading():  # type: ignore[attr-defined]
            return
        self.review_mode = not self.review_mode
        if self.review_mode:
            root = self._current_root()
            if root is not None:
                self.open_trace(root, focus=False)  # type: ignore[attr-defined]
            self.app.notify("Review mode: r marks reviewed and goes to the next trace · J / K next / previous"
                            " · R leaves", timeout=4)  # type: ignore[attr-defined]
        self.refresh_bindings()  # type: ignore[attr-defined]
        self._update_title()  # type: ignore[attr-defined]

    def _step(self, delta: int) -> None:
        table = self._table()
        if not table.row_count:
            return
        table.move_cursor(row=table.cursor_row + delta)
        root = self._current_root()
        if root is not None and (self.pane_open or self.review_mode):  # type: ignore[attr-defined]
            self.open_trace(root, focus=self._pane_focused())  # type: ignore[attr-defined]

    def action_review_next(self) -> None:
        self._step(1)

    def action_review_previous(self) -> None:
        self._step(-1)

    def review_check_action(self, action: str) -> bool | None:
        """check_action for the review keys (None: not one of them)."""
        if action in ("review_next", "review_previous"):
            return self.review_mode
        if action in ("toggle_select", "select_matching"):
            return not self._pane_focused()  # space folds the tree there
        return None

    # -- H: human scores ----------------------------------------------------------------------

    def action_human_score(self) -> None:
        if self.rows_loading():  # type: ignore[attr-defined]
            return
        root = self._current_root()
        if root is None:
            self.app.notify("No trace under the cursor", severity="warning")  # type: ignore[attr-defined]
            return
        self._open_human_score(root)

    @work(thread=True, exclusive=True, exit_on_error=False, group="human-score")
    def _open_human_score(self, root: str) -> None:
        store, eid = self.app.store, self._eid()  # type: ignore[attr-defined]
        try:
            defs = human_score_definitions(store, self.experiment["project_id"])  # type: ignore[attr-defined]
            mine = human_answers(store, eid, root).get(self._user(), {})
        except Exception as e:
            self.app.call_from_thread(self.app.notify, safe_text(f"could not read human scores: {e}", 300),  # type: ignore[attr-defined]
                                      severity="error", markup=False)
            return
        self.app.call_from_thread(self._show_human_score, root, defs, mine)  # type: ignore[attr-defined]

    def _show_human_score(self, root: str, defs: list[dict[str, Any]], mine: dict[str, Any]) -> None:
        from evaltui.tui.screens.human_score import HumanScoreScreen

        if not defs:
            self.app.notify(  # type: ignore[attr-defined]
                "This project has no human scores yet: define one with the command palette"
                " (ctrl+p, \"Human scores: define\")", severity="warning", timeout=6)
            return

        def chosen(answers: dict[str, Any] | None) -> None:
            if answers:
                self._save_human_scores(root, answers)

        self.app.push_screen(HumanScoreScreen(defs, mine, self._row_label(root)), chosen)  # type: ignore[attr-defined]

    def _row_label(self, root: str) -> str:
        row = self._table().current_row()
        text = row.get("input") if row and row.get("root_span_id") == root else None
        return str(text) if text is not None else root

    @work(thread=True, exit_on_error=False, group="review")
    def _save_human_scores(self, root: str, answers: dict[str, Any]) -> None:
        store, eid, user = self.app.store, self._eid(), self._user()  # type: ignore[attr-defined]
        loaded = self.loaded_version
        try:
            for name, value in answers.items():
                set_human_score(store, eid, root, name, value, user)
            if loaded is not None:
                # the rows written since the load (this trace's, mostly): repaint them now; the
                # watcher's next look moves loaded_version on
                self.post_message(RowsChanged(query_trace_rows(store, eid, since_version=loaded[0]), None))  # type: ignore[attr-defined]
                return
        except Exception as e:
            self.post_message(ReviewApplied([root], {}, "", error=f"could not save the score: {e}"))  # type: ignore[attr-defined]
            return
        self.post_message(ReviewApplied([root], {}, "Scored", reload=True))  # type: ignore[attr-defined]

    # -- i: comments --------------------------------------------------------------------------

    def action_comment(self) -> None:
        from evaltui.tui.screens.comment import CommentScreen

        root = self._current_root()
        if root is None:
            self.app.notify("No trace under the cursor", severity="warning")  # type: ignore[attr-defined]
            return

        span_id, about = None, self._row_label(root)
        if self._pane_focused():
            from evaltui.tui.widgets.trace_pane import TracePane

            pane = self.query_one(TracePane)  # type: ignore[attr-defined]
            node = pane.selected
            if node is not None and pane.trace is not None and pane.trace.root_span_id == root \
                    and node.span_id != root:
                span_id, about = node.span_id, f"span {node.name} of {about}"  # the span the pane shows

        def written(text: str | None) -> None:
            if text and text.strip():
                self._add_comment(root, text, span_id)

        self.app.push_screen(CommentScreen(about), written)  # type: ignore[attr-defined]

    @work(thread=True, exit_on_error=False, group="review")
    def _add_comment(self, root: str, text: str, span_id: str | None = None) -> None:
        try:
            add_comment(self.app.store, self._eid(), root, text, self._user(), span_id)  # type: ignore[attr-defined]
        except Exception as e:
            self.post_message(ReviewApplied([root], {}, "", error=f"could not add the comment: {e}"))  # type: ignore[attr-defined]
            return
        self.app.call_from_thread(self.refresh_review_notes)  # type: ignore[attr-defined]
        self.app.call_from_thread(self.app.notify, "Comment added", timeout=2)  # type: ignore[attr-defined]

    def refresh_review_notes(self) -> None:
        """Reload the comments and history shown in the trace pane (if it shows them)."""
        from evaltui.tui.widgets.comments import ReviewNotes

        for notes in self.query(ReviewNotes):  # type: ignore[attr-defined]
            notes.reload()

    # -- score with... ------------------------------------------------------------------------

    def score_with(self) -> None:
        """Pick built-in scorers and run them over the selected traces (or the one under the cursor)."""
        from evaltui.tui.screens.rescore import RescoreScreen

        roots = self._targets()
        if not roots:
            self.app.notify("No trace to score", severity="warning")  # type: ignore[attr-defined]
            return

        def done(report: Any) -> None:
            if report is not None:
                self.reload_rows()
                self.refresh_review_notes()

        self.app.push_screen(RescoreScreen(self._eid(), roots), done)  # type: ignore[attr-defined]

    def define_human_score(self) -> None:
        from evaltui.tui.screens.human_score import DefineScoreScreen

        self.app.push_screen(DefineScoreScreen(self.experiment["project_id"], self.project))  # type: ignore[attr-defined]

    # -- live refresh ---------------------------------------------------------------------------

    def live_experiments(self) -> list[str]:
        return [self._eid()]

    def live_refresh(self, change: LiveChange) -> None:
        """Another connection committed: reload the rows when this experiment changed."""
        version = change.versions.get(self._eid(), self.loaded_version)
        if version is None:
            return  # the experiment is gone; the rows stay as they were
        if self.loaded_version is not None and version != self.loaded_version:
            self.reload_rows(version)
        if self.pane_open:  # type: ignore[attr-defined]
            self.refresh_review_notes()

    def reload_rows(self, version: tuple[int, int] | None = None) -> None:
        """Reload the shown rows in a worker (cursor, filter, selection and scroll are kept).

        ``version``: the experiment's (rows_version, traces) if known (saves counting again).
        """
        if not self.complete.get(self.row_type, False):  # type: ignore[attr-defined]
            # the first load is still running: it may have read the rows before the change (a
            # first page read at start-up), so the reload runs once the rows are in
            self._pending_reload = version if version is not None else True
            return
        self._reload_rows(self.row_type, version=version)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, exit_on_error=False, group="live-rows")
    def _reload_rows(self, row_type: str, full: bool = False, version: tuple[int, int] | None = None) -> None:
        store, eid = self.app.store, self._eid()  # type: ignore[attr-defined]
        loaded = self.loaded_version
        try:
            if version is None or full:
                version = experiment_version(store, eid)
            if not full and row_type == "traces" and loaded is not None and version[1] == loaded[1]:
                # the same traces: read only the rows written since (reviews, scores, comments' rows)
                delta = query_trace_rows(store, eid, since_version=loaded[0])
                self.post_message(RowsChanged(delta, version))  # type: ignore[attr-defined]
                return
            if row_type == "spans":
                frame = load_span_rows(store, eid)
            else:
                frame = self.with_computed(load_trace_rows(store, eid), refresh=full)  # type: ignore[attr-defined]
        except NotFound:
            return
        except Exception as e:
            self.post_message(self.LoadFailed(f"could not reload the rows: {e}"))  # type: ignore[attr-defined]
            return
        self.loaded_version = version
        self.app.call_from_thread(self._drop_other_frames, row_type)  # type: ignore[attr-defined]
        self.post_message(self.RowsLoaded(row_type, frame, frame.height if row_type == "traces" else None,  # type: ignore[attr-defined]
                                          True))

    def on_rows_changed(self, message: RowsChanged) -> None:
        frame = self.frames.get("traces")  # type: ignore[attr-defined]
        if frame is None:
            return
        try:
            # aggregate and custom columns computed on the changed rows too
            merged = merge_changed_rows(frame, self.with_computed(message.delta, strict=True))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - columns that do not line up: load everything
            merged = None
        if merged is None:
            self._reload_rows("traces", True)
            return
        patched, changed = merged
        if message.version is not None:
            self.loaded_version = message.version
        if not changed:
            return
        self._reload_open_trace(message.delta["root_span_id"].to_list())
        self.frames["traces"] = patched  # type: ignore[attr-defined]
        self.frames.pop("spans", None)  # type: ignore[attr-defined]  # read again when shown
        self.filtered.pop("spans", None)  # type: ignore[attr-defined]
        if self.row_type != "traces":  # type: ignore[attr-defined]
            self.filtered.pop("traces", None)  # type: ignore[attr-defined]
            return
        if self._arranging():  # type: ignore[attr-defined]
            # the changed rows may match the filter (or view) now, or no longer, or sort elsewhere
            self.run_filter("traces", self.filter_text or "", patched, quiet=True)  # type: ignore[attr-defined]
        elif set(changed) - set(frame.columns):
            self._show_frame()  # type: ignore[attr-defined]  # a new column (a new score)
        else:
            self._table().update_rows(patched, message.delta["root_span_id"].to_list(), changed)
        self._update_title()  # type: ignore[attr-defined]

    def _reload_open_trace(self, roots: list[str]) -> None:
        """The trace in the pane changed (someone scored it): show it again, on the same span."""
        key = self._trace_key  # type: ignore[attr-defined]
        if not self.pane_open or key is None or key not in roots:  # type: ignore[attr-defined]
            return
        from evaltui.tui.widgets.trace_pane import TracePane

        selected = self.query_one(TracePane).selected  # type: ignore[attr-defined]
        self.load_trace(key, selected.span_id if selected is not None else None)  # type: ignore[attr-defined]

    def _drop_other_frames(self, row_type: str) -> None:
        # the other row type is read again when it is shown next
        for other in ("traces", "spans"):
            if other != row_type:
                self.frames.pop(other, None)  # type: ignore[attr-defined]
                self.filtered.pop(other, None)  # type: ignore[attr-defined]
