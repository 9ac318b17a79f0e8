"""The first screen: projects and their experiments, newest first."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from evaltui.lazy_polars import pl
from evaltui.store import load_experiments
from evaltui.tui.commands import ExperimentListCommands
from evaltui.tui.widgets.footer import KeyFooter
from evaltui.tui.live import LiveExperimentList
from evaltui.tui.widgets.text_safety import safe_text

MAX_SCORE_COLUMNS = 8

EMPTY_HELP = """\
No experiments in {db} yet. Three ways to get some:

  evaltui demo              write a demo project and open it
  evaltui import FILE...    import results (Braintrust, Inspect, promptfoo,
                            OTel, JSONL, CSV)

  or log them from Python:

    import evaltui

    def exact(input, output, expected, **_):
        return output == expected

    evaltui.Eval(
        "my-project",
        data=[{{"input": "Capital of France?", "expected": "Paris"}}],
        task=lambda input: "Paris",
        scores=[exact],
        experiment_name="baseline",
    )

Then press R here to reload (q quits)."""


class ExperimentList(DataTable):
    """The experiments, one row each; enter opens one."""

    HELP_GROUP = "Experiments"
    BINDINGS = [
        Binding("j,down", "cursor_down", "Down", show=False, id="list.cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="list.cursor-up"),
        Binding("g,home", "scroll_top", "First experiment", show=False, id="list.cursor-first"),
        Binding("G,end", "scroll_bottom", "Last experiment", show=False, id="list.cursor-last"),
        Binding("ctrl+d,pagedown", "page_down", "Page down", show=False, id="list.cursor-page-down"),
        Binding("ctrl+u,pageup", "page_up", "Page up", show=False, id="list.cursor-page-up"),
        Binding("enter", "select_cursor", "Open experiment", id="list.open"),
    ]


def _created(value: str | None) -> str:
    # ISO timestamps, shown to the minute; the stored value is not "now"-relative (snapshots)
    if not value:
        return ""
    return value[:16].replace("T", " ")


def _score_cell(v: Any) -> Text:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return Text("–", "dim", justify="right")
    style = "#98c379" if v >= 0.75 else ("#e5c07b" if v >= 0.5 else "#e06c75")
    return Text(f"{v:.2f}", style, justify="right")


class ExperimentListScreen(LiveExperimentList, Screen[None]):
    """Projects and experiments; enter opens one, q quits."""

    HELP_GROUP = "Experiment list"
    COMMANDS = {ExperimentListCommands}
    BINDINGS = [
        Binding("q", "app.quit", "Quit", id="list.quit"),
        Binding("R", "reload", "Reload", id="list.reload"),
    ]

    class Loaded(Message):
        def __init__(self, frame: pl.DataFrame | None, error: str | None = None) -> None:
            self.frame = frame
            self.error = error
            super().__init__()

    def __init__(self, *, deferred: bool = False) -> None:
        super().__init__(id="experiment-list")
        self.frame: pl.DataFrame | None = None
        self._select: str | None = None  # an experiment to put the cursor on once loaded
        # deferred: the app opened an experiment directly; the list is built (and read from
        # the database) the first time it is shown, not at start-up
        self._deferred = deferred

    def compose(self) -> ComposeResult:
        if not self._deferred:
            yield from self._widgets()

    @staticmethod
    def _widgets() -> list[Widget]:
        return [
            Static("", id="list-title", classes="title-line"),
            ExperimentList(id="experiments", cursor_type="row", zebra_stripes=True),
            Static("", id="empty-help"),
            KeyFooter(),
        ]

    def on_mount(self) -> None:
        if not self._deferred:
            self._start()

    def _start(self) -> None:
        self.query_one("#empty-help").display = False
        self._title("loading experiments…")
        self.load()

    @property
    def built(self) -> bool:
        """False while the list waits to be shown for the first time."""
        return not self._deferred

    async def ensure_built(self) -> None:
        """Build and load the list now (a deferred list does this when first shown)."""
        if not self._deferred:
            return
        self._deferred = False
        await self.mount_all(self._widgets())
        self._start()

    async def on_screen_resume(self) -> None:
        # not when covered at once (the app opened an experiment in the same step)
        if self._deferred and not getattr(self.app, "opening_experiment", False) and self.is_active:
            await self.ensure_built()

    def _title(self, note: str = "") -> None:
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append("evaltui", "bold")
        t.append("  " + safe_text(str(self.app.store.path), 120), "dim")  # type: ignore[attr-defined]
        if note:
            t.append("  " + note, "italic")
        self.query_one("#list-title", Static).update(t)

    @work(thread=True, exclusive=True, exit_on_error=False, group="experiments")
    def load(self) -> None:
        try:
            frame = load_experiments(self.app.store)  # type: ignore[attr-defined]
        except Exception as e:  # a broken database is reported, not a crash
            self.post_message(self.Loaded(None, f"could not read experiments: {e}"))
            return
        self.post_message(self.Loaded(frame))

    def action_reload(self) -> None:
        self._title("loading experiments…")
        self.load()

    def on_experiment_list_screen_loaded(self, message: Loaded) -> None:
        if message.error:
            self._title(message.error)
            self.app.notify(message.error, severity="error")
            return
        self.show(message.frame)

    def show(self, frame: pl.DataFrame) -> None:
        self.frame = frame
        table = self.query_one(ExperimentList)
        empty = self.query_one("#empty-help", Static)
        table.clear(columns=True)
        if frame.height == 0:
            table.display = False
            empty.display = True
            db = safe_text(str(self.app.store.path), 200)  # type: ignore[attr-defined]
            empty.update(Text(EMPTY_HELP.format(db=db)))
            self._title("no experiments")
            return
        table.display = True
        empty.display = False
        means = [json.loads(s or "{}") for s in frame["score_means"].to_list()]
        names: list[str] = []
        for m in means:
            for k in m:
                if k not in names:
                    names.append(k)
        shown_scores = names[:MAX_SCORE_COLUMNS]
        headers: list[tuple[str, Text]] = [
            ("project", Text("Project")),
            ("name", Text("Experiment")),
            ("created", Text("Created")),
            ("traces", Text("Traces", justify="right")),
        ]
        headers += [(f"score:{name}", Text(safe_text(name, 16), justify="right")) for name in shown_scores]
        if len(names) > len(shown_scores):
            headers.append(("other", Text("Other scores")))
        headers += [("errors", Text("Errors", justify="right")), ("source", Text("Source"))]
        rows: list[tuple[str, list[Text]]] = []
        previous_project = None
        projects = 0
        for row, m in zip(frame.iter_rows(named=True), means, strict=True):
            project = row["project"]
            if project != previous_project:
                projects += 1
            cells: list[Text] = [
                Text(safe_text(project, 30), "bold" if project != previous_project else "dim"),
                Text(safe_text(row["name"], 40)),
                Text(_created(row["created"]), "dim"),
                Text(f"{row['traces']:,}", justify="right"),
            ]
            cells += [_score_cell(m.get(name)) for name in shown_scores]
            if len(names) > len(shown_scores):
                rest = [f"{k} {v:.2f}" for k, v in m.items() if k not in shown_scores and v is not None]
                cells.append(Text(safe_text(", ".join(rest), 40), "dim"))
            errors = row["errors"] or 0
            err_text = f"{errors:,}"
            if row.get("scorer_errors"):
                err_text += f" +{row['scorer_errors']}s"
            cells.append(Text(err_text, "#e06c75" if errors else "dim", justify="right"))
            cells.append(Text(safe_text(row["source"] or "", 12), "dim"))
            rows.append((row["id"], cells))
            previous_project = project
        # explicit widths: the table's own auto width can paint stale (too narrow) columns
        for i, (key, label) in enumerate(headers):
            width = max([label.cell_len, *(cells[i].cell_len for _, cells in rows)])
            table.add_column(label, key=key, width=width)
        for key, cells in rows:
            table.add_row(*cells, key=key)
        n = frame.height
        self._title(f"{projects} project{'s' if projects != 1 else ''} · {n} experiment{'s' if n != 1 else ''}"
                    " · enter opens")
        table.focus()
        if self._select is None:
            # start where the user left off last time
            last = self.app.config.last_experiment  # type: ignore[attr-defined]
            refs = [f"{p}/{n}" for p, n in zip(frame["project"], frame["name"], strict=True)]
            if last in refs:
                self._select = frame["id"][refs.index(last)]
        if self._select is not None:
            self.select_experiment(self._select)

    @on(DataTable.RowSelected, "#experiments")
    def open_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.app.open_experiment(event.row_key.value)  # type: ignore[attr-defined]

    def select_experiment(self, experiment_id: str) -> None:
        """Put the cursor on an experiment (the one opened last), now or once loaded."""
        self._select = experiment_id
        if self._deferred:
            return
        table = self.query_one(ExperimentList)
        try:
            row = table.get_row_index(experiment_id)
        except Exception:
            return
        table.move_cursor(row=row)
