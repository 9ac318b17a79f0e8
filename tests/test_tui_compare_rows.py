"""Issue 5, second part: diff mode's sub-rows in the table, order by regressions, layouts and
comparisons saved in views. Known answers on a small hand-made project (``lab``):

====  ========  ====  ====  ====  ====  ====
case  category  v0    v1    v2 (this)
----  --------  ----  -------------------------
          acc   acc   acc   tone  fmt   (v1: 0.5 everywhere)
q0    billing   0.7   0.5   0.4   0.4   0.4
q1    billing   0.7   0.5   0.6   0.6   0.4
q2    shipping  0.7   0.5   0.4   0.6   0.4
q3    shipping  0.7   0.5   0.4   0.6   0.4
q4    shipping  0.7   0.5   0.6   0.6   0.4
q5    account   0.7   0.5   0.5   0.6   0.6
q6    account   –     –     1.0   1.0   1.0   (only in v2: no match)
====  ========  ====  ====  ====  ====  ====

Against v1, v2's regressions: fmt 5 (q0–q4), acc 3 (q0, q2, q3), tone 1 (q0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_tui_app import SIZES, make_app, notes, screen_text, settle, table

from evaltui.config import SavedView, load_config, save_config
from evaltui.store import Store, create_experiment, write_spans
from evaltui.tui.screens.compare_layouts import CardsLayout, GridLayout, TableLayout
from evaltui.tui.screens.experiment import ExperimentScreen
from evaltui.tui.screens.views import NamePrompt

T0 = 1_767_225_600.0
CATEGORY = ["billing", "billing", "shipping", "shipping", "shipping", "account", "account"]
SCORES = {
    "v0": {"acc": [0.7] * 6},
    "v1": {"acc": [0.5] * 6, "tone": [0.5] * 6, "fmt": [0.5] * 6},
    "v2": {"acc": [0.4, 0.6, 0.4, 0.4, 0.6, 0.5, 1.0], "tone": [0.4, 0.6, 0.6, 0.6, 0.6, 0.6, 1.0],
           "fmt": [0.4, 0.4, 0.4, 0.4, 0.4, 0.6, 1.0]},
}
THIS = "lab/v2"


def build_lab(path: Path) -> None:
    store = Store(path)
    for n, exp in enumerate(("v0", "v1", "v2")):
        create_experiment(store, "lab", exp, experiment_id=f"exp-{exp}", created=f"2026-01-0{n + 1}T00:00:00+00:00")
        records = []
        cases = len(next(iter(SCORES[exp].values())))
        for i in range(cases):
            root = f"{exp}-q{i}"
            records.append({
                "id": root, "experiment_id": f"exp-{exp}", "span_id": root, "root_span_id": root,
                "span_attributes": {"name": "eval", "type": "eval"}, "input": f"question q{i}",
                "output": f"answer {exp} for q{i}", "expected": f"gold q{i}",
                "scores": {name: values[i] for name, values in SCORES[exp].items()},
                "metadata": {"category": CATEGORY[i]},
                "metrics": {"start": T0 + i, "end": T0 + i + 1.0 + n},
            })
        write_spans(store, records)
    store.close()


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    path = tmp_path / "lab.db"
    build_lab(path)
    return path


async def compared(pilot: Any, *bases: str) -> ExperimentScreen:
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ExperimentScreen)
    screen.run_comparison(list(bases))
    await settle(pilot)
    assert screen.comparison is not None
    return screen


def lines_after(text: str, marker: str, n: int = 1) -> list[str]:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if marker in line)
    return lines[at + 1: at + 1 + n]


# -- sub-rows ----------------------------------------------------------------------------------


async def test_diff_mode_sub_rows_show_each_compared_experiment(lab: Path) -> None:
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        await compared(pilot, "exp-v1", "exp-v0")
        t = table(app)
        assert t.row_height == 1
        await pilot.press("d")
        await settle(pilot)
        assert t.row_height == 3 and [s.label for s in t.sub_rows] == ["v1", "v0"]
        text = screen_text(app)
        # q0: this 0.40; v1 0.50 (+0.10 better than this row), v0 0.70 (+0.30)
        row, v1, v0 = [next(line for line in text.splitlines() if "question q0" in line),
                       *lines_after(text, "question q0", 2)]
        assert "answer v2 for q0" in row and "0.40 -0.10" in row  # the row's own delta: this − v1
        assert "↳ v1" in v1 and "answer v1 for q0" in v1 and "0.50 +0.10" in v1
        assert "↳ v0" in v0 and "answer v0 for q0" in v0 and "0.70 +0.30" in v0
        # the case only v2 has: each sub-row says so
        v1, v0 = lines_after(text, "question q6", 2)
        assert "↳ v1: no match" in v1 and "↳ v0: no match" in v0
        assert "answer" not in v1 + v0
        # d again: plain rows
        await pilot.press("d")
        await settle(pilot)
        assert t.row_height == 1 and "↳ v1" not in screen_text(app)


async def test_keys_work_on_rows_with_sub_rows(lab: Path) -> None:
    app, clip = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await compared(pilot, "exp-v1")
        await pilot.press("d")
        await settle(pilot)
        t = table(app)
        # sub-rows are lines of their row: one j is one trace
        await pilot.press("j")
        assert t.cursor_row == 1 and t.row_key(1) == "v2-q1"
        await pilot.press("G")
        assert t.row_key(t.cursor_row) == "v2-q6"
        await pilot.press("g")
        # y / Y copy the row's own cell and trace (the sub-row is not a trace of this experiment)
        t.move_cursor(column=[c.key for c in t.visible_columns].index("output"))
        await pilot.press("y")
        await settle(pilot)
        assert clip.last == "answer v2 for q0"
        await pilot.press("Y")
        await settle(pilot)
        assert '"root_span_id": "v2-q0"' in clip.last
        # a click on a sub-row lands on its row
        await pilot.click("#table", offset=(5, 2 + 2 + 1))  # header, q0 and its sub-row, q1; its sub-row
        await settle(pilot)
        assert t.row_key(t.cursor_row) == "v2-q1"
        # enter opens the row's trace
        await pilot.press("enter")
        await settle(pilot)
        await pilot.pause(0.3)
        assert screen.pane_open and screen._trace_key == "v2-q1"
        await pilot.press("escape")
        await settle(pilot)
        # filter and sort keep the sub-rows, matched to their rows
        await pilot.press("slash", *"scores.acc < 0.5", "enter")
        await settle(pilot)
        assert t.row_count == 3 and t.row_height == 2
        t.move_cursor(column=[c.key for c in t.visible_columns].index("scores.fmt"))
        await pilot.press("right_square_bracket")
        await settle(pilot)
        text = screen_text(app)
        for case in ("q0", "q2", "q3"):
            (sub,) = lines_after(text, f"question {case}", 1)
            assert f"answer v1 for {case}" in sub and "0.50 +0.10" in sub
        # t: span rows have no sub-rows; back on traces they return
        await pilot.press("t")
        await settle(pilot)
        assert t.row_height == 1
        await pilot.press("t")
        await settle(pilot)
        assert t.row_height == 2


@pytest.mark.parametrize("height", [23, 24, 25])  # table bodies of every size modulo 3 lines
async def test_scrolling_keeps_sub_rows_with_their_row(lab: Path, height: int) -> None:
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(120, height)) as pilot:
        await compared(pilot, "exp-v1", "exp-v0")
        await pilot.press("d")
        await settle(pilot)
        t = table(app)
        for key in ("G", "k", "j", "j"):
            await pilot.press(key)
            await pilot.pause()
            first = screen_text(app).splitlines()[3]  # the title and two header lines above
            assert first.startswith(" question q"), (key, first)
            assert t.row_key(t.cursor_row) is not None


async def test_group_rows_show_each_compared_experiments_means(lab: Path) -> None:
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await compared(pilot, "exp-v1", "exp-v0")
        screen.set_group("metadata.category")
        await settle(pilot)
        await pilot.press("d", "g")
        await settle(pilot)
        text = screen_text(app)
        # shipping: this acc 0.40 0.40 0.60 -> 0.47; v1 0.50 (+0.03); v0 0.70 (+0.23)
        header = next(line for line in text.splitlines() if "▾ shipping · 3" in line)
        assert "μ 0.47" in header
        v1, v0 = lines_after(text, "▾ shipping · 3", 2)
        assert "↳ v1" in v1 and "μ 0.50 +0.03" in v1
        assert "↳ v0" in v0 and "μ 0.70 +0.23" in v0


# -- order by regressions ------------------------------------------------------------------------


async def test_order_by_regressions_orders_score_columns(lab: Path) -> None:
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("O")
        assert any("Compare first" in n for n in notes(app))
        await compared(pilot, "exp-v1")
        t = table(app)
        scores = [c.key for c in t.visible_columns if c.key.startswith("scores.")]
        assert scores == ["scores.acc", "scores.fmt", "scores.tone"]
        await pilot.press("O")
        await settle(pilot)
        scores = [c.key for c in t.visible_columns if c.key.startswith("scores.")]
        assert scores == ["scores.fmt", "scores.acc", "scores.tone"]  # ↓5, ↓3, ↓1
        assert any("fmt ↓5, acc ↓3, tone ↓1" in n for n in notes(app))
        header = screen_text(app).splitlines()[2]
        assert header.index("↓5") < header.index("↓3") < header.index("↓1")


async def test_order_by_regressions_orders_groups_by_the_cursor_score(lab: Path) -> None:
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await compared(pilot, "exp-v1")
        screen.set_group("metadata.category")
        await settle(pilot)
        t = table(app)
        assert [g.label for g in t.groups] == ["shipping", "account", "billing"]  # by size (ties by name)
        t.move_cursor(column=[c.key for c in t.visible_columns].index("scores.tone"))
        await pilot.press("O")
        await settle(pilot)
        # tone regresses on q0 only (billing); then by size
        assert [(g.label, g.note) for g in t.groups] == [("billing", "↓1"), ("shipping", "↓0"), ("account", "↓0")]
        assert screen.group_sort == "regressions:scores.tone"
        assert "▾ billing · 2 · ↓1" in screen_text(app)
        # the cursor on a non-score column: the most regressed score (fmt: billing 2, shipping 3)
        t.move_cursor(column=0)
        await pilot.press("O")
        await settle(pilot)
        assert [(g.label, g.note) for g in t.groups] == [("shipping", "↓3"), ("billing", "↓2"), ("account", "↓0")]
        assert any("O on a score column orders the groups by that score" in n for n in notes(app))
        # the palette has it too (a command from the binding)
        from evaltui.tui.commands import ExperimentCommands

        commands = {name: callback for name, callback, _ in ExperimentCommands(screen)._commands()}
        assert "Experiment: Order by regressions" in commands


# -- views ---------------------------------------------------------------------------------------


async def test_view_saves_and_restores_layout_comparisons_and_diff_mode(lab: Path) -> None:
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        await compared(pilot, "exp-v1", "exp-v0")
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, GridLayout)
        await pilot.press("F")  # the grid's field: expected
        await settle(pilot)
        await pilot.press("ctrl+s")  # from the layout
        await settle(pilot)
        assert isinstance(app.screen, NamePrompt)
        await pilot.press(*"cmp", "enter")
        await settle(pilot)
        assert isinstance(app.screen, GridLayout)
    view = load_config().config.views["lab"]["cmp"]
    assert view.layout == {"name": "grid", "diff": True, "grid_field": "expected"}
    assert view.comparisons == ["exp-v1", "exp-v0"]

    # a restart: load the view from the list; one of its experiments is gone
    loaded = load_config()
    config = loaded.config
    config.views["lab"]["cmp"].comparisons = ["exp-v1", "exp-gone"]
    save_config(config)
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.apply_view_entry("personal", "cmp")
        for _ in range(3):
            await settle(pilot)
        assert [b["id"] for b in screen.comparison.bases] == ["exp-v1"]
        assert any("1 compared experiment of the view no longer exists, skipped" in n for n in notes(app))
        assert screen.diff_mode and [s.label for s in screen.query_one("#table").sub_rows] == ["v1"]
        assert isinstance(app.screen, GridLayout) and app.screen.field == "expected"
        assert "field: expected" in screen_text(app) and "gold q0" in screen_text(app)


async def test_views_without_layout_keys_load_and_leave_the_comparison(lab: Path) -> None:
    loaded = load_config()
    config = loaded.config
    config.save_view("lab", SavedView(name="old", filter="scores.acc < 0.5"))
    config.save_view("lab", SavedView(name="cards", layout={"name": "cards"}, comparisons=["exp-v1"]))
    config.save_view("lab", SavedView(name="table", layout={"name": "table"}))
    save_config(config)
    app, _ = make_app(lab, THIS)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await compared(pilot, "exp-v0")
        screen.apply_view_entry("personal", "old")
        await settle(pilot)
        assert table(app).row_count == 3
        assert [b["id"] for b in screen.comparison.bases] == ["exp-v0"]  # untouched
        assert isinstance(app.screen, ExperimentScreen)
        screen.apply_view_entry("personal", "cards")
        for _ in range(3):
            await settle(pilot)
        assert isinstance(app.screen, CardsLayout)
        assert [b["id"] for b in screen.comparison.bases] == ["exp-v1"]
        await pilot.press("escape")
        await settle(pilot)
        # a view with a layout but nothing compared: compares with nothing
        screen.apply_view_entry("personal", "table")
        for _ in range(3):
            await settle(pilot)
        assert isinstance(app.screen, TableLayout) and screen.comparison is None


# -- snapshots ------------------------------------------------------------------------------------


@pytest.fixture
def snap_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALTUI_CONFIG", "config/config.toml")
    build_lab(Path("lab.db"))
    return tmp_path


async def _compare_steps(pilot: Any, group: bool) -> None:
    screen = await compared(pilot, "exp-v1", "exp-v0")
    if group:
        screen.set_group("metadata.category")
        await settle(pilot)
        t = table(pilot.app)
        t.move_cursor(column=[c.key for c in t.visible_columns].index("scores.tone"))
        await pilot.press("O")
        await settle(pilot)
    await pilot.press("d")
    await settle(pilot)
    await pilot.pause(0.2)
    await settle(pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("group", [False, True], ids=["diff-sub-rows", "grouped-by-regressions"])
def test_snapshot(snap_compare, snap_lab: Path, group: bool, size: tuple[int, int]) -> None:
    async def run(pilot: Any) -> None:
        await _compare_steps(pilot, group)

    app, _ = make_app(Path("lab.db"), THIS)
    assert snap_compare(app, terminal_size=size, run_before=run)
