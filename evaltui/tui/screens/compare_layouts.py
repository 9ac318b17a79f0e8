"""Layouts of an experiment beside the table (``L`` cycles, esc goes back to the table):

- **Grid**: one row per case, one column per compared experiment, the chosen field (output
  by default; ``F`` picks another) wrapped in full, a page of cases at a time.
- **Summary cards**: per score and metric each experiment's value, the diff, ↑/↓ and a
  histogram; enter on a card filters the table to its regressions.
- **Summary table**: scores and metrics as rows, experiments as columns; ``m`` / ``c`` / ``h``
  export it as Markdown / CSV / HTML.
- **Details**: the experiment's comparisons, scorers, dataset, parameters, metadata, repo
  info and id (``y`` copies it).

Every figure comes from :mod:`evaltui.query.compare`, as ``evaltui summary`` prints it.
``ctrl+s`` in a layout saves a view that opens this layout again (with the comparison).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from rich.box import ROUNDED
from rich.panel import Panel
from rich.table import Table
from textual.containers import Horizontal, VerticalScroll
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable, Static

from evaltui.query.compare import (
    KEY,
    SCORE_PREFIX,
    _fmt,
    compare_frames,
    histogram,
    regressed_column,
    summary_histograms,
    summary_rows,
    table_csv,
    table_html,
    table_markdown,
)
from evaltui.query.textdiff import as_text
from evaltui.store import load_experiments
from evaltui.store.review import load_root_spans
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.footer import KeyFooter

if TYPE_CHECKING:
    from evaltui.tui.screens.compare_support import Comparison

LAYOUTS = ("grid", "cards", "table", "details")
LAYOUT_NAMES = {"list": "List", "grid": "Grid", "cards": "Summary cards", "table": "Summary table",
                "details": "Details"}
GRID_PAGE = 8
GRID_FIELDS = ("output", "expected", "input", "metadata", "error")
GRID_CELL_LIMIT = 20_000  # characters per grid cell; the rest is named, not dropped silently
BARS = " ▁▂▃▄▅▆▇█"


def open_layout(owner: Any, name: str, grid_field: str | None = None) -> None:
    """Show layout ``name`` for the experiment screen ``owner`` (replacing a shown layout);
    ``grid_field`` is the grid's field (a saved view's)."""
    screen = {"grid": GridLayout, "cards": CardsLayout, "table": TableLayout, "details": DetailsLayout}[name](owner)
    if isinstance(screen, GridLayout) and grid_field in GRID_FIELDS:
        screen.field = grid_field
    if isinstance(owner.app.screen, LayoutScreen):
        owner.app.switch_screen(screen)
    else:
        owner.app.push_screen(screen)


def sparkline(counts: list[int]) -> str:
    top = max(counts, default=0)
    if not top:
        return " " * len(counts)
    return "".join(BARS[0 if not c else max(1, round(c / top * 8))] for c in counts)


class LayoutScreen(Screen[None]):
    """A layout of the experiment screen's experiment (and its comparison, when there is one)."""

    HELP_GROUP = "Layout"
    LAYOUT = ""
    BINDINGS = [
        Binding("L", "next_layout", "Next layout", id="layout.next"),
        Binding("escape,q", "back", "Table", id="layout.back"),
        Binding("ctrl+s", "save_view", "Save view (with this layout)", show=False, id="layout.save-view"),
    ]

    def __init__(self, owner: Any) -> None:
        super().__init__(classes="layout-screen")
        self.owner = owner
        self.experiment: dict[str, Any] = owner.experiment
        self.comparison: Comparison | None = owner.comparison

    @property
    def this(self) -> pl.DataFrame:
        if self.comparison is not None:
            return self.comparison.this
        return self.owner.frames.get("traces", pl.DataFrame())

    def names(self) -> list[str]:
        return [str(b["name"]) for b in self.comparison.bases] if self.comparison else []

    def compose(self) -> ComposeResult:
        yield Static(self.title_text(), classes="title-line layout-title")
        yield from self.body()
        yield KeyFooter()

    def body(self) -> ComposeResult:
        yield from ()

    def title_text(self) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append(LAYOUT_NAMES[self.LAYOUT], "bold")
        t.append(" · ", "dim")
        t.append(safe_text(f"{self.experiment['project']}/{self.experiment['name']}", 60), "bold")
        if self.comparison is not None:
            t.append(" vs ", "dim")
            t.append(safe_text(", ".join(self.names()), 80))
        else:
            t.append("  (c on the table compares)", "dim")
        t.append("  L next layout · esc table", "dim")
        return t

    def action_next_layout(self) -> None:
        i = LAYOUTS.index(self.LAYOUT) + 1
        if i >= len(LAYOUTS):
            self.app.pop_screen()  # back to the list (the table)
            return
        open_layout(self.owner, LAYOUTS[i])

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_save_view(self) -> None:
        """Save the experiment's arrangement as a view, this layout and the comparison with it."""
        self.owner.action_save_view()


# -- summary table --------------------------------------------------------------------------


class TableLayout(LayoutScreen):
    LAYOUT = "table"
    BINDINGS = [
        Binding("m", "export('md')", "Export Markdown", id="layout.export-markdown"),
        Binding("c", "export('csv')", "Export CSV", id="layout.export-csv"),
        Binding("h", "export('html')", "Export HTML", id="layout.export-html"),
    ]

    def rows(self) -> tuple[list[str], list[list[str]]]:
        c = self.comparison
        if c is None:
            return summary_rows(str(self.experiment["name"]), [], [], compare_frames(self.this))
        return summary_rows(str(self.experiment["name"]), self.names(), c.results)

    def body(self) -> ComposeResult:
        table: DataTable[str] = DataTable(id="summary-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(Text("m Markdown · c CSV · h HTML: export to a file in the current directory", "dim"),
                     id="summary-help")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        head, rows = self.rows()
        for i, h in enumerate(head):
            table.add_column(Text(safe_text(h, 30), "bold"), key=f"c{i}")
        for r in rows:
            table.add_row(*[Text(safe_text(v, 40), justify="left" if i == 0 else "right") for i, v in enumerate(r)])
        table.focus()

    def export_text(self, fmt: str) -> str:
        head, rows = self.rows()
        title = f"{self.experiment['project']}/{self.experiment['name']}"
        if self.comparison is not None:
            title += " vs " + ", ".join(self.names())
        if fmt == "md":
            return f"### {title}\n\n" + table_markdown(head, rows)
        if fmt == "csv":
            return table_csv(head, rows)
        return table_html(head, rows, title)

    def export_path(self, fmt: str) -> Path:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.experiment['project']}-{self.experiment['name']}-summary")
        return Path.cwd() / f"{stem}.{fmt}"

    def action_export(self, fmt: str) -> None:
        self.write_export(fmt, self.export_text(fmt), self.export_path(fmt))

    @work(thread=True, exit_on_error=False, group="export")
    def write_export(self, fmt: str, text: str, path: Path) -> None:
        try:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            self.app.call_from_thread(self.app.notify, safe_text(f"Could not write {path}: {e}", 300),
                                      severity="error", markup=False)
            return
        what = {"md": "Markdown", "csv": "CSV", "html": "HTML"}[fmt]
        self.app.call_from_thread(self.app.notify, safe_text(f"Summary table saved as {what}: {path}", 300),
                                  markup=False, timeout=5)


# -- summary cards --------------------------------------------------------------------------


CARD_WIDTH = 40  # cells per card column (a card fills its share of the width)


class CardBoard(Widget, can_focus=True):
    """Every card in one widget: drawn as a grid of panels, a cursor on one of them.

    One widget rather than one per card: opening the layout styles, lays out and paints a
    single node (the cards of a 100k-trace experiment open within a frame or two).
    """

    DEFAULT_CSS = """
    CardBoard { height: auto; padding: 1 1; }
    """

    BINDINGS = [
        Binding("j,down,right,l", "move(1)", "Next card", show=False, id="layout.card-next"),
        Binding("k,up,left,h", "move(-1)", "Previous card", show=False, id="layout.card-previous"),
        Binding("enter", "choose", "Filter to regressions", id="layout.card-filter"),
    ]

    cursor: reactive[int] = reactive(0)

    class Chosen(Message):
        def __init__(self, source: str) -> None:
            self.source = source
            super().__init__()

    def __init__(self, cards: list[tuple[str, Text]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cards = cards
        self._lines: tuple[tuple[int, int, bool], list[Strip]] | None = None

    @property
    def sources(self) -> list[str]:
        return [source for source, _ in self.cards]

    def columns(self, width: int | None = None) -> int:
        return max(1, (width or self.content_size.width or self.app.size.width) // CARD_WIDTH)

    def grid(self, width: int) -> Table:
        columns = self.columns(width)
        grid = Table.grid(padding=(0, 1), expand=True)
        for _ in range(columns):
            grid.add_column(ratio=1)
        focused = self.has_focus
        for start in range(0, len(self.cards), columns):
            row = []
            for i in range(start, min(start + columns, len(self.cards))):
                chosen = i == self.cursor
                style = ("bold " if focused else "") + ("#61afef" if chosen else "grey42")
                row.append(Panel(self.cards[i][1], box=ROUNDED, border_style=style, padding=(0, 1)))
            grid.add_row(*row)
        return grid

    def lines(self, width: int) -> list[Strip]:
        """The grid rendered once per width, cursor and focus (its height and its lines)."""
        width = max(1, width)
        key = (width, self.cursor, self.has_focus)
        if self._lines is not None and self._lines[0] == key:
            return self._lines[1]
        console = self.app.console
        rendered = console.render_lines(self.grid(width), console.options.update_width(width), pad=True)
        strips = [Strip(line, width) for line in rendered]
        self._lines = (key, strips)
        return strips

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render_line(self, y: int) -> Strip:
        width = self.content_size.width
        lines = self.lines(width)
        return lines[y] if 0 <= y < len(lines) else Strip.blank(width)

    def watch_cursor(self) -> None:
        self.refresh()
        self.call_after_refresh(self._show_cursor)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def _show_cursor(self) -> None:
        """Scroll so the card under the cursor shows (card rows share one height here)."""
        if not self.cards or self.parent is None:
            return
        columns = self.columns()
        height = max(str(text).count("\n") + 1 for _, text in self.cards) + 2
        top = (self.cursor // columns) * height
        self.parent.scroll_to_region(Region(0, top, 1, height + 2), animate=False)  # type: ignore[attr-defined]

    def action_move(self, step: int) -> None:
        if self.cards:
            self.cursor = (self.cursor + step) % len(self.cards)

    def action_choose(self) -> None:
        if self.cards:
            self.post_message(self.Chosen(self.cards[self.cursor][0]))

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self.cards:
            return
        columns = self.columns()
        height = max(str(text).count("\n") + 1 for _, text in self.cards) + 2
        column = min(columns - 1, offset.x * columns // max(1, self.content_size.width))
        index = (offset.y // height) * columns + column
        if 0 <= index < len(self.cards):
            self.cursor = index
            if event.chain >= 2:
                self.action_choose()


class CardsLayout(LayoutScreen):
    LAYOUT = "cards"

    def body(self) -> ComposeResult:
        with VerticalScroll(id="cards-scroll"):
            yield CardBoard(self.cards(), id="cards-board")

    def histograms(self, summary: dict[str, Any]) -> dict[str, list[int]]:
        """This experiment's distributions: made with the comparison (in its worker), else
        once per loaded frame and kept on the experiment screen."""
        if self.comparison is not None and self.comparison.histograms:
            return self.comparison.histograms
        frame = self.this
        cached = getattr(self.owner, "_card_histograms", None)
        if cached is None or cached[0] is not frame:
            cached = (frame, summary_histograms(frame, summary))
            self.owner._card_histograms = cached
        return cached[1]

    def cards(self) -> list[tuple[str, Text]]:
        c = self.comparison
        results = c.results if c is not None else [compare_frames(self.this)]
        histograms = self.histograms(c.only if c is not None and c.only else results[0])
        names = self.names()
        this = self.this
        out = []
        from evaltui.query.compare import METRICS

        for group, is_score in (("scores", True), ("metrics", False)):
            first = results[0][group]
            for name, entry in first.items():
                source = SCORE_PREFIX + name if is_score else METRICS[name]
                t = Text(end="")
                t.append(safe_text(name, 30) + "\n", "bold")
                t.append(_fmt(name, entry["mean"], is_score=is_score), "bold")
                t.append("  " + safe_text(self.experiment["name"], 20) + "\n", "dim")
                for base_name, r in zip(names, results if c is not None else [], strict=False):
                    e = r[group].get(name)
                    if e is None:
                        continue
                    t.append(_fmt(name, e["base_mean"], is_score=is_score))
                    t.append("  " + safe_text(base_name, 14), "dim")
                    diff = e["diff"]
                    better = diff is not None and ((diff < 0) if e["lower_is_better"] else (diff > 0))
                    tone = "dim" if not diff else ("green" if better else "red")
                    t.append("  " + _fmt(name, diff, signed=True, is_score=is_score), tone)
                    t.append(f"  ↑{e['improvements']}", "green")
                    t.append(f" ↓{e['regressions']}\n", "red")
                counts = histograms.get(source)
                t.append(sparkline(counts if counts is not None else histogram(this, source)), "#61afef")
                out.append((source, t))
        return out

    def on_mount(self) -> None:
        self.query_one(CardBoard).focus()

    def on_card_board_chosen(self, message: CardBoard.Chosen) -> None:
        if self.comparison is None:
            self.app.notify("Compare first (c on the table) to filter by regressions", severity="warning")
            return
        owner = self.owner
        self.app.pop_screen()
        owner.filter_to(regressed_column(message.source))


# -- grid -----------------------------------------------------------------------------------


class GridLayout(LayoutScreen):
    LAYOUT = "grid"
    BINDINGS = [
        Binding("F", "next_field", "Field", id="layout.grid-field"),
        Binding("n", "page(1)", "Next cases", id="layout.grid-next"),
        Binding("p", "page(-1)", "Previous cases", id="layout.grid-previous"),
    ]

    class Loaded(Message):
        def __init__(self, token: int, cases: list[list[str]], error: str | None = None) -> None:
            self.token = token
            self.cases = cases
            self.error = error
            super().__init__()

    def __init__(self, owner: Any) -> None:
        super().__init__(owner)
        self.field = "output"
        self.rows = owner.query_one("ExperimentTable").frame if owner.row_type == "traces" else owner.frames.get(
            "traces", pl.DataFrame())
        cursor = owner.query_one("ExperimentTable").cursor_row if owner.row_type == "traces" else 0
        self.start = (cursor // GRID_PAGE) * GRID_PAGE
        self._token = 0

    def body(self) -> ComposeResult:
        yield Static("", id="grid-status", markup=False)
        yield VerticalScroll(id="grid-scroll")

    def on_mount(self) -> None:
        self.query_one("#grid-scroll").focus()
        self.call_after_refresh(self.reload)  # the frame paints first, the cases follow

    def columns(self) -> list[str]:
        return [str(self.experiment["name"]), *self.names()]

    def reload(self) -> None:
        self._token += 1
        end = min(self.start + GRID_PAGE, self.rows.height)
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append(f"cases {self.start + 1 if self.rows.height else 0}–{end} of {self.rows.height:,}", "bold")
        t.append(f" · field: {self.field}", "")
        t.append("  F field · n/p next/previous cases", "dim")
        self.query_one("#grid-status", Static).update(t)
        self.load_page(self._token, self.rows.slice(self.start, GRID_PAGE), self.field)

    @work(thread=True, exclusive=True, exit_on_error=False, group="grid")
    def load_page(self, token: int, page: pl.DataFrame, field: str) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        try:
            roots = page["root_span_id"].to_list() if "root_span_id" in page.columns else []
            mine = load_root_spans(store, self.experiment["id"], roots)
            keys = self._keys(page)
            theirs = []
            for base, frame in zip(self.comparison.bases if self.comparison else [],
                                   self.comparison.base_frames if self.comparison else [], strict=False):
                partner = {}
                if KEY in frame.columns:
                    hits = frame.filter(pl.col(KEY).is_in([k for k in keys if k is not None]))
                    for k, root in zip(hits[KEY].to_list(), hits["root_span_id"].to_list(), strict=True):
                        partner.setdefault(k, root)
                records = load_root_spans(store, base["id"], list(partner.values()))
                theirs.append({k: records.get(r) for k, r in partner.items()})
            cases = []
            for root, key in zip(roots, keys, strict=True):
                cells = [self._cell(mine.get(root), field)]
                for found in theirs:
                    rec = found.get(key) if key is not None else None
                    cells.append(self._cell(rec, field) if rec is not None else "\x00no match")
                cases.append(cells)
        except Exception as e:
            self.post_message(self.Loaded(token, [], f"could not load the cases: {e}"))
            return
        self.post_message(self.Loaded(token, cases))

    def _keys(self, page: pl.DataFrame) -> list[str | None]:
        this = self.comparison.this if self.comparison is not None else None
        if this is not None and "root_span_id" in page.columns and KEY in this.columns:
            # the keys as compared (fresh after a change of comparison key), for this page only
            hits = this.filter(pl.col("root_span_id").is_in(page["root_span_id"].implode()))
            lookup = dict(zip(hits["root_span_id"].to_list(), hits[KEY].to_list(), strict=True))
            return [lookup.get(r) for r in page["root_span_id"].to_list()]
        return page[KEY].to_list() if KEY in page.columns else [None] * page.height

    @staticmethod
    def _cell(record: dict[str, Any] | None, field: str) -> str:
        if record is None:
            return ""
        text = as_text(record.get(field))
        if len(text) > GRID_CELL_LIMIT:
            text = text[:GRID_CELL_LIMIT] + f"\n… {len(text) - GRID_CELL_LIMIT:,} more characters (open the trace)"
        return text

    def on_grid_layout_loaded(self, message: Loaded) -> None:
        if message.token != self._token:
            return
        scroll = self.query_one("#grid-scroll", VerticalScroll)
        scroll.remove_children()
        if message.error:
            scroll.mount(Static(Text(safe_text(message.error, 300), "bold red")))
            return
        names = self.columns()
        widgets = [Horizontal(*[Static(Text(safe_text(n, 40), "bold"), classes="grid-cell grid-head")
                                for n in names], classes="grid-row")]
        for i, cells in enumerate(message.cases):
            row = []
            for cell in cells:
                if cell.startswith("\x00"):
                    row.append(Static(Text(cell[1:], "italic red"), classes="grid-cell"))
                else:
                    row.append(Static(Text(safe_text(cell, newlines=True) or "–"), classes="grid-cell"))
            widgets.append(Static(Text(f"case {self.start + i + 1}", "dim"), classes="grid-case"))
            widgets.append(Horizontal(*row, classes="grid-row"))
        scroll.mount_all(widgets)

    def action_next_field(self) -> None:
        self.field = GRID_FIELDS[(GRID_FIELDS.index(self.field) + 1) % len(GRID_FIELDS)]
        self.reload()

    def action_page(self, step: int) -> None:
        start = self.start + step * GRID_PAGE
        if 0 <= start < max(1, self.rows.height):
            self.start = start
            self.reload()


# -- details ----------------------------------------------------------------------------------


class DetailsLayout(LayoutScreen):
    LAYOUT = "details"
    BINDINGS = [Binding("y", "copy_id", "Copy id", id="layout.copy-id")]

    class Loaded(Message):
        def __init__(self, text: Text) -> None:
            self.text = text
            super().__init__()

    def body(self) -> ComposeResult:
        with VerticalScroll(id="details-scroll"):
            yield Static(Text("loading…", "italic"), id="details-text", markup=False)

    def on_mount(self) -> None:
        self.query_one("#details-scroll").focus()
        # what is known at once; parameters, repository and dataset come from a worker
        # (the project's experiment rows cost a scan of every trace on big experiments)
        this, exp = self.this, self.experiment
        known = {
            "id": exp["id"], "name": exp["name"], "project": exp["project"], "created": exp["created"],
            "source": exp.get("source"), "description": None, "dataset_id": None, "tags": None,
            "base_exp_id": exp.get("base_exp_id"), "traces": this.height,
            "errors": int(this["has_error"].sum() or 0) if "has_error" in this.columns else 0,
            "reviewed": int((this["review_status"] == "reviewed").sum()) if "review_status" in this.columns else 0,
            "metadata": json.dumps(exp.get("metadata")) if exp.get("metadata") else None,
            "params": None, "repo_info": None,
        }
        names = {b["id"]: b["name"] for b in (self.comparison.bases if self.comparison else [])}
        text = self.details(known, names)
        text.append("\n(reading parameters, repository and dataset…)", "italic")
        self.query_one("#details-text", Static).update(text)
        self.call_after_refresh(self.load)  # after the first paint: the worker competes for the GIL

    @work(thread=True, exclusive=True, exit_on_error=False, group="details")
    def load(self) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        try:
            frame = load_experiments(store, self.experiment["project"])
            row = frame.filter(pl.col("id") == self.experiment["id"]).row(0, named=True)
            text = self.details(row, dict(zip(frame["id"].to_list(), frame["name"].to_list(), strict=True)))
        except Exception as e:
            text = Text(safe_text(f"could not read the experiment: {e}", 300), "bold red")
        self.post_message(self.Loaded(text))

    def details(self, row: dict[str, Any], names: dict[str, Any]) -> Text:
        t = Text(end="")

        def section(title: str) -> None:
            t.append(f"\n{title}\n", "bold underline")

        def field(name: str, value: Any) -> None:
            t.append(f"  {name:<14}", "dim")
            t.append(safe_text("–" if value in (None, "", {}, []) else value, 200) + "\n")

        section("Experiment")
        field("id", row["id"])
        field("name", row["name"])
        field("project", row["project"])
        field("created", row["created"])
        field("source", row["source"])
        field("description", row["description"])
        field("traces", f"{row['traces']:,} ({row['errors']:,} with errors, {row['reviewed']:,} reviewed)")
        field("tags", ", ".join(json.loads(row["tags"] or "[]") or []))
        field("baseline", names.get(row["base_exp_id"], row["base_exp_id"]))
        field("dataset", row["dataset_id"])
        section("Comparisons")
        c = self.comparison
        if c is None:
            t.append("  none (c on the table picks experiments to compare with)\n", "dim")
        else:
            from evaltui.query.compare import format_comparison_key

            field("key", format_comparison_key(c.key_spec))
            for i, (base, r) in enumerate(zip(c.bases, c.results, strict=True)):
                field("compared" if i == 0 else "", f"{base['name']}: {r['matched']:,} cases matched, "
                      f"{r['unmatched']:,} only here, {r['base_unmatched']:,} only there")
        section("Scorers")
        scores = [col[len(SCORE_PREFIX):] for col in self.this.columns if col.startswith(SCORE_PREFIX)]
        t.append("  " + (", ".join(safe_text(s, 40) for s in scores) or "none") + "\n")
        for title, key in (("Parameters", "params"), ("Metadata", "metadata"), ("Repository", "repo_info")):
            section(title)
            try:
                value = json.loads(row[key]) if row[key] else None
            except ValueError:
                value = row[key]
            if not value:
                t.append("  –\n", "dim")
            elif isinstance(value, dict):
                for k, v in value.items():
                    field(str(k)[:14], v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
            else:
                t.append("  " + safe_text(value, 400) + "\n")
        t.append("\ny copies the id", "dim")
        return t

    def on_details_layout_loaded(self, message: Loaded) -> None:
        self.query_one("#details-text", Static).update(message.text)

    def action_copy_id(self) -> None:
        self.app.copy_text(self.experiment["id"], "experiment id")  # type: ignore[attr-defined]

