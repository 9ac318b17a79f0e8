"""Word-level diff of two texts (outputs of two experiments, or output against expected).

Pure stdlib (difflib), no size cap: the TUI runs it in a worker. Texts are split into words
and the whitespace between them, so a changed word shows as one removed and one added word
and line breaks survive. For very long texts the matcher first aligns lines and only
diffs words inside changed chunks (content-defined, so insertions do not shift them),
which keeps a 1 MB output to about a second.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import orjson

__all__ = ["as_text", "diff_stats", "word_diff"]

EQUAL, DELETE, INSERT = "equal", "delete", "insert"
_TOKENS = re.compile(r"\s+|[^\s]+")
# Above this many tokens the texts are aligned by chunks first (word-level inside changed ones).
LINE_FIRST = 20_000
CHUNK = 24  # mean words per chunk when aligning long texts


def as_text(value: Any) -> str:
    """A field's value as the text to diff: strings as they are, JSON pretty-printed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()


def _tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def _merge(ops: list[tuple[str, str]], op: str, text: str) -> None:
    if not text:
        return
    if ops and ops[-1][0] == op:
        ops[-1] = (op, ops[-1][1] + text)
    else:
        ops.append((op, text))


def _diff_tokens(a: list[str], b: list[str], ops: list[tuple[str, str]]) -> None:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _merge(ops, EQUAL, "".join(a[i1:i2]))
        else:
            _merge(ops, DELETE, "".join(a[i1:i2]))
            _merge(ops, INSERT, "".join(b[j1:j2]))


def _chunks(tokens: list[str]) -> list[str]:
    """Tokens joined into content-defined chunks: a chunk ends after a word whose hash is 0
    mod CHUNK, so an insertion shifts no boundary after it and equal text gives equal chunks."""
    out: list[str] = []
    start = 0
    for i, tok in enumerate(tokens):
        if not tok[0].isspace() and hash(tok) % CHUNK == 0:
            out.append("".join(tokens[start : i + 1]))
            start = i + 1
    if start < len(tokens):
        out.append("".join(tokens[start:]))
    return out


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """(op, text) runs turning ``old`` into ``new``; op is "equal", "delete" or "insert".

    Joining the equal and delete runs gives ``old``; the equal and insert runs give ``new``.
    """
    ops: list[tuple[str, str]] = []
    if old == new:
        _merge(ops, EQUAL, old)
        return ops
    a, b = _tokens(old), _tokens(new)
    if len(a) + len(b) <= LINE_FIRST:
        _diff_tokens(a, b, ops)
        return ops
    ca, cb = _chunks(a), _chunks(b)
    # chunks match on their words: text re-wrapped (spaces turned into line breaks) still
    # aligns, and only the changed breaks are diffed inside the chunk
    matcher = difflib.SequenceMatcher(None, [" ".join(c.split()) for c in ca], [" ".join(c.split()) for c in cb],
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for x, y in zip(ca[i1:i2], cb[j1:j2], strict=True):
                if x == y:
                    _merge(ops, EQUAL, x)
                else:
                    _diff_tokens(_tokens(x), _tokens(y), ops)
            continue
        ta = [t for chunk in ca[i1:i2] for t in _tokens(chunk)]
        tb = [t for chunk in cb[j1:j2] for t in _tokens(chunk)]
        if tag == "replace" and len(ta) + len(tb) <= LINE_FIRST:
            _diff_tokens(ta, tb, ops)
        else:
            _merge(ops, DELETE, "".join(ta))
            _merge(ops, INSERT, "".join(tb))
    return ops


def diff_stats(ops: list[tuple[str, str]]) -> dict[str, int]:
    """Words removed and added (whitespace runs not counted)."""
    out = {"deleted": 0, "inserted": 0, "equal": 0}
    names = {DELETE: "deleted", INSERT: "inserted", EQUAL: "equal"}
    for op, text in ops:
        out[names[op]] += len(text.split())
    return out
