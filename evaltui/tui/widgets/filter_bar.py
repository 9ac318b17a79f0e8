"""The experiment screen's one-line filter bar: an Input for the filter language, a line of
completions under it (paths, operators, values seen in the data), and the last error (its
message and a caret line under the column that went wrong).

Keys in the bar: enter applies (the bar closes and the table takes the keys; ``/`` reopens it
with the filter), esc closes it and clears the filter, up / down recall older /
newer filters from the history, tab takes the highlighted completion, ctrl+n / shift+tab
move the highlight forward / back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["FilterBar"]

MAX_SHOWN = 8  # completions listed on the line under the input


class FilterBar(Vertical):
    """``/`` opens it; enter posts ``Applied``; esc posts ``Closed`` (the screen clears the filter)."""

    HELP_GROUP = "Filter"
    BINDINGS = [
        Binding("escape", "close", "Clear filter", id="filter.close"),
        Binding("up", "history(-1)", "Older filter", show=False, id="filter.history-back"),
        Binding("down", "history(1)", "Newer filter", show=False, id="filter.history-forward"),
        Binding("tab", "complete", "Complete", show=False, priority=True, id="filter.complete"),
        Binding("ctrl+n", "move_completion(1)", "Next completion", show=False, id="filter.next-completion"),
        # ctrl+p is the command palette's (a priority binding), so back is shift+tab
        Binding("shift+tab", "move_completion(-1)", "Previous completion", show=False, priority=True,
                id="filter.previous-completion"),
    ]

    class Applied(Message):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    class Closed(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.history: list[str] = []  # oldest first
        self._history_pos: int | None = None  # index into history while recalling
        self._draft = ""  # what was typed before recalling
        self._schema: Mapping[str, Any] = {}
        self._values: Mapping[str, Sequence[Any]] = {}
        self._row_type = "traces"
        self.completions: list[str] = []
        self.highlighted = 0
        self._quiet_value: str | None = None  # a value we set: its Changed event is not typing

    def compose(self) -> ComposeResult:
        yield Input(placeholder="filter, e.g. scores.Factuality < 0.5 and error is null", id="filter-input",
                    select_on_focus=False)
        yield Static("", id="filter-completions", markup=False)
        yield Static("", id="filter-error", markup=False)

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    def open(self, text: str) -> None:
        self.display = True
        self._history_pos = None
        inp = self.input
        if inp.value != text:
            self._set_value(text)
        inp.cursor_position = len(inp.value)
        inp.focus()

    def set_completion_source(self, schema: Mapping[str, Any], values: Mapping[str, Sequence[Any]],
                              row_type: str) -> None:
        """What completion offers: the frame's columns and values seen in the data."""
        self._schema, self._values, self._row_type = schema, values, row_type

    # -- error --------------------------------------------------------------------------------

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

    # -- history ------------------------------------------------------------------------------

    def action_history(self, step: int) -> None:
        """Recall an older (-1) or newer (+1) filter; past the newest comes back what was typed."""
        if not self.history:
            return
        if self._history_pos is None:
            if step > 0:
                return
            self._draft = self.input.value
            pos = len(self.history) - 1
        else:
            pos = self._history_pos + step
        pos = max(pos, 0)
        if pos >= len(self.history):
            self._history_pos = None
            self._set_value(self._draft)
            return
        self._history_pos = pos
        self._set_value(self.history[pos])

    def _set_value(self, text: str) -> None:
        self._quiet_value = text
        self.input.value = text
        self.input.cursor_position = len(text)
        self._hide_completions()

    # -- completion ---------------------------------------------------------------------------

    def _update_completions(self) -> None:
        from evaltui.query.filter import complete, word_start  # loaded when first used

        inp = self.input
        text, cursor = inp.value, inp.cursor_position
        try:
            candidates = complete(text, cursor, self._schema, self._values, row_type=self._row_type)
        except Exception:  # completion must never break typing
            candidates = []
        typed = text[word_start(text, cursor):cursor]
        # nothing worth showing when the only candidate is what is typed
        candidates = [c for c in candidates if c != typed]
        self.completions = candidates
        self.highlighted = 0
        self._show_completions()

    def _show_completions(self) -> None:
        # the line keeps its place while the bar is open (empty when there is nothing to
        # offer): showing and hiding it would lay the whole screen out again on each key
        line = self.query_one("#filter-completions", Static)
        if not self.completions:
            line.update("", layout=False)
            return
        start = max(0, self.highlighted - MAX_SHOWN + 1)
        shown = self.completions[start:start + MAX_SHOWN]
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        out.append("tab ", "dim")
        for i, c in enumerate(shown, start):
            if i > start:
                out.append("  ")
            out.append(safe_text(c, 60), "reverse bold" if i == self.highlighted else "")
        rest = len(self.completions) - start - len(shown)
        if rest > 0:
            out.append(f"  +{rest} more", "dim")
        line.update(out, layout=False)

    def _hide_completions(self) -> None:
        self.completions = []
        self.query_one("#filter-completions", Static).update("", layout=False)

    def action_move_completion(self, step: int) -> None:
        if self.completions:
            self.highlighted = (self.highlighted + step) % len(self.completions)
            self._show_completions()

    def action_complete(self) -> None:
        """Put the highlighted completion in place of the word at the cursor."""
        if not self.completions:
            self._update_completions()
            if len(self.completions) != 1:
                return
        choice = self.completions[self.highlighted]
        inp = self.input
        text, cursor = inp.value, inp.cursor_position
        from evaltui.query.filter import word_start

        start = word_start(text, cursor)
        new = text[:start] + choice + " " + text[cursor:].lstrip(" ")
        inp.value = new
        inp.cursor_position = start + len(choice) + 1
        self._update_completions()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "complete":
            # tab moves focus as usual when the bar is not being typed in
            return self.input.has_focus
        if action == "move_completion" and parameters == (-1,):
            return self.input.has_focus and bool(self.completions)
        return True

    # -- events -------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._history_pos = None
        self._hide_completions()
        self.post_message(self.Applied(event.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._quiet_value is not None and event.value == self._quiet_value:
            return  # a recalled filter, not typing
        self._quiet_value = None
        self._history_pos = None
        self._update_completions()

    def action_close(self) -> None:
        self._hide_completions()
        self.post_message(self.Closed())
