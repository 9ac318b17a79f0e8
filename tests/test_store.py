"""The store: round trips, roll-ups, atomic batches, migrations, concurrency, the frame cache."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from evaltui import store as st
from evaltui.store import frame_cache
from evaltui.store.schema import SCHEMA_VERSION, migrate


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> st.Store:
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    s = st.Store(tmp_path / "t.db")
    yield s
    s.close()


def span(eid: str, sid: str, root: str | None = None, parent: str | None = None, **fields) -> dict:
    rec = {"id": f"row-{sid}", "experiment_id": eid, "span_id": sid}
    if root and root != sid:
        rec["root_span_id"] = root
        rec["span_parents"] = [parent or root]
    name = fields.pop("name", sid)
    rec["span_attributes"] = {"name": name, "type": fields.pop("type", "function")}
    rec.update(fields)
    return rec


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- round trip ------------------------------------------------------------------------------


def test_every_span_field_round_trips(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    root = {
        "id": "r1",
        "experiment_id": eid,
        "span_id": "s-root",
        "root_span_id": "s-root",
        "span_parents": [],
        "span_attributes": {"name": "eval", "type": "eval", "exec_counter": 3},
        "input": {"question": "Wie geht's? ünïcødé", "history": [1, 2.5, None, True]},
        "output": "line one\nline two [bold]not markup[/] \x1b[31mred\x1b[0m",
        "expected": ["a", {"b": None}],
        "error": {"message": "boom", "type": "ValueError"},
        "scores": {"acc": 0.25, "judge": None},
        "metadata": {"model": "gpt-4o", "nested": {"tier": "gold", "n": 3}},
        "metrics": {"start": 100.5, "end": 103.25, "tokens": 42, "estimated_cost": 0.0012},
        "tags": ["triage", "v2"],
        "origin": {"dataset": "support", "record": 7},
        "dataset_record_id": "dr-7",
        "created": "2026-01-02T03:04:05.000006+00:00",
    }
    child = {
        "id": "c1",
        "experiment_id": eid,
        "span_id": "s-child",
        "root_span_id": "s-root",
        "span_parents": ["s-root"],
        "span_attributes": {"name": "llm call", "type": "llm"},
        "input": [{"role": "user", "content": "hi"}],
        "output": 3.5,
        "expected": None,
        "error": None,
        "scores": None,
        "metadata": None,
        "metrics": {"start": 101.0, "end": 102.0, "prompt_tokens": 10},
        "tags": None,
        "origin": None,
        "dataset_record_id": None,
        "created": "2026-01-02T03:04:06+00:00",
    }
    assert st.write_spans(db, [root, child]) == 2
    assert st.load_span(db, "r1") == root
    assert st.load_span(db, "c1") == {**child, "span_attributes": child["span_attributes"]}
    assert st.load_experiment_spans(db, eid) == [root, child]


def test_booleans_become_scores_and_defaults_fill_in(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [{"id": "x", "experiment_id": eid, "span_id": "x", "scores": {"ok": True, "bad": False}}])
    rec = st.load_span(db, "x")
    assert rec["scores"] == {"ok": 1.0, "bad": 0.0}
    assert rec["root_span_id"] == "x" and rec["span_parents"] == []
    assert rec["created"]  # filled with the write time


# -- roll-ups --------------------------------------------------------------------------------


def test_trace_rollup_matches_hand_computed_values(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    R = "root"
    spans = [
        span(eid, R, type="eval", input={"q": "capital of France?"}, output="Paris", expected="Paris",
             metadata={"category": "geo", "scorer_errors": {"Judge": "timeout"}}, tags=["t1"],
             metrics={"start": 10.0, "end": 14.0}),
        span(eid, "task", R, type="task", metrics={"start": 10.0, "end": 13.0}),
        span(eid, "llm1", R, "task", type="llm",
             metrics={"start": 10.5, "end": 11.5, "prompt_tokens": 100, "completion_tokens": 20, "tokens": 120,
                      "estimated_cost": 0.002, "time_to_first_token": 0.2}),
        span(eid, "llm2", R, "task", type="llm",
             metrics={"start": 11.5, "end": 12.0, "prompt_tokens": 50, "completion_tokens": 10,
                      "estimated_cost": 0.001, "time_to_first_token": 0.4}),
        span(eid, "tool", R, "task", type="tool", error="404 not found", metrics={"start": 12.0, "end": 12.1}),
        span(eid, "sc-acc", R, type="score", name="Accuracy", scores={"Accuracy": 1.0}),
        span(eid, "sc-acc2", R, type="score", name="Accuracy", scores={"Accuracy": 0.5, "Skipped": None}),
        span(eid, "sc-judge", R, type="score", name="Judge", error="judge timed out", scores={"Judge": None}),
        # an LLM call made by a scorer is not the task's: no tokens, cost or llm_calls
        span(eid, "judge-llm", R, "sc-judge", type="llm",
             metrics={"start": 13.0, "end": 13.5, "prompt_tokens": 999, "tokens": 999, "estimated_cost": 1.0}),
    ]
    st.write_spans(db, spans)
    row = st.load_trace_rows(db, eid).row(0, named=True)
    assert row["scores.Accuracy"] == pytest.approx(0.75)
    assert row["scores.Skipped"] is None and row["scores.Judge"] is None
    assert row["prompt_tokens"] == 150
    assert row["completion_tokens"] == 30
    assert row["tokens"] == 120 + 60  # llm2 logged only the parts
    assert row["estimated_cost"] == pytest.approx(0.003)
    assert row["llm_calls"] == 2 and row["tool_calls"] == 1
    assert row["duration"] == pytest.approx(4.0)
    assert row["llm_duration"] == pytest.approx(1.5)
    assert row["ttft"] == pytest.approx(0.3)
    assert row["errors"] == 1 and row["has_error"] is True
    assert row["error"] == "404 not found"
    assert row["scorer_errors"] == 1  # Judge, named twice (span error + metadata) counts once
    assert row["span_count"] == 9
    assert row["input"] == '{"q":"capital of France?"}'
    assert row["output"] == "Paris"
    assert row["metadata.category"] == "geo"
    assert json.loads(row["tags"]) == ["t1"]
    assert row["review_status"] == "unreviewed"


def test_one_span_traces_roll_up_exactly_as_the_general_walk() -> None:
    """The fast path for traces that are only a root (generic imports, exp.log) must give
    the same trace row, value for value and type for type, as the walk over many spans."""
    import random

    from evaltui.store import rollup
    from evaltui.store.records import validate_span

    rng = random.Random(7)
    maybe = lambda make: make() if rng.random() < 0.6 else None  # noqa: E731
    for i in range(400):
        metrics = {k: v for k, v in {
            "start": maybe(lambda: rng.choice([10, 10.5])),
            "end": maybe(lambda: rng.choice([12, 12.25])),
            "prompt_tokens": maybe(lambda: rng.choice([0, 7, 7.5])),
            "completion_tokens": maybe(lambda: rng.choice([0, 3])),
            "tokens": maybe(lambda: rng.choice([0, 0.0, 12])),
            "prompt_cached_tokens": maybe(lambda: 2),
            "completion_reasoning_tokens": maybe(lambda: 1),
            "estimated_cost": maybe(lambda: rng.choice([1, 0.25])),
            "time_to_first_token": maybe(lambda: rng.choice([1, 0.5])),
        }.items() if v is not None}
        rec = validate_span(i, {
            "id": f"r{i}", "experiment_id": "e", "span_id": f"r{i}",
            "span_attributes": {"name": "row", "type": rng.choice(["eval", "llm", "tool", "task", None])},
            "input": maybe(lambda: rng.choice(["q", {"q": [1, 2]}])),
            "output": maybe(lambda: "a" * rng.choice([3, 900])),
            "expected": maybe(lambda: 4),
            "error": maybe(lambda: rng.choice(["boom", {"message": "bad"}, {"code": 3}])),
            "scores": maybe(lambda: {"b": rng.choice([None, 1, 0.5]), "a": rng.choice([True, 0.25])}),
            "metadata": maybe(lambda: rng.choice([{"m": 1}, {"scorer_errors": {"J": "x", "K": "y"}}])),
            "metrics": metrics or None,
            "tags": maybe(lambda: ["t"]),
            "dataset_record_id": maybe(lambda: "d"),
        })
        key = rng.choice(["input", ["input", "metadata.m"]])
        fast = rollup.trace_row("e", rec["span_id"], [rec], key)
        general = rollup._rollup("e", rec["span_id"], rec, [rec], rollup._scorer_subtree([rec]), set(), key)
        assert [(type(v), v) for v in fast] == [(type(v), v) for v in general], rec


def test_encoding_a_root_in_one_step_equals_the_general_path() -> None:
    """Generic imports encode each row's span row and trace row at once (encode_root); both
    rows must equal, value for value and type for type, what validating the same record
    and rolling its trace up give, and a bad field must be refused naming the same field."""
    import random

    from evaltui.store import rollup
    from evaltui.store.records import validate_span_row

    rng = random.Random(11)
    maybe = lambda make: make() if rng.random() < 0.6 else None  # noqa: E731
    for i in range(400):
        metrics = {k: v for k, v in {
            "start": maybe(lambda: rng.choice([10, 10.5])),
            "end": maybe(lambda: rng.choice([12, 12.25])),
            "tokens": maybe(lambda: rng.choice([0, 12])),
            "prompt_tokens": maybe(lambda: 3),
            "estimated_cost": maybe(lambda: rng.choice([1, 0.25])),
        }.items() if v is not None}
        fields = {
            "name": rng.choice(["row", "q 1", None]),
            "type": rng.choice(["eval", "llm", None]),
            "input": maybe(lambda: rng.choice(["q", {"q": [1, 2]}, "é" * 500])),
            "output": maybe(lambda: "a" * rng.choice([3, 900])),
            "expected": maybe(lambda: rng.choice([4, {"b": None}])),
            "error": maybe(lambda: rng.choice(["boom", {"message": "bad"}])),
            "scores": maybe(lambda: rng.choice([{"b": rng.choice([None, 1, 0.5]), "a": rng.choice([True, 0.25])},
                                                {"acc": 0.75}, {}])),
            "metadata": maybe(lambda: rng.choice([{"m": 1}, {"scorer_errors": {"J": "x"}}, {}])),
            "metrics": metrics or None,
            "tags": maybe(lambda: rng.choice([["t"], []])),
            "dataset_record_id": maybe(lambda: "d"),
            "created": maybe(lambda: rng.choice(["2026-01-02T00:00:00+00:00", 1750000000])),
        }
        key = rng.choice(["input", "metadata.m", ["input", "output"]])
        rid = f"r{i}"
        record = {"id": rid, "experiment_id": "e", "span_id": rid, "root_span_id": rid, "span_parents": [],
                  "span_attributes": {"name": fields["name"], "type": fields["type"]},
                  **{k: v for k, v in fields.items() if k not in ("name", "type")}}
        rec, span_row = validate_span_row(i, record, "NOW")
        trace = rollup.trace_row("e", rid, [rec], key)
        got = st.encode_root(i, rid, "e", fields["name"], fields["type"], fields["input"], fields["output"],
                             fields["expected"], fields["error"], fields["scores"], fields["metadata"],
                             fields["metrics"], fields["tags"], fields["dataset_record_id"], fields["created"],
                             "NOW", key)
        assert [(type(v), v) for v in got[0]] == [(type(v), v) for v in span_row], record
        assert [(type(v), v) for v in got[1]] == [(type(v), v) for v in trace], record

    base = ("r", "e", "n", "eval", "in", None, None, None, None, None, None, None, None, None)
    for at, bad, field in [(9, {"a": 1.5}, "scores"), (9, {"": 1}, "scores"), (11, {"t": "x"}, "metrics.t"),
                           (11, {"t": float("nan")}, "metrics.t"), (12, ["a", 1], "tags"), (10, [1], "metadata"),
                           (13, 5, "dataset_record_id"), (14, [], "created"), (8, {1, 2}, "error")]:
        args = list(base)
        args[at - 1] = bad
        with pytest.raises(st.RecordError) as info:
            st.encode_root(3, *args, "NOW", "input")
        record = {"id": "r", "experiment_id": "e", "span_id": "r", "span_attributes": {"name": "n", "type": "eval"},
                  "input": "in", ["error", "scores", "metadata", "metrics", "tags", "dataset_record_id",
                                  "created"][at - 8]: bad}
        with pytest.raises(st.RecordError) as general:
            validate_span_row(3, record, "NOW")
        assert (info.value.index, info.value.field) == (3, field) == (general.value.index, general.value.field)


def test_trace_row_waits_for_its_root_and_children_may_come_first(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "c", "r", type="llm", metrics={"tokens": 5})])
    assert st.load_trace_rows(db, eid).height == 0  # no root yet
    st.write_spans(db, [span(eid, "r", type="eval", output="done")])
    rows = st.load_trace_rows(db, eid)
    assert rows.height == 1 and rows["tokens"][0] == 5 and rows["span_count"][0] == 2


def test_relogging_an_id_updates_and_never_duplicates(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "r", type="eval", output="first"),
                        span(eid, "s", "r", type="score", scores={"acc": 0.0})])
    st.write_spans(db, [span(eid, "s", "r", type="score", scores={"acc": 1.0})])
    st.write_spans(db, [span(eid, "r", type="eval", output="second")])
    rows = st.load_trace_rows(db, eid)
    assert rows.height == 1
    assert rows["output"][0] == "second" and rows["scores.acc"][0] == 1.0
    assert db.read("SELECT count(*) FROM spans")[0][0] == 2
    # the same id twice in one batch: the last one wins
    st.write_spans(db, [span(eid, "r", type="eval", output="a"), span(eid, "r", type="eval", output="b")])
    assert st.load_trace_rows(db, eid)["output"].to_list() == ["b"]


def test_a_span_moved_to_another_trace_updates_both(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "r1", type="eval"), span(eid, "r2", type="eval"),
                        span(eid, "x", "r1", type="llm", metrics={"tokens": 7})])
    st.write_spans(db, [span(eid, "x", "r2", type="llm", metrics={"tokens": 7})])
    rows = {r["root_span_id"]: r for r in st.load_trace_rows(db, eid).iter_rows(named=True)}
    assert rows["r1"]["tokens"] is None and rows["r1"]["span_count"] == 1
    assert rows["r2"]["tokens"] == 7 and rows["r2"]["span_count"] == 2


# -- atomic batches ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"scores": {"acc": 1.5}}, "scores", "outside [0, 1]"),
        ({"scores": {"acc": "high"}}, "scores", "not a number"),
        ({"metadata": {1: "x"}}, "metadata", "not a string"),
        ({"metrics": {"tokens": float("nan")}}, "metrics.tokens", "finite"),
        ({"output": {"when": {1, 2}}}, "output.when", "set is not JSON-serialisable"),
        ({"tags": "triage"}, "tags", "list of strings"),
        ({"surprise": 1}, "surprise", "unknown field"),
        ({"span_id": ""}, "span_id", "non-empty"),
        ({"experiment_id": "nope"}, "experiment_id", "no experiment"),
    ],
)
def test_a_bad_record_leaves_the_database_byte_for_byte_unchanged(
    tmp_path: Path, bad: dict, field: str, words: str
) -> None:
    path = tmp_path / "t.db"
    with st.Store(path) as s:
        eid = st.create_experiment(s, "proj", "exp")
        st.write_spans(s, [span(eid, "r0", type="eval", output="kept")])
    before = file_digest(path)
    good = [span(eid, f"r{i}", type="eval", output=i) for i in range(1, 5)]
    broken = {**span(eid, "r9", type="eval"), **bad}
    with st.Store(path) as s:
        with pytest.raises(st.RecordError) as info:
            st.write_spans(s, [*good[:2], broken, *good[2:]])
        assert info.value.index == 2
        assert info.value.field == field
        assert words in str(info.value)
        assert str(info.value).startswith("record 2")
    assert file_digest(path) == before
    with st.Store(path) as s:
        assert st.load_trace_rows(s, eid)["output"].to_list() == ["kept"]


def test_a_failure_inside_the_transaction_rolls_everything_back(db: st.Store, monkeypatch) -> None:
    from evaltui.store import writers

    eid = st.create_experiment(db, "proj", "exp")

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(writers, "_record_fields", explode)  # runs after spans and traces are written
    with pytest.raises(RuntimeError):
        st.write_spans(db, [span(eid, "r", type="eval")])
    assert db.read("SELECT count(*) FROM spans")[0][0] == 0
    assert db.read("SELECT count(*) FROM traces")[0][0] == 0


# -- schema ---------------------------------------------------------------------------------


def test_an_older_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), target=1)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.execute("INSERT INTO projects (id, name, created, settings) VALUES ('p', 'proj', '2025', '{}')")
    conn.execute("INSERT INTO experiments (id, project_id, name, created, source) VALUES ('e', 'p', 'old', '2025', 'sdk')")
    conn.close()
    with st.Store(path) as s:
        assert s.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        st.write_spans(s, [span("e", "r", type="eval", output="after migration")])
        st.set_review(s, "e", ["r"], user="ann", review_status="reviewed")
        rows = st.load_trace_rows(s, "e")
        assert rows["reviewed_by"].to_list() == ["ann"]
        assert st.find_experiment(s, "proj/old")["id"] == "e"


def test_a_v2_database_gets_partial_review_indexes_and_keeps_its_reviews(tmp_path: Path) -> None:
    """v3 replaces the full review_status / assignee indexes (two entries per ingested trace)
    with partial ones; reviews written under v2 still count and still find their users."""
    from evaltui.store import review as rv

    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, str(path), target=2)
    conn.execute("INSERT INTO projects (id, name, created, settings) VALUES ('p', 'proj', '2025', '{}')")
    conn.execute("INSERT INTO experiments (id, project_id, name, created, source) VALUES ('e', 'p', 'old', '2025', 'sdk')")
    for i, (status, who) in enumerate([("reviewed", "ann"), ("unreviewed", None), ("in review", "bob")]):
        conn.execute(
            "INSERT INTO traces (experiment_id, root_span_id, id, created, review_status, assignee, reviewed_by,"
            " row_version) VALUES ('e', ?, ?, '2025', ?, ?, ?, 0)",
            (f"r{i}", f"r{i}", status, who, "ann" if status == "reviewed" else None),
        )
    conn.close()
    with st.Store(path) as s:
        assert s.read("PRAGMA user_version")[0][0] == SCHEMA_VERSION
        indexes = {r[0]: r[1] for r in s.read("SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                                               " AND tbl_name = 'traces' AND sql IS NOT NULL")}
        assert "idx_traces_experiment_id_review_status" not in indexes
        assert "idx_traces_experiment_id_assignee" not in indexes
        assert "WHERE review_status = 'reviewed'" in indexes["idx_traces_reviewed"]
        assert "WHERE assignee IS NOT NULL" in indexes["idx_traces_assigned"]
        assert rv.review_progress(s, "e") == (1, 3)
        assert rv.review_progress(s, "e", ["r0", "r1"]) == (1, 2)
        assert rv.known_users(s) == ["ann", "bob"]
        st.set_review(s, "e", ["r1"], user="cy", review_status="reviewed", assignee="cy")
        assert rv.review_progress(s, "e") == (2, 3)
        assert rv.known_users(s) == ["ann", "bob", "cy"]
        assert st.load_experiments(s)["reviewed"].to_list() == [2]
        plan = " ".join(r[-1] for r in s.read(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM traces WHERE experiment_id = 'e' AND review_status = 'reviewed'"))
        assert "idx_traces_reviewed" in plan


def test_a_newer_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with st.Store(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = file_digest(path)
    with pytest.raises(st.SchemaError, match="newer than this evaltui supports"):
        st.Store(path)
    assert file_digest(path) == before


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"samples": []}')
    with pytest.raises(st.StoreError, match="not an SQLite database"):
        st.Store(path)
    assert path.read_text() == '{"samples": []}'


def test_connections_use_wal_and_foreign_keys(db: st.Store) -> None:
    assert db.read("PRAGMA journal_mode")[0][0] == "wal"
    assert db.read("PRAGMA foreign_keys")[0][0] == 1
    assert db.read("PRAGMA busy_timeout")[0][0] >= 5000


def test_a_busy_store_checkpoints_in_the_background_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a store's WAL grows, a background thread copies it into the database file (the
    writer no longer stops for it); every committed row is there, in this connection, in a
    new one, and after close, and close stops the thread."""
    import threading

    from evaltui.store import connection

    monkeypatch.setattr(connection, "CHECKPOINT_AFTER_BYTES", 64 * 1024)
    path = tmp_path / "busy.db"
    s = st.Store(path)
    eid = st.create_experiment(s, "proj", "exp")
    for b in range(30):
        st.write_spans(s, [span(eid, f"r{b}-{k}", type="eval", output="x" * 2000) for k in range(20)])
    cp = s._checkpointer
    assert cp is not None and cp.is_alive()
    for _ in range(100):  # it runs beside the writer: give it a moment
        if path.stat().st_size > 600 * 2000:
            break
        threading.Event().wait(0.05)
    # the rows reached the database file itself (the writer's own checkpoint waits for 1 GB)
    assert cp.ran > 0 and path.stat().st_size > 600 * 2000
    with st.Store(path) as other:
        assert other.read("SELECT count(*) FROM traces")[0][0] == 600
    s.close()
    assert not cp.is_alive()
    with st.Store(path) as again:
        assert st.load_trace_rows(again, eid).height == 600
        assert again.read("PRAGMA integrity_check")[0][0] == "ok"


# -- concurrency ----------------------------------------------------------------------------


def _writer(path: str, eid: str, who: str, batches: int) -> None:
    s = st.Store(path)
    for b in range(batches):
        root = f"{who}-{b}"
        st.write_spans(s, [span(eid, root, type="eval", output=root)]
                       + [span(eid, f"{root}-{k}", root, type="llm", metrics={"tokens": 1}) for k in range(5)])
    s.close()


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with st.Store(path) as s:
        eid = st.create_experiment(s, "proj", "exp")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), eid, who, 40)) for who in ("a", "b")]
    for p in procs:
        p.start()
    # a reader keeps reading while they write
    with st.Store(path) as reader:
        while any(p.is_alive() for p in procs):
            st.load_trace_rows(reader, eid)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with st.Store(path) as s:
        rows = st.load_trace_rows(s, eid)
        assert rows.height == 80
        assert rows["tokens"].to_list() == [5] * 80
        assert s.read("SELECT count(*) FROM spans")[0][0] == 80 * 6


# -- readers -------------------------------------------------------------------------------


def test_experiments_list_counts_and_score_means(db: st.Store) -> None:
    e1 = st.create_experiment(db, "proj", "first", created="2026-01-01T00:00:00+00:00")
    e2 = st.create_experiment(db, "proj", "second", created="2026-02-01T00:00:00+00:00")
    st.write_spans(db, [span(e1, "a", type="eval", scores={"acc": 1.0}), span(e1, "b", type="eval", scores={"acc": 0.0},
                                                                              error="x")])
    st.write_spans(db, [span(e2, "c", type="eval", scores={"acc": 0.5, "f1": 0.25})])
    exps = st.load_experiments(db)
    assert exps["name"].to_list() == ["second", "first"]  # newest first
    first = exps.filter(pl.col("name") == "first").row(0, named=True)
    assert first["traces"] == 2 and first["errors"] == 1
    assert json.loads(first["score_means"]) == {"acc": 0.5}
    assert json.loads(exps.filter(pl.col("name") == "second")["score_means"][0]) == {"acc": 0.5, "f1": 0.25}


def test_a_taken_experiment_name_gets_a_suffix(db: st.Store) -> None:
    a = st.create_experiment(db, "proj", "run")
    b = st.create_experiment(db, "proj", "run")
    assert st.find_experiment(db, "proj/run")["id"] == a
    assert st.find_experiment(db, "proj/run-2")["id"] == b
    with pytest.raises(st.NotFound, match="evaltui ls"):
        st.find_experiment(db, "proj/missing")


def test_span_rows_and_one_trace_in_start_order(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [
        span(eid, "r", type="eval", metrics={"start": 0.0, "end": 9.0}),
        span(eid, "late", "r", type="tool", metrics={"start": 5.0, "end": 6.0}),
        span(eid, "early", "r", type="llm", metrics={"start": 1.0, "end": 2.0, "tokens": 3}),
    ])
    spans = st.load_span_rows(db, eid)
    assert spans["span_id"].to_list() == ["r", "early", "late"]
    assert spans.filter(pl.col("span_id") == "early")["parent_id"][0] == "r"
    assert spans.filter(pl.col("span_id") == "early")["tokens"][0] == 3
    tree = st.load_trace_spans(db, eid, "r")
    assert tree["span_id"].to_list() == ["r", "early", "late"]


def test_review_changes_are_logged_as_events(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "r", type="eval")])
    st.set_review(db, eid, ["r"], user="ann", review_status="reviewed", assignee="bob")
    row = st.load_trace_rows(db, eid).row(0, named=True)
    assert (row["review_status"], row["reviewed_by"], row["assignee"]) == ("reviewed", "ann", "bob")
    events = db.read("SELECT user, action, before, after FROM events ORDER BY seq")
    assert events == [("ann", "review_status", '"unreviewed"', '"reviewed"'), ("ann", "assign", "null", '"bob"')]
    # rewriting the trace's spans keeps the human review
    st.write_spans(db, [span(eid, "r", type="eval", output="again")])
    assert st.load_trace_rows(db, eid)["review_status"][0] == "reviewed"


def test_changing_the_comparison_key_recomputes_keys(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "a", type="eval", input="q1", metadata={"case": 1}),
                        span(eid, "b", type="eval", input="q2", metadata={"case": 1})])
    keys = st.load_trace_rows(db, eid)["comparison_key"].to_list()
    assert keys[0] != keys[1]
    pid = st.find_experiment(db, eid)["project_id"]
    st.update_project_settings(db, pid, comparison_key="metadata.case")
    keys = st.load_trace_rows(db, eid)["comparison_key"].to_list()
    assert keys[0] == keys[1]


# -- frame cache ---------------------------------------------------------------------------


def test_the_frame_cache_follows_every_change(db: st.Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(frame_cache, "MIN_ROWS", 3)
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, f"r{i}", type="eval", output=f"o{i}", created=f"2026-01-0{i + 1}") for i in range(5)])
    first = st.load_trace_rows(db, eid)
    assert list((tmp_path / "cache").rglob("*.arrow"))  # a snapshot was written
    assert st.load_trace_rows(db, eid).equals(first)
    st.set_review(db, eid, ["r2"], user="ann", review_status="reviewed")
    st.write_spans(db, [span(eid, "r9", type="eval", output="new", created="2026-01-09"),
                        span(eid, "r0", type="eval", output="changed", created="2026-01-01")])
    cached = st.load_trace_rows(db, eid)
    fresh = st.load_trace_rows(db, eid, cache=False)
    assert cached.equals(fresh)
    assert cached["output"].to_list() == ["changed", "o1", "o2", "o3", "o4", "new"]
    assert cached["review_status"][2] == "reviewed"


def test_a_corrupt_cache_file_is_ignored(db: st.Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(frame_cache, "MIN_ROWS", 2)
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, f"r{i}", type="eval", output=i) for i in range(3)])
    st.load_trace_rows(db, eid)
    for f in (tmp_path / "cache").rglob("*.arrow"):
        f.write_bytes(b"garbage")
    assert st.load_trace_rows(db, eid).equals(st.load_trace_rows(db, eid, cache=False))


def test_batches_are_each_atomic_and_the_first_bad_one_stops_the_import(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    good1 = [span(eid, "a", type="eval"), span(eid, "a1", "a", type="llm", metrics={"tokens": 2})]
    bad = [span(eid, "b", type="eval"), {**span(eid, "b1", "b", type="llm"), "scores": {"x": 7}}]
    never = [span(eid, "c", type="eval")]
    with pytest.raises(st.RecordError, match="record 1 .*outside"):
        st.write_span_batches(db, [good1, bad, never])
    assert st.load_trace_rows(db, eid)["root_span_id"].to_list() == ["a"]
    assert st.write_span_batches(db, [never, [span(eid, "c1", "c", type="tool")]]) == 2
    rows = st.load_trace_rows(db, eid)
    assert rows.filter(pl.col("root_span_id") == "c")["tool_calls"][0] == 1


def test_a_failure_that_propagates_to_the_root_counts_once(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [
        span(eid, "r", type="eval", error="ValueError: bad"),
        span(eid, "task", "r", type="task", error="ValueError: bad"),
        span(eid, "ok", "r", "task", type="llm"),
    ])
    row = st.load_trace_rows(db, eid).row(0, named=True)
    assert row["errors"] == 1 and row["has_error"] is True and row["error"] == "ValueError: bad"


def test_traces_without_a_key_value_match_nothing(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "a", type="eval", output="x"), span(eid, "b", type="eval", output="y"),
                        span(eid, "c", type="eval", input="q")])
    keys = st.load_trace_rows(db, eid)["comparison_key"].to_list()
    assert keys[0] is None and keys[1] is None and keys[2] is not None


def test_nested_transactions_make_a_whole_import_atomic(db: st.Store) -> None:
    with pytest.raises(st.RecordError):
        with db.transaction():
            eid = st.create_experiment(db, "proj", "imported")
            st.write_spans(db, [span(eid, "a", type="eval")])
            st.write_spans(db, [{**span(eid, "b", type="eval"), "scores": {"x": 2}}])
    assert db.read("SELECT count(*) FROM experiments")[0][0] == 0
    assert db.read("SELECT count(*) FROM spans")[0][0] == 0
    with db.transaction():
        eid = st.create_experiment(db, "proj", "imported")
        st.write_spans(db, [span(eid, "a", type="eval")])
    assert st.load_trace_rows(db, eid).height == 1


def test_non_ascii_score_and_metadata_names_read_back(db: st.Store) -> None:
    eid = st.create_experiment(db, "proj", "exp")
    st.write_spans(db, [span(eid, "r", type="eval", scores={"précision": 0.5}, metadata={"modèle": "m1"})])
    row = st.load_trace_rows(db, eid).row(0, named=True)
    assert row["scores.précision"] == 0.5 and row["metadata.modèle"] == "m1"


def _one_span_traces(eid: str, n: int) -> list[dict]:
    return [{"id": f"r{i}", "experiment_id": eid, "span_id": f"r{i}", "root_span_id": f"r{i}",
             "input": f"q{i}", "scores": {"acc": (i % 4) / 4, "judge": None if i % 3 else 1.0},
             "error": {"message": "boom"} if i % 10 == 0 else None,
             "metrics": {"start": float(i), "end": float(i) + 1}} for i in range(n)]


def test_experiment_counts_and_means_follow_every_change(tmp_path: Path) -> None:
    """The list's figures are remembered per rows_version: a review or a new trace shows at once."""
    store = st.Store(tmp_path / "s.db")
    eid = st.create_experiment(store, "p", "e")
    st.write_spans(store, _one_span_traces(eid, 8))
    row = st.load_experiments(store).row(0, named=True)
    assert (row["traces"], row["errors"], row["reviewed"]) == (8, 1, 0)
    assert json.loads(row["score_means"]) == {"acc": pytest.approx(0.375), "judge": 1.0}
    st.set_review(store, eid, ["r1", "r2"], user="ann", review_status="reviewed")
    st.write_spans(store, [{**_one_span_traces(eid, 11)[10], "scores": {"acc": 1.0}}])
    row = st.load_experiments(store).row(0, named=True)
    assert (row["traces"], row["errors"], row["reviewed"]) == (9, 2, 2)
    assert json.loads(row["score_means"])["acc"] == pytest.approx((0.375 * 8 + 1.0) / 9)


def test_experiment_stats_from_the_frame_cache_equal_sql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALTUI_CACHE_DIR", str(tmp_path / "cache"))
    from evaltui.store import readers

    store = st.Store(tmp_path / "big.db")
    eid = st.create_experiment(store, "p", "big")
    st.write_spans(store, _one_span_traces(eid, frame_cache.MIN_ROWS + 7))
    readers._STATS.clear()
    from_sql = st.load_experiments(store).row(0, named=True)
    st.load_trace_rows(store, eid)  # writes the snapshot
    readers._STATS.clear()
    calls: list[str] = []
    store.conn.set_trace_callback(calls.append)
    from_cache = st.load_experiments(store).row(0, named=True)
    store.conn.set_trace_callback(None)
    assert not any("avg(json_extract" in c for c in calls)  # no scan of the trace rows
    assert {k: from_cache[k] for k in ("traces", "errors", "scorer_errors", "reviewed")} == {
        k: from_sql[k] for k in ("traces", "errors", "scorer_errors", "reviewed")}
    means_sql, means_cache = json.loads(from_sql["score_means"]), json.loads(from_cache["score_means"])
    assert means_sql.keys() == means_cache.keys() and all(
        means_cache[k] == pytest.approx(means_sql[k]) for k in means_sql)


def test_drop_null_columns_keeps_every_column_with_a_value() -> None:
    """Columns NULL in every row are left out of an insert; a column with a value in any
    row (not only the first) is kept, and the rows keep their order."""
    from evaltui.store.writers import drop_null_columns

    rows = [("a", None, None, 1), ("b", None, 2.5, None), ("c", None, None, None)]
    assert drop_null_columns(rows) == ([("a", None, 1), ("b", 2.5, None), ("c", None, None)], (0, 2, 3))
    full = [("a", 1), ("b", 2)]
    assert drop_null_columns(full) == (full, None)
    assert drop_null_columns([]) == ([], None)


def test_first_page_of_plain_values_is_the_frame_the_readers_give(db: st.Store) -> None:
    """The TUI paints a first page read without polars (store.page): its values, dtypes, order
    and columns must be those of the polars reader, or the table would change under the user
    when the frame replaces it. Scores stored as ints, mixed and nested metadata, flags,
    nulls and an empty experiment included."""
    from evaltui.store.readers import query_trace_rows, trace_page

    eid = st.create_experiment(db, "p", "e")
    records = _one_span_traces(eid, 30)
    for i, r in enumerate(records):
        r["scores"]["acc"] = i % 2  # an int where the column is Float64
        r["metadata"] = {"n": i, "mixed": i if i % 2 else f"s{i}", "nested": {"k": [i]}, "ratio": i / 3 if i else 1,
                         "only_some": None if i % 3 else "x"}
        r["tags"] = ["a", "b"] if i % 5 == 0 else None
        r["created"] = f"2026-01-01T00:00:{59 - i:02d}Z"  # reversed: the page keeps the readers' order
    st.write_spans(db, records)
    for limit in (1, 7, 30, 200):
        want = query_trace_rows(db, eid, limit=limit)
        page = trace_page(db, eid, limit)
        assert (page.height, page.columns) == (want.height, want.columns)
        got = page.to_polars()
        assert got.schema == want.schema
        assert got.equals(want), limit
        for i in range(want.height):  # the same values of the same types (1 and 1.0 paint differently)
            mine, theirs = page.row(i, named=True), want.row(i, named=True)
            assert [(k, v, type(v)) for k, v in mine.items()] == [(k, v, type(v)) for k, v in theirs.items()]
    assert page.schema["metadata.n"].is_numeric() and not page.schema["metadata.mixed"].is_numeric()
    empty = st.create_experiment(db, "p", "empty")
    assert trace_page(db, empty, 200).to_polars().equals(query_trace_rows(db, empty, limit=200))
