"""Reviewing in the TUI: r, a, selection, review mode, human scores, comments, rescoring,
live refresh from another process, and snapshots of the review dialogs."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_tui_app import (
    EXP,
    _snap_app,
    _steps,
    build_store,
    make_app,
    screen_text,
    settle,
    table,
)

from evaltui.store import Store, create_experiment, write_spans
from evaltui.store.review import (
    add_comment,
    assign,
    define_human_score,
    human_answers,
    list_comments,
    toggle_reviewed,
    trace_history,
)
from evaltui.tui.screens.assign import AssignScreen
from evaltui.tui.screens.comment import CommentScreen
from evaltui.tui.screens.experiment import ExperimentScreen
from evaltui.tui.screens.experiment_list import ExperimentList, ExperimentListScreen
from evaltui.tui.screens.human_score import DefineScoreScreen, HumanScoreScreen
from evaltui.tui.screens.rescore import RescoreScreen
from evaltui.tui.widgets.comments import ReviewNotes

WIDE = (320, 30)  # every column on screen, the review ones included
EID = "exp-new"


@pytest.fixture(autouse=True)
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "config.toml"
    path.parent.mkdir()
    path.write_text('clipboard = "osc52"\nuser = "alice"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "fixture.db"
    build_store(path).close()
    return path


def row_of(app: Any, root: str) -> dict[str, Any]:
    frame = table(app).frame
    return frame.filter(frame["root_span_id"] == root).row(0, named=True)


def root_at(app: Any, row: int) -> str:
    return table(app).frame["root_span_id"][row]


async def wait_for(pilot: Any, check: Any, seconds: float = 5.0) -> float:
    """Pause until ``check()`` is true; returns how long it took (fails after ``seconds``)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not seen within {seconds} s")
        await pilot.pause(0.05)
    return time.monotonic() - start


# -- r --------------------------------------------------------------------------------------


async def test_r_marks_the_trace_reviewed_and_back(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        root = root_at(app, 0)
        assert "✓ 0/5" in screen_text(app)
        await pilot.press("r")
        await settle(pilot)
        assert row_of(app, root)["review_status"] == "reviewed"
        assert row_of(app, root)["reviewed_by"] == "alice"
        text = screen_text(app)
        assert "✓ 1/5" in text  # the Review column's summary
        assert text.splitlines()[3].count("reviewed") == 1  # the first row says so
        with Store(db) as other:
            events = trace_history(other, EID, root)
        assert [(e["user"], e["action"], e["before"], e["after"]) for e in events] == [
            ("alice", "review_status", "unreviewed", "reviewed")]
        await pilot.press("r")
        await settle(pilot)
        assert row_of(app, root)["review_status"] == "unreviewed"
        assert table(app).cursor_row == 0  # r alone does not move on


# -- a and selection -------------------------------------------------------------------------


async def test_a_picker_lists_known_users_and_assigns_a_new_name(db: Path) -> None:
    with Store(db) as s:
        assign(s, EID, ["exp-new-t4"], "bob", user="carol")
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AssignScreen)
        text = screen_text(app)
        for name in ("alice  (you)", "bob", "carol", "nobody (unassign)"):
            assert name in text
        await pilot.press(*"dave", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        root = root_at(app, 0)
        assert row_of(app, root)["assignee"] == "dave"
        assert "dave" in screen_text(app).splitlines()[3]
        with Store(db) as s:
            assert [(e["user"], e["action"], e["after"]) for e in trace_history(s, EID, root)] == [
                ("alice", "assign", "dave")]


async def test_select_rows_and_assign_them_together(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("s", "space")  # rows 0 and 1 (the cursor moves on)
        await settle(pilot)
        first, second = root_at(app, 0), root_at(app, 1)
        assert table(app).selected == {first, second}
        assert "2 selected" in screen_text(app)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("b", "o", "b", "enter")
        await settle(pilot)
        assert [row_of(app, r)["assignee"] for r in (first, second)] == ["bob", "bob"]
        assert row_of(app, root_at(app, 2))["assignee"] is None
        await pilot.press("a")
        await settle(pilot)
        await pilot.press(*["down"] * 6, "enter")  # the last option: nobody
        await settle(pilot)
        assert [row_of(app, r)["assignee"] for r in (first, second)] == [None, None]
        await pilot.press("escape")  # esc unselects before it goes back
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        assert not table(app).selected
        assert "selected" not in screen_text(app).splitlines()[0]


async def test_S_selects_the_rows_the_filter_matches(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"metadata.category = 'shipping'", "enter")  # the table takes the keys
        await settle(pilot)
        assert table(app).row_count == 2
        await pilot.press("S")
        await settle(pilot)
        assert table(app).selected == {"exp-new-t0", "exp-new-t4"}
        assert "2 selected" in screen_text(app)
        await pilot.press("S")  # again: unselect them
        await settle(pilot)
        assert not table(app).selected


# -- review mode ---------------------------------------------------------------------------


async def test_review_mode_counts_marks_and_advances(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        screen = app.screen
        assert screen.review_mode and screen.pane_open
        assert "review: 0 of 5 reviewed" in screen_text(app)
        await pilot.press("r")
        await settle(pilot)
        assert row_of(app, "exp-new-t0")["review_status"] == "reviewed"
        assert table(app).cursor_row == 1  # marked and moved on
        assert "review: 1 of 5 reviewed" in screen_text(app)
        await pilot.pause(0.3)  # the pane follows the cursor
        await settle(pilot)
        assert screen._trace_key == "exp-new-t1"
        await pilot.press("J", "J")
        await settle(pilot)
        assert table(app).cursor_row == 3
        await pilot.press("K")
        await settle(pilot)
        assert table(app).cursor_row == 2
        await pilot.press("R")
        await settle(pilot)
        assert "review:" not in screen_text(app)


# -- human scores ----------------------------------------------------------------------------


def define_scores(db: Path) -> None:
    with Store(db) as s:
        project_id = s.read("SELECT project_id FROM experiments WHERE id = ?", (EID,))[0][0]
        define_human_score(s, project_id, {"name": "Helpfulness", "kind": "categorical",
                                           "options": {"good": 1, "ok": 0.5, "bad": 0}})
        define_human_score(s, project_id, {"name": "Tone", "kind": "continuous"})
        define_human_score(s, project_id, {"name": "Notes", "kind": "text"})


async def test_human_score_dialog_writes_a_review_span_and_the_column_updates(db: Path) -> None:
    define_scores(db)
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("H")
        await settle(pilot)
        assert isinstance(app.screen, HumanScoreScreen)
        text = screen_text(app)
        assert "Helpfulness" in text and "1  good" in text and "Tone" in text
        await pilot.press("2", "tab", *"80", "tab", *"polite but vague", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        with Store(db) as s:
            assert human_answers(s, EID, "exp-new-t0") == {
                "alice": {"Helpfulness": "ok", "Tone": 0.8, "Notes": "polite but vague"}}
            spans = s.read("SELECT type FROM spans WHERE root_span_id = 'exp-new-t0' AND type = 'review'")
            assert len(spans) == 1
        await wait_for(pilot, lambda: "scores.Helpfulness" in table(app).frame.columns)
        assert row_of(app, "exp-new-t0")["scores.Helpfulness"] == 0.5
        assert row_of(app, "exp-new-t0")["scores.Tone"] == pytest.approx(0.8)
        assert "0.50" in screen_text(app).splitlines()[3]


async def test_human_score_rejects_a_bad_percentage_and_keeps_the_dialog(db: Path) -> None:
    define_scores(db)
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("H")
        await settle(pilot)
        await pilot.press("tab", *"150", "enter")
        await settle(pilot)
        assert isinstance(app.screen, HumanScoreScreen)
        assert "not a percentage from 0 to 100" in screen_text(app)


async def test_define_a_human_score_from_the_palette_form(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("H")
        await settle(pilot)
        assert "no human scores yet" in " ".join(n.message for n in app._notifications)
        app.screen.define_human_score()
        await settle(pilot)
        assert isinstance(app.screen, DefineScoreScreen)
        await pilot.press(*"Helpful", "tab", "tab", *"yes=1, no", "enter")
        await settle(pilot)
        assert "write it as name=value" in screen_text(app)
        await pilot.press(*"=0", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        await pilot.press("H")
        await settle(pilot)
        assert isinstance(app.screen, HumanScoreScreen)
        assert "Helpful" in screen_text(app) and "yes" in screen_text(app)


# -- comments -------------------------------------------------------------------------------


async def test_comment_is_added_and_shown_with_the_history(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, CommentScreen)
        await pilot.press(*"[b]needs a source[/b]", "enter")
        await settle(pilot)
        with Store(db) as s:
            assert [(c["author"], c["text"]) for c in list_comments(s, EID, "exp-new-t0")] == [
                ("alice", "[b]needs a source[/b]")]
        notes = app.screen.query_one(ReviewNotes)
        await wait_for(pilot, lambda: len(notes.comments) == 1)
        notes.scroll_visible(animate=False)
        await settle(pilot)
        text = screen_text(app)
        assert "[b]needs a source[/b]" in text  # literally, never as markup
        assert "alice commented" in text


# -- score with… ------------------------------------------------------------------------------


async def test_score_selected_rows_with_a_built_in_scorer(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("s", "s")
        await settle(pilot)
        app.screen.score_with()
        await settle(pilot)
        assert isinstance(app.screen, RescoreScreen)
        assert "2 traces" in screen_text(app)
        await pilot.press("enter")  # exact_match is ticked
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        await wait_for(pilot, lambda: "scores.exact_match" in table(app).frame.columns)
        values = dict(zip(table(app).frame["root_span_id"], table(app).frame["scores.exact_match"], strict=True))
        assert values["exp-new-t0"] == 0.0 and values["exp-new-t1"] == 0.0
        assert values["exp-new-t2"] is None  # not selected: not scored
        assert "rescored 2 of 2 traces" in " ".join(n.message for n in app._notifications)


async def test_score_with_needs_a_scorer_and_esc_closes(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.score_with()
        await settle(pilot)
        await pilot.press("space", "enter")  # untick exact_match, then run nothing
        await settle(pilot)
        assert "tick at least one scorer" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)


# -- another process ------------------------------------------------------------------------

WRITER = """
import sys
from evaltui.store import Store
from evaltui.store.review import assign, toggle_reviewed
with Store(sys.argv[1]) as s:
    toggle_reviewed(s, "exp-new", "exp-new-t2", "bob")
    assign(s, "exp-new", ["exp-new-t4"], "alice", user="bob")
"""


async def test_another_process_review_and_assignment_show_live_without_restart(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"error is null", "enter")  # a filter, and the cursor on row 2
        await settle(pilot)
        table(app).move_cursor(row=2)
        await settle(pilot)
        cursor_root = root_at(app, 2)
        writer = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, str(db))
        assert await asyncio.wait_for(writer.wait(), 60) == 0
        # shown live, without a restart (how fast is `evaltui bench`'s business, not a test's)
        await wait_for(pilot, lambda: row_of(app, "exp-new-t2")["review_status"] == "reviewed"
                       and row_of(app, "exp-new-t4")["assignee"] == "alice", seconds=10)
        assert root_at(app, table(app).cursor_row) == cursor_root  # the cursor stayed on its trace
        assert app.screen.filter_text == "error is null" and table(app).row_count == 4
        assert "✓ 1/4" in screen_text(app)


async def test_another_connection_comment_and_score_show_live(db: Path) -> None:
    define_scores(db)
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        notes = app.screen.query_one(ReviewNotes)
        await wait_for(pilot, lambda: notes.key == (EID, "exp-new-t0"))
        with Store(db) as other:
            add_comment(other, EID, "exp-new-t0", "bob was here", "bob")
            from evaltui.store.review import set_human_score

            set_human_score(other, EID, "exp-new-t0", "Helpfulness", "good", "bob")
        # another reviewer's comment and score show live, without a restart
        await wait_for(pilot, lambda: [c["text"] for c in notes.comments] == ["bob was here"], seconds=10)
        await wait_for(pilot, lambda: "scores.Helpfulness" in table(app).frame.columns, seconds=10)
        assert row_of(app, "exp-new-t0")["scores.Helpfulness"] == 1.0


async def test_experiment_list_shows_a_new_experiment_live(db: Path) -> None:
    app, _ = make_app(db)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        lst = app.screen.query_one(ExperimentList)
        assert lst.row_count == 3
        await pilot.pause(0.7)  # the watcher has looked once
        with Store(db) as other:
            eid = create_experiment(other, "support-bot", "from-elsewhere", experiment_id="exp-else")
            write_spans(other, [{"id": "else-root", "experiment_id": eid, "span_id": "else", "root_span_id": "else",
                                 "span_attributes": {"name": "eval", "type": "eval"}, "input": "hi"}])
        await wait_for(pilot, lambda: app.screen.query_one(ExperimentList).row_count == 4)
        assert isinstance(app.screen, ExperimentListScreen)
        assert "from-elsewhere" in screen_text(app)


async def test_own_review_is_patched_in_place_and_never_reloads_all_rows(db: Path) -> None:
    """r patches the row at once; the watcher then reads only the changed row, which changes nothing."""
    import evaltui.tui.screens.review as module

    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        full_loads: list[int] = []
        real = module.load_trace_rows
        module.load_trace_rows = lambda *a, **k: full_loads.append(1) or real(*a, **k)  # type: ignore[assignment]
        try:
            before = app.screen.loaded_version
            await pilot.press("r")
            await settle(pilot)
            assert row_of(app, root_at(app, 0))["review_status"] == "reviewed"
            await wait_for(pilot, lambda: app.screen.loaded_version != before)  # the watcher caught up
        finally:
            module.load_trace_rows = real  # type: ignore[assignment]
        assert full_loads == []
        assert row_of(app, root_at(app, 0))["review_status"] == "reviewed"


def test_review_keys_reach_the_store_through_review_module() -> None:
    """The TUI never writes SQL: review actions are store.review's functions."""
    import evaltui.tui.screens.review as module

    for fn in (toggle_reviewed, assign, add_comment):
        assert getattr(module, fn.__name__) is fn


# -- snapshots ---------------------------------------------------------------------------------


@pytest.fixture
def snap_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    Path("config").mkdir(exist_ok=True)
    Path("config/config.toml").write_text('clipboard = "osc52"\nuser = "alice"\n')
    monkeypatch.setenv("EVALTUI_CONFIG", "config/config.toml")
    build_store(Path("fixture.db")).close()
    define_scores(Path("fixture.db"))
    with Store("fixture.db") as s:
        assign(s, EID, ["exp-new-t3"], "bob", user="carol")  # not the trace review mode shows
    return Path("fixture.db")


DIALOGS = [
    ("assign", ("s", "s", "a")),
    ("human-score", ("H", "1")),
    ("comment", ("i", *"too vague")),
]
SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(("name", "keys"), DIALOGS, ids=[d[0] for d in DIALOGS])
def test_snapshot_review_dialog(snap_compare, snap_db: Path, name: str, keys: tuple[str, ...],
                                size: tuple[int, int]) -> None:
    assert snap_compare(_snap_app("fixture.db", EXP), terminal_size=size, run_before=_steps(*keys))


def _palette_dialog(method: str, *keys: str) -> Any:
    async def run(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        getattr(pilot.app.screen, method)()
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
        await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_score_with_dialog(snap_compare, snap_db: Path, size: tuple[int, int]) -> None:
    assert snap_compare(_snap_app("fixture.db", EXP), terminal_size=size, run_before=_palette_dialog("score_with"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_snapshot_define_score_dialog(snap_compare, snap_db: Path, size: tuple[int, int]) -> None:
    run = _palette_dialog("define_human_score", *"Correct", "tab", "tab", *"yes=1, no=0")
    assert snap_compare(_snap_app("fixture.db", EXP), terminal_size=size, run_before=run)


def test_snapshot_review_mode(snap_compare, snap_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _snap_app("fixture.db", EXP)
    notify = app.notify  # review mode's key hint is part of the picture: it must not expire on a slow run
    monkeypatch.setattr(app, "notify", lambda *a, **k: notify(*a, **{**k, "timeout": 600}))
    assert snap_compare(app, terminal_size=(160, 48), run_before=_steps("R", "r"))


# -- merging changed rows -----------------------------------------------------------------------


def test_merge_changed_rows_updates_in_place_and_adds_new_score_columns() -> None:
    import polars as pl

    from evaltui.tui.screens.review import merge_changed_rows

    frame = pl.DataFrame({"root_span_id": ["a", "b", "c"], "review_status": ["unreviewed"] * 3,
                          "scores.F": [0.1, 0.2, 0.3], "input": ["x", "y", "z"]})
    delta = pl.DataFrame({"root_span_id": ["c", "a"], "review_status": ["reviewed", "unreviewed"],
                          "scores.F": [0.3, 0.1], "input": ["z", "x"], "scores.Human": [1.0, None]})
    merged, changed = merge_changed_rows(frame, delta)
    assert changed == ["review_status", "scores.Human"]  # input and scores.F did not change
    assert merged["root_span_id"].to_list() == ["a", "b", "c"]  # the table's order is kept
    assert merged["review_status"].to_list() == ["unreviewed", "unreviewed", "reviewed"]
    assert merged["scores.Human"].to_list() == [None, None, 1.0]
    assert frame["review_status"].to_list() == ["unreviewed"] * 3  # the old frame is untouched
    assert merge_changed_rows(frame, delta.head(0)) == (frame, [])
    new_row = pl.DataFrame({"root_span_id": ["d"], "review_status": ["reviewed"]})
    assert merge_changed_rows(frame, new_row) is None  # a new trace: the caller loads all rows


async def test_live_refresh_reads_only_the_changed_rows(db: Path) -> None:
    import evaltui.tui.screens.review as module

    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        full_loads: list[int] = []
        real = module.load_trace_rows
        module.load_trace_rows = lambda *a, **k: full_loads.append(1) or real(*a, **k)  # type: ignore[assignment]
        try:
            with Store(db) as other:
                toggle_reviewed(other, EID, "exp-new-t1", "bob")
            await wait_for(pilot, lambda: row_of(app, "exp-new-t1")["review_status"] == "reviewed")
        finally:
            module.load_trace_rows = real  # type: ignore[assignment]
        assert full_loads == []
        assert app.screen.loaded_version[1] == 5


async def test_comment_on_the_span_the_pane_shows_and_a_rescore_elsewhere_reloads_the_trace(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("enter")  # the pane has focus, on the root span
        await settle(pilot)
        await pilot.press("j")  # the task span
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert "span answer of" in screen_text(app)
        await pilot.press(*"slow step", "enter")
        await settle(pilot)
        with Store(db) as s:
            assert [(c["span_id"], c["text"]) for c in list_comments(s, EID, "exp-new-t0")] == [
                ("exp-new-t0-task", "slow step")]
        notes = app.screen.query_one(ReviewNotes)
        await wait_for(pilot, lambda: len(notes.comments) == 1)
        assert "on span answer" in str(notes.render())
        from evaltui.sdk.rescore import rescore
        from evaltui.sdk.scorers import exact_match
        from evaltui.tui.widgets.trace_pane import TracePane

        with Store(db) as other:
            rescore(other, EID, ["exp-new-t0"], [exact_match], user="bob")
        pane = app.screen.query_one(TracePane)
        await wait_for(pilot, lambda: any(s.name == "exact_match" for s in pane.trace.spans))
        assert pane.selected.span_id == "exp-new-t0-task"  # still on the span the reviewer was reading


async def test_review_mode_r_pressed_fast_marks_each_trace_once(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        await pilot.press("r", "r", "r")  # no waiting between the keys
        await settle(pilot)
        statuses = [row_of(app, f"exp-new-t{i}")["review_status"] for i in range(5)]
        assert statuses == ["reviewed"] * 3 + ["unreviewed"] * 2
        assert table(app).cursor_row == 3
        assert "review: 3 of 5 reviewed" in screen_text(app)
        table(app).move_cursor(row=0)
        await pilot.press("r")  # on a reviewed trace: back to unreviewed, and stay
        await settle(pilot)
        assert row_of(app, "exp-new-t0")["review_status"] == "unreviewed"
        assert table(app).cursor_row == 0


async def test_new_traces_written_elsewhere_appear_and_the_cursor_stays(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        table(app).move_cursor(row=3)
        await settle(pilot)
        with Store(db) as other:  # an import (issue 6's watched file) adds a trace
            write_spans(other, [{"id": "late-root", "experiment_id": EID, "span_id": "late", "root_span_id": "late",
                                 "span_attributes": {"name": "eval", "type": "eval"}, "input": "a late question",
                                 "created": "2025-12-31T00:00:00+00:00"}])  # sorts first
        await wait_for(pilot, lambda: table(app).row_count == 6)
        assert root_at(app, table(app).cursor_row) == "exp-new-t3"  # the same trace, one row lower
        assert "6 of 6 rows" in screen_text(app)


async def test_score_with_cancel_keeps_what_was_scored(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaltui.tui.screens.rescore as module
    from evaltui.sdk.scorers import ExactMatch

    started, release = threading.Event(), threading.Event()

    class Slow(ExactMatch):
        def __call__(self, output: Any, expected: Any = None) -> Any:
            started.set()
            release.wait(10)  # the first trace is still being scored when esc comes
            return super().__call__(output, expected)

    monkeypatch.setitem(module.BUILTIN_SCORERS, "exact_match", Slow)
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("S")
        app.screen.score_with()
        await pilot.pause(0.2)
        dialog = app.screen
        assert isinstance(dialog, RescoreScreen)
        await pilot.press("enter")
        await wait_for(pilot, started.is_set, seconds=10)
        assert "esc cancels" in screen_text(app) and dialog.query_one("ProgressBar").display
        await pilot.press("escape")
        await wait_for(pilot, dialog.cancel_event.is_set, seconds=10)
        release.set()
        await wait_for(pilot, lambda: not isinstance(app.screen, RescoreScreen), seconds=10)
        assert dialog.report is not None and dialog.report.cancelled
        assert dialog.report.scored == 1  # the trace being scored is kept; none after esc
        with Store(db) as s:
            written = s.read("SELECT count(*) FROM spans WHERE experiment_id = ? AND name = 'exact_match'", (EID,))
        assert written[0][0] == dialog.report.scored


async def test_score_with_a_scorer_file_of_ones_own(db: Path, tmp_path: Path) -> None:
    checks = tmp_path / "checks.py"
    checks.write_text("def polite(output):\n    return 1.0 if output and 'please' in str(output).lower() else 0.0\n\n"
                      "def broken(output):\n    raise RuntimeError('boom')\n")
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.score_with()
        await settle(pilot)
        await pilot.press("space", "tab", *str(tmp_path / "missing.py"), "enter")
        await settle(pilot)
        assert isinstance(app.screen, RescoreScreen)
        assert "file not found" in screen_text(app)
        field = app.screen.query_one("#rescore-user")
        field.value = str(checks)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        await wait_for(pilot, lambda: "scores.polite" in table(app).frame.columns)
        assert row_of(app, "exp-new-t0")["scores.polite"] == 0.0
        assert row_of(app, "exp-new-t0")["scorer_errors"] >= 1  # broken raised: recorded, not a crash


async def test_experiment_list_under_the_table_reloads_when_shown_again(db: Path) -> None:
    app, _ = make_app(db, EXP)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        with Store(db) as other:
            write_spans(other, [{"id": "late-root", "experiment_id": EID, "span_id": "late", "root_span_id": "late",
                                 "span_attributes": {"name": "eval", "type": "eval"}, "input": "late"}])
        await wait_for(pilot, lambda: table(app).row_count == 6)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentListScreen)
        frame = app.screen.frame
        assert frame.filter(frame["id"] == EID)["traces"].to_list() == [6]
        lst = app.screen.query_one(ExperimentList)
        assert lst.get_row_at(lst.cursor_row)[1].plain == "new-prompt"  # the cursor on the experiment left


async def test_define_a_multi_select_score_that_writes_expected_and_a_text_score(db: Path) -> None:
    from evaltui.store.review import human_score_definitions

    app, _ = make_app(db, EXP)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.define_human_score()
        await settle(pilot)
        await pilot.press(*"Topics", "tab", "tab", *"billing=1, shipping=1", "tab", "space", "tab", "space", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ExperimentScreen)
        app.screen.define_human_score()
        await settle(pilot)
        dialog = app.screen
        await pilot.press(*"Why")
        dialog.query_one("#ds-kind").value = "text"
        await settle(pilot)
        assert not dialog.query_one("#ds-options").display and dialog.query_one("#ds-path").display
        dialog.query_one("#ds-path").value = "review.why"
        await pilot.press("ctrl+s")
        await settle(pilot)
    with Store(db) as s:
        project_id = s.read("SELECT project_id FROM experiments WHERE id = ?", (EID,))[0][0]
        defs = {d["name"]: d for d in human_score_definitions(s, project_id)}
    assert defs["Topics"]["multi_select"] and defs["Topics"]["write_to_expected"]
    assert [o["name"] for o in defs["Topics"]["options"]] == ["billing", "shipping"]
    assert defs["Why"] == {"name": "Why", "kind": "text", "path": "review.why"}


async def test_r_in_a_grouped_table_repaints_the_row_under_the_cursor(db: Path) -> None:
    """Group headers shift display rows away from frame rows: r must repaint the marked row,
    not the row that sits at its frame index."""
    app, _ = make_app(db, EXP)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.set_group("metadata.category")
        await settle(pilot)
        t = table(app)
        assert t._rows.groups  # a header row first, then its rows
        t.move_cursor(row=1)
        await pilot.pause()
        root = t.current_row()["root_span_id"]
        await pilot.press("r")
        await settle(pilot)
        assert row_of(app, root)["review_status"] == "reviewed"
        line = screen_text(app).splitlines()[3 + 1]  # title, header, summary, group header, then row 1
        assert "reviewed" in line and "unreviewed" not in line
