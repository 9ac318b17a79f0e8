"""Several reviewers, one database: 2 writer and 3 reader processes at once, for a few seconds.

Writers assign, toggle review state, comment and score by hand on different and overlapping
traces; readers keep loading what the TUI shows. Afterwards every write must be there (no
lost update: e.g. each toggle of a trace by either writer is one event, and the final state
is the parity of all toggles) and no process may have seen "database is locked".

The worker processes run this file as a script (``python test_concurrent_reviewers.py
writer|reader ...``), so they start from a clean interpreter like real reviewers would.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

TRACES = [f"t{i:02d}" for i in range(20)]
WRITERS = {"alice": TRACES[:14], "bob": TRACES[6:]}  # t06..t13 are shared
OPTIONS = {"good": 1.0, "ok": 0.5, "bad": 0.0}
RUN_SECONDS = 3.0


def _setup(db: Path) -> str:
    from evaltui import store as st
    from evaltui.store import review as rv

    store = st.Store(db)
    eid = st.create_experiment(store, "team", "exp")
    spans = []
    for i, root in enumerate(TRACES):
        spans.append({"id": root, "experiment_id": eid, "span_id": root, "input": {"i": i}, "output": "x",
                      "span_attributes": {"name": "eval", "type": "eval"},
                      "metrics": {"start": 100.0 + i, "end": 101.0 + i}})
        spans.append({"id": f"{root}.task", "experiment_id": eid, "span_id": f"{root}.task", "root_span_id": root,
                      "span_parents": [root], "span_attributes": {"name": "task", "type": "task"}})
    st.write_spans(store, spans)
    pid = st.find_experiment(store, eid)["project_id"]
    rv.define_human_score(store, pid, {"name": "Helpfulness", "kind": "categorical", "options": OPTIONS})
    rv.define_human_score(store, pid, {"name": "Quality", "kind": "continuous"})
    rv.define_human_score(store, pid, {"name": "Notes", "kind": "text", "path": "notes"})
    store.close()
    return eid


def _writer(db: str, eid: str, user: str, start_at: float, out: str) -> None:
    from evaltui import store as st
    from evaltui.store import review as rv

    store = st.Store(db)
    rng = random.Random(user)
    roots = WRITERS[user]
    result: dict = {"ops": 0, "toggles": {}, "assign_changes": 0, "comments": [], "quality": {},
                    "helpfulness": {}, "notes": {}, "events": 0, "errors": []}
    time.sleep(max(0.0, start_at - time.time()))
    deadline = max(start_at, time.time()) + RUN_SECONDS  # a process that started late still gets a full run
    n = 0
    while time.time() < deadline:
        n += 1
        root = rng.choice(roots)
        op = rng.choice(["toggle", "assign", "comment", "quality", "helpfulness", "notes"])
        try:
            if op == "toggle":
                rv.toggle_reviewed(store, eid, root, user)
                result["toggles"][root] = result["toggles"].get(root, 0) + 1
                result["events"] += 1
            elif op == "assign":
                picked = rng.sample(roots, 2)
                changed = rv.assign(store, eid, picked, rng.choice(["alice", "bob", "carol"]), user)
                result["assign_changes"] += changed
                result["events"] += changed
            elif op == "comment":
                result["comments"].append(rv.add_comment(store, eid, root, f"{user} #{n}", user))
                result["events"] += 1
            elif op == "quality":
                value = rng.randint(0, 100)
                rv.set_human_score(store, eid, root, "Quality", value, user)
                result["events"] += result["quality"].get(root) != value  # the same answer logs nothing
                result["quality"][root] = value
            elif op == "helpfulness":
                option = rng.choice(list(OPTIONS))
                rv.set_human_score(store, eid, root, "Helpfulness", option, user)
                result["events"] += result["helpfulness"].get(root) != option
                result["helpfulness"][root] = option
            else:
                text = f"{user} note {n}"
                rv.set_human_score(store, eid, root, "Notes", text, user)
                result["notes"][root] = text
                result["events"] += 1
            result["ops"] += 1
        except Exception:  # noqa: BLE001 - reported to the test
            result["errors"].append(traceback.format_exc())
        # A reviewer pauses between changes (a person, far longer). Without any pause one
        # writer re-takes the write lock within microseconds of each COMMIT, and the other,
        # whose SQLite busy handler looks again only every 100 ms, can be starved for the
        # whole run (seen on a loaded 2-core CI machine: 1 op against 5,264).
        time.sleep(rng.uniform(0.0, 0.003))
    store.close()
    Path(out).write_text(json.dumps(result))


def _reader(db: str, eid: str, start_at: float, out: str) -> None:
    from evaltui import store as st
    from evaltui.store import review as rv

    store = st.Store(db)
    rng = random.Random(out)
    result: dict = {"reads": 0, "errors": [], "max_reviewed": 0}
    time.sleep(max(0.0, start_at - time.time()))
    deadline = max(start_at, time.time()) + RUN_SECONDS + 0.3
    while time.time() < deadline:
        root = rng.choice(TRACES)
        try:
            frame = st.load_trace_rows(store, eid)
            assert frame.height == len(TRACES)
            done, total = rv.review_progress(store, eid)
            assert total == len(TRACES)
            result["max_reviewed"] = max(result["max_reviewed"], done)
            rv.trace_history(store, eid, root)
            rv.list_comments(store, eid, root)
            rv.human_answers(store, eid, root)
            rv.known_users(store)
            store.data_version()
            result["reads"] += 1
        except Exception:  # noqa: BLE001 - reported to the test
            result["errors"].append(traceback.format_exc())
    store.close()
    Path(out).write_text(json.dumps(result))


def test_two_writers_three_readers(tmp_path: Path) -> None:
    from evaltui import store as st
    from evaltui.store import review as rv

    db = tmp_path / "shared.db"
    eid = _setup(db)
    env = {**os.environ, "EVALTUI_CACHE_DIR": str(tmp_path / "cache")}
    start_at = time.time() + 2.5  # every process has imported what it needs by then
    procs = []
    for user in WRITERS:
        out = tmp_path / f"writer-{user}.json"
        procs.append((out, subprocess.Popen(
            [sys.executable, __file__, "writer", str(db), eid, user, repr(start_at), str(out)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for k in range(3):
        out = tmp_path / f"reader-{k}.json"
        procs.append((out, subprocess.Popen(
            [sys.executable, __file__, "reader", str(db), eid, repr(start_at), str(out)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    results = {}
    for out, p in procs:
        stdout, stderr = p.communicate(timeout=60)
        assert p.returncode == 0, stderr
        assert "database is locked" not in stderr + stdout
        results[out.stem] = json.loads(out.read_text())
    for name, r in results.items():
        assert not r["errors"], f"{name}: {r['errors'][0]}"
    writers = {u: results[f"writer-{u}"] for u in WRITERS}
    readers = [results[f"reader-{k}"] for k in range(3)]
    assert all(w["ops"] > 20 for w in writers.values()), {u: w["ops"] for u, w in writers.items()}
    assert all(r["reads"] > 5 for r in readers), [r["reads"] for r in readers]

    store = st.Store(db)
    rows = {r["root_span_id"]: r for r in st.load_trace_rows(store, eid, cache=False).to_dicts()}
    # every event is there: one per toggle, comment and human score, one per changed assignment
    total_events = store.read("SELECT count(*) FROM events WHERE experiment_id = ?", (eid,))[0][0]
    assert total_events == sum(w["events"] for w in writers.values())
    for root in TRACES:
        history = rv.trace_history(store, eid, root)
        # toggles: none lost, and the state is the parity of all of them
        toggles = sum(w["toggles"].get(root, 0) for w in writers.values())
        statuses = [e for e in history if e["action"] == "review_status"]
        assert len(statuses) == toggles, root
        assert rows[root]["review_status"] == ("reviewed" if toggles % 2 else "unreviewed"), root
        for a, b in itertools.pairwise(statuses):
            assert a["after"] == b["before"], root  # each toggle saw the one before it
        # the assignee is the last assignment's
        assigns = [e for e in history if e["action"] == "assign"]
        assert rows[root]["assignee"] == (assigns[-1]["after"] if assigns else None), root
        # human scores: each reviewer's last answer, averaged across reviewers
        answers = rv.human_answers(store, eid, root)
        qualities, helpful = [], []
        for user, w in writers.items():
            mine = answers.get(user, {})
            if root in w["quality"]:
                assert mine["Quality"] == w["quality"][root] / 100
                qualities.append(w["quality"][root] / 100)
            if root in w["helpfulness"]:
                assert mine["Helpfulness"] == w["helpfulness"][root]
                helpful.append(OPTIONS[w["helpfulness"][root]])
            if root in w["notes"]:
                assert mine["Notes"] == w["notes"][root]
        if qualities:
            assert rows[root]["scores.Quality"] == pytest.approx(sum(qualities) / len(qualities))
        if helpful:
            assert rows[root]["scores.Helpfulness"] == pytest.approx(sum(helpful) / len(helpful))
    assert sum(w["assign_changes"] for w in writers.values()) == store.read(
        "SELECT count(*) FROM events WHERE action = 'assign'")[0][0]
    # every comment is there
    stored = {c["id"] for root in TRACES for c in rv.list_comments(store, eid, root)}
    assert stored == {cid for w in writers.values() for cid in w["comments"]}
    store.close()


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    if role == "writer":
        db_, eid_, user_, start_, out_ = args
        _writer(db_, eid_, user_, float(start_), out_)
    else:
        db_, eid_, start_, out_ = args
        _reader(db_, eid_, float(start_), out_)
