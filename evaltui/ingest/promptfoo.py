"""promptfoo results: ``results.json`` (v3 and older with ``table``) and its JSONL output.

One experiment per prompt x provider (the columns of promptfoo's results table); one trace
per test case, whose input is the test's vars (so the same test matches across prompts and
providers); the provider call as an llm span (rendered prompt, output, tokens, cost,
latency); every assertion result as a score span with its reason; the test's overall pass
and score (and named scores) on an ``overall`` score span.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from evaltui.ingest._common import (
    IngestError,
    Sink,
    check_text,
    compact,
    epoch,
    iso,
    iter_json_rows,
    loads,
    number,
    slug,
    stable_id,
)
from evaltui.store.records import canonical_json

FORMAT = "promptfoo"


def import_file(path: Path, sink: Sink) -> None:
    with open(path, "rb") as f:
        head = f.read(65536).lstrip(b"\xef\xbb\xbf \t\r\n")
    first_line = head.split(b"\n", 1)[0]
    is_jsonl = path.suffix.lower() in (".jsonl", ".ndjson") or (
        head.startswith(b"{") and (b'"promptIdx"' in first_line or b'"testIdx"' in first_line)
        and b'"results"' not in first_line[:200]
    )
    if is_jsonl:
        ctx = _Context(sink, path, {}, None, None)
        for where, row, size in iter_json_rows(path, sink):
            ctx.result(row, where, size)
        ctx.done()
        return
    data = path.read_bytes()
    check_text(data, where="start of file")
    doc = loads(data, where="the JSON document")
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), (dict, list)):
        raise IngestError("not promptfoo results: expected an object with 'results'")
    summary = doc["results"] if isinstance(doc["results"], dict) else {"results": doc["results"]}
    results = summary.get("results")
    if not isinstance(results, list):
        raise IngestError("must be a list of test results", field="results.results")
    version = summary.get("version") or doc.get("version")
    ctx = _Context(sink, path, doc, summary, version)
    for i, row in enumerate(results):
        ctx.result(row, f"results.results[{i}]", None)
        if i % 500 == 0:
            sink.progress(i / max(1, len(results)))
    ctx.done()


class _Context:
    def __init__(self, sink: Sink, path: Path, doc: dict[str, Any], summary: dict[str, Any] | None, version: Any):
        self.sink = sink
        self.path = path
        self.doc = doc
        self.summary = summary or {}
        self.version = version
        config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        self.config = config
        self.eval_id = doc.get("evalId") or doc.get("id")
        self.timestamp = epoch(self.summary.get("timestamp") or doc.get("createdAt")
                               or (doc.get("metadata") or {}).get("evaluationCreatedAt"))
        self.prompts = self.summary.get("prompts") if isinstance(self.summary.get("prompts"), list) else []
        table = self.summary.get("table") if isinstance(self.summary.get("table"), dict) else {}
        self.head_prompts = (table.get("head") or {}).get("prompts") or []
        self.experiments: dict[tuple[str, str], str] = {}
        self.test_keys: dict[str, int] = {}
        self.count = 0

    def _experiment(self, prompt: dict[str, Any], provider: str, prompt_idx: Any) -> str:
        label = prompt.get("label") or prompt.get("display")
        # the prompt's identity: its index (v3), else its label (``display`` in v2), never the
        # rendered text, which differs per test
        pkey = str(prompt_idx) if prompt_idx is not None else (
            f"label:{label}" if label else f"raw:{stable_id(prompt.get('raw'))[:12]}")
        key = (pkey, provider)
        if key in self.experiments:
            return self.experiments[key]
        pmeta = None
        if isinstance(prompt_idx, int) and 0 <= prompt_idx < len(self.prompts):
            pmeta = self.prompts[prompt_idx]
        elif label:
            pmeta = next((p for p in [*self.prompts, *self.head_prompts] if isinstance(p, dict)
                          and label in (p.get("label"), p.get("display"))
                          and p.get("provider") in (None, provider)), None)
        pmeta = pmeta if isinstance(pmeta, dict) else {}
        template = pmeta.get("raw") or prompt.get("raw")
        short = label if isinstance(label, str) and len(label) <= 40 and "\n" not in label else (
            f"prompt{int(prompt_idx) + 1}" if isinstance(prompt_idx, int) else f"prompt-{stable_id(pkey)[:6]}")
        source = f"eval:{self.eval_id}" if self.eval_id else f"file:{self.path.resolve()}"
        description = self.config.get("description") if isinstance(self.config.get("description"), str) else None
        eid = self.sink.experiment(
            f"{source}:{pkey}:{provider}",
            project=slug(description) if description else "promptfoo",
            name=f"{provider}-{short}",
            label=f"{provider}-{short}",
            many=True,
            description=description,
            params=compact({"provider": provider, "prompt": template, "prompt_label": label,
                            "prompt_index": prompt_idx}),
            metadata=compact({
                "imported_from": self.path.name,
                "promptfoo": compact({
                    "eval_id": self.eval_id, "results_version": self.version,
                    "prompt_metrics": pmeta.get("metrics"),
                    "stats": self.summary.get("stats"),
                    "version": (self.doc.get("metadata") or {}).get("promptfooVersion")
                    if isinstance(self.doc.get("metadata"), dict) else None,
                }),
            }),
            created=iso(self.timestamp),
        )
        self.experiments[key] = eid
        return eid

    def result(self, row: Any, where: str, size: int | None) -> None:
        if not isinstance(row, dict):
            raise IngestError(f"expected a test result (an object), got {type(row).__name__}", where=where)
        provider = row.get("provider")
        provider_id = provider.get("label") or provider.get("id") if isinstance(provider, dict) else provider
        if not isinstance(provider_id, str) or not provider_id:
            raise IngestError("required: the provider id", where=where, field="provider")
        prompt = row.get("prompt") if isinstance(row.get("prompt"), dict) else {"raw": row.get("prompt")}
        prompt_idx = row.get("promptIdx")
        eid = self._experiment(prompt, provider_id, prompt_idx)
        test = row.get("testCase") if isinstance(row.get("testCase"), dict) else {}
        vars_ = row.get("vars") if row.get("vars") is not None else test.get("vars")
        test_idx = row.get("testIdx")
        if test_idx is None:
            # older results: the n-th result of a prompt/provider is its n-th test case
            k = f"{eid}"
            test_idx = self.test_keys.get(k, 0)
            self.test_keys[k] = test_idx + 1
        root = stable_id(eid, "test", test_idx, canonical_json(vars_) if vars_ is not None else "")
        resp = row.get("response") if isinstance(row.get("response"), dict) else {}
        usage = resp.get("tokenUsage") or row.get("tokenUsage") or {}
        if not isinstance(usage, dict):
            usage = {}
        latency = number(row.get("latencyMs") if row.get("latencyMs") is not None else resp.get("latencyMs"))
        start = self.timestamp
        end = start + latency / 1000 if start is not None and latency is not None else None
        err = row.get("error") or resp.get("error")
        # promptfoo puts a failed assertion's reason in ``error`` too: failureReason 1 is
        # ASSERT (a low score, not an error), 2 is ERROR (the call or the test itself failed)
        reason = row.get("failureReason")
        if reason is not None:
            is_error = reason == 2
        else:
            is_error = bool(resp.get("error")) or bool(err and not row.get("gradingResult"))
        failure = None if is_error else err
        err = err if is_error else None
        grading = row.get("gradingResult") if isinstance(row.get("gradingResult"), dict) else {}
        description = test.get("description") or row.get("description")
        output = resp.get("output", row.get("output"))
        md = compact({
            "test_index": row.get("testIdx"),
            "description": description,
            "prompt_label": prompt.get("label"),
            "provider": provider_id,
            "success": row.get("success"),
            "failure_reason": reason,
            "failure": failure,
            "cached": resp.get("cached"),
            **(row.get("metadata") if isinstance(row.get("metadata"), dict) else {}),
        })
        created = iso(start)
        recs: list[dict[str, Any]] = [{
            "id": root, "experiment_id": eid, "span_id": root, "root_span_id": root, "span_parents": [],
            "span_attributes": {"name": str(description or f"test {int(test_idx) + 1}"
                                            if isinstance(test_idx, int) else description or "test"),
                                "type": "eval"},
            "input": vars_,
            "output": output,
            "expected": (vars_ or {}).get("expected") if isinstance(vars_, dict) else None,
            "error": {"message": err} if isinstance(err, str) else (err or None),
            "metadata": md,
            "metrics": compact({"start": start, "end": end}),
            "created": created,
        }]
        llm = stable_id(root, "call")
        raw = prompt.get("raw")
        prompt_in: Any = raw
        if isinstance(raw, str) and raw.lstrip().startswith("["):
            try:
                parsed = orjson.loads(raw)
                if isinstance(parsed, list) and all(isinstance(m, dict) and "role" in m for m in parsed):
                    prompt_in = parsed
            except orjson.JSONDecodeError:
                pass
        if isinstance(prompt_in, str):
            prompt_in = [{"role": "user", "content": prompt_in}]
        prompt_tokens = number(usage.get("prompt"))
        completion_tokens = number(usage.get("completion"))
        recs.append({
            "id": llm, "experiment_id": eid, "span_id": llm, "root_span_id": root, "span_parents": [root],
            "span_attributes": {"name": provider_id, "type": "llm"},
            "input": prompt_in,
            "output": {"role": "assistant", "content": output} if isinstance(output, str) else output,
            "error": {"message": err} if isinstance(err, str) else (err or None),
            "metadata": compact({"provider": provider, "cached": resp.get("cached"),
                                 "finish_reason": resp.get("finishReason")}),
            "metrics": compact({
                "start": start, "end": end,
                "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "tokens": number(usage.get("total")) if usage.get("total") is not None else (
                    prompt_tokens + completion_tokens if prompt_tokens is not None
                    and completion_tokens is not None else None),
                "prompt_cached_tokens": number(usage.get("cached")),
                "completion_reasoning_tokens": number((usage.get("completionDetails") or {}).get("reasoning"))
                if isinstance(usage.get("completionDetails"), dict) else None,
                "estimated_cost": number(row.get("cost") if row.get("cost") is not None else resp.get("cost")),
            }),
            "created": created,
        })
        for i, comp in enumerate(grading.get("componentResults") or []):
            if not isinstance(comp, dict):
                continue
            assertion = comp.get("assertion") if isinstance(comp.get("assertion"), dict) else {}
            name = str(assertion.get("metric") or assertion.get("type") or f"assert{i + 1}")
            value = _score(comp.get("score"), comp.get("pass"))
            sid = stable_id(root, "assert", i)
            recs.append({
                "id": sid, "experiment_id": eid, "span_id": sid, "root_span_id": root, "span_parents": [root],
                "span_attributes": {"name": name, "type": "score"},
                "input": compact({"type": assertion.get("type"), "value": assertion.get("value")}),
                "scores": {name: value},
                "metadata": compact({"reason": comp.get("reason"), "pass": comp.get("pass"),
                                     "score": comp.get("score"), "assertion": assertion or None,
                                     "named_scores": comp.get("namedScores") or None}),
                "metrics": compact({"start": end, "end": end}),
                "created": created,
            })
        overall: dict[str, float | None] = {}
        success = row.get("success", grading.get("pass"))
        if isinstance(success, bool):
            overall["pass"] = 1.0 if success else 0.0
        score = _score(row.get("score", grading.get("score")), None)
        if score is not None:
            overall["score"] = score
        covered = {str((c.get("assertion") or {}).get("metric")) for c in grading.get("componentResults") or []
                   if isinstance(c, dict) and isinstance(c.get("assertion"), dict)}
        for name, v in (row.get("namedScores") or grading.get("namedScores") or {}).items():
            if name not in covered:
                sv = _score(v, None)
                if sv is not None:
                    overall[str(name)] = sv
        if overall:
            sid = stable_id(root, "overall")
            recs.append({
                "id": sid, "experiment_id": eid, "span_id": sid, "root_span_id": root, "span_parents": [root],
                "span_attributes": {"name": "overall", "type": "score"},
                "scores": overall,
                "metadata": compact({"reason": grading.get("reason"), "pass": success,
                                     "score": row.get("score", grading.get("score"))}),
                "metrics": compact({"start": end, "end": end}),
                "created": created,
            })
        for rec in recs:
            self.sink.span(rec, where, size_hint=size)
        self.count += 1

    def done(self) -> None:
        if not self.count:
            self.sink.warn("the file holds no test results")


def _score(value: Any, passed: Any) -> float | None:
    n = number(value)
    if n is not None and 0 <= n <= 1:
        return float(n)
    if isinstance(passed, bool):  # a score outside [0, 1] (kept in metadata): pass/fail instead
        return 1.0 if passed else 0.0
    return None
