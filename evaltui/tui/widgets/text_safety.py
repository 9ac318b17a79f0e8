"""Show text from the outside world literally: never as markup, never as terminal codes.

LLM inputs and outputs may hold Rich/Textual markup (``[bold red]``), ANSI/OSC escape
sequences, carriage returns, NULs, bidi overrides and multi-megabyte strings. Everything the
TUI paints from such text goes through :func:`safe_text` or :func:`rich_text`:

- control characters become visible symbols (ESC ``␛``, CR ``␍``, NUL ``␀``, the C0 range as
  Unicode control pictures, C1 and bidi/line-separator characters as ``\\x9b`` / ``\\u202e``),
  so nothing reaches the terminal as a command and nothing reorders the screen;
- tabs are expanded to spaces (a tab's width depends on the terminal);
- long strings are cut (to a number of terminal cells) *before* any per-character work, so a
  5 MB output costs no more than the part that is shown; a cut ends with ``…``;
- markup is never parsed: :func:`rich_text` builds a ``rich.text.Text`` from a plain string.
"""

from __future__ import annotations

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

__all__ = ["ELLIPSIS", "rich_text", "safe_text"]

ELLIPSIS = "…"
TAB_SIZE = 4

# C0 controls as Unicode "control pictures" (U+2400 + code): ␀ ␁ … ␛ … ␟; DEL as ␡.
_TRANSLATE: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}
_TRANSLATE[0x7F] = "\u2421"
# C1 controls (0x9b is a one-byte CSI on some terminals) shown as escapes.
_TRANSLATE.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})
# Characters that reorder or break lines on screen: bidi embeddings/overrides/isolates,
# marks, line/paragraph separators, BOM / zero-width no-break space.
for _code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C, 0x2028, 0x2029, 0xFEFF):
    _TRANSLATE[_code] = f"\\u{_code:04x}"
_NEWLINE_SYMBOL = "\u21b5"  # ↵ : a newline inside a one-line cell

_TRANSLATE_ONE_LINE = dict(_TRANSLATE)
_TRANSLATE_ONE_LINE[0x0A] = _NEWLINE_SYMBOL
_TRANSLATE_MULTI_LINE = dict(_TRANSLATE)
del _TRANSLATE_MULTI_LINE[0x0A]


def safe_text(value: object, limit: int | None = None, *, newlines: bool = False) -> str:
    """``value`` as a string that is safe to paint, at most ``limit`` terminal cells wide.

    Control and escape characters are made visible, tabs expanded, and (when ``limit`` is
    given) the result is cut to ``limit`` cells with a trailing ``…``. With ``newlines=True``
    line feeds are kept (and ``limit`` applies to the whole text, not per line); otherwise
    they are shown as ``↵``. ``None`` becomes ``""``; other values go through ``str()``.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    cut = False
    if limit is not None:
        if limit <= 0:
            return ""
        # Cut before per-character work; a character is rarely narrower than a cell, and
        # a cut is reported with the ellipsis below even when the remainder would fit.
        budget = limit * 2 + 16
        if len(text) > budget:
            text = text[:budget]
            cut = True
    if "\t" in text:
        text = text.expandtabs(TAB_SIZE)
    text = text.translate(_TRANSLATE_MULTI_LINE if newlines else _TRANSLATE_ONE_LINE)
    if limit is None:
        return text
    if cut or cell_len(text) > limit:
        text = _fit(text, limit - 1) + ELLIPSIS
    return text


def _fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` cells (never padded, never splitting a wide character)."""
    if width <= 0:
        return ""
    if len(text) <= width and cell_len(text) <= width:
        return text
    fitted = set_cell_size(text[: width * 2 + 2], width)
    # set_cell_size pads with a space where a wide character straddles the edge
    return fitted.rstrip(" ") if cell_len(text) > width else fitted


def rich_text(
    value: object,
    style: str | Style = "",
    limit: int | None = None,
    *,
    newlines: bool = True,
) -> Text:
    """A ``rich.text.Text`` showing ``value`` literally, in one ``style``; markup is never parsed.

    Safe to pass to ``Static``/``Label``/``Log`` (a ``Text`` is not parsed as markup, a plain
    ``str`` would be). ``limit`` cuts the text to that many cells (see :func:`safe_text`);
    line feeds are kept unless ``newlines=False``.
    """
    return Text(safe_text(value, limit, newlines=newlines), style=style, end="", no_wrap=False)
