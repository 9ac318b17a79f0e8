"""The logging SDK: spans, nesting across threads and tasks, validation, flushing."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import evaltui
from evaltui.sdk import logger
from evaltui.store import (
    NotFound,
    find_experiment,
    load_experiment_spans,
    load_span,
    load_trace_rows,
)


@pytest.fixture
def exp(store):
    e = evaltui.init("proj", "exp", db=store)
    yield e
    e.close()


def spans_by_name(store, experiment_id):
    out = {}
    for s in load_experiment_spans(store, experiment_id):
        out.setdefault(s["span_attributes"]["name"], []).append(s)
    return out


def one(spans_of, name):
    (span,) = spans_of[name]
    return span


# -- nesting ---------------------------------------------------------------------------------


def test_nested_spans_land_under_their_parents(store, exp):
    with exp.start_span("root") as root:
        with exp.start_span("child", type="llm") as child:
            with exp.start_span("grandchild"):
                pass
        with exp.start_span("sibling"):
            pass
    exp.flush()
    s = spans_by_name(store, exp.id)
    r, c, g, sib = one(s, "root"), one(s, "child"), one(s, "grandchild"), one(s, "sibling")
    assert r["span_parents"] == [] and r["span_attributes"]["type"] == "eval"
    assert c["span_parents"] == [r["span_id"]] and c["span_attributes"]["type"] == "llm"
    assert g["span_parents"] == [c["span_id"]]
    assert sib["span_parents"] == [r["span_id"]]
    assert {x["root_span_id"] for x in (r, c, g, sib)} == {root.span_id}
    assert child.parent_id == root.span_id
    assert load_trace_rows(store, exp.id).height == 1


def test_spans_in_threads_nest_with_explicit_parent_or_copied_context(store, exp):
    with exp.start_span("root") as root:

        def work_with_parent(i):
            with exp.start_span(f"explicit-{i}", parent=root) as s:
                with exp.start_span(f"inner-{i}"):  # current in this thread: s
                    pass
                return s.span_id

        def work_in_context(i):
            with exp.start_span(f"copied-{i}"):
                pass

        def work_bare(i):
            # a plain thread does not see the current span: a trace of its own
            with exp.start_span(f"bare-{i}"):
                pass

        with ThreadPoolExecutor(4) as pool:
            explicit_ids = list(pool.map(work_with_parent, range(4)))
            futures = [pool.submit(contextvars.copy_context().run, work_in_context, i) for i in range(4)]
            for f in futures:
                f.result()
        t = threading.Thread(target=work_bare, args=(0,))
        t.start()
        t.join()
    exp.flush()
    s = spans_by_name(store, exp.id)
    root_id = one(s, "root")["span_id"]
    for i in range(4):
        assert one(s, f"explicit-{i}")["span_parents"] == [root_id]
        assert one(s, f"inner-{i}")["span_parents"] == [explicit_ids[i]]
        assert one(s, f"copied-{i}")["span_parents"] == [root_id]
    bare = one(s, "bare-0")
    assert bare["span_parents"] == [] and bare["root_span_id"] == bare["span_id"]


def test_span_start_span_makes_a_child_from_any_thread(store, exp):
    with exp.start_span("root") as root:
        t = threading.Thread(target=lambda: root.start_span("from-thread").end())
        t.start()
        t.join()
    exp.flush()
    s = spans_by_name(store, exp.id)
    assert one(s, "from-thread")["span_parents"] == [root.span_id]


async def test_asyncio_tasks_inherit_the_current_span(store, exp):
    async def case(i):
        with exp.start_span(f"root-{i}") as root:
            await asyncio.sleep(0.01 * (3 - i))

            async def leaf(j):
                await asyncio.sleep(0.001 * j)
                with exp.start_span(f"leaf-{i}-{j}"):
                    await asyncio.sleep(0)

            await asyncio.gather(*(leaf(j) for j in range(3)))
            return root.span_id

    roots = await asyncio.gather(*(case(i) for i in range(3)))
    exp.flush()
    s = spans_by_name(store, exp.id)
    for i, rid in enumerate(roots):
        assert one(s, f"root-{i}")["span_parents"] == []
        for j in range(3):
            leaf = one(s, f"leaf-{i}-{j}")
            assert leaf["span_parents"] == [rid] and leaf["root_span_id"] == rid
    assert load_trace_rows(store, exp.id).height == 3


def test_a_span_of_another_experiment_is_not_a_parent(store, exp):
    other = evaltui.init("proj", "other", db=store, set_current=False)
    with exp.start_span("mine"):
        with other.start_span("theirs") as theirs:
            pass
    other.close()
    assert theirs.span_parents == []
    with exp.start_span("x") as x, pytest.raises(ValueError, match="another experiment"):
        evaltui.init("proj", "third", db=store, set_current=False).start_span("y", parent=x)


# -- logging and validation --------------------------------------------------------------------


def test_span_log_merges_scores_metadata_metrics_and_replaces_the_rest(store, exp):
    with exp.start_span("s") as span:
        span.log(input="first", output=1, scores={"a": 0.5}, metadata={"m": 1}, metrics={"tokens": 10}, tags=["x"])
        span.log(input="second", scores={"b": True}, metadata={"n": 2}, metrics={"cost": 0.1}, tags=["y"])
        span.log(scores={"a": 1}, metadata={"m": 3})
    exp.flush()
    rec = load_span(store, span.id)
    assert rec["input"] == "second" and rec["output"] == 1
    assert rec["scores"] == {"a": 1.0, "b": 1.0}  # booleans become 1/0
    assert rec["metadata"] == {"m": 3, "n": 2}
    assert rec["metrics"]["tokens"] == 10 and rec["metrics"]["cost"] == 0.1
    assert rec["tags"] == ["y"]
    assert rec["metrics"]["start"] <= rec["metrics"]["end"]


def test_start_and_end_times_are_recorded(store, exp):
    import time

    before = time.time()
    with exp.start_span("timed"):
        time.sleep(0.02)
    after = time.time()
    exp.flush()
    m = one(spans_by_name(store, exp.id), "timed")["metrics"]
    assert before <= m["start"] < m["end"] <= after
    assert m["end"] - m["start"] >= 0.015
    assert load_trace_rows(store, exp.id)["duration"][0] == pytest.approx(m["end"] - m["start"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scores": {"acc": 1.5}}, ValueError, r"scores\.acc: 1\.5 is outside \[0, 1\]"),
        ({"scores": {"acc": -0.1}}, ValueError, r"scores\.acc"),
        ({"scores": {"acc": "high"}}, ValueError, r"scores\.acc: 'high' is not a number"),
        ({"metadata": {1: "x"}}, TypeError, r"metadata: key 1 is not a string"),
        ({"metadata": {"when": dt.datetime(2024, 1, 1)}}, TypeError,
         r"metadata\.when: a datetime is not JSON-serialisable"),
        ({"metadata": {"a": {"b": [1, {2, 3}]}}}, TypeError, r"metadata\.a\.b\[1\]: a set is not JSON-serialisable"),
        ({"output": {"x": object()}}, TypeError, r"output\.x: a object is not JSON-serialisable"),
        ({"input": float("nan")}, ValueError, r"input: nan is not a finite number"),
        ({"metrics": {"tokens": "many"}}, TypeError, r"metrics\.tokens: 'many' is not a number"),
        ({"metadata": ["not", "a", "dict"]}, TypeError, r"metadata must be a dict"),
        ({"tags": "one-tag"}, TypeError, r"tags must be a list of strings"),
        ({"tags": ["ok", 3]}, TypeError, r"tags: 3 is not a string"),
    ],
)
def test_log_rejects_bad_values_naming_the_field(store, exp, kwargs, error, message):
    with exp.start_span("s") as span:
        span.log(output="kept", scores={"ok": 1})
        with pytest.raises(error, match=message):
            span.log(**kwargs)
        # exp.log validates the same way and logs nothing
        with pytest.raises(error, match=message):
            exp.log(**kwargs)
    exp.flush()
    rec = load_span(store, span.id)
    assert rec["output"] == "kept" and rec["scores"] == {"ok": 1.0}  # the bad call changed nothing
    assert load_trace_rows(store, exp.id).height == 1


def test_values_are_copied_at_log_time(store, exp):
    data = {"q": [1, 2]}
    with exp.start_span("s") as span:
        span.log(input=data)
        data["q"].append(3)
    exp.flush()
    assert load_span(store, span.id)["input"] == {"q": [1, 2]}


def test_an_exception_escaping_a_span_is_recorded_and_reraised(store, exp):
    with pytest.raises(KeyError):
        with exp.start_span("outer") as outer:
            with exp.start_span("inner"):
                raise KeyError("missing")
    exp.flush()
    s = spans_by_name(store, exp.id)
    for name in ("outer", "inner"):
        err = one(s, name)["error"]
        assert err["type"] == "KeyError" and "missing" in err["message"] and "Traceback" in err["traceback"]
    row = load_trace_rows(store, exp.id).row(0, named=True)
    assert row["has_error"] and "KeyError" in row["error"]
    assert outer.ended


def test_exp_log_writes_a_one_span_trace_and_returns_its_id(store, exp):
    rid = exp.log(input={"q": "2+2"}, output="4", expected="4", scores={"exact": True},
                  metadata={"model": "m1"}, metrics={"tokens": 12}, tags=["smoke"])
    exp.flush()
    rec = load_span(store, rid)
    assert rec["span_parents"] == [] and rec["root_span_id"] == rec["span_id"]
    assert rec["input"] == {"q": "2+2"} and rec["expected"] == "4" and rec["tags"] == ["smoke"]
    rows = load_trace_rows(store, exp.id)
    assert rows.height == 1 and rows["scores.exact"][0] == 1.0 and rows["tokens"][0] == 12
    # logging the same id again updates the trace instead of adding one
    exp.log(id=rid, input={"q": "2+2"}, output="5", scores={"exact": False})
    exp.flush()
    rows = load_trace_rows(store, exp.id)
    assert rows.height == 1 and rows["scores.exact"][0] == 0.0 and rows["output"][0] == "5"


def test_exp_log_inside_a_span_is_still_its_own_trace(store, exp):
    with exp.start_span("outer"):
        rid = exp.log(input="x")
    exp.flush()
    assert load_span(store, rid)["span_parents"] == []
    assert load_trace_rows(store, exp.id).height == 2


def test_logging_after_end_updates_the_span(store, exp):
    span = exp.start_span("late")
    span.end()
    span.log(scores={"late": 0.25})
    exp.flush()
    assert load_span(store, span.id)["scores"] == {"late": 0.25}


# -- buffering and flushing ------------------------------------------------------------------


def test_spans_are_buffered_until_flush(store):
    e = evaltui.init("proj", "buffered", db=store, flush_interval=3600, batch_size=1000)
    for i in range(5):
        e.log(input=i)
    assert load_trace_rows(store, e.id).height == 0
    evaltui.flush()
    assert load_trace_rows(store, e.id).height == 5
    e.close()


def test_a_full_batch_is_written_without_flush(store):
    e = evaltui.init("proj", "batched", db=store, flush_interval=3600, batch_size=3)
    for i in range(7):
        e.log(input=i)
    assert load_trace_rows(store, e.id).height == 6
    e.close()
    assert load_trace_rows(store, e.id).height == 7


def test_close_writes_unfinished_spans_and_refuses_new_ones(store):
    e = evaltui.init("proj", "closing", db=store)
    with pytest.warns(RuntimeWarning, match="ended after experiment proj/closing was closed"):
        with e.start_span("open") as s:
            s.log(output="partial")
            e.close()
    rec = load_span(store, s.id)
    assert rec["output"] == "partial" and "end" not in rec["metrics"]
    with pytest.raises(RuntimeError, match="closed"):
        e.start_span("after")
    e.close()  # twice is harmless


def test_concurrent_logging_from_many_threads_loses_nothing(store):
    e = evaltui.init("proj", "threads", db=store, batch_size=7, flush_interval=0.001)

    def work(i):
        with e.start_span(f"t{i}") as s:
            for j in range(3):
                s.start_span(f"c{i}-{j}").end()
            s.log(scores={"x": i % 2})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(50)))
    e.close()
    rows = load_trace_rows(store, e.id)
    assert rows.height == 50
    assert rows["span_count"].to_list() == [4] * 50
    assert rows["scores.x"].mean() == pytest.approx(0.5)


def test_everything_is_flushed_when_the_process_exits(db_path):
    script = textwrap.dedent(
        f"""
        import evaltui
        def main():
            exp = evaltui.init("proj", "exiting", db={str(db_path)!r}, flush_interval=3600)
            with exp.start_span("root") as s:
                s.log(input="q", output="a", scores={{"acc": 0.75}})
                with s.start_span("child"):
                    pass
            exp.log(input="q2", scores={{"acc": 0.25}})
            # no flush, no close, and the logger goes out of scope
        main()
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    from evaltui.store import Store

    with Store(db_path) as s:
        exp = find_experiment(s, "proj/exiting")
        rows = load_trace_rows(s, exp["id"])
        assert rows.height == 2
        assert sorted(rows["scores.acc"].to_list()) == [0.25, 0.75]
        assert sorted(rows["span_count"].to_list()) == [1, 2]


# -- traced -------------------------------------------------------------------------------------


def test_traced_sync_function_logs_arguments_and_result(store):
    @evaltui.traced
    def add(a, b=2, *, scale=1):
        return (a + b) * scale

    @evaltui.traced(name="pipeline", type="task")
    def pipeline(x):
        evaltui.current_span().log(metadata={"stage": "start"})
        return add(x, scale=10)

    e = evaltui.init("proj", "traced", db=store)
    assert pipeline(1) == 30
    e.close()
    s = spans_by_name(store, e.id)
    p, a = one(s, "pipeline"), one(s, "add")
    assert p["span_attributes"]["type"] == "task" and p["input"] == {"x": 1} and p["output"] == 30
    assert p["metadata"] == {"stage": "start"}
    assert a["span_attributes"]["type"] == "function"
    assert a["input"] == {"a": 1, "b": 2, "scale": 10} and a["output"] == 30
    assert a["span_parents"] == [p["span_id"]]


async def test_traced_async_function_nests_and_records_errors(store):
    @evaltui.traced(type="tool")
    async def fetch(key):
        await asyncio.sleep(0.001)
        if key == "bad":
            raise LookupError("no such key")
        return {"key": key}

    @evaltui.traced
    async def run(keys):
        out = []
        for r in await asyncio.gather(*(fetch(k) for k in keys), return_exceptions=True):
            out.append(None if isinstance(r, Exception) else r)
        return out

    e = evaltui.init("proj", "traced-async", db=store)
    assert await run(["a", "bad"]) == [{"key": "a"}, None]
    e.close()
    s = spans_by_name(store, e.id)
    r = one(s, "run")
    fetches = s["fetch"]
    assert len(fetches) == 2 and all(f["span_parents"] == [r["span_id"]] for f in fetches)
    bad = next(f for f in fetches if f["input"] == {"key": "bad"})
    assert "LookupError: no such key" in bad["error"]["message"] and bad["output"] is None
    assert load_trace_rows(store, e.id)["tool_calls"][0] == 2


def test_traced_outside_any_experiment_just_calls_the_function(store):
    calls = []

    @evaltui.traced
    def f(x):
        calls.append(x)
        assert not evaltui.current_span()  # NOOP_SPAN is falsy
        evaltui.current_span().log(scores={"ignored": 1})
        return x + 1

    assert logger.current_experiment() is None
    assert f(1) == 2 and calls == [1]


def test_traced_captures_values_that_are_not_json(store):
    class Client:
        def __repr__(self):
            return "<Client>"

    class Service:
        @evaltui.traced
        def call(self, client, when):
            return {1: {"a", "b"}}

    e = evaltui.init("proj", "objects", db=store)
    Service().call(Client(), dt.date(2024, 5, 1))
    e.close()
    rec = one(spans_by_name(store, e.id), "call")
    assert rec["input"] == {"client": "<Client>", "when": "2024-05-01"}  # self is left out
    assert rec["output"] == {"1": ["a", "b"]}


# -- init ---------------------------------------------------------------------------------------


def test_init_records_experiment_fields_and_resolves_the_base(store):
    first = evaltui.init("proj", "run", db=store, set_current=False)
    first.close()
    second = evaltui.init("proj", "run", db=store, base_experiment="run", metadata={"model": "m"},
                          params={"t": 0.2}, description="retry", set_current=False)
    second.close()
    assert second.name == "run-2"  # a taken name gets a suffix
    assert second.base_experiment_id == first.id
    third = evaltui.init("proj", "by-id", db=store, base_experiment=first.id, set_current=False)
    third.close()
    assert third.base_experiment_id == first.id
    with pytest.raises(NotFound, match="nope"):
        evaltui.init("proj", "x", db=store, base_experiment="nope")
    with pytest.raises(TypeError, match=r"metadata\.when: a datetime"):
        evaltui.init("proj", "x", db=store, metadata={"when": dt.datetime.now()})


def test_init_with_a_path_uses_and_closes_its_own_store(db_path):
    e = evaltui.init("proj", "own", db=db_path)
    e.log(input=1)
    e.close()
    from evaltui.store import Store

    with Store(db_path) as s:
        assert load_trace_rows(s, find_experiment(s, "proj/own")["id"]).height == 1


def test_repo_info_is_collected_inside_git_and_absent_outside(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert logger.repo_info() is None

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "f.txt").write_text("1")
    subprocess.run([*git, "-C", str(repo), "add", "f.txt"], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-q", "-m", "c"], check=True)
    monkeypatch.chdir(repo)
    info = logger.repo_info()
    assert info["branch"] == "main" and len(info["commit"]) == 40 and info["dirty"] is False
    (repo / "f.txt").write_text("2")
    assert logger.repo_info()["dirty"] is True

    from evaltui.store import Store, load_experiments

    with Store(tmp_path / "x.db") as s:
        e = evaltui.init("proj", "git", db=s)
        e.close()
        import json

        stored = json.loads(load_experiments(s, "proj")["repo_info"][0])
        assert stored["commit"] == info["commit"] and stored["dirty"] is True


def test_sdk_does_not_import_textual():
    code = "import evaltui, sys; evaltui.init; evaltui.Eval; import evaltui.query.compare; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
