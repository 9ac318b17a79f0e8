"""OpenTelemetry traces: OTLP/JSON (one ExportTraceServiceRequest) or JSONL (one per line).

Spans carry OpenInference attributes (``openinference.span.kind``, ``llm.token_count.*``,
``input.value``, ``llm.input_messages.N.message.*``, ``llm.cost.*``) and/or GenAI
semantic-convention ones (``gen_ai.operation.name``, ``gen_ai.usage.input_tokens`` and the
deprecated ``gen_ai.usage.prompt_tokens``, ``gen_ai.prompt.N.*``, ``gen_ai.input.messages``);
both become evaltui span kinds, tokens, cost and chat messages. Evaluation results
(``gen_ai.evaluation.result`` events, EVALUATOR spans) become score spans. All traces of a
file go into one experiment (project: ``service.name``).

Span ids are OTel ids (hex; protobuf's JSON writes them base64, which is read too).
Batch exporters send children before their parents, so a trace's spans wait in memory
until its root arrives; traces whose root never comes get a synthetic root.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any

import orjson

from evaltui.ingest._common import (
    IngestError,
    Sink,
    compact,
    iso,
    iter_json_rows,
    number,
    stable_id,
)

FORMAT = "otel"
_OI_KINDS = {
    "LLM": "llm",
    "TOOL": "tool",
    "AGENT": "task",
    "CHAIN": "function",
    "RETRIEVER": "function",
    "EMBEDDING": "function",
    "RERANKER": "function",
    "GUARDRAIL": "function",
    "EVALUATOR": "score",
    "PROMPT": "function",
}
_GENAI_OPS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "completion": "llm",
    "execute_tool": "tool",
    "invoke_agent": "task",
    "create_agent": "function",
    "embeddings": "function",
}
_CONSUMED_PREFIXES = ("llm.input_messages.", "llm.output_messages.", "gen_ai.prompt.", "gen_ai.completion.")
_LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def _hex_id(value: Any, length: int) -> str | None:
    """An OTLP trace/span id as lowercase hex (OTLP/JSON uses hex; protobuf JSON base64)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == length and re.fullmatch(r"[0-9a-fA-F]+", value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) * 2 != length:
        return None
    h = raw.hex()
    return None if set(h) == {"0"} else h


def any_value(v: Any) -> Any:
    """An OTLP AnyValue as a plain JSON value."""
    if not isinstance(v, dict):
        return v
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return v["intValue"]
    if "doubleValue" in v:
        d = v["doubleValue"]
        return float(d) if isinstance(d, (int, float, str)) and str(d) not in ("NaN", "Infinity", "-Infinity") else None
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [any_value(x) for x in (v["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in v:
        return attributes((v["kvlistValue"] or {}).get("values") or [])
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def attributes(attrs: Any) -> dict[str, Any]:
    if not isinstance(attrs, list):
        return {}
    out: dict[str, Any] = {}
    for a in attrs:
        if isinstance(a, dict) and isinstance(a.get("key"), str):
            out[a["key"]] = any_value(a.get("value"))
    return out


def _json_maybe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "[", '"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _indexed(attrs: dict[str, Any], prefix: str) -> dict[int, dict[str, Any]]:
    """``prefix.N.rest`` attributes grouped by N: {N: {rest: value}}."""
    out: dict[int, dict[str, Any]] = {}
    for k, v in attrs.items():
        if k.startswith(prefix):
            n, _, rest = k[len(prefix):].partition(".")
            if n.isdigit():
                out.setdefault(int(n), {})[rest] = v
    return out


def _oi_messages(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """OpenInference ``llm.input_messages.N.message.*`` as OpenAI-style messages."""
    groups = _indexed(attrs, prefix)
    if not groups:
        return None
    msgs = []
    for n in sorted(groups):
        g = groups[n]
        msg: dict[str, Any] = {"role": g.get("message.role")}
        content = g.get("message.content")
        parts = _indexed({k: v for k, v in g.items()}, "message.contents.")
        if content is None and parts:
            texts = [p.get("message_content.text") for _, p in sorted(parts.items())]
            if all(isinstance(t, str) for t in texts):
                content = "\n".join(texts)  # type: ignore[arg-type]
            else:
                content = [compact({"type": p.get("message_content.type"), "text": p.get("message_content.text"),
                                    "image": p.get("message_content.image.image.url")})
                           for _, p in sorted(parts.items())]
        msg["content"] = content
        calls = _indexed(g, "message.tool_calls.")
        if calls:
            msg["tool_calls"] = [
                {"id": c.get("tool_call.id"), "type": "function",
                 "function": {"name": c.get("tool_call.function.name"),
                              "arguments": _json_maybe(c.get("tool_call.function.arguments"))}}
                for _, c in sorted(calls.items())
            ]
        if g.get("message.tool_call_id") is not None:
            msg["tool_call_id"] = g["message.tool_call_id"]
        if g.get("message.name") is not None:
            msg["name"] = g["message.name"]
        msgs.append(msg)
    return msgs


def _genai_indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]] | None:
    """Deprecated ``gen_ai.prompt.N.role/content`` attributes as messages."""
    groups = _indexed(attrs, prefix)
    if not groups:
        return None
    return [compact({"role": g.get("role"), "content": g.get("content"),
                     "tool_calls": _json_maybe(g.get("tool_calls"))}) or {} for _, g in sorted(groups.items())]


def _genai_parts(value: Any) -> list[dict[str, Any]] | None:
    """``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON: role + parts)."""
    msgs = _json_maybe(value)
    if not isinstance(msgs, list):
        return None
    out = []
    for m in msgs:
        if not isinstance(m, dict):
            continue
        parts = m.get("parts")
        if isinstance(parts, list):
            texts = [p.get("content") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
            calls = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call"]
            msg: dict[str, Any] = {"role": m.get("role"), "content": "\n".join(t for t in texts if isinstance(t, str))}
            if calls:
                msg["tool_calls"] = [{"id": c.get("id"), "type": "function",
                                      "function": {"name": c.get("name"), "arguments": c.get("arguments")}}
                                     for c in calls]
            out.append(msg)
        else:
            out.append(m)
    return out


def _span_type(attrs: dict[str, Any]) -> str:
    kind = attrs.get("openinference.span.kind")
    if isinstance(kind, str) and kind.upper() in _OI_KINDS:
        return _OI_KINDS[kind.upper()]
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op in _GENAI_OPS:
        return _GENAI_OPS[op]
    if any(k in attrs for k in ("gen_ai.request.model", "gen_ai.system", "llm.model_name")):
        return "llm"
    return "function"


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None:
            return v
    return None


def _score(value: Any, label: Any) -> float | None:
    n = number(_json_maybe(value) if isinstance(value, str) else value)
    if n is None and isinstance(value, str):
        try:
            n = float(value)
        except ValueError:
            n = None
    if n is not None and 0 <= n <= 1:
        return float(n)
    if isinstance(label, str) and label.strip().upper() in _LETTERS:
        return _LETTERS[label.strip().upper()]
    if isinstance(label, bool):
        return 1.0 if label else 0.0
    return None


class _Converter:
    def __init__(self, sink: Sink, path: Path):
        self.sink = sink
        self.path = path
        self.eid: str | None = None
        self.pending: dict[str, list[tuple[dict[str, Any], str]]] = {}  # trace -> spans before root
        self.roots: dict[str, str] = {}  # trace id -> root span id (hex)
        self.orphans = 0

    def experiment(self, resource: dict[str, Any], start: float | None) -> str:
        if self.eid is None:
            service = resource.get("service.name")
            project = service if isinstance(service, str) and service and service != "unknown_service" else "otel"
            self.eid = self.sink.experiment(
                f"file:{self.path.resolve()}",
                project=project,
                name=self.path.stem,
                created=iso(start),
                metadata={"imported_from": self.path.name, "resource": resource or None},
            )
        return self.eid

    def request(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("resourceSpans", []), list):
            raise IngestError("expected an OTLP export request: an object with a 'resourceSpans' list", where=where)
        for i, rs in enumerate(doc.get("resourceSpans") or []):
            if not isinstance(rs, dict):
                raise IngestError("must be an object", where=where, field=f"resourceSpans[{i}]")
            resource = attributes((rs.get("resource") or {}).get("attributes"))
            for j, ss in enumerate(rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []):
                if not isinstance(ss, dict):
                    raise IngestError("must be an object", where=where, field=f"resourceSpans[{i}].scopeSpans[{j}]")
                scope = (ss.get("scope") or ss.get("instrumentationLibrary") or {}).get("name")
                spans = ss.get("spans") or []
                if not isinstance(spans, list):
                    raise IngestError("must be a list", where=where, field=f"resourceSpans[{i}].scopeSpans[{j}].spans")
                for k, span in enumerate(spans):
                    place = f"{where}, resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    if not isinstance(span, dict):
                        raise IngestError("a span must be an object", where=place)
                    self.span(span, resource, scope, place)

    def span(self, span: dict[str, Any], resource: dict[str, Any], scope: Any, where: str) -> None:
        trace = _hex_id(span.get("traceId"), 32)
        sid = _hex_id(span.get("spanId"), 16)
        if trace is None:
            raise IngestError(f"not a trace id: {span.get('traceId')!r}", where=where, field="traceId")
        if sid is None:
            raise IngestError(f"not a span id: {span.get('spanId')!r}", where=where, field="spanId")
        parent = _hex_id(span.get("parentSpanId"), 16) if span.get("parentSpanId") else None
        start = _nanos(span.get("startTimeUnixNano"), where, "startTimeUnixNano")
        self.experiment(resource, start)
        info = {"span": span, "trace": trace, "sid": sid, "parent": parent, "resource": resource, "scope": scope}
        if parent is None:
            self.roots[trace] = sid
            self.emit(info, where)
            for held, held_where in self.pending.pop(trace, []):
                self.emit(held, held_where)
        elif trace in self.roots:
            self.emit(info, where)
        else:
            self.pending.setdefault(trace, []).append((info, where))

    def finish(self) -> None:
        for trace, held in self.pending.items():
            # the root never came: hang the trace from a synthetic root
            ids = {h["sid"] for h, _ in held}
            root_sid = "synthetic-" + trace
            self.roots[trace] = root_sid
            starts = [_nanos(h["span"].get("startTimeUnixNano"), w, "") for h, w in held]
            ends = [_nanos(h["span"].get("endTimeUnixNano"), w, "") for h, w in held]
            rid = self.ids(trace, root_sid)
            self.sink.span({
                "id": rid, "experiment_id": self.eid, "span_id": rid, "root_span_id": rid, "span_parents": [],
                "span_attributes": {"name": f"trace {trace[:8]}", "type": "task"},
                "metadata": {"otel": {"trace_id": trace, "synthetic_root": True}},
                "metrics": compact({"start": min((s for s in starts if s), default=None),
                                    "end": max((e for e in ends if e), default=None)}),
            }, f"trace {trace}")
            for h, w in held:
                if h["parent"] not in ids:
                    h["parent"] = root_sid
                    self.orphans += 1
                self.emit(h, w)
        if self.orphans:
            self.sink.warn(f"{self.orphans} span(s) had a parent missing from the file; "
                           "they hang from a synthetic root span")

    def ids(self, trace: str, sid: str) -> str:
        return stable_id(self.eid, trace, sid)

    def emit(self, info: dict[str, Any], where: str) -> None:
        span, trace = info["span"], info["trace"]
        attrs = attributes(span.get("attributes"))
        typ = _span_type(attrs)
        is_root = info["parent"] is None
        span_id = self.ids(trace, info["sid"])
        root_id = self.ids(trace, self.roots[trace])
        start = _nanos(span.get("startTimeUnixNano"), where, "startTimeUnixNano")
        end = _nanos(span.get("endTimeUnixNano"), where, "endTimeUnixNano")
        used: set[str] = set()

        def take(*keys: str) -> Any:
            for k in keys:
                if attrs.get(k) is not None:
                    used.add(k)
                    return attrs[k]
            return None

        inp = _json_maybe(take("input.value"))
        out = _json_maybe(take("output.value"))
        used.update(k for k in ("input.mime_type", "output.mime_type", "openinference.span.kind",
                                "gen_ai.operation.name") if k in attrs)
        metrics: dict[str, Any] = {"start": start, "end": end}
        md: dict[str, Any] = {}
        oi_md = _json_maybe(take("metadata"))
        if isinstance(oi_md, dict):
            md.update(oi_md)
        if typ == "llm":
            in_msgs = (_oi_messages(attrs, "llm.input_messages.") or _genai_parts(take("gen_ai.input.messages"))
                       or _genai_indexed(attrs, "gen_ai.prompt."))
            out_msgs = (_oi_messages(attrs, "llm.output_messages.") or _genai_parts(take("gen_ai.output.messages"))
                        or _genai_indexed(attrs, "gen_ai.completion."))
            events_in, events_out = _genai_events(span.get("events"))
            in_msgs = in_msgs or events_in
            out_msgs = out_msgs or events_out
            if in_msgs:
                inp = in_msgs
            if out_msgs:
                out = out_msgs[0] if len(out_msgs) == 1 else out_msgs
            prompt = take("llm.token_count.prompt", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
            completion = take("llm.token_count.completion", "gen_ai.usage.output_tokens",
                              "gen_ai.usage.completion_tokens")
            total = take("llm.token_count.total", "gen_ai.usage.total_tokens")
            cost = take("llm.cost.total", "gen_ai.usage.cost")
            if cost is None:
                parts = [number(take(k)) for k in ("llm.cost.prompt", "llm.cost.completion")]
                if any(p is not None for p in parts):
                    cost = sum(p or 0 for p in parts)
            metrics.update({
                "prompt_tokens": number(prompt),
                "completion_tokens": number(completion),
                "tokens": number(total) if total is not None else (
                    number(prompt) + number(completion) if number(prompt) is not None
                    and number(completion) is not None else None),
                "prompt_cached_tokens": number(take("llm.token_count.prompt_details.cache_read",
                                                    "gen_ai.usage.cache_read_input_tokens")),
                "completion_reasoning_tokens": number(take("llm.token_count.completion_details.reasoning",
                                                           "gen_ai.usage.reasoning_tokens")),
                "estimated_cost": number(cost),
            })
            md["model"] = take("llm.model_name", "gen_ai.response.model", "gen_ai.request.model")
            md["provider"] = take("llm.provider", "llm.system", "gen_ai.system", "gen_ai.provider.name")
            params = _json_maybe(take("llm.invocation_parameters"))
            if params:
                md["invocation_parameters"] = params
        elif typ == "tool":
            md["tool"] = take("tool.name", "gen_ai.tool.name")
            if inp is None:
                inp = _json_maybe(take("gen_ai.tool.call.arguments"))
            if out is None:
                out = _json_maybe(take("gen_ai.tool.call.result"))
        status = span.get("status") if isinstance(span.get("status"), dict) else {}
        error = None
        exc = _exception(span.get("events"))
        if status.get("code") in (2, "STATUS_CODE_ERROR", "ERROR"):
            error = compact({"message": status.get("message") or (exc or {}).get("message") or "error", **(exc or {})})
        scores: dict[str, float] | None = None
        if typ == "score":
            name = take("eval.name", "evaluation.name") or span.get("name")
            v = _score(take("eval.score", "evaluation.score", "score") or out, take("eval.label", "label"))
            if v is not None:
                scores = {str(name): v}
            expl = take("eval.explanation", "explanation")
            if expl is not None:
                md["explanation"] = expl
        tags = take("tag.tags")
        rest = {k: v for k, v in attrs.items() if k not in used and not k.startswith(_CONSUMED_PREFIXES)}
        md["otel"] = compact({
            "trace_id": trace,
            "span_id": info["sid"],
            "kind": span.get("kind"),
            "scope": info["scope"],
            "status": status or None,
            "attributes": rest or None,
            "resource": info["resource"] if is_root and info["resource"] else None,
            "session_id": attrs.get("session.id"),
        })
        rec = {
            "id": span_id,
            "experiment_id": self.eid,
            "span_id": span_id,
            "root_span_id": root_id,
            "span_parents": [] if is_root else [self.ids(trace, info["parent"])],
            "span_attributes": {"name": str(span.get("name") or typ), "type": typ},
            "input": inp,
            "output": out,
            "error": error,
            "scores": scores,
            "metadata": compact(md),
            "metrics": compact(metrics),
            "tags": [str(t) for t in tags] if isinstance(tags, list) else None,
            "created": iso(start),
        }
        self.sink.span(rec, where)
        for n, (name, value, label, expl) in enumerate(_evaluations(span.get("events"))):
            v = _score(value, label)
            eval_id = stable_id(span_id, "evaluation", n)
            self.sink.span({
                "id": eval_id, "experiment_id": self.eid, "span_id": eval_id, "root_span_id": root_id,
                "span_parents": [span_id], "span_attributes": {"name": name, "type": "score"},
                "scores": {name: v} if v is not None else None,
                "metadata": compact({"explanation": expl, "label": label, "value": value}),
                "metrics": compact({"start": end, "end": end}), "created": iso(end or start),
            }, where)


def _events(events: Any) -> list[tuple[str, dict[str, Any], Any]]:
    if not isinstance(events, list):
        return []
    return [(e.get("name"), attributes(e.get("attributes")), e.get("timeUnixNano"))
            for e in events if isinstance(e, dict)]


def _exception(events: Any) -> dict[str, Any] | None:
    for name, attrs, _ in _events(events):
        if name == "exception":
            return compact({"message": attrs.get("exception.message"), "type": attrs.get("exception.type"),
                            "stacktrace": attrs.get("exception.stacktrace")})
    return None


def _evaluations(events: Any) -> list[tuple[str, Any, Any, Any]]:
    out = []
    for name, attrs, _ in _events(events):
        if name == "gen_ai.evaluation.result":
            out.append((str(attrs.get("gen_ai.evaluation.name") or "evaluation"),
                        attrs.get("gen_ai.evaluation.score.value"), attrs.get("gen_ai.evaluation.score.label"),
                        attrs.get("gen_ai.evaluation.explanation")))
    return out


def _genai_events(events: Any) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """Messages from (older) GenAI span events: gen_ai.*.message and gen_ai.choice."""
    ins, outs = [], []
    for name, attrs, _ in _events(events):
        if not isinstance(name, str) or not name.startswith("gen_ai."):
            continue
        role = name.removeprefix("gen_ai.").removesuffix(".message")
        if name == "gen_ai.choice":
            msg = _json_maybe(attrs.get("message"))
            outs.append(msg if isinstance(msg, dict) else {"role": "assistant", "content": attrs.get("content", msg)})
        elif name.endswith(".message"):
            ins.append({"role": attrs.get("role", role), "content": _json_maybe(attrs.get("content"))})
    return ins or None, outs or None


def _nanos(value: Any, where: str, field: str) -> float | None:
    if value is None or value == "" or value == "0" or value == 0:
        return None
    try:
        return int(value) / 1e9
    except (TypeError, ValueError):
        raise IngestError(f"not a time in nanoseconds: {value!r}", where=where, field=field) from None


def import_file(path: Path, sink: Sink) -> None:
    conv = _Converter(sink, path)
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"{") and path.suffix.lower() not in (".jsonl", ".ndjson"):
        # one request per file (pretty-printed JSON) or one per line: try lines first
        from evaltui.ingest._common import check_text

        data = path.read_bytes()
        check_text(data, where="start of file")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            doc = None
        if doc is not None:
            conv.request(doc, "the export request")
            conv.finish()
            if conv.eid is None:
                sink.warn("the file holds no spans")
            return
    for where, doc, _size in iter_json_rows(path, sink):
        conv.request(doc, where)
    conv.finish()
    if conv.eid is None:
        sink.warn("the file holds no spans")
