"""Log experiments from Python: ``init``, spans, ``traced``, ``flush``.

A minimal session::

    import evaltui

    exp = evaltui.init("qa", experiment="prompt-v2")
    with exp.start_span("answer", type="task") as span:
        span.log(input={"q": "2+2?"}, output="4", scores={"exact": 1})
    exp.close()  # or exp.flush(); anything left is flushed when the process exits

Nesting: a span started while another span of the same experiment is current (a
``contextvars`` variable) becomes its child. asyncio tasks inherit the current span. Threads
do **not** inherit context variables: in a thread, either pass the parent explicitly
(``exp.start_span(..., parent=span)`` or ``span.start_span(...)``), or run the thread's
function in a copied context (``contextvars.copy_context().run(fn)``; a
``ThreadPoolExecutor`` submit of ``ctx.run`` does the same).

Writing: finished spans are buffered and written in batches with
:func:`evaltui.store.write_spans` (one transaction per batch) when the buffer is full, when
the oldest buffered span is older than ``flush_interval`` seconds at the next log, on
``flush()``/``close()``, and when the process exits (``atexit``).
"""

from __future__ import annotations

import atexit
import contextvars
import dataclasses
import datetime as _dt
import functools
import inspect
import math
import os
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from evaltui.store import (
    NotFound,
    RecordError,
    Store,
    create_experiment,
    find_experiment,
    write_spans,
)
from evaltui.store.records import normalize_scores
from evaltui.store.writers import new_id

__all__ = [
    "NOOP_SPAN",
    "Experiment",
    "Span",
    "current_experiment",
    "current_span",
    "flush",
    "init",
    "traced",
]

F = TypeVar("F", bound=Callable[..., Any])

_CURRENT_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar("evaltui_current_span", default=None)
# The experiment ``traced`` logs root spans to when no span is current: the last ``init``'s.
# A plain global (not a context variable), so that threads see it too.
_current_experiment: Experiment | None = None
# Experiments not yet closed, strongly held so that nothing buffered is lost to the garbage
# collector before the process exits.
_OPEN: dict[int, Experiment] = {}
_OPEN_LOCK = threading.Lock()

_LOG_FIELDS = ("input", "output", "expected", "scores", "metadata", "metrics", "tags", "error")


# -- values -------------------------------------------------------------------------------


def _checked_copy(value: Any, path: str) -> Any:
    """A copy of a JSON value (later changes by the caller do not leak into the log).

    Raises TypeError naming the path of the first value JSON cannot hold, ValueError for a
    non-finite number.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value} is not a finite number (JSON has no NaN or infinity)")
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: key {k!r} is not a string")
            out[k] = _checked_copy(v, f"{path}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_checked_copy(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{path}: a {type(value).__name__} is not JSON-serialisable")


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Best-effort JSON form of an arbitrary value (for arguments and results ``traced`` captures).

    Dataclasses and pydantic models become objects, datetimes ISO text, sets lists; anything
    else its ``repr``. Never raises: a traced function must not fail because its arguments
    are not JSON.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 40:
        return repr(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [_jsonable(v, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        try:
            return _jsonable(dataclasses.asdict(value), depth + 1)
        except Exception:  # asdict deep-copies fields, which some objects refuse
            return repr(value)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        try:
            return _jsonable(dump(mode="json"), depth + 1)
        except Exception:
            pass
    return repr(value)


def error_value(exc: BaseException) -> dict[str, str]:
    """How an exception is recorded in a span's ``error``: message, type and traceback."""
    return {
        "message": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
        "type": type(exc).__name__,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }


def _check_event(event: dict[str, Any]) -> dict[str, Any]:
    """Validate the fields of a ``log`` call; return them copied and normalized."""
    out: dict[str, Any] = {}
    for field, value in event.items():
        if field not in _LOG_FIELDS:
            raise TypeError(f"log() got an unknown field {field!r} (fields: {', '.join(_LOG_FIELDS)})")
        if value is None:
            if field in ("input", "output", "expected", "error"):
                out[field] = None
            continue
        if field == "scores":
            out[field] = normalize_scores(value)
        elif field == "metadata":
            if not isinstance(value, dict):
                raise TypeError(f"metadata must be a dict, not {type(value).__name__}")
            out[field] = _checked_copy(value, "metadata")
        elif field == "metrics":
            if not isinstance(value, dict):
                raise TypeError(f"metrics must be a dict of name -> number, not {type(value).__name__}")
            metrics = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise TypeError(f"metrics: key {k!r} is not a string")
                if v is None:
                    metrics[k] = None
                elif isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise TypeError(f"metrics.{k}: {v!r} is not a number")
                elif not math.isfinite(v):
                    raise ValueError(f"metrics.{k}: {v!r} is not a finite number")
                else:
                    metrics[k] = v
            out[field] = metrics
        elif field == "tags":
            if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
                raise TypeError(f"tags must be a list of strings, not {type(value).__name__}")
            for t in value:
                if not isinstance(t, str):
                    raise TypeError(f"tags: {t!r} is not a string")
            out[field] = list(dict.fromkeys(value))
        elif field == "error" and isinstance(value, BaseException):
            out[field] = error_value(value)
        else:
            out[field] = _checked_copy(value, field)
    return out


# -- spans --------------------------------------------------------------------------------


class Span:
    """One unit of work in a trace. Create with ``Experiment.start_span`` or ``Span.start_span``.

    Use as a context manager (the span is current inside the block and ends at its exit;
    an exception escaping the block is recorded in ``error`` and re-raised), or call
    :meth:`end` yourself.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        name: str,
        type: str,
        parent: Span | None,
        start_time: float | None = None,
        row_id: str | None = None,
        dataset_record_id: str | None = None,
    ):
        self.experiment = experiment
        self.id = row_id or new_id()
        self.span_id = new_id()
        self.root_span_id = parent.root_span_id if parent else self.span_id
        self.span_parents = [parent.span_id] if parent else []
        self.name = name
        self.type = type
        self.dataset_record_id = dataset_record_id
        self._lock = threading.Lock()
        self._fields: dict[str, Any] = {"metrics": {"start": time.time() if start_time is None else start_time}}
        self._ended = False
        self._tokens: list[contextvars.Token[Span | None]] = []

    def __repr__(self) -> str:
        return f"<Span {self.name!r} type={self.type!r} span_id={self.span_id[:8]}>"

    def __bool__(self) -> bool:
        return True

    @property
    def parent_id(self) -> str | None:
        return self.span_parents[0] if self.span_parents else None

    @property
    def ended(self) -> bool:
        return self._ended

    def log(
        self,
        *,
        input: Any = ...,
        output: Any = ...,
        expected: Any = ...,
        scores: dict[str, float | bool | None] | None = None,
        metadata: dict[str, Any] | None = None,
        metrics: dict[str, float | int | None] | None = None,
        tags: list[str] | None = None,
        error: Any = ...,
    ) -> None:
        """Record fields on this span. ``scores``, ``metadata`` and ``metrics`` merge with what
        earlier calls logged; the other fields replace it.

        Raises ValueError/TypeError naming the field when a value is invalid (a score outside
        [0, 1], a metadata key that is not a string, a value JSON cannot hold).
        """
        event: dict[str, Any] = {}
        for field, value in (("input", input), ("output", output), ("expected", expected), ("error", error)):
            if value is not ...:
                event[field] = value
        for field, value in (("scores", scores), ("metadata", metadata), ("metrics", metrics), ("tags", tags)):
            if value is not None:
                event[field] = value
        self._apply(_check_event(event))

    def _apply(self, event: dict[str, Any]) -> None:
        with self._lock:
            for field, value in event.items():
                if field in ("scores", "metadata", "metrics"):
                    self._fields.setdefault(field, {}).update(value)
                else:
                    self._fields[field] = value
            ended = self._ended
        if ended:
            # logged after the end: write the span again (same row id, so it updates)
            self.experiment._enqueue(self._record())

    def start_span(self, name: str | None = None, type: str | None = None, **event: Any) -> Span:
        """A child of this span (in any thread). ``event`` fields are logged on it at once."""
        return self.experiment.start_span(name, type, parent=self, **event)

    def end(self, end_time: float | None = None) -> float:
        """End the span (only the first call counts) and queue it for writing; returns the end time."""
        with self._lock:
            if self._ended:
                return self._fields["metrics"]["end"]
            self._ended = True
            metrics = self._fields.setdefault("metrics", {})
            metrics["end"] = time.time() if end_time is None else end_time
            end = metrics["end"]
        self.experiment._span_ended(self)
        self.experiment._enqueue(self._record())
        return end

    close = end

    def _record(self) -> dict[str, Any]:
        with self._lock:
            rec: dict[str, Any] = {
                "id": self.id,
                "experiment_id": self.experiment.id,
                "span_id": self.span_id,
                "root_span_id": self.root_span_id,
                "span_parents": list(self.span_parents),
                "span_attributes": {"name": self.name, "type": self.type},
                "dataset_record_id": self.dataset_record_id,
                # when the span started, so the table lists traces in the order they ran
                "created": _dt.datetime.fromtimestamp(
                    self._fields["metrics"].get("start") or time.time(), _dt.timezone.utc
                ).isoformat(),
            }
            for field, value in self._fields.items():
                rec[field] = dict(value) if isinstance(value, dict) else value
        return rec

    def __enter__(self) -> Span:
        self._tokens.append(_CURRENT_SPAN.set(self))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self._apply({"error": error_value(exc)})
        token = self._tokens.pop() if self._tokens else None
        try:
            if token is not None:
                _CURRENT_SPAN.reset(token)
        except ValueError:
            # exited in another context than it was entered in (an async generator, say)
            _CURRENT_SPAN.set(None)
        self.end()


class _NoopSpan:
    """What :func:`current_span` returns outside any span: every method does nothing."""

    id = span_id = root_span_id = None
    span_parents: list[str] = []
    name = type = None

    def __repr__(self) -> str:
        return "<NOOP_SPAN>"

    def __bool__(self) -> bool:
        return False

    def log(self, **event: Any) -> None:
        pass

    def start_span(self, name: str | None = None, type: str | None = None, **event: Any) -> _NoopSpan:
        return self

    def end(self, end_time: float | None = None) -> float:
        return time.time()

    close = end

    def __enter__(self) -> _NoopSpan:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


NOOP_SPAN = _NoopSpan()


def current_span() -> Span | _NoopSpan:
    """The span current in this context, or ``NOOP_SPAN`` (falsy; its ``log`` does nothing)."""
    return _CURRENT_SPAN.get() or NOOP_SPAN


def current_experiment() -> Experiment | None:
    """The experiment of the last ``init(..., set_current=True)`` that is still open."""
    return _current_experiment


# -- experiments --------------------------------------------------------------------------


class Experiment:
    """An experiment being logged. Returned by :func:`init`; also a context manager (closes)."""

    def __init__(
        self,
        store: Store,
        info: dict[str, Any],
        *,
        owns_store: bool = False,
        batch_size: int = 500,
        flush_interval: float = 1.0,
    ):
        self.store = store
        self.id: str = info["id"]
        self.name: str = info["name"]
        self.project: str = info["project"]
        self.project_id: str = info["project_id"]
        self.base_experiment_id: str | None = info.get("base_exp_id")
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self._owns_store = owns_store
        self._buffer: list[dict[str, Any]] = []
        self._oldest: float | None = None
        self._buffer_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # batches are written in the order they were taken
        self._open_spans: dict[int, Span] = {}
        self._closed = False
        with _OPEN_LOCK:
            _OPEN[id(self)] = self

    def __repr__(self) -> str:
        return f"<Experiment {self.project}/{self.name} id={self.id}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def start_span(
        self,
        name: str | None = None,
        type: str | None = None,
        *,
        parent: Span | _NoopSpan | None = None,
        start_time: float | None = None,
        id: str | None = None,
        dataset_record_id: str | None = None,
        **event: Any,
    ) -> Span:
        """Start a span; use it as a context manager or call ``end()``.

        The parent is ``parent`` when given, else the current span when it belongs to this
        experiment; otherwise the span starts a new trace. ``type`` defaults to ``eval`` for a
        trace's root and ``function`` below it; ``name`` to ``root`` / ``span``. ``event``
        fields (input, metadata, ...) are logged on the new span at once.
        """
        if self._closed:
            raise RuntimeError(f"experiment {self.project}/{self.name} is closed; cannot start a span")
        if isinstance(parent, _NoopSpan):
            parent = None
        if parent is None:
            cur = _CURRENT_SPAN.get()
            if cur is not None and cur.experiment is self:
                parent = cur
        elif not isinstance(parent, Span):
            raise TypeError(f"parent must be a Span, not {builtins_type(parent).__name__}")
        elif parent.experiment is not self:
            raise ValueError("parent belongs to another experiment; a span's parent must be in the same experiment")
        return self._new_span(name, type, parent, start_time=start_time, row_id=id,
                              dataset_record_id=dataset_record_id, event=event)

    def _new_span(
        self,
        name: str | None,
        type: str | None,
        parent: Span | None,
        *,
        start_time: float | None = None,
        row_id: str | None = None,
        dataset_record_id: str | None = None,
        event: dict[str, Any] | None = None,
    ) -> Span:
        checked = _check_event(event) if event else None
        if name is not None and not isinstance(name, str):
            raise TypeError(f"span name must be a string, not {builtins_type(name).__name__}")
        if type is not None and not isinstance(type, str):
            raise TypeError(f"span type must be a string, not {builtins_type(type).__name__}")
        span = Span(
            self,
            name=name or ("root" if parent is None else "span"),
            type=type or ("eval" if parent is None else "function"),
            parent=parent,
            start_time=start_time,
            row_id=row_id,
            dataset_record_id=dataset_record_id,
        )
        if checked:
            span._apply(checked)
        with self._buffer_lock:
            self._open_spans[id(span)] = span
        return span

    def log(
        self,
        *,
        input: Any = None,
        output: Any = None,
        expected: Any = None,
        scores: dict[str, float | bool | None] | None = None,
        metadata: dict[str, Any] | None = None,
        metrics: dict[str, float | int | None] | None = None,
        tags: list[str] | None = None,
        error: Any = None,
        id: str | None = None,
        dataset_record_id: str | None = None,
    ) -> str:
        """Log a one-span trace and return its row id (logging the same ``id`` again updates it).

        Validates like :meth:`Span.log`; nothing is logged when a field is invalid.
        """
        event = {"input": input, "output": output, "expected": expected, "error": error, "scores": scores,
                 "metadata": metadata, "metrics": metrics, "tags": tags}
        checked = _check_event({k: v for k, v in event.items() if v is not None})
        now = time.time()
        span = self._new_span("root", "eval", None, start_time=now, row_id=id, dataset_record_id=dataset_record_id)
        span._apply(checked)
        span.end((checked.get("metrics") or {}).get("end") or now)
        return span.id

    def _span_ended(self, span: Span) -> None:
        with self._buffer_lock:
            self._open_spans.pop(id(span), None)

    def _enqueue(self, record: dict[str, Any]) -> None:
        now = time.monotonic()
        with self._buffer_lock:
            if self._closed:
                warnings.warn(
                    f"evaltui: span {record['span_attributes'].get('name')!r} ended after experiment "
                    f"{self.project}/{self.name} was closed; it was not written",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return
            self._buffer.append(record)
            if self._oldest is None:
                self._oldest = now
            due = len(self._buffer) >= self.batch_size or now - self._oldest >= self.flush_interval
        if due:
            self.flush()

    def flush(self) -> None:
        """Write every buffered span now (one transaction per batch)."""
        with self._flush_lock:
            with self._buffer_lock:
                batch, self._buffer, self._oldest = self._buffer, [], None
            for i in range(0, len(batch), self.batch_size):
                chunk = batch[i : i + self.batch_size]
                try:
                    write_spans(self.store, chunk)
                except RecordError as e:
                    # our validation should make this impossible; drop only the bad record
                    rest = [r for j, r in enumerate(batch[i:]) if j != e.index]
                    self._requeue(rest)
                    raise
                except BaseException:
                    self._requeue(batch[i:])
                    raise

    def _requeue(self, records: list[dict[str, Any]]) -> None:
        with self._buffer_lock:
            self._buffer[:0] = records
            self._oldest = self._oldest or time.monotonic()

    def close(self) -> None:
        """Write everything (spans still open are written as they are, without an end) and
        stop logging. Closing twice is harmless."""
        global _current_experiment
        if self._closed:
            return
        with self._buffer_lock:
            unfinished = list(self._open_spans.values())
            self._open_spans.clear()
        for span in unfinished:
            self._enqueue(span._record())
        try:
            self.flush()
        finally:
            with self._buffer_lock:
                self._closed = True
            with _OPEN_LOCK:
                _OPEN.pop(id(self), None)
            if _current_experiment is self:
                _current_experiment = None
            if self._owns_store:
                self.store.close()

    def summarize(self, base_experiment_id: str | None = None, *, compare: bool = True) -> dict[str, Any]:
        """Flush, then :func:`evaltui.query.compare.summarize` this experiment."""
        from evaltui.query.compare import summarize

        self.flush()
        return summarize(self.store, self.id, base_experiment_id, compare=compare)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


builtins_type = type  # ``type`` is a parameter name above


# -- init, flush, traced ------------------------------------------------------------------


def repo_info(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """{commit, branch, dirty} of the git repository at ``cwd``, or None outside one (or without git)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "branch": None if branch == "HEAD" else branch, "dirty": dirty}


def _resolve_base(store: Store, project: str, ref: str) -> str:
    try:
        found = find_experiment(store, ref)
    except NotFound:
        found = None
    if found is None and "/" not in ref:
        try:
            found = find_experiment(store, f"{project}/{ref}")
        except NotFound:
            found = None
    if found is None:
        raise NotFound(f"base experiment {ref!r} not found in project {project!r} of {store.path}")
    return found["id"]


def init(
    project: str,
    experiment: str | None = None,
    db: str | os.PathLike[str] | Store | None = None,
    metadata: dict[str, Any] | None = None,
    base_experiment: str | None = None,
    description: str | None = None,
    params: dict[str, Any] | None = None,
    *,
    tags: list[str] | None = None,
    set_current: bool = True,
    batch_size: int = 500,
    flush_interval: float = 1.0,
) -> Experiment:
    """Create an experiment in ``project`` and return its logger.

    - ``experiment``: its name (a taken name gets a ``-2`` suffix); default ``exp-<time>``.
    - ``db``: a database path or an open :class:`Store` (default: ``$EVALTUI_DB``, else the
      user data directory). A store opened here is closed with the experiment.
    - ``base_experiment``: the experiment to compare with, by name in the same project or by id.
    - ``repo_info`` {commit, branch, dirty} is recorded when the working directory is in a git
      repository.
    - ``set_current``: make it the experiment ``traced`` functions log to outside any span.
    """
    global _current_experiment
    if isinstance(db, Store):
        store, owns = db, False
    else:
        store, owns = Store(db), True
    try:
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
            metadata = _checked_copy(metadata, "metadata")
        if params is not None:
            if not isinstance(params, dict):
                raise TypeError(f"params must be a dict, not {type(params).__name__}")
            params = _checked_copy(params, "params")
        base_id = _resolve_base(store, project, base_experiment) if base_experiment is not None else None
        eid = create_experiment(
            store,
            project,
            experiment,
            description=description,
            base_exp_id=base_id,
            metadata=metadata,
            params=params,
            repo_info=repo_info(),
            tags=tags,
            source="sdk",
        )
        info = find_experiment(store, eid)
    except BaseException:
        if owns:
            store.close()
        raise
    exp = Experiment(store, info, owns_store=owns, batch_size=batch_size, flush_interval=flush_interval)
    if set_current:
        _current_experiment = exp
    return exp


def flush() -> None:
    """Write what every open experiment has buffered."""
    with _OPEN_LOCK:
        exps = list(_OPEN.values())
    for exp in exps:
        exp.flush()


@atexit.register
def _close_all_at_exit() -> None:
    with _OPEN_LOCK:
        exps = list(_OPEN.values())
    for exp in exps:
        try:
            exp.close()
        except Exception as e:  # at exit there is no one left to raise to
            print(f"evaltui: could not write experiment {exp.project}/{exp.name}: {e}", file=sys.stderr)


def _span_for_call(name: str, type: str) -> Span | None:
    parent = _CURRENT_SPAN.get()
    if parent is not None and not parent.experiment.closed:
        return parent.experiment._new_span(name, type, parent)
    exp = _current_experiment
    if exp is not None and not exp.closed:
        return exp._new_span(name, type, None)
    return None


def _call_input(sig: inspect.Signature | None, args: tuple, kwargs: dict[str, Any]) -> Any:
    if sig is None:
        return _jsonable({"args": list(args), "kwargs": kwargs})
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError:
        return _jsonable({"args": list(args), "kwargs": kwargs})
    bound.apply_defaults()
    params = dict(bound.arguments)
    first = next(iter(sig.parameters), None)
    if first in ("self", "cls"):
        params.pop(first, None)
    for name, p in sig.parameters.items():
        if p.kind is inspect.Parameter.VAR_KEYWORD and name in params:
            params.update(params.pop(name))
    return _jsonable(params)


@overload
def traced(fn: F, /) -> F: ...
@overload
def traced(
    fn: str | None = None, /, *, name: str | None = None, type: str = "function", log_io: bool = True
) -> Callable[[F], F]: ...


def traced(
    fn: Any = None, /, *, name: str | None = None, type: str = "function", log_io: bool = True
) -> Any:
    """Decorate a function (sync or async) so that each call is a span.

    Bare (``@traced``) or with options (``@traced(name="retrieve", type="tool")``; a string
    as the only argument is the name). The call's arguments are logged as ``input`` (a dict
    by parameter name, ``self``/``cls`` left out) and the return value as ``output``, unless
    ``log_io=False``; an exception is recorded in ``error`` and re-raised. The span is a
    child of the current span, else a root in the current experiment (the last ``init``'s);
    outside both the function is just called.
    """
    if isinstance(fn, str):
        name, fn = fn, None

    def decorate(func: F) -> F:
        span_name = name or getattr(func, "__name__", None) or "function"
        try:
            sig: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            sig = None

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                span = _span_for_call(span_name, type)
                if span is None:
                    return await func(*args, **kwargs)
                with span:
                    if log_io:
                        span._apply({"input": _call_input(sig, args, kwargs)})
                    result = await func(*args, **kwargs)
                    if log_io:
                        span._apply({"output": _jsonable(result)})
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            span = _span_for_call(span_name, type)
            if span is None:
                return func(*args, **kwargs)
            with span:
                if log_io:
                    span._apply({"input": _call_input(sig, args, kwargs)})
                result = func(*args, **kwargs)
                if log_io:
                    span._apply({"output": _jsonable(result)})
                return result

        return wrapper  # type: ignore[return-value]

    if fn is not None:
        if not callable(fn):
            raise TypeError(f"traced() decorates a function, not a {builtins_type(fn).__name__}")
        return decorate(fn)
    return decorate
