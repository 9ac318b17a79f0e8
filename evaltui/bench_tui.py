"""TUI timings for ``evaltui bench``, each measured in a fresh process (issue 3).

Run as ``python -m evaltui.bench_tui MODE DB EXPERIMENT ROOT`` by evaltui.bench; prints one
JSON object. MODE ``empty`` measures an empty Textual app the same way, as the baseline;
MODE ``lineapi`` a one-widget Line-API app moving a cursor (the least a repainting key costs).
Times are from the parent spawning the process (interpreter start and imports included) to the
moment the first rows are painted, headless, at 160x48. Two readings of "painted":
``first_paint_s`` waits until the app is also idle after the rows arrive (Pilot.pause, as
earlier runs measured it), ``first_frame_s`` is when the first frame showing rows is
written to the (headless) terminal, whatever still runs in the background.
MODE ``arrange`` (``DB EXPERIMENT``)
times key press to repainted table for filter, sort, group and search (issue 4): from the key
event reaching the app to the frame written, without Pilot's waits (see ``_KeyToFrame``).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

MOVES = 50
SIZE = (160, 48)


def _spawned_at() -> float:
    """When this process was started: the parent's clock just before it spawned us (evaltui.bench
    passes it). psutil's creation time is only a fallback (a run by hand): Linux gives it from the
    boot time in whole seconds, so it can be up to a second early (115 ms on one machine here),
    which every figure from the start would carry."""
    spawned = os.environ.get("EVALTUI_BENCH_SPAWNED_AT")
    if not spawned:
        return psutil.Process().create_time()
    try:
        return float(spawned)
    except ValueError:
        raise SystemExit(f"EVALTUI_BENCH_SPAWNED_AT must be a time in seconds since the epoch, "
                         f"not {spawned!r}") from None


_SPAWNED_AT = _spawned_at()


def _since_start() -> float:
    return time.time() - _SPAWNED_AT


class _FrameWatch:
    """Records when the first frame that passes ``ready()`` reaches the terminal."""

    def __init__(self, app, ready) -> None:
        self.at: float | None = None
        self.cpu: float | None = None  # process CPU seconds (all threads) at that moment
        self.polars: bool | None = None  # whether polars was imported by then
        display = app._display

        def _display(screen, update) -> None:
            display(screen, update)
            if self.at is None and update is not None and ready():
                self.at = _since_start()
                self.cpu = time.process_time()
                self.polars = "polars" in sys.modules

        app._display = _display


async def _press_moves(pilot) -> float:
    """CPU seconds for 50 cursor moves down and a jump to the last row."""
    await pilot.pause()
    c0 = time.process_time()
    for _ in range(MOVES):
        await pilot.press("j")
    await pilot.press("G")
    await pilot.pause()
    return time.process_time() - c0


async def _send_moves(pilot, scroller=None, split: dict | None = None) -> float:
    """The same keys sent as a terminal sends them: each is handled and painted before the
    next, but without Pilot.press's per-key round trip through every widget of the screen
    (a test-harness cost that grows with the number of widgets, hidden ones included).

    With ``split`` (a dict) it also gets each kind of key's median CPU in ms and its count: a
    ``j`` that repaints two rows, a ``j`` that scrolls ``scroller`` a row (a repaint of every
    line), and ``G`` (a jump: a new page)."""
    await pilot.pause()
    app = pilot.app
    keys: dict[str, list[float]] = {"j": [], "j_scroll": [], "G": []}
    c0 = time.process_time()
    for key in ["j"] * MOVES + ["G"]:
        y = scroller.scroll_y if scroller is not None else 0
        c = time.process_time()
        await app._press_keys([key])
        spent = time.process_time() - c
        keys["G" if key == "G" else "j_scroll" if scroller is not None and scroller.scroll_y != y else "j"].append(spent)
    await pilot.pause()
    total = time.process_time() - c0
    if split is not None:
        for kind, times in keys.items():
            split[kind] = statistics.median(times) * 1000 if times else None
            split[f"{kind}_n"] = len(times)
    return total


async def _empty() -> dict:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("empty")

    app = Empty()
    watch = _FrameWatch(app, lambda: True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = _since_start()
        cpu = await _press_moves(pilot)
        split: dict = {}
        sent = await _send_moves(pilot, split=split)
    return {"first_paint_s": first, "first_frame_s": watch.at or first, "first_frame_cpu_s": watch.cpu,
            "moves_cpu_s": cpu, "moves_sent_cpu_s": sent, "moves_sent_split_ms": split,
            "rss_mb": psutil.Process().memory_info().rss / 1e6}


async def _line_api() -> dict:
    """The least a cursor can cost: one Line-API widget over 100k lines whose j repaints the
    two lines that change (G scrolls), with the same keys as ``_press_moves`` / ``_send_moves``.
    Set beside the empty app, it shows how much of the target Textual itself uses up."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.geometry import Region, Size
    from textual.scroll_view import ScrollView
    from textual.strip import Strip

    lines = 100_000

    class Lines(ScrollView, can_focus=True):
        BINDINGS = [Binding("j", "down"), Binding("G", "last"), Binding("g", "first")]
        cursor = 0

        def on_mount(self) -> None:
            self.virtual_size = Size(self.size.width, lines)

        def render_line(self, y: int) -> Strip:
            row = y + round(self.scroll_y)
            style = Style(reverse=True) if row == self.cursor else Style()
            return Strip([Segment(f" line {row}".ljust(self.size.width), style)], self.size.width)

        def action_down(self) -> None:
            self._move(self.cursor + 1)

        def action_last(self) -> None:
            self._move(lines - 1)

        def action_first(self) -> None:
            self._move(0)

        def _move(self, row: int) -> None:
            old, self.cursor = self.cursor, row
            top = round(self.scroll_y)
            if not top <= row < top + self.size.height:
                self.scroll_to(y=max(0, row - self.size.height + 1), animate=False, force=True)
            else:
                width = self.size.width
                self.refresh(Region(0, old - top, width, 1), Region(0, row - top, width, 1))

    class LineApp(App[None]):
        def compose(self) -> ComposeResult:
            yield Lines()

    app = LineApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        return await _both_moves(pilot, app.query_one(Lines))


async def _both_moves(pilot, scroller) -> dict:
    """The keys through Pilot.press, then back to the top (g) and the keys as sent."""
    cpu = await _press_moves(pilot)
    await pilot.press("g")
    split: dict = {}
    sent = await _send_moves(pilot, scroller, split)
    return {"moves_cpu_s": cpu, "moves_sent_cpu_s": sent, "moves_sent_split_ms": split}


async def _datatable() -> dict:
    """Textual's own DataTable (1,000 rows x 8 columns: it would take seconds to fill with 100k)
    moving its cursor with the same keys (j bound to cursor down, G to the last row): what the
    framework's built-in table costs a key, beside the empty app and the Line-API floor."""
    from textual.app import App, ComposeResult
    from textual.binding import Binding
    from textual.widgets import DataTable

    class Table(DataTable):
        BINDINGS = [Binding("j", "cursor_down"), Binding("G", "scroll_bottom"), Binding("g", "scroll_top")]

    class TableApp(App[None]):
        def compose(self) -> ComposeResult:
            yield Table()

        def on_mount(self) -> None:
            table = self.query_one(Table)
            table.add_columns(*(f"column {c}" for c in range(8)))
            table.add_rows([[f"row {r} cell {c}" for c in range(8)] for r in range(1000)])
            table.focus()

    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.query_one(Table)
        out = await _both_moves(pilot, table)
        if table.cursor_row != 999:  # both rounds end with G
            raise RuntimeError(f"the DataTable's cursor ended on row {table.cursor_row}, not the last")
    return out


async def _evaltui(db: str, experiment: str, big_root: str) -> dict:
    from evaltui.tui.app import EvalTUI
    from evaltui.tui.widgets.experiment_table import ExperimentTable
    from evaltui.tui.widgets.trace_pane import TracePane

    config = Path(tempfile.mkdtemp()) / "config.toml"
    app = EvalTUI(db, experiment=experiment, config_path=config)
    out: dict = {}
    painted_rows = [False]
    render_line = ExperimentTable.render_line

    def _render_line(self, y: int):
        if y >= 2 and self.row_count > 0:  # a body line (below the two header lines)
            painted_rows[0] = True
        return render_line(self, y)

    ExperimentTable.render_line = _render_line
    watch = _FrameWatch(app, lambda: painted_rows[0])
    async with app.run_test(size=SIZE) as pilot:
        while True:
            tables = app.screen.query(ExperimentTable)
            if tables and tables.first().row_count > 0:
                break
            await asyncio.sleep(0.005)
        await pilot.pause()  # let the first page paint
        out["first_paint_s"] = _since_start()
        while watch.at is None:
            await asyncio.sleep(0.005)
        out["first_frame_s"] = watch.at
        out["first_frame_cpu_s"] = watch.cpu
        out["polars_at_first_frame"] = watch.polars
        screen = app.screen
        while not screen.complete.get("traces"):
            await asyncio.sleep(0.005)
        await pilot.pause()
        out["all_rows_s"] = _since_start()
        out["rows"] = tables.first().row_count
        out["moves_cpu_s"] = await _press_moves(pilot)
        await pilot.press("g")
        out["moves_sent_split_ms"] = {}
        out["moves_sent_cpu_s"] = await _send_moves(pilot, tables.first(), out["moves_sent_split_ms"])
        pane = screen.query_one(TracePane)
        await pilot.pause()
        shown = _KeyToFrame(app).expect(lambda: pane.trace is not None and pane.trace.root_span_id == big_root)
        handled = _time_calls(type(screen), "on_experiment_screen_trace_loaded")
        t0, c0 = time.perf_counter(), time.process_time()
        screen.open_trace(big_root)
        await asyncio.wait_for(shown.wait(), 60)
        t1 = time.perf_counter()
        out["open_trace_frame_ms"] = (t1 - t0) * 1000  # the first frame showing the tree
        if handled:  # where it went: loading (worker), showing it (event loop), layout and paint
            a, b = handled[0]
            out["open_trace_split_ms"] = {"load": (a - t0) * 1000, "show": (b - a) * 1000, "paint": (t1 - b) * 1000}
        await pilot.pause()
        out["open_trace_ms"] = (time.perf_counter() - t0) * 1000
        out["open_trace_cpu_ms"] = (time.process_time() - c0) * 1000  # all threads (the loading worker too)
        out["trace_spans"] = len(pane.trace.spans)
        out["rss_mb"] = psutil.Process().memory_info().rss / 1e6  # before the Analyze screen adds its share
        out.update(await _analyze(app, pilot, screen))
    return out


async def _analyze(app, pilot, screen) -> dict:
    """The Analyze screen (issue 8): A to findings painted, the longest event-loop stall meanwhile,
    and the same insights computed directly (the baseline of the ratio)."""
    from evaltui.query.insights import analyze

    stall, done = 0.0, False

    async def watch() -> None:  # how long the event loop is kept from this task, from A to painted
        nonlocal stall
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            stall, last = max(stall, now - last - 0.005), now

    watcher = asyncio.create_task(watch())
    t0 = time.perf_counter()
    await pilot.press("A")
    while getattr(app.screen, "result", None) is None:
        await asyncio.sleep(0.005)
    await pilot.pause()
    screen_ms = (time.perf_counter() - t0) * 1000
    done = True
    await watcher
    t0 = time.perf_counter()
    analyze(app.store, screen.experiment["id"], max_ids=None)
    return {"analyze_screen_ms": screen_ms, "analyze_stall_ms": stall * 1000,
            "analyze_call_ms": (time.perf_counter() - t0) * 1000}


def _time_calls(cls, name: str) -> list[tuple[float, float]]:
    """(start, end) of each later call of ``cls.name`` (the bench process's class, patched)."""
    calls: list[tuple[float, float]] = []
    method = getattr(cls, name)

    def timed(self, *args, **kwargs):
        a = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            calls.append((a, time.perf_counter()))

    setattr(cls, name, timed)
    return calls


async def _until(check, limit: float = 60.0) -> None:
    """Wait (yielding to the app) until ``check()`` is true."""
    end = time.perf_counter() + limit
    while not check():
        if time.perf_counter() > end:
            raise TimeoutError("the table did not change")
        await asyncio.sleep(0.0005)


class _KeyToFrame:
    """Times a key as a terminal user sees it: from the key event reaching the app (as the
    terminal driver posts it) to the first frame written after ``done()`` holds.

    No Pilot in the timed span: ``Pilot.press`` and ``pause`` sleep at least 20 ms each
    waiting for the process to look idle and visit every widget of the screen, which made
    a cursor move look like 108 ms when its work took 11. The frame is the compositor's
    update handed to the (headless) driver, so only turning it into escape codes and the
    terminal's own drawing are left out.
    """

    def __init__(self, app) -> None:
        self.app = app
        self._watch: tuple | None = None  # (done, event, results)
        display = app._display

        def _display(screen, update) -> None:
            display(screen, update)
            watch = self._watch
            if watch is not None and update is not None and watch[0]():
                watch[2].extend([time.perf_counter(), time.process_time()])
                self._watch = None
                watch[1].set()

        app._display = _display

    def expect(self, done) -> asyncio.Event:
        """An event set when the first frame written after ``done()`` holds reaches the terminal."""
        event = asyncio.Event()
        self._watch = (done, event, [])
        return event

    async def press(self, key: str, done, limit: float = 60.0) -> tuple[float, float]:
        """Wall and CPU (all threads) milliseconds from ``key`` to the frame showing ``done()``."""
        import unicodedata

        from textual import events
        from textual.keys import _get_unicode_name_from_key

        try:
            char: str | None = unicodedata.lookup(_get_unicode_name_from_key(key))
        except KeyError:
            char = key if len(key) == 1 else None
        event, results = asyncio.Event(), []
        self._watch = (done, event, results)
        t0, c0 = time.perf_counter(), time.process_time()
        self.app.post_message(events.Key(key, char))
        await asyncio.wait_for(event.wait(), limit)
        return (results[0] - t0) * 1000, (results[1] - c0) * 1000


async def _arrange(db: str, experiment: str) -> dict:
    """Key press to repainted table for filter, sort, group and search (issue 4), and for one
    cursor move (the baseline: the least a key press to repaint costs). See ``_KeyToFrame``."""
    from evaltui.tui.app import EvalTUI
    from evaltui.tui.screens.views import GroupScreen
    from evaltui.tui.widgets.experiment_table import ExperimentTable
    from evaltui.tui.widgets.filter_bar import FilterBar
    from evaltui.tui.widgets.search_bar import SearchBar

    config = Path(tempfile.mkdtemp()) / "config.toml"
    app = EvalTUI(db, experiment=experiment, config_path=config)
    out: dict = {}
    frames = _KeyToFrame(app)
    async with app.run_test(size=SIZE) as pilot:
        while not (app.screen.query(ExperimentTable) and app.screen.complete.get("traces")):
            await asyncio.sleep(0.005)
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(ExperimentTable)
        out["rows"] = table.row_count

        async def timed(name: str, key: str, done) -> None:
            await pilot.pause()  # settled before the key (the harness's waits are not timed)
            out[f"{name}_ms"], out[f"{name}_cpu_ms"] = await frames.press(key, done)
            await pilot.pause()

        await timed("move", "j", lambda: table.cursor_row == 1)
        # the synthetic experiment's own first score (the review bench adds exact_match to a kept store)
        scores = [c for c in table.frame.columns if c.startswith("scores.")]
        score = "scores.score0" if "scores.score0" in scores else scores[0]
        # filter
        await pilot.press("slash")
        text = f"{score} < 0.5 and metadata.category = 'billing'"
        screen.query_one(FilterBar).input.value = text
        await timed("filter", "enter", lambda: screen.filter_text == text)
        out["filtered_rows"] = table.row_count
        if screen.query_one(FilterBar).display:
            await pilot.press("escape")  # (a version whose enter keeps the bar open: leave it first)
        await pilot.press("escape")  # enter closed the bar; esc on the table clears the filter
        await _until(lambda: screen.filter_text is None and table.row_count == out["rows"])
        # sort, descending by the score
        table.move_cursor(column=[c.key for c in table.visible_columns].index(score))
        before = table.frame
        await timed("sort", "right_square_bracket", lambda: table.frame is not before)
        screen.set_sort([])
        await _until(lambda: not screen.filtered)
        # group by category
        await pilot.press("b")
        await _until(lambda: isinstance(app.screen, GroupScreen))
        await pilot.pause()
        app.screen.query_one("#group-list").highlighted = app.screen.paths.index("metadata.category")
        await timed("group", "enter", lambda: bool(table.groups))
        screen.set_group(None)
        await _until(lambda: not table.groups)
        # search, typed: the screen searches while the text is typed (a person takes a second or
        # more for these 12 keys), so enter shows what is ready
        text = "damaged item"
        title = screen.query_one("#exp-title")
        await pilot.press("ctrl+f")
        screen.query_one(SearchBar).input.value = text
        await _until(lambda: screen._search_index is not None and screen._search_index.known(text) is not None)
        await timed("search", "enter", lambda: f"search: {text} (" in str(title.render()))
        out["search_hits"] = len(screen.search_hits)
        # search, pasted and entered at once: nothing searched ahead, enter runs the whole search
        await pilot.press("escape")
        await _until(lambda: screen.search_text is None)
        await pilot.press("ctrl+f")
        screen._search_index = None
        screen.query_one(SearchBar).input.value = text
        await timed("search_cold", "enter", lambda: f"search: {text} (" in str(title.render()))
    return out


async def _to_repaint(app, node, action: str, ready=None) -> float:
    """Milliseconds from running ``action`` (what its key runs) on ``node`` until ``ready()``
    holds and the screen has refreshed after it (a callback after the next refresh)."""
    t0 = time.perf_counter()
    await node.run_action(action)
    while ready is not None and not ready():
        await asyncio.sleep(0.001)
    painted = asyncio.Event()
    app.screen.call_after_refresh(painted.set)
    await painted.wait()
    return (time.perf_counter() - t0) * 1000


async def _compare(db: str, experiment: str, base: str) -> dict:
    """Issue 5: compare in the TUI, toggle diff mode, switch layouts, each key to repaint;
    a cursor move (j) and a plain screen's push / pop are the baselines."""
    import statistics

    from textual.screen import Screen
    from textual.widgets import Footer, Static

    from evaltui.tui.app import EvalTUI
    from evaltui.tui.screens.compare_layouts import (
        LAYOUTS,
        CardsLayout,
        DetailsLayout,
        GridLayout,
        TableLayout,
    )
    from evaltui.tui.widgets.diff_view import DiffPanel
    from evaltui.tui.widgets.experiment_table import ExperimentTable

    config = Path(tempfile.mkdtemp()) / "config.toml"
    app = EvalTUI(db, experiment=experiment, config_path=config)
    out: dict = {}
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        while not getattr(screen, "complete", {}).get("traces"):
            await asyncio.sleep(0.005)
            screen = app.screen
        await pilot.pause()
        t0 = time.perf_counter()
        screen.run_comparison([base])
        while screen.comparison is None:
            await asyncio.sleep(0.002)
        await pilot.pause()
        out["compare_ms"] = (time.perf_counter() - t0) * 1000
        out["rows"] = screen.comparison.rows.height
        table = screen.query_one(ExperimentTable)
        out["move_ms"] = statistics.median([await _to_repaint(app, table, "cursor_down") for _ in range(7)])
        rows_on, rows_off = [], []
        for _ in range(3):  # the table's sub-rows alone: d to the repaint that shows them
            rows_on.append(await _to_repaint(app, screen, "diff_mode", lambda: bool(table.sub_rows)))
            rows_off.append(await _to_repaint(app, screen, "diff_mode", lambda: not table.sub_rows))
            await app.workers.wait_for_complete()
            await pilot.pause()
        out["diff_rows_on_ms"], out["diff_rows_off_ms"] = statistics.median(rows_on), statistics.median(rows_off)
        out["sub_rows"] = len(screen.comparison.bases)
        # order by regressions (O) in a table grouped by category: key to the regrouped repaint
        t0 = time.perf_counter()
        screen.set_group("metadata.category")
        while not table.groups:
            await asyncio.sleep(0.002)
        painted = asyncio.Event()
        app.screen.call_after_refresh(painted.set)
        await painted.wait()
        out["group_ms"] = (time.perf_counter() - t0) * 1000  # the baseline: grouping the compared rows
        await pilot.pause()
        out["order_ms"] = await _to_repaint(app, screen, "order_regressions",
                                            lambda: bool(table.groups) and bool(table.groups[0].note))
        out["groups"] = len(table.groups)
        screen.set_group(None)
        while table.groups:
            await asyncio.sleep(0.002)
        await pilot.pause()
        on, off = [], []
        for _ in range(3):
            def diff_ready() -> bool:
                panels = screen.query(DiffPanel)
                return bool(panels) and panels.first()._ops is not None
            on.append(await _to_repaint(app, screen, "diff_mode", diff_ready))
            off.append(await _to_repaint(app, screen, "diff_mode"))
            screen.query_one(DiffPanel)._ops = None
            await pilot.pause()
        out["diff_on_ms"], out["diff_off_ms"] = statistics.median(on), statistics.median(off)

        class Plain(Screen[None]):
            def compose(self):
                yield Static("plain")
                yield Footer()

        push, pop = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            await app.push_screen(Plain())
            painted = asyncio.Event()
            app.screen.call_after_refresh(painted.set)
            await painted.wait()
            push.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            await app.pop_screen()
            painted = asyncio.Event()
            app.screen.call_after_refresh(painted.set)
            await painted.wait()
            pop.append((time.perf_counter() - t0) * 1000)
            await pilot.pause()
        out["plain_push_ms"], out["plain_pop_ms"] = statistics.median(push), statistics.median(pop)
        classes = {"grid": GridLayout, "cards": CardsLayout, "table": TableLayout, "details": DetailsLayout}
        for name in (*LAYOUTS, "list"):
            node = screen if name == LAYOUTS[0] else app.screen
            action = "layout" if name == LAYOUTS[0] else "next_layout"
            want = classes.get(name)
            ready = (lambda w=want: isinstance(app.screen, w)) if want else (lambda: app.screen is screen)
            out[f"layout_{name}_ms"] = await _to_repaint(app, node, action, ready)
            t0 = time.perf_counter()
            await app.workers.wait_for_complete()
            await pilot.pause()
            out[f"layout_{name}_loaded_ms"] = out[f"layout_{name}_ms"] + (time.perf_counter() - t0) * 1000
    return out


def main(argv: list[str]) -> int:
    mode = argv[0]
    if mode == "arrange":
        print(json.dumps(asyncio.run(_arrange(argv[1], argv[2]))))
        return 0
    if mode == "compare":
        result = asyncio.run(_compare(argv[1], argv[2], argv[3]))
        print(json.dumps(result))
        return 0
    if mode == "datatable":
        print(json.dumps(asyncio.run(_datatable())))
        return 0
    if mode == "lineapi":
        print(json.dumps(asyncio.run(_line_api())))
        return 0
    result = asyncio.run(_empty() if mode == "empty" else _evaltui(argv[1], argv[2], argv[3]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
