"""The span record: validation and the JSON encoding used in the store.

Field names follow the Braintrust SDK (see DESIGN.md "Data model"). A record that does not
validate raises :class:`RecordError` naming the record's index and the field.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

import orjson

from evaltui.store.errors import RecordError

SPAN_FIELDS = (
    "id",
    "experiment_id",
    "span_id",
    "root_span_id",
    "span_parents",
    "span_attributes",
    "input",
    "output",
    "expected",
    "error",
    "scores",
    "metadata",
    "metrics",
    "tags",
    "origin",
    "dataset_record_id",
    "created",
)
# in SPAN_COLUMNS order: span_row encodes them in this order
JSON_FIELDS = (
    "span_parents",
    "span_attributes",
    "input",
    "output",
    "expected",
    "error",
    "scores",
    "metadata",
    "metrics",
    "tags",
    "origin",
)

# orjson: compact UTF-8 JSON, several times faster than json.dumps on big payloads
# (ingest speed). It writes NaN/inf as null, so metrics are checked for them first.
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def dumps(value: Any) -> str | None:
    """Compact JSON for storage; None stays SQL NULL."""
    if value is None:
        return None
    return orjson.dumps(value).decode()


def canonical_json(value: Any) -> str:
    """Key-sorted JSON: equal values give equal text (used to match rows across experiments)."""
    return orjson.dumps(value, option=_SORTED).decode()


def loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _unserialisable_path(value: Any, path: str) -> tuple[str, str] | None:
    """Find the first place in ``value`` that JSON cannot hold: (path, problem)."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"{value} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return (path, f"key {k!r} is not a string")
            found = _unserialisable_path(v, f"{path}.{k}")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _unserialisable_path(v, f"{path}[{i}]")
            if found:
                return found
        return None
    try:  # dates, UUIDs, dataclasses and enums have a JSON form
        orjson.dumps(value)
        return None
    except (TypeError, orjson.JSONEncodeError):
        return (path, f"a {type(value).__name__} is not JSON-serialisable")


def _encode(index: int, rid: str | None, field: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except (TypeError, ValueError, orjson.JSONEncodeError) as e:
        found = _unserialisable_path(value, field)
        if found:
            raise RecordError(index, found[0], found[1], rid) from None
        raise RecordError(index, field, f"not JSON-serialisable ({e})", rid) from None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def normalize_scores(scores: Any, *, where: str = "scores") -> dict[str, float | None]:
    """Scores are numbers in [0, 1] or None; booleans become 1/0. Raises ValueError."""
    if not isinstance(scores, dict):
        raise ValueError(f"{where} must be an object of name -> number, not {type(scores).__name__}")
    out: dict[str, float | None] = {}
    for name, v in scores.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: score name {name!r} must be a non-empty string")
        if v is None:
            out[name] = None
        elif isinstance(v, bool):
            out[name] = 1.0 if v else 0.0
        elif _is_number(v) and math.isfinite(v) and 0 <= v <= 1:
            out[name] = float(v) if isinstance(v, int) else v
        elif _is_number(v):
            raise ValueError(f"{where}.{name}: {v!r} is outside [0, 1]")
        else:
            raise ValueError(f"{where}.{name}: {v!r} is not a number (scores are numbers in [0, 1] or null)")
    return out


SPAN_COLUMNS = (
    "id",
    "experiment_id",
    "span_id",
    "root_span_id",
    "span_parents",
    "span_attributes",
    "name",
    "type",
    "input",
    "output",
    "expected",
    "error",
    "scores",
    "metadata",
    "metrics",
    "tags",
    "origin",
    "dataset_record_id",
    "created",
    "start",
    "end",
)


_FIELD_SET = frozenset(SPAN_FIELDS)
_NUMBER_TYPES = (int, float)
_isfinite = math.isfinite


def _bad(index: int, field: str, problem: str, rid: str | None) -> RecordError:
    return RecordError(index, field, problem, rid)


def _parents_ok(parents: Any) -> bool:
    if type(parents) is list and len(parents) == 1:  # the usual child span: one parent
        p = parents[0]
        return isinstance(p, str) and p != ""
    return isinstance(parents, list) and all(isinstance(p, str) and p for p in parents)


# Field checks shared by validate_span_row and onespan.encode_root (called only for a
# field that is present; each raises RecordError naming the record and the field).
def check_scores(index: int, scores: Any, rid: str | None) -> Any:
    """``scores`` normalized: floats in [0, 1] or None (booleans 1/0)."""
    if type(scores) is dict:
        for k, v in scores.items():
            # the usual score: a float already in [0, 1] (NaN and inf fail the range test)
            if type(v) is not float or not 0.0 <= v <= 1.0 or type(k) is not str or not k:
                break
        else:
            return scores
    try:
        return normalize_scores(scores)
    except ValueError as e:
        raise _bad(index, "scores", str(e).removeprefix("scores").lstrip(".: ") or "invalid", rid) from None


def check_metadata(index: int, metadata: Any, rid: str | None) -> None:
    if not isinstance(metadata, dict):
        raise _bad(index, "metadata", f"must be an object, not {type(metadata).__name__}", rid)
    for k in metadata:
        if type(k) is not str:
            raise _bad(index, "metadata", f"key {k!r} is not a string", rid)


def check_metrics(index: int, metrics: Any, rid: str | None) -> None:
    if not isinstance(metrics, dict):
        raise _bad(index, "metrics", f"must be an object of name -> number, not {type(metrics).__name__}", rid)
    for k, v in metrics.items():
        if type(k) is not str:
            raise _bad(index, "metrics", f"key {k!r} is not a string", rid)
        if v is not None and (type(v) not in _NUMBER_TYPES or not _isfinite(v)):
            if not (_is_number(v) and _isfinite(v)):  # int/float subclasses are fine
                raise _bad(index, f"metrics.{k}", f"{v!r} is not a finite number", rid)


def check_tags(index: int, tags: Any, rid: str | None) -> None:
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _bad(index, "tags", "must be a list of strings", rid)


def check_created(index: int, created: Any, now: str, rid: str | None) -> str:
    """``created`` as an ISO string: ``now`` when absent, a Unix time converted."""
    if created is None:
        return now
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        return _dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat()
    if not isinstance(created, str):
        raise _bad(index, "created", "must be an ISO timestamp string", rid)
    return created


def validate_span(index: int, rec: Any, now: str | None = None) -> dict[str, Any]:
    """Check one span record and return it normalized (a new dict; the input is untouched).

    The result has every field of the span record plus ``name`` and ``type``.

    Normalizing: root_span_id defaults to span_id, span_parents to [] for a root, scores to
    floats (booleans to 1/0), created to ``now`` (default: the current time). Raises
    RecordError naming the record's index and the field.
    """
    return validate_span_row(index, rec, now)[0]


def validate_span_row(index: int, rec: Any, now: str | None = None) -> tuple[dict[str, Any], tuple]:
    """:func:`validate_span` and :func:`span_row` in one pass: (normalized record, spans-table row)."""
    # Written for speed (it runs once per span of every ingest): plain lookups and type
    # checks, the general path only where the fast one does not decide.
    if type(rec) is not dict and not isinstance(rec, dict):
        raise RecordError(index, "(record)", f"expected an object, got {type(rec).__name__}")
    get = rec.get
    rid = get("id")
    if not isinstance(rid, str):
        rid = None
    if not _FIELD_SET.issuperset(rec):
        unknown = rec.keys() - _FIELD_SET
        raise _bad(index, sorted(unknown, key=str)[0], "unknown field (see the span record in DESIGN.md)", rid)

    eid = get("experiment_id")
    span_id = get("span_id")
    if not rid:
        raise _bad(index, "id", "required, a non-empty string", rid)
    if not eid or not isinstance(eid, str):
        raise _bad(index, "experiment_id", "required, a non-empty string", rid)
    if not span_id or not isinstance(span_id, str):
        raise _bad(index, "span_id", "required, a non-empty string", rid)
    root = get("root_span_id") or span_id
    if type(root) is not str and not isinstance(root, str):
        raise _bad(index, "root_span_id", "must be a string", rid)
    parents = get("span_parents") or []
    if parents and not (
        type(parents) is list and len(parents) == 1 and type(parents[0]) is str and parents[0]
    ) and not _parents_ok(parents):
        raise _bad(index, "span_parents", "must be a list of span ids", rid)
    if root == span_id:
        if parents:
            raise _bad(index, "span_parents", "a root span (span_id = root_span_id) has no parents", rid)
    elif not parents:
        raise _bad(index, "span_parents", "a child span needs its parent's span id", rid)

    attrs = get("span_attributes") or {}
    if type(attrs) is not dict and not isinstance(attrs, dict):
        raise _bad(index, "span_attributes", "must be an object {name, type}", rid)
    name = attrs.get("name")
    if name is not None and type(name) is not str and not isinstance(name, str):
        raise _bad(index, "span_attributes.name", "must be a string", rid)
    stype = attrs.get("type")
    if stype is not None and type(stype) is not str and not isinstance(stype, str):
        raise _bad(index, "span_attributes.type", "must be a string", rid)

    scores = get("scores")
    if scores is not None:
        scores = check_scores(index, scores, rid)
    metadata = get("metadata")
    if metadata is not None:
        check_metadata(index, metadata, rid)
    metrics = get("metrics")
    if metrics is not None:
        check_metrics(index, metrics, rid)
    tags = get("tags")
    if tags is not None:
        check_tags(index, tags, rid)

    dsr = get("dataset_record_id")
    if dsr is not None and not isinstance(dsr, str):
        raise _bad(index, "dataset_record_id", "must be a string", rid)

    created = get("created")
    created = created if type(created) is str else check_created(index, created, now or now_iso(), rid)

    input_, output, expected, error, origin = get("input"), get("output"), get("expected"), get("error"), get("origin")
    scores = scores or None
    metadata = metadata or None
    metrics = metrics or None
    tags = tags or None
    out = {
        # name and type ride along for the roll-ups (the spans table has them as columns)
        "name": name,
        "type": stype,
        "id": rid,
        "experiment_id": eid,
        "span_id": span_id,
        "root_span_id": root,
        "span_parents": parents,
        "span_attributes": attrs,
        "input": input_,
        "output": output,
        "expected": expected,
        "error": error,
        "scores": scores,
        "metadata": metadata,
        "metrics": metrics,
        "tags": tags,
        "origin": origin,
        "dataset_record_id": dsr,
        "created": created,
    }
    try:
        dumps = _dumps
        row = (
            rid,
            eid,
            span_id,
            root,
            dumps(parents).decode() if parents else None,
            dumps(attrs).decode() if attrs else None,
            name,
            stype,
            None if input_ is None else dumps(input_).decode(),
            None if output is None else dumps(output).decode(),
            None if expected is None else dumps(expected).decode(),
            None if error is None else dumps(error).decode(),
            None if scores is None else dumps(scores).decode(),
            None if metadata is None else dumps(metadata).decode(),
            None if metrics is None else dumps(metrics).decode(),
            None if tags is None else dumps(tags).decode(),
            None if origin is None else dumps(origin).decode(),
            dsr,
            created,
            metrics.get("start") if metrics else None,
            metrics.get("end") if metrics else None,
        )
    except (TypeError, ValueError, orjson.JSONEncodeError):
        row = span_row(index, out)  # names the field (and the place in it) that cannot be stored
    return out, row


def span_row(index: int, rec: dict[str, Any]) -> tuple:
    """Encode a validated record as a row of the spans table (SPAN_COLUMNS order)."""
    metrics = rec["metrics"]
    attrs = rec["span_attributes"]
    parents = rec["span_parents"]
    try:
        dumps = _dumps
        # JSON_FIELDS order; span_parents and span_attributes are NULL when empty
        encoded = (
            dumps(parents).decode() if parents else None,
            dumps(attrs).decode() if attrs else None,
            *[None if (v := rec[f]) is None else dumps(v).decode() for f in _PAYLOAD_FIELDS],
        )
    except (TypeError, ValueError, orjson.JSONEncodeError):
        # find the field (and the place inside it) that cannot be stored, for the message
        rid = rec["id"]
        encoded = tuple(_encode(index, rid, f, rec[f]) for f in JSON_FIELDS)
        encoded = (encoded[0] if parents else None, encoded[1] if attrs else None, *encoded[2:])
    return (
        rec["id"],
        rec["experiment_id"],
        rec["span_id"],
        rec["root_span_id"],
        encoded[0],
        encoded[1],
        rec["name"],
        rec["type"],
        *encoded[2:],
        rec["dataset_record_id"],
        rec["created"],
        metrics.get("start") if metrics else None,
        metrics.get("end") if metrics else None,
    )


_PAYLOAD_FIELDS = JSON_FIELDS[2:]
_dumps = orjson.dumps
