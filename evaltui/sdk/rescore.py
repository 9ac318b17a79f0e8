"""Retrospective scoring: run scorers over traces already stored, and keep their results.

Each trace's root span gives the scorer its ``input``, ``output``, ``expected`` and
``metadata`` (the calling convention of ``Eval``: a scorer takes the keyword arguments it
names, sync or async, and returns a number, bool, None, Score, dict or list). Every
(trace, scorer) pair becomes a ``score`` span under the root with a deterministic id, so
running the same scorer again replaces its previous result instead of adding one; the
trace row is recomputed (scores average over all spans of a trace, so a rescore result of
the same name as an ``Eval`` scorer's averages with it). A scorer that raises is recorded
on its span (``error``) and under the root's ``metadata.scorer_errors``, which the trace
row counts; the run goes on. Traces whose task failed (root ``error``) are skipped, as
``Eval`` skips their scorers.

Results are written in batches, each one transaction with one ``rescore`` event per trace
(who, when, before → after). ``cancel`` (a ``threading.Event``) is checked between traces:
what was scored before it was set is written, nothing after.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from evaltui.sdk.eval import _is_async, _score_result, _scorer_kwargs, _scorer_names
from evaltui.sdk.logger import error_value
from evaltui.store import Store, write_spans
from evaltui.store.records import now_iso
from evaltui.store.review import experiment_roots, load_root_spans, load_spans_by_id
from evaltui.store.writers import append_event

__all__ = ["RescoreReport", "ScorerLoadError", "load_user_scorers", "rescore", "rescore_span_id"]

SCORER_ARGS = ("input", "output", "expected", "metadata")


@dataclasses.dataclass
class RescoreReport:
    """What a :func:`rescore` run did."""

    experiment_id: str
    scorers: list[str]  # score span names, one per scorer
    total: int  # traces asked for
    scored: int = 0  # traces whose results were written
    skipped: int = 0  # traces not scored: not found, or the task had failed
    scorer_errors: int = 0  # (trace, scorer) pairs that raised
    first_errors: dict[str, str] = dataclasses.field(default_factory=dict)  # scorer -> first message
    cancelled: bool = False
    spans_written: int = 0
    seconds: float = 0.0
    means: dict[str, float | None] = dataclasses.field(default_factory=dict)  # new scores' means

    def __str__(self) -> str:
        means = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} -" for k, v in self.means.items())
        text = (f"rescored {self.scored} of {self.total} traces with {', '.join(self.scorers)}"
                f" in {self.seconds:.1f} s" + (f"; means: {means}" if means else ""))
        if self.skipped:
            text += f"; {self.skipped} skipped (task failed or trace missing)"
        if self.scorer_errors:
            text += f"; {self.scorer_errors} scorer error(s)"
        if self.cancelled:
            text += "; cancelled"
        return text


def rescore_span_id(experiment_id: str, root_span_id: str, scorer_name: str) -> str:
    """Row id (and span id) of one scorer's result on one trace: the same on every run."""
    digest = hashlib.blake2b(f"{experiment_id}\0{root_span_id}\0{scorer_name}".encode(), digest_size=16)
    return f"rescore-{digest.hexdigest()}"


class _Loop:
    """An event loop in a helper thread for async scorers (works whether or not the caller's
    thread runs a loop of its own); one per run, so clients bound to a loop keep working."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def run(self, coro: Any) -> Any:
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, name="evaltui-rescore", daemon=True)
            self.thread.start()
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result()

    def close(self) -> None:
        if self.loop is not None and self.thread is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join()
            self.loop.close()
            self.loop = None


_CANCELLED = object()


def rescore(
    store: Store,
    experiment_id: str,
    roots: Sequence[str] | None,
    scorers: Iterable[Callable[..., Any]],
    *,
    user: str,
    progress: Callable[[int, int], Any] | None = None,
    cancel: threading.Event | None = None,
    batch_size: int = 500,
    max_concurrency: int = 16,
) -> RescoreReport:
    """Score the traces ``roots`` (None: all) of an experiment with ``scorers``.

    ``progress(done, total)`` is called after each written batch (done counts scored and
    skipped traces). ``cancel`` is checked between traces. Async scorers run concurrently
    (at most ``max_concurrency`` at once) on an event loop of the run's own. Never raises
    for a scorer's failure: see the module docstring. Returns a :class:`RescoreReport`.
    """
    if not isinstance(user, str) or not user.strip():
        raise ValueError(f"rescore needs the user's name, not {user!r}")
    scorers = list(scorers)
    if not scorers:
        raise ValueError("no scorers given")
    for i, s in enumerate(scorers):
        if not callable(s):
            raise TypeError(f"scorers[{i}] must be a function (a scorer), not {type(s).__name__}")
    if batch_size < 1 or max_concurrency < 1:
        raise ValueError("batch_size and max_concurrency must be at least 1")
    names = _scorer_names(scorers)
    kwargs_of = [_scorer_kwargs(s, dict.fromkeys(SCORER_ARGS)).keys() for s in scorers]
    if any(_is_async(s) for s in scorers):
        batch_size = min(batch_size, max_concurrency * 4)  # progress and cancel stay responsive
    todo = list(dict.fromkeys(experiment_roots(store, experiment_id) if roots is None else roots))
    report = RescoreReport(experiment_id, names, len(todo))
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    loop = _Loop()
    started = time.perf_counter()
    try:
        done = 0
        for at in range(0, len(todo), batch_size):
            chunk = todo[at : at + batch_size]
            records = load_root_spans(store, experiment_id, chunk)
            traces: list[tuple[dict[str, Any], list[Any]]] = []
            pending: list[tuple[list[Any], int, Any]] = []
            for root in chunk:
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    break
                rec = records.get(root)
                if rec is None or rec.get("error") is not None:
                    report.skipped += 1
                    done += 1
                    continue
                metadata = {k: v for k, v in (rec.get("metadata") or {}).items() if k != "scorer_errors"}
                available = {"input": rec.get("input"), "output": rec.get("output"),
                             "expected": rec.get("expected"), "metadata": metadata}
                outcomes: list[Any] = []
                for i, (scorer, keys) in enumerate(zip(scorers, kwargs_of, strict=True)):
                    try:
                        raw = scorer(**{k: available[k] for k in keys})
                    except Exception as e:  # noqa: BLE001 - a scorer's failure is data
                        raw = e
                    outcomes.append(raw)
                    if inspect.isawaitable(raw):
                        pending.append((outcomes, i, raw))
                traces.append((rec, outcomes))
            if pending:
                results = loop.run(_await_all([aw for _, _, aw in pending], max_concurrency, cancel))
                for (outcomes, i, _), result in zip(pending, results, strict=True):
                    outcomes[i] = result
                if any(r is _CANCELLED for r in results):
                    report.cancelled = True
                    traces = [t for t in traces if not any(o is _CANCELLED for o in t[1])]
            if traces:
                done += len(traces)
                _write_batch(store, experiment_id, names, traces, user, report, sums, counts)
            if progress is not None:
                progress(done, report.total)
            if report.cancelled:
                break
    finally:
        loop.close()
        report.seconds = time.perf_counter() - started
    report.means = {n: (sums[n] / counts[n]) if counts.get(n) else None for n in sums}
    return report


async def _await_all(items: list[Any], limit: int, cancel: threading.Event | None) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(aw: Any) -> Any:
        async with sem:
            if cancel is not None and cancel.is_set():
                if inspect.iscoroutine(aw):
                    aw.close()  # never started: no "never awaited" warning
                return _CANCELLED
            try:
                return await aw
            except Exception as e:  # noqa: BLE001 - a scorer's failure is data
                return e

    return await asyncio.gather(*(one(aw) for aw in items))


def _outcome(name: str, raw: Any) -> tuple[dict[str, float | None], dict[str, Any] | None] | BaseException:
    if isinstance(raw, BaseException):
        return raw
    try:
        return _score_result(name, raw)
    except Exception as e:  # noqa: BLE001 - a bad return value is the scorer's error
        return e


def _error_view(span: dict[str, Any] | None) -> Any:
    if span is None:
        return None
    if span.get("error") is not None:
        err = span["error"]
        return {"error": err.get("message") if isinstance(err, dict) else err}
    return span.get("scores")


def _write_batch(
    store: Store,
    experiment_id: str,
    names: list[str],
    traces: list[tuple[dict[str, Any], list[Any]]],
    user: str,
    report: RescoreReport,
    sums: dict[str, float],
    counts: dict[str, int],
) -> None:
    """One transaction: the batch's score spans, roots whose scorer_errors change, events."""
    now = now_iso()
    t = time.time()
    spans: list[dict[str, Any]] = []
    error_changes: dict[str, dict[str, str | None]] = {}  # root -> scorer -> message (None: clear)
    afters: dict[str, dict[str, Any]] = {}
    for rec, outcomes in traces:
        root = rec["root_span_id"]
        had = (rec.get("metadata") or {}).get("scorer_errors") or {}
        after: dict[str, Any] = {}
        for name, raw in zip(names, outcomes, strict=True):
            sid = rescore_span_id(experiment_id, root, name)
            span: dict[str, Any] = {
                "id": sid, "experiment_id": experiment_id, "span_id": sid, "root_span_id": root,
                "span_parents": [rec["span_id"]], "span_attributes": {"name": name, "type": "score"},
                "created": now, "metrics": {"start": t, "end": t},
            }
            result = _outcome(name, raw)
            if isinstance(result, BaseException):
                err = error_value(result)
                span["error"] = err
                span["metadata"] = {"rescored_by": user}
                error_changes.setdefault(root, {})[name] = err["message"]
                after[name] = {"error": err["message"]}
                report.scorer_errors += 1
                report.first_errors.setdefault(name, err["message"])
            else:
                scores, md = result
                span["scores"] = scores or None
                span["metadata"] = {**(md or {}), "rescored_by": user}
                if isinstance(had, dict) and name in had:
                    error_changes.setdefault(root, {})[name] = None
                after[name] = scores
                for k, v in scores.items():
                    sums.setdefault(k, 0.0)
                    if v is not None:
                        sums[k] += v
                        counts[k] = counts.get(k, 0) + 1
            spans.append(span)
        afters[root] = after
    with store.transaction() as conn:
        previous = load_spans_by_id(store, [s["id"] for s in spans])
        records = list(spans)
        if error_changes:
            # re-read the roots under the write lock: another reviewer may have changed them
            fresh = load_root_spans(store, experiment_id, list(error_changes))
            for root, changes in error_changes.items():
                rec = fresh.get(root)
                if rec is None:
                    continue
                md = dict(rec.get("metadata") or {})
                errors = dict(md.get("scorer_errors") or {}) if isinstance(md.get("scorer_errors"), dict) else {}
                for name, message in changes.items():
                    if message is None:
                        errors.pop(name, None)
                    else:
                        errors[name] = message
                if errors:
                    md["scorer_errors"] = errors
                else:
                    md.pop("scorer_errors", None)
                if md != (rec.get("metadata") or {}):
                    records.append({**rec, "metadata": md or None})
        write_spans(store, records)
        for rec, _ in traces:
            root = rec["root_span_id"]
            before = {n: _error_view(previous.get(rescore_span_id(experiment_id, root, n))) for n in names}
            append_event(conn, user=user, action="rescore", experiment_id=experiment_id, root_span_id=root,
                         before=before, after=afters[root])
    report.scored += len(traces)
    report.spans_written += len(spans)


# -- user scorers ------------------------------------------------------------------------------


class ScorerLoadError(Exception):
    """A user's scorer file or module that cannot be used; the message says why and where."""


def _looks_like_scorer(fn: Any) -> bool:
    """Takes some of input/output/expected/metadata (or **kwargs) and needs nothing else."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    named = False
    for p in params:
        if p.kind is p.VAR_KEYWORD:
            named = True
        elif p.kind is p.VAR_POSITIONAL:
            continue
        elif p.name in SCORER_ARGS and p.kind is not p.POSITIONAL_ONLY:
            named = True
        elif p.default is p.empty:
            return False
    return named


def _import_file(path: Path) -> Any:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ScorerLoadError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ScorerLoadError(f"{path}: cannot read the file ({e.strerror})") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as e:
        line = (e.text or "").rstrip("\n")
        caret = f"\n    {line}\n    {' ' * max((e.offset or 1) - 1, 0)}^" if line else ""
        raise ScorerLoadError(f"{path}, line {e.lineno}: syntax error: {e.msg}{caret}") from None
    digest = hashlib.blake2b(str(path.resolve()).encode(), digest_size=6).hexdigest()
    name = f"evaltui_user_scorers_{path.stem.replace('-', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ScorerLoadError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    folder = str(path.parent.resolve())
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # so the file can import its neighbours
    try:
        exec(code, module.__dict__)  # noqa: S102 - running the user's own scorer file is the point
    except Exception as e:
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == str(path)]
        where = f", line {frames[-1].lineno}" if frames else ""
        raise ScorerLoadError(f"{path}{where}: error while loading: {type(e).__name__}: {e}") from e
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
    return module


def _import_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(e.name + ".")):
            raise ScorerLoadError(f"no file or module named {name!r}") from None
        raise ScorerLoadError(f"module {name!r}: error while loading: {e}") from e
    except SyntaxError as e:
        raise ScorerLoadError(f"{e.filename}, line {e.lineno}: syntax error: {e.msg}") from None
    except Exception as e:
        raise ScorerLoadError(f"module {name!r}: error while loading: {type(e).__name__}: {e}") from e


def load_user_scorers(path_or_module: str | os.PathLike[str]) -> list[Callable[..., Any]]:
    """The scorers of a user's Python file (``checks.py``) or importable module (``pkg.checks``).

    A ``SCORERS`` list in it, if there is one; else every public function defined in it
    that takes some of ``input, output, expected, metadata`` and nothing else it requires.
    Raises ScorerLoadError: file not found, syntax error (with its line), an error while
    loading it, a bad SCORERS list, or no scorers found.
    """
    text = os.fspath(path_or_module)
    if not isinstance(text, str) or not text.strip():
        raise ScorerLoadError("name a Python file or module with scorers")
    path = Path(text).expanduser()
    is_path = isinstance(path_or_module, os.PathLike) or text.endswith(".py") or os.sep in text or "/" in text
    if is_path or path.exists():
        if not path.exists():
            raise ScorerLoadError(f"{path}: file not found")
        if path.is_dir():
            raise ScorerLoadError(f"{path}: is a directory; name a .py file")
        module, where = _import_file(path), str(path)
    else:
        module, where = _import_module(text), text
    listed = getattr(module, "SCORERS", None)
    if listed is not None:
        if isinstance(listed, (str, bytes, dict)) or not isinstance(listed, Iterable):
            raise ScorerLoadError(f"{where}: SCORERS must be a list of scorer functions, not {type(listed).__name__}")
        found = list(listed)
        for i, s in enumerate(found):
            if not callable(s):
                raise ScorerLoadError(f"{where}: SCORERS[{i}] is a {type(s).__name__}, not a function")
        if not found:
            raise ScorerLoadError(f"{where}: SCORERS is empty")
        return found
    found = [
        obj for name, obj in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(obj)
        and obj.__module__ == module.__name__ and _looks_like_scorer(obj)
    ]
    if not found:
        raise ScorerLoadError(
            f"{where}: no scorers found (define functions taking output, and input, expected or metadata as "
            "they need, or a SCORERS list)"
        )
    return found
