"""The TUI's export dialog (x) and "dataset from rows" (M): the rows the view shows, checked
against the CLI's export of the same filter; bad names and cancel leave nothing behind."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from evaltui.cli import cli
from evaltui.store import Store
from evaltui.store.datasets import list_datasets
from evaltui.tui.screens.export import DatasetScreen, ExportScreen
from test_tui_app import config_file, db, make_app, notes, screen_text, settle, table  # noqa: F401 (fixtures)

FILTER = "scores.Factuality < 0.5 and metadata.category = 'account'"


async def _filter(pilot, text: str) -> None:
    await pilot.press("slash")
    await settle(pilot)
    pilot.app.screen.query_one("#filter-bar Input").value = text
    await pilot.press("enter")
    await settle(pilot)
    table(pilot.app).focus()
    await settle(pilot)


async def test_export_of_a_filtered_view_matches_the_cli(db: Path, tmp_path: Path) -> None:
    app, _ = make_app(db, "support-bot/new-prompt")
    out = tmp_path / "view.csv"
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await _filter(pilot, FILTER)
        shown = table(app).frame["root_span_id"].to_list()
        await pilot.press("x")
        await settle(pilot)
        assert f"Export {len(shown)} trace row" in screen_text(app) and FILTER in screen_text(app)
        app.screen.query_one("#export-path").value = str(out)
        await pilot.press("enter")
        await settle(pilot)
    with out.open() as f:
        tui_rows = list(csv.DictReader(f))
    cli_out = tmp_path / "cli.csv"
    result = CliRunner().invoke(cli, ["--db", str(db), "export", "support-bot/new-prompt", "--filter", FILTER,
                                      "-o", str(cli_out)])
    assert result.exit_code == 0, result.output
    with cli_out.open() as f:
        cli_rows = list(csv.DictReader(f))
    assert len(tui_rows) == len(cli_rows) == len(shown) > 0
    assert [r["output"] for r in tui_rows] == [r["output"] for r in cli_rows]
    assert list(tui_rows[0])[:2] == ["input", "output"]  # the table's visible columns, in its order


async def test_bad_file_names_are_explained_and_nothing_is_written(db: Path, tmp_path: Path) -> None:
    app, _ = make_app(db, "support-bot/new-prompt")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await settle(pilot)
        field = app.screen.query_one("#export-path")
        field.value = str(tmp_path / "rows.xlsx")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ExportScreen)
        status = app.screen.query_one("#export-status")
        assert str(status.render()).endswith("rows.xlsx: unknown extension; use .csv, .json, .jsonl or .parquet")
        field.value = str(tmp_path / "missing" / "rows.csv")
        await pilot.press("enter")
        await settle(pilot)
        assert str(status.render()) == f"{tmp_path / 'missing'}: no such directory"
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ExportScreen)
    assert list(tmp_path.glob("rows*")) == [] and not (tmp_path / "missing").exists()


async def test_dataset_from_filtered_rows_and_a_taken_name(db: Path) -> None:
    app, _ = make_app(db, "support-bot/new-prompt")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await _filter(pilot, "metadata.category = 'shipping'")
        await pilot.press("M")
        await settle(pilot)
        assert "Dataset from 2 traces (the filtered rows)" in screen_text(app)
        app.screen.query_one("#dataset-name").value = "shipping-cases"
        await pilot.press("enter")
        await settle(pilot)
        assert any("created dataset support-bot/shipping-cases: 2 records" in n for n in notes(app))
        await pilot.press("M")
        await settle(pilot)
        app.screen.query_one("#dataset-name").value = "shipping-cases"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DatasetScreen)  # stays open, says why
        status = str(app.screen.query_one("#dataset-status").render())
        assert "already" in status and "shipping-cases" in status
    with Store(db) as store:
        assert [(d["name"], d["records"]) for d in list_datasets(store)] == [("shipping-cases", 2)]
