"""``evaltui bench`` end to end on a tiny synthetic experiment (without the TUI processes)."""

from __future__ import annotations

import json
import math

import pytest

from evaltui import bench


def test_run_bench_json_has_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench.run_bench(traces=300, spans_per_trace=4, as_json=True, skip_tui=True)
    doc = json.loads(capsys.readouterr().out)
    assert (doc["traces"], doc["spans_per_trace"]) == (300, 4)
    names = [f["name"] for f in doc["figures"]]
    assert names == [f.name for f in figures]
    assert len(set(names)) == len(names)
    for expected in ("filter (score and metadata)", "sort by a score, nulls last", "group by metadata.category",
                     "text search (output ilike)", "compare two experiments", "insights (with a baseline)",
                     "rescore 300 traces (exact_match)", "toggle reviewed (one trace)",
                     "set a human score (one trace)", "import generic JSONL", "import Inspect JSON log",
                     "ingest (validated, with roll-ups)", "peak RSS"):
        assert expected in names
    assert not any(n.startswith("TUI") for n in names)
    for f in doc["figures"]:
        assert isinstance(f["value"], (int, float)) and math.isfinite(f["value"]) and f["value"] > 0, f
        assert f["met"] in (None, True, False)


def test_compare_inputs_match_scores_differ() -> None:
    a = [s for b in bench.synthetic_batches("a", 20, 4) for s in b]
    b_ = [s for b in bench.synthetic_batches("b", 20, 4, score_seed=2, prefix="b") for s in b]
    assert [s["input"] for s in a] == [s["input"] for s in b_]
    assert [s.get("scores") for s in a] != [s.get("scores") for s in b_]
    assert not {s["id"] for s in a} & {s["id"] for s in b_}


def test_figure_targets() -> None:
    assert bench.Figure("x", 50, "ms", "<= 100").met() is True
    assert bench.Figure("x", 29_000, "spans/s", ">= 30000").met() is False
    assert bench.Figure("x", 1, "ms").met() is None


def test_only_runs_the_parts_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    bench.run_bench(traces=60, spans_per_trace=3, as_json=True, only="store,import")
    figures = {f["name"]: f for f in json.loads(capsys.readouterr().out)["figures"]}
    assert "ingest (validated, with roll-ups)" in figures and "import generic JSONL" in figures
    assert not any(n.startswith(("filter", "compare", "rescore", "TUI")) for n in figures)
    for name in ("ingest (validated, with roll-ups)", "import generic JSONL"):  # baseline measured in the run
        assert "bare SQLite insert of the same rows" in figures[name]["note"]
        assert "by CPU time" in figures[name]["note"]
    with pytest.raises(ValueError, match="query needs store"):
        bench.run_bench(traces=10, only="query")
    with pytest.raises(ValueError, match="unknown part nope"):
        bench.run_bench(traces=10, only="store,nope")
