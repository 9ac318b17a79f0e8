"""Phoenix experiment runs and Langfuse dataset runs (hand-made fixtures, documented API shapes)."""

from __future__ import annotations

import json

import pytest
from test_ingest_support import FIXTURES, spans_of, trace_rows, tree

from evaltui.ingest import import_paths
from evaltui.store import Store


def test_phoenix_experiment_json(store: Store) -> None:
    report = import_paths(store, [FIXTURES / "phoenix/experiment_runs.json"])
    assert report.ok, report.errors
    assert report.files[0].format == "phoenix"
    (exp,) = report.experiments
    assert exp.ref == "phoenix/experiment_runs"
    assert (exp.traces, exp.spans) == (4, 10)  # 2 examples x 2 repetitions; the failed run has no annotations
    rows = trace_rows(store, exp.ref)
    by_example: dict[str, list[dict]] = {}
    for r in rows:
        by_example.setdefault(r["name"], []).append(r)
    math = by_example["RGF0YXNldEV4YW1wbGU6MQ=="]
    assert [(r["scores.correctness"], r["scores.relevance"]) for r in math] == [(1.0, 0.8), (1.0, 0.8)]
    assert math[0]["comparison_key"] == math[1]["comparison_key"]  # repetitions are trials
    assert [r["tokens"] for r in math] == [24, 24]
    assert math[0]["duration"] == pytest.approx(0.75)
    spain = sorted(by_example["RGF0YXNldEV4YW1wbGU6Mg=="], key=lambda r: r["created"])
    assert spain[0]["scores.correctness"] == 0.0
    assert spain[1]["has_error"] and "RateLimitError" in spain[1]["error"]
    spans = spans_of(store, exp.ref)
    # span ids derive from the file's path, so pick the math example's spans by content
    root = next(s for s in spans if not s["span_parents"] and s["input"] == {"question": "What is 2+2?"})
    assert root["expected"] == {"answer": "4"}
    relevance = next(s for s in spans if s["span_attributes"]["name"] == "relevance"
                     and s["span_parents"] == [root["span_id"]])
    assert relevance["metadata"]["explanation"] == "on topic"
    assert relevance["metadata"]["annotator_kind"] == "LLM"


def test_phoenix_runs_api_with_experiment(store: Store) -> None:
    report = import_paths(store, [FIXTURES / "phoenix/experiment_runs_api.json"])
    assert report.ok, report.errors
    (exp,) = report.experiments
    assert exp.ref == "qa-experiments/experiment_runs_api"
    assert (exp.traces, exp.spans) == (4, 4)
    rows = trace_rows(store, exp.ref)
    assert sum(r["errors"] for r in rows) == 1


def test_langfuse_dataset_run(store: Store) -> None:
    report = import_paths(store, [FIXTURES / "langfuse/dataset_run.json"])
    assert report.ok, report.errors
    assert report.files[0].format == "langfuse"
    (exp,) = report.experiments
    assert exp.ref == "translations/baseline-run"
    assert (exp.traces, exp.spans) == (2, 10)
    rows = sorted(trace_rows(store, exp.ref), key=lambda r: r["created"])
    assert [(r["scores.exact_match"], r["scores.fluent"]) for r in rows] == [(1.0, 1.0), (0.0, 1.0)]
    assert [r["tokens"] for r in rows] == [20, 20]
    assert [r["estimated_cost"] for r in rows] == [pytest.approx(0.0003)] * 2  # not counted twice
    assert rows[0]["duration"] == pytest.approx(1.25)
    assert rows[0]["dataset_record_id"] == "item-1"
    assert json.loads(rows[0]["expected"]) == {"text": "chat"}
    spans = spans_of(store, exp.ref)
    root = next(s for s in spans if not s["span_parents"] and s["input"] == {"text": "Translate 'dog' to French"})
    assert tree(spans, root["span_id"]) == [
        (0, "eval", "translate"), (1, "function", "pipeline"), (2, "llm", "openai-chat"), (3, "score", "fluent"),
        (1, "score", "exact_match")]
    gen = next(s for s in spans if s["root_span_id"] == root["span_id"] and s["span_attributes"]["type"] == "llm")
    assert gen["metrics"]["time_to_first_token"] == pytest.approx(0.2)
    assert gen["metadata"]["model"] == "gpt-4o-mini"
    exact = next(s for s in spans if s["root_span_id"] == root["span_id"] and s["span_attributes"]["name"] == "exact_match")
    assert exact["metadata"]["comment"] == "chienne vs chien"


def test_langfuse_sdk_item_results(store: Store, tmp_path) -> None:
    doc = {"run_name": "sdk-run", "item_results": [
        {"item": {"id": "i1", "input": "2+2", "expected_output": "4"}, "output": "4", "trace_id": "t1",
         "dataset_run_id": "r9", "evaluations": [{"name": "acc", "value": 1.0, "comment": "ok"}]},
        {"item": {"id": "i2", "input": "3+3", "expected_output": "6"}, "output": "7", "trace_id": "t2",
         "dataset_run_id": "r9", "evaluations": [{"name": "acc", "value": 0.0}]},
    ]}
    path = tmp_path / "langfuse_results.json"
    path.write_text(json.dumps(doc))
    report = import_paths(store, [path], format="langfuse")
    assert report.ok, report.errors
    rows = sorted(trace_rows(store, report.experiments[0].ref), key=lambda r: r["input"])
    assert [(r["input"], r["output"], r["scores.acc"]) for r in rows] == [("2+2", "4", 1.0), ("3+3", "7", 0.0)]
