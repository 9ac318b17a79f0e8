"""Pretty JSON as a ``rich.text.Text``, coloured, built from the *parsed* value.

Strings from the value are never parsed as markup: every piece goes through ``safe_text``
(control characters visible) and is appended as plain text. Painting stops after a budget of
characters, and the caller is told how much was cut, so a 5 MB output paints 200 KB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from evaltui.tui.widgets.text_safety import safe_text

PAINT_LIMIT = 200_000  # characters painted per value; the rest is "e opens all"

STYLE_KEY = "bold #61afef"
STYLE_STRING = "#98c379"
STYLE_NUMBER = "#d19a66"
STYLE_LITERAL = "italic #c678dd"
STYLE_PUNCT = "dim"
STYLE_NOTE = "italic #e5c07b"


@dataclass
class RenderedValue:
    text: Text
    painted: int  # characters of the value that were painted
    total: int  # characters of the value's full text form
    truncated: bool


class _Full(Exception):
    pass


def value_size(value: Any) -> int:
    """Characters of the value's text form (a string as it is, else its JSON)."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value)
    return len(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def full_text(value: Any) -> str:
    """The value as a person reads it in an editor: strings as they are, else indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


class _Writer:
    def __init__(self, limit: int) -> None:
        self.text = Text(end="", no_wrap=False, overflow="fold")
        self.left = limit
        self.painted = 0

    def put(self, s: str, style: str = "") -> None:
        if not s:
            return
        if len(s) > self.left:
            # exactly full is not a cut; only a piece that does not fit is
            s = s[: max(self.left, 0)]
            self._append(s, style)
            raise _Full
        self._append(s, style)

    def _append(self, s: str, style: str) -> None:
        self.left -= len(s)
        self.painted += len(s)
        # newlines kept (a wrapped, multi-line view); every other control made visible
        self.text.append(safe_text(s, newlines=True), style)


def render_value(value: Any, limit: int = PAINT_LIMIT) -> RenderedValue:
    """Colour ``value`` (a parsed JSON value); a top-level string is shown as plain text."""
    total = value_size(value)
    w = _Writer(limit)
    truncated = False
    try:
        if isinstance(value, str):
            w.put(value)
        else:
            _emit(w, value, 0)
    except _Full:
        truncated = True
    return RenderedValue(w.text, w.painted, total, truncated)


def _emit(w: _Writer, v: Any, indent: int) -> None:
    pad = "  " * indent
    if isinstance(v, dict):
        if not v:
            w.put("{}", STYLE_PUNCT)
            return
        w.put("{", STYLE_PUNCT)
        for i, (k, item) in enumerate(v.items()):
            w.put("\n" + pad + "  ")
            w.put(json.dumps(str(k), ensure_ascii=False), STYLE_KEY)
            w.put(": ", STYLE_PUNCT)
            _emit(w, item, indent + 1)
            if i < len(v) - 1:
                w.put(",", STYLE_PUNCT)
        w.put("\n" + pad + "}", STYLE_PUNCT)
    elif isinstance(v, list):
        if not v:
            w.put("[]", STYLE_PUNCT)
            return
        w.put("[", STYLE_PUNCT)
        for i, item in enumerate(v):
            w.put("\n" + pad + "  ")
            _emit(w, item, indent + 1)
            if i < len(v) - 1:
                w.put(",", STYLE_PUNCT)
        w.put("\n" + pad + "]", STYLE_PUNCT)
    elif isinstance(v, str):
        # JSON escapes for quotes and backslashes, but real line breaks (LLM text reads better)
        body = ("\n" + pad + "  ").join(json.dumps(part, ensure_ascii=False)[1:-1] for part in v.split("\n"))
        w.put('"' + body + '"', STYLE_STRING)
    elif isinstance(v, bool) or v is None:
        w.put(json.dumps(v), STYLE_LITERAL)
    elif isinstance(v, (int, float)):
        w.put(json.dumps(v), STYLE_NUMBER)
    else:
        w.put(str(v))
