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


def validate_span(index: int, rec: Any, now: str | None = None) -> dict[str, Any]:
    """Check one span record and return it normalized (a new dict; the input is untouched).

    The result has every field of the span record plus ``name`` and ``type``.

    Normalizing: root_span_id defaults to span_id, span_parents to [] for a root, scores to
    floats (booleans to 1/0), created to ``now`` (default: the current time). Raises
    RecordError naming the record's index and the field.
    """
    if not isinstance(rec, dict):
        raise RecordError(index, "(record)", f"expected an object, got {type(rec).__name__}")
    get = rec.get
    rid = get("id") if isinstance(get("id"), str) else None
    unknown = rec.keys() - _FIELD_SET
    if unknown:
        raise RecordError(index, sorted(unknown)[0], "unknown field (see the span record in DESIGN.md)", rid)

    def bad(field: str, problem: str) -> RecordError:
        return RecordError(index, field, problem, rid)

    span_id = get("span_id")
    for field, v in (("id", rid), ("experiment_id", get("experiment_id")), ("span_id", span_id)):
        if not isinstance(v, str) or not v:
            raise bad(field, "required, a non-empty string")
    root = get("root_span_id") or span_id
    if not isinstance(root, str):
        raise bad("root_span_id", "must be a string")
    parents = get("span_parents") or []
    if not isinstance(parents, list) or not all(isinstance(p, str) and p for p in parents):
        raise bad("span_parents", "must be a list of span ids")
    if root == span_id and parents:
        raise bad("span_parents", "a root span (span_id = root_span_id) has no parents")
    if root != span_id and not parents:
        raise bad("span_parents", "a child span needs its parent's span id")

    attrs = get("span_attributes") or {}
    if not isinstance(attrs, dict):
        raise bad("span_attributes", "must be an object {name, type}")
    for k in ("name", "type"):
        if attrs.get(k) is not None and not isinstance(attrs[k], str):
            raise bad(f"span_attributes.{k}", "must be a string")

    scores = get("scores")
    if scores is not None:
        try:
            scores = normalize_scores(scores)
        except ValueError as e:
            raise bad("scores", str(e).removeprefix("scores").lstrip(".: ") or "invalid") from None

    metadata = get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise bad("metadata", f"must be an object, not {type(metadata).__name__}")
        for k in metadata:
            if type(k) is not str:
                raise bad("metadata", f"key {k!r} is not a string")

    metrics = get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            raise bad("metrics", f"must be an object of name -> number, not {type(metrics).__name__}")
        for k, v in metrics.items():
            if type(k) is not str:
                raise bad("metrics", f"key {k!r} is not a string")
            if v is not None and (type(v) not in _NUMBER_TYPES or not math.isfinite(v)):
                if not (_is_number(v) and math.isfinite(v)):  # int/float subclasses are fine
                    raise bad(f"metrics.{k}", f"{v!r} is not a finite number")

    tags = get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise bad("tags", "must be a list of strings")

    dsr = get("dataset_record_id")
    if dsr is not None and not isinstance(dsr, str):
        raise bad("dataset_record_id", "must be a string")

    created = get("created")
    if created is None:
        created = now or now_iso()
    elif isinstance(created, (int, float)) and not isinstance(created, bool):
        created = _dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat()
    elif not isinstance(created, str):
        raise bad("created", "must be an ISO timestamp string")

    return {
        # name and type ride along for the roll-ups (the spans table has them as columns)
        "name": attrs.get("name"),
        "type": attrs.get("type"),
        "id": rid,
        "experiment_id": get("experiment_id"),
        "span_id": span_id,
        "root_span_id": root,
        "span_parents": parents,
        "span_attributes": attrs,
        "input": get("input"),
        "output": get("output"),
        "expected": get("expected"),
        "error": get("error"),
        "scores": scores or None,
        "metadata": metadata or None,
        "metrics": metrics or None,
        "tags": tags or None,
        "origin": get("origin"),
        "dataset_record_id": dsr,
        "created": created,
    }


def span_row(index: int, rec: dict[str, Any]) -> tuple:
    """Encode a validated record as a row of the spans table (SPAN_COLUMNS order)."""
    rid = rec["id"]
    metrics = rec["metrics"] or {}
    attrs = rec["span_attributes"]
    try:
        encoded = [None if rec[f] is None else _dumps(rec[f]).decode() for f in JSON_FIELDS]
    except (TypeError, ValueError, orjson.JSONEncodeError):
        # find the field (and the place inside it) that cannot be stored, for the message
        encoded = [_encode(index, rid, f, rec[f]) for f in JSON_FIELDS]
    parents, attrs_json, *payload = encoded
    return (
        rid,
        rec["experiment_id"],
        rec["span_id"],
        rec["root_span_id"],
        parents if rec["span_parents"] else None,
        attrs_json if attrs else None,
        attrs.get("name"),
        attrs.get("type"),
        *payload,
        rec["dataset_record_id"],
        rec["created"],
        metrics.get("start"),
        metrics.get("end"),
    )


_dumps = orjson.dumps
