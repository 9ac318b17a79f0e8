"""Aggregate scores and custom columns (evaltui.query.aggregates) on hand-made and stored frames."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from evaltui import store as st
from evaltui.query.aggregates import (
    AggregateError,
    CustomColumnError,
    validate_aggregate,
    validate_custom_columns,
    with_aggregates,
    with_custom_columns,
)
from evaltui.query.filter import filter_frame


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame({
        "root_span_id": ["a", "b", "c", "d"],
        "scores.acc": [1.0, None, 0.2, None],
        "scores.judge": [0.0, 0.5, None, None],
        "scores.style": [0.5, 1.0, 0.8, None],
        "prompt_tokens": [100, 0, 50, None],
        "completion_tokens": [50, 10, 200, 7],
        "duration": [2.0, 1.0, 4.0, 0.5],
        "name": ["eval", "eval", "other", "eval"],
        "metadata": ['{"user": {"tier": "gold"}, "n": 3}', '{"user": {"tier": 2}}', '{"user": {}}', None],
        "metadata.user": ['{"tier":"gold"}', '{"tier":2}', "{}", None],
        "metadata.n": [3, None, None, None],
    })


def col(frame: pl.DataFrame, name: str) -> list:
    return frame[name].to_list()


# -- aggregate scores --------------------------------------------------------------------------------


def test_weighted_mean_renormalises_over_non_null_inputs(frame):
    out = with_aggregates(frame, [{"name": "overall", "kind": "weighted_mean", "scores": {"acc": 3, "judge": 1}}])
    assert col(out, "scores.overall") == pytest.approx([0.75, 0.5, 0.2, None], nan_ok=True)
    assert out.schema["scores.overall"] == pl.Float64


def test_weighted_mean_of_three_with_weights(frame):
    out = with_aggregates(frame, [{"name": "o", "kind": "weighted_mean",
                                   "scores": {"acc": 2, "judge": 1, "style": 1}}])
    # a: (2*1 + 0 + 0.5) / 4; b: (0.5 + 1) / 2; c: (2*0.2 + 0.8) / 3; d: nothing
    assert col(out, "scores.o")[:3] == pytest.approx([2.5 / 4, 0.75, 1.2 / 3])
    assert col(out, "scores.o")[3] is None


def test_min_and_max_skip_nulls(frame):
    out = with_aggregates(frame, [
        {"name": "worst", "kind": "min", "scores": ["acc", "judge", "style"]},
        {"name": "best", "kind": "max", "scores": {"acc": 1, "judge": 5}},
    ])
    assert col(out, "scores.worst") == [0.0, 0.5, 0.2, None]
    assert col(out, "scores.best") == [1.0, 0.5, 0.2, None]


def test_aggregates_of_aggregates_and_missing_scores(frame):
    out = with_aggregates(frame, [
        {"name": "pair", "kind": "min", "scores": ["acc", "judge"]},
        {"name": "top", "kind": "max", "scores": ["pair", "style"]},
        {"name": "absent", "kind": "weighted_mean", "scores": {"not_in_this_experiment": 1}},
        {"name": "partial", "kind": "weighted_mean", "scores": {"not_here": 5, "style": 1}},
    ])
    assert col(out, "scores.top") == [0.5, 1.0, 0.8, None]
    assert col(out, "scores.absent") == [None] * 4
    assert col(out, "scores.partial") == col(frame, "scores.style")


def test_aggregates_filter_and_sort_like_scores(frame):
    out = with_aggregates(frame, [{"name": "overall", "kind": "weighted_mean", "scores": {"acc": 1, "judge": 1}}])
    assert col(filter_frame(out, "scores.overall >= 0.5"), "root_span_id") == ["a", "b"]
    assert col(out.sort("scores.overall", nulls_last=True), "root_span_id") == ["c", "a", "b", "d"]
    lazy = with_aggregates(frame.lazy(), [{"name": "w", "kind": "min", "scores": ["acc"]}])
    assert col(lazy.collect(), "scores.w") == col(frame, "scores.acc")


@pytest.mark.parametrize(
    ("defs", "message"),
    [
        ([{"name": "", "kind": "min", "scores": ["acc"]}], "needs a name"),
        ([{"name": "o", "kind": "median", "scores": ["acc"]}], "unknown kind 'median'"),
        ([{"name": "o", "kind": "min", "scores": []}], "needs scores"),
        ([{"name": "o", "kind": "min"}], "needs scores"),
        ([{"name": "o", "kind": "min", "scores": ["acc", "nope"]}], "unknown score 'nope'"),
        ([{"name": "o", "scores": {"acc": -1}}], "weight of 'acc' must be a number >= 0"),
        ([{"name": "o", "scores": {"acc": "2"}}], "must be a number"),
        ([{"name": "o", "scores": {"acc": 0, "judge": 0}}], "sum to 0"),
        ([{"name": "acc", "kind": "min", "scores": ["judge"]}], "already taken by a score"),
        ([{"name": "o", "kind": "min", "scores": ["acc"]}, {"name": "o", "kind": "max", "scores": ["acc"]}],
         "already taken by another aggregate"),
        ([{"name": "o", "kind": "min", "scores": ["acc"], "weights": {}}], "unknown field 'weights'"),
        ("o", "a list of definitions"),
    ],
)
def test_validate_aggregate_errors(defs, message):
    with pytest.raises(AggregateError, match=message):
        validate_aggregate(defs, ["acc", "judge", "style"])


def test_validate_aggregate_normalises():
    defs = validate_aggregate([
        {"name": "o", "scores": {"acc": 2, "judge": 1}},
        {"name": "w", "kind": "min", "scores": {"o": 7, "style": 1}},  # weights mean nothing to min
    ], ["acc", "judge", "style"])
    assert defs == [
        {"name": "o", "kind": "weighted_mean", "scores": {"acc": 2.0, "judge": 1.0}},
        {"name": "w", "kind": "min", "scores": {"o": 1.0, "style": 1.0}},
    ]


# -- custom columns ----------------------------------------------------------------------------------


def test_custom_column_arithmetic(frame):
    out = with_custom_columns(frame, [
        {"name": "ratio", "expr": "metrics.completion_tokens / metrics.prompt_tokens"},
        {"name": "per_second", "expr": "(prompt_tokens + completion_tokens) / duration"},
        {"name": "ratio_pct", "expr": "custom.ratio * 100"},  # an earlier custom column
        {"name": "neg", "expr": "-duration"},
    ])
    assert col(out, "custom.ratio") == [0.5, None, 4.0, None]  # / 0 and null are null
    assert col(out, "custom.per_second") == [75.0, 10.0, 62.5, None]
    assert col(out, "custom.ratio_pct") == [50.0, None, 400.0, None]
    assert col(out, "custom.neg") == [-2.0, -1.0, -4.0, -0.5]
    assert out.schema["custom.ratio"] == pl.Float64


def test_custom_columns_of_other_kinds(frame):
    out = with_custom_columns(frame, [
        {"name": "tier", "expr": "metadata.user.tier"},  # mixed JSON: text, numbers as JSON text
        {"name": "n", "expr": "metadata.n"},  # only numbers: a number column
        {"name": "long", "expr": "completion_tokens > 40"},
        {"name": "label", "expr": "name"},
    ])
    assert col(out, "custom.tier") == ["gold", "2", None, None]
    assert out.schema["custom.n"] == pl.Float64 and col(out, "custom.n") == [3.0, None, None, None]
    assert col(out, "custom.long") == [True, False, True, False]
    assert col(out, "custom.label") == col(frame, "name")


def test_custom_columns_sort_and_filter(frame):
    out = with_custom_columns(frame, [{"name": "ratio", "expr": "completion_tokens / prompt_tokens"},
                                      {"name": "tier", "expr": "metadata.user.tier"}])
    assert col(filter_frame(out, "custom.ratio > 1"), "root_span_id") == ["c"]
    assert col(filter_frame(out, "custom.tier = 'gold'"), "root_span_id") == ["a"]
    assert col(filter_frame(out, "custom.ratio is null"), "root_span_id") == ["b", "d"]
    assert col(out.sort("custom.ratio", descending=True, nulls_last=True), "root_span_id")[:2] == ["c", "a"]


@pytest.mark.parametrize(
    ("expr", "column", "message"),
    [
        ("metrics.completion_tokens / metrics.prompt_tokns", 29, "unknown path 'metrics.prompt_tokns'"),
        ("prompt_tokens +", 16, "expected a value after '+'"),
        ("prompt_tokens * (duration", 26, "expected ')'"),
        ("duration + 'x'", 12, "expected a number, found text"),
        ("scroes.acc * 2", 1, "did you mean scores.acc"),
        ("any_span(type = 'llm')", 1, "any_span"),
        ("", 1, "empty"),
    ],
)
def test_custom_column_errors_point_at_the_column(frame, expr, column, message):
    with pytest.raises(CustomColumnError, match=re.escape(message)) as info:
        with_custom_columns(frame, [{"name": "ok", "expr": "duration * 2"}, {"name": "bad", "expr": expr}])
    assert info.value.column == column and info.value.name == "bad"
    assert str(info.value).startswith("custom column 'bad':")
    assert info.value.caret().splitlines()[1] == " " * (column - 1) + "^"


def test_custom_column_names_are_checked(frame):
    with pytest.raises(CustomColumnError, match="needs a name"):
        with_custom_columns(frame, [{"name": "", "expr": "duration"}])
    with pytest.raises(CustomColumnError, match="already a column"):
        validate_custom_columns([{"name": "x", "expr": "duration"}, {"name": "x", "expr": "duration"}], frame.schema)
    with pytest.raises(CustomColumnError, match="no quotes"):
        with_custom_columns(frame, [{"name": 'a"b', "expr": "duration"}])


def test_custom_columns_and_aggregates_on_stored_trace_rows(tmp_path: Path):
    store = st.Store(tmp_path / "agg.db")
    eid = st.create_experiment(store, "p", "e")
    spans = []
    for i, (acc, judge) in enumerate([(1.0, 0.5), (0.0, None), (None, None)]):
        root = f"t{i}"
        spans.append({"id": root, "experiment_id": eid, "span_id": root, "input": i,
                      "span_attributes": {"name": "eval", "type": "eval"}, "metadata": {"model": "m"},
                      "metrics": {"start": float(i), "end": i + 1.0}})
        spans.append({"id": f"{root}.llm", "experiment_id": eid, "span_id": f"{root}.llm", "root_span_id": root,
                      "span_parents": [root], "span_attributes": {"name": "llm", "type": "llm"},
                      "metrics": {"prompt_tokens": 100 * (i + 1), "completion_tokens": 50}})
        scores = {k: v for k, v in (("acc", acc), ("judge", judge)) if v is not None}
        if scores:
            spans.append({"id": f"{root}.s", "experiment_id": eid, "span_id": f"{root}.s", "root_span_id": root,
                          "span_parents": [root], "span_attributes": {"name": "s", "type": "score"},
                          "scores": scores})
    st.write_spans(store, spans)
    rows = st.load_trace_rows(store, eid)
    defs = validate_aggregate([{"name": "overall", "scores": {"acc": 1, "judge": 1}}],
                              st.experiment_fields(store, eid)["score"])
    out = with_custom_columns(with_aggregates(rows, defs), [
        {"name": "ratio", "expr": "metrics.completion_tokens / metrics.prompt_tokens"},
        {"name": "model", "expr": "metadata.model"},
    ])
    assert col(out, "scores.overall") == [0.75, 0.0, None]
    assert col(out, "custom.ratio") == [0.5, 0.25, 50 / 300]
    assert col(out, "custom.model") == ["m", "m", "m"]
    assert col(filter_frame(out, "scores.overall < 0.5 or custom.ratio < 0.2"), "root_span_id") == ["t1", "t2"]
    store.close()
