"""`evaltui analyze`: the same findings as the insights module, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from evaltui import store as st
from evaltui.cli import cli


def _experiment(s: st.Store, name: str, low_category: str | None) -> str:
    eid = st.create_experiment(s, "proj", name)
    records = []
    for i in range(60):
        category = ["billing", "shipping", "technical"][i % 3]
        acc = 0.1 if category == low_category else 0.9
        records.append({"id": f"{name}-{i}", "experiment_id": eid, "span_id": f"{name}-{i}",
                        "span_attributes": {"name": "eval", "type": "eval"}, "input": f"q{i}",
                        "output": f"a{i}", "metadata": {"category": category},
                        "scores": {"acc": acc}, "created": f"2026-01-01T00:00:{i:02d}+00:00",
                        "error": "Timeout after 30s on req 7" if i in (5, 7) else None})
    st.write_spans(s, records)
    return eid


def test_analyze_names_the_planted_category_and_error_family(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with st.Store(db) as s:
        _experiment(s, "base", None)
        _experiment(s, "new", "technical")
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(db), "analyze", "proj/new", "--compare", "proj/base"])
    assert out.exit_code == 0, out.output
    assert "metadata.category = 'technical'" in out.output
    assert "Timeout after <N>s on req <N>" in out.output
    js = runner.invoke(cli, ["--db", str(db), "analyze", "proj/new", "--json"])
    assert js.exit_code == 0
    doc = json.loads(js.output)
    assert doc["traces"] == 60


def test_analyze_with_a_bad_filter_points_at_the_column(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with st.Store(db) as s:
        _experiment(s, "new", None)
    out = CliRunner().invoke(cli, ["--db", str(db), "analyze", "proj/new", "--filter", "scores.acc <"])
    assert out.exit_code == 2
    assert "column" in out.output and "^" in out.output
