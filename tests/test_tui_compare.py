"""Comparing in the TUI (issue 5): the compare dialog, deltas in the table that equal
``evaltui summary --compare``, ↑/↓ filters, diff mode, the layouts and their exports, every
key of the dialog and the layouts, and snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from test_tui_app import (
    EXP,
    SIZES,
    _snap_app,
    _steps,
    build_store,
    make_app,
    notes,
    screen_text,
    settle,
    table,
)

from evaltui.cli import cli as cli_main
from evaltui.demo import DEMO_PROJECT, write_demo
from evaltui.query.compare import MATCH_COLUMN
from evaltui.store import (
    Store,
    create_experiment,
    find_experiment,
    project_settings,
    write_spans,
)
from evaltui.tui.commands import binding_entries
from evaltui.tui.screens.compare_layouts import (
    CardBoard,
    CardsLayout,
    DetailsLayout,
    GridLayout,
    TableLayout,
)
from evaltui.tui.screens.compare_picker import ComparePicker
from evaltui.tui.screens.experiment import ExperimentScreen
from evaltui.tui.widgets.diff_view import DiffPanel, DiffView, wrap_ops


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own config (never the user's); OSC 52 so no clipboard tool is needed."""
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The small fixed store of test_tui_app: support-bot/baseline and support-bot/new-prompt."""
    path = tmp_path / "fixture.db"
    build_store(path).close()
    return path


@pytest.fixture
def snap_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative paths for the database and config: snapshots must not vary with tmp dirs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALTUI_CONFIG", "config/config.toml")
    build_store(Path("fixture.db")).close()
    return tmp_path


async def open_compared(pilot: Any, base: str = "exp-baseline") -> ExperimentScreen:
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ExperimentScreen)
    screen.run_comparison([base] if isinstance(base, str) else base)
    await settle(pilot)
    assert screen.comparison is not None
    return screen


# -- the demo: the table's figures are the CLI's ----------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    write_demo(path)
    return path


def _cli_summary(db: Path, exp: str, base: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli_main, ["--db", str(db), "summary", exp, "--compare", base, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


async def test_demo_deltas_and_header_counts_equal_the_cli_summary(demo_db: Path) -> None:
    exp, base = f"{DEMO_PROJECT}/gpt-4o-mini + new prompt", f"{DEMO_PROJECT}/gpt-4o-mini baseline"
    with Store(demo_db) as store:
        base_id = find_experiment(store, base)["id"]
    cli = _cli_summary(demo_db, exp, base)
    app, _ = make_app(demo_db, exp)
    async with app.run_test(size=(200, 50)) as pilot:
        screen = await open_compared(pilot, base_id)
        t = table(app)
        by_key = {c.key: c for c in t.columns}
        for name, entry in cli["scores"].items():
            spec = by_key[f"scores.{name}"]
            assert spec.delta_key == f"compare.delta.scores.{name}"
            assert spec.summary.endswith(f"↑{entry['improvements']} ↓{entry['regressions']}")
        for name, column in (("duration", "duration"), ("tokens", "tokens"), ("estimated_cost", "estimated_cost"),
                             ("errors", "errors")):
            entry = cli["metrics"][name]
            assert by_key[column].summary.endswith(f"↑{entry['improvements']} ↓{entry['regressions']}")
            assert by_key[column].lower_is_better
        # per row: delta = this case's mean - the base case's mean, from the store's own frames
        frame = t.frame
        this = frame.group_by("comparison_key").agg(pl.col("scores.Factuality").mean().alias("m"))
        base_rows = screen.comparison.base_frames[0]
        base_means = base_rows.group_by("comparison_key").agg(pl.col("scores.Factuality").mean().alias("b"))
        check = frame.join(this, on="comparison_key").join(base_means, on="comparison_key", how="left")
        diff = (check["m"] - check["b"]) - check["compare.delta.scores.Factuality"]
        assert diff.abs().max() < 1e-9
        # the ↑ rows are the CLI's improvements, counted per case
        up = frame.filter(pl.col("compare.improved.scores.Factuality"))
        assert up["comparison_key"].n_unique() == cli["scores"]["Factuality"]["improvements"]
        text = screen_text(app)
        assert f"vs gpt-4o-mini baseline {cli['matched']} cases matched" in text
        fact = cli["scores"]["Factuality"]
        assert f"↑{fact['improvements']} ↓{fact['regressions']}" in text
        # and the ↓ filter shows exactly those rows
        t.move_cursor(column=[c.key for c in t.visible_columns].index("scores.Factuality"))
        await pilot.press("minus")
        await settle(pilot)
        assert t.frame.height == frame.filter(pl.col("compare.regressed.scores.Factuality")).height
        assert t.frame["comparison_key"].n_unique() == fact["regressions"]


# -- the table on the small fixture ---------------------------------------------------------------


async def test_cells_show_value_and_coloured_delta(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_compared(pilot)
        text = screen_text(app)
        # fixture: new-prompt scores 0.1 higher on every answered case
        assert "0.90 +0.10" in text and "0.40 +0.10" in text
        assert "vs baseline" in text and "5/5" in text
        t = table(app)
        fact = next(c for c in t.columns if c.key == "scores.Factuality")
        assert fact.summary == "77.50% +10.00pp ↑4 ↓0"  # 4 answered cases, each 0.1 better
        # the delta's own tone: green (better) after a value in its score colour
        strips = t._row_cache.get(1)
        assert strips is not None
        segments = [seg for seg in strips[0][1] if "+0.10" in seg.text]
        assert segments and segments[0].style.color is not None


async def test_unmatched_rows_say_no_match(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    store = build_store(path)
    write_spans(store, [{"id": "extra", "experiment_id": "exp-new", "span_id": "extra", "root_span_id": "extra",
                         "span_attributes": {"name": "eval", "type": "eval"}, "input": "a brand new question",
                         "scores": {"Factuality": 1.0}, "metrics": {"start": 1.0, "end": 2.0}}])
    store.close()
    app, _ = make_app(path, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_compared(pilot)
        assert "5 cases matched, 1 no match" in screen_text(app)
        t = table(app)
        row = t.frame.filter(pl.col("root_span_id") == "extra").row(0, named=True)
        assert row[MATCH_COLUMN] == "no match" and row["compare.delta.scores.Factuality"] is None
        assert "no match" in screen_text(app)
        # c, n: compare with none drops the columns
        screen.clear_comparison()
        await settle(pilot)
        assert not any(c.startswith("compare.") for c in t.frame.columns)
        assert "vs baseline" not in screen_text(app)


async def test_filter_keys_need_a_comparison_and_a_score_column(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("plus")
        assert any("Compare first" in n for n in notes(app))
        screen = await open_compared(pilot)
        table(app).move_cursor(column=0)  # the input column
        await pilot.press("plus")
        await settle(pilot)
        assert any("score or metric column" in n for n in notes(app)) and screen.filter_text is None


# -- the dialog -------------------------------------------------------------------------------------


async def test_picker_sets_baselines_in_the_store(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ComparePicker)
        assert "baseline" in screen_text(app) and "Comparison key: input" in screen_text(app)
        await pilot.press("B")  # the highlighted one (baseline) becomes the project's baseline
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        store = app.store
        exp = find_experiment(store, "exp-new")
        assert project_settings(store, exp["project_id"])["baseline_experiment_id"] == "exp-baseline"
        assert exp["base_exp_id"] == "exp-baseline"
        assert any("baseline of project support-bot" in n for n in notes(app))


async def test_picker_comparison_key_rematches_at_once(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_compared(pilot)
        assert screen.comparison.result["matched"] == 5
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("K")
        inp = app.screen.query_one("#compare-key-input")
        inp.value = "scores.x"
        await pilot.press("enter")
        await settle(pilot)
        assert "starts with 'scores'" in screen_text(app) and isinstance(app.screen, ComparePicker)
        inp.value = "metadata.category"  # two shipping questions: 4 categories
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert screen.comparison.key_spec == "metadata.category"
        assert screen.comparison.result["matched"] == 4
        assert "vs baseline 4 cases matched" in screen_text(app)
        assert any("Comparison key is now metadata.category" in n for n in notes(app))


async def test_picker_keys(db: Path) -> None:
    """Every key of the compare dialog, as help lists them."""
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        ids = sorted(e.binding_id for e in binding_entries(app.screen))
        # enter in the list is compare.done-list (the dialog's own enter is shadowed there)
        assert ids == sorted(["compare.cursor-down", "compare.cursor-up", "compare.toggle", "compare.done-list",
                              "compare.baseline", "compare.project-baseline", "compare.edit-key",
                              "compare.none", "compare.cancel"])
        lst = app.screen.query_one("#compare-list")
        assert lst.option_count == 1  # only one other experiment in support-bot
        await pilot.press("k")
        await pilot.press("j")
        assert lst.highlighted == 0
        await pilot.press("space")  # deselect the baseline
        assert list(lst.selected) == []
        await pilot.press("x")
        assert list(lst.selected) == ["exp-baseline"]
        await pilot.press("escape")  # cancel: nothing compared
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen) and app.screen.comparison is None
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.comparison is not None
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("n")  # compare with none
        await settle(pilot)
        assert app.screen.comparison is None
        await pilot.press("c")
        await settle(pilot)
        app.screen.action_done()  # enter outside the list (e.g. from the dialog itself)
        await settle(pilot)
        assert app.screen.comparison is not None


# -- diff mode ----------------------------------------------------------------------------------


async def test_diff_mode_follows_the_cursor_and_cycles_targets(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_compared(pilot)
        await pilot.press("d")
        await settle(pilot)
        text = screen_text(app)
        assert "Diff of output baseline → new-prompt" in text
        assert "new-prompt: ExactMatch 0.00 · Factuality 0.90" in text
        assert "baseline: ExactMatch 0.00 · Factuality 0.80" in text
        await pilot.press("j", "j")  # the hostile output: shown literally
        await settle(pilot)
        await pilot.pause(0.2)
        await settle(pilot)
        text = screen_text(app)
        assert "[bold red]URGENT[/]" in text and "\x1b" not in text
        await pilot.press("X")
        await settle(pilot)
        assert "Diff of output expected → new-prompt" in screen_text(app)


async def test_diff_of_a_megabyte_output_runs_in_a_worker(tmp_path: Path) -> None:
    words = " ".join(f"word{i % 5000}-{i // 5000}" for i in range(120_000))
    other = words.replace("word17-3 ", "CHANGED ").replace("word4000-9 ", "")
    assert len(words) > 1_000_000
    store = Store(tmp_path / "big.db")
    for eid, out in (("big-a", other), ("big-b", words)):
        create_experiment(store, "big", eid, experiment_id=eid)
        write_spans(store, [{"id": f"{eid}-r", "experiment_id": eid, "span_id": f"{eid}-r",
                             "root_span_id": f"{eid}-r", "span_attributes": {"name": "eval", "type": "eval"},
                             "input": "essay", "output": out, "metrics": {"start": 1.0, "end": 2.0}}])
    store.close()
    app, _ = make_app(tmp_path / "big.db", "big/big-b")
    async with app.run_test(size=(120, 40)) as pilot:
        await open_compared(pilot, "big-a")
        await pilot.press("d")
        await pilot.pause()
        # the table still answers while the diff runs
        await pilot.press("j")
        await settle(pilot)
        panel = app.screen.query_one(DiffPanel)
        text = screen_text(app)
        assert "−1 +2 words" in text  # word17-3 and word4000-9 back, CHANGED gone
        assert panel.query_one(DiffView).virtual_size.height > 1000


def test_wrap_ops_keeps_every_character_and_marks_changes() -> None:
    ops = [("equal", "alpha beta\ngamma "), ("delete", "old"), ("insert", "new\x1b[2J"), ("equal", " end")]
    lines = wrap_ops(ops, 8)
    texts = ["".join(seg.text for seg in s) for s in lines]
    assert texts == ["alpha be", "ta", "gamma ol", "dnew␛[2J", " end"]
    assert all(s.cell_length <= 8 for s in lines)
    styles = {seg.text: seg.style for s in lines for seg in s}
    assert styles["ol"].strike and styles["new␛[2J"].bold


async def test_side_by_side_follows_the_opened_trace(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_compared(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("vertical_line")
        await settle(pilot)
        twin = screen.query_one("#pane-compare")
        assert twin.trace.root_span_id == "exp-baseline-t0"
        screen.open_trace("exp-new-t3")  # another trace (as enter on another row)
        await settle(pilot)
        await pilot.pause(0.3)
        await settle(pilot)
        assert twin.trace.root_span_id == "exp-baseline-t3"
        text = screen_text(app)
        assert "─ new-prompt ─" in text and "─ baseline ─" in text
        assert text.count("✗") >= 2  # both failed traces show their errors
        await pilot.press("escape")  # closing the pane brings the table back
        await settle(pilot)
        assert table(app).display and "vs baseline" in screen_text(app)


# -- layouts -----------------------------------------------------------------------------------


async def test_layouts_cycle_and_show_the_cli_figures(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    app, clip = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_compared(pilot)
        fact = screen.comparison.result["scores"]["Factuality"]
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, GridLayout)
        text = screen_text(app)
        assert "cases 1–5 of 5" in text and "Your order #1234 ships tomorrow" in text
        assert text.count("case ") >= 5
        await pilot.press("F")  # the field picker: expected next
        await settle(pilot)
        assert "field: expected" in screen_text(app) and "It ships tomorrow." in screen_text(app)
        await pilot.press("n")  # one page only: stays
        await pilot.press("p")
        await settle(pilot)
        assert "cases 1–5 of 5" in screen_text(app)
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, CardsLayout)
        text = screen_text(app)
        assert f"+10.00pp  ↑{fact['improvements']} ↓{fact['regressions']}" in text
        await pilot.press("j", "k")
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, TableLayout)
        text = screen_text(app)
        assert "77.50%" in text and "67.50%" in text and "+10.00pp" in text and "↑4 ↓0" in text
        for key, ext in (("m", "md"), ("c", "csv"), ("h", "html")):
            await pilot.press(key)
            await settle(pilot)
            path = tmp_path / f"support-bot-new-prompt-summary.{ext}"
            assert path.exists(), ext
            assert any(str(path) in n for n in notes(app))
        md = (tmp_path / "support-bot-new-prompt-summary.md").read_text()
        assert "| Factuality | 77.50% | 67.50% | +10.00pp | ↑4 ↓0 |" in md
        assert "<td>+10.00pp</td>" in (tmp_path / "support-bot-new-prompt-summary.html").read_text()
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, DetailsLayout)
        text = screen_text(app)
        assert "exp-new" in text and "gpt-4o" in text and "Factuality" in text and "baseline: 5 cases matched" in text
        await pilot.press("y")
        assert clip.last == "exp-new"
        await pilot.press("L")  # back to the list
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("L")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_card_enter_filters_the_table_to_its_regressions(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_compared(pilot, "exp-baseline")
        await pilot.press("L", "L")
        await settle(pilot)
        assert isinstance(app.screen, CardsLayout)
        # the duration card: new-prompt's traces take as long as the baseline's
        board = app.screen.query_one(CardBoard)
        assert board.has_focus and board.cursor == 0
        await pilot.press("j")
        assert board.cursor == 1
        await pilot.press("k", "k")  # wraps to the last card
        assert board.cursor == len(board.sources) - 1
        board.cursor = board.sources.index("duration")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen and screen.filter_text == "compare.regressed.duration"
        entry = screen.comparison.result["metrics"]["duration"]
        assert table(app).row_count == entry["regressions"]


async def test_layouts_without_a_comparison(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("L", "L", "L")
        await settle(pilot)
        assert isinstance(app.screen, TableLayout)
        text = screen_text(app)
        assert "77.50%" in text and "c on the table compares" in text
        await pilot.press("L")
        await settle(pilot)
        assert "none (c on the table picks" in screen_text(app)


async def test_layout_keys_are_listed(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_compared(pilot)
        expected = {
            GridLayout: {"layout.next", "layout.back", "layout.grid-field", "layout.grid-next", "layout.grid-previous"},
            CardsLayout: {"layout.next", "layout.back", "layout.card-next", "layout.card-previous",
                          "layout.card-filter"},
            TableLayout: {"layout.next", "layout.back", "layout.export-markdown", "layout.export-csv",
                          "layout.export-html"},
            DetailsLayout: {"layout.next", "layout.back", "layout.copy-id"},
        }
        for cls in (GridLayout, CardsLayout, TableLayout, DetailsLayout):
            await pilot.press("L")
            await settle(pilot)
            assert isinstance(app.screen, cls)
            ids = {e.binding_id for e in binding_entries(app.screen)}
            assert expected[cls] <= ids, cls


def test_every_compare_binding_has_an_id_and_description() -> None:
    from evaltui.tui.screens.compare_layouts import CardBoard, LayoutScreen
    from evaltui.tui.screens.compare_picker import ExperimentChoices

    for cls in (ComparePicker, ExperimentChoices, LayoutScreen, GridLayout, CardsLayout, TableLayout, DetailsLayout,
                CardBoard, DiffView):
        for binding in cls.BINDINGS:
            assert binding.id and binding.description, (cls.__name__, binding)


async def test_palette_opens_a_layout(db: Path) -> None:
    from evaltui.tui.commands import ExperimentCommands

    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        provider = ExperimentCommands(app.screen)
        commands = {name: callback for name, callback, _ in provider._commands()}
        assert "Experiment: Compare" in commands and "Experiment: Diff mode" in commands
        commands["Layout: Summary table"]()
        await settle(pilot)
        assert isinstance(app.screen, TableLayout)


# -- snapshots ----------------------------------------------------------------------------------

COMPARE_SNAPSHOTS = [
    ("compare-dialog", ("c",)),
    ("compare-table", ("c", "enter")),
    ("compare-diff", ("c", "enter", "d")),
    ("compare-grid", ("c", "enter", "L")),
    ("compare-cards", ("c", "enter", "L", "L")),
    ("compare-summary-table", ("c", "enter", "L", "L", "L")),
    ("compare-details", ("c", "enter", "L", "L", "L", "L")),
    ("compare-side-by-side", ("c", "enter", "enter", "vertical_line")),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("name", "keys"), [pytest.param(*s, id=s[0]) for s in COMPARE_SNAPSHOTS])
def test_snapshot(snap_compare, snap_dir: Path, name: str, keys: tuple[str, ...], size: tuple[int, int]) -> None:
    async def run(pilot: Any) -> None:
        await _steps(*keys)(pilot)
        # the pane opens after a short timer and the matching trace loads after it
        await pilot.pause(0.4)
        await settle(pilot)
        await pilot.pause(0.1)
        await settle(pilot)
        # toasts time out after a few seconds: on a busy machine a snapshot may or may not catch one
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(_snap_app("fixture.db", EXP), terminal_size=size, run_before=run)





def test_format_delta_tones_follow_better_or_worse() -> None:
    from evaltui.tui.widgets.experiment_table import (
        ColumnSpec,
        DeltaTone,
        format_delta,
        with_delta,
    )

    assert format_delta(0.1, "score") == ("+0.10", "success")
    assert format_delta(-0.25, "score") == ("-0.25", "error")
    assert format_delta(1.5, "duration", lower_is_better=True) == ("+1.50s", "error")  # slower is worse
    assert format_delta(-120, "tokens", lower_is_better=True) == ("-120", "success")
    assert format_delta(-0.0012, "cost", lower_is_better=True) == ("-$0.0012", "success")
    assert format_delta(1e-12, "score") == ("=", "dim") and format_delta(None, "score") == ("–", "dim")
    spec = ColumnSpec("scores.acc", "acc", 11, "score", delta_key="compare.delta.scores.acc")
    text, tone = with_delta("0.90", 0.9, 0.1, spec)
    assert text == "0.90 +0.10" and isinstance(tone, DeltaTone) and (tone.value, tone.suffix, tone.delta) == (
        0.9, 5, "success")
    assert with_delta("0.90", 0.9, 0.0, spec)[0] == "0.90     ="  # values line up over "="
    assert with_delta("–", "dim", None, spec) == ("–", "dim")  # no value, no delta
