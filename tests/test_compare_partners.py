"""Per-row columns of several compared experiments (diff mode's sub-rows), the regression
order, group ordering by regressions and the summary cards' histograms: pure functions on
small hand-made frames with known answers."""

from __future__ import annotations

import polars as pl

from evaltui.query.arrange import group_frame
from evaltui.query.compare import (
    compare_frames,
    histogram,
    join_row_deltas,
    partner_prefix,
    partner_rows,
    regression_order,
    row_deltas,
    summary_histograms,
)


def frame(keys: list[str | None], acc: list[float | None], out: str, extra: dict | None = None) -> pl.DataFrame:
    n = len(keys)
    data = {
        "root_span_id": [f"{out}-{i}" for i in range(n)],
        "comparison_key": keys,
        "output": [f"{out} answer {k}" for k in keys],
        "scores.acc": acc,
        "duration": [1.0] * n,
    }
    data.update(extra or {})
    return pl.DataFrame(data)


def test_partner_rows_name_each_bases_columns_and_carry_their_output() -> None:
    # this: a, b (two trials), c (only here); base 1: a, b; base 2: b, c
    this = frame(["a", "b", "b", "c"], [0.5, 0.4, 0.6, 1.0], "this")
    one = frame(["a", "b"], [0.7, 0.2], "one")
    two = frame(["b", "c", "c"], [0.9, 0.0, 1.0], "two")
    rows = partner_rows(this, [one, two])
    assert partner_prefix(0) == "compare." and partner_prefix(1) == "compare.b1."
    assert rows["root_span_id"].to_list() == this["root_span_id"].to_list()
    assert rows["compare.match"].to_list() == ["matched", "matched", "matched", "no match"]
    assert rows["compare.b1.match"].to_list() == ["no match", "matched", "matched", "matched"]
    assert rows["compare.output"].to_list() == ["one answer a", "one answer b", "one answer b", None]
    # the second base's first trace of c, its trials averaged for the value
    assert rows["compare.b1.output"].to_list() == [None, "two answer b", "two answer b", "two answer c"]
    assert rows["compare.b1.base.scores.acc"].to_list() == [None, 0.9, 0.9, 0.5]
    # deltas are per case: b's trials average 0.5
    assert [round(v, 6) if v is not None else None for v in rows["compare.delta.scores.acc"].to_list()] == [
        -0.2, 0.3, 0.3, None]
    assert rows["compare.b1.regressed.scores.acc"].to_list() == [False, True, True, False]
    # the first base's columns are row_deltas' (the table's deltas) plus its output
    plain = row_deltas(this, one)
    assert rows.select(plain.columns).equals(plain)
    # join: rows the deltas do not know say "no match" for every base
    joined = join_row_deltas(pl.concat([this, frame(["z"], [0.1], "new")]), rows)
    assert joined["compare.match"].to_list()[-1] == "no match"
    assert joined["compare.b1.match"].to_list()[-1] == "no match"


def test_regression_order_most_regressions_first() -> None:
    this = pl.DataFrame({"comparison_key": ["a", "b", "c"], "scores.x": [0.1, 0.1, 0.9],
                         "scores.y": [0.9, 0.9, 0.9], "scores.z": [0.1, 0.9, 0.9]})
    base = pl.DataFrame({"comparison_key": ["a", "b", "c"], "scores.x": [0.5] * 3, "scores.y": [0.5] * 3,
                         "scores.z": [0.5] * 3})
    summary = compare_frames(this, base)
    assert regression_order(summary) == [("x", 2), ("z", 1), ("y", 0)]
    assert regression_order(compare_frames(this)) == [("x", 0), ("y", 0), ("z", 0)]  # no base: by name


def test_groups_by_regressions_count_cases_once() -> None:
    f = pl.DataFrame({
        "cat": ["a", "a", "b", "b", "b", "c"],
        "comparison_key": ["k1", "k1", "k2", "k3", "k4", "k5"],  # k1 has two trials
        "compare.regressed.scores.x": [True, True, False, True, None, False],
        "scores.x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    })
    ordered, groups = group_frame(f, "cat", "regressions:scores.x")
    # a: k1 regressed in both trials, one case; b: k3; ties on regressions: the larger group first
    assert [(g.label, g.count, g.note) for g in groups] == [("b", 3, "↓1"), ("a", 2, "↓1"), ("c", 1, "↓0")]
    assert ordered["cat"].to_list() == ["b", "b", "b", "a", "a", "c"]
    # without the compared column: the size order, no notes
    _, plain = group_frame(f.drop("compare.regressed.scores.x"), "cat", "regressions:scores.x")
    assert [(g.label, g.note) for g in plain] == [("b", ""), ("a", ""), ("c", "")]


def test_summary_histograms_are_the_cards_histograms() -> None:
    this = frame(["a", "b", "c", "d"], [0.0, 0.5, 0.5, 1.0], "this",
                 {"duration": [1.0, 2.0, 3.0, 5.0]})
    got = summary_histograms(this, compare_frames(this), bins=4)
    assert got == {"scores.acc": [1, 0, 2, 1], "duration": [1, 1, 1, 1]}
    assert got["scores.acc"] == histogram(this, "scores.acc", 4)
