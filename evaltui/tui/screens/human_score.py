"""Human scores: the dialog a reviewer scores one trace with, and a small form to define a
project's scores (both write through ``evaltui.store.review``)."""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Select, Static

from evaltui.store.review import ReviewError, define_human_score
from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["ChoiceField", "DefineScoreScreen", "HumanScoreScreen", "parse_options", "parse_percent"]


def parse_percent(text: str) -> float | None:
    """``"85"`` / ``"85%"`` / ``"0.5"`` → a percentage 0-100; ``""`` → None; ValueError when not one."""
    text = text.strip().rstrip("%").strip()
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= 100:
        raise ValueError(f"{text} is not a percentage from 0 to 100")
    return value


def parse_options(text: str) -> list[dict[str, Any]]:
    """``"good=1, ok=0.5, bad=0"`` → options; ValueError naming the part that is wrong."""
    options = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip():
            raise ValueError(f"option {part!r}: write it as name=value, e.g. good=1")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"option {part!r}: {value.strip()!r} is not a number from 0 to 1") from None
        options.append({"name": name.strip(), "value": number})
    if not options:
        raise ValueError("a categorical score needs options, e.g. good=1, ok=0.5, bad=0")
    return options


class ChoiceField(Static, can_focus=True):
    """A categorical score: number keys pick an option (toggle, when several may be chosen); 0 clears."""

    def __init__(self, definition: dict[str, Any], chosen: Any) -> None:
        super().__init__("", classes="hs-choice")
        self.definition = definition
        self.multi = bool(definition.get("multi_select"))
        names = [o["name"] for o in definition["options"]]
        if isinstance(chosen, str):
            chosen = [chosen]
        self.chosen: list[str] = [c for c in (chosen or []) if c in names]

    def on_mount(self) -> None:
        self._paint()

    def _paint(self) -> None:
        t = Text(end="")
        for i, option in enumerate(self.definition["options"], 1):
            if i > 1:
                t.append("  ")
            on_ = option["name"] in self.chosen
            key = str(i) if i < 10 else " "
            t.append(f" {key} ", "reverse bold" if on_ else "bold")
            t.append(" " + safe_text(option["name"], 30), "bold #98c379" if on_ else "")
            t.append(f" {option['value']:g}", "dim")
        if self.multi:
            t.append("   (several)", "dim italic")
        self.update(t)

    def pick(self, index: int) -> None:
        """Choose option ``index`` (0-based); a second press unchooses it."""
        options = self.definition["options"]
        if not 0 <= index < len(options):
            return
        name = options[index]["name"]
        if name in self.chosen:
            self.chosen.remove(name)
        elif self.multi:
            self.chosen.append(name)
        else:
            self.chosen = [name]
        self._paint()

    def value(self) -> Any:
        if not self.chosen:
            return None
        return list(self.chosen) if self.multi else self.chosen[0]

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character.isdigit():
            event.stop()
            event.prevent_default()
            if event.character == "0":
                self.chosen = []
                self._paint()
            else:
                self.pick(int(event.character) - 1)


class HumanScoreScreen(ModalScreen[dict[str, Any] | None]):
    """The project's human scores for one trace; dismisses with the answers that changed."""

    HELP_GROUP = "Human score dialog"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="human-score.cancel"),
        Binding("ctrl+s", "save", "Save", id="human-score.save"),
        Binding("enter", "save", "Save", show=False, id="human-score.save-enter"),
    ]

    def __init__(self, definitions: list[dict[str, Any]], mine: dict[str, Any], about: str) -> None:
        super().__init__(id="human-score-dialog")
        self.definitions = definitions
        self.mine = mine
        self.about = about

    def compose(self) -> ComposeResult:
        with Vertical(id="hs-box"):
            yield Static(Text.assemble(("Score ", "bold"), (safe_text(self.about, 60), "")), id="hs-title")
            with VerticalScroll(id="hs-fields"):
                for d in self.definitions:
                    name, kind = d["name"], d["kind"]
                    label = Text(safe_text(name, 40), "bold")
                    label.append(f"  {kind}", "dim")
                    if d.get("description"):
                        label.append("  " + safe_text(d["description"], 80), "dim italic")
                    yield Static(label, classes="hs-label")
                    current = self.mine.get(name)
                    if kind == "categorical":
                        yield ChoiceField(d, current)
                    elif kind == "continuous":
                        shown = "" if not isinstance(current, (int, float)) else f"{current * 100:g}"
                        yield Input(shown, placeholder="0-100 %", classes="hs-input", name=name)
                    else:
                        yield Input(current if isinstance(current, str) else "", placeholder="free text",
                                    classes="hs-input", name=name)
            yield Static("", id="hs-error")
            yield Static(Text("tab next · 1-9 pick · enter saves · esc cancels", "dim"), id="hs-help")

    def on_mount(self) -> None:
        fields = list(self.query(".hs-choice, .hs-input"))
        if fields:
            fields[0].focus()

    def answers(self) -> dict[str, Any]:
        """What the dialog holds now, per score name (ValueError for a bad percentage)."""
        out: dict[str, Any] = {}
        for field in self.query(ChoiceField):
            out[field.definition["name"]] = field.value()
        kinds = {d["name"]: d["kind"] for d in self.definitions}
        for box in self.query(Input):
            name = box.name or ""
            if kinds.get(name) == "continuous":
                try:
                    out[name] = parse_percent(box.value)
                except ValueError:
                    raise ValueError(f"{name}: {box.value.strip()!r} is not a percentage from 0 to 100") from None
            elif kinds.get(name) == "text":
                out[name] = box.value if box.value.strip() else None
        return out

    def _changed(self, answers: dict[str, Any]) -> dict[str, Any]:
        changed = {}
        for name, value in answers.items():
            before = self.mine.get(name)
            kind = next(d["kind"] for d in self.definitions if d["name"] == name)
            if kind == "continuous" and isinstance(before, (int, float)):
                before = before * 100
            if kind == "continuous" and isinstance(before, float) and isinstance(value, float) \
                    and math.isclose(before, value):
                continue
            if value != before:
                changed[name] = value
        return changed

    def action_save(self) -> None:
        try:
            answers = self.answers()
        except ValueError as e:
            self.query_one("#hs-error", Static).update(Text(safe_text(str(e), 200), "bold red"))
            return
        self.dismiss(self._changed(answers))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(None)


class DefineScoreScreen(ModalScreen[dict[str, Any] | None]):
    """A small form: name, kind, options (categorical) or metadata path (text)."""

    HELP_GROUP = "Define human score"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="define-score.cancel"),
        Binding("ctrl+s", "save", "Save", id="define-score.save"),
    ]

    def __init__(self, project_id: str, project: str) -> None:
        super().__init__(id="define-score-dialog")
        self.project_id = project_id
        self.project = project

    def compose(self) -> ComposeResult:
        with Vertical(id="ds-box"):
            yield Static(Text.assemble(("New human score", "bold"), ("  " + safe_text(self.project, 40), "dim")),
                         id="ds-title")
            yield Input(placeholder="name, e.g. Helpfulness", id="ds-name")
            yield Select([("categorical: options with values", "categorical"),
                          ("continuous: 0-100 %", "continuous"), ("text: a free-form note", "text")],
                         value="categorical", allow_blank=False, id="ds-kind")
            yield Input(placeholder="options: good=1, ok=0.5, bad=0", id="ds-options")
            yield Checkbox("several options may be chosen", id="ds-multi")
            yield Checkbox("write the chosen option to expected", id="ds-expected")
            yield Input(placeholder="metadata path of the answer (default: the name)", id="ds-path")
            yield Static("", id="ds-error")
            yield Static(Text("tab next · space ticks · enter saves · esc cancels", "dim"), id="ds-help")

    def on_mount(self) -> None:
        self.query_one("#ds-name", Input).focus()
        self._show_fields("categorical")

    def _show_fields(self, kind: Any) -> None:
        for selector in ("#ds-options", "#ds-multi", "#ds-expected"):
            self.query_one(selector).display = kind == "categorical"
        self.query_one("#ds-path").display = kind == "text"

    @on(Select.Changed, "#ds-kind")
    def _kind(self, event: Select.Changed) -> None:
        self._show_fields(event.value)

    def definition(self) -> dict[str, Any]:
        kind = self.query_one("#ds-kind", Select).value
        out: dict[str, Any] = {"name": self.query_one("#ds-name", Input).value.strip(), "kind": kind}
        if kind == "categorical":
            out["options"] = parse_options(self.query_one("#ds-options", Input).value)
            out["multi_select"] = self.query_one("#ds-multi", Checkbox).value
            out["write_to_expected"] = self.query_one("#ds-expected", Checkbox).value
        elif kind == "text" and self.query_one("#ds-path", Input).value.strip():
            out["path"] = self.query_one("#ds-path", Input).value.strip()
        return out

    def action_save(self) -> None:
        try:
            definition = self.definition()
        except ValueError as e:
            self._error(str(e))
            return
        self._save(definition)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def _error(self, message: str) -> None:
        self.query_one("#ds-error", Static).update(Text(safe_text(message, 300), "bold red"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="define-score")
    def _save(self, definition: dict[str, Any]) -> None:
        try:
            saved = define_human_score(self.app.store, self.project_id, definition)  # type: ignore[attr-defined]
        except ReviewError as e:
            self.app.call_from_thread(self._error, str(e))
            return
        except Exception as e:
            self.app.call_from_thread(self._error, f"could not save: {e}")
            return
        self.app.call_from_thread(self._saved, saved)

    def _saved(self, saved: dict[str, Any]) -> None:
        self.app.notify(safe_text(f"Human score {saved['name']!r} saved: H scores a trace", 200), markup=False)
        self.dismiss(saved)

    def action_cancel(self) -> None:
        self.dismiss(None)
