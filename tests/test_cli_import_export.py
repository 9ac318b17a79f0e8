"""`evaltui import`, `evaltui PATH` (import then open), `evaltui export` and `ls --filter`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from test_export import make_experiment

from evaltui.cli import IMPORT_FORMATS, cli
from evaltui.query.filter import count_matching
from evaltui.store import (
    Store,
    find_experiment,
    load_experiment_spans,
    load_experiments,
)


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALTUI_DB", str(tmp_path / "env-default.db"))
    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "100")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    with Store(path) as store:
        make_experiment(store, "bot", "run")
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


GOOD = [
    {"question": "2+2?", "output": "4", "expected": "4", "scores": {"exact": 1}, "metadata": {"topic": "math"}},
    {"question": "capital of France?", "output": "Lyon", "expected": "Paris", "scores": {"exact": 0}},
    {"question": "hello", "output": "hi", "expected": "hi", "scores": {"exact": 1}},
]


def _state(db: Path) -> list[tuple]:
    with Store(db) as store:
        frame = load_experiments(store)
        return sorted(
            (r["id"], r["project"], r["name"], r["traces"], len(load_experiment_spans(store, r["id"])))
            for r in frame.iter_rows(named=True)
        )


# -- import -------------------------------------------------------------------------------------


def test_import_formats_match_the_importers():
    from evaltui.ingest import FORMATS

    assert set(IMPORT_FORMATS) == {"auto", *FORMATS}


def test_import_a_jsonl_file(tmp_path: Path, db: Path) -> None:
    src = _jsonl(tmp_path / "qa.jsonl", GOOD)
    r = run("import", str(src), "--db", str(db), "--project", "qa", "--experiment", "first",
            "--map", "question=input")
    assert r.exit_code == 0, r.output
    assert "created qa/first: 3 traces, 3 spans" in r.stdout
    assert "(jsonl: " in r.stdout
    assert "1 file imported" in r.stderr
    with Store(db) as store:
        exp = find_experiment(store, "qa/first")
        assert count_matching(store, exp["id"], "input = '2+2?'") == 1  # --map question=input
        assert count_matching(store, exp["id"], "scores.exact = 1") == 2
    # again: updated in place, never duplicated
    r = run("import", str(src), "--db", str(db), "--project", "qa", "--experiment", "first",
            "--map", "question=input", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] and doc["traces"] == 3 and doc["db"] == str(db)
    assert doc["files"][0]["experiments"][0]["action"] == "updated"
    assert len(_state(db)) == 2


def test_broken_file_is_reported_and_changes_nothing(tmp_path: Path, db: Path) -> None:
    good = _jsonl(tmp_path / "good.jsonl", GOOD)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(GOOD[0]) + "\n" + json.dumps(GOOD[1]) + "\n{\"input\": oops}\n")
    before = _state(db)
    r = run("import", str(broken), "--db", str(db))
    assert r.exit_code == 2
    (line,) = r.stderr.strip().splitlines()[:1]
    assert line.startswith("evaltui: error: ") and "broken.jsonl" in line and "line 3" in line
    assert "Traceback" not in r.output
    assert _state(db) == before  # the first two rows were rolled back with the file
    # with a good file alongside: the good one imports, the exit status still says a file failed
    r = run("import", str(broken), str(good), "--db", str(db))
    assert r.exit_code == 2
    assert "created imports/good: 3 traces" in r.stdout
    assert "broken.jsonl, line 3" in r.stderr and "1 file failed" in r.stderr
    assert len(_state(db)) == len(before) + 1


def test_import_folder_and_glob(tmp_path: Path, db: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    _jsonl(folder / "a.jsonl", GOOD[:1])
    _jsonl(folder / "b.jsonl", GOOD[1:])
    (folder / "README.md").write_text("not results")
    r = run("import", str(folder), "--db", str(db))
    assert r.exit_code == 0, r.output  # a file in no known format inside a folder is skipped, not an error
    assert "skipped" in r.stderr and "README.md" in r.stderr
    assert r.stdout.count("created ") == 2
    r = run("import", str(tmp_path / "logs" / "*.jsonl"), "--db", str(db))
    assert r.exit_code == 0 and r.stdout.count("updated ") == 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--map", "question"], "expected SRC=DST"),
        (["--map", "input=question"], "did you mean --map question=input"),
        (["--map", "a=input", "--map", "b=input"], "mapped twice"),
        (["--format", "xml"], "invalid value for '--format'"),
    ],
)
def test_import_flag_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    src = _jsonl(tmp_path / "qa.jsonl", GOOD)
    r = run("import", str(src), *args, "--db", str(tmp_path / "x.db"))
    assert r.exit_code == 2
    assert needle in r.stderr.lower() or needle in r.stderr


def test_import_missing_file(tmp_path: Path) -> None:
    r = run("import", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "x.db"))
    assert r.exit_code == 2 and "nope.jsonl" in r.stderr and "no such file" in r.stderr


def _evaltui(*args: str, env_db: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVALTUI_DB": str(env_db)}
    return subprocess.run(
        [sys.executable, "-c", "from evaltui.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL, check=False, cwd=cwd,
    )


def test_open_a_results_file_imports_it_first(tmp_path: Path) -> None:
    """`evaltui FILE`: imported into the default database, then opened (here: no terminal, so ls)."""
    src = _jsonl(tmp_path / "qa.jsonl", GOOD)
    default = tmp_path / "default.db"
    p = _evaltui(str(src), env_db=default)
    assert p.returncode == 0, p.stderr
    assert "created imports/qa" in p.stderr and "not a terminal" in p.stderr
    assert "imports · 1 experiment" in p.stdout and "qa" in p.stdout
    assert [e[2] for e in _state(default)] == ["qa"]
    # a broken file: reported, nothing opened, exit 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{\"input\": 1}\n[1,\n")
    p = _evaltui(str(broken), env_db=default)
    assert p.returncode == 2 and "broken.jsonl, line 2" in p.stderr and p.stdout == ""


def test_open_calls_the_tui_on_the_imported_experiment(tmp_path: Path, monkeypatch) -> None:
    import evaltui.cli as cli_mod
    from evaltui.tui import app

    calls = []
    monkeypatch.setattr(app, "run_app", lambda db, experiment=None: calls.append((Path(db), experiment)))
    monkeypatch.setattr(cli_mod, "_interactive", lambda: True)
    src = _jsonl(tmp_path / "qa.jsonl", GOOD)
    db = tmp_path / "open.db"
    r = run("--db", str(db), str(src))
    assert r.exit_code == 0, r.output
    assert calls == [(db, "imports/qa")]
    # a folder holding two experiments opens the experiment list
    folder = tmp_path / "two"
    folder.mkdir()
    _jsonl(folder / "x.jsonl", GOOD[:1])
    _jsonl(folder / "y.jsonl", GOOD[1:])
    assert run("--db", str(db), str(folder)).exit_code == 0
    assert calls[-1] == (db, None)


# -- export -------------------------------------------------------------------------------------


def read(fmt: str, data: bytes) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(x) for x in data.decode().splitlines()]
    if fmt == "json":
        return json.loads(data)
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    return pl.read_parquet(io.BytesIO(data)).to_dicts()


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_export_to_stdout_with_a_filter(db: Path, fmt: str) -> None:
    text = "scores.Accuracy >= 0.4 and metadata.category = 'billing'"
    r = run("export", "bot/run", "--format", fmt, "--filter", text, "--db", str(db))
    assert r.exit_code == 0, r.stderr
    rows = read(fmt, r.stdout_bytes)
    with Store(db) as store:
        expected = count_matching(store, find_experiment(store, "bot/run")["id"], text)
    assert len(rows) == expected == 2
    assert {row["root_span_id"] for row in rows} == {"run-t3", "run-t5"}
    assert r.stderr == ""  # stdout is the data; nothing else is said


@pytest.mark.parametrize("fmt, suffix", [("csv", ".csv"), ("json", ".json"), ("jsonl", ".ndjson"),
                                         ("parquet", ".parquet")])
def test_export_to_a_file_infers_the_format(tmp_path: Path, db: Path, fmt: str, suffix: str) -> None:
    out = tmp_path / f"rows{suffix}"
    r = run("--db", str(db), "export", "bot/run", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert f"Wrote 6 traces of bot/run to {out} ({fmt})" in r.stderr
    assert r.stdout == ""
    assert len(read(fmt, out.read_bytes())) == 6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_export_default_format_is_jsonl(db: Path) -> None:
    r = run("export", "bot/run", "--rows", "spans", "--filter", "type = 'llm'", "--db", str(db))
    assert r.exit_code == 0, r.stderr
    rows = read("jsonl", r.stdout_bytes)
    assert len(rows) == 6 and {row["type"] for row in rows} == {"llm"}


def test_export_all_fields_round_trips_through_import(tmp_path: Path, db: Path) -> None:
    out = tmp_path / "spans.jsonl"
    r = run("export", "bot/run", "--all-fields", "-o", str(out), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "Wrote 18 spans" in r.stderr
    fresh = tmp_path / "fresh.db"
    r = run("import", str(out), "--format", "braintrust", "--db", str(fresh))
    assert r.exit_code == 0, r.output
    with Store(db) as a, Store(fresh) as b:
        eid = find_experiment(a, "bot/run")["id"]
        assert load_experiment_spans(b, eid) == load_experiment_spans(a, eid)


@pytest.mark.parametrize(
    "text, column",
    [
        ("scores.Accuracy >> 0.5", 18),
        ("metadata.category = 'billing' and", 34),
        ("scores.Acuracy > 0.5", 1),
        ("output = 'a\tb' and (", 21),  # at the end: one past the last character
    ],
)
def test_bad_filter_points_at_the_column(db: Path, tmp_path: Path, text: str, column: int) -> None:
    out = tmp_path / "never.csv"
    r = run("export", "bot/run", "--filter", text, "-o", str(out), "--db", str(db))
    assert r.exit_code == 2
    lines = r.stderr.rstrip("\n").split("\n")
    assert len(lines) == 3, r.stderr
    assert lines[0].startswith("evaltui: error: --filter: ") and f"column {column}" in lines[0]
    assert lines[1] == "  " + text.replace("\t", " ")
    assert lines[2] == "  " + " " * (column - 1) + "^"
    assert not out.exists() and r.stdout == ""
    # the same message from ls --filter
    r2 = run("ls", "--filter", text, "--db", str(db))
    assert r2.exit_code == 2 and r2.stderr == r.stderr


def test_filter_with_control_characters_keeps_the_caret_in_place(db: Path) -> None:
    text = "output = '\x1b[2J' and >"
    r = run("export", "bot/run", "--filter", text, "--db", str(db))
    assert r.exit_code == 2
    _, shown, caret = r.stderr.rstrip("\n").split("\n")
    assert "\x1b" not in r.stderr
    assert len(shown) == len(text) + 2 and caret.index("^") == text.index(">") + 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["export", "bot/nope"], "no experiment 'bot/nope'"),
        (["export", "nope"], "no experiment 'nope'"),
        (["export", "bot/run", "-o", "rows.txt"], "cannot tell the format"),
        (["export", "bot/run", "--format", "xml"], "invalid value for '--format'"),
        (["summary", "bot/nope"], "no experiment 'bot/nope'"),
    ],
)
def test_export_errors_are_exit_2(db: Path, args: list[str], needle: str) -> None:
    r = run(*args, "--db", str(db))
    assert r.exit_code == 2
    assert r.stderr.startswith("evaltui: error: ") and needle in r.stderr.lower()
    assert r.stderr.count("\n") == 1


def test_export_into_a_missing_folder(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "nope" / "rows.csv"
    r = run("export", "bot/run", "-o", str(out), "--db", str(db))
    assert r.exit_code == 2
    assert r.stderr == f"evaltui: error: {out}: No such file or directory\n"


def test_export_from_a_missing_database_does_not_create_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    r = run("export", "bot/run", "--db", str(missing))
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert not missing.exists()


def test_export_subprocess_pipes_jsonl(db: Path, tmp_path: Path) -> None:
    p = _evaltui("export", "bot/run", "--filter", "error is not null", env_db=db)
    assert p.returncode == 0, p.stderr
    (row,) = [json.loads(x) for x in p.stdout.splitlines()]
    assert row["root_span_id"] == "run-t2" and row["error"]["message"] == "boom"


# -- ls --filter --------------------------------------------------------------------------------


def test_ls_filter_counts_matching_traces(tmp_path: Path) -> None:
    db = tmp_path / "ls.db"
    with Store(db) as store:
        make_experiment(store, "bot", "a", n=6, created="2026-01-01T00:00:00+00:00")
        make_experiment(store, "bot", "b", n=3, created="2026-01-02T00:00:00+00:00")
        other = store  # an experiment without the Accuracy score: the filter does not apply to it
        from evaltui.store import create_experiment, write_spans

        eid = create_experiment(other, "misc", "plain")
        write_spans(other, [{"id": "x", "experiment_id": eid, "span_id": "x", "root_span_id": "x", "input": 1}])
    r = run("ls", "--filter", "scores.Accuracy >= 0.5", "--json", "--db", str(db))
    assert r.exit_code == 0, r.output
    matching = {(e["project"], e["name"]): e["matching"] for e in json.loads(r.stdout)}
    assert matching == {("bot", "a"): 3, ("bot", "b"): 2, ("misc", "plain"): None}
    r = run("ls", "--filter", "scores.Accuracy >= 0.5", "--db", str(db))
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if line.startswith("  experiment"))
    assert header.split()[:5] == ["experiment", "created", "traces", "matching", "errors"]
    row_a = next(line for line in r.stdout.splitlines() if line.strip().startswith("a "))
    assert row_a.split()[3:5] == ["6", "3"]  # traces, matching
    assert "—" in next(line for line in r.stdout.splitlines() if line.strip().startswith("plain"))
    # without --filter there is no matching column
    assert "matching" not in run("ls", "--db", str(db)).stdout
