"""Comparing experiments: matching, trials, nulls, metrics, baselines, on known answers."""

from __future__ import annotations

import time

import polars as pl
import pytest

from evaltui.query.compare import compare_frames, resolve_baseline, summarize, summary_text
from evaltui.store import (
    NotFound,
    create_experiment,
    find_experiment,
    update_project_settings,
    write_spans,
)
from evaltui.store.writers import new_id


def add_trace(store, eid, input, scores=None, *, metadata=None, duration=1.0, tokens=None, error=None, cost=None):
    """One trace: a root span, plus a score span when there are scores (as Eval writes them)."""
    root = new_id()
    metrics = {"start": 1000.0, "end": 1000.0 + duration}
    if tokens is not None:
        metrics["tokens"] = tokens
    if cost is not None:
        metrics["estimated_cost"] = cost
    recs = [{"id": new_id(), "experiment_id": eid, "span_id": root, "root_span_id": root,
             "span_attributes": {"name": "eval", "type": "eval"}, "input": input, "metadata": metadata,
             "metrics": metrics, "error": error}]
    if scores:
        sid = new_id()
        recs.append({"id": new_id(), "experiment_id": eid, "span_id": sid, "root_span_id": root,
                     "span_parents": [root], "span_attributes": {"name": "scorer", "type": "score"},
                     "scores": scores})
    write_spans(store, recs)


def experiment(store, name, traces, project="proj", **kwargs):
    eid = create_experiment(store, project, name, **kwargs)
    for t in traces:
        input, scores, *rest = t
        add_trace(store, eid, input, scores, **(rest[0] if rest else {}))
    return eid


def test_improvements_and_regressions_per_matched_row(store):
    base = experiment(store, "base", [("a", {"acc": 0.5}), ("b", {"acc": 1.0}), ("c", {"acc": 0.0})])
    this = experiment(store, "this", [("a", {"acc": 1.0}), ("b", {"acc": 0.5}), ("c", {"acc": 0.0})])
    s = summarize(store, this, base)
    acc = s["scores"]["acc"]
    assert acc["mean"] == pytest.approx(0.5) and acc["base_mean"] == pytest.approx(0.5) and acc["diff"] == 0
    assert (acc["improvements"], acc["regressions"]) == (1, 1)  # a up, b down, c unchanged
    assert s["matched"] == 3 and s["unmatched"] == 0 and s["base_unmatched"] == 0
    assert s["experiment"]["name"] == "this" and s["base_experiment"]["name"] == "base"


def test_trials_are_averaged_per_key_before_comparing(store):
    base = experiment(store, "base", [("a", {"acc": 0.5}), ("b", {"acc": 0.5})])
    this = experiment(store, "this", [
        ("a", {"acc": 0.0}), ("a", {"acc": 1.0}), ("a", {"acc": 0.8}),  # mean 0.6 > 0.5: one improvement
        ("b", {"acc": 0.4}), ("b", {"acc": 0.6}),                      # mean 0.5 = 0.5: unchanged
    ])
    acc = summarize(store, this, base)["scores"]["acc"]
    # trace by trace it would be 3 improvements and 2 regressions
    assert (acc["improvements"], acc["regressions"]) == (1, 0)
    assert acc["mean"] == pytest.approx(2.8 / 5)  # the mean is over traces, not keys
    assert acc["count"] == 5


def test_unmatched_rows_count_in_means_but_not_in_deltas(store):
    base = experiment(store, "base", [("a", {"acc": 0.0}), ("gone", {"acc": 1.0})])
    this = experiment(store, "this", [("a", {"acc": 1.0}), ("new", {"acc": 0.0}), ("new2", {"acc": 0.0})])
    s = summarize(store, this, base)
    assert s["matched"] == 1 and s["unmatched"] == 2 and s["base_unmatched"] == 1
    acc = s["scores"]["acc"]
    assert acc["mean"] == pytest.approx(1 / 3) and acc["base_mean"] == 0.5
    assert acc["diff"] == pytest.approx(1 / 3 - 0.5)
    assert (acc["improvements"], acc["regressions"]) == (1, 0)


def test_null_scores_are_not_counted(store):
    base = experiment(store, "base", [("a", {"acc": 0.5}), ("b", {"acc": None}), ("c", {"acc": 0.5})])
    this = experiment(store, "this", [("a", {"acc": None}), ("b", {"acc": 1.0}), ("c", {"acc": 0.0}),
                                      ("d", None)])
    acc = summarize(store, this, base)["scores"]["acc"]
    assert acc["mean"] == pytest.approx(0.5) and acc["count"] == 2  # b and c; a is null, d has none
    assert acc["base_mean"] == 0.5
    assert (acc["improvements"], acc["regressions"]) == (0, 1)  # only c compares


def test_a_score_on_one_side_only(store):
    base = experiment(store, "base", [("a", {"old": 1.0})])
    this = experiment(store, "this", [("a", {"new": 0.5})])
    s = summarize(store, this, base)
    assert s["scores"]["new"]["mean"] == 0.5 and s["scores"]["new"]["base_mean"] is None
    assert s["scores"]["new"]["diff"] is None and s["scores"]["new"]["improvements"] == 0
    assert s["scores"]["old"]["mean"] is None and s["scores"]["old"]["base_mean"] == 1.0


def test_metrics_lower_is_better(store):
    base = experiment(store, "base", [
        ("a", None, {"duration": 2.0, "tokens": 100, "cost": 0.02}),
        ("b", None, {"duration": 1.0, "tokens": 100, "error": "boom"}),
    ])
    this = experiment(store, "this", [
        ("a", None, {"duration": 1.0, "tokens": 150, "cost": 0.01}),   # faster, more tokens, cheaper
        ("b", None, {"duration": 3.0, "tokens": 100}),                 # slower, fixed error
    ])
    m = summarize(store, this, base)["metrics"]
    d = m["duration"]
    assert d["mean"] == 2.0 and d["base_mean"] == 1.5 and d["diff"] == 0.5 and d["lower_is_better"]
    assert (d["improvements"], d["regressions"]) == (1, 1)
    t = m["tokens"]
    assert t["mean"] == 125 and t["total"] == 250 and (t["improvements"], t["regressions"]) == (0, 1)
    c = m["estimated_cost"]
    assert c["mean"] == 0.01 and c["count"] == 1 and (c["improvements"], c["regressions"]) == (1, 0)
    e = m["errors"]
    assert e["mean"] == 0 and e["base_mean"] == 0.5 and e["diff"] == -0.5
    assert (e["improvements"], e["regressions"]) == (1, 0)


def test_custom_comparison_key_recomputes_the_matching(store):
    base = experiment(store, "base", [
        ({"q": "What is 2+2?"}, {"acc": 0.0}, {"metadata": {"case": 1}}),
        ({"q": "Capital of France?"}, {"acc": 1.0}, {"metadata": {"case": 2}}),
    ])
    this = experiment(store, "this", [  # reworded prompts: the inputs no longer match
        ({"q": "Compute 2+2."}, {"acc": 1.0}, {"metadata": {"case": 1}}),
        ({"q": "France's capital?"}, {"acc": 1.0}, {"metadata": {"case": 2}}),
    ])
    assert summarize(store, this, base)["matched"] == 0
    update_project_settings(store, find_experiment(store, this)["project_id"], comparison_key="metadata.case")
    s = summarize(store, this, base)
    assert s["matched"] == 2 and s["scores"]["acc"]["improvements"] == 1 and s["scores"]["acc"]["regressions"] == 0


def test_inputs_match_as_canonical_json(store):
    base = experiment(store, "base", [({"a": 1, "b": [1, 2]}, {"acc": 0.0})])
    this = experiment(store, "this", [({"b": [1, 2], "a": 1}, {"acc": 1.0})])  # same object, other key order
    assert summarize(store, this, base)["scores"]["acc"]["improvements"] == 1


def test_compare_frames_on_hand_made_frames():
    this = pl.DataFrame({
        "comparison_key": ["k1", "k1", "k2", None],
        "scores.f": [0.2, 0.4, 0.9, 1.0],
        "duration": [1.0, 3.0, 2.0, 2.0],
        "has_error": [False, True, False, False],
    })
    base = pl.DataFrame({"comparison_key": ["k1", "k2", "k3"], "scores.f": [0.3, 0.9, 0.0]})
    r = compare_frames(this, base)
    assert r["traces"] == 4 and r["base_traces"] == 3
    assert r["matched"] == 2 and r["unmatched"] == 0 and r["base_unmatched"] == 1  # a null key matches nothing
    f = r["scores"]["f"]
    assert f["mean"] == pytest.approx(0.625) and f["base_mean"] == pytest.approx(0.4)
    # k1: mean(0.2, 0.4) = 0.3 equals 0.3 up to float noise: neither; k2 unchanged
    assert (f["improvements"], f["regressions"]) == (0, 0)
    assert r["metrics"]["duration"]["base_mean"] is None and r["metrics"]["duration"]["improvements"] == 0
    assert r["metrics"]["errors"]["mean"] == 0.25 and r["metrics"]["errors"]["total"] == 1
    assert "tokens" not in r["metrics"]  # no values on either side

    alone = compare_frames(this)
    assert alone["matched"] is None and alone["scores"]["f"]["improvements"] is None
    assert alone["scores"]["f"]["diff"] is None and alone["scores"]["f"]["mean"] == pytest.approx(0.625)

    empty = compare_frames(pl.DataFrame(), pl.DataFrame())
    assert empty["traces"] == 0 and empty["matched"] == 0 and empty["scores"] == {}


def test_resolve_baseline_order(store):
    def make(name, **kw):
        eid = create_experiment(store, "proj", name, **kw)
        time.sleep(0.002)  # distinct creation times
        return eid

    first = make("first")
    assert resolve_baseline(store, first) is None  # nothing earlier
    second = make("second")
    pinned = make("pinned")
    third = make("third")
    with_base = make("with-base", base_exp_id=second)
    # most recent earlier experiment of the project
    assert resolve_baseline(store, third) == pinned
    assert resolve_baseline(store, second) == first
    # the project baseline beats "most recent earlier"
    update_project_settings(store, find_experiment(store, third)["project_id"], baseline_experiment_id=pinned)
    assert resolve_baseline(store, third) == pinned
    assert resolve_baseline(store, second) == pinned
    assert resolve_baseline(store, pinned) == second  # never itself: falls through to the earlier one
    # the experiment's own base beats the project baseline
    assert resolve_baseline(store, with_base) == second
    # an explicit choice beats everything: by id, project/name, or name in the project
    assert resolve_baseline(store, with_base, explicit=first) == first
    assert resolve_baseline(store, with_base, explicit="proj/third") == third
    assert resolve_baseline(store, with_base, explicit="third") == third
    with pytest.raises(NotFound):
        resolve_baseline(store, with_base, explicit="missing")
    # experiments of other projects are never picked implicitly
    other = create_experiment(store, "elsewhere", "x")
    assert resolve_baseline(store, other) is None


def test_summarize_picks_the_baseline_itself_or_none(store):
    a = experiment(store, "a", [("q", {"acc": 0.0})])
    time.sleep(0.002)
    b = experiment(store, "b", [("q", {"acc": 1.0})])
    s = summarize(store, b)
    assert s["base_experiment"]["id"] == a and s["scores"]["acc"]["improvements"] == 1
    s = summarize(store, b, compare=False)
    assert s["base_experiment"] is None and s["matched"] is None and s["scores"]["acc"]["mean"] == 1.0


def test_summary_text_shows_means_diffs_and_counts(store):
    base = experiment(store, "base", [("a", {"acc": 0.5}, {"duration": 2.0}), ("b", {"acc": 0.5})])
    this = experiment(store, "this", [("a", {"acc": 1.0}, {"duration": 1.5}), ("b", {"acc": 0.25})])
    text = summary_text(summarize(store, this, base))
    assert "Experiment proj/this: 2 traces" in text
    assert "Compared with proj/base: 2 matched rows" in text
    acc_line = next(line for line in text.splitlines() if line.strip().startswith("acc"))
    assert "62.50%" in acc_line and "+12.50pp" in acc_line
    assert "1 improvements" in acc_line and "1 regressions" in acc_line
    dur_line = next(line for line in text.splitlines() if line.strip().startswith("duration"))
    assert "1.250s" in dur_line and "-0.250s" in dur_line


def test_compare_frames_is_fast_on_100k_rows():
    n = 100_000
    keys = [f"{i * 2654435761 % 2**32:024x}" for i in range(n // 2)] * 2  # two trials per key
    frame = pl.DataFrame({
        "comparison_key": keys,
        **{f"scores.s{j}": [((i * 7 + j) % 101) / 100 for i in range(n)] for j in range(5)},
        "duration": [float(i % 13) for i in range(n)],
        "tokens": [i % 1000 for i in range(n)],
        "has_error": [i % 10 == 0 for i in range(n)],
    })
    other = frame.with_columns(pl.col("scores.s0").reverse())
    compare_frames(frame, other)  # warm up
    t0 = time.perf_counter()
    r = compare_frames(frame, other)
    elapsed = time.perf_counter() - t0
    assert r["matched"] == n // 2
    assert elapsed < 0.5, f"compare_frames took {elapsed * 1000:.0f} ms on 100k rows"
