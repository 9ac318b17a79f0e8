"""Analyze: the insights of one experiment (and the table's filter) as a list of findings.

Opened from the experiment screen (``A``). :func:`evaltui.query.insights.analyze` runs in a
worker (the screen says "computing…" and stays usable); its result becomes one scrolling list:
Summary, What changed (against the baseline ``resolve_baseline`` picks; ``b`` tries the next),
Error categories, Low-score patterns, Scorer agreement, Trends and Distributions (block-character
charts). Every finding holds its rows: enter goes back to the table filtered to them, ``d``
makes a dataset of them. ``a`` opens the optional LLM assistant (``[assistant]`` in config):
it shows what would be sent, then streams the answer from a worker.

Everything from the data (groups, messages, names) is painted through ``safe_text``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from evaltui.query.filter import FilterError, Literal, format_filter
from evaltui.tui.commands import BindingCommands
from evaltui.tui.widgets.charts import column_chart
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.widgets.footer import KeyFooter

__all__ = ["AnalyzeScreen", "Finding", "FindingList", "finding_filter", "insight_options"]

MAX_IDS = 1000  # row ids kept per finding (converting every id of 100k rows to Python costs more than the rest)
PROMPT_ROWS = 40  # example rows offered to the assistant (the prompt builder caps by size too)
GOOD, FAIR, BAD = "#98c379", "#e5c07b", "#e06c75"
DEFAULT, NONE = "default", "none"  # baseline choices besides an experiment id


# -- findings ---------------------------------------------------------------------------------


@dataclass
class Finding:
    """A selectable line of the analysis: what it says and the rows behind it."""

    kind: str
    label: str  # one line, for notifications and dataset descriptions (already safe)
    row_ids: list[str] = field(default_factory=list)
    row_count: int = 0
    filter: str | None = None  # filter text selecting exactly these rows (of the analysed frame)
    scope_filter: str | None = None
    name: str = ""  # words for a dataset name


def _id_filter(ids: list[str]) -> str:
    return "root_span_id in (" + ", ".join(format_filter(Literal(i)) for i in ids) + ")"


def finding_filter(finding: Finding) -> str | None:
    """Filter text for the finding's rows: its own filter, else its row ids, else its group."""
    if finding.filter:
        return finding.filter
    if finding.row_ids and len(finding.row_ids) == finding.row_count:
        return _id_filter(finding.row_ids)
    return finding.scope_filter


def _finding(kind: str, label: str, item: dict[str, Any], name: str) -> Finding:
    return Finding(kind, label, list(item.get("row_ids") or []), int(item.get("row_count") or 0),
                   item.get("filter"), item.get("scope_filter"), name)


def _group_words(group: str) -> str:
    """``metadata.category = 'c'`` -> ``category c``: a group as words for a name."""
    return re.sub(r"^metadata\.|^tags includes ", "", group).replace(" = ", " ")


# -- formatting --------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _pp(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:+.1f}pp"


def _p(p: float | None) -> str:
    if p is None:
        return "p –"
    return "p<1e-10" if p < 1e-10 else f"p={p:.2g}"


def _score_style(v: float | None) -> str:
    if v is None:
        return "dim"
    return GOOD if v >= 0.75 else FAIR if v >= 0.5 else BAD


def _metric(name: str, v: float | None) -> str:
    if v is None:
        return "–"
    if name in ("duration", "llm_duration", "ttft"):
        return f"{v:.2f}s"
    if name == "estimated_cost":
        return f"${v:.5f}" if abs(v) < 1 else f"${v:,.2f}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _ref(e: dict[str, Any] | None) -> str:
    return f"{e['project']}/{e['name']}" if e else ""


def _heading(title: str, note: str = "") -> Option:
    t = Text(no_wrap=True, overflow="ellipsis", end="")
    t.append(title, "bold underline")
    if note:
        t.append("  " + note, "dim")
    return Option(t, disabled=True)


def _line(*parts: tuple[str, str] | str) -> Text:
    t = Text(end="", no_wrap=True, overflow="ellipsis")  # each line cut at the edge, not wrapped
    for p in parts:
        if isinstance(p, str):
            t.append(p)
        else:
            t.append(*p)
    return t


def _join(*lines: Text) -> Text:
    """Lines (each already a Text) as one Text that is cut at the edge, never wrapped."""
    out = Text("\n", no_wrap=True, overflow="ellipsis", end="").join(lines)
    out.no_wrap, out.overflow = True, "ellipsis"
    return out


def _fit(text: Text, width: int) -> Text:
    """Each line of ``text`` cut to ``width`` cells with an ellipsis (the list would wrap it)."""
    lines = text.split("\n", allow_blank=True)
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return Text("\n", end="").join(lines)


def _plain(text: Any, oid: str | None = None) -> Option:
    """Content without rows (tables, charts, notes): the cursor can rest on it, so all of it is reachable."""
    return Option(text, id=oid)


# -- the list of options ------------------------------------------------------------------------------


def insight_options(result: dict[str, Any], width: int = 80) -> tuple[list[Option | None], dict[str, Finding]]:
    """The analysis as OptionList content (headings and charts disabled) and the findings by option id."""
    options: list[Option | None] = []
    findings: dict[str, Finding] = {}
    cut = max(20, width)  # cells for one data value (then each line is cut to the room)
    room = max(20, width - 4)  # the list's padding and scrollbar

    def add_finding(f: Finding, prompt: Text) -> None:
        oid = f"f{len(findings)}"
        findings[oid] = f
        options.append(Option(_fit(prompt, room), id=oid, disabled=not f.row_count))

    # summary
    summary = result["summary"]
    options.append(_heading("Summary", f"{result['traces']:,} traces"))
    if summary["scores"] or summary["metrics"]:
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
        table.add_column("", no_wrap=True, max_width=28)
        for c in ("mean", "p10", "p50", "p90", "n"):
            table.add_column(c, justify="right", no_wrap=True)
        for name, e in summary["scores"].items():
            table.add_row(Text(safe_text(name, 28)), Text(_pct(e["mean"]), _score_style(e["mean"])),
                          _pct(e["p10"]), _pct(e["p50"]), _pct(e["p90"]), f"{e['count']:,}")
        for name in ("duration", "tokens", "estimated_cost"):
            e = summary["metrics"].get(name)
            if e:
                table.add_row(Text(name, "dim"), _metric(name, e["mean"]), _metric(name, e["p10"]),
                              _metric(name, e["p50"]), _metric(name, e["p90"]), f"{e['count']:,}")
        options.append(_plain(table))  # type: ignore[arg-type]
    errs, scorer = summary["errors"], summary["scorer_errors"]
    add_finding(_finding("errors", f"{errs['row_count']} traces with task errors", errs, "task errors"),
                _line((f"{errs['row_count']:,}", "bold"), " traces with task errors"))
    add_finding(_finding("scorer_errors", f"{scorer['row_count']} traces with scorer errors", scorer,
                         "scorer errors"),
                _line((f"{scorer['row_count']:,}", "bold"), " traces with scorer errors"))
    share = summary.get("reviewed_share")
    options.append(_plain(_fit(_line((f"{summary['reviewed']:,}", "bold"), f" reviewed ({_pct(share)})"), room)))

    # what changed
    changes = result.get("changes")
    base = result.get("base_experiment")
    if not changes:
        options.append(_heading("What changed", "no baseline to compare with · b picks one"))
    else:
        options.append(_heading(
            "What changed", f"vs {safe_text(_ref(base), 60)} · {changes['matched']:,} matched rows · b: next baseline"))
        tbl = Table(box=None, padding=(0, 1), show_edge=False, show_header=False)
        tbl.add_column(no_wrap=True, max_width=28)
        for _ in range(4):
            tbl.add_column(justify="right", no_wrap=True)
        for name, e in changes["scores"].items():
            diff = e.get("diff")
            tbl.add_row(Text(safe_text(name, 28)), Text(_pct(e.get("mean")), _score_style(e.get("mean"))),
                        Text(_pp(diff), GOOD if (diff or 0) > 0 else BAD if (diff or 0) < 0 else "dim"),
                        Text(f"{e.get('improvements') or 0} ↑", GOOD), Text(f"{e.get('regressions') or 0} ↓", BAD))
        options.append(_plain(tbl))  # type: ignore[arg-type]
        conc = changes.get("concentrations") or []
        if conc:
            options.append(Option(Text("Regressions concentrate in", "italic"), disabled=True))
        for c in conc:
            group = safe_text(c["group"], cut)
            label = f"{group} [{safe_text(c['score'], 30)}]: {c['regressions']} of {c['rows']} rows regressed"
            traces = f" ({c.get('row_count', 0)} traces)" if c.get("row_count") != c["regressions"] else ""
            prompt = _line((group, "bold"), " ", (f"[{safe_text(c['score'], 30)}]", "dim"), "\n  ",
                           (_p(c["p_value"]) + ("" if c["significant"] else " (n.s.)"),
                            "" if c["significant"] else "dim"),
                           f" · {c['regressions']} of {c['rows']} rows regressed{traces} · lift {c['lift']:.1f}×"
                           f" · {_pct(c['share_of_regressions'])} of regressions vs {_pct(c['share_of_rows'])} of rows")
            add_finding(_finding("concentration", label, c, f"{_group_words(c['group'])} regressed {c['score']}"), prompt)

    # errors
    errors = result["errors"]
    options.append(_heading("Error categories",
                            f"{errors['task_total']:,} task errors · {errors['scorer_total']:,} with scorer errors"))
    if not errors["task"] and not errors["scorer"]:
        options.append(Option(Text("  no errors", "dim"), disabled=True))
    for c in errors["task"] + errors["scorer"]:
        who = f"[{safe_text(c['scorer'], 30)}] " if c.get("scorer") else ""
        template = safe_text(c["template"], cut)
        prompt = _line((f"{c['count']:>4}× ", "bold"), (who, "dim"), (template, BAD if c["kind"] == "task_error" else FAIR))
        if c.get("example") and c["example"] != c["template"]:
            prompt.append("\n       e.g. " + safe_text(c["example"], cut), "dim")
        kind = "task error" if c["kind"] == "task_error" else "scorer error"
        add_finding(_finding(c["kind"], f"{kind} {who}{safe_text(c['template'], 80)} ({c['count']})", c,
                             " ".join(re.sub(r"<[^>]*>|'[^']*'|\"[^\"]*\"", " ", c["template"]).split()[:5])), prompt)
    outputs = [o for o in errors.get("outputs") or [] if o["low"]]
    if outputs:
        options.append(Option(Text("Low-scoring outputs by feature", "italic"), disabled=True))
    for o in outputs:
        rate = _pct(o["low_rate_without"]) if o["low_rate_without"] is not None else "–"
        prompt = _line((f"{o['low']:>4}× ", "bold"), (safe_text(o["label"], cut), "bold"),
                       f": {o['low']} of {o['rows']} low ({_pct(o['low_rate'])}; {rate} without it)")
        add_finding(_finding("output_feature", f"low-scoring, {o['label']}", o, f"low {o['feature']}"), prompt)

    # patterns
    patterns = result["patterns"]
    options.append(_heading("Low-score patterns",
                            f"{patterns['tests']} groups tested · Mann-Whitney, Bonferroni-ranked"))
    if not patterns["top"]:
        options.append(Option(Text("  none found", "dim"), disabled=True))
    for rank, it in enumerate(patterns["top"], 1):
        group = safe_text(it["group"], cut)
        lift = f" · lift {it['lift']:.1f}×" if it["lift"] is not None else ""
        prompt = _line((f"{rank:>2}. ", "bold"), (group, "bold"), " ", (f"[{safe_text(it['score'], 30)}]", "dim"),
                       "\n    ", (_p(it["p_value"]) + ("" if it["significant"] else " (n.s.)"),
                                 "" if it["significant"] else "dim"),
                       " · mean ", (_pct(it["mean_in"]), _score_style(it["mean_in"])), f" vs {_pct(it['mean_out'])}"
                       f" · {it.get('row_count', 0)} low rows{lift} · n={it['count']} ({_pct(it['share'])} of rows)")
        if it.get("same_rows_as"):
            prompt.append("\n    same rows: " + safe_text(", ".join(it["same_rows_as"]), cut), "dim")
        label = f"{group} [{safe_text(it['score'], 30)}]: {it.get('row_count', 0)} low-scoring rows"
        add_finding(_finding("pattern", label, it, f"{_group_words(it['group'])} low {it['score']}"), prompt)

    # agreement
    agreement = result.get("agreement") or []
    if agreement:
        options.append(_heading("Scorer agreement", f"pass at {result.get('threshold', 0.5):g} · enter: rows they"
                                " disagree on"))
    for a in agreement:
        pe = f"{a['pearson']:.2f}" if a["pearson"] is not None else "–"
        sp = f"{a['spearman']:.2f}" if a["spearman"] is not None else "–"
        tag = " (human vs automatic)" if a["kind"] == "human-automatic" else ""
        pair = f"{safe_text(a['a'], 30)} ~ {safe_text(a['b'], 30)}"
        prompt = _line((pair, "bold"), (tag, "dim"), f"  r {pe} · ρ {sp} · agree ",
                       (_pct(a["agreement"]), _score_style(a["agreement"])), f" of {a['n']:,}",
                       (f" · {a.get('row_count', 0)} disagree", "dim"))
        add_finding(_finding("agreement", f"{pair}: {a.get('row_count', 0)} rows they disagree on", a,
                             f"{a['a']} vs {a['b']} disagree"), prompt)

    # trends
    trends = result.get("trends") or {}
    current = (result.get("experiment") or {}).get("id")
    if trends:
        n_exp = max(len(p) for p in trends.values())
        options.append(_heading("Trends", f"mean per experiment, oldest first · {n_exp} experiments"))
    bars = max(4, (width - 12) // 3)  # bars that fit beside the axis labels
    for name, points in trends.items():
        shown = points[-bars:]
        values = [p["mean"] for p in shown]
        here = next((i for i, p in enumerate(shown) if p["id"] == current), None)
        # the scale hugs the data (in tenths), so 69% and 87% look different
        known = [v for v in values if v is not None] or [0.0]
        lo = max(0.0, math.floor(min(known) * 10 - 0.5) / 10)
        hi = min(1.0, max(lo + 0.1, math.ceil(max(known) * 10) / 10))
        chart = column_chart(values, height=4, lo=lo, hi=hi, bar_width=2, gap=1, style="#61afef", highlight=here,
                             highlight_style="bold #e5c07b", axis=(f"{hi * 100:.0f}%", f"{lo * 100:.0f}%"))
        head = _line((safe_text(name, 28), "bold"), "  ")
        first, last = shown[0], shown[-1]
        head.append(f"{safe_text(first['experiment'], 24)} {_pct(first['mean'])}", "dim")
        if len(shown) > 1:
            head.append(" → ", "dim")
            head.append(f"{safe_text(last['experiment'], 24)} {_pct(last['mean'])}", "dim")
        if here is not None:
            head.append(f" · this one {_pct(shown[here]['mean'])}", "bold #e5c07b")
        if len(points) > len(shown):
            head.append(f" (last {len(shown)} of {len(points)})", "dim")
        options.append(_plain(_fit(_join(head, chart), room)))

    # histograms
    hist = result.get("histograms") or {}
    if hist:
        options.append(_heading("Distributions", "each score in 10 bins, 0 → 1"))
    for name, h in hist.items():
        top = max(h["counts"]) if h["counts"] else 0
        chart = column_chart([c / top if top else 0.0 for c in h["counts"]], height=3, bar_width=2, gap=1,
                             style="#c678dd", axis=(f"{top}", "0"))
        head = _line((safe_text(name, 28), "bold"), (f"  n={h['count']:,}", "dim"))
        if h["nulls"]:
            head.append(f" · {h['nulls']:,} without a score", "dim")
        if h["out_of_range"]:
            head.append(f" · {h['out_of_range']:,} outside 0..1", FAIR)
        pad = len(str(top)) + 1
        axis = Text(" " * pad + "0" + " " * (3 * len(h["counts"]) - 3) + "1", "dim")
        options.append(_plain(_fit(_join(head, chart, axis), room)))
    return options, findings


# -- widgets --------------------------------------------------------------------------------------


class FindingList(OptionList):
    """The analysis; enter shows a finding's rows in the table."""

    HELP_GROUP = "Findings"
    BINDINGS = [
        Binding("j,down", "cursor_down", "Next finding", show=False, id="findings.cursor-down"),
        Binding("k,up", "cursor_up", "Previous finding", show=False, id="findings.cursor-up"),
        Binding("g,home", "first", "First finding", show=False, id="findings.cursor-first"),
        Binding("G,end", "last", "Last finding", show=False, id="findings.cursor-last"),
        Binding("ctrl+d,pagedown", "page_down", "Page down", show=False, id="findings.page-down"),
        Binding("ctrl+u,pageup", "page_up", "Page up", show=False, id="findings.page-up"),
        Binding("enter", "select", "Show these rows", id="findings.select"),
    ]


class AnalyzeCommands(BindingCommands):
    """Commands of the Analyze screen (its keys and the finding list's)."""

    def extra_nodes(self) -> list[Any]:
        found = self.screen.query(FindingList)
        return [found.first()] if found else []


class AnalyzeScreen(Screen[None]):
    """Insights of one experiment; enter filters the table to a finding's rows, esc goes back."""

    HELP_GROUP = "Analyze"
    COMMANDS = {AnalyzeCommands}
    BINDINGS = [
        Binding("escape,q", "back", "Back", id="analyze.back"),
        Binding("d", "dataset", "Dataset of these rows", id="analyze.dataset"),
        Binding("b", "baseline", "Next baseline", id="analyze.baseline"),
        Binding("a", "ask", "Ask the assistant", id="analyze.ask"),
        Binding("r", "recompute", "Recompute", show=False, id="analyze.recompute"),
    ]

    class Computed(Message):
        def __init__(self, token: int, result: dict[str, Any] | None, note: str | None = None,
                     error: str | None = None, experiments: list[dict[str, Any]] | None = None,
                     built: tuple[int, list[Option | None], dict[str, Finding]] | None = None) -> None:
            self.token = token
            self.result = result
            self.note = note
            self.error = error
            self.experiments = experiments or []
            self.built = built  # (width, options, findings), made in the worker
            super().__init__()

    class DatasetMade(Message):
        def __init__(self, text: str, error: bool = False) -> None:
            self.text = text
            self.error = error
            super().__init__()

    class PromptReady(Message):
        def __init__(self, messages: list[dict[str, str]] | None, sent: dict[str, Any] | None,
                     error: str | None = None) -> None:
            self.messages = messages
            self.sent = sent
            self.error = error
            super().__init__()

    class AnswerProgress(Message):
        """The answer so far (a newer one replaces an unprocessed older one: fast streams coalesce)."""

        def __init__(self, token: int, text: str, done: bool = False, error: str | None = None) -> None:
            self.token = token
            self.text = text
            self.done = done
            self.error = error
            super().__init__()

        def can_replace(self, message: Message) -> bool:
            return (isinstance(message, AnalyzeScreen.AnswerProgress) and not message.done
                    and message.error is None and message.token == self.token)

    def __init__(self, experiment: dict[str, Any], filter_text: str | None = None, origin: Any = None) -> None:
        super().__init__(id="analyze")
        self.experiment = experiment
        self.filter_text = filter_text if filter_text and filter_text.strip() else None
        self.origin = origin  # the ExperimentScreen to filter on enter
        self.result: dict[str, Any] | None = None
        self.findings: dict[str, Finding] = {}
        self.note: str | None = None
        self.filter_applied = self.filter_text is not None
        self.baseline = DEFAULT  # DEFAULT, NONE or an experiment id
        self.experiments: list[dict[str, Any]] = []  # the project's, newest first
        self.computing = False
        self._token = 0
        self._ask_token = 0
        self._answer = ""
        self._prompt: list[dict[str, str]] | None = None
        self._sent: dict[str, Any] | None = None
        self._question = ""
        self._streaming = False
        self._built_width = 0

    @property
    def ref(self) -> str:
        return _ref(self.experiment)

    def compose(self) -> ComposeResult:
        yield Static("", id="an-title", classes="title-line")
        yield FindingList(id="an-list")
        with Vertical(id="an-ask"):
            yield Static("", id="an-ask-status")
            yield Input(placeholder="Ask about these results, e.g. why did Factuality drop? (enter sends)",
                        id="an-question")
            with VerticalScroll(id="an-answer-box"):
                yield Static("", id="an-answer")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(FindingList).focus()
        self.recompute()

    # -- computing ---------------------------------------------------------------------------

    def recompute(self) -> None:
        self._token += 1
        self.computing = True
        lst = self.query_one(FindingList)
        lst.set_options([Option(Text(f"Computing insights of {safe_text(self.ref, 80)}…", "italic"), disabled=True)])
        self._update_title()
        self.compute(self._token, self.baseline, self.filter_text)

    def action_recompute(self) -> None:
        self.recompute()

    @work(thread=True, exclusive=True, exit_on_error=False, group="insights")
    def compute(self, token: int, baseline: str, filter_text: str | None) -> None:
        from evaltui.query.insights import analyze

        store = self.app.store  # type: ignore[attr-defined]
        eid = self.experiment["id"]
        base = None if baseline in (DEFAULT, NONE) else baseline
        note = None
        try:
            try:
                result = analyze(store, eid, base_eid=base, filter_text=filter_text, compare=baseline != NONE,
                                 max_ids=MAX_IDS)
            except FilterError as e:
                note = f"the table's filter does not apply to trace rows ({e.message}); all rows analysed"
                result = analyze(store, eid, base_eid=base, compare=baseline != NONE, max_ids=MAX_IDS)
            # the baselines worth trying: the project's experiments with scores (trends lists them)
            seen: dict[str, str] = {}
            for points in (result.get("trends") or {}).values():
                for p in points:
                    seen.setdefault(p["id"], p["experiment"])
            exps = [{"id": i, "name": n} for i, n in reversed(list(seen.items()))]  # newest first
            width = self.size.width or 80
            built = (width, *insight_options(result, width))  # off the event loop too
        except Exception as e:
            self.post_message(self.Computed(token, None, error=f"could not analyse {self.ref}: {e}"))
            return
        self.post_message(self.Computed(token, result, note, experiments=exps, built=built))

    def on_analyze_screen_computed(self, message: Computed) -> None:
        if message.token != self._token:
            return  # a newer computation is on its way
        self.computing = False
        lst = self.query_one(FindingList)
        if message.result is None:
            lst.set_options([_plain(Text(safe_text(message.error or "analysis failed", 400), "bold red"))])
            self._update_title()
            return
        self.result = message.result
        self.note = message.note
        self.filter_applied = self.filter_text is not None and message.note is None
        self.experiments = message.experiments
        self._show_result(message.built)
        self._update_title()

    def _show_result(self, built: tuple[int, list[Option | None], dict[str, Finding]] | None = None) -> None:
        """Fill the list from the result, at the screen's width (lines are cut to it, not wrapped)."""
        if self.result is None:
            return
        lst = self.query_one(FindingList)
        if built is None or built[0] != (self.size.width or 80):
            built = (self.size.width or 80, *insight_options(self.result, self.size.width or 80))
        self._built_width, options, self.findings = built
        options.append(_heading("Assistant", "a: ask a question about these results"))
        options.append(_plain(self._assistant_status(), "assistant"))
        highlighted = lst.highlighted
        lst.set_options(options)
        first = next((i for i, o in enumerate(options) if isinstance(o, Option) and o.id and not o.disabled), None)
        if highlighted is not None and highlighted < len(options) and not options[highlighted].disabled:  # type: ignore[union-attr]
            lst.highlighted = highlighted
        elif first is not None:
            lst.highlighted = first

    def on_resize(self, event: Resize) -> None:
        if self.result is not None and not self.computing and event.size.width != self._built_width:
            self._show_result()

    def _update_title(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append("Analyze ", "bold")
        t.append(safe_text(self.ref, 80), "bold")
        if self.computing:
            t.append(" · computing…", "italic")
        elif self.result is not None:
            t.append(f" · {self.result['traces']:,} traces", "dim")
            base = self.result.get("base_experiment")
            t.append(" · vs ", "dim")
            t.append(safe_text(_ref(base), 60) if base else "no baseline", "bold" if base else "dim")
        if self.filter_text:
            t.append(" · filter: ", "dim")
            t.append(safe_text(self.filter_text, 120), "bold" if self.filter_applied or self.computing else "strike")
        if self.note:
            t.append("  " + safe_text(self.note, 200), "bold #e5c07b")
        self.query_one("#an-title", Static).update(t)

    # -- baseline ----------------------------------------------------------------------------

    def action_baseline(self) -> None:
        """Compare with the next baseline: each other experiment of the project in turn, then none."""
        cycle = [e["id"] for e in self.experiments if e["id"] != self.experiment["id"]] + [NONE]
        current = self.baseline
        if current == DEFAULT:
            base = (self.result or {}).get("base_experiment")
            current = base["id"] if base else NONE
        i = cycle.index(current) if current in cycle else -1
        self.baseline = cycle[(i + 1) % len(cycle)]
        self.recompute()

    # -- findings ------------------------------------------------------------------------------

    def current_finding(self) -> Finding | None:
        option = self.query_one(FindingList).highlighted_option
        if option is None or option.id is None:
            return None
        return self.findings.get(option.id)

    @on(OptionList.OptionSelected, "#an-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        finding = self.findings.get(event.option_id or "")
        if finding is not None:
            self.show_rows(finding)
        elif event.option_id == "assistant":
            self.action_ask()

    def show_rows(self, finding: Finding) -> None:
        """Back to the table, filtered to the finding's rows (within the table's filter)."""
        text = finding_filter(finding)
        if text is None or not finding.row_count:
            self.app.notify("This finding has no rows to show", severity="warning")
            return
        if self.filter_applied and self.filter_text:
            text = f"({self.filter_text}) and ({text})"  # the finding is about the filtered rows
        whole_group = finding.filter is None and text is not None and finding.scope_filter is not None and not (
            finding.row_ids and len(finding.row_ids) == finding.row_count)
        origin = self.origin
        if origin is None or not hasattr(origin, "apply_filter_text"):
            self.app.notify("No table to filter", severity="warning")
            return
        self.app.pop_screen()
        origin.apply_filter_text(text)
        if whole_group:  # too many rows to list by id: the group they are in
            self.app.notify(safe_text(f"Showing all rows of {finding.scope_filter}; the finding's {finding.row_count:,}"
                                      f" rows are among them ({finding.label})", 300), timeout=8, markup=False)
        else:
            self.app.notify(safe_text(f"{finding.row_count:,} rows: {finding.label}", 300), timeout=4, markup=False)

    def action_dataset(self) -> None:
        finding = self.current_finding()
        if finding is None or not finding.row_count:
            self.app.notify("Highlight a finding with rows to make a dataset of them", severity="warning")
            return
        if finding.filter is None and len(finding.row_ids) < finding.row_count:
            self.app.notify(f"This finding has {finding.row_count:,} rows, more than the {MAX_IDS:,} it lists and no"
                            " filter that selects them; filter the table (enter) and use `evaltui dataset create"
                            " --filter`", severity="warning", timeout=10)
            return
        name = _dataset_name(self.experiment["name"], finding)
        self.make_dataset(finding, name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="dataset")
    def make_dataset(self, finding: Finding, name: str) -> None:
        from evaltui.store.datasets import DatasetExists, dataset_from_experiment

        store = self.app.store  # type: ignore[attr-defined]
        description = f"{finding.label} (Analyze, {self.ref})"
        try:
            ids = finding.row_ids
            if len(ids) < finding.row_count and finding.filter:
                ids = self._matching_ids(finding.filter)
            for attempt in range(1, 100):
                candidate = name if attempt == 1 else f"{name}-{attempt}"
                try:
                    _, n = dataset_from_experiment(store, self.experiment["id"], candidate,
                                                   root_span_ids=ids, description=description)
                except DatasetExists:
                    continue
                self.post_message(self.DatasetMade(
                    f"Created dataset {self.experiment['project']}/{candidate}: {n} record{'s' if n != 1 else ''}"))
                return
            self.post_message(self.DatasetMade(f"Could not find a free dataset name like {name!r}", error=True))
        except Exception as e:
            self.post_message(self.DatasetMade(f"Could not create the dataset: {e}", error=True))

    def _matching_ids(self, text: str) -> list[str]:
        """root_span_ids of the analysed rows that ``text`` selects (as the table would filter them)."""
        from evaltui.query.filter import filter_frame
        from evaltui.store import load_span_rows, load_trace_rows

        store, eid = self.app.store, self.experiment["id"]  # type: ignore[attr-defined]
        if self.filter_applied and self.filter_text:
            text = f"({self.filter_text}) and ({text})"
        rows = filter_frame(load_trace_rows(store, eid), text, spans=lambda: load_span_rows(store, eid))
        return rows["root_span_id"].to_list()

    def on_analyze_screen_dataset_made(self, message: DatasetMade) -> None:
        self.app.notify(safe_text(message.text, 300), severity="error" if message.error else "information",
                        timeout=8 if message.error else 5, markup=False)

    # -- the assistant -------------------------------------------------------------------------

    def _assistant_table(self) -> Any:
        return self.app.config.extra.get("assistant")  # type: ignore[attr-defined]

    def _assistant_config(self) -> tuple[Any, str | None]:
        from evaltui.query.assistant import AssistantError, assistant_config

        try:
            return assistant_config(self._assistant_table()), None
        except AssistantError as e:
            return None, str(e)

    def _assistant_status(self) -> Text:
        cfg, problem = self._assistant_config()
        if cfg is None:
            first = (problem or "").split("\n", 1)[0]
            return Text(safe_text(first, 200) + " Press a for how to enable it.", "dim")
        return Text(safe_text(f"{cfg.model} at {cfg.base_url}: press a, type a question, enter sends it", 200), "dim")

    def action_ask(self) -> None:
        panel = self.query_one("#an-ask")
        self.add_class("-asking")
        panel.display = True
        cfg, problem = self._assistant_config()
        question = self.query_one("#an-question", Input)
        if cfg is None:
            question.display = False
            self._set_status(Text("Assistant not configured", "bold"))
            self._set_answer(Text(safe_text(problem, None, newlines=True)))
            self.query_one("#an-answer-box").focus()
            return
        question.display = True
        question.focus()
        if self._streaming:
            return
        if self.result is None:
            self._set_status(Text("The insights are still being computed…", "italic"))
            return
        self._set_status(Text(safe_text(f"{cfg.model} at {cfg.endpoint} · preparing what would be sent…", 300),
                              "italic"))
        self.prepare_prompt(None)

    def close_ask(self) -> None:
        self.remove_class("-asking")
        self.query_one("#an-ask").display = False
        self.query_one(FindingList).focus()

    def _set_status(self, text: Text) -> None:
        self.query_one("#an-ask-status", Static).update(text)

    def _set_answer(self, text: Text) -> None:
        self.query_one("#an-answer", Static).update(text)

    def _rows_for_prompt(self) -> pl.DataFrame | None:
        """The rows the top findings point to (patterns, regressions, errors), in that order."""
        from evaltui.store import load_trace_rows

        result = self.result or {}
        ids: list[str] = []
        groups = [
            *(result.get("patterns") or {}).get("top", []),
            *((result.get("changes") or {}).get("concentrations") or []),
            *(result.get("errors") or {}).get("task", []),
            *(result.get("errors") or {}).get("scorer", []),
        ]
        for rank in range(3):  # a few rows of each finding before more of any
            for g in groups:
                rows = g.get("row_ids") or []
                if rank < len(rows) and rows[rank] not in ids:
                    ids.append(rows[rank])
        ids = ids[:PROMPT_ROWS]
        if not ids:
            return None
        frame = load_trace_rows(self.app.store, self.experiment["id"])  # type: ignore[attr-defined]
        order = pl.DataFrame({"root_span_id": ids, "_order": list(range(len(ids)))})
        return frame.join(order, on="root_span_id").sort("_order").drop("_order")

    @work(thread=True, exclusive=True, exit_on_error=False, group="prompt")
    def prepare_prompt(self, question: str | None) -> None:
        from evaltui.query.assistant import build_prompt

        try:
            rows = self._rows_for_prompt()
            messages, sent = build_prompt({**(self.result or {})}, rows, question=question)
        except Exception as e:
            self.post_message(self.PromptReady(None, None, f"could not prepare the prompt: {e}"))
            return
        self.post_message(self.PromptReady(messages, sent))

    def _sent_summary(self, sent: dict[str, Any]) -> str:
        parts = [f"{sent['bytes']:,} bytes (cap {sent['max_bytes']:,}), {sent['rows']} of {sent['rows_available']}"
                 " example rows", "sections: " + ", ".join(sent["sections"])]
        if sent["sections_shortened"]:
            parts.append("shortened: " + ", ".join(sent["sections_shortened"]))
        if sent["sections_left_out"]:
            parts.append("left out: " + ", ".join(sent["sections_left_out"]))
        return " · ".join(parts)

    def on_analyze_screen_prompt_ready(self, message: PromptReady) -> None:
        if message.sent is None:
            self._set_status(Text(safe_text(message.error, 300), "bold red"))
            return
        cfg, _ = self._assistant_config()
        where = f"{cfg.model} at {cfg.endpoint}" if cfg else "the assistant"
        self._prompt, self._sent = message.messages, message.sent
        if self._streaming:
            return
        summary = self._sent_summary(message.sent)
        self._set_status(Text(safe_text(f"Enter sends {summary} to {where}", 400), "dim"))
        t = Text(end="")
        t.append("What will be sent (besides fixed instructions):\n", "bold")
        t.append(safe_text(message.sent["text"], None, newlines=True), "dim")
        self._set_answer(t)

    @on(Input.Submitted, "#an-question")
    def _ask_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.result is None:
            self.app.notify("The insights are still being computed", severity="warning")
            return
        cfg, _ = self._assistant_config()
        if cfg is None:
            return
        self._question = event.value.strip()
        self._ask_token += 1
        self._streaming = True
        self._answer = ""
        self._set_status(Text(safe_text(f"Asking {cfg.model} at {cfg.endpoint}…", 300), "italic"))
        self._set_answer(Text("…", "dim"))
        self.ask(self._ask_token, self._question or None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="assistant")
    def ask(self, token: int, question: str | None) -> None:
        from evaltui.query.assistant import AssistantError, build_prompt, stream_answer

        worker = get_current_worker()
        text = ""
        try:
            rows = self._rows_for_prompt()
            messages, sent = build_prompt({**(self.result or {})}, rows, question=question)
            self.post_message(self.PromptReady(messages, sent))
            for piece in stream_answer(self._assistant_table(), messages):
                if worker.is_cancelled:
                    return
                text += piece
                self.post_message(self.AnswerProgress(token, text))
        except AssistantError as e:
            self.post_message(self.AnswerProgress(token, text, done=True, error=str(e)))
            return
        except Exception as e:
            self.post_message(self.AnswerProgress(token, text, done=True, error=f"the assistant failed: {e}"))
            return
        self.post_message(self.AnswerProgress(token, text, done=True))

    def on_analyze_screen_answer_progress(self, message: AnswerProgress) -> None:
        if message.token != self._ask_token:
            return
        self._answer = message.text
        t = Text(end="")
        if self._question:
            t.append("Q: " + safe_text(self._question, 500) + "\n\n", "bold")
        t.append(safe_text(message.text, None, newlines=True))
        if message.error:
            if message.text:
                t.append("\n\n")
            t.append(safe_text(message.error, 1000, newlines=True), "bold red")
        self._set_answer(t)
        box = self.query_one("#an-answer-box", VerticalScroll)
        box.scroll_end(animate=False)
        if message.done:
            self._streaming = False
            sent = self._sent_summary(self._sent) if self._sent else ""
            if message.error:
                self._set_status(Text("The assistant could not answer (the rest of the screen works).", "bold red"))
            else:
                self._set_status(Text(safe_text(f"Answered. Sent {sent}", 400), "dim"))
        else:
            self._set_status(Text("Streaming the answer…", "italic"))

    # -- back --------------------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.has_class("-asking"):
            self.close_ask()
            return
        self.app.pop_screen()


def _dataset_name(experiment: str, finding: Finding) -> str:
    """A readable dataset name from the experiment and the finding (no '/', at most 80 chars)."""
    words = re.sub(r"[^A-Za-z0-9._-]+", "-", (finding.name or finding.kind).lower()).strip("-.")
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", experiment).strip("-.") or "experiment"
    return f"{base}-{words}"[:80].rstrip("-.") or "analysis"
