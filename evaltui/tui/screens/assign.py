"""The assign picker: the users the database has seen plus you; typing filters or names a new one."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from evaltui.store.review import known_users
from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["AssignScreen"]

NOBODY = "\x00nobody"  # the option id of "unassign"
NEW = "\x00new:"  # prefix of the option id of a typed new name


class AssignScreen(ModalScreen[tuple[str | None] | None]):
    """Pick who the trace(s) go to; dismisses with ``(name,)``, ``(None,)`` to unassign, or None."""

    HELP_GROUP = "Assign dialog"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="assign.cancel"),
        Binding("down", "move(1)", "Next user", show=False, id="assign.cursor-down"),
        Binding("up", "move(-1)", "Previous user", show=False, id="assign.cursor-up"),
    ]

    def __init__(self, count: int, me: str, current: str | None = None) -> None:
        super().__init__(id="assign-dialog")
        self.count = count
        self.me = me
        self.current = current
        self.users: list[str] = [me]

    def compose(self) -> ComposeResult:
        with Vertical(id="assign-box"):
            what = "this trace" if self.count == 1 else f"{self.count:,} selected traces"
            title = Text.assemble(("Assign ", "bold"), (what, "bold"))
            if self.current:
                title.append("  now: " + safe_text(self.current, 30), "dim")
            yield Static(title, id="assign-title")
            yield Input(placeholder="type to filter, or a new name", id="assign-input")
            yield OptionList(id="assign-list")
            yield Static(Text("↑/↓ choose · enter assign · esc cancel", "dim"), id="assign-help")

    def on_mount(self) -> None:
        self._rebuild("")
        self.query_one(Input).focus()
        self._load_users()

    @work(thread=True, exclusive=True, exit_on_error=False, group="assign-users")
    def _load_users(self) -> None:
        try:
            users = known_users(self.app.store)  # type: ignore[attr-defined]
        except Exception:
            users = []
        self.app.call_from_thread(self._got_users, users)

    def _got_users(self, users: list[str]) -> None:
        self.users = sorted({*users, self.me}, key=lambda u: (u != self.me, u.casefold(), u))
        self._rebuild(self.query_one(Input).value)

    def _rebuild(self, typed: str) -> None:
        lst = self.query_one(OptionList)
        needle = typed.strip().casefold()
        options: list[Option] = []
        for user in self.users:
            if needle and needle not in user.casefold():
                continue
            label = Text(safe_text(user, 40))
            if user == self.me:
                label.append("  (you)", "dim")
            if user == self.current:
                label.append("  (assigned now)", "dim")
            options.append(Option(label, id=user))
        name = typed.strip()
        if name and name not in self.users:
            options.append(Option(Text.assemble(("new user: ", "dim"), (safe_text(name, 40), "bold")),
                                  id=NEW + name))
        if not needle:
            options.append(Option(Text("nobody (unassign)", "italic dim"), id=NOBODY))
        lst.clear_options()
        lst.add_options(options)
        if options:
            lst.highlighted = 0

    @on(Input.Changed, "#assign-input")
    def _typed(self, event: Input.Changed) -> None:
        self._rebuild(event.value)

    @on(Input.Submitted, "#assign-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        lst = self.query_one(OptionList)
        if lst.highlighted is None:
            return
        self._choose(lst.get_option_at_index(lst.highlighted).id)

    @on(OptionList.OptionSelected, "#assign-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id)

    def _choose(self, option_id: str | None) -> None:
        if option_id is None:
            return
        if option_id == NOBODY:
            self.dismiss((None,))
        elif option_id.startswith(NEW):
            self.dismiss((option_id[len(NEW):],))
        else:
            self.dismiss((option_id,))

    def action_move(self, delta: int) -> None:
        lst = self.query_one(OptionList)
        if not lst.option_count:
            return
        current = lst.highlighted if lst.highlighted is not None else -delta
        lst.highlighted = max(0, min(lst.option_count - 1, current + delta))

    def action_cancel(self) -> None:
        self.dismiss(None)
