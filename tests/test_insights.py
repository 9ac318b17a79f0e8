"""Insights on experiments whose patterns are known: planted low-scoring groups, error
families, concentrated regressions, (anti-)correlated scorers, trends; the demo; speed."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import time
from itertools import combinations
from typing import Any

import polars as pl
import pytest

from evaltui.query.compare import compare_frames
from evaltui.query.filter import filter_frame
from evaltui.query.insights import (
    analysis_text,
    analyze,
    compute_insights,
    error_clusters,
    fisher_upper_p,
    low_score_patterns,
    mann_whitney_lower_p,
    normalize_messages,
    output_feature_counts,
    score_histograms,
    score_trends,
    scorer_agreement,
    summary_insights,
    what_changed,
)
from evaltui.store import create_experiment, load_experiments, load_trace_rows, write_spans
from evaltui.store.writers import new_id


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))


def add_trace(store, eid, input, scores=None, *, metadata=None, tags=None, output="A fine answer.",
              error=None, scorer_errors=None, created=None) -> str:
    """One trace as Eval writes it: a root span and a score span; scorer errors in the root's metadata."""
    root = new_id()
    md = dict(metadata or {})
    if scorer_errors:
        md["scorer_errors"] = scorer_errors
    recs = [{"id": new_id(), "experiment_id": eid, "span_id": root, "root_span_id": root,
             "span_attributes": {"name": "eval", "type": "eval"}, "input": input,
             "output": None if error else output, "metadata": md or None, "tags": tags, "error": error,
             "metrics": {"start": 1000.0, "end": 1001.0}, "created": created}]
    if scores:
        recs.append({"id": new_id(), "experiment_id": eid, "span_id": new_id(), "root_span_id": root,
                     "span_parents": [root], "span_attributes": {"name": "scorer", "type": "score"},
                     "scores": scores})
    write_spans(store, recs)
    return root


def assert_rows_reproduced(frame: pl.DataFrame, finding: dict[str, Any]) -> None:
    """The finding's filter selects exactly its rows, in the table's order."""
    assert finding["filter"], finding
    got = filter_frame(frame, finding["filter"])["root_span_id"].to_list()
    assert got == finding["row_ids"], finding["filter"]
    assert finding["row_count"] == len(got) and not finding["row_ids_cut"]


def walk_findings(obj: Any):
    if isinstance(obj, dict):
        if "row_ids" in obj:
            yield obj
        for v in obj.values():
            yield from walk_findings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk_findings(v)


# -- a planted low-scoring category and two error families ---------------------------------------


@pytest.fixture
def planted(store):
    """60 scored cases: category 'c' passes 20% of the time, 'a' and 'b' 80%; 5 timeouts and
    3 KeyErrors; 4 unparsable judge verdicts."""
    rng = random.Random(3)
    eid = create_experiment(store, "proj", "planted")
    for i in range(60):
        cat = "abc"[i % 3]
        rate = 0.2 if cat == "c" else 0.8
        # exactly rate x 20 passes per category, in a shuffled order
        passed = (i // 3) < rate * 20
        fact = rng.choice([0.25, 0.5, 0.75, 1.0])
        add_trace(store, eid, f"q{i}", {"acc": 1.0 if passed else 0.0, "fact": fact},
                  metadata={"category": cat, "difficulty": rng.choice(["easy", "hard"]), "n": i % 2},
                  tags=[cat, "x"] if i % 2 else ["y"])
    timeouts = [("Timeout after 30s on req 123"), ("Timeout after 12s on req 9"),
                ("Timeout after 7s on req 45678"), ("Timeout after 30s on req 1"), ("Timeout after 1s on req 22")]
    for i, msg in enumerate(timeouts):
        add_trace(store, eid, f"t{i}", metadata={"category": "a"}, error=msg)
    for i in range(3):
        add_trace(store, eid, f"k{i}", metadata={"category": "b"}, error="KeyError: 'answer'")
    for i in range(4):
        verdict = ["The submitted answer is", "I cannot evaluate this answer.", '```json\n{"choice": "C"'][i % 3]
        add_trace(store, eid, f"s{i}", {"acc": 1.0}, metadata={"category": "a"},
                  scorer_errors={"fact": f"JudgeParseError: could not parse the judge's verdict: {verdict!r}"})
    return eid


def test_planted_category_is_found_and_ranked_first(store, planted):
    frame = load_trace_rows(store, planted)
    out = low_score_patterns(frame)
    best = out["top"][0]
    assert (best["score"], best["group"]) == ("acc", "metadata.category = 'c'")
    assert best["kind"] == "metadata" and best["count"] == 20
    assert best["mean_in"] == pytest.approx(0.2) and best["mean_out"] == pytest.approx(0.8 * 40 / 44 + 4 / 44)
    assert best["significant"] and best["p_value"] < 1e-4
    assert best["lift"] == pytest.approx(0.8 / (24 / 64))  # 16 of 20 low in c; 24 of 64 overall
    assert best["rank"] == max(it["rank"] for it in out["top"])
    # the tag 'c' holds half of category c's rows: a group of its own; category c's rows are found
    assert best["filter"] == "metadata.category = 'c' and scores.acc < 0.5"
    assert_rows_reproduced(frame, best)
    assert len(best["row_ids"]) == 16
    # nothing else about acc is significant (the rest is balanced by construction)
    # (tag 'c', half of category c, is low too, and ranks below it)
    assert [it["group"] for it in out["by_score"]["acc"] if it["significant"]] == [
        "metadata.category = 'c'", "tags includes 'c'"]
    for items in out["by_score"].values():
        for it in items:
            assert_rows_reproduced(frame, it)
            assert filter_frame(frame, it["scope_filter"]).height >= it["count"]
    assert out["tests"] > 0 and "rank" in out["rule"]


def test_error_families_are_clustered(store, planted):
    frame = load_trace_rows(store, planted)
    out = error_clusters(frame)
    assert out["task_total"] == 8
    assert [(c["template"], c["count"]) for c in out["task"]] == [
        ("Timeout after <N>s on req <N>", 5), ("KeyError: '<str>'", 3)]
    assert out["task"][0]["example"] == "Timeout after 30s on req 123"
    for c in out["task"]:
        assert_rows_reproduced(frame, c)
        assert c["filter"].startswith("error match ")
    # scorer errors: one family despite three different verdicts (quotes, an apostrophe, JSON)
    assert out["scorer_total"] == 4
    (judge,) = out["scorer"]
    assert judge["scorer"] == "fact" and judge["count"] == 4
    assert judge["template"] == "JudgeParseError: could not parse the judge's verdict: '<str>'"
    assert_rows_reproduced(frame, judge)


def test_scorer_errors_without_messages_form_one_cluster():
    frame = pl.DataFrame({"root_span_id": ["r1", "r2", "r3"], "scorer_errors": [1, 0, 2],
                          "error": [None, None, None]})
    out = error_clusters(frame)
    (silent,) = out["scorer"]
    assert silent["scorer"] is None and silent["count"] == 2 and silent["row_ids"] == ["r1", "r3"]
    assert silent["filter"] == "scorer_errors > 0"
    assert out["scorer_total"] == 2


@pytest.mark.parametrize(
    ("messages", "template"),
    [
        (["Timeout after 30s on req 123", "Timeout after 12.5s on req 9"], "Timeout after <N>s on req <N>"),
        (["KeyError: 'answer'", "KeyError: 'question'"], "KeyError: '<str>'"),
        (["run 0f8fad5b-d9cb-469f-a165-70867728950e failed", "run 7c9e6679-7425-40de-944b-e07fc1f90ae7 failed"],
         "run <uuid> failed"),
        (["object at 0x7f3a2c1b9d00 freed", "object at 0x10 freed"], "object at <hex> freed"),
        (["commit 3f9b2c1d4e5a6b7c missing", "commit a1b2c3d4e5f60718 missing"], "commit <hex> missing"),
        (["No such file: /tmp/run-1/out.json", "No such file: /srv/data/x.json"], "No such file: <path>"),
        (["GET https://api.example.com/v2/items?id=4 failed", "GET http://localhost:8080/x failed"],
         "GET <url> failed"),
        (["the judge's verdict: 'no'", "the judge's verdict: 'it's fine'"], "the judge's verdict: '<str>'"),
        (['bad field "name" at line 3', 'bad field "id" at line 14'], 'bad field "<str>" at line <N>'),
        (["rate limit for gpt-4o-mini-2024-07-18, retry in 561ms",
          "rate limit for gpt-4o-mini-2024-07-18,\nretry in 2ms"],
         "rate limit for gpt-4o-mini-<N>-<N>-<N>, retry in <N>ms"),
    ],
)
def test_normalize_messages_masks_variable_parts(messages, template):
    got = pl.DataFrame({"m": messages}).select(normalize_messages(pl.col("m")))["m"].to_list()
    assert got == [template] * len(messages)


def test_summary_of_known_values():
    frame = pl.DataFrame({
        "root_span_id": [f"r{i}" for i in range(11)],
        "scores.acc": [i / 10 for i in range(11)],
        "duration": [float(i) for i in range(11)],
        "error": [None] * 9 + ["boom", "boom"],
        "has_error": [False] * 9 + [True, True],
        "scorer_errors": [0] * 10 + [1],
        "review_status": ["reviewed"] * 2 + ["unreviewed"] * 9,
    })
    s = summary_insights(frame, cases=2)
    acc = s["scores"]["acc"]
    assert acc["count"] == 11 and acc["mean"] == pytest.approx(0.5)
    assert (acc["p10"], acc["p50"], acc["p90"]) == pytest.approx((0.1, 0.5, 0.9))
    assert acc["std"] == pytest.approx(math.sqrt(sum((i / 10 - 0.5) ** 2 for i in range(11)) / 10))
    assert [c["root_span_id"] for c in acc["worst"]] == ["r0", "r1"]
    assert [c["root_span_id"] for c in acc["best"]] == ["r10", "r9"]
    dur = s["metrics"]["duration"]
    assert dur["lower_is_better"] and [c["root_span_id"] for c in dur["worst"]] == ["r10", "r9"]
    assert s["errors"]["row_ids"] == ["r9", "r10"] and s["errors"]["filter"] == "error is not null"
    assert s["scorer_errors"]["row_ids"] == ["r10"]
    assert s["reviewed"] == 2 and s["reviewed_share"] == pytest.approx(2 / 11)
    for f in walk_findings(s):
        assert_rows_reproduced(frame, f)


def test_output_features_find_empty_refusals_truncation_and_invalid_json():
    prose = "This is a complete answer that explains the steps clearly."
    outputs = (
        ['{"answer": "yes"}'] * 6
        + ["", "   ", "I'm sorry, I can't help with that request today."]
        + ['{"answer": "the refund was issued on the fourth of', "not json at all"]
        + ["I am unable to assist with this one, sorry about that."]
        + [prose]
    )
    n = len(outputs)
    frame = pl.DataFrame({
        "root_span_id": [f"r{i}" for i in range(n)],
        "output": outputs,
        "expected": ['{"answer": "yes"}'] * n,
        "error": [None] * n,
        "scores.ok": [1.0] * 6 + [0.0] * (n - 6),
    })
    found = {o["feature"]: o for o in output_feature_counts(frame)}
    assert found["empty"]["row_ids"] == ["r6", "r7"]
    assert found["refusal"]["row_ids"] == ["r8", "r11"]
    assert found["truncated"]["row_ids"] == ["r9"]  # the cut JSON; the prose ends in a full stop
    assert set(found["invalid_json"]["row_ids"]) == {"r8", "r9", "r10", "r11", "r12"}
    assert found["invalid_json"]["filter"] is None  # the filter language cannot parse JSON
    for o in found.values():
        assert o["low"] == o["row_count"] and o["low_rate"] == 1.0
        if o["filter"]:
            assert_rows_reproduced(frame, o)


# -- what changed -----------------------------------------------------------------------------------


def test_regressions_concentrate_in_one_metadata_value(store):
    base = create_experiment(store, "proj", "base")
    this = create_experiment(store, "proj", "this")
    regressed = []
    for i in range(90):
        cat = ["billing", "shipping", "technical"][i % 3]
        add_trace(store, base, f"q{i}", {"acc": 1.0, "tone": 0.5}, metadata={"category": cat}, tags=[cat])
        # technical falls on 25 of its 30 cases, the rest on 2 of 60; tone never changes
        falls = (cat == "technical" and i < 75) or i in (1, 3)
        rid = add_trace(store, this, f"q{i}", {"acc": 0.0 if falls else 1.0, "tone": 0.5},
                        metadata={"category": cat}, tags=[cat])
        if falls:
            regressed.append((cat, rid))
    frame, base_frame = load_trace_rows(store, this), load_trace_rows(store, base)
    out = what_changed(frame, base_frame)
    cmp = compare_frames(frame, base_frame)
    acc = out["scores"]["acc"]
    assert (acc["regressions"], acc["improvements"]) == (cmp["scores"]["acc"]["regressions"], 0) == (27, 0)
    top = out["concentrations"][0]
    assert (top["score"], top["group"]) == ("acc", "metadata.category = 'technical'")
    assert top["same_rows_as"] == ["tags includes 'technical'"]  # the mirror tag is folded in
    assert (top["regressions"], top["rows"]) == (25, 30)
    assert top["share_of_regressions"] == pytest.approx(25 / 27) and top["share_of_rows"] == pytest.approx(1 / 3)
    assert top["lift"] == pytest.approx((25 / 30) / (27 / 90))
    assert top["significant"] and top["p_value"] < 1e-6
    assert top["row_ids"] == [rid for cat, rid in regressed if cat == "technical"]
    assert top["filter"] is None and top["scope_filter"] == "metadata.category = 'technical'"
    assert len(out["concentrations"]) == 1  # 2 regressions elsewhere concentrate nowhere
    assert out["scores"]["tone"]["concentrations"] == [] and out["scores"]["tone"]["regressions"] == 0
    moved = acc["moved_most"]["regressions"]
    assert len(moved) == 5 and all(m["delta"] == -1.0 for m in moved)
    assert all(len(m["row_ids"]) == 1 and len(m["base_row_ids"]) == 1 for m in moved)
    assert acc["moved_most"]["improvements"] == []


def test_fisher_upper_tail_matches_exact_sum():
    def exact(k, n, big_k, big_n):
        total = sum(math.comb(big_k, x) * math.comb(big_n - big_k, n - x) for x in range(k, min(n, big_k) + 1))
        return total / math.comb(big_n, n)

    for big_n, big_k, n in [(20, 7, 5), (90, 27, 30), (200, 60, 40), (1000, 100, 300)]:
        for k in range(min(n, big_k) + 2):
            assert fisher_upper_p(k, n, big_k, big_n) == pytest.approx(exact(k, n, big_k, big_n), rel=1e-9, abs=1e-15)


def test_mann_whitney_is_close_to_the_exact_permutation_p():
    # group [1, 2, 4] among [1..9]: exact one-sided p by enumerating every 3-subset's rank sum
    values = list(range(1, 10))
    observed = 1 + 2 + 4
    sums = [sum(c) for c in combinations(values, 3)]
    exact = sum(s <= observed for s in sums) / len(sums)
    approx = mann_whitney_lower_p(observed, 3, 9, 0.0)
    assert approx == pytest.approx(exact, abs=0.01)
    # every value tied: no evidence either way
    assert mann_whitney_lower_p(3 * 5.0, 3, 9, 9**3 - 9) == 1.0
    assert mann_whitney_lower_p(10, 0, 9, 0.0) is None


# -- agreement, trends, histograms ----------------------------------------------------------------


def test_scorer_agreement_on_correlated_and_anticorrelated_scores():
    rng = random.Random(5)
    a = [rng.random() for _ in range(200)]
    frame = pl.DataFrame({
        "root_span_id": [f"r{i}" for i in range(200)],
        "scores.auto": a,
        "scores.same": [min(1.0, x * 0.9 + 0.05) for x in a],  # monotone: rank-identical
        "scores.flip": [1 - x for x in a],
        "scores.human": [None if i % 4 else round(x) * 1.0 for i, x in enumerate(a)],
    })
    pairs = {(p["a"], p["b"]): p for p in scorer_agreement(frame, human_scores=["human"])}
    same = pairs[("auto", "same")]
    assert same["pearson"] == pytest.approx(1.0) and same["spearman"] == pytest.approx(1.0)
    assert same["n"] == 200 and same["agreement"] > 0.9 and same["kind"] == "automatic"
    flip = pairs[("auto", "flip")]
    assert flip["pearson"] == pytest.approx(-1.0) and flip["spearman"] == pytest.approx(-1.0)
    assert flip["agreement"] < 0.05 and flip["kappa"] < -0.9
    human = pairs[("auto", "human")]
    assert human["kind"] == "human-automatic" and human["n"] == 50 and human["agreement"] == 1.0
    # pairwise-complete rows: the spearman of a pair with a sparse score is ranked on its 50 rows
    sub = frame.filter(pl.col("scores.human").is_not_null())
    want = sub.select(pl.corr("scores.flip", "scores.human", method="spearman")).item()
    assert pairs[("flip", "human")]["spearman"] == pytest.approx(want)
    assert next(iter(scorer_agreement(frame, human_scores=["human"])))["kind"] == "human-automatic"
    for p in pairs.values():
        assert p["both_pass"] + p["both_fail"] + p["a_only"] + p["b_only"] == p["n"]
        assert p["row_count"] == p["a_only"] + p["b_only"]
        assert_rows_reproduced(frame, p)


def test_trends_across_three_experiments(store):
    ids = []
    for n, (name, mean) in enumerate([("first", 0.2), ("second", 0.5), ("third", 0.8)]):
        eid = create_experiment(store, "proj", name, created=f"2024-0{n + 1}-01T00:00:00+00:00")
        ids.append(eid)
        for i in range(4):
            add_trace(store, eid, f"q{i}", {"acc": mean, **({"extra": 1.0} if name == "second" else {})})
    trends = score_trends(load_experiments(store, "proj"))
    assert [(p["experiment"], p["mean"]) for p in trends["acc"]] == [
        ("first", pytest.approx(0.2)), ("second", pytest.approx(0.5)), ("third", pytest.approx(0.8))]
    assert [p["id"] for p in trends["acc"]] == ids
    assert [p["experiment"] for p in trends["extra"]] == ["second"]
    result = analyze(store, ids[2])
    assert result["trends"]["acc"][-1]["experiment"] == "third"
    assert result["base_experiment"]["name"] == "second"  # the most recent earlier one
    assert "first 20.0% → second 50.0% → third 80.0%" in analysis_text(result)


def test_histograms_bin_scores():
    frame = pl.DataFrame({"root_span_id": list("abcdef"), "scores.s": [0.0, 0.05, 0.5, 0.99, 1.0, None]})
    h = score_histograms(frame, bins=4)["s"]
    assert h["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert h["counts"] == [2, 0, 1, 2] and h["count"] == 5 and h["nulls"] == 1 and h["out_of_range"] == 0


# -- analyze ---------------------------------------------------------------------------------------


def test_analyze_is_json_and_every_filter_reproduces_its_rows(store, planted):
    result = analyze(store, planted, max_ids=None)
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["experiment"]["name"] == "planted"
    assert result["changes"] is None and result["base_experiment"] is None
    frame = load_trace_rows(store, planted)
    checked = 0
    for f in walk_findings(result):
        if f.get("filter"):
            assert_rows_reproduced(frame, f)
            checked += 1
    assert checked >= 10
    out = analysis_text(result)
    assert "metadata.category = 'c'" in out and "Timeout after <N>s on req <N>" in out
    assert "no baseline" in out


def test_analyze_with_a_filter_narrows_both_sides(store):
    base = create_experiment(store, "proj", "base")
    this = create_experiment(store, "proj", "this", base_exp_id=base)
    for i in range(30):
        cat = "ab"[i % 2]
        add_trace(store, base, f"q{i}", {"acc": 1.0}, metadata={"category": cat})
        add_trace(store, this, f"q{i}", {"acc": 0.0 if cat == "a" else 1.0}, metadata={"category": cat})
    result = analyze(store, this, filter_text="metadata.category = 'b'")
    assert result["traces"] == 15 and result["filter"] == "metadata.category = 'b'"
    changes = result["changes"]
    assert changes["base_traces"] == 15 and changes["matched"] == 15
    assert changes["scores"]["acc"]["diff"] == 0 and changes["scores"]["acc"]["regressions"] == 0
    assert "(filter: metadata.category = 'b')" in analysis_text(result)


def test_empty_and_scoreless_frames():
    empty = pl.DataFrame(schema={"root_span_id": pl.String, "error": pl.String, "output": pl.String})
    for frame in (empty, pl.DataFrame({"root_span_id": ["a"], "error": [None], "output": ["hi"]},
                                      schema_overrides={"error": pl.String})):
        result = compute_insights(frame, frame)
        json.dumps(result, allow_nan=False)
        assert result["patterns"]["top"] == [] and result["agreement"] == []
        analysis_text(result)


def test_insights_modules_do_not_import_textual():
    code = ("import sys, evaltui.query.insights, evaltui.query.assistant;"
            "sys.exit('textual' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- the demo ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory):
    from evaltui.demo import write_demo

    db = tmp_path_factory.mktemp("demo") / "demo.db"
    write_demo(db)
    return db


def test_demo_analysis_finds_the_planted_regression_and_errors(demo_db):
    from evaltui.store import Store

    with Store(demo_db) as store:
        result = analyze(store, "demo-support-bot/gpt-4o-mini baseline", base_eid="demo-support-bot/gpt-4o",
                         max_ids=None)
        frame = load_trace_rows(store, result["experiment"]["id"])
    json.dumps(result, allow_nan=False)
    top = result["changes"]["concentrations"][0]
    assert top["group"] == "metadata.category = 'technical'" and top["significant"]
    assert "tags includes 'technical'" in top["same_rows_as"]
    best = result["patterns"]["top"][0]
    assert best["group"] == "metadata.category = 'technical'" and best["significant"]
    templates = [c["template"] for c in result["errors"]["task"]]
    assert len(templates) == 2
    assert any(t.startswith("APITimeoutError: Request timed out after <N> seconds") for t in templates)
    assert any(t.startswith("RateLimitError: Error code: <N> - Rate limit reached") for t in templates)
    assert sum(c["count"] for c in result["errors"]["task"]) == result["errors"]["task_total"] > 0
    (judge,) = result["errors"]["scorer"]
    assert judge["scorer"] == "Factuality" and judge["template"].startswith("JudgeParseError")
    for f in walk_findings(result):
        if f.get("filter"):
            assert_rows_reproduced(frame, f)
    text = analysis_text(result)
    assert "metadata.category = 'technical'" in text and "APITimeoutError" in text


# -- speed --------------------------------------------------------------------------------------------


def synthetic_frames(n: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two trace frames of ``n`` rows (built with polars expressions, not Python loops)."""
    i = pl.int_range(n, dtype=pl.Int64)

    def u(salt: int) -> pl.Expr:  # a uniform [0, 1) per row, from a hash
        return (pl.int_range(n, dtype=pl.Int64).hash(salt) % 10_000) / 10_000

    cats = pl.Series(["billing", "shipping", "returns", "account", "technical"])

    def frame(shift: float, prefix: str) -> pl.DataFrame:
        cat = pl.lit(cats).gather(i % 5)
        err = u(1) < 0.03
        quality = pl.when(cat == "technical").then(0.8 - shift).otherwise(0.8)
        return pl.select(
            pl.format(prefix + "{}", i).alias("root_span_id"),
            pl.format("2024-01-01T{}", i).alias("created"),
            (u(2) * 5).alias("duration"),
            (u(3) * 2000).cast(pl.Int64).alias("tokens"),
            err.alias("has_error"),
            (~err & (u(4) < 0.02)).cast(pl.Int64).alias("scorer_errors"),
            pl.when(err).then(pl.format("Timeout after {}s on req {}", (u(5) * 60).cast(pl.Int64), i)).alias("error"),
            pl.when(~err).then(pl.lit("word ").repeat_by((u(6) * 60).cast(pl.Int64) + 1).list.join("")).alias("output"),
            pl.format("k{}", i).alias("comparison_key"),
            pl.format('["{}"]', cat).alias("tags"),
            pl.when(i % 10 == 0).then(pl.lit("reviewed")).otherwise(pl.lit("unreviewed")).alias("review_status"),
            *[pl.when(~err).then((u(10 + k) < quality).cast(pl.Float64)).alias(f"scores.s{k}") for k in range(3)],
            pl.when(~err).then(u(20)).alias("scores.sim"),
            cat.alias("metadata.category"),
            pl.lit(pl.Series(["easy", "medium", "hard"])).gather(i % 3).alias("metadata.difficulty"),
            pl.format("t{}", i).alias("metadata.ticket"),
        )

    return frame(0.3, "r"), frame(0.0, "b")


def test_all_insights_of_100k_traces_are_fast():
    this, base = synthetic_frames(100_000)
    compute_insights(this, base, max_ids=1000)  # warm up
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        result = compute_insights(this, base, max_ids=1000)
        runs.append(time.perf_counter() - started)
    assert result["patterns"]["top"][0]["group"] == "metadata.category = 'technical'"
    assert result["changes"]["concentrations"][0]["group"] == "metadata.category = 'technical'"
    # the target is 1 s (about 0.5 s measured); the bound leaves room for a loaded CI machine
    assert min(runs) < 3.0, runs
