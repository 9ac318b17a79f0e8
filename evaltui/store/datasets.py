"""Datasets: named lists of cases (input, expected, metadata, tags) in a project.

A dataset is made from rows (:func:`create_dataset`) or from the traces of an experiment
(:func:`dataset_from_experiment`: the full root span values, not the table's previews).
Its records are what ``evaltui.Eval(data=...)`` takes. Names are unique per project.
Every write here is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from evaltui.store.connection import Store
from evaltui.store.errors import NotFound, StoreError
from evaltui.store.records import dumps, loads, now_iso
from evaltui.store.writers import ensure_project, new_id

_CHUNK = 400  # ids per IN (...) list
_PAGE = 500  # records per read when streaming
RECORD_FIELDS = ("input", "expected", "metadata", "tags")


class DatasetExists(StoreError):
    """The project already has a dataset with this name."""


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise StoreError(f"invalid dataset name {name!r}: a non-empty name without '/'")
    return name


def _json(value: Any, where: str) -> str | None:
    try:
        return dumps(value)
    except (TypeError, orjson.JSONEncodeError) as e:
        raise StoreError(f"{where}: not JSON: {e}") from None


def _record_row(row: Any, i: int, dataset_id: str, created: str) -> tuple[Any, ...]:
    where = f"rows[{i}]"
    if not isinstance(row, dict):
        raise StoreError(f"{where}: a dataset row is a dict with input, expected, metadata, tags")
    unknown = [k for k in row if k not in (*RECORD_FIELDS, "id")]
    if unknown:
        raise StoreError(f"{where}: unknown key {unknown[0]!r} (a row has {', '.join(RECORD_FIELDS)})")
    metadata = row.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise StoreError(f"{where}.metadata must be an object, not {type(metadata).__name__}")
    tags = row.get("tags")
    if tags is None:
        tags = []
    if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
        raise StoreError(f"{where}.tags must be a list of strings")
    return (
        new_id(),
        dataset_id,
        _json(row.get("input"), f"{where}.input"),
        _json(row.get("expected"), f"{where}.expected"),
        _json(metadata, f"{where}.metadata"),
        _json(list(tags), f"{where}.tags"),
        created,
    )


def _insert_records(conn: sqlite3.Connection, dataset_id: str, rows: Iterable[dict[str, Any]], created: str) -> int:
    n = 0
    batch: list[tuple[Any, ...]] = []
    sql = (
        "INSERT INTO dataset_records (id, dataset_id, input, expected, metadata, tags, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    for i, row in enumerate(rows):
        batch.append(_record_row(row, i, dataset_id, created))
        if len(batch) >= _PAGE:
            conn.executemany(sql, batch)
            n += len(batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)
        n += len(batch)
    return n


def _create(
    store: Store,
    project: str,
    name: str,
    rows: Iterable[dict[str, Any]],
    description: str | None,
    metadata: dict[str, Any] | None,
) -> tuple[str, int]:
    _check_name(name)
    if description is not None and not isinstance(description, str):
        raise StoreError("dataset description must be a string")
    created = now_iso()
    did = new_id()
    with store.transaction() as conn:
        project_id = ensure_project(store, project)
        if conn.execute("SELECT 1 FROM datasets WHERE project_id = ? AND name = ?", (project_id, name)).fetchone():
            raise DatasetExists(f"project {project!r} already has a dataset named {name!r}; choose another name")
        try:
            conn.execute(
                "INSERT INTO datasets (id, project_id, name, description, created, metadata) VALUES (?, ?, ?, ?, ?, ?)",
                (did, project_id, name, description, created, _json(metadata or {}, "dataset metadata")),
            )
        except sqlite3.IntegrityError:
            raise DatasetExists(f"project {project!r} already has a dataset named {name!r}; choose another name") from None
        n = _insert_records(conn, did, rows, created)
    return did, n


def create_dataset(
    store: Store,
    project: str,
    name: str,
    rows: Iterable[dict[str, Any]],
    description: str | None = None,
    *,
    metadata: dict[str, Any] | None = None,
) -> str:
    """Create dataset ``name`` in ``project`` (created if needed) from ``rows``; its id.

    Each row is a dict with ``input``, ``expected``, ``metadata`` (an object) and ``tags``
    (a list of strings); missing keys are null / {} / []. A name already taken in the
    project raises :class:`DatasetExists`; a bad row raises StoreError and writes nothing.
    """
    did, _ = _create(store, project, name, rows, description, metadata)
    return did


def _root_records(store: Store, experiment_id: str, root_span_ids: Sequence[str] | None) -> list[dict[str, Any]]:
    """Full input/expected/metadata/tags of the root spans of the chosen traces, in order."""
    cols = "s.root_span_id, s.input, s.expected, s.metadata, s.tags"
    if root_span_ids is None:
        rows = store.read(
            f"SELECT {cols} FROM traces t JOIN spans s ON s.experiment_id = t.experiment_id"
            " AND s.root_span_id = t.root_span_id AND s.span_id = t.root_span_id"
            " WHERE t.experiment_id = ? ORDER BY t.created, t.root_span_id",
            (experiment_id,),
        )
        ordered = rows
    else:
        # in the table's default order (created, root_span_id), whatever the selection's order
        wanted = list(dict.fromkeys(root_span_ids))
        found: dict[str, tuple] = {}
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i : i + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for r in store.read(
                f"SELECT {cols}, t.created FROM traces t JOIN spans s ON s.experiment_id = t.experiment_id"
                " AND s.root_span_id = t.root_span_id AND s.span_id = t.root_span_id"
                f" WHERE t.experiment_id = ? AND t.root_span_id IN ({marks})",
                (experiment_id, *chunk),
            ):
                found[r[0]] = r
        missing = [r for r in wanted if r not in found]
        if missing:
            raise NotFound(f"no trace {missing[0]!r} in experiment {experiment_id!r}")
        ordered = [r[:5] for r in sorted(found.values(), key=lambda r: (r[5] or "", r[0]))]
    out = []
    for _root, inp, exp, meta, tags in ordered:
        out.append(
            {"input": loads(inp), "expected": loads(exp), "metadata": loads(meta) or {}, "tags": loads(tags) or []}
        )
    return out


def dataset_from_experiment(
    store: Store,
    experiment_id: str,
    name: str,
    *,
    root_span_ids: Sequence[str] | None = None,
    description: str | None = None,
) -> tuple[str, int]:
    """A dataset in the experiment's project from its traces (all, or ``root_span_ids``).

    Each record is the root span's full input, expected, metadata and tags. Returns
    (dataset_id, number of records).
    """
    rows = store.read(
        "SELECT p.name, e.name FROM experiments e JOIN projects p ON p.id = e.project_id WHERE e.id = ?",
        (experiment_id,),
    )
    if not rows:
        raise NotFound(f"no experiment with id {experiment_id!r}")
    project, exp_name = rows[0]
    records = _root_records(store, experiment_id, root_span_ids)
    meta = {"source_experiment_id": experiment_id, "source_experiment": f"{project}/{exp_name}"}
    return _create(store, project, name, records, description, meta)


def _dataset_dict(r: tuple) -> dict[str, Any]:
    return {
        "id": r[0],
        "project": r[1],
        "project_id": r[2],
        "name": r[3],
        "description": r[4],
        "created": r[5],
        "metadata": loads(r[6]) or {},
        "records": r[7],
    }


_DATASET_SELECT = (
    "SELECT d.id, p.name, p.id, d.name, d.description, d.created, d.metadata,"
    " (SELECT count(*) FROM dataset_records r WHERE r.dataset_id = d.id)"
    " FROM datasets d JOIN projects p ON p.id = d.project_id"
)


def list_datasets(store: Store, project: str | None = None) -> list[dict[str, Any]]:
    """Datasets (of one project, or all), by project then name, with their record counts."""
    if project is None:
        rows = store.read(f"{_DATASET_SELECT} ORDER BY p.name, d.name")
    else:
        rows = store.read(f"{_DATASET_SELECT} WHERE p.name = ? ORDER BY d.name", (project,))
    return [_dataset_dict(r) for r in rows]


def find_dataset(store: Store, ref: str, project: str | None = None) -> dict[str, Any]:
    """A dataset by id, ``project/name``, or ``name`` (with ``project``, or unique across projects)."""
    rows = store.read(f"{_DATASET_SELECT} WHERE d.id = ?", (ref,))
    if not rows:
        proj, name = project, ref
        if proj is None and "/" in ref:
            proj, _, name = ref.partition("/")
        if proj is not None:
            rows = store.read(f"{_DATASET_SELECT} WHERE p.name = ? AND d.name = ?", (proj, name))
        else:
            rows = store.read(f"{_DATASET_SELECT} WHERE d.name = ? ORDER BY p.name", (name,))
            if len(rows) > 1:
                projects = ", ".join(r[1] for r in rows)
                raise StoreError(f"dataset {name!r} is in several projects ({projects}); name the project")
    if not rows:
        where = f" in project {project!r}" if project else ""
        raise NotFound(f"no dataset {ref!r}{where}; `evaltui dataset ls` lists them")
    return _dataset_dict(rows[0])


def _record(r: tuple) -> dict[str, Any]:
    return {"input": loads(r[1]), "expected": loads(r[2]), "metadata": loads(r[3]) or {}, "tags": loads(r[4]) or []}


def iter_dataset_records(store: Store, dataset_id: str, *, with_ids: bool = False) -> Iterator[dict[str, Any]]:
    """The dataset's records in insertion order, read a page at a time.

    Each is {input, expected, metadata, tags} (plus ``id`` with ``with_ids``).
    """
    if not store.read("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)):
        raise NotFound(f"no dataset with id {dataset_id!r}")
    after = -1
    while True:
        rows = store.read(
            "SELECT id, input, expected, metadata, tags, rowid FROM dataset_records"
            " WHERE dataset_id = ? AND rowid > ? ORDER BY rowid LIMIT ?",
            (dataset_id, after, _PAGE),
        )
        for r in rows:
            rec = _record(r)
            if with_ids:
                rec = {"id": r[0], **rec}
            yield rec
        if len(rows) < _PAGE:
            return
        after = rows[-1][5]


def load_dataset_records(store: Store, dataset_id: str, *, with_ids: bool = False) -> list[dict[str, Any]]:
    """Every record of the dataset (see :func:`iter_dataset_records`)."""
    return list(iter_dataset_records(store, dataset_id, with_ids=with_ids))


def delete_dataset(store: Store, dataset_id: str) -> None:
    """Delete the dataset and its records (experiments made from it keep their own data)."""
    with store.transaction() as conn:
        if not conn.execute("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)).fetchone():
            raise NotFound(f"no dataset with id {dataset_id!r}")
        conn.execute("DELETE FROM dataset_records WHERE dataset_id = ?", (dataset_id,))
        conn.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))


__all__ = [
    "DatasetExists",
    "create_dataset",
    "dataset_from_experiment",
    "delete_dataset",
    "find_dataset",
    "iter_dataset_records",
    "list_datasets",
    "load_dataset_records",
]
