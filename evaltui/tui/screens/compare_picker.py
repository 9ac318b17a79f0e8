"""``c``: pick up to 8 experiments of the project to compare with, set baselines, and edit
the project's comparison key.

The list is the project's other experiments, newest first, with trace counts and score
means. The resolved baseline (DESIGN.md order: this experiment's base > the project's >
the most recent earlier one) is pre-selected the first time. ``b`` makes the highlighted
experiment this experiment's baseline, ``B`` the project's; both are saved in the store.
``k`` edits the comparison key (a path or ``[path, path]``); saving it re-computes every
trace's key in a worker and re-matches at once. Enter compares; the result is
``(ids, note)`` with the baseline first.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, SelectionList, Static
from textual.widgets.selection_list import Selection

from evaltui.query.compare import (
    format_comparison_key,
    parse_comparison_key,
    resolve_baseline,
)
from evaltui.store import project_settings, update_experiment, update_project_settings
from evaltui.tui.screens.compare_support import MAX_COMPARED, other_experiments
from evaltui.tui.widgets.text_safety import safe_text


class ExperimentChoices(SelectionList[str]):
    HELP_GROUP = "Compare with"
    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="compare.cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="compare.cursor-up"),
        Binding("space,x", "select", "Select", id="compare.toggle"),
        Binding("enter", "screen.done", "Compare", id="compare.done-list"),
    ]


class ComparePicker(ModalScreen[tuple[list[str], str] | None]):
    """space selects · enter compares · b / B set baseline · K edits the key · n none · esc."""

    HELP_GROUP = "Compare dialog"
    BINDINGS = [
        Binding("enter", "done", "Compare", show=False, id="compare.done"),
        Binding("b", "set_baseline('experiment')", "Baseline of this experiment", id="compare.baseline"),
        Binding("B", "set_baseline('project')", "Baseline of the project", id="compare.project-baseline"),
        Binding("K", "edit_key", "Comparison key", id="compare.edit-key"),
        Binding("n", "none", "Compare with none", id="compare.none"),
        Binding("escape,q", "cancel", "Cancel", id="compare.cancel"),
    ]

    class Loaded(Message):
        def __init__(self, frame: pl.DataFrame | None, baseline: str | None, settings: dict[str, Any],
                     error: str | None = None) -> None:
            self.frame = frame
            self.baseline = baseline
            self.settings = settings
            self.error = error
            super().__init__()

    class Saved(Message):
        def __init__(self, note: str, error: str | None = None, rematch: bool = False) -> None:
            self.note = note
            self.error = error
            self.rematch = rematch
            super().__init__()

    def __init__(self, experiment: dict[str, Any], current: list[str] | None = None) -> None:
        super().__init__(id="compare-dialog")
        self.experiment = experiment
        self.current = current
        self.frame: pl.DataFrame | None = None
        self.baseline: str | None = None
        self.settings: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="compare-box"):
            yield Static(Text.assemble(("Compare ", "bold"), (safe_text(self.experiment["name"], 40), "bold"),
                                       (" with…", "bold")), id="compare-title")
            yield ExperimentChoices(id="compare-list")
            yield Static("", id="compare-key", markup=False)
            key_input = Input(placeholder="comparison key, e.g. input.question or [input, metadata.category]",
                              id="compare-key-input")
            key_input.display = False
            yield key_input
            yield Static("", id="compare-error", markup=False)
            yield Static(Text(f"space select (≤{MAX_COMPARED}) · enter compare · b baseline here · "
                              "B project baseline · K key · n none · esc", "dim"), id="compare-help")

    def on_mount(self) -> None:
        self.query_one("#compare-error", Static).display = False
        self.query_one(ExperimentChoices).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-picker")
    def load(self) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        try:
            frame = other_experiments(store, self.experiment)
            baseline = resolve_baseline(store, self.experiment["id"])
            settings = project_settings(store, self.experiment["project_id"])
        except Exception as e:
            self.post_message(self.Loaded(None, None, {}, f"could not list experiments: {e}"))
            return
        self.post_message(self.Loaded(frame, baseline, settings))

    def on_compare_picker_loaded(self, message: Loaded) -> None:
        if message.frame is None:
            self._error(message.error or "")
            return
        self.frame, self.baseline, self.settings = message.frame, message.baseline, message.settings
        if self.query_one(ExperimentChoices).option_count:
            chosen = set(self._selected())  # reloaded after b / B: keep what the user picked
        elif self.current is not None:
            chosen = set(self.current)
        else:
            chosen = {message.baseline} if message.baseline else set()
        self._rebuild(chosen)

    def _rebuild(self, chosen: set[str]) -> None:
        lst = self.query_one(ExperimentChoices)
        highlighted = lst.highlighted
        lst.clear_options()
        frame = self.frame
        if frame is None or frame.height == 0:
            self._error("This project has no other experiment to compare with.")
            return
        base_here = self.experiment.get("base_exp_id")
        base_project = self.settings.get("baseline_experiment_id")
        for row in frame.iter_rows(named=True):
            lst.add_option(Selection(self._label(row, base_here, base_project), row["id"], row["id"] in chosen))
        lst.highlighted = min(highlighted or 0, frame.height - 1)
        self._show_key()

    def _label(self, row: dict[str, Any], base_here: str | None, base_project: str | None) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append(safe_text(row["name"], 28).ljust(29), "bold" if row["id"] == self.baseline else "")
        t.append(safe_text(str(row["created"] or "")[:16], 16).ljust(17), "dim")
        t.append(f"{row['traces'] or 0:>6,} rows ", "dim")
        try:
            means = json.loads(row["score_means"] or "{}")
        except ValueError:
            means = {}
        shown = [f"{safe_text(k, 12)} {v:.2f}" for k, v in list(means.items())[:3] if v is not None]
        t.append(" · ".join(shown).ljust(40)[:40], "")
        marks = []
        if row["id"] == base_here:
            marks.append("baseline")
        if row["id"] == base_project:
            marks.append("project baseline")
        if row["id"] == self.baseline and not marks:
            marks.append("default baseline")
        if marks:
            t.append("  " + ", ".join(marks), "bold #e5c07b")
        return t

    def _show_key(self) -> None:
        spec = format_comparison_key(self.settings.get("comparison_key"))
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append("Comparison key: ", "dim")
        t.append(safe_text(spec, 80), "bold")
        t.append("  (K to change; project setting)", "dim")
        self.query_one("#compare-key", Static).update(t)

    def _error(self, text: str) -> None:
        err = self.query_one("#compare-error", Static)
        err.update(Text(safe_text(text, 300), "bold red"))
        err.display = bool(text)

    # -- actions -------------------------------------------------------------------------------

    def _selected(self) -> list[str]:
        lst = self.query_one(ExperimentChoices)
        return list(lst.selected)

    @on(SelectionList.SelectedChanged)
    def _limit(self, event: SelectionList.SelectedChanged) -> None:
        chosen = self._selected()
        if len(chosen) > MAX_COMPARED:
            self.query_one(ExperimentChoices).deselect(chosen[-1])
            self._error(f"At most {MAX_COMPARED} experiments at once")

    def action_done(self) -> None:
        inp = self.query_one("#compare-key-input", Input)
        if inp.has_focus:
            return  # the input's own submit handles enter
        chosen = self._selected()
        # the baseline first: the table's deltas are against it
        order = [self.experiment.get("base_exp_id"), self.settings.get("baseline_experiment_id"), self.baseline]
        first = next((b for b in order if b in chosen), None)
        if first is None and self.frame is not None:
            first = next((i for i in self.frame["id"] if i in chosen), None)
        ids = ([first] if first else []) + [i for i in chosen if i != first]
        self.dismiss((ids, ""))

    def action_none(self) -> None:
        self.dismiss(([], ""))

    def action_cancel(self) -> None:
        inp = self.query_one("#compare-key-input", Input)
        if inp.display:
            inp.display = False
            self.query_one(ExperimentChoices).focus()
            self._error("")
            return
        self.dismiss(None)

    def _highlighted_id(self) -> str | None:
        lst = self.query_one(ExperimentChoices)
        if lst.highlighted is None:
            return None
        return lst.get_option_at_index(lst.highlighted).value  # type: ignore[return-value]

    def action_set_baseline(self, scope: str) -> None:
        eid = self._highlighted_id()
        if eid is None:
            return
        self.save_baseline(scope, eid)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-save")
    def save_baseline(self, scope: str, eid: str) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        name = self.frame.filter(pl.col("id") == eid)["name"][0] if self.frame is not None else eid
        try:
            if scope == "experiment":
                update_experiment(store, self.experiment["id"], base_exp_id=eid)
                self.experiment["base_exp_id"] = eid
                note = f"{name} is now the baseline of {self.experiment['name']}"
            else:
                update_project_settings(store, self.experiment["project_id"], baseline_experiment_id=eid)
                note = f"{name} is now the baseline of project {self.experiment['project']}"
        except Exception as e:
            self.post_message(self.Saved("", f"could not save the baseline: {e}"))
            return
        self.post_message(self.Saved(note))

    def action_edit_key(self) -> None:
        inp = self.query_one("#compare-key-input", Input)
        inp.display = True
        inp.value = format_comparison_key(self.settings.get("comparison_key"))
        inp.focus()

    @on(Input.Submitted, "#compare-key-input")
    def _key_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            spec = parse_comparison_key(event.value)
        except ValueError as e:
            self._error(f"Comparison key: {e}")
            return
        self._error("")
        self.query_one("#compare-key", Static).update(Text("re-matching every trace on the new key…", "italic"))
        self.save_key(spec)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare-save")
    def save_key(self, spec: str | list[str]) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        try:
            # recomputes every trace's key in the project (one transaction)
            self.settings = update_project_settings(store, self.experiment["project_id"], comparison_key=spec)
        except Exception as e:
            self.post_message(self.Saved("", f"could not save the comparison key: {e}"))
            return
        self.post_message(self.Saved(f"Comparison key is now {format_comparison_key(spec)}", rematch=True))

    def on_compare_picker_saved(self, message: Saved) -> None:
        if message.error:
            self._error(message.error)
            self._show_key()
            return
        self.app.notify(safe_text(message.note, 200), markup=False, timeout=3)
        if message.rematch:
            chosen = self._selected()
            if chosen:
                # re-match at once with the same experiments
                self.action_done_with_note(message.note)
                return
            inp = self.query_one("#compare-key-input", Input)
            inp.display = False
            self.query_one(ExperimentChoices).focus()
            self._show_key()
            return
        # a new baseline: resolve again and mark it
        self.load()

    def action_done_with_note(self, note: str) -> None:
        chosen = self._selected()
        first = self.baseline if self.baseline in chosen else (chosen[0] if chosen else None)
        ids = ([first] if first else []) + [i for i in chosen if i != first]
        self.dismiss((ids, note))
