"""Inspect AI logs: .eval (zstd zip) and .json from inspect-ai 0.3.285, and a 0.3.25 log."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest
from test_ingest_support import FIXTURES, spans_of, trace_rows, tree

from evaltui.ingest import import_paths
from evaltui.ingest._zip import ZipReader
from evaltui.ingest.inspect import score_value
from evaltui.store import Store, load_experiments

INSPECT = FIXTURES / "inspect"


def _one(store: Store, path: Path, **kw):
    report = import_paths(store, [path], **kw)
    assert report.ok, report.errors
    (exp,) = report.experiments
    return report, exp


def _by_name(rows):
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["name"], []).append(r)
    return out


@pytest.mark.parametrize("suffix", ["eval", "json"])
def test_tool_task_traces_scores_tokens(store: Store, suffix: str) -> None:
    report, exp = _one(store, INSPECT / f"weather_tools.{suffix}")
    assert exp.action == "created"
    assert exp.ref.startswith("weather_tools/mockllm-model-")
    assert (exp.traces, exp.spans) == (6, 72)  # 3 samples x 2 epochs; 14 + 14 + 8 spans per epoch
    rows = _by_name(trace_rows(store, exp.ref))
    assert sorted(rows) == ["atlantis", "oslo", "paris"]
    for name, graded in (("paris", 1.0), ("oslo", 0.5)):  # GRADE: C and GRADE: P
        assert len(rows[name]) == 2  # two epochs
        for r in rows[name]:
            assert r["scores.used_tool"] == 1.0
            assert r["scores.model_graded_qa"] == graded
            # two task model calls of 60 tokens; the grader's call is the scorer's, not counted
            assert (r["tokens"], r["prompt_tokens"], r["completion_tokens"]) == (120, 100, 20)
            assert r["estimated_cost"] == pytest.approx(0.0004)
            assert (r["llm_calls"], r["tool_calls"], r["errors"], r["span_count"]) == (2, 1, 0, 14)
            assert r["input"] == f"What is the weather in {name.capitalize()}?"
            assert r["expected"] == "sunny"
    for r in rows["atlantis"]:
        assert r["has_error"] and r["errors"] == 1
        assert "weather service has no data for Atlantis" in r["error"]
        assert r["scores.used_tool"] is None and r["scores.model_graded_qa"] is None
        assert (r["tokens"], r["llm_calls"], r["tool_calls"], r["span_count"]) == (60, 1, 1, 8)
    # epochs are trials of one case: the same comparison key
    assert rows["paris"][0]["comparison_key"] == rows["paris"][1]["comparison_key"]
    assert rows["paris"][0]["comparison_key"] != rows["oslo"][0]["comparison_key"]
    assert {json.loads(r["metadata"])["epoch"] for r in rows["paris"]} == {1, 2}


def test_span_tree_of_a_tool_sample(store: Store) -> None:
    _, exp = _one(store, INSPECT / "weather_tools.eval")
    spans = spans_of(store, exp.ref)
    root = next(s for s in spans if not s["span_parents"] and s["span_attributes"]["name"] == "paris")
    assert tree(spans, root["span_id"]) == [
        (0, "eval", "paris"),
        (1, "function", "init"),
        (1, "function", "solvers"),
        (2, "function", "system_message"),
        (2, "function", "use_tools"),
        (2, "function", "generate"),
        (3, "llm", "mockllm/model"),
        (3, "tool", "get_weather"),
        (3, "llm", "mockllm/model"),
        (1, "function", "scorers"),
        (2, "score", "used_tool"),
        (3, "function", "inspect_tool_calls"),
        (2, "score", "model_graded_qa"),
        (3, "llm", "mockllm/model"),
    ]


def test_messages_tools_attachments(store: Store) -> None:
    _, exp = _one(store, INSPECT / "weather_tools.eval")
    spans = spans_of(store, exp.ref)
    assert "attachment://" not in orjson.dumps(spans).decode()  # every reference resolved
    root = next(s for s in spans if not s["span_parents"] and s["span_attributes"]["name"] == "oslo")
    trace = [s for s in spans if s["root_span_id"] == root["span_id"]]
    llm = sorted((s for s in trace if s["span_attributes"]["type"] == "llm" and s["metadata"].get("role") is None),
                 key=lambda s: s["metrics"]["start"])
    first, second = llm
    system, user = first["input"]
    assert system["role"] == "system" and system["content"].startswith("You are a careful assistant")
    assert user == {"role": "user", "content": "What is the weather in Oslo?", "source": "input"}
    assert first["output"]["tool_calls"] == [
        {"id": "call_Oslo", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    ]
    assert first["metrics"]["prompt_tokens"] == 50 and first["metrics"]["estimated_cost"] == pytest.approx(0.0002)
    assert [m["role"] for m in second["input"]] == ["system", "user", "assistant", "tool"]
    assert second["input"][3]["content"] == "rain, 9C" and second["input"][3]["tool_call_id"] == "call_Oslo"
    assert second["output"]["content"] == "The weather report says: rain, 9C"
    tool = next(s for s in trace if s["span_attributes"]["type"] == "tool")
    assert (tool["input"], tool["output"]) == ({"city": "Oslo"}, "rain, 9C")
    assert tool["metrics"]["end"] >= tool["metrics"]["start"]
    graded = next(s for s in trace if s["span_attributes"]["name"] == "model_graded_qa")
    assert graded["scores"] == {"model_graded_qa": 0.5}
    assert graded["metadata"]["value"] == "P"
    assert graded["metadata"]["explanation"].endswith("GRADE: P")
    grader = next(s for s in trace if s["span_parents"] == [graded["span_id"]])
    assert grader["metadata"]["role"] == "grader"
    assert "[Criterion]: sunny" in grader["input"][0]["content"]  # an attachment in the shared message pool


def test_sample_error_marks_where_it_started(store: Store) -> None:
    _, exp = _one(store, INSPECT / "weather_tools.json")
    spans = spans_of(store, exp.ref)
    root = next(s for s in spans if not s["span_parents"] and s["span_attributes"]["name"] == "atlantis")
    trace = {s["span_id"]: s for s in spans if s["root_span_id"] == root["span_id"]}
    assert root["error"]["message"] == "RuntimeError('weather service has no data for Atlantis')"
    assert "Traceback" in root["error"]["traceback"]
    tool = next(s for s in trace.values() if s["span_attributes"]["type"] == "tool")
    assert tool["error"]["message"] == root["error"]["message"]
    assert tool["metadata"]["failed"] is True
    generate = trace[tool["span_parents"][0]]
    assert generate["span_attributes"]["name"] == "generate" and generate["error"] is not None


def test_plain_task_scores_and_label_values(store: Store) -> None:
    report, exp = _one(store, INSPECT / "simple_qa.eval")
    assert (exp.traces, exp.spans) == (3, 30)
    rows = {r["name"]: r for r in trace_rows(store, exp.ref)}
    assert {n: (r["scores.match"], r["scores.includes"]) for n, r in rows.items()} == {
        "add": (1.0, 1.0), "france": (1.0, 1.0), "sky": (0.0, 0.0)}
    # 20 + len(question) prompt tokens, 3 completion tokens, per the fixture's mock model
    assert {n: r["tokens"] for n, r in rows.items()} == {"add": 35, "france": 53, "sky": 45}
    assert json.loads(rows["france"]["metadata"])["topic"] == "geo"  # sample metadata kept
    assert "scores.answer_length" not in rows["add"]  # a label, not a number
    assert any("answer_length" in w for w in report.files[0].warnings)
    spans = spans_of(store, exp.ref)
    length = [s for s in spans if s["span_attributes"]["name"] == "answer_length"]
    assert sorted(s["metadata"]["value"] for s in length) == ["long", "long", "short"]  # "4" is short; "Paris", "green" are not
    assert {s["metadata"]["explanation"] for s in length} >= {"1 characters in the answer"}


def test_experiment_fields(store: Store) -> None:
    _, exp = _one(store, INSPECT / "weather_tools.eval")
    row = load_experiments(store).filter(pl.col("id") == exp.id).row(0, named=True)
    assert row["source"] == "inspect"
    params = json.loads(row["params"])
    assert params["model"] == "mockllm/model" and params["config"]["epochs"] == 2
    assert params["plan"] == ["system_message", "use_tools", "generate"]
    assert params["scorers"] == ["used_tool", "model_graded_qa"]
    repo = json.loads(row["repo_info"])
    assert repo["type"] == "git" and repo["commit"]
    md = json.loads(row["metadata"])["inspect"]
    assert md["status"] == "success" and md["packages"]["inspect_ai"] == "0.3.285"
    assert md["results"]["completed_samples"] == 4 and md["results"]["total_samples"] == 6
    with open(INSPECT / "weather_tools.eval", "rb") as f:
        z = ZipReader(f)
        created = json.loads(z.read(z.get("header.json")))["eval"]["created"]
    assert row["created"][:19] == created[:19]


def test_older_release_with_step_events(store: Store) -> None:
    _, exp = _one(store, INSPECT / "old_qa_v0.3.25.json")
    assert exp.ref.startswith("old_qa/")
    assert (exp.traces, exp.spans) == (4, 20)
    rows = trace_rows(store, exp.ref)
    assert sorted((r["name"], r["scores.includes"]) for r in rows) == [
        ("hit", 1.0), ("hit", 1.0), ("miss", 0.0), ("miss", 0.0)]
    spans = spans_of(store, exp.ref)
    root = next(s for s in spans if not s["span_parents"] and s["span_attributes"]["name"] == "hit")
    assert tree(spans, root["span_id"]) == [
        (0, "eval", "hit"),
        (1, "function", "system_message"),
        (1, "function", "generate"),
        (2, "llm", "mockllm/model"),
        (1, "score", "includes"),
    ]
    llm = next(s for s in spans if s["root_span_id"] == root["span_id"] and s["span_attributes"]["type"] == "llm")
    assert llm["input"][0] == {"role": "system", "content": "Be brief."}
    assert llm["output"]["content"] == "Default output from mockllm/model"


def test_running_then_crashed_then_finished_update_one_experiment(store: Store) -> None:
    report, exp = _one(store, INSPECT / "weather_tools_running.eval")
    warnings = report.files[0].warnings
    assert any("no header.json" in w for w in warnings)
    assert any("3 of 6 samples" in w for w in warnings)
    assert exp.traces == 3
    report, exp2 = _one(store, INSPECT / "weather_tools_crashed.eval")
    assert exp2.id == exp.id and exp2.action == "updated"
    assert exp2.traces == 2  # the third sample was cut in the middle
    assert any("directory is missing" in w for w in report.files[0].warnings)
    assert any("incomplete" in w for w in report.files[0].warnings)
    report, exp3 = _one(store, INSPECT / "weather_tools.eval")
    assert exp3.id == exp.id and exp3.action == "updated" and not report.files[0].warnings
    assert len(trace_rows(store, exp.ref)) == 6
    assert len(load_experiments(store)) == 1
    # the finished log's facts replace what the running one said
    from evaltui.store import find_experiment

    assert find_experiment(store, exp.id)["metadata"]["inspect"]["status"] == "success"


def test_reimport_updates_in_place(store: Store) -> None:
    _, first = _one(store, INSPECT / "weather_tools.eval")
    before = spans_of(store, first.ref)
    _, again = _one(store, INSPECT / "weather_tools.eval")
    assert (again.id, again.ref, again.action) == (first.id, first.ref, "updated")
    assert spans_of(store, first.ref) == before
    assert len(load_experiments(store)) == 1


def test_log_directory_with_listing_file(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(INSPECT / "simple_qa.eval", logs)
    shutil.copy(INSPECT / "weather_tools.eval", logs)
    (logs / "logs.json").write_text('{"simple_qa.eval": {"status": "success"}}')  # Inspect's listing
    report = import_paths(store, [logs])
    assert report.ok
    assert sorted(e.ref.split("/")[0] for e in report.experiments) == ["simple_qa", "weather_tools"]
    skipped = [f for f in report.files if f.skipped]
    assert [Path(f.path).name for f in skipped] == ["logs.json"]


def test_score_values() -> None:
    assert [score_value(v) for v in ("C", "I", "P", "N", "c", True, False, 0.25, 1, 7, -1, "A", None, [1])] == [
        1.0, 0.0, 0.5, 0.0, 1.0, 1.0, 0.0, 0.25, 1.0, None, None, None, None, None]


def test_zstd_zip_members_decode() -> None:
    with open(INSPECT / "weather_tools.eval", "rb") as f:
        z = ZipReader(f)
        assert {m.method for m in z.members} == {93}
        header = json.loads(z.read(z.get("header.json")))
        assert header["eval"]["task"] == "weather_tools"
        samples = [n for n in z.names() if n.startswith("samples/")]
        assert len(samples) == 6
        for n in samples:
            assert json.loads(z.read(z.get(n)))["id"] in ("paris", "oslo", "atlantis")
