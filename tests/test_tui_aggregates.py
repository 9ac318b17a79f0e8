"""Aggregate scores and custom columns in the experiment table: defined from the command
palette, computed on the trace rows, filtered and sorted like any column, kept through the
live refresh of another process's review."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from evaltui.store import Store, project_settings
from evaltui.store.review import define_human_score, set_human_score, toggle_reviewed
from test_tui_app import config_file, db, make_app, screen_text, settle, table  # noqa: F401 (fixtures)

EXP = "support-bot/new-prompt"
# the fixture's new-prompt scores: Factuality 0.9, 0.4, 0.9, null (timed out), 0.9; ExactMatch 0, 0, 0, 0, 1
# overall = (2 * Factuality + ExactMatch) / (2 + 1), over the scores a trace has
OVERALL = {"exp-new-t0": 0.6, "exp-new-t1": 0.8 / 3, "exp-new-t2": 0.6, "exp-new-t3": 0.0,
           "exp-new-t4": 2.8 / 3}


async def wait_for(pilot: Any, check: Any, seconds: float = 5.0) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "timed out"
        await pilot.pause(0.05)


async def palette(pilot: Any, command: str) -> None:
    await pilot.press("ctrl+p")
    await settle(pilot)
    await pilot.press(*command)
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)


async def define_overall(pilot: Any, scores: str = "Factuality=2, ExactMatch=1", name: str = "overall") -> None:
    await palette(pilot, "aggregate score: define")
    screen = pilot.app.screen
    screen.query_one("#agg-name").value = name
    screen.query_one("#agg-scores").value = scores
    screen.query_one("#agg-scores").focus()
    await pilot.press("enter")
    await settle(pilot)


def column(app: Any, name: str) -> dict[str, Any]:
    frame = table(app).frame
    return dict(zip(frame["root_span_id"].to_list(), frame[name].to_list(), strict=True))


async def test_an_aggregate_defined_in_the_form_shows_and_filters(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await define_overall(pilot)
        await wait_for(pilot, lambda: "scores.overall" in table(app).frame.columns)
        got = column(app, "scores.overall")
        assert got == pytest.approx(OVERALL)
        assert "scores.overall" in [c.key for c in table(app).visible_columns]
        assert "overall" in screen_text(app)  # its header
        with Store(db) as s:
            saved = project_settings(s, app.screen.experiment["project_id"])["aggregate_scores"]
        assert saved == [{"name": "overall", "kind": "weighted_mean", "scores": {"Factuality": 2.0, "ExactMatch": 1.0}}]
        await pilot.press("slash")
        await settle(pilot)
        app.screen.query_one("#filter-bar Input").value = "scores.overall < 0.5"
        await pilot.press("enter")
        await settle(pilot)
        await wait_for(pilot, lambda: table(app).frame.height == 2)
        assert sorted(table(app).frame["root_span_id"].to_list()) == ["exp-new-t1", "exp-new-t3"]


async def test_a_bad_aggregate_shows_the_error_and_saves_nothing(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await define_overall(pilot, scores="Factuality=2, Nope=1")
        await settle(pilot)
        assert app.screen.id == "define-aggregate-dialog"  # still open, with the error
        assert "unknown score 'Nope'" in str(app.screen.query_one("#agg-error").render())
        app.screen.query_one("#agg-scores").value = "Factuality=x"
        await pilot.press("enter")
        await settle(pilot)
        assert "not a number" in str(app.screen.query_one("#agg-error").render())
        await pilot.press("escape")
        await settle(pilot)
        with Store(db) as s:
            assert project_settings(s, app.screen.experiment["project_id"])["aggregate_scores"] == []
        assert "scores.overall" not in table(app).frame.columns


async def test_a_custom_column_has_the_right_values_sorts_and_filters(db: Path, config_file: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(200, 30)) as pilot:
        await settle(pilot)
        await palette(pilot, "custom column: add")
        form = app.screen
        form.query_one("#cc-name").value = "ratio"
        form.query_one("#cc-expr").value = "metrics.completion_tokens / nope"
        form.query_one("#cc-expr").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is form and "nope" in str(form.query_one("#cc-error").render())
        form.query_one("#cc-expr").value = "metrics.completion_tokens / metrics.prompt_tokens"
        await pilot.press("enter")
        await settle(pilot)
        await wait_for(pilot, lambda: "custom.ratio" in table(app).frame.columns)
        expected = {f"exp-new-t{i}": 58 / (420 + 2 * i) for i in range(5)}
        assert column(app, "custom.ratio") == pytest.approx(expected)
        assert "ratio" in config_file.read_text()  # kept in the local config
        t = table(app)
        t.move_cursor(column=[c.key for c in t.visible_columns].index("custom.ratio"))
        await pilot.press("left_square_bracket")
        await settle(pilot)
        await wait_for(pilot, lambda: app.screen.sort_keys == [("custom.ratio", False)])
        await wait_for(pilot, lambda: t.frame["root_span_id"].to_list()[0] == "exp-new-t4")
        assert t.frame["root_span_id"].to_list() == [f"exp-new-t{i}" for i in (4, 3, 2, 1, 0)]
        await pilot.press("slash")
        await settle(pilot)
        app.screen.query_one("#filter-bar Input").value = "custom.ratio > 0.137"
        await pilot.press("enter")
        await settle(pilot)
        await wait_for(pilot, lambda: t.frame.height == 2)
        assert sorted(t.frame["root_span_id"].to_list()) == ["exp-new-t0", "exp-new-t1"]
    # a new session computes it again from the config
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(200, 30)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: "custom.ratio" in table(app).frame.columns)


async def test_another_process_review_refreshes_with_the_aggregate_intact(db: Path) -> None:
    import evaltui.tui.screens.review as module

    with Store(db) as s:
        pid = s.read("SELECT project_id FROM experiments WHERE id = 'exp-new'")[0][0]
        define_human_score(s, pid, {"name": "Helpfulness", "kind": "categorical",
                                    "options": {"good": 1, "ok": 0.5, "bad": 0}})
        set_human_score(s, "exp-new", "exp-new-t0", "Helpfulness", "good", "ann")
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(320, 30)) as pilot:
        await settle(pilot)
        await define_overall(pilot, "Factuality=2, ExactMatch=1, Helpfulness=3")
        await wait_for(pilot, lambda: "scores.overall" in table(app).frame.columns)
        await wait_for(pilot, lambda: app.screen.complete.get("traces"))
        assert column(app, "scores.overall")["exp-new-t0"] == pytest.approx((1.8 + 0 + 3) / 6)
        full_loads: list[int] = []
        real = module.load_trace_rows
        module.load_trace_rows = lambda *a, **k: full_loads.append(1) or real(*a, **k)  # type: ignore[assignment]
        try:
            with Store(db) as other:
                toggle_reviewed(other, "exp-new", "exp-new-t2", "bob")
                set_human_score(other, "exp-new", "exp-new-t1", "Helpfulness", "bad", "bob")
            await wait_for(pilot, lambda: column(app, "review_status")["exp-new-t2"] == "reviewed"
                           and column(app, "scores.Helpfulness")["exp-new-t1"] == 0.0)
        finally:
            module.load_trace_rows = real  # type: ignore[assignment]
        assert full_loads == []  # the delta path, not a full reload
        # t1's overall now counts its Helpfulness 0 (weight 3); the other rows keep theirs
        assert column(app, "scores.overall") == pytest.approx(
            {**OVERALL, "exp-new-t0": 4.8 / 6, "exp-new-t1": 0.8 / 6})


# -- snapshots -------------------------------------------------------------------------------


@pytest.fixture
def snap_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from test_tui_app import build_store

    monkeypatch.chdir(tmp_path)
    Path("config").mkdir(exist_ok=True)
    Path("config/config.toml").write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", "config/config.toml")
    build_store(Path("fixture.db")).close()
    return Path("fixture.db")


def _form(method: str, values: dict[str, str]) -> Any:
    async def run(pilot: Any) -> None:
        await settle(pilot)
        getattr(pilot.app.screen, method)()
        await settle(pilot)
        for selector, value in values.items():
            pilot.app.screen.query_one(selector).value = value
        pilot.app.screen.query_one(list(values)[-1]).focus()
        await pilot.press("enter")
        await settle(pilot)

    return run


SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_aggregate_form_with_an_error(snap_compare, snap_db: Path, size: tuple[int, int]) -> None:
    app, _ = make_app(snap_db, EXP)
    run = _form("define_aggregate", {"#agg-name": "overall", "#agg-scores": "Factuality=2, Nope=1"})
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_custom_column_form_with_an_error(snap_compare, snap_db: Path, size: tuple[int, int]) -> None:
    app, _ = make_app(snap_db, EXP)
    run = _form("add_custom_column", {"#cc-name": "ratio", "#cc-expr": "metrics.completion_tokens / / 2"})
    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_table_with_an_aggregate(snap_compare, snap_db: Path, size: tuple[int, int]) -> None:
    app, _ = make_app(snap_db, EXP)
    run = _form("define_aggregate", {"#agg-name": "overall", "#agg-scores": "Factuality=2, ExactMatch=1"})

    async def then(pilot: Any) -> None:
        await run(pilot)
        await wait_for(pilot, lambda: "scores.overall" in table(pilot.app).frame.columns, seconds=10)
        await settle(pilot)
        pilot.app.clear_notifications()  # the "saved" toast may or may not have expired on a slow run
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=then)


async def test_a_saved_view_carries_its_custom_columns(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(200, 30)) as pilot:
        await settle(pilot)
        app.screen.add_custom_column()
        await settle(pilot)
        app.screen.query_one("#cc-name").value = "ratio"
        app.screen.query_one("#cc-expr").value = "metrics.completion_tokens / metrics.prompt_tokens"
        app.screen.query_one("#cc-expr").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "custom.ratio" in table(app).frame.columns)
        view = app.screen.current_view("ratios")
        assert view.to_dict()["custom_columns"] == {"ratio": "metrics.completion_tokens / metrics.prompt_tokens"}
        view.filter = "custom.ratio > 0.137"
        # someone else's config: no custom columns; applying the view brings the column and its filter
        app.config.extra["custom_columns"] = {}
        app.screen.apply_view(view, "personal")
        await wait_for(pilot, lambda: "custom.ratio" in table(app).frame.columns and table(app).frame.height == 2)
        assert sorted(table(app).frame["root_span_id"].to_list()) == ["exp-new-t0", "exp-new-t1"]
        assert "ratio" in app.config.extra["custom_columns"]["support-bot"]


async def test_aggregates_and_custom_columns_are_removed_from_the_palette(db: Path, config_file: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await define_overall(pilot)
        await wait_for(pilot, lambda: "scores.overall" in table(app).frame.columns)
        await palette(pilot, "custom column: add")
        app.screen.query_one("#cc-name").value = "ratio"
        app.screen.query_one("#cc-expr").value = "metrics.completion_tokens / metrics.prompt_tokens"
        app.screen.query_one("#cc-expr").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "custom.ratio" in table(app).frame.columns)
        await palette(pilot, "aggregate score: remove overall")
        await wait_for(pilot, lambda: "scores.overall" not in table(app).frame.columns)
        assert "custom.ratio" in table(app).frame.columns  # only the one named goes
        with Store(db) as s:
            assert project_settings(s, app.screen.experiment["project_id"])["aggregate_scores"] == []
        await palette(pilot, "custom column: remove ratio")
        await wait_for(pilot, lambda: "custom.ratio" not in table(app).frame.columns)
        assert "ratio" not in config_file.read_text()
        assert "Factuality" in screen_text(app)  # the stored scores are untouched
