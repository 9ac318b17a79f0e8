"""Live refresh: what other processes write (reviews, assignments, scores, comments,
imports) shows without a restart.

Every ``INTERVAL`` seconds a short thread worker asks SQLite, on a connection of its own,
for ``PRAGMA data_version``: it changes whenever another connection (another evaltui, an
import, this app's own store connection) commits. Only then does it read the versions of
the experiments the screens show (``experiments.rows_version`` and the trace count) and
hands them to every screen in the stack that has a ``live_refresh(versions)`` method, on
the event loop. A screen compares them with what it loaded and reloads in a worker (the
store's frame cache reads only the changed rows of a big experiment).

An in-memory database has no other connections: nothing to watch.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.message import Message

from evaltui.store import NotFound, Store
from evaltui.store.readers import experiment_version, load_projects

__all__ = ["INTERVAL", "LiveChange", "LiveChanged", "LiveWatcher"]

INTERVAL = 0.5  # seconds between checks; a change shows within about twice this


@dataclass(frozen=True)
class LiveChange:
    """What the database looks like after a change another connection committed."""

    versions: dict[str, tuple[int, int] | None]  # watched experiment id -> (rows_version, traces); None: gone
    catalog: tuple[tuple[str, int], ...]  # (project, experiment count) of every project


class LiveChanged(Message):
    """Posted to the app from the watcher's thread; the app calls ``LiveWatcher.dispatch``."""

    def __init__(self, change: LiveChange) -> None:
        self.change = change
        super().__init__()

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LiveChanged)  # only the newest state matters


class LiveWatcher:
    """Watches the app's database and tells the screens when it changed."""

    def __init__(self, app: App[Any], interval: float = INTERVAL) -> None:
        self.app = app
        self.interval = interval
        self._store: Store | None = None
        self._data_version: int | None = None
        self._busy = threading.Event()  # a check is running: ticks meanwhile are skipped
        self._timer: Any = None
        self.checks = 0  # how many times the database was asked (tests, bench)
        self.changes = 0  # how many changes were handed to the screens

    @property
    def enabled(self) -> bool:
        return str(self.app.store.path) != ":memory:"  # type: ignore[attr-defined]

    def start(self) -> None:
        if self.enabled and self._timer is None:
            self._timer = self.app.set_interval(self.interval, self.tick, name="live-refresh")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._store is not None:
            store, self._store = self._store, None
            store.close()

    def _watched(self) -> set[str]:
        """Experiment ids the screens in the stack show (asked on the event loop)."""
        ids: set[str] = set()
        for screen in self.app.screen_stack:
            watched = getattr(screen, "live_experiments", None)
            if watched is not None:
                ids.update(watched())
        return ids

    def tick(self) -> None:
        """Start a check unless one is still running."""
        if self._busy.is_set():
            return
        self._busy.set()
        watched = self._watched()  # read the screens here, on the event loop
        self.app.run_worker(lambda: self._check(watched), thread=True, group="live-refresh",
                            exit_on_error=False, name="live-refresh")

    def _check(self, watched: set[str]) -> None:
        try:
            if self._store is None:
                self._store = Store(self.app.store.path)  # type: ignore[attr-defined]
            self.checks += 1
            version = self._store.data_version()
            if version == self._data_version:
                return
            self._data_version = version
            versions: dict[str, tuple[int, int] | None] = {}
            for eid in watched:
                try:
                    versions[eid] = experiment_version(self._store, eid)
                except NotFound:
                    versions[eid] = None  # deleted meanwhile
            projects = load_projects(self._store)
            catalog = tuple(zip(projects["name"].to_list(), projects["experiments"].to_list(), strict=True))
            self.changes += 1
            self.app.post_message(LiveChanged(LiveChange(versions, catalog)))
        except Exception:  # noqa: BLE001 - a failed check is retried on the next tick
            self._data_version = None
        finally:
            self._busy.clear()

    def dispatch(self, change: LiveChange) -> None:
        """Hand a change to the screens (the app calls this when ``LiveChanged`` arrives)."""
        for screen in list(self.app.screen_stack):
            refresh = getattr(screen, "live_refresh", None)
            if refresh is not None:
                refresh(change)


class LiveExperimentList:
    """Mixed into the experiment list screen: reload when experiments come, go or change.

    While the list shows, the first change seen is the baseline and a reload follows a
    change of the catalog or of a listed experiment. Under another screen any change marks
    it stale (no per-experiment versions read for it) and it reloads when it shows again;
    the cursor stays on its experiment.
    """

    _live_seen: Any = None
    _live_stale = False

    def live_experiments(self) -> list[str]:
        frame = self.frame  # type: ignore[attr-defined]
        if frame is None or self.app.screen is not self:  # type: ignore[attr-defined]
            return []
        return frame["id"].to_list()

    def live_refresh(self, change: LiveChange) -> None:
        if self.app.screen is not self:  # type: ignore[attr-defined]
            self._live_stale = True
            self._live_seen = None  # a new baseline when it shows again
            return
        frame = self.frame  # type: ignore[attr-defined]
        if frame is None:
            return  # still loading: it reads the new state anyway
        # experiments per project as listed, against the database's: one came or went
        listed = sorted(Counter(frame["project"].to_list()).items())
        if listed != sorted((p, n) for p, n in change.catalog if n):
            self._live_stale = True
        shown = set(frame["id"].to_list())
        seen = sorted((k, v) for k, v in change.versions.items() if k in shown)
        if self._live_seen is not None and seen != self._live_seen:
            self._live_stale = True  # a listed experiment's rows changed (scores, counts)
        self._live_seen = seen
        if self._live_stale:
            self._live_reload()

    def _live_reload(self) -> None:
        self._live_stale = False
        from textual.widgets import DataTable

        table = self.query_one(DataTable)  # type: ignore[attr-defined]
        if table.row_count and table.cursor_row is not None:
            try:
                key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            except Exception:  # noqa: BLE001 - no cursor row: keep the last selection
                key = None
            if key:
                self._select = key
        self.load()  # type: ignore[attr-defined]

    def on_screen_resume(self) -> None:
        if self._live_stale:
            self._live_reload()
