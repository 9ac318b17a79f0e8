"""Comparing experiments: matching, trials, nulls, metrics, baselines, on known answers."""

from __future__ import annotations

import time

import polars as pl
import pytest

from evaltui.query.compare import (
    compare_frames,
    resolve_baseline,
    summarize,
    summary_text,
)
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
    assert "Compared with proj/base: 2 matched cases" in text
    acc_line = next(line for line in text.splitlines() if line.strip().startswith("acc"))
    assert "62.50%" in acc_line and "+12.50pp" in acc_line
    assert "1 improvements" in acc_line and "1 regressions" in acc_line
    dur_line = next(line for line in text.splitlines() if line.strip().startswith("duration"))
    assert "1.250s" in dur_line and "-0.250s" in dur_line


def test_compare_frames_matches_two_trials_per_key_on_100k_rows():  # its speed: `evaltui bench` (compare)
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
    r = compare_frames(frame, other)
    assert r["matched"] == n // 2
    assert (r["traces"], r["unmatched"], r["base_unmatched"]) == (n, 0, 0)
    s1 = r["scores"]["s1"]  # the same on both sides
    assert (s1["diff"], s1["improvements"], s1["regressions"]) == (0, 0, 0)


# -- per-row deltas (the TUI's table), the comparison key, the summary table, diffs ---------

from evaltui.query.compare import (
    compare_many,
    histogram,
    join_row_deltas,
    parse_comparison_key,
    row_deltas,
    summary_rows,
    table_csv,
    table_html,
    table_markdown,
)
from evaltui.query.textdiff import as_text, diff_stats, word_diff
from evaltui.store import load_trace_rows


def _rows(store, eid):
    return load_trace_rows(store, eid)


def _by_input(frame, deltas, col):
    """{input preview: value of deltas[col]} for the rows of frame (inputs are plain strings here)."""
    joined = join_row_deltas(frame, deltas)
    return dict(zip(joined["input"].to_list(), joined[col].to_list(), strict=True))


def test_row_deltas_trials_share_their_case_delta_and_counts_agree(store):
    base = experiment(store, "base", [("a", {"acc": 0.5}), ("b", {"acc": 0.5}), ("c", {"acc": 1.0})])
    this = experiment(store, "this", [
        ("a", {"acc": 0.0}), ("a", {"acc": 1.0}), ("a", {"acc": 0.8}),  # case mean 0.6: +0.1
        ("b", {"acc": 0.4}), ("b", {"acc": 0.6}),                      # case mean 0.5: unchanged
        ("c", {"acc": 0.0}),                                           # -1.0
    ])
    t, b = _rows(store, this), _rows(store, base)
    d = row_deltas(t, b)
    assert d.height == t.height and d["root_span_id"].to_list() == t["root_span_id"].to_list()  # this's order
    joined = join_row_deltas(t, d)
    deltas = {}
    for inp, delta in zip(joined["input"], joined["compare.delta.scores.acc"], strict=True):
        deltas.setdefault(inp, set()).add(round(delta, 9))
    assert deltas == {"a": {0.1}, "b": {0.0}, "c": {-1.0}}
    assert joined["compare.base.scores.acc"].to_list().count(0.5) == 5
    # the rows flagged improved / regressed are exactly compare_frames' cases
    summary = compare_frames(t, b)["scores"]["acc"]
    up = joined.filter(pl.col("compare.improved.scores.acc"))
    down = joined.filter(pl.col("compare.regressed.scores.acc"))
    assert up["comparison_key"].n_unique() == summary["improvements"] == 1 and up.height == 3
    assert down["comparison_key"].n_unique() == summary["regressions"] == 1 and down.height == 1


def test_row_deltas_unmatched_and_null_scores(store):
    base = experiment(store, "base", [("a", {"acc": 0.5}), ("b", {"acc": None}), ("gone", {"acc": 1.0})])
    this = experiment(store, "this", [("a", {"acc": None}), ("b", {"acc": 1.0}), ("new", {"acc": 0.0})])
    t, b = _rows(store, this), _rows(store, base)
    d = row_deltas(t, b)
    match = _by_input(t, d, "compare.match")
    assert sorted(match.values()) == ["matched", "matched", "no match"]
    assert [v for k, v in match.items() if "new" in k] == ["no match"]
    delta = _by_input(t, d, "compare.delta.scores.acc")
    assert all(v is None for v in delta.values())  # a: this null; b: base null; new: no partner
    improved = _by_input(t, d, "compare.improved.scores.acc")
    regressed = _by_input(t, d, "compare.regressed.scores.acc")
    assert not any(improved.values()) and not any(regressed.values())  # never null: False


def test_row_deltas_metrics_lower_is_better(store):
    base = experiment(store, "base", [("a", None, {"duration": 2.0, "tokens": 100}),
                                      ("b", None, {"duration": 1.0, "tokens": 100, "error": "boom"})])
    this = experiment(store, "this", [("a", None, {"duration": 1.0, "tokens": 150}),
                                      ("b", None, {"duration": 3.0, "tokens": 100})])
    t, b = _rows(store, this), _rows(store, base)
    d = row_deltas(t, b)
    assert _by_input(t, d, "compare.delta.duration") == {'a': -1.0, 'b': 2.0}
    assert _by_input(t, d, "compare.improved.duration") == {'a': True, 'b': False}
    assert _by_input(t, d, "compare.regressed.tokens") == {'a': True, 'b': False}
    assert _by_input(t, d, "compare.improved.has_error") == {'a': False, 'b': True}  # fixed the error


def test_row_deltas_follow_a_custom_comparison_key(store):
    base = experiment(store, "base", [({"q": "2+2?"}, {"acc": 0.0}, {"metadata": {"case": 1}}),
                                      ({"q": "France?"}, {"acc": 1.0}, {"metadata": {"case": 2}})])
    this = experiment(store, "this", [({"q": "Compute 2+2."}, {"acc": 1.0}, {"metadata": {"case": 1}}),
                                      ({"q": "Capital of France?"}, {"acc": 1.0}, {"metadata": {"case": 2}})])
    assert set(row_deltas(_rows(store, this), _rows(store, base))["compare.match"]) == {"no match"}
    spec = parse_comparison_key("[metadata.case]")
    update_project_settings(store, find_experiment(store, this)["project_id"], comparison_key=spec)
    d = row_deltas(_rows(store, this), _rows(store, base))
    assert set(d["compare.match"]) == {"matched"}
    assert sorted(d["compare.delta.scores.acc"].to_list()) == [0.0, 1.0]


def test_join_row_deltas_replaces_old_columns_and_marks_new_rows():
    frame = pl.DataFrame({"root_span_id": ["r1", "r2", "r3"], "compare.match": ["x", "x", "x"]})
    deltas = pl.DataFrame({"root_span_id": ["r2", "r1"], "compare.match": ["matched", "no match"]})
    out = join_row_deltas(frame, deltas)
    assert out["root_span_id"].to_list() == ["r1", "r2", "r3"]
    assert out["compare.match"].to_list() == ["no match", "matched", "no match"]


def test_parse_comparison_key():
    assert parse_comparison_key(" input ") == "input"
    assert parse_comparison_key("input.question") == "input.question"
    assert parse_comparison_key("[input.q, metadata.category]") == ["input.q", "metadata.category"]
    assert parse_comparison_key("metadata.items[0]") == "metadata.items.0"
    for bad, words in [("", "empty"), ("input, metadata.x", "brackets"), ("scores.acc", "starts with"),
                       ("[input, 3x!]", "path 2"), ("input..q", "not a path")]:
        with pytest.raises(ValueError, match=words):
            parse_comparison_key(bad)


def test_summary_rows_and_exports(store):
    a = experiment(store, "a", [("x", {"acc": 0.5}), ("y", {"acc": 1.0})])
    b = experiment(store, "b", [("x", {"acc": 1.0}), ("y", {"acc": 0.0})])
    c = experiment(store, "c", [("x", {"acc": 0.5})])
    results = compare_many(_rows(store, c), [_rows(store, a), _rows(store, b)])
    head, rows = summary_rows("c", ["a", "b"], results)
    assert head == ["metric", "c", "a", "diff vs a", "↑↓ vs a", "b", "diff vs b", "↑↓ vs b"]
    acc = next(r for r in rows if r[0] == "acc")
    # c has 0.5 on x: vs a (0.75 mean, x unchanged), vs b (0.5 mean, x: 0.5 < 1.0)
    assert acc == ["acc", "50.00%", "75.00%", "-25.00pp", "↑0 ↓0", "50.00%", "+0.00pp", "↑0 ↓1"]
    md = table_markdown(head, rows)
    assert md.splitlines()[0].startswith("| metric | c | a |") and "| acc | 50.00% |" in md
    csv_text = table_csv(head, rows)
    assert csv_text.splitlines()[0] == "metric,c,a,diff vs a,↑↓ vs a,b,diff vs b,↑↓ vs b"
    html = table_html(head, rows, "c <vs> a")
    assert "<caption>c &lt;vs&gt; a</caption>" in html and "<td>-25.00pp</td>" in html
    alone_head, alone_rows = summary_rows("c", [], [], compare_frames(_rows(store, c)))
    assert alone_head == ["metric", "c"] and ["acc", "50.00%"] in alone_rows


def test_histogram_bins():
    f = pl.DataFrame({"scores.a": [0.0, 0.05, 0.5, 1.0, None], "duration": [1.0, 1.0, 2.0, 3.0, 3.0]})
    assert histogram(f, "scores.a", 4) == [2, 0, 1, 1]  # scores over [0, 1]; 1.0 in the last bin
    assert histogram(f, "duration", 2) == [2, 3]
    assert histogram(f, "missing", 3) == [0, 0, 0]


def test_word_diff_reassembles_both_sides():
    ops = word_diff("the cat sat on the mat", "the dog sat on a mat")
    assert ops == [("equal", "the "), ("delete", "cat"), ("insert", "dog"), ("equal", " sat on "),
                   ("delete", "the"), ("insert", "a"), ("equal", " mat")]
    assert diff_stats(ops) == {"deleted": 2, "inserted": 2, "equal": 4}
    assert word_diff("same\ntext", "same\ntext") == [("equal", "same\ntext")]
    assert as_text({"b": 1, "a": [1]}) == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}' and as_text(None) == ""


def test_word_diff_of_a_megabyte_is_exact_and_quick():
    import random

    rng = random.Random(5)
    words = [rng.choice(("alpha", "beta", "gamma", "delta", "eps")) + str(rng.randint(0, 99)) for _ in range(150_000)]
    old = " ".join(words)
    changed = list(words)
    for i in range(0, len(changed), 5000):
        changed[i] = "CHANGED"
    changed.insert(70_000, "INSERTED here")
    new = " ".join(changed)
    assert len(old) > 1_000_000
    start = time.perf_counter()
    ops = word_diff(old, new)
    took = time.perf_counter() - start
    assert "".join(t for o, t in ops if o != "insert") == old
    assert "".join(t for o, t in ops if o != "delete") == new
    changed_words = diff_stats(ops)
    # 30 words replaced + 2 inserted, found word by word (not as one huge replacement)
    assert changed_words["inserted"] == 32 and changed_words["deleted"] == 30
    assert took < 20  # seconds, on a loaded 2-core machine; about 0.5 s when quiet
