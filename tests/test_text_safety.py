"""safe_text / rich_text: outside text is painted literally, bounded, and never as codes."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from evaltui.tui.widgets.text_safety import ELLIPSIS, rich_text, safe_text


def test_plain_text_is_unchanged() -> None:
    assert safe_text("hello world") == "hello world"
    assert safe_text("hello world", 20) == "hello world"


def test_none_and_non_strings() -> None:
    assert safe_text(None) == ""
    assert safe_text(42) == "42"
    assert safe_text(0.5, 10) == "0.5"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J", "␛[2J"),
        ("a\rb", "a␍b"),
        ("a\x00b", "a␀b"),
        ("bell\x07", "bell␇"),
        ("del\x7f", "del␡"),
        ("\x1b]52;c;aGk=\x07", "␛]52;c;aGk=␇"),  # OSC 52 (clipboard write) stays text
        ("csi\x9b2J", "csi\\x9b2J"),  # C1 CSI
        ("rtl\u202eevil", "rtl\\u202eevil"),  # bidi override
        ("a\u2028b", "a\\u2028b"),
    ],
)
def test_control_characters_become_visible(raw: str, shown: str) -> None:
    out = safe_text(raw)
    assert out == shown
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out)


def test_newlines_one_line_and_multi_line() -> None:
    assert safe_text("a\nb") == "a↵b"
    assert safe_text("a\nb", newlines=True) == "a\nb"
    assert safe_text("a\r\nb", newlines=True) == "a␍\nb"


def test_tabs_are_expanded() -> None:
    assert safe_text("a\tb") == "a   b"
    assert "\t" not in safe_text("\t\tx", 10)


def test_markup_is_left_as_text() -> None:
    assert safe_text("[bold red]x[/]") == "[bold red]x[/]"
    text = rich_text("[bold red]x[/] :smile:", "italic")
    assert text.plain == "[bold red]x[/] :smile:"
    assert not text.spans  # nothing parsed into styled spans
    assert str(text.style) == "italic"


def test_truncation_counts_cells_and_ends_with_ellipsis() -> None:
    out = safe_text("abcdefghij", 5)
    assert out == "abcd" + ELLIPSIS
    assert cell_len(out) == 5
    wide = safe_text("日本語のテキストです", 7)
    assert cell_len(wide) <= 7 and wide.endswith(ELLIPSIS)
    assert safe_text("abc", 0) == ""
    assert safe_text("abc", 1) == ELLIPSIS


def test_huge_string_is_cut_before_any_per_character_work() -> None:
    huge = ("[b]x[/]\x1b[31m\r\x00\t" * 400_000)[:5_000_000]
    assert len(huge) == 5_000_000
    touched: list[str] = []

    class Watched(str):  # records any work done on the whole 5 MB string
        def __getitem__(self, key):
            touched.append(f"slice {key!r}")
            return str.__getitem__(self, key)

        def translate(self, table):
            touched.append("translate")
            return str.translate(self, table)

        def expandtabs(self, tabsize=8):
            touched.append("expandtabs")
            return str.expandtabs(self, tabsize)

        def __contains__(self, part):
            touched.append("in")
            return str.__contains__(self, part)

    out = safe_text(Watched(huge), 80)
    assert cell_len(out) == 80 and out.endswith(ELLIPSIS)
    assert "\x1b" not in out and "\r" not in out and "\x00" not in out
    # proportional to the shown part, not the 5 MB: one slice of the head, then nothing on the whole
    assert len(touched) == 1 and touched[0].startswith("slice slice(None, "), touched
    assert out == safe_text(huge[:1000], 80)


def test_rich_text_limit_and_render_has_no_escape() -> None:
    text = rich_text("\x1b[2J" + "x" * 1000, limit=20)
    assert cell_len(text.plain) == 20
    console = Console(width=40, record=True, color_system=None, force_terminal=False)
    console.print(rich_text("[red]hi[/]\x1b[2J\x00\r"))
    out = console.export_text()
    assert "[red]hi[/]␛[2J␀␍" in out
    assert "\x1b" not in out


def test_rich_text_keeps_newlines_by_default() -> None:
    assert rich_text("a\nb").plain == "a\nb"
    assert rich_text("a\nb", newlines=False).plain == "a↵b"
    assert isinstance(rich_text("x"), Text)
