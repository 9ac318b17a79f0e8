"""Aggregate scores and custom columns: new columns computed from a frame's columns (polars).

Aggregate scores (project setting ``aggregate_scores``) combine scores into one::

    {"name": "overall", "kind": "weighted_mean", "scores": {"Factuality": 2, "exact_match": 1}}

Each becomes a ``scores.<name>`` column, so it shows, sorts and filters like any score.
Nulls (a score a trace does not have, or skipped) are left out: a weighted mean is taken over
the non-null inputs with their weights renormalised, min/max over the non-null inputs; a row
with no input is null. An aggregate may use aggregates defined before it.

Custom columns (a view's columns) are a name and an expression in the filter language
(paths and arithmetic, compiled by :mod:`evaltui.query.filter`, so they mean there what
they mean in a filter)::

    {"name": "completion_ratio", "expr": "metrics.completion_tokens / metrics.prompt_tokens"}

Each becomes a ``custom.<name>`` column: numbers for arithmetic and numeric paths, text for
text paths, booleans for conditions (``tokens > 2000``), so ``custom.completion_ratio > 2``
filters and ``[``/``]`` sort on it. Division by zero is null, as in filters. A custom
column may use custom columns defined before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from evaltui.query import paths as P
from evaltui.query.filter import (
    AnySpan,
    FilterError,
    Literal,
    Path,
    _find,
    _PolarsCompiler,
    parse_filter,
)

__all__ = [
    "AGGREGATE_KINDS",
    "AggregateError",
    "CustomColumnError",
    "compile_custom_column",
    "validate_aggregate",
    "validate_custom_columns",
    "with_aggregates",
    "with_custom_columns",
]

AGGREGATE_KINDS = ("weighted_mean", "min", "max")
CUSTOM_PREFIX = "custom."


class AggregateError(ValueError):
    """An aggregate score definition that does not validate."""


class CustomColumnError(ValueError):
    """A custom column whose expression does not compile. ``column`` is 1-based, in ``expr``."""

    def __init__(self, name: str, expr: str, message: str, column: int = 1):
        super().__init__(f"custom column {name!r}: {message}")
        self.name = name
        self.expr = expr
        self.message = message
        self.column = column

    def caret(self) -> str:
        """The expression with a ``^`` under the column where it went wrong."""
        return f"{self.expr}\n{' ' * (self.column - 1)}^"


# -- aggregate scores ---------------------------------------------------------------------------


def _weight(agg: str, score: str, w: Any) -> float:
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
        raise AggregateError(f"aggregate {agg!r}: weight of {score!r} must be a number >= 0, not {w!r}")
    return float(w)


def validate_aggregate(defs: Any, score_names: Iterable[str]) -> list[dict[str, Any]]:
    """Aggregate definitions checked against the score names there are; returns them normalised.

    Normalised: ``{"name", "kind", "scores": {score: weight}}`` (weights 1.0 for min/max and
    for scores given as a list). Raises AggregateError: not a list, empty or duplicate name,
    a name that is already a score, unknown kind, no scores, an unknown score, a bad weight,
    weights that sum to 0.
    """
    if isinstance(defs, dict):
        defs = [defs]
    if not isinstance(defs, (list, tuple)):
        raise AggregateError(f"aggregate scores are a list of definitions, not {type(defs).__name__}")
    known = list(dict.fromkeys(score_names))
    available = set(known)
    out: list[dict[str, Any]] = []
    for i, d in enumerate(defs):
        if not isinstance(d, dict):
            raise AggregateError(f"aggregate {i + 1} must be an object {{name, kind, scores}}")
        unknown_fields = sorted(set(d) - {"name", "kind", "scores", "description"})
        if unknown_fields:
            raise AggregateError(f"aggregate {i + 1}: unknown field {unknown_fields[0]!r}")
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AggregateError(f"aggregate {i + 1} needs a name (a non-empty string)")
        name = name.strip()
        if any(c in name for c in '"\\') or any(ord(c) < 0x20 for c in name):
            raise AggregateError(f"aggregate {name!r}: no quotes, backslashes or control characters in the name")
        if name in available:
            what = "another aggregate" if any(o["name"] == name for o in out) else "a score"
            raise AggregateError(f"aggregate {name!r}: the name is already taken by {what}")
        kind = d.get("kind", "weighted_mean")
        if kind not in AGGREGATE_KINDS:
            raise AggregateError(f"aggregate {name!r}: unknown kind {kind!r} (one of {', '.join(AGGREGATE_KINDS)})")
        scores = d.get("scores")
        if isinstance(scores, (list, tuple)):
            if not all(isinstance(s, str) for s in scores):
                raise AggregateError(f"aggregate {name!r}: scores are named by text")
            scores = dict.fromkeys(scores, 1.0)
        if not isinstance(scores, dict) or not scores:
            raise AggregateError(f"aggregate {name!r} needs scores to combine ({{score: weight}} or a list)")
        weights: dict[str, float] = {}
        for score, w in scores.items():
            if score not in available:
                hint = f" (scores: {', '.join(known[:10])}{', …' if len(known) > 10 else ''})" if known else ""
                raise AggregateError(f"aggregate {name!r}: unknown score {score!r}{hint}")
            if score == name:
                raise AggregateError(f"aggregate {name!r} cannot use itself")
            weights[score] = _weight(name, score, w) if kind == "weighted_mean" else 1.0
        if kind == "weighted_mean" and sum(weights.values()) <= 0:
            raise AggregateError(f"aggregate {name!r}: the weights sum to 0")
        norm = {"name": name, "kind": kind, "scores": weights}
        if isinstance(d.get("description"), str):
            norm["description"] = d["description"]
        out.append(norm)
        available.add(name)
        known.append(name)
    return out


def _aggregate_expr(d: Mapping[str, Any], columns: set[str]) -> pl.Expr:
    present = [(f"scores.{s}", float(w)) for s, w in d["scores"].items() if f"scores.{s}" in columns]
    if not present:
        return pl.lit(None, dtype=pl.Float64)
    cols = [pl.col(c).cast(pl.Float64) for c, _ in present]
    if d["kind"] == "min":
        return pl.min_horizontal(cols)
    if d["kind"] == "max":
        return pl.max_horizontal(cols)
    weighted = pl.sum_horizontal([c * w for c, (_, w) in zip(cols, present, strict=True)])
    total = pl.sum_horizontal([c.is_not_null().cast(pl.Float64) * w for c, (_, w) in zip(cols, present, strict=True)])
    return pl.when(total > 0).then(weighted / total).otherwise(None)


def with_aggregates(frame: pl.DataFrame | pl.LazyFrame, defs: Sequence[Mapping[str, Any]]) -> Any:
    """``frame`` with one Float64 ``scores.<name>`` column per aggregate definition.

    Scores an aggregate names that the frame does not have count as null (an experiment
    may lack one); validate definitions with :func:`validate_aggregate` when they are saved.
    """
    columns = set(frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns)
    for d in defs:
        kind = d.get("kind", "weighted_mean")
        if kind not in AGGREGATE_KINDS:
            raise AggregateError(f"aggregate {d.get('name')!r}: unknown kind {kind!r}")
        scores = d.get("scores") or {}
        if isinstance(scores, (list, tuple)):
            scores = dict.fromkeys(scores, 1.0)
        col = f"scores.{d['name']}"
        frame = frame.with_columns(_aggregate_expr({**d, "kind": kind, "scores": scores}, columns).alias(col))
        columns.add(col)
    return frame


# -- custom columns -----------------------------------------------------------------------------


def compile_custom_column(
    name: str, expr: str, schema: Mapping[str, Any], *, row_type: str = "traces"
) -> tuple[pl.Expr, str]:
    """A custom column's polars expression and kind (``num``, ``text``, ``bool`` or ``json``).

    ``json`` (a path inside JSON, such as ``metadata.user.tier``): the expression is a
    struct of its number and text views, which :func:`with_custom_columns` resolves once it
    sees the values. Raises CustomColumnError with the column where the expression went wrong.
    """
    if not isinstance(name, str) or not name.strip():
        raise CustomColumnError(str(name), str(expr), "a custom column needs a name")
    if any(c in name for c in '"\\`') or any(ord(c) < 0x20 for c in name):
        raise CustomColumnError(name, str(expr), "no quotes, backticks, backslashes or control characters in the name")
    if not isinstance(expr, str) or not expr.strip():
        raise CustomColumnError(name, str(expr), "the expression is empty")
    try:
        tree = parse_filter(expr)
        found = _find(tree, AnySpan)
        if found is not None:
            raise FilterError(f"any_span(...) cannot make a column at column {found.pos}", found.pos)
        compiler = _PolarsCompiler(row_type, dict(schema))
        kind = compiler.kind(tree)
        if isinstance(tree, Literal) and tree.value is None:
            return pl.lit(None, dtype=pl.Float64), P.NUM
        if kind == "cond":
            return compiler.cond(tree), P.BOOL
        if isinstance(tree, Literal) and isinstance(tree.value, str):
            return compiler.text_literal(tree.value), P.TEXT
        if isinstance(tree, Path):
            r = compiler.resolve(tree)
            if isinstance(r, P.JsonValue):
                both = pl.struct(compiler.num_json(r).alias("num"), compiler.text_json(r).alias("text"))
                return both, P.JSON
            if r.kind == P.TEXT:
                return compiler.column(r), P.TEXT
            if r.kind == P.BOOL:
                return compiler.bool_column(r), P.BOOL
        return compiler.num(tree), P.NUM
    except FilterError as e:
        raise CustomColumnError(name, expr, e.message, e.column) from None


def validate_custom_columns(
    defs: Sequence[Mapping[str, Any]], schema: Mapping[str, Any], *, row_type: str = "traces"
) -> list[dict[str, str]]:
    """Check custom column definitions against a frame's schema (nothing is computed).

    Returns them as ``[{"name", "expr"}]``; raises CustomColumnError (bad name, duplicate,
    an expression that does not compile, with its column).
    """
    cols = dict(schema)
    out = []
    for d in defs:
        if not isinstance(d, Mapping):
            raise CustomColumnError("?", "", f"a custom column is {{name, expr}}, not {type(d).__name__}")
        name, expr = d.get("name"), d.get("expr")
        col = f"{CUSTOM_PREFIX}{name}"
        if col in cols:
            raise CustomColumnError(str(name), str(expr), "there is already a column of that name")
        _, kind = compile_custom_column(name, expr, cols, row_type=row_type)
        cols[col] = {P.NUM: pl.Float64, P.BOOL: pl.Boolean}.get(kind, pl.String)
        out.append({"name": name, "expr": expr})
    return out


def with_custom_columns(
    frame: pl.DataFrame, defs: Sequence[Mapping[str, Any]], *, row_type: str = "traces"
) -> pl.DataFrame:
    """``frame`` with one ``custom.<name>`` column per ``{name, expr}`` definition.

    Raises CustomColumnError (nothing is added) when a definition does not compile.
    """
    validate_custom_columns(defs, frame.schema, row_type=row_type)  # every error before any work
    for d in defs:
        name, expr = d["name"], d["expr"]
        compiled, kind = compile_custom_column(name, expr, frame.schema, row_type=row_type)
        col = f"{CUSTOM_PREFIX}{name}"
        try:
            values = frame.select(compiled.alias(col)).to_series()
        except pl.exceptions.PolarsError as e:
            raise CustomColumnError(name, expr, f"cannot be computed ({type(e).__name__}: {e})") from None
        if kind == P.JSON:
            # a JSON path: numbers when every value is a number, else text (numbers written as JSON)
            num, text = values.struct.field("num"), values.struct.field("text")
            if text.null_count() == text.len():
                values = num
            else:
                n = pl.lit(num)
                whole = (n == n.floor()) & (n.abs() < 2**53)
                as_text = pl.when(whole).then(n.cast(pl.Int64).cast(pl.String)).otherwise(n.cast(pl.String))
                values = pl.select(pl.coalesce(pl.lit(text), as_text)).to_series()
            values = values.alias(col)
        elif kind == P.NUM:
            values = values.cast(pl.Float64)
        frame = frame.with_columns(values)
    return frame
