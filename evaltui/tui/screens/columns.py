"""The columns dialog: show / hide, reorder, pin and resize the table's columns.

Every change is applied to the table and saved at once (the callback), so closing the
dialog never loses anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from evaltui.tui.widgets.experiment_table import ColumnSpec
from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.commands import list_cursor_bindings

MIN_WIDTH, MAX_WIDTH = 3, 200


class ColumnList(OptionList):
    HELP_GROUP = "Columns"
    BINDINGS = [
        *list_cursor_bindings("columns"),
        Binding("enter", "screen.close", "Done", id="columns.done"),
    ]


class ColumnsScreen(ModalScreen[None]):
    """space shows/hides, p pins, K/J move, < > change width, r resets, esc closes."""

    HELP_GROUP = "Columns dialog"
    BINDINGS = [
        Binding("space,x", "toggle_visible", "Show/hide", id="columns.toggle"),
        Binding("p", "toggle_pin", "Pin", id="columns.pin"),
        Binding("K,shift+up", "move(-1)", "Move up", id="columns.move-up"),
        Binding("J,shift+down", "move(1)", "Move down", id="columns.move-down"),
        Binding("less_than_sign", "width(-2)", "Narrower", id="columns.narrower"),
        Binding("greater_than_sign", "width(2)", "Wider", id="columns.wider"),
        Binding("r", "reset", "Reset", id="columns.reset"),
        Binding("escape,q,C", "close", "Close", id="columns.close"),
    ]

    def __init__(self, columns: list[ColumnSpec], defaults: list[ColumnSpec],
                 on_change: Callable[[list[ColumnSpec]], None], title: str = "") -> None:
        super().__init__(id="columns-dialog")
        self.columns = list(columns)
        self.defaults = list(defaults)
        self.on_change = on_change
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="columns-box"):
            yield Static(Text.assemble(("Columns", "bold"), ("  " + safe_text(self.title_text, 60), "dim")),
                         id="columns-title")
            yield ColumnList(id="columns-list")
            yield Static(Text("space show/hide · p pin · K/J move · < > width · r reset · esc close", "dim"),
                         id="columns-help")

    def on_mount(self) -> None:
        self._rebuild(0)
        self.query_one(ColumnList).focus()

    def _label(self, spec: ColumnSpec) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append("[x] " if spec.visible else "[ ] ", "bold" if spec.visible else "dim")
        t.append("pin " if spec.pinned else "    ", "bold #e5c07b")
        t.append(safe_text(spec.label, 20).ljust(21), "" if spec.visible else "dim")
        t.append(safe_text(spec.key, 24).ljust(25), "dim")
        t.append(f"width {spec.width:>3}", "dim")
        return t

    def _rebuild(self, highlight: int | None = None) -> None:
        lst = self.query_one(ColumnList)
        current = lst.highlighted if highlight is None else highlight
        lst.clear_options()
        lst.add_options([Option(self._label(s), id=s.key) for s in self.columns])
        if self.columns:
            lst.highlighted = max(0, min(current or 0, len(self.columns) - 1))

    def _changed(self, highlight: int | None = None) -> None:
        self._rebuild(highlight)
        self.on_change(list(self.columns))

    def _index(self) -> int | None:
        i = self.query_one(ColumnList).highlighted
        return i if i is not None and 0 <= i < len(self.columns) else None

    def action_toggle_visible(self) -> None:
        i = self._index()
        if i is None:
            return
        spec = self.columns[i]
        if spec.visible and sum(1 for s in self.columns if s.visible) == 1:
            self.app.notify("The last visible column stays", severity="warning", timeout=2)
            return
        self.columns[i] = replace(spec, visible=not spec.visible)
        self._changed(i)

    def action_toggle_pin(self) -> None:
        i = self._index()
        if i is None:
            return
        spec = self.columns[i]
        self.columns[i] = replace(spec, pinned=not spec.pinned, visible=True if not spec.pinned else spec.visible)
        self._changed(i)

    def action_move(self, delta: int) -> None:
        i = self._index()
        if i is None:
            return
        j = i + delta
        if not 0 <= j < len(self.columns):
            return
        self.columns[i], self.columns[j] = self.columns[j], self.columns[i]
        self._changed(j)

    def action_width(self, delta: int) -> None:
        i = self._index()
        if i is None:
            return
        spec = self.columns[i]
        width = max(MIN_WIDTH, min(MAX_WIDTH, spec.width + delta))
        if width != spec.width:
            self.columns[i] = replace(spec, width=width)
            self._changed(i)

    def action_reset(self) -> None:
        self.columns = list(self.defaults)
        self._changed(0)
        self.app.notify("Columns reset to defaults", timeout=2)

    def action_close(self) -> None:
        self.dismiss(None)
