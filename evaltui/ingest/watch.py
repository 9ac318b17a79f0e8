"""Watch a folder and keep importing new and growing result logs while an eval runs.

No dependency beyond the standard library: the folder is polled (``stat`` size + mtime)
every ``interval`` seconds; a file is imported when it is new or changed and has then been
stable for ``settle`` seconds. Re-importing updates its experiment in place (see
:func:`evaltui.ingest.import_paths`), so a growing log never duplicates rows. A broken file
is reported and retried only once it changes again; files in no known format are reported
once as skipped. The database's own files are never imported, even inside the folder.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaltui.ingest import import_paths
from evaltui.ingest._common import FileResult, IngestError
from evaltui.ingest.sniff import FORMATS, SniffError, sniff
from evaltui.store import Store

Signature = tuple[int, int]  # (size, mtime_ns)
ResultCallback = Callable[[FileResult], None]


@dataclass
class WatchSummary:
    """What a watch did so far."""

    imports: int = 0  # successful (re-)imports of a file
    failed: int = 0
    skipped: int = 0
    traces: int = 0  # traces written, summed over imports (a re-import counts again)
    spans: int = 0
    polls: int = 0
    files: set[str] = field(default_factory=set)  # files imported at least once

    def line(self) -> str:
        n = len(self.files)
        text = (
            f"{self.imports} import{'s' if self.imports != 1 else ''} of {n} file{'s' if n != 1 else ''}"
            f" ({self.traces} traces, {self.spans} spans written)"
        )
        if self.failed:
            text += f"; {self.failed} failed"
        if self.skipped:
            text += f"; {self.skipped} skipped"
        return text


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


class Watcher:
    """Polls ``directories`` and imports what changed; :meth:`run` loops until stopped.

    ``import_options`` are :func:`import_paths`' keyword options (format, project,
    experiment, mapping). ``on_result(FileResult)`` is called after each import attempt.
    """

    def __init__(
        self,
        store: Store,
        directories: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        interval: float = 1.0,
        settle: float = 0.5,
        on_result: ResultCallback | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        **import_options: Any,
    ):
        if isinstance(directories, (str, os.PathLike)):
            directories = [directories]
        self.roots = [Path(d).expanduser() for d in directories]
        if not self.roots:
            raise IngestError("nothing to watch: give a folder")
        for root in self.roots:
            if not root.exists():
                raise IngestError(f"{root}: no such file or folder")
        if interval <= 0 or settle < 0:
            raise ValueError("interval must be > 0 and settle >= 0")
        fmt = import_options.get("format", "auto")
        if fmt != "auto" and fmt not in FORMATS:
            raise IngestError(f"unknown format {fmt!r} (one of auto, {', '.join(FORMATS)})")
        self.store = store
        self.interval = interval
        self.settle = settle
        self.on_result = on_result
        self.stop = stop or threading.Event()
        self.clock = clock
        self.import_options = import_options
        self.summary = WatchSummary()
        self._done: dict[Path, Signature] = {}  # signature last imported (or failed / skipped)
        self._pending: dict[Path, tuple[Signature, float]] = {}  # signature seen changed, since when
        db = Path(store.path).resolve() if getattr(store, "path", None) else None
        self._own = {Path(f"{db}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")} if db else set()

    # -- scanning ------------------------------------------------------------------------------

    def _files(self) -> dict[Path, Signature]:
        found: dict[Path, Signature] = {}
        for root in self.roots:
            if root.is_file():
                candidates: Iterable[Path] = [root]
            elif root.is_dir():
                candidates = (p for p in root.rglob("*") if not _hidden(p.relative_to(root)))
            else:
                continue  # removed while watching: it may come back
            for p in candidates:
                try:
                    st = p.stat()
                except OSError:
                    continue  # vanished between listing and stat
                if not p.is_file() or p.resolve() in self._own:
                    continue
                found[p] = (st.st_size, st.st_mtime_ns)
        return found

    def due(self) -> list[Path]:
        """Files new or changed since their last import and stable for ``settle`` seconds."""
        now = self.clock()
        wall = time.time()
        files = self._files()
        for gone in set(self._done) - set(files):
            del self._done[gone]
        for gone in set(self._pending) - set(files):
            del self._pending[gone]
        ready = []
        for path, sig in sorted(files.items()):
            if sig[0] == 0:
                continue  # just created: nothing to import yet
            if self._done.get(path) == sig:
                self._pending.pop(path, None)
                continue
            seen = self._pending.get(path)
            if seen is None or seen[0] != sig:
                # first sight of this version: ready at once if it was last written long enough ago
                self._pending[path] = (sig, now)
                if wall - sig[1] / 1e9 >= self.settle:
                    ready.append(path)
            elif now - seen[1] >= self.settle:
                ready.append(path)
        return ready

    # -- importing -----------------------------------------------------------------------------

    def _import(self, path: Path) -> FileResult:
        sig = self._pending.get(path, (None, 0.0))[0]
        fmt = self.import_options.get("format", "auto")
        try:
            if fmt == "auto":
                sniff(path)
            report = import_paths(self.store, [path], **self.import_options)
            result = report.files[0]
        except SniffError as e:
            result = FileResult(str(path), error=str(e), skipped=True)
        except IngestError as e:  # vanished, unreadable
            result = FileResult(str(path), error=str(e))
        except OSError as e:
            result = FileResult(str(path), error=f"{path}: {type(e).__name__}: {e}")
        # whatever happened, wait for the next change of this file before trying again
        try:
            st = path.stat()
            self._done[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            if sig is not None:
                self._done[path] = sig
        if self._done.get(path) != sig:
            # it changed while being imported: pick it up again once it settles
            self._done.pop(path, None)
        self._pending.pop(path, None)
        s = self.summary
        if result.skipped:
            s.skipped += 1
        elif result.error:
            s.failed += 1
        else:
            s.imports += 1
            s.traces += result.traces
            s.spans += result.spans
            s.files.add(str(path))
        if self.on_result is not None:
            self.on_result(result)
        return result

    def poll_once(self) -> list[FileResult]:
        """One scan: import every file that is due; the results."""
        self.summary.polls += 1
        out = []
        for path in self.due():
            if self.stop.is_set():
                break
            out.append(self._import(path))
        return out

    def run(self) -> WatchSummary:
        """Poll until ``stop`` is set (KeyboardInterrupt propagates; :attr:`summary` stays valid)."""
        while not self.stop.is_set():
            self.poll_once()
            if self.stop.wait(self.interval):
                break
        return self.summary


def watch(
    store: Store,
    directory: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    interval: float = 1.0,
    settle: float = 0.5,
    on_result: ResultCallback | None = None,
    stop: threading.Event | None = None,
    **import_options: Any,
) -> WatchSummary:
    """Keep importing new and changed files under ``directory`` until ``stop`` is set.

    See :class:`Watcher`. Returns the summary; a KeyboardInterrupt propagates (an import it
    interrupts is rolled back), so callers that want the summary then use a Watcher.
    """
    watcher = Watcher(
        store, directory, interval=interval, settle=settle, on_result=on_result, stop=stop, **import_options
    )
    return watcher.run()


__all__ = ["WatchSummary", "Watcher", "watch"]
