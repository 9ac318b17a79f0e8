"""One-span traces in one step: a root span's fields straight to its span row and trace row.

A generic import writes one root span per row. The general path builds a record dict,
validates it into a second dict, encodes that as the span row, then rolls the trace up from
it: four passes over every field. :func:`encode_root` does the same checks (the same
errors, naming the field) and produces the same two rows (a test holds them equal) in one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from evaltui.store.errors import RecordError
from evaltui.store.records import (
    _SORTED,
    _encode,
    check_created,
    check_metadata,
    check_metrics,
    check_scores,
    check_tags,
)
from evaltui.store.rollup import comparison_key, root_row

_dumps = orjson.dumps
_blake2b = hashlib.blake2b


def encode_root(
    index: int,
    rid: str,
    experiment_id: str,
    name: str | None,
    stype: str | None,
    input: Any,
    output: Any,
    expected: Any,
    error: Any,
    scores: Any,
    metadata: Any,
    metrics: Any,
    tags: Any,
    dataset_record_id: Any,
    created: Any,
    now: str,
    key_spec: str | list[str],
) -> tuple[tuple, tuple]:
    """(spans-table row, trace row without its row_version) of a one-span trace.

    The span is the root of its own trace: ``span_id`` and ``root_span_id`` are ``rid``, it
    has no parents, and its ``span_attributes`` are ``{"name": name, "type": stype}``. The
    checks and results are those of ``validate_span`` + ``span_row`` + ``trace_row`` for
    that record; a bad field raises RecordError(index, field) the same way.
    """
    if not isinstance(rid, str) or not rid:
        raise RecordError(index, "id", "required, a non-empty string", rid if isinstance(rid, str) else None)
    if not isinstance(experiment_id, str) or not experiment_id:
        raise RecordError(index, "experiment_id", "required, a non-empty string", rid)
    if name is not None and not isinstance(name, str):
        raise RecordError(index, "span_attributes.name", "must be a string", rid)
    if stype is not None and not isinstance(stype, str):
        raise RecordError(index, "span_attributes.type", "must be a string", rid)

    if scores is not None:
        scores = check_scores(index, scores, rid) or None
    if metadata is not None:
        check_metadata(index, metadata, rid)
        metadata = metadata or None
    if metrics is not None:
        check_metrics(index, metrics, rid)
        metrics = metrics or None
    if tags is not None:
        check_tags(index, tags, rid)
        tags = tags or None
    if dataset_record_id is not None and not isinstance(dataset_record_id, str):
        raise RecordError(index, "dataset_record_id", "must be a string", rid)
    created = created if type(created) is str else check_created(index, created, now, rid)

    attrs = {"name": name, "type": stype}
    try:
        row = (
            rid,
            experiment_id,
            rid,
            rid,
            None,  # span_parents: none
            _dumps(attrs).decode(),
            name,
            stype,
            None if input is None else _dumps(input).decode(),
            None if output is None else _dumps(output).decode(),
            None if expected is None else _dumps(expected).decode(),
            None if error is None else _dumps(error).decode(),
            None if scores is None else _dumps(scores).decode(),
            None if metadata is None else _dumps(metadata).decode(),
            None if metrics is None else _dumps(metrics).decode(),
            None if tags is None else _dumps(tags).decode(),
            None,  # origin
            dataset_record_id,
            created,
            metrics.get("start") if metrics else None,
            metrics.get("end") if metrics else None,
        )
    except (TypeError, ValueError, orjson.JSONEncodeError):
        # the field (and the place inside it) that cannot be stored, for the message
        for field, value in (("input", input), ("output", output), ("expected", expected), ("error", error),
                             ("scores", scores), ("metadata", metadata), ("metrics", metrics), ("tags", tags)):
            _encode(index, rid, field, value)
        raise RecordError(index, "(record)", "not JSON-serialisable", rid) from None

    if key_spec == "input":  # the default comparison key, without building the record
        ckey = None if input is None else _blake2b(_dumps(input, option=_SORTED), digest_size=12).hexdigest()
    else:
        ckey = comparison_key(
            {
                "name": name, "type": stype, "id": rid, "experiment_id": experiment_id, "span_id": rid,
                "root_span_id": rid, "span_parents": [], "span_attributes": attrs, "input": input,
                "output": output, "expected": expected, "error": error, "scores": scores,
                "metadata": metadata, "metrics": metrics, "tags": tags, "origin": None,
                "dataset_record_id": dataset_record_id, "created": created,
            },
            key_spec,
        )
    # the trace row's scores (one name: the span's JSON, its values floats already),
    # metadata and tags are the span row's text
    trace = root_row(
        experiment_id, rid, rid, name, stype, created, input, output, expected, error, scores, metadata,
        metrics, tags, dataset_record_id, ckey, row[12] if scores and len(scores) == 1 else None, row[13], row[15],
    )
    return row, trace
