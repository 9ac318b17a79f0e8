"""Eval(): trace shape, trials, errors that do not stop the run, async, summaries."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import evaltui
from evaltui import Eval, EvalResult, Score
from evaltui.sdk.eval import EvalAsync
from evaltui.store import load_experiment_spans, load_trace_rows


def exact(output, expected):
    return output == expected


def traces_of(store, experiment_id):
    """{root input: [ {name: [span, ...]} per trace ]}"""
    by_root: dict[str, list[dict]] = {}
    for s in load_experiment_spans(store, experiment_id):
        by_root.setdefault(s["root_span_id"], []).append(s)
    out: dict = {}
    for spans in by_root.values():
        names: dict[str, list[dict]] = {}
        for s in spans:
            names.setdefault(s["span_attributes"]["name"], []).append(s)
        out.setdefault(names["eval"][0]["input"], []).append(names)
    return out


def test_eval_writes_root_task_and_score_spans(store, capsys):
    def length_ok(output):
        return Score("length_ok", len(output) <= 3, {"explanation": f"{len(output)} characters"})

    result = Eval(
        "qa",
        data=[
            {"input": "ab", "expected": "AB", "metadata": {"topic": "x"}, "tags": ["easy"], "id": "case-1"},
            {"input": "cdef", "expected": "nope"},
        ],
        task=lambda s: s.upper(),
        scores=[exact, length_ok],
        experiment_name="v1",
        db=store,
    )
    assert isinstance(result, EvalResult) and result.experiment_name == "v1" and result.project == "qa"
    traces = traces_of(store, result.experiment_id)
    (t1,) = traces["ab"]
    root, task = t1["eval"][0], t1["task"][0]
    assert root["span_parents"] == [] and root["span_attributes"]["type"] == "eval"
    assert root["input"] == "ab" and root["output"] == "AB" and root["expected"] == "AB"
    assert root["metadata"] == {"topic": "x"} and root["tags"] == ["easy"]
    assert root["dataset_record_id"] == "case-1"
    assert root["scores"] is None  # the root carries no scores itself
    assert task["span_parents"] == [root["span_id"]] and task["span_attributes"]["type"] == "task"
    assert task["input"] == "ab" and task["output"] == "AB"
    ex, ln = t1["exact"][0], t1["length_ok"][0]
    for s in (ex, ln):
        assert s["span_parents"] == [root["span_id"]] and s["span_attributes"]["type"] == "score"
    assert ex["scores"] == {"exact": 1.0}
    assert ln["scores"] == {"length_ok": 1.0} and ln["metadata"] == {"explanation": "2 characters"}
    (t2,) = traces["cdef"]
    assert t2["exact"][0]["scores"] == {"exact": 0.0} and t2["length_ok"][0]["scores"] == {"length_ok": 0.0}

    rows = load_trace_rows(store, result.experiment_id)
    assert rows.height == 2 and sorted(rows["span_count"].to_list()) == [4, 4]
    assert result.summary["scores"]["exact"]["mean"] == 0.5
    assert [r.scores for r in result.results] == [{"exact": 1.0, "length_ok": 1.0}, {"exact": 0.0, "length_ok": 0.0}]
    assert [r.output for r in result.results] == ["AB", "CDEF"]
    out = capsys.readouterr()
    assert "qa/v1: 2 traces" in out.out and "exact" in out.out and "50.00%" in out.out
    assert out.err == ""  # no progress bar when stderr is not a terminal


def test_summary_against_the_previous_experiment_matches_hand_computed_numbers(store, capsys):
    data = [{"input": c, "expected": c.upper()} for c in "abcd"]
    first = Eval("qa", data=data, task=lambda s: "X" if s == "c" else s.upper(),
                 scores=[exact], experiment_name="v1", db=store)
    assert first.summary["scores"]["exact"]["mean"] == 0.75  # a b d right, c wrong
    assert first.summary["base_experiment"] is None and first.summary["matched"] is None

    second = Eval("qa", data=[*data, {"input": "e", "expected": "E"}],
                  task=lambda s: "X" if s == "a" else s.upper(), scores=[exact], experiment_name="v2", db=store)
    s = second.summary
    assert s["base_experiment"]["name"] == "v1"  # the most recent earlier experiment
    assert s["traces"] == 5 and s["matched"] == 4 and s["unmatched"] == 1 and s["base_unmatched"] == 0
    e = s["scores"]["exact"]
    assert e["mean"] == pytest.approx(0.8) and e["base_mean"] == 0.75 and e["diff"] == pytest.approx(0.05)
    assert e["improvements"] == 1 and e["regressions"] == 1  # c fixed, a broken
    out = capsys.readouterr().out
    assert "Compared with qa/v1: 4 matched cases" in out and "80.00%" in out and "+5.00pp" in out

    # an explicit base wins over the previous experiment
    third = Eval("qa", data=data, task=str.upper, scores=[exact], experiment_name="v3",
                 base_experiment="v1", db=store, print_summary=False)
    assert third.summary["base_experiment"]["name"] == "v1"
    assert third.summary["scores"]["exact"]["improvements"] == 1
    assert third.summary["scores"]["exact"]["regressions"] == 0
    assert capsys.readouterr().out == ""


def test_trials_run_each_case_several_times(store):
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def flaky(s):
        with lock:
            seen[s] = seen.get(s, 0) + 1
            n = seen[s]
        return s.upper() if n % 3 else "wrong"  # every third call fails

    result = Eval("trials", data=[{"input": "a", "expected": "A"}, {"input": "b", "expected": "B"}],
                  task=flaky, scores=[exact], trial_count=3, max_concurrency=1, db=store, print_summary=False)
    assert seen == {"a": 3, "b": 3}
    assert len(result.results) == 6
    assert sorted((r.input, r.trial_index) for r in result.results) == [
        ("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1), ("b", 2)
    ]
    rows = load_trace_rows(store, result.experiment_id)
    assert rows.height == 6
    assert rows.group_by("comparison_key").len()["len"].to_list() == [3, 3]  # same input, same key
    assert result.summary["scores"]["exact"]["mean"] == pytest.approx(4 / 6)


def test_a_task_error_is_recorded_and_the_run_goes_on(store):
    scored = []

    def task(s):
        if s == "boom":
            raise RuntimeError("task exploded")
        return s

    def watch(output):
        scored.append(output)
        return 1

    result = Eval("errs", data=[{"input": "ok"}, {"input": "boom"}, {"input": "fine"}],
                  task=task, scores=[watch], db=store, print_summary=False)
    assert sorted(scored) == ["fine", "ok"]  # scorers skipped for the failed case
    traces = traces_of(store, result.experiment_id)
    (bad,) = traces["boom"]
    assert "RuntimeError: task exploded" in bad["eval"][0]["error"]["message"]
    assert "RuntimeError: task exploded" in bad["task"][0]["error"]["message"]
    assert "watch" not in bad and bad["eval"][0]["output"] is None
    assert traces["ok"][0]["watch"][0]["scores"] == {"watch": 1.0}
    failed = next(r for r in result.results if r.input == "boom")
    assert isinstance(failed.error, RuntimeError) and failed.scores == {}
    rows = load_trace_rows(store, result.experiment_id)
    assert rows["has_error"].sum() == 1
    assert result.summary["metrics"]["errors"]["mean"] == pytest.approx(1 / 3)
    assert result.summary["scores"]["watch"]["mean"] == 1.0


def test_a_scorer_error_is_recorded_without_stopping_the_run(store):
    def fragile(output):
        return 1 / (len(output) - 2)  # "ab" divides by zero; "abc" gives 1.0

    result = Eval("errs", data=[{"input": "ab", "expected": "ab"}, {"input": "abc", "expected": "abc"}],
                  task=lambda s: s, scores=[fragile, exact], db=store, print_summary=False)
    traces = traces_of(store, result.experiment_id)
    (t,) = traces["ab"]
    assert t["eval"][0]["metadata"] == {"scorer_errors": {"fragile": "ZeroDivisionError: division by zero"}}
    assert t["fragile"][0]["error"]["type"] == "ZeroDivisionError" and t["fragile"][0]["scores"] is None
    assert t["exact"][0]["scores"] == {"exact": 1.0}  # the other scorer still ran
    assert t["eval"][0]["error"] is None
    assert traces["abc"][0]["fragile"][0]["scores"] == {"fragile": 1.0}
    rows = load_trace_rows(store, result.experiment_id).sort("input")
    assert rows["scorer_errors"].to_list() == [1, 0] and rows["has_error"].to_list() == [False, False]
    r = next(r for r in result.results if r.input == "ab")
    assert r.scorer_errors == {"fragile": "ZeroDivisionError: division by zero"} and r.scores == {"exact": 1.0}


def test_scorer_return_shapes(store):
    def number(output):
        return 0.25

    def nothing(output):
        return None

    def as_dict(output):
        return {"name": "judged", "score": 0.5, "explanation": "half right"}

    def many(output):
        return [Score("p", 1.0), Score("q", 0.0, {"why": "no"})]

    def mapping(output):
        return {"m1": True, "m2": 0.75}

    def out_of_range(output):
        return 2

    def wrong_type(output):
        return "great"

    result = Eval("shapes", data=[{"input": "x"}], task=lambda s: s,
                  scores=[number, nothing, as_dict, many, mapping, out_of_range, wrong_type],
                  db=store, print_summary=False)
    (t,) = traces_of(store, result.experiment_id)["x"]
    assert t["number"][0]["scores"] == {"number": 0.25}
    assert t["nothing"][0]["scores"] == {"nothing": None}
    assert t["as_dict"][0]["scores"] == {"judged": 0.5}
    assert t["as_dict"][0]["metadata"] == {"explanation": "half right"}
    assert t["many"][0]["scores"] == {"p": 1.0, "q": 0.0} and t["many"][0]["metadata"] == {"q": {"why": "no"}}
    assert t["mapping"][0]["scores"] == {"m1": 1.0, "m2": 0.75}
    errors = t["eval"][0]["metadata"]["scorer_errors"]
    assert set(errors) == {"out_of_range", "wrong_type"}
    assert "outside [0, 1]" in errors["out_of_range"]
    assert "returned a str" in errors["wrong_type"]
    assert result.results[0].scores == {"number": 0.25, "nothing": None, "judged": 0.5, "p": 1.0, "q": 0.0,
                                        "m1": 1.0, "m2": 0.75}


def test_scorers_get_the_arguments_they_name(store):
    got = {}

    def picky(input, expected):
        got["picky"] = (input, expected)
        return 1

    def everything(**kwargs):
        got["everything"] = kwargs
        return 1

    class Judge:
        name = "judge"

        def __call__(self, output, metadata):
            got["judge"] = (output, metadata)
            return 1

    Eval("args", data=[{"input": "q", "expected": "E", "metadata": {"k": 1}}], task=lambda s: s + "!",
         scores=[picky, everything, Judge()], db=store, print_summary=False)
    assert got["picky"] == ("q", "E")
    assert got["everything"] == {"input": "q", "output": "q!", "expected": "E", "metadata": {"k": 1}}
    assert got["judge"] == ("q!", {"k": 1})


async def test_async_task_and_scorer_with_max_concurrency(store):
    running = peak = 0

    async def task(s):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return s * 2

    async def doubled(input, output):
        await asyncio.sleep(0.001)
        return output == input * 2

    result = await EvalAsync("async", data=[{"input": str(i)} for i in range(6)], task=task, scores=[doubled],
                             max_concurrency=2, db=store, print_summary=False)
    assert peak == 2
    assert result.summary["scores"]["doubled"]["mean"] == 1.0
    assert len(load_trace_rows(store, result.experiment_id)) == 6


def test_sync_task_runs_in_threads_up_to_max_concurrency(store):
    running = peak = calls = 0
    lock = threading.Lock()
    first_three = threading.Barrier(3, timeout=10)  # they can only pass it if all three run at once

    def task(s):
        nonlocal running, peak, calls
        with lock:
            running += 1
            peak = max(peak, running)
            calls += 1
            meet = calls <= 3
        if meet:
            first_three.wait()
        time.sleep(0.03)
        with lock:
            running -= 1
        return s

    Eval("threads", data=[{"input": i} for i in range(8)], task=task, max_concurrency=3, db=store,
         print_summary=False)
    assert peak == 3


def test_traced_calls_inside_task_and_scorer_nest_under_their_spans(store):
    @evaltui.traced(type="llm")
    def complete(prompt):
        evaltui.current_span().log(metrics={"tokens": 7})
        return prompt.upper()

    def task(s):
        return complete(s)

    async def judge(output):
        complete("judge " + output)  # its tokens are the scorer's, not the task's
        return 1

    result = Eval("nested", data=[{"input": "hi"}], task=task, scores=[judge], db=store, print_summary=False)
    (t,) = traces_of(store, result.experiment_id)["hi"]
    task_span, judge_span = t["task"][0], t["judge"][0]
    parents = sorted(c["span_parents"][0] for c in t["complete"])
    assert parents == sorted([task_span["span_id"], judge_span["span_id"]])
    row = load_trace_rows(store, result.experiment_id).row(0, named=True)
    assert row["tokens"] == 7 and row["llm_calls"] == 1


def test_task_with_hooks_and_data_as_a_function(store):
    def cases():
        yield {"input": 1, "expected": 2, "metadata": {"n": "one"}}
        yield {"input": 2, "expected": 4}

    def task(x, hooks):
        hooks.span.log(metadata={"expected_seen": hooks.expected})
        return x * 2

    result = Eval("hooks", data=cases, task=task, scores=[exact], db=store, print_summary=False)
    assert result.summary["scores"]["exact"]["mean"] == 1.0
    traces = traces_of(store, result.experiment_id)
    assert traces[1][0]["task"][0]["metadata"] == {"expected_seen": 2}


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([{"input": 1}, {"expected": 2}], ValueError, r"data\[1\]: a case needs an 'input'"),
        ([{"input": 1, "expect": 2}], ValueError, r"data\[0\]: unknown key 'expect'"),
        ([{"input": {1, 2}}], TypeError, r"data\[0\]\.input: a set is not JSON-serialisable"),
        ([{"input": 1, "tags": "t"}], TypeError, r"data\[0\]\.tags must be a list of strings"),
        ({"input": 1}, TypeError, r"data must be a list"),
    ],
)
def test_bad_data_is_refused_before_anything_runs(store, data, error, message):
    with pytest.raises(error, match=message):
        Eval("bad", data=data, task=lambda x: x, db=store, print_summary=False)
    from evaltui.store import load_experiments

    assert load_experiments(store, "bad").height == 0


async def test_eval_inside_a_running_loop_points_to_eval_async(store):
    with pytest.raises(RuntimeError, match="EvalAsync"):
        Eval("loop", data=[{"input": 1}], task=lambda x: x, db=store)


def test_eval_with_a_db_path_opens_and_closes_its_store(db_path):
    result = Eval("path", data=[{"input": 1, "expected": 1}], task=lambda x: x, scores=[exact], db=db_path,
                  print_summary=False)
    from evaltui.store import Store

    with Store(db_path) as s:
        assert load_trace_rows(s, result.experiment_id)["scores.exact"].to_list() == [1.0]
