"""Where the value of a filter path lives, and what a value inside JSON means.

A path of the filter language (``scores.acc``, ``metrics.tokens``, ``metadata.user.tier``,
``review_status``, a custom column) resolves to one of two things:

- :class:`Column`: a column of the frame, or a whitelisted SQL expression over the
  ``traces`` / ``spans`` table, with a static kind: ``num``, ``text`` or ``bool``.
- :class:`JsonValue`: a place inside a column holding JSON text (``metadata``, ``tags``,
  the ``input``/``output``/``expected``/``error`` previews). Its kind is ``json``: the type
  is only known per row.

JSON values mean what SQLite's ``json_extract`` returns, in both backends: strings are
text, numbers are numbers, ``true``/``false`` are 1/0, ``null`` and a missing key are
null, objects and arrays are their compact JSON text. The trace frame's ``metadata.<key>``
columns hold exactly that (the store reads them with ``json_extract``), so polars reads
top-level keys from them and walks the raw JSON only for deeper paths; the functions at
the bottom of this module are that walk, in Python, with SQLite's meaning.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

NUM, TEXT, BOOL, JSON = "num", "text", "bool", "json"
ROW_TYPES = ("traces", "spans")

Part = str | int  # a key, or an array index written as [N]


class PathError(Exception):
    """A path that does not resolve; the filter module turns it into a FilterError."""

    def __init__(self, message: str, suggestion: str | None = None):
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


# -- what the store's frames and tables hold ------------------------------------------------------

# Trace rows: frame column -> (SQL expression over the traces table, kind). ``{q}`` is the
# table's name or alias. Mirrors evaltui.store.readers (the frame is the SQL, read).
TRACE_FIELDS: dict[str, tuple[str, str]] = {
    "root_span_id": ("{q}.root_span_id", TEXT),
    "id": ("{q}.id", TEXT),
    "name": ("{q}.name", TEXT),
    "created": ("{q}.created", TEXT),
    "start": ("{q}.start", NUM),
    "end": ("{q}.[end]", NUM),
    "duration": ("{q}.duration", NUM),
    "llm_duration": ("{q}.llm_duration", NUM),
    "ttft": ("{q}.ttft", NUM),
    "prompt_tokens": ("{q}.prompt_tokens", NUM),
    "completion_tokens": ("{q}.completion_tokens", NUM),
    "tokens": ("{q}.tokens", NUM),
    "prompt_cached_tokens": ("{q}.prompt_cached_tokens", NUM),
    "completion_reasoning_tokens": ("{q}.completion_reasoning_tokens", NUM),
    "estimated_cost": ("{q}.estimated_cost", NUM),
    "span_count": ("{q}.span_count", NUM),
    "llm_calls": ("{q}.llm_calls", NUM),
    "tool_calls": ("{q}.tool_calls", NUM),
    "errors": ("{q}.errors", NUM),
    "has_error": ("{q}.has_error", BOOL),
    "scorer_errors": ("{q}.scorer_errors", NUM),
    "input": ("{q}.input_preview", TEXT),
    "output": ("{q}.output_preview", TEXT),
    "expected": ("{q}.expected_preview", TEXT),
    "error": ("{q}.error_preview", TEXT),
    "metadata": ("{q}.metadata", TEXT),
    "tags": ("{q}.tags", TEXT),
    "comparison_key": ("{q}.comparison_key", TEXT),
    "review_status": ("{q}.review_status", TEXT),
    "assignee": ("{q}.assignee", TEXT),
    "reviewed_by": ("{q}.reviewed_by", TEXT),
    "dataset_record_id": ("{q}.dataset_record_id", TEXT),
}

# Span rows (evaltui.store.readers.load_span_rows), plus two fields only SQL has.
SPAN_FIELDS: dict[str, tuple[str, str]] = {
    "id": ("{q}.id", TEXT),
    "span_id": ("{q}.span_id", TEXT),
    "root_span_id": ("{q}.root_span_id", TEXT),
    "parent_id": ("json_extract({q}.span_parents, '$[0]')", TEXT),
    "name": ("{q}.name", TEXT),
    "type": ("{q}.type", TEXT),
    "created": ("{q}.created", TEXT),
    "start": ("{q}.start", NUM),
    "end": ("{q}.[end]", NUM),
    "duration": ("({q}.[end] - {q}.start)", NUM),
    "prompt_tokens": ("json_extract({q}.metrics, '$.prompt_tokens')", NUM),
    "completion_tokens": ("json_extract({q}.metrics, '$.completion_tokens')", NUM),
    "tokens": ("json_extract({q}.metrics, '$.tokens')", NUM),
    "estimated_cost": ("json_extract({q}.metrics, '$.estimated_cost')", NUM),
    "has_error": ("({q}.error IS NOT NULL)", BOOL),
    "input": ("substr({q}.input, 1, 400)", TEXT),
    "output": ("substr({q}.output, 1, 400)", TEXT),
    "error": ("substr({q}.error, 1, 400)", TEXT),
    "metadata": ("{q}.metadata", TEXT),
    # not in the span frame: SQL-only (the CLI)
    "expected": ("substr({q}.expected, 1, 400)", TEXT),
    "tags": ("{q}.tags", TEXT),
}
FIELDS = {"traces": TRACE_FIELDS, "spans": SPAN_FIELDS}
# Fields SQL has but the frames do not: accepted by to_sql without a schema (the CLI's span
# queries), rejected with one, as polars rejects them.
SQL_ONLY = {"traces": frozenset(), "spans": frozenset({"expected", "tags"})}

# ``metrics.X`` names the frame column of that metric.
METRICS: dict[str, tuple[str, ...]] = {
    "traces": (
        "prompt_tokens", "completion_tokens", "tokens", "prompt_cached_tokens",
        "completion_reasoning_tokens", "estimated_cost", "start", "end", "duration",
        "llm_duration", "ttft", "span_count", "llm_calls", "tool_calls", "errors", "scorer_errors",
    ),
    "spans": ("prompt_tokens", "completion_tokens", "tokens", "estimated_cost", "start", "end", "duration"),
}
METRIC_ALIASES = {"time_to_first_token": "ttft"}
# Columns holding JSON text that paths can reach into; previews may be cut or plain text,
# so SQL checks json_valid before reading them.
JSON_ROOTS = ("metadata", "tags", "input", "output", "expected", "error")
PREVIEWS = frozenset({"input", "output", "expected", "error"})


@dataclass(frozen=True)
class Column:
    """A value read straight from one column (frame) or whitelisted expression (SQL)."""

    name: str  # frame column
    kind: str  # NUM, TEXT or BOOL
    sql: str | None = None  # SQL template with {q} and ``?`` placeholders
    sql_params: tuple[Any, ...] = ()
    dtype: Any = None  # the frame column's polars dtype


@dataclass(frozen=True)
class JsonValue:
    """A place inside a column of JSON text."""

    root: str  # frame column holding the JSON text
    parts: tuple[Part, ...]
    sql_root: str | None = None  # SQL template of the JSON text
    guard: bool = False  # SQL: the text may not be JSON; check json_valid first
    typed_column: str | None = None  # frame column that already holds json_extract(root, key)
    typed_dtype: Any = None
    kind: str = JSON


Resolved = Column | JsonValue


def kind_of_dtype(dtype: Any) -> str | None:
    """The filter kind of a polars dtype, or None when filters cannot compare it."""
    if dtype == pl.Boolean:
        return BOOL
    if dtype.is_numeric():
        return NUM
    if dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(dtype, (pl.Categorical, pl.Enum)):
        return TEXT
    return None


# Words of the filter language: a path that starts with one is written `quoted`.
KEYWORDS = frozenset(
    {"and", "or", "not", "is", "null", "true", "false", "in", "like", "ilike", "match", "includes", "any_span"}
)


def quote_part(part: Part, first: bool = False) -> str:
    """A path part as it is written in a filter."""
    if isinstance(part, int):
        return f"[{part}]"
    plain = part and _PLAIN_PART.fullmatch(part)
    if plain and not (first and (part[0].isdigit() or part.lower() in KEYWORDS)):
        return part
    q = "`" if first else '"'
    return q + part.replace("\\", "\\\\").replace(q, "\\" + q) + q


_PLAIN_PART = re.compile(r"\w+")  # letters, digits, underscore (unicode)


def format_path(parts: Sequence[Part]) -> str:
    out = quote_part(parts[0], first=True)
    for p in parts[1:]:
        out += quote_part(p) if isinstance(p, int) else "." + quote_part(p)
    return out


def json_path(parts: Sequence[Part]) -> str:
    """SQLite JSON path of ``parts`` (always passed as a parameter, never pasted)."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else '."' + p + '"'
    return out


def check_key(part: Part) -> None:
    # SQLite matches path labels against keys as written in the JSON text, escapes and all:
    # a key that JSON must escape cannot be addressed the same way by both backends.
    if isinstance(part, str) and any(c in '"\\' or ord(c) < 0x20 for c in part):
        raise PathError(
            f"the key {part!r} cannot be addressed (no quotes, backslashes or control characters in keys)"
        )


def _plain_key(key: Part) -> bool:
    # The store reads metadata.<key> columns with a json.dumps-quoted path, which only finds
    # keys that json.dumps leaves alone (ASCII, no escapes): for other keys, walk the JSON.
    return isinstance(key, str) and json.dumps(key) == f'"{key}"'


# -- resolution ----------------------------------------------------------------------------------


def resolve(
    parts: Sequence[Part],
    *,
    row_type: str,
    columns: Mapping[str, Any] | None,
    backend: str,
) -> Resolved:
    """Resolve a path for ``backend`` ("polars" or "sql").

    ``columns`` maps frame column names to polars dtypes. The polars backend needs it; the
    SQL backend uses it, when given, to reject names the experiment does not have.
    Raises PathError.
    """
    if row_type not in ROW_TYPES:
        raise ValueError(f"row_type must be one of {ROW_TYPES}, not {row_type!r}")
    polars = backend == "polars"
    cols: Mapping[str, Any] = columns or {}
    head, rest = parts[0], tuple(parts[1:])
    if not isinstance(head, str):
        raise PathError("a path starts with a name")
    fields = FIELDS[row_type]

    if head == "scores" and rest:
        if not all(isinstance(p, str) for p in rest):
            raise PathError("scores are named, not indexed")
        name = ".".join(rest)  # type: ignore[arg-type]
        col = f"scores.{name}"
        if polars or columns is not None:
            if col not in cols:
                raise _unknown(parts, row_type, columns, backend)
        if polars:
            return _column(col, cols[col])
        check_key(name)
        return Column(col, NUM, "json_extract({q}.scores, ?)", (json_path([name]),))

    if head == "metrics" and rest:
        metric = rest[0]
        if len(rest) != 1 or not isinstance(metric, str):
            raise _unknown(parts, row_type, columns, backend)
        target = METRIC_ALIASES.get(metric, metric)
        if target in METRICS[row_type]:
            return _field((target,), target, row_type, cols, columns, backend)
        if not polars and row_type == "spans" and columns is None:
            check_key(metric)
            return Column(f"metrics.{metric}", NUM, "json_extract({q}.metrics, ?)", (json_path([metric]),))
        raise _unknown(parts, row_type, columns, backend)

    if head in ("type", "span_type") and not rest:
        if row_type == "traces" and not (polars and "type" in cols):
            raise PathError(
                f"{head} is a property of spans; in trace rows use any_span({head} = 'llm')"
            )
        return _field(parts, "type", row_type, cols, columns, backend)

    if rest and (head in JSON_ROOTS or (polars and head in cols and kind_of_dtype(cols[head]) == TEXT)):
        for p in rest:
            check_key(p)
        typed = None
        if head == "metadata" and row_type == "traces" and isinstance(rest[0], str):
            typed = f"metadata.{rest[0]}"
            if (polars or columns is not None) and typed not in cols:
                raise _unknown(parts, row_type, columns, backend)
        if polars:
            if head not in cols:
                if typed and len(rest) == 1:  # a frame without the raw JSON: the column is all there is
                    return _column(typed, cols[typed])
                raise _unknown(parts, row_type, columns, backend)
            top_level = typed is not None and len(rest) == 1
            use_typed = typed if top_level and _plain_key(rest[0]) and kind_of_dtype(cols[typed]) else None
            return JsonValue(
                head, rest, typed_column=use_typed, typed_dtype=cols[use_typed] if use_typed else None
            )
        if head not in fields or (columns is not None and head not in columns):
            raise _unknown(parts, row_type, columns, backend)
        return JsonValue(head, rest, sql_root=fields[head][0], guard=head in PREVIEWS)

    if all(isinstance(p, str) for p in parts):
        return _field(parts, ".".join(parts), row_type, cols, columns, backend)  # type: ignore[arg-type]
    raise _unknown(parts, row_type, columns, backend)


def _column(name: str, dtype: Any) -> Column:
    kind = kind_of_dtype(dtype)
    if kind is None:
        raise PathError(f"the column {name!r} holds {dtype} values, which filters cannot compare")
    return Column(name, kind, dtype=dtype)


def _field(
    parts: Sequence[Part],
    name: str,
    row_type: str,
    cols: Mapping[str, Any],
    columns: Mapping[str, Any] | None,
    backend: str,
) -> Column:
    if backend == "polars":
        if name in cols:
            return _column(name, cols[name])
        raise _unknown(parts, row_type, columns, backend)
    fields = FIELDS[row_type]
    if name in fields and (columns is None or name in columns):
        sql, kind = fields[name]
        return Column(name, kind, sql)
    if columns is not None and name in columns:
        raise PathError(f"{format_path(parts)} is a custom column: only the table view can filter on it, not SQL")
    raise _unknown(parts, row_type, columns, backend)


def known_paths(row_type: str, columns: Mapping[str, Any] | None, backend: str = "polars") -> list[str]:
    """Every path name the filter accepts for these columns, as it is written in a filter."""
    names: list[str] = []
    if backend == "polars" and columns is not None:
        base = list(columns)
    else:
        base = list(FIELDS[row_type]) + [c for c in (columns or {}) if c.startswith(("scores.", "metadata."))]
    for c in base:
        if c.startswith("scores.") or c.startswith("metadata."):
            head, _, key = c.partition(".")
            names.append(head + "." + quote_part(key))
        else:
            names.append(quote_part(c, first=True) if "." not in c else c)
    present = set(base)
    names += [f"metrics.{m}" for m in METRICS[row_type] if m in present]
    if "type" in present:
        names.append("span_type")
    return sorted(set(names))


def _unknown(
    parts: Sequence[Part], row_type: str, columns: Mapping[str, Any] | None, backend: str
) -> PathError:
    text = format_path(parts)
    candidates = known_paths(row_type, columns, backend)
    close = difflib.get_close_matches(text, candidates, n=1, cutoff=0.6)
    if not close and "." in text:  # a typo in the head: scroes.acc -> scores.acc
        head, _, tail = text.partition(".")
        for root in ("scores", "metrics", "metadata"):
            if difflib.get_close_matches(head, [root], cutoff=0.6):
                close = difflib.get_close_matches(f"{root}.{tail}", candidates, n=1, cutoff=0.5)
                break
    return PathError(f"unknown path '{text}'", close[0] if close else None)


# -- JSON values with SQLite's meaning -----------------------------------------------------------

JSON_WS = " \t\n\r"
# A JSON number, optionally padded with JSON whitespace: what SQLite's json_valid/json_type
# accept as 'integer' or 'real'. The same pattern runs in Python and in polars (Rust regex).
NUMBER_PATTERN = r"^[ \t\n\r]*-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[ \t\n\r]*$"
_NUMBER = re.compile(NUMBER_PATTERN)


def load_json(text: str | None) -> Any:
    """The JSON value of ``text``; :data:`INVALID` when it is not JSON (or None)."""
    if text is None:
        return INVALID
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return INVALID


INVALID = object()  # load_json's answer for text that is not JSON


def walk(doc: Any, parts: Sequence[Part]) -> Any:
    """The value at ``parts`` inside a decoded JSON document (None when missing)."""
    value = doc
    for p in parts:
        if isinstance(p, int):
            if not isinstance(value, list) or not 0 <= p < len(value):
                return None
            value = value[p]
        else:
            if not isinstance(value, dict):
                return None
            value = value.get(p)
    return value


def sqlite_value(value: Any) -> Any:
    """What ``json_extract`` returns for a decoded JSON value."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value


def parse_number(text: str | None) -> float | None:
    """Text holding a JSON number, as a float; None for any other text."""
    if text is None or not _NUMBER.match(text):
        return None
    return float(text.strip(JSON_WS))


def number_of(value: Any) -> float | None:
    """A JSON value (as json_extract gives it) as a number: the num view."""
    value = sqlite_value(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_number(value)
    return None


def text_of(value: Any) -> str | None:
    """A JSON value as text: strings and JSON text of objects/arrays; numbers are not text."""
    value = sqlite_value(value)
    return value if isinstance(value, str) else None


def array_includes(value: Any, needle: Any) -> bool:
    """Whether a decoded JSON array has an element equal to ``needle`` (str or number)."""
    if not isinstance(value, list):
        return False
    if isinstance(needle, str):
        return any(isinstance(e, str) and e == needle for e in value)
    # numbers match numbers; true/false are the numbers 1/0, as everywhere in the language
    return any(isinstance(e, (int, float)) and e == needle for e in value)
