"""Langfuse dataset runs (experiments), from its public API's shapes.

Accepted:
- a dataset run, ``GET /api/public/datasets/{name}/runs/{run}`` (``{id, name, datasetName,
  datasetRunItems: [{id, datasetItemId, traceId, observationId}]}``), bundled with the
  traces it points to (``"traces": [GET /api/public/traces/{id}, ...]``: ``{id, name,
  timestamp, input, output, metadata, tags, latency, totalCost, observations: [...],
  scores: [...]}``) and the dataset items (``"datasetItems": [{id, input,
  expectedOutput, metadata}]``);
- a JSON array, ``{"data": [...]}`` or JSONL of run items that embed their ``trace`` (and
  ``datasetItem``), or of traces themselves;
- the Python SDK's experiment item results: ``{item: {input, expected_output}, output,
  evaluations: [{name, value, comment, metadata}], trace_id, dataset_run_id}``.

One trace per run item; observations become spans (GENERATION -> llm with usage and cost,
SPAN/EVENT -> function, TOOL -> tool, AGENT -> task), scores become score spans.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    stable_id,
)

FORMAT = "langfuse"
_TYPES = {"GENERATION": "llm", "SPAN": "function", "EVENT": "function", "TOOL": "tool", "AGENT": "task",
          "CHAIN": "function", "RETRIEVER": "function", "EMBEDDING": "function", "EVALUATOR": "score",
          "GUARDRAIL": "function"}


def _items(path: Path, sink: Sink) -> tuple[dict[str, Any], Iterator[tuple[str, Any, int | None]]]:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{") and path.suffix.lower() not in (".jsonl", ".ndjson"):
        data = path.read_bytes()
        check_text(data, where="start of file")
        try:
            doc = loads(data, where="the JSON document")
        except IngestError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("datasetRunItems"), list):
            traces = {t.get("id"): t for t in doc.get("traces") or [] if isinstance(t, dict)}
            items = {d.get("id"): d for d in doc.get("datasetItems") or [] if isinstance(d, dict)}

            def joined() -> Iterator[tuple[str, Any, int | None]]:
                for i, ri in enumerate(doc["datasetRunItems"]):
                    if isinstance(ri, dict):
                        ri = {**ri, "trace": ri.get("trace") or traces.get(ri.get("traceId")),
                              "datasetItem": ri.get("datasetItem") or items.get(ri.get("datasetItemId"))}
                    yield f"datasetRunItems[{i}]", ri, None

            run = {k: v for k, v in doc.items() if k not in ("datasetRunItems", "traces", "datasetItems")}
            return run, joined()
        if isinstance(doc, dict) and isinstance(doc.get("data"), list):
            return {}, ((f"data[{i}]", x, None) for i, x in enumerate(doc["data"]))
        if isinstance(doc, dict) and isinstance(doc.get("item_results"), list):
            return {"name": doc.get("run_name") or doc.get("name")}, (
                (f"item_results[{i}]", x, None) for i, x in enumerate(doc["item_results"]))
    return {}, iter_json_rows(path, sink)


def import_file(path: Path, sink: Sink) -> None:
    run, items = _items(path, sink)
    eid: str | None = None
    n_missing = 0
    for where, item, size in items:
        if not isinstance(item, dict):
            raise IngestError(f"expected a run item (an object), got {type(item).__name__}", where=where)
        trace = item.get("trace") if isinstance(item.get("trace"), dict) else (item if "observations" in item else None)
        ds_item = item.get("datasetItem") or item.get("item")
        if eid is None:
            run_id = run.get("id") or item.get("datasetRunId") or item.get("dataset_run_id")
            dataset = run.get("datasetName") or item.get("datasetName") or (
                ds_item.get("datasetName") if isinstance(ds_item, dict) else None)
            eid = sink.experiment(
                f"run:{run_id}" if run_id else f"file:{path.resolve()}",
                project=str(dataset or "langfuse"),
                name=str(run.get("name") or item.get("datasetRunName") or path.stem),
                description=run.get("description"),
                metadata=compact({"imported_from": path.name, **(run.get("metadata") or {}),
                                  "langfuse": compact({"dataset_run_id": run_id, "dataset_id": run.get("datasetId")})}),
                created=iso(run.get("createdAt")),
            )
        if trace is None and "evaluations" not in item and "output" not in item:
            n_missing += 1
        for rec in item_records(item, trace, ds_item if isinstance(ds_item, dict) else None, eid, where):
            sink.span(rec, where, size_hint=size)
    if n_missing:
        sink.warn(f"{n_missing} run item(s) came without their trace: imported with no input/output "
                  "(bundle the traces: \"traces\": [GET /api/public/traces/{id}, ...])")
    if eid is None:
        sink.warn("the file holds no run items")


def _usage(o: dict[str, Any]) -> dict[str, Any]:
    u = o.get("usageDetails") if isinstance(o.get("usageDetails"), dict) else {}
    legacy = o.get("usage") if isinstance(o.get("usage"), dict) else {}
    prompt = number(u.get("input", legacy.get("input", o.get("promptTokens"))))
    completion = number(u.get("output", legacy.get("output", o.get("completionTokens"))))
    total = number(u.get("total", legacy.get("total", o.get("totalTokens"))))
    cost_d = o.get("costDetails") if isinstance(o.get("costDetails"), dict) else {}
    cost = number(cost_d.get("total", o.get("calculatedTotalCost", o.get("totalCost"))))
    start, ttft_at = epoch(o.get("startTime")), epoch(o.get("completionStartTime"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens": total if total is not None else (
            prompt + completion if prompt is not None and completion is not None else None),
        "prompt_cached_tokens": number(u.get("input_cached_tokens", u.get("cache_read_input_tokens"))),
        "estimated_cost": cost,
        "time_to_first_token": ttft_at - start if ttft_at is not None and start is not None else None,
    }


def _score_value(s: dict[str, Any]) -> float | None:
    v = s.get("value")
    if s.get("dataType") == "BOOLEAN" or isinstance(v, bool):
        return 1.0 if v else 0.0
    n = number(v)
    return float(n) if n is not None and 0 <= n <= 1 else None


def item_records(item: dict[str, Any], trace: dict[str, Any] | None, ds_item: dict[str, Any] | None,
                 eid: str, where: str) -> list[dict[str, Any]]:
    trace = trace or {}
    key = item.get("id") or trace.get("id") or item.get("traceId") or item.get("trace_id")
    if key is None:
        raise IngestError("required: a run item id or trace id", where=where, field="id")
    root = stable_id(eid, "item", key)
    start = epoch(trace.get("timestamp") or item.get("createdAt"))
    latency = number(trace.get("latency"))
    end = start + latency if start is not None and latency is not None else None
    observations = trace.get("observations") or []
    if not isinstance(observations, list):
        raise IngestError("must be a list", where=where, field="trace.observations")
    has_cost = any(isinstance(o, dict) and (o.get("costDetails") or o.get("calculatedTotalCost")) for o in observations)
    expected = None
    if ds_item:
        expected = ds_item.get("expectedOutput", ds_item.get("expected_output"))
    inp = trace.get("input") if trace else None
    if inp is None and ds_item:
        inp = ds_item.get("input")
    out = trace.get("output") if trace else None
    if out is None:
        out = item.get("output")
    tags = trace.get("tags")
    recs = [{
        "id": root, "experiment_id": eid, "span_id": root, "root_span_id": root, "span_parents": [],
        "span_attributes": {"name": str(trace.get("name") or (ds_item or {}).get("id") or key), "type": "eval"},
        "input": inp, "output": out, "expected": expected,
        "metadata": compact({
            **(trace.get("metadata") if isinstance(trace.get("metadata"), dict) else {}),
            "langfuse": compact({"trace_id": trace.get("id") or item.get("traceId") or item.get("trace_id"),
                                 "dataset_item_id": item.get("datasetItemId") or (ds_item or {}).get("id"),
                                 "session_id": trace.get("sessionId"), "user_id": trace.get("userId"),
                                 "release": trace.get("release"), "version": trace.get("version")}),
        }),
        "metrics": compact({"start": start, "end": end,
                            "estimated_cost": None if has_cost else number(trace.get("totalCost"))}),
        "tags": [str(t) for t in tags] if isinstance(tags, list) and tags else None,
        "dataset_record_id": str(item.get("datasetItemId") or (ds_item or {}).get("id") or "") or None,
        "created": iso(start),
    }]
    obs_ids: dict[str, str] = {}
    for i, o in enumerate(observations):
        if not isinstance(o, dict):
            raise IngestError("must be an object", where=where, field=f"trace.observations[{i}]")
        obs_ids[str(o.get("id") or i)] = stable_id(root, "obs", o.get("id") or i)
    for i, o in enumerate(observations):
        sid = obs_ids[str(o.get("id") or i)]
        parent = obs_ids.get(str(o.get("parentObservationId"))) or root
        typ = _TYPES.get(str(o.get("type") or "SPAN").upper(), "function")
        level = o.get("level")
        m = {"start": epoch(o.get("startTime")), "end": epoch(o.get("endTime"))}
        if typ == "llm":
            m.update(_usage(o))
        recs.append({
            "id": sid, "experiment_id": eid, "span_id": sid, "root_span_id": root, "span_parents": [parent],
            "span_attributes": {"name": str(o.get("name") or typ), "type": typ},
            "input": o.get("input"), "output": o.get("output"),
            "error": {"message": o.get("statusMessage") or "error", "level": level} if level == "ERROR" else None,
            "metadata": compact({
                **(o.get("metadata") if isinstance(o.get("metadata"), dict) else {}),
                "model": o.get("model"), "model_parameters": o.get("modelParameters") or None,
                "level": level if level not in (None, "DEFAULT") else None,
                "status_message": o.get("statusMessage") if level != "ERROR" else None,
            }),
            "metrics": compact(m),
            "created": iso(o.get("startTime")) or iso(start),
        })
    scores = list(trace.get("scores") or [])
    for ev in item.get("evaluations") or []:  # SDK experiment results
        if isinstance(ev, dict):
            scores.append({"name": ev.get("name"), "value": ev.get("value"), "comment": ev.get("comment"),
                           "metadata": ev.get("metadata"), "dataType": ev.get("data_type")})
    for i, s in enumerate(scores):
        if not isinstance(s, dict):
            raise IngestError("must be an object", where=where, field=f"trace.scores[{i}]")
        name = str(s.get("name") or f"score{i}")
        value = _score_value(s)
        sid = stable_id(root, "score", s.get("id") or f"{name}:{i}")
        t = epoch(s.get("timestamp"))
        recs.append({
            "id": sid, "experiment_id": eid, "span_id": sid, "root_span_id": root,
            "span_parents": [obs_ids.get(str(s.get("observationId"))) or root],
            "span_attributes": {"name": name, "type": "score"},
            "scores": {name: value} if value is not None else None,
            "metadata": compact({"comment": s.get("comment"), "value": s.get("value"),
                                 "string_value": s.get("stringValue"), "data_type": s.get("dataType"),
                                 "source": s.get("source"),
                                 **(s.get("metadata") if isinstance(s.get("metadata"), dict) else {})}),
            "metrics": compact({"start": t, "end": t}),
            "created": iso(t) or iso(start),
        })
    return recs
