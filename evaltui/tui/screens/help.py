"""Help: the keys of the screen underneath, read from its live binding table."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from evaltui.tui.commands import BindingEntry
from evaltui.tui.widgets.text_safety import safe_text


def help_table(entries: list[BindingEntry], palette_key: str) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=False)
    table.add_column("key", style="bold #61afef", no_wrap=True)
    table.add_column("does")
    table.add_column("id", style="dim", no_wrap=True)
    group = None
    for e in entries:
        if e.group != group:
            if group is not None:
                table.add_row("", "", "")
            table.add_row(Text(e.group, "bold underline"), "", "")
            group = e.group
        table.add_row(Text(safe_text(e.key_text, 30)), Text(safe_text(e.description, 60)),
                      Text(safe_text(e.binding_id, 40)))
    table.add_row("", "", "")
    table.add_row(Text("Everywhere", "bold underline"), "", "")
    table.add_row(Text(palette_key), Text("Command palette: every action by name"), Text("", "dim"))
    return table


class HelpScreen(ModalScreen[None]):
    """The bindings of the screen below (focused widget first); remap them by id in config."""

    HELP_GROUP = "Help"
    BINDINGS = [
        Binding("escape,q,question_mark,f1", "close", "Close help", id="help.close"),
        Binding("j,down", "scroll(1)", "Scroll down", show=False, id="help.scroll-down"),
        Binding("k,up", "scroll(-1)", "Scroll up", show=False, id="help.scroll-up"),
    ]

    def __init__(self, title: str, entries: list[BindingEntry], palette_key: str, config_path: str) -> None:
        super().__init__(id="help")
        self.title_text = title
        self.entries = entries
        self.palette_key = palette_key
        self.config_path = config_path

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text.assemble(("Keys", "bold"), ("  " + safe_text(self.title_text, 60), "dim")),
                         id="help-title")
            yield Static(help_table(self.entries, self.palette_key), id="help-keys")
            yield Static(
                Text(
                    "Remap a key by its id in " + safe_text(self.config_path, 200)
                    + ", e.g.\n  [keymap]\n  \"experiment.toggle-rows\" = \"T\"\nesc closes.",
                    "dim",
                ),
                id="help-foot",
            )

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()

    def action_scroll(self, lines: int) -> None:
        box = self.query_one("#help-box", VerticalScroll)
        box.scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
