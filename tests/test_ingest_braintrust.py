"""Braintrust exports, and the lossless round trip of an evaltui experiment through one."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from test_ingest_support import FIXTURES, spans_of, trace_rows, tree

from evaltui.ingest import import_paths
from evaltui.ingest.braintrust import EXTRA_KEY
from evaltui.sdk.eval import Eval
from evaltui.store import (
    Store,
    create_experiment,
    find_experiment,
    load_experiment_spans,
    load_experiments,
    write_spans,
)


@pytest.mark.parametrize("name", ["experiment_export.jsonl", "experiment_export.json"])
def test_braintrust_export(store: Store, name: str) -> None:
    report = import_paths(store, [FIXTURES / "braintrust" / name])
    assert report.ok, report.errors
    (exp,) = report.experiments
    assert exp.id == "5f0c2d8e-27a3-4d1e-a1b9-6c1f0e9d2b33"  # the source experiment's id
    assert (exp.traces, exp.spans) == (2, 6)
    rows = sorted(trace_rows(store, exp.ref), key=lambda r: r["created"])
    assert [(r["scores.ExactMatch"], r["scores.Factuality"]) for r in rows] == [(1.0, 0.9), (0.0, 0.2)]
    # tokens summed over the task's llm spans only (the scorer's 100 tokens are not the task's)
    assert [r["tokens"] for r in rows] == [15, 16]
    assert [r["llm_calls"] for r in rows] == [1, 1]
    assert rows[0]["dataset_record_id"] == "ds-r1"
    spans = spans_of(store, exp.ref)
    assert tree(spans, "r1-root") == [(0, "eval", "eval"), (1, "llm", "Chat Completion"), (1, "score", "Factuality")]
    root = next(s for s in spans if s["id"] == "r1-row-root")
    assert root["span_attributes"] == {"name": "eval", "type": "eval", "exec_counter": 1}
    assert root["metadata"]["category"] == "qa"
    extra = root["metadata"][EXTRA_KEY]
    assert extra["_xact_id"] == "1000192837460" and extra["is_root"] is True
    assert extra["project_id"] == "0b8e3a52-6f4a-4d55-9d57-1f3f7b0c1a11"
    assert extra["context"]["caller_lineno"] == 17
    assert root["created"] == "2026-01-01T00:00:00.000Z" and root["tags"] == ["smoke"]


def test_json_and_ndjson_forms_are_the_same_experiment(store: Store) -> None:
    a = import_paths(store, [FIXTURES / "braintrust/experiment_export.jsonl"])
    b = import_paths(store, [FIXTURES / "braintrust/experiment_export.json"])
    assert a.experiments[0].id == b.experiments[0].id
    assert b.experiments[0].action == "updated"
    assert len(load_experiments(store)) == 1


def _rich_experiment(store: Store) -> str:
    """An evaltui experiment with every field in use (nested spans, errors, unicode, nulls)."""
    eid = create_experiment(store, "roundtrip", "source", metadata={"a": 1})
    recs = []
    for n in range(3):
        root = f"t{n}"
        recs.append({
            "id": f"row-{root}", "experiment_id": eid, "span_id": root, "root_span_id": root, "span_parents": [],
            "span_attributes": {"name": f"case {n}", "type": "eval", "purpose": "scorer?"},
            "input": {"q": f"question {n} ✓ \u0000-free", "list": [1, 2.5, None, True]},
            "output": "answer" if n else None, "expected": {"a": n},
            "error": {"message": "boom", "stack": "line 1"} if n == 2 else None,
            "metadata": {"nested": {"x": [n]}, "emoji": "🙂"}, "metrics": {"start": 100.0 + n, "end": 101.5 + n},
            "tags": ["t1", "t2"], "origin": {"object_type": "dataset", "id": "d1"}, "dataset_record_id": f"d{n}",
            "created": f"2026-02-0{n + 1}T00:00:00+00:00",
        })
        recs.append({
            "id": f"row-{root}-llm", "experiment_id": eid, "span_id": f"{root}-llm", "root_span_id": root,
            "span_parents": [root], "span_attributes": {"name": "chat", "type": "llm"},
            "input": [{"role": "user", "content": "hi"}], "output": {"role": "assistant", "content": "yo"},
            "metrics": {"start": 100.2 + n, "end": 101.0 + n, "prompt_tokens": 5, "completion_tokens": 2,
                        "tokens": 7, "estimated_cost": 1e-6, "time_to_first_token": 0.05},
            "created": f"2026-02-0{n + 1}T00:00:01+00:00",
        })
        recs.append({
            "id": f"row-{root}-score", "experiment_id": eid, "span_id": f"{root}-score", "root_span_id": root,
            "span_parents": [f"{root}-llm"], "span_attributes": {"name": "acc", "type": "score"},
            "scores": {"acc": n / 2, "skipped": None}, "metadata": {"explanation": "why"},
            "metrics": {"start": 101.2 + n, "end": 101.3 + n}, "created": f"2026-02-0{n + 1}T00:00:02+00:00",
        })
    write_spans(store, recs)
    return eid


def _export(store: Store, eid: str, path: Path) -> list[dict]:
    spans = load_experiment_spans(store, eid)
    path.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in spans))
    return spans


def test_evaltui_export_round_trips_losslessly(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as a:
        eid = _rich_experiment(a)
        original = _export(a, eid, tmp_path / "export.jsonl")
    with Store(tmp_path / "b.db") as b:
        report = import_paths(b, [tmp_path / "export.jsonl"], format="braintrust", project="roundtrip")
        assert report.ok, report.errors
        assert report.experiments[0].id == eid
        assert load_experiment_spans(b, eid) == original
        rows = trace_rows(b, report.experiments[0].ref)
        assert [r["scores.acc"] for r in sorted(rows, key=lambda r: r["created"])] == [0.0, 0.5, 1.0]
        assert sum(r["errors"] for r in rows) == 1


def test_sdk_experiment_round_trips_and_reimports_in_place(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as a:
        result = Eval(
            "sdk-roundtrip",
            data=[{"input": {"n": i}, "expected": i * 2, "metadata": {"k": i}} for i in range(4)],
            task=lambda input: input["n"] * 2 if input["n"] != 3 else 1 / 0,
            scores=[lambda output, expected: 1.0 if output == expected else 0.0],
            db=a,
            progress=False,
            print_summary=False,
        )
        eid = result.experiment_id
        assert find_experiment(a, f"sdk-roundtrip/{result.experiment_name}")["id"] == eid
        original = _export(a, eid, tmp_path / "sdk.jsonl")
        # importing the export into the same store finds the same experiment: nothing changes
        report = import_paths(a, [tmp_path / "sdk.jsonl"])
        assert report.ok and report.experiments[0].action == "updated"
        assert load_experiment_spans(a, eid) == original
        assert len(load_experiments(a)) == 1
    with Store(tmp_path / "b.db") as b:
        report = import_paths(b, [tmp_path / "sdk.jsonl"])
        assert report.ok, report.errors
        assert report.files[0].format == "braintrust"
        assert load_experiment_spans(b, eid) == original
