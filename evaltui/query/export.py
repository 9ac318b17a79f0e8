"""Exporting an experiment (``evaltui export``) and rendering summaries for CI (``evaltui summary``).

Rows, three shapes:

- **trace rows** (default): one row per trace, the table's visible columns: ``input``,
  ``output``, ``expected`` (full values from the root span, not the table's previews),
  ``scores.*`` (each score's mean over the trace's spans), ``metrics.*`` (the trace roll-ups:
  duration, tokens, cost, calls, errors, ...), ``metadata.*`` (the root's metadata),
  ``tags``, the review fields, ``error`` (the root's error, else the first failing span's
  message), and the ids. Oldest first, as in the TUI.
- **span rows** (``rows="spans"``): one row per span: the same fields of the span itself,
  with ``parent_id``, ``name`` and ``type``.
- **all fields** (``all_fields=True``): span records exactly as the store holds them
  (:func:`evaltui.store.load_experiment_spans` order: trace, then start). Their JSONL
  re-imports losslessly with the Braintrust importer.

JSON and JSONL keep nested values (``{"scores": {...}, "metrics": {...}}``); CSV and Parquet
flatten them into ``scores.X`` / ``metrics.X`` / ``metadata.X`` columns, strings as they are
and other JSON values as compact JSON text. With ``all_fields`` every JSON field of a flat
row is the stored JSON text (a string field shows its quotes), so nothing is ambiguous.

A filter (the filter language, compiled to SQL by :func:`evaltui.query.filter.to_sql`, so
it selects what ``count_matching`` counts) is checked before anything is written. Rows are
read with one SQL statement per export (one consistent snapshot, even while an import
writes) and streamed in pages of :data:`PAGE_ROWS`: CSV, JSON and JSONL use constant memory
whatever the experiment's size. Parquet is built page by page as Arrow columns and written
at the end (polars writes it; no pyarrow).

Why SQL here and not in ``evaltui.store``: the store's readers return whole polars frames
(and previews, not full values); an export streams a cursor, with the filter's WHERE clause.
The statements only read, from fixed text plus ``?`` parameters.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
import polars as pl

from evaltui.query.filter import register_sql_functions, sql_schema, to_sql
from evaltui.store import Store, experiment_fields
from evaltui.store.records import SPAN_COLUMNS

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "PAGE_ROWS",
    "ExportPlan",
    "Gate",
    "format_for_path",
    "parse_gate",
    "plan_export",
    "plan_view_export",
    "regression_failures",
    "summary_markdown",
    "write_atomically",
    "write_export",
]

FORMATS = ("csv", "json", "jsonl", "parquet")
EXTENSIONS = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
ROW_SHAPES = ("traces", "spans")
PAGE_ROWS = 500  # rows fetched from SQLite and written per step

# Trace roll-ups exported as metrics.<name>: (column of the traces table, polars dtype).
TRACE_METRICS: dict[str, tuple[str, Any]] = {
    "start": ("start", pl.Float64),
    "end": ("[end]", pl.Float64),
    "duration": ("duration", pl.Float64),
    "llm_duration": ("llm_duration", pl.Float64),
    "ttft": ("ttft", pl.Float64),
    "prompt_tokens": ("prompt_tokens", pl.Int64),
    "completion_tokens": ("completion_tokens", pl.Int64),
    "tokens": ("tokens", pl.Int64),
    "prompt_cached_tokens": ("prompt_cached_tokens", pl.Int64),
    "completion_reasoning_tokens": ("completion_reasoning_tokens", pl.Int64),
    "estimated_cost": ("estimated_cost", pl.Float64),
    "span_count": ("span_count", pl.Int64),
    "llm_calls": ("llm_calls", pl.Int64),
    "tool_calls": ("tool_calls", pl.Int64),
    "errors": ("errors", pl.Int64),
    "scorer_errors": ("scorer_errors", pl.Int64),
}
_REVIEW = ("review_status", "assignee", "reviewed_by")
# fields of a span record that the store keeps as JSON text (SPAN_COLUMNS minus the rest)
_RECORD_JSON = frozenset(
    ("span_parents", "span_attributes", "input", "output", "expected", "error", "scores", "metadata",
     "metrics", "tags", "origin")
)
RECORD_FIELDS = tuple(c for c in SPAN_COLUMNS if c not in ("name", "type", "start", "end"))


def format_for_path(path: str | os.PathLike[str]) -> str | None:
    """The export format a file name asks for (``.csv``, ``.json``, ``.jsonl``/``.ndjson``,
    ``.parquet``/``.pq``), or None."""
    return EXTENSIONS.get(Path(path).suffix.lower())


# -- what to export ----------------------------------------------------------------------------


@dataclass
class ExportPlan:
    """A checked export: the SQL to run and the columns of the rows it yields."""

    experiment_id: str
    rows: str  # "traces" | "spans"
    all_fields: bool
    sql: str
    params: list[Any]
    columns: list[str]  # flat column names (CSV header, Parquet schema)
    dtypes: dict[str, Any]  # flat column -> polars dtype (Parquet)
    nested: Callable[[tuple], dict[str, Any]]  # a SQL row -> JSON object (JSON fields as fragments)
    flat: Callable[[tuple], list[Any]]  # a SQL row -> values in ``columns`` order
    scores: list[str] = field(default_factory=list)


def _filter_sql(store: Store, experiment_id: str, text: str | None, row_type: str) -> tuple[str, list[Any]]:
    """The filter's WHERE clause (raises FilterError before anything runs); "1" when blank."""
    if not text or not text.strip():
        return "1", []
    return to_sql(text, table=row_type, schema=sql_schema(store, experiment_id, row_type))


def plan_export(
    store: Store,
    experiment_id: str,
    *,
    rows: str = "traces",
    all_fields: bool = False,
    filter_text: str | None = None,
) -> ExportPlan:
    """Check the filter and prepare the export of one experiment (see the module docstring).

    ``rows`` says what the filter selects (and, without ``all_fields``, what a row is):
    ``traces`` or ``spans``. With ``all_fields`` and ``rows="traces"`` the spans of the
    matching traces are exported. Raises FilterError for a bad filter.
    """
    if rows not in ROW_SHAPES:
        raise ValueError(f"rows must be one of {ROW_SHAPES}, not {rows!r}")
    where, params = _filter_sql(store, experiment_id, filter_text, rows)
    fields = experiment_fields(store, experiment_id)
    if all_fields:
        return _plan_records(experiment_id, rows, where, params)
    if rows == "spans":
        return _plan_span_rows(experiment_id, where, params, fields)
    return _plan_trace_rows(store, experiment_id, where, params, fields)


VIEW_TABLE = "evaltui_export_view"  # a TEMP table: the rows of a view, in the view's order


def plan_view_export(
    store: Store,
    experiment_id: str,
    ids: Sequence[str],
    *,
    rows: str = "traces",
    columns: Sequence[str] | None = None,
    all_fields: bool = False,
) -> ExportPlan:
    """The export of exactly the rows a view shows (the TUI's export command).

    ``ids`` are the rows' ids (``traces.id`` or ``spans.id``) in the view's order: whatever
    filter, built-in view, search or sort made them, the file has those rows in that order.
    They are staged in a TEMP table of this connection (no write to the database file), so
    rows still stream from one statement. ``columns`` are the table's visible column keys
    (``input``, ``scores.acc``, ``duration``, ``metadata.category``...); the file keeps those,
    in that order. With ``all_fields`` every span field of those rows (the spans of those
    traces) is written, as ``evaltui export --all-fields`` does.
    """
    if rows not in ROW_SHAPES:
        raise ValueError(f"rows must be one of {ROW_SHAPES}, not {rows!r}")
    with store.lock:
        conn = store.conn
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {VIEW_TABLE} (id TEXT PRIMARY KEY, pos INTEGER) WITHOUT ROWID")
        conn.execute(f"DELETE FROM temp.{VIEW_TABLE}")
        conn.executemany(
            f"INSERT OR IGNORE INTO temp.{VIEW_TABLE} (id, pos) VALUES (?, ?)",
            ((i, n) for n, i in enumerate(ids)),
        )
    table = "traces" if rows == "traces" else "spans"
    where = f"{table}.id IN (SELECT id FROM temp.{VIEW_TABLE})"
    fields = experiment_fields(store, experiment_id)
    if all_fields:
        plan = _plan_records(experiment_id, rows, where, [])
        # trace order of the view, then each trace's spans by start
        key = "spans.root_span_id" if rows == "traces" else "spans.id"
        if rows == "traces":
            order = (f"(SELECT v.pos FROM temp.{VIEW_TABLE} v JOIN traces t ON t.id = v.id"
                     f" WHERE t.experiment_id = spans.experiment_id AND t.root_span_id = {key}),"
                     " spans.start, spans.created, spans.id")
        else:
            order = f"(SELECT v.pos FROM temp.{VIEW_TABLE} v WHERE v.id = spans.id)"
        plan.sql = plan.sql[: plan.sql.rindex(" ORDER BY ")] + " ORDER BY " + order
        return plan
    if rows == "spans":
        plan = _plan_span_rows(experiment_id, where, [], fields)
    else:
        plan = _plan_trace_rows(store, experiment_id, where, [], fields)
    plan.sql = (plan.sql[: plan.sql.rindex(" ORDER BY ")]
                + f" ORDER BY (SELECT v.pos FROM temp.{VIEW_TABLE} v WHERE v.id = {table}.id)")
    if columns is not None:
        _project(plan, columns)
    return plan


def _project(plan: ExportPlan, keys: Sequence[str]) -> None:
    """Keep only the columns ``keys`` name (table keys: ``duration`` is ``metrics.duration``)."""
    known = set(plan.columns)
    picked: list[str] = []
    for key in keys:
        name = key if key in known else f"metrics.{key}" if f"metrics.{key}" in known else None
        if name is None and plan.rows == "spans" and key.startswith("metadata."):
            name = "metadata" if "metadata" in known else None
        if name is not None and name not in picked:
            picked.append(name)
    if not picked:
        raise ValueError("none of the visible columns can be exported; show some columns first")
    index = [plan.columns.index(c) for c in picked]
    flat, nested = plan.flat, plan.nested
    groups: dict[str, list[str]] = {}  # scores / metrics / metadata -> picked keys, in order
    top: list[str] = []
    for c in picked:
        head, _, rest = c.partition(".")
        if rest and head in ("scores", "metrics", "metadata"):
            if head not in groups:
                top.append(head)
            groups.setdefault(head, []).append(rest)
        else:
            top.append(c)

    # trace rows: scores and metrics are dicts, metadata is the root's JSON text (r[5]);
    # span rows: metrics (r[5]) and metadata (r[6]) are JSON text
    raw_json = {"metadata": 5} if plan.rows == "traces" else {"metrics": 5, "metadata": 6}

    def flat_view(r: tuple) -> list[Any]:
        values = flat(r)
        return [values[i] for i in index]

    def nested_view(r: tuple) -> dict[str, Any]:
        full = nested(r)
        out: dict[str, Any] = {}
        for k in top:
            if k not in groups:
                out[k] = full.get(k)
                continue
            at = raw_json.get(k)  # fields the row holds as JSON text, not as a dict
            src = (orjson.loads(r[at]) if r[at] else {}) if at is not None else full.get(k)
            src = src if isinstance(src, dict) else {}
            out[k] = {sub: src.get(sub) for sub in groups[k]}
        return out

    plan.columns = picked
    plan.dtypes = {c: plan.dtypes[c] for c in picked}
    plan.flat = flat_view
    plan.nested = nested_view
    plan.scores = [c.split(".", 1)[1] for c in picked if c.startswith("scores.")]


def _fragment(text: str | None) -> Any:
    """Stored JSON text spliced into the output as it is (no decode/encode round trip)."""
    return None if text is None else orjson.Fragment(text)


def _text_cell(text: str | None) -> str | None:
    """A JSON field for a flat row: a JSON string as its text, anything else as JSON text."""
    if text is None:
        return None
    if text.startswith('"'):
        return orjson.loads(text)
    return None if text == "null" else text


def _value_cell(value: Any) -> Any:
    """A decoded JSON value for a flat row: scalars as they are, objects/arrays as JSON text."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def _plan_trace_rows(
    store: Store, experiment_id: str, where: str, params: list[Any], fields: dict[str, list[str]]
) -> ExportPlan:
    scores = fields.get("score", [])
    meta_keys = fields.get("metadata", [])
    metric_names = _present_metrics(store, experiment_id)
    metric_cols = ", ".join(f"traces.{TRACE_METRICS[m][0]}" for m in metric_names)
    sql = (
        "SELECT root_span.input, root_span.output, root_span.expected,"
        " CASE WHEN root_span.error IS NOT NULL THEN root_span.error"
        "      WHEN traces.error_preview IS NOT NULL THEN json_quote(traces.error_preview) END,"
        " traces.scores, traces.metadata, traces.tags, traces.review_status, traces.assignee,"
        " traces.reviewed_by, traces.id, traces.root_span_id, traces.name, traces.created,"
        f" traces.dataset_record_id{', ' if metric_cols else ''}{metric_cols}"
        " FROM traces LEFT JOIN spans AS root_span ON root_span.id = traces.id"
        f" WHERE traces.experiment_id = ? AND ({where})"
        " ORDER BY traces.created, traces.root_span_id"
    )
    n_fixed = 15

    def nested(r: tuple) -> dict[str, Any]:
        trace_scores = orjson.loads(r[4]) if r[4] else {}
        return {
            "input": _fragment(r[0]),
            "output": _fragment(r[1]),
            "expected": _fragment(r[2]),
            "scores": {s: trace_scores.get(s) for s in scores},
            "metrics": dict(zip(metric_names, r[n_fixed:], strict=True)),
            "metadata": _fragment(r[5]) if r[5] else {},
            "tags": _fragment(r[6]) if r[6] else [],
            "review_status": r[7],
            "assignee": r[8],
            "reviewed_by": r[9],
            "error": _fragment(r[3]),
            "id": r[10],
            "root_span_id": r[11],
            "name": r[12],
            "created": r[13],
            "dataset_record_id": r[14],
        }

    def flat(r: tuple) -> list[Any]:
        trace_scores = orjson.loads(r[4]) if r[4] else {}
        metadata = orjson.loads(r[5]) if r[5] else {}
        return [
            _text_cell(r[0]),
            _text_cell(r[1]),
            _text_cell(r[2]),
            *(trace_scores.get(s) for s in scores),
            *r[n_fixed:],
            *(_value_cell(metadata.get(k)) for k in meta_keys),
            orjson.loads(r[6]) if r[6] else None,
            r[7],
            r[8],
            r[9],
            _text_cell(r[3]),
            r[10],
            r[11],
            r[12],
            r[13],
            r[14],
        ]

    columns = [
        "input", "output", "expected",
        *(f"scores.{s}" for s in scores),
        *(f"metrics.{m}" for m in metric_names),
        *(f"metadata.{k}" for k in meta_keys),
        "tags", *_REVIEW, "error", "id", "root_span_id", "name", "created", "dataset_record_id",
    ]
    dtypes: dict[str, Any] = dict.fromkeys(columns, pl.String)
    dtypes.update({f"scores.{s}": pl.Float64 for s in scores})
    dtypes.update({f"metrics.{m}": TRACE_METRICS[m][1] for m in metric_names})
    dtypes.update({f"metadata.{k}": _metadata_dtype(store, experiment_id, k) for k in meta_keys})
    dtypes["tags"] = pl.List(pl.String)
    return ExportPlan(experiment_id, "traces", False, sql, [experiment_id, *params], columns, dtypes, nested, flat,
                      scores)


def _present_metrics(store: Store, experiment_id: str) -> list[str]:
    """The trace metrics with a value in some trace of the experiment (counted by SQLite)."""
    counts = ", ".join(f"count({col})" for col, _ in TRACE_METRICS.values())
    row = store.read(f"SELECT {counts} FROM traces WHERE experiment_id = ?", (experiment_id,))[0]
    return [m for m, c in zip(TRACE_METRICS, row, strict=True) if c]


def _metadata_dtype(store: Store, experiment_id: str, key: str) -> Any:
    """The Parquet type of a root-metadata key: one type when every value agrees, else JSON text."""
    path = "$." + orjson.dumps(key).decode()
    kinds = {
        r[0]
        for r in store.read(
            "SELECT DISTINCT json_type(metadata, ?) FROM traces WHERE experiment_id = ? AND metadata IS NOT NULL",
            (path, experiment_id),
        )
    } - {None, "null"}
    if kinds <= {"integer"} and kinds:
        return pl.Int64
    if kinds <= {"integer", "real"} and kinds:
        return pl.Float64
    if kinds <= {"true", "false"} and kinds:
        return pl.Boolean
    return pl.String


def _plan_span_rows(experiment_id: str, where: str, params: list[Any], fields: dict[str, list[str]]) -> ExportPlan:
    scores = fields.get("score", [])
    metrics = fields.get("metric", [])
    sql = (
        "SELECT spans.input, spans.output, spans.expected, spans.error, spans.scores, spans.metrics,"
        " spans.metadata, spans.tags, spans.id, spans.span_id, spans.root_span_id,"
        " json_extract(spans.span_parents, '$[0]'), spans.name, spans.type, spans.created,"
        " spans.dataset_record_id"
        f" FROM spans WHERE spans.experiment_id = ? AND ({where})"
        " ORDER BY spans.root_span_id, spans.start, spans.created, spans.id"
    )

    def nested(r: tuple) -> dict[str, Any]:
        span_scores = orjson.loads(r[4]) if r[4] else {}
        return {
            "input": _fragment(r[0]),
            "output": _fragment(r[1]),
            "expected": _fragment(r[2]),
            "scores": {s: span_scores[s] for s in scores if s in span_scores},
            "metrics": _fragment(r[5]) if r[5] else {},
            "metadata": _fragment(r[6]) if r[6] else {},
            "tags": _fragment(r[7]) if r[7] else [],
            "error": _fragment(r[3]),
            "id": r[8],
            "span_id": r[9],
            "root_span_id": r[10],
            "parent_id": r[11],
            "name": r[12],
            "type": r[13],
            "created": r[14],
            "dataset_record_id": r[15],
        }

    def flat(r: tuple) -> list[Any]:
        span_scores = orjson.loads(r[4]) if r[4] else {}
        span_metrics = orjson.loads(r[5]) if r[5] else {}
        return [
            _text_cell(r[0]),
            _text_cell(r[1]),
            _text_cell(r[2]),
            *(span_scores.get(s) for s in scores),
            *(_number(span_metrics.get(m)) for m in metrics),
            r[6],
            orjson.loads(r[7]) if r[7] else None,
            _text_cell(r[3]),
            *r[8:],
        ]

    columns = [
        "input", "output", "expected",
        *(f"scores.{s}" for s in scores),
        *(f"metrics.{m}" for m in metrics),
        "metadata", "tags", "error", "id", "span_id", "root_span_id", "parent_id", "name", "type", "created",
        "dataset_record_id",
    ]
    dtypes: dict[str, Any] = dict.fromkeys(columns, pl.String)
    dtypes.update({f"scores.{s}": pl.Float64 for s in scores})
    dtypes.update({f"metrics.{m}": pl.Float64 for m in metrics})
    dtypes["tags"] = pl.List(pl.String)
    return ExportPlan(experiment_id, "spans", False, sql, [experiment_id, *params], columns, dtypes, nested, flat,
                      scores)


def _number(v: Any) -> int | float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _plan_records(experiment_id: str, rows: str, where: str, params: list[Any]) -> ExportPlan:
    cols = ", ".join(f"spans.[{c}]" for c in RECORD_FIELDS)
    if rows == "traces":
        # the spans of the matching traces (every span when there is no filter, orphans too)
        select = f"SELECT {cols} FROM spans WHERE spans.experiment_id = ?"
        sql_params: list[Any] = [experiment_id]
        if where != "1":
            select += (
                " AND spans.root_span_id IN (SELECT traces.root_span_id FROM traces"
                f" WHERE traces.experiment_id = ? AND ({where}))"
            )
            sql_params += [experiment_id, *params]
    else:
        select = f"SELECT {cols} FROM spans WHERE spans.experiment_id = ? AND ({where})"
        sql_params = [experiment_id, *params]
    # load_experiment_spans' order (trace, then start), ties broken for a stable file
    sql = select + " ORDER BY spans.root_span_id, spans.start, spans.created, spans.id"
    json_at = [i for i, c in enumerate(RECORD_FIELDS) if c in _RECORD_JSON]
    parents_at = RECORD_FIELDS.index("span_parents")
    attrs_at = RECORD_FIELDS.index("span_attributes")

    def nested(r: tuple) -> dict[str, Any]:
        # exactly evaltui.store.readers.span_record, with the JSON spliced in undecoded
        rec = dict(zip(RECORD_FIELDS, r, strict=True))
        for i in json_at:
            rec[RECORD_FIELDS[i]] = _fragment(r[i])
        if r[parents_at] is None:
            rec["span_parents"] = []
        if r[attrs_at] is None:
            rec["span_attributes"] = {}
        return rec

    def flat(r: tuple) -> list[Any]:
        out = list(r)
        if out[parents_at] is None:
            out[parents_at] = "[]"
        if out[attrs_at] is None:
            out[attrs_at] = "{}"
        return out

    columns = list(RECORD_FIELDS)
    return ExportPlan(experiment_id, rows, True, sql, sql_params, columns, dict.fromkeys(columns, pl.String),
                      nested, flat)


# -- writing -------------------------------------------------------------------------------------


def iter_pages(store: Store, plan: ExportPlan, page_rows: int = PAGE_ROWS) -> Iterator[list[tuple]]:
    """The plan's SQL rows, ``page_rows`` at a time, from one statement (one snapshot).

    The store's lock is held while the statement runs; closing the iterator early (a
    reader that went away) finalizes the statement.
    """
    with store.lock:
        register_sql_functions(store.conn)
        cursor = store.conn.execute(plan.sql, plan.params)
        try:
            while page := cursor.fetchmany(page_rows):
                yield page
        finally:
            cursor.close()


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return orjson.dumps(v).decode()
    if isinstance(v, float):
        return repr(v)
    return v


def _progress_pages(
    store: Store, plan: ExportPlan, page_rows: int, on_page: Callable[[int], None] | None
) -> Iterator[list[tuple]]:
    """``iter_pages``, calling ``on_page(rows so far)`` after each page (it may raise to stop)."""
    done = 0
    for page in iter_pages(store, plan, page_rows):
        yield page
        done += len(page)
        if on_page is not None:
            on_page(done)


def write_export(
    store: Store, plan: ExportPlan, out: IO[bytes], fmt: str, *, page_rows: int = PAGE_ROWS,
    on_page: Callable[[int], None] | None = None,
) -> int:
    """Write the plan's rows to the binary stream ``out`` in ``fmt``; returns the row count.

    ``on_page(rows written so far)`` is called after each page (progress bars); an exception
    it raises stops the export (with :func:`write_atomically`, nothing is left behind).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    if on_page is None:
        return _write(store, plan, out, fmt, page_rows, iter_pages)
    return _write(store, plan, out, fmt, page_rows, lambda st, p, n: _progress_pages(st, p, n, on_page))


def _write(store: Store, plan: ExportPlan, out: IO[bytes], fmt: str, page_rows: int,
           pages: Callable[[Store, ExportPlan, int], Iterator[list[tuple]]]) -> int:
    if fmt == "parquet":
        return _write_parquet(store, plan, out, page_rows, pages)
    n = 0
    if fmt == "csv":
        import csv

        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(plan.columns)
        for page in pages(store, plan, page_rows):
            writer.writerows([_csv_cell(v) for v in plan.flat(r)] for r in page)
            out.write(buf.getvalue().encode("utf-8", "surrogatepass"))
            buf.seek(0)
            buf.truncate()
            n += len(page)
        out.write(buf.getvalue().encode())
        return n
    dumps, nested = orjson.dumps, plan.nested
    if fmt == "jsonl":
        for page in pages(store, plan, page_rows):
            out.write(b"".join(dumps(nested(r)) + b"\n" for r in page))
            n += len(page)
        return n
    # json: one array, a row per line, streamed
    out.write(b"[")
    for page in pages(store, plan, page_rows):
        sep = b"\n" if n == 0 else b",\n"
        out.write(sep + b",\n".join(dumps(nested(r)) for r in page))
        n += len(page)
    out.write(b"\n]\n" if n else b"]\n")
    return n


def _write_parquet(store: Store, plan: ExportPlan, out: IO[bytes], page_rows: int,
                   pages: Callable[[Store, ExportPlan, int], Iterator[list[tuple]]] = iter_pages) -> int:
    schema = {c: plan.dtypes[c] for c in plan.columns}
    frames = []
    for page in pages(store, plan, page_rows):
        cols: list[list[Any]] = [[] for _ in plan.columns]
        for r in page:
            for i, v in enumerate(plan.flat(r)):
                cols[i].append(v)
        frames.append(pl.DataFrame(
            [_parquet_series(name, values, schema[name]) for name, values in zip(plan.columns, cols, strict=True)]
        ))
    frame = pl.concat(frames, rechunk=True) if frames else pl.DataFrame(schema=schema)
    frame.write_parquet(out)
    return frame.height


def _parquet_series(name: str, values: list[Any], dtype: Any) -> pl.Series:
    if dtype == pl.String:
        values = [v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values]
    elif dtype in (pl.Int64, pl.Float64):
        values = [None if isinstance(v, bool) else v for v in values]
    return pl.Series(name, values, dtype=dtype, strict=False)


def write_atomically(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Any:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it to ``path``.

    A failed or interrupted export leaves the previous file (or no file) in place, never
    half a file. The new file gets the usual permissions (0666 less the umask).
    """
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:  # name the file asked for, not the temporary one
        raise type(e)(e.errno, e.strerror, str(target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            result = write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return result


# -- summaries for CI (evaltui summary) ----------------------------------------------------------

EPSILON = 1e-9  # as evaltui.query.compare: closer to zero than this is float noise, not a drop


@dataclass(frozen=True)
class Gate:
    """One ``--fail-on-regression`` rule: a score (None: any score) may drop at most ``min_drop``."""

    score: str | None
    min_drop: float = 0.0
    spec: str = ""


_DROP = re.compile(r"(?P<num>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?P<unit>pp|%)?")


def parse_gate(spec: str) -> Gate:
    """``*`` or empty (any score), ``SCORE``, or ``SCORE:MIN_DROP``.

    MIN_DROP is in score units (0.05) or, with ``pp`` or ``%``, in percentage points (5pp).
    Raises ValueError for a bad MIN_DROP.
    """
    name, sep, drop = spec.rpartition(":")
    if not sep:
        name, drop = spec, ""
    elif not _DROP.fullmatch(drop.strip()):
        if re.fullmatch(r"\s*-.*", drop):
            raise ValueError(f"--fail-on-regression {spec!r}: MIN_DROP must not be negative")
        # a colon inside a score name, no MIN_DROP
        name, drop = spec, ""
    min_drop = 0.0
    if drop.strip():
        m = _DROP.fullmatch(drop.strip())
        assert m is not None
        min_drop = float(m["num"]) / (100 if m["unit"] else 1)
    name = name.strip()
    return Gate(None if name in ("", "*") else name, min_drop, spec)


def regression_failures(summary: dict[str, Any], gates: list[Gate]) -> list[dict[str, Any]]:
    """The scores that broke a gate: a mean that dropped more than its allowed drop.

    Only meaningful with a baseline (``summary["base_experiment"]``); without one, nothing
    fails. A named score that the base has but this experiment has no values for fails (a
    score that vanished is not a pass). Raises ValueError for a score neither side has.
    """
    scores = summary.get("scores") or {}
    for g in gates:
        if g.score is not None and g.score not in scores:
            known = ", ".join(scores) or "none"
            raise ValueError(f"--fail-on-regression: no score {g.score!r} in either experiment (scores: {known})")
    if summary.get("base_experiment") is None:
        return []
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, float]] = set()
    for g in gates:
        for name in [g.score] if g.score is not None else list(scores):
            e = scores[name]
            if (name, g.min_drop) in seen:
                continue
            mean, base_mean = e.get("mean"), e.get("base_mean")
            if mean is None:
                if g.score is not None and base_mean is not None:
                    seen.add((name, g.min_drop))
                    out.append({"score": name, "mean": None, "base_mean": base_mean, "drop": None,
                                "min_drop": g.min_drop, "reason": "no values in this experiment"})
                continue
            if base_mean is None:
                continue
            drop = base_mean - mean
            if drop > g.min_drop + EPSILON:
                seen.add((name, g.min_drop))
                out.append({"score": name, "mean": mean, "base_mean": base_mean, "drop": drop,
                            "min_drop": g.min_drop, "reason": "dropped"})
    return out


def failure_text(f: dict[str, Any]) -> str:
    """One line for a gate failure of :func:`regression_failures`."""
    if f["reason"] != "dropped":
        return f"{f['score']}: {f['reason']} (base {pct(f['base_mean'])})"
    return (
        f"{f['score']}: {pct(f['mean'])} vs {pct(f['base_mean'])} in the base,"
        f" a drop of {pp(f['drop'])} (allowed: {pp(f['min_drop'])})"
    )


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.2f}%"


def pp(v: float | None, signed: bool = False) -> str:
    return "-" if v is None else f"{v * 100:{'+' if signed else ''}.2f}pp"


def format_value(name: str, value: float | None, *, signed: bool = False, is_score: bool = False) -> str:
    """A summary number as the text summary shows it: scores and the error rate in percent
    (diffs in points), durations in seconds, cost in dollars, tokens as counts."""
    if value is None:
        return "–"
    if is_score or name == "errors":
        return pp(value, signed) if signed else pct(value)
    sign = "+" if signed else ""
    if name == "duration":
        return f"{value:{sign}.3f}s"
    if name == "estimated_cost":
        mark = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
        return f"{mark}${abs(value):.4f}"
    return f"{value:{sign},.1f}" if abs(value) % 1 else f"{value:{sign},.0f}"


# what can start emphasis, code, links, HTML or a table cell; "(" only means something after "]"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def md(text: Any) -> str:
    """Text from the database made inert in Markdown (and in a table cell)."""
    s = " ".join(str(text).split())  # no newlines or tabs inside a cell
    s = "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)
    return _MD_SPECIAL.sub(r"\\\1", s)


def _ref(exp: dict[str, Any] | None) -> str:
    return f"{exp['project']}/{exp['name']}" if exp else "?"


def summary_markdown(
    summary: dict[str, Any],
    failures: list[dict[str, Any]] | None = None,
    gates: list[Gate] | None = None,
) -> str:
    """:func:`evaltui.query.compare.summarize`'s result as Markdown fit for a pull-request comment.

    A table of scores and one of metrics (lower is better): mean, base mean, diff,
    improvements (↑) and regressions (↓) over the matched rows; then the regression check
    when ``gates`` were given.
    """
    exp, base = summary.get("experiment"), summary.get("base_experiment")
    compared = base is not None
    title = f"### evaltui summary: {md(_ref(exp))}"
    if compared:
        title += f" vs {md(_ref(base))}"
    lines = [title, ""]
    traces = summary["traces"]
    if compared:
        lines.append(
            f"{traces} traces, compared with **{md(_ref(base))}** ({summary['base_traces']} traces):"
            f" **{summary['matched']}** matched cases ({summary['unmatched']} only here,"
            f" {summary['base_unmatched']} only in the base)."
        )
    else:
        lines.append(f"{traces} traces. No baseline to compare with: this is the experiment's own summary.")
    for title_, entries, is_score in (
        ("Score", summary.get("scores") or {}, True),
        ("Metric (lower is better)", summary.get("metrics") or {}, False),
    ):
        if not entries:
            continue
        lines.append("")
        if compared:
            lines.append(f"| {title_} | Mean | Base | Diff | ↑ Improvements | ↓ Regressions |")
            lines.append("|:--|--:|--:|--:|--:|--:|")
        else:
            lines.append(f"| {title_} | Mean |")
            lines.append("|:--|--:|")
        for name, e in entries.items():
            cells = [md(name), format_value(name, e["mean"], is_score=is_score)]
            if compared:
                cells += [
                    format_value(name, e["base_mean"], is_score=is_score),
                    format_value(name, e["diff"], signed=True, is_score=is_score),
                    "–" if e["improvements"] is None else str(e["improvements"]),
                    "–" if e["regressions"] is None else str(e["regressions"]),
                ]
            lines.append("| " + " | ".join(cells) + " |")
    if gates:
        lines.append("")
        if not compared:
            lines.append("Regression check skipped: no baseline.")
        elif failures:
            lines.append("**Regression check failed:**")
            lines += [f"- {md(failure_text(f))}" for f in failures]
        else:
            lines.append("Regression check passed: " + md(_gates_text(gates)) + ".")
    return "\n".join(lines) + "\n"


def _gates_text(gates: list[Gate]) -> str:
    parts = []
    for g in gates:
        who = "no score" if g.score is None else g.score
        if g.min_drop > 0:
            parts.append(f"{who} dropped more than {pp(g.min_drop)}" if g.score is None
                         else f"{who} dropped at most {pp(g.min_drop)}")
        else:
            parts.append(f"{who} dropped" if g.score is None else f"{who} did not drop")
    return "; ".join(parts)
