"""The demo project: written with the SDK, realistic, deterministic, and safe to write twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evaltui.demo import DEMO_PROJECT, HOSTILE, DemoConflict, build_dataset, write_demo
from evaltui.store import (
    Store,
    create_experiment,
    load_experiment_spans,
    load_experiments,
    load_trace_rows,
)

EXPERIMENT_NAMES = {"gpt-4o-mini baseline", "gpt-4o", "gpt-4o-mini + new prompt"}


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALTUI_DB", str(tmp_path / "env-default.db"))
    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    return db, write_demo(db)


def _experiments(db: Path) -> dict[str, dict]:
    with Store(db) as store:
        return {r["name"]: r for r in load_experiments(store, DEMO_PROJECT).iter_rows(named=True)}


def test_dataset_shape():
    cases = build_dataset()
    assert len(cases) == 200
    assert len({c["input"] for c in cases}) > 150  # varied, not one template
    cats = {c["metadata"]["category"] for c in cases}
    assert cats == {"billing", "shipping", "returns", "account", "technical"}
    assert {c["metadata"]["difficulty"] for c in cases} == {"easy", "medium", "hard"}
    assert sum(c["metadata"]["category"] == "technical" for c in cases) == 40
    assert build_dataset() == cases  # seeded


def test_three_experiments_of_200_traces(demo):
    db, info = demo
    exps = _experiments(db)
    assert set(exps) == EXPERIMENT_NAMES
    for e in exps.values():
        assert e["traces"] == 200
        assert json.loads(e["metadata"])["demo"] is True
        means = json.loads(e["score_means"])
        assert {"Factuality", "Helpfulness", "Politeness", "Similarity"} <= set(means)
    assert {e["name"] for e in info["experiments"]} == EXPERIMENT_NAMES
    assert info["replaced"] is False
    # the two variants are compared with the baseline
    base_id = exps["gpt-4o-mini baseline"]["id"]
    assert exps["gpt-4o"]["base_exp_id"] == base_id
    assert exps["gpt-4o-mini + new prompt"]["base_exp_id"] == base_id


def test_errors_and_scorer_errors(demo):
    db, _ = demo
    for e in _experiments(db).values():
        assert 3 <= e["errors"] <= 10  # ~3% of 200
        assert 2 <= e["scorer_errors"] <= 8  # ~2%
    with Store(db) as store:
        eid = _experiments(db)["gpt-4o"]["id"]
        spans = load_experiment_spans(store, eid)
    failed_llm = [s for s in spans if s["span_attributes"]["type"] == "llm" and s["error"]]
    assert failed_llm
    assert all(("429" in s["error"]["message"]) or ("timed out" in s["error"]["message"]) for s in failed_llm)
    failed_scorers = [s for s in spans if s["span_attributes"]["type"] == "score" and s["error"]]
    assert failed_scorers
    assert all("JudgeParseError" in s["error"]["message"] for s in failed_scorers)


def test_nested_llm_and_tool_spans_with_tokens(demo):
    db, _ = demo
    with Store(db) as store:
        eid = _experiments(db)["gpt-4o-mini baseline"]["id"]
        spans = load_experiment_spans(store, eid)
        rows = load_trace_rows(store, eid)
    by_id = {s["span_id"]: s for s in spans}
    types = {s["span_attributes"]["type"] for s in spans}
    assert {"eval", "task", "llm", "tool", "function", "score"} <= types
    llm = [s for s in spans if s["span_attributes"]["type"] == "llm" and not s["error"]]
    assert len(llm) > 200
    for s in llm:
        parent = by_id[s["span_parents"][0]]
        assert parent["span_attributes"]["type"] == "task"  # nested under the task, under the root
        assert by_id[parent["span_parents"][0]]["span_attributes"]["type"] == "eval"
        m = s["metrics"]
        assert m["prompt_tokens"] > 0 and m["completion_tokens"] > 0
        assert m["tokens"] == m["prompt_tokens"] + m["completion_tokens"]
        assert m["estimated_cost"] > 0 and m["time_to_first_token"] > 0
        assert m["start"] < m["end"]
        assert isinstance(s["input"], list) and {"role", "content"} <= set(s["input"][0])
    tool_calls = [s for s in llm if s["output"].get("tool_calls")]
    assert tool_calls and tool_calls[0]["output"]["tool_calls"][0]["function"]["name"]
    # the trace table's roll-ups see it: tokens, cost, LLM and tool calls
    assert rows["tokens"].min() > 0 and rows["estimated_cost"].sum() > 0
    assert rows["llm_calls"].max() == 2 and rows["tool_calls"].max() >= 2
    # simulated timings enclose children: the root spans the task and the scorers
    ok = rows.filter(~rows["has_error"])
    assert (ok["duration"] >= ok["llm_duration"]).all()
    assert ok["duration"].median() > 1.0  # LLM calls take seconds, not microseconds


def test_metadata_tags_and_long_outputs(demo):
    db, _ = demo
    with Store(db) as store:
        eid = _experiments(db)["gpt-4o-mini baseline"]["id"]
        rows = load_trace_rows(store, eid)
        roots = [s for s in load_experiment_spans(store, eid) if not s["span_parents"]]
    assert {"metadata.category", "metadata.difficulty", "metadata.model"} <= set(rows.columns)
    assert set(rows["metadata.model"].unique()) == {"gpt-4o-mini"}
    assert any("escalation" in (s["tags"] or []) for s in roots)
    outputs = [s["output"] for s in roots if isinstance(s["output"], str)]
    assert any(len(o) > 3000 for o in outputs)
    assert sum(o.count("\n") >= 4 for o in outputs) >= 10
    assert any(len(s["input"]) > 2000 and s["input"].count("\n") > 10 for s in roots)


def test_planted_pattern_small_model_regresses_on_technical(demo):
    db, _ = demo
    means = {}
    with Store(db) as store:
        for name, e in _experiments(db).items():
            rows = load_trace_rows(store, e["id"])
            tech = rows.filter(rows["metadata.category"] == "technical")["scores.Factuality"].mean()
            rest = rows.filter(rows["metadata.category"] != "technical")["scores.Factuality"].mean()
            means[name] = (tech, rest)
    assert means["gpt-4o"][0] - means["gpt-4o-mini baseline"][0] > 0.3
    assert means["gpt-4o-mini baseline"][1] - means["gpt-4o-mini baseline"][0] > 0.25
    assert abs(means["gpt-4o"][0] - means["gpt-4o"][1]) < 0.1


def test_reviews_and_assignments(demo):
    db, _ = demo
    exps = _experiments(db)
    assert exps["gpt-4o-mini baseline"]["reviewed"] >= 20
    with Store(db) as store:
        rows = load_trace_rows(store, exps["gpt-4o-mini baseline"]["id"])
        events = store.read("SELECT DISTINCT user FROM events")
    assert set(rows["reviewed_by"].drop_nulls().unique()) == {"alice", "bob"}
    assert set(rows["assignee"].drop_nulls().unique()) == {"alice", "bob"}
    assert "in review" in set(rows["review_status"].unique())
    assert {u for (u,) in events} == {"alice", "bob"}


def test_hostile_output_is_stored_byte_exact_once(demo):
    db, _ = demo
    found = []
    with Store(db) as store:
        for e in _experiments(db).values():
            for s in load_experiment_spans(store, e["id"]):
                if not s["span_parents"] and isinstance(s["output"], str) and "URGENT" in s["output"]:
                    found.append(s["output"])
    assert len(found) == 1
    assert HOSTILE in found[0]
    assert "[bold red]URGENT[/] \x1b[2J\x1b[31mreset\x1b[0m" in found[0]


def test_deterministic_and_rewriting_replaces(demo, tmp_path):
    db, first = demo
    other = tmp_path / "again.db"
    second = write_demo(other)

    def content(path: Path) -> dict:
        out = {}
        with Store(path) as store:
            for e in load_experiments(store, DEMO_PROJECT).iter_rows(named=True):
                rows = load_trace_rows(store, e["id"]).sort("dataset_record_id")
                out[e["name"]] = rows.select(
                    "dataset_record_id", "input", "output", "expected", "error", "tokens", "estimated_cost",
                    "review_status", "assignee", "tags", "metadata",
                    *[c for c in rows.columns if c.startswith("scores.")],
                ).to_dicts()
        return out

    assert content(db) == content(other)
    for a, b in zip(first["experiments"], second["experiments"], strict=True):
        assert a["name"] == b["name"]
        assert a["scores"] == pytest.approx(b["scores"], rel=1e-9)  # float sums in another order
    # writing again into the same file replaces the demo: still 3 experiments of 200 traces
    third = write_demo(other)
    assert third["replaced"] is True
    exps = _experiments(other)
    assert set(exps) == EXPERIMENT_NAMES and all(e["traces"] == 200 for e in exps.values())
    with Store(other) as store:
        assert store.read("SELECT count(*) FROM traces")[0][0] == 600


def test_refuses_to_replace_a_project_it_did_not_write(tmp_path):
    db = tmp_path / "mine.db"
    with Store(db) as store:
        create_experiment(store, DEMO_PROJECT, "my own work")
    with pytest.raises(DemoConflict, match="did not write"):
        write_demo(db)
    assert set(_experiments(db)) == {"my own work"}


def test_cli_demo_no_open(tmp_path):
    from evaltui.cli import cli

    db = tmp_path / "cli.db"
    r = CliRunner().invoke(cli, ["demo", "--db", str(db), "--no-open"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    for name in EXPERIMENT_NAMES:
        assert name in r.output
    assert "200 traces" in r.output
    r = CliRunner().invoke(cli, ["--db", str(db), "ls", "--json"])
    assert {e["name"] for e in json.loads(r.output)} == EXPERIMENT_NAMES
