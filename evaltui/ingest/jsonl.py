"""Generic rows: JSONL (one object per line), a JSON array of objects, or CSV.

Columns (or keys): ``input``, ``output``, ``expected``, ``error``, ``tags``, ``id``,
``scores.<name>``, ``metadata.<key>``, ``metrics.<key>`` (JSON rows may also nest them:
``{"scores": {"acc": 1}}``). ``mapping`` renames: ``{"input": "question",
"expected": "answer", "scores.correct": "is_correct"}`` (a JSON source may be a dotted
path: ``"input": "data.question"``). Each row is one trace (a single root span); a row
with an ``id`` keeps that identity across re-imports, else its position does.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import math
import os
import pickle
import signal
import struct
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from evaltui.ingest import _common
from evaltui.ingest._common import (
    IngestError,
    RootRows,
    Sink,
    check_text,
    loads,
)
from evaltui.store.writers import drop_null_columns, gc_paused

FORMAT = "jsonl"
_blake2b = hashlib.blake2b
_FIELDS = ("id", "input", "output", "expected", "error", "tags", "name", "created")
_GROUPS = ("scores", "metadata", "metrics")


def import_file(path: Path, sink: Sink) -> None:
    is_csv = sink.source == "csv" or path.suffix.lower() in (".csv", ".tsv")
    if is_csv:
        sink.source = "csv"
    eid = sink.experiment(
        str(path.resolve()), project="imports", name=path.stem, metadata={"imported_from": path.name}
    )
    mapping = sink.options.mapping or {}
    if _fork_ok(path):
        with gc_paused():
            if _import_forked(path, sink, eid, mapping, is_csv):
                return
    rows = _csv_rows(path, sink) if is_csv else _json_rows(path, sink)
    root_span = sink.root_span
    # Rows are parsed into many small objects without cycles: the cyclic GC would only walk them.
    with gc_paused():
        for where, index, row, size in rows:
            # each row is a one-span trace: encoded straight to its span and trace rows
            root_span(eid, *row_values(row, mapping, eid, index, where=where, csv_cells=is_csv), where, size)


def _json_rows(path: Path, sink: Sink) -> Iterator[tuple[str, int, dict[str, Any], int]]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(65536)
        check_text(head, where="start of file")
        f.seek(0)
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
            doc = loads(f.read(), where="the JSON array")
            if not isinstance(doc, list):
                raise IngestError("expected a JSON array of objects")
            for i, row in enumerate(doc):
                if not isinstance(row, dict):
                    raise IngestError(f"expected an object, got {type(row).__name__}", where=f"item {i}")
                yield f"item {i}", i, row, None  # type: ignore[misc]
            return
        index = n = offset = 0
        parse = orjson.loads
        for raw in f:  # iter_lines, inline: this loop runs once per row of a big file
            n += 1
            offset += len(raw)
            line = raw.strip()
            if not line:
                continue
            where = f"line {n}"
            if b"\x00" in line:
                raise IngestError("binary data, not JSON text", where=where)
            try:
                row = parse(line)
            except orjson.JSONDecodeError:
                row = loads(line, where=where)  # raises the located error
            if type(row) is not dict:
                raise IngestError(f"expected a JSON object, got {type(row).__name__}", where=where)
            yield where, index, row, len(line)
            index += 1
            if index % 1000 == 0:
                sink.progress(offset / max(1, size))


def _csv_rows(path: Path, sink: Sink) -> Iterator[tuple[str, int, dict[str, Any], int]]:
    size = path.stat().st_size
    with open(path, "rb") as fb:
        check_text(fb.read(65536), where="start of file")
    csv.field_size_limit(2**31 - 1)
    with open(path, newline="", encoding="utf-8-sig", errors="strict") as f:
        try:
            sample = f.read(8192)
        except UnicodeDecodeError as e:
            raise IngestError(f"not UTF-8 text ({e.reason} at byte {e.start})", where="start of file") from None
        f.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",\t;|") if sample else csv.excel
        except csv.Error:
            dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
        reader = csv.reader(f, dialect)
        try:
            header = next(reader)
        except StopIteration:
            raise IngestError("the CSV file is empty") from None
        except UnicodeDecodeError as e:
            raise IngestError(f"not UTF-8 text ({e.reason})", where="line 1") from None
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            dup = next(h for h in header if header.count(h) > 1)
            raise IngestError(f"column {dup!r} appears twice", where="line 1")
        index = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError as e:
                raise IngestError(f"not UTF-8 text ({e.reason})", where=f"line {reader.line_num + 1}") from None
            except csv.Error as e:
                raise IngestError(f"malformed CSV ({e})", where=f"line {reader.line_num}") from None
            where = f"line {reader.line_num}"
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                raise IngestError(f"{len(cells)} cells but the header has {len(header)} columns", where=where)
            row = dict(zip(header, cells, strict=False))
            yield where, index, row, sum(len(c) for c in cells)
            index += 1
            if index % 1000 == 0:
                # the byte position of the binary buffer under the text: a text file's own
                # tell() refuses while csv.reader iterates it ("telling position disabled")
                sink.progress(f.buffer.tell() / max(1, size) if not f.closed else 1.0)


def _lookup(row: dict[str, Any], key: str) -> tuple[bool, Any]:
    if key in row:
        return True, row[key]
    value: Any = row
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, None
    return True, value


def _cell(value: Any) -> Any:
    """A CSV cell as a JSON value: JSON objects/arrays/numbers/literals parsed, else the text."""
    if not isinstance(value, str):
        return value
    s = value.strip()
    if s == "":
        return None
    if s[0] in "{[" or s in ("true", "false", "null") or _is_json_number(s):
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError:
            return value
    return value


def _is_json_number(s: str) -> bool:
    try:
        orjson.loads(s)
    except orjson.JSONDecodeError:
        return False
    return s[0] in "-0123456789"


def _number(value: Any, where: str, column: str) -> float | int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return 1 if value else 0
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        s = value.strip().lower()
        if s in ("true", "yes", "pass", "passed"):
            return 1
        if s in ("false", "no", "fail", "failed"):
            return 0
        if s in ("", "null", "none", "nan", "n/a", "na"):
            return None
        try:
            v = float(s)
        except ValueError:
            pass
        else:
            if math.isfinite(v):
                return int(v) if v.is_integer() and "." not in s and "e" not in s else v
    raise IngestError(f"{value!r} is not a number", where=where, field=column)


def _numbers(values: dict[str, Any], where: str, group: str) -> dict[str, Any]:
    """A group of scores or metrics with every value a number (or None): ``values`` itself
    when they all are ints and floats already (it is never changed), else a new dict."""
    for value in values.values():
        t = type(value)
        if t is not float and t is not int:
            break
    else:
        return values
    out = {}
    for key, value in values.items():
        t = type(value)
        out[key] = value if t is float or t is int else _number(value, where, f"{group}.{key}")
    return out


def _plain_parts(row: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Fields and groups of a JSON row read without a mapping (the fast, usual case).

    The row's own dicts are never changed: a group is copied before anything is added to it.
    """
    groups: dict[str, dict[str, Any]] = {}
    for g in _GROUPS:
        value = row.get(g)
        if value is None or value == "":
            groups[g] = {}
        elif type(value) is dict or isinstance(value, dict):
            groups[g] = value
        else:
            raise IngestError(f"must be an object, not {type(value).__name__}", where=where, field=g)
    for k in row:
        if "." in k:  # a dotted column: "scores.acc", "metadata.model"
            for k in row:
                if "." in k:
                    group, key = k.split(".", 1)
                    if group in _GROUPS:
                        groups[group] = {**groups[group], key: row[k]}
            break
    groups["scores"] = _numbers(groups["scores"], where, "scores")
    groups["metrics"] = _numbers(groups["metrics"], where, "metrics")
    return row, groups


def _mapped_parts(
    row: dict[str, Any], mapping: dict[str, str], where: str, csv_cells: bool
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Fields and groups of a CSV row, or of a JSON row read through ``--map``."""
    conv = _cell if csv_cells else (lambda v: v)

    def get(target: str) -> tuple[bool, Any]:
        return _lookup(row, mapping.get(target, target))

    fields: dict[str, Any] = {}
    for name in _FIELDS:
        found, value = get(name)
        if found:
            fields[name] = value if name in ("id", "name", "created") else conv(value)
    groups: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
    for g in _GROUPS:
        found, value = get(g)
        if found and value not in (None, ""):
            value = conv(value) if isinstance(value, str) else value
            if not isinstance(value, dict):
                raise IngestError(f"must be an object, not {type(value).__name__}", where=where, field=g)
            groups[g].update(value)
    # dotted columns, and mapped targets like "scores.correct" -> "is_correct"
    targets = {k: k for k in row if isinstance(k, str) and k.split(".", 1)[0] in _GROUPS and "." in k}
    for target, src in mapping.items():
        if target.split(".", 1)[0] in _GROUPS and "." in target:
            targets[target] = src
    for target, src in targets.items():
        found, value = _lookup(row, src)
        if not found:
            continue
        group, key = target.split(".", 1)
        groups[group][key] = conv(value)
    groups["scores"] = _numbers(groups["scores"], where, "scores")
    groups["metrics"] = _numbers(groups["metrics"], where, "metrics")
    return fields, groups


def row_values(
    row: dict[str, Any],
    mapping: dict[str, str],
    experiment_id: str,
    index: int,
    *,
    where: str,
    csv_cells: bool = False,
) -> tuple:
    """One generic row as the fields of a root span: (id, name, type, input, output,
    expected, error, scores, metadata, metrics, tags, dataset_record_id, created), the
    arguments of ``Sink.root_span`` after the experiment id (see :func:`row_record`)."""
    if mapping or csv_cells:
        fields, groups = _mapped_parts(row, mapping, where, csv_cells)
    else:
        fields, groups = _plain_parts(row, where)
    get = fields.get
    tags = get("tags")
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.replace(";", ",").split(",") if t.strip()]
    elif tags is not None and not isinstance(tags, list):
        raise IngestError("must be a list of strings (or a comma-separated string)", where=where, field="tags")
    rid = get("id")
    has_id = rid is not None and rid != ""
    # stable_id(experiment_id, key), inline
    key = f"{experiment_id}\x1f{rid}" if has_id else f"{experiment_id}\x1frow:{index}"
    span_id = _blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    error = get("error")
    if error == "":
        error = None
    name = get("name")
    if name is not None and name != "":
        label = str(name)
    else:
        label = str(rid) if has_id else f"row {index + 1}"
    created = get("created")
    return (
        span_id,
        label,
        "eval",
        get("input"),
        get("output"),
        get("expected"),
        error,
        groups["scores"] or None,
        groups["metadata"] or None,
        groups["metrics"] or None,
        tags or None,
        str(rid) if has_id else None,
        created if isinstance(created, str) and created else None,
    )


def row_record(
    row: dict[str, Any],
    mapping: dict[str, str],
    experiment_id: str,
    index: int,
    *,
    where: str,
    csv_cells: bool = False,
) -> dict[str, Any]:
    """One generic row as a root span record."""
    (span_id, label, stype, input, output, expected, error, scores, metadata, metrics, tags, dsr,
     created) = row_values(row, mapping, experiment_id, index, where=where, csv_cells=csv_cells)
    return {
        "id": span_id,
        "experiment_id": experiment_id,
        "span_id": span_id,
        "root_span_id": span_id,
        "span_parents": [],
        "span_attributes": {"name": label, "type": stype},
        "input": input,
        "output": output,
        "expected": expected,
        "error": error,
        "scores": scores,
        "metadata": metadata,
        "metrics": metrics,
        "tags": tags,
        "dataset_record_id": dsr,
        "created": created,
    }


# -- big files: parsed in a child process while this one writes ---------------------------
#
# Reading a row (JSON, checks, encoding its span and trace rows) and writing it (SQLite)
# cost about the same. Threads cannot overlap them: sqlite3 takes the GIL back after every
# row it steps, and a busy parsing thread hands it over only every switch interval (5 ms),
# so a writer thread crawls (measured: 100k rows took minutes). A forked child holds no GIL
# of ours: it reads and encodes the rows and sends them in batches through a pipe; this
# process writes them into the file's transaction (a broken row stops the child, and its
# error rolls the whole file back as before).

FORK_MIN_BYTES = 4 * 1024 * 1024  # smaller files: the fork costs more than it saves
FORK_BATCHES = 4  # the child sends batches of this many BATCH_SIZEs
_FRAME = struct.Struct("<cQ")  # kind (B batch, E error, D done), payload length


def _fork_ok(path: Path) -> bool:
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return False
    try:
        return path.stat().st_size >= FORK_MIN_BYTES
    except OSError:
        return False


class _Progress:
    """What the row readers report progress to, in the child (sent along with each batch)."""

    fraction = 0.0

    def progress(self, fraction: float) -> None:
        self.fraction = fraction


def _import_forked(path: Path, sink: Sink, eid: str, mapping: dict[str, str], is_csv: bool) -> bool:
    """Read ``path`` in a forked child and write its rows here; False when no child could be
    forked (nothing was read: the caller reads the file itself)."""
    spec = sink.key_spec(eid)
    try:
        r, w = os.pipe()
    except OSError:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+): the child uses none of them
            pid = os.fork()
    except OSError:  # out of processes or memory
        os.close(r)
        os.close(w)
        return False
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(r)
            gc.disable()
            with os.fdopen(w, "wb", buffering=1 << 20) as out:
                try:
                    _produce(path, out, eid, mapping, is_csv, spec)
                    code = 0
                except BaseException as e:  # the parent reports it (and rolls back)
                    if isinstance(e, IngestError):
                        info = ("ingest", e.problem, e.where, e.field)
                    else:
                        info = ("other", type(e).__name__, str(e))
                    _send(out, b"E", info)
        finally:
            os._exit(code)
    os.close(w)
    finished = False
    try:
        with os.fdopen(r, "rb", buffering=1 << 20) as f:
            read = f.read
            while True:
                head = read(_FRAME.size)
                if len(head) < _FRAME.size:
                    raise IngestError("the process reading the file stopped unexpectedly")
                kind, n = _FRAME.unpack(head)
                payload = read(n)
                if len(payload) < n:
                    raise IngestError("the process reading the file stopped unexpectedly")
                if kind == b"B":
                    rows, span_cols, traces, trace_cols, wheres, names, lookup, fraction = pickle.loads(payload)
                    sink.root_batch(eid, rows, traces, wheres, names, span_cols, trace_cols, lookup)
                    sink.progress(fraction)
                elif kind == b"E":
                    info = pickle.loads(payload)
                    if info[0] == "ingest":
                        raise IngestError(info[1], where=info[2], field=info[3])
                    raise IngestError(f"{info[1]}: {info[2]}")
                else:
                    finished = True
                    return True
    finally:
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        os.waitpid(pid, 0)


def _send(out: Any, kind: bytes, value: Any) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(kind, len(payload)))
    out.write(payload)


def _produce(path: Path, out: Any, eid: str, mapping: dict[str, str], is_csv: bool, spec: Any) -> None:
    """In the child: the rows of ``path`` as batches of one-span traces, as
    :meth:`Sink.root_span` would encode them, sent to the parent through ``out``."""
    tracker = _Progress()
    source = _csv_rows(path, tracker) if is_csv else _json_rows(path, tracker)  # type: ignore[arg-type]
    roots = RootRows()  # the ids sent before are only those that can be stored (see Sink.root_span)
    add = roots.add
    # a small first batch gets the writer going; then big ones (a batch costs the writer a
    # dozen statements besides its rows: 4x bigger batches, 9% less time writing)
    batch_size = max(1, _common.BATCH_SIZE // 2)
    for where, index, row, size in source:
        if add(eid, spec, *row_values(row, mapping, eid, index, where=where, csv_cells=is_csv), where,
               size) >= batch_size:
            _send_roots(out, roots, eid, tracker.fraction)
            out.flush()  # at once: the first batch is small so that the writer starts early
            batch_size = _common.BATCH_SIZE * FORK_BATCHES
    if roots.rows:
        _send_roots(out, roots, eid, tracker.fraction)
    _send(out, b"D", None)


def _send_roots(out: Any, roots: RootRows, eid: str, fraction: float) -> None:
    names = roots.names.get(eid) or (set(), set(), set())
    _send_batch(out, roots.rows, roots.traces, roots.wheres, names, roots.lookup, fraction)
    roots.reset()


def _send_batch(out: Any, rows: list[tuple], traces: list[tuple], wheres: list[str], names: tuple,
                lookup: list[str], fraction: float) -> None:
    # the parent binds fewer NULLs (its share of the work is the bigger one)
    rows, span_cols = drop_null_columns(rows)
    traces, trace_cols = drop_null_columns(traces)
    _send(out, b"B", (rows, span_cols, traces, trace_cols, wheres, names, lookup, fraction))
