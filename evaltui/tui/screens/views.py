"""The views dialog (``v``) and the name prompt (``ctrl+s`` save, ``r`` rename).

The dialog lists built-in views, my saved views (local config) and the project's shared
views (in the database). enter applies one; on a saved view r renames, u updates it with
the table's current arrangement, d deletes; m makes it my default for the project, p the
project default (everyone on this database). Built-ins cannot be renamed, updated or deleted.
The experiment screen does the work (``ViewsHost``); the dialog shows and asks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, OptionList, Static
from textual.widgets.option_list import Option

from evaltui.tui.widgets.text_safety import safe_text
from evaltui.tui.commands import list_cursor_bindings

KINDS = {"builtin": "built-in", "personal": "mine", "shared": "shared"}


@dataclass
class ViewEntry:
    kind: str  # builtin | personal | shared
    name: str
    summary: str = ""
    current: bool = False
    my_default: bool = False
    project_default: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


class ViewsHost(Protocol):
    def view_entries(self) -> list[ViewEntry]: ...
    def apply_view_entry(self, kind: str, name: str) -> None: ...
    def rename_view_entry(self, kind: str, old: str, new: str) -> None: ...
    def update_view_entry(self, kind: str, name: str) -> None: ...
    def delete_view_entry(self, kind: str, name: str) -> None: ...
    def default_view_entry(self, kind: str, name: str, project: bool) -> None: ...


class ViewList(OptionList):
    HELP_GROUP = "Views"
    BINDINGS = [
        *list_cursor_bindings("views"),
        Binding("enter", "screen.apply", "Apply", id="views.apply"),
    ]


class GroupList(OptionList):
    HELP_GROUP = "Group by"
    BINDINGS = [
        *list_cursor_bindings("group"),
        Binding("enter", "screen.apply", "Group", id="group.apply"),
    ]


class ViewsScreen(ModalScreen[None]):
    """enter apply · r rename · u update · d delete · m my default · p project default."""

    HELP_GROUP = "Views dialog"
    BINDINGS = [
        Binding("r", "rename", "Rename", id="views.rename"),
        Binding("u", "update", "Update with current", id="views.update"),
        Binding("d,delete", "delete", "Delete", id="views.delete"),
        Binding("m", "default(False)", "My default", id="views.my-default"),
        Binding("p", "default(True)", "Project default", id="views.project-default"),
        Binding("escape,q,v", "close", "Close", id="views.close"),
    ]

    def __init__(self, host: ViewsHost, title: str = "") -> None:
        super().__init__(id="views-dialog")
        self.host = host
        self.title_text = title
        self.entries: list[ViewEntry] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="views-box"):
            yield Static(Text.assemble(("Views", "bold"), ("  " + safe_text(self.title_text, 60), "dim")),
                         id="views-title")
            yield ViewList(id="views-list")
            yield Static(Text("enter apply · r rename · u update · d delete · m my default · p project default"
                              " · esc close", "dim"), id="views-help")

    def on_mount(self) -> None:
        self.refresh_entries()
        lst = self.query_one(ViewList)
        current = next((i for i, e in enumerate(self.entries) if e.current), 0)
        lst.highlighted = current if self.entries else None
        lst.focus()

    def refresh_entries(self, select: str | None = None) -> None:
        """Rebuild the list from the host (after a change, or when shared views arrive);
        the highlight stays on its view, or goes to ``select`` (a ``kind:name`` key)."""
        lst = self.query_one(ViewList)
        keep = select or (self._entry().key if self._entry() is not None else None)
        self.entries = self.host.view_entries()
        lst.clear_options()
        options: list[Option] = []
        for e in self.entries:
            options.append(Option(self._label(e), id=e.key))
        lst.add_options(options)
        if self.entries:
            index = next((i for i, e in enumerate(self.entries) if e.key == keep), 0)
            lst.highlighted = index

    def _label(self, e: ViewEntry) -> Text:
        """One line: current mark, kind, name, default marks, what the view shows (cut to fit)."""
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append("● " if e.current else "  ", "bold")
        t.append(f"{KINDS[e.kind]:<9}", "dim")
        t.append(safe_text(e.name, 24).ljust(25), "bold" if e.current else "")
        if e.my_default:
            t.append("★ my default ", "#e5c07b")
        if e.project_default:
            t.append("◆ project default ", "#e5c07b")
        t.append(safe_text(e.summary, 100), "dim")
        # the dialog is at most 110 wide (2 border, 2 padding, a scrollbar)
        t.truncate(max(20, min(104, self.app.size.width - 7)), overflow="ellipsis")
        return t

    def _entry(self) -> ViewEntry | None:
        if not self.is_mounted:
            return None
        lst = self.query_one(ViewList)
        i = lst.highlighted
        return self.entries[i] if i is not None and 0 <= i < len(self.entries) else None

    def _editable(self) -> ViewEntry | None:
        e = self._entry()
        if e is not None and e.kind == "builtin":
            self.app.notify("Built-in views cannot be renamed, updated or deleted", severity="warning", timeout=3)
            return None
        return e

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        e = self._entry()
        if e is None:
            return
        self.dismiss(None)
        self.host.apply_view_entry(e.kind, e.name)

    def action_rename(self) -> None:
        e = self._editable()
        if e is None:
            return

        def done(result: tuple[str, bool] | None) -> None:
            if result and result[0] != e.name:
                self.host.rename_view_entry(e.kind, e.name, result[0])
                self.refresh_entries(select=f"{e.kind}:{result[0]}")

        self.app.push_screen(NamePrompt(f"Rename view {e.name!r}", e.name), done)

    def action_update(self) -> None:
        e = self._editable()
        if e is not None:
            self.host.update_view_entry(e.kind, e.name)
            self.refresh_entries()

    def action_delete(self) -> None:
        e = self._editable()
        if e is not None:
            self.host.delete_view_entry(e.kind, e.name)
            self.refresh_entries()

    def action_default(self, project: bool) -> None:
        e = self._entry()
        if e is None:
            return
        if project and e.kind == "personal":
            self.app.notify("Only shared and built-in views can be the project default (save it as shared)",
                            severity="warning", timeout=4)
            return
        self.host.default_view_entry(e.kind, e.name, project)
        self.refresh_entries()

    def action_close(self) -> None:
        self.dismiss(None)


class NamePrompt(ModalScreen[tuple[str, bool] | None]):
    """A name (and, when saving, whether the view is shared); enter accepts, esc cancels."""

    HELP_GROUP = "Name"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="name.cancel"),
        Binding("ctrl+t", "toggle_shared", "Shared on/off", id="name.toggle-shared"),
    ]

    def __init__(self, title: str, value: str = "", *, ask_shared: bool = False) -> None:
        super().__init__(id="name-prompt")
        self.title_text = title
        self.value = value
        self.ask_shared = ask_shared

    def compose(self) -> ComposeResult:
        with Vertical(id="name-box"):
            yield Static(Text(safe_text(self.title_text, 70), "bold"), id="name-title")
            yield Input(value=self.value, placeholder="view name", id="name-input")
            if self.ask_shared:
                yield Checkbox("shared: everyone opening this database sees it", id="name-shared")
            yield Static(Text("enter save · ctrl+t shared on/off · esc cancel" if self.ask_shared
                              else "enter accept · esc cancel", "dim"), id="name-help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if not name:
            self.app.notify("A view needs a name", severity="warning", timeout=2)
            return
        shared = self.query_one(Checkbox).value if self.ask_shared else False
        self.dismiss((name, shared))

    def action_toggle_shared(self) -> None:
        if self.ask_shared:
            box = self.query_one(Checkbox)
            box.value = not box.value

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_shared":
            return self.ask_shared
        return True

    def action_cancel(self) -> None:
        self.dismiss(None)


class GroupScreen(ModalScreen[tuple[str | None, str] | None]):
    """Choose what to group rows by (enter), and how groups are ordered (s cycles)."""

    HELP_GROUP = "Group by dialog"
    BINDINGS = [
        Binding("s", "cycle_sort", "Order groups", id="group.order"),
        Binding("escape,q,b", "close", "Close", id="group.close"),
    ]

    def __init__(self, paths: list[str], scores: list[str], current: str | None, group_sort: str) -> None:
        super().__init__(id="group-dialog")
        self.paths = [None, *paths]
        self.sorts = ["size", "name", *[f"score:{s}" for s in scores]]
        self.current = current
        self.group_sort = group_sort if group_sort in self.sorts else "size"

    def compose(self) -> ComposeResult:
        with Vertical(id="group-box"):
            yield Static(Text("Group rows by", "bold"), id="group-title")
            yield GroupList(id="group-list")
            yield Static("", id="group-order")
            yield Static(Text("enter group · s order groups · esc close", "dim"), id="group-help")

    def on_mount(self) -> None:
        lst = self.query_one(GroupList)
        for path in self.paths:
            label = "(no grouping)" if path is None else path
            lst.add_option(Option(Text(("● " if path == self.current else "  ") + safe_text(label, 60))))
        lst.highlighted = self.paths.index(self.current) if self.current in self.paths else 0
        lst.focus()
        self._show_sort()

    def _show_sort(self) -> None:
        s = self.group_sort
        what = ("largest first" if s == "size" else "by name" if s == "name"
                else f"lowest {s[len('score:scores.'):] if s.startswith('score:scores.') else s[6:]} first")
        self.query_one("#group-order", Static).update(Text.assemble(("groups: ", "dim"), (what, "bold")))

    def action_cycle_sort(self) -> None:
        self.group_sort = self.sorts[(self.sorts.index(self.group_sort) + 1) % len(self.sorts)]
        self._show_sort()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss((self.paths[event.option_index], self.group_sort))

    def action_apply(self) -> None:
        i = self.query_one(GroupList).highlighted
        if i is not None:
            self.dismiss((self.paths[i], self.group_sort))

    def action_close(self) -> None:
        self.dismiss(None)
