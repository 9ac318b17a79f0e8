"""Insights (DESIGN.md "query/"; issue 8): what an experiment's results say, from its trace rows.

Pure functions over frames of :func:`evaltui.store.load_trace_rows` (polars, vectorized; no
Textual, no per-row Python). :func:`compute_insights` runs them all for the Analyze screen,
:func:`analyze` loads from the store for ``evaltui analyze`` (``--json`` prints its result,
:func:`analysis_text` the text).

Sections of the result:

- ``summary``: per score and metric: mean, std, p10/p50/p90, min/max, worst and best cases;
  task-error and scorer-error counts, share reviewed (:func:`summary_insights`).
- ``changes``: against a baseline: per score the improvements and regressions (from
  :func:`evaltui.query.compare.compare_frames`, whose per-key matching and trial averaging
  this reuses), the cases that moved most, and the metadata values and tags the regressions
  concentrate in (:func:`what_changed`).
- ``errors``: task errors and scorer errors clustered by a normalised message (numbers, hex
  ids, uuids, paths, urls and quoted strings masked), and low-scoring outputs by simple
  features: empty, refusal, truncated-looking, invalid JSON when JSON was expected, very
  short, very long (:func:`error_clusters`, :func:`output_feature_counts`).
- ``patterns``: per score, the metadata values, tags and output features whose rows score
  lowest relative to the rest, with a significance test (:func:`low_score_patterns`).
- ``agreement``: per pair of scores: Pearson, Spearman, agreement on a pass threshold
  (:func:`scorer_agreement`).
- ``trends`` and ``histograms``: each score's mean across the project's experiments over
  time, and its distribution in bins (:func:`score_trends`, :func:`score_histograms`).

Findings. Every finding carries the rows behind it: ``row_ids`` (root_span_ids, in the
frame's order; at most ``max_ids`` of them, ``row_ids_cut`` says when some were left out)
and ``row_count``, plus ``filter``: a filter-language expression selecting exactly those rows
of the frame, or None where the language cannot say it (rows that regressed against a base,
invalid JSON). ``scope_filter``, where given, selects the wider group the finding is about
(all rows of ``metadata.category = 'technical'``, not only its low-scoring ones).

Statistics (no scipy):

- Low-score patterns use a one-sided Mann-Whitney U test (do the group's rows score lower
  than the rest?) with the normal approximation, a tie correction (judge scores are often
  0/0.5/1) and a continuity correction. Rank-based, so it neither assumes normal scores nor
  turns a tiny group whose scores happen to be all equal into certainty, as Welch's t would.
- Regression concentrations use a one-sided Fisher exact test: the hypergeometric upper
  tail of the value's regression count (log-gamma terms, summed by the ratio recurrence).
- Ranking rule, both lists: ``rank = effect * clamp(-log10(p * tests), 0, 10)``. ``effect``
  is the mean outside minus the mean inside the group (score points), or for concentrations
  the share of the regressions minus the share of the rows; ``p * tests`` is the p-value
  Bonferroni-adjusted for every group and score tested. The effect sets the scale and the
  confidence weighs it: a large drop in three rows (p = 0.002 of 60 tests) ranks below a
  smaller drop in forty rows (p = 1e-6), and past p = 1e-10 more certainty adds nothing.
  Only groups with effect > 0 are listed. ``significant``: adjusted p < 0.05.
- A tag or value holding exactly the rows of a group listed before it (the tag "technical"
  on every ``metadata.category = 'technical'`` row) is folded into that group's
  ``same_rows_as`` rather than listed twice.

Speed: about 0.5 s for every insight of a 100k-trace experiment with a 100k-trace baseline
(two cores): each section is a handful of polars queries over the frame; Python loops run
over groups and clusters, never over rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from evaltui.query import compare as _compare
from evaltui.query.filter import FilterError, Literal, filter_frame, format_filter, parse_filter, to_polars
from evaltui.query.paths import format_path

__all__ = [
    "PASS_THRESHOLD",
    "RANKING_RULE",
    "analysis_text",
    "analyze",
    "compute_insights",
    "error_clusters",
    "fisher_upper_p",
    "low_score_patterns",
    "mann_whitney_lower_p",
    "normalize_messages",
    "output_feature_counts",
    "score_histograms",
    "score_names",
    "score_trends",
    "scorer_agreement",
    "summary_insights",
    "what_changed",
]

PASS_THRESHOLD = 0.5
RANKING_RULE = "rank = effect x min(-log10(p x tests), 10), at least 0; effect > 0 only"
ROW_ID = "root_span_id"
SCORE_PREFIX = "scores."
META_PREFIX = "metadata."
# Trace-row metrics summarized (all lower-is-better), when the frame has values for them.
METRIC_COLUMNS = (
    "duration", "llm_duration", "ttft", "tokens", "prompt_tokens", "completion_tokens",
    "estimated_cost", "llm_calls", "tool_calls",
)
# The store cuts previews at this many characters (evaltui.store.rollup.PREVIEW_CHARS).
PREVIEW_CHARS = 400
MAX_LEVELS = 50  # a metadata column with more distinct values is an id, not a group
MIN_COUNT = 3  # rows a group needs on each side before it is tested
MAX_TEMPLATE = 200  # characters of a normalised error message that group it
CONFIDENCE_CAP = 10.0  # -log10 p beyond this adds nothing to a rank
SCORER_ERRORS_KEY = "scorer_errors"  # Eval's root metadata {scorer: message}


# -- small helpers ---------------------------------------------------------------------------


def score_names(frame: pl.DataFrame) -> list[str]:
    """Names of the ``scores.<name>`` columns of a trace frame, sorted."""
    return sorted(c[len(SCORE_PREFIX):] for c in frame.columns if c.startswith(SCORE_PREFIX))


def _score_col(name: str) -> str:
    return SCORE_PREFIX + name


def _score_path(name: str) -> str:
    return format_path(["scores", name])


def _lit(value: Any) -> str:
    return format_filter(Literal(value))


def _num(value: Any) -> Any:
    """A JSON-safe number: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _and(*parts: str | None) -> str | None:
    if any(p is None for p in parts):
        return None
    return " and ".join(f"({p})" if " or " in p else p for p in parts)  # type: ignore[operator]


def _low_filter(scores: Sequence[str], threshold: float) -> str:
    """Filter text: some score is below the threshold."""
    parts = [f"{_score_path(s)} < {_lit(threshold)}" for s in scores]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


# polars 2 runs lazy queries on the streaming engine by default; for these (sorts,
# quantiles, small group-bys over one in-memory frame) the in-memory engine is 2x faster.
ENGINE = "in-memory"


def _collect_all(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    return pl.collect_all(queries, engine=ENGINE)


class _Ids:
    """Row-id queries collected while a section is built, run together (polars runs them in parallel)."""

    def __init__(self, max_ids: int | None):
        self.max_ids = max_ids
        self._queries: list[tuple[dict[str, Any], pl.LazyFrame]] = []

    def add(self, target: dict[str, Any], ids: pl.LazyFrame) -> dict[str, Any]:
        """Fill ``target`` with row_count/row_ids/row_ids_cut from the one-column frame ``ids``."""
        self._queries.append((target, ids))
        return target

    def run(self) -> None:
        if not self._queries:
            return
        frames = _collect_all([q for _, q in self._queries])
        for (target, _), f in zip(self._queries, frames, strict=True):
            ids = f.to_series()
            count = ids.len()
            if self.max_ids is not None and count > self.max_ids:
                ids = ids.head(self.max_ids)
            target["row_count"] = count
            target["row_ids"] = ids.to_list()
            target["row_ids_cut"] = ids.len() < count
        self._queries.clear()


# -- statistics -------------------------------------------------------------------------------


def _phi(z: float) -> float:
    """Standard normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def mann_whitney_lower_p(rank_sum: float, n1: int, n: int, tie_term: float) -> float | None:
    """One-sided p-value that a group's values are lower than the rest's (Mann-Whitney U).

    ``rank_sum`` is the sum of the group's average ranks among all ``n`` values (the group
    has ``n1`` of them), ``tie_term`` is sum(t^3 - t) over groups of tied values. Normal
    approximation with tie and continuity correction; None when a side is empty.
    """
    n2 = n - n1
    if n1 <= 0 or n2 <= 0:
        return None
    u1 = rank_sum - n1 * (n1 + 1) / 2.0
    mu = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var <= 0:
        return 1.0  # every value tied: nothing is lower
    return _phi((u1 - mu + 0.5) / math.sqrt(var))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_upper_p(k: int, n: int, successes: int, population: int) -> float:
    """P(X >= k) for X ~ Hypergeometric(population, successes, n draws): Fisher's exact test, one-sided.

    "Of the ``population`` matched rows ``successes`` regressed; a value holds ``n`` rows, ``k``
    of which regressed: how surprising is k or more?" Exact up to float rounding.
    """
    big_k, big_n = successes, population
    lo, hi = max(0, n - (big_n - big_k)), min(n, big_k)
    if k <= lo:
        return 1.0
    if k > hi:
        return 0.0
    base = _log_comb(big_k, k) + _log_comb(big_n - big_k, n - k) - _log_comb(big_n, n)

    def ratio(x: int) -> float:  # pmf(x + 1) / pmf(x)
        return (big_k - x) * (n - x) / ((x + 1) * (big_n - big_k - n + x + 1))

    mode = (n + 1) * (big_k + 1) // (big_n + 2)
    if k > mode:  # terms fall from k upward
        term, total, x = math.exp(base), 0.0, k
        while x <= hi:
            total += term
            if term < total * 1e-17:
                break
            term *= ratio(x)
            x += 1
        return min(1.0, total)
    # k at or below the mode: 1 - P(X <= k - 1), whose terms fall from k - 1 downward
    term, total, x = math.exp(base), 0.0, k
    while x > lo:
        term /= ratio(x - 1)
        x -= 1
        total += term
        if term < total * 1e-17:
            break
    return max(0.0, 1.0 - total)


def _confidence(p: float | None, tests: int = 1) -> float:
    """How sure a finding is, for ranking: -log10 of its Bonferroni-adjusted p, in [0, CONFIDENCE_CAP]."""
    if p is None:
        return 0.0
    adjusted = p * max(tests, 1)
    if adjusted <= 0:
        return CONFIDENCE_CAP
    return max(0.0, min(-math.log10(adjusted), CONFIDENCE_CAP))


# -- summary ----------------------------------------------------------------------------------


def _metric_columns(frame: pl.DataFrame) -> list[str]:
    present = [m for m in METRIC_COLUMNS if m in frame.columns]
    if not present or not frame.height:
        return []
    counts = frame.select(pl.col(present).count()).row(0)
    return [m for m, c in zip(present, counts, strict=True) if c]


def summary_insights(frame: pl.DataFrame, *, cases: int = 5, max_ids: int | None = None) -> dict[str, Any]:
    """Per score and metric: count, mean, std, min, p10, p50, p90, max, worst and best cases.

    Worst for a score is lowest, for a metric highest (all metrics are lower-is-better); each
    case is ``{"root_span_id", "value"}``, ties in row order. Also the number of traces, those
    with a task error (``errors``) or a scorer error (``scorer_errors``) as findings with their
    rows, and the reviewed count and share.
    """
    ids = _Ids(max_ids)
    out = _summary(frame, ids, cases)
    ids.run()
    return out


def _summary(frame: pl.DataFrame, ids: _Ids, cases: int) -> dict[str, Any]:
    scores = score_names(frame)
    metrics = _metric_columns(frame)
    cols = [_score_col(s) for s in scores] + metrics
    out: dict[str, Any] = {"traces": frame.height, "scores": {}, "metrics": {}}
    lazy = frame.lazy()
    queries: list[pl.LazyFrame] = []
    if cols:
        stats = []
        for i, c in enumerate(cols):
            v = pl.col(c).cast(pl.Float64)
            stats += [
                v.count().alias(f"n{i}"), v.mean().alias(f"mean{i}"), v.std().alias(f"std{i}"),
                v.min().alias(f"min{i}"), v.quantile(0.1, "linear").alias(f"p10_{i}"),
                v.quantile(0.5, "linear").alias(f"p50_{i}"), v.quantile(0.9, "linear").alias(f"p90_{i}"),
                v.max().alias(f"max{i}"),
            ]
        # lowest and highest cases, ties broken by row order (the frame is in created, id order)
        order = pl.int_range(pl.len())
        for i, c in enumerate(cols):
            valid = pl.col(c).is_not_null()
            case = pl.struct(pl.col(ROW_ID).alias("root_span_id"), pl.col(c).cast(pl.Float64).alias("value"))
            v, at = pl.col(c).filter(valid), order.filter(valid)
            stats += [
                case.filter(valid).sort_by([v, at]).head(cases).implode().alias(f"lo{i}"),
                case.filter(valid).sort_by([v, at], descending=[True, False]).head(cases).implode().alias(f"hi{i}"),
            ]
        queries.append(lazy.select(stats))
    results = _collect_all(queries) if queries else []
    if cols:
        row = results[0].row(0, named=True)
        for i, c in enumerate(cols):
            is_score = i < len(scores)
            low, high = row[f"lo{i}"], row[f"hi{i}"]
            entry = {
                "count": row[f"n{i}"],
                "nulls": frame.height - row[f"n{i}"],
                "mean": _num(row[f"mean{i}"]),
                "std": _num(row[f"std{i}"]),
                "min": _num(row[f"min{i}"]),
                "p10": _num(row[f"p10_{i}"]),
                "p50": _num(row[f"p50_{i}"]),
                "p90": _num(row[f"p90_{i}"]),
                "max": _num(row[f"max{i}"]),
                "worst": _cases(low if is_score else high),
                "best": _cases(high if is_score else low),
                "lower_is_better": not is_score,
            }
            (out["scores"] if is_score else out["metrics"])[scores[i] if is_score else c] = entry

    task = _task_error_mask(frame)
    errors = {"label": "task errors", "filter": "error is not null" if "error" in frame.columns else
              "has_error = true" if "has_error" in frame.columns else None}
    out["errors"] = ids.add(errors, lazy.filter(task).select(ROW_ID))
    if "scorer_errors" in frame.columns:
        scorer = {"label": "scorer errors", "filter": "scorer_errors > 0"}
        out["scorer_errors"] = ids.add(scorer, lazy.filter(pl.col("scorer_errors") > 0).select(ROW_ID))
    else:
        out["scorer_errors"] = {"label": "scorer errors", "filter": None, "row_count": 0, "row_ids": [],
                                "row_ids_cut": False}
    reviewed = 0
    if "review_status" in frame.columns and frame.height:
        reviewed = int(frame.select((pl.col("review_status") == "reviewed").sum()).item() or 0)
    out["reviewed"] = reviewed
    out["reviewed_share"] = reviewed / frame.height if frame.height else None
    return out


def _cases(structs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"root_span_id": x["root_span_id"], "value": _num(x["value"])} for x in structs]


def _task_error_mask(frame: pl.DataFrame) -> pl.Expr:
    # the error preview is what the filter language sees; has_error agrees with it for
    # stored rows (the preview is the first error the trace counted)
    if "error" in frame.columns:
        return pl.col("error").is_not_null()
    if "has_error" in frame.columns:
        return pl.col("has_error").fill_null(False)
    return pl.lit(False)


# -- groups: metadata values, tags, output features ----------------------------------------------


def _group_columns(frame: pl.DataFrame, max_levels: int = MAX_LEVELS) -> list[str]:
    """``metadata.*`` columns worth grouping by: a few distinct values, not one per row."""
    kinds = (pl.String, pl.Int64, pl.Float64, pl.Boolean)
    cands = [
        c for c in frame.columns
        if c.startswith(META_PREFIX) and c != META_PREFIX + SCORER_ERRORS_KEY
        and any(frame.schema[c] == k for k in kinds)
    ]
    if not cands or not frame.height:
        return []
    row = frame.select(
        *[pl.col(c).drop_nulls().n_unique().alias(f"u{i}") for i, c in enumerate(cands)],
        *[pl.col(c).count().alias(f"n{i}") for i, c in enumerate(cands)],
    ).row(0)
    keep = []
    for i, c in enumerate(cands):
        levels, count = row[i], row[len(cands) + i]
        has_nulls = count < frame.height
        if not count or levels > max_levels or (levels + has_nulls) < 2:
            continue
        if levels > 2 and levels > count * 0.5:  # mostly distinct: an id
            continue
        keep.append(c)
    return keep


def _metadata_label(column: str, value: Any) -> str:
    path = format_path(["metadata", column[len(META_PREFIX):]])
    return f"{path} is null" if value is None else f"{path} = {_lit(value)}"


def _metadata_mask(column: str, value: Any) -> pl.Expr:
    return pl.col(column).is_null() if value is None else (pl.col(column) == value).fill_null(False)


_TAGS = "__insights_tags"  # the decoded tags (added by _prepare)
_FEATURE = "__insights_feature_"  # + feature name: its row mask (added by _prepare)


def _with_tags(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with a ``_TAGS`` column: its tags as a list of distinct strings, when they are lists."""
    if _TAGS in frame.columns or "tags" not in frame.columns or frame.schema["tags"] != pl.String:
        return frame
    # few distinct tag lists: decode each once, then join back (a tenth of decoding every row)
    texts = frame["tags"].drop_nulls().unique()
    try:
        decoded = texts.str.json_decode(pl.List(pl.String)).list.unique(maintain_order=True)
    except pl.exceptions.PolarsError:
        return frame  # not JSON lists of strings: no tag groups
    table = pl.DataFrame({"tags": texts, _TAGS: decoded})
    return frame.with_columns(frame.select("tags").join(table, on="tags", how="left", maintain_order="left")[_TAGS])


def _prepare(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """The frame with decoded tags and one boolean column per output feature, and the features.

    Computed once for all sections (the regexes over 100k outputs are the costly part).
    """
    feats = _features(frame)
    frame = _with_tags(frame)
    if feats:
        frame = frame.with_columns(f.pop("mask").alias(f["column"]) for f in feats)
    return frame, feats


# Output features: polars masks and the filter text that selects the same rows. Patterns are
# written in the regex syntax the filter language's two engines share (Rust regex, Python re).
REFUSAL_PATTERN = (
    r"(?i)\b(?:i can(?:no|['’])t (?:help|assist|answer|provide|do|comply)|i(?:['’]m| am) sorry"
    r"|i(?:['’]m| am) (?:not able|unable) to|as an ai\b|i won['’]t be able to|unable to (?:help|assist))"
)
# A final line of 30+ characters that stops on a letter, digit, comma or colon: cut mid-sentence.
TRUNCATED_PATTERN = r"[^\n]{30,}[A-Za-z0-9,;:(\-][ \t]*$"
BLANK_PATTERN = r"^\s*$"


def _features(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Output features: ``{name, label, mask, filter}`` (filter None when the language cannot say it)."""
    if "output" not in frame.columns or frame.schema["output"] != pl.String or not frame.height:
        return []
    out = pl.col("output")
    ok = pl.col("error").is_null() if "error" in frame.columns else pl.lit(True)
    ok_text = "error is null" if "error" in frame.columns else None
    length = out.str.len_chars()
    stats = frame.select(
        length.filter(ok & out.is_not_null() & out.str.contains(r"\S")).median().alias("median"),
        (ok & out.is_not_null()).sum().alias("outputs"),
        out.str.strip_chars_start().str.starts_with("{").or_(out.str.strip_chars_start().str.starts_with("["))
        .filter(ok & out.is_not_null()).mean().alias("json_share"),
        (
            pl.col("expected").str.strip_chars_start().str.contains(r"^[\[{]").fill_null(False).any()
            if "expected" in frame.columns else pl.lit(False)
        ).alias("json_expected"),
    ).row(0, named=True)
    feats: list[dict[str, Any]] = []

    def add(name: str, label: str, mask: pl.Expr, text: str | None) -> None:
        flt = text if text is None or ok_text is None else _and(ok_text, text)
        feats.append({"name": name, "label": label, "mask": (ok & mask).fill_null(False), "filter": flt,
                      "column": _FEATURE + name})

    blank = out.is_null() | out.str.contains(BLANK_PATTERN) | out.is_in(["{}", "[]"])
    add("empty", "empty output", blank,
        f"output is null or output match {_lit(BLANK_PATTERN)} or output in ('{{}}', '[]')")
    add("refusal", "refusal phrase", out.str.contains(REFUSAL_PATTERN),
        f"output match {_lit(REFUSAL_PATTERN)}")
    cut = f"(?s)^.{{{PREVIEW_CHARS}}}"  # previews at the cap were cut by the store: unknown ending
    add("truncated", "truncated-looking (stops mid-sentence)",
        out.str.contains(TRUNCATED_PATTERN) & (length < PREVIEW_CHARS),
        f"output match {_lit(TRUNCATED_PATTERN)} and not output match {_lit(cut)}")
    json_expected = bool(stats["json_expected"]) or (stats["json_share"] or 0) >= 0.5
    if json_expected:
        # json_path_match is null when the text does not parse; a preview cut at the cap is unknown
        invalid = out.str.json_path_match("$").is_null() & ~blank & (out.str.strip_chars() != "null") & (
            length < PREVIEW_CHARS)
        add("invalid_json", "invalid JSON (JSON expected)", invalid, None)
    median = stats["median"]
    if median:
        short = int(median * 0.25)
        if short >= 1:
            upto, visible = _lit(f"(?s)^.{{1,{short}}}$"), _lit(r"\S")
            add("very_short", f"very short (<= {short} chars)",
                (length <= short) & out.str.contains(r"\S") & ~out.is_in(["{}", "[]"]),
                f"output match {upto} and output match {visible} and not output in ('{{}}', '[]')")
        long = min(PREVIEW_CHARS, max(3, math.ceil(median * 3)))
        # an output at the preview cap was cut: "at least this long"
        add("very_long", f"very long (>= {long} chars)", length >= long,
            f"output match {_lit(f'(?s)^.{{{long}}}')}")
    return feats


# -- error clusters ------------------------------------------------------------------------------

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_URL = r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+"
_PATH = r"(?:[A-Za-z]:)?(?:[\\/][\w.\-]+){2,}[\\/]?"
_SQUOTED = r"'[^\n]*'"  # greedy: from the first quote that opens to the last that closes
_DQUOTED = r'"[^"\n]*"'
_HEX = r"(?:0x[0-9a-fA-F]+|[0-9a-fA-F]{8,})"
_NUMBER = r"\d+(?:\.\d+)?"
_UNITS = r"ns|us|µs|ms|s|sec|secs|m|min|mins|h|hr|hrs|d|b|kb|mb|gb|tb|k|x|px|%"
# (pattern, replacement) in order; what each placeholder matched, for the filter regex
_MASKS: list[tuple[str, str]] = [
    (_UUID, "<uuid>"),
    (r"\b" + _URL, "<url>"),
    (r"(^|[\s'\"(=:,\[])" + _PATH, "${1}<path>"),  # a path starts a word: not the "/2/3" of 1/2/3
    (r"(^|\W)" + _SQUOTED + r"(\W|$)", "${1}'<str>'${2}"),  # not the apostrophe of "judge's"
    (_DQUOTED, '"<str>"'),
    (r"\b0x[0-9a-fA-F]+\b", "<hex>"),
    (r"\b(" + _NUMBER + r")(" + _UNITS + r")\b", "<N>${2}"),  # numbers with a unit: 30s, 561ms (not gpt-4o)
    (r"\b" + _NUMBER + r"\b", "<N>"),  # whole numbers before hex, so "12345678" is a number
    (r"\b[0-9a-fA-F]{8,}\b", "<hex>"),
]
_PLACEHOLDERS = {
    "<uuid>": _UUID, "<url>": _URL, "<path>": _PATH, "'<str>'": _SQUOTED, '"<str>"': _DQUOTED,
    "<hex>": _HEX, "<N>": _NUMBER,
}
_REGEX_META = set("\\.^$|?*+()[]{}")


def normalize_messages(messages: pl.Expr) -> pl.Expr:
    """Messages with their variable parts masked, whitespace collapsed, cut at MAX_TEMPLATE chars.

    ``"Timeout after 30s on req 123"`` and ``"Timeout after 12s on req 9"`` both become
    ``"Timeout after <N>s on req <N>"``; ``KeyError: 'answer'`` becomes ``KeyError: '<str>'``.
    """
    e = messages
    for pattern, repl in _MASKS:
        e = e.str.replace_all(pattern, repl)
    return e.str.replace_all(r"\s+", " ").str.strip_chars().str.slice(0, MAX_TEMPLATE)


def _template_regex(template: str) -> str:
    """A regex matching the messages that normalise to ``template`` (checked before it is used)."""
    cut = len(template) >= MAX_TEMPLATE
    if cut:  # a placeholder cut in half is no placeholder
        tail = template.rfind("<")
        if tail != -1 and ">" not in template[tail:]:
            template = template[:tail]
    parts: list[str] = []
    i = 0
    keys = sorted(_PLACEHOLDERS, key=len, reverse=True)
    while i < len(template):
        for k in keys:
            if template.startswith(k, i):
                parts.append(_PLACEHOLDERS[k])
                i += len(k)
                break
        else:
            ch = template[i]
            if ch == " ":
                parts.append(r"\s+")
            else:
                parts.append("\\" + ch if ch in _REGEX_META else ch)
            i += 1
    return r"^\s*" + "".join(parts) + ("" if cut else r"\s*$")


def _checked_filter(candidates: pl.DataFrame, text: str, expected: Iterable[str]) -> str | None:
    """``text`` if it selects exactly the rows ``expected`` among ``candidates``, else None."""
    try:
        got = candidates.filter(to_polars(parse_filter(text), candidates.schema))[ROW_ID]
    except (FilterError, pl.exceptions.PolarsError):
        return None
    return text if set(got.to_list()) == set(expected) else None


def _scorer_messages(frame: pl.DataFrame) -> pl.DataFrame:
    """(root_span_id, scorer, message) for each scorer error recorded in ``metadata.scorer_errors``."""
    col = META_PREFIX + SCORER_ERRORS_KEY
    empty = pl.DataFrame(schema={ROW_ID: pl.String, "scorer": pl.String, "message": pl.String})
    if col not in frame.columns or frame.schema[col] != pl.String:
        return empty
    docs = frame.lazy().filter(pl.col(col).is_not_null()).select(ROW_ID, col).collect(engine=ENGINE)
    if not docs.height:
        return empty
    try:
        decoded = docs.select(ROW_ID).with_columns(docs[col].str.json_decode(infer_schema_length=None).alias("d"))
        if not isinstance(decoded.schema["d"], pl.Struct):
            raise TypeError("not an object")
        wide = decoded.unnest("d")
        names = [c for c in wide.columns if c != ROW_ID]
        wide = wide.with_columns(
            pl.col(c) if wide.schema[c] == pl.String else
            (pl.col(c).struct.json_encode() if isinstance(wide.schema[c], pl.Struct) else pl.col(c).cast(pl.String))
            for c in names
        )
        long = wide.unpivot(index=ROW_ID, on=names, variable_name="scorer", value_name="message")
    except (pl.exceptions.PolarsError, TypeError):
        # odd documents (not objects, nested lists): decode the few error rows in Python
        rows = []
        for rid, text in docs.iter_rows():
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                rows += [(rid, str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in doc.items()]
        long = pl.DataFrame(rows, schema=empty.schema, orient="row")
    # back in the frame's row order
    order = frame.select(ROW_ID).with_row_index("_i")
    return (long.drop_nulls("message").join(order, on=ROW_ID).sort(["_i", "scorer"])
            .select(ROW_ID, pl.col("scorer").cast(pl.String), "message"))


def error_clusters(frame: pl.DataFrame, *, max_ids: int | None = None, top: int | None = None) -> dict[str, Any]:
    """Task errors and scorer errors grouped by normalised message (see :func:`normalize_messages`).

    Returns ``{"task": [cluster], "scorer": [cluster], "task_total", "scorer_total"}``, each list
    largest first. A cluster is ``{template, count, example, example_id, scorer (scorer errors),
    row_ids, row_count, filter}``; ``filter`` is an ``error match '...'`` (or
    ``metadata.scorer_errors.<scorer> match '...'``) expression, kept only after checking that
    it selects exactly the cluster's rows (for the ``top`` largest clusters of each kind; all
    when None). Scorer errors without a message in the trace row (imported from other tools)
    form one cluster ``scorer error (no message in the trace row)``.
    """
    ids = _Ids(max_ids)
    out = _error_clusters(frame, ids, top)
    ids.run()
    return out


def _cluster_rows(rows: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return (
        rows.group_by(keys, maintain_order=True)
        .agg(pl.len().alias("count"), pl.col("message").first().alias("example"),
             pl.col(ROW_ID).first().alias("example_id"), pl.col(ROW_ID).alias("ids"))
        .sort(["count", *keys], descending=[True] + [False] * len(keys))
    )


def _error_clusters(frame: pl.DataFrame, ids: _Ids, top: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"task": [], "scorer": [], "task_total": 0, "scorer_total": 0}
    if not frame.height:
        return out
    lazy = frame.lazy()
    task_rows = lazy.filter(_task_error_mask(frame)).select(
        ROW_ID, pl.col("error").fill_null("(no message)").alias("message") if "error" in frame.columns
        else pl.lit("(no message)").alias("message"),
    ).with_columns(normalize_messages(pl.col("message")).alias("template")).collect(engine=ENGINE)
    out["task_total"] = task_rows.height
    if task_rows.height:
        clusters = _cluster_rows(task_rows, ["template"])
        candidates = frame.filter(_task_error_mask(frame))
        for i, (template, count, example, example_id, row_ids) in enumerate(clusters.iter_rows()):
            flt = None
            if "error" in frame.columns and (top is None or i < top):
                flt = _checked_filter(candidates, f"error match {_lit(_template_regex(template))}", row_ids)
            item = {"kind": "task_error", "template": template, "count": count, "example": example,
                    "example_id": example_id, "filter": flt}
            out["task"].append(_fill_ids(item, row_ids, ids.max_ids))

    messages = _scorer_messages(frame)
    with_msg = set(messages[ROW_ID].to_list())
    clusters_rows = messages.with_columns(normalize_messages(pl.col("message")).alias("template"))
    col = META_PREFIX + SCORER_ERRORS_KEY
    if clusters_rows.height:
        clusters = _cluster_rows(clusters_rows, ["scorer", "template"])
        candidates = frame.filter(pl.col(col).is_not_null())
        for i, (scorer, template, count, example, example_id, row_ids) in enumerate(clusters.iter_rows()):
            flt = None
            if top is None or i < top:
                path = format_path(["metadata", SCORER_ERRORS_KEY, scorer])
                flt = _checked_filter(candidates, f"{path} match {_lit(_template_regex(template))}", row_ids)
            item = {"kind": "scorer_error", "scorer": scorer, "template": template, "count": count,
                    "example": example, "example_id": example_id, "filter": flt}
            out["scorer"].append(_fill_ids(item, row_ids, ids.max_ids))
    if "scorer_errors" in frame.columns:
        silent = frame.filter((pl.col("scorer_errors") > 0) & ~pl.col(ROW_ID).is_in(list(with_msg)))
        if silent.height:
            no_msg = "scorer_errors > 0" + (f" and {format_path(['metadata', SCORER_ERRORS_KEY])} is null"
                                            if col in frame.columns else "")
            flt = _checked_filter(frame.filter(pl.col("scorer_errors") > 0), no_msg, silent[ROW_ID].to_list())
            item = {"kind": "scorer_error", "scorer": None, "template": "scorer error (no message in the trace row)",
                    "count": silent.height, "example": None, "example_id": silent[ROW_ID][0], "filter": flt}
            out["scorer"].append(_fill_ids(item, silent[ROW_ID].to_list(), ids.max_ids))
            out["scorer"].sort(key=lambda c: -c["count"])
        out["scorer_total"] = int(frame.select((pl.col("scorer_errors") > 0).sum()).item() or 0)
    else:
        out["scorer_total"] = len(with_msg)
    return out


def _fill_ids(item: dict[str, Any], row_ids: list[str], max_ids: int | None) -> dict[str, Any]:
    item["row_count"] = len(row_ids)
    item["row_ids"] = row_ids if max_ids is None else row_ids[:max_ids]
    item["row_ids_cut"] = len(item["row_ids"]) < len(row_ids)
    return item


# -- low-scoring outputs by feature ----------------------------------------------------------------


def _any_low(scores: Sequence[str], threshold: float) -> pl.Expr:
    if not scores:
        return pl.lit(False)
    return pl.any_horizontal([(pl.col(_score_col(s)) < threshold).fill_null(False) for s in scores])


def output_feature_counts(
    frame: pl.DataFrame, *, threshold: float = PASS_THRESHOLD, max_ids: int | None = None
) -> list[dict[str, Any]]:
    """Low-scoring outputs (some score below ``threshold``) by simple output feature.

    One entry per feature present in some row: ``{feature, label, rows (with the feature),
    low (low-scoring with it), low_rate, low_rate_without (among the other rows without a task
    error), row_ids/row_count (the low-scoring
    rows with the feature), filter, scope_filter (all rows with it)}``, most low rows first.
    """
    ids = _Ids(max_ids)
    out = _output_features(*_prepare(frame), ids, threshold)
    ids.run()
    return out


def _output_features(
    frame: pl.DataFrame, feats: list[dict[str, Any]], ids: _Ids, threshold: float
) -> list[dict[str, Any]]:
    if not feats:
        return []
    scores = score_names(frame)
    low = _any_low(scores, threshold)
    lazy = frame.lazy()
    row = frame.select(
        low.sum().alias("low"),
        (~_task_error_mask(frame)).sum().alias("ok"),  # features are of outputs: rows without a task error
        *[pl.col(f["column"]).sum().alias(f"n{i}") for i, f in enumerate(feats)],
        *[(pl.col(f["column"]) & low).sum().alias(f"l{i}") for i, f in enumerate(feats)],
    ).row(0, named=True)
    out = []
    for i, f in enumerate(feats):
        n, lo = row[f"n{i}"], row[f"l{i}"]
        if not n:
            continue
        rest = row["ok"] - n
        item = {
            "kind": "output_feature",
            "feature": f["name"],
            "label": f["label"],
            "rows": n,
            "low": lo,
            "low_rate": lo / n,
            "low_rate_without": (row["low"] - lo) / rest if rest else None,
            "filter": _and(f["filter"], _low_filter(scores, threshold)) if scores else None,
            "scope_filter": f["filter"],
        }
        out.append(ids.add(item, lazy.filter(pl.col(f["column"]) & low).select(ROW_ID)))
    out.sort(key=lambda x: (-x["low"], -x["rows"], x["feature"]))
    return out


# -- low-score patterns ------------------------------------------------------------------------


def _dedupe(groups: list[Any], names: Sequence[str]) -> tuple[list[Any], dict[str, list[str]]]:
    """Groups holding the same rows as an earlier one (a tag that mirrors a category) dropped.

    A group is ``(kind, column, value, label, ..., stats row)``; two are the same when their
    stats ``names`` (row fingerprint and counts) agree. Returns the kept groups and, per kept
    label, the labels of the groups it stands for.
    """
    seen: dict[tuple[Any, ...], str] = {}
    kept, same = [], {}
    for g in groups:
        label, row = g[3], g[-1]
        sig = tuple(row[n] for n in names)
        if sig in seen:
            same.setdefault(seen[sig], []).append(label)
            continue
        seen[sig] = label
        kept.append(g)
    return kept, same


def low_score_patterns(
    frame: pl.DataFrame,
    *,
    threshold: float = PASS_THRESHOLD,
    min_count: int = MIN_COUNT,
    top: int = 10,
    max_levels: int = MAX_LEVELS,
    max_ids: int | None = None,
) -> dict[str, Any]:
    """Per score, the groups whose rows score lowest relative to the rest, ranked.

    Groups: each value of each groupable ``metadata.*`` column (a few distinct values; ``is
    null`` too), each tag, each output feature. A group is tested when it has ``min_count``
    scored rows and so does the rest. An item: ``{score, kind (metadata/tag/feature), group
    (its filter text or label), count (scored rows in it), share (of scored rows), mean_in,
    mean_out, effect (mean_out - mean_in), low_in (rows below threshold), low_rate_in,
    low_rate_out, lift (low rate in the group / overall), p_value (one-sided Mann-Whitney),
    rank, significant, row_ids (its rows below threshold), filter, scope_filter}``.

    Returns ``{"rule", "threshold", "tests", "by_score": {score: [items, best first]},
    "top": [the best items across scores]}``; ``top`` per score and overall.
    """
    ids = _Ids(max_ids)
    out = _patterns(*_prepare(frame), ids, threshold, min_count, top, max_levels)
    ids.run()
    return out


def _fingerprint(col: str) -> pl.Expr:
    """A checksum of the rows in a group: two groups with equal ones hold the same rows (odds of a tie ~1e-9)."""
    return (pl.col(col).hash() % 2_147_483_629).sum().alias("_fp")


def _score_aggs(k: int) -> list[pl.Expr]:
    out = [_fingerprint(ROW_ID)]
    for i in range(k):
        out += [
            pl.col(f"v{i}").count().alias(f"n{i}"),
            pl.col(f"v{i}").sum().alias(f"s{i}"),
            pl.col(f"r{i}").sum().alias(f"rs{i}"),
            pl.col(f"l{i}").sum().alias(f"lo{i}"),
        ]
    return out


def _patterns(
    frame: pl.DataFrame,
    feats: list[dict[str, Any]],
    ids: _Ids,
    threshold: float,
    min_count: int,
    top: int,
    max_levels: int,
) -> dict[str, Any]:
    scores = score_names(frame)
    out: dict[str, Any] = {"rule": RANKING_RULE, "test": "one-sided Mann-Whitney U (normal approx., ties)",
                           "threshold": threshold, "tests": 0, "by_score": {s: [] for s in scores}, "top": []}
    if not scores or not frame.height:
        return out
    k = len(scores)
    group_cols = _group_columns(frame, max_levels)
    tags = _TAGS in frame.columns
    prepared = frame.select(
        ROW_ID,
        *group_cols,
        *([pl.col(_TAGS).alias("_tags")] if tags else []),
        *[pl.col(f["column"]).alias(f"f{j}") for j, f in enumerate(feats)],
        *[pl.col(_score_col(s)).alias(f"v{i}") for i, s in enumerate(scores)],
        *[pl.col(_score_col(s)).rank("average").alias(f"r{i}") for i, s in enumerate(scores)],
        *[(pl.col(_score_col(s)) < threshold).alias(f"l{i}") for i, s in enumerate(scores)],
    )
    lazy = prepared.lazy()
    aggs = _score_aggs(k)
    queries: list[pl.LazyFrame] = [lazy.select(aggs)]
    for i in range(k):
        counts = lazy.group_by(f"v{i}").agg(pl.len().cast(pl.Float64).alias("t")).drop_nulls(f"v{i}")
        queries.append(counts.select((pl.col("t") ** 3 - pl.col("t")).sum().alias("ties")))
    for c in group_cols:
        queries.append(lazy.group_by(c).agg(aggs).sort(c, nulls_last=True))
    if tags:
        tagged = lazy.select(ROW_ID, "_tags", *[f"v{i}" for i in range(k)],
                             *[f"r{i}" for i in range(k)], *[f"l{i}" for i in range(k)])
        queries.append(tagged.explode("_tags").drop_nulls("_tags").group_by("_tags").agg(aggs).sort("_tags"))
    for j in range(len(feats)):
        queries.append(lazy.filter(pl.col(f"f{j}")).select(aggs))
    results = _collect_all(queries)
    totals = results[0].row(0, named=True)
    ties = [results[1 + i].item() or 0.0 for i in range(k)]
    pos = 1 + k

    # (kind, column, value, label, polars mask on `prepared`, scope filter, stats row)
    groups: list[tuple[str, str | None, Any, str, pl.Expr, str | None, dict[str, Any]]] = []
    for c in group_cols:
        for r in results[pos].iter_rows(named=True):
            value = r[c]
            label = _metadata_label(c, value)
            groups.append(("metadata", c, value, label, _metadata_mask(c, value), label, r))
        pos += 1
    if tags:
        for r in results[pos].iter_rows(named=True):
            label = f"tags includes {_lit(r['_tags'])}"
            mask = pl.col("_tags").list.contains(r["_tags"]).fill_null(False)
            groups.append(("tag", "tags", r["_tags"], label, mask, label, r))
        pos += 1
    for j, f in enumerate(feats):
        r = results[pos + j].row(0, named=True)
        groups.append(("feature", f["name"], True, f["label"], pl.col(f"f{j}"), f["filter"], r))
    groups, same = _dedupe(groups, [e.meta.output_name() for e in aggs])

    items: list[dict[str, Any]] = []
    tests = 0
    for i, score in enumerate(scores):
        n_all, s_all, lo_all = totals[f"n{i}"], totals[f"s{i}"] or 0.0, totals[f"lo{i}"] or 0
        for kind, column, value, label, mask, scope, r in groups:
            n1 = r[f"n{i}"] or 0
            n2 = n_all - n1
            if n1 < min_count or n2 < min_count:
                continue
            tests += 1
            s1 = r[f"s{i}"] or 0.0
            mean_in, mean_out = s1 / n1, (s_all - s1) / n2
            effect = mean_out - mean_in
            if effect <= 0:
                continue
            p = mann_whitney_lower_p(r[f"rs{i}"] or 0.0, n1, n_all, ties[i])
            lo1 = r[f"lo{i}"] or 0
            low_rate_all = lo_all / n_all
            items.append({
                "kind": kind,
                "score": score,
                "column": column,
                "value": _num(value),
                "group": label,
                "count": n1,
                "share": n1 / n_all,
                "mean_in": mean_in,
                "mean_out": mean_out,
                "effect": effect,
                "low_in": lo1,
                "low_rate_in": lo1 / n1,
                "low_rate_out": (lo_all - lo1) / n2,
                "lift": (lo1 / n1) / low_rate_all if low_rate_all else None,
                "p_value": p,
                "filter": _and(scope, f"{_score_path(score)} < {_lit(threshold)}"),
                "scope_filter": scope,
                "same_rows_as": same.get(label, []),
                "_mask": mask,
                "_i": i,
            })
    out["tests"] = tests
    for it in items:
        it["rank"] = it["effect"] * _confidence(it["p_value"], tests)
        it["significant"] = it["p_value"] is not None and it["p_value"] * max(tests, 1) < 0.05
    items.sort(key=lambda x: (-x["rank"], -x["effect"], x["score"], x["group"]))
    chosen: list[dict[str, Any]] = []
    for s in scores:
        per = [it for it in items if it["score"] == s][:top]
        out["by_score"][s] = per
        chosen += per
    picked = {id(it) for it in chosen}
    out["top"] = [it for it in items if id(it) in picked][:top]
    for it in chosen:
        mask = it.pop("_mask")
        ids.add(it, lazy.filter(mask & pl.col(f"l{it.pop('_i')}").fill_null(False)).select(ROW_ID))
    return out


# -- what changed --------------------------------------------------------------------------------


def what_changed(
    frame: pl.DataFrame,
    base: pl.DataFrame,
    *,
    top: int = 5,
    min_count: int = 2,
    max_levels: int = MAX_LEVELS,
    max_ids: int | None = None,
) -> dict[str, Any]:
    """What changed from ``base`` to ``frame`` (trace rows of two experiments).

    The counts come from :func:`evaltui.query.compare.compare_frames` (rows matched on the
    comparison key, trials averaged per key). Per score (``scores``): its compare entry plus
    ``moved_most`` ``{"regressions": [...], "improvements": [...]}`` (the ``top`` keys whose
    score moved most: ``{row_ids (this side), base_row_ids, value, base_value, delta}``) and
    ``concentrations``: the metadata values and tags the regressions fall in more than their
    rows would predict: ``{score, kind, group, regressions (in the value), rows (matched rows
    in it), share_of_regressions, share_of_rows, lift, p_value (one-sided Fisher exact),
    rank, significant, row_ids (this side's regressing rows), scope_filter}``. ``concentrations``
    at the top level ranks them across scores. ``metrics`` is compare's.
    """
    ids = _Ids(max_ids)
    out = _what_changed(frame, base, ids, top, min_count, max_levels)
    ids.run()
    return out


def _key_expr(hashed: bool) -> pl.Expr:
    """The comparison key as compare's per-key frames hold it."""
    return (pl.col(_compare.KEY).hash() if hashed else pl.col(_compare.KEY)).alias(_compare.KEY)


def _rows_of_keys(frame: pl.DataFrame, keys: pl.LazyFrame, hashed: bool) -> pl.LazyFrame:
    """The root_span_ids of ``frame``'s traces whose key is in ``keys`` (a KEY column), in frame order."""
    return (frame.lazy().select(ROW_ID, _key_expr(hashed)).join(keys, on=_compare.KEY, how="semi")
            .select(ROW_ID))


def _ids_by_key(frame: pl.DataFrame, keys: list[Any], hashed: bool) -> dict[Any, list[str]]:
    if not keys:
        return {}
    rows = (frame.lazy().select(ROW_ID, _key_expr(hashed)).filter(pl.col(_compare.KEY).is_in(keys))
            .group_by(_compare.KEY, maintain_order=True).agg(pl.col(ROW_ID)).collect(engine=ENGINE))
    return dict(rows.iter_rows())


def _what_changed(
    frame: pl.DataFrame, base: pl.DataFrame, ids: _Ids, top: int, min_count: int, max_levels: int
) -> dict[str, Any]:
    cmp = _compare.compare_frames(frame, base)
    scores = list(cmp["scores"])
    out: dict[str, Any] = {k: cmp[k] for k in ("traces", "base_traces", "matched", "unmatched", "base_unmatched")}
    out["metrics"] = cmp["metrics"]
    out["scores"] = {s: dict(cmp["scores"][s]) for s in scores}
    out["concentrations"] = []
    out["rule"] = RANKING_RULE
    out["test"] = "one-sided Fisher exact (hypergeometric)"
    if not scores or _compare.KEY not in frame.columns or _compare.KEY not in base.columns:
        for s in scores:
            out["scores"][s].update(moved_most={"regressions": [], "improvements": []}, concentrations=[])
        return out
    sources = [_score_col(s) for s in scores]
    cols = [f"v{i}" for i in range(len(scores))]
    # matching and trial averaging are compare's; this only adds which rows each key holds
    this_k = _compare._per_key(_compare._values(frame, sources), cols)
    base_k = _compare._per_key(_compare._values(base, sources), cols)
    hashed = this_k.collect_schema()[_compare.KEY] != pl.String
    group_cols = _group_columns(frame, max_levels)
    tags = "tags" in frame.columns and frame.schema["tags"] == pl.String
    extra = [pl.col(c).first() for c in group_cols]
    if tags:
        extra.append(pl.col("tags").first())  # the text: first() of a list column is slow
    # per key: its first trace here (a stable tie-break and fingerprint) and its metadata
    key_rows = (
        frame.lazy().drop_nulls(_compare.KEY).group_by(_key_expr(hashed), maintain_order=True)
        .agg(pl.col(ROW_ID).first().alias("_first"), *extra)
    )
    keyed = (
        this_k.join(base_k, on=_compare.KEY, how="inner", suffix="_b")
        .with_columns((pl.col(f"v{i}") - pl.col(f"v{i}_b")).alias(f"d{i}") for i in range(len(scores)))
        .join(key_rows, on=_compare.KEY, how="left")
        .collect(engine=ENGINE)
    )
    if tags:
        keyed = _with_tags(keyed).drop("tags")
        tags = _TAGS in keyed.columns
        if tags:
            keyed = keyed.rename({_TAGS: "_tags"})
    eps = _compare.EPSILON
    lazy = keyed.lazy()
    k = len(scores)
    reg_aggs = [_fingerprint("_first")] + [e for i in range(k) for e in (
        pl.col(f"d{i}").count().alias(f"n{i}"), (pl.col(f"d{i}") < -eps).sum().alias(f"r{i}"))]
    queries: list[pl.LazyFrame] = [lazy.select(reg_aggs)]
    for i in range(k):
        d = pl.col(f"d{i}")
        queries.append(lazy.filter(d < -eps).sort([f"d{i}", "_first"]).head(top))
        queries.append(lazy.filter(d > eps).sort([f"d{i}", "_first"], descending=[True, False]).head(top))
    for c in group_cols:
        queries.append(lazy.group_by(c).agg(reg_aggs).sort(c, nulls_last=True))
    if tags:
        queries.append(lazy.select("_tags", "_first", *[f"d{i}" for i in range(k)]).explode("_tags")
                       .drop_nulls("_tags").group_by("_tags").agg(reg_aggs).sort("_tags"))
    results = _collect_all(queries)
    totals = results[0].row(0, named=True)

    moved = [r[_compare.KEY] for f in results[1: 1 + 2 * k] for r in f.iter_rows(named=True)]
    this_ids, base_ids = _ids_by_key(frame, moved, hashed), _ids_by_key(base, moved, hashed)

    def case(r: dict[str, Any], i: int) -> dict[str, Any]:
        key = r[_compare.KEY]
        return {"row_ids": this_ids.get(key, []), "base_row_ids": base_ids.get(key, []), "value": r[f"v{i}"],
                "base_value": r[f"v{i}_b"], "delta": r[f"d{i}"]}

    for i, s in enumerate(scores):
        regs, imps = results[1 + 2 * i], results[2 + 2 * i]
        out["scores"][s]["moved_most"] = {
            "regressions": [case(r, i) for r in regs.iter_rows(named=True)],
            "improvements": [case(r, i) for r in imps.iter_rows(named=True)],
        }
    pos = 1 + 2 * k
    groups: list[tuple[str, str, Any, str, pl.Expr, dict[str, Any]]] = []
    for c in group_cols:
        for r in results[pos].iter_rows(named=True):
            groups.append(("metadata", c, r[c], _metadata_label(c, r[c]), _metadata_mask(c, r[c]), r))
        pos += 1
    if tags:
        for r in results[pos].iter_rows(named=True):
            groups.append(("tag", "tags", r["_tags"], f"tags includes {_lit(r['_tags'])}",
                           pl.col("_tags").list.contains(r["_tags"]).fill_null(False), r))
    groups, same = _dedupe(groups, [e.meta.output_name() for e in reg_aggs])

    candidates: list[dict[str, Any]] = []
    tests = 0
    for i, s in enumerate(scores):
        big_n, big_r = totals[f"n{i}"], totals[f"r{i}"]
        for kind, column, value, label, mask, r in groups:
            n, reg = r[f"n{i}"], r[f"r{i}"]
            if not big_r or not n or n == big_n:
                continue
            tests += 1
            excess = reg / big_r - n / big_n
            if reg < min_count or excess <= 0:
                continue
            p = fisher_upper_p(reg, n, big_r, big_n)
            candidates.append({
                "kind": kind, "score": s, "column": column, "value": _num(value), "group": label,
                "regressions": reg, "rows": n, "share_of_regressions": reg / big_r, "share_of_rows": n / big_n,
                "lift": (reg / n) / (big_r / big_n), "excess": excess, "p_value": p,
                "filter": None, "scope_filter": label, "same_rows_as": same.get(label, []),
                "_mask": mask, "_i": i,
            })
    for it in candidates:
        it["rank"] = it["excess"] * _confidence(it["p_value"], tests)
        it["significant"] = it["p_value"] * max(tests, 1) < 0.05
    candidates.sort(key=lambda x: (-x["rank"], -x["regressions"], x["score"], x["group"]))
    items: list[dict[str, Any]] = []
    for s in scores:
        per = [it for it in candidates if it["score"] == s][:top]
        out["scores"][s]["concentrations"] = per
        items += per
    for it in items:
        mask, i = it.pop("_mask"), it.pop("_i")
        keys = lazy.filter(mask & (pl.col(f"d{i}") < -eps)).select(_compare.KEY)
        ids.add(it, _rows_of_keys(frame, keys, hashed))
    items.sort(key=lambda x: (-x["rank"], -x["regressions"], x["score"], x["group"]))
    out["concentrations"] = items[:top]
    out["tests"] = tests
    return out


# -- scorer agreement ------------------------------------------------------------------------------


def scorer_agreement(
    frame: pl.DataFrame,
    *,
    threshold: float = PASS_THRESHOLD,
    human_scores: Iterable[str] = (),
    max_ids: int | None = None,
) -> list[dict[str, Any]]:
    """Per pair of scores (rows where both have a value): correlation and pass/fail agreement.

    ``{a, b, kind ("human-automatic", "automatic", "human"), n, pearson, spearman, agreement
    (share of rows where both pass or both fail at ``threshold``), kappa (Cohen's),
    both_pass, both_fail, a_only (a passes, b fails), b_only, row_ids (the rows they disagree
    on), filter}``. Human-vs-automatic pairs come first. Correlations are None when a side is
    constant.
    """
    ids = _Ids(max_ids)
    out = _agreement(frame, ids, threshold, set(human_scores))
    ids.run()
    return out


def _agreement(frame: pl.DataFrame, ids: _Ids, threshold: float, human: set[str]) -> list[dict[str, Any]]:
    scores = score_names(frame)
    pairs = [(a, b) for i, a in enumerate(scores) for b in scores[i + 1:]]
    if not pairs or not frame.height:
        return []
    col = {s: pl.col(_score_col(s)) for s in scores}
    # Spearman is Pearson on average ranks. When a pair's rows are exactly each score's scored
    # rows (the usual case: only failed tasks lack scores) each score is ranked once, not per pair.
    counts = frame.select(
        *[col[s].count().alias(s) for s in scores],
        *[(col[a].is_not_null() & col[b].is_not_null()).sum().alias(f"{a}\0{b}") for a, b in pairs],
    ).row(0, named=True)
    ranked = frame.select(
        *[col[s].rank("average").alias(f"r{i}") for i, s in enumerate(scores)],
        *[col[s] for s in scores],
    )
    rank_of = {s: pl.col(f"r{i}") for i, s in enumerate(scores)}
    exprs = []
    for j, (a, b) in enumerate(pairs):
        ca, cb = col[a], col[b]
        both = ca.is_not_null() & cb.is_not_null()
        if counts[a] == counts[b] == counts[f"{a}\0{b}"]:
            spearman = pl.corr(rank_of[a], rank_of[b])
        else:
            spearman = pl.corr(ca.filter(both).rank("average"), cb.filter(both).rank("average"))
        pa, pb = ca.filter(both) >= threshold, cb.filter(both) >= threshold
        exprs += [
            pl.corr(ca.filter(both), cb.filter(both)).alias(f"pe{j}"),
            spearman.alias(f"sp{j}"),
            (pa & pb).sum().alias(f"pp{j}"),
            (~pa & ~pb).sum().alias(f"ff{j}"),
            (pa & ~pb).sum().alias(f"pf{j}"),
            (~pa & pb).sum().alias(f"fp{j}"),
        ]
    row = ranked.select(exprs).row(0, named=True)
    out = []
    lazy = frame.lazy()
    for j, (a, b) in enumerate(pairs):
        n = counts[f"{a}\0{b}"]
        if not n:
            continue
        pp, ff, pf, fp = row[f"pp{j}"], row[f"ff{j}"], row[f"pf{j}"], row[f"fp{j}"]
        po = (pp + ff) / n
        pa, pb = (pp + pf) / n, (pp + fp) / n
        pe = pa * pb + (1 - pa) * (1 - pb)
        kind = {0: "automatic", 1: "human-automatic", 2: "human"}[(a in human) + (b in human)]
        ca, cb = col[a], col[b]
        disagree = ((ca >= threshold) & (cb < threshold)) | ((ca < threshold) & (cb >= threshold))
        t, pa_, pb_ = _lit(threshold), _score_path(a), _score_path(b)
        item = {
            "a": a, "b": b, "kind": kind, "n": n,
            "pearson": _num(row[f"pe{j}"]), "spearman": _num(row[f"sp{j}"]),
            "agreement": po, "kappa": (po - pe) / (1 - pe) if pe < 1 else None,
            "both_pass": pp, "both_fail": ff, "a_only": pf, "b_only": fp,
            "filter": f"({pa_} >= {t} and {pb_} < {t}) or ({pa_} < {t} and {pb_} >= {t})",
        }
        out.append(ids.add(item, lazy.filter(disagree.fill_null(False)).select(ROW_ID)))
    out.sort(key=lambda x: (x["kind"] != "human-automatic", x["a"], x["b"]))
    return out


# -- trends and histograms -----------------------------------------------------------------------


def score_trends(experiments: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Each score's mean per experiment, oldest first: ``{score: [{experiment, id, created, mean}]}``.

    ``experiments`` is :func:`evaltui.store.load_experiments` of one project (``score_means``
    is JSON text there; a dict column works too). An experiment without the score is left out.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    if not experiments.height:
        return out
    ordered = experiments.sort(["created", "name"])
    for r in ordered.select("id", "name", "created", "score_means").iter_rows(named=True):  # one per experiment
        means = r["score_means"]
        if isinstance(means, str):
            try:
                means = json.loads(means)
            except ValueError:
                means = {}
        for name, mean in sorted((means or {}).items()):
            if mean is None:
                continue
            out.setdefault(name, []).append(
                {"experiment": r["name"], "id": r["id"], "created": r["created"], "mean": _num(mean)})
    return dict(sorted(out.items()))


def score_histograms(frame: pl.DataFrame, *, bins: int = 10) -> dict[str, dict[str, Any]]:
    """Each score's distribution over [0, 1] in ``bins`` equal bins (1.0 falls in the last).

    ``{score: {"edges": [bins + 1 floats], "counts": [bins ints], "count", "nulls",
    "out_of_range"}}``; values outside [0, 1] are counted in the end bins and in out_of_range.
    """
    scores = score_names(frame)
    if not scores:
        return {}
    binned = frame.select(
        (pl.col(_score_col(s)) * bins).floor().clip(0, bins - 1).cast(pl.Int32).alias(f"b{i}")
        for i, s in enumerate(scores)
    )
    exprs = []
    for i, s in enumerate(scores):
        exprs += [(pl.col(f"b{i}") == j).sum().alias(f"{i}_{j}") for j in range(bins)]
        v = pl.col(_score_col(s))
        exprs += [v.count().alias(f"{i}_n"), ((v < 0) | (v > 1)).sum().alias(f"{i}_out")]
    row = pl.concat([binned, frame.select(_score_col(s) for s in scores)], how="horizontal").select(exprs).row(
        0, named=True) if frame.height else {}
    edges = [j / bins for j in range(bins + 1)]
    return {
        s: {
            "edges": edges,
            "counts": [row.get(f"{i}_{j}", 0) or 0 for j in range(bins)],
            "count": row.get(f"{i}_n", 0) or 0,
            "nulls": frame.height - (row.get(f"{i}_n", 0) or 0),
            "out_of_range": row.get(f"{i}_out", 0) or 0,
        }
        for i, s in enumerate(scores)
    }


# -- all together ---------------------------------------------------------------------------------


def compute_insights(
    frame: pl.DataFrame,
    base_frame: pl.DataFrame | None = None,
    *,
    experiments: pl.DataFrame | None = None,
    human_scores: Iterable[str] = (),
    threshold: float = PASS_THRESHOLD,
    top: int = 10,
    min_count: int = MIN_COUNT,
    bins: int = 10,
    max_ids: int | None = None,
) -> dict[str, Any]:
    """Every insight of the trace rows ``frame`` (the Analyze screen calls this in a worker).

    ``base_frame``: the baseline's trace rows (``changes`` is None without one).
    ``experiments``: the project's experiments (:func:`evaltui.store.load_experiments`) for
    ``trends`` (None without). Returns ``{traces, threshold, summary, changes, errors: {task,
    scorer, task_total, scorer_total, outputs}, patterns, agreement, histograms, trends}``;
    the parts are described at their functions. JSON-serialisable.
    """
    ids = _Ids(max_ids)
    frame, feats = _prepare(frame)
    errors = _error_clusters(frame, ids, top)
    errors["outputs"] = _output_features(frame, feats, ids, threshold)
    out: dict[str, Any] = {
        "traces": frame.height,
        "threshold": threshold,
        "summary": _summary(frame, ids, 5),
        "changes": _what_changed(frame, base_frame, ids, 5, 2, MAX_LEVELS) if base_frame is not None else None,
        "errors": errors,
        "patterns": _patterns(frame, feats, ids, threshold, min_count, top, MAX_LEVELS),
        "agreement": _agreement(frame, ids, threshold, set(human_scores)),
        "histograms": score_histograms(frame, bins=bins),
        "trends": score_trends(experiments) if experiments is not None else None,
    }
    ids.run()
    return out


def _human_score_names(settings: Mapping[str, Any]) -> list[str]:
    names = []
    for d in settings.get("score_definitions") or []:
        if isinstance(d, str):
            names.append(d)
        elif isinstance(d, dict) and isinstance(d.get("name"), str):
            names.append(d["name"])
    return names


def analyze(
    store: Any,
    eid: str,
    *,
    base_eid: str | None = None,
    filter_text: str | None = None,
    compare: bool = True,
    max_ids: int | None = 1000,
) -> dict[str, Any]:
    """:func:`compute_insights` of an experiment of the store (``evaltui analyze``; ``--json`` prints it).

    ``eid``: an id or ``project/experiment``. The baseline: ``base_eid`` when given, else the
    one :func:`evaltui.query.compare.resolve_baseline` picks (none with ``compare=False``).
    ``filter_text`` (the current filter) narrows the experiment's rows; the baseline is then
    narrowed to the same cases (its rows whose comparison key the filtered rows have), so
    means compare like with like. Trends cover the project's experiments, unfiltered. Adds
    ``experiment`` and ``base_experiment`` ({id, project, name, created}) and ``filter``.
    ``max_ids`` caps each finding's row_ids (``row_count`` is always the whole count).
    Raises NotFound for an unknown experiment and FilterError for a bad filter.
    """
    from evaltui.store import find_experiment, load_experiments, load_span_rows, load_trace_rows, project_settings

    exp = find_experiment(store, eid)
    base_id = _compare.resolve_baseline(store, exp["id"], base_eid) if compare else None
    base_exp = find_experiment(store, base_id) if base_id else None
    frame = load_trace_rows(store, exp["id"])
    base = load_trace_rows(store, base_exp["id"]) if base_exp else None
    if filter_text and filter_text.strip():
        frame = filter_frame(frame, filter_text, spans=lambda: load_span_rows(store, exp["id"]))
        if base is not None and _compare.KEY in base.columns:
            keys = frame[_compare.KEY].drop_nulls().unique()
            base = base.filter(pl.col(_compare.KEY).is_in(keys.implode()))
    result = compute_insights(
        frame,
        base,
        experiments=load_experiments(store, exp["project"]),
        human_scores=_human_score_names(project_settings(store, exp["project_id"])),
        max_ids=max_ids,
    )
    return {
        "experiment": _compare._brief(exp),
        "base_experiment": _compare._brief(base_exp) if base_exp else None,
        "filter": filter_text or None,
        **result,
    }


# -- text --------------------------------------------------------------------------------------------


def _visible(text: Any, width: int | None = 100) -> str:
    """Text safe for a terminal on one line: control characters shown as escapes, cut to ``width``."""
    s = "" if text is None else str(text)
    s = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in s)
    if width is not None and len(s) > width:
        s = s[: width - 1] + "…"
    return s


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v * 100:+.1f}pp" if signed else f"{v * 100:.1f}%"


def _val(v: float | None) -> str:
    if v is None:
        return "-"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"


def _metric_text(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name in ("duration", "llm_duration", "ttft"):
        return f"{v:.3f}s"
    if name == "estimated_cost":
        return f"${v:.6f}" if abs(v) < 1 else f"${v:,.2f}"
    return _val(v)


def _p(p: float | None) -> str:
    if p is None:
        return "p=-"
    if p < 1e-10:
        return "p<1e-10"
    return f"p={p:.2g}"


def _exp_name(e: Mapping[str, Any] | None) -> str:
    return f"{e['project']}/{e['name']}" if e else "experiment"


_SPARK = " ▁▂▃▄▅▆▇█"


def _spark(counts: Sequence[int]) -> str:
    top = max(counts) if counts else 0
    if not top:
        return ""
    return "".join(_SPARK[0 if not c else max(1, round(c / top * 8))] for c in counts)


def analysis_text(result: Mapping[str, Any], *, limit: int = 5) -> str:
    """A plain-text rendering of :func:`analyze` / :func:`compute_insights` (for a terminal).

    Scores are percentages, their differences percentage points (pp); messages and values
    from the data are shown with control characters escaped. At most ``limit`` items per list.
    """
    lines: list[str] = []
    add = lines.append
    exp = result.get("experiment")
    head = f"Analysis of {_visible(_exp_name(exp), None)}: {result['traces']} traces"
    if result.get("filter"):
        head += f" (filter: {_visible(result['filter'], None)})"
    add(head)
    summary = result["summary"]

    # summary
    add("")
    add("Summary")
    rows = [(n, e, True) for n, e in summary["scores"].items()] + [(n, e, False) for n, e in summary["metrics"].items()]
    if rows:
        w = max(len(_visible(n, 30)) for n, _, _ in rows)
        add(f"  {'':<{w}}  {'mean':>9}  {'std':>9}  {'p10':>9}  {'p50':>9}  {'p90':>9}  {'n':>6}")
        for n, e, is_score in rows:
            cells = [_pct(e[k]) if is_score else _metric_text(n, e[k]) for k in ("mean", "std", "p10", "p50", "p90")]
            add(f"  {_visible(n, 30):<{w}}  " + "  ".join(f"{c:>9}" for c in cells) + f"  {e['count']:>6}")
    reviewed = summary.get("reviewed_share")
    add(f"  {summary['errors']['row_count']} traces with task errors, {summary['scorer_errors']['row_count']}"
        f" with scorer errors; {summary['reviewed']} reviewed ({_pct(reviewed)})")

    # what changed
    changes = result.get("changes")
    if not changes:
        add("")
        add("What changed: no baseline to compare with")
    else:
        add("")
        add(f"What changed vs {_visible(_exp_name(result.get('base_experiment')), None)}"
            f" ({changes['matched']} matched rows; {changes['unmatched']} only here,"
            f" {changes['base_unmatched']} only in the base)")
        w = max((len(_visible(n, 30)) for n in changes["scores"]), default=0)
        for n, e in changes["scores"].items():
            add(f"  {_visible(n, 30):<{w}}  {_pct(e['mean']):>7}  {_pct(e['diff'], True):>9}"
                f"  {e['improvements'] or 0:>4} improvements  {e['regressions'] or 0:>4} regressions")
        if changes["concentrations"]:
            add(f"  Regressions concentrate in ({changes['test']}; {changes['rule']}):")
            for c in changes["concentrations"][:limit]:
                add(f"    {_visible(c['group'], 60)}  [{_visible(c['score'], 30)}]  {c['regressions']} regressions"
                    f" of {c['rows']} rows: {_pct(c['share_of_regressions'])} of regressions vs"
                    f" {_pct(c['share_of_rows'])} of rows, lift {c['lift']:.1f}x, {_p(c['p_value'])}"
                    + ("" if c["significant"] else " (n.s.)"))
                if c.get("same_rows_as"):
                    add(f"      (same rows: {_visible(', '.join(c['same_rows_as']), 90)})")
        for n, e in changes["scores"].items():
            worst = e.get("moved_most", {}).get("regressions") or []
            if worst:
                moved = ", ".join(f"{_visible(c['row_ids'][0] if c['row_ids'] else '?', 12)}"
                                  f" {_pct(c['delta'], True)}" for c in worst[:3])
                add(f"  Fell most on {_visible(n, 30)}: {moved}")

    # errors
    errors = result["errors"]
    add("")
    add(f"Errors: {errors['task_total']} task errors, {errors['scorer_total']} traces with scorer errors")
    for title, key in (("Task errors", "task"), ("Scorer errors", "scorer")):
        clusters = errors[key]
        if not clusters:
            continue
        add(f"  {title} ({len(clusters)} {'kind' if len(clusters) == 1 else 'kinds'})")
        for c in clusters[:limit]:
            who = f"[{_visible(c['scorer'], 30)}] " if c.get("scorer") else ""
            add(f"    {c['count']:>5}  {who}{_visible(c['template'], 90)}")
            if c.get("example") and c["example"] != c["template"]:
                add(f"           e.g. {_visible(c['example'], 90)}")
        if len(clusters) > limit:
            add(f"    … {len(clusters) - limit} more kinds")
    outputs = [o for o in errors.get("outputs") or [] if o["low"]]
    if outputs:
        add("  Low-scoring outputs by feature")
        for o in outputs[:limit]:
            rate = _pct(o["low_rate_without"]) if o["low_rate_without"] is not None else "-"
            add(f"    {o['low']:>5}  {o['label']}: {o['low']} of {o['rows']} low ({_pct(o['low_rate'])};"
                f" {rate} without it)")

    # patterns
    patterns = result["patterns"]
    add("")
    add(f"Low-score patterns ({patterns['rule']}; {patterns['test']}; {patterns['tests']} groups tested)")
    if not patterns["top"]:
        add("  none found")
    for rank, it in enumerate(patterns["top"][:limit], 1):
        lift = f", lift {it['lift']:.1f}x" if it["lift"] is not None else ""
        add(f"  {rank}. {_visible(it['score'], 30)}: {_visible(it['group'], 70)}  mean {_pct(it['mean_in'])}"
            f" vs {_pct(it['mean_out'])} (n={it['count']}, {_pct(it['share'])} of rows){lift},"
            f" {_p(it['p_value'])}" + ("" if it["significant"] else " (n.s.)"))
        if it.get("same_rows_as"):
            add(f"     same rows: {_visible(', '.join(it['same_rows_as']), 100)}")
        if it["filter"]:
            add(f"     filter: {_visible(it['filter'], 110)}")

    # agreement
    if result.get("agreement"):
        add("")
        add(f"Scorer agreement (pass at {result.get('threshold', PASS_THRESHOLD)})")
        for a in result["agreement"][: limit * 3]:
            pe = f"{a['pearson']:.2f}" if a["pearson"] is not None else "-"
            sp = f"{a['spearman']:.2f}" if a["spearman"] is not None else "-"
            tag = " (human vs automatic)" if a["kind"] == "human-automatic" else ""
            add(f"  {_visible(a['a'], 30)} ~ {_visible(a['b'], 30)}{tag}: pearson {pe}, spearman {sp},"
                f" agree {_pct(a['agreement'])} of {a['n']}")

    # trends and histograms
    trends = result.get("trends")
    if trends:
        add("")
        add("Trends (mean per experiment, oldest first)")
        for n, points in trends.items():
            add(f"  {_visible(n, 30)}: " + " → ".join(
                f"{_visible(p['experiment'], 30)} {_pct(p['mean'])}" for p in points))
    hist = result.get("histograms")
    if hist:
        add("")
        add("Distributions (0 → 1)")
        w = max(len(_visible(n, 30)) for n in hist)
        for n, h in hist.items():
            add(f"  {_visible(n, 30):<{w}}  |{_spark(h['counts'])}|  n={h['count']}")
    return "\n".join(lines)
