"""Which format a file is in, from its name and first bytes."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

from evaltui.ingest._common import IngestError

FORMATS = ("inspect", "promptfoo", "otel", "braintrust", "phoenix", "langfuse", "jsonl", "csv")
_MODULES = {
    "inspect": "inspect",
    "promptfoo": "promptfoo",
    "otel": "otel",
    "braintrust": "braintrust",
    "phoenix": "phoenix",
    "langfuse": "langfuse",
    "jsonl": "jsonl",
    "csv": "jsonl",
}
HEAD_BYTES = 256 * 1024


class SniffError(IngestError):
    """No known format matches a file."""


def module_for(fmt: str) -> ModuleType:
    return importlib.import_module(f"evaltui.ingest.{_MODULES[fmt]}")


def _keys(text: bytes) -> set[str]:
    """JSON object keys seen in a chunk of JSON text (a cheap, parse-free look)."""
    return {m.decode("utf-8", "replace") for m in re.findall(rb'"([A-Za-z_.][A-Za-z0-9_.]{0,60})"\s*:', text)}


def sniff(path: str | Path) -> str:
    """The format of ``path``: one of FORMATS. Raises SniffError when nothing matches."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(HEAD_BYTES)
    except OSError as e:
        raise SniffError(f"{p}: cannot read ({e.strerror or e})") from None
    if not head.strip():
        raise SniffError(f"{p}: the file is empty")
    suffix = p.suffix.lower()
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if b"header.json" in head or b"_journal/" in head or b"samples/" in head or suffix == ".eval":
            return "inspect"
        raise SniffError(f"{p}: a zip file, but not an Inspect .eval log (no header.json or _journal/ inside)")
    if b"\x00" in head[:8192]:
        raise SniffError(f"{p}: binary data, not a file evaltui can import")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if suffix in (".csv", ".tsv"):
        return "csv"
    if not text.startswith((b"{", b"[")):
        if suffix in (".jsonl", ".ndjson", ".json"):
            raise SniffError(f"{p}: not JSON (it starts with {text[:20]!r})")
        if b"," in text.split(b"\n", 1)[0] and suffix in ("", ".txt"):
            return "csv"
        raise SniffError(
            f"{p}: format not recognised (not JSON, JSONL, CSV or an Inspect .eval zip); "
            "pass --format to say what it is"
        )
    first_line = text.split(b"\n", 1)[0]
    keys = _keys(first_line if len(first_line) > 2 else text[:65536])
    all_keys = _keys(text[:65536]) | keys
    if "resourceSpans" in all_keys:
        return "otel"
    if "eval" in all_keys and ("samples" in all_keys or "plan" in all_keys or "status" in all_keys) and (
        "task" in all_keys or "eval_id" in all_keys or "run_id" in all_keys
    ):
        return "inspect"
    if "results" in all_keys and (
        "table" in all_keys or "evalId" in all_keys or ("version" in all_keys and "promptIdx" in all_keys)
    ):
        return "promptfoo"
    if "promptIdx" in keys or ("testIdx" in keys and ("gradingResult" in keys or "response" in keys)):
        return "promptfoo"
    if "span_id" in keys and "root_span_id" in keys:
        return "braintrust"
    if ({"example_id", "dataset_example_id"} & keys) and (
        {"repetition_number", "reference_output", "annotations", "experiment_id"} & keys
    ):
        return "phoenix"
    if ("datasetItemId" in all_keys or "datasetRunId" in all_keys or "observations" in all_keys
            or "datasetRunItems" in all_keys or "dataset_run_id" in all_keys):
        return "langfuse"
    if keys & {"input", "output", "expected"} or any(k.startswith(("scores.", "metadata.")) for k in keys):
        return "jsonl"
    raise SniffError(
        f"{p}: JSON, but in no format evaltui knows (Inspect, promptfoo, OTLP, Braintrust, Phoenix, "
        "Langfuse, or rows with input/output); pass --format to say what it is"
    )
