"""Key bindings as data: the help screen and the command palette read the same live table.

``binding_entries`` walks a screen's binding chain (focused widget up to the app, with the
user's keymap applied) and returns one entry per binding that has an id; the palette
providers turn each entry into a command, so everything a key does is findable by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode

if TYPE_CHECKING:
    from textual.screen import Screen


@dataclass
class BindingEntry:
    group: str
    keys: list[str]  # display forms, e.g. ["j", "↓"]
    description: str
    binding_id: str
    action: str
    namespace: DOMNode
    enabled: bool = True

    @property
    def key_text(self) -> str:
        return " / ".join(self.keys)


def list_cursor_bindings(prefix: str) -> list[Binding]:
    """j/k/g/G (and arrows, home/end) for an OptionList, with ids ``<prefix>.cursor-*``."""
    return [
        Binding("j,down", "cursor_down", "Down", show=False, id=f"{prefix}.cursor-down"),
        Binding("k,up", "cursor_up", "Up", show=False, id=f"{prefix}.cursor-up"),
        Binding("g,home", "first", "First", show=False, id=f"{prefix}.cursor-first"),
        Binding("G,end", "last", "Last", show=False, id=f"{prefix}.cursor-last"),
    ]


GROUP_NAMES = {"ExperimentTable": "Table"}  # widgets that are not ours to give a HELP_GROUP


def group_name(node: DOMNode) -> str:
    """What a namespace is called in help and the palette (``HELP_GROUP`` or the class name)."""
    name = type(node).__name__
    return getattr(node, "HELP_GROUP", None) or GROUP_NAMES.get(name, name)


def _chain(screen: Screen[Any], extra: Iterable[DOMNode] = ()) -> list[tuple[DOMNode, Any]]:
    chain = list(screen._modal_binding_chain)
    present = {id(node) for node, _ in chain}
    keymap = screen.app._keymap
    for node in extra:
        if id(node) in present or not node.is_attached:
            continue
        bindings = node._bindings.copy()
        if keymap:
            bindings.apply_keymap(keymap)
        # widgets not in the focus chain go before the screen, as if focused
        chain.insert(max(len(chain) - 2, 0), (node, bindings))
        present.add(id(node))
    return chain


def binding_entries(screen: Screen[Any], extra: Iterable[DOMNode] = (), *, include_disabled: bool = False,
                    shadow: bool = True) -> list[BindingEntry]:
    """Bindings with an id reachable from ``screen`` now (focused widget first), grouped.

    With ``shadow`` a key bound in two places is listed only where it wins (the first in
    the chain), as help must say what a key does. ``extra`` adds widgets that are not
    focused (e.g. the table while the trace pane has focus); the palette uses it with
    ``shadow=False``, as a command runs its action directly, whatever the keys.
    """
    app = screen.app
    entries: dict[tuple[int, str], BindingEntry] = {}
    taken: set[str] = set()  # keys an earlier namespace already answers
    for node, bindings in _chain(screen, extra):
        claimed: set[str] = set()
        for key, binding in bindings:
            if shadow and key in taken:
                continue
            state = app._check_action_state(binding.action, node)
            if state is False and not include_disabled:
                continue  # a disabled binding lets the key fall through to the next namespace
            claimed.add(key)
            if not binding.id or not binding.description:
                continue
            display = app.get_key_display(Binding(key, binding.action, key_display=binding.key_display))
            entry = entries.get((id(node), binding.id))
            if entry is None:
                entries[(id(node), binding.id)] = BindingEntry(
                    group_name(node), [display], binding.description, binding.id, binding.action, node,
                    state is not False,
                )
            elif display not in entry.keys:
                entry.keys.append(display)
        taken |= claimed
    return list(entries.values())


_MOVES = ("cursor", "first", "last", "page", "scroll", "focus", "top", "bottom")


def _is_movement(binding_id: str) -> bool:
    _, _, name = binding_id.rpartition(".")
    return binding_id.startswith("tree.") or name.startswith(_MOVES)


class BindingCommands(Provider):
    """Every bound action of the screen as a command ("Group: description")."""

    def extra_nodes(self) -> list[DOMNode]:
        return []

    def extra_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        """(name, callback, help) commands that have no key."""
        return []

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        out: list[tuple[str, Callable[[], Any], str]] = []
        for e in binding_entries(self.screen, self.extra_nodes(), shadow=False):
            if _is_movement(e.binding_id):
                continue  # moving the cursor is a key, not a command
            out.append((f"{e.group}: {e.description}", partial(e.namespace.run_action, e.action),
                        f"key {e.key_text} · id {e.binding_id}"))
        out.extend(self.extra_commands())
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class AppCommands(Provider):
    """Commands that are not bound to a key, on every screen."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = self.app
        out = []
        for mode in ("auto", "osc52", "system"):
            out.append((f"Clipboard: use {mode}", partial(app.set_clipboard_mode, mode),  # type: ignore[attr-defined]
                        {"auto": "OSC 52 over SSH, else the system clipboard",
                         "osc52": "always ask the terminal (OSC 52)",
                         "system": "always the system clipboard (pyperclip)"}[mode]))
        out.append(("Help: keys of this screen", app.action_help, "? or f1"))  # type: ignore[attr-defined]
        return out

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class ExperimentListCommands(BindingCommands):
    """Commands of the experiment list."""


class ExperimentCommands(BindingCommands):
    """Commands of the experiment screen: the table's and the trace pane's too."""

    def extra_nodes(self) -> list[DOMNode]:
        screen = self.screen
        nodes: list[DOMNode] = []
        for selector in ("ExperimentTable", "TracePane"):
            found = screen.query(selector)
            if found:
                node = found.first()
                if node.display:
                    nodes.append(node)
        return nodes

    def extra_commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        screen = self.screen
        out = []
        for density in ("compact", "tall"):
            out.append((f"Density: {density}", partial(screen.set_density, density),  # type: ignore[attr-defined]
                        "rows one line high" if density == "compact" else "rows three lines high"))
        reset = screen.reset_columns  # type: ignore[attr-defined]
        out.append(("Columns: reset to defaults", reset, "forget this project's column settings"))
        out.extend(view_commands(screen))
        out.append(("Review: score with…", screen.score_with,  # type: ignore[attr-defined]
                    "run built-in scorers over the selected traces (or the one under the cursor)"))
        out.append(("Human scores: define…", screen.define_human_score,  # type: ignore[attr-defined]
                    "add a categorical, continuous or free-text score this project's reviewers fill in"))
        out.append(("Aggregate score: define…", screen.define_aggregate,  # type: ignore[attr-defined]
                    "a weighted mean, minimum or maximum of scores, shown as a score column"))
        out.append(("Custom column: add…", screen.add_custom_column,  # type: ignore[attr-defined]
                    "a column computed from a filter-language expression, e.g. a / b"))
        out.extend(screen.computed_commands())  # type: ignore[attr-defined]
        from evaltui.tui.screens.compare_layouts import LAYOUT_NAMES, LAYOUTS, open_layout

        for name in LAYOUTS:
            out.append((f"Layout: {LAYOUT_NAMES[name]}", partial(open_layout, screen, name), "L cycles the layouts"))
        return out


def view_commands(screen: Any) -> list[tuple[str, Callable[[], Any], str]]:
    """Sort, group, search and built-in views of the experiment screen, by name."""
    from evaltui.query.arrange import BUILTIN_HELP

    out: list[tuple[str, Callable[[], Any], str]] = [
        ("Sort: clear", screen.clear_sort, "rows in their loaded order"),
        ("Group: none", partial(screen.set_group, None), "no group rows"),
        ("Group: collapse all", partial(screen.set_all_groups, True), "only the group rows"),
        ("Group: expand all", partial(screen.set_all_groups, False), "every row under its group"),
        ("Search: clear", screen.clear_search, "no search highlight"),
    ]
    for name, what in BUILTIN_HELP.items():
        out.append((f"View: {name}", partial(screen.apply_view_entry, "builtin", name), what))
    return out
