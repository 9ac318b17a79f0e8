"""``evaltui bench``: a synthetic experiment and the timings of every hot path, side by side.

Figures are medians of repeated runs where a path is cheap enough to repeat, with a
baseline measured in the same run (a bare SQLite insert of the same rows) so that results
from a noisy machine can still be compared by ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_WORDS = (
    "the customer asked about a refund for order shipping delay account password reset "
    "billing invoice plan upgrade cancel subscription tracking number warehouse policy "
    "return window damaged item replacement support agent escalate resolved apology"
).split()


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""
    note: str = ""

    def met(self) -> bool | None:
        """Whether the figure meets its target ("<= 150 ms", ">= 26667 spans/s"), if it has one."""
        if not self.target:
            return None
        op, num = self.target.split()[:2]
        limit = float(num.replace(",", ""))
        return self.value <= limit if op == "<=" else self.value >= limit


def _text(rng: random.Random, size: int) -> str:
    words = []
    n = 0
    while n < size:
        w = rng.choice(_WORDS)
        words.append(w)
        n += len(w) + 1
    return " ".join(words)[:size]


def synthetic_trace(rng: random.Random, experiment_id: str, t: int, spans_per_trace: int, t0: float,
                    score_rng: random.Random | None = None, prefix: str = "t") -> list[dict]:
    """One eval trace: root, task, llm/tool children, score spans; payloads 0.2-2 KB per span.

    ``score_rng``: when given, the scores come from it (``rng`` still advances the same way),
    so that two runs with one ``rng`` seed have the same inputs and different scores.
    ``prefix`` starts the span ids: a second experiment in one database needs its own.
    """
    root = f"{prefix}{t:07d}"
    start = t0 + t * 3.0

    def payload() -> tuple[str, str]:
        size = rng.randint(200, 2000)
        cut = rng.randint(size // 4, 3 * size // 4)
        return _text(rng, cut), _text(rng, size - cut)

    q, a = payload()
    spans = [
        {
            "id": root,
            "experiment_id": experiment_id,
            "span_id": root,
            "span_attributes": {"name": "eval", "type": "eval"},
            "input": {"question": q},
            "output": a,
            "expected": a if rng.random() < 0.5 else None,
            "metadata": {"category": rng.choice(["billing", "shipping", "returns", "account"]),
                         "model": rng.choice(["small", "large"])},
            "metrics": {"start": start, "end": start + 2.5},
            "tags": ["bench"],
            "error": "timeout" if rng.random() < 0.02 else None,
        }
    ]
    n_children = max(spans_per_trace - 1, 0)
    n_scores = min(2, max(n_children - 1, 0))
    task_id = f"{root}.task"
    for k in range(n_children):
        if k == 0:
            sid, parent, name, typ = task_id, root, "task", "task"
        elif k > n_children - 1 - n_scores:
            sid, parent, typ = f"{root}.s{k}", root, "score"
            name = f"score{k - (n_children - n_scores)}"
        else:
            sid, parent = f"{root}.c{k}", task_id
            name, typ = ("llm", "llm") if k % 3 else ("search", "tool")
        i, o = payload()
        span = {
            "id": sid,
            "experiment_id": experiment_id,
            "span_id": sid,
            "root_span_id": root,
            "span_parents": [parent],
            "span_attributes": {"name": name, "type": typ},
            "input": i,
            "output": o,
            "metrics": {"start": start + 0.1 * k, "end": start + 0.1 * k + 0.5},
        }
        if typ == "llm":
            span["metrics"].update(prompt_tokens=len(i) // 4, completion_tokens=len(o) // 4,
                                   tokens=(len(i) + len(o)) // 4, estimated_cost=len(o) * 1e-6)
        if typ == "score":
            value = rng.random()
            if score_rng is not None:
                value = score_rng.random()
            span["scores"] = {name: round(value, 3)}
        spans.append(span)
    return spans


def synthetic_batches(
    experiment_id: str, traces: int, spans_per_trace: int, batch_spans: int = 2000, seed: int = 1,
    score_seed: int | None = None, prefix: str = "t",
) -> Iterator[list[dict]]:
    rng = random.Random(seed)
    score_rng = random.Random(score_seed) if score_seed is not None else None
    t0 = 1_750_000_000.0
    batch: list[dict] = []
    for t in range(traces):
        batch.extend(synthetic_trace(rng, experiment_id, t, spans_per_trace, t0, score_rng, prefix))
        if len(batch) >= batch_spans:
            yield batch
            batch = []
    if batch:
        yield batch


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare_insert_rate(db: Path, batches: list[list[tuple]]) -> float:
    """Spans/s of a plain executemany into an unindexed table: what SQLite alone costs here."""
    return _bare_insert_rates(db, batches)[0]


def _bare_insert_rates(db: Path, batches: list[list[tuple]]) -> tuple[float, float]:
    """(wall-clock, CPU-time) spans/s of the bare insert (see :func:`_bare_insert_rate`)."""
    for stale in db.parent.glob(db.name + "*"):  # a run before this one, in a kept --workdir
        stale.unlink()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id TEXT, root TEXT, attrs TEXT, input TEXT, output TEXT, metrics TEXT)")
    n = 0
    start, cpu = time.perf_counter(), time.process_time()
    for rows in batches:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        n += len(rows)
    rates = n / (time.perf_counter() - start), n / max(time.process_time() - cpu, 1e-9)
    conn.close()
    return rates


def _ratio_note(rate: float, cpu_rate: float, bare: tuple[float, float]) -> str:
    """The bare-insert baseline and our ratio to it, by wall clock and by CPU time.

    On a shared machine the wall-clock ratio moves with whatever else runs between the two
    measurements; CPU time counts only this process's work, so its ratio is the steadier one.
    """
    return (f"bare SQLite insert of the same rows {bare[0]:,.0f} spans/s (ratio {rate / bare[0]:.2f}); "
            f"by CPU time {cpu_rate:,.0f} vs {bare[1]:,.0f} spans/s (ratio {cpu_rate / bare[1]:.2f})")


def bench_store(workdir: Path, traces: int, spans_per_trace: int) -> list[Figure]:
    """Ingest, trace rows, span rows, one 1,000-span trace, size, memory (issue 2)."""
    from evaltui import store as st
    from evaltui.store.records import dumps

    figures: list[Figure] = []
    db_path = workdir / "bench.db"
    store = st.Store(db_path)
    eid = st.create_experiment(store, "bench", "synthetic", source="sdk")

    # Generate first so that only writing is timed (the generator is not what users run).
    # Batches are generated per 1% of the run to keep memory flat on big runs.
    all_batches = synthetic_batches(eid, traces, spans_per_trace)
    write_s = write_cpu = 0.0
    n_spans = 0
    sample_rows: list[list[tuple]] = []
    chunk = max(1, traces * spans_per_trace // 2000 // 100)
    while True:
        pending = [b for _, b in zip(range(chunk), all_batches)]
        if not pending:
            break
        if len(sample_rows) < 20:
            sample_rows.extend([(s["id"], s.get("root_span_id"), dumps(s["span_attributes"]), dumps(s["input"]),
                                 dumps(s["output"]), dumps(s["metrics"])) for s in b] for b in pending[:20])
        t, c = time.perf_counter(), time.process_time()
        n_spans += st.write_span_batches(store, pending)
        write_s += time.perf_counter() - t
        write_cpu += time.process_time() - c
    rate = n_spans / write_s
    t = time.perf_counter()
    store.checkpoint_wait(300)  # what the background checkpointer still had to copy
    checkpoint_s = time.perf_counter() - t
    bare = _bare_insert_rates(workdir / "bare.db", sample_rows)
    full_target = 800_000 / 30
    figures.append(Figure("ingest (validated, with roll-ups)", rate, "spans/s", f">= {full_target:.0f}",
                          f"{n_spans:,} spans in {write_s:.1f} s, batches of 2,000 (WAL checkpointed in the "
                          f"background, done {checkpoint_s:.1f} s after the last batch); "
                          + _ratio_note(rate, n_spans / max(write_cpu, 1e-9), bare)))

    # one trace of 1,000 spans, to time opening a big trace
    big_root = "big-trace"
    big = [{"id": big_root, "experiment_id": eid, "span_id": big_root,
            "span_attributes": {"name": "eval", "type": "eval"}, "input": "big", "metrics": {"start": 0, "end": 1}}]
    big += [{"id": f"{big_root}.{i}", "experiment_id": eid, "span_id": f"{big_root}.{i}", "root_span_id": big_root,
             "span_parents": [big_root], "span_attributes": {"name": f"step {i}", "type": "llm"},
             "input": "x" * 300, "output": "y" * 300, "metrics": {"start": i / 1000, "end": i / 1000 + 0.001}}
            for i in range(999)]
    st.write_spans(store, big)
    store.close()

    # a fresh connection, as a new process would have
    store = st.Store(db_path)
    t = time.perf_counter()
    frame = st.load_trace_rows(store, eid)  # builds the cache file
    first = (time.perf_counter() - t) * 1000
    sql_ms = _median_ms(lambda: st.load_trace_rows(store, eid, cache=False), 3)
    cached_ms = _median_ms(lambda: st.load_trace_rows(store, eid), 5)
    figures.append(Figure("trace rows from SQLite", sql_ms, "ms", "", f"{frame.height:,} rows x {frame.width} columns"
                          f"; first load incl. writing the cache {first:.0f} ms"))
    figures.append(Figure("trace rows (warm cache)", cached_ms, "ms", "<= 150", "columnar frame cache, median of 5"))

    # a review changes one row: the cache serves the rest and re-reads the changed row
    root = frame["root_span_id"][0]
    st.set_review(store, eid, [root], user="bench", review_status="reviewed")
    after_review = _median_ms(lambda: st.load_trace_rows(store, eid), 3)
    figures.append(Figure("trace rows after one review", after_review, "ms", "", "cache + 1 changed row"))

    t = time.perf_counter()
    spans = st.load_span_rows(store, eid)
    span_first = (time.perf_counter() - t) * 1000
    span_cached = _median_ms(lambda: st.load_span_rows(store, eid), 3)
    figures.append(Figure("span rows from SQLite", span_first, "ms", "", f"{spans.height:,} rows, first load"))
    figures.append(Figure("span rows (warm cache)", span_cached, "ms", "", "median of 3"))

    trace_ms = _median_ms(lambda: st.load_trace_spans(store, eid, big_root), 5)
    _STATE.update(db=str(db_path), experiment=eid, big_root=big_root)
    figures.append(Figure("one 1,000-span trace", trace_ms, "ms", "", "all fields, median of 5"))
    store.close()
    size = sum(p.stat().st_size for p in workdir.glob("bench.db*"))
    figures.append(Figure("database size", size / 1e6, "MB", "", f"{size / max(n_spans, 1):.0f} bytes/span"))
    return figures


# what bench_store leaves for the later benchmarks (the database and its big trace)
_STATE: dict[str, str] = {}


def _score_columns(frame: Any) -> list[str]:
    return [c for c in frame.columns if c.startswith("scores.")]


def bench_query(workdir: Path, traces: int, spans_per_trace: int) -> list[Figure]:
    """Filter, sort, group and search the trace rows (issue 4, data side)."""
    import polars as pl

    from evaltui import store as st
    from evaltui.query.filter import filter_frame

    store = st.Store(_STATE["db"])
    frame = st.load_trace_rows(store, _STATE["experiment"])
    store.close()
    scores = _score_columns(frame)
    repeat = 5
    note = f"{frame.height:,} trace rows, median of {repeat}; data side only (the repaint is in the TUI figures)"
    figures: list[Figure] = []

    flt = "scores.score0 < 0.5 and metadata.category = 'billing'" if "scores.score0" in frame.columns \
        else "metadata.category = 'billing'"
    n = filter_frame(frame, flt).height
    figures.append(Figure("filter (score and metadata)", _median_ms(lambda: filter_frame(frame, flt), repeat), "ms",
                          "<= 100", f"{flt!r}: {n:,} rows; {note}"))

    sort_col = scores[0] if scores else "duration"
    figures.append(Figure("sort by a score, nulls last",
                          _median_ms(lambda: frame.sort(sort_col, descending=True, nulls_last=True), repeat), "ms",
                          "<= 100", f"{sort_col} descending; {note}"))

    group_col = "metadata.category"
    aggs = [pl.len().alias("count"), *[pl.col(c).mean() for c in scores]]
    groups = frame.group_by(group_col).agg(aggs).height
    figures.append(Figure("group by metadata.category",
                          _median_ms(lambda: frame.group_by(group_col).agg(aggs), repeat), "ms", "<= 100",
                          f"{groups} groups, count and {len(scores)} score means; {note}"))

    search = "output ilike '%refund%'"
    n = filter_frame(frame, search).height
    figures.append(Figure("text search (output ilike)", _median_ms(lambda: filter_frame(frame, search), repeat),
                          "ms", "<= 100", f"{search!r}: {n:,} rows; {note}"))
    return figures  # the frame goes with this function's locals


def _both_frames() -> tuple[Any, Any]:
    from evaltui import store as st

    store = st.Store(_STATE["db"])
    try:
        return st.load_trace_rows(store, _STATE["experiment"]), st.load_trace_rows(store, _STATE["base"])
    finally:
        store.close()


def bench_compare(workdir: Path, traces: int, spans_per_trace: int) -> list[Figure]:
    """Compare two experiments with the same inputs and different scores (issue 5)."""
    from evaltui import store as st
    from evaltui.query.compare import compare_frames

    store = st.Store(_STATE["db"])
    base = st.create_experiment(store, "bench", "synthetic-base", source="sdk")
    t = time.perf_counter()
    st.write_span_batches(store, synthetic_batches(base, traces, spans_per_trace, score_seed=2, prefix="b"))
    write_s = time.perf_counter() - t
    store.close()
    _STATE["base"] = base
    this, base_frame = _both_frames()
    summary = compare_frames(this, base_frame)
    repeat = 5
    ms = _median_ms(lambda: compare_frames(this, base_frame), repeat)
    ups = sum(e["improvements"] or 0 for e in summary["scores"].values())
    downs = sum(e["regressions"] or 0 for e in summary["scores"].values())
    return [Figure("compare two experiments", ms, "ms", "<= 100",
                   f"{summary['traces']:,} vs {summary['base_traces']:,} traces, {summary['matched']:,} matched, "
                   f"{len(summary['scores'])} scores' diffs ({ups:,} up, {downs:,} down), median of {repeat}; "
                   f"second experiment written in {write_s:.1f} s (not timed)")]


def bench_insights(workdir: Path, traces: int, spans_per_trace: int) -> list[Figure]:
    """Insights of an experiment against its baseline (issue 8)."""
    from evaltui.query.insights import compute_insights

    this, base = _both_frames()
    t = time.perf_counter()
    compute_insights(this, base)
    first = (time.perf_counter() - t) * 1000
    repeat = 3
    ms = _median_ms(lambda: compute_insights(this, base), repeat)
    heights = this.height, base.height
    return [Figure("insights (with a baseline)", ms, "ms", "<= 1000",
                   f"compute_insights on {heights[0]:,} + {heights[1]:,} rows, median of {repeat}; first run {first:.0f} ms")]


def bench_review(workdir: Path, traces: int, spans_per_trace: int) -> list[Figure]:
    """Retrospective scoring and hand review (issue 7)."""
    from evaltui import store as st
    from evaltui.sdk.rescore import rescore
    from evaltui.sdk.scorers import exact_match
    from evaltui.store import review as rv

    # the baseline experiment, so that the TUI figures see the experiment as bench_store left it
    eid = _STATE["base"]
    store = st.Store(_STATE["db"])
    try:
        roots = rv.experiment_roots(store, eid)
        n = min(10_000, len(roots))
        part = roots[:n]
        del roots
        t = time.perf_counter()
        report = rescore(store, eid, part, [exact_match], user="bench")
        rescore_s = time.perf_counter() - t
        figures = [Figure(f"rescore {n:,} traces (exact_match)", rescore_s, "s", "<= 5",
                          f"{n:,} traces scored and written; {report!s:.120}")]

        project = st.ensure_project(store, "bench")
        rv.define_human_score(store, project, {"name": "bench_quality", "kind": "continuous"})
        root = part[0]
        repeat = 21
        toggles = []
        sets = []
        for i in range(repeat):
            t = time.perf_counter()
            rv.toggle_reviewed(store, eid, root, "bench")
            toggles.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            rv.set_human_score(store, eid, root, "bench_quality", 10 + (i * 37) % 90, "bench")  # a new value each time
            sets.append((time.perf_counter() - t) * 1000)
        figures.append(Figure("toggle reviewed (one trace)", statistics.median(toggles), "ms", "",
                              f"store call, median of {repeat}; the repaint is the TUI's"))
        figures.append(Figure("set a human score (one trace)", statistics.median(sets), "ms", "",
                              f"continuous score, store call incl. trace row recompute, median of {repeat}"))
    finally:
        store.close()
    return figures


def _write_generic_jsonl(path: Path, rows: int) -> int:
    rng = random.Random(3)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            out = _text(rng, rng.randint(50, 400))
            f.write(json.dumps({
                "id": f"row{i:07d}",
                "input": _text(rng, rng.randint(50, 400)),
                "output": out,
                "expected": out if rng.random() < 0.5 else _text(rng, 60),
                "scores": {"accuracy": round(rng.random(), 3)},
                "metadata": {"category": rng.choice(["billing", "shipping", "returns", "account"])},
                "metrics": {"tokens": rng.randint(10, 2000)},
            }) + "\n")
    return path.stat().st_size


def _id_values(value: Any, keys: set[str], out: set[str]) -> set[str]:
    """Every string under one of ``keys`` anywhere in ``value``."""
    if isinstance(value, dict):
        for k, x in value.items():
            if k in keys and isinstance(x, str) and x:
                out.add(x)
            _id_values(x, keys, out)
    elif isinstance(value, list):
        for x in value:
            _id_values(x, keys, out)
    return out


_INSPECT_FIXTURE = Path("tests") / "fixtures" / "inspect" / "simple_qa.json"


def _inspect_fixture() -> Path | None:
    """The real Inspect log the bench replicates: in the source tree (or the current directory)."""
    for base in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (base / _INSPECT_FIXTURE).is_file():
            return base / _INSPECT_FIXTURE
    return None


def _inspect_log(path: Path, samples: int, fixture: Path) -> int:
    """An Inspect JSON log of ``samples`` samples: the fixture's samples replicated with new ids."""
    log = json.loads(fixture.read_text(encoding="utf-8"))
    templates = log.pop("samples")
    id_keys = {"id", "uuid", "span_id", "parent_id", "message_id"}
    patterns = []
    for sample in templates:
        ids = _id_values(sample, id_keys, set())
        text = json.dumps(sample)
        patterns.append((text, re.compile("\"(" + "|".join(re.escape(x) for x in sorted(ids, key=len, reverse=True)) + ")\"")))
    log["eval"].get("dataset", {}).update(samples=samples, sample_ids=[])
    head = json.dumps(log)
    with path.open("w", encoding="utf-8") as f:
        f.write(head[:-1] + ', "samples": [')
        for i in range(samples):
            text, rx = patterns[i % len(patterns)]
            f.write(("," if i else "") + rx.sub(lambda m, i=i: f'"{m.group(1)}-{i}"', text))
        f.write("]}")
    return path.stat().st_size


def _jsonl_bare_rows(path: Path, limit: int = 40_000, batch: int = 2000) -> list[list[tuple]]:
    """The first rows of a generic JSONL file as the bare-insert baseline's rows (id, id,
    name, input, output, metrics: the same text a span of the row carries)."""
    from evaltui.store.records import dumps

    out: list[list[tuple]] = []
    rows: list[tuple] = []
    with path.open("rb") as f:
        for i, line in zip(range(limit), f):
            r = json.loads(line)
            rows.append((r["id"], r["id"], dumps({"name": r["id"], "type": "eval"}), dumps(r["input"]),
                         dumps(r["output"]), dumps(r["metrics"])))
            if len(rows) == batch:
                out.append(rows)
                rows = []
    if rows:
        out.append(rows)
    return out


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def bench_import(workdir: Path, traces: int, spans_per_trace: int) -> list[Figure]:
    """Import a generic JSONL file and an Inspect log into a fresh database (issue 6)."""
    import threading

    import psutil

    from evaltui import store as st
    from evaltui.ingest import import_paths
    from evaltui.ingest.jsonl import FORK_MIN_BYTES

    rows = traces
    src = workdir / "import.jsonl"
    size = _write_generic_jsonl(src, rows)
    proc = psutil.Process()
    for stale in workdir.glob("import.db*"):  # a run before this one, in a kept --workdir
        stale.unlink()
    store = st.Store(workdir / "import.db")
    figures: list[Figure] = []
    try:
        def timed_import(path: Path) -> tuple[Any, float, float, float]:
            base = proc.memory_info().rss
            peak = [base]
            done = threading.Event()

            def sample() -> None:
                while not done.wait(0.02):
                    peak[0] = max(peak[0], proc.memory_info().rss)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            # the earlier parts' gigabyte of writes (and the file just written) go to disk
            # now, not while the import is timed (the kernel's flusher would share its cores)
            if hasattr(os, "sync"):
                os.sync()
            t, c, kids = time.perf_counter(), time.process_time(), _children_cpu()
            try:
                report = import_paths(store, [path])
            finally:
                elapsed = time.perf_counter() - t
                # includes the RSS sampler's few wake-ups, and the CPU of the child process
                # that reads a big file while this one writes it
                cpu = time.process_time() - c + _children_cpu() - kids
                done.set()
                sampler.join()
            peak[0] = max(peak[0], proc.memory_info().rss)
            if not report.ok:
                raise RuntimeError(f"import of {path.name} failed: {report.errors}")
            # the import is committed; its WAL is copied into the database file in the
            # background (timed apart, and finished before the next import starts)
            t = time.perf_counter()
            store.checkpoint_wait(300)
            checkpoint_s[0] = time.perf_counter() - t
            return report, elapsed, (peak[0] - base) / 1e6, cpu

        checkpoint_s = [0.0]
        report, elapsed, growth, cpu = timed_import(src)
        rate = report.spans / elapsed
        bare = _bare_insert_rates(workdir / "bare-import.db", _jsonl_bare_rows(src))
        figures.append(Figure("import generic JSONL", rate, "spans/s", ">= 30000",
                              f"{report.traces:,} rows ({size / 1e6:.0f} MB) -> {report.spans:,} spans in "
                              f"{elapsed:.1f} s, then {checkpoint_s[0]:.1f} s of background WAL checkpoint "
                              f"({report.spans / (elapsed + checkpoint_s[0]):,.0f} spans/s counting it); "
                              f"peak RSS growth {growth:.0f} MB; read by a child process while this one "
                              f"writes (files of {FORK_MIN_BYTES // 2**20} MB or more on Linux), CPU time of both; "
                              + _ratio_note(rate, report.spans / max(cpu, 1e-9), bare)))
        src.unlink()

        fixture = _inspect_fixture()
        if fixture is None:  # an installed evaltui without its source tree: no Inspect log to copy
            print("bench: skipping the Inspect import (run from the source tree for it)", file=sys.stderr)
            return figures
        samples = max(1, traces // 10)
        log = workdir / "inspect-log.json"
        size = _inspect_log(log, samples, fixture)
        report, elapsed, growth, _ = timed_import(log)
        figures.append(Figure("import Inspect JSON log", report.spans / elapsed, "spans/s", "",
                              f"{report.traces:,} samples ({size / 1e6:.0f} MB, the simple_qa fixture replicated) -> "
                              f"{report.spans:,} spans in {elapsed:.1f} s, then {checkpoint_s[0]:.1f} s of "
                              f"background WAL checkpoint; peak RSS growth {growth:.0f} MB"))
        log.unlink()
    finally:
        store.close()
    return figures


def _bench_config() -> str:
    """A config file of the bench's own for the TUI processes (the user's is never read or written)."""
    if not _CONFIG_DIR:
        import atexit

        _CONFIG_DIR.append(tempfile.mkdtemp(prefix="evaltui-bench-config-"))
        atexit.register(shutil.rmtree, _CONFIG_DIR[0], True)
    return os.path.join(_CONFIG_DIR[0], "config.toml")


_CONFIG_DIR: list[str] = []
_TUI_WARM: list[bool] = []  # the bytecode of the TUI's modules is written (once per bench process)


def _tui_env() -> dict[str, str]:
    """The environment of the TUI processes the bench starts (each with ``-P``: the installed
    evaltui, not a source tree in the current directory, which has no styles package): a config
    of their own, and bytecode cached as an installed package has it. With PYTHONDONTWRITEBYTECODE
    set (as in some dev shells) an editable install compiled evaltui's modules from source in
    every process (~100 ms); the first call writes it once, before anything is timed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["EVALTUI_CONFIG"] = _bench_config()
    if not _TUI_WARM:
        subprocess.run([sys.executable, "-P", "-c", "import evaltui.bench_tui, evaltui.tui.app"], check=False,
                       capture_output=True, timeout=600, env=env)
        _TUI_WARM.append(True)
    return env


def _run_tui(*args: str) -> dict:
    env = _tui_env()
    env["EVALTUI_BENCH_SPAWNED_AT"] = repr(time.time())  # the child's figures count from here
    proc = subprocess.run([sys.executable, "-P", "-m", "evaltui.bench_tui", *args], check=False, capture_output=True,
                          text=True, timeout=600, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"evaltui.bench_tui {args[0]} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


_EMPTY_APP = """\
from textual.app import App
from textual.widgets import Static
class Empty(App):
    def compose(self):
        yield Static("empty app painted")
Empty().run()
"""


def _pty_first_write(argv: list[str], marker: bytes, size: tuple[int, int] = (160, 48), limit: float = 30.0) -> float:
    """Seconds from spawning ``argv`` on a pseudo-terminal (what a user's terminal is) until ``marker``
    has been written to it, as the user's terminal receives it; the process is then killed."""
    import fcntl
    import select
    import signal
    import struct
    import termios

    env = _tui_env()
    env["TERM"] = "xterm-256color"
    master, slave = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    # Popen without preexec_fn can vfork: the time is not that of copying this (big) process
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    try:
        seen = b""
        while time.perf_counter() - t0 < limit:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # Linux: the program exited and closed its side
                break
            if not chunk:  # the same, elsewhere
                break
            seen = seen[-len(marker):] + chunk
            if marker in seen:
                return time.perf_counter() - t0
        raise RuntimeError(f"wrote no {marker!r} in {limit:.0f} s (exit status {proc.poll()})")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(master)


def bench_tui_terminal(runs: int = 5) -> list[Figure]:
    """The first rows written to a real (pseudo-)terminal by a fresh process, beside an empty Textual app."""
    if not hasattr(os, "openpty"):  # (Windows)
        return []
    open_app = (f"from evaltui.tui.app import EvalTUI\n"
                f"EvalTUI({_STATE['db']!r}, experiment={_STATE['experiment']!r}).run()\n")
    empty, app = [], []
    try:
        for _ in range(runs):  # interleaved, so both see the same machine
            empty.append(_pty_first_write([sys.executable, "-P", "-c", _EMPTY_APP], b"empty app painted") * 1000)
            app.append(_pty_first_write([sys.executable, "-P", "-c", open_app], b'{"question"') * 1000)
    except (OSError, RuntimeError) as e:  # the other TUI figures stand; this one says why it is missing
        return [Figure("TUI first rows on a terminal", float("nan"), "ms", "<= 500", f"not measured: {e}")]
    e, a = statistics.median(empty), statistics.median(app)
    return [Figure("TUI first rows on a terminal", a, "ms", "<= 500",
                   f"spawn in a 160x48 pseudo-terminal to the first table row written to it (what a user waits "
                   f"for), median of {runs} (min {min(app):.0f}); empty Textual app's first frame {e:.0f} ms "
                   f"(min {min(empty):.0f}), difference {a - e:.0f} ms")]


def bench_tui(workdir: Path, traces: int, spans_per_trace: int, runs: int = 3) -> list[Figure]:
    """The TUI in fresh processes: first paint, cursor CPU, opening a 1,000-span trace, RSS (issue 3)."""
    return _bench_tui_headless(runs) + bench_tui_terminal()


def _bench_tui_headless(runs: int) -> list[Figure]:
    empty: list[dict] = []
    app: list[dict] = []
    lines: list[dict] = []
    builtin: list[dict] = []
    for _ in range(runs):  # interleaved, so a figure and its baselines see the same machine
        empty.append(_run_tui("empty"))
        app.append(_run_tui("evaltui", _STATE["db"], _STATE["experiment"], _STATE["big_root"]))
        lines.append(_run_tui("lineapi"))
        builtin.append(_run_tui("datatable"))

    def med(runs_: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs_)

    e_first, a_first = med(empty, "first_paint_s") * 1000, med(app, "first_paint_s") * 1000
    e_cpu, a_cpu = med(empty, "moves_cpu_s") * 1000, med(app, "moves_cpu_s") * 1000
    e_frame, a_frame = med(empty, "first_frame_s") * 1000, med(app, "first_frame_s") * 1000
    e_fcpu, a_fcpu = med(empty, "first_frame_cpu_s") * 1000, med(app, "first_frame_cpu_s") * 1000
    rows = app[0]["rows"]
    return [
        Figure("TUI first painted table", a_frame, "ms", "<= 500",
               f"fresh process to the first frame showing rows (the first page; the rest loads after), "
               f"160x48, median of {runs}; empty Textual app's first frame {e_frame:.0f} ms "
               f"(difference {a_frame - e_frame:.0f} ms); CPU by then {a_fcpu:.0f} ms vs {e_fcpu:.0f} ms; "
               f"polars imported by then in {sum(bool(r.get('polars_at_first_frame')) for r in app)} "
               f"of {runs} runs (it loads after the first page is painted)"),
        Figure("TUI table painted and idle", a_first, "ms", "",
               f"fresh process to rows painted and the app idle (Pilot.pause, what session 2 reported as "
               f"first paint: it waits for the rest of the rows too); empty app {e_first:.0f} ms"),
        Figure("TUI all rows loaded", med(app, "all_rows_s") * 1000, "ms", "", f"{rows:,} rows in the table"),
        Figure("TUI 50 moves + jump to last (CPU)", a_cpu, "ms", f"<= {e_cpu * 1.5:.0f}",
               f"empty Textual app, same keys: {e_cpu:.0f} ms (target = empty + 50%); ratio {a_cpu / e_cpu:.2f}; "
               f"a one-widget Line-API app repainting 2 lines a key: {med(lines, 'moves_cpu_s') * 1000:.0f} ms "
               f"(ratio {med(lines, 'moves_cpu_s') * 1000 / e_cpu:.2f}: Pilot.press's waits cost more than the "
               f"keys once a key repaints); Textual's DataTable (1,000 rows): "
               f"{med(builtin, 'moves_cpu_s') * 1000:.0f} ms"),
        Figure("TUI 50 moves + last, keys as sent (CPU)", med(app, "moves_sent_cpu_s") * 1000, "ms",
               f"<= {med(empty, 'moves_sent_cpu_s') * 1500:.0f}",
               f"without Pilot.press's per-key wait on every widget; empty app "
               f"{med(empty, 'moves_sent_cpu_s') * 1000:.0f} ms; ratio "
               f"{med(app, 'moves_sent_cpu_s') / med(empty, 'moves_sent_cpu_s'):.2f}; one-widget Line-API app "
               f"{med(lines, 'moves_sent_cpu_s') * 1000:.0f} ms (evaltui / Line-API "
               f"{med(app, 'moves_sent_cpu_s') / med(lines, 'moves_sent_cpu_s'):.2f}); Textual's DataTable "
               f"(1,000 rows) {med(builtin, 'moves_sent_cpu_s') * 1000:.0f} ms" + _moves_split(empty, app, lines)),
        Figure("TUI open a 1,000-span trace", med(app, "open_trace_frame_ms"), "ms", "<= 100",
               f"{app[0]['trace_spans']} spans, from open to the first frame showing the tree (load in a worker, "
               f"pane laid out and painted); settled (Pilot.pause, session 2's figure) "
               f"{med(app, 'open_trace_ms'):.0f} ms, CPU by then {med(app, 'open_trace_cpu_ms'):.0f} ms"),
        Figure("TUI RSS", med(app, "rss_mb"), "MB", "<= 300", f"empty Textual app {med(empty, 'rss_mb'):.0f} MB"),
        Figure("TUI Analyze screen: A to findings", med(app, "analyze_screen_ms"), "ms", "<= 1000",
               f"insights computed directly: {med(app, 'analyze_call_ms'):.0f} ms; longest event-loop stall"
               f" meanwhile {med(app, 'analyze_stall_ms'):.0f} ms (the screen stays responsive)"),
    ]


def _moves_split(empty: list[dict], app: list[dict], lines: list[dict]) -> str:
    """Per key CPU (median ms) of the keys-as-sent figure: a j, a j that scrolls a row, G."""
    def key(runs_: list[dict], kind: str) -> str:
        values = [r["moves_sent_split_ms"][kind] for r in runs_ if (r.get("moves_sent_split_ms") or {}).get(kind)]
        if not values:
            return "-"
        n = statistics.median(r["moves_sent_split_ms"][f"{kind}_n"] for r in runs_ if r.get("moves_sent_split_ms"))
        return f"{statistics.median(values):.1f} ms x{n:.0f}"

    if not all(r.get("moves_sent_split_ms") for r in (*empty, *app, *lines)):
        return ""
    return (f"; per key (CPU, median): evaltui j {key(app, 'j')}, j scrolling a row {key(app, 'j_scroll')}, "
            f"G {key(app, 'G')}; Line-API app j {key(lines, 'j')}, scrolling {key(lines, 'j_scroll')}, "
            f"G {key(lines, 'G')}; empty app j {key(empty, 'j')}")


def bench_tui_arrange(workdir: Path, traces: int, spans_per_trace: int, runs: int = 3) -> list[Figure]:
    """The TUI's filter, sort, group and search: key press to repainted table (issue 4)."""
    results = [_run_tui("arrange", _STATE["db"], _STATE["experiment"]) for _ in range(runs)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    rows = results[0]["rows"]

    def note(op: str, what: str) -> str:
        return (f"{what}; key event to the frame written, no Pilot waits; CPU {med(op + '_cpu_ms'):.0f} ms (all "
                f"threads); baseline, one cursor move: {med('move_ms'):.1f} ms (CPU {med('move_cpu_ms'):.1f} ms); "
                f"median of {runs}")

    return [
        Figure("TUI filter: key to repainted table", med("filter_ms"), "ms", "<= 100",
               note("filter", f"{rows:,} rows -> {results[0]['filtered_rows']:,}")),
        Figure("TUI sort: key to repainted table", med("sort_ms"), "ms", "<= 100",
               note("sort", "by a score, descending")),
        Figure("TUI group: key to repainted table", med("group_ms"), "ms", "<= 100",
               note("group", "by metadata.category, with means")),
        Figure("TUI search: key to repainted table", med("search_ms"), "ms", "<= 100",
               note("search", f"{results[0]['search_hits']:,} rows match 'damaged item', searched while typed "
                    f"(enter shows the matches found meanwhile); pasted and entered at once (the whole "
                    f"search after enter): {med('search_cold_ms'):.0f} ms")),
    ]


async def _review_tui_timings(db: str, experiment: str, repeat: int) -> dict[str, Any]:
    """In a headless app at 160x48: a cursor move, r, and a hand score, key to repainted row."""
    from evaltui.store import review as rv
    from evaltui.tui.app import EvalTUI
    from evaltui.tui.widgets.experiment_table import ExperimentTable

    config = Path(tempfile.mkdtemp()) / "config.toml"
    config.write_text('user = "bench"\n')
    app = EvalTUI(db, experiment=experiment, config_path=config)
    out: dict[str, Any] = {"move": [], "review": [], "score": []}

    async def until(check: Callable[[], bool]) -> None:
        while not check():
            await asyncio.sleep(0.001)
        await pilot.pause()  # painted

    async with app.run_test(size=(160, 48)) as pilot:
        await until(lambda: bool(app.screen.query(ExperimentTable)) and app.screen.complete.get("traces", False))
        await pilot.pause(0.5)
        screen = app.screen
        table = screen.query_one(ExperimentTable)
        out["rows"] = table.row_count
        project_id = screen.experiment["project_id"]
        rv.define_human_score(app.store, project_id, {"name": "bench_hand", "kind": "continuous"})

        def cell(key: str) -> Any:
            return table.current_row().get(key)

        # from the key's action to the screen updated (pilot.pause(0) waits for the screen's
        # messages and paints); Pilot's own waits around a key press are left out
        for i in range(repeat):
            await pilot.pause()
            t = time.perf_counter()
            table.action_cursor_down() if i % 2 == 0 else table.action_cursor_up()
            await pilot.pause(0)
            out["move"].append((time.perf_counter() - t) * 1000)
            before = cell("review_status")
            t = time.perf_counter()
            screen.action_toggle_review()
            while cell("review_status") == before:
                await asyncio.sleep(0.0005)
            await pilot.pause(0)
            out["review"].append((time.perf_counter() - t) * 1000)
            value = 10 + (i * 37) % 90
            t = time.perf_counter()
            screen._save_human_scores(screen._current_root(), {"bench_hand": value})
            while cell("scores.bench_hand") is None or abs(cell("scores.bench_hand") - value / 100) > 1e-9:
                await asyncio.sleep(0.0005)
            await pilot.pause(0)
            out["score"].append((time.perf_counter() - t) * 1000)
    return out


def bench_review_tui(workdir: Path, traces: int, spans_per_trace: int, repeat: int = 11) -> list[Figure]:
    """Review in the TUI (issue 7): r and a hand score, key to repainted row, beside a cursor move."""
    runs = asyncio.run(_review_tui_timings(_STATE["db"], _STATE["experiment"], repeat))
    move = statistics.median(runs["move"])
    note = f"{runs['rows']:,} rows, 160x48, median of {repeat}; a cursor move (j) {move:.1f} ms"
    return [
        Figure("TUI r: review to repainted row", statistics.median(runs["review"]), "ms", "<= 50",
               note + f", ratio {statistics.median(runs['review']) / move:.1f}"),
        Figure("TUI hand score to repainted row", statistics.median(runs["score"]), "ms", "<= 50",
               note + "; store write + changed rows re-read"),
    ]


def bench_tui_compare(workdir: Path, traces: int, spans_per_trace: int, runs: int = 3) -> list[Figure]:
    """The TUI comparing two experiments: diff mode and layouts, key to repaint (issue 5)."""
    got = [_run_tui("compare", _STATE["db"], _STATE["experiment"], _STATE["base"]) for _ in range(runs)]
    for r in got:
        if "move_ms" not in r:
            raise RuntimeError(f"evaltui.bench_tui compare gave no timings: {str(r)[:500]}")

    def med(key: str) -> float:
        return statistics.median(r[key] for r in got)

    move = med("move_ms")
    base = f"median of {runs} fresh processes, 160x48; a cursor move (j) to repaint in the same run: {move:.0f} ms"
    figures = [
        Figure("TUI compare: match + deltas shown", med("compare_ms"), "ms", "",
               f"{got[0]['rows']:,} rows joined with their deltas; {base}"),
        Figure("TUI diff mode on (d)", med("diff_on_ms"), "ms", "<= 100", f"diff computed and painted; {base}"),
        Figure("TUI diff mode off (d)", med("diff_off_ms"), "ms", "<= 100", base),
        Figure("TUI diff mode sub-rows on (d)", med("diff_rows_on_ms"), "ms", "<= 100",
               f"key to the repaint showing {got[0]['sub_rows']} sub-row(s) under each row (the word diff follows"
               f" from a worker); off {med('diff_rows_off_ms'):.0f} ms; {base}"),
        Figure("TUI order by regressions (O), grouped", med("order_ms"), "ms", "",
               f"score columns reordered and the rows regrouped ({got[0]['groups']} groups by category) by"
               f" regressions; baseline, grouping the same compared rows by category: {med('group_ms'):.0f} ms"
               f" (ratio {med('order_ms') / med('group_ms'):.2f}); {base}"),
    ]
    from evaltui.tui.screens.compare_layouts import LAYOUT_NAMES, LAYOUTS

    plain = f"a plain screen (a line and a footer) in the same run: push {med('plain_push_ms'):.0f} ms, " \
            f"pop {med('plain_pop_ms'):.0f} ms"
    for name in (*LAYOUTS, "list"):
        figures.append(Figure(f"TUI layout: {LAYOUT_NAMES[name]} (L)", med(f"layout_{name}_ms"), "ms", "<= 100",
                              f"key to repaint; with its loading worker done {med(f'layout_{name}_loaded_ms'):.0f} ms;"
                              f" {plain} (the layouts' own share is the difference)"))
    return figures


BENCHES: list[Callable[[Path, int, int], list[Figure]]] = [
    bench_store, bench_query, bench_compare, bench_insights, bench_review, bench_import, bench_tui,
    bench_tui_arrange,
    bench_review_tui,
    bench_tui_compare,
]
# names for --only (the function names without bench_), and what each part needs run before
# it (the database bench_store leaves, the second experiment bench_compare writes)
BENCH_NAMES = {b.__name__.removeprefix("bench_"): b for b in BENCHES}
TUI_BENCHES = tuple(b for b in BENCHES if "tui" in b.__name__)
_NEEDS = {"query": ("store",), "compare": ("store",), "insights": ("store", "compare"),
          "review": ("store", "compare"), "tui": ("store",), "tui_arrange": ("store",), "review_tui": ("store",),
          "tui_compare": ("store", "compare")}


def _selected(only: str | list[str] | tuple[str, ...] | None, store_from_workdir: bool = False) -> set[str]:
    """The parts ``only`` names (all when None); a part without what it needs is refused,
    except the store when a work directory can provide it (:func:`_prepare_store`)."""
    if only is None:
        return set(BENCH_NAMES)
    names = [n.strip() for part in ([only] if isinstance(only, str) else only) for n in part.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCH_NAMES]
    if unknown or not names:
        raise ValueError(f"--only: unknown part {', '.join(unknown) or '(none)'} (choose from {', '.join(BENCH_NAMES)})")
    for n in names:
        missing = [m for m in _NEEDS.get(n, ()) if m not in names and not (m == "store" and store_from_workdir)]
        if missing:
            raise ValueError(f"--only: {n} needs {', '.join(missing)} too (it uses what that part writes)")
    return set(names)


def _prepare_store(workdir: Path, traces: int, spans_per_trace: int, as_json: bool) -> None:
    """The synthetic store the later benchmarks use: one a run left in ``workdir`` with the
    same sizes, else written now (its own figures are not reported)."""
    marker = workdir / "bench-store.json"
    if marker.exists() and (workdir / "bench.db").exists():
        saved = json.loads(marker.read_text())
        if saved.get("traces") == traces and saved.get("spans_per_trace") == spans_per_trace:
            _STATE.update(saved["state"])
            return
    for stale in workdir.glob("bench.db*"):
        stale.unlink()
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    if not as_json:
        print("writing the synthetic store ...", file=sys.stderr, flush=True)
    bench_store(workdir, traces, spans_per_trace)
    marker.write_text(json.dumps({"traces": traces, "spans_per_trace": spans_per_trace, "state": _STATE}))


def run_bench(traces: int = 100_000, spans_per_trace: int = 8, as_json: bool = False, keep: bool = False,
              skip_tui: bool = False, only: str | list[str] | tuple[str, ...] | None = None,
              workdir: Path | None = None) -> list[Figure]:
    """Run every benchmark in a temporary directory and print the figures.

    ``skip_tui``: leave out the TUI benchmarks (fresh TUI processes, the slow part), for tests.
    ``only``: run just these parts ("store,import" or a list of names from BENCH_NAMES).
    ``workdir``: work there and keep it; when ``only`` leaves out ``store``, the synthetic
    store an earlier run left there (same sizes) is reused, else written first.
    """
    if traces < 1 or spans_per_trace < 1:
        raise ValueError("--traces and --spans-per-trace must be at least 1")
    selected = _selected(only, store_from_workdir=workdir is not None)
    benches = [b for b in BENCHES if b.__name__.removeprefix("bench_") in selected]
    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        keep = True
    else:
        workdir = Path(tempfile.mkdtemp(prefix="evaltui-bench-"))
    old_cache = os.environ.get("EVALTUI_CACHE_DIR")
    os.environ["EVALTUI_CACHE_DIR"] = str(workdir / "cache")
    figures: list[Figure] = []
    try:
        if "store" not in selected and any("store" in _NEEDS.get(n, ()) for n in selected):
            _prepare_store(workdir, traces, spans_per_trace, as_json)
        elif "store" in selected:
            for stale in workdir.glob("bench.db*"):
                stale.unlink()
        for bench in benches:
            if skip_tui and bench in TUI_BENCHES:
                continue
            if bench.__name__.removeprefix("bench_") not in selected:
                continue
            if not as_json:
                print(f"running {bench.__doc__.splitlines()[0] if bench.__doc__ else bench.__name__} ...",
                      file=sys.stderr, flush=True)
            figures.extend(bench(workdir, traces, spans_per_trace))
            if bench is bench_store and keep:  # a later --only run in this --workdir reuses it
                (workdir / "bench-store.json").write_text(
                    json.dumps({"traces": traces, "spans_per_trace": spans_per_trace, "state": _STATE}))
        figures.append(Figure("peak RSS", _peak_rss_mb(), "MB", "", "whole bench process"))
    finally:
        if old_cache is None:
            os.environ.pop("EVALTUI_CACHE_DIR", None)
        else:
            os.environ["EVALTUI_CACHE_DIR"] = old_cache
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        print(json.dumps({"traces": traces, "spans_per_trace": spans_per_trace,
                          "figures": [{**asdict(f), "met": f.met()} for f in figures]}, indent=2))
    else:
        print(format_table(figures, traces, spans_per_trace))
    return figures


def format_table(figures: list[Figure], traces: int, spans_per_trace: int) -> str:
    lines = [f"evaltui bench: {traces:,} traces x {spans_per_trace} spans", ""]
    w = max(len(f.name) for f in figures)
    for f in figures:
        value = f"{f.value:,.0f}" if f.value >= 100 else f"{f.value:,.1f}"
        met = f.met()
        mark = "" if met is None else ("  ok" if met else "  MISSED")
        target = f"  (target {f.target} {f.unit}){mark}" if f.target else ""
        lines.append(f"{f.name:<{w}}  {value:>10} {f.unit:<8}{target}")
        if f.note:
            lines.append(f"{'':<{w}}    {f.note}")
    return "\n".join(lines)
