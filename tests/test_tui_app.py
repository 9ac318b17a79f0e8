"""The TUI driven with Pilot on a small fixed store: every key in help, literal LLM text,
persisted settings, and SVG snapshots of each screen."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from evaltui.config import load_config
from evaltui.store import Store, create_experiment, find_experiment, write_spans
from evaltui.tui.app import EvalTUI
from evaltui.tui.screens.columns import ColumnList, ColumnsScreen
from evaltui.tui.screens.experiment import ExperimentScreen
from evaltui.tui.screens.experiment_list import ExperimentList, ExperimentListScreen
from evaltui.tui.screens.help import HelpScreen
from evaltui.tui.widgets.experiment_table import ExperimentTable
from evaltui.tui.widgets.thread_view import ThreadView
from evaltui.tui.widgets.timeline import Timeline
from evaltui.tui.widgets.trace_pane import TracePane
from evaltui.tui.widgets.trace_tree import TraceTree

HOSTILE = "[bold red]URGENT[/] \x1b[2J\x1b[31mreset\x1b[0m\r\x00"
HUGE = 600_000
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: fixed, so snapshots never change


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


QUESTIONS = [
    ("Where is my order #1234?", "Your order #1234 ships tomorrow from our Berlin warehouse.",
     "It ships tomorrow.", "shipping"),
    ("How do I reset my password?", "Open Settings → Security → Reset password and follow the email link.",
     "Settings, Security, Reset password.", "account"),
    ("Can I get a refund after 30 days?", HOSTILE, "Refunds are possible within 30 days only.", "billing"),
    ("Why does the app crash on start?", None, "Update to version 2.3.1.", "technical"),
    ("Do you ship to Canada?", "Yes, 5-7 business days.", "Yes, 5-7 business days.", "shipping"),
]


def _trace(exp: str, i: int, t: float, q: str, answer: str | None, expected: str, category: str,
           fact: float | None) -> list[dict[str, Any]]:
    """One eval trace: eval > task > (llm, tool, llm), and two scorers."""
    root = f"{exp}-t{i}"
    error = {"message": "RuntimeError: model timed out"} if answer is None else None
    call = {"id": "call_1", "type": "function",
            "function": {"name": "lookup_kb", "arguments": json.dumps({"query": category})}}
    messages = [{"role": "system", "content": "You are a helpful support agent for Acme."},
                {"role": "user", "content": q}]

    def span(sid: str, parent: str | None, name: str, kind: str, start: float, end: float,
             **fields: Any) -> dict[str, Any]:
        rec = {"id": f"{root}-{sid}" if sid else f"{root}-root", "experiment_id": exp,
               "span_id": f"{root}-{sid}" if sid else root, "root_span_id": root,
               "span_attributes": {"name": name, "type": kind},
               "created": _iso(t + start), **fields}
        rec.setdefault("metrics", {}).update({"start": t + start, "end": t + end})
        if parent is not None:
            rec["span_parents"] = [parent]
        return rec

    return [
        span("", None, "eval", "eval", 0, 2.5 + i * 0.1, input=q, output=answer, expected=expected, error=error,
             metadata={"category": category, "turn": i}, tags=["triage"] if i % 2 == 0 else None),
        span("task", root, "answer", "task", 0.05, 2.0 + i * 0.1, input=q, output=answer, error=error),
        span("llm1", f"{root}-task", "chat", "llm", 0.1, 0.8, input=messages,
             output={"role": "assistant", "content": None, "tool_calls": [call]}, metadata={"model": "gpt-4o"},
             metrics={"prompt_tokens": 120 + i, "completion_tokens": 18, "tokens": 138 + i,
                      "estimated_cost": 0.00021 + i * 0.00001, "time_to_first_token": 0.21}),
        span("tool", f"{root}-task", "lookup_kb", "tool", 0.85, 1.0, input={"query": category},
             output=f"KB article about {category}."),
        span("llm2", f"{root}-task", "chat", "llm", 1.05, 1.9 + i * 0.1,
             input=[*messages, {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "call_1", "content": f"KB article about {category}."}],
             output=answer, error=error,
             metrics={"prompt_tokens": 300 + i, "completion_tokens": 40, "tokens": 340 + i,
                      "estimated_cost": 0.0006}),
        span("score", root, "Factuality", "score", 2.05, 2.3, input={"output": answer, "expected": expected},
             output={"score": fact}, scores={"Factuality": fact},
             metadata={"explanation": f"The answer {'matches' if fact and fact > 0.5 else 'misses'} the facts."}),
        span("score2", root, "ExactMatch", "score", 2.3, 2.35,
             scores={"ExactMatch": 1.0 if answer == expected else 0.0}),
    ]


def build_store(path: Path) -> Store:
    """Projects support-bot (baseline, new-prompt: 5 traces each) and lab (huge: one 600 KB output)."""
    store = Store(path)
    base = create_experiment(store, "support-bot", "baseline", created=_iso(T0 - 86_400),
                             metadata={"model": "gpt-4o-mini"}, experiment_id="exp-baseline")
    new = create_experiment(store, "support-bot", "new-prompt", created=_iso(T0), metadata={"model": "gpt-4o"},
                            base_exp_id=base, experiment_id="exp-new")
    for exp, offset in ((base, -86_400.0), (new, 0.0)):
        records: list[dict[str, Any]] = []
        for i, (q, answer, expected, category) in enumerate(QUESTIONS):
            fact = None if answer is None else (0.9 if i % 2 == 0 else 0.4) - (0.1 if exp == base else 0.0)
            records += _trace(exp, i, T0 + offset + i * 10, q, answer, expected, category, fact)
        write_spans(store, records)
    huge = create_experiment(store, "lab", "huge", created=_iso(T0 - 3600), experiment_id="exp-huge")
    write_spans(store, [{
        "id": "huge-root", "experiment_id": huge, "span_id": "huge", "root_span_id": "huge",
        "span_attributes": {"name": "long answer", "type": "eval"},
        "input": {"question": "Write a very long essay", "options": {"length": "max"}},
        "output": ("All work and no play makes Jack a dull boy. " * (HUGE // 44 + 1))[:HUGE],
        "scores": {"Length": 1.0}, "metrics": {"start": T0 - 3600, "end": T0 - 3500},
        "created": _iso(T0 - 3600),
    }])
    return store


# -- harness ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config file (never the user's), OSC 52 so no tool is needed."""
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "fixture.db"
    build_store(path).close()
    return path


class Clip:
    """Captures what the app copies (OSC 52 path)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    @property
    def last(self) -> str:
        assert self.items, "nothing was copied"
        return self.items[-1]


def make_app(db: Path, experiment: str | None = None) -> tuple[EvalTUI, Clip]:
    app = EvalTUI(db, experiment)
    clip = Clip()
    app.copy_to_clipboard = clip.items.append  # type: ignore[method-assign]
    return app, clip


async def settle(pilot: Any) -> None:
    """Let messages run and workers finish (loads are threads posting back)."""
    for _ in range(3):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(app: EvalTUI) -> str:
    """What the terminal shows, as plain text (styles dropped, characters kept as painted)."""
    w, h = app.size
    console = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, color_system=None,
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def notes(app: EvalTUI) -> list[str]:
    return [n.message for n in app._notifications]


def table(app: EvalTUI) -> ExperimentTable:
    return app.screen.query_one(ExperimentTable)


def keys_of(app: EvalTUI, binding_id: str) -> list[str]:
    """The keys bound to ``binding_id`` now (keymap applied), from the live chain."""
    out: list[str] = []
    for _node, bindings in app.screen._modal_binding_chain:
        for key, b in bindings:
            if b.id == binding_id and key not in out:
                out.append(key)
    return out


# -- contexts: where a binding lives ------------------------------------------------------

CONTEXT_SIZE = {"help": (80, 24), "pane-thread": (80, 16)}  # small enough to scroll


async def enter_context(pilot: Any, context: str) -> None:
    await settle(pilot)
    if context == "list":
        return
    if context in ("pane-tree", "pane-timeline", "pane-thread"):
        await pilot.press("j", "j", "enter")  # the hostile trace
        await settle(pilot)
        if context == "pane-timeline":
            await pilot.press("2")
        elif context == "pane-thread":
            await pilot.press("3")
        await settle(pilot)
    elif context == "columns":
        await pilot.press("C")
        await settle(pilot)
    elif context == "help":
        await pilot.press("question_mark")
        await settle(pilot)
    elif context in VIEW_CONTEXTS:
        await enter_view_context(pilot, context)


def start_ref(context: str) -> str | None:
    return None if context == "list" else "support-bot/new-prompt"


@contextlib.asynccontextmanager
async def running(db: Path, context: str = "list"):
    app, clip = make_app(db, start_ref(context))
    async with app.run_test(size=CONTEXT_SIZE.get(context, (160, 48))) as pilot:
        await enter_context(pilot, context)
        yield app, pilot, clip


# -- drivers: one per binding id; each presses ``key`` and checks what changed -------------

Driver = Callable[[EvalTUI, Any, Clip, str], Awaitable[None]]
DRIVERS: dict[str, Driver] = {}


def driver(*ids: str) -> Callable[[Driver], Driver]:
    def register(fn: Driver) -> Driver:
        for i in ids:
            DRIVERS[i] = fn
        return fn

    return register


def _exit_recorder(app: EvalTUI) -> list[object]:
    calls: list[object] = []
    app.exit = lambda *a, **k: calls.append(a)  # type: ignore[method-assign]
    return calls


@driver("list.quit", "app.quit")
async def _quit(app, pilot, clip, key):
    calls = _exit_recorder(app)
    await pilot.press(key)
    await pilot.pause()
    assert calls, "the app did not exit"


@driver("app.help")
async def _help(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, HelpScreen)
    assert "Keys" in screen_text(app)
    await pilot.press(key)  # the same key closes it
    await settle(pilot)
    assert not isinstance(app.screen, HelpScreen)


def _list(app: EvalTUI) -> ExperimentList:
    return app.screen.query_one(ExperimentList)


@driver("list.cursor-down", "list.cursor-last", "list.cursor-page-down")
async def _list_down(app, pilot, clip, key):
    lst = _list(app)
    lst.move_cursor(row=0)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert lst.cursor_row == (1 if key in ("j", "down") else lst.row_count - 1)


@driver("list.cursor-up", "list.cursor-first", "list.cursor-page-up")
async def _list_up(app, pilot, clip, key):
    lst = _list(app)
    lst.move_cursor(row=lst.row_count - 1)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert lst.cursor_row == (lst.row_count - 2 if key in ("k", "up") else 0)


@driver("list.open")
async def _list_open(app, pilot, clip, key):
    _list(app).move_cursor(row=1)  # support-bot/new-prompt (lab comes first)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)
    assert "5 of 5 rows · support-bot/new-prompt" in screen_text(app)


@driver("list.reload")
async def _list_reload(app, pilot, clip, key):
    import evaltui.tui.screens.experiment_list as module

    calls = []
    real = module.load_experiments
    pilot_patch = pytest.MonkeyPatch()
    pilot_patch.setattr(module, "load_experiments", lambda store: calls.append(1) or real(store))
    try:
        await pilot.press(key)
        await settle(pilot)
    finally:
        pilot_patch.undo()
    assert calls == [1]
    assert _list(app).row_count == 3


@driver("table.cursor-down", "table.cursor-up", "table.first-row", "table.last-row", "table.page-down",
        "table.page-up")
async def _table_rows(app, pilot, clip, key):
    t = table(app)
    start = 2
    t.move_cursor(row=start)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    expected = {"j": 3, "down": 3, "k": 1, "up": 1, "g": 0, "home": 0, "G": 4, "end": 4,
                "ctrl+d": 4, "pagedown": 4, "ctrl+u": 0, "pageup": 0}[key]
    assert t.cursor_row == expected


@driver("table.cursor-left", "table.cursor-right")
async def _table_columns(app, pilot, clip, key):
    t = table(app)
    t.move_cursor(column=2)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert t.cursor_column == (1 if key in ("h", "left") else 3)


@driver("table.select-row")
async def _table_open(app, pilot, clip, key):
    table(app).move_cursor(row=2)
    await pilot.press(key)
    await settle(pilot)
    screen = app.screen
    assert screen.pane_open and screen.has_class("-pane-side")
    assert "Can I get a refund after 30 days?" in screen_text(app)


@driver("experiment.back")
async def _back(app, pilot, clip, key):
    screen = app.screen
    was_open = screen.pane_open
    await pilot.press(key)
    await settle(pilot)
    if was_open:
        assert app.screen is screen and not screen.pane_open
        assert not screen.query_one(TracePane).display or not screen.has_class("-pane-side")
        assert app.focused is table(app)
    else:
        assert isinstance(app.screen, ExperimentListScreen)


@driver("experiment.focus-next", "experiment.focus-previous")
async def _focus(app, pilot, clip, key):
    before = app.focused
    await pilot.press(key)
    await pilot.pause()
    if len(app.screen.focus_chain) > 1:
        assert app.focused is not before
    else:
        assert app.focused is before  # nothing else to go to


@driver("experiment.toggle-rows")
async def _toggle_rows(app, pilot, clip, key):
    screen = app.screen
    t = table(app)
    t.move_cursor(row=2)
    await pilot.pause()
    await pilot.press(key)
    await settle(pilot)
    assert screen.row_type == "spans"
    assert "35 of 35 span rows" in screen_text(app)
    row = t.current_row()
    assert row["root_span_id"] == "exp-new-t2" and row["span_id"] == "exp-new-t2"
    await pilot.press(key)
    await settle(pilot)
    assert screen.row_type == "traces" and t.current_row()["root_span_id"] == "exp-new-t2"


@driver("experiment.copy-cell")
async def _copy_cell(app, pilot, clip, key):
    t = table(app)
    t.move_cursor(row=2, column=[c.key for c in t.visible_columns].index("output"))
    await pilot.pause()
    await pilot.press(key)
    await settle(pilot)
    assert clip.last == HOSTILE
    assert any(n.startswith("Copied Output of row 3") and "OSC 52" in n for n in notes(app))


@driver("experiment.copy-row")
async def _copy_row(app, pilot, clip, key):
    table(app).move_cursor(row=2)
    await pilot.pause()
    await pilot.press(key)
    await settle(pilot)
    row = json.loads(clip.last)
    assert row["output"] == HOSTILE and row["root_span_id"] == "exp-new-t2"
    assert row["metadata"] == {"category": "billing", "turn": 2}


@driver("experiment.export")
async def _export(app, pilot, clip, key):
    from evaltui.tui.screens.export import ExportScreen

    shown = table(app).frame["root_span_id"].to_list()
    visible = [c.key for c in table(app).visible_columns]
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ExportScreen)
    assert f"Export {len(shown)} trace rows" in screen_text(app) or f"Export {len(shown)} span rows" in screen_text(app)
    out = Path(app.store.path).parent / f"view-{key}.jsonl"
    app.screen.query_one("#export-path").value = str(out)
    await pilot.press("enter")
    await settle(pilot)
    assert not isinstance(app.screen, ExportScreen)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(shown) and any("exported" in n and str(out) in n for n in notes(app))
    assert "input" in rows[0] and ("scores" in rows[0]) == any(k.startswith("scores.") for k in visible)


@driver("experiment.dataset")
async def _dataset(app, pilot, clip, key):
    from evaltui.store.datasets import find_dataset, load_dataset_records
    from evaltui.tui.screens.export import DatasetScreen

    traces = len(set(table(app).frame["root_span_id"].to_list()))
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, DatasetScreen)
    name = f"from-rows-{len(app._notifications)}"
    app.screen.query_one("#dataset-name").value = name
    await pilot.press("enter")
    await settle(pilot)
    assert not isinstance(app.screen, DatasetScreen)
    ds = find_dataset(app.store, name)
    assert len(load_dataset_records(app.store, ds["id"])) == traces
    assert any(f"created dataset support-bot/{name}: {traces} records" in n for n in notes(app))


@driver("experiment.columns")
async def _columns(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ColumnsScreen)
    assert "space show/hide" in screen_text(app)


@driver("experiment.filter")
async def _filter(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    bar = app.screen.query_one("FilterBar")
    assert bar.display
    await pilot.press(*"error is null", "enter")
    await settle(pilot)
    await app.workers.wait_for_complete()
    await settle(pilot)
    assert "filter: error is null" in screen_text(app)


@driver("experiment.density")
async def _density(app, pilot, clip, key):
    t = table(app)
    before = t.density
    await pilot.press(key)
    await pilot.pause()
    assert t.density != before
    assert load_config().config.density == t.density


@driver("experiment.view-tree", "experiment.view-timeline", "experiment.view-thread")
async def _views(app, pilot, clip, key):
    pane = app.screen.query_one(TracePane)
    view = {"1": "tree", "2": "timeline", "3": "thread"}[key]
    if pane.view == view:
        pane.view = "timeline" if view != "timeline" else "tree"
        await pilot.pause()
    await pilot.press(key)
    await settle(pilot)
    assert pane.view == view
    widget = {"tree": TraceTree, "timeline": Timeline, "thread": ThreadView}[view]
    assert app.focused is pane.query_one(widget)
    assert f"{key} {view}" in screen_text(app)


@driver("experiment.full-screen")
async def _full(app, pilot, clip, key):
    screen = app.screen
    await pilot.press(key)
    await pilot.pause()
    assert screen.has_class("-pane-full") and not table(app).display or not table(app).region.width
    assert "5 of 5 rows" not in screen_text(app)
    await pilot.press(key)
    await pilot.pause()
    assert not screen.has_class("-pane-full")


@driver("pane.copy-field")
async def _pane_copy_field(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    assert clip.last == HOSTILE  # the output of the selected span (the root)
    assert any("output of span eval" in n for n in notes(app))


@driver("pane.copy-span")
async def _pane_copy_span(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    rec = json.loads(clip.last)
    assert rec["span_id"] == "exp-new-t2" and rec["output"] == HOSTILE


@driver("pane.edit-field")
async def _pane_edit(app, pilot, clip, key):
    import evaltui.tui.app as app_module

    seen: dict[str, Any] = {}

    def fake_run(cmd, check=False):
        path = Path(cmd[-1])
        seen["cmd"] = cmd
        seen["text"] = path.read_bytes().decode()
        seen["writable"] = bool(path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        seen["path"] = path

    patch = pytest.MonkeyPatch()
    patch.setenv("EDITOR", "true --readonly")
    patch.delenv("VISUAL", raising=False)  # the app reads $VISUAL first
    patch.setattr(app_module.subprocess, "run", fake_run)
    patch.setattr(app, "suspend", contextlib.nullcontext)
    try:
        await pilot.press(key)
        await settle(pilot)
    finally:
        patch.undo()
    assert seen["cmd"][:2] == ["true", "--readonly"]
    assert seen["text"] == HOSTILE and not seen["writable"]
    assert not seen["path"].exists()  # the temporary copy is gone


def _tree(app: EvalTUI) -> TraceTree:
    return app.screen.query_one(TraceTree)


@driver("tree.cursor-down", "tree.cursor-up", "tree.cursor-first", "tree.cursor-last")
async def _tree_cursor(app, pilot, clip, key):
    tree = _tree(app)
    tree.cursor_line = 2
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    expected = {"j": 3, "down": 3, "k": 1, "up": 1, "g": 0, "home": 0, "G": tree.last_line,
                "end": tree.last_line}[key]
    assert tree.cursor_line == expected
    # the detail follows the tree
    node = tree.cursor_node
    assert app.screen.query_one(TracePane).selected.span_id == node.data


@driver("tree.expand", "tree.collapse", "tree.toggle")
async def _tree_fold(app, pilot, clip, key):
    tree = _tree(app)
    tree.cursor_line = 1  # "answer": the task span with three children
    await pilot.pause()
    node = tree.cursor_node
    assert node.children
    if key in ("l", "right"):
        node.collapse()
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert node.is_expanded
    else:
        node.expand()
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert not node.is_expanded


@driver("timeline.cursor-down", "timeline.cursor-up", "timeline.cursor-first", "timeline.cursor-last")
async def _timeline_cursor(app, pilot, clip, key):
    tl = app.screen.query_one(Timeline)
    tl.cursor = 2
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    last = len(tl.spans) - 1
    assert tl.cursor == {"j": 3, "down": 3, "k": 1, "up": 1, "g": 0, "home": 0, "G": last, "end": last}[key]
    assert app.screen.query_one(TracePane).selected is tl.spans[tl.cursor]


@driver("timeline.scale")
async def _timeline_scale(app, pilot, clip, key):
    tl = app.screen.query_one(Timeline)
    seen = []
    for _ in range(3):
        await pilot.press(key)
        await pilot.pause()
        seen.append(tl.scale)
        assert {"duration": "time", "tokens": "tokens", "cost": "cost"}[tl.scale] + " (m: change)" in screen_text(app)
    assert seen == ["tokens", "cost", "duration"]


@driver("thread.scroll-down", "thread.page-down", "thread.bottom")
async def _thread_down(app, pilot, clip, key):
    view = app.screen.query_one(ThreadView)
    assert view.max_scroll_y > 0
    view.scroll_home(animate=False)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert view.scroll_y > 0


@driver("thread.scroll-up", "thread.page-up", "thread.top")
async def _thread_up(app, pilot, clip, key):
    view = app.screen.query_one(ThreadView)
    view.scroll_end(animate=False)
    await pilot.pause()
    before = view.scroll_y
    await pilot.press(key)
    await pilot.pause()
    assert view.scroll_y < before


def _columns_state(app: EvalTUI) -> tuple[ColumnsScreen, ColumnList]:
    screen = app.screen
    assert isinstance(screen, ColumnsScreen)
    return screen, screen.query_one(ColumnList)


@driver("columns.cursor-down", "columns.cursor-up", "columns.cursor-first", "columns.cursor-last")
async def _columns_cursor(app, pilot, clip, key):
    screen, lst = _columns_state(app)
    lst.highlighted = 2
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    last = len(screen.columns) - 1
    assert lst.highlighted == {"j": 3, "down": 3, "k": 1, "up": 1, "g": 0, "home": 0, "G": last, "end": last}[key]


@driver("columns.toggle")
async def _columns_toggle(app, pilot, clip, key):
    _screen, lst = _columns_state(app)
    lst.highlighted = 1  # output
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    t = app.screen_stack[-2].query_one(ExperimentTable)
    assert "output" not in [c.key for c in t.visible_columns]
    assert "output" in load_config().config.column_settings("support-bot", "traces").hidden
    await pilot.press(key)
    await pilot.pause()
    assert "output" in [c.key for c in t.visible_columns]


@driver("columns.pin")
async def _columns_pin(app, pilot, clip, key):
    screen, lst = _columns_state(app)
    lst.highlighted = 1
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert screen.columns[1].pinned
    t = app.screen_stack[-2].query_one(ExperimentTable)
    assert [c.key for c in t.visible_columns][:2] == ["input", "output"]
    assert load_config().config.column_settings("support-bot", "traces").pinned == ["input", "output"]
    assert "pin Output" in screen_text(app)


@driver("columns.move-up", "columns.move-down")
async def _columns_move(app, pilot, clip, key):
    screen, lst = _columns_state(app)
    start = [c.key for c in screen.columns].index("expected")
    lst.highlighted = start
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    up = key in ("K", "shift+up")
    keys = [c.key for c in screen.columns]
    assert keys.index("expected") == start + (-1 if up else 1)
    assert lst.highlighted == keys.index("expected")
    assert load_config().config.column_settings("support-bot", "traces").order[:4] == keys[:4]


@driver("columns.narrower", "columns.wider")
async def _columns_width(app, pilot, clip, key):
    screen, lst = _columns_state(app)
    lst.highlighted = 1
    await pilot.pause()
    before = screen.columns[1].width
    await pilot.press(key)
    await pilot.pause()
    after = screen.columns[1].width
    assert after == before + (2 if key == "greater_than_sign" else -2)
    t = app.screen_stack[-2].query_one(ExperimentTable)
    assert next(c.width for c in t.columns if c.key == "output") == after
    assert load_config().config.column_settings("support-bot", "traces").widths == {"output": after}


@driver("columns.reset")
async def _columns_reset(app, pilot, clip, key):
    screen, lst = _columns_state(app)
    lst.highlighted = 1
    await pilot.press("space", "greater_than_sign")
    await pilot.pause()
    assert load_config().config.columns
    await pilot.press(key)
    await pilot.pause()
    assert [(c.key, c.visible, c.width) for c in screen.columns] == [
        (c.key, c.visible, c.width) for c in screen.defaults
    ]
    assert load_config().config.columns == {}


@driver("columns.close", "columns.done")
async def _columns_close(app, pilot, clip, key):
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(app.screen, ExperimentScreen)


@driver("experiment.analyze")
async def _analyze(app, pilot, clip, key):
    from evaltui.tui.screens.analyze import AnalyzeScreen

    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, AnalyzeScreen)
    assert "Analyze support-bot/new-prompt · 5 traces · vs support-bot/baseline" in screen_text(app)
    await pilot.press("escape")
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)


@driver("help.close")
async def _help_close(app, pilot, clip, key):
    await pilot.press(key)
    await pilot.pause()
    assert isinstance(app.screen, ExperimentScreen)


@driver("help.scroll-down", "help.scroll-up")
async def _help_scroll(app, pilot, clip, key):
    box = app.screen.query_one("#help-box")
    assert box.max_scroll_y > 0
    if key in ("k", "up"):
        box.scroll_end(animate=False)
    await pilot.pause()
    before = box.scroll_y
    await pilot.press(key)
    await pilot.pause()
    assert box.scroll_y != before


# The experiment screen's sort / views / search / group keys (experiment_views.py), in every experiment context.
VIEW_IDS = ["experiment.sort-asc", "experiment.sort-desc", "experiment.views", "experiment.save-view",
            "experiment.search", "experiment.search-next", "experiment.search-previous", "experiment.group"]

# -- review keys (screens/review.py; more in test_tui_review.py) --


def _review_root(app: EvalTUI) -> str:
    screen = app.screen
    return screen._current_root()


def _row(app: EvalTUI, root: str) -> dict[str, Any]:
    frame = app.screen.query_one(ExperimentTable).frame
    return frame.filter(frame["root_span_id"] == root).row(0, named=True)


@driver("experiment.review")
async def _review(app, pilot, clip, key):
    root = _review_root(app)
    before = _row(app, root)["review_status"]
    await pilot.press(key)
    await settle(pilot)
    after = _row(app, root)["review_status"]
    assert {before, after} == {"reviewed", "unreviewed"}
    from evaltui.store.review import trace_history

    assert trace_history(app.store, "exp-new", root)[-1]["after"] == after


@driver("experiment.assign")
async def _assign(app, pilot, clip, key):
    from evaltui.tui.screens.assign import AssignScreen

    root = _review_root(app)
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, AssignScreen)
    await pilot.press(*"zoe", "enter")
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)
    assert _row(app, root)["assignee"] == "zoe"


@driver("experiment.select")
async def _select(app, pilot, clip, key):
    t = table(app)
    t.move_cursor(row=1)
    root = _review_root(app)
    selected = set(t.selected)
    await pilot.press(key)
    await pilot.pause()
    assert t.selected == selected ^ {root}
    assert t.cursor_row == 2  # on to the next row


@driver("experiment.select-all")
async def _select_all(app, pilot, clip, key):
    t = table(app)
    t.set_selected(())
    await pilot.press(key)
    await pilot.pause()
    assert len(t.selected) == t.row_count == 5
    assert "5 selected" in screen_text(app)
    await pilot.press(key)
    await pilot.pause()
    assert not t.selected


@driver("experiment.review-mode")
async def _review_mode(app, pilot, clip, key):
    screen = app.screen
    on = screen.review_mode
    await pilot.press(key)
    await settle(pilot)
    assert screen.review_mode is not on
    assert ("review: 0 of 5 reviewed" in screen_text(app)) is not on
    await pilot.press(key)
    await settle(pilot)
    assert screen.review_mode is on


@driver("experiment.human-score")
async def _human_score(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    # the fixture's project has no human scores: the key says how to define one
    assert "no human scores yet" in " ".join(notes(app))


@driver("experiment.comment")
async def _comment(app, pilot, clip, key):
    from evaltui.store.review import list_comments
    from evaltui.tui.screens.comment import CommentScreen

    root = _review_root(app)
    n = len(list_comments(app.store, "exp-new", root))
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, CommentScreen)
    await pilot.press(*"checked", "enter")
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)
    assert len(list_comments(app.store, "exp-new", root)) == n + 1

async def _compared(app: EvalTUI, pilot: Any) -> ExperimentScreen:
    """The experiment screen compared with the fixture's baseline (as c, enter would)."""
    screen = app.screen
    assert isinstance(screen, ExperimentScreen)
    screen.run_comparison(["exp-baseline"])
    await settle(pilot)
    assert screen.comparison is not None
    return screen


@driver("experiment.compare")
async def _compare(app, pilot, clip, key):
    screen = app.screen
    await pilot.press(key)
    await settle(pilot)
    from evaltui.tui.screens.compare_picker import ComparePicker

    assert isinstance(app.screen, ComparePicker)
    assert list(app.screen.query_one("#compare-list").selected) == ["exp-baseline"]  # the resolved baseline
    await pilot.press("enter")
    await settle(pilot)
    assert app.screen is screen and screen.comparison is not None
    assert "vs baseline 5 cases matched" in screen_text(app)


@driver("experiment.diff-mode")
async def _diff_mode(app, pilot, clip, key):
    from evaltui.tui.widgets.diff_view import DiffPanel

    await pilot.press(key)
    await settle(pilot)
    panel = app.screen.query_one(DiffPanel)
    assert panel.display and "Diff of output" in screen_text(app)
    await pilot.press(key)
    await pilot.pause()
    assert not panel.display


@driver("experiment.diff-target")
async def _diff_target(app, pilot, clip, key):
    await _compared(app, pilot)
    await pilot.press(keys_of(app, "experiment.diff-mode")[0])
    await settle(pilot)
    assert "baseline → new-prompt" in screen_text(app)
    await pilot.press(key)
    await settle(pilot)
    assert "expected → new-prompt" in screen_text(app)


@driver("experiment.filter-improved", "experiment.filter-regressed")
async def _filter_changed(app, pilot, clip, key):
    screen = await _compared(app, pilot)
    t = table(app)
    t.move_cursor(column=[c.key for c in t.visible_columns].index("scores.Factuality"))
    await pilot.press(key)
    await settle(pilot)
    which = "improved" if keys_of(app, "experiment.filter-improved")[0] == key else "regressed"
    assert screen.filter_text == f"compare.{which}.scores.Factuality"
    entry = screen.comparison.result["scores"]["Factuality"]
    assert t.row_count == entry["improvements" if which == "improved" else "regressions"]


@driver("experiment.layout")
async def _layout(app, pilot, clip, key):
    from evaltui.tui.screens.compare_layouts import GridLayout

    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, GridLayout)
    assert "Grid" in screen_text(app)


@driver("experiment.side-by-side")
async def _side_by_side(app, pilot, clip, key):
    screen = await _compared(app, pilot)
    if not screen.pane_open:
        await pilot.press(key)  # no trace open: says what to do
        assert any("open a trace" in n for n in notes(app))
        await pilot.press("enter")
        await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    twin = screen.query_one("#pane-compare", TracePane)
    assert twin.display and twin.trace is not None and twin.trace.experiment_id == "exp-baseline"
    assert twin.border_title == "baseline"
    await pilot.press(key)
    await pilot.pause()
    assert not screen.has_class("-twin")


@driver("experiment.order-regressions")
async def _order_regressions(app, pilot, clip, key):
    screen = await _compared(app, pilot)
    t = table(app)
    before = [c.key for c in t.visible_columns if c.key.startswith("scores.")]
    await pilot.press(key)
    await settle(pilot)
    # the fixture's scores have no regressions: ties keep fewer improvements first (ExactMatch ↑0)
    assert [c.key for c in t.visible_columns if c.key.startswith("scores.")] == sorted(before)
    assert any("Ordered by regressions: ExactMatch ↓0, Factuality ↓0" in n for n in notes(app))
    assert screen.view_columns is not None


# What help lists in each context (a new binding fails here until it has a driver).
HELP_IDS: dict[str, list[str]] = {
    "list": ["list.cursor-down", "list.cursor-up", "list.cursor-first", "list.cursor-last",
             "list.cursor-page-down", "list.cursor-page-up", "list.open", "list.quit", "list.reload",
             "app.quit", "app.help"],
    "table": ["table.cursor-down", "table.cursor-up", "table.cursor-left", "table.cursor-right",
              "table.first-row", "table.last-row", "table.page-down", "table.page-up", "table.select-row",
              "experiment.back", "experiment.filter", "experiment.toggle-rows", "experiment.copy-cell", "experiment.copy-row",
              "experiment.columns", "experiment.density", "experiment.focus-next", "experiment.focus-previous",
              "experiment.export", "experiment.dataset", "experiment.analyze", *VIEW_IDS, "experiment.compare", "experiment.diff-mode", "experiment.diff-target", "experiment.filter-improved", "experiment.filter-regressed", "experiment.layout", "experiment.side-by-side", "experiment.order-regressions", "experiment.select", "experiment.select-all", "experiment.review", "experiment.assign", "experiment.review-mode", "experiment.human-score", "experiment.comment", "app.quit", "app.help"],
    "pane-tree": ["tree.cursor-down", "tree.cursor-up", "tree.cursor-first", "tree.cursor-last", "tree.expand",
                  "tree.collapse", "tree.toggle", "pane.edit-field", "pane.copy-field", "pane.copy-span",
                  "experiment.back", "experiment.filter", "experiment.toggle-rows", "experiment.columns", "experiment.density",
                  "experiment.view-tree", "experiment.view-timeline", "experiment.view-thread",
                  "experiment.full-screen", "experiment.focus-next", "experiment.focus-previous",
                  "experiment.export", "experiment.dataset", "experiment.analyze", *VIEW_IDS, "experiment.compare", "experiment.diff-mode", "experiment.diff-target", "experiment.filter-improved", "experiment.filter-regressed", "experiment.layout", "experiment.side-by-side", "experiment.order-regressions", "experiment.review", "experiment.assign", "experiment.review-mode", "experiment.human-score", "experiment.comment", "app.quit", "app.help"],
    "pane-timeline": ["timeline.cursor-down", "timeline.cursor-up", "timeline.cursor-first",
                      "timeline.cursor-last", "timeline.scale", "pane.edit-field", "pane.copy-field",
                      "pane.copy-span", "experiment.back", "experiment.filter", "experiment.toggle-rows", "experiment.columns",
                      "experiment.density", "experiment.view-tree", "experiment.view-timeline",
                      "experiment.view-thread", "experiment.full-screen", "experiment.focus-next",
                      "experiment.focus-previous", "experiment.export", "experiment.dataset", "experiment.analyze", *VIEW_IDS, "experiment.compare", "experiment.diff-mode", "experiment.diff-target", "experiment.filter-improved", "experiment.filter-regressed", "experiment.layout", "experiment.side-by-side", "experiment.order-regressions", "experiment.review", "experiment.assign", "experiment.review-mode", "experiment.human-score", "experiment.comment", "app.quit", "app.help"],
    "pane-thread": ["thread.scroll-down", "thread.scroll-up", "thread.top", "thread.bottom", "thread.page-down",
                    "thread.page-up", "pane.edit-field", "pane.copy-field", "pane.copy-span", "experiment.back",
                    "experiment.filter", "experiment.toggle-rows", "experiment.columns", "experiment.density", "experiment.view-tree",
                    "experiment.view-timeline", "experiment.view-thread", "experiment.full-screen",
                    "experiment.focus-next", "experiment.focus-previous", "experiment.export", "experiment.dataset", "experiment.analyze", *VIEW_IDS, "experiment.compare", "experiment.diff-mode", "experiment.diff-target", "experiment.filter-improved", "experiment.filter-regressed", "experiment.layout", "experiment.side-by-side", "experiment.order-regressions", "experiment.review", "experiment.assign", "experiment.review-mode", "experiment.human-score", "experiment.comment", "app.quit", "app.help"],
    "columns": ["columns.cursor-down", "columns.cursor-up", "columns.cursor-first", "columns.cursor-last",
                "columns.done", "columns.toggle", "columns.pin", "columns.move-up", "columns.move-down",
                "columns.narrower", "columns.wider", "columns.reset", "columns.close"],
    "help": ["help.close", "help.scroll-down", "help.scroll-up"],
    "views": ["views.cursor-down", "views.cursor-up", "views.cursor-first", "views.cursor-last", "views.apply",
              "views.rename", "views.update", "views.delete", "views.my-default", "views.project-default",
              "views.close"],
    "group": ["group.cursor-down", "group.cursor-up", "group.cursor-first", "group.cursor-last", "group.apply",
              "group.order", "group.close"],
}
CASES = [(context, binding_id) for context, ids in HELP_IDS.items() for binding_id in ids]


@pytest.mark.parametrize("context", list(HELP_IDS))
async def test_help_lists_the_live_bindings_of_each_context(db: Path, context: str) -> None:
    async with running(db, context) as (app, pilot, _):
        if context in ("columns", "help", *VIEW_CONTEXTS):
            # a dialog's own keys (its hint line shows them): read them the way help does
            from evaltui.tui.commands import binding_entries

            ids = [e.binding_id for e in binding_entries(app.screen)]
        else:
            if context != "help":
                await pilot.press("question_mark")
                await settle(pilot)
            assert isinstance(app.screen, HelpScreen)
            ids = [e.binding_id for e in app.screen.entries]
            text = screen_text(app)
            assert "Keys" in text
        assert sorted(ids) == sorted(HELP_IDS[context])
        assert all(i in DRIVERS for i in ids), "every listed binding has a driver below"


# Drivers that leave the context (close a dialog, go back) get a fresh app for each key.
FRESH_PER_KEY = {"experiment.back", "help.close", "columns.close", "views.close", "views.apply", "group.close",
                 "group.apply"}


@pytest.mark.parametrize(("context", "binding_id"), CASES)
async def test_every_help_binding_does_what_it_says(db: Path, context: str, binding_id: str) -> None:
    """Press every key of every binding help lists and check what it did."""
    async with running(db, context) as (app, pilot, clip):
        keys = keys_of(app, binding_id)
        assert keys, f"{binding_id} is not bound in {context}"
        await DRIVERS[binding_id](app, pilot, clip, keys[0])
        if binding_id not in FRESH_PER_KEY:
            for key in keys[1:]:
                await DRIVERS[binding_id](app, pilot, clip, key)
    if binding_id in FRESH_PER_KEY:
        for key in keys[1:]:
            async with running(db, context) as (app, pilot, clip):
                await DRIVERS[binding_id](app, pilot, clip, key)


# -- sort, views, search, group (experiment_views.py) --------------------------------------

VIEW_CONTEXTS = ("views", "group")


async def enter_view_context(pilot: Any, context: str) -> None:
    app = pilot.app
    if context == "views":
        # one personal view to rename, update, delete and make a default
        app.screen.save_view("mine")
        await settle(pilot)
        await pilot.press("v")
    else:
        await pilot.press("b")
    await settle(pilot)


@driver("experiment.sort-asc", "experiment.sort-desc")
async def _sort(app, pilot, clip, key):
    screen = app.screen
    t = table(app)
    t.move_cursor(column=[c.key for c in t.visible_columns].index("scores.Factuality"))
    screen.set_sort([])
    await settle(pilot)
    await pilot.press(key)
    await settle(pilot)
    descending = key == "right_square_bracket"
    assert screen.sort_keys == [("scores.Factuality", descending)]
    shown = [v for v in t.frame["scores.Factuality"].to_list() if v is not None]
    assert shown == sorted(shown, reverse=descending)
    assert t.frame["scores.Factuality"].to_list()[-1] is None  # the timed-out row: nulls last
    assert "sort: scores.Factuality" in screen_text(app)
    await pilot.press(key)  # the same key again removes the sort
    await settle(pilot)
    assert screen.sort_keys == []


@driver("experiment.views")
async def _views_dialog(app, pilot, clip, key):
    from evaltui.tui.screens.views import ViewsScreen

    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ViewsScreen)
    assert "Assigned to me" in screen_text(app)
    await pilot.press("escape")
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)


@driver("experiment.save-view")
async def _save_view(app, pilot, clip, key):
    from evaltui.tui.screens.views import NamePrompt

    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, NamePrompt)
    await pilot.press(*"saved", "enter")
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)
    assert "saved" in load_config().config.views["support-bot"]


@driver("experiment.search")
async def _search(app, pilot, clip, key):
    from evaltui.tui.widgets.search_bar import SearchBar

    await pilot.press(key)
    await settle(pilot)
    bar = app.screen.query_one(SearchBar)
    assert bar.display and app.focused is bar.input
    bar.input.value = "ship"
    await pilot.press("enter")
    await settle(pilot)
    assert "search: ship (2 matches)" in screen_text(app)
    assert not bar.display and app.focused is table(app)  # enter hands the keys to the table


@driver("experiment.search-next", "experiment.search-previous")
async def _search_next(app, pilot, clip, key):
    screen = app.screen
    if screen.search_text != "ship":
        await pilot.press("ctrl+f")
        screen.query_one("SearchBar").input.value = "ship"
        await pilot.press("enter")
        await settle(pilot)
    t = table(app)
    t.move_cursor(row=2)
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    assert t.cursor_row == (4 if key == "n" else 0)  # "ship" is in rows 0 and 4


@driver("experiment.group")
async def _group(app, pilot, clip, key):
    from evaltui.tui.screens.views import GroupScreen

    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, GroupScreen)
    app.screen.query_one("#group-list").highlighted = app.screen.paths.index("metadata.category")
    await pilot.press("enter")
    await settle(pilot)
    t = table(app)
    assert t.groups[0].label == "shipping"  # the largest group first
    assert t.row_count == 5 + 4
    assert "group: metadata.category (4)" in screen_text(app)
    app.screen.set_group(None)
    await settle(pilot)


def _views_list(app: EvalTUI) -> Any:
    return app.screen.query_one("#views-list") if app.screen.id == "views-dialog" else app.screen.query_one(
        "#group-list")


@driver("views.cursor-down", "views.cursor-up", "views.cursor-first", "views.cursor-last", "group.cursor-down",
        "group.cursor-up", "group.cursor-first", "group.cursor-last")
async def _views_cursor(app, pilot, clip, key):
    lst = _views_list(app)
    lst.highlighted = 2
    await pilot.pause()
    await pilot.press(key)
    await pilot.pause()
    last = lst.option_count - 1
    assert lst.highlighted == {"j": 3, "down": 3, "k": 1, "up": 1, "g": 0, "home": 0, "G": last, "end": last}[key]


def _highlight_view(app: EvalTUI, key: str) -> None:
    screen = app.screen
    screen.query_one("#views-list").highlighted = [e.key for e in screen.entries].index(key)


@driver("views.apply")
async def _views_apply(app, pilot, clip, key):
    _highlight_view(app, "builtin:Errors")
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)
    assert table(app).row_count == 1  # the timed-out trace
    assert "Errors" in screen_text(app)


@driver("views.rename")
async def _views_rename(app, pilot, clip, key):
    from evaltui.tui.screens.views import NamePrompt

    name = "mine" if "personal:mine" in [e.key for e in app.screen.entries] else "renamed"
    _highlight_view(app, f"personal:{name}")
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, NamePrompt)
    app.screen.query_one("#name-input").value = "renamed" if name == "mine" else "mine"
    await pilot.press("enter")
    await settle(pilot)
    assert set(load_config().config.views["support-bot"]) == {"renamed" if name == "mine" else "mine"}


@driver("views.update")
async def _views_update(app, pilot, clip, key):
    app.screen.host.sort_keys = [("duration", True)]
    _highlight_view(app, "personal:mine")
    await pilot.press(key)
    await settle(pilot)
    assert load_config().config.views["support-bot"]["mine"].sort == [("duration", True)]


@driver("views.delete")
async def _views_delete(app, pilot, clip, key):
    screen = app.screen
    screen.host.save_view("spare")
    screen.refresh_entries()
    _highlight_view(app, "personal:spare")
    await pilot.press(key)
    await settle(pilot)
    assert "personal:spare" not in [e.key for e in screen.entries]
    assert set(load_config().config.views["support-bot"]) == {"mine"}


@driver("views.my-default")
async def _views_my_default(app, pilot, clip, key):
    _highlight_view(app, "personal:mine")
    await pilot.press(key)
    await settle(pilot)
    assert load_config().config.default_views == {"support-bot": "mine"}
    assert "★ my default" in screen_text(app)
    await pilot.press(key)  # again: no personal default
    await settle(pilot)
    assert load_config().config.default_views == {}


@driver("views.project-default")
async def _views_project_default(app, pilot, clip, key):
    from evaltui.store import project_settings

    _highlight_view(app, "builtin:Unreviewed")
    await pilot.press(key)
    await settle(pilot)
    assert "◆ project default" in screen_text(app)
    pid = app.screen.host.experiment["project_id"]
    assert project_settings(app.store, pid)["default_view"] == "Unreviewed"
    await pilot.press(key)
    await settle(pilot)
    assert project_settings(app.store, pid)["default_view"] is None


@driver("group.apply")
async def _group_apply(app, pilot, clip, key):
    app.screen.query_one("#group-list").highlighted = app.screen.paths.index("review_status")
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)
    assert [g.label for g in table(app).groups] == ["unreviewed"]


@driver("views.close", "group.close")
async def _views_close(app, pilot, clip, key):
    await pilot.press(key)
    await settle(pilot)
    assert isinstance(app.screen, ExperimentScreen)


@driver("group.order")
async def _group_order(app, pilot, clip, key):
    screen = app.screen
    before = screen.group_sort
    await pilot.press(key)
    await pilot.pause()
    assert screen.group_sort != before
    assert "groups: by name" in screen_text(app) or "first" in screen_text(app)


# -- behaviour ----------------------------------------------------------------------------


async def test_experiment_list_newest_first_with_scores(db: Path) -> None:
    async with running(db) as (app, _pilot, _):
        text = screen_text(app)
        lines = [ln for ln in text.splitlines() if "support-bot" in ln or "lab" in ln or "baseline" in ln]
        assert "new-prompt" in lines[1] and "baseline" in lines[2]  # newest first within the project
        assert "ExactMatch" in text and "Factuality" in text and "Length" in text
        assert "0.78" in text and "0.68" in text  # Factuality means
        assert "3 experiments" in text


async def test_empty_database_explains_how_to_get_data(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path / "empty.db")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "No experiments in" in text
        assert "evaltui demo" in text and "evaltui import" in text and "evaltui.Eval(" in text


async def test_open_experiment_by_id_and_unknown_ref(db: Path) -> None:
    app, _ = make_app(db, "exp-baseline")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        assert "5 of 5 rows · support-bot/baseline" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentListScreen)
        # the list's cursor is on the experiment that was open
        assert _list(app).cursor_row == 2
    app, _ = make_app(db, "support-bot/nope")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ExperimentListScreen)
        assert any("no experiment 'support-bot/nope'" in n for n in notes(app))
    assert load_config().config.last_experiment == "support-bot/baseline"
    async with running(db) as (app, pilot, _):
        assert _list(app).cursor_row == 2  # the list starts on the experiment opened last


async def test_experiment_opened_just_before_quitting_is_remembered(db: Path) -> None:
    """The last opened experiment is written once its screen shows; quitting before that
    (a key pressed at once) must not lose it."""
    app, _ = make_app(db, "exp-baseline")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("escape")  # back on the list, where another experiment is opened
        await settle(pilot)
        exp = find_experiment(app.store, "support-bot/new-prompt")
        app.on_eval_tui_experiment_found(EvalTUI.ExperimentFound(exp))  # its write waits for a refresh
        app.exit()  # ... which never comes
    assert load_config().config.last_experiment == "support-bot/new-prompt"


def test_start_up_read_is_waited_for_only_by_its_own_experiment(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another experiment's screen, mounted while the start-up read of the first page is
    still running (say the database is locked by an import), does not wait for it."""
    import threading
    import time

    from evaltui.tui.screens import experiment as ex

    release = threading.Event()
    real = ex.trace_page

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(ex, "trace_page", slow)
    store = Store(db)
    try:
        page = ex.FirstPage(store, "support-bot/baseline")
        deadline = time.monotonic() + 5
        while page.experiment is None and time.monotonic() < deadline:  # known before its rows
            time.sleep(0.005)
        t0 = time.perf_counter()
        assert page.take("some-other-experiment-id", timeout=5) is None
        assert time.perf_counter() - t0 < 1  # not the 5 s it would wait for its own
        release.set()
        got = page.take(page.experiment["id"], timeout=5)
        assert got is not None and got[1].height > 0
    finally:
        release.set()
        store.close()


def test_first_rows_are_painted_before_polars_is_imported(db: Path) -> None:
    """Opened on an experiment, the app paints the first rows before it imports polars (about
    150 ms of a ~450 ms start); polars then loads in a worker and the screen's frame replaces the
    page: the same rows, with the header summaries. (A fresh process: this one has polars.)"""
    import subprocess
    import sys

    script = """
import asyncio, json, sys
from evaltui.tui.app import EvalTUI
from evaltui.tui.widgets.experiment_table import ExperimentTable
app = EvalTUI(sys.argv[1], "support-bot/baseline")
seen = {}
display = app._display
def watch(screen, update):
    display(screen, update)
    tables = screen.query(ExperimentTable)
    if update is not None and "rows" not in seen and tables and tables.first().row_count:
        seen["rows"] = tables.first().row_count
        seen["polars_then"] = "polars" in sys.modules
app._display = watch
async def main():
    async with app.run_test(size=(120, 30)) as pilot:
        for _ in range(400):
            await pilot.pause()
            if "traces" in app.screen.frames and app.screen.complete.get("traces"):
                break
            await asyncio.sleep(0.025)
        table = app.screen.query_one(ExperimentTable)
        seen["frame_rows"] = app.screen.frames["traces"].height
        seen["polars_after"] = "polars" in sys.modules
        seen["summaries"] = sorted(k for k, v in table._summaries.items() if v)
asyncio.run(main())
print(json.dumps(seen))
"""
    # -P: the installed evaltui, not a source tree in the current directory (it has no styles package)
    proc = subprocess.run([sys.executable, "-P", "-c", script, str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["rows"] == 5 and seen["polars_then"] is False
    assert seen["frame_rows"] == 5 and seen["polars_after"] is True
    assert "scores.Factuality" in seen["summaries"]


@pytest.fixture
def held_page(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Keeps the first page from becoming the screen's frame until the event is set (the
    ~150 ms polars takes to load at start-up, made as long as a test needs)."""
    import threading

    from evaltui.store.page import Page

    release = threading.Event()
    real = Page.to_polars

    def held(self: Page) -> Any:
        release.wait(10)
        return real(self)

    monkeypatch.setattr(Page, "to_polars", held)
    yield release
    release.set()


async def test_keys_work_on_the_first_page_before_its_frame(db: Path, held_page: Any) -> None:
    """While only the first page is in (polars still loading), the table is usable: j moves, y
    copies, the title counts the rows, enter opens the trace, C opens the columns; then the frame
    replaces the page with the cursor on the same trace."""
    from evaltui.store.page import Page

    release = held_page
    app, clip = make_app(db, "support-bot/baseline")
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ExperimentScreen) and "traces" not in screen.frames
            t = table(app)
            assert t.row_count == 5 and isinstance(t.frame, Page)
            assert str(screen.query_one("#exp-title").render()).startswith("5 of 5 rows · support-bot/baseline")
            await pilot.press("j")
            assert t.cursor_row == 1
            await pilot.press("y")
            await settle_page(pilot)
            assert clip.last == QUESTIONS[1][0]
            await pilot.press("C")
            await settle_page(pilot)
            assert isinstance(app.screen, ColumnsScreen)
            await pilot.press("escape")
            await settle_page(pilot)
            await pilot.press("enter")
            await settle_page(pilot)
            pane = screen.query_one(TracePane)
            assert pane.trace is not None and pane.trace.root_span_id == t.row_key(1)
            # what needs the whole frame says the rows are loading (and nothing breaks)
            for key in ("x", "M", "r", "right_square_bracket"):
                await pilot.press(key)
                await settle_page(pilot)
                assert isinstance(app.screen, ExperimentScreen), key
                assert notes(app)[-1] == "The rows are still loading", key
            # a search entered now runs (and jumps to its match) when the frame is in
            await pilot.press("ctrl+f", *"Canada", "enter")
            await settle_page(pilot)
            assert "traces" not in screen.frames  # all of it on the page
            release.set()
            await settle(pilot)
            assert screen.frames["traces"].height == 5 and not isinstance(t.frame, Page)
            assert screen.search_hits == [4] and t.cursor_row == 4
            assert "Canada" in t.current_row()["input"]
            assert t.frame.row(1, named=True)["review_status"] == "unreviewed"  # r did not write
    finally:
        release.set()


async def test_a_change_made_while_the_first_page_shows_is_not_lost(db: Path, held_page: Any) -> None:
    """Another connection reviews a trace while the table shows the first page (before its
    frame): the frame made from that page would be stale, and with 200 traces or fewer nothing
    reads the rows again, so the change must be caught up once the rows are in."""
    from evaltui.store.page import Page
    from evaltui.store.review import toggle_reviewed

    release = held_page
    app, _ = make_app(db, "support-bot/baseline")
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await pilot.pause()
            t = table(app)
            assert isinstance(t.frame, Page) and t.frame.row(0, named=True)["review_status"] == "unreviewed"
            with Store(db) as other:
                toggle_reviewed(other, "exp-baseline", t.row_key(0), "bob")
            for _ in range(60):  # the app's watcher sees the commit (it looks every ~0.5 s)
                await pilot.pause(0.05)
                if app.live.changes:
                    break
            assert app.live.changes, "the watcher did not see the other connection's commit"
            release.set()
            for _ in range(100):
                await settle(pilot)
                frame = app.screen.frames.get("traces")
                if frame is not None and frame.row(0, named=True)["review_status"] == "reviewed":
                    break
            assert app.screen.frames["traces"].row(0, named=True)["review_status"] == "reviewed"
            assert t.frame.row(0, named=True)["reviewed_by"] == "bob"
    finally:
        release.set()


async def settle_page(pilot: Any) -> None:
    """A few pauses (settle would wait for the held page-to-frame worker)."""
    for _ in range(10):
        await pilot.pause(0.02)


async def test_experiment_opened_at_start_shows_rows_in_its_first_frame(db: Path) -> None:
    """Opened on an experiment (read while Textual starts): the first frame of its screen
    already has the rows, nothing says "loading", and the experiment list below is read only
    when the user goes back to it."""
    app, _ = make_app(db, "support-bot/baseline")
    assert app.first_page is not None and app.first_page.found() is not None
    titles: list[str] = []
    display = app._display

    def watch(screen: Any, update: Any) -> None:
        display(screen, update)
        if isinstance(screen, ExperimentScreen):
            titles.append(str(screen.query_one("#exp-title").render()))

    app._display = watch  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        assert titles and all("loading" not in t for t in titles)
        assert titles[0].startswith("5 of 5 rows · support-bot/baseline")
        below = app.screen_stack[-2]
        assert isinstance(below, ExperimentListScreen) and not below.query(ExperimentList)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentListScreen)
        assert _list(app).row_count > 0 and _list(app).cursor_row == 2
    assert load_config().config.last_experiment == "support-bot/baseline"


async def test_garbage_collector_is_paused_only_until_the_first_frame(db: Path) -> None:
    """Start-up pauses Python's garbage collector (its passes over the objects start-up makes
    cost about 50 ms); it runs again once the first frame is written, and after the app ends."""
    import gc

    assert gc.isenabled()
    app, _ = make_app(db, "support-bot/baseline")
    during: list[bool] = []
    display = app._display

    def watch(screen: Any, update: Any) -> None:
        during.append(gc.isenabled())
        display(screen, update)

    app._display = watch  # type: ignore[method-assign]
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert during and during[0] is False  # paused while the first frame was made
        assert gc.isenabled()
        await pilot.press("j")
        await settle(pilot)
        assert gc.isenabled()
    assert gc.isenabled()


async def test_garbage_collector_runs_again_when_the_experiment_is_found_after_mount(
        db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up read not done when the app mounts: the experiment is looked up apart and its
    screen pushed a moment later, before the list below it was ever painted; the collector must
    run again once the experiment's screen is painted (it stayed paused, waiting for the covered
    list to repaint)."""
    import gc

    from evaltui.tui.screens.experiment import FirstPage

    found = FirstPage.found
    monkeypatch.setattr(FirstPage, "found", lambda self, timeout=10.0: None if timeout == 0 else found(self, timeout))
    # the lookup answers at once (a worker that wins the race with the list's first repaint)
    monkeypatch.setattr(EvalTUI, "open_experiment", lambda self, ref: self.post_message(
        self.ExperimentFound(find_experiment(self.store, ref))))
    # where the resume waits: a screen runs such callbacks on its own update ticks, which a
    # covered screen may never get again (seen once in a full serial run: the GC stayed off)
    from textual.screen import Screen

    queued_on: list[str] = []
    invoke_later = Screen._invoke_later

    def spy(self: Screen, callback: Any, sender: Any) -> None:
        if getattr(getattr(callback, "func", None), "__name__", "") == "_resume_gc":
            queued_on.append(type(self).__name__)
        invoke_later(self, callback, sender)

    monkeypatch.setattr(Screen, "_invoke_later", spy)
    app, _ = make_app(db, "support-bot/baseline")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        assert queued_on == ["ExperimentScreen"]  # the screen that is painted, not the list below it
        assert gc.isenabled()
    assert gc.isenabled()


async def test_hostile_output_shows_literally(db: Path) -> None:
    async with running(db, "pane-tree") as (app, pilot, _):
        text = screen_text(app)
        # in the table cell and in the span detail
        assert text.count("[bold red]URGENT[/] ␛[2J") >= 2
        assert "␛[31mreset␛[0m␍␀" in text
        assert "\x1b" not in text and "\r" not in text and "\x00" not in text
        await pilot.press("3")
        await settle(pilot)
        text = screen_text(app)
        assert "[bold red]URGENT[/] ␛[2J␛[31mreset␛[0m␍␀" in text and "\x1b" not in text
        await pilot.press("2")
        await settle(pilot)
        assert "\x1b" not in screen_text(app)


async def test_hostile_text_never_reaches_the_terminal(db: Path) -> None:
    """The bytes written to the terminal hold no ESC[2J / ESC[31m from the data."""
    async with running(db, "pane-tree") as (app, _pilot, _):
        out = io.StringIO()
        console = Console(file=out, width=160, height=48, force_terminal=True, color_system="truecolor")
        console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
        raw = out.getvalue()
        assert "\x1b[2J" not in raw and "\x1b[31mreset" not in raw
        assert "[bold red]URGENT[/]" in raw


async def test_narrow_terminal_opens_the_pane_over_the_table(db: Path) -> None:
    app, _ = make_app(db, "support-bot/new-prompt")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert screen.has_class("-pane-over") and not screen.has_class("-pane-side")
        assert table(app).region.width == 0
        assert "1 tree" in screen_text(app)
        await pilot.resize_terminal(160, 40)
        await settle(pilot)
        assert screen.has_class("-pane-side") and table(app).region.width > 0
        await pilot.press("escape")
        await settle(pilot)
        assert not screen.pane_open and table(app).region.width == 160


async def test_side_pane_follows_the_table_cursor(db: Path) -> None:
    async with running(db, "table") as (app, pilot, _):
        await pilot.press("enter")
        await settle(pilot)
        pane = app.screen.query_one(TracePane)
        assert pane.trace.root_span_id == "exp-new-t0"
        await pilot.press("tab")  # back to ... somewhere; put focus on the table
        table(app).focus()
        await pilot.press("j")
        await pilot.pause(0.3)
        await settle(pilot)
        assert pane.trace.root_span_id == "exp-new-t1"


async def test_span_rows_open_their_trace_at_that_span(db: Path) -> None:
    async with running(db, "table") as (app, pilot, _):
        await pilot.press("t")
        await settle(pilot)
        t = table(app)
        t.move_cursor(row=2)  # the first llm call of trace 0
        await pilot.pause()
        row = t.current_row()
        await pilot.press("enter")
        await settle(pilot)
        pane = app.screen.query_one(TracePane)
        assert pane.selected.span_id == row["span_id"]
        assert _tree(app).cursor_node.data == row["span_id"]


async def test_trace_pane_tree_shows_scores_errors_and_explanations(db: Path) -> None:
    app, _ = make_app(db, "support-bot/new-prompt")
    async with app.run_test(size=(160, 60)) as pilot:
        await settle(pilot)
        table(app).move_cursor(row=3)  # the trace whose model timed out
        await pilot.press("enter")
        await settle(pilot)
        text = screen_text(app)
        assert "✗ eval" in text and "✗ 3 errors" in text
        assert "RuntimeError: model timed out" in text
        assert "Factuality" in text and "The answer misses the facts." in text
        assert "ExactMatch  0.00" in text


async def test_huge_value_is_cut_with_a_note_and_copied_whole(db: Path) -> None:
    app, clip = make_app(db, "lab/huge")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert "showing 200 KB of 600 KB; e opens all" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert len(clip.last) == HUGE
        table(app).focus()
        t = table(app)
        t.move_cursor(column=[c.key for c in t.visible_columns].index("output"))
        await pilot.press("y")
        await settle(pilot)
        assert len(clip.last) == HUGE  # the full value, not the 400-character preview


async def test_settings_survive_a_restart(db: Path, config_file: Path) -> None:
    async with running(db, "columns") as (app, pilot, _):
        await pilot.press("j", "space", "escape", "D")
        await settle(pilot)
    assert load_config().config.density == "tall"
    app, _ = make_app(db, "support-bot/new-prompt")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        t = table(app)
        assert t.density == "tall"
        assert "output" not in [c.key for c in t.visible_columns]
        assert "output" in [c.key for c in t.columns]


async def test_keymap_from_config_remaps_by_id(db: Path, config_file: Path) -> None:
    config_file.write_text('clipboard = "osc52"\n[keymap]\n"experiment.toggle-rows" = "T"\n"app.help" = "f2"\n')
    async with running(db, "table") as (app, pilot, _):
        await pilot.press("t")
        await settle(pilot)
        assert app.screen.row_type == "traces"
        await pilot.press("T")
        await settle(pilot)
        assert app.screen.row_type == "spans"
        await pilot.press("f2")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        entry = next(e for e in app.screen.entries if e.binding_id == "experiment.toggle-rows")
        assert entry.keys == ["T"]


async def test_broken_config_is_reported_in_the_app(db: Path, config_file: Path) -> None:
    config_file.write_text("density = [[[")
    async with running(db) as (app, _pilot, _):
        assert any("does not parse" in n and ".broken-" in n for n in notes(app))
        assert app.config.density == "compact"
    assert any(p.name.startswith("config.toml.broken-") for p in config_file.parent.iterdir())


async def test_command_palette_runs_screen_commands(db: Path) -> None:
    async with running(db, "table") as (app, pilot, _):
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"traces/spans")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.row_type == "spans"
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"density: tall")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert table(app).density == "tall"


async def test_palette_lists_every_bound_action(db: Path) -> None:
    from evaltui.tui.commands import ExperimentCommands

    async with running(db, "pane-tree") as (app, _pilot, _):
        provider = ExperimentCommands(app.screen)
        names = [name for name, _cb, _help in provider._commands()]
        for expected in ("Experiment: Traces/spans", "Experiment: Timeline view", "Trace pane: Copy field",
                         "Table: Open", "Experiment: Columns", "Density: tall", "Columns: reset to defaults"):
            assert expected in names
        assert not any(n.startswith("Span tree:") for n in names)  # cursor moves are not commands


async def test_theme_choice_is_remembered(db: Path) -> None:
    async with running(db) as (app, pilot, _):
        app.theme = "nord"
        await pilot.pause()
    assert load_config().config.theme == "nord"
    async with running(db) as (app, pilot, _):
        assert app.theme == "nord"


def test_run_app_opens_the_store_and_experiment(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evaltui.tui import app as app_module

    seen = {}

    def fake_run(self):
        seen["store"] = self.store.path
        seen["experiment"] = self._initial_experiment

    monkeypatch.setattr(app_module.EvalTUI, "run", fake_run)
    app_module.run_app(db, "support-bot/baseline")
    assert seen == {"store": db, "experiment": "support-bot/baseline"}


def test_every_binding_has_an_id_and_description() -> None:
    from evaltui.tui.screens.columns import ColumnList as CL
    from evaltui.tui.screens.experiment_list import ExperimentList as EL
    from evaltui.tui.widgets.trace_pane import TracePane as TP

    for cls in (EvalTUI, ExperimentScreen, ExperimentListScreen, EL, HelpScreen, ColumnsScreen, CL, TP,
                TraceTree, Timeline, ThreadView):
        for binding in cls.BINDINGS:
            assert binding.id and binding.description, (cls.__name__, binding)


# -- snapshots ----------------------------------------------------------------------------

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def snap_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative paths for the database and config: the screens show them, snapshots must not vary."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALTUI_CONFIG", "config/config.toml")
    build_store(Path("fixture.db")).close()
    return tmp_path


def _snap_app(db: Path | str, experiment: str | None = None) -> EvalTUI:
    app, _ = make_app(Path(db), experiment)
    return app


def _steps(*keys: str) -> Callable[[Any], Awaitable[None]]:
    async def run(pilot: Any) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


EXP = "support-bot/new-prompt"
SNAPSHOTS = [
    ("list", None, ()),
    ("table-compact", EXP, ()),
    ("table-tall", EXP, ("D",)),
    ("spans-compact", EXP, ("t",)),
    ("spans-tall", EXP, ("t", "D")),
    ("pane-tree", EXP, ("j", "j", "enter")),
    ("pane-timeline", EXP, ("j", "j", "enter", "2", "j")),
    ("pane-thread", EXP, ("j", "j", "enter", "3")),
    ("columns", EXP, ("C", "j", "space", "j", "p")),
    ("help", EXP, ("question_mark",)),
]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("name", "experiment", "keys"), [pytest.param(*s, id=s[0]) for s in SNAPSHOTS])
def test_snapshot(snap_compare, snap_dir: Path, name: str, experiment: str | None, keys: tuple[str, ...],
                  size: tuple[int, int]) -> None:
    assert snap_compare(_snap_app("fixture.db", experiment), terminal_size=size, run_before=_steps(*keys))


def test_snapshot_empty_database(snap_compare, snap_dir: Path) -> None:
    assert snap_compare(_snap_app("empty.db"), terminal_size=(80, 24), run_before=_steps())



# -- perf: the one-widget footer and the list built on demand ------------------------------


async def test_footer_shows_whole_main_keys_and_follows_focus(db: Path) -> None:
    from evaltui.tui.widgets.footer import KeyFooter

    app, _ = make_app(db, "support-bot/new-prompt")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeyFooter)
        line = screen_text(app).splitlines()[-1]
        assert line.startswith(" ⏎ Open  esc Back  / Filter  t Traces/spans") and line.rstrip().endswith("▏^p palette")
        shown = [i for i in footer.items if f" {i.key_display} {i.description} " in line]
        others = [i for i in footer.items if not i.keep]
        assert len(shown) < len(footer.items)  # 80 columns: some keys do not fit...
        assert [i for i in shown if not i.keep] == others[: len(shown) - 1]  # ...and are left out whole, in order
        assert [i.description for i in shown if i.keep] == ["Help"]  # help stays findable at 80 columns
        assert " ? Help " in line and line.rstrip().endswith("▏^p palette")
        x = line.index(" t Traces/spans") + 2
        await pilot.click(KeyFooter, offset=(x, 0))  # a key in the footer is a button
        await settle(pilot)
        assert app.screen.row_type == "spans"
        await pilot.press("t", "enter")
        await settle(pilot)
        assert "e Open in $EDITOR" in screen_text(app).splitlines()[-1]  # the pane's keys now


async def test_experiment_opened_directly_builds_the_list_on_the_way_back(db: Path) -> None:
    app, _ = make_app(db, "support-bot/baseline")
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        below = app.screen_stack[-2]
        assert isinstance(below, ExperimentListScreen) and not below.built and not below.children
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is below and below.built
        assert "support-bot" in screen_text(app) and "baseline" in screen_text(app)
        assert _list(app).row_count >= 2 and _list(app).cursor_row == 2  # on the one that was open
