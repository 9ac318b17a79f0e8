"""Human review (evaltui.store.review): state, assignment, human scores, comments, history."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaltui import store as st
from evaltui.store import review as rv
from evaltui.store.readers import query_trace_rows


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> st.Store:
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    s = st.Store(tmp_path / "review.db")
    yield s
    s.close()


def trace(eid: str, i: int, *, output: str = "yes", expected: str | None = "yes", judge: float | None = None) -> list:
    root = f"t{i}"
    spans = [
        {"id": f"{eid}-{root}", "experiment_id": eid, "span_id": root,
         "span_attributes": {"name": "eval", "type": "eval"}, "input": {"q": i}, "output": output,
         "expected": expected, "metrics": {"start": 1000.0 + i, "end": 1001.0 + i}},
        {"id": f"{eid}-{root}.task", "experiment_id": eid, "span_id": f"{root}.task", "root_span_id": root,
         "span_parents": [root], "span_attributes": {"name": "task", "type": "task"}, "output": output,
         "metrics": {"start": 1000.0 + i, "end": 1001.0 + i, "tokens": 10}},
    ]
    if judge is not None:
        spans.append({"id": f"{eid}-{root}.judge", "experiment_id": eid, "span_id": f"{root}.judge",
                      "root_span_id": root, "span_parents": [root],
                      "span_attributes": {"name": "Helpfulness", "type": "score"}, "scores": {"Helpfulness": judge}})
    return spans


@pytest.fixture
def exp(db: st.Store) -> tuple[str, str]:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [s for i in range(5) for s in trace(eid, i)])
    return eid, st.find_experiment(db, eid)["project_id"]


def row(db: st.Store, eid: str, root: str) -> dict:
    frame = st.load_trace_rows(db, eid)
    return frame.filter(frame["root_span_id"] == root).to_dicts()[0]


def events(db: st.Store) -> int:
    return db.read("SELECT count(*) FROM events")[0][0]


# -- review state ---------------------------------------------------------------------------------


def test_toggle_reviewed_flips_and_records_who(db, exp):
    eid, _ = exp
    assert rv.toggle_reviewed(db, eid, "t0", "alice") == "reviewed"
    r = row(db, eid, "t0")
    assert (r["review_status"], r["reviewed_by"]) == ("reviewed", "alice")
    assert rv.toggle_reviewed(db, eid, "t0", "bob") == "unreviewed"
    r = row(db, eid, "t0")
    assert (r["review_status"], r["reviewed_by"]) == ("unreviewed", None)
    # a trace in review becomes reviewed
    st.set_review(db, eid, ["t1"], user="alice", review_status="in review")
    assert rv.toggle_reviewed(db, eid, "t1", "bob") == "reviewed"


def test_history_in_order_with_before_and_after(db, exp):
    eid, _ = exp
    rv.toggle_reviewed(db, eid, "t0", "alice")
    rv.assign(db, eid, ["t0"], "bob", "alice")
    rv.toggle_reviewed(db, eid, "t0", "bob")
    rv.add_comment(db, eid, "t0", "looks off", "bob")
    history = rv.trace_history(db, eid, "t0")
    assert [(e["user"], e["action"], e["before"], e["after"]) for e in history[:3]] == [
        ("alice", "review_status", "unreviewed", "reviewed"),
        ("alice", "assign", None, "bob"),
        ("bob", "review_status", "reviewed", "unreviewed"),
    ]
    assert history[3]["action"] == "comment" and history[3]["after"]["text"] == "looks off"
    assert [e["seq"] for e in history] == sorted(e["seq"] for e in history)
    assert [e["ts"] for e in history] == sorted(e["ts"] for e in history)
    assert history[0]["text"] == "alice set review status: unreviewed → reviewed"
    assert history[1]["text"] == "alice set assignee: none → bob"
    assert "bob commented: looks off" == history[3]["text"]
    assert rv.trace_history(db, eid, "t1") == []


def test_assign_in_bulk_only_changes_what_differs(db, exp):
    eid, _ = exp
    assert rv.assign(db, eid, ["t0", "t1", "t2"], "carol", "alice") == 3
    before = events(db)
    assert rv.assign(db, eid, ["t0", "t1", "t3"], "carol", "alice") == 1  # t3 only
    assert events(db) == before + 1
    frame = st.load_trace_rows(db, eid)
    assert dict(zip(frame["root_span_id"], frame["assignee"], strict=True)) == {
        "t0": "carol", "t1": "carol", "t2": "carol", "t3": "carol", "t4": None}
    assert rv.assign(db, eid, ["t0"], None, "alice") == 1
    assert row(db, eid, "t0")["assignee"] is None
    # the status is left alone
    assert row(db, eid, "t1")["review_status"] == "unreviewed"


def test_review_changes_bump_row_versions(db, exp):
    eid, _ = exp
    version = db.read("SELECT rows_version FROM experiments WHERE id = ?", (eid,))[0][0]
    rv.toggle_reviewed(db, eid, "t2", "alice")
    changed = query_trace_rows(db, eid, since_version=version)
    assert changed["root_span_id"].to_list() == ["t2"]


def test_mark_reviewed_and_progress(db, exp):
    eid, _ = exp
    assert rv.review_progress(db, eid) == (0, 5)
    assert rv.mark_reviewed(db, eid, ["t0", "t1", "t1"], "alice") == 2
    assert rv.review_progress(db, eid) == (2, 5)
    assert rv.review_progress(db, eid, ["t0", "t2", "nope"]) == (1, 2)
    assert rv.mark_reviewed(db, eid, ["t0"], "alice", reviewed=False) == 1
    assert rv.review_progress(db, eid) == (1, 5)


def test_known_users_from_every_source(db, exp):
    eid, _ = exp
    assert rv.known_users(db) == []
    rv.assign(db, eid, ["t0"], "dave", "alice")  # dave never acted himself
    rv.add_comment(db, eid, "t1", "hi", "Erin")
    rv.toggle_reviewed(db, eid, "t2", "bob")
    assert rv.known_users(db) == ["alice", "bob", "dave", "Erin"]


def test_unknown_trace_and_missing_user_are_refused(db, exp):
    eid, _ = exp
    with pytest.raises(st.NotFound):
        rv.toggle_reviewed(db, eid, "nope", "alice")
    with pytest.raises(rv.ReviewError):
        rv.toggle_reviewed(db, eid, "t0", "")
    with pytest.raises(st.NotFound):
        rv.add_comment(db, eid, "nope", "x", "alice")
    assert events(db) == 0


# -- score definitions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"name": "", "kind": "continuous"}, "needs a name"),
        ({"name": "  ", "kind": "continuous"}, "needs a name"),
        ({"kind": "continuous"}, "needs a name"),
        ({"name": "q", "kind": "stars"}, "unknown kind 'stars'"),
        ({"name": "q", "kind": "categorical", "options": {"good": 1.5}}, "outside [0, 1]"),
        ({"name": "q", "kind": "categorical", "options": {"bad": -0.1}}, "outside [0, 1]"),
        ({"name": "q", "kind": "categorical", "options": {"x": "1"}}, "outside [0, 1]"),
        ({"name": "q", "kind": "categorical", "options": [{"name": "Good", "value": 1}, {"name": "good", "value": 0}]},
         "duplicate option 'good'"),
        ({"name": "q", "kind": "categorical", "options": {}}, "at least one option"),
        ({"name": "q", "kind": "categorical"}, "needs options"),
        ({"name": "q", "kind": "categorical", "options": {"": 1}}, "an option needs a name"),
        ({"name": "q", "kind": "categorical", "options": {"a": 1}, "multi_select": "yes"}, "true or false"),
        ({"name": "q", "kind": "continuous", "options": {"a": 1}}, "unknown field 'options'"),
        ({"name": "q", "kind": "text", "path": "a..b"}, "not a dotted metadata path"),
        ({"name": "q", "kind": "text", "path": "reviewer"}, "reserved"),
        ("q", "is an object"),
    ],
)
def test_invalid_definitions_are_refused_clearly(db, exp, definition, message):
    _, pid = exp
    with pytest.raises(rv.ScoreDefinitionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        rv.define_human_score(db, pid, definition)
    assert rv.human_score_definitions(db, pid) == []


def test_definitions_are_normalised_saved_and_replaced_in_place(db, exp):
    _, pid = exp
    saved = rv.define_human_score(db, pid, {"name": "Helpfulness", "kind": "categorical",
                                            "options": {"good": 1, "ok": 0.5, "bad": 0}})
    assert saved["options"] == [{"name": "good", "value": 1.0}, {"name": "ok", "value": 0.5},
                                {"name": "bad", "value": 0.0}]
    assert saved["multi_select"] is False and saved["write_to_expected"] is False
    rv.define_human_score(db, pid, {"name": "Quality", "kind": "continuous"})
    rv.define_human_score(db, pid, {"name": "Notes", "kind": "free-form"})
    rv.define_human_score(db, pid, {"name": "Helpfulness", "kind": "categorical", "options": {"yes": 1, "no": 0}})
    defs = rv.human_score_definitions(db, pid)
    assert [d["name"] for d in defs] == ["Helpfulness", "Quality", "Notes"]
    assert defs[0]["options"][0]["name"] == "yes"
    assert defs[2] == {"name": "Notes", "kind": "text", "path": "Notes"}
    assert st.project_settings(db, pid)["score_definitions"] == defs  # shared by all reviewers
    with pytest.raises(rv.ScoreDefinitionError, match="overlaps"):
        rv.define_human_score(db, pid, {"name": "More", "kind": "text", "path": "Notes.extra"})
    assert rv.remove_human_score(db, pid, "Quality") is True
    assert rv.remove_human_score(db, pid, "Quality") is False


# -- scoring by hand -------------------------------------------------------------------------------


@pytest.fixture
def scored(db, exp):
    eid, pid = exp
    rv.define_human_score(db, pid, {"name": "Helpfulness", "kind": "categorical",
                                    "options": {"good": 1, "ok": 0.5, "bad": 0}})
    rv.define_human_score(db, pid, {"name": "Quality", "kind": "continuous"})
    rv.define_human_score(db, pid, {"name": "Notes", "kind": "text", "path": "notes.general"})
    rv.define_human_score(db, pid, {"name": "Topics", "kind": "categorical", "multi_select": True,
                                    "options": {"billing": 1, "login": 0.5, "other": 0}})
    return eid, pid


def test_two_reviewers_scores_average_on_the_trace_row(db, scored):
    eid, _ = scored
    assert rv.set_human_score(db, eid, "t0", "Helpfulness", "good", "alice") == 1.0
    assert rv.set_human_score(db, eid, "t0", "Helpfulness", "ok", "bob") == 0.5
    rv.set_human_score(db, eid, "t0", "Quality", 70, "alice")
    rv.set_human_score(db, eid, "t0", "Quality", 30, "bob")
    r = row(db, eid, "t0")
    assert r["scores.Helpfulness"] == pytest.approx(0.75)
    assert r["scores.Quality"] == pytest.approx(0.5)
    assert r["span_count"] == 4  # root, task, one review span per reviewer
    # re-scoring updates the reviewer's own span: no new span, the mean follows
    rv.set_human_score(db, eid, "t0", "Helpfulness", "bad", "alice")
    r = row(db, eid, "t0")
    assert r["span_count"] == 4
    assert r["scores.Helpfulness"] == pytest.approx(0.25)
    assert r["scores.Quality"] == pytest.approx(0.5)  # alice's other score is kept
    # clearing an answer leaves the other reviewer's
    assert rv.set_human_score(db, eid, "t0", "Helpfulness", None, "alice") is None
    assert row(db, eid, "t0")["scores.Helpfulness"] == pytest.approx(0.5)


def test_review_span_is_deterministic_and_typed(db, scored):
    eid, _ = scored
    rv.set_human_score(db, eid, "t1", "Quality", 42, "alice")
    rid = rv.review_span_id(eid, "t1", "alice")
    span = st.load_span(db, rid)
    assert span["span_attributes"] == {"name": "review: alice", "type": "review"}
    assert span["span_parents"] == ["t1"]
    assert span["scores"] == {"Quality": 0.42}
    assert span["metadata"]["reviewer"] == "alice"
    assert rv.review_span_id(eid, "t1", "alice") == rid != rv.review_span_id(eid, "t1", "bob")


def test_human_scores_average_with_automated_ones_of_the_same_name(db, exp):
    eid, pid = exp
    st.write_spans(db, trace(eid, 9, judge=0.2))
    rv.define_human_score(db, pid, {"name": "Helpfulness", "kind": "continuous"})
    rv.set_human_score(db, eid, "t9", "Helpfulness", 100, "alice")
    assert row(db, eid, "t9")["scores.Helpfulness"] == pytest.approx(0.6)


def test_free_form_answers_per_reviewer(db, scored):
    eid, _ = scored
    rv.set_human_score(db, eid, "t2", "Notes", "too long", "alice")
    rv.set_human_score(db, eid, "t2", "Notes", "fine by me", "bob")
    rv.set_human_score(db, eid, "t2", "Helpfulness", "ok", "bob")
    rv.set_human_score(db, eid, "t2", "Topics", ["login", "billing"], "bob")
    assert rv.human_answers(db, eid, "t2") == {
        "alice": {"Notes": "too long"},
        "bob": {"Notes": "fine by me", "Helpfulness": "ok", "Topics": ["login", "billing"]},
    }
    span = st.load_span(db, rv.review_span_id(eid, "t2", "alice"))
    assert span["metadata"]["notes"] == {"general": "too long"}
    assert "scores.Notes" not in st.load_trace_rows(db, eid).columns  # text is no score
    assert row(db, eid, "t2")["scores.Topics"] == pytest.approx(0.75)  # mean of the chosen options
    rv.set_human_score(db, eid, "t2", "Notes", "", "alice")  # empty text clears
    assert "alice" not in rv.human_answers(db, eid, "t2")
    assert "notes" not in st.load_span(db, rv.review_span_id(eid, "t2", "alice"))["metadata"]


def test_human_score_events_record_before_and_after(db, scored):
    eid, _ = scored
    rv.set_human_score(db, eid, "t3", "Helpfulness", "good", "alice")
    rv.set_human_score(db, eid, "t3", "Helpfulness", "Bad", "alice")  # option names ignore case
    rv.set_human_score(db, eid, "t3", "Quality", 55, "alice")
    history = [e for e in rv.trace_history(db, eid, "t3") if e["action"] == "human_score"]
    assert [(e["before"], e["after"]) for e in history] == [
        ({"Helpfulness": None}, {"Helpfulness": "good"}),
        ({"Helpfulness": "good"}, {"Helpfulness": "bad"}),
        ({"Quality": None}, {"Quality": 0.55}),
    ]
    assert history[0]["span_id"] == rv.review_span_id(eid, "t3", "alice")
    assert history[1]["text"] == "alice scored Helpfulness: good → bad"
    assert history[2]["text"] == "alice scored Quality: none → 0.55"
    # the same answer again changes nothing and logs nothing
    before = events(db)
    rv.set_human_score(db, eid, "t3", "Quality", 55, "alice")
    assert events(db) == before


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Helpfulness", "great", "no option 'great'"),
        ("Helpfulness", ["good", "ok"], "takes one option"),
        ("Helpfulness", 1, "choose an option by name"),
        ("Quality", 101, "outside 0..100"),
        ("Quality", -1, "outside 0..100"),
        ("Quality", "70", "percentage"),
        ("Quality", True, "percentage"),
        ("Notes", 3, "free-form text"),
        ("Nope", 1, "no human score named 'Nope'"),
    ],
)
def test_bad_human_scores_write_nothing(db, scored, name, value, message):
    eid, _ = scored
    before = events(db)
    with pytest.raises(rv.ReviewError, match=message):
        rv.set_human_score(db, eid, "t0", name, value, "alice")
    assert events(db) == before
    assert db.read("SELECT count(*) FROM spans WHERE type = 'review'")[0][0] == 0


def test_categorical_choice_can_become_the_expected_value(db, exp):
    eid, pid = exp
    rv.define_human_score(db, pid, {"name": "Label", "kind": "categorical", "write_to_expected": True,
                                    "options": {"refund": 1, "other": 0}})
    rv.set_human_score(db, eid, "t4", "Label", "refund", "alice")
    root = st.load_span(db, f"{eid}-t4")
    assert root["expected"] == "refund"
    assert root["output"] == "yes"  # the rest of the root is kept
    assert row(db, eid, "t4")["expected"] == "refund"
    expected_events = [e for e in rv.trace_history(db, eid, "t4") if e["action"] == "expected"]
    assert [(e["before"], e["after"]) for e in expected_events] == [("yes", "refund")]
    rv.set_human_score(db, eid, "t4", "Label", "refund", "bob")  # the same choice: no new version
    assert len([e for e in rv.trace_history(db, eid, "t4") if e["action"] == "expected"]) == 1


# -- comments ---------------------------------------------------------------------------------------


def test_comments_add_list_delete(db, exp):
    eid, _ = exp
    c1 = rv.add_comment(db, eid, "t0", "first", "alice")
    c2 = rv.add_comment(db, eid, "t0", "on the task [b]not markup[/b]", "bob", span_id="t0.task")
    rv.add_comment(db, eid, "t1", "elsewhere", "bob")
    listed = rv.list_comments(db, eid, "t0")
    assert [(c["id"], c["author"], c["span_id"], c["text"]) for c in listed] == [
        (c1, "alice", None, "first"), (c2, "bob", "t0.task", "on the task [b]not markup[/b]")]
    with pytest.raises(rv.NotAllowed, match="only 'alice'"):
        rv.delete_comment(db, c1, "bob")
    rv.delete_comment(db, c1, "alice")
    assert [c["id"] for c in rv.list_comments(db, eid, "t0")] == [c2]
    with pytest.raises(st.NotFound):
        rv.delete_comment(db, c1, "alice")
    actions = [(e["action"], e["user"]) for e in rv.trace_history(db, eid, "t0")]
    assert actions == [("comment", "alice"), ("comment", "bob"), ("delete_comment", "alice")]
    deleted = rv.trace_history(db, eid, "t0")[-1]
    assert deleted["before"] == {"id": c1, "text": "first"} and deleted["after"] is None


def test_comment_validation(db, exp):
    eid, _ = exp
    with pytest.raises(rv.ReviewError, match="needs some text"):
        rv.add_comment(db, eid, "t0", "   ", "alice")
    with pytest.raises(st.NotFound, match="no span"):
        rv.add_comment(db, eid, "t0", "x", "alice", span_id="t1.task")  # a span of another trace
    assert rv.list_comments(db, eid, "t0") == []
    assert events(db) == 0
