"""The Analyze screen driven with Pilot on a hand-made store whose patterns are known:
category 'c' scores low in the new experiment (and regressed against the base), and two
error families (timeouts, rate limits). Plus the assistant against a fake loopback server,
and SVG snapshots at 80x24 and 160x48."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_assistant import FakeServer, respond, sse
from test_tui_app import notes, screen_text

from evaltui.store import Store, create_experiment, write_spans
from evaltui.store.datasets import list_datasets, load_dataset_records
from evaltui.tui.app import EvalTUI
from evaltui.tui.screens.analyze import AnalyzeScreen, FindingList, finding_filter
from evaltui.tui.screens.experiment import ExperimentScreen
from evaltui.tui.widgets.charts import column_chart, sparkline
from evaltui.tui.widgets.experiment_table import ExperimentTable

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
CATEGORIES = ("a", "b", "c", "d")
N = 48  # traces per experiment: 12 per category
HOSTILE_ERROR = "RateLimitError: [bold red]429[/] \x1b[2J too many requests (retry in {s}s)"


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def _is_timeout(i: int) -> bool:
    return i in (0, 5, 9, 13)  # categories a, b, b, b


def _is_rate_limited(i: int) -> bool:
    return i in (4, 17, 21)  # categories a, b, b


def _records(exp: str, new: bool, t: float) -> list[dict[str, Any]]:
    out = []
    for i in range(N):
        cat = CATEGORIES[i % 4]
        root = f"{exp}-t{i:02d}"
        error = None
        if new and _is_timeout(i):
            error = f"TimeoutError: request {1000 + i} timed out after {20 + i}s"
        elif new and _is_rate_limited(i):
            error = HOSTILE_ERROR.format(s=i)
        # the planted pattern: in the new experiment, category c is mostly wrong
        low = new and cat == "c" and i % 12 != 2
        fact = None if error else (0.1 if low else 0.9 - (i % 3) * 0.05)
        out.append({
            "id": root, "experiment_id": exp, "span_id": root, "root_span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"},
            "input": f"question {i}", "output": None if error else f"answer {i} for {cat}",
            "expected": f"answer {i}", "error": error,
            "scores": {"Factuality": fact, "Tone": None if error else 0.8 + (i % 2) * 0.1},
            "metadata": {"category": cat},
            "metrics": {"start": t + i, "end": t + i + 1.5}, "created": _iso(t + i),
        })
    return out


def build_store(path: Path) -> Store:
    store = Store(path)
    base = create_experiment(store, "planted", "base", created=_iso(T0 - 86_400), experiment_id="exp-base")
    new = create_experiment(store, "planted", "new", created=_iso(T0), experiment_id="exp-new")
    write_spans(store, _records(base, False, T0 - 86_400))
    write_spans(store, _records(new, True, T0))
    return store


LOW_C = sum(1 for i in range(N) if CATEGORIES[i % 4] == "c" and i % 12 != 2)  # rows of the pattern: 8


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "planted.db"
    build_store(path).close()
    return path


async def settle(pilot: Any) -> None:
    for _ in range(4):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def open_analyze(pilot: Any) -> AnalyzeScreen:
    await settle(pilot)
    assert isinstance(pilot.app.screen, ExperimentScreen)
    await pilot.press("A")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, AnalyzeScreen)
    assert screen.result is not None
    return screen


def option_of(screen: AnalyzeScreen, kind: str, nth: int = 0) -> int:
    """The option index of the nth finding of ``kind`` in list order."""
    lst = screen.query_one(FindingList)
    hits = [i for i in range(lst.option_count)
            if (o := lst.get_option_at_index(i)).id in screen.findings and screen.findings[o.id].kind == kind]
    return hits[nth]


def finding_at(screen: AnalyzeScreen, index: int):
    return screen.findings[screen.query_one(FindingList).get_option_at_index(index).id]


# -- the planted patterns --------------------------------------------------------------------


async def test_planted_category_and_error_families_are_found_first_and_enter_filters_the_table(db: Path) -> None:
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_analyze(pilot)
        text = screen_text(app)
        assert "vs planted/base" in text

        # low-score patterns: category c ranks first
        top = finding_at(screen, option_of(screen, "pattern"))
        assert top.label.startswith("metadata.category = 'c' [Factuality]")
        assert top.row_count == LOW_C
        # what changed: the regressions concentrate in category c
        conc = finding_at(screen, option_of(screen, "concentration"))
        assert conc.label.startswith("metadata.category = 'c' [Factuality]")
        # two error families, the larger first, both shown
        first, second = finding_at(screen, option_of(screen, "task_error")), finding_at(
            screen, option_of(screen, "task_error", 1))
        assert first.label.startswith("task error TimeoutError: request <N> timed out after <N>s")
        assert first.row_count == 4 and second.row_count == 3
        assert "RateLimitError" in second.label
        assert "4× TimeoutError: request <N> timed out after <N>s" in text
        assert "3× RateLimitError: [bold red]<N>[/] ␛[2J too many requests" in text  # literal, not markup
        assert "Low-score patterns" in text and "Scorer agreement" in text

        # enter on the pattern: back to the table, filtered to exactly its rows
        lst = screen.query_one(FindingList)
        lst.highlighted = option_of(screen, "pattern")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        exp = app.screen
        assert isinstance(exp, ExperimentScreen)
        assert exp.query_one(ExperimentTable).row_count == LOW_C
        assert f"{LOW_C} of {N} rows" in screen_text(app)
        assert exp.filter_text == "metadata.category = 'c' and scores.Factuality < 0.5"
        assert any(n.startswith(f"{LOW_C} rows: metadata.category = 'c'") for n in notes(app))

        # a finding without a filter of its own (rows that regressed) goes by its row ids
        await pilot.press("escape")  # clear the filter
        await settle(pilot)
        screen = await open_analyze(pilot)
        index = option_of(screen, "concentration")
        conc = finding_at(screen, index)
        assert conc.filter is None and finding_filter(conc).startswith("root_span_id in (")
        screen.query_one(FindingList).highlighted = index
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one(ExperimentTable).row_count == conc.row_count == len(conc.row_ids)


async def test_analysis_keeps_the_tables_filter(db: Path) -> None:
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.screen.apply_filter_text("metadata.category != 'a'")
        await settle(pilot)
        assert app.screen.query_one(ExperimentTable).row_count == 36
        screen = await open_analyze(pilot)
        assert screen.result["traces"] == 36
        assert "filter: metadata.category != 'a'" in screen_text(app)
        errors = finding_at(screen, option_of(screen, "errors"))
        assert errors.row_count == 5  # the errors outside category a
        screen.query_one(FindingList).highlighted = option_of(screen, "errors")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.filter_text == "(metadata.category != 'a') and (error is not null)"
        assert app.screen.query_one(ExperimentTable).row_count == 5


async def test_computing_is_shown_and_the_screen_stays_responsive(db: Path, monkeypatch) -> None:
    from evaltui.query import insights

    release = threading.Event()
    real = insights.analyze

    def slow(*args, **kwargs):
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(insights, "analyze", slow)
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("A")
        for _ in range(3):
            await pilot.pause()
        assert isinstance(app.screen, AnalyzeScreen)
        text = screen_text(app)
        assert "computing…" in text and "Computing insights of planted/new…" in text
        await pilot.press("question_mark")  # keys work while the worker runs
        await pilot.pause()
        assert "Keys" in screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        release.set()
        await settle(pilot)
        assert "computing…" not in screen_text(app)
        assert "Low-score patterns" in screen_text(app)


async def test_baseline_key_cycles_and_says_which(db: Path) -> None:
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_analyze(pilot)
        assert "vs planted/base" in screen_text(app)
        await pilot.press("b")
        await settle(pilot)
        assert "vs no baseline" in screen_text(app)
        assert screen.result["changes"] is None
        await pilot.press("b")
        await settle(pilot)
        assert "vs planted/base" in screen_text(app) and screen.result["changes"] is not None


async def test_dataset_of_a_findings_rows(db: Path) -> None:
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_analyze(pilot)
        screen.query_one(FindingList).highlighted = option_of(screen, "task_error")
        for _ in range(2):  # the second gets a free name
            await pilot.press("d")
            await settle(pilot)
        made = [n for n in notes(app) if n.startswith("Created dataset planted/")]
        assert made == ["Created dataset planted/new-timeouterror-request-timed-out-after: 4 records",
                        "Created dataset planted/new-timeouterror-request-timed-out-after-2: 4 records"]
    with Store(db) as store:
        ds = {d["name"]: d for d in list_datasets(store, "planted")}
        records = load_dataset_records(store, ds["new-timeouterror-request-timed-out-after"]["id"])
    assert sorted(r["input"] for r in records) == ["question 0", "question 13", "question 5", "question 9"]


async def test_back_and_recompute_keys(db: Path, monkeypatch) -> None:
    from evaltui.query import insights

    calls = []
    real = insights.analyze
    monkeypatch.setattr(insights, "analyze", lambda *a, **k: calls.append(1) or real(*a, **k))
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 30)) as pilot:
        await open_analyze(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert len(calls) == 2
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        await open_analyze(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)


async def test_every_part_of_the_list_is_reachable_by_keys(db: Path) -> None:
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_analyze(pilot)
        lst = screen.query_one(FindingList)
        await pilot.press("G")
        await pilot.pause()
        assert lst.highlighted_option.id == "assistant"  # the last line, after the charts
        text = screen_text(app)
        assert "Distributions" in text or "Assistant" in text
        await pilot.press("g")
        await pilot.pause()
        first = lst.highlighted
        await pilot.press("j")
        await pilot.pause()
        assert lst.highlighted > first
        await pilot.press("k")
        await pilot.pause()
        assert lst.highlighted == first


async def test_palette_lists_the_analyze_commands(db: Path) -> None:
    from evaltui.tui.commands import ExperimentCommands
    from evaltui.tui.screens.analyze import AnalyzeCommands

    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        names = [n for n, _cb, _h in ExperimentCommands(app.screen)._commands()]
        assert "Experiment: Analyze" in names
        screen = await open_analyze(pilot)
        names = [n for n, _cb, _h in AnalyzeCommands(screen)._commands()]
        for expected in ("Analyze: Dataset of these rows", "Analyze: Next baseline", "Analyze: Ask the assistant",
                         "Findings: Show these rows"):
            assert expected in names


# -- the assistant ----------------------------------------------------------------------------


def _configure(config_file: Path, url: str) -> None:
    config_file.write_text(
        'clipboard = "osc52"\n\n[assistant]\n'
        f'base_url = "{url}"\nmodel = "test-model"\napi_key_env = "EVALTUI_TEST_KEY"\n')


def _panel_text(screen: AnalyzeScreen) -> tuple[str, str]:
    status = str(screen.query_one("#an-ask-status").render())
    answer = str(screen.query_one("#an-answer").render())
    return status, answer


async def test_assistant_streams_the_answer_and_showed_what_it_sends(db: Path, config_file: Path,
                                                                     monkeypatch) -> None:
    monkeypatch.setenv("EVALTUI_TEST_KEY", "sk-test")
    with FakeServer(respond(200, sse("Category ", "c ", "[bold]fails[/] \x1b[2J."), pieces=5, pause=0.01)) as srv:
        _configure(config_file, srv.url)
        app = EvalTUI(db, "planted/new")
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_analyze(pilot)
            await pilot.press("a")
            await settle(pilot)
            status, answer = _panel_text(screen)
            assert status.startswith("Enter sends ") and " bytes (cap 24,000), " in status
            assert status.endswith(" to test-model at " + srv.url + "/chat/completions")
            assert answer.startswith("What will be sent")
            assert "metadata.category = 'c'" in answer
            assert isinstance(app.focused, type(screen.query_one("#an-question")))
            await pilot.press(*"why does c fail")  # letters the screen binds go into the input
            await pilot.press("enter")
            for _ in range(20):
                await settle(pilot)
                if not screen._streaming:
                    break
            status, answer = _panel_text(screen)
            assert "Q: why does c fail" in answer
            assert "Category c [bold]fails[/] ␛[2J." in answer  # literal, escapes visible
            assert status.startswith("Answered. Sent ")
        _, body = srv.requests[0]
        assert body["model"] == "test-model" and body["stream"] is True
        assert body["messages"][1]["content"].startswith("Question: why does c fail")
        assert "metadata.category = 'c'" in body["messages"][1]["content"]


async def test_dead_endpoint_shows_the_error_and_the_rest_works(db: Path, config_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("EVALTUI_TEST_KEY", "sk-test")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _configure(config_file, f"http://127.0.0.1:{port}/v1")
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_analyze(pilot)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("enter")  # the default question
        for _ in range(20):
            await settle(pilot)
            if not screen._streaming:
                break
        status, answer = _panel_text(screen)
        assert "connection refused. Is the server running?" in answer
        assert "could not answer (the rest of the screen works)" in status
        await pilot.press("escape")  # closes the panel
        await pilot.pause()
        assert not screen.query_one("#an-ask").display
        screen.query_one(FindingList).highlighted = option_of(screen, "pattern")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.query_one(ExperimentTable).row_count == LOW_C


async def test_assistant_not_configured_says_how_to_enable_it(db: Path) -> None:
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_analyze(pilot)
        await pilot.press("G")
        await pilot.pause()
        assert "The assistant is not configured. Press a for how to enable it." in screen_text(app)
        await pilot.press("a")
        await settle(pilot)
        _, answer = _panel_text(screen)
        assert "[assistant]" in answer and "base_url" in answer and "api_key_env" in answer
        assert not screen.query_one("#an-question").display


# -- charts ---------------------------------------------------------------------------------------


def test_column_chart_scales_and_marks_missing_values() -> None:
    chart = column_chart([0.0, 0.5, 1.0, None, 0.01], height=2, bar_width=1, gap=0)
    assert chart.plain.split("\n") == ["  █  ", " ██·▁"]
    labelled = column_chart([1.0], height=2, axis=("100%", "0%"), bar_width=1)
    assert labelled.plain.split("\n") == ["100% █", "  0% █"]
    assert sparkline([0.0, 0.5, 1.0, None]) == " ▄█·"


# -- snapshots ---------------------------------------------------------------------------------


@pytest.fixture
def snap_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALTUI_CONFIG", "config/config.toml")
    build_store(Path("planted.db")).close()
    return tmp_path


def _steps(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def run(pilot: Any) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_analyze(snap_compare, snap_dir: Path, size: tuple[int, int]) -> None:
    assert snap_compare(EvalTUI(Path("planted.db"), "planted/new"), terminal_size=size,
                        run_before=_steps("A", "j", "j"))


async def test_help_lists_the_analyze_keys(db: Path) -> None:
    from evaltui.tui.screens.help import HelpScreen

    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_analyze(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        ids = sorted(e.binding_id for e in app.screen.entries)
        assert ids == sorted([
            "findings.cursor-down", "findings.cursor-up", "findings.cursor-first", "findings.cursor-last",
            "findings.page-down", "findings.page-up", "findings.select", "analyze.back", "analyze.dataset",
            "analyze.baseline", "analyze.ask", "analyze.recompute", "app.quit", "app.help"])
        assert "Show these rows" in screen_text(app) and "Dataset of these rows" in screen_text(app)


async def test_findings_with_more_rows_than_listed(db: Path, monkeypatch) -> None:
    """Row ids are capped per finding: a filter still selects all rows, else the group is shown."""
    from evaltui.tui.screens import analyze as module

    monkeypatch.setattr(module, "MAX_IDS", 2)
    app = EvalTUI(db, "planted/new")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await open_analyze(pilot)
        pattern = finding_at(screen, option_of(screen, "pattern"))
        assert len(pattern.row_ids) == 2 and pattern.row_count == LOW_C
        screen.query_one(FindingList).highlighted = option_of(screen, "pattern")
        await pilot.press("d")
        await settle(pilot)
        assert "Created dataset planted/new-category-c-low-factuality: 8 records" in notes(app)
        index = option_of(screen, "concentration")
        screen.query_one(FindingList).highlighted = index
        await pilot.press("d")
        await pilot.pause()
        assert any("more than the 2 it lists" in n for n in notes(app))
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.filter_text == "metadata.category = 'c'"
        assert app.screen.query_one(ExperimentTable).row_count == 12
        assert any(n.startswith("Showing all rows of metadata.category = 'c'; the finding's 8 rows are among them")
                   for n in notes(app))
