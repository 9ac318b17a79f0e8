"""The experiment screen's search bar: text to find in input, output, expected and metadata
of the rows shown (separate from the filter: it narrows nothing, it finds and highlights).

The screen searches while the text is typed (in a worker, each text narrowing the rows of
the last, see ``query.arrange.SearchIndex``); enter shows the result: it jumps to the first
match at or after the cursor, closes the bar and gives the table the keys (n / N jump between
matches at once); esc in the bar clears the search and closes it (so does esc on the table);
ctrl+f or \\ reopens it with the search.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static

__all__ = ["SearchBar"]


class SearchBar(Horizontal):
    HELP_GROUP = "Search"
    BINDINGS = [
        Binding("escape", "close", "Clear search", id="search.close"),
    ]

    class Applied(Message):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    class Closed(Message):
        pass

    class Typed(Message):
        """The text changed (the screen searches ahead, so that Enter finds the answer ready)."""

        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    def compose(self) -> ComposeResult:
        yield Static("search:", id="search-label", markup=False)
        yield Input(placeholder="text in input, output, expected or metadata", id="search-input",
                    select_on_focus=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def open(self, text: str) -> None:
        self.display = True
        inp = self.input
        if inp.value != text:
            inp.value = text
        inp.cursor_position = len(inp.value)
        inp.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Applied(event.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Typed(event.value))

    def action_close(self) -> None:
        self.post_message(self.Closed())
