"""The `evaltui` command line: ls, --db / $EVALTUI_DB, one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evaltui import __version__
from evaltui.cli import cli, format_ls


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    """Nothing here may touch the real user dirs."""
    monkeypatch.setenv("EVALTUI_DB", str(tmp_path / "env-default.db"))
    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "80")


def _make_store(path: Path) -> dict[str, str]:
    """Two projects: 'bot' with two experiments, 'other' with one; known score means."""
    from evaltui.store import Store, create_experiment, set_review, write_spans

    ids = {}
    with Store(path) as store:
        plan = [
            ("bot", "first", "2025-01-01T10:00:00+00:00", [0.0, 1.0, 0.5], [None, None, "boom"]),
            ("bot", "second", "2025-01-02T10:00:00+00:00", [1.0, 1.0, 1.0], [None, None, None]),
            ("other", "solo", "2024-06-01T10:00:00+00:00", [0.25], [None]),
        ]
        for project, name, created, accs, errs in plan:
            eid = create_experiment(store, project, name, created=created)
            ids[f"{project}/{name}"] = eid
            recs = []
            for i, (acc, err) in enumerate(zip(accs, errs, strict=True)):
                root = f"{name}-r{i}"
                recs.append({
                    "id": root, "experiment_id": eid, "span_id": root, "root_span_id": root,
                    "span_attributes": {"name": "eval", "type": "eval"},
                    "input": {"q": i}, "output": f"answer {i}", "error": err,
                    "metrics": {"start": 1.0, "end": 2.0},
                })
                recs.append({
                    "id": f"{root}-s", "experiment_id": eid, "span_id": f"{root}-s", "root_span_id": root,
                    "span_parents": [root], "span_attributes": {"name": "Accuracy", "type": "score"},
                    "scores": {"Accuracy": acc},
                })
            write_spans(store, recs)
        set_review(store, ids["bot/first"], ["first-r0"], user="alice", review_status="reviewed")
    return ids


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_version():
    r = run("--version")
    assert r.exit_code == 0
    assert r.output.strip() == f"evaltui {__version__}"


def test_help_lists_commands():
    r = run("--help")
    assert r.exit_code == 0
    for name in ("ls", "demo", "bench", "open", "import", "export", "summary"):
        assert name in r.output


def test_ls_text(tmp_path):
    db = tmp_path / "s.db"
    _make_store(db)
    r = run("--db", str(db), "ls")
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    # projects by newest experiment, experiments newest first
    assert lines[0].startswith("bot · 2 experiments")
    text = r.output
    assert text.index("second") < text.index("first") < text.index("other") < text.index("solo")
    assert "Accuracy" in text
    assert "0.500" in text  # mean of first: (0 + 1 + 0.5) / 3
    assert "0.250" in text
    first = next(line for line in lines if line.strip().startswith("first"))
    assert first.split()[3:6] == ["3", "1", "0"]  # traces, errors, scorer errors
    assert all(len(line) <= 80 for line in lines)


def test_ls_wraps_many_scores_under_80_columns():
    rows = [{
        "project": "p", "name": "an-experiment-with-a-long-name", "created": "2025-01-01T00:00:00+00:00",
        "traces": 200, "errors": 6, "scorer_errors": 4,
        "scores": {"Factuality": 0.7, "Helpfulness": 0.8, "Politeness": 0.9, "ExactMatch": None},
    }]
    text = format_ls(rows, width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "Factuality 0.700" in text and "ExactMatch —" in text
    wide = format_ls(rows, width=200)
    assert len(wide.splitlines()) == 3  # title, header, one row with the scores inline


def test_ls_json(tmp_path):
    db = tmp_path / "s.db"
    ids = _make_store(db)
    r = run("ls", "--json", "--db", str(db))
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [(e["project"], e["name"]) for e in data] == [("bot", "second"), ("bot", "first"), ("other", "solo")]
    first = data[1]
    assert first["id"] == ids["bot/first"]
    assert first["traces"] == 3 and first["errors"] == 1 and first["reviewed"] == 1
    assert first["scores"]["Accuracy"] == pytest.approx(0.5)


def test_ls_project_filter(tmp_path):
    db = tmp_path / "s.db"
    _make_store(db)
    r = run("--db", str(db), "ls", "--project", "other", "--json")
    assert [e["name"] for e in json.loads(r.output)] == ["solo"]
    r = run("--db", str(db), "ls", "--project", "nope")
    assert r.exit_code == 2
    assert "no project 'nope'" in r.output


def test_db_from_environment(tmp_path, monkeypatch):
    db = tmp_path / "from-env.db"
    _make_store(db)
    monkeypatch.setenv("EVALTUI_DB", str(db))
    r = run("ls", "--json")
    assert len(json.loads(r.output)) == 3
    # --db wins over the environment, on the group or on the command
    other = tmp_path / "empty.db"
    assert json.loads(run("--db", str(other), "ls", "--json").output) == []
    assert json.loads(run("ls", "--db", str(other), "--json").output) == []


def test_ls_on_missing_db_does_not_create_it(tmp_path):
    db = tmp_path / "missing.db"
    r = run("--db", str(db), "ls")
    assert r.exit_code == 0
    assert "No experiments" in r.output and "evaltui demo" in r.output
    assert not db.exists()


def _evaltui(*args: str, env_db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVALTUI_DB": str(env_db)}
    return subprocess.run(
        [sys.executable, "-c", "from evaltui.cli import main; main()", *args],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )


@pytest.mark.parametrize(
    "args, needle",
    [
        (["ls", "--bogus"], "no such option"),
        (["--bogus"], "no such option"),
        (["ls", "--project"], "requires an argument"),
        (["bench", "--traces", "zero"], "is not a valid integer"),
        (["no-such-thing"], "no such file"),
        (["ls", "--db", "."], "is a directory"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, args, needle):
    p = _evaltui(*args, env_db=tmp_path / "d.db")
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("evaltui: error: ")
    assert needle in lines[0].lower()
    assert "Traceback" not in p.stderr


def test_non_database_file_is_exit_2(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database\n")
    for args in (["--db", str(junk), "ls"], [str(junk)]):
        p = _evaltui(*args, env_db=tmp_path / "d.db")
        assert p.returncode == 2, p.stderr
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("evaltui: error: ")
        assert "not an SQLite database" in p.stderr


def test_unknown_experiment_is_exit_2(tmp_path):
    """A missing experiment raises the store's NotFound: shown as one line, exit 2."""
    db = tmp_path / "s.db"
    _make_store(db)
    code = (
        "import click, sys\n"
        "from evaltui.cli import cli\n"
        "from evaltui.store import Store, find_experiment\n"
        "@cli.command('probe')\n"
        "def probe():\n"
        f"    find_experiment(Store({str(db)!r}), 'bot/nope')\n"
        "cli.main(args=['probe'], prog_name='evaltui')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 2
    assert p.stderr.startswith("evaltui: error: no experiment 'bot/nope'")
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr


def test_open_without_terminal_falls_back_to_ls(tmp_path):
    db = tmp_path / "s.db"
    _make_store(db)
    p = _evaltui(str(db), env_db=tmp_path / "d.db")
    assert p.returncode == 0, p.stderr
    assert "bot · 2 experiments" in p.stdout
    assert "not a terminal" in p.stderr


def test_control_characters_in_names_are_escaped(tmp_path):
    rows = [{"project": "p\x1b[2J", "name": "x\x1b[31m", "created": None, "traces": 0, "errors": 0,
             "scorer_errors": 0, "scores": {}}]
    text = format_ls(rows)
    assert "\x1b" not in text and "\\x1b[2J" in text


def test_bench_is_wired(tmp_path, monkeypatch):
    """`evaltui bench` passes its flags to evaltui.bench.run_bench."""
    import types

    calls = []
    fake = types.ModuleType("evaltui.bench")

    def run_bench(traces=1000, spans_per_trace=5, as_json=False):
        calls.append((traces, spans_per_trace, as_json))
        return "timings"

    fake.run_bench = run_bench
    monkeypatch.setitem(sys.modules, "evaltui.bench", fake)
    r = run("bench", "--traces", "10", "--spans-per-trace", "3", "--json")
    assert r.exit_code == 0, r.output
    assert calls == [(10, 3, True)]
    assert "timings" in r.output
    run("bench")
    assert calls[-1] == (1000, 5, False)  # bench's own defaults when no flag is given


def test_importing_cli_is_light():
    code = "import sys, evaltui.cli; print(sorted(m for m in ('polars', 'textual', 'evaltui.store') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_import_shows_progress_on_a_terminal(tmp_path, monkeypatch):
    import evaltui.cli as cli_mod

    monkeypatch.setattr(cli_mod, "_stderr_is_tty", lambda: True)
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"input": i, "output": i}) + "\n" for i in range(5)))
    r = CliRunner().invoke(cli, ["import", str(src), "--db", str(tmp_path / "p.db")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "\rimporting [####################] 100%" in r.stderr
    assert "created imports/rows: 5 traces" in r.stdout
    # without a terminal: no progress line
    monkeypatch.setattr(cli_mod, "_stderr_is_tty", lambda: False)
    r = CliRunner().invoke(cli, ["import", str(src), "--db", str(tmp_path / "p.db")], catch_exceptions=False)
    assert "importing [" not in r.stderr and "\r" not in r.stderr


def test_open_a_folder_with_nothing_to_import(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# not results\n")
    p = _evaltui(str(folder), env_db=tmp_path / "d.db")
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("evaltui: error: ")
    assert "nothing to import" in p.stderr
