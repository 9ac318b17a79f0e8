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


def test_cursor_figure_says_what_each_kind_of_key_costs() -> None:
    def run(j: float, scroll: float | None, last: float, scrolls: int) -> dict:
        return {"moves_sent_split_ms": {"j": j, "j_n": 51 - scrolls - 1, "j_scroll": scroll, "j_scroll_n": scrolls,
                                        "G": last, "G_n": 1}}

    empty = [run(1.0, None, 1.1, 0), run(1.2, None, 1.3, 0)]
    app = [run(3.0, 7.0, 10.0, 8), run(3.4, 7.4, 12.0, 8)]
    lines = [run(2.0, 6.0, 9.0, 3)]
    note = bench._moves_split(empty, app, lines)
    assert "evaltui j 3.2 ms x42, j scrolling a row 7.2 ms x8, G 11.0 ms x1" in note
    assert "Line-API app j 2.0 ms x47, scrolling 6.0 ms x3" in note
    assert "empty app j 1.1 ms x50" in note
    assert bench._moves_split(empty, [{"moves_sent_cpu_s": 0.2}], lines) == ""  # a run without the split
