"""Retrospective scoring (evaltui.sdk.rescore): results, errors, replacing, cancel, user files."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from pathlib import Path

import pytest

from evaltui import store as st
from evaltui.sdk.eval import Score
from evaltui.sdk.rescore import (
    ScorerLoadError,
    load_user_scorers,
    rescore,
    rescore_span_id,
)
from evaltui.sdk.scorers import ExactMatch, Levenshtein
from evaltui.store import review as rv


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> st.Store:
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    s = st.Store(tmp_path / "rescore.db")
    yield s
    s.close()


def make_experiment(db: st.Store, n: int = 6, *, failed: tuple[int, ...] = ()) -> str:
    """n traces: output 'yes' on even ones, 'no' on odd ones; expected always 'yes'."""
    eid = st.create_experiment(db, "proj", "exp")
    spans = []
    for i in range(n):
        root = f"t{i:03d}"
        spans.append({
            "id": f"{root}-row", "experiment_id": eid, "span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"}, "input": {"i": i},
            "output": None if i in failed else ("yes" if i % 2 == 0 else "no"), "expected": "yes",
            "metadata": {"i": i}, "error": {"message": "task failed"} if i in failed else None,
            "metrics": {"start": 100.0 + i, "end": 101.0 + i},
        })
        spans.append({
            "id": f"{root}-task", "experiment_id": eid, "span_id": f"{root}.task", "root_span_id": root,
            "span_parents": [root], "span_attributes": {"name": "task", "type": "task"},
            "metrics": {"start": 100.0 + i, "end": 101.0 + i},
        })
    st.write_spans(db, spans)
    return eid


def rows(db: st.Store, eid: str) -> dict[str, dict]:
    frame = st.load_trace_rows(db, eid)
    return {r["root_span_id"]: r for r in frame.to_dicts()}


def score_spans(db: st.Store, eid: str) -> int:
    return db.read("SELECT count(*) FROM spans WHERE experiment_id = ? AND type = 'score'", (eid,))[0][0]


def test_rescore_writes_score_spans_with_explanations(db):
    eid = make_experiment(db)
    report = rescore(db, eid, None, [ExactMatch(), Levenshtein()], user="alice")
    assert (report.total, report.scored, report.skipped, report.scorer_errors) == (6, 6, 0, 0)
    assert report.spans_written == 12
    assert report.means["exact_match"] == pytest.approx(0.5)
    r = rows(db, eid)
    assert [r[k]["scores.exact_match"] for k in sorted(r)] == [1.0, 0.0] * 3
    assert r["t001"]["scores.levenshtein"] == pytest.approx(0.0)  # "no" vs "yes": 3 edits over 3
    span = st.load_span(db, rescore_span_id(eid, "t001", "exact_match"))
    assert span["span_attributes"] == {"name": "exact_match", "type": "score"}
    assert span["span_parents"] == ["t001"]
    assert "differs" in span["metadata"]["explanation"] and span["metadata"]["rescored_by"] == "alice"
    history = rv.trace_history(db, eid, "t001")
    assert [(e["user"], e["action"]) for e in history] == [("alice", "rescore")]
    assert history[0]["before"] == {"exact_match": None, "levenshtein": None}
    assert history[0]["after"]["exact_match"] == {"exact_match": 0.0}


def test_running_a_scorer_again_replaces_its_result(db):
    eid = make_experiment(db)
    rescore(db, eid, None, [ExactMatch()], user="alice")
    assert score_spans(db, eid) == 6
    assert rows(db, eid)["t001"]["scores.exact_match"] == 0.0

    class Lenient:
        name = "exact_match"  # the same scorer name: its results replace the earlier ones

        def __call__(self, output):
            return 1.0

    rescore(db, eid, ["t001", "t003"], [Lenient()], user="bob")
    assert score_spans(db, eid) == 6
    r = rows(db, eid)
    assert [r[k]["scores.exact_match"] for k in sorted(r)] == [1.0] * 5 + [0.0]  # replaced, not averaged
    history = rv.trace_history(db, eid, "t001")
    assert [(e["user"], e["before"], e["after"]) for e in history] == [
        ("alice", {"exact_match": None}, {"exact_match": {"exact_match": 0.0}}),
        ("bob", {"exact_match": {"exact_match": 0.0}}, {"exact_match": {"exact_match": 1.0}}),
    ]
    assert history[1]["text"] == "bob rescored exact_match: 0 → 1"
    # another scorer adds spans of its own
    rescore(db, eid, None, [_always_one], user="bob")
    assert score_spans(db, eid) == 12


def _always_one(output):
    return 1.0


def test_a_scorer_that_raises_is_recorded_and_the_run_goes_on(db, tmp_path):
    eid = make_experiment(db)
    path = tmp_path / "my_scorers.py"
    path.write_text(textwrap.dedent("""
        def fragile(output, metadata):
            if metadata["i"] % 3 == 0:
                raise RuntimeError(f"cannot judge case {metadata['i']}")
            return output == "yes"

        def steady(output, expected):
            return output == expected
    """))
    scorers = load_user_scorers(path)
    assert [s.__name__ for s in scorers] == ["fragile", "steady"]
    report = rescore(db, eid, None, scorers, user="alice")
    assert report.scored == 6 and report.scorer_errors == 2
    assert report.first_errors == {"fragile": "RuntimeError: cannot judge case 0"}
    assert rv.trace_history(db, eid, "t000")[0]["text"] == (
        "alice rescored fragile: none → error (RuntimeError: cannot judge case 0); steady: none → 1")
    r = rows(db, eid)
    assert [r[k]["scorer_errors"] for k in sorted(r)] == [1, 0, 0, 1, 0, 0]
    assert r["t003"]["scores.fragile"] is None and r["t003"]["scores.steady"] == 0.0
    assert r["t002"]["scores.fragile"] == 1.0
    root = st.load_span(db, "t000-row")
    assert root["metadata"] == {"i": 0, "scorer_errors": {"fragile": "RuntimeError: cannot judge case 0"}}
    span = st.load_span(db, rescore_span_id(eid, "t000", "fragile"))
    assert span["error"]["type"] == "RuntimeError" and "Traceback" in span["error"]["traceback"]
    # fixed and run again: the error is gone from the span, the root and the row
    path.write_text("def fragile(output, metadata):\n    return 1.0\n")
    rescore(db, eid, None, load_user_scorers(path), user="alice")
    r = rows(db, eid)
    assert [r[k]["scorer_errors"] for k in sorted(r)] == [0] * 6
    assert st.load_span(db, "t000-row")["metadata"] == {"i": 0}


def test_bad_return_values_are_scorer_errors(db):
    eid = make_experiment(db, 2)
    report = rescore(db, eid, None, [lambda output: 1.5, lambda output: "high"], user="alice")
    assert report.scorer_errors == 4
    assert "outside [0, 1]" in report.first_errors["scorer_0"]
    assert all(r["scorer_errors"] == 2 for r in rows(db, eid).values())


def test_traces_whose_task_failed_are_skipped(db):
    eid = make_experiment(db, 4, failed=(1,))
    report = rescore(db, eid, ["t000", "t001", "t002", "t003", "nope"], [ExactMatch()], user="alice")
    assert (report.total, report.scored, report.skipped) == (5, 3, 2)
    assert rows(db, eid)["t001"]["scores.exact_match"] is None


def test_cancel_between_traces_keeps_what_was_scored(db):
    eid = make_experiment(db, 50)
    cancel = threading.Event()
    calls = []

    def counting(output):
        calls.append(output)
        if len(calls) == 15:
            cancel.set()
        return 1.0

    progress = []
    report = rescore(db, eid, None, [counting], user="alice", cancel=cancel, batch_size=10,
                     progress=lambda done, total: progress.append((done, total)))
    assert report.cancelled and report.scored == 15
    assert progress == [(10, 50), (15, 50)]
    scored = [k for k, r in rows(db, eid).items() if r["scores.counting"] is not None]
    assert scored == sorted(rows(db, eid))[:15]
    assert score_spans(db, eid) == 15


def test_progress_reaches_the_total(db):
    eid = make_experiment(db, 25)
    progress = []
    rescore(db, eid, None, [ExactMatch()], user="alice", batch_size=10,
            progress=lambda done, total: progress.append((done, total)))
    assert progress == [(10, 25), (20, 25), (25, 25)]


def test_async_scorers_run_concurrently_and_their_errors_are_recorded(db):
    eid = make_experiment(db, 8)
    running = {"now": 0, "most": 0}

    async def slow_judge(output, expected):
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        await asyncio.sleep(0.01)
        running["now"] -= 1
        if output == "no":
            raise ValueError("judge refused")
        return Score("slow_judge", 1.0, {"explanation": "agrees"})

    report = rescore(db, eid, None, [slow_judge, ExactMatch()], user="alice", max_concurrency=4)
    assert report.scored == 8 and report.scorer_errors == 4
    assert 1 < running["most"] <= 4
    r = rows(db, eid)
    assert r["t000"]["scores.slow_judge"] == 1.0 and r["t001"]["scorer_errors"] == 1


def test_rescore_works_from_inside_an_event_loop(db):
    eid = make_experiment(db, 2)

    async def judge(output):
        return 0.5

    async def main():
        return rescore(db, eid, None, [judge], user="alice")

    assert asyncio.run(main()).scored == 2


def test_rescore_argument_checks(db):
    eid = make_experiment(db, 1)
    with pytest.raises(ValueError, match="user"):
        rescore(db, eid, None, [ExactMatch()], user="")
    with pytest.raises(ValueError, match="no scorers"):
        rescore(db, eid, None, [], user="alice")
    with pytest.raises(TypeError, match="scorers\\[0\\]"):
        rescore(db, eid, None, ["exact"], user="alice")


# -- loading user scorers ---------------------------------------------------------------------------


def test_load_scorers_list_and_module(tmp_path, monkeypatch):
    (tmp_path / "team_checks.py").write_text(textwrap.dedent("""
        from evaltui.sdk.scorers import ExactMatch

        def helper(x, y):  # not a scorer: needs arguments scorers never get
            return x

        def _private(output):
            return 1

        SCORERS = [ExactMatch(case_sensitive=False)]
    """))
    assert [s.name for s in load_user_scorers(tmp_path / "team_checks.py")] == ["exact_match"]
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [s.name for s in load_user_scorers("team_checks")] == ["exact_match"]


def test_load_scorers_picks_functions_with_the_scorer_signature(tmp_path):
    path = tmp_path / "checks.py"
    path.write_text(textwrap.dedent("""
        import json
        from os.path import join  # imported: not defined here

        def is_json(output):
            return 1.0

        def with_kwargs(**kwargs):
            return 1.0

        def needs_more(output, threshold):
            return 1.0

        def defaulted(output, threshold=0.5):
            return 1.0
    """))
    assert [s.__name__ for s in load_user_scorers(str(path))] == ["is_json", "with_kwargs", "defaulted"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (None, "file not found"),
        ("def broken(output:\n    return 1\n", "line 1: syntax error"),
        ("x = 1\n\ndef f(output):\n    return [1, 2\n", "line 4: syntax error"),
        ("import math\n\nVALUE = 1\n", "no scorers found"),
        ("def helper(a, b):\n    return a\n", "no scorers found"),
        ("x = 1\nraise RuntimeError('config missing')\n", "line 2: error while loading: RuntimeError: config missing"),
        ("SCORERS = 'exact'\n", "SCORERS must be a list"),
        ("SCORERS = [1]\n", r"SCORERS\[0\] is a int"),
        ("SCORERS = []\n", "SCORERS is empty"),
    ],
)
def test_load_scorers_errors_are_clear(tmp_path, source, message):
    path = tmp_path / "user_scorers.py"
    if source is not None:
        path.write_text(source)
    with pytest.raises(ScorerLoadError, match=message):
        load_user_scorers(path)


def test_load_scorers_unknown_module():
    with pytest.raises(ScorerLoadError, match="no file or module named 'no_such_scorers_module'"):
        load_user_scorers("no_such_scorers_module")
    with pytest.raises(ScorerLoadError, match="file not found"):
        load_user_scorers("checks/missing.py")
