"""Reads from the store, returned as polars frames.

Trace rows come from the materialized ``traces`` table: loading an experiment never
aggregates spans. Score columns are pulled out of the scores JSON by SQLite itself
(``json_extract`` in C), so Python only ever sees plain numbers and short previews.

Why sqlite3 cursors and not Arrow (ADBC): the ADBC SQLite driver links its own copy of
SQLite, and two SQLite libraries in one process writing/reading the same file can break each
other's POSIX locks (sqlite.org "How To Corrupt", 2.2.1). The TUI reads while the SDK or an
import writes, so one library it is. Reading column-wise from cursors meets the target
(see ``evaltui bench``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from evaltui.lazy_polars import pl
from evaltui.store.connection import Store
from evaltui.store.errors import NotFound
from evaltui.store.page import Page, polars_dtype
from evaltui.store.records import JSON_FIELDS, SPAN_COLUMNS, loads

# (column, SQL, kind): kinds are "str", "float", "int", "bool" (see page.polars_dtype); None: inferred
_TRACE_FIXED: list[tuple[str, str, str]] = [
    ("root_span_id", "root_span_id", "str"),
    ("id", "id", "str"),
    ("name", "name", "str"),
    ("created", "created", "str"),
    ("start", "start", "float"),
    ("end", "[end]", "float"),
    ("duration", "duration", "float"),
    ("llm_duration", "llm_duration", "float"),
    ("ttft", "ttft", "float"),
    ("prompt_tokens", "prompt_tokens", "int"),
    ("completion_tokens", "completion_tokens", "int"),
    ("tokens", "tokens", "int"),
    ("prompt_cached_tokens", "prompt_cached_tokens", "int"),
    ("completion_reasoning_tokens", "completion_reasoning_tokens", "int"),
    ("estimated_cost", "estimated_cost", "float"),
    ("span_count", "span_count", "int"),
    ("llm_calls", "llm_calls", "int"),
    ("tool_calls", "tool_calls", "int"),
    ("errors", "errors", "int"),
    ("has_error", "has_error", "bool"),
    ("scorer_errors", "scorer_errors", "int"),
    ("input", "input_preview", "str"),
    ("output", "output_preview", "str"),
    ("expected", "expected_preview", "str"),
    ("error", "error_preview", "str"),
    ("metadata", "metadata", "str"),
    ("tags", "tags", "str"),
    ("comparison_key", "comparison_key", "str"),
    ("review_status", "review_status", "str"),
    ("assignee", "assignee", "str"),
    ("reviewed_by", "reviewed_by", "str"),
    ("dataset_record_id", "dataset_record_id", "str"),
]
TRACE_BASE_COLUMNS = [name for name, _, _ in _TRACE_FIXED]


def _json_path(key: str) -> str:
    # a quoted member name, so keys with dots or spaces address one member
    return "$." + json.dumps(key, ensure_ascii=False)  # SQLite does not unescape \uXXXX in labels


def _frame(store: Store, sql: str, params: Sequence[Any], schema: list[tuple[str, str | None]]) -> pl.DataFrame:
    """Run ``sql`` and build a frame column by column (faster than row-wise construction)."""
    kinds, columns = _columns(store, sql, params, schema)
    if columns is None:
        return pl.DataFrame(schema={n: polars_dtype(k) for (n, _), k in zip(schema, kinds, strict=True)})
    return pl.DataFrame([
        pl.Series(name, values, dtype=polars_dtype(kind), strict=False)
        for (name, _), kind, values in zip(schema, kinds, columns, strict=True)
    ])


def _columns(store: Store, sql: str, params: Sequence[Any], schema: list[tuple[str, str | None]],
             ) -> tuple[list[str], list[Sequence[Any]] | None]:
    """Each column's kind and values (None when no row matched: inferred kinds are "str")."""
    with store.lock:
        rows = store.conn.execute(sql, params).fetchall()
    if not rows:
        return [k or "str" for _, k in schema], None
    kinds, columns = [], []
    for (_, kind), values in zip(schema, zip(*rows, strict=True), strict=True):
        if kind is None:
            kind, values = infer_kind(values)
        kinds.append(kind)
        columns.append(values)
    return kinds, columns


def infer_kind(values: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """A metadata column's kind and values: one kind when the values agree, else their JSON text."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {str}:
        return "str", values
    if kinds <= {int}:
        return "int", values
    if kinds <= {int, float}:
        return "float", values
    return "str", [None if v is None else str(v) for v in values]


def experiment_fields(store: Store, experiment_id: str) -> dict[str, list[str]]:
    """Names of the scores, metrics and root-metadata keys seen in an experiment."""
    out: dict[str, list[str]] = {"score": [], "metric": [], "metadata": []}
    for kind, name in store.read(
        "SELECT kind, name FROM experiment_fields WHERE experiment_id = ? ORDER BY kind, name", (experiment_id,)
    ):
        out.setdefault(kind, []).append(name)
    return out


def _trace_rows_query(store: Store, experiment_id: str) -> tuple[str, list[Any], list[tuple[str, Any]]]:
    """SELECT list, parameters and frame schema of an experiment's trace rows."""
    fields = experiment_fields(store, experiment_id)
    select = [expr for _, expr, _ in _TRACE_FIXED]
    schema: list[tuple[str, Any]] = [(name, dtype) for name, _, dtype in _TRACE_FIXED]
    params: list[Any] = []
    for score in fields["score"]:
        select.append("json_extract(scores, ?)")
        params.append(_json_path(score))
        schema.append((f"scores.{score}", "float"))
    for key in fields["metadata"]:
        # objects and arrays come back as JSON text, scalars as themselves
        select.append("json_extract(metadata, ?)")
        params.append(_json_path(key))
        schema.append((f"metadata.{key}", None))
    return f"SELECT {', '.join(select)} FROM traces", params, schema


TRACE_ORDER = ["created", "root_span_id"]


def load_trace_rows(
    store: Store, experiment_id: str, *, limit: int | None = None, offset: int = 0, cache: bool = True
) -> pl.DataFrame:
    """One row per trace (root span) of an experiment, oldest first.

    Columns: the roll-ups of DESIGN.md ("Trace row"), the previews named ``input``,
    ``output``, ``expected``, ``error``, one Float64 ``scores.<name>`` column per score,
    one ``metadata.<key>`` column per top-level metadata key, and the raw ``metadata`` and
    ``tags`` JSON.

    A whole big experiment is served from the columnar frame cache when it is current
    (see frame_cache.py); ``limit``/``offset`` pages always come straight from SQLite.
    """
    if limit is None and cache:
        from evaltui.store import frame_cache

        return frame_cache.trace_rows(store, experiment_id)
    return query_trace_rows(store, experiment_id, limit=limit, offset=offset)


def trace_page(store: Store, experiment_id: str, limit: int) -> Page:
    """The first ``limit`` trace rows as plain values (``load_trace_rows``'s columns and order),
    read without importing polars: the TUI paints them before polars is loaded."""
    sql, params, schema = _trace_rows_sql(store, experiment_id, limit=limit)
    kinds, columns = _columns(store, sql, params, schema)
    return Page([n for n, _ in schema], kinds, columns if columns is not None else [[] for _ in schema])


def query_trace_rows(
    store: Store,
    experiment_id: str,
    *,
    limit: int | None = None,
    offset: int = 0,
    since_version: int | None = None,
) -> pl.DataFrame:
    """Trace rows read from SQLite (all, a page, or those changed after ``since_version``)."""
    return _frame(store, *_trace_rows_sql(store, experiment_id, limit=limit, offset=offset,
                                          since_version=since_version))


def _trace_rows_sql(store: Store, experiment_id: str, *, limit: int | None = None, offset: int = 0,
                    since_version: int | None = None) -> tuple[str, list[Any], list[tuple[str, Any]]]:
    """(SQL, parameters, schema) of an experiment's trace rows in their order (every reader's)."""
    select, params, schema = _trace_rows_query(store, experiment_id)
    sql = f"{select} WHERE experiment_id = ?"
    params.append(experiment_id)
    if since_version is not None:
        sql += " AND row_version > ?"
        params.append(since_version)
    sql += " ORDER BY created, root_span_id"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return sql, params, schema


def experiment_version(store: Store, experiment_id: str) -> tuple[int, int]:
    """(rows_version, trace count) of an experiment: what a cached frame must match."""
    rows = store.read(
        "SELECT rows_version, (SELECT count(*) FROM traces WHERE experiment_id = e.id) FROM experiments e"
        " WHERE id = ?",
        (experiment_id,),
    )
    if not rows:
        raise NotFound(f"no experiment with id {experiment_id!r}")
    return rows[0][0], rows[0][1]


_SPAN_ROW_COLUMNS: list[tuple[str, str, str]] = [
    ("id", "id", "str"),
    ("span_id", "span_id", "str"),
    ("root_span_id", "root_span_id", "str"),
    ("parent_id", "json_extract(span_parents, '$[0]')", "str"),
    ("name", "name", "str"),
    ("type", "type", "str"),
    ("created", "created", "str"),
    ("start", "start", "float"),
    ("end", "[end]", "float"),
    ("duration", "[end] - start", "float"),
    ("prompt_tokens", "json_extract(metrics, '$.prompt_tokens')", "int"),
    ("completion_tokens", "json_extract(metrics, '$.completion_tokens')", "int"),
    ("tokens", "json_extract(metrics, '$.tokens')", "int"),
    ("estimated_cost", "json_extract(metrics, '$.estimated_cost')", "float"),
    ("has_error", "error IS NOT NULL", "bool"),
    ("input", "substr(input, 1, 400)", "str"),
    ("output", "substr(output, 1, 400)", "str"),
    ("error", "substr(error, 1, 400)", "str"),
    ("metadata", "metadata", "str"),
]


def load_span_rows(store: Store, experiment_id: str, *, cache: bool = True) -> pl.DataFrame:
    """One row per span of an experiment, grouped by trace in start order.

    Previews are the first 400 characters of each field's JSON text. Big experiments are
    served from the frame cache while their spans are unchanged.
    """
    if cache:
        from evaltui.store import frame_cache

        return frame_cache.span_rows(store, experiment_id)
    return query_span_rows(store, experiment_id)


def query_span_rows(store: Store, experiment_id: str) -> pl.DataFrame:
    """Span rows read from SQLite."""
    fields = experiment_fields(store, experiment_id)
    select = [expr for _, expr, _ in _SPAN_ROW_COLUMNS]
    schema: list[tuple[str, Any]] = [(name, dtype) for name, _, dtype in _SPAN_ROW_COLUMNS]
    params: list[Any] = []
    for score in fields["score"]:
        select.append("json_extract(scores, ?)")
        params.append(_json_path(score))
        schema.append((f"scores.{score}", "float"))
    sql = (
        f"SELECT {', '.join(select)} FROM spans WHERE experiment_id = ?"
        " ORDER BY root_span_id, start"
    )
    params.append(experiment_id)
    return _frame(store, sql, params, schema)


def load_trace_spans(store: Store, experiment_id: str, root_span_id: str) -> pl.DataFrame:
    """Every span of one trace with all fields (JSON fields as JSON text), in start order."""
    schema = [(c, "float" if c in ("start", "end") else "str") for c in SPAN_COLUMNS]
    sql = (
        f"SELECT {', '.join(f'[{c}]' for c in SPAN_COLUMNS)} FROM spans"
        " WHERE experiment_id = ? AND root_span_id = ? ORDER BY start, created, id"
    )
    return _frame(store, sql, (experiment_id, root_span_id), schema)


def load_span(store: Store, span_row_id: str) -> dict[str, Any]:
    """The full span record with this row id, JSON decoded."""
    rows = store.read(f"SELECT {', '.join(f'[{c}]' for c in SPAN_COLUMNS)} FROM spans WHERE id = ?", (span_row_id,))
    if not rows:
        raise NotFound(f"no span with id {span_row_id!r}")
    return span_record(dict(zip(SPAN_COLUMNS, rows[0], strict=True)))


def span_record(row: dict[str, Any]) -> dict[str, Any]:
    """A spans-table row (as a dict) turned back into the span record that was logged."""
    rec = {c: row[c] for c in SPAN_COLUMNS if c not in ("name", "type", "start", "end")}
    for f in JSON_FIELDS:
        rec[f] = loads(rec[f])
    rec["span_parents"] = rec["span_parents"] or []
    rec["span_attributes"] = rec["span_attributes"] or {}
    return rec


def load_experiment_spans(store: Store, experiment_id: str) -> list[dict[str, Any]]:
    """Every span record of an experiment (for export), in trace then start order."""
    sql = (
        f"SELECT {', '.join(f'[{c}]' for c in SPAN_COLUMNS)} FROM spans WHERE experiment_id = ?"
        " ORDER BY root_span_id, start"
    )
    with store.lock:
        rows = store.conn.execute(sql, (experiment_id,)).fetchall()
    return [span_record(dict(zip(SPAN_COLUMNS, r, strict=True))) for r in rows]


# -- projects and experiments -------------------------------------------------------------

_EXPERIMENT_COLUMNS: list[tuple[str, str, str]] = [
    ("id", "e.id", "str"),
    ("project", "p.name", "str"),
    ("project_id", "p.id", "str"),
    ("name", "e.name", "str"),
    ("description", "e.description", "str"),
    ("created", "e.created", "str"),
    ("source", "e.source", "str"),
    ("base_exp_id", "e.base_exp_id", "str"),
    ("dataset_id", "e.dataset_id", "str"),
    ("metadata", "e.metadata", "str"),
    ("params", "e.params", "str"),
    ("repo_info", "e.repo_info", "str"),
    ("tags", "e.tags", "str"),
    ("rows_version", "e.rows_version", "int"),
]
# filled per experiment by experiment_stats (one scan of its trace rows, remembered per version)
_STAT_COLUMNS: list[tuple[str, str]] = [
    ("traces", "int"), ("errors", "int"), ("scorer_errors", "int"), ("reviewed", "int"),
]


def load_experiments(store: Store, project: str | None = None) -> pl.DataFrame:
    """Projects' experiments, newest first, with trace and error counts and score means.

    ``score_means`` is a JSON object {score name: mean over traces} (names differ per experiment).
    """
    where, params = ("WHERE p.name = ?", [project]) if project else ("", [])
    sql = (
        f"SELECT {', '.join(expr for _, expr, _ in _EXPERIMENT_COLUMNS)} FROM experiments e"
        f" JOIN projects p ON p.id = e.project_id {where} ORDER BY p.name, e.created DESC, e.name DESC"
    )
    schema = [(name, dtype) for name, _, dtype in _EXPERIMENT_COLUMNS]
    frame = _frame(store, sql, params, schema)
    ids, versions = frame["id"].to_list(), frame["rows_version"].to_list()
    stats = experiment_stats(store, dict(zip(ids, versions, strict=True)))
    columns = [pl.Series(name, [stats[i][name] for i in ids], dtype=polars_dtype(kind)) for name, kind in _STAT_COLUMNS]
    columns.append(pl.Series("score_means", [json.dumps(stats[i]["score_means"]) for i in ids], dtype=pl.Utf8))
    return frame.drop("rows_version").with_columns(columns)


# (database identity, experiment id) -> (rows_version, stats): every write to an experiment's
# trace rows bumps its rows_version, so a remembered figure is current while the version is.
_STATS: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}


def experiment_stats(store: Store, versions: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per experiment (id -> rows_version): trace, error, scorer-error and reviewed counts and
    each score's mean, from one scan of its trace rows; unchanged experiments are not re-read
    (the experiment list, Analyze's trends and the baseline resolution all ask again)."""
    from evaltui.store.frame_cache import store_identity

    ident = store_identity(store)
    out: dict[str, dict[str, Any]] = {}
    for eid, version in versions.items():
        hit = _STATS.get((ident, eid))
        if hit is not None and hit[0] == version:
            out[eid] = hit[1]
            continue
        names = experiment_fields(store, eid)["score"]
        stats = _stats_from_cache(store, eid, version, names)
        if stats is not None:
            _STATS[(ident, eid)] = (version, stats)
            out[eid] = stats
            continue
        avgs = "".join(", avg(json_extract(scores, ?))" for _ in names)
        row = store.read(
            "SELECT count(*), coalesce(sum(has_error != 0), 0), coalesce(sum(scorer_errors > 0), 0),"
            f" coalesce(sum(review_status = 'reviewed'), 0){avgs} FROM traces WHERE experiment_id = ?",
            [*map(_json_path, names), eid],
        )[0]
        stats = {"traces": row[0], "errors": row[1], "scorer_errors": row[2], "reviewed": row[3],
                 "score_means": dict(zip(names, row[4:], strict=True))}
        _STATS[(ident, eid)] = (version, stats)
        out[eid] = stats
    return out


def _stats_from_cache(store: Store, eid: str, version: int, names: list[str]) -> dict[str, Any] | None:
    """experiment_stats from a current frame-cache snapshot (columns read, no SQL scan)."""
    from evaltui.store.frame_cache import current_trace_rows

    lazy = current_trace_rows(store, eid, version)
    if lazy is None:
        return None
    try:
        cols = set(lazy.collect_schema().names())
        if not {"has_error", "scorer_errors", "review_status"} <= cols or any(f"scores.{n}" not in cols for n in names):
            return None
        row = lazy.select(
            pl.len().alias("traces"),
            (pl.col("has_error").cast(pl.Int64) != 0).sum().alias("errors"),
            (pl.col("scorer_errors") > 0).sum().alias("scorer_errors"),
            (pl.col("review_status") == "reviewed").sum().alias("reviewed"),
            *(pl.col(f"scores.{n}").mean().alias(f"scores.{n}") for n in names),
        ).collect().row(0, named=True)
    except (OSError, pl.exceptions.PolarsError):
        return None
    return {"traces": row["traces"], "errors": row["errors"], "scorer_errors": row["scorer_errors"],
            "reviewed": row["reviewed"], "score_means": {n: row[f"scores.{n}"] for n in names}}


def score_means(store: Store, experiment_ids: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per experiment, each score's mean over its traces (non-null values)."""
    if not experiment_ids:
        return {}
    marks = ", ".join("?" for _ in experiment_ids)
    versions = dict(store.read(f"SELECT id, rows_version FROM experiments WHERE id IN ({marks})", list(experiment_ids)))
    stats = experiment_stats(store, {eid: versions.get(eid, -1) for eid in experiment_ids})
    return {eid: stats[eid]["score_means"] for eid in experiment_ids}


def load_projects(store: Store) -> pl.DataFrame:
    sql = (
        "SELECT p.id, p.name, p.created, p.settings,"
        " (SELECT count(*) FROM experiments e WHERE e.project_id = p.id)"
        " FROM projects p ORDER BY p.name"
    )
    schema = [("id", "str"), ("name", "str"), ("created", "str"), ("settings", "str"), ("experiments", "int")]
    return _frame(store, sql, [], schema)


def find_experiment(store: Store, ref: str) -> dict[str, Any]:
    """Resolve ``project/experiment`` or an experiment id to the experiment's row."""
    cols = "e.id, p.name, p.id, e.name, e.created, e.base_exp_id, e.source, e.metadata"
    rows = store.read(f"SELECT {cols} FROM experiments e JOIN projects p ON p.id = e.project_id WHERE e.id = ?", (ref,))
    if not rows and "/" in ref:
        project, _, name = ref.partition("/")
        rows = store.read(
            f"SELECT {cols} FROM experiments e JOIN projects p ON p.id = e.project_id WHERE p.name = ? AND e.name = ?",
            (project, name),
        )
    if not rows:
        hint = "" if "/" in ref else " (name experiments as project/experiment)"
        raise NotFound(f"no experiment {ref!r} in {store.path}{hint}; `evaltui ls` lists them")
    r = rows[0]
    return {
        "id": r[0], "project": r[1], "project_id": r[2], "name": r[3], "created": r[4],
        "base_exp_id": r[5], "source": r[6], "metadata": loads(r[7]),
    }
