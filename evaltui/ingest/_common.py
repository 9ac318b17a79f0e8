"""What every importer shares: the write sink, stable ids, time and JSON helpers, errors.

An importer reads one file and hands span records to a :class:`Sink`, which creates (or
finds again) the file's experiments, writes spans in batches inside the file's
transaction, and remembers where in the source each buffered record came from, so that a
record the store rejects is reported by file, line/member and field.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

import orjson

from evaltui.store import (
    NotFound,
    RecordError,
    SpanWriter,
    Store,
    StoreError,
    comparison_key_spec,
    create_experiment,
    encode_root,
    find_experiment,
    prepare_roots,
    update_experiment,
)
from evaltui.store.records import now_iso
from evaltui.store.writers import IdFilter

BATCH_SIZE = 1000
_SECOND = itemgetter(1)
_MISSING = object()
# A single field (input, output, metadata, ...) bigger than this is refused: the store could
# hold it, but every view of the trace would have to decode and paint it.
MAX_FIELD_BYTES = 16 * 1024 * 1024
_SIZED_FIELDS = ("input", "output", "expected", "error", "metadata")


class IngestError(StoreError):
    """A file could not be imported; the message names the file, the place and the field."""

    def __init__(self, problem: str, *, path: str | None = None, where: str | None = None, field: str | None = None):
        self.problem = problem
        self.path = path
        self.where = where
        self.field = field
        super().__init__(self._text())

    def _text(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        head = ", ".join(parts)
        fld = f"field {self.field!r}: " if self.field else ""
        return f"{head}: {fld}{self.problem}" if head else f"{fld}{self.problem}"

    def located(self, path: str | None = None, where: str | None = None) -> IngestError:
        """This error with the file (and place) filled in where they were not known yet."""
        self.path = self.path or path
        self.where = self.where or where
        self.args = (self._text(),)
        return self


def stable_id(*parts: Any) -> str:
    """A 32-hex-digit id derived from ``parts``: the same source gives the same id."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def epoch(value: Any) -> float | None:
    """Seconds since the epoch from an ISO timestamp, epoch seconds/ms/ns, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        v = float(value)
        if not math.isfinite(v):
            return None
        if v > 1e17:  # nanoseconds
            return v / 1e9
        if v > 1e14:  # microseconds
            return v / 1e6
        if v > 1e11:  # milliseconds
            return v / 1e3
        return v
    if isinstance(value, str) and value:
        s = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", s):
            return epoch(float(s))
        try:
            d = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=_dt.timezone.utc)
        return d.timestamp()
    return None


def iso(value: Any) -> str | None:
    """An ISO-8601 UTC timestamp for a time value (see :func:`epoch`), or None."""
    t = epoch(value)
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat()


def slug(text: str) -> str:
    """A name usable in ``project/experiment`` references: no '/', no control characters."""
    s = re.sub(r"[\x00-\x1f/]+", "-", str(text)).strip(" -")
    return s[:120] or "unnamed"


def number(value: Any) -> float | int | None:
    """A finite int/float (bools and numeric strings excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def compact(d: dict[str, Any]) -> dict[str, Any]:
    """The dict without None values (and None when nothing is left)."""
    out = {k: v for k, v in d.items() if v is not None}
    return out or None  # type: ignore[return-value]


def loads(data: bytes | str, *, where: str | None = None) -> Any:
    """Parse JSON, raising IngestError that says where and what went wrong."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise IngestError(f"not valid JSON ({e})", where=where) from None


def iter_lines(f: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """(line number, stripped line, byte offset after the line) of non-blank lines."""
    n = 0
    offset = 0
    for raw in f:
        n += 1
        offset += len(raw)
        line = raw.strip()
        if line:
            yield n, line, offset


def check_text(data: bytes, *, where: str) -> None:
    """Refuse binary garbage with a clear message (NUL bytes never occur in JSON text)."""
    if b"\x00" in data[:65536]:
        raise IngestError("binary data, not text (is this the right file?)", where=where)


@dataclass
class ExperimentResult:
    """What one import did to one experiment."""

    id: str
    ref: str  # "project/name"
    action: str  # "created" | "updated"
    traces: int = 0
    spans: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ref": self.ref, "action": self.action, "traces": self.traces, "spans": self.spans}


@dataclass
class FileResult:
    """What importing one file did (or the error that stopped it: then nothing was written)."""

    path: str
    format: str | None = None
    experiments: list[ExperimentResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False  # a file in a folder that is not in any known format

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def traces(self) -> int:
        return sum(e.traces for e in self.experiments)

    @property
    def spans(self) -> int:
        return sum(e.spans for e in self.experiments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "ok": self.ok,
            "skipped": self.skipped,
            "experiments": [e.to_dict() for e in self.experiments],
            "traces": self.traces,
            "spans": self.spans,
            "warnings": list(self.warnings),
            "error": self.error,
        }


@dataclass
class Options:
    project: str | None = None
    experiment: str | None = None
    mapping: dict[str, str] | None = None


def _add_fields(fields: set[tuple[str, str, str]], experiment_id: str, found: tuple[Any, Any, Any]) -> None:
    """Add the experiment_fields rows of ``found``: its (score, metric, metadata) names."""
    for kind, names in zip(("score", "metric", "metadata"), found, strict=True):
        fields.update((experiment_id, kind, name) for name in names)


class RootRows:
    """One-span traces being gathered into a batch, each encoded at once (``encode_root``):
    their span and trace rows, source positions, the ids that may already be stored (an
    ``IdFilter`` over every id added so far), and per experiment the names of the scores,
    metrics and metadata keys they carry. :meth:`Sink.root_span` fills one in the importing
    process; the forked JSONL/CSV reader fills one in its child and sends its batches."""

    __slots__ = ("lookup", "names", "now", "rows", "seen", "traces", "wheres")

    def __init__(self) -> None:
        self.seen = IdFilter()
        self.reset()

    def reset(self) -> None:
        """Start a new batch (the ids seen so far are kept)."""
        self.rows: list[tuple] = []
        self.traces: list[tuple] = []
        self.wheres: list[str | None] = []
        self.lookup: list[str] = []
        self.names: dict[str, tuple[set[str], set[str], set[str]]] = {}
        self.now = ""  # "created" of rows without one: when the batch's first row came

    def add(self, experiment_id: str, spec: Any, rid: str, name: str | None, stype: str | None, input: Any,
            output: Any, expected: Any, error: Any, scores: Any, metadata: Any, metrics: Any, tags: Any,
            dataset_record_id: Any, created: Any, where: str | None, size_hint: int | None) -> int:
        """Encode and add one trace; the batch's size after it. A bad field raises IngestError
        naming ``where`` and the field."""
        if size_hint is None or size_hint > MAX_FIELD_BYTES:
            _check_sizes({"input": input, "output": output, "expected": expected, "error": error,
                          "metadata": metadata}, where)
        rows = self.rows
        if not rows:
            self.now = now_iso()
        try:
            row, trace = encode_root(len(rows), rid, experiment_id, name, stype, input, output, expected, error,
                                     scores, metadata, metrics, tags, dataset_record_id, created, self.now, spec)
        except RecordError as e:
            raise IngestError(e.problem, where=where, field=e.field) from None
        if self.seen.maybe_seen(rid):
            self.lookup.append(rid)
        rows.append(row)
        self.traces.append(trace)
        self.wheres.append(where)
        if scores or metrics or metadata:
            names = self.names.get(experiment_id)
            if names is None:
                names = self.names[experiment_id] = (set(), set(), set())
            if scores:
                names[0].update(scores)
            if metrics:
                names[1].update(metrics)
            if metadata:
                names[2].update(metadata)
        return len(rows)


class Sink:
    """Where an importer sends experiments and span records (inside the file's transaction)."""

    def __init__(
        self,
        store: Store,
        result: FileResult,
        options: Options,
        *,
        source: str,
        progress: Callable[[float], None] | None = None,
    ):
        self.store = store
        self.result = result
        self.options = options
        self.source = source
        self._progress = progress
        self._buffer: list[dict[str, Any]] = []
        # batches go straight into the file's transaction (any error rolls the whole file
        # back, so a savepoint per batch would only cost time); RecordErrors carry their positions
        self._writer = SpanWriter(store, savepoints=False)
        self._where: list[str | None] = []
        # one-span traces encoded by root_span(), written by flush() like the buffer (made on first use)
        self._roots: RootRows | None = None
        self._specs: dict[str, Any] = {}
        self._by_id: dict[str, ExperimentResult] = {}
        self._names: set[str] = set()
        # experiments created by this file and given only one-span traces so far
        self._roots_only: set[str] = set()
        self._n_experiments = 0

    # -- experiments ------------------------------------------------------------------

    def experiment(
        self,
        key: str,
        *,
        project: str,
        name: str | None,
        label: str | None = None,
        many: bool = False,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        repo_info: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        created: str | None = None,
        experiment_id: str | None = None,
    ) -> str:
        """The id of the experiment for source identity ``key``, created on first import.

        ``--project`` and ``--experiment`` override ``project`` and ``name``; when a file holds
        several experiments (``many``), the given experiment name is suffixed with ``label``.
        Re-importing finds the experiment by its deterministic id and keeps it (and its
        project, name and human reviews) as it is.
        """
        eid = experiment_id or stable_id(self.source, key)
        if eid in self._by_id:
            return eid
        opts = self.options
        project = slug(opts.project or project)
        if opts.experiment:
            name = slug(f"{opts.experiment}-{label}" if many and label else opts.experiment)
        else:
            name = slug(name) if name else None
        try:
            found = find_experiment(self.store, eid)
        except NotFound:
            found = None
        if found is not None:
            res = ExperimentResult(eid, f"{found['project']}/{found['name']}", "updated")
            # newer facts about the run (a log that was still running the first time)
            changes = {"description": description, "metadata": metadata, "params": params,
                       "repo_info": repo_info, "tags": tags}
            update_experiment(self.store, eid, **{k: v for k, v in changes.items() if v is not None})
            if opts.project and found["project"] != project:
                self.warn(
                    f"experiment {res.ref} was imported from this file before; it stays in project "
                    f"{found['project']!r} (delete it to import into {project!r})"
                )
        else:
            try:
                create_experiment(
                    self.store,
                    project,
                    name,
                    description=description,
                    metadata=metadata,
                    params=params,
                    repo_info=repo_info,
                    tags=tags,
                    source=self.source,
                    created=created,
                    experiment_id=eid,
                )
            except StoreError as e:
                raise IngestError(f"cannot create experiment {project}/{name}: {e}") from None
            row = find_experiment(self.store, eid)
            res = ExperimentResult(eid, f"{row['project']}/{row['name']}", "created")
            self._roots_only.add(eid)
        self._by_id[eid] = res
        self.result.experiments.append(res)
        return eid

    # -- spans ------------------------------------------------------------------------

    def span(self, record: dict[str, Any], where: str | None = None, *, size_hint: int | None = None) -> None:
        """Buffer one span record; a full buffer is written (inside the file's transaction)."""
        if size_hint is None or size_hint > MAX_FIELD_BYTES:
            _check_sizes(record, where)
        if self._has_roots():
            self._flush_roots()  # keep the source order: a later write of an id wins
        if self._roots_only:
            self._roots_only.discard(record.get("experiment_id"))
        self._buffer.append(record)
        self._where.append(where)
        if len(self._buffer) >= BATCH_SIZE:
            self.flush()

    def root_span(
        self,
        experiment_id: str,
        rid: str,
        name: str | None,
        stype: str | None,
        input: Any,
        output: Any,
        expected: Any,
        error: Any,
        scores: Any,
        metadata: Any,
        metrics: Any,
        tags: Any,
        dataset_record_id: Any,
        created: Any,
        where: str | None = None,
        size_hint: int | None = None,
    ) -> None:
        """Buffer a one-span trace (a root span with row id = span id = ``rid``).

        The same as :meth:`span` with that record, without building it: the span row and
        its trace row are encoded here at once (``evaltui.store.encode_root``). A bad field
        raises IngestError naming ``where`` and the field.
        """
        if self._buffer:
            self.flush()
        roots = self._roots
        if roots is None:
            roots = self._roots = RootRows()
        if roots.add(experiment_id, self.key_spec(experiment_id), rid, name, stype, input, output, expected, error,
                     scores, metadata, metrics, tags, dataset_record_id, created, where, size_hint) >= BATCH_SIZE:
            self._flush_roots()

    def key_spec(self, experiment_id: str) -> Any:
        """The comparison-key spec that one-span trace rows of this experiment are encoded with."""
        spec = self._specs.get(experiment_id, _MISSING)
        if spec is _MISSING:
            spec = self._specs[experiment_id] = comparison_key_spec(self.store, experiment_id)
        return spec

    def root_batch(
        self,
        experiment_id: str,
        rows: list[tuple],
        traces: list[tuple],
        wheres: list[str | None],
        names: tuple[Any, Any, Any],
        span_cols: tuple[int, ...] | None = None,
        trace_cols: tuple[int, ...] | None = None,
        lookup_ids: list[str] | None = None,
    ) -> None:
        """Write one-span traces encoded elsewhere (by :func:`evaltui.store.encode_root` with
        :meth:`key_spec`, as :meth:`root_span` does): span rows, trace rows, the source
        position of each, and the (score, metric, metadata) names they carry; ``span_cols``
        and ``trace_cols``: the columns the rows hold (``evaltui.store.writers.drop_null_columns``);
        ``lookup_ids``: the ids an ``IdFilter`` over every row given so far says may be stored."""
        if self._buffer or self._has_roots():
            self.flush()
        self.key_spec(experiment_id)
        fields: set[tuple[str, str, str]] = set()
        _add_fields(fields, experiment_id, names)
        self._write_roots(rows, traces, wheres, fields, span_cols, trace_cols, lookup_ids)

    def _has_roots(self) -> bool:
        return self._roots is not None and bool(self._roots.rows)

    def _flush_roots(self) -> None:
        roots = self._roots
        assert roots is not None
        fields: set[tuple[str, str, str]] = set()
        for eid, found in roots.names.items():
            _add_fields(fields, eid, found)
        rows, traces, wheres, lookup = roots.rows, roots.traces, roots.wheres, roots.lookup
        roots.reset()
        self._write_roots(rows, traces, wheres, fields, lookup_ids=lookup)

    def _write_roots(self, rows: list[tuple], traces: list[tuple], wheres: list[str | None],
                     fields: set[tuple[str, str, str]], span_cols: tuple[int, ...] | None = None,
                     trace_cols: tuple[int, ...] | None = None, lookup_ids: list[str] | None = None) -> None:
        self._submit(prepare_roots(rows, traces, self._specs, fields, self._roots_only, span_cols, trace_cols,
                                   lookup_ids), wheres)
        for eid, n in Counter(map(_SECOND, rows)).items():
            res = self._by_id.get(eid)
            if res is not None:
                res.spans += n
                res.traces += n

    def flush(self) -> None:
        if self._has_roots():
            self._flush_roots()
        if not self._buffer:
            return
        batch, wheres = self._buffer, self._where
        self._buffer, self._where = [], []
        self._submit(batch, wheres)
        for rec in batch:
            res = self._by_id.get(rec.get("experiment_id"))
            if res is None:
                continue
            res.spans += 1
            if rec.get("span_id") == (rec.get("root_span_id") or rec.get("span_id")):
                res.traces += 1

    def _submit(self, batch: Any, wheres: list[str | None] | None) -> None:
        try:
            if batch is None:
                self._writer.close()
            else:
                self._writer.submit(batch, tag=wheres)
        except RecordError as e:
            at = getattr(e, "tag", None) or []
            raise IngestError(e.problem, where=at[e.index] if e.index < len(at) else None, field=e.field) from None

    def close(self) -> None:
        """Write everything still buffered or queued (still inside the file's transaction)."""
        self.flush()
        self._submit(None, None)

    def abandon(self) -> None:
        """Stop the writer's helper thread after a failure (the transaction rolls back)."""
        self._writer.abort()

    # -- reporting --------------------------------------------------------------------

    def warn(self, message: str) -> None:
        if message not in self.result.warnings:
            self.result.warnings.append(message)

    def progress(self, fraction: float) -> None:
        if self._progress is not None:
            self._progress(max(0.0, min(1.0, fraction)))


def _check_sizes(record: dict[str, Any], where: str | None) -> None:
    """Refuse a field bigger than MAX_FIELD_BYTES, naming it."""
    for f in _SIZED_FIELDS:
        v = record.get(f)
        if v is None or isinstance(v, (int, float, bool)):
            continue
        if isinstance(v, str):
            big = len(v) > MAX_FIELD_BYTES // 4 and len(v.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES
        else:
            try:
                big = len(orjson.dumps(v)) > MAX_FIELD_BYTES
            except (TypeError, orjson.JSONEncodeError):
                big = False  # the store names the unserialisable place
        if big:
            raise IngestError(
                f"larger than the {MAX_FIELD_BYTES // (1024 * 1024)} MB a field may hold",
                where=where,
                field=f,
            )


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


_ARRAY_TOKENS = re.compile(rb'["\\\[\]{}]')


def iter_json_rows(path: Path, sink: Sink | None = None) -> Iterator[tuple[str, Any, int]]:
    """(where, parsed value, size in bytes) of each row of a JSON array or a JSONL file.

    A JSON array is split element by element over a memory map (the file is never read
    into memory whole); JSONL is read line by line. Raises IngestError naming the item
    or line.
    """
    size = file_size(path)
    if size == 0:
        raise IngestError("the file is empty")
    with open(path, "rb") as f:
        head = f.read(65536)
        check_text(head, where="start of file")
        stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not stripped.startswith(b"["):
            f.seek(0)
            n_rows = 0
            for n, line, offset in iter_lines(f):
                where = f"line {n}"
                if b"\x00" in line:
                    raise IngestError("binary data, not JSON text", where=where)
                yield where, loads(line, where=where), len(line)
                n_rows += 1
                if sink is not None and n_rows % 1000 == 0:
                    sink.progress(offset / size)
            return
        with mapped(f) as m:
            pos = len(head) - len(stripped) + 1  # just past '['
            end = None
            for where, chunk, p in array_elements(m, pos, where_fmt="item {}"):
                if chunk is None:
                    end = p
                    break
                yield where, loads(chunk, where=where), len(chunk)
                if sink is not None:
                    sink.progress(p / size)
            rest = m[end + 1 :].strip() if end is not None else b""
            if rest:
                raise IngestError(f"unexpected data after the JSON array ({rest[:20]!r})")


@contextlib.contextmanager
def mapped(f: IO[bytes]) -> Iterator[Any]:
    """A read-only memory map of an open file, closed on exit when nothing still uses it."""
    import mmap

    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        yield m
    finally:
        try:
            m.close()
        except BufferError:  # a regex scan over it is still referenced (an error unwinding): GC closes it
            pass


def array_elements(m: Any, pos: int, *, where_fmt: str) -> Iterator[tuple[str, bytes | None, int]]:
    """The objects of a JSON array whose '[' is just before ``pos``: (where, bytes, offset).

    Yields (where, None, offset of ']') at the end of the array. Elements must be objects or
    arrays. Raises IngestError for a string element or an array that is never closed.
    """
    depth, in_str, skip, start, index = 1, False, -1, -1, 0
    for mt in _ARRAY_TOKENS.finditer(m, pos):
        p = mt.start()
        if p < skip:
            continue
        c = m[p]
        if in_str:
            if c == 0x5C:  # backslash: the next byte is escaped
                skip = p + 2
            elif c == 0x22:
                in_str = False
            continue
        if c == 0x22:
            if depth == 1:
                raise IngestError("expected an object, got a string", where=where_fmt.format(index))
            in_str = True
        elif c in (0x7B, 0x5B):  # { [
            if depth == 1:
                start = p
            depth += 1
        elif c in (0x7D, 0x5D):  # } ]
            depth -= 1
            if depth == 1:
                where = where_fmt.format(index)
                chunk = m[start : p + 1]
                if b"\x00" in chunk:
                    raise IngestError("binary data, not JSON text", where=where)
                yield where, chunk, p
                index += 1
            elif depth == 0:
                yield where_fmt.format(index), None, p
                return
    raise IngestError(f"the JSON array is not closed: the file ends inside {where_fmt.format(index)} (truncated?)")


def top_level_key(m: Any, key: bytes, limit: int | None = None) -> int | None:
    """Offset of ``"key":`` as a member of the top-level JSON object in ``m``, or None.

    Only the bytes before the key are scanned (to tell a top-level key from the same text
    inside a string or a nested object), so finding a key that follows a small header is cheap.
    """
    needle = b'"' + key + b'"'
    depth, in_str, skip, scanned = 0, False, -1, 0
    found = m.find(needle)
    while found != -1 and (limit is None or found < limit):
        for mt in _ARRAY_TOKENS.finditer(m, scanned, found):
            p = mt.start()
            if p < skip:
                continue
            c = m[p]
            if in_str:
                if c == 0x5C:
                    skip = p + 2
                elif c == 0x22:
                    in_str = False
            elif c == 0x22:
                in_str = True
            elif c in (0x7B, 0x5B):
                depth += 1
            elif c in (0x7D, 0x5D):
                depth -= 1
        scanned = max(found, skip)
        if depth == 1 and not in_str:
            after = m[found + len(needle) : found + len(needle) + 64].lstrip()
            if after.startswith(b":"):
                return found
        found = m.find(needle, found + 1)
    return None
