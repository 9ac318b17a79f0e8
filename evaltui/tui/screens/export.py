"""Two dialogs that take the rows of the current view out of the table.

- **Export view** (``x``): the rows the table shows, in its order, with its visible columns
  (or every span field), to CSV, JSON, JSONL or Parquet. It streams from SQLite in a worker on
  a connection of its own, with a progress bar; esc cancels and leaves no partial file.
- **Dataset from rows** (``M``): the selected rows (else the rows the view shows) become a
  dataset in the project: each root span's input, expected, metadata and tags.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, ProgressBar, Static

from evaltui.tui.widgets.text_safety import safe_text


class _Cancelled(Exception):
    pass


def _show_status(status: Static, text: str, error: bool) -> None:
    """A dialog's status line: ``text`` shown literally (it may name files or data), red on error."""
    status.update(Text(safe_text(text)))
    status.set_class(error, "error")


def default_export_path(name: str, directory: Path | None = None) -> Path:
    """``./<experiment name>.csv`` with anything unsafe in a file name replaced."""
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-.") or "export"
    return (directory or Path.cwd()) / f"{stem}.csv"


class ExportScreen(ModalScreen[None]):
    """Enter writes the file; esc cancels (also a running export)."""

    HELP_GROUP = "Export dialog"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="export.cancel"),
    ]

    class Progress(Message):
        def __init__(self, done: int) -> None:
            self.done = done
            super().__init__()

    class Finished(Message):
        def __init__(self, rows: int | None, path: Path, error: str | None = None) -> None:
            self.rows = rows
            self.path = path
            self.error = error
            super().__init__()

    def __init__(self, db_path: Path, experiment: dict[str, Any], ids: Sequence[str], *, rows: str,
                 columns: Sequence[str], note: str = "") -> None:
        super().__init__(id="export-dialog")
        self.db_path = db_path
        self.experiment = experiment
        self.ids = list(ids)
        self.rows = rows
        self.columns = list(columns)
        self.note = note
        self._cancel = threading.Event()
        self._busy = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            what = f"{len(self.ids):,} {'trace' if self.rows == 'traces' else 'span'} row{'s' if len(self.ids) != 1 else ''}"
            title = Text(safe_text(f"Export {what} of {self.experiment.get('name', '')}"))
            if self.note:
                title.append(f" ({self.note})", style="dim")
            yield Static(title, classes="dialog-title")
            yield Static("File (.csv .json .jsonl .parquet); the extension picks the format:", classes="dim")
            yield Input(str(default_export_path(str(self.experiment.get("name") or "export"))), id="export-path")
            yield Checkbox("All span fields (a lossless file evaltui import reads back)", id="export-all")
            yield ProgressBar(total=max(len(self.ids), 1), show_eta=False, id="export-progress")
            yield Static("enter export · esc cancel", id="export-status", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#export-progress").display = False
        self.query_one("#export-path", Input).focus()

    def _status(self, text: str, error: bool = False) -> None:
        _show_status(self.query_one("#export-status", Static), text, error)

    @on(Input.Submitted, "#export-path")
    def _submitted(self, event: Input.Submitted) -> None:
        from evaltui.query.export import format_for_path

        if self._busy:
            return
        raw = event.value.strip()
        if not raw:
            self._status("type a file name", error=True)
            return
        path = Path(raw).expanduser()
        fmt = format_for_path(path)
        if fmt is None:
            self._status(f"{raw}: unknown extension; use .csv, .json, .jsonl or .parquet", error=True)
            return
        if not path.parent.is_dir():
            self._status(f"{path.parent}: no such directory", error=True)
            return
        self._busy = True
        self.query_one("#export-progress").display = True
        self._status(f"writing {path.name}…")
        self.export(path, fmt, self.query_one("#export-all", Checkbox).value)

    @work(thread=True, exclusive=True, group="export")
    def export(self, path: Path, fmt: str, all_fields: bool) -> None:
        from evaltui.query.export import plan_view_export, write_atomically, write_export
        from evaltui.store import Store

        def on_page(done: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            self.post_message(self.Progress(done))

        try:
            with Store(self.db_path) as store:
                plan = plan_view_export(store, self.experiment["id"], self.ids, rows=self.rows,
                                        columns=None if all_fields else self.columns, all_fields=all_fields)
                n = write_atomically(path, lambda f: write_export(store, plan, f, fmt, on_page=on_page))
        except _Cancelled:
            self.post_message(self.Finished(None, path))
        except (OSError, ValueError) as e:
            self.post_message(self.Finished(None, path, str(e)))
        except Exception as e:  # noqa: BLE001 - a store or filter error: say it, keep the app
            self.post_message(self.Finished(None, path, f"{type(e).__name__}: {e}"))
        else:
            self.post_message(self.Finished(n, path))

    def on_export_screen_progress(self, message: Progress) -> None:
        self.query_one("#export-progress", ProgressBar).update(progress=min(message.done, len(self.ids)))

    def on_export_screen_finished(self, message: Finished) -> None:
        self._busy = False
        if message.error is not None:
            self.query_one("#export-progress").display = False
            self._status(f"export failed: {message.error}", error=True)
            return
        if message.rows is None:
            self.app.notify("export cancelled; no file written", severity="warning")
        else:
            unit = "row" if message.rows == 1 else "rows"
            self.app.notify(safe_text(f"exported {message.rows:,} {unit} to {message.path}", 400), title="Export",
                            markup=False)
        self.dismiss(None)

    def action_cancel(self) -> None:
        if self._busy:
            self._cancel.set()
            self._status("cancelling…")
            return
        self.dismiss(None)


class DatasetScreen(ModalScreen[None]):
    """A name (and a description), enter creates the dataset; esc cancels."""

    HELP_GROUP = "Dataset dialog"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dataset.cancel"),
    ]

    class Created(Message):
        def __init__(self, name: str, records: int | None, error: str | None = None) -> None:
            self.name = name
            self.records = records
            self.error = error
            super().__init__()

    def __init__(self, db_path: Path, experiment: dict[str, Any], root_span_ids: Sequence[str], *,
                 what: str) -> None:
        super().__init__(id="dataset-dialog")
        self.db_path = db_path
        self.experiment = experiment
        self.root_span_ids = list(dict.fromkeys(root_span_ids))
        self.what = what
        self._busy = False

    def compose(self) -> ComposeResult:
        n = len(self.root_span_ids)
        with Vertical(classes="dialog"):
            yield Static(Text(safe_text(f"Dataset from {n:,} trace{'s' if n != 1 else ''} ({self.what})")),
                         classes="dialog-title")
            yield Static("Each record: the trace's input, expected, metadata and tags.", classes="dim")
            yield Input(placeholder="dataset name", id="dataset-name")
            yield Input(placeholder="description (optional)", id="dataset-description")
            yield Static("enter create · esc cancel", id="dataset-status", classes="dim")

    def on_mount(self) -> None:
        self.query_one("#dataset-name", Input).focus()

    def _status(self, text: str, error: bool = False) -> None:
        _show_status(self.query_one("#dataset-status", Static), text, error)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if self._busy:
            return
        name = self.query_one("#dataset-name", Input).value.strip()
        if not name:
            self.query_one("#dataset-name", Input).focus()
            self._status("type a name for the dataset", error=True)
            return
        description = self.query_one("#dataset-description", Input).value.strip() or None
        self._busy = True
        self._status("creating…")
        self.create(name, description)

    @work(thread=True, exclusive=True, group="dataset")
    def create(self, name: str, description: str | None) -> None:
        from evaltui.store import Store
        from evaltui.store.datasets import dataset_from_experiment
        from evaltui.store.errors import StoreError

        try:
            with Store(self.db_path) as store:
                _, n = dataset_from_experiment(store, self.experiment["id"], name,
                                               root_span_ids=self.root_span_ids, description=description)
        except StoreError as e:
            self.post_message(self.Created(name, None, str(e)))
        except Exception as e:  # noqa: BLE001 - say it, keep the app
            self.post_message(self.Created(name, None, f"{type(e).__name__}: {e}"))
        else:
            self.post_message(self.Created(name, n))

    def on_dataset_screen_created(self, message: Created) -> None:
        self._busy = False
        if message.error is not None:
            self._status(message.error, error=True)
            return
        project = self.experiment.get("project", "")
        unit = "record" if message.records == 1 else "records"
        self.app.notify(safe_text(f"created dataset {project}/{message.name}: {message.records:,} {unit}", 400),
                        title="Dataset", markup=False)
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
