"""Issue 4 in the TUI: filter history and completion, sort, built-in and saved views,
shared views across processes, text search, group by. Pilot on a small store, snapshots."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_tui_app import settle

from evaltui.config import load_config
from evaltui.query.filter import count_matching
from evaltui.store import Store, create_experiment, write_spans
from evaltui.tui.app import EvalTUI
from evaltui.tui.screens.views import GroupScreen, NamePrompt, ViewsScreen
from evaltui.tui.widgets.experiment_table import ExperimentTable
from evaltui.tui.widgets.filter_bar import FilterBar

EID = "exp-v"
CATS = ["billing", "shipping", "technical"]


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\nuser = "alice"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


def build(path: Path) -> None:
    """12 traces: acc i/11 (t3 none), category by i % 3, t1 and t7 fail, t2 and t5 assigned to alice."""
    store = Store(path)
    create_experiment(store, "proj", "exp", experiment_id=EID, created="2026-01-01T00:00:00+00:00")
    records: list[dict[str, Any]] = []
    for i in range(12):
        root = f"t{i:02d}"
        records.append({
            "id": f"{root}-root", "experiment_id": EID, "span_id": root, "root_span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"},
            "input": f"question {i} about {CATS[i % 3]}", "output": "sorry, no idea" if i in (4, 9) else f"answer {i}",
            "error": "RuntimeError: boom" if i in (1, 7) else None,
            "scores": {"acc": None if i == 3 else round(i / 11, 3)},
            "metadata": {"category": CATS[i % 3], "model": "m1" if i < 6 else "m2"},
            "metrics": {"start": 1000.0 + i, "end": 1001.0 + i * 1.5},
            "created": "2026-01-01T00:00:00+00:00",
        })
    write_spans(store, records)
    with store.transaction() as conn:
        conn.execute("UPDATE traces SET assignee = 'alice' WHERE root_span_id IN ('t02', 't05')")
    store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "views.db"
    build(path)
    return path


def title(app: EvalTUI) -> str:
    return str(app.screen.query_one("#exp-title").render())


def table(app: EvalTUI) -> ExperimentTable:
    return app.screen.query_one(ExperimentTable)


def keys(app: EvalTUI) -> list[str | None]:
    t = table(app)
    return [t.row_key(r) for r in range(t.row_count)]


def header_text(t: ExperimentTable) -> str:
    """The whole header line (pinned and scrolling parts, scrolled off or not)."""
    pinned, scrolling = t._render_header()[0]
    return "".join(seg.text for seg in [*pinned, *scrolling])


def _project_id(store: Store) -> str:
    return store.read("SELECT id FROM projects WHERE name = 'proj'")[0][0]


async def opened(pilot: Any) -> None:
    await settle(pilot)
    assert table(pilot.app).row_count == 12


async def go_to_column(pilot: Any, key: str) -> None:
    t = table(pilot.app)
    index = [c.key for c in t.visible_columns].index(key)
    t.move_cursor(column=index)
    await pilot.pause()


# -- filter bar: count, history, completion ---------------------------------------------------------


async def test_filter_count_matches_export_and_history_recalls(db: Path) -> None:
    from click.testing import CliRunner

    from evaltui.cli import cli

    text = "scores.acc < 0.6 and metadata.category = 'billing'"
    store = Store(db)
    try:
        expected = count_matching(store, EID, text)
    finally:
        store.close()
    assert expected == 2  # t00 and t06 (billing: i % 3 == 0; t03 has no score, t09 scores 0.82)
    exported = CliRunner().invoke(cli, ["export", "proj/exp", "--format", "jsonl", "--filter", text, "--db", str(db)],
                                  catch_exceptions=False)
    assert exported.exit_code == 0
    assert len(exported.output.strip().splitlines()) == expected
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pilot.press("slash")
        await pilot.press(*"scores.acc < 0.6 and metadata.category = 'billing'", "enter")
        await settle(pilot)
        assert table(app).row_count == expected
        assert f"{expected} of 12 rows" in title(app)
        assert not app.screen.query_one(FilterBar).display  # enter closed the bar
        await pilot.press("escape")  # on the table: clears the filter
        await settle(pilot)
        assert table(app).row_count == 12
        # history: up recalls it (and survives in the config)
        await pilot.press("slash")
        bar = app.screen.query_one(FilterBar)
        bar.input.value = "error is null"
        await pilot.press("up")
        assert bar.value == text
        await pilot.press("down")
        assert bar.value == "error is null"  # past the newest: what was typed
    assert load_config().config.filter_history == [text]


async def test_filter_completes_paths_and_values(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pilot.press("slash")
        bar = app.screen.query_one(FilterBar)
        await pilot.press(*"metadata.cat")
        assert bar.completions == ["metadata.category"]
        await pilot.press("tab")
        assert bar.value == "metadata.category "
        await pilot.press("equals_sign", "space")
        assert bar.completions == ["'billing'", "'shipping'", "'technical'"]
        await pilot.press("ctrl+n", "ctrl+n", "shift+tab")
        assert bar.highlighted == 1
        await pilot.press("tab")
        assert bar.value == "metadata.category = 'shipping' "
        await pilot.press("enter")
        await settle(pilot)
        assert table(app).row_count == 4


# -- sort ----------------------------------------------------------------------------------------------


async def test_sort_keys_nulls_last_and_header_marks(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await go_to_column(pilot, "scores.acc")
        await pilot.press("right_square_bracket")
        await settle(pilot)
        order = keys(app)
        assert order[0] == "t11" and order[-1] == "t03"  # descending, the null last
        assert "sort: scores.acc ↓" in title(app)
        assert "Acc ▼" in header_text(table(app)) or "acc ▼" in header_text(table(app))
        await pilot.press("left_square_bracket")  # the other direction flips the key
        await settle(pilot)
        order = keys(app)
        assert order[0] == "t00" and order[-1] == "t03"  # ascending, the null still last
        # a second column adds a key: metadata.category first? no: the first key stays most significant
        await go_to_column(pilot, "metadata.category")
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.screen.sort_keys == [("scores.acc", False), ("metadata.category", True)]
        header = header_text(table(app))
        assert "acc ▲1" in header and "cate… ▼2" in header  # a narrow label is cut for the mark
        await pilot.press("right_square_bracket")  # the same key again removes it
        await go_to_column(pilot, "scores.acc")
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert app.screen.sort_keys == []
        assert keys(app) == [f"t{i:02d}" for i in range(12)]
        assert "sort:" not in title(app)


# -- built-in views ------------------------------------------------------------------------------------


async def pick_view(pilot: Any, name: str) -> None:
    await pilot.press("v")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, ViewsScreen)
    index = [e.name for e in screen.entries].index(name)
    screen.query_one("#views-list").highlighted = index
    await pilot.press("enter")
    await settle(pilot)


async def test_builtin_views_combine_with_the_filter(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pick_view(pilot, "Errors")
        assert sorted(k for k in keys(app)) == ["t01", "t07"]
        assert "Errors" in title(app)
        await pick_view(pilot, "Non-errors")
        assert table(app).row_count == 10
        await pilot.press("slash", *"metadata.model = 'm1'", "enter")
        await settle(pilot)
        assert sorted(keys(app)) == ["t00", "t02", "t03", "t04", "t05"]  # m1 without t01
        await pick_view(pilot, "Assigned to me")  # alice, from the config
        assert sorted(keys(app)) == ["t02", "t05"]
        await pick_view(pilot, "Unreviewed")
        assert table(app).row_count == 6
        await pick_view(pilot, "Default")
        assert table(app).row_count == 6  # the typed filter stays
        # built-ins cannot be deleted or renamed
        await pilot.press("v")
        await settle(pilot)
        before = [e.name for e in app.screen.entries]
        await pilot.press("d")
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ViewsScreen)
        assert [e.name for e in app.screen.entries] == before
        assert any("Built-in views cannot" in n.message for n in app._notifications)


# -- saved views ---------------------------------------------------------------------------------------


async def save_view(pilot: Any, name: str, shared: bool = False) -> None:
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert isinstance(pilot.app.screen, NamePrompt)
    await pilot.press(*name)
    if shared:
        await pilot.press("ctrl+t")
    await pilot.press("enter")
    await settle(pilot)


async def test_save_prompt_esc_saves_nothing_and_an_empty_name_is_refused(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("enter")  # no name
        await settle(pilot)
        assert isinstance(app.screen, NamePrompt)
        assert any("needs a name" in n.message for n in app._notifications)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, NamePrompt)
    assert load_config().config.views == {}


async def test_saved_view_survives_a_restart_as_my_default(db: Path, config_file: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pick_view(pilot, "Non-errors")
        await pilot.press("slash", *"scores.acc >= 0.3", "enter")
        await settle(pilot)
        await go_to_column(pilot, "scores.acc")
        await pilot.press("right_square_bracket")
        await settle(pilot)
        shown = keys(app)
        await save_view(pilot, "triage")
        await pilot.press("v")
        await settle(pilot)
        entries = {e.key: e for e in app.screen.entries}
        assert entries["personal:triage"].current
        app.screen.query_one("#views-list").highlighted = list(entries).index("personal:triage")
        await pilot.press("m")  # my default
        await pilot.press("escape")
        await settle(pilot)
    saved = load_config().config
    assert saved.default_views == {"proj": "triage"}
    view = saved.views["proj"]["triage"]
    assert (view.view, view.filter, view.sort) == ("Non-errors", "scores.acc >= 0.3", [("scores.acc", True)])
    assert view.layout == {} and view.comparisons == []

    app = EvalTUI(db, "proj/exp")  # a restart: the default view is applied on open
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await settle(pilot)
        assert keys(app) == shown
        assert "view: triage" in title(app)
        # rename and delete from the list
        await pilot.press("v")
        await settle(pilot)
        app.screen.query_one("#views-list").highlighted = [e.key for e in app.screen.entries].index("personal:triage")
        await pilot.press("r")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, NamePrompt)
        prompt.query_one("#name-input").value = "triage 2"
        await pilot.press("enter")
        await settle(pilot)
        assert "personal:triage 2" in [e.key for e in app.screen.entries]
        await pilot.press("d")
        await settle(pilot)
        assert "personal:triage 2" not in [e.key for e in app.screen.entries]
    assert load_config().config.views == {}
    assert load_config().config.default_views == {}


async def test_shared_view_reaches_another_process_as_project_default(db: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    app = EvalTUI(Store(db), "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pick_view(pilot, "Errors")
        await save_view(pilot, "broken", shared=True)
        await pilot.press("v")
        await settle(pilot)
        entries = [e.key for e in app.screen.entries]
        assert "shared:broken" in entries
        app.screen.query_one("#views-list").highlighted = entries.index("shared:broken")
        await pilot.press("p")  # project default, in the database
        await settle(pilot)
        await pilot.press("escape")
    app.store.close()
    # another user: their own config, a separate Store on the same file, in another thread
    other = tmp_path / "other.toml"
    other.write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(other))

    async def second() -> list[str | None]:
        app2 = EvalTUI(Store(db), "proj/exp")
        async with app2.run_test(size=(160, 40)) as pilot2:
            await settle(pilot2)
            await settle(pilot2)
            assert "view: broken" in title(app2)
            assert "shared:broken" in [e.key for e in app2.screen.view_entries()]
            return sorted(k for k in keys(app2) if k)

    assert await asyncio.create_task(second()) == ["t01", "t07"]

    # a shared view can be my default too (it wins over the project default)
    other.write_text('clipboard = "osc52"\n[default_views]\nproj = "calm"\n')
    store = Store(db)
    from evaltui.store.writers import set_shared_view

    set_shared_view(store, _project_id(store), "calm",
                    {"view": "Non-errors"})
    store.close()
    app3 = EvalTUI(Store(db), "proj/exp")
    async with app3.run_test(size=(160, 40)) as pilot3:
        await settle(pilot3)
        await settle(pilot3)
        assert "view: calm" in title(app3) and table(app3).row_count == 10
        marks = {e.key: (e.my_default, e.project_default) for e in app3.screen.view_entries()}
        assert marks["shared:calm"] == (True, False) and marks["shared:broken"] == (False, True)


# -- search ---------------------------------------------------------------------------------------------


async def test_search_finds_highlights_and_jumps(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pilot.press("ctrl+f")
        await pilot.press(*"SORRY", "enter")
        await settle(pilot)
        assert table(app).row_count == 12  # search narrows nothing
        assert "search: SORRY (2 matches)" in title(app)
        assert table(app).row_key(table(app).cursor_row) == "t04"
        await pilot.press("n")  # enter closed the bar: n is the table's
        assert table(app).row_key(table(app).cursor_row) == "t09"
        await pilot.press("n")  # wraps
        assert table(app).row_key(table(app).cursor_row) == "t04"
        await pilot.press("N")
        assert table(app).row_key(table(app).cursor_row) == "t09"
        # the match is highlighted in its cell
        t = table(app)
        line = t.render_line(2 + t.cursor_row - round(t.scroll_y))
        match_style = t._get_styles()["match"]
        assert any(seg.text.lower() == "sorry" and seg.style and seg.style.bgcolor == match_style.bgcolor
                   for seg in line)
        await pilot.press("escape")  # on the table: clears the search
        await settle(pilot)
        assert "search:" not in title(app)


async def test_search_runs_while_typing_so_enter_shows_matches_at_once(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pilot.press("ctrl+f")
        await pilot.press(*"sorr")
        await pilot.pause(0.3)  # a pause in the typing: the text is searched ahead, in a worker
        await app.workers.wait_for_complete()
        index = app.screen._search_index
        assert index is not None and index.known("sorr") is not None
        assert "search:" not in title(app)  # nothing shown before enter
        await pilot.press("y")
        app.screen._search_ahead.stop()  # enter comes before the pause would search ahead
        await pilot.press("enter")
        await settle(pilot)
        assert "search: sorry (2 matches)" in title(app)  # "sorry" searched only the rows "sorr" matched
        assert table(app).row_key(table(app).cursor_row) == "t04"
        # a text typed ahead and then submitted is shown without another search
        await pilot.press("ctrl+f", "backspace", "backspace")
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        assert index.known("sor") is not None
        searches = []
        app.screen._search_worker = lambda *a: searches.append(a)  # would run a search
        await pilot.press("enter")
        await pilot.pause()
        assert searches == [] and "search: sor (2 matches)" in title(app)


# -- group by -------------------------------------------------------------------------------------------


async def test_group_by_category_with_means_and_collapse(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        await pilot.press("b")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GroupScreen)
        screen.query_one("#group-list").highlighted = screen.paths.index("metadata.category")
        await pilot.press("s", "s")  # order groups: size -> name -> lowest acc first
        await pilot.press("enter")
        await settle(pilot)
        t = table(app)
        assert "group: metadata.category (3)" in title(app)
        groups = t.groups
        assert [g.label for g in groups] == ["billing", "shipping", "technical"]  # mean acc 0.45 < 0.50 < 0.59
        assert t.row_count == 15  # 3 headers + 12 rows
        first = str(t.render_line(2).text)
        assert "▾ billing · 4" in first and "μ 0.45" in first
        t.move_cursor(row=0)
        await pilot.press("enter")  # collapse
        await pilot.pause()
        assert t.row_count == 11
        assert "▸ billing · 4" in str(t.render_line(2).text)
        await pilot.press("enter")
        assert t.row_count == 15
        app.screen.set_all_groups(True)
        await pilot.pause()
        assert t.row_count == 3


async def test_palette_names_sort_group_search_and_builtin_views(db: Path) -> None:
    from evaltui.tui.commands import view_commands

    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        screen = app.screen
        commands = {name: run for name, run, _ in view_commands(screen)}
        commands["View: Errors"]()
        await settle(pilot)
        assert sorted(keys(app)) == ["t01", "t07"]
        commands["View: Default"]()
        screen.set_sort([("scores.acc", True)])
        screen.set_group("metadata.model")
        await settle(pilot)
        assert table(app).row_count == 14
        commands["Group: collapse all"]()
        await pilot.pause()
        assert table(app).row_count == 2
        commands["Group: expand all"]()
        commands["Group: none"]()
        commands["Sort: clear"]()
        await settle(pilot)
        assert keys(app) == [f"t{i:02d}" for i in range(12)]


async def test_grouping_span_rows_by_a_trace_only_path_does_not_loop(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await opened(pilot)
        screen = app.screen
        screen.set_group("llm_calls")
        screen.set_sort([("scores.acc", False)])
        await settle(pilot)
        assert [g.label for g in table(app).groups] == ["0"]
        await pilot.press("t")  # span rows have no llm_calls count: one group
        await settle(pilot)
        assert [g.label for g in table(app).groups] == ["(none)"]
        assert table(app).row_count == 13


async def test_default_view_arranges_the_rest_when_it_loads(db: Path, config_file: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The first page shows at once; the whole experiment arrives later and is sorted too."""
    import evaltui.tui.screens.experiment as experiment_module

    monkeypatch.setattr(experiment_module, "FIRST_PAGE", 5)
    config_file.write_text('clipboard = "osc52"\n[default_views]\nproj = "by acc"\n'
                           '[views.proj."by acc"]\nsort = [["scores.acc", "desc"]]\n')
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await settle(pilot)
        assert app.screen.complete["traces"]
        assert table(app).row_count == 12
        assert keys(app)[:3] == ["t11", "t10", "t09"] and keys(app)[-1] == "t03"
        assert "view: by acc" in title(app)


# -- snapshots -------------------------------------------------------------------------------------------

def _snap(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[str],
          size: tuple[int, int]) -> bool:
    db = tmp_path / "snap.db"
    build(db)
    if "v" in steps:  # the list with a saved view of mine, my default
        import os

        Path(os.environ["EVALTUI_CONFIG"]).write_text(
            'clipboard = "osc52"\nuser = "alice"\n[default_views]\nproj = "failing shipping"\n'
            '[views.proj."failing shipping"]\nview = "Errors"\nfilter = "metadata.category = \'shipping\'"\n'
            'sort = [["scores.acc", "desc"]]\n')
    app = EvalTUI(db, "proj/exp")

    async def run_before(pilot: Any) -> None:
        await settle(pilot)
        for step in steps:
            if step.startswith("column:"):
                await go_to_column(pilot, step[7:])
            elif step.startswith("group:"):
                screen = pilot.app.screen
                screen.query_one("#group-list").highlighted = screen.paths.index(step[6:])
            else:
                await pilot.press(step)
            await settle(pilot)

    return snap_compare(app, terminal_size=size, run_before=run_before)


SIZES = [(80, 24), (160, 48)]
SNAPS = {
    "filter_bar_completion": ["slash", *"metadata.category = "],
    "views_list": ["v"],
    "grouped_table": ["b", "group:metadata.category", "enter"],
    "sorted_header": ["column:scores.acc", "right_square_bracket", "column:metadata.model", "left_square_bracket"],
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(SNAPS))
def test_snapshot(snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                  size: tuple[int, int]) -> None:
    assert _snap(snap_compare, tmp_path, monkeypatch, SNAPS[name], size)


def test_bench_times_filter_sort_group_and_search_in_a_fresh_process(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from evaltui import bench

    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    bench.bench_store(tmp_path, 300, 4)
    figures = bench.bench_tui_arrange(tmp_path, 300, 4, runs=1)
    assert [f.name for f in figures] == [f"TUI {op}: key to repainted table" for op in ("filter", "sort", "group",
                                                                                          "search")]
    assert all(f.value > 0 and f.target == "<= 100" for f in figures)
    assert "301 rows -> " in figures[0].note  # the synthetic experiment's traces (and its big trace)
