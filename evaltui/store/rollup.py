"""Roll-ups: the trace row computed from all spans of one trace (DESIGN.md "Trace row").

Pure functions over decoded span dicts, so the maths is testable without a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from evaltui.store.records import canonical_json, dumps

PREVIEW_CHARS = 400
TOKEN_METRICS = (
    "prompt_tokens",
    "completion_tokens",
    "tokens",
    "prompt_cached_tokens",
    "completion_reasoning_tokens",
)
SCORER_TYPES = frozenset({"score"})
# Columns of the traces table a roll-up writes (review columns are left to humans).
ROLLUP_COLUMNS = (
    "experiment_id",
    "root_span_id",
    "id",
    "name",
    "created",
    "start",
    "end",
    "duration",
    "llm_duration",
    "ttft",
    *TOKEN_METRICS,
    "estimated_cost",
    "span_count",
    "llm_calls",
    "tool_calls",
    "errors",
    "has_error",
    "scorer_errors",
    "scores",
    "input_preview",
    "output_preview",
    "expected_preview",
    "error_preview",
    "metadata",
    "tags",
    "dataset_record_id",
    "comparison_key",
)


def preview(value: Any, limit: int = PREVIEW_CHARS) -> str | None:
    """A short text form of a JSON value: strings as they are, the rest as compact JSON."""
    if value is None:
        return None
    text = value if isinstance(value, str) else dumps(value)
    return text[:limit]


def error_text(error: Any) -> str | None:
    """The human part of an error value: its message when it is an object."""
    if error is None:
        return None
    if isinstance(error, dict):
        for k in ("message", "error", "msg"):
            if isinstance(error.get(k), str):
                return error[k]
    return error if isinstance(error, str) else dumps(error)


def resolve_path(record: dict[str, Any], path: str) -> Any:
    """Value at a dotted path of a span record (``input.question``, ``metadata.category``)."""
    head, _, rest = path.partition(".")
    value: Any = record.get(head)
    for part in rest.split(".") if rest else ():
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            i = int(part)
            value = value[i] if -len(value) <= i < len(value) else None
        else:
            return None
    return value


def comparison_key(root: dict[str, Any], key_spec: str | list[str] = "input") -> str | None:
    """Hash of the comparison key's value(s) on the root span, as canonical JSON.

    None when the trace has no value for the key: such rows match nothing, rather than
    each other.
    """
    if isinstance(key_spec, str):
        value = resolve_path(root, key_spec)
        if value is None:
            return None
    else:
        value = [resolve_path(root, p) for p in key_spec]
        if all(v is None for v in value):
            return None
    return hashlib.blake2b(canonical_json(value).encode(), digest_size=12).hexdigest()


def _scorer_subtree(spans: list[dict[str, Any]]) -> set[str]:
    """span_ids of scorer spans and everything below them (their LLM calls are not the task's)."""
    scorers = {s["span_id"] for s in spans if s.get("type") in SCORER_TYPES}
    if not scorers or not any(p in scorers for s in spans for p in s.get("span_parents") or ()):
        return scorers  # the usual case: scorer spans without children of their own
    children: dict[str, list[str]] = {}
    for s in spans:
        for p in s.get("span_parents") or ():
            children.setdefault(p, []).append(s["span_id"])
    out: set[str] = set()
    stack = [s["span_id"] for s in spans if s.get("type") in SCORER_TYPES]
    while stack:
        sid = stack.pop()
        if sid not in out:
            out.add(sid)
            stack.extend(children.get(sid, ()))
    return out


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


def trace_rollup(
    experiment_id: str,
    root_span_id: str,
    spans: list[dict[str, Any]],
    key_spec: str | list[str] = "input",
) -> dict[str, Any] | None:
    """The trace row of one trace, or None while its root span has not been written.

    Each span dict has the decoded record fields plus ``name`` and ``type``.
    - scores: each score's mean over all spans that carry it (null values are skipped;
      a score only ever null stays null)
    - tokens and cost: summed over spans outside scorer subtrees
    - llm_calls / tool_calls: spans of that type outside scorer subtrees
    - errors: task spans whose error started there (not only inherited from a child);
      scorer_errors: distinct scorers that raised
    - duration: root end - start; llm_duration: sum of llm span durations; ttft: mean
    """
    root = next((s for s in spans if s["span_id"] == root_span_id), None)
    if root is None:
        return None
    scorer_ids = _scorer_subtree(spans)
    failed_parents = {
        p for s in spans if s.get("error") is not None and s["span_id"] not in scorer_ids
        for p in s.get("span_parents") or ()
    }
    score_values: dict[str, list[float]] = {}
    token_sums = dict.fromkeys(TOKEN_METRICS, 0)
    token_seen = dict.fromkeys(TOKEN_METRICS, False)
    cost = 0.0
    cost_seen = False
    llm_calls = tool_calls = errors = 0
    llm_duration = 0.0
    llm_duration_seen = False
    ttfts: list[float] = []
    failed_scorers: set[str] = set()
    first_error: Any = None
    for s in spans:
        for name, v in (s.get("scores") or {}).items():
            bucket = score_values.setdefault(name, [])
            if v is not None:
                bucket.append(v)
        md = s.get("metadata") or {}
        se = md.get("scorer_errors") if isinstance(md, dict) else None
        if isinstance(se, dict):
            failed_scorers.update(se)
        if s["span_id"] in scorer_ids:
            if s.get("error") is not None and s.get("type") in SCORER_TYPES:
                failed_scorers.add(s.get("name") or s["span_id"])
            continue
        m = s.get("metrics") or {}
        for k in TOKEN_METRICS:
            v = m.get(k)
            if v is not None:
                token_sums[k] += v
                token_seen[k] = True
        if not m.get("tokens") and (m.get("prompt_tokens") or m.get("completion_tokens")):
            # spans that log only the parts still count toward the total
            token_sums["tokens"] += (m.get("prompt_tokens") or 0) + (m.get("completion_tokens") or 0)
            token_seen["tokens"] = True
        if m.get("estimated_cost") is not None:
            cost += m["estimated_cost"]
            cost_seen = True
        if m.get("time_to_first_token") is not None:
            ttfts.append(m["time_to_first_token"])
        stype = s.get("type")
        if stype == "llm":
            llm_calls += 1
            if m.get("start") is not None and m.get("end") is not None:
                llm_duration += m["end"] - m["start"]
                llm_duration_seen = True
        elif stype == "tool":
            tool_calls += 1
        if s.get("error") is not None and s["span_id"] not in failed_parents:
            # an error counts where it started: a parent that failed because a child did is
            # the same failure (an Eval task that raises marks both root and task span)
            errors += 1
            if first_error is None:
                first_error = s["error"]
    rm = root.get("metrics") or {}
    start, end = rm.get("start"), rm.get("end")
    scores = {name: _mean(vals) for name, vals in sorted(score_values.items())}
    return {
        "experiment_id": experiment_id,
        "root_span_id": root_span_id,
        "id": root["id"],
        "name": root.get("name"),
        "created": root.get("created"),
        "start": start,
        "end": end,
        "duration": (end - start) if start is not None and end is not None else None,
        "llm_duration": llm_duration if llm_duration_seen else None,
        "ttft": _mean(ttfts),
        **{k: (token_sums[k] if token_seen[k] else None) for k in TOKEN_METRICS},
        "estimated_cost": cost if cost_seen else None,
        "span_count": len(spans),
        "llm_calls": llm_calls,
        "tool_calls": tool_calls,
        "errors": errors,
        "has_error": 1 if errors else 0,
        "scorer_errors": len(failed_scorers),
        "scores": dumps(scores) if scores else None,
        "input_preview": preview(root.get("input")),
        "output_preview": preview(root.get("output")),
        "expected_preview": preview(root.get("expected")),
        # the root's error says what the user saw fail; else the first span that failed
        "error_preview": preview(error_text(root["error"] if root.get("error") is not None else first_error)),
        "metadata": dumps(root.get("metadata") or None),
        "tags": dumps(root.get("tags") or None),
        "dataset_record_id": root.get("dataset_record_id"),
        "comparison_key": comparison_key(root, key_spec),
    }
