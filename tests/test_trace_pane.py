"""The trace pane's parts: the span tree model, coloured JSON, timeline bars, the thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from test_tui_app import HOSTILE, HUGE, build_store
from textual.app import App, ComposeResult

from evaltui.store import load_trace_spans
from evaltui.tui.widgets.json_text import full_text, render_value, value_size
from evaltui.tui.widgets.span_detail import SpanDetail
from evaltui.tui.widgets.thread_view import ThreadView, thread_entries
from evaltui.tui.widgets.timeline import Timeline
from evaltui.tui.widgets.trace_data import (
    SpanNode,
    TraceData,
    format_cost,
    format_duration,
    format_tokens,
)
from evaltui.tui.widgets.trace_pane import TracePane
from evaltui.tui.widgets.trace_tree import TraceTree, span_label


@pytest.fixture(autouse=True)
def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))


@pytest.fixture(scope="module")
def fixture_store(tmp_path_factory: pytest.TempPathFactory):
    store = build_store(tmp_path_factory.mktemp("pane") / "fixture.db")
    yield store
    store.close()


def trace_of(store, exp: str, root: str) -> TraceData:
    return TraceData.from_frame(exp, root, load_trace_spans(store, exp, root))


def node(span_id: str, parent: str | None = None, *, name: str | None = None, type: str = "task",
         start: float | None = 0.0, end: float | None = 1.0, **record: Any) -> SpanNode:
    return SpanNode(id=f"row-{span_id}", span_id=span_id, parent=parent, name=name or span_id, type=type,
                    start=start, end=end, record={"span_id": span_id, **record})


def plain(text) -> str:
    console = Console(width=200, file=None, color_system=None)
    with console.capture() as cap:
        console.print(text)
    return cap.get()


# -- the trace model ----------------------------------------------------------------------


def test_trace_is_ordered_depth_first_by_start(fixture_store) -> None:
    trace = trace_of(fixture_store, "exp-new", "exp-new-t2")
    assert [(s.name, s.depth) for s in trace.spans] == [
        ("eval", 0), ("answer", 1), ("chat", 2), ("lookup_kb", 2), ("chat", 2),
        ("Factuality", 1), ("ExactMatch", 1),
    ]
    assert trace.root.span_id == "exp-new-t2"
    assert trace.root.record["output"] == HOSTILE  # JSON decoded
    assert [s.in_scorer for s in trace.spans] == [False] * 5 + [True, True]
    assert trace.find("exp-new-t2-llm1").name == "chat"
    assert trace.find("exp-new-t2-llm1") is trace.find("exp-new-t2-llm1")  # row id or span id
    assert trace.t0 == trace.root.start and trace.t1 == trace.root.end


def test_orphans_and_cycles_are_shown_once() -> None:
    nodes = [node("r", None), node("a", "r", start=0.5), node("b", "missing", start=0.1),
             node("c", "d", start=0.2), node("d", "c", start=0.3)]
    trace = TraceData.from_nodes("e", "r", nodes)
    assert trace.spans[0].span_id == "r"
    assert sorted(s.span_id for s in trace.spans) == ["a", "b", "r"]  # c/d form a cycle with no root
    assert trace.find("b").depth == 0


def test_span_metrics_and_explanations() -> None:
    n = node("x", metrics={"prompt_tokens": 10, "completion_tokens": 5, "estimated_cost": 0.002},
             metadata={"rationale": "  ", "explanation": "because"})
    assert n.tokens == 15 and n.cost == 0.002 and n.explanation() == "because"
    assert node("y").tokens is None and node("y").explanation() is None
    assert node("z", start=None).duration is None


def test_formats() -> None:
    assert format_duration(0) == "0s"
    assert format_duration(0.0000042) == "4µs"
    assert format_duration(0.25) == "250ms"
    assert format_duration(2.5) == "2.50s"
    assert format_duration(125) == "2m05s"
    assert format_tokens(1234) == "1,234 tok" and format_tokens(12345) == "12.3k tok"
    assert format_cost(0.00042) == "$0.0004" and format_cost(1.5) == "$1.50" and format_cost(0) == "$0"


def test_tree_label_is_literal_and_marks_errors() -> None:
    n = node("x", name=HOSTILE, type="llm", error={"message": "boom"}, scores={"Fact": 0.25},
             metrics={"tokens": 10, "estimated_cost": 0.001})
    label = span_label(n)
    assert label.plain.startswith("✗ [bold red]URGENT[/] ␛[2J")
    assert "\x1b" not in label.plain and "\r" not in label.plain
    assert "10 tok" in label.plain and "$0.0010" in label.plain and "Fact 0.25" in label.plain
    assert label.spans  # styled by spans, not by markup


# -- coloured JSON ------------------------------------------------------------------------


def test_json_is_coloured_from_the_parsed_value() -> None:
    value = {"msg": "[b]x[/b] \x1b[2J", "n": 1.5, "ok": True, "none": None, "list": [1, "two\nlines"], "e": {}}
    r = render_value(value)
    text = r.text.plain
    assert '"msg": "[b]x[/b] \\u001b[2J"' in text  # JSON escapes, markup untouched
    assert '"n": 1.5' in text and '"ok": true' in text and '"none": null' in text and '"e": {}' in text
    assert '"two\n' in text  # real line breaks inside strings
    assert not r.truncated and r.total == value_size(value)
    styles = {str(span.style) for span in r.text.spans}
    assert len(styles) >= 4  # keys, strings, numbers, literals differ


def test_top_level_string_is_plain_text_with_controls_visible() -> None:
    r = render_value(HOSTILE)
    assert r.text.plain == "[bold red]URGENT[/] ␛[2J␛[31mreset␛[0m␍␀"
    assert not r.truncated and r.total == len(HOSTILE)


def test_huge_values_are_cut_at_the_budget() -> None:
    r = render_value("x" * 5_000_000, limit=200_000)
    assert r.truncated and r.painted == 200_000 and r.total == 5_000_000
    assert len(r.text.plain) == 200_000
    big = {"rows": [{"i": i, "text": "y" * 100} for i in range(50_000)]}
    r = render_value(big, limit=10_000)
    assert r.truncated and r.painted <= 10_000 and r.total > 5_000_000
    exact = render_value("abc", limit=3)
    assert not exact.truncated


def test_full_text_is_what_the_editor_and_clipboard_get() -> None:
    assert full_text(HOSTILE) == HOSTILE
    assert json.loads(full_text({"a": [1, "é"]})) == {"a": [1, "é"]}
    assert "é" in full_text({"a": "é"})


# -- thread -------------------------------------------------------------------------------


def test_thread_shows_each_message_once_in_order(fixture_store) -> None:
    entries = thread_entries(trace_of(fixture_store, "exp-new", "exp-new-t0"))
    assert [e.role for e in entries] == ["system", "user", "assistant", "tool", "assistant"]
    assert entries[0].text == "You are a helpful support agent for Acme."
    assert entries[2].text == '→ lookup_kb({\n  "query": "shipping"\n})'
    assert entries[3].text == "KB article about shipping." and "lookup_kb" in entries[3].detail
    assert entries[4].text == "Your order #1234 ships tomorrow from our Berlin warehouse."


def test_thread_handles_other_shapes() -> None:
    nodes = [
        node("r", None, type="eval"),
        node("l1", "r", type="llm", start=0.1, input={"messages": [{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:..."}}]}]},
            output={"choices": [{"index": 0, "message": {"role": "assistant", "content": "a cat"}}]}),
        node("t1", "r", type="tool", name="search", start=0.2, input={"q": "cats"}, output=["c1", "c2"],
             error="rate limited"),
        node("l2", "r", type="llm", start=0.3, input="plain prompt", output=[{"message": {"content": "done"}}]),
        node("s", "r", type="score", start=0.4),
        node("sl", "s", type="llm", start=0.5, input=[{"role": "user", "content": "grade"}], output="1"),
    ]
    entries = thread_entries(TraceData.from_nodes("e", "r", nodes))
    roles = [e.role for e in entries]
    assert roles == ["user", "assistant", "tool call", "tool", "error", "user", "assistant", "note"]
    assert entries[0].text == "look\n[image]"
    assert entries[2].text.startswith("search({")
    assert entries[6].text == "done"
    assert "1 LLM call(s) made by scorers" in entries[-1].text


def test_thread_repeated_user_messages_are_kept() -> None:
    m = [{"role": "user", "content": "again"}]
    nodes = [node("r", None, type="eval"),
             node("a", "r", type="llm", start=0.1, input=m, output="one"),
             node("b", "r", type="llm", start=0.2, input=[*m, {"role": "assistant", "content": "one"}, *m],
                  output="two")]
    entries = thread_entries(TraceData.from_nodes("e", "r", nodes))
    assert [(e.role, e.text) for e in entries] == [
        ("user", "again"), ("assistant", "one"), ("user", "again"), ("assistant", "two")]


# -- the widgets in an app ----------------------------------------------------------------


class PaneApp(App):
    def __init__(self, trace: TraceData, select: str | None = None) -> None:
        super().__init__()
        self.trace, self.select = trace, select
        self.copied: list[tuple[str, str]] = []
        self.edited: list[tuple[str, str, str]] = []

    def compose(self) -> ComposeResult:
        yield TracePane()

    def on_mount(self) -> None:
        self.query_one(TracePane).show_trace(self.trace, self.select)

    def copy_text(self, text: str, what: str) -> bool:
        self.copied.append((text, what))
        return True

    def open_in_editor(self, text: str, name: str, suffix: str = ".txt") -> None:
        self.edited.append((text, name, suffix))


def screen(app: App) -> str:
    import io

    w, h = app.size
    console = Console(width=w, height=h, file=io.StringIO(), force_terminal=True, color_system=None, record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()


async def test_pane_views_and_detail(fixture_store) -> None:
    app = PaneApp(trace_of(fixture_store, "exp-new", "exp-new-t3"))
    async with app.run_test(size=(140, 50)) as pilot:
        await pilot.pause()
        pane = app.query_one(TracePane)
        text = screen(app)
        assert "✗ 3 errors" in text and "1 tree" in text
        assert "RuntimeError: model timed out" in text  # the error field
        pane.query_one(TraceTree).select_span("exp-new-t3-score")
        await pilot.pause()
        await pilot.pause()
        assert pane.selected.name == "Factuality"
        text = screen(app)
        assert "Factuality" in text and "–" in text  # a skipped score
        pane.view = "timeline"
        await pilot.pause()
        timeline = pane.query_one(Timeline)
        assert timeline.selected.span_id == "exp-new-t3-score"  # the selection carries over
        pane.view = "thread"
        await pilot.pause()
        assert "RuntimeError: model timed out" in screen(app)
        assert len(pane.query_one(ThreadView).children) > 3


async def test_pane_copy_and_edit_act_on_the_focused_field(fixture_store) -> None:
    app = PaneApp(trace_of(fixture_store, "exp-new", "exp-new-t0"), select="exp-new-t0-llm1")
    async with app.run_test(size=(140, 50)) as pilot:
        await pilot.pause()
        pane = app.query_one(TracePane)
        pane.action_copy_field()  # no focused field: the output
        assert json.loads(app.copied[-1][0])["tool_calls"][0]["function"]["name"] == "lookup_kb"
        assert app.copied[-1][1] == "output of span chat"
        pane.query_one("#field-input").focus()
        await pilot.pause()
        pane.action_copy_field()
        assert json.loads(app.copied[-1][0])[1] == {"role": "user", "content": "Where is my order #1234?"}
        pane.action_edit_field()
        assert app.edited[-1][1:] == ("chat-input", ".json")
        pane.action_copy_span()
        assert json.loads(app.copied[-1][0])["span_id"] == "exp-new-t0-llm1"


async def test_huge_output_paints_a_part_and_says_so(fixture_store) -> None:
    app = PaneApp(trace_of(fixture_store, "exp-huge", "huge"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        detail = app.query_one(SpanDetail)
        out = detail.query_one("#field-output")
        assert out.border_title == "output · showing 200 KB of 600 KB; e opens all"
        assert detail.field_value("output") == ("All work and no play makes Jack a dull boy. " * 20_000)[:HUGE]


def _bars(timeline: Timeline) -> list[str]:
    return [timeline.render_line(y).text for y in range(len(timeline.spans) + 1)]


async def test_timeline_bars_follow_the_scale() -> None:
    nodes = [
        node("r", None, type="eval", start=0.0, end=4.0),
        node("a", "r", type="llm", start=0.0, end=1.0, metrics={"tokens": 1000, "estimated_cost": 0.01}),
        node("b", "r", type="tool", start=2.0, end=4.0, metrics={"tokens": 250}),
    ]
    trace = TraceData.from_nodes("e", "r", nodes)

    class TimelineApp(App):
        def compose(self) -> ComposeResult:
            yield Timeline()

    app = TimelineApp()
    async with app.run_test(size=(100, 10)) as pilot:
        tl = app.query_one(Timeline)
        tl.show_trace(trace)
        await pilot.pause()
        lines = _bars(tl)
        assert lines[0].startswith("time (m: change)") and lines[0].rstrip().endswith("4.00s")
        # time: a starts at 0 and takes a quarter; b starts at half and runs to the end
        bar_a = lines[2][tl._label_cells():]
        bar_b = lines[3][tl._label_cells():]
        width = 100 - tl._label_cells() - 10 - 2
        assert bar_a.index("█") == 0 and abs(bar_a.count("█") - width / 4) <= 1
        assert abs(bar_b.index("█") - width / 2) <= 1
        tl.action_cycle_scale()
        await pilot.pause()
        lines = _bars(tl)
        assert lines[0].startswith("tokens")
        assert lines[1][tl._label_cells():].strip() == ""  # the root has no tokens
        assert lines[2][tl._label_cells():].count("█") > 3 * lines[3][tl._label_cells():].count("█")
        assert "1,000 tok" in lines[2]
        tl.action_cycle_scale()
        await pilot.pause()
        lines = _bars(tl)
        assert lines[0].startswith("cost") and "$0.01" in lines[2] and "█" not in lines[3]


async def test_timeline_scrolls_with_many_spans() -> None:
    nodes = [node("r", None, type="eval", start=0.0, end=100.0)]
    nodes += [node(f"s{i}", "r", type="llm", start=float(i), end=i + 0.5) for i in range(100)]
    trace = TraceData.from_nodes("e", "r", nodes)

    class TimelineApp(App):
        def compose(self) -> ComposeResult:
            yield Timeline()

    app = TimelineApp()
    async with app.run_test(size=(80, 12)) as pilot:
        tl = app.query_one(Timeline)
        tl.show_trace(trace)
        tl.focus()
        await pilot.pause()
        await pilot.press("G")
        await pilot.pause()
        assert tl.cursor == 100 and tl.scroll_y > 0
        assert "s99" in tl.render_line(tl.size.height - 1).text  # the cursor row is on screen
        assert tl.render_line(0).text.startswith("time")  # the axis stays on top


async def test_thread_of_a_huge_conversation_is_capped() -> None:
    from evaltui.tui.widgets import thread_view

    nodes = [node("r", None, type="eval", start=0.0, end=1.0)]
    nodes += [node(f"l{i}", "r", type="llm", start=i / 1000, input=[{"role": "user", "content": f"q{i}"}],
                   output=f"a{i}") for i in range(thread_view.ENTRY_LIMIT)]
    trace = TraceData.from_nodes("e", "r", nodes)

    class ThreadApp(App):
        def compose(self) -> ComposeResult:
            yield ThreadView()

    app = ThreadApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(ThreadView)
        view.show_trace(trace)
        await pilot.pause()
        assert len(view.children) == thread_view.ENTRY_LIMIT + 1
        assert "more messages not shown" in str(view.children[-1].render())


# -- the span tree (Line API) --------------------------------------------------------------


def big_tree(children: int = 999) -> TraceData:
    """A root, one task span holding ``children`` llm spans, and a scorer."""
    nodes = [node("r", None, name="eval", type="eval", start=0.0, end=2.0),
             node("task", "r", name="task", start=0.0, end=1.5)]
    nodes += [node(f"c{i}", "task", name=f"call {i}", type="llm", start=i / 1000, end=i / 1000 + 0.001,
                   metrics={"tokens": i}) for i in range(children)]
    nodes.append(node("score", "r", name="Factuality", type="score", start=1.9, end=2.0, scores={"Factuality": 0.25}))
    return TraceData.from_nodes("e", "r", nodes)


class TreeApp(App):
    def __init__(self, trace: TraceData) -> None:
        super().__init__()
        self.trace = trace
        self.selected: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield TraceTree()

    def on_mount(self) -> None:
        tree = self.query_one(TraceTree)
        tree.show_trace(self.trace)
        tree.focus()

    def on_trace_tree_span_selected(self, event: TraceTree.SpanSelected) -> None:
        self.selected.append(event.span_id)


async def test_big_tree_paints_only_the_lines_on_screen() -> None:
    app = TreeApp(big_tree())
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        tree = app.query_one(TraceTree)
        assert tree.last_line == 1001  # every span has a line
        text = screen(app)
        assert "▼ eval" in text and "├─ ▼ task" in text and "│  ├─ call 0 llm" in text
        assert len(tree._labels) <= 20  # labels made for the lines painted, not for 1,002 spans
        await pilot.press("G")
        await pilot.pause()
        assert tree.cursor_node.data == "score" and tree.scroll_y > 0
        assert "└─ Factuality score" in screen(app) and "Factuality 0.25" in screen(app)
        assert app.selected[-1] == "score"  # the detail follows the cursor


async def test_tree_folds_and_unfolds_keeping_the_cursor_on_its_span() -> None:
    app = TreeApp(big_tree(50))
    async with app.run_test(size=(80, 20)) as pilot:
        await pilot.pause()
        tree = app.query_one(TraceTree)
        tree.select_span("c10")
        await pilot.pause()
        assert tree.cursor_node.data == "c10"
        await pilot.press("h")  # a leaf: h goes to the parent
        assert tree.cursor_node.data == "task"
        await pilot.press("h")  # an open parent: h folds it
        await pilot.pause()
        assert not tree.cursor_node.is_expanded and tree.last_line == 2
        assert "▶ task" in screen(app) and "call 0" not in screen(app)
        await pilot.press("space")
        await pilot.pause()
        assert tree.cursor_node.is_expanded and tree.last_line == 52
        tree.cursor_node.collapse()
        tree.select_span("c7")  # selecting a hidden span unfolds its parents
        await pilot.pause()
        assert tree.cursor_node.data == "c7" and "call 7" in screen(app)


async def test_empty_trace_says_so() -> None:
    app = TreeApp(TraceData.from_nodes("e", "r", []))
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        assert "(no spans)" in screen(app)
        await pilot.press("j", "G", "l", "h", "space")  # nothing to move to: no error
        assert app.query_one(TraceTree).cursor_node is None
