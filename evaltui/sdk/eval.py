"""``Eval``: run a task over a dataset, score every output, log it all as an experiment.

Each case becomes one trace (DESIGN.md "Data model")::

    eval   (root: input, output, expected, metadata, tags; error when the task raised)
    ├── task    (the task call: input, output, error)
    ├── score   (one per scorer, named after it: scores {name: value}, metadata, error)
    └── score   ...

The root carries no scores itself; the trace row averages the scorer spans' scores. A task
that raises is recorded (root and task span ``error``) and its scorers are skipped; a scorer
that raises is recorded on its span and under the root's ``metadata.scorer_errors``. Neither
stops the run.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evaltui.query.compare import summarize, summary_text
from evaltui.sdk.logger import Span, _checked_copy, _jsonable, error_value, init
from evaltui.store import Store
from evaltui.store.records import normalize_scores

__all__ = ["CaseResult", "Eval", "EvalAsync", "EvalHooks", "EvalResult", "Score"]

_CASE_KEYS = ("input", "expected", "metadata", "tags", "id")


@dataclasses.dataclass
class Score:
    """What a scorer may return: a named score in [0, 1] (or None: skipped) with metadata
    (an explanation, say) that is logged on the scorer's span."""

    name: str
    score: float | bool | None
    metadata: dict[str, Any] | None = None


@dataclasses.dataclass
class EvalHooks:
    """Passed to a task that takes a second positional parameter: the case around the input."""

    input: Any
    expected: Any
    metadata: dict[str, Any]
    tags: list[str]
    trial_index: int
    span: Span  # the task span: log metrics (tokens, cost) or metadata on it


@dataclasses.dataclass
class CaseResult:
    """The outcome of one case (one trial of it)."""

    input: Any
    expected: Any
    metadata: dict[str, Any]
    tags: list[str]
    trial_index: int
    output: Any = None  # as the task returned it (not the JSON form that was logged)
    scores: dict[str, float | None] = dataclasses.field(default_factory=dict)
    error: BaseException | None = None  # the task's exception
    scorer_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    id: str | None = None  # row id of the trace's root span
    root_span_id: str | None = None


@dataclasses.dataclass
class EvalResult:
    """What ``Eval`` returns. ``summary`` is :func:`evaltui.query.compare.summarize`'s result."""

    experiment_id: str
    experiment_name: str
    project: str
    summary: dict[str, Any]
    results: list[CaseResult]

    def __str__(self) -> str:
        return summary_text(self.summary)


# -- cases and callables --------------------------------------------------------------------


def _load_cases(data: Any) -> list[dict[str, Any]]:
    """The cases of ``data`` (a list, an iterable, or a callable returning one), checked."""
    if callable(data) and not isinstance(data, Iterable):
        data = data()
    if isinstance(data, (dict, str, bytes)) or not isinstance(data, Iterable):
        raise TypeError(f"data must be a list (or iterable, or function returning one) of cases, not {type(data).__name__}")
    cases = []
    for i, case in enumerate(data):
        where = f"data[{i}]"
        if not isinstance(case, dict):
            if hasattr(case, "input"):  # a case object (dataclass, namedtuple, ...)
                case = {k: getattr(case, k) for k in _CASE_KEYS if getattr(case, k, None) is not None}
            else:
                raise TypeError(f"{where}: a case is a dict with 'input' (and expected, metadata, tags, id), "
                                f"not a {type(case).__name__}")
        unknown = [k for k in case if k not in _CASE_KEYS]
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (a case has {', '.join(_CASE_KEYS)})")
        if "input" not in case:
            raise ValueError(f"{where}: a case needs an 'input'")
        metadata = case.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TypeError(f"{where}.metadata must be a dict, not {type(metadata).__name__}")
        tags = case.get("tags") or []
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) for t in tags):
            raise TypeError(f"{where}.tags must be a list of strings")
        cid = case.get("id")
        if cid is not None and not isinstance(cid, str):
            raise TypeError(f"{where}.id must be a string, not {type(cid).__name__}")
        cases.append(
            {
                "input": _checked_copy(case["input"], f"{where}.input"),
                "expected": _checked_copy(case.get("expected"), f"{where}.expected"),
                "metadata": _checked_copy(metadata, f"{where}.metadata"),
                "tags": list(tags),
                "id": cid,
            }
        )
    return cases


def _is_async(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


def _wants_hooks(fn: Any) -> bool:
    """Whether a task takes a second positional parameter (the hooks)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _scorer_kwargs(fn: Any, available: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``available`` (input, output, expected, metadata) the scorer takes."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return available
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return available
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return {k: v for k, v in available.items() if k in names}


def _scorer_name(scorer: Any, index: int) -> str:
    name = getattr(scorer, "name", None)
    if isinstance(name, str) and name:
        return name
    func = getattr(scorer, "func", scorer)  # functools.partial
    name = getattr(func, "__name__", None)
    if isinstance(name, str) and name and name != "<lambda>":
        return name
    if name == "<lambda>" or inspect.isfunction(scorer):
        return f"scorer_{index}"
    return type(scorer).__name__


def _scorer_names(scorers: list[Any]) -> list[str]:
    names: list[str] = []
    for i, s in enumerate(scorers):
        base = _scorer_name(s, i)
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def _score_result(name: str, raw: Any) -> tuple[dict[str, float | None], dict[str, Any] | None]:
    """A scorer's return value as (scores, metadata for its span). Raises on anything else."""

    def one(item: Any) -> tuple[str, Any, Any]:
        if isinstance(item, Score):
            return item.name or name, item.score, item.metadata
        if isinstance(item, dict) and "score" in item:
            extra = {k: v for k, v in item.items() if k not in ("name", "score", "metadata")}
            md = item.get("metadata")
            if extra:
                md = {**(md or {}), **extra}
            return item.get("name") or name, item["score"], md
        raise TypeError(
            f"scorer {name} returned a {type(item).__name__}; a scorer returns a number, bool, None, "
            "Score, dict or list of Scores"
        )

    if raw is None or isinstance(raw, (bool, int, float)):
        return normalize_scores({name: raw}), None
    if isinstance(raw, (Score, dict)) and not (isinstance(raw, dict) and "score" not in raw):
        sname, value, md = one(raw)
        metadata = _checked_copy(md, "metadata") if md else None
        if metadata is not None and not isinstance(metadata, dict):
            metadata = {"value": metadata}
        return normalize_scores({sname: value}), metadata
    if isinstance(raw, dict):  # {name: value, ...}
        return normalize_scores(raw), None
    if isinstance(raw, (list, tuple)):
        scores: dict[str, Any] = {}
        metadata = {}
        for item in raw:
            sname, value, md = one(item)
            scores[sname] = value
            if md:
                metadata[sname] = _checked_copy(md, f"metadata.{sname}")
        return normalize_scores(scores), metadata or None
    one(raw)  # raises with the message
    raise AssertionError("unreachable")


async def _call(fn: Any, args: tuple, kwargs: dict[str, Any], executor: ThreadPoolExecutor) -> Any:
    """Await an async callable; run a sync one in the executor, in a copy of this context
    (so the current span is the parent of what the callable traces)."""
    if _is_async(fn):
        result = fn(*args, **kwargs)
    else:
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(executor, functools.partial(ctx.run, fn, *args, **kwargs))
    if inspect.isawaitable(result):
        result = await result
    return result


# -- running ------------------------------------------------------------------------------


class _Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.bar = None
        if enabled and total and sys.stderr.isatty():
            import click

            self.bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)
            self.bar.__enter__()

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


async def EvalAsync(  # noqa: N802 - named like Eval, its synchronous twin
    project: str,
    data: Any,
    task: Callable[..., Any],
    scores: Iterable[Callable[..., Any]] = (),
    experiment_name: str | None = None,
    trial_count: int = 1,
    max_concurrency: int | None = None,
    metadata: dict[str, Any] | None = None,
    base_experiment: str | None = None,
    db: str | os.PathLike[str] | Store | None = None,
    progress: bool = True,
    *,
    description: str | None = None,
    params: dict[str, Any] | None = None,
    print_summary: bool = True,
) -> EvalResult:
    """:func:`Eval` for code already inside an event loop (``await EvalAsync(...)``)."""
    if not isinstance(trial_count, int) or trial_count < 1:
        raise ValueError(f"trial_count must be a whole number >= 1, not {trial_count!r}")
    if max_concurrency is not None and (not isinstance(max_concurrency, int) or max_concurrency < 1):
        raise ValueError(f"max_concurrency must be a whole number >= 1 or None, not {max_concurrency!r}")
    if not callable(task):
        raise TypeError(f"task must be a function, not {type(task).__name__}")
    scorers = list(scores or ())
    for i, s in enumerate(scorers):
        if not callable(s):
            raise TypeError(f"scores[{i}] must be a function (a scorer), not {type(s).__name__}")
    cases = _load_cases(data)
    names = _scorer_names(scorers)
    task_hooks = _wants_hooks(task)

    store, owns_store = (db, False) if isinstance(db, Store) else (Store(db), True)
    try:
        exp = init(
            project,
            experiment_name,
            db=store,
            metadata=metadata,
            base_experiment=base_experiment,
            description=description,
            params=params,
            set_current=False,
        )
        jobs = [(case, trial) for case in cases for trial in range(trial_count)]
        results: list[CaseResult | None] = [None] * len(jobs)
        workers = max_concurrency or min(32, (os.cpu_count() or 1) + 4)
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evaltui-eval")
        limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        bar = _Progress(progress, len(jobs), f"{project}/{exp.name}")

        async def run_scorer(name: str, scorer: Any, root: Span, available: dict[str, Any]) -> tuple[str, Any]:
            with root.start_span(name, "score") as span:
                try:
                    raw = await _call(scorer, (), _scorer_kwargs(scorer, available), executor)
                    got, md = _score_result(name, raw)
                except Exception as e:
                    span._apply({"error": error_value(e)})
                    return name, e
                span._apply({"scores": got, **({"metadata": md} if md else {})})
                return name, got

        async def run_case(index: int) -> None:
            case, trial = jobs[index]
            result = CaseResult(
                input=case["input"], expected=case["expected"], metadata=case["metadata"],
                tags=case["tags"], trial_index=trial,
            )
            results[index] = result
            root = exp.start_span("eval", "eval", parent=None, dataset_record_id=case["id"])
            root._apply({
                "input": case["input"], "expected": case["expected"],
                **({"metadata": case["metadata"]} if case["metadata"] else {}),
                **({"tags": case["tags"]} if case["tags"] else {}),
            })
            result.id, result.root_span_id = root.id, root.root_span_id
            with root:
                with root.start_span("task", "task") as task_span:
                    task_span._apply({"input": case["input"]})
                    args: tuple = (case["input"],)
                    if task_hooks:
                        args += (EvalHooks(case["input"], case["expected"], case["metadata"], case["tags"],
                                           trial, task_span),)
                    try:
                        output = await _call(task, args, {}, executor)
                    except Exception as e:
                        result.error = e
                        task_span._apply({"error": error_value(e)})
                    else:
                        result.output = output
                        task_span._apply({"output": _jsonable(output)})
                if result.error is not None:
                    root._apply({"error": error_value(result.error)})
                    return
                root._apply({"output": _jsonable(result.output)})
                available = {"input": case["input"], "output": result.output, "expected": case["expected"],
                             "metadata": case["metadata"]}
                outcomes = await asyncio.gather(
                    *(run_scorer(n, s, root, available) for n, s in zip(names, scorers, strict=True))
                )
                for name, got in outcomes:
                    if isinstance(got, BaseException):
                        result.scorer_errors[name] = error_value(got)["message"]
                    else:
                        result.scores.update(got)
                if result.scorer_errors:
                    root._apply({"metadata": {"scorer_errors": dict(result.scorer_errors)}})

        async def guarded(index: int) -> None:
            try:
                if limit is None:
                    await run_case(index)
                else:
                    async with limit:
                        await run_case(index)
            finally:
                bar.step()

        try:
            await asyncio.gather(*(guarded(i) for i in range(len(jobs))))
        finally:
            bar.finish()
            executor.shutdown(wait=False, cancel_futures=True)
            exp.close()
        summary = summarize(store, exp.id)
        if print_summary:
            print(summary_text(summary), flush=True)
        return EvalResult(exp.id, exp.name, exp.project, summary, [r for r in results if r is not None])
    finally:
        if owns_store:
            store.close()


def Eval(  # noqa: N802 - the SDK's conventional name (as in Braintrust)
    project: str,
    data: Any,
    task: Callable[..., Any],
    scores: Iterable[Callable[..., Any]] = (),
    experiment_name: str | None = None,
    trial_count: int = 1,
    max_concurrency: int | None = None,
    metadata: dict[str, Any] | None = None,
    base_experiment: str | None = None,
    db: str | os.PathLike[str] | Store | None = None,
    progress: bool = True,
    *,
    description: str | None = None,
    params: dict[str, Any] | None = None,
    print_summary: bool = True,
) -> EvalResult:
    """Run ``task`` over every case of ``data``, score each output, and log an experiment.

    - ``data``: a list, iterable, or function returning one, of cases
      ``{input, expected?, metadata?, tags?, id?}`` (``id`` is kept as the dataset record id).
    - ``task(input)`` or ``task(input, hooks)`` (:class:`EvalHooks`), sync or async.
    - ``scores``: scorers, sync or async, called with the keyword arguments they name of
      ``input, output, expected, metadata`` (all of them when they take ``**kwargs``). A
      scorer returns a number in [0, 1], a bool, None (skipped), a :class:`Score`, a dict
      (``{"name", "score", "metadata"}``, or ``{score name: value}``), or a list of Scores.
      Its name is its ``name`` attribute, else its function name.
    - ``trial_count``: run each case that many times (separate traces with the same input).
    - ``max_concurrency``: at most that many cases at once (sync tasks and scorers run in a
      thread pool of that size).
    - ``base_experiment``: compare with this experiment (name in the project, or id); else the
      baseline rules of DESIGN.md apply (usually the project's previous experiment).

    Shows a progress bar on stderr when it is a terminal and ``progress`` is true, prints the
    summary (scores' means, and diffs, improvements and regressions against the baseline) on
    stdout unless ``print_summary=False``, and returns an :class:`EvalResult`. Cannot run inside
    a running event loop: there, ``await EvalAsync(...)`` (same arguments).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("Eval() cannot run inside a running event loop; use `await EvalAsync(...)` there")
    return asyncio.run(
        EvalAsync(
            project, data, task, scores, experiment_name, trial_count, max_concurrency, metadata,
            base_experiment, db, progress, description=description, params=params, print_summary=print_summary,
        )
    )

