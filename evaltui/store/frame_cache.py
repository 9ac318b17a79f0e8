"""A columnar cache of big experiments' frames, so a 100k-trace table opens in milliseconds.

Python's sqlite3 turns every value into a Python object (~0.3 µs each): 100k trace rows of
~35 columns cost over a second however the SQL is written. The first load of a big
experiment pays that once and leaves an Arrow IPC file in the user cache directory, named
after the experiment's ``rows_version``; later loads read it back in one go. When rows changed since
(a review, a re-import), only the rows whose ``row_version`` is newer are read from SQLite
and merged in. SQLite stays the source of truth: a cache file that is missing, stale,
unreadable or inconsistent is ignored and rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from evaltui.store.connection import Store

# Experiments smaller than this load straight from SQLite (fast enough, nothing to go stale).
MIN_ROWS = 5_000
# Merged deltas larger than this are written back as a new snapshot.
REWRITE_AFTER = 2_000
# Changes whenever the frames' columns or their meaning change, so old files are not read.
FORMAT = "f1"


def cache_root() -> Path:
    env = os.environ.get("EVALTUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("evaltui") / "frames"


def store_identity(store: Store) -> str:
    """Which database this is: its real path and the uid written when it was created (a file
    deleted and made again at the same path is another database)."""
    uid = store.read("SELECT value FROM store_info WHERE key = 'uid'")
    where = ":memory:" if str(store.path) == ":memory:" else os.path.realpath(store.path)
    return f"{where}\0{uid[0][0] if uid else id(store)}"


def _store_dir(store: Store) -> Path | None:
    if str(store.path) == ":memory:":
        return None
    return cache_root() / hashlib.blake2b(store_identity(store).encode(), digest_size=8).hexdigest()


@contextlib.contextmanager
def _read_snapshot(store: Store) -> Iterator[None]:
    """One read transaction: the version and the rows it describes are read consistently."""
    with store.lock:
        store.conn.execute("BEGIN")
        try:
            yield
        finally:
            store.conn.execute("COMMIT")


def _snapshots(directory: Path, prefix: str) -> list[tuple[int, Path]]:
    pattern = re.compile(re.escape(prefix) + r"-v(\d+)\.arrow$")
    found = []
    with contextlib.suppress(OSError):
        for p in directory.iterdir():
            m = pattern.match(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def _write(directory: Path, prefix: str, version: int, frame: pl.DataFrame) -> None:
    """Write atomically (temp + rename), then drop older snapshots. Failures are harmless."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{prefix}-v{version}.arrow"
        tmp = directory / f".{prefix}-v{version}.{os.getpid()}.tmp"
        frame.write_ipc(tmp, compression="uncompressed")
        os.replace(tmp, final)
        for v, p in _snapshots(directory, prefix):
            if v != version:
                with contextlib.suppress(OSError):
                    p.unlink()
    except OSError:
        pass


def _read(path: Path) -> pl.DataFrame | None:
    try:
        return pl.read_ipc(path)
    except (OSError, pl.exceptions.PolarsError):  # a torn or foreign file: rebuild from SQLite
        return None


def current_trace_rows(store: Store, experiment_id: str, version: int) -> pl.LazyFrame | None:
    """The cached snapshot of an experiment's trace rows if it is exactly ``version``, lazily
    (only the columns asked for are read), else None: nothing is read from SQLite."""
    directory = _store_dir(store)
    if directory is None:
        return None
    for v, path in _snapshots(directory, f"{experiment_id}-traces-{FORMAT}"):
        if v == version:
            try:
                return pl.scan_ipc(path)
            except (OSError, pl.exceptions.PolarsError):
                return None
    return None


def trace_rows(store: Store, experiment_id: str) -> pl.DataFrame:
    """All trace rows of an experiment, from the cache when it is current."""
    from evaltui.store.readers import TRACE_ORDER, experiment_version, query_trace_rows

    with _read_snapshot(store):
        version, count = experiment_version(store, experiment_id)
        directory = _store_dir(store)
        if count < MIN_ROWS or directory is None:
            return query_trace_rows(store, experiment_id)
        prefix = f"{experiment_id}-traces-{FORMAT}"
        snaps = [(v, p) for v, p in _snapshots(directory, prefix) if v <= version]
        if snaps:
            snap_version, path = snaps[-1]
            frame = _read(path)
            if frame is not None and snap_version == version and frame.height == count:
                return frame
            if frame is not None:
                delta = query_trace_rows(store, experiment_id, since_version=snap_version)
                merged = _merge(frame, delta, TRACE_ORDER)
                if merged is not None and merged.height == count:
                    if delta.height > REWRITE_AFTER:
                        _write(directory, prefix, version, merged)
                    return merged
        frame = query_trace_rows(store, experiment_id)
    _write(directory, prefix, version, frame)
    return frame


def _merge(frame: pl.DataFrame, delta: pl.DataFrame, order: list[str]) -> pl.DataFrame | None:
    """The snapshot with the changed rows replaced (by root_span_id), in table order."""
    if delta.height == 0:
        return frame
    try:
        kept = frame.filter(~pl.col("root_span_id").is_in(delta["root_span_id"].implode()))
        merged = pl.concat([kept, delta], how="diagonal_relaxed").sort(order)
        return merged.select(delta.columns + [c for c in merged.columns if c not in delta.columns])
    except pl.exceptions.PolarsError:
        return None


def span_rows(store: Store, experiment_id: str) -> pl.DataFrame:
    """All span rows of an experiment, from the cache when its spans have not changed."""
    from evaltui.store.readers import query_span_rows

    with _read_snapshot(store):
        row = store.read(
            "SELECT spans_version, (SELECT count(*) FROM spans WHERE experiment_id = e.id)"
            " FROM experiments e WHERE id = ?",
            (experiment_id,),
        )
        version, count = row[0] if row else (0, 0)
        directory = _store_dir(store)
        if count < MIN_ROWS or directory is None:
            return query_span_rows(store, experiment_id)
        prefix = f"{experiment_id}-spans-{FORMAT}"
        for v, path in _snapshots(directory, prefix):
            if v == version:
                frame = _read(path)
                if frame is not None and frame.height == count:
                    return frame
        frame = query_span_rows(store, experiment_id)
    _write(directory, prefix, version, frame)
    return frame
