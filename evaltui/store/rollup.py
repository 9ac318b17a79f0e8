"""Roll-ups: the trace row computed from all spans of one trace (DESIGN.md "Trace row").

Pure functions over decoded span dicts, so the maths is testable without a database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from evaltui.store.records import _SORTED, dumps

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
    return hashlib.blake2b(orjson.dumps(value, option=_SORTED), digest_size=12).hexdigest()


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
    """The trace row of one trace as a dict of ROLLUP_COLUMNS (see :func:`trace_row`)."""
    row = trace_row(experiment_id, root_span_id, spans, key_spec)
    return None if row is None else dict(zip(ROLLUP_COLUMNS, row, strict=True))


def trace_row(
    experiment_id: str,
    root_span_id: str,
    spans: list[dict[str, Any]],
    key_spec: str | list[str] = "input",
) -> tuple | None:
    """The trace row of one trace (ROLLUP_COLUMNS order), or None while its root span has not been written.

    Each span dict has the decoded record fields plus ``name`` and ``type``.
    - scores: each score's mean over all spans that carry it (null values are skipped;
      a score only ever null stays null)
    - tokens and cost: summed over spans outside scorer subtrees
    - llm_calls / tool_calls: spans of that type outside scorer subtrees
    - errors: task spans whose error started there (not only inherited from a child);
      scorer_errors: distinct scorers that raised
    - duration: root end - start; llm_duration: sum of llm span durations; ttft: mean
    """
    # Runs once per trace of every ingest: plain locals instead of per-call dicts.
    root = None
    for s in spans:
        if s["span_id"] == root_span_id:
            root = s
            break
    if root is None:
        return None
    if len(spans) == 1:
        if root.get("type") not in SCORER_TYPES:
            return _one_span_row(experiment_id, root_span_id, root, key_spec)
        scorer_ids = {root_span_id}
        failed_parents = _NONE
    else:
        scorer_ids = _scorer_subtree(spans)
        failed_parents = {
            p for s in spans if s.get("error") is not None and s["span_id"] not in scorer_ids
            for p in s.get("span_parents") or ()
        }
    return _rollup(experiment_id, root_span_id, root, spans, scorer_ids, failed_parents, key_spec)


def _one_span_row(experiment_id: str, root_span_id: str, s: dict[str, Any], key_spec: str | list[str]) -> tuple:
    """:func:`trace_row` of a trace that is only its root (not a scorer): generic imports,
    ``exp.log``. The same numbers as the general walk (a test holds them equal), in a
    fraction of the time."""
    get = s.get
    return root_row(
        experiment_id, root_span_id, s["id"], get("name"), get("type"), get("created"), get("input"),
        get("output"), get("expected"), get("error"), get("scores"), get("metadata"), get("metrics"),
        get("tags"), get("dataset_record_id"), comparison_key(s, key_spec),
    )


def root_row(
    experiment_id: str,
    root_span_id: str,
    row_id: str,
    name: str | None,
    stype: str | None,
    created: str | None,
    input: Any,
    output: Any,
    expected: Any,
    error: Any,
    sc: dict[str, Any] | None,
    md: dict[str, Any] | None,
    m: dict[str, Any] | None,
    tags: list[str] | None,
    dataset_record_id: str | None,
    ckey: str | None,
    sc_json: str | None = None,
    md_json: str | None = None,
    tags_json: str | None = None,
) -> tuple:
    """The trace row (ROLLUP_COLUMNS order) of a one-span trace from its validated fields.

    ``ckey`` is the comparison key (:func:`comparison_key` of the span). ``sc_json``,
    ``md_json``, ``tags_json``: the trace row's JSON of the scores, metadata and tags when
    the caller has it already (None: encoded here). Positional arguments: it runs once per
    row of a generic import.
    """
    start = end = prompt = completion = tokens = cached = reasoning = cost = ttft = llm_duration = None
    if m:
        get = m.get
        start, end = get("start"), get("end")
        prompt, completion, tokens = get("prompt_tokens"), get("completion_tokens"), get("tokens")
        cached, reasoning = get("prompt_cached_tokens"), get("completion_reasoning_tokens")
        if not tokens and (prompt or completion):
            tokens = (0 if tokens is None else tokens) + ((prompt or 0) + (completion or 0))
        v = get("estimated_cost")
        if v is not None:
            cost = 0.0 + v
        v = get("time_to_first_token")
        if v is not None:
            ttft = v / 1
        if stype == "llm" and start is not None and end is not None:
            llm_duration = 0.0 + (end - start)
    se = md.get("scorer_errors") if md and isinstance(md, dict) else None
    return (
        experiment_id,
        root_span_id,
        row_id,
        name,
        created,
        start,
        end,
        (end - start) if start is not None and end is not None else None,
        llm_duration,
        ttft,
        prompt,
        completion,
        tokens,
        cached,
        reasoning,
        cost,
        1,
        1 if stype == "llm" else 0,
        1 if stype == "tool" else 0,
        0 if error is None else 1,
        0 if error is None else 1,
        len(se) if isinstance(se, dict) else 0,
        sc_json if sc_json is not None else _scores_json(sc) if sc else None,
        None if input is None else (input if isinstance(input, str) else dumps(input))[:PREVIEW_CHARS],
        None if output is None else (output if isinstance(output, str) else dumps(output))[:PREVIEW_CHARS],
        None if expected is None else (expected if isinstance(expected, str) else dumps(expected))[:PREVIEW_CHARS],
        None if error is None else preview(error_text(error)),
        md_json if md_json is not None else dumps(md) if md else None,
        tags_json if tags_json is not None else dumps(tags) if tags else None,
        dataset_record_id,
        ckey,
    )


def _scores_json(sc: dict[str, Any]) -> str:
    """A one-span trace's scores: each value as a float (its mean), names sorted."""
    if len(sc) == 1:
        for name, v in sc.items():
            return dumps({name: None if v is None else v / 1})
    return dumps({name: None if sc[name] is None else sc[name] / 1 for name in sorted(sc)})


def _rollup(
    experiment_id: str,
    root_span_id: str,
    root: dict[str, Any],
    spans: list[dict[str, Any]],
    scorer_ids: set[str] | frozenset[str],
    failed_parents: set[str] | frozenset[str],
    key_spec: str | list[str],
) -> tuple:
    """The general walk of :func:`trace_row` over every span of a trace."""
    score_values: dict[str, list[float]] = {}
    prompt = completion = tokens = cached = reasoning = None
    cost = None
    llm_calls = tool_calls = errors = 0
    llm_duration = None
    ttfts: list[float] = []
    failed_scorers: set[str] = set()
    first_error: Any = None
    for s in spans:
        sc = s.get("scores")
        if sc:
            for name, v in sc.items():
                bucket = score_values.get(name)
                if bucket is None:
                    bucket = score_values[name] = []
                if v is not None:
                    bucket.append(v)
        md = s.get("metadata")
        if md and isinstance(md, dict):
            se = md.get("scorer_errors")
            if isinstance(se, dict):
                failed_scorers.update(se)
        error = s.get("error")
        stype = s.get("type")
        if s["span_id"] in scorer_ids:
            if error is not None and stype in SCORER_TYPES:
                failed_scorers.add(s.get("name") or s["span_id"])
            continue
        m = s.get("metrics")
        if m:
            get = m.get
            pt, ct, tk = get("prompt_tokens"), get("completion_tokens"), get("tokens")
            if pt is not None:
                prompt = pt if prompt is None else prompt + pt
            if ct is not None:
                completion = ct if completion is None else completion + ct
            if tk is not None:
                tokens = tk if tokens is None else tokens + tk
            v = get("prompt_cached_tokens")
            if v is not None:
                cached = v if cached is None else cached + v
            v = get("completion_reasoning_tokens")
            if v is not None:
                reasoning = v if reasoning is None else reasoning + v
            if not tk and (pt or ct):
                # spans that log only the parts still count toward the total
                tokens = (0 if tokens is None else tokens) + ((pt or 0) + (ct or 0))
            v = get("estimated_cost")
            if v is not None:
                cost = (0.0 if cost is None else cost) + v
            v = get("time_to_first_token")
            if v is not None:
                ttfts.append(v)
            if stype == "llm":
                start, end = get("start"), get("end")
                if start is not None and end is not None:
                    llm_duration = (0.0 if llm_duration is None else llm_duration) + (end - start)
        if stype == "llm":
            llm_calls += 1
        elif stype == "tool":
            tool_calls += 1
        if error is not None and s["span_id"] not in failed_parents:
            # an error counts where it started: a parent that failed because a child did is
            # the same failure (an Eval task that raises marks both root and task span)
            errors += 1
            if first_error is None:
                first_error = error
    rm = root.get("metrics") or {}
    start, end = rm.get("start"), rm.get("end")
    root_error = root.get("error")
    return (
        experiment_id,
        root_span_id,
        root["id"],
        root.get("name"),
        root.get("created"),
        start,
        end,
        (end - start) if start is not None and end is not None else None,
        llm_duration,
        sum(ttfts) / len(ttfts) if ttfts else None,
        prompt,
        completion,
        tokens,
        cached,
        reasoning,
        cost,
        len(spans),
        llm_calls,
        tool_calls,
        errors,
        1 if errors else 0,
        len(failed_scorers),
        dumps({name: _mean(score_values[name]) for name in sorted(score_values)}) if score_values else None,
        preview(root.get("input")),
        preview(root.get("output")),
        preview(root.get("expected")),
        # the root's error says what the user saw fail; else the first span that failed
        preview(error_text(root_error if root_error is not None else first_error)),
        dumps(root.get("metadata") or None),
        dumps(root.get("tags") or None),
        root.get("dataset_record_id"),
        comparison_key(root, key_spec),
    )


_NONE: frozenset[str] = frozenset()
