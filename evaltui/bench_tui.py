"""TUI timings for ``evaltui bench``, each measured in a fresh process (issue 3).

Run as ``python -m evaltui.bench_tui MODE DB EXPERIMENT ROOT`` by evaltui.bench; prints one
JSON object. MODE ``empty`` measures an empty Textual app the same way, as the baseline.
Times are from the process's creation (interpreter start and imports included) to the
moment the first rows are painted, headless, at 160x48.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import psutil

MOVES = 50
SIZE = (160, 48)


def _since_start() -> float:
    return time.time() - psutil.Process().create_time()


async def _press_moves(pilot) -> float:
    """CPU seconds for 50 cursor moves down and a jump to the last row."""
    await pilot.pause()
    c0 = time.process_time()
    for _ in range(MOVES):
        await pilot.press("j")
    await pilot.press("G")
    await pilot.pause()
    return time.process_time() - c0


async def _empty() -> dict:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Empty(App[None]):
        def compose(self) -> ComposeResult:
            yield Static("empty")

    app = Empty()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = _since_start()
        cpu = await _press_moves(pilot)
    return {"first_paint_s": first, "moves_cpu_s": cpu, "rss_mb": psutil.Process().memory_info().rss / 1e6}


async def _evaltui(db: str, experiment: str, big_root: str) -> dict:
    from evaltui.tui.app import EvalTUI
    from evaltui.tui.widgets.experiment_table import ExperimentTable
    from evaltui.tui.widgets.trace_pane import TracePane

    config = Path(tempfile.mkdtemp()) / "config.toml"
    app = EvalTUI(db, experiment=experiment, config_path=config)
    out: dict = {}
    async with app.run_test(size=SIZE) as pilot:
        while True:
            tables = app.screen.query(ExperimentTable)
            if tables and tables.first().row_count > 0:
                break
            await asyncio.sleep(0.005)
        await pilot.pause()  # let the first page paint
        out["first_paint_s"] = _since_start()
        screen = app.screen
        while not screen.complete.get("traces"):
            await asyncio.sleep(0.005)
        await pilot.pause()
        out["all_rows_s"] = _since_start()
        out["rows"] = tables.first().row_count
        out["moves_cpu_s"] = await _press_moves(pilot)
        pane = screen.query_one(TracePane)
        t0 = time.perf_counter()
        screen.open_trace(big_root)
        while pane.trace is None or pane.trace.root_span_id != big_root:
            await asyncio.sleep(0.002)
        await pilot.pause()
        out["open_trace_ms"] = (time.perf_counter() - t0) * 1000
        out["trace_spans"] = len(pane.trace.spans)
    out["rss_mb"] = psutil.Process().memory_info().rss / 1e6
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
    if mode == "compare":
        result = asyncio.run(_compare(argv[1], argv[2], argv[3]))
        print(json.dumps(result))
        return 0
    result = asyncio.run(_empty() if mode == "empty" else _evaltui(argv[1], argv[2], argv[3]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
