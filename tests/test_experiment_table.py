"""ExperimentTable: keys, messages, density, pinned columns, scale, hostile text, snapshots."""

from __future__ import annotations

import html
import re

import polars as pl
import pytest
from textual.app import App, ComposeResult

from evaltui.tui.widgets.experiment_table import (
    HEADER_HEIGHT,
    ColumnSpec,
    ExperimentTable,
    column_summary,
    format_cell,
    format_cost,
    format_duration,
    format_tokens,
)

KEY = "root_span_id"


def make_frame(n: int = 40) -> pl.DataFrame:
    """Deterministic trace rows shaped like load_trace_rows (a subset of its columns)."""
    i = pl.col("i")
    frame = pl.DataFrame({"i": pl.int_range(0, n, eager=True)}).select(
        pl.format("trace-{}", i.cast(pl.Utf8).str.zfill(6)).alias("root_span_id"),
        pl.format("Question {}: what is {} plus {}? Explain the reasoning step by step.", i, i, i).alias("input"),
        pl.format("The answer is {}. Adding the number to itself doubles it.", i * 2).alias("output"),
        (i * 2).cast(pl.Utf8).alias("expected"),
        pl.when(i % 7 == 3).then(None).otherwise(((i * 37) % 101) / 100).alias("scores.Factuality"),
        (i % 2).cast(pl.Float64).alias("scores.ExactMatch"),
        pl.when(i % 9 == 4).then(pl.lit("Timeout after 30s")).otherwise(None).alias("error"),
        (((i * 7919) % 9000).cast(pl.Float64) / 100 + 0.25).alias("duration"),
        ((i * 131) % 40000 + 120).alias("tokens"),
        (((i * 17) % 500).cast(pl.Float64) / 10000).alias("estimated_cost"),
        pl.when(i % 3 == 0).then(pl.lit('["triage", "math"]')).otherwise(None).alias("tags"),
        pl.when(i % 3 == 0)
        .then(pl.lit("unreviewed"))
        .when(i % 3 == 1)
        .then(pl.lit("reviewed"))
        .otherwise(pl.lit("in review"))
        .alias("review_status"),
        (i % 9 == 4).alias("has_error"),
        pl.when(i % 2 == 0).then(pl.lit("gpt-4o")).otherwise(pl.lit("claude-3-5-sonnet")).alias("metadata.model"),
    )
    return frame


class TableApp(App):
    """Mounts only the table and records its messages."""

    def __init__(
        self,
        frame: pl.DataFrame,
        columns: list[ColumnSpec] | None = None,
        density: str = "compact",
    ) -> None:
        super().__init__()
        self.frame = frame
        self.columns = columns if columns is not None else ExperimentTable.default_columns(frame)
        self.density = density
        self.highlighted: list[tuple[int, str | None]] = []
        self.selected: list[tuple[int, str | None]] = []

    def compose(self) -> ComposeResult:
        table = ExperimentTable(self.frame, self.columns, KEY)
        table.density = self.density
        yield table

    def on_mount(self) -> None:
        self.query_one(ExperimentTable).focus()

    def on_experiment_table_row_highlighted(self, message: ExperimentTable.RowHighlighted) -> None:
        self.highlighted.append((message.row, message.key))

    def on_experiment_table_row_selected(self, message: ExperimentTable.RowSelected) -> None:
        self.selected.append((message.row, message.key))


def lines(table: ExperimentTable) -> list[str]:
    """The table's screen lines as plain text."""
    return [table.render_line(y).text for y in range(table.size.height)]


def key(i: int) -> str:
    return f"trace-{i:06d}"


# -- formatting ---------------------------------------------------------------------------


def test_number_formats() -> None:
    assert format_duration(1.234) == "1.23s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3725) == "1h02m"
    assert format_cost(0.0012) == "$0.0012"
    assert format_cost(1.234) == "$1.23"
    assert format_tokens(1234567) == "1,234,567"
    assert format_cell(None, "score") == ("–", "dim")
    assert format_cell(0.72, "score") == ("0.72", 0.72)
    assert format_cell(1.5, "duration") == ("1.50s", "")
    assert format_cell(12345, "tokens") == ("12,345", "")
    assert format_cell('["a", "b"]', "tags") == ("a, b", "")
    assert format_cell(True, "status", "has_error") == ("✗ error", "error")
    assert format_cell(False, "status", "has_error")[1] == "dim"
    assert format_cell("reviewed", "status", "review_status") == ("reviewed", "success")
    assert format_cell("boom", "text", "error") == ("boom", "error")


def test_line_breaks_in_cells() -> None:
    col = ColumnSpec("output", "Output", 12)
    # one-line cells: a run of breaks is one space; a lone CR stays visible
    assert ExperimentTable._cell_lines("Hi Ana,\r\n\r\n  Thanks", col, 1) == ["Hi Ana, Tha…"]
    assert ExperimentTable._cell_lines("a\rb\n\nc", col, 1) == ["a␍b c"]
    # tall cells: blank lines collapse, then the text wraps within the column
    assert ExperimentTable._cell_lines("Hi Ana,\n\n\nThanks for the note", col, 3) == [
        "Hi Ana,",
        "Thanks for",
        "the note",
    ]
    assert ExperimentTable._cell_lines("x" * 5_000_000, col, 3) == ["x" * 12, "x" * 12, "x" * 11 + "…"]
    assert ExperimentTable._cell_lines("\n" * 5_000_000, col, 1)[0].endswith("…")


def test_column_summaries() -> None:
    frame = make_frame(10)
    spec = {c.key: c for c in ExperimentTable.default_columns(frame)}
    assert column_summary(frame, spec["scores.ExactMatch"]) == "μ 0.50"
    assert column_summary(frame, spec["estimated_cost"]).startswith("Σ $")
    assert column_summary(frame, spec["duration"]).startswith("p50 ")
    assert column_summary(frame, spec["tokens"]).startswith("Σ ")
    assert column_summary(frame, spec["error"]) == "1 errors"
    assert column_summary(frame, spec["review_status"]) == "✓ 3/10"
    assert column_summary(frame, spec["input"]) is None


def test_default_columns() -> None:
    frame = make_frame(5)
    cols = ExperimentTable.default_columns(frame)
    visible = [c.key for c in cols if c.visible]
    assert visible[:3] == ["input", "output", "expected"]
    assert [c.key for c in cols if c.pinned] == ["input"]
    assert {c.key: c.kind for c in cols}["scores.Factuality"] == "score"
    assert "root_span_id" in {c.key for c in cols if not c.visible}
    assert {c.key for c in cols} == set(frame.columns)


def test_bindings_have_ids_and_descriptions() -> None:
    for binding in ExperimentTable.BINDINGS:
        assert binding.id and binding.id.startswith("table.")
        assert binding.description


# -- navigation and messages ------------------------------------------------------------


async def test_navigation_keys_move_cursor_and_post_row_highlighted() -> None:
    app = TableApp(make_frame(100))
    async with app.run_test(size=(100, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        assert app.highlighted[-1] == (0, key(0))

        await pilot.press("j", "j", "down")
        await pilot.pause()
        assert table.cursor_row == 3
        assert app.highlighted[-1] == (3, key(3))

        await pilot.press("k", "up")
        await pilot.pause()
        assert table.cursor_row == 1
        assert app.highlighted[-1] == (1, key(1))

        await pilot.press("l", "l", "right", "h")
        assert table.cursor_column == 2
        assert table.current_cell_value() == ("expected", "2")
        await pilot.press("h", "h", "h", "left")
        assert table.cursor_column == 0

        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_row == 99
        assert app.highlighted[-1] == (99, key(99))
        await pilot.press("j")
        assert table.cursor_row == 99  # clamped

        await pilot.press("g")
        await pilot.pause()
        assert table.cursor_row == 0
        assert app.highlighted[-1] == (0, key(0))

        await pilot.press("end")
        assert table.cursor_row == 99
        await pilot.press("home")
        assert table.cursor_row == 0

        # a page is the number of rows the body shows
        page = table._page_rows()
        assert page == 24 - HEADER_HEIGHT - 1  # minus the horizontal scrollbar
        await pilot.press("pagedown")
        assert table.cursor_row == page
        await pilot.press("ctrl+d")
        assert table.cursor_row == 2 * page
        await pilot.press("ctrl+u")
        assert table.cursor_row == page
        await pilot.press("pageup", "pageup")
        assert table.cursor_row == 0
        await pilot.pause()
        assert app.highlighted[-1] == (0, key(0))


async def test_enter_posts_row_selected() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.press("j", "j", "enter")
        await pilot.pause()
        assert app.selected == [(2, key(2))]


async def test_cursor_row_is_kept_in_view() -> None:
    app = TableApp(make_frame(200))
    async with app.run_test(size=(100, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        for _ in range(30):
            await pilot.press("j")
        await pilot.pause()
        body = table._body_height()
        assert table.scroll_y == 30 - body + 1  # the cursor row is the last body line
        screen = lines(table)
        assert screen[HEADER_HEIGHT + body - 1].startswith(" Question 30:")
        await pilot.press("g")
        await pilot.pause()
        assert table.scroll_y == 0


async def test_keymap_remaps_by_binding_id() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(100, 24)) as pilot:
        app.set_keymap({"table.cursor-down": "n"})
        table = app.query_one(ExperimentTable)
        await pilot.press("n", "n")
        assert table.cursor_row == 2


async def test_click_selects_cell() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(100, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        # row 3 (fourth body line), inside the Output column (after the 30-cell pinned Input)
        await pilot.click(ExperimentTable, offset=(35, HEADER_HEIGHT + 3))
        await pilot.pause()
        assert (table.cursor_row, table.cursor_column) == (3, 1)
        assert app.highlighted[-1] == (3, key(3))


async def test_double_click_posts_row_selected() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(100, 24)) as pilot:
        await pilot.double_click(ExperimentTable, offset=(5, HEADER_HEIGHT + 4))
        await pilot.pause()
        assert app.selected[-1] == (4, key(4))


async def test_pinned_columns_give_way_on_a_narrow_screen() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(40, 12)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        assert "│" not in lines(table)[0]  # a 28-cell pinned column would leave no room
        await pilot.press("l")
        await pilot.pause()
        assert table.scroll_x > 0
        assert lines(table)[0].startswith(" Output")


# -- data and columns -------------------------------------------------------------------


async def test_current_row_and_set_data_keeps_cursor_key() -> None:
    frame = make_frame(20)
    app = TableApp(frame)
    async with app.run_test(size=(140, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.press("j", "j", "j", "j", "j", "l")
        assert table.current_row()["root_span_id"] == key(5)
        # a filtered frame that still holds the row: the cursor follows the key
        filtered = frame.filter(pl.col("scores.ExactMatch") == 1.0)
        table.set_data(filtered, table.columns, KEY)
        await pilot.pause()
        assert table.row_key(table.cursor_row) == key(5)
        assert table.cursor_row == 2  # rows 1, 3, 5 remain
        assert table.current_cell_value()[0] == "output"
        assert app.highlighted[-1] == (2, key(5))
        # the summaries follow the shown frame
        header = lines(table)[1]
        assert "μ 1.00" in header
        # empty frame: no row, RowHighlighted(-1, None)
        table.set_data(frame.clear(), table.columns, KEY)
        await pilot.pause()
        assert app.highlighted[-1] == (-1, None)
        assert table.current_row() == {}
        assert "(no rows)" in lines(table)[HEADER_HEIGHT]


async def test_set_columns_hides_and_reorders() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(120, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.press("l")  # on Output
        cols = table.columns
        cols = [ColumnSpec(c.key, c.label, c.width, c.kind, c.key != "expected", c.pinned, c.summary) for c in cols]
        table.set_columns(cols)
        await pilot.pause()
        assert "Expected" not in lines(table)[0]
        assert table.current_cell_value()[0] == "output"
        assert [c.key for c in table.visible_columns][:3] == ["input", "output", "scores.Factuality"]


async def test_tall_density_makes_rows_three_lines() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(100, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        compact = lines(table)
        assert compact[HEADER_HEIGHT + 1].startswith(" Question 1:")
        assert table.virtual_size.height == HEADER_HEIGHT + 10

        table.density = "tall"
        await pilot.pause()
        assert table.row_height == 3
        assert table.virtual_size.height == HEADER_HEIGHT + 30
        tall = lines(table)
        # row 0 wraps its input over three lines, row 1 starts on the fourth body line
        assert tall[HEADER_HEIGHT].startswith(" Question 0: what is 0 plus ")
        assert tall[HEADER_HEIGHT + 1].startswith(" 0? Explain the reasoning")
        assert tall[HEADER_HEIGHT + 3].startswith(" Question 1:")
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("pagedown")
        assert table.cursor_row == 2 + table._page_rows()
        assert table._page_rows() == (24 - HEADER_HEIGHT - 1) // 3
        table.density = "bogus"
        assert table.density == "compact"


async def test_pinned_column_stays_visible_after_scrolling_right() -> None:
    app = TableApp(make_frame(10))
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        last = len(table.visible_columns) - 1
        for _ in range(last):
            await pilot.press("l")
        await pilot.pause()
        assert table.cursor_column == last
        assert table.scroll_x > 0
        screen = lines(table)
        assert screen[0].startswith(" Input")
        assert screen[0].rstrip().endswith(table.visible_columns[last].label)  # cursor column in view
        assert "Output" not in screen[0]  # scrolled away
        assert screen[HEADER_HEIGHT].startswith(" Question 0:")
        # back left: the scroll follows the cursor
        for _ in range(last):
            await pilot.press("h")
        await pilot.pause()
        assert table.scroll_x == 0


# -- scale ------------------------------------------------------------------------------


async def test_100k_rows_mount_and_jump_to_last_row(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = make_frame(100_000)
    rendered: list[int] = []
    sliced: list[int] = []
    render_row = ExperimentTable._render_row
    slice_values = ExperimentTable._slice_values

    def spy_render_row(self, row, values, **kw):  # type: ignore[no-untyped-def]
        rendered.append(row)
        return render_row(self, row, values, **kw)

    def spy_slice_values(self, indices):  # type: ignore[no-untyped-def]
        sliced.append(len(indices))
        return slice_values(self, indices)

    monkeypatch.setattr(ExperimentTable, "_render_row", spy_render_row)
    monkeypatch.setattr(ExperimentTable, "_slice_values", spy_slice_values)
    app = TableApp(frame)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        assert table.row_count == 100_000
        assert table.virtual_size.height == HEADER_HEIGHT + 100_000
        body = table._body_height()
        assert set(rendered) <= set(range(body + 2))  # only the first screen was rendered

        rendered.clear()
        await pilot.press("G")
        await pilot.pause()
        assert table.cursor_row == 99_999
        assert app.highlighted[-1] == (99_999, key(99_999))
        screen = lines(table)
        assert screen[HEADER_HEIGHT + body - 1].startswith(" Question 99999:")
        assert set(rendered) <= set(range(100_000 - body - 1, 100_000))
        # never more than a screenful of rows became Python objects at once
        assert max(sliced) <= body + 2

        # a cursor move renders only the row it lands on: the row it left shows its cached look
        rendered.clear()
        await pilot.press("k")
        await pilot.pause()
        table.render_line(HEADER_HEIGHT)  # make sure a paint happened
        assert rendered == [99_998]
        screen = lines(table)
        assert screen[HEADER_HEIGHT + body - 1].startswith(" Question 99999:")
        styles = table._get_styles()
        left = table.render_line(HEADER_HEIGHT + body - 1)
        landed = table.render_line(HEADER_HEIGHT + body - 2)
        assert all(seg.style.bgcolor != styles["cursor-row"].bgcolor for seg in left)  # plain again
        assert any(seg.style == styles["cursor-cell"] for seg in landed)


# -- hostile text -----------------------------------------------------------------------

HOSTILE = "[bold red]x[/] \x1b[2J\x1b]0;pwned\x07 cr\r nul\x00 tab\tend"


def hostile_frame() -> pl.DataFrame:
    frame = make_frame(4)
    outputs = ["fine", HOSTILE, "A" * 5_000_000, "[link=http://x]y[/link] \x1b[31mred"]
    return frame.with_columns(
        pl.Series("output", outputs),
        pl.Series("tags", ['["[b]tag[/b]", "\\u001b[2J"]', None, None, None]),
    )


HOSTILE_COLUMNS = [
    ColumnSpec("input", "Input", 12, pinned=True),
    ColumnSpec("output", "Output", 60),
    ColumnSpec("tags", "Tags", 30, "tags"),
]


async def test_hostile_text_renders_literally() -> None:
    app = TableApp(hostile_frame(), HOSTILE_COLUMNS, density="compact")
    async with app.run_test(size=(120, 12)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        screen = lines(table)
        row1 = screen[HEADER_HEIGHT + 1]
        assert "[bold red]x[/] ␛[2J␛]0;pwned␇ cr␍ nul␀" in row1
        row2 = screen[HEADER_HEIGHT + 2]
        assert "AAAAAAAA…" in row2  # 5 MB cut to the column
        assert "[link=http://x]y[/link] ␛[31mred" in screen[HEADER_HEIGHT + 3]
        assert "[b]tag[/b], ␛[2J" in screen[HEADER_HEIGHT]
        for line in screen:
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line)
            assert len(line) == table.size.width

        # markup was not applied: the segment holding it has the plain row style
        strip = table.render_line(HEADER_HEIGHT + 1)
        segment = next(s for s in strip if "[bold red]" in s.text)
        assert not segment.style.bold
        plain = next(s for s in table.render_line(HEADER_HEIGHT + 2) if "AAAA" in s.text)
        assert segment.style == plain.style

        svg = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "[bold red]x[/]" in svg
        assert "␛[2J" in svg and "\x1b" not in svg


async def test_hostile_text_in_tall_rows() -> None:
    app = TableApp(hostile_frame(), HOSTILE_COLUMNS, density="tall")
    async with app.run_test(size=(120, 16)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        screen = lines(table)
        row1 = "".join(screen[HEADER_HEIGHT + 3 : HEADER_HEIGHT + 6])
        assert "[bold red]x[/]" in row1 and "␛[2J" in row1 and "␍" in row1 and "␀" in row1
        row2 = screen[HEADER_HEIGHT + 6 : HEADER_HEIGHT + 9]
        assert "…" in row2[2]  # the 5 MB output fills three lines, then is cut
        for line in screen:
            assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line)


# -- snapshots ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("density", ["compact", "tall"])
def test_snapshot(snap_compare, size: tuple[int, int], density: str) -> None:  # type: ignore[no-untyped-def]
    app = TableApp(make_frame(60), density=density)
    assert snap_compare(app, terminal_size=size, press=["j", "j", "l"])


def test_snapshot_scrolled_right(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = TableApp(make_frame(60))
    assert snap_compare(app, terminal_size=(80, 24), press=["G", *["l"] * 9])


async def test_scrolling_row_by_row_keeps_the_scrollbar_thumb_true(monkeypatch: pytest.MonkeyPatch) -> None:
    from textual.geometry import Region
    from textual.scrollbar import ScrollBar

    painted: list[float] = []
    render = ScrollBar.render

    def spy_render(self):  # type: ignore[no-untyped-def]
        if self.vertical:
            painted.append(self.position)
        return render(self)

    monkeypatch.setattr(ScrollBar, "render", spy_render)
    app = TableApp(make_frame(100_000))
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(ExperimentTable)
        bar = table.vertical_scrollbar
        await pilot.pause()
        body = table._body_height()

        def picture() -> list[list[tuple[str, object]]]:
            return [[(seg.text, seg.style) for seg in strip] for strip in bar.render_lines(Region(0, 0, *bar.size))]

        painted.clear()
        await pilot.press(*["j"] * (body + 20))  # the last 20 scroll the table a row each
        await pilot.pause()
        assert table.scroll_y == 21
        assert bar.position == 21  # the bar knows where the table is ...
        assert len(painted) <= 2  # ... but its thumb did not move on screen, so it was not repainted
        shown = picture()
        bar.refresh()  # what a full repaint draws at this position
        await pilot.pause()
        assert picture() == shown

        before = shown
        await pilot.press("G")  # a jump moves the thumb: the bar repaints, at the bottom
        await pilot.pause()
        assert bar.position == table.scroll_y == table.max_scroll_y
        shown = picture()
        assert shown != before  # the thumb left the top
        bar.refresh()
        await pilot.pause()
        assert picture() == shown


async def test_repainted_lines_come_from_the_line_cache_after_a_re_render() -> None:
    app = TableApp(make_frame(200))
    async with app.run_test(size=(120, 30)) as pilot:
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        y = HEADER_HEIGHT + 3  # a row without the cursor
        table.set_search("question")  # every row renders again (highlights)
        await pilot.pause()
        first = table.render_line(y)
        assert table.render_line(y) is first  # a repaint of the same line reuses it
        table.set_search(None)
        await pilot.pause()
        assert table.render_line(y) is not first and table.render_line(y) is table.render_line(y)


async def test_a_cursor_move_repaints_nothing_beside_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # the compositor clips a widget's repaint to its parent, not to the widget: a repaint as wide
    # as the table's virtual width also repainted every widget beside it (the trace pane)
    from textual.geometry import Region

    refreshed: list[Region] = []
    refresh = ExperimentTable.refresh

    def spy_refresh(self, *regions, **kwargs):  # type: ignore[no-untyped-def]
        refreshed.extend(regions)
        return refresh(self, *regions, **kwargs)

    monkeypatch.setattr(ExperimentTable, "refresh", spy_refresh)
    app = TableApp(make_frame(500))
    async with app.run_test(size=(60, 20)) as pilot:  # far narrower than the table's columns
        table = app.query_one(ExperimentTable)
        await pilot.pause()
        assert table.virtual_size.width > table.size.width
        refreshed.clear()
        await pilot.press("j", "j", "k", "l")
        await pilot.pause()
        assert refreshed and table.cursor_row == 1 and table.cursor_column == 1
        assert all(region.right <= table.size.width for region in refreshed)
