"""Writes to the store. Every public function here is one atomic transaction."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

from evaltui.store.connection import Store
from evaltui.store.errors import NotFound, RecordError, StoreError
from evaltui.store.records import (
    SPAN_COLUMNS,
    dumps,
    loads,
    now_iso,
    validate_span_row,
)
from evaltui.store.rollup import ROLLUP_COLUMNS, trace_row

DEFAULT_PROJECT_SETTINGS: dict[str, Any] = {
    "comparison_key": "input",
    "baseline_experiment_id": None,
    "score_definitions": [],
    "aggregate_scores": [],
    "views": [],
}
SOURCES = ("sdk", "braintrust", "inspect", "promptfoo", "otel", "phoenix", "langfuse", "jsonl", "csv")
_CHUNK = 400  # ids per IN (...) list, under SQLite's variable limit


def new_id() -> str:
    return uuid.uuid4().hex


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


# -- projects and experiments -------------------------------------------------------------


def ensure_project(store: Store, name: str) -> str:
    """The id of the project called ``name``, created if it does not exist."""
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise StoreError(f"invalid project name {name!r}: a non-empty name without '/'")
    with store.transaction() as conn:
        row = conn.execute("SELECT id FROM projects WHERE name = ?", (name,)).fetchone()
        if row:
            return row[0]
        pid = new_id()
        conn.execute(
            "INSERT INTO projects (id, name, created, settings) VALUES (?, ?, ?, ?)",
            (pid, name, now_iso(), dumps(DEFAULT_PROJECT_SETTINGS)),
        )
        return pid


def project_settings(store: Store, project_id: str) -> dict[str, Any]:
    rows = store.read("SELECT settings FROM projects WHERE id = ?", (project_id,))
    if not rows:
        raise NotFound(f"no project with id {project_id!r}")
    return {**DEFAULT_PROJECT_SETTINGS, **(loads(rows[0][0]) or {})}


def update_project_settings(store: Store, project_id: str, **changes: Any) -> dict[str, Any]:
    """Merge ``changes`` into the project's settings (read-modify-write under the write lock)."""
    with store.transaction() as conn:
        row = conn.execute("SELECT settings FROM projects WHERE id = ?", (project_id,)).fetchone()
        if not row:
            raise NotFound(f"no project with id {project_id!r}")
        settings = {**DEFAULT_PROJECT_SETTINGS, **(loads(row[0]) or {}), **changes}
        conn.execute("UPDATE projects SET settings = ? WHERE id = ?", (dumps(settings), project_id))
    if "comparison_key" in changes:
        recompute_traces(store, project_id=project_id)
    return settings


def set_shared_view(store: Store, project_id: str, name: str, view: dict[str, Any] | None, *,
                    rename_to: str | None = None) -> dict[str, Any]:
    """Save (``view``), delete (None) or rename a shared table view in the project settings,
    in one transaction so two processes saving views at once both keep theirs. The project
    default follows a rename and is cleared with a delete."""
    with store.transaction() as conn:
        row = conn.execute("SELECT settings FROM projects WHERE id = ?", (project_id,)).fetchone()
        if not row:
            raise NotFound(f"no project with id {project_id!r}")
        settings = {**DEFAULT_PROJECT_SETTINGS, **(loads(row[0]) or {})}
        views = dict(settings.get("shared_views") or {})
        if rename_to is not None:
            if name in views:
                views[rename_to] = views.pop(name)
            if settings.get("default_view") == name:
                settings["default_view"] = rename_to
        elif view is None:
            views.pop(name, None)
            if settings.get("default_view") == name:
                settings["default_view"] = None
        else:
            views[name] = view
        settings["shared_views"] = views
        conn.execute("UPDATE projects SET settings = ? WHERE id = ?", (dumps(settings), project_id))
    return settings


def create_experiment(
    store: Store,
    project: str,
    name: str | None = None,
    *,
    description: str | None = None,
    base_exp_id: str | None = None,
    dataset_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    repo_info: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    source: str = "sdk",
    created: str | None = None,
    experiment_id: str | None = None,
) -> str:
    """Create an experiment in ``project`` (created if needed) and return its id.

    A name already taken in the project gets a numeric suffix (``name-2``), as each run of an
    eval is its own permanent experiment.
    """
    if source not in SOURCES:
        raise StoreError(f"unknown experiment source {source!r} (one of {', '.join(SOURCES)})")
    if name is not None and (not isinstance(name, str) or not name.strip() or "/" in name):
        raise StoreError(f"invalid experiment name {name!r}: a non-empty name without '/'")
    for label, value in (("metadata", metadata), ("params", params), ("repo_info", repo_info)):
        if value is not None and not isinstance(value, dict):
            raise StoreError(f"experiment {label} must be an object, not {type(value).__name__}")
    project_id = ensure_project(store, project)
    created = created or now_iso()
    base = name or "exp-" + created[:19].replace(":", "").replace("-", "").replace("T", "-")
    eid = experiment_id or new_id()
    with store.transaction() as conn:
        if base_exp_id is not None and not conn.execute(
            "SELECT 1 FROM experiments WHERE id = ?", (base_exp_id,)
        ).fetchone():
            raise NotFound(f"base experiment {base_exp_id!r} does not exist")
        taken = {r[0] for r in conn.execute("SELECT name FROM experiments WHERE project_id = ?", (project_id,))}
        final, n = base, 1
        while final in taken:
            n += 1
            final = f"{base}-{n}"
        try:
            conn.execute(
                "INSERT INTO experiments (id, project_id, name, description, created, base_exp_id,"
                " dataset_id, metadata, params, repo_info, tags, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    eid,
                    project_id,
                    final,
                    description,
                    created,
                    base_exp_id,
                    dataset_id,
                    dumps(metadata),
                    dumps(params),
                    dumps(repo_info),
                    dumps(tags),
                    source,
                ),
            )
        except (TypeError, ValueError) as e:
            raise StoreError(f"experiment fields are not JSON-serialisable: {e}") from None
    return eid


_EXPERIMENT_JSON_FIELDS = ("metadata", "params", "repo_info", "tags")
_EXPERIMENT_TEXT_FIELDS = ("description", "base_exp_id", "dataset_id")


def update_experiment(store: Store, experiment_id: str, **fields: Any) -> None:
    """Change an experiment's description, metadata, params, repo_info, tags, base or dataset.

    Only the fields given change (None clears one). Used when a re-import brings newer
    facts about the run (an Inspect log that was still running the first time).
    """
    unknown = set(fields) - {*_EXPERIMENT_JSON_FIELDS, *_EXPERIMENT_TEXT_FIELDS}
    if unknown:
        raise StoreError(f"cannot update experiment field(s) {', '.join(sorted(unknown))}")
    if not fields:
        return
    values = [dumps(v) if k in _EXPERIMENT_JSON_FIELDS else v for k, v in fields.items()]
    with store.transaction() as conn:
        cur = conn.execute(
            f"UPDATE experiments SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
            (*values, experiment_id),
        )
        if cur.rowcount == 0:
            raise NotFound(f"no experiment with id {experiment_id!r}")


def delete_experiment(store: Store, experiment_id: str) -> None:
    with store.transaction() as conn:
        for table in ("comments", "events", "experiment_fields", "traces", "spans"):
            conn.execute(f"DELETE FROM {table} WHERE experiment_id = ?", (experiment_id,))
        conn.execute("UPDATE experiments SET base_exp_id = NULL WHERE base_exp_id = ?", (experiment_id,))
        conn.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))


# -- spans ------------------------------------------------------------------------------

_INSERT_SPAN = (
    f"INSERT INTO spans ({', '.join(f'[{c}]' for c in SPAN_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(SPAN_COLUMNS))})"
)
# Only for ids already stored: with foreign keys on, SQLite checks an upsert's row about
# twice as slowly as a plain insert's (measured: 0.9 s more per 100k spans).
_UPSERT_SPAN = (
    _INSERT_SPAN
    + " ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"[{c}] = excluded.[{c}]" for c in SPAN_COLUMNS if c != "id")
)
_TRACE_WRITE_COLUMNS = (*ROLLUP_COLUMNS, "row_version")
_UPSERT_TRACE = (
    f"INSERT INTO traces ({', '.join(f'[{c}]' for c in _TRACE_WRITE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_TRACE_WRITE_COLUMNS))})"
    " ON CONFLICT(experiment_id, root_span_id) DO UPDATE SET "
    + ", ".join(f"[{c}] = excluded.[{c}]" for c in _TRACE_WRITE_COLUMNS[2:])
)


@functools.lru_cache(maxsize=64)
def _span_sql(cols: tuple[int, ...] | None, upsert: bool) -> str:
    """INSERT (or upsert) of span rows that hold only the SPAN_COLUMNS at ``cols`` (None: all);
    the others are NULL (an upsert sets them to NULL)."""
    if cols is None:
        return _UPSERT_SPAN if upsert else _INSERT_SPAN
    names = [SPAN_COLUMNS[i] for i in cols]
    sql = f"INSERT INTO spans ({', '.join(f'[{c}]' for c in names)}) VALUES ({', '.join('?' * len(names))})"
    if upsert:
        sql += " ON CONFLICT(id) DO UPDATE SET " + ", ".join(
            f"[{c}] = excluded.[{c}]" if c in names else f"[{c}] = NULL" for c in SPAN_COLUMNS if c != "id")
    return sql


@functools.lru_cache(maxsize=64)
def _trace_sql(cols: tuple[int, ...] | None) -> str:
    """The trace-row upsert for rows that hold only the ROLLUP_COLUMNS at ``cols`` (None:
    all), then row_version; the other roll-up columns are NULL."""
    if cols is None:
        return _UPSERT_TRACE
    names = [ROLLUP_COLUMNS[i] for i in cols]
    return (
        f"INSERT INTO traces ({', '.join(f'[{c}]' for c in (*names, 'row_version'))})"
        f" VALUES ({', '.join('?' * (len(names) + 1))})"
        " ON CONFLICT(experiment_id, root_span_id) DO UPDATE SET "
        + ", ".join(f"[{c}] = excluded.[{c}]" if c in names or c == "row_version" else f"[{c}] = NULL"
                    for c in _TRACE_WRITE_COLUMNS[2:])
    )


def drop_null_columns(rows: list[tuple]) -> tuple[list[tuple], tuple[int, ...] | None]:
    """``rows`` without the columns that are NULL in every row, and the indexes of the columns
    kept (None: all kept). Binding None costs sqlite3 an adapter call per value: a one-span
    trace's span and trace rows carry about twenty, most of them NULL in a whole batch."""
    if not rows:
        return rows, None
    first, n = rows[0], len(rows)
    width = len(first)
    # (loops in C: a column with a value in the first row is kept without a scan)
    keep = tuple(i for i in range(width)
                 if first[i] is not None or list(map(itemgetter(i), rows)).count(None) != n)
    if len(keep) == width or len(keep) < 2:
        return rows, None
    return list(map(itemgetter(*keep), rows)), keep


def bump_rows_version(conn: Any, experiment_id: str, *, spans: bool = False) -> int:
    """Next version of an experiment's trace rows (and spans, when they changed too).

    Call it in the transaction that makes the change: cached frames are keyed on it.
    """
    extra = ", spans_version = spans_version + 1" if spans else ""
    row = conn.execute(
        f"UPDATE experiments SET rows_version = rows_version + 1{extra} WHERE id = ? RETURNING rows_version",
        (experiment_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no experiment with id {experiment_id!r}")
    return row[0]
# What a roll-up needs of each stored span: metadata and previews only for roots.
_ROLLUP_READ = (
    "SELECT id, span_id, root_span_id, span_parents, name, type, scores, metrics, error,"
    " CASE WHEN span_id = root_span_id THEN metadata"
    "      ELSE json_object('scorer_errors', json_extract(metadata, '$.scorer_errors')) END,"
    " CASE WHEN span_id = root_span_id THEN input END,"
    " CASE WHEN span_id = root_span_id THEN output END,"
    " CASE WHEN span_id = root_span_id THEN expected END,"
    " CASE WHEN span_id = root_span_id THEN tags END,"
    " created, dataset_record_id"
    " FROM spans WHERE experiment_id = ? AND root_span_id IN ({marks})"
)


def _stored_facts(conn: Any, experiment_id: str, roots: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for chunk in _chunks(list(roots)):
        sql = _ROLLUP_READ.format(marks=",".join("?" * len(chunk)))
        for r in conn.execute(sql, (experiment_id, *chunk)):
            out.setdefault(r[2], []).append(
                {
                    "id": r[0],
                    "span_id": r[1],
                    "span_parents": loads(r[3]) or [],
                    "name": r[4],
                    "type": r[5],
                    "scores": loads(r[6]),
                    "metrics": loads(r[7]),
                    "error": loads(r[8]),
                    "metadata": loads(r[9]),
                    "input": loads(r[10]),
                    "output": loads(r[11]),
                    "expected": loads(r[12]),
                    "tags": loads(r[13]),
                    "created": r[14],
                    "dataset_record_id": r[15],
                }
            )
    return out


def _key_specs(conn: Any, experiment_ids: Iterable[str]) -> dict[str, Any]:
    specs = {}
    for eid in experiment_ids:
        row = conn.execute(
            "SELECT p.settings FROM experiments e JOIN projects p ON p.id = e.project_id WHERE e.id = ?", (eid,)
        ).fetchone()
        settings = (loads(row[0]) or {}) if row else {}
        specs[eid] = settings.get("comparison_key") or "input"
    return specs


def comparison_key_spec(store: Store, experiment_id: str) -> Any:
    """The comparison key (a path or a list of paths) of the experiment's project."""
    with store.lock:
        return _key_specs(store.conn, [experiment_id])[experiment_id]


@dataclass
class _Prepared:
    """A validated batch, encoded for the spans table and grouped by trace."""

    records: Sequence[dict[str, Any]] | None  # as given (for error messages); None for encoded roots
    ids: list[str]  # row ids, one per row (the last write of an id wins)
    rows: list[tuple]  # encoded for the spans table
    batch: dict[tuple[str, str], list[dict[str, Any]]]  # (experiment, root) -> span facts
    # trace rows computed already (one-span traces, without their row_version), with the
    # comparison-key spec of each experiment they were computed for
    ready: dict[tuple[str, str], tuple] = field(default_factory=dict)
    ready_specs: dict[str, Any] = field(default_factory=dict)
    fields: set[tuple[str, str, str]] | None = None  # experiment_fields rows; None: from ``batch``
    # experiments whose every stored span is a one-span trace's root (span id = root id, as
    # an import that created them writes): a trace of theirs has stored spans only if its
    # root id is a stored span id, which the id lookup finds without the trace lookup
    roots_only: frozenset[str] = frozenset()
    # the columns ``rows`` and the ready trace rows hold (see drop_null_columns); None: all
    span_cols: tuple[int, ...] | None = None
    trace_cols: tuple[int, ...] | None = None
    experiments: frozenset[str] = frozenset()  # the experiments it writes to (once checked)
    # for one-span traces of ``roots_only`` experiments: the only ids of the batch that may
    # be stored already (an IdFilter's answer); the rest are inserted without a lookup
    lookup_ids: list[str] | None = None


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a batch allocates tens of thousands of small objects.

    None of them form cycles, yet each allocation burst triggers collections that walk
    every live object of the process (a quarter of ingest time in `evaltui bench`).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _prepare(records: Sequence[dict[str, Any]]) -> _Prepared:
    """Everything about a batch that needs no database: validation and JSON.

    Raises RecordError before anything is written.
    """
    with gc_paused():
        return _prepare_batch(list(records))


def _prepare_batch(records: list[dict[str, Any]]) -> _Prepared:
    now = now_iso()
    pairs = [validate_span_row(i, r, now) for i, r in enumerate(records)]
    recs = [p[0] for p in pairs]
    rows = [p[1] for p in pairs]
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        # the last write of an id wins, as if the records had been written one by one
        last = {rid: i for i, rid in enumerate(ids)}
        keep = sorted(last.values())
        recs, rows, ids = [recs[i] for i in keep], [rows[i] for i in keep], [ids[i] for i in keep]
    batch: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in recs:
        batch.setdefault((r["experiment_id"], r["root_span_id"]), []).append(r)
    return _Prepared(records, ids, rows, batch)


def prepare_roots(
    rows: list[tuple], traces: list[tuple], specs: dict[str, Any], fields: set[tuple[str, str, str]],
    roots_only: frozenset[str] | set[str] = frozenset(),
    span_cols: tuple[int, ...] | None = None,
    trace_cols: tuple[int, ...] | None = None,
    lookup_ids: list[str] | None = None,
) -> _Prepared:
    """A batch of one-span traces encoded by :func:`evaltui.store.onespan.encode_root`.

    ``specs``: the comparison-key spec each experiment's trace rows were computed with;
    ``fields``: their (experiment_id, kind, name) score, metric and metadata names;
    ``roots_only``: experiments known to hold nothing but one-span traces whose row id is
    their span id (one the caller created and has written only such rows into);
    ``span_cols``/``trace_cols``: the columns the rows hold, when :func:`drop_null_columns`
    dropped some (the first two are always there: they are never NULL);
    ``lookup_ids``: for ``roots_only`` experiments, the ids that may have been written
    before (see :class:`IdFilter`).
    """
    ids = list(map(_FIRST, rows))
    if len(set(ids)) != len(ids):
        last = {rid: i for i, rid in enumerate(ids)}
        keep = sorted(last.values())
        rows, traces, ids = [rows[i] for i in keep], [traces[i] for i in keep], [ids[i] for i in keep]
    ready = dict(zip(map(_KEY, traces), traces))
    return _Prepared(None, ids, rows, {}, ready, specs, fields, frozenset(roots_only), span_cols, trace_cols,
                     lookup_ids=lookup_ids)


_FIRST = itemgetter(0)
_SCORES = itemgetter("scores")
_METRICS = itemgetter("metrics")
_SECOND = itemgetter(1)
_KEY = itemgetter(0, 1)


def _check_experiments(conn: Any, prepared: _Prepared) -> None:
    if prepared.records is None:
        exp_ids = sorted(set(map(_SECOND, prepared.rows)))
    else:
        exp_ids = sorted({eid for eid, _ in prepared.batch})
    known = {r[0] for r in conn.execute(
        f"SELECT id FROM experiments WHERE id IN ({','.join('?' * len(exp_ids))})", exp_ids
    )}
    prepared.experiments = frozenset(known)
    if prepared.records is None:
        if len(known) == len(exp_ids):
            return
        for i, row in enumerate(prepared.rows):
            if row[1] not in known:
                raise RecordError(i, "experiment_id", f"no experiment with id {row[1]!r}", row[0])
        return
    for i, r in enumerate(prepared.records):
        if r.get("experiment_id") not in known:
            raise RecordError(i, "experiment_id", f"no experiment with id {r.get('experiment_id')!r}", r.get("id"))


def write_spans(store: Store, records: Sequence[dict[str, Any]]) -> int:
    """Write a batch of span records atomically and refresh the trace rows they touch.

    All records are validated first: one bad record raises RecordError (index and field)
    and nothing is written. A record whose ``id`` is already stored replaces that span.
    Returns the number of spans written.
    """
    return _write_batch(store, records, savepoint=True)


def _write_batch(store: Store, records: Sequence[dict[str, Any]] | _Prepared, *, savepoint: bool) -> int:
    if not records:
        return 0
    prepared = records if isinstance(records, _Prepared) else _prepare(records)
    with store.lock:
        if not savepoint and store.in_transaction():
            # part of the caller's transaction, which rolls back whole on any failure
            _check_experiments(store.conn, prepared)
            _write_span_rows(store.conn, prepared)
            return len(prepared.rows)
        with store.transaction() as conn:
            _check_experiments(conn, prepared)
            _write_span_rows(conn, prepared)
    return len(prepared.rows)


class SpanWriter:
    """Writes a stream of span batches, each batch atomically, inside or outside a transaction.

    An importer wraps a whole file in one ``store.transaction()`` and submits its batches
    here; each batch is then a savepoint of that transaction. A bad batch raises its
    RecordError with the ``tag`` it was submitted with as ``error.tag`` (the importer passes
    the source positions of the batch's records, to name the failing line).

    ``savepoints=False``: inside a transaction, batches are written straight into it rather
    than each in a savepoint of its own. A batch that fails half-way is then not undone by
    itself, so the caller must roll back the whole transaction on any error (an importer
    does: a broken file imports nothing). It saves SQLite copying every page a batch
    touches into the savepoint journal, which is most of the write cost of an import
    whose ids are hashes (their index pages are all over the file).

    (A helper thread that prepared the next batch while SQLite wrote this one gave nothing:
    sqlite3 takes the GIL back after every row it steps, and a busy thread hands it over
    only every switch interval, so the writer crawls. Big generic imports overlap the two
    in a forked child instead: ``evaltui.ingest.jsonl``.)
    """

    def __init__(self, store: Store, *, savepoints: bool = True):
        self.store = store
        self.savepoints = savepoints
        self.written = 0

    def submit(self, records: Sequence[dict[str, Any]] | _Prepared, tag: Any = None) -> None:
        """Write one batch: span records, or one-span traces from :func:`prepare_roots`."""
        if not records:
            return
        try:
            self.written += _write_batch(self.store, records, savepoint=self.savepoints)
        except RecordError as e:
            e.tag = tag  # type: ignore[attr-defined]
            raise

    def close(self) -> int:
        return self.written

    def abort(self) -> None:
        """Nothing is queued: kept so callers can stop a writer the same way after a failure."""

    def __enter__(self) -> SpanWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def write_span_batches(store: Store, batches: Iterable[Sequence[dict[str, Any]]]) -> int:
    """Write many batches, each atomically (the first bad one stops); returns the spans written."""
    writer = SpanWriter(store)
    for records in batches:
        writer.submit(records)
    return writer.written


class IdFilter:
    """Which ids a stream of new one-span traces may have written before: a bit per hash.

    ``maybe_seen(rid)`` is False for an id not given before (certain), True for one that was
    or whose bit another id set (a lookup decides). 32 M bits: at a million ids, 3% false alarms.
    """

    BITS = 1 << 25

    def __init__(self) -> None:
        self.bits = bytearray(self.BITS >> 3)

    def maybe_seen(self, rid: str) -> bool:
        h = hash(rid) & (self.BITS - 1)
        byte, bit = h >> 3, 1 << (h & 7)
        if self.bits[byte] & bit:
            return True
        self.bits[byte] |= bit
        return False


def _write_span_rows(conn: Any, prepared: _Prepared) -> None:
    """Inside a transaction: upsert spans, then recompute every touched trace row."""
    ids, rows, batch, ready = prepared.ids, prepared.rows, prepared.batch, prepared.ready
    lookup: Sequence[str] = ids
    if prepared.lookup_ids is not None and not batch and prepared.roots_only >= prepared.experiments:
        # one-span traces of experiments this import created: only an id it wrote before can
        # be stored (ids are unique in the store: one in another experiment makes the insert
        # fail, and the batch is written again with every id looked up)
        lookup = prepared.lookup_ids
    # Where the ids lived before: a re-logged span may have moved to another trace.
    moved_from: set[tuple[str, str]] = set()
    known_ids: set[str] = set()  # ids written before (their rows are replaced)
    for chunk in _chunks(lookup):
        for rid, eid, root in conn.execute(
            f"SELECT id, experiment_id, root_span_id FROM spans WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ):
            known_ids.add(rid)
            moved_from.add((eid, root))
    # Traces that already have spans stored (other than the ones being rewritten).
    had_spans: set[tuple[str, str]] = set(moved_from)
    by_exp: dict[str, list[str]] = {}
    if batch or not prepared.roots_only >= prepared.experiments:
        for eid, root in (*batch, *ready):
            if batch or eid not in prepared.roots_only:  # else had_spans is what the id lookup found
                by_exp.setdefault(eid, []).append(root)
    for eid, roots in by_exp.items():
        for chunk in _chunks(roots):
            for (root,) in conn.execute(
                f"SELECT DISTINCT root_span_id FROM spans WHERE experiment_id = ?"
                f" AND root_span_id IN ({','.join('?' * len(chunk))})",
                (eid, *chunk),
            ):
                had_spans.add((eid, root))
    cols = prepared.span_cols
    try:
        if known_ids:  # ids are unique within a batch: the rest cannot conflict
            conn.executemany(_span_sql(cols, False), [r for r in rows if r[0] not in known_ids])
            conn.executemany(_span_sql(cols, True), [r for r in rows if r[0] in known_ids])
        else:
            conn.executemany(_span_sql(cols, False), rows)
    except sqlite3.IntegrityError:
        if lookup is ids:
            raise
        # an id stored in another experiment: the rows inserted before it are written
        # again (with the same values) by the path that looks every id up
        prepared.lookup_ids = None
        _write_span_rows(conn, prepared)
        return

    touched = set(batch) | set(ready) | moved_from
    specs = _key_specs(conn, {eid for eid, _ in touched})
    for eid, spec in prepared.ready_specs.items():
        if eid in specs and specs[eid] != spec:
            raise StoreError(f"experiment {eid}: its comparison key changed while its rows were being written")
    versions = {eid: bump_rows_version(conn, eid, spans=True) for eid in specs}
    reread: dict[str, list[str]] = {}
    for eid, root in touched:
        if (eid, root) in had_spans:
            reread.setdefault(eid, []).append(root)
    stored: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for eid, roots in reread.items():
        for root, facts in _stored_facts(conn, eid, roots).items():
            stored[(eid, root)] = facts
    upserts, deletes, ready_rows = [], [], []
    if not batch and not had_spans and len(versions) == 1:
        # the usual import batch: new one-span traces of one experiment
        (version,) = versions.values()
        ready_rows = [(*t, version) for t in ready.values()]
        touched = set()
    for key in touched:
        if key in had_spans:
            row = trace_row(key[0], key[1], stored.get(key) or [], specs[key[0]])
        elif key in ready:
            # a one-span trace, rolled up when it was encoded
            ready_rows.append((*ready[key], versions[key[0]]))
            continue
        else:
            # a brand-new trace: every span of it is in this batch, no need to read it back
            row = trace_row(key[0], key[1], batch[key], specs[key[0]])
        if row is None:
            deletes.append(key)
        else:
            upserts.append((*row, versions[key[0]]))
    if upserts:
        conn.executemany(_UPSERT_TRACE, upserts)
    if ready_rows:
        conn.executemany(_trace_sql(prepared.trace_cols), ready_rows)
    if deletes:
        conn.executemany("DELETE FROM traces WHERE experiment_id = ? AND root_span_id = ?", deletes)
    _record_fields(conn, prepared)


def _record_fields(conn: Any, prepared: _Prepared) -> None:
    """Remember score, metric and root-metadata names per experiment (the table's columns)."""
    if prepared.fields is not None:
        if prepared.fields:
            conn.executemany(
                "INSERT OR IGNORE INTO experiment_fields (experiment_id, kind, name) VALUES (?, ?, ?)",
                sorted(prepared.fields),
            )
        return
    names: dict[tuple[str, str], set[str]] = {}
    by_exp: dict[str, list[list[dict[str, Any]]]] = {}
    for (eid, _), facts in prepared.batch.items():
        by_exp.setdefault(eid, []).append(facts)
    for eid, groups in by_exp.items():  # (usually one experiment) the names gathered in C
        recs = list(chain.from_iterable(groups))
        names[(eid, "score")] = set().union(*filter(None, map(_SCORES, recs)))
        names[(eid, "metric")] = set().union(*filter(None, map(_METRICS, recs)))
        names[(eid, "metadata")] = set().union(*[
            r["metadata"] for r in recs if r["metadata"] and r["span_id"] == r["root_span_id"]])
    seen = [(eid, kind, name) for (eid, kind), found in names.items() for name in found]
    if seen:
        conn.executemany("INSERT OR IGNORE INTO experiment_fields (experiment_id, kind, name) VALUES (?, ?, ?)", seen)


def recompute_traces(store: Store, *, project_id: str | None = None, experiment_id: str | None = None) -> int:
    """Recompute the trace rows of an experiment (or of every experiment of a project)."""
    with store.transaction() as conn:
        if experiment_id is not None:
            exp_ids = [experiment_id]
        else:
            exp_ids = [r[0] for r in conn.execute("SELECT id FROM experiments WHERE project_id = ?", (project_id,))]
        specs = _key_specs(conn, exp_ids)
        n = 0
        for eid in exp_ids:
            roots = [r[0] for r in conn.execute("SELECT DISTINCT root_span_id FROM spans WHERE experiment_id = ?", (eid,))]
            facts = _stored_facts(conn, eid, roots)
            rows = [trace_row(eid, root, spans, specs[eid]) for root, spans in facts.items()]
            version = bump_rows_version(conn, eid)
            conn.executemany(_UPSERT_TRACE, [(*r, version) for r in rows if r])
            n += len(rows)
        return n


# -- human actions ------------------------------------------------------------------------


def append_event(
    conn: Any,
    *,
    user: str,
    action: str,
    experiment_id: str | None = None,
    root_span_id: str | None = None,
    span_id: str | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Append to the events log; call inside the transaction that applies the change."""
    conn.execute(
        "INSERT INTO events (ts, user, experiment_id, root_span_id, span_id, action, before, after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now_iso(), user, experiment_id, root_span_id, span_id, action, json.dumps(before), json.dumps(after)),
    )


def set_review(
    store: Store,
    experiment_id: str,
    root_span_ids: Sequence[str],
    *,
    user: str,
    review_status: str | None = None,
    assignee: str | None | type[Ellipsis] = ...,
) -> int:
    """Set review status and/or assignee of traces; each change is logged as an event."""
    if review_status is not None and review_status not in ("unreviewed", "in review", "reviewed"):
        raise StoreError(f"unknown review status {review_status!r}")
    changed = 0
    with store.transaction() as conn:
        version = bump_rows_version(conn, experiment_id)
        for root in root_span_ids:
            row = conn.execute(
                "SELECT review_status, assignee, reviewed_by FROM traces WHERE experiment_id = ? AND root_span_id = ?",
                (experiment_id, root),
            ).fetchone()
            if row is None:
                raise NotFound(f"no trace {root!r} in experiment {experiment_id!r}")
            status, who, by = row
            if review_status is not None and review_status != status:
                new_by = user if review_status == "reviewed" else None
                conn.execute(
                    "UPDATE traces SET review_status = ?, reviewed_by = ?, row_version = ?"
                    " WHERE experiment_id = ? AND root_span_id = ?",
                    (review_status, new_by, version, experiment_id, root),
                )
                append_event(conn, user=user, action="review_status", experiment_id=experiment_id,
                             root_span_id=root, before=status, after=review_status)
                changed += 1
            if assignee is not ... and assignee != who:
                conn.execute(
                    "UPDATE traces SET assignee = ?, row_version = ? WHERE experiment_id = ? AND root_span_id = ?",
                    (assignee, version, experiment_id, root),
                )
                append_event(conn, user=user, action="assign", experiment_id=experiment_id,
                             root_span_id=root, before=who, after=assignee)
                changed += 1
    return changed
