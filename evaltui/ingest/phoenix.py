"""Arize Phoenix experiments.

Accepted shapes (Phoenix REST API):
- ``GET /v1/experiments/{id}/json``: a JSON array of runs ``{example_id,
  repetition_number, input, reference_output, output, error, latency_ms, start_time,
  end_time, trace_id, prompt_token_count, completion_token_count, annotations: [{name,
  annotator_kind, label, score, explanation, error, metadata, start_time, end_time}]}``;
- ``GET /v1/experiments/{id}/runs``: ``{"data": [{id, experiment_id, dataset_example_id,
  repetition_number, output, error, start_time, end_time, trace_id}]}``;
- either wrapped as ``{"experiment": {id, dataset_id, metadata, ...}, "runs": [...]}``.

One trace per run (repetitions are trials of one example), annotations as score spans.
"""

from __future__ import annotations

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

FORMAT = "phoenix"


def _runs(path: Path, sink: Sink) -> tuple[dict[str, Any], Any]:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{") and path.suffix.lower() not in (".jsonl", ".ndjson"):
        data = path.read_bytes()
        check_text(data, where="start of file")
        try:
            doc = loads(data, where="the JSON document")
        except IngestError:
            doc = None
        if isinstance(doc, dict) and ("runs" in doc or "data" in doc):
            runs = doc.get("runs", doc.get("data"))
            if not isinstance(runs, list):
                raise IngestError("must be a list of experiment runs", field="runs" if "runs" in doc else "data")
            exp = doc.get("experiment") if isinstance(doc.get("experiment"), dict) else {}
            return exp, ((f"runs[{i}]", r, None) for i, r in enumerate(runs))
    return {}, iter_json_rows(path, sink)


def import_file(path: Path, sink: Sink) -> None:
    exp, rows = _runs(path, sink)
    eid: str | None = None
    for where, run, size in rows:
        if not isinstance(run, dict):
            raise IngestError(f"expected a run (an object), got {type(run).__name__}", where=where)
        if eid is None:
            source_id = exp.get("id") or run.get("experiment_id")
            eid = sink.experiment(
                f"experiment:{source_id}" if source_id else f"file:{path.resolve()}",
                project=str(exp.get("dataset_name") or exp.get("project_name") or "phoenix"),
                name=str(exp.get("name") or path.stem),
                description=exp.get("description"),
                metadata=compact({"imported_from": path.name, "phoenix": compact({
                    "experiment_id": source_id, "dataset_id": exp.get("dataset_id"),
                    "dataset_version_id": exp.get("dataset_version_id"),
                    "repetitions": exp.get("repetitions")}), **(exp.get("metadata") or {})}),
                created=iso(exp.get("created_at")),
            )
        for rec in run_records(run, eid, sink, where):
            sink.span(rec, where, size_hint=size)
    if eid is None:
        sink.warn("the file holds no experiment runs")


def run_records(run: dict[str, Any], eid: str, sink: Sink, where: str) -> list[dict[str, Any]]:
    example = run.get("example_id") or run.get("dataset_example_id")
    if example is None:
        raise IngestError("required: the run's example id", where=where, field="example_id")
    rep = run.get("repetition_number") or 1
    key = run.get("id") or f"{example}:{rep}"
    root = stable_id(eid, "run", key)
    start = epoch(run.get("start_time"))
    end = epoch(run.get("end_time"))
    latency = number(run.get("latency_ms"))
    if end is None and start is not None and latency is not None:
        end = start + latency / 1000
    prompt = number(run.get("prompt_token_count"))
    completion = number(run.get("completion_token_count"))
    err = run.get("error")
    recs = [{
        "id": root, "experiment_id": eid, "span_id": root, "root_span_id": root, "span_parents": [],
        "span_attributes": {"name": str(example), "type": "eval"},
        "input": run.get("input"),
        "output": run.get("output"),
        "expected": run.get("reference_output", run.get("expected")),
        "error": {"message": err} if isinstance(err, str) and err else (err or None),
        "metadata": compact({"example_id": str(example), "repetition": rep, "trace_id": run.get("trace_id"),
                             "run_id": run.get("id")}),
        "metrics": compact({
            "start": start, "end": end, "prompt_tokens": prompt, "completion_tokens": completion,
            "tokens": (prompt or 0) + (completion or 0) if prompt is not None or completion is not None else None,
        }),
        "dataset_record_id": str(example),
        "created": iso(start),
    }]
    annotations = run.get("annotations") or []
    if not isinstance(annotations, list):
        raise IngestError("must be a list", where=where, field="annotations")
    for i, a in enumerate(annotations):
        if not isinstance(a, dict):
            raise IngestError("must be an object", where=where, field=f"annotations[{i}]")
        name = str(a.get("name") or f"annotation{i}")
        score = number(a.get("score"))
        value = None
        if score is not None and 0 <= score <= 1:
            value = float(score)
        elif score is not None:
            sink.warn(f"annotation {name}: scores outside [0, 1] are kept in the score span's metadata")
        sid = stable_id(root, "annotation", name, i)
        a_err = a.get("error")
        recs.append({
            "id": sid, "experiment_id": eid, "span_id": sid, "root_span_id": root, "span_parents": [root],
            "span_attributes": {"name": name, "type": "score"},
            "scores": {name: value} if value is not None or score is None and a_err is None else None,
            "error": {"message": a_err} if isinstance(a_err, str) and a_err else (a_err or None),
            "metadata": compact({"explanation": a.get("explanation"), "label": a.get("label"), "score": score,
                                 "annotator_kind": a.get("annotator_kind"), **(a.get("metadata") or {})}),
            "metrics": compact({"start": epoch(a.get("start_time")), "end": epoch(a.get("end_time"))}),
            "created": iso(a.get("start_time")) or iso(start),
        })
    return recs
