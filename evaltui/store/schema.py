"""Schema of the evaltui store and its forward migrations.

The schema version lives in SQLite's ``user_version`` header field, which is written
inside the migrating transaction: a migration either lands whole or not at all.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable

from typing import TYPE_CHECKING

from evaltui.store.errors import SchemaError

# JSON columns are TEXT holding canonical JSON (NULL when the value is absent).
_SPAN_COLUMNS = {
    "id": str,
    "experiment_id": str,
    "span_id": str,
    "root_span_id": str,
    "span_parents": str,
    "span_attributes": str,
    "name": str,
    "type": str,
    "input": str,
    "output": str,
    "expected": str,
    "error": str,
    "scores": str,
    "metadata": str,
    "metrics": str,
    "tags": str,
    "origin": str,
    "dataset_record_id": str,
    "created": str,
    "start": float,
    "end": float,
}

# The materialized trace row: one per root span, recomputed whenever a span of the trace
# is written, so that a 100k-trace table opens without aggregating spans.
_TRACE_COLUMNS = {
    "experiment_id": str,
    "root_span_id": str,
    "id": str,  # row id of the root span
    "name": str,
    "created": str,
    "start": float,
    "end": float,
    "duration": float,
    "llm_duration": float,
    "ttft": float,
    "prompt_tokens": int,
    "completion_tokens": int,
    "tokens": int,
    "prompt_cached_tokens": int,
    "completion_reasoning_tokens": int,
    "estimated_cost": float,
    "span_count": int,
    "llm_calls": int,
    "tool_calls": int,
    "errors": int,
    "has_error": int,
    "scorer_errors": int,
    "scores": str,
    "input_preview": str,
    "output_preview": str,
    "expected_preview": str,
    "error_preview": str,
    "metadata": str,
    "tags": str,
    "dataset_record_id": str,
    "comparison_key": str,
    "review_status": str,
    "assignee": str,
    "reviewed_by": str,
    "row_version": int,  # experiments.rows_version of the write that last changed this row
}


def _v1(db: sqlite_utils.Database) -> None:
    """Projects, experiments, spans, trace rows, datasets."""
    db["store_info"].create({"key": str, "value": str}, pk="key")
    db["store_info"].insert({"key": "uid", "value": uuid.uuid4().hex})
    db["projects"].create(
        {"id": str, "name": str, "created": str, "settings": str},
        pk="id",
        not_null={"name", "created"},
        defaults={"settings": "{}"},
    )
    db["projects"].create_index(["name"], unique=True)
    db["datasets"].create(
        {"id": str, "project_id": str, "name": str, "description": str, "created": str, "metadata": str},
        pk="id",
        foreign_keys=[("project_id", "projects", "id")],
        not_null={"project_id", "name", "created"},
    )
    db["datasets"].create_index(["project_id", "name"], unique=True)
    db["dataset_records"].create(
        {
            "id": str,
            "dataset_id": str,
            "input": str,
            "expected": str,
            "metadata": str,
            "tags": str,
            "created": str,
        },
        pk="id",
        foreign_keys=[("dataset_id", "datasets", "id")],
        not_null={"dataset_id", "created"},
    )
    db["dataset_records"].create_index(["dataset_id"])
    db["experiments"].create(
        {
            "id": str,
            "project_id": str,
            "name": str,
            "description": str,
            "created": str,
            "base_exp_id": str,
            "dataset_id": str,
            "metadata": str,
            "params": str,
            "repo_info": str,
            "tags": str,
            "source": str,
            # bumped by every write that changes trace rows: readers cache frames per version
            "rows_version": int,
            "spans_version": int,  # likewise for its spans
        },
        pk="id",
        foreign_keys=[("project_id", "projects", "id")],
        not_null={"project_id", "name", "created", "source", "rows_version", "spans_version"},
        defaults={"source": "sdk", "rows_version": 0, "spans_version": 0},
    )
    db["experiments"].create_index(["project_id", "name"], unique=True)
    db["spans"].create(
        _SPAN_COLUMNS,
        pk="id",
        foreign_keys=[("experiment_id", "experiments", "id")],
        not_null={"experiment_id", "span_id", "root_span_id", "created"},
    )
    db["spans"].create_index(["experiment_id", "root_span_id", "start"])
    db["traces"].create(
        {k: v for k, v in _TRACE_COLUMNS.items() if k not in ("reviewed_by",)},
        pk=("experiment_id", "root_span_id"),
        foreign_keys=[("experiment_id", "experiments", "id")],
        not_null={"experiment_id", "root_span_id", "review_status"},
        defaults={"review_status": "unreviewed"},
    )
    # the table's default order, read straight off the index (no sort of 100k wide rows)
    db["traces"].create_index(["experiment_id", "created", "root_span_id"])
    db["traces"].create_index(["experiment_id", "row_version"])
    # Names of scores, metrics and metadata keys seen per experiment: the table's columns
    # are known without scanning 100k JSON documents.
    db["experiment_fields"].create(
        {"experiment_id": str, "kind": str, "name": str},
        pk=("experiment_id", "kind", "name"),
        foreign_keys=[("experiment_id", "experiments", "id")],
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Human review: who reviewed a trace, the append-only events log, comments."""
    db["traces"].add_column("reviewed_by", str)
    db["traces"].create_index(["experiment_id", "review_status"])
    db["traces"].create_index(["experiment_id", "assignee"])
    db["events"].create(
        {
            "seq": int,
            "ts": str,
            "user": str,
            "experiment_id": str,
            "root_span_id": str,
            "span_id": str,
            "action": str,
            "before": str,
            "after": str,
        },
        pk="seq",
        not_null={"ts", "user", "action"},
    )
    db["events"].create_index(["experiment_id", "root_span_id"])
    db["comments"].create(
        {
            "id": str,
            "experiment_id": str,
            "root_span_id": str,
            "span_id": str,
            "author": str,
            "created": str,
            "text": str,
        },
        pk="id",
        foreign_keys=[("experiment_id", "experiments", "id")],
        not_null={"experiment_id", "root_span_id", "author", "created", "text"},
    )
    db["comments"].create_index(["experiment_id", "root_span_id"])


def _v3(db: sqlite_utils.Database) -> None:
    """Ingest speed: the review indexes hold only the traces that are reviewed or assigned.

    Every trace is written unreviewed and unassigned, so full indexes on review_status and
    assignee cost two index entries per trace on every ingest and answer no query that
    partial ones cannot ("how many are reviewed", "who has been assigned anything").
    """
    conn = db.conn
    conn.execute("DROP INDEX IF EXISTS idx_traces_experiment_id_review_status")
    conn.execute("DROP INDEX IF EXISTS idx_traces_experiment_id_assignee")
    conn.execute(
        "CREATE INDEX idx_traces_reviewed ON traces (experiment_id, review_status) WHERE review_status = 'reviewed'"
    )
    conn.execute(
        "CREATE INDEX idx_traces_assigned ON traces (assignee, experiment_id) WHERE assignee IS NOT NULL"
    )


if TYPE_CHECKING:
    import sqlite_utils

# MIGRATIONS[i] takes a database at version i to version i + 1.
MIGRATIONS: list[Callable[["sqlite_utils.Database"], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, path: str, target: int = SCHEMA_VERSION) -> int:
    """Bring the database to ``target`` in one transaction; return the version found.

    A database written by a newer evaltui is refused (its data is left alone).
    """
    found = schema_version(conn)
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: database schema version {found} is newer than this evaltui supports "
            f"({SCHEMA_VERSION}); upgrade evaltui to open it"
        )
    if found >= target:
        return found
    import sqlite_utils  # only when migrating: it costs ~0.1 s of start-up otherwise

    db = sqlite_utils.Database(conn, execute_plugins=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # re-read under the write lock: another process may have migrated meanwhile
        current = schema_version(conn)
        for step in range(current, target):
            MIGRATIONS[step](db)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
