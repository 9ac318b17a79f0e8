"""promptfoo results from the real CLI (0.121.7, echo provider): results.json v3, JSONL, and v2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ingest_support import FIXTURES, spans_of, trace_rows, tree

from evaltui.ingest import import_paths
from evaltui.store import Store

PF = FIXTURES / "promptfoo"
# per prompt: test name -> (pass, score, {assertion score name: value})
EXPECTED = {
    "plain": {
        "capital": (0.0, 0.5, {"contains": 1.0, "politeness": 0.0}),
        "arithmetic": (0.0, 0.055, {"contains": 0.0, "length_score": 0.11}),  # len("Answer: 2+2") / 100 = 0.11
        "hello": (1.0, 1.0, {"equals": 1.0}),
    },
    "polite": {
        "capital": (1.0, 1.0, {"contains": 1.0, "politeness": 1.0}),
        "arithmetic": (0.0, 0.135, {"contains": 0.0, "length_score": 0.27}),
        "hello": (0.0, 0.0, {"equals": 0.0}),
    },
}


def _check(store: Store, report) -> None:
    assert report.ok, report.errors
    assert len(report.experiments) == 2
    refs = {e.ref.split("/")[1]: e for e in report.experiments}
    assert sorted(refs) == ["echo-plain", "echo-polite"]
    keys = {}
    for label, tests in EXPECTED.items():
        exp = refs[f"echo-{label}"]
        assert (exp.traces, exp.spans) == (3, 14)
        rows = trace_rows(store, exp.ref)
        by_q = {_case(r): r for r in rows}
        for case, (passed, score, asserts) in tests.items():
            r = by_q[case]
            assert r["scores.pass"] == passed and r["scores.score"] == pytest.approx(score), (label, case)
            for name, v in asserts.items():
                assert r[f"scores.{name}"] == pytest.approx(v), (label, case, name)
            assert (r["llm_calls"], r["tokens"], r["estimated_cost"]) == (1, 0, 0.0)  # echo: no tokens, no cost
            assert not r["has_error"]  # a failed assertion is a low score, not an error
            keys.setdefault(case, set()).add(r["comparison_key"])
    # the same test case matches across the prompt x provider experiments (input = the vars)
    assert all(len(k) == 1 for k in keys.values())


def _case(row: dict) -> str:
    q = json.loads(row["input"])["question"]
    return {"What is the capital of France? Paris": "capital", "2+2": "arithmetic", "hello": "hello"}[q]


@pytest.mark.parametrize("name", ["results.json", "results.jsonl", "results_v2.json"])
def test_promptfoo_results(store: Store, name: str) -> None:
    report = import_paths(store, [PF / name])
    assert report.files[0].format == "promptfoo"
    _check(store, report)


def test_promptfoo_spans(store: Store) -> None:
    report = import_paths(store, [PF / "results.json"])
    exp = next(e for e in report.experiments if e.ref.endswith("echo-polite"))
    assert exp.ref == "echo fixture/echo-polite"  # project: the config's description
    spans = spans_of(store, exp.ref)
    root = next(s for s in spans if not s["span_parents"] and s["span_attributes"]["name"] == "arithmetic")
    assert tree(spans, root["span_id"])[0] == (0, "eval", "arithmetic")
    assert sorted(t[1:] for t in tree(spans, root["span_id"])[1:]) == [
        ("llm", "echo"), ("score", "contains"), ("score", "length_score"), ("score", "overall")]
    llm = next(s for s in spans if s["root_span_id"] == root["span_id"] and s["span_attributes"]["type"] == "llm")
    assert llm["input"] == [{"role": "user", "content": "Please answer politely: 2+2"}]
    assert llm["output"] == {"role": "assistant", "content": "Please answer politely: 2+2"}
    doc = json.loads((PF / "results.json").read_text())
    result = next(r for r in doc["results"]["results"] if r["promptIdx"] == 1 and r["testIdx"] == 1)
    assert llm["metrics"]["end"] - llm["metrics"]["start"] == pytest.approx(result["latencyMs"] / 1000, abs=1e-6)
    contains = next(s for s in spans if s["root_span_id"] == root["span_id"]
                    and s["span_attributes"]["name"] == "contains")
    assert contains["metadata"]["reason"] == 'Expected output to contain "4"'
    assert contains["input"] == {"type": "contains", "value": "4"}
    assert root["metadata"]["failure"] == 'Expected output to contain "4"' and root["error"] is None


def test_provider_error_is_an_error(store: Store, tmp_path: Path) -> None:
    doc = json.loads((PF / "results.json").read_text())
    r = doc["results"]["results"][0]
    r.update({"failureReason": 2, "error": "API error: 500", "success": False, "score": 0})
    r["response"] = {"error": "API error: 500"}
    r.pop("gradingResult")
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    report = import_paths(store, [path])
    assert report.ok, report.errors
    rows = [row for e in report.experiments for row in trace_rows(store, e.ref)]
    failed = [row for row in rows if row["has_error"]]
    assert len(failed) == 1 and failed[0]["error"] == "API error: 500"


def test_reimport_updates(store: Store) -> None:
    first = import_paths(store, [PF / "results.json"])
    again = import_paths(store, [PF / "results.json"])
    assert [e.id for e in first.experiments] == [e.id for e in again.experiments]
    assert {e.action for e in again.experiments} == {"updated"}
