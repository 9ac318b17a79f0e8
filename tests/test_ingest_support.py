"""Helpers shared by the ingest tests (and a test that importing evaltui.ingest needs no textual)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from evaltui.store import Store, find_experiment, load_experiment_spans, load_trace_rows

FIXTURES = Path(__file__).parent / "fixtures"


def db_digest(store: Store) -> str:
    """A digest of every row of every table: equal digests, unchanged database."""
    h = hashlib.sha256()
    tables = [r[0] for r in store.read("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for t in tables:
        h.update(t.encode())
        for row in store.read(f"SELECT * FROM [{t}] ORDER BY 1, 2"):
            h.update(repr(row).encode())
    return h.hexdigest()


def trace_rows(store: Store, ref: str) -> list[dict[str, Any]]:
    eid = find_experiment(store, ref)["id"]
    return load_trace_rows(store, eid, cache=False).to_dicts()


def spans_of(store: Store, ref: str) -> list[dict[str, Any]]:
    return load_experiment_spans(store, find_experiment(store, ref)["id"])


def tree(spans: list[dict[str, Any]], root_span_id: str) -> list[tuple[int, str, str]]:
    """(depth, type, name) of a trace's spans, depth first, children in start order."""
    kids: dict[str, list[dict[str, Any]]] = {}
    root = None
    for s in spans:
        if s["root_span_id"] != root_span_id:
            continue
        if s["span_parents"]:
            kids.setdefault(s["span_parents"][0], []).append(s)
        else:
            root = s
    out: list[tuple[int, str, str]] = []

    def walk(s: dict[str, Any], d: int) -> None:
        out.append((d, s["span_attributes"].get("type"), s["span_attributes"].get("name")))
        for k in sorted(kids.get(s["span_id"], []), key=lambda x: ((x["metrics"] or {}).get("start") or 0, x["id"])):
            walk(k, d + 1)

    assert root is not None
    walk(root, 0)
    return out


def test_ingest_imports_without_textual() -> None:
    code = (
        "import sys; import evaltui.ingest, evaltui.ingest.inspect, evaltui.ingest.promptfoo, evaltui.ingest.otel,"
        " evaltui.ingest.braintrust, evaltui.ingest.phoenix, evaltui.ingest.langfuse, evaltui.ingest.jsonl;"
        " assert 'textual' not in sys.modules, 'textual imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
