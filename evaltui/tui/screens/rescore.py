"""Score with…: pick built-in scorers, run them over traces in a worker with a progress bar;
esc cancels (what was scored is kept)."""

from __future__ import annotations

import threading

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, ProgressBar, SelectionList, Static
from textual.widgets.selection_list import Selection

from evaltui.sdk.rescore import (
    RescoreReport,
    ScorerLoadError,
    load_user_scorers,
    rescore,
)
from evaltui.sdk.scorers import BUILTIN_SCORERS
from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["PICKABLE", "RescoreScreen"]

# built-in scorers that need no settings (contains: the case's expected text)
PICKABLE = ("exact_match", "levenshtein", "numeric_closeness", "json_diff", "contains", "valid_json")


class RescoreScreen(ModalScreen[RescoreReport | None]):
    """space ticks a scorer, enter runs them, esc cancels (a run: stops after the current batch)."""

    HELP_GROUP = "Score with"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="rescore.cancel"),
        Binding("enter", "run", "Run", priority=True, id="rescore.run"),
    ]

    class Progress(Message):
        def __init__(self, done: int, total: int) -> None:
            self.done = done
            self.total = total
            super().__init__()

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, RescoreScreen.Progress)

    class Finished(Message):
        def __init__(self, report: RescoreReport | None, error: str | None = None) -> None:
            self.report = report
            self.error = error
            super().__init__()

    def __init__(self, experiment_id: str, roots: list[str]) -> None:
        super().__init__(id="rescore-dialog")
        self.experiment_id = experiment_id
        self.roots = roots
        self.cancel_event = threading.Event()
        self.running = False
        self.report: RescoreReport | None = None

    def compose(self) -> ComposeResult:
        n = len(self.roots)
        with Vertical(id="rescore-box"):
            yield Static(Text.assemble(("Score with… ", "bold"),
                                       (f"{n:,} trace{'s' if n != 1 else ''}", "")), id="rescore-title")
            yield SelectionList[str](
                *(Selection(f"{name:<18} {BUILTIN_SCORERS[name].description}", name, name == "exact_match")
                  for name in PICKABLE),
                id="rescore-list",
            )
            yield Input(placeholder="and your own: a scorers .py file or module (optional)", id="rescore-user")
            yield ProgressBar(total=n, show_eta=False, id="rescore-progress")
            yield Static("", id="rescore-status")
            yield Static(Text("space ticks · tab your scorers · enter runs · esc cancels", "dim"), id="rescore-help")

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False
        self.query_one(SelectionList).focus()

    def chosen(self) -> list[str]:
        return list(self.query_one(SelectionList).selected)

    def action_run(self) -> None:
        if self.running:
            return
        names = self.chosen()
        user_file = self.query_one("#rescore-user", Input).value.strip()
        if not names and not user_file:
            self.query_one("#rescore-status", Static).update(
                Text("tick at least one scorer (space), or name a file of yours", "bold red"))
            return
        if user_file:
            names = [*names, user_file]
        self.running = True
        self.query_one(SelectionList).disabled = True
        self.query_one("#rescore-user", Input).disabled = True
        self.query_one(ProgressBar).display = True
        self.query_one("#rescore-status", Static).update(Text(f"scoring with {', '.join(names)}… esc cancels",
                                                              "italic"))
        self.query_one("#rescore-help", Static).update(Text("esc cancels (what was scored is kept)", "dim"))
        self._run(names)

    @work(thread=True, exclusive=True, exit_on_error=False, group="rescore")
    def _run(self, names: list[str]) -> None:
        scorers = [BUILTIN_SCORERS[n]() for n in names if n in BUILTIN_SCORERS]
        n = len(self.roots)
        try:
            for user_file in (n_ for n_ in names if n_ not in BUILTIN_SCORERS):
                scorers += load_user_scorers(user_file)
        except ScorerLoadError as e:
            self.post_message(self.Finished(None, str(e)))
            return
        try:
            report = rescore(self.app.store, self.experiment_id, self.roots, scorers,  # type: ignore[attr-defined]
                             user=self.app.user,  # type: ignore[attr-defined]
                             progress=lambda done, total: self.post_message(self.Progress(done, total)),
                             cancel=self.cancel_event, batch_size=max(20, min(500, n // 20)))
        except Exception as e:
            self.post_message(self.Finished(None, f"scoring failed: {e}"))
            return
        self.post_message(self.Finished(report))

    def on_rescore_screen_progress(self, message: Progress) -> None:
        self.query_one(ProgressBar).update(total=message.total, progress=message.done)

    def on_rescore_screen_finished(self, message: Finished) -> None:
        self.running = False
        if message.report is None:
            self.query_one(SelectionList).disabled = False
            self.query_one("#rescore-user", Input).disabled = False
            self.query_one(ProgressBar).display = False
            self.query_one("#rescore-status", Static).update(Text(safe_text(message.error or "", 300), "bold red"))
            return
        self.report = message.report
        self.app.notify(safe_text(str(message.report), 400), timeout=6, markup=False)
        self.dismiss(message.report)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel_event.set()
            self.query_one("#rescore-status", Static).update(Text("cancelling…", "italic"))
            return
        self.dismiss(None)
