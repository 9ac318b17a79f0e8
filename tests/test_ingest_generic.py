"""Generic JSONL/CSV rows, mapping, and the import_paths API (paths, globs, sniffing, progress)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from test_ingest_support import FIXTURES, spans_of, trace_rows

from evaltui.ingest import (
    FORMATS,
    IngestError,
    expand_paths,
    import_file,
    import_paths,
    jsonl,
    sniff,
)
from evaltui.ingest.sniff import SniffError
from evaltui.store import Store, load_experiments


@pytest.fixture(params=["in-process", "forked"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each generic-row test runs twice: rows read in this process, and (the path of big
    files on Linux) read in a forked child while this process writes them."""
    if request.param == "forked":
        if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
            pytest.skip("no fork here")
        monkeypatch.setattr(jsonl, "FORK_MIN_BYTES", 0)
    else:
        monkeypatch.setattr(jsonl, "FORK_MIN_BYTES", 1 << 62)
    return request.param


def test_csv_rows(store: Store, reader: str) -> None:
    report = import_paths(store, [FIXTURES / "generic/rows.csv"])
    assert report.ok, report.errors
    (exp,) = report.experiments
    assert report.files[0].format == "csv" and exp.ref == "imports/rows"
    rows = {r["name"]: r for r in trace_rows(store, exp.ref)}
    assert {k: r["scores.correct"] for k, r in rows.items()} == {"q1": 1.0, "q2": 0.0, "q3": None}
    assert rows["q3"]["has_error"] and rows["q3"]["error"] == "timeout after 30 s"
    assert json.loads(rows["q1"]["metadata"]) == {"topic": "math"}
    assert json.loads(rows["q1"]["tags"]) == ["smoke", "math"]
    spans = {s["dataset_record_id"]: s for s in spans_of(store, exp.ref)}
    assert spans["q2"]["metrics"] == {"latency": 1.25}
    assert spans["q1"]["input"] == "What is 2+2?" and spans["q1"]["output"] == 4  # a numeric cell is a number


def test_csv_of_thousands_of_rows_imports_every_row_with_progress(store: Store, reader: str, tmp_path: Path) -> None:
    # progress is reported every 1,000 rows: it once asked the text file for its position
    # while csv.reader iterated it, which fails, so no CSV of 1,000 rows or more imported
    src = tmp_path / "many.csv"
    src.write_text("input,output,scores.acc,metadata.k\n"
                   + "".join(f"question {i},answer {i},{(i % 10) / 10},{i % 3}\n" for i in range(2500)))
    seen: list[float] = []
    report = import_paths(store, [src], progress=lambda done, total, name: seen.append(done / max(total, 1)))
    assert report.ok, report.errors
    rows = trace_rows(store, report.experiments[0].ref)
    assert len(rows) == 2500 and sorted(r["scores.acc"] for r in rows)[-1] == 0.9
    assert seen[-1] == 1.0 and any(0 < f < 1 for f in seen)  # the bar moved on the way


def test_jsonl_rows_nested_and_dotted(store: Store, reader: str) -> None:
    report = import_paths(store, [FIXTURES / "generic/rows.jsonl"])
    assert report.ok, report.errors
    rows = {r["name"]: r for r in trace_rows(store, report.experiments[0].ref)}
    assert (rows["q1"]["scores.correct"], rows["q1"]["scores.style"]) == (1.0, 0.5)
    assert rows["q2"]["scores.correct"] == 0.0
    assert json.loads(rows["q2"]["metadata"]) == {"topic": "geo"}
    assert json.loads(rows["q1"]["input"]) == {"question": "What is 2+2?"}


def test_mapping_other_column_names(store: Store, reader: str) -> None:
    mapping = {"input": "question", "expected": "answer", "output": "model_answer", "scores.correct": "is_correct",
               "metadata.model": "model"}
    report = import_paths(store, [FIXTURES / "generic/custom_columns.csv"], mapping=mapping,
                          project="arith", experiment="baseline")
    assert report.ok, report.errors
    (exp,) = report.experiments
    assert exp.ref == "arith/baseline"
    rows = sorted(trace_rows(store, exp.ref), key=lambda r: r["input"])
    assert [(r["input"], r["expected"], r["output"], r["scores.correct"]) for r in rows] == [
        ("2+2?", "4", "4", 1.0), ("3+3?", "6", "7", 0.0)]
    assert json.loads(rows[0]["metadata"]) == {"model": "small"}


def test_reimport_updates_without_duplicating(store: Store, reader: str, tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"id": "a", "input": "x", "output": "1", "scores": {"s": 0.5}}\n')
    first = import_paths(store, [path]).experiments[0]
    path.write_text('{"id": "a", "input": "x", "output": "2", "scores": {"s": 1}}\n{"id": "b", "input": "y"}\n')
    second = import_paths(store, [path]).experiments[0]
    assert (second.id, second.action) == (first.id, "updated")
    rows = {r["name"]: r for r in trace_rows(store, first.ref)}
    assert sorted(rows) == ["a", "b"] and rows["a"]["output"] == "2" and rows["a"]["scores.s"] == 1.0
    assert len(load_experiments(store)) == 1


def test_an_id_repeated_in_one_file_keeps_its_last_row(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    """Rows are written in batches straight to span and trace rows: a row id that comes
    back (in the same batch or a later one) is one trace with the values of its last row,
    and every other row is there once with its own values."""
    from evaltui.ingest import _common

    monkeypatch.setattr(_common, "BATCH_SIZE", 4)
    rows = [{"id": f"r{i}", "input": f"q{i}", "output": str(i), "scores": {"s": i / 10}} for i in range(10)]
    rows.insert(2, {"id": "r0", "input": "q0", "output": "again", "scores": {"s": 1}})  # same batch
    rows.append({"id": "r1", "input": "q1", "output": "last", "metadata": {"late": True}})  # a later batch
    path = tmp_path / "repeats.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = import_paths(store, [path])
    assert report.ok, report.errors
    got = {r["name"]: r for r in trace_rows(store, report.experiments[0].ref)}
    assert sorted(got) == [f"r{i}" for i in range(10)]
    assert (got["r0"]["output"], got["r0"]["scores.s"]) == ("again", 1.0)
    assert (got["r1"]["output"], got["r1"]["scores.s"], got["r1"]["metadata.late"]) == ("last", None, True)
    assert [got[f"r{i}"]["output"] for i in range(2, 10)] == [str(i) for i in range(2, 10)]
    assert all(got[k]["span_count"] == 1 for k in got)
    assert len(spans_of(store, report.experiments[0].ref)) == 10


def test_a_bad_row_names_its_line_and_field_and_imports_nothing(store: Store, reader: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps({"id": f"r{i}", "input": i, "scores": {"s": 0.5}}) for i in range(1500)]
    lines[1203] = json.dumps({"id": "bad", "input": 1, "scores": {"s": 3}})
    path.write_text("\n".join(lines) + "\n")
    report = import_paths(store, [path])
    assert not report.ok
    assert "line 1204" in report.errors[0] and "'scores'" in report.errors[0] and "outside [0, 1]" in report.errors[0]
    assert load_experiments(store).height == 0


def test_folders_globs_and_progress(store: Store, tmp_path: Path) -> None:
    for sub in ("braintrust", "phoenix"):
        shutil.copytree(FIXTURES / sub, tmp_path / "in" / sub)
    (tmp_path / "in" / "notes.txt").write_text("not results")
    (tmp_path / "in" / ".hidden.jsonl").write_text("garbage")
    calls: list[tuple[int, int, str]] = []
    report = import_paths(store, [tmp_path / "in"], progress=lambda d, t, label: calls.append((d, t, label)))
    assert report.ok, report.errors
    assert sorted(Path(f.path).name for f in report.files if not f.skipped) == [
        "experiment_export.json", "experiment_export.jsonl", "experiment_runs.json", "experiment_runs_api.json"]
    assert [Path(f.path).name for f in report.files if f.skipped] == ["notes.txt"]
    total = calls[-1][1]
    assert calls[-1][0] == total and all(0 <= d <= t for d, t, _ in calls)
    assert [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)
    globbed = expand_paths([str(tmp_path / "in" / "**" / "*.jsonl")])
    assert [p.name for p, implicit in globbed] == ["experiment_export.jsonl"] and globbed[0][1]
    text = "\n".join(report.lines())
    assert "braintrust/" in text and "skipped" in text


def test_path_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        import_paths(store, [tmp_path / "missing.jsonl"])
    with pytest.raises(IngestError, match="no file matches"):
        import_paths(store, [str(tmp_path / "*.nothing")])
    with pytest.raises(IngestError, match="unknown format"):
        import_paths(store, [FIXTURES / "generic/rows.csv"], format="excel")
    (tmp_path / "x.txt").write_text("hello world")
    report = import_paths(store, [tmp_path / "x.txt"])  # named explicitly: an error, not a skip
    assert not report.ok and "format not recognised" in report.errors[0] and str(tmp_path / "x.txt") in report.errors[0]
    with pytest.raises(IngestError, match="format not recognised"):
        import_file(store, tmp_path / "x.txt")


def test_sniff_every_fixture() -> None:
    expected = {
        "braintrust": "braintrust", "generic": None, "inspect": "inspect", "langfuse": "langfuse",
        "otel": "otel", "phoenix": "phoenix", "promptfoo": "promptfoo",
    }
    seen = set()
    for path in sorted(FIXTURES.glob("*/*")):
        if path.suffix in (".py", ".md", ".zst") or path.name == "vectors.json" or path.parent.name == "zstd":
            continue
        fmt = sniff(path)
        want = expected[path.parent.name] or ("csv" if path.suffix == ".csv" else "jsonl")
        assert fmt == want, path
        seen.add(fmt)
    assert seen <= set(FORMATS)


def test_sniff_errors(tmp_path: Path) -> None:
    cases = {
        "empty.jsonl": b"",
        "blank.json": b"  \n\n",
        "garbage.bin": bytes(range(256)) * 4,
        "other.json": b'{"hello": "world"}',
        "zip.zip": b"PK\x03\x04" + b"\x00" * 40,
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SniffError) as e:
            sniff(tmp_path / name)
        assert str(tmp_path / name) in str(e.value)


def _random_rows(n: int) -> list[dict]:
    import random

    rng = random.Random(7)
    rows = []
    for i in range(n):
        row: dict = {"id": f"r{rng.randrange(n)}", "input": rng.choice(["q", {"q": i, "ctx": ["a", "é"]}, i, None]),
                     "output": rng.choice(["long " * 200, "line\nbreak", 3.5, None, "[red]x[/red]\x1b[2J"])}
        if rng.random() < 0.5:
            row["scores"] = {"acc": rng.choice([0, 1, 0.25, True, None])}
        if rng.random() < 0.3:
            row["metadata"] = {"model": rng.choice(["a", "b"]), "n": i}
        if rng.random() < 0.3:
            row["metrics"] = {"tokens": i, "start": 10.0 + i, "end": 11.5 + i, "estimated_cost": 0.01}
        if rng.random() < 0.1:
            row["error"] = rng.choice(["boom", {"message": "bad"}])
        if rng.random() < 0.2:
            row["tags"] = ["t1", "t2"]
        row["created"] = f"2025-01-01T00:00:{i % 60:02d}+00:00"
        rows.append(row)
    return rows


def _table(store: Store, sql: str, drop: str | None = None) -> list[tuple]:
    with store.lock:
        cur = store.conn.execute(sql)
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    keep = [i for i, n in enumerate(names) if n != drop]
    return sorted((tuple(r[i] for i in keep) for r in rows), key=repr)


def test_a_file_read_in_a_forked_child_gives_the_rows_read_in_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forked reader is only a speed-up: spans, trace rows and column names are the
    rows the in-process reader writes (repeated ids, every field kind, odd text)."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        pytest.skip("no fork here")
    from evaltui.ingest import _common

    monkeypatch.setattr(_common, "BATCH_SIZE", 37)
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _random_rows(400)))
    got = {}
    for mode, limit in (("in-process", 1 << 62), ("forked", 0)):
        monkeypatch.setattr(jsonl, "FORK_MIN_BYTES", limit)
        with Store(tmp_path / f"{mode}.db") as store:
            report = import_paths(store, [path])
            assert report.ok, report.errors
            got[mode] = (
                report.traces, report.spans,
                _table(store, "SELECT * FROM spans"),
                # every column but row_version (a count of write batches, which differ)
                _table(store, "SELECT * FROM traces", drop="row_version"),
                _table(store, "SELECT * FROM experiment_fields"),
            )
    assert len(got["forked"][3]) < 400  # ids repeat: fewer traces than rows
    assert got["forked"] == got["in-process"]


def test_a_reader_child_that_dies_imports_nothing(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        pytest.skip("no fork here")
    from test_ingest_support import db_digest

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "input": i}) + "\n" for i in range(50)))
    before = db_digest(store)
    monkeypatch.setattr(jsonl, "FORK_MIN_BYTES", 0)
    # the child writes half a frame header and is gone
    monkeypatch.setattr(jsonl, "_produce", lambda *a: (a[1].write(b"B\x10"), a[1].flush(), os._exit(3)))
    report = import_paths(store, [path])
    assert not report.ok and "stopped unexpectedly" in report.errors[0]
    assert db_digest(store) == before


def test_a_field_dropped_on_reimport_is_cleared(store: Store, tmp_path: Path, reader: str) -> None:
    """Re-importing a file whose rows lost a field clears it (the insert that leaves out
    columns NULL in a whole batch still sets them to NULL on rows it replaces)."""
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"id": "a", "input": "x", "output": "1", "error": "boom", "tags": ["t"],
                                "metadata": {"m": 1}, "metrics": {"start": 1.0, "end": 3.0}}) + "\n")
    first = import_paths(store, [path]).experiments[0]
    (row,) = trace_rows(store, first.ref)
    assert row["has_error"] and row["duration"] == 2.0 and json.loads(row["tags"]) == ["t"]
    path.write_text(json.dumps({"id": "a", "input": "x", "output": "2"}) + "\n")
    assert import_paths(store, [path]).ok
    (row,) = trace_rows(store, first.ref)
    assert (row["output"], row["has_error"], row["error"], row["tags"], row["duration"]) == ("2", 0, None, None, None)
    (span,) = spans_of(store, first.ref)
    assert (span["error"], span["tags"], span["metadata"], span["metrics"]) == (None, None, None, None)


def test_a_row_whose_id_is_stored_in_another_experiment_moves_it(store: Store, tmp_path: Path, reader: str) -> None:
    """A new experiment's rows are inserted without looking their ids up; an id that another
    experiment holds (ids are unique in the store) still moves to the imported row, as a
    re-logged span does, instead of failing the import."""
    import hashlib

    from evaltui.ingest._common import stable_id
    from evaltui.store import create_experiment, write_spans

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "input": f"q{i}"}) + "\n" for i in range(30)))
    eid = stable_id("jsonl", str(path.resolve()))  # the experiment the import will create
    taken = hashlib.blake2b(f"{eid}\x1fr17".encode(), digest_size=16).hexdigest()
    other = create_experiment(store, "elsewhere", "other")
    write_spans(store, [{"id": taken, "experiment_id": other, "span_id": taken, "input": "old"}])
    report = import_paths(store, [path])
    assert report.ok, report.errors
    rows = {r["name"]: r for r in trace_rows(store, report.experiments[0].ref)}
    assert len(rows) == 30 and rows["r17"]["input"] == "q17"
    assert store.read("SELECT experiment_id FROM spans WHERE id = ?", (taken,)) == [(eid,)]
    assert trace_rows(store, "elsewhere/other") == []


def test_a_big_file_is_read_in_process_when_no_child_can_be_forked(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(jsonl, "FORK_MIN_BYTES", 0)
    monkeypatch.setattr(jsonl.os, "fork", no_fork)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "input": i}) + "\n" for i in range(20)))
    report = import_paths(store, [path])
    assert report.ok, report.errors
    assert report.traces == 20 and len(trace_rows(store, report.experiments[0].ref)) == 20
