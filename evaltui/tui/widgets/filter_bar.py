"""The experiment screen's one-line filter bar: an Input for the filter language and, under
it, the last error (its message and a caret line under the column that went wrong)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["FilterBar"]


class FilterBar(Vertical):
    """``/`` opens it; enter posts ``Applied``; esc posts ``Closed`` (the filter stays)."""

    HELP_GROUP = "Filter"
    BINDINGS = [
        Binding("escape", "close", "Close filter bar", id="filter.close"),
    ]

    class Applied(Message):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    class Closed(Message):
        pass

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter, e.g. scores.Factuality < 0.5 and error is null", id="filter-input",
                    select_on_focus=False)
        yield Static("", id="filter-error", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    def open(self, text: str) -> None:
        self.display = True
        inp = self.input
        if inp.value != text:
            inp.value = text
        inp.cursor_position = len(inp.value)
        inp.focus()

    def show_error(self, text: str, message: str, column: int) -> None:
        """The error literally (no markup): the message, the filter, a caret under ``column``."""
        line = safe_text(text)
        caret = " " * cell_len(safe_text(text[: max(0, column - 1)])) + "^"
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        out.append(safe_text(message, 300), "bold red")
        out.append("\n" + line + "\n")
        out.append(caret, "bold red")
        err = self.query_one("#filter-error", Static)
        err.update(out)
        err.display = True
        self.add_class("-error")

    def clear_error(self) -> None:
        err = self.query_one("#filter-error", Static)
        err.update("")
        err.display = False
        self.remove_class("-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Applied(event.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()

    def action_close(self) -> None:
        self.post_message(self.Closed())
