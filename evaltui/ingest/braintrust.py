"""Braintrust exports: a JSON array or NDJSON of span rows (also what ``evaltui export`` writes).

The evaltui span record follows the Braintrust SDK, so the record fields are taken as they
are (a round trip through an export is lossless: ids, experiment ids, trees, times).
Braintrust's extra keys (``_xact_id``, ``project_id``, ``log_id``, ``is_root``,
``context``, ...) are kept in ``metadata["_braintrust"]``. One evaltui experiment per
source ``experiment_id`` (project logs: per ``project_id``), with that same id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaltui.ingest._common import IngestError, Sink, iter_json_rows
from evaltui.store.records import SPAN_FIELDS

FORMAT = "braintrust"
EXTRA_KEY = "_braintrust"
_FIELDS = frozenset(SPAN_FIELDS)


def import_file(path: Path, sink: Sink) -> None:
    labels: dict[str, str] = {}
    for where, row, size in iter_json_rows(path, sink):
        if not isinstance(row, dict):
            raise IngestError(f"expected a span row (an object), got {type(row).__name__}", where=where)
        rec = span_from_row(row, where=where)
        source_exp = row.get("experiment_id")
        if isinstance(source_exp, str) and source_exp:
            key, exp_id = f"experiment:{source_exp}", source_exp
        elif isinstance(row.get("project_id"), str):
            key, exp_id = f"project_logs:{row['project_id']}", None
        else:
            key, exp_id = f"file:{path.resolve()}", None
        if key not in labels:
            labels[key] = (source_exp or row.get("project_id") or path.stem)[:8]
        eid = sink.experiment(
            key,
            project="braintrust",
            name=path.stem if len(labels) == 1 else f"{path.stem}-{labels[key]}",
            label=labels[key],
            many=len(labels) > 1,
            experiment_id=exp_id,
            metadata={"imported_from": path.name},
        )
        rec["experiment_id"] = eid
        sink.span(rec, where, size_hint=size)


def span_from_row(row: dict[str, Any], *, where: str) -> dict[str, Any]:
    """The span record of a Braintrust row; unknown keys go to metadata['_braintrust']."""
    rec = {k: v for k, v in row.items() if k in _FIELDS}
    extra = {k: v for k, v in row.items() if k not in _FIELDS}
    rid = rec.get("id")
    if rid is None or rid == "":
        if isinstance(rec.get("span_id"), str) and rec["span_id"]:
            rid = rec["span_id"]
        else:
            raise IngestError("required: every span row has an id", where=where, field="id")
    if not isinstance(rid, str):
        raise IngestError(f"must be a string, not {type(rid).__name__}", where=where, field="id")
    rec["id"] = rid
    if not rec.get("span_id"):
        rec["span_id"] = rid
    if not rec.get("root_span_id"):
        rec["root_span_id"] = rec["span_id"]
    if rec.get("span_parents") is None:
        rec["span_parents"] = []
    if extra:
        md = rec.get("metadata")
        if md is None:
            md = {}
        if not isinstance(md, dict):
            raise IngestError(f"must be an object, not {type(md).__name__}", where=where, field="metadata")
        rec["metadata"] = {**md, EXTRA_KEY: extra}
    return rec

