"""Inspect AI logs (``.eval`` zips and ``.json``), read without inspect-ai.

One experiment per log (task, model, created, eval config as params, results and stats in
metadata, git revision as repo_info); one trace per sample and epoch (epochs are trials of
one case: the same input, so the same comparison key). A sample's event stream becomes
the span tree: Inspect spans (solvers, scorers, tools, custom spans) and older ``step``
events become function spans, model calls llm spans (messages in, assistant message out,
tokens and cost), tool calls tool spans, scorers score spans whose scores are the sample's
scores mapped to numbers (C/I/P/N -> 1/0/0.5/0) with the explanation in metadata.
``attachment://<hash>`` references are replaced from the sample's attachments.

A log that is still running or crashed (no header.json, a truncated member) imports the
samples it has and says so in a warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evaltui.ingest._common import (
    IngestError,
    Sink,
    array_elements,
    check_text,
    compact,
    epoch,
    iso,
    loads,
    mapped,
    number,
    stable_id,
    top_level_key,
)
from evaltui.ingest._zip import ZipMemberError, ZipReader

FORMAT = "inspect"
_ATTACHMENT = "attachment://"
_LETTER_SCORES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
_SPAN_TYPES = {"scorer": "score", "tool": "tool", "agent": "task", "handoff": "task"}


# -- reading the log --------------------------------------------------------------------


def import_file(path: Path, sink: Sink) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head.startswith(b"PK"):
            _import_eval_zip(path, f, sink)
        else:
            check_text(f.read(65536), where="start of file")
            f.seek(0)
            if not _import_json_streaming(f, sink):
                log = loads(f.read())
                if not isinstance(log, dict) or not isinstance(log.get("eval"), dict):
                    raise IngestError("not an Inspect log: expected a JSON object with an 'eval' object")
                _import_log(log, _iter_json_samples(log), sink, total=len(log.get("samples") or []))


def _import_json_streaming(f: Any, sink: Sink) -> bool:
    """A .json log read sample by sample over a memory map (constant memory).

    The header (eval, plan, results, stats) is parsed from the bytes before the top-level
    "samples" array; False when the file does not have that layout (read it whole then).
    """
    try:
        ctx = mapped(f)
        m = ctx.__enter__()
    except (ValueError, OSError):
        return False
    with contextlib.ExitStack() as stack:
        stack.push(ctx)
        pos = top_level_key(m, b"samples")
        if pos is None:
            return False
        colon = m.find(b":", pos + len(b'"samples"'))
        rest = m[colon + 1 : colon + 65].lstrip()
        if not rest.startswith(b"["):
            return False
        bracket = m.find(b"[", colon)
        try:
            log = loads(m[:pos] + b'"samples": null}', where="the log header")
        except IngestError:
            return False
        if not isinstance(log, dict) or not isinstance(log.get("eval"), dict):
            raise IngestError("not an Inspect log: expected a JSON object with an 'eval' object")
        size = len(m)

        def samples() -> Iterator[tuple[str, Any]]:
            for where, chunk, p in array_elements(m, bracket + 1, where_fmt="samples[{}]"):
                if chunk is None:
                    return
                sink.progress(p / size)
                yield where, loads(chunk, where=where)

        _import_log(log, samples(), sink, total=0)
        return True


def _iter_json_samples(log: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    samples = log.get("samples") or []
    if not isinstance(samples, list):
        raise IngestError("'samples' must be a list", field="samples")
    for i, s in enumerate(samples):
        yield f"samples[{i}]", s


def _import_eval_zip(path: Path, f: Any, sink: Sink) -> None:
    z = ZipReader(f)
    names = z.names()
    header = None
    warnings: list[str] = []
    if z.get("header.json") is not None:
        header = _member_json(z, "header.json")
    elif z.get("_journal/start.json") is not None:
        header = _member_json(z, "_journal/start.json")
        header.setdefault("status", "started")
        warnings.append(
            "the log has no header.json: the eval is still running or crashed; imported the samples written so far"
        )
    else:
        raise IngestError("not an Inspect .eval log: the zip has neither header.json nor _journal/start.json")
    if z.recovered:
        warnings.append("the zip's directory is missing (a log whose writer did not finish); members recovered")
    for w in warnings:
        sink.warn(w)
    sample_members = [n for n in names if n.startswith("samples/") and n.endswith(".json")]
    # a member written twice (a retried sample) counts once: the last one wins
    sample_members = list(dict.fromkeys(sample_members))
    complete = header.get("status") != "started" and not z.recovered

    def samples() -> Iterator[tuple[str, Any]]:
        for i, name in enumerate(sample_members):
            sink.progress(i / max(1, len(sample_members)))
            member = z.get(name)
            try:
                data = z.read(member)  # type: ignore[arg-type]
            except ZipMemberError as e:
                if complete:
                    raise IngestError(str(e), where=f"zip member {name}") from None
                sink.warn(f"zip member {name} is incomplete ({e}): skipped")
                continue
            try:
                yield f"zip member {name}", loads(data)
            except IngestError as e:
                if complete:
                    raise e.located(where=f"zip member {name}") from None
                sink.warn(f"zip member {name} is incomplete: skipped")

    _import_log(header, samples(), sink, total=len(sample_members))


def _member_json(z: ZipReader, name: str) -> dict[str, Any]:
    member = z.get(name)
    try:
        data = z.read(member)  # type: ignore[arg-type]
    except ZipMemberError as e:
        raise IngestError(str(e), where=f"zip member {name}") from None
    doc = loads(data, where=f"zip member {name}")
    if not isinstance(doc, dict):
        raise IngestError("expected a JSON object", where=f"zip member {name}")
    return doc


# -- the experiment -------------------------------------------------------------------


def _import_log(log: dict[str, Any], samples: Iterator[tuple[str, Any]], sink: Sink, total: int) -> None:
    ev = log.get("eval")
    if not isinstance(ev, dict):
        raise IngestError("the log has no 'eval' object", field="eval")
    task = ev.get("task") or "inspect"
    model = ev.get("model") or "model"
    created = iso(ev.get("created"))
    key = ev.get("eval_id") or f"{ev.get('run_id')}:{ev.get('task_id')}:{task}:{model}"
    status = log.get("status")
    if status == "error":
        err = log.get("error") or {}
        sink.warn(f"the eval ended with an error: {err.get('message') if isinstance(err, dict) else err}")
    elif status == "cancelled":
        sink.warn("the eval was cancelled: imported the samples it logged")
    revision = ev.get("revision") if isinstance(ev.get("revision"), dict) else None
    repo_info = None
    if revision:
        repo_info = compact({"commit": revision.get("commit"), "dirty": revision.get("dirty"),
                             "remote": revision.get("origin") or None, "type": revision.get("type")})
    plan = log.get("plan") if isinstance(log.get("plan"), dict) else {}
    params = compact({
        "model": model,
        "model_args": ev.get("model_args") or None,
        "model_generate_config": ev.get("model_generate_config") or None,
        "model_roles": ev.get("model_roles") or None,
        "task_args": ev.get("task_args") or None,
        "config": ev.get("config") or None,
        "plan": [s.get("solver") for s in plan.get("steps") or [] if isinstance(s, dict)] or None,
        "scorers": [s.get("name") for s in ev.get("scorers") or [] if isinstance(s, dict)] or None,
        "dataset": ev.get("dataset") or None,
    })
    results = log.get("results") if isinstance(log.get("results"), dict) else None
    metadata = {
        **(ev.get("metadata") if isinstance(ev.get("metadata"), dict) else {}),
        "inspect": compact({
            "log_version": log.get("version"),
            "status": status,
            "eval_id": ev.get("eval_id"),
            "run_id": ev.get("run_id"),
            "task_id": ev.get("task_id"),
            "task_version": ev.get("task_version"),
            "task_file": ev.get("task_file"),
            "packages": ev.get("packages"),
            "results": _results_summary(results),
            "stats": log.get("stats"),
            "error": (log.get("error") or {}).get("message") if isinstance(log.get("error"), dict) else None,
        }),
    }
    tags = [t for t in (ev.get("tags") or []) + (log.get("tags") or []) if isinstance(t, str)] or None
    eid = sink.experiment(
        key,
        project=task,
        name=f"{model.replace('/', '-')}-{(created or '')[:19].replace(':', '').replace('-', '')}",
        description=ev.get("task_display_name") if ev.get("task_display_name") not in (None, task) else None,
        metadata=metadata,
        params=params,
        repo_info=repo_info,
        tags=list(dict.fromkeys(tags)) if tags else None,
        created=created,
    )
    n = 0
    for where, sample in samples:
        if not isinstance(sample, dict):
            raise IngestError("a sample must be a JSON object", where=where)
        try:
            for rec in _SampleConverter(eid, sample, sink).records():
                sink.span(rec, where)
        except IngestError as e:
            raise e.located(where=where) from None
        except (TypeError, AttributeError, KeyError, ValueError) as e:
            raise IngestError(f"unexpected sample structure ({type(e).__name__}: {e})", where=where) from None
        n += 1
        if total:
            sink.progress(n / total)
    if status == "started":
        expected = (ev.get("dataset") or {}).get("samples")
        epochs = (ev.get("config") or {}).get("epochs") or 1
        if isinstance(expected, int):
            sink.warn(f"{n} of {expected * epochs} samples were in the log")


def _results_summary(results: dict[str, Any] | None) -> dict[str, Any] | None:
    if not results:
        return None
    scores = []
    for s in results.get("scores") or []:
        if isinstance(s, dict):
            metrics = {k: (m.get("value") if isinstance(m, dict) else m) for k, m in (s.get("metrics") or {}).items()}
            scores.append({"name": s.get("name"), "scorer": s.get("scorer"), "metrics": metrics})
    return compact({
        "total_samples": results.get("total_samples"),
        "completed_samples": results.get("completed_samples"),
        "scores": scores or None,
    })


# -- values -------------------------------------------------------------------------


def resolve(value: Any, attachments: dict[str, Any]) -> Any:
    """``value`` with every ``attachment://<hash>`` string replaced by the attachment."""
    if isinstance(value, str):
        if value.startswith(_ATTACHMENT):
            return attachments.get(value[len(_ATTACHMENT):], value)
        return value
    if isinstance(value, list):
        return [resolve(v, attachments) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, attachments) for k, v in value.items()}
    return value


def score_value(value: Any) -> float | None:
    """An Inspect score value as a number in [0, 1], or None when it has none."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        v = value.strip().upper()
        if v in _LETTER_SCORES:
            return _LETTER_SCORES[v]
        return None
    n = number(value)
    if n is not None and 0 <= n <= 1:
        return float(n)
    return None


def message(m: Any) -> Any:
    """An Inspect chat message in the OpenAI-like shape the thread view reads."""
    if not isinstance(m, dict):
        return m
    out: dict[str, Any] = {"role": m.get("role"), "content": m.get("content")}
    calls = m.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {"id": c.get("id"), "type": "function",
             "function": {"name": c.get("function"), "arguments": c.get("arguments")}}
            if isinstance(c, dict) and not isinstance(c.get("function"), dict) else c
            for c in calls
        ]
    for k in ("tool_call_id", "function", "error", "model", "source"):
        if m.get(k) is not None:
            out["name" if k == "function" else k] = m[k]
    return out


def _text(content: Any) -> Any:
    """Content as text when it is all text parts, else as it is."""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "\n".join(p.get("text") or "" for p in content)
    return content


# -- one sample ---------------------------------------------------------------------


class _Node:
    __slots__ = ("key", "name", "type", "parent", "start", "end", "rec", "children", "inspect_type", "events")

    def __init__(
        self, key: str, name: str, typ: str, parent: _Node | None, start: float | None, inspect_type: str = ""
    ):
        self.key = key
        self.name = name
        self.type = typ
        self.parent = parent
        self.start = start
        self.end: float | None = None
        self.rec: dict[str, Any] = {}
        self.children: list[_Node] = []
        self.inspect_type = inspect_type
        if parent is not None:
            parent.children.append(self)


class _SampleConverter:
    def __init__(self, experiment_id: str, sample: dict[str, Any], sink: Sink):
        self.eid = experiment_id
        self.sample = sample
        self.sink = sink
        transcript = sample.get("transcript") if isinstance(sample.get("transcript"), dict) else {}
        att = sample.get("attachments") or transcript.get("content") or {}
        self.attachments = att if isinstance(att, dict) else {}
        events = sample.get("events")
        if events is None:
            events = transcript.get("events") or []
        if not isinstance(events, list):
            raise IngestError("must be a list", field="events")
        self.events = events
        pool = sample.get("events_data") if isinstance(sample.get("events_data"), dict) else {}
        self.pool_messages = pool.get("messages") or []
        sid = sample.get("id")
        if sid is None:
            raise IngestError("a sample needs an id", field="id")
        self.sample_id = str(sid)
        self.epoch = sample.get("epoch") or 1
        self.root_id = stable_id(experiment_id, "sample", self.sample_id, self.epoch)

    def sid(self, *parts: Any) -> str:
        return stable_id(self.root_id, *parts)

    def r(self, value: Any) -> Any:
        return resolve(value, self.attachments) if self.attachments else value

    # -- tree --------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        s = self.sample
        root = _Node("root", self.sample_id, "eval", None, epoch(s.get("started_at")))
        root.end = epoch(s.get("completed_at"))
        self.root = root
        spans: dict[str, _Node] = {}
        parents: dict[str, str] = {}
        for e in self.events:
            if isinstance(e, dict) and e.get("event") == "span_begin" and e.get("id") is not None:
                spans[str(e["id"])] = _Node(
                    f"span:{e['id']}", str(e.get("name") or e.get("type") or "span"),
                    _SPAN_TYPES.get(str(e.get("type")), "function"), None, epoch(e.get("timestamp")),
                    str(e.get("type") or ""),
                )
                if e.get("parent_id") is not None:
                    parents[str(e["id"])] = str(e["parent_id"])
        has_spans = bool(spans)
        for node_id, node in spans.items():
            parent = spans.get(parents.get(node_id, ""))
            if parent is not None and self._is_ancestor(node, parent, parents, spans):
                parent = None  # a cycle in the source: hang it from the root
            node.parent = parent or root
            node.parent.children.append(node)
        self.failed: list[_Node] = []
        self.scorer_nodes: dict[str, _Node] = {}
        self.score_events: dict[str, dict[str, Any]] = {}
        stack: list[_Node] = []  # open ``step`` events of older logs
        claimed: set[int] = set()
        for i, e in enumerate(self.events):
            if not isinstance(e, dict):
                raise IngestError("an event must be an object", field=f"events[{i}]")
            kind = e.get("event")
            t = epoch(e.get("timestamp"))
            if kind == "span_begin":
                continue
            if kind == "span_end":
                node = spans.get(str(e.get("id")))
                if node is not None:
                    node.end = t
                continue
            if kind == "step" and not has_spans:
                if e.get("action") == "begin":
                    parent = stack[-1] if stack else root
                    typ = str(e.get("type") or "")
                    node = _Node(f"step:{i}", str(e.get("name") or typ or "step"), _SPAN_TYPES.get(typ, "function"),
                                 parent, t, typ)
                    stack.append(node)
                elif stack:
                    stack.pop().end = t
                continue
            if has_spans:
                container = spans.get(str(e.get("span_id"))) or root
            else:
                container = stack[-1] if stack else root
            self.event(i, e, container, spans, claimed)
        self.place_scores()
        self.mark_error()
        recs: list[dict[str, Any]] = []
        self.emit(root, recs)
        return recs

    def event(self, i: Any, e: dict[str, Any], container: _Node, spans: dict[str, _Node], claimed: set[int]) -> None:
        kind = e.get("event")
        t = epoch(e.get("timestamp"))
        if kind == "model":
            node = _Node(f"event:{i}", str(e.get("model") or "model"), "llm", container, t)
            self.model_event(node, e)
        elif kind == "tool":
            fn = str(e.get("function") or "tool")
            # the tool's own span (newer logs): a "tool" span of the same name in the container
            node = next((c for c in container.children if c.inspect_type == "tool" and c.name == fn
                         and id(c) not in claimed), None)
            if node is None:
                node = _Node(f"event:{i}", fn, "tool", container, t)
            claimed.add(id(node))
            self.tool_event(node, e)
            for j, sub in enumerate(e.get("events") or []):  # older logs nest the tool's events
                if isinstance(sub, dict):
                    self.event(f"{i}.{j}", sub, node, spans, claimed)
        elif kind == "subtask":
            node = _Node(f"event:{i}", str(e.get("name") or "subtask"), "task", container, t)
            node.rec = {"input": self.r(e.get("input")), "output": self.r(e.get("result"))}
            end = epoch(e.get("completed"))
            took = number(e.get("working_time"))
            node.end = end if end is not None else (t + took if t is not None and took is not None else None)
            for j, sub in enumerate(e.get("events") or []):
                if isinstance(sub, dict):
                    self.event(f"{i}.{j}", sub, node, spans, claimed)
        elif kind == "score":
            if not e.get("intermediate"):
                name = e.get("scorer")
                holder = container if container.inspect_type == "scorer" else None
                if holder is not None:
                    self.scorer_nodes.setdefault(str(name or holder.name), holder)
                self.score_events[str(name or (holder.name if holder else f"score{i}"))] = e
        elif kind == "sample_limit":
            self.root.rec.setdefault("metadata", {})["limit"] = compact(
                {"type": e.get("type"), "message": e.get("message"), "limit": e.get("limit")})
        # state, store, sample_init, logger, info, input, sandbox, approval, error, ...:
        # not spans (the sample's error is the root's error)

    def model_event(self, node: _Node, e: dict[str, Any]) -> None:
        msgs = e.get("input") or []
        refs = e.get("input_refs")
        if refs and isinstance(self.pool_messages, list):
            msgs = []
            for ref in refs:
                if isinstance(ref, (list, tuple)) and len(ref) == 2:
                    msgs.extend(self.pool_messages[int(ref[0]) : int(ref[1])])
        out = e.get("output") if isinstance(e.get("output"), dict) else {}
        choices = out.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        usage = out.get("usage") if isinstance(out.get("usage"), dict) else {}
        start = epoch(e.get("timestamp"))
        end = epoch(e.get("completed"))
        if end is None and start is not None:
            took = number(out.get("time")) or number(e.get("working_time"))
            end = start + took if took is not None else None
        node.end = end
        inp = usage.get("input_tokens")
        cached = usage.get("input_tokens_cache_read")
        prompt = None if inp is None else inp + (cached or 0) + (usage.get("input_tokens_cache_write") or 0)
        node.rec = {
            "input": self.r([message(m) for m in msgs]),
            "output": self.r(message(first.get("message"))) if first.get("message") else None,
            "error": self.r(e.get("error")) if e.get("error") else None,
            "metrics": compact({
                "prompt_tokens": prompt,
                "completion_tokens": usage.get("output_tokens"),
                "tokens": usage.get("total_tokens"),
                "prompt_cached_tokens": cached,
                "completion_reasoning_tokens": usage.get("reasoning_tokens"),
                "estimated_cost": number(usage.get("total_cost")),
            }),
            "metadata": compact({
                "model": e.get("model"),
                "role": e.get("role"),
                "stop_reason": first.get("stop_reason"),
                "tools": [t.get("name") for t in e.get("tools") or [] if isinstance(t, dict)] or None,
                "tool_choice": e.get("tool_choice") if e.get("tools") else None,
                "config": e.get("config") or None,
                "cache": e.get("cache"),
                "retries": e.get("retries"),
            }),
        }
        if node.rec["error"] is not None:
            self.failed.append(node)

    def tool_event(self, node: _Node, e: dict[str, Any]) -> None:
        start = epoch(e.get("timestamp"))
        end = epoch(e.get("completed"))
        if node.start is None or (start is not None and start < node.start):
            node.start = start
        if end is not None and (node.end is None or end > node.end):
            node.end = end
        err = e.get("error")
        node.rec = {
            "input": self.r(e.get("arguments")),
            "output": self.r(_text(e.get("result"))),
            "error": self.r(err) if err else None,
            "metadata": compact({
                "tool_call_id": e.get("id"),
                "function": e.get("function"),
                "truncated": e.get("truncated"),
                "agent": e.get("agent"),
                "failed": e.get("failed"),
            }),
        }
        if err or e.get("failed"):
            self.failed.append(node)

    def place_scores(self) -> None:
        scores = self.sample.get("scores")
        if not isinstance(scores, dict) or not scores:
            scores = {name: e.get("score") for name, e in self.score_events.items()}
        for name, score in scores.items():
            if not isinstance(score, dict):
                continue
            node = self.scorer_nodes.get(name) or next(
                (n for n in self._walk(self.root) if n.inspect_type == "scorer" and n.name == name), None)
            if node is None:
                node = _Node(f"score:{name}", name, "score", self.root,
                             epoch((self.score_events.get(name) or {}).get("timestamp")))
            node.type = "score"
            value = score.get("value")
            values: dict[str, float | None] = {}
            if isinstance(value, dict):
                for k, v in value.items():
                    values[f"{name}_{k}"] = score_value(v)
            elif isinstance(value, list):
                pass
            else:
                values[name] = score_value(value)
            mapped = {k: v for k, v in values.items() if v is not None}
            dropped = [k for k, v in values.items() if v is None]
            if dropped:
                self.sink.warn(
                    f"score {', '.join(dropped)}: values that are not numbers in [0, 1] or C/I/P/N are kept in "
                    "the scorer span's metadata (metadata.value)"
                )
            node.rec["scores"] = mapped or None
            node.rec["output"] = self.r(score.get("answer"))
            node.rec["metadata"] = compact({
                "value": self.r(value),
                "explanation": self.r(score.get("explanation")),
                "answer": self.r(score.get("answer")),
                "score_metadata": self.r(score.get("metadata")) or None,
                "history": self.r(score.get("history")) or None,
            })

    def mark_error(self) -> None:
        err = self.sample.get("error")
        if not err:
            return
        err = self.r(err)
        msg = err.get("message") if isinstance(err, dict) else str(err)
        self.root.rec["error"] = err
        # where it started: the first failed tool/model call; the spans above it failed
        # because it did (the roll-up counts the error once, where it started)
        leaf = self.failed[0] if self.failed else None
        if leaf is None:
            return
        if leaf.rec.get("error") is None:
            leaf.rec["error"] = {"message": msg}
        node = leaf.parent
        while node is not None and node is not self.root:
            node.rec.setdefault("error", {"message": msg})
            node = node.parent

    @staticmethod
    def _is_ancestor(node: _Node, candidate: _Node, parents: dict[str, str], spans: dict[str, _Node]) -> bool:
        """Whether ``node`` is among ``candidate``'s ancestors (parent links would loop)."""
        seen = set()
        key = candidate.key.removeprefix("span:")
        while key in parents and key not in seen:
            seen.add(key)
            key = parents[key]
            if spans.get(key) is node:
                return True
        return candidate is node

    def _walk(self, node: _Node) -> Iterator[_Node]:
        yield node
        for c in node.children:
            yield from self._walk(c)

    # -- records -----------------------------------------------------------------------

    def emit(self, root: _Node, out: list[dict[str, Any]]) -> None:
        s = self.sample
        output = s.get("output") if isinstance(s.get("output"), dict) else {}
        completion = output.get("completion")
        if completion is None:
            choices = output.get("choices") or []
            if choices and isinstance(choices[0], dict):
                completion = _text((choices[0].get("message") or {}).get("content"))
        times = [n.start for n in self._walk(root) if n.start is not None]
        ends = [n.end for n in self._walk(root) if n.end is not None]
        if root.start is None and times:
            root.start = min(times)
        if root.end is None and ends:
            root.end = max(ends)
        md = {
            **(self.r(s.get("metadata")) if isinstance(s.get("metadata"), dict) else {}),
            "sample_id": s.get("id"),
            "epoch": self.epoch,
            **(root.rec.get("metadata") or {}),
        }
        md.update(compact({
            "uuid": s.get("uuid"),
            "total_time": s.get("total_time"),
            "working_time": s.get("working_time"),
            "retries": len(s["error_retries"]) if s.get("error_retries") else None,
            "limit": self.r(s.get("limit")),
        }) or {})
        created = iso(s.get("started_at")) or iso(root.start)
        input_ = s.get("input")
        if isinstance(input_, list):
            input_ = [message(m) for m in input_]
        out.append({
            "id": self.root_id,
            "experiment_id": self.eid,
            "span_id": self.root_id,
            "root_span_id": self.root_id,
            "span_parents": [],
            "span_attributes": {"name": self.sample_id, "type": "eval"},
            "input": self.r(input_),
            "output": self.r(completion),
            "expected": self.r(s.get("target")),
            "error": root.rec.get("error"),
            "metadata": md,
            "metrics": compact({"start": root.start, "end": root.end}),
            "dataset_record_id": self.sample_id,
            "created": created,
        })
        for child in root.children:
            self._emit(child, self.root_id, out, created)

    def _emit(self, node: _Node, parent_id: str, out: list[dict[str, Any]], created: str | None) -> None:
        span_id = self.sid(node.key)
        rec = node.rec
        metrics = dict(rec.get("metrics") or {})
        if node.start is not None:
            metrics["start"] = node.start
        if node.end is not None:
            metrics["end"] = node.end
        out.append({
            "id": span_id,
            "experiment_id": self.eid,
            "span_id": span_id,
            "root_span_id": self.root_id,
            "span_parents": [parent_id],
            "span_attributes": {"name": node.name, "type": node.type},
            "input": rec.get("input"),
            "output": rec.get("output"),
            "error": rec.get("error"),
            "scores": rec.get("scores"),
            "metadata": rec.get("metadata"),
            "metrics": metrics or None,
            "created": iso(node.start) or created,
        })
        for child in node.children:
            self._emit(child, span_id, out, created)


def looks_like(path: Path, head: bytes) -> bool:
    """An Inspect log: a zip with header.json/_journal, or JSON with "eval" and "samples"."""
    if head.startswith(b"PK"):
        return b"header.json" in head or b"_journal/" in head or b"samples/" in head or path.suffix == ".eval"
    text = head[:4096]
    return b'"eval"' in text and (b'"samples"' in head or b'"status"' in text or b'"plan"' in text)


__all__ = ["FORMAT", "import_file", "looks_like", "message", "resolve", "score_value"]
