"""`evaltui summary`: text, Markdown and JSON on two tiny experiments with hand-computed
numbers, and the exit codes of --fail-on-regression."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evaltui.cli import cli
from evaltui.store import Store, create_experiment, write_spans


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALTUI_DB", str(tmp_path / "env-default.db"))
    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))


def _experiment(store: Store, name: str, created: str, cases: list[tuple[str, float, float, float]]) -> str:
    """One trace per case (input, acc, tone, duration): a root span and a scorer span."""
    eid = create_experiment(store, "bot", name, created=created)
    recs = []
    for input, acc, tone, duration in cases:
        root = f"{name}-{input}"
        recs.append({"id": root, "experiment_id": eid, "span_id": root, "root_span_id": root,
                     "span_attributes": {"name": "eval", "type": "eval"}, "input": input,
                     "metrics": {"start": 10.0, "end": 10.0 + duration}})
        recs.append({"id": f"{root}-s", "experiment_id": eid, "span_id": f"{root}-s", "root_span_id": root,
                     "span_parents": [root], "span_attributes": {"name": "scorer", "type": "score"},
                     "scores": {"acc": acc, "tone": tone}})
    write_spans(store, recs)
    return eid


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """v1 (base) and v2, matched on input.

    acc:  v1 a=1 b=.5 c=0 d=1         mean 2.5/4 = 0.625
          v2 a=1 b=1  c=0 d=.5 e=0    mean 2.5/5 = 0.5    diff -0.125; b up, d down
    tone: v1 all 1                     mean 1.0
          v2 a=1 b=1 c=.5 d=1 e=1     mean 4.5/5 = 0.9    diff -0.1;   c down
    duration: v1 all 1s; v2 b=2s, others 1s: mean 1.2s, diff +0.2s; b is a regression
    matched 4 (a-d); e only in v2.
    """
    path = tmp_path / "s.db"
    with Store(path) as store:
        _experiment(store, "v1", "2026-01-01T00:00:00+00:00",
                    [("a", 1.0, 1.0, 1.0), ("b", 0.5, 1.0, 1.0), ("c", 0.0, 1.0, 1.0), ("d", 1.0, 1.0, 1.0)])
        _experiment(store, "v2", "2026-01-02T00:00:00+00:00",
                    [("a", 1.0, 1.0, 1.0), ("b", 1.0, 1.0, 2.0), ("c", 0.0, 0.5, 1.0), ("d", 0.5, 1.0, 1.0),
                     ("e", 0.0, 1.0, 1.0)])
    return path


def run(db: Path, *args: str):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def test_json_numbers(db: Path) -> None:
    r = run(db, "summary", "bot/v2", "--format", "json")  # baseline: the previous experiment, v1
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["compared"] is True and s["base_experiment"]["name"] == "v1"
    assert (s["traces"], s["base_traces"], s["matched"], s["unmatched"], s["base_unmatched"]) == (5, 4, 4, 1, 0)
    acc, tone = s["scores"]["acc"], s["scores"]["tone"]
    assert acc["mean"] == pytest.approx(0.5) and acc["base_mean"] == pytest.approx(0.625)
    assert acc["diff"] == pytest.approx(-0.125)
    assert (acc["improvements"], acc["regressions"]) == (1, 1)
    assert tone["mean"] == pytest.approx(0.9) and tone["diff"] == pytest.approx(-0.1)
    assert (tone["improvements"], tone["regressions"]) == (0, 1)
    dur = s["metrics"]["duration"]
    assert dur["mean"] == pytest.approx(1.2) and dur["diff"] == pytest.approx(0.2) and dur["lower_is_better"]
    assert (dur["improvements"], dur["regressions"]) == (0, 1)
    assert "regression_check" not in s


def test_text(db: Path) -> None:
    r = run(db, "summary", "bot/v2")
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "Experiment bot/v2: 5 traces" in out
    assert "Compared with bot/v1: 4 matched cases (1 only here, 0 only in the base)" in out
    acc = next(line for line in out.splitlines() if line.strip().startswith("acc"))
    assert acc.split() == ["acc", "50.00%", "-12.50pp", "1", "improvements", "1", "regressions"]
    dur = next(line for line in out.splitlines() if line.strip().startswith("duration"))
    assert dur.split()[:3] == ["duration", "1.200s", "+0.200s"]


def test_markdown(db: Path) -> None:
    r = run(db, "summary", "bot/v2", "--format", "markdown")
    assert r.exit_code == 0, r.output
    md = r.stdout
    assert md.startswith("### evaltui summary: bot/v2 vs bot/v1\n")
    assert "**4** matched cases (1 only here, 0 only in the base)" in md
    assert "| Score | Mean | Base | Diff | ↑ Improvements | ↓ Regressions |" in md
    assert "| acc | 50.00% | 62.50% | -12.50pp | 1 | 1 |" in md
    assert "| tone | 90.00% | 100.00% | -10.00pp | 0 | 1 |" in md
    assert "| Metric (lower is better) | Mean | Base | Diff | ↑ Improvements | ↓ Regressions |" in md
    assert "| duration | 1.200s | 1.000s | +0.200s | 0 | 1 |" in md
    assert "| errors | 0.00% | 0.00% | +0.00pp | 0 | 0 |" in md
    assert "Regression check" not in md


def test_explicit_compare(db: Path) -> None:
    """v1 against v2: everything flips (and nothing regresses)."""
    r = run(db, "summary", "bot/v1", "--compare", "v2", "--format", "json", "--fail-on-regression")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["base_experiment"]["name"] == "v2"
    assert s["scores"]["acc"]["diff"] == pytest.approx(0.125)
    assert (s["scores"]["acc"]["improvements"], s["scores"]["acc"]["regressions"]) == (1, 1)
    assert s["regression_check"] == {"checked": True, "gates": [{"score": None, "min_drop": 0.0}],
                                     "failed": False, "failures": []}


def test_no_baseline(db: Path) -> None:
    for fmt, needle in (("text", "No baseline to compare with"), ("markdown", "No baseline to compare with")):
        r = run(db, "summary", "bot/v1", "--format", fmt, "--fail-on-regression")
        assert r.exit_code == 0, r.output
        assert needle in r.stdout and "checked nothing" in r.stderr
    r = run(db, "summary", "bot/v1", "--format", "markdown")
    assert "| acc | 62.50% |" in r.stdout
    s = json.loads(run(db, "summary", "bot/v1", "--format", "json").stdout)
    assert s["compared"] is False and s["base_experiment"] is None and s["matched"] is None


@pytest.mark.parametrize(
    "gates, code",
    [
        ([], 0),
        (["--fail-on-regression"], 1),  # any score: acc and tone both dropped
        (["--fail-on-regression", "acc"], 1),
        (["--fail-on-regression", "acc:0.124"], 1),  # the drop is 0.125: just over
        (["--fail-on-regression", "acc:0.125"], 0),  # exactly the allowed drop: not more than it
        (["--fail-on-regression", "acc:0.126"], 0),  # just under
        (["--fail-on-regression", "acc:12.4pp"], 1),
        (["--fail-on-regression", "acc:12.6pp"], 0),
        (["--fail-on-regression", "tone:0.1"], 0),  # 1.0 - 0.9 is 0.0999..., not more than 0.1
        (["--fail-on-regression", "tone:0.099"], 1),
        (["--fail-on-regression=acc:0.2", "--fail-on-regression=tone:0.2"], 0),
        (["--fail-on-regression=acc:0.2", "--fail-on-regression", "tone:0.05"], 1),
        (["--fail-on-regression", "*:0.2"], 0),
    ],
)
def test_fail_on_regression_exit_codes(db: Path, gates: list[str], code: int) -> None:
    r = run(db, "summary", "bot/v2", *gates)
    assert r.exit_code == code, r.output
    if code:
        assert "evaltui: regression: " in r.stderr
    else:
        assert "regression:" not in r.stderr


def test_fail_on_regression_in_markdown_and_json(db: Path) -> None:
    r = run(db, "summary", "bot/v2", "--format", "markdown", "--fail-on-regression", "acc:5pp",
            "--fail-on-regression", "tone:0.2")
    assert r.exit_code == 1
    assert "**Regression check failed:**" in r.stdout
    assert "- acc: 50.00% vs 62.50% in the base, a drop of 12.50pp (allowed: 5.00pp)" in r.stdout
    assert "tone" not in r.stdout.split("Regression check")[1]
    assert r.stderr.strip() == (
        "evaltui: regression: acc: 50.00% vs 62.50% in the base, a drop of 12.50pp (allowed: 5.00pp)"
    )
    r = run(db, "summary", "bot/v2", "--format", "json", "--fail-on-regression", "acc:0.2")
    assert r.exit_code == 0
    check = json.loads(r.stdout)["regression_check"]
    assert check["failed"] is False and check["gates"] == [{"score": "acc", "min_drop": 0.2}]
    r = run(db, "summary", "bot/v2", "--format", "json", "--fail-on-regression")
    (acc, tone) = json.loads(r.stdout)["regression_check"]["failures"]
    assert acc["score"] == "acc" and acc["drop"] == pytest.approx(0.125)
    assert tone["score"] == "tone" and tone["drop"] == pytest.approx(0.1)
    r = run(db, "summary", "bot/v2", "--format", "markdown", "--fail-on-regression", "acc:0.2")
    assert "Regression check passed: acc dropped at most 20.00pp." in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["summary", "bot/nope"], "no experiment 'bot/nope'"),
        (["summary", "bot/v2", "--compare", "nope"], "no experiment 'bot/nope'"),
        (["summary", "bot/v2", "--fail-on-regression", "typo"], "no score 'typo' in either experiment"),
        (["summary", "bot/v2", "--fail-on-regression", "acc:-1"], "must not be negative"),
        (["summary", "bot/v2", "--format", "html"], "invalid value for '--format'"),
    ],
)
def test_summary_errors_are_exit_2(db: Path, args: list[str], needle: str) -> None:
    r = run(db, *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("evaltui: error: ") and needle in r.stderr.lower()
    assert r.stderr.count("\n") == 1


def test_subprocess_exit_status_for_ci(db: Path) -> None:
    """What a CI step sees: exit 1 and the Markdown on stdout, the failure on stderr."""
    env = {**os.environ, "EVALTUI_DB": str(db)}
    p = subprocess.run(
        [sys.executable, "-c", "from evaltui.cli import main; main()", "summary", "bot/v2", "--format", "markdown",
         "--fail-on-regression", "acc:0.05"],
        capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )
    assert p.returncode == 1, p.stderr
    assert "| acc | 50.00% | 62.50% | -12.50pp | 1 | 1 |" in p.stdout
    assert p.stderr.startswith("evaltui: regression: acc:")
