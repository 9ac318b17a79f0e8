"""Datasets from experiment rows: evaltui.store.datasets and `evaltui dataset`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evaltui.cli import cli
from evaltui.query.filter import matching_ids
from evaltui.sdk.eval import _load_cases
from evaltui.store import NotFound, Store, StoreError, create_experiment, write_spans
from evaltui.store.datasets import (
    DatasetExists,
    create_dataset,
    dataset_from_experiment,
    delete_dataset,
    find_dataset,
    iter_dataset_records,
    list_datasets,
    load_dataset_records,
)

LONG = "a long question " * 500  # far longer than any table preview


def _experiment(store: Store, n: int = 6) -> str:
    eid = create_experiment(store, "proj", "exp1", created="2025-01-01T00:00:00+00:00")
    recs = []
    for i in range(n):
        root = f"r{i}"
        recs.append({
            "id": root, "experiment_id": eid, "span_id": root, "root_span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"},
            "input": {"q": f"{LONG}{i}", "n": i}, "output": f"answer {i}", "expected": {"a": [i, LONG]},
            "metadata": {"i": i, "kind": "even" if i % 2 == 0 else "odd"}, "tags": [f"t{i}"],
            "metrics": {"start": float(i), "end": float(i) + 1},
            "created": f"2025-01-01T00:00:0{i}+00:00",
        })
        recs.append({
            "id": f"{root}-s", "experiment_id": eid, "span_id": f"{root}-s", "root_span_id": root,
            "span_parents": [root], "span_attributes": {"name": "acc", "type": "score"},
            "input": "not the root", "scores": {"acc": 0.0 if i % 2 == 0 else 1.0},
        })
    write_spans(store, recs)
    return eid


def test_create_from_filtered_experiment_full_values(store: Store) -> None:
    eid = _experiment(store)
    ids = matching_ids(store, eid, "scores.acc < 0.5")
    did, n = dataset_from_experiment(store, eid, "failures", root_span_ids=ids)
    assert n == len(ids) == 3
    recs = load_dataset_records(store, did)
    assert [r["metadata"]["i"] for r in recs] == [0, 2, 4]
    r0 = recs[0]
    assert r0 == {"input": {"q": f"{LONG}0", "n": 0}, "expected": {"a": [0, LONG]},
                  "metadata": {"i": 0, "kind": "even"}, "tags": ["t0"]}
    # all traces when no selection
    did_all, n_all = dataset_from_experiment(store, eid, "all")
    assert n_all == 6 and [r["metadata"]["i"] for r in load_dataset_records(store, did_all)] == list(range(6))
    listed = {d["name"]: d for d in list_datasets(store)}
    assert listed["failures"]["records"] == 3 and listed["failures"]["project"] == "proj"
    assert listed["failures"]["metadata"]["source_experiment"] == "proj/exp1"
    assert list_datasets(store, "nope") == []
    with pytest.raises(NotFound):
        dataset_from_experiment(store, eid, "bad", root_span_ids=["missing"])


def test_names_unique_per_project(store: Store) -> None:
    did = create_dataset(store, "p", "golden", [{"input": 1, "expected": 2}], description="d")
    with pytest.raises(DatasetExists, match="already has a dataset named 'golden'"):
        create_dataset(store, "p", "golden", [{"input": 3}])
    other = create_dataset(store, "q", "golden", [{"input": 3}])  # another project: fine
    assert other != did
    assert len(load_dataset_records(store, did)) == 1  # the failed create wrote nothing
    with pytest.raises(StoreError, match="several projects"):
        find_dataset(store, "golden")
    assert find_dataset(store, "golden", "q")["id"] == other
    assert find_dataset(store, "p/golden")["id"] == did
    with pytest.raises(StoreError, match="invalid dataset name"):
        create_dataset(store, "p", "a/b", [])
    with pytest.raises(StoreError, match="tags"):
        create_dataset(store, "p", "badtags", [{"input": 1, "tags": "x"}])
    assert [d["name"] for d in list_datasets(store, "p")] == ["golden"]  # bad rows wrote nothing
    delete_dataset(store, did)
    with pytest.raises(NotFound):
        find_dataset(store, "p/golden")
    with pytest.raises(NotFound):
        delete_dataset(store, did)


def test_streaming_pages(store: Store) -> None:
    rows = [{"input": {"i": i}, "expected": i * 2, "metadata": None, "tags": None} for i in range(1234)]
    did = create_dataset(store, "p", "big", rows)
    got = list(iter_dataset_records(store, did))
    assert len(got) == 1234 and got[0] == {"input": {"i": 0}, "expected": 0, "metadata": {}, "tags": []}
    assert [g["input"]["i"] for g in got] == list(range(1234))


def _cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _main(*args: str) -> tuple[int, str, str]:
    """Run through main's error handling (exit codes, one-line errors)."""
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "from evaltui.cli import main; main()", *args],
                       check=False, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_cli_create_ls_export_round_trip(db_path: Path, tmp_path: Path) -> None:
    with Store(db_path) as store:
        eid = _experiment(store)
        want = len(matching_ids(store, eid, "metadata.kind = 'odd'"))
    r = _cli("dataset", "create", "proj/exp1", "odd", "--filter", "metadata.kind = 'odd'", "--db", str(db_path))
    assert r.exit_code == 0, r.output
    assert f"{want} records" in r.output and "proj/odd" in r.output

    r = _cli("dataset", "ls", "--json", "--db", str(db_path))
    assert [(d["project"], d["name"], d["records"]) for d in json.loads(r.output)] == [("proj", "odd", want)]
    r = _cli("dataset", "ls", "--db", str(db_path))
    assert "proj/odd" in r.output and f"{want} records" in r.output

    out = tmp_path / "odd.jsonl"
    r = _cli("dataset", "export", "odd", "--project", "proj", "-o", str(out), "--db", str(db_path))
    assert r.exit_code == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == want and lines[0]["input"] == {"q": f"{LONG}1", "n": 1}
    assert set(lines[0]) == {"input", "expected", "metadata", "tags"}
    # ready for Eval(data=...)
    assert len(_load_cases(lines)) == want
    # stdout export is the same bytes
    r = _cli("dataset", "export", "proj/odd", "--db", str(db_path))
    assert r.output == out.read_text()
    # round trip: the exported rows make an equal dataset
    with Store(db_path) as store:
        did = create_dataset(store, "proj", "copy", lines)
        assert load_dataset_records(store, did) == lines


def test_cli_exit_codes(db_path: Path) -> None:
    with Store(db_path) as store:
        _experiment(store)
    db = ["--db", str(db_path)]
    code, out, err = _main("dataset", "create", "proj/exp1", "d1", *db)
    assert code == 0 and "6 records" in out
    code, out, err = _main("dataset", "create", "proj/exp1", "d1", *db)
    assert code == 2 and err.startswith("evaltui: error:") and "already has a dataset named 'd1'" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = _main("dataset", "create", "proj/exp1", "d2", "--filter", "scores.acc <", *db)
    assert code == 2 and "--filter" in err
    code, out, err = _main("dataset", "create", "proj/nope", "d3", *db)
    assert code == 2 and "no experiment" in err
    code, out, err = _main("dataset", "export", "nope", *db)
    assert code == 2 and "no dataset 'nope'" in err
    code, out, err = _main("dataset", "rm", "proj/d1", *db)
    assert code == 0
    code, out, err = _main("dataset", "ls", "--json", *db)
    assert code == 0 and json.loads(out) == []
    missing = str(db_path.parent / "missing.db")
    code, out, err = _main("dataset", "ls", "--db", missing)
    assert code == 0 and not Path(missing).exists()
    code, out, err = _main("dataset", "export", "x", "--db", missing)
    assert code == 2 and not Path(missing).exists()
