"""evaltui.query.export: rows in every format, filters as count_matching counts them, the
lossless span-record round trip, streaming, atomic files, regression gates, Markdown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import orjson
import polars as pl
import pytest

from evaltui.ingest import import_paths
from evaltui.query.export import (
    Gate,
    format_for_path,
    md,
    parse_gate,
    plan_export,
    plan_view_export,
    regression_failures,
    summary_markdown,
    write_atomically,
    write_export,
)
from evaltui.query.filter import FilterError, count_matching
from evaltui.store import (
    Store,
    create_experiment,
    load_experiment_spans,
    set_review,
    write_spans,
)


def make_experiment(
    store: Store, project: str = "bot", name: str = "run", n: int = 6, created: str | None = None
) -> str:
    """``n`` traces: a root (input, output, expected, metadata, tags, tokens), an llm child,
    and a scorer span with Accuracy = i / (n - 1); trace 2 fails; hostile text in trace 1."""
    eid = create_experiment(store, project, name, created=created)
    recs = []
    for i in range(n):
        root = f"{name}-t{i}"
        recs.append({
            "id": root, "experiment_id": eid, "span_id": root, "root_span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"},
            "input": {"q": f"question {i}"} if i != 1 else "line one\nline \"two\", with a comma \x1b[2J",
            "output": f"answer {i}", "expected": f"answer {i}" if i % 2 == 0 else None,
            "error": {"message": "boom", "stack": "x"} if i == 2 else None,
            "metadata": {"category": "billing" if i % 2 else "shipping", "n": i, "nested": {"k": [i]}},
            "tags": ["triage"] if i < 2 else None,
            "metrics": {"start": 100.0 + i, "end": 101.5 + i},
            "created": f"2026-01-01T00:00:0{i}+00:00",
        })
        recs.append({
            "id": f"{root}-llm", "experiment_id": eid, "span_id": f"{root}-llm", "root_span_id": root,
            "span_parents": [root], "span_attributes": {"name": "chat", "type": "llm"},
            "input": [{"role": "user", "content": "hi"}], "output": "yo",
            "metrics": {"start": 100.1 + i, "end": 101.0 + i, "prompt_tokens": 5, "completion_tokens": 2 + i,
                        "tokens": 7 + i, "estimated_cost": 0.001},
            "created": f"2026-01-01T00:00:0{i}+00:00",
        })
        recs.append({
            "id": f"{root}-score", "experiment_id": eid, "span_id": f"{root}-score", "root_span_id": root,
            "span_parents": [root], "span_attributes": {"name": "Accuracy", "type": "score"},
            "scores": {"Accuracy": i / (n - 1)}, "metrics": {"start": 101.2 + i, "end": 101.3 + i},
            "created": f"2026-01-01T00:00:0{i}+00:00",
        })
    write_spans(store, recs)
    set_review(store, eid, [f"{name}-t0"], user="alice", review_status="reviewed")
    return eid


def export_bytes(store: Store, eid: str, fmt: str, **kwargs) -> tuple[int, bytes]:
    page_rows = kwargs.pop("page_rows", 500)
    buf = io.BytesIO()
    n = write_export(store, plan_export(store, eid, **kwargs), buf, fmt, page_rows=page_rows)
    return n, buf.getvalue()


def read_rows(fmt: str, data: bytes) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines()]
    if fmt == "json":
        return json.loads(data)
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    return pl.read_parquet(io.BytesIO(data)).to_dicts()


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
@pytest.mark.parametrize("text", ["", "scores.Accuracy >= 0.5", "metadata.category = 'billing'",
                                  "error is not null or tags includes 'triage'", "output match '[0-3]$'",
                                  "any_span(type = 'llm' and tokens > 9)"])
def test_trace_rows_in_every_format_match_count_matching(store: Store, fmt: str, text: str) -> None:
    eid = make_experiment(store)
    n, data = export_bytes(store, eid, fmt, filter_text=text, page_rows=2)
    rows = read_rows(fmt, data)
    assert n == len(rows) == count_matching(store, eid, text)
    assert {r["root_span_id"] for r in rows} <= {f"run-t{i}" for i in range(6)}
    # oldest first, as the table shows them
    assert [r["created"] for r in rows] == sorted(r["created"] for r in rows)


def test_trace_row_fields_nested(store: Store) -> None:
    eid = make_experiment(store)
    _, data = export_bytes(store, eid, "jsonl")
    rows = {r["root_span_id"]: r for r in read_rows("jsonl", data)}
    r0, r1, r2 = rows["run-t0"], rows["run-t1"], rows["run-t2"]
    # full values from the root span, not the table's previews
    assert r0["input"] == {"q": "question 0"} and r0["output"] == "answer 0" and r0["expected"] == "answer 0"
    assert r1["input"] == "line one\nline \"two\", with a comma \x1b[2J"
    assert r1["scores"] == {"Accuracy": pytest.approx(0.2)}
    assert r0["metrics"]["tokens"] == 7 and r0["metrics"]["llm_calls"] == 1
    assert r0["metrics"]["duration"] == pytest.approx(1.5)
    assert r0["metrics"]["estimated_cost"] == pytest.approx(0.001)
    assert r0["metadata"] == {"category": "shipping", "n": 0, "nested": {"k": [0]}}
    assert r0["tags"] == ["triage"] and r2["tags"] == []
    assert r0["review_status"] == "reviewed" and r0["reviewed_by"] == "alice" and r1["review_status"] == "unreviewed"
    assert r2["error"] == {"message": "boom", "stack": "x"} and r0["error"] is None
    assert r0["id"] == "run-t0" and r0["name"] == "eval"


def test_trace_rows_flat_csv_and_parquet(store: Store) -> None:
    eid = make_experiment(store)
    _, data = export_bytes(store, eid, "csv")
    rows = read_rows("csv", data)
    header = next(csv.reader(io.StringIO(data.decode())))
    assert header[:4] == ["input", "output", "expected", "scores.Accuracy"]
    assert {"metrics.tokens", "metadata.category", "metadata.n", "metadata.nested", "tags", "review_status",
            "error", "id", "root_span_id"} <= set(header)
    assert "metrics.ttft" not in header  # a metric no trace has is left out
    r0, r1, r2 = rows[0], rows[1], rows[2]
    assert r0["input"] == '{"q":"question 0"}'  # JSON values as compact JSON text
    assert r1["input"] == "line one\nline \"two\", with a comma \x1b[2J"  # strings as they are
    assert r0["expected"] == "answer 0" and r1["expected"] == ""
    assert r0["metadata.nested"] == '{"k":[0]}' and r0["metadata.n"] == "0"
    assert r0["tags"] == '["triage"]' and r2["error"] == '{"message":"boom","stack":"x"}'
    assert float(r1["scores.Accuracy"]) == pytest.approx(0.2)

    _, data = export_bytes(store, eid, "parquet")
    frame = pl.read_parquet(io.BytesIO(data))
    assert frame.schema["scores.Accuracy"] == pl.Float64
    assert frame.schema["metrics.tokens"] == pl.Int64
    assert frame.schema["metadata.n"] == pl.Int64 and frame.schema["metadata.category"] == pl.String
    assert frame.schema["tags"] == pl.List(pl.String)
    assert frame["tags"].to_list()[:3] == [["triage"], ["triage"], None]
    assert frame["metadata.n"].to_list() == list(range(6))


def test_span_rows(store: Store) -> None:
    eid = make_experiment(store)
    n, data = export_bytes(store, eid, "jsonl", rows="spans")
    rows = read_rows("jsonl", data)
    assert n == 18
    llm = next(r for r in rows if r["id"] == "run-t0-llm")
    assert llm["type"] == "llm" and llm["parent_id"] == "run-t0" and llm["input"] == [{"role": "user", "content": "hi"}]
    assert llm["metrics"]["tokens"] == 7
    text = "type = 'score' and scores.Accuracy > 0.3"
    n, data = export_bytes(store, eid, "csv", rows="spans", filter_text=text)
    assert n == count_matching(store, eid, text, row_type="spans") == 4
    assert {r["name"] for r in read_rows("csv", data)} == {"Accuracy"}


def test_all_fields_are_the_stored_records(store: Store) -> None:
    eid = make_experiment(store)
    n, data = export_bytes(store, eid, "jsonl", all_fields=True, page_rows=4)
    records = [orjson.loads(line) for line in data.splitlines()]
    assert n == 18
    assert records == load_experiment_spans(store, eid)
    # filtered on traces: every span of the matching traces
    n, data = export_bytes(store, eid, "json", all_fields=True, filter_text="metadata.category = 'billing'")
    assert n == 9 and {r["root_span_id"] for r in json.loads(data)} == {"run-t1", "run-t3", "run-t5"}
    # flat: every JSON field is the stored JSON text
    _, data = export_bytes(store, eid, "csv", all_fields=True)
    row = read_rows("csv", data)[0]
    assert row["output"] == '"answer 0"' and row["span_parents"] == "[]" and row["expected"] == '"answer 0"'


def test_all_fields_jsonl_reimports_losslessly(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db") as a:
        eid = make_experiment(a)
        original = load_experiment_spans(a, eid)
        path = tmp_path / "export.jsonl"
        with open(path, "wb") as f:
            write_export(a, plan_export(a, eid, all_fields=True), f, "jsonl", page_rows=5)
    with Store(tmp_path / "b.db") as b:
        report = import_paths(b, [path], format="braintrust")
        assert report.ok, report.errors
        assert report.experiments[0].id == eid
        assert load_experiment_spans(b, eid) == original


def test_orphan_spans_are_exported_with_all_fields(store: Store) -> None:
    """A span whose root was never written has no trace row; the record export keeps it."""
    eid = make_experiment(store, n=2)
    write_spans(store, [{"id": "orphan", "experiment_id": eid, "span_id": "o", "root_span_id": "missing",
                         "span_parents": ["missing"], "span_attributes": {"name": "late", "type": "llm"}}])
    n, _ = export_bytes(store, eid, "jsonl", all_fields=True)
    assert n == 7
    n, _ = export_bytes(store, eid, "jsonl")
    assert n == 2


def test_jsonl_is_written_page_by_page(store: Store) -> None:
    """Constant memory: each page of rows is written before the next is read."""
    eid = make_experiment(store)

    class Recorder(io.BytesIO):
        writes = 0

        def write(self, b):  # type: ignore[override]
            Recorder.writes += 1
            return super().write(b)

    out = Recorder()
    write_export(store, plan_export(store, eid, all_fields=True), out, "jsonl", page_rows=4)
    assert Recorder.writes == 5  # 18 spans in pages of 4
    Recorder.writes = 0
    out = Recorder()
    write_export(store, plan_export(store, eid), out, "csv", page_rows=2)
    assert Recorder.writes == 4  # header with the first page, three pages, then the empty remainder


def test_bad_filter_raises_before_anything_is_written(store: Store) -> None:
    eid = make_experiment(store)
    with pytest.raises(FilterError) as e:
        plan_export(store, eid, filter_text="scores.Accuracy >> 1")
    assert e.value.column == 18
    with pytest.raises(FilterError, match="scores.Nope"):
        plan_export(store, eid, filter_text="scores.Nope > 1")
    with pytest.raises(FilterError):  # tags is not a span-row field (as in the TUI)
        plan_export(store, eid, rows="spans", filter_text="tags includes 'x'")


def test_empty_experiment(store: Store) -> None:
    eid = create_experiment(store, "p", "empty")
    assert export_bytes(store, eid, "json") == (0, b"[]\n")
    n, data = export_bytes(store, eid, "csv")
    assert n == 0 and data.decode().startswith("input,output,expected,")
    assert export_bytes(store, eid, "jsonl") == (0, b"")
    assert pl.read_parquet(io.BytesIO(export_bytes(store, eid, "parquet")[1])).height == 0


def test_format_for_path() -> None:
    assert format_for_path("a/b.CSV") == "csv"
    assert format_for_path("x.ndjson") == "jsonl"
    assert format_for_path("x.pq") == "parquet"
    assert format_for_path("x.json") == "json"
    assert format_for_path("x.txt") is None


def test_write_atomically_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        write_atomically(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temp file left
    assert write_atomically(target, lambda f: f.write(b"new")) == 3
    assert target.read_text() == "new"
    with pytest.raises(FileNotFoundError) as e:
        write_atomically(tmp_path / "no-such-dir" / "x.csv", lambda f: None)
    assert e.value.filename == str(tmp_path / "no-such-dir" / "x.csv")


# -- gates and Markdown --------------------------------------------------------------------------


def test_parse_gate() -> None:
    assert parse_gate("*") == Gate(None, 0.0, "*")
    assert parse_gate("") == Gate(None, 0.0, "")
    assert parse_gate("Accuracy") == Gate("Accuracy", 0.0, "Accuracy")
    assert parse_gate("Accuracy:0.05").min_drop == 0.05
    assert parse_gate("Accuracy:5pp").min_drop == pytest.approx(0.05)
    assert parse_gate("Accuracy:2.5%").min_drop == pytest.approx(0.025)
    assert parse_gate("*:0.1") == Gate(None, 0.1, "*:0.1")
    assert parse_gate("a:b:0.2") == Gate("a:b", 0.2, "a:b:0.2")
    assert parse_gate("ratio:x").score == "ratio:x"  # not a number: part of the name
    with pytest.raises(ValueError, match="negative"):
        parse_gate("Accuracy:-0.1")


def _summary(**scores) -> dict:
    return {
        "traces": 2, "base_traces": 2, "matched": 2, "unmatched": 0, "base_unmatched": 0,
        "experiment": {"project": "p", "name": "new"}, "base_experiment": {"project": "p", "name": "old"},
        "scores": {k: {"mean": m, "base_mean": b, "diff": None if m is None or b is None else m - b,
                       "improvements": 0, "regressions": 1, "lower_is_better": False}
                   for k, (m, b) in scores.items()},
        "metrics": {},
    }


def test_regression_failures() -> None:
    s = _summary(acc=(0.5, 0.6), tone=(0.9, 0.8), gone=(None, 0.5), new=(0.7, None))
    fails = regression_failures(s, [parse_gate("*")])
    assert [f["score"] for f in fails] == ["acc"]  # a missing side is not a drop for "any"
    assert regression_failures(s, [parse_gate("acc:0.1")]) == []  # 0.6 - 0.5 is not more than 0.1
    assert [f["score"] for f in regression_failures(s, [parse_gate("acc:0.09")])] == ["acc"]
    assert regression_failures(s, [parse_gate("tone")]) == []
    assert regression_failures(s, [parse_gate("new")]) == []
    (f,) = regression_failures(s, [parse_gate("gone")])
    assert f["reason"] == "no values in this experiment"
    with pytest.raises(ValueError, match="no score 'typo'"):
        regression_failures(s, [parse_gate("typo")])
    s["base_experiment"] = None
    assert regression_failures(s, [parse_gate("*")]) == []


def test_markdown_escapes_names() -> None:
    assert md("a|b") == "a\\|b"
    assert md("x\n<script>") == "x \\<script\\>"
    assert md("\x1b[2J") == "\\\\x1b\\[2J"
    s = _summary(**{"a|b": (0.5, 0.5)})
    s["experiment"]["name"] = "**bold** `code`"
    text = summary_markdown(s)
    assert "| a\\|b | 50.00% | 50.00% | +0.00pp | 0 | 1 |" in text
    assert "\\*\\*bold\\*\\* \\`code\\`" in text


# -- the TUI's export: exactly the rows and columns a view shows -----------------------------------


def _view_bytes(store: Store, eid: str, ids: list[str], fmt: str, **kwargs) -> tuple[int, bytes]:
    buf = io.BytesIO()
    seen: list[int] = []
    n = write_export(store, plan_view_export(store, eid, ids, **kwargs), buf, fmt, page_rows=2, on_page=seen.append)
    assert seen == sorted(seen) and (not ids or seen[-1] == n)  # progress after every page, up to the total
    return n, buf.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_view_export_keeps_the_views_rows_order_and_columns(store: Store, fmt: str) -> None:
    eid = make_experiment(store)
    ids = ["run-t4", "run-t0", "run-t3"]  # a sorted, filtered view: not the stored order
    n, data = _view_bytes(store, eid, ids, fmt,
                          columns=["output", "scores.Accuracy", "duration", "metadata.category", "not-a-column"])
    rows = read_rows(fmt, data)
    assert n == 3
    if fmt in ("csv", "parquet"):
        assert list(rows[0]) == ["output", "scores.Accuracy", "metrics.duration", "metadata.category"]
        assert [r["output"] for r in rows] == ["answer 4", "answer 0", "answer 3"]
        assert [float(r["scores.Accuracy"]) for r in rows] == [0.8, 0.0, 0.6]
        assert [r["metadata.category"] for r in rows] == ["shipping", "shipping", "billing"]
    else:
        assert rows[0] == {"output": "answer 4", "scores": {"Accuracy": 0.8}, "metrics": {"duration": 1.5},
                           "metadata": {"category": "shipping"}}
        assert [r["output"] for r in rows] == ["answer 4", "answer 0", "answer 3"]


def test_view_export_of_span_rows_and_all_fields(store: Store) -> None:
    eid = make_experiment(store)
    n, data = _view_bytes(store, eid, ["run-t1-llm", "run-t0-score"], "jsonl", rows="spans",
                          columns=["name", "type", "metrics.tokens", "scores.Accuracy"])
    assert [json.loads(x) for x in data.decode().splitlines()] == [
        {"name": "chat", "type": "llm", "metrics": {"tokens": 8}, "scores": {"Accuracy": None}},
        {"name": "Accuracy", "type": "score", "metrics": {"tokens": None}, "scores": {"Accuracy": 0.0}},
    ]
    # all fields of two traces: their spans, trace by trace in the view's order, each by start
    n, data = _view_bytes(store, eid, ["run-t5", "run-t2"], "jsonl", all_fields=True)
    spans = [json.loads(x) for x in data.decode().splitlines()]
    assert n == 6 and [s["id"] for s in spans] == [
        "run-t5", "run-t5-llm", "run-t5-score", "run-t2", "run-t2-llm", "run-t2-score"]
    stored = {r["id"]: r for r in load_experiment_spans(store, eid)}
    assert all(s == json.loads(orjson.dumps(stored[s["id"]])) for s in spans)


def test_view_export_writes_nothing_to_the_database(store: Store, db_path: Path) -> None:
    eid = make_experiment(store)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db_path.read_bytes()
    _view_bytes(store, eid, ["run-t1"], "csv", columns=["input"])
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db_path.read_bytes() == before  # the view's ids live in a TEMP table only
    with pytest.raises(ValueError, match="none of the visible columns"):
        plan_view_export(store, eid, ["run-t1"], columns=["nope"])
