"""Broken inputs of every format: a clear error naming the file and place, and no change at all."""

from __future__ import annotations

import json
import random
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from test_ingest_support import FIXTURES, db_digest

from evaltui.ingest import import_paths
from evaltui.store import Store

BIG = 50 * 1024 * 1024


def _truncate(src: Path, frac: float = 0.6) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        data = src.read_bytes()
        out = tmp / f"truncated{src.suffix}"
        out.write_bytes(data[: int(len(data) * frac)])
        return out
    return make


def _write(name: str, data: bytes | str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        out = tmp / name
        out.write_bytes(data if isinstance(data, bytes) else data.encode())
        return out
    return make


def _edit_json(src: Path, name: str, edit: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        doc = json.loads(src.read_text())
        edit(doc)
        out = tmp / name
        out.write_text(json.dumps(doc))
        return out
    return make


def _edit_lines(src: Path, name: str, line: int, edit: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        lines = src.read_text().splitlines()
        doc = json.loads(lines[line - 1])
        edit(doc)
        lines[line - 1] = json.dumps(doc)
        out = tmp / name
        out.write_text("\n".join(lines) + "\n")
        return out
    return make


def _corrupt_eval_member(tmp: Path) -> Path:
    src = FIXTURES / "inspect/simple_qa.eval"
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo(next(n for n in z.namelist() if n.startswith("samples/")))
    start = info.header_offset + 30 + len(info.filename) + info.compress_size // 3
    data[start : start + 40] = random.Random(0).randbytes(40)  # the same bytes every run
    out = tmp / "corrupt.eval"
    out.write_bytes(bytes(data))
    return out


def _big_jsonl(tmp: Path) -> Path:
    out = tmp / "big.jsonl"
    with open(out, "w") as f:
        f.write('{"input": "small", "output": "ok"}\n')
        f.write('{"input": "' + "x" * BIG + '", "output": "too big"}\n')
    return out


def _big_braintrust(tmp: Path) -> Path:
    out = tmp / "big_bt.jsonl"
    row = {"id": "a", "span_id": "a", "root_span_id": "a", "experiment_id": "e1", "output": "o"}
    with open(out, "w") as f:
        f.write(json.dumps(row) + "\n")
        f.write(json.dumps({**row, "id": "b", "span_id": "b", "root_span_id": "b", "metadata": {"blob": "y" * BIG}})
                + "\n")
    return out


def _set(path: list, value) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        target = doc
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return edit


INSPECT, OTEL, BT, PHX, LF, GEN = (FIXTURES / d for d in ("inspect", "otel", "braintrust", "phoenix", "langfuse",
                                                          "generic"))

# (id, format (None: sniffed), maker, regex the error must match after the file name)
CASES = [
    ("inspect-json-truncated", None, _truncate(INSPECT / "simple_qa.json"), r"(not valid JSON|not closed)"),
    ("inspect-json-header-truncated", None, _truncate(INSPECT / "simple_qa.json", 0.02), r"not valid JSON"),
    ("inspect-json-samples-type", None,
     _edit_json(INSPECT / "simple_qa.json", "samples.json", _set(["samples"], "oops")), r"field 'samples'"),
    ("inspect-json-events-type", None,
     _edit_json(INSPECT / "simple_qa.json", "events.json", _set(["samples", 1, "events"], {"a": 1})),
     r"samples\[1\]: field 'events'"),
    ("inspect-eval-corrupt-member", None, _corrupt_eval_member, r"zip member samples/.*\.json"),
    ("inspect-eval-empty-zip", "inspect", _write("empty.eval", b"PK\x05\x06" + b"\x00" * 18), r"neither header\.json"),
    ("otel-truncated", None, _truncate(OTEL / "otel_export.jsonl", 0.75), r"line 2: not valid JSON"),
    ("otel-span-id", None,
     _edit_lines(OTEL / "otel_export.jsonl", "badid.jsonl", 1,
                 _set(["resourceSpans", 0, "scopeSpans", 0, "spans", 2, "spanId"], "zz")),
     r"line 1, resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[2\]: field 'spanId'"),
    ("otel-spans-type", None,
     _edit_json(OTEL / "otel_traces.json", "spans.json", _set(["resourceSpans", 0, "scopeSpans", 0, "spans"], "x")),
     r"field 'resourceSpans\[0\]\.scopeSpans\[0\]\.spans'"),
    ("braintrust-truncated", None, _truncate(BT / "experiment_export.jsonl", 0.5), r"line 4: not valid JSON"),
    ("braintrust-score-type", None,
     _edit_lines(BT / "experiment_export.jsonl", "scores.jsonl", 4, _set(["scores"], {"ExactMatch": "high"})),
     r"line 4: field 'scores': ExactMatch: 'high' is not a number"),
    ("braintrust-parents-type", None,
     _edit_lines(BT / "experiment_export.jsonl", "parents.jsonl", 2, _set(["span_parents"], "r1-root")),
     r"line 2: field 'span_parents'"),
    ("braintrust-array-truncated", None, _truncate(BT / "experiment_export.json", 0.5),
     r"(JSON array is not closed|not valid JSON)"),
    ("braintrust-50mb-field", None, _big_braintrust, r"line 2: field 'metadata': larger than the 16 MB"),
    ("phoenix-runs-type", "phoenix",
     _edit_json(PHX / "experiment_runs_api.json", "api.json", _set(["runs"], {"a": 1})), r"field 'runs'"),
    ("phoenix-truncated", "phoenix", _truncate(PHX / "experiment_runs.json"), r"(not closed|not valid JSON)"),
    ("langfuse-observations-type", None,
     _edit_json(LF / "dataset_run.json", "lf.json", _set(["traces", 0, "observations"], "nope")),
     r"datasetRunItems\[0\]: field 'trace\.observations'"),
    ("jsonl-score-text", None, _write("s.jsonl", '{"input": 1, "scores": {"a": 0.5}}\n{"input": 2, "scores": {"a": "x"}}\n'),
     r"line 2: field 'scores\.a'"),
    ("jsonl-score-range", None, _write("r.jsonl", '{"input": 1}\n\n{"input": 3, "scores": {"a": 7}}\n'),
     r"line 3: field 'scores'.*outside \[0, 1\]"),
    ("jsonl-not-object", "jsonl", _write("n.jsonl", '{"input": 1}\n[1, 2]\n'), r"line 2: expected a JSON object"),
    ("jsonl-50mb-field", None, _big_jsonl, r"line 2: field 'input': larger than the 16 MB"),
    ("csv-extra-cells", None, _write("x.csv", "input,output\na,b\nc,d,e\n"), r"line 3: 3 cells"),
    ("csv-score-text", None, _write("y.csv", "input,scores.acc\na,0.5\nb,high\n"), r"line 3: field 'scores\.acc'"),
    ("csv-not-utf8", "csv", _write("z.csv", b"input,output\n\xff\xfe,\xc3\x28\n"), r"not UTF-8"),
]
for fmt in ("inspect", "promptfoo", "otel", "braintrust", "phoenix", "langfuse", "jsonl", "csv"):
    CASES.append((f"{fmt}-empty", fmt, _write(f"empty-{fmt}.json", b""), r"empty"))
    CASES.append((f"{fmt}-garbage", fmt, _write(f"garbage-{fmt}.json", bytes(range(256)) * 8),
                  r"(binary|not valid JSON|not UTF-8|not an Inspect|zip)"))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_input_changes_nothing(store: Store, tmp_path: Path, case) -> None:
    _, fmt, make, pattern = case
    # a database that already holds something, so "unchanged" means something
    assert import_paths(store, [FIXTURES / "generic/rows.jsonl"]).ok
    before = db_digest(store)
    path = make(tmp_path)
    report = import_paths(store, [path], format=fmt or "auto")
    assert not report.ok
    (error,) = report.errors
    assert error.startswith(str(path)), error
    assert re.search(pattern, error), error
    assert len(error) < 2000  # one readable line, not a dump of the field
    assert report.files[0].experiments == []
    assert db_digest(store) == before


def test_one_broken_file_does_not_stop_the_others(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": 1}\n{"input": \n')
    report = import_paths(store, [bad, FIXTURES / "generic/rows.jsonl"])
    assert not report.ok
    assert [f.ok for f in report.files] == [False, True]
    assert report.files[1].experiments[0].traces == 2


def test_a_failure_while_writing_a_later_batch_rolls_back_the_whole_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of an import go straight into the file's transaction (no savepoint each):
    a failure in the middle of writing batch 3 must still leave nothing of the file."""
    from evaltui.ingest import _common
    from evaltui.store import writers

    assert import_paths(store, [FIXTURES / "generic/rows.jsonl"]).ok
    before = db_digest(store)
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "input": i, "scores": {"s": 0.5}}) + "\n" for i in range(25)))
    monkeypatch.setattr(_common, "BATCH_SIZE", 10)
    real = writers._record_fields
    calls = []

    def fail_on_third(conn, prepared):  # runs after the batch's spans and trace rows are written
        calls.append(len(prepared.rows))
        if len(calls) == 3:
            raise OSError("disk full")
        real(conn, prepared)

    monkeypatch.setattr(writers, "_record_fields", fail_on_third)
    report = import_paths(store, [path])
    assert not report.ok and "disk full" in report.errors[0]
    assert calls == [10, 10, 5]
    assert db_digest(store) == before
    monkeypatch.setattr(writers, "_record_fields", real)
    again = import_paths(store, [path])
    assert again.ok and again.files[0].experiments[0].traces == 25
