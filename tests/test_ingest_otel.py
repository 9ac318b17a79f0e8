"""OTLP/JSON and JSONL from the real OpenTelemetry SDK (OpenInference and GenAI attributes)."""

from __future__ import annotations

import json

import pytest
from test_ingest_support import FIXTURES, spans_of, trace_rows, tree

from evaltui.ingest import import_paths
from evaltui.store import Store


@pytest.mark.parametrize("name", ["otel_traces.json", "otel_export.jsonl"])
def test_otel_traces(store: Store, name: str) -> None:
    report = import_paths(store, [FIXTURES / "otel" / name])
    assert report.ok, report.errors
    (exp,) = report.experiments
    assert exp.ref == f"weather-agent/{name.split('.')[0]}"  # project from service.name
    assert (exp.traces, exp.spans) == (3, 10)  # 9 OTel spans + 1 evaluation score span
    rows = {r["name"]: r for r in trace_rows(store, exp.ref)}
    agent = rows["agent_run"]
    # 138 (total given) + 157 (prompt 150 + completion 7)
    assert (agent["tokens"], agent["prompt_tokens"], agent["completion_tokens"]) == (295, 270, 25)
    assert agent["prompt_cached_tokens"] == 64
    assert agent["estimated_cost"] == pytest.approx(0.00042 + 0.0003 + 0.0001)
    assert (agent["llm_calls"], agent["tool_calls"], agent["errors"]) == (2, 1, 0)
    assert agent["input"] == json.dumps({"question": "What is the weather in Paris?"}, separators=(",", ":"))
    assert json.loads(agent["metadata"])["variant"] == "a"
    assert json.loads(agent["tags"]) == ["fixture", "weather"]
    genai = rows["invoke_agent support"]
    # gen_ai.usage.input/output_tokens (42 + 11) and deprecated prompt/completion_tokens (30 + 5)
    assert (genai["tokens"], genai["llm_calls"]) == (88, 2)
    assert genai["scores.helpfulness"] == 0.75
    failed = rows["lookup_order"]
    assert failed["has_error"] and failed["errors"] == 1 and failed["tool_calls"] == 1
    assert "orders service unreachable" in failed["error"]

    spans = spans_of(store, exp.ref)
    root = next(s for s in spans if s["span_attributes"]["name"] == "agent_run")
    assert tree(spans, root["span_id"]) == [
        (0, "function", "agent_run"), (1, "llm", "ChatCompletion"), (1, "tool", "get_weather"),
        (1, "llm", "ChatCompletion"),
    ]
    first_llm = min((s for s in spans if s["span_attributes"]["name"] == "ChatCompletion"),
                    key=lambda s: s["metrics"]["start"])
    assert first_llm["input"] == [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    assert first_llm["output"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": {"city": "Paris"}}
    assert first_llm["metadata"]["model"] == "gpt-4o-mini"
    assert first_llm["metadata"]["invocation_parameters"] == {"temperature": 0}
    chat = next(s for s in spans if s["span_attributes"]["name"] == "chat claude-sonnet")
    assert chat["input"] == [{"role": "user", "content": "How do I reset my password?"}]
    assert chat["output"] == {"role": "assistant", "content": "Open Settings, then Security."}
    legacy = next(s for s in spans if s["span_attributes"]["name"] == "chat legacy-model")
    assert legacy["output"] == {"role": "assistant", "content": "You are welcome."}
    score = next(s for s in spans if s["span_attributes"]["type"] == "score")
    assert score["span_parents"] == [chat["span_id"]]
    assert score["metadata"]["explanation"] == "Correct but terse."
    tool = next(s for s in spans if s["span_attributes"]["name"] == "orders_api")
    assert tool["error"]["type"] == "ConnectionError"
    assert tool["metrics"]["end"] > tool["metrics"]["start"]


def test_json_and_jsonl_give_the_same_spans(store: Store, tmp_path) -> None:
    a = import_paths(store, [FIXTURES / "otel/otel_traces.json"]).experiments[0]
    b = import_paths(store, [FIXTURES / "otel/otel_export.jsonl"]).experiments[0]

    def shape(ref: str) -> list:
        return sorted((s["span_attributes"]["name"], s["span_attributes"]["type"], s["metrics"].get("tokens"),
                       json.dumps(s["input"]), json.dumps(s["scores"]), s["metadata"]["otel"]["span_id"]
                       if "otel" in (s["metadata"] or {}) else None) for s in spans_of(store, ref))

    assert shape(a.ref) == shape(b.ref)


def test_missing_root_gets_a_synthetic_one(store: Store, tmp_path) -> None:
    # the export without its root spans: their children's parent never comes
    doc = json.loads((FIXTURES / "otel/otel_traces.json").read_text())
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            ss["spans"] = [s for s in ss["spans"] if s.get("parentSpanId")]
    path = tmp_path / "partial.jsonl"
    path.write_text(json.dumps(doc) + "\n")
    report = import_paths(store, [path])
    assert report.ok, report.errors
    assert any("synthetic root" in w for w in report.files[0].warnings)
    rows = trace_rows(store, report.experiments[0].ref)
    assert len(rows) == 3 and all(r["name"].startswith("trace ") for r in rows)
    assert sum(r["span_count"] for r in rows) == 3 + 6 + 1  # synthetic roots, children, evaluation
