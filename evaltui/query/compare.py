"""Comparing experiments (DESIGN.md "Comparing experiments"): pure polars over trace rows.

- Rows of two experiments match on ``comparison_key`` (the hash the store computes from the
  project's comparison key, ``input`` by default).
- Trials (several traces with one key) are averaged per key before comparing.
- Per matched key and score: delta = this - base; an improvement if > 0, a regression if
  < 0; a key where either side is null counts as neither.
- Per score: mean over traces (non-null), the base's mean, diff = mean - base mean,
  improvements, regressions. Per metric likewise, where lower is better.

``compare_frames`` works on two frames of :func:`evaltui.store.load_trace_rows`;
``summarize`` loads them from the store; ``resolve_baseline`` picks the experiment to compare
with; ``summary_text`` renders a summary for a terminal.
"""

from __future__ import annotations

import re
from typing import Any

from evaltui.lazy_polars import pl
from evaltui.store import (
    Store,
    find_experiment,
    load_experiments,
    load_trace_rows,
    project_settings,
)
from evaltui.store.errors import NotFound

__all__ = [
    "METRICS", "compare_frames", "compare_many", "join_row_deltas", "parse_comparison_key", "partner_prefix",
    "partner_rows", "regression_order", "resolve_baseline", "row_deltas", "summarize", "summary_rows", "summary_text",
]

SCORE_PREFIX = "scores."
# metric name -> trace-row column. All are lower-is-better. ``errors`` is the share of traces
# with an error (the trace row's has_error), so its mean reads as an error rate.
METRICS: dict[str, str] = {
    "duration": "duration",
    "tokens": "tokens",
    "estimated_cost": "estimated_cost",
    "errors": "has_error",
}
KEY = "comparison_key"
# Deltas closer to zero than this are float noise (0.1 + 0.2 vs 0.3), not a change.
EPSILON = 1e-9


def _score_names(*frames: pl.DataFrame | None) -> list[str]:
    names: set[str] = set()
    for f in frames:
        if f is not None:
            names.update(c[len(SCORE_PREFIX):] for c in f.columns if c.startswith(SCORE_PREFIX))
    return sorted(names)


def _values(frame: pl.DataFrame, sources: list[str]) -> pl.LazyFrame:
    """The comparison key and one Float64 column ``v<i>`` per source column (null if absent)."""
    exprs = [
        (pl.col(src).cast(pl.Float64) if src in frame.columns else pl.lit(None, dtype=pl.Float64)).alias(f"v{i}")
        for i, src in enumerate(sources)
    ]
    key = pl.col(KEY) if KEY in frame.columns else pl.lit(None, dtype=pl.Utf8).alias(KEY)
    # with_columns, not select: a literal is broadcast to the frame's height
    return frame.lazy().with_columns(key, *exprs).select(KEY, *[f"v{i}" for i in range(len(sources))])


def _stats(values: pl.LazyFrame, n: int) -> pl.LazyFrame:
    """One row: per column its mean ``m<i>``, non-null count ``c<i>`` and sum ``s<i>`` over traces."""
    return values.select(
        *[pl.col(f"v{i}").mean().alias(f"m{i}") for i in range(n)],
        *[pl.col(f"v{i}").count().alias(f"c{i}") for i in range(n)],
        *[pl.col(f"v{i}").sum().alias(f"s{i}") for i in range(n)],
        pl.len().alias("rows"),  # so that the row exists when there are no columns
    )


def _per_key(values: pl.LazyFrame, cols: list[str]) -> pl.LazyFrame:
    """One row per comparison key, each value the mean of the key's traces (trials)."""
    # Grouping on a 64-bit hash of the key is twice as fast as on its text; two keys of one
    # comparison colliding has odds ~1e-10 at 100k rows.
    return values.drop_nulls(KEY).with_columns(pl.col(KEY).hash()).group_by(KEY).agg(pl.col(cols).mean())


def compare_frames(this: pl.DataFrame, base: pl.DataFrame | None = None) -> dict[str, Any]:
    """Summarize the trace rows ``this``, compared with the trace rows ``base`` when given.

    Both frames have the columns of :func:`evaltui.store.load_trace_rows` (``comparison_key``,
    ``scores.<name>``, ``duration``, ``tokens``, ``estimated_cost``, ``has_error``); missing
    columns count as null. Returns::

        {
          "traces": 20, "base_traces": 18,           # base_* are None without a base
          "matched": 17,                              # keys present on both sides
          "unmatched": 3, "base_unmatched": 1,        # keys only in this / only in base
          "scores": {name: entry, ...},               # every score of either side, by name
          "metrics": {name: entry, ...},              # METRICS with a value on either side
        }

    where an entry is ``{"mean", "count", "total", "base_mean", "diff", "improvements",
    "regressions", "lower_is_better"}``: ``mean``/``count``/``total`` over this side's
    non-null traces, ``base_mean`` over the base's, ``diff`` = mean - base_mean (None when
    either is None), improvements and regressions counted over matched keys after
    averaging trials per key (None without a base).
    """
    scores = _score_names(this, base)
    metrics = [m for m, col in METRICS.items() if _has_values(this, col) or _has_values(base, col)]
    sources = [SCORE_PREFIX + s for s in scores] + [METRICS[m] for m in metrics]
    lower = [False] * len(scores) + [True] * len(metrics)
    n = len(sources)
    cols = [f"v{i}" for i in range(n)]

    this_v = _values(this, sources)
    queries = [_stats(this_v, n)]
    if base is not None:
        base_v = _values(base, sources)
        this_k, base_k = _per_key(this_v, cols), _per_key(base_v, cols)
        delta = [pl.col(f"v{i}") - pl.col(f"v{i}_b") for i in range(n)]
        counts = this_k.join(base_k, on=KEY, how="inner", suffix="_b").select(
            pl.len().alias("matched"),
            *[(d > EPSILON).sum().alias(f"up{i}") for i, d in enumerate(delta)],
            *[(d < -EPSILON).sum().alias(f"down{i}") for i, d in enumerate(delta)],
        )
        queries += [_stats(base_v, n), counts, this_k.select(pl.len()), base_k.select(pl.len())]
    # one plan: polars runs the independent parts (both group-bys) in parallel
    frames = pl.collect_all(queries)
    this_row = frames[0].row(0)
    out: dict[str, Any] = {
        "traces": this.height,
        "base_traces": None,
        "matched": None,
        "unmatched": None,
        "base_unmatched": None,
    }
    base_means: list[Any] = [None] * n
    improvements: list[int | None] = [None] * n
    regressions: list[int | None] = [None] * n
    if base is not None:
        base_means = list(frames[1].row(0)[:n])
        matched, *rest = frames[2].row(0)
        ups, downs = rest[:n], rest[n:]
        # for a metric, lower is the improvement
        improvements = [int(d if lo else u) for u, d, lo in zip(ups, downs, lower, strict=True)]
        regressions = [int(u if lo else d) for u, d, lo in zip(ups, downs, lower, strict=True)]
        this_keys, base_keys = frames[3].item(), frames[4].item()
        out.update(
            base_traces=base.height,
            matched=matched,
            unmatched=this_keys - matched,
            base_unmatched=base_keys - matched,
        )

    entries = []
    for i in range(n):
        mean, count, total = this_row[i], this_row[n + i], this_row[2 * n + i]
        base_mean = base_means[i]
        entries.append(
            {
                "mean": mean,
                "count": count,
                "total": total if count else None,
                "base_mean": base_mean,
                "diff": mean - base_mean if mean is not None and base_mean is not None else None,
                "improvements": improvements[i],
                "regressions": regressions[i],
                "lower_is_better": lower[i],
            }
        )
    out["scores"] = dict(zip(scores, entries[: len(scores)], strict=True))
    out["metrics"] = dict(zip(metrics, entries[len(scores) :], strict=True))
    return out


def _has_values(frame: pl.DataFrame | None, col: str) -> bool:
    return frame is not None and col in frame.columns and frame[col].null_count() < frame.height


def resolve_baseline(store: Store, experiment_id: str, explicit: str | None = None) -> str | None:
    """The id of the experiment to compare ``experiment_id`` with, or None when there is none.

    In order: ``explicit`` (an id, ``project/name``, or a name in the same project) > the
    experiment's ``base_exp_id`` > the project's ``baseline_experiment_id`` setting > the most
    recent experiment of the project created before this one. The experiment itself and
    experiments that no longer exist are skipped. An ``explicit`` that names nothing raises
    NotFound.
    """
    exp = find_experiment(store, experiment_id)
    if explicit is not None:
        try:
            return find_experiment(store, explicit)["id"]
        except NotFound:
            if "/" in explicit:
                raise
            return find_experiment(store, f"{exp['project']}/{explicit}")["id"]
    candidates = [exp["base_exp_id"], project_settings(store, exp["project_id"]).get("baseline_experiment_id")]
    for cand in candidates:
        if cand and cand != exp["id"]:
            try:
                return find_experiment(store, cand)["id"]
            except NotFound:
                continue
    earlier = (
        load_experiments(store, exp["project"])
        .filter((pl.col("created") < exp["created"]) & (pl.col("id") != exp["id"]))
        .sort(["created", "name"], descending=True)
    )
    return earlier["id"][0] if earlier.height else None


def summarize(
    store: Store,
    experiment_id: str,
    base_experiment_id: str | None = None,
    *,
    compare: bool = True,
) -> dict[str, Any]:
    """Summary of an experiment, compared with a baseline (see :func:`compare_frames`).

    ``base_experiment_id`` None means the baseline :func:`resolve_baseline` picks;
    ``compare=False`` summarizes without any. Adds ``experiment`` and ``base_experiment``
    ({id, project, name, created}; the latter None without a baseline) to the result.
    """
    exp = find_experiment(store, experiment_id)
    base_id = None
    if compare:
        base_id = resolve_baseline(store, exp["id"], base_experiment_id)
    base_exp = find_experiment(store, base_id) if base_id else None
    this = load_trace_rows(store, exp["id"])
    base = load_trace_rows(store, base_exp["id"]) if base_exp else None
    out = compare_frames(this, base)
    out["experiment"] = _brief(exp)
    out["base_experiment"] = _brief(base_exp) if base_exp else None
    return out


def _brief(exp: dict[str, Any]) -> dict[str, Any]:
    return {k: exp[k] for k in ("id", "project", "name", "created")}


# -- text -----------------------------------------------------------------------------------


def _fmt(name: str, value: float | None, *, signed: bool = False, is_score: bool = False) -> str:
    if value is None:
        return "-"
    sign = "+" if signed else ""
    if is_score or name == "errors":
        return f"{value * 100:{sign}.2f}" + ("pp" if signed else "%")
    if name == "duration":
        return f"{value:{sign}.3f}s"
    if name == "estimated_cost":
        mark = ("+" if value >= 0 else "-") if signed else ("-" if value < 0 else "")
        return f"{mark}${abs(value):.4f}"
    return f"{value:{sign},.1f}" if abs(value) % 1 else f"{value:{sign},.0f}"


def summary_text(summary: dict[str, Any]) -> str:
    """A plain-text rendering of :func:`summarize`'s result (for a terminal or a CI log).

    Scores and the error rate are percentages, their diffs percentage points (pp);
    improvements and regressions count matched rows.
    """
    lines = []
    exp = summary.get("experiment")
    base = summary.get("base_experiment")
    head = f"{exp['project']}/{exp['name']}" if exp else "experiment"
    lines.append(f"Experiment {head}: {summary['traces']} traces")
    if summary.get("matched") is not None:
        against = f"{base['project']}/{base['name']}" if base else "base"
        lines.append(
            f"Compared with {against}: {summary['matched']} matched cases"
            f" ({summary['unmatched']} only here, {summary['base_unmatched']} only in the base)"
        )
    rows = [(n, e, True) for n, e in summary["scores"].items()] + [(n, e, False) for n, e in summary["metrics"].items()]
    if not rows:
        return "\n".join(lines)
    width = max(len(n) for n, _, _ in rows)
    compared = summary.get("matched") is not None
    for title, is_score in (("Scores", True), ("Metrics", False)):
        part = [(n, e) for n, e, s in rows if s is is_score]
        if not part:
            continue
        lines.append("")
        lines.append(title)
        for n, e in part:
            text = f"  {n:<{width}}  {_fmt(n, e['mean'], is_score=is_score):>10}"
            if compared:
                text += f"  {_fmt(n, e['diff'], signed=True, is_score=is_score):>10}"
                text += f"  {e['improvements']:>4} improvements  {e['regressions']:>4} regressions"
            lines.append(text.rstrip())
    return "\n".join(lines)


# -- per-row comparison (the TUI's deltas; same matching and counting as compare_frames) ----

# Frame columns that row_deltas adds, all under this prefix so they never clash with data
# and the filter language reaches them by name (``compare.regressed.scores.acc``).
ROW_PREFIX = "compare."
MATCH_COLUMN = "compare.match"  # "matched" / "no match"
MATCHED, NO_MATCH = "matched", "no match"


def comparison_sources(this: pl.DataFrame, base: pl.DataFrame | None) -> list[tuple[str, str, bool]]:
    """(name, trace-row column, lower_is_better) of every score and metric compare_frames reports."""
    scores = _score_names(this, base)
    metrics = [m for m, col in METRICS.items() if _has_values(this, col) or _has_values(base, col)]
    return [(s, SCORE_PREFIX + s, False) for s in scores] + [(m, METRICS[m], True) for m in metrics]


def partner_prefix(index: int) -> str:
    """Column prefix of the ``index``-th compared experiment's per-row columns: the first
    (the base the table's deltas use) ``compare.``, the others ``compare.b<index>.``."""
    return ROW_PREFIX if index == 0 else f"{ROW_PREFIX}b{index}."


def delta_column(source: str, prefix: str = ROW_PREFIX) -> str:
    return f"{prefix}delta.{source}"


def base_column(source: str, prefix: str = ROW_PREFIX) -> str:
    return f"{prefix}base.{source}"


def improved_column(source: str, prefix: str = ROW_PREFIX) -> str:
    return f"{prefix}improved.{source}"


def regressed_column(source: str, prefix: str = ROW_PREFIX) -> str:
    return f"{prefix}regressed.{source}"


def match_column(prefix: str = ROW_PREFIX) -> str:
    return f"{prefix}match"


def output_column(prefix: str = ROW_PREFIX) -> str:
    return f"{prefix}output"


def row_deltas(this: pl.DataFrame, base: pl.DataFrame, row_id: str = "root_span_id", *,
               prefix: str = ROW_PREFIX, output: bool = False) -> pl.DataFrame:
    """Per trace row of ``this`` (in its order), how its case compares with ``base``.

    Columns: ``row_id``; ``compare.match`` ("matched" when the row's comparison key has
    traces in ``base``, else "no match"); and per score / metric column ``src`` of
    :func:`comparison_sources`: ``compare.base.<src>`` (the base's value, its trials
    averaged), ``compare.delta.<src>`` (this case's value, trials averaged, minus the base's)
    and the booleans ``compare.improved.<src>`` / ``compare.regressed.<src>`` (False when
    unmatched or either side is null; lower is better for metrics).

    Trials of one key share the key's delta, so the number of distinct keys among the rows
    marked improved is compare_frames' ``improvements`` for that score, by construction.

    ``prefix`` replaces ``compare.`` in the names (see :func:`partner_prefix`); ``output``
    adds ``<prefix>output``, the output preview of the base's first trace of the case (diff
    mode's sub-rows show it).
    """
    sources = comparison_sources(this, base)
    cols = [src for _, src, _ in sources]
    n = len(cols)
    vcols = [f"v{i}" for i in range(n)]
    ids = pl.col(row_id) if row_id in this.columns else pl.lit(None, dtype=pl.Utf8).alias(row_id)
    rows = (
        this.lazy()
        .with_columns(ids, (pl.col(KEY) if KEY in this.columns else pl.lit(None, dtype=pl.Utf8).alias(KEY)))
        .select(row_id, pl.col(KEY).hash().alias("_h"), pl.col(KEY).is_null().alias("_nokey"))
        .with_row_index("_i")
    )
    this_k = _per_key(_values(this, cols), vcols).rename({KEY: "_h"})
    base_k = (
        _per_key(_values(base, cols), vcols)
        .rename({KEY: "_h", **{v: f"{v}_b" for v in vcols}})
        .with_columns(pl.lit(True).alias("_present"))
    )
    joined = rows.join(this_k, on="_h", how="left").join(base_k, on="_h", how="left")
    wanted_output, output = output, output and "output" in base.columns and KEY in base.columns
    if output:
        # the row of each case's first trace; the texts are gathered once, after the join
        first = (
            base.lazy()
            .select(pl.col(KEY).hash().alias("_h"), pl.col(KEY).is_null().alias("_nokey_b"))
            .with_row_index("_r")
            .filter(~pl.col("_nokey_b"))
            .group_by("_h")
            .agg(pl.col("_r").min())
        )
        joined = joined.join(first, on="_h", how="left")
    joined = joined.sort("_i")
    matched = pl.col("_present").fill_null(False) & ~pl.col("_nokey")
    exprs: list[pl.Expr] = [
        pl.when(matched).then(pl.lit(MATCHED)).otherwise(pl.lit(NO_MATCH)).alias(match_column(prefix))
    ]
    if output:
        exprs.append(pl.when(matched).then(pl.col("_r")).alias("_r"))
    for i, (_, src, lower) in enumerate(sources):
        delta = pl.when(matched).then(pl.col(f"v{i}") - pl.col(f"v{i}_b"))
        up, down = (delta < -EPSILON, delta > EPSILON) if lower else (delta > EPSILON, delta < -EPSILON)
        exprs += [
            pl.when(matched).then(pl.col(f"v{i}_b")).alias(base_column(src, prefix)),
            delta.alias(delta_column(src, prefix)),
            up.fill_null(False).alias(improved_column(src, prefix)),
            down.fill_null(False).alias(regressed_column(src, prefix)),
        ]
    out = joined.select(row_id, *exprs).collect()
    if output:
        texts = base.get_column("output").cast(pl.Utf8).gather(out.get_column("_r")).alias(output_column(prefix))
        out = out.drop("_r").insert_column(2, texts)
    elif wanted_output:
        out = out.insert_column(2, pl.Series(output_column(prefix), [None] * out.height, dtype=pl.Utf8))
    return out


def partner_rows(this: pl.DataFrame, bases: list[pl.DataFrame], first: pl.DataFrame | None = None,
                 row_id: str = "root_span_id") -> pl.DataFrame:
    """:func:`row_deltas` of ``this`` against every frame of ``bases``, side by side.

    One row per row of ``this`` (its order); the columns of base ``i`` carry
    :func:`partner_prefix` ``(i)`` and include its output preview. ``first``, when given, is
    ``row_deltas(this, bases[0], output=True)`` already computed.
    """
    parts = []
    for i, base in enumerate(bases):
        part = first if i == 0 and first is not None else row_deltas(
            this, base, row_id, prefix=partner_prefix(i), output=True)
        parts.append(part if i == 0 else part.drop(row_id))
    if not parts:
        return pl.DataFrame({row_id: this.get_column(row_id)}) if row_id in this.columns else pl.DataFrame()
    return pl.concat(parts, how="horizontal") if len(parts) > 1 else parts[0]


def join_row_deltas(frame: pl.DataFrame, deltas: pl.DataFrame, row_id: str = "root_span_id") -> pl.DataFrame:
    """``frame`` with the columns of :func:`row_deltas` (replacing earlier ones), in its order.

    Rows ``deltas`` does not know (written since it was computed) show "no match".
    """
    old = [c for c in frame.columns if c.startswith(ROW_PREFIX)]
    if old:
        frame = frame.drop(old)
    if row_id not in frame.columns:
        return frame
    out = frame.join(deltas, on=row_id, how="left", maintain_order="left")
    matches = [c for c in deltas.columns if c.startswith(ROW_PREFIX) and c.endswith(".match")]
    return out.with_columns(pl.col(matches).fill_null(NO_MATCH)) if matches else out


# -- comparison key ---------------------------------------------------------------------------

_KEY_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+|\[\d+\])*")
_KEY_ROOTS = ("input", "output", "expected", "metadata", "tags", "name", "error", "dataset_record_id", "origin")


def parse_comparison_key(text: str) -> str | list[str]:
    """A comparison key as typed (``input``, ``input.question``, ``[input.q, metadata.cat]``).

    Paths are dotted, ``[N]`` indexes arrays. Raises ValueError saying what is wrong and where.
    """
    raw = text.strip()
    if not raw:
        raise ValueError("the comparison key is empty: give a path such as input or [input.q, metadata.category]")
    is_list = raw.startswith("[") and raw.endswith("]") and not _KEY_PATH.fullmatch(raw)
    body = raw[1:-1] if is_list else raw
    parts = [p.strip() for p in body.split(",")]
    if not is_list and len(parts) > 1:
        raise ValueError("several paths go in brackets: [input.question, metadata.category]")
    paths: list[str] = []
    for n, part in enumerate(parts, 1):
        where = f"path {n}" if is_list else "the path"
        if not _KEY_PATH.fullmatch(part):
            raise ValueError(f"{where} {part!r} is not a path (like input.question or metadata.items[0])")
        root = part.split(".", 1)[0].split("[", 1)[0]
        if root not in _KEY_ROOTS:
            raise ValueError(f"{where} {part!r} starts with {root!r}; a key starts with one of {', '.join(_KEY_ROOTS)}")
        # the store resolves dotted parts; an index is a numeric part
        paths.append(re.sub(r"\[(\d+)\]", r".\1", part))
    return paths if is_list else paths[0]


def format_comparison_key(spec: str | list[str] | None) -> str:
    if spec is None:
        return "input"
    return spec if isinstance(spec, str) else "[" + ", ".join(spec) + "]"


# -- several experiments side by side -----------------------------------------------------------


def compare_many(this: pl.DataFrame, bases: list[pl.DataFrame]) -> list[dict[str, Any]]:
    """:func:`compare_frames` of ``this`` against each of ``bases`` (the summary table's columns)."""
    return [compare_frames(this, b) for b in bases]


def summary_rows(this_name: str, base_names: list[str], results: list[dict[str, Any]],
                 this_only: dict[str, Any] | None = None) -> tuple[list[str], list[list[str]]]:
    """The summary table as text: a header and one row per score / metric.

    Columns: the score or metric, this experiment's mean, then per compared experiment its
    mean, the diff (this - that) and ↑improvements ↓regressions of this against it. Values
    are formatted as ``evaltui summary`` prints them. ``this_only`` (compare_frames without a
    base) gives the rows when nothing is compared.
    """
    head = ["metric", this_name]
    for name in base_names:
        head += [name, f"diff vs {name}", f"↑↓ vs {name}"]
    first = results[0] if results else (this_only or compare_frames(pl.DataFrame()))
    rows: list[list[str]] = []
    for group, is_score in (("scores", True), ("metrics", False)):
        names = list(dict.fromkeys(n for r in (results or [first]) for n in r[group]))
        for name in names:
            mine = next((r[group][name] for r in (results or [first]) if name in r[group]), None)
            row = [name, _fmt(name, mine["mean"] if mine else None, is_score=is_score)]
            for r in results:
                e = r[group].get(name)
                if e is None:
                    row += ["-", "-", "-"]
                    continue
                row += [
                    _fmt(name, e["base_mean"], is_score=is_score),
                    _fmt(name, e["diff"], signed=True, is_score=is_score),
                    f"↑{e['improvements']} ↓{e['regressions']}",
                ]
            rows.append(row)
    return head, rows


def table_markdown(head: list[str], rows: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def table_csv(head: list[str], rows: list[list[str]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    writer.writerows(rows)
    return buf.getvalue()


def table_html(head: list[str], rows: list[list[str]], title: str = "") -> str:
    from html import escape

    out = ["<!doctype html>", '<meta charset="utf-8">', f"<title>{escape(title)}</title>", "<table>"]
    if title:
        out.append(f"<caption>{escape(title)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead>")
    out.append("<tbody>")
    out += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows]
    out += ["</tbody>", "</table>"]
    return "\n".join(out) + "\n"


def summary_histograms(frame: pl.DataFrame, summary: dict[str, Any], bins: int = 12) -> dict[str, list[int]]:
    """:func:`histogram` of every score and metric column of a :func:`compare_frames` result
    (the summary cards' distributions), keyed by trace-row column."""
    sources = [SCORE_PREFIX + s for s in summary.get("scores", {})] + [METRICS[m] for m in summary.get("metrics", {})]
    return {src: histogram(frame, src, bins) for src in sources}


def histogram(frame: pl.DataFrame, column: str, bins: int = 12) -> list[int]:
    """Counts of ``column``'s non-null values in ``bins`` equal-width bins (scores: over [0, 1])."""
    if column not in frame.columns:
        return [0] * bins
    s = frame.get_column(column).cast(pl.Float64).drop_nulls().drop_nans()
    if not len(s):
        return [0] * bins
    lo, hi = (0.0, 1.0) if column.startswith(SCORE_PREFIX) else (float(s.min()), float(s.max()))  # type: ignore[arg-type]
    if hi <= lo:
        return [len(s)] + [0] * (bins - 1)
    idx = ((s - lo) / (hi - lo) * bins).floor().cast(pl.Int64).clip(0, bins - 1)
    counts = idx.value_counts()
    out = [0] * bins
    for i, c in counts.iter_rows():
        out[i] = c
    return out


def regression_order(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """(score name, regressions) of a :func:`compare_frames` result, most regressions first
    (ties: fewer improvements first, then by name); scores without a base count 0."""
    entries = summary.get("scores", {})
    ranked = sorted(entries.items(), key=lambda kv: (-(kv[1]["regressions"] or 0), kv[1]["improvements"] or 0, kv[0]))
    return [(name, int(e["regressions"] or 0)) for name, e in ranked]
