"""The experiment screen's filter bar, driven with Pilot on a small store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_tui_app import settle

from evaltui.query.filter import count_matching
from evaltui.store import Store, create_experiment, write_spans
from evaltui.tui.app import EvalTUI
from evaltui.tui.widgets.experiment_table import ExperimentTable
from evaltui.tui.widgets.filter_bar import FilterBar

EID = "exp-f"


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "filter.db"
    store = Store(path)
    create_experiment(store, "proj", "exp", experiment_id=EID)
    records: list[dict[str, Any]] = []
    for i in range(6):
        root = f"t{i}"
        records.append({
            "id": f"{root}-root", "experiment_id": EID, "span_id": root, "root_span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"},
            "input": f"question {i}", "output": f"answer {i}",
            "scores": {"acc": i / 5}, "metadata": {"group": "a" if i % 2 else "b"},
            "metrics": {"start": 1000.0 + i, "end": 1001.0 + i},
        })
        records.append({
            "id": f"{root}-tool", "experiment_id": EID, "span_id": f"{root}-tool", "root_span_id": root,
            "span_parents": [root], "span_attributes": {"name": "lookup", "type": "tool"},
            "error": "boom" if i in (1, 4) else None,
            "metrics": {"start": 1000.2 + i, "end": 1000.5 + i},
        })
    write_spans(store, records)
    store.close()
    return path


def title(app: EvalTUI) -> str:
    return str(app.screen.query_one("#exp-title").render())


def table(app: EvalTUI) -> ExperimentTable:
    return app.screen.query_one(ExperimentTable)


async def apply(pilot: Any, text: str) -> None:
    await pilot.press("slash")
    await settle(pilot)
    bar = pilot.app.screen.query_one(FilterBar)
    bar.input.value = text
    await pilot.press("enter")
    await settle(pilot)


async def test_filter_narrows_rows_and_esc_clears(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert table(app).row_count == 6
        assert "6 of 6 rows" in title(app)
        table(app).move_cursor(row=4)  # t4 matches the filter below
        await pilot.pause()
        key = table(app).current_row()["root_span_id"]
        text = "scores.acc >= 0.4 and any_span(error is not null)"
        await apply(pilot, text)
        bar = app.screen.query_one(FilterBar)
        assert not bar.display  # enter applies and hands the keys to the table
        assert app.focused is table(app)
        store = Store(db)
        try:
            expected = count_matching(store, EID, text)
        finally:
            store.close()
        assert expected == 1
        assert table(app).row_count == expected
        assert f"{expected} of 6 rows · proj/exp" in title(app)
        assert f"filter: {text}" in title(app)
        assert table(app).current_row()["root_span_id"] == key

        await pilot.press("slash")  # reopens the bar with the filter, which stays applied
        await settle(pilot)
        assert bar.display and app.focused is bar.input
        assert bar.value == text
        assert table(app).row_count == expected

        await pilot.press("escape")  # in the bar: clears the filter and closes the bar
        await settle(pilot)
        assert not bar.display
        assert app.focused is table(app)
        assert table(app).row_count == 6
        assert "filter:" not in title(app)

        await apply(pilot, text)
        assert table(app).row_count == expected
        await pilot.press("escape")  # on the table: clears the filter too, stays on the screen
        await settle(pilot)
        assert table(app).row_count == 6
        assert "filter:" not in title(app)
        assert app.screen.id == "experiment"


async def test_keys_after_enter_act_on_the_table(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"scores.acc >= 0.4", "enter", "j")
        await settle(pilot)
        assert table(app).row_count == 4
        assert table(app).cursor_row == 1  # j moved the cursor instead of typing into the bar
        assert app.screen.query_one(FilterBar).value == "scores.acc >= 0.4"
        assert app.screen.filter_text == "scores.acc >= 0.4"


async def test_broken_filter_shows_error_and_keeps_table(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await apply(pilot, "scores.acc >= 0.6")
        before = table(app).row_count
        assert before == 3
        title_before = title(app)
        await apply(pilot, "scores.acc <")
        bar = app.screen.query_one(FilterBar)
        error = str(app.screen.query_one("#filter-error").render())
        assert "column" in error and "^" in error
        assert "scores.acc <" in error
        assert bar.display and app.focused is bar.input
        assert table(app).row_count == before
        assert title(app) == title_before
        # fixing it clears the error
        await apply(pilot, "scores.acc < 0.3")
        assert table(app).row_count == 2
        assert not app.screen.query_one("#filter-error").display
        assert not bar.display and app.focused is table(app)


async def test_toggle_rows_reapplies_or_clears_the_filter(db: Path) -> None:
    app = EvalTUI(db, "proj/exp")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        text = "scores.acc >= 0.4"
        store = Store(db)
        try:
            traces = count_matching(store, EID, text)
            spans = count_matching(store, EID, text, row_type="spans")
        finally:
            store.close()
        assert (traces, spans) == (4, 4)
        await apply(pilot, text)
        assert table(app).row_count == traces
        await pilot.press("t")
        await settle(pilot)
        assert app.screen.row_type == "spans"
        assert table(app).row_count == spans  # the tool spans have no scores
        assert f"{spans} of 12 span rows" in title(app)
        await pilot.press("t")
        await settle(pilot)
        await apply(pilot, "any_span(error is not null)")
        assert table(app).row_count == 2
        await pilot.press("t")  # any_span does not apply to span rows: the filter is cleared
        await settle(pilot)
        assert app.screen.filter_text is None
        assert table(app).row_count == 12
        assert any("Filter cleared" in n.message for n in app._notifications)
