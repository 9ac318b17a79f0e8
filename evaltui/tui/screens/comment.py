"""A one-line dialog to comment on a trace."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["CommentScreen"]


class CommentScreen(ModalScreen[str | None]):
    """Type a comment; enter saves it (dismisses with the text), esc drops it."""

    HELP_GROUP = "Comment dialog"
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="comment.cancel")]

    def __init__(self, about: str) -> None:
        super().__init__(id="comment-dialog")
        self.about = about

    def compose(self) -> ComposeResult:
        with Vertical(id="comment-box"):
            yield Static(Text.assemble(("Comment on ", "bold"), (safe_text(self.about, 60), "")), id="comment-title")
            yield Input(placeholder="what did you notice?", id="comment-input")
            yield Static(Text("enter saves · esc cancels", "dim"), id="comment-help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#comment-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not event.value.strip():
            self.notify("A comment needs some text (esc cancels)", severity="warning")
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
