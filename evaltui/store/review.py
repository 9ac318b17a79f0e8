"""Human review of traces: review state, assignment, human scores, comments, history.

Every change is one IMMEDIATE transaction (``store.transaction()``) that reads what it
changes, applies it and appends to the events log (DESIGN.md "Human actions"): several
reviewers sharing one database never lose each other's updates, and every change can be
traced back to who made it, when, and what it was before.

Human scores (DESIGN.md "Project settings"): a project's ``score_definitions`` say what
reviewers can score. Each reviewer's scores on a trace live on one ``review`` span under
the trace's root (a deterministic id per experiment, trace and reviewer, so scoring again
updates it). The trace row averages scores over all spans of the trace, so two reviewers'
numeric scores average, and average with automated scores of the same name, by design.

- categorical: options ``name -> value in [0, 1]``; a reviewer picks an option (or several
  when ``multi_select``: the score is the mean of their values). The chosen option names
  are kept in the review span's ``metadata.choices``. With ``write_to_expected`` the chosen
  option (a list of names when multi-select) also becomes the root span's ``expected``
  (the root is re-written: a new version of the span; the last reviewer to choose wins).
- continuous: a slider, 0-100 %, stored as a score in [0, 1].
- text: a free-form answer, stored in the review span's metadata at the definition's
  ``path`` (dotted; default: the name). It is no score: it has no column.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from evaltui.store.connection import Store
from evaltui.store.errors import NotFound, StoreError
from evaltui.store.readers import span_record
from evaltui.store.records import SPAN_COLUMNS, dumps, loads, now_iso
from evaltui.store.writers import (
    DEFAULT_PROJECT_SETTINGS,
    append_event,
    new_id,
    set_review,
    write_spans,
)

__all__ = [
    "REVIEW_SPAN_TYPE",
    "REVIEW_STATUSES",
    "SCORE_KINDS",
    "NotAllowed",
    "ReviewError",
    "ScoreDefinitionError",
    "add_comment",
    "assign",
    "define_human_score",
    "delete_comment",
    "describe_event",
    "experiment_roots",
    "human_answers",
    "human_score_definitions",
    "known_users",
    "list_comments",
    "load_root_spans",
    "load_spans_by_id",
    "mark_reviewed",
    "remove_human_score",
    "review_progress",
    "review_span_id",
    "set_human_score",
    "toggle_reviewed",
    "trace_history",
    "validate_score_definition",
]

REVIEW_STATUSES = ("unreviewed", "in review", "reviewed")
REVIEW_SPAN_TYPE = "review"
SCORE_KINDS = ("categorical", "continuous", "text")
_KIND_ALIASES = {"free-form": "text", "freeform": "text", "free_form": "text", "slider": "continuous"}
# keys of a review span's metadata that a text answer's path may not take
_RESERVED_METADATA = frozenset({"reviewer", "choices"})
_CHUNK = 400


class ReviewError(StoreError):
    """A review action that cannot be applied (unknown score, bad value, empty comment...)."""


class ScoreDefinitionError(ReviewError):
    """A human score definition that does not validate; nothing was saved."""


class NotAllowed(ReviewError):
    """The user may not do this (delete someone else's comment)."""


def _check_user(user: Any) -> str:
    if not isinstance(user, str) or not user.strip():
        raise ReviewError(f"a user name is needed (a non-empty string), not {user!r}")
    return user


def _chunks(seq: Sequence[Any], n: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _trace_row(conn: Any, experiment_id: str, root: str) -> tuple[str, str, str | None]:
    """(root span row id, review status, assignee) of a trace; NotFound if there is none."""
    row = conn.execute(
        "SELECT id, review_status, assignee FROM traces WHERE experiment_id = ? AND root_span_id = ?",
        (experiment_id, root),
    ).fetchone()
    if row is None:
        raise NotFound(f"no trace {root!r} in experiment {experiment_id!r}")
    return row[0], row[1], row[2]


def _span(conn: Any, row_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {', '.join(f'[{c}]' for c in SPAN_COLUMNS)} FROM spans WHERE id = ?", (row_id,)
    ).fetchone()
    return None if row is None else span_record(dict(zip(SPAN_COLUMNS, row, strict=True)))


# -- review state -------------------------------------------------------------------------------


def toggle_reviewed(store: Store, experiment_id: str, root_span_id: str, user: str) -> str:
    """Mark a trace reviewed, or back to unreviewed when it already is; returns the new status.

    Read and write happen under one write lock, so two reviewers toggling the same trace
    at the same moment toggle it twice (never both to the same state).
    """
    _check_user(user)
    with store.transaction() as conn:
        _, status, _ = _trace_row(conn, experiment_id, root_span_id)
        new = "unreviewed" if status == "reviewed" else "reviewed"
        set_review(store, experiment_id, [root_span_id], user=user, review_status=new)
    return new


def mark_reviewed(
    store: Store, experiment_id: str, root_span_ids: Sequence[str], user: str, *, reviewed: bool = True
) -> int:
    """Mark traces reviewed (by ``user``) or unreviewed; returns how many changed."""
    _check_user(user)
    return set_review(
        store, experiment_id, list(dict.fromkeys(root_span_ids)), user=user,
        review_status="reviewed" if reviewed else "unreviewed",
    )


def assign(
    store: Store, experiment_id: str, root_span_ids: Sequence[str], assignee: str | None, user: str
) -> int:
    """Assign traces to ``assignee`` (None: unassign); returns how many changed.

    Only the assignee changes: the review status is left as it is.
    """
    _check_user(user)
    if assignee is not None and (not isinstance(assignee, str) or not assignee.strip()):
        raise ReviewError(f"an assignee is a user name or None, not {assignee!r}")
    return set_review(store, experiment_id, list(dict.fromkeys(root_span_ids)), user=user, assignee=assignee)


def known_users(store: Store) -> list[str]:
    """Everyone the database has seen: event authors, assignees, reviewers, comment authors."""
    rows = store.read(
        "SELECT user FROM events"
        " UNION SELECT assignee FROM traces WHERE assignee IS NOT NULL"
        " UNION SELECT reviewed_by FROM traces WHERE reviewed_by IS NOT NULL"
        " UNION SELECT author FROM comments"
    )
    return sorted({r[0] for r in rows if r[0]}, key=lambda u: (u.casefold(), u))


def review_progress(
    store: Store, experiment_id: str, root_span_ids: Sequence[str] | None = None
) -> tuple[int, int]:
    """(reviewed, total) traces of an experiment, or of the given traces (unknown ones ignored)."""
    sql = "SELECT count(*), coalesce(sum(review_status = 'reviewed'), 0) FROM traces WHERE experiment_id = ?"
    if root_span_ids is None:
        # two index-only counts (the reviewed ones from the partial index) rather than
        # reading every trace row of the experiment for its review_status
        total, done = store.read(
            "SELECT (SELECT count(*) FROM traces WHERE experiment_id = ?),"
            " (SELECT count(*) FROM traces WHERE experiment_id = ? AND review_status = 'reviewed')",
            (experiment_id, experiment_id),
        )[0]
        return done, total
    done = total = 0
    with store.lock:
        for chunk in _chunks(list(dict.fromkeys(root_span_ids))):
            t, d = store.conn.execute(
                f"{sql} AND root_span_id IN ({','.join('?' * len(chunk))})", (experiment_id, *chunk)
            ).fetchone()
            done, total = done + d, total + t
    return done, total


_ACTION_WORDS = {
    "review_status": "set review status",
    "assign": "set assignee",
    "human_score": "scored",
    "expected": "set expected",
    "comment": "commented",
    "delete_comment": "deleted a comment",
    "rescore": "rescored",
}


def _short(value: Any, limit: int = 60) -> str:
    """A value for one line of history: numbers rounded, score objects as name=value."""
    if value is None:
        return "none"
    if isinstance(value, float):
        text = f"{value:.3g}"
    elif isinstance(value, dict) and value and all(isinstance(v, (int, float, type(None))) for v in value.values()):
        text = ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    elif isinstance(value, dict) and set(value) == {"error"}:
        text = f"error ({_short(value['error'], limit)})"
    elif isinstance(value, list):
        text = ", ".join(_short(v) for v in value)
    else:
        text = value if isinstance(value, str) else dumps(value)
    text = " ".join(text.split())  # one line
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_event(event: dict[str, Any]) -> str:
    """One line for a history entry: ``alice set review status: unreviewed → reviewed``."""
    action, before, after = event["action"], event["before"], event["after"]
    who = event["user"]
    if action in ("comment", "delete_comment"):
        text = (after if action == "comment" else before) or {}
        return f"{who} {_ACTION_WORDS[action]}: {_short(text.get('text') if isinstance(text, dict) else text)}"
    if action in ("human_score", "rescore") and isinstance(after, dict):
        parts = []
        for name in after:
            old = before.get(name) if isinstance(before, dict) else None
            new = after[name]
            if action == "rescore":  # a scorer's scores: its own name's value when that is all there is
                old = old.get(name, old) if isinstance(old, dict) and set(old) == {name} else old
                new = new.get(name, new) if isinstance(new, dict) and set(new) == {name} else new
            parts.append(f"{name}: {_short(old)} → {_short(new)}")
        return f"{who} {_ACTION_WORDS[action]} " + "; ".join(parts)
    return f"{who} {_ACTION_WORDS.get(action, action)}: {_short(before)} → {_short(after)}"


def trace_history(store: Store, experiment_id: str, root_span_id: str) -> list[dict[str, Any]]:
    """Every event of one trace, oldest first: seq, ts, user, action, span_id, before, after, text."""
    rows = store.read(
        "SELECT seq, ts, user, action, span_id, before, after FROM events"
        " WHERE experiment_id = ? AND root_span_id = ? ORDER BY seq",
        (experiment_id, root_span_id),
    )
    out = []
    for seq, ts, user, action, span_id, before, after in rows:
        event = {
            "seq": seq, "ts": ts, "user": user, "action": action, "span_id": span_id,
            "before": loads(before), "after": loads(after),
        }
        event["text"] = describe_event(event)
        out.append(event)
    return out


# -- human score definitions ----------------------------------------------------------------------


def _number_in_unit(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1
    )


_PATH_PART = re.compile(r"[^.\"\\\x00-\x1f]+")


def validate_score_definition(definition: Any) -> dict[str, Any]:
    """A human score definition checked and normalized; raises ScoreDefinitionError.

    ``{"name", "kind": "categorical", "options": {name: value} or [{"name", "value"}],
    "multi_select": False, "write_to_expected": False}``, ``{"name", "kind": "continuous"}``
    or ``{"name", "kind": "text", "path": "notes"}``; each may have a ``description``.
    Options come back as a list of ``{"name", "value"}`` in the order given.
    """
    if not isinstance(definition, dict):
        raise ScoreDefinitionError(f"a score definition is an object, not {type(definition).__name__}")
    name = definition.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScoreDefinitionError("a human score needs a name (a non-empty string)")
    name = name.strip()
    if any(c in name for c in '"\\') or any(ord(c) < 0x20 for c in name):
        raise ScoreDefinitionError(f"score name {name!r}: no quotes, backslashes or control characters")
    raw_kind = definition.get("kind")
    kind = _KIND_ALIASES.get(raw_kind, raw_kind) if isinstance(raw_kind, str) else raw_kind
    if kind not in SCORE_KINDS:
        raise ScoreDefinitionError(
            f"score {name!r}: unknown kind {raw_kind!r} (one of {', '.join(SCORE_KINDS)})"
        )
    allowed = {"name", "kind", "description"} | {
        "categorical": {"options", "multi_select", "write_to_expected"},
        "continuous": set(),
        "text": {"path"},
    }[kind]
    unknown = sorted(set(definition) - allowed)
    if unknown:
        raise ScoreDefinitionError(f"score {name!r}: unknown field {unknown[0]!r} for a {kind} score")
    out: dict[str, Any] = {"name": name, "kind": kind}
    description = definition.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise ScoreDefinitionError(f"score {name!r}: description must be text")
        out["description"] = description
    if kind == "categorical":
        out.update(_validate_options(name, definition.get("options")))
        for flag in ("multi_select", "write_to_expected"):
            value = definition.get(flag, False)
            if not isinstance(value, bool):
                raise ScoreDefinitionError(f"score {name!r}: {flag} must be true or false, not {value!r}")
            out[flag] = value
    elif kind == "text":
        path = definition.get("path") or name
        if not isinstance(path, str):
            raise ScoreDefinitionError(f"score {name!r}: path must be a dotted metadata path, not {path!r}")
        parts = path.split(".")
        if not all(_PATH_PART.fullmatch(p) for p in parts):
            raise ScoreDefinitionError(
                f"score {name!r}: path {path!r} is not a dotted metadata path (no empty parts, quotes or backslashes)"
            )
        if parts[0] in _RESERVED_METADATA:
            raise ScoreDefinitionError(f"score {name!r}: path {path!r} is reserved (it cannot start with {parts[0]!r})")
        out["path"] = path
    return out


def _validate_options(name: str, options: Any) -> dict[str, Any]:
    if isinstance(options, dict):
        pairs = list(options.items())
    elif isinstance(options, (list, tuple)):
        pairs = []
        for i, o in enumerate(options):
            if not isinstance(o, dict) or set(o) - {"name", "value"} or "name" not in o or "value" not in o:
                raise ScoreDefinitionError(f"score {name!r}: option {i + 1} must be {{'name': ..., 'value': ...}}")
            pairs.append((o["name"], o["value"]))
    else:
        raise ScoreDefinitionError(f"score {name!r}: a categorical score needs options (name -> value in [0, 1])")
    if not pairs:
        raise ScoreDefinitionError(f"score {name!r}: a categorical score needs at least one option")
    seen: dict[str, str] = {}
    out = []
    for option, value in pairs:
        if not isinstance(option, str) or not option.strip():
            raise ScoreDefinitionError(f"score {name!r}: an option needs a name (a non-empty string)")
        option = option.strip()
        key = option.casefold()
        if key in seen:
            raise ScoreDefinitionError(f"score {name!r}: duplicate option {option!r}")
        seen[key] = option
        if not _number_in_unit(value):
            raise ScoreDefinitionError(
                f"score {name!r}: option {option!r} has value {value!r}, outside [0, 1] (values are numbers 0..1)"
            )
        out.append({"name": option, "value": float(value)})
    return {"options": out}


def _project_of(conn: Any, experiment_id: str) -> str:
    row = conn.execute("SELECT project_id FROM experiments WHERE id = ?", (experiment_id,)).fetchone()
    if row is None:
        raise NotFound(f"no experiment with id {experiment_id!r}")
    return row[0]


def _settings(conn: Any, project_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT settings FROM projects WHERE id = ?", (project_id,)).fetchone()
    if row is None:
        raise NotFound(f"no project with id {project_id!r}")
    return {**DEFAULT_PROJECT_SETTINGS, **(loads(row[0]) or {})}


def _save_definitions(conn: Any, project_id: str, settings: dict[str, Any], defs: list[dict[str, Any]]) -> None:
    conn.execute(
        "UPDATE projects SET settings = ? WHERE id = ?", (dumps({**settings, "score_definitions": defs}), project_id)
    )


def define_human_score(store: Store, project_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Add a human score definition to a project, or replace the one with the same name.

    Returns the definition as saved. Raises ScoreDefinitionError (nothing saved) when it does
    not validate, or when a text score's path is taken by another text score.
    """
    checked = validate_score_definition(definition)
    with store.transaction() as conn:
        settings = _settings(conn, project_id)
        defs = [d for d in settings.get("score_definitions") or [] if d.get("name") != checked["name"]]
        if checked["kind"] == "text":
            mine = checked["path"].split(".")
            for d in defs:
                if d.get("kind") != "text":
                    continue
                other = str(d.get("path")).split(".")
                n = min(len(mine), len(other))
                if mine[:n] == other[:n]:
                    raise ScoreDefinitionError(
                        f"score {checked['name']!r}: path {checked['path']!r} overlaps score "
                        f"{d['name']!r}'s path {d['path']!r}"
                    )
        old = next((i for i, d in enumerate(settings.get("score_definitions") or [])
                    if d.get("name") == checked["name"]), None)
        if old is None:
            defs.append(checked)
        else:
            defs.insert(old, checked)  # an edit keeps its place in the list
        _save_definitions(conn, project_id, settings, defs)
    return checked


def remove_human_score(store: Store, project_id: str, name: str) -> bool:
    """Drop a definition (scores already given stay on their review spans); True if it existed."""
    with store.transaction() as conn:
        settings = _settings(conn, project_id)
        defs = settings.get("score_definitions") or []
        kept = [d for d in defs if d.get("name") != name]
        if len(kept) == len(defs):
            return False
        _save_definitions(conn, project_id, settings, kept)
    return True


def human_score_definitions(store: Store, project_id: str) -> list[dict[str, Any]]:
    """The project's human score definitions, in the order they were defined."""
    with store.lock:
        return list(_settings(store.conn, project_id).get("score_definitions") or [])


# -- scoring a trace by hand ---------------------------------------------------------------------


def review_span_id(experiment_id: str, root_span_id: str, user: str) -> str:
    """Row id (and span id) of ``user``'s review span on a trace: the same every time."""
    digest = hashlib.blake2b(f"{experiment_id}\0{root_span_id}\0{user}".encode(), digest_size=16).hexdigest()
    return f"review-{digest}"


def _get_path(doc: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set (value not None) or remove (None) ``path`` in ``doc``; empty parents are dropped."""
    parts = path.split(".")
    trail = [doc]
    for part in parts[:-1]:
        nxt = trail[-1].get(part)
        if not isinstance(nxt, dict):
            if value is None:
                return
            nxt = {}
            trail[-1][part] = nxt
        trail.append(nxt)
    if value is None:
        trail[-1].pop(parts[-1], None)
        for parent, part in zip(reversed(trail[:-1]), reversed(parts[:-1]), strict=True):
            if not parent[part]:
                del parent[part]
    else:
        trail[-1][parts[-1]] = value


def _checked_value(definition: dict[str, Any], value: Any) -> tuple[float | str | None, Any]:
    """(what is stored: score or text, what the reviewer chose) for a definition; raises ReviewError."""
    name, kind = definition["name"], definition["kind"]
    if value is None:
        return None, None
    if kind == "categorical":
        options = {o["name"]: o["value"] for o in definition["options"]}
        folded = {o.casefold(): o for o in options}
        chosen = [value] if isinstance(value, str) else value
        if not isinstance(chosen, (list, tuple)) or not all(isinstance(c, str) for c in chosen):
            raise ReviewError(f"score {name!r}: choose an option by name, not {value!r}")
        if len(chosen) > 1 and not definition.get("multi_select"):
            raise ReviewError(f"score {name!r} takes one option, not {len(chosen)}")
        names = []
        for c in chosen:
            option = folded.get(c.strip().casefold())
            if option is None:
                raise ReviewError(f"score {name!r} has no option {c!r} (options: {', '.join(options)})")
            if option not in names:
                names.append(option)
        if not names:
            return None, None
        score = sum(options[n] for n in names) / len(names)
        return score, (names if definition.get("multi_select") else names[0])
    if kind == "continuous":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ReviewError(f"score {name!r} is a percentage from 0 to 100, not {value!r}")
        if not 0 <= value <= 100:
            raise ReviewError(f"score {name!r}: {value!r} is outside 0..100 %")
        return value / 100, value / 100
    if not isinstance(value, str):
        raise ReviewError(f"score {name!r} is free-form text, not {type(value).__name__}")
    return (value, value) if value.strip() else (None, None)


def _reviewer_view(definition: dict[str, Any], span: dict[str, Any] | None) -> Any:
    """A reviewer's current answer to one definition, as shown to people (option names, 0..1, text)."""
    if span is None:
        return None
    name, kind = definition["name"], definition["kind"]
    md = span.get("metadata") or {}
    if kind == "text":
        return _get_path(md, definition["path"])
    if kind == "categorical":
        return (md.get("choices") or {}).get(name)
    return (span.get("scores") or {}).get(name)


def set_human_score(
    store: Store, experiment_id: str, root_span_id: str, name: str, value: Any, user: str
) -> Any:
    """Record ``user``'s answer to the project's human score ``name`` on one trace.

    ``value``: an option name (a list of names for a multi-select categorical score), a
    percentage 0-100 (continuous), or text (free-form); None (or empty text) clears the
    answer. The reviewer's review span is written (created the first time), the trace row is
    recomputed, and a ``human_score`` event records before → after; an answer equal to the
    reviewer's current one changes nothing. Returns the stored value
    (the score in [0, 1], or the text; None when cleared).
    """
    _check_user(user)
    with store.transaction() as conn:
        settings = _settings(conn, _project_of(conn, experiment_id))
        definition = next((d for d in settings.get("score_definitions") or [] if d.get("name") == name), None)
        if definition is None:
            known = ", ".join(repr(d.get("name")) for d in settings.get("score_definitions") or []) or "none"
            raise ReviewError(f"no human score named {name!r} in this project (defined: {known})")
        stored, shown = _checked_value(definition, value)
        root_row_id, _, _ = _trace_row(conn, experiment_id, root_span_id)
        rid = review_span_id(experiment_id, root_span_id, user)
        existing = _span(conn, rid)
        before = _reviewer_view(definition, existing)
        if before == shown:
            return stored  # the answer stands: nothing to write, nothing to log (as set_review)
        now = now_iso()
        rec = existing or {
            "id": rid, "experiment_id": experiment_id, "span_id": rid, "root_span_id": root_span_id,
            "span_parents": [root_span_id], "created": now,
            "metrics": {"start": _timestamp(now)},
        }
        rec["span_attributes"] = {"name": f"review: {user}", "type": REVIEW_SPAN_TYPE}
        metadata = dict(rec.get("metadata") or {})
        metadata["reviewer"] = user
        scores = dict(rec.get("scores") or {})
        kind = definition["kind"]
        if kind == "text":
            _set_path(metadata, definition["path"], stored)
        else:
            if stored is None:
                scores.pop(name, None)
            else:
                scores[name] = stored
            if kind == "categorical":
                choices = dict(metadata.get("choices") or {})
                if shown is None:
                    choices.pop(name, None)
                else:
                    choices[name] = shown
                if choices:
                    metadata["choices"] = choices
                else:
                    metadata.pop("choices", None)
        rec["scores"] = scores or None
        rec["metadata"] = metadata
        rec["metrics"] = {**(rec.get("metrics") or {}), "end": _timestamp(now)}
        records = [rec]
        expected_change = None
        if kind == "categorical" and definition.get("write_to_expected") and shown is not None:
            root = _span(conn, root_row_id)
            if root is not None and root.get("expected") != shown:
                expected_change = (root.get("expected"), shown)
                records.append({**root, "expected": shown})
        write_spans(store, records)
        append_event(conn, user=user, action="human_score", experiment_id=experiment_id,
                     root_span_id=root_span_id, span_id=rid, before={name: before}, after={name: shown})
        if expected_change is not None:
            append_event(conn, user=user, action="expected", experiment_id=experiment_id,
                         root_span_id=root_span_id, span_id=root_span_id,
                         before=expected_change[0], after=expected_change[1])
    return stored


def _timestamp(iso: str) -> float:
    return _dt.datetime.fromisoformat(iso).timestamp()


def human_answers(store: Store, experiment_id: str, root_span_id: str) -> dict[str, dict[str, Any]]:
    """Each reviewer's answers on one trace: ``{reviewer: {score name: answer}}``.

    Answers are as reviewers gave them: option names (a list for multi-select), continuous
    scores in [0, 1], free-form text. Scores whose definition was since removed show their
    stored value.
    """
    with store.lock:
        rows = store.conn.execute(
            f"SELECT {', '.join(f'[{c}]' for c in SPAN_COLUMNS)} FROM spans"
            " WHERE experiment_id = ? AND root_span_id = ? AND type = ? ORDER BY id",
            (experiment_id, root_span_id, REVIEW_SPAN_TYPE),
        ).fetchall()
        settings = _settings(store.conn, _project_of(store.conn, experiment_id))
    defs = settings.get("score_definitions") or []
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        span = span_record(dict(zip(SPAN_COLUMNS, row, strict=True)))
        reviewer = (span.get("metadata") or {}).get("reviewer")
        if not isinstance(reviewer, str):
            continue
        answers = {k: v for k, v in (span.get("scores") or {}).items() if v is not None}
        for d in defs:
            shown = _reviewer_view(d, span)
            if shown is not None:
                answers[d["name"]] = shown
            elif d["kind"] == "categorical":
                answers.pop(d["name"], None)  # a score without a recorded choice is not an answer
        if answers:
            out[reviewer] = answers
    return dict(sorted(out.items()))


# -- comments ------------------------------------------------------------------------------------


def add_comment(
    store: Store, experiment_id: str, root_span_id: str, text: str, user: str, span_id: str | None = None
) -> str:
    """Comment on a trace (or on one span of it); returns the comment's id."""
    _check_user(user)
    if not isinstance(text, str) or not text.strip():
        raise ReviewError("a comment needs some text")
    cid = new_id()
    with store.transaction() as conn:
        _trace_row(conn, experiment_id, root_span_id)
        if span_id is not None and not conn.execute(
            "SELECT 1 FROM spans WHERE experiment_id = ? AND root_span_id = ? AND span_id = ?",
            (experiment_id, root_span_id, span_id),
        ).fetchone():
            raise NotFound(f"no span {span_id!r} in trace {root_span_id!r}")
        conn.execute(
            "INSERT INTO comments (id, experiment_id, root_span_id, span_id, author, created, text)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (cid, experiment_id, root_span_id, span_id, user, now_iso(), text),
        )
        append_event(conn, user=user, action="comment", experiment_id=experiment_id, root_span_id=root_span_id,
                     span_id=span_id, before=None, after={"id": cid, "text": text})
    return cid


def list_comments(store: Store, experiment_id: str, root_span_id: str) -> list[dict[str, Any]]:
    """A trace's comments, oldest first: id, span_id, author, created, text."""
    rows = store.read(
        "SELECT id, span_id, author, created, text FROM comments WHERE experiment_id = ? AND root_span_id = ?"
        " ORDER BY created, rowid",
        (experiment_id, root_span_id),
    )
    return [{"id": r[0], "span_id": r[1], "author": r[2], "created": r[3], "text": r[4]} for r in rows]


def delete_comment(store: Store, comment_id: str, user: str) -> None:
    """Delete a comment; only its author may (NotAllowed otherwise)."""
    _check_user(user)
    with store.transaction() as conn:
        row = conn.execute(
            "SELECT experiment_id, root_span_id, span_id, author, text FROM comments WHERE id = ?", (comment_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no comment with id {comment_id!r}")
        eid, root, span_id, author, text = row
        if author != user:
            raise NotAllowed(f"only {author!r} can delete this comment (it is theirs)")
        conn.execute("DELETE FROM comments WHERE id = ?", (comment_id,))
        append_event(conn, user=user, action="delete_comment", experiment_id=eid, root_span_id=root,
                     span_id=span_id, before={"id": comment_id, "text": text}, after=None)


# -- reads for retrospective scoring (evaltui.sdk.rescore) ---------------------------------------


def experiment_roots(store: Store, experiment_id: str) -> list[str]:
    """Root span ids of an experiment's traces, in the table's default order."""
    return [r[0] for r in store.read(
        "SELECT root_span_id FROM traces WHERE experiment_id = ? ORDER BY created, root_span_id", (experiment_id,)
    )]


def load_root_spans(store: Store, experiment_id: str, root_span_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The root span records of the given traces (missing traces are left out)."""
    out: dict[str, dict[str, Any]] = {}
    cols = ", ".join(f"s.[{c}]" for c in SPAN_COLUMNS)
    with store.lock:
        for chunk in _chunks(list(dict.fromkeys(root_span_ids))):
            rows = store.conn.execute(
                f"SELECT {cols} FROM traces t JOIN spans s ON s.id = t.id"
                f" WHERE t.experiment_id = ? AND t.root_span_id IN ({','.join('?' * len(chunk))})",
                (experiment_id, *chunk),
            ).fetchall()
            for row in rows:
                rec = span_record(dict(zip(SPAN_COLUMNS, row, strict=True)))
                out[rec["root_span_id"]] = rec
    return out


def load_spans_by_id(store: Store, row_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Span records by row id (ids not stored are left out)."""
    out: dict[str, dict[str, Any]] = {}
    with store.lock:
        for chunk in _chunks(list(dict.fromkeys(row_ids))):
            rows = store.conn.execute(
                f"SELECT {', '.join(f'[{c}]' for c in SPAN_COLUMNS)} FROM spans"
                f" WHERE id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            ).fetchall()
            for row in rows:
                rec = span_record(dict(zip(SPAN_COLUMNS, row, strict=True)))
                out[rec["id"]] = rec
    return out
