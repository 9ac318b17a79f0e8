"""One trace's spans, decoded and arranged as a tree: what the trace pane's views share.

Built in a worker thread from ``load_trace_spans`` (JSON decoding of big fields happens
there, not on the event loop).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

from evaltui.lazy_polars import pl
from evaltui.store.records import JSON_FIELDS

SCORER_TYPES = frozenset({"score"})
EXPLANATION_KEYS = ("explanation", "rationale", "reason", "reasoning", "justification", "comment")


def _decode(text: str) -> Any:
    """A stored JSON field decoded (orjson; json for what it refuses, e.g. NaN or huge ints);
    text that is not JSON is kept as it is and shown as it is."""
    try:
        return orjson.loads(text)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class SpanNode:
    id: str  # row id
    span_id: str
    parent: str | None
    name: str
    type: str
    start: float | None
    end: float | None
    record: dict[str, Any]
    children: list[SpanNode] = field(default_factory=list)
    depth: int = 0
    in_scorer: bool = False

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return self.end - self.start

    @property
    def metrics(self) -> dict[str, Any]:
        m = self.record.get("metrics")
        return m if isinstance(m, dict) else {}

    @property
    def scores(self) -> dict[str, Any]:
        s = self.record.get("scores")
        return s if isinstance(s, dict) else {}

    @property
    def tokens(self) -> int | None:
        m = self.metrics
        if m.get("tokens") is not None:
            return m["tokens"]
        if m.get("prompt_tokens") is not None or m.get("completion_tokens") is not None:
            return (m.get("prompt_tokens") or 0) + (m.get("completion_tokens") or 0)
        return None

    @property
    def cost(self) -> float | None:
        return self.metrics.get("estimated_cost")

    @property
    def has_error(self) -> bool:
        return self.record.get("error") is not None

    def explanation(self) -> str | None:
        """A scorer's explanation of its score, from its metadata."""
        md = self.record.get("metadata")
        if not isinstance(md, dict):
            return None
        for key in EXPLANATION_KEYS:
            v = md.get(key)
            if isinstance(v, str) and v.strip():
                return v
        return None


@dataclass
class TraceData:
    experiment_id: str
    root_span_id: str
    spans: list[SpanNode]  # depth-first, children in start order
    by_span_id: dict[str, SpanNode]
    root: SpanNode | None
    # tree lines made in the loading worker (trace_tree.prepare_labels), keyed by span id
    labels: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, Any] = field(default_factory=dict)  # and those lines rendered (rich Segments)
    _totals: tuple[int, float, int] | None = field(default=None, repr=False, compare=False)

    def totals(self) -> tuple[int, float, int]:
        """Tokens and cost of the spans outside scorers, and the number of spans with an error
        (the pane's title); counted once, in the loading worker when it calls this."""
        if self._totals is None:
            tokens, cost, errors = 0, 0.0, 0
            for s in self.spans:
                if not s.in_scorer:
                    tokens += s.tokens or 0
                    cost += s.cost or 0
                if s.has_error:
                    errors += 1
            self._totals = (tokens, cost, errors)
        return self._totals

    @cached_property
    def t0(self) -> float | None:
        starts = [s.start for s in self.spans if s.start is not None]
        return min(starts) if starts else None

    @cached_property
    def t1(self) -> float | None:
        ends = [s.end for s in self.spans if s.end is not None]
        return max(ends) if ends else None

    def find(self, row_or_span_id: str | None) -> SpanNode | None:
        if row_or_span_id is None:
            return None
        if row_or_span_id in self.by_span_id:
            return self.by_span_id[row_or_span_id]
        return next((s for s in self.spans if s.id == row_or_span_id), None)

    def descendants(self, node: SpanNode) -> list[SpanNode]:
        out: list[SpanNode] = []
        stack = list(reversed(node.children))
        while stack:
            n = stack.pop()
            out.append(n)
            stack.extend(reversed(n.children))
        return out

    @classmethod
    def from_frame(cls, experiment_id: str, root_span_id: str, frame: pl.DataFrame) -> TraceData:
        nodes: list[SpanNode] = []
        # column by column (a list each, the JSON ones decoded in one comprehension), then one
        # dict a span: half the time of a dict per row and a lookup per field and row
        columns = frame.columns
        values = [frame.get_column(c).to_list() for c in columns]
        for i, c in enumerate(columns):
            if c in JSON_FIELDS:
                values[i] = [_decode(v) if isinstance(v, str) else v for v in values[i]]
        for rec in (dict(zip(columns, row)) for row in zip(*values)):
            parents = rec.get("span_parents") or []
            nodes.append(
                SpanNode(
                    id=rec["id"],
                    span_id=rec["span_id"],
                    parent=parents[0] if parents else None,
                    name=rec.get("name") or rec["span_id"][:8],
                    type=rec.get("type") or "",
                    start=rec.get("start"),
                    end=rec.get("end"),
                    record=rec,
                )
            )
        return cls.from_nodes(experiment_id, root_span_id, nodes)

    @classmethod
    def from_nodes(cls, experiment_id: str, root_span_id: str, nodes: list[SpanNode]) -> TraceData:
        by_id = {n.span_id: n for n in nodes}
        roots: list[SpanNode] = []
        for n in nodes:
            parent = by_id.get(n.parent) if n.parent else None
            if parent is None or parent is n:
                roots.append(n)  # the root, or an orphan whose parent was never logged
            else:
                parent.children.append(n)

        def key(n: SpanNode) -> tuple:
            return (n.start is None, n.start or 0.0, n.record.get("created") or "", n.id)

        roots.sort(key=lambda n: (n.span_id != root_span_id, *key(n)))
        ordered: list[SpanNode] = []
        seen: set[str] = set()

        def walk(n: SpanNode, depth: int, in_scorer: bool) -> None:
            if n.span_id in seen:
                return  # a cycle in bad data; show each span once
            seen.add(n.span_id)
            n.depth = depth
            n.in_scorer = in_scorer or n.type in SCORER_TYPES
            ordered.append(n)
            n.children.sort(key=key)
            for c in n.children:
                walk(c, depth + 1, n.in_scorer)

        for r in roots:
            walk(r, 0, False)
        root = by_id.get(root_span_id) or (roots[0] if roots else None)
        return cls(experiment_id, root_span_id, ordered, by_id, root)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds == 0:
        return "0s"
    if seconds < 0.001:
        return f"{seconds * 1_000_000:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:02.0f}s"


def format_tokens(tokens: float | None) -> str:
    if tokens is None:
        return ""
    if tokens >= 10_000:
        return f"{tokens / 1000:.1f}k tok"
    return f"{int(tokens):,} tok"


def format_cost(cost: float | None) -> str:
    if cost is None:
        return ""
    if cost == 0:
        return "$0"
    if cost < 0.01:
        return f"${cost:.4f}"
    return f"${cost:.2f}"


def format_score(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"
