"""Aggregate scores and custom columns in the experiment table.

Aggregate scores are a project setting (``aggregate_scores``, shared by everyone on the
database); custom columns are per project in the local config. Both are computed on the
trace rows in the load worker (:mod:`evaltui.query.aggregates`), so they show, sort and
filter like the columns they look like (``scores.<name>``, ``custom.<name>``).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static

from evaltui.lazy_polars import pl
from evaltui.tui.widgets.text_safety import safe_text

__all__ = ["ComputedColumns", "DefineAggregateScreen", "AddCustomColumnScreen", "parse_weights"]

_FORM_CSS = """
DefineAggregateScreen, AddCustomColumnScreen { align: center middle; }
#agg-box, #cc-box { width: 72; height: auto; border: round $accent; padding: 0 1; background: $panel; }
#agg-error, #cc-error { height: auto; }
"""


def parse_weights(text: str) -> dict[str, float]:
    """``Factuality=2, Helpfulness=1`` (a bare name weighs 1) → {score: weight}."""
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, weight = part.rpartition("=") if "=" in part else (part, "", "1")
        name = name.strip()
        if not name:
            raise ValueError(f"{part!r}: a score name before '='")
        try:
            out[name] = float(weight.strip())
        except ValueError:
            raise ValueError(f"{part!r}: the weight of {name!r} is not a number") from None
    if not out:
        raise ValueError("name the scores to combine, e.g. Factuality=2, Helpfulness=1")
    return out


def custom_defs(config: Any, project: str) -> list[dict[str, str]]:
    """The project's custom columns from the local config (``[custom_columns.<project>]``)."""
    per = (config.extra.get("custom_columns") or {}).get(project) or {}
    if not isinstance(per, dict):
        return []
    return [{"name": n, "expr": e} for n, e in per.items() if isinstance(n, str) and isinstance(e, str)]


def apply_computed(frame: pl.DataFrame, aggregates: list[dict[str, Any]],
                   customs: list[dict[str, str]], strict: bool = False) -> pl.DataFrame:
    """``frame`` with the aggregate and custom columns; a definition that fails is left out
    (``strict``: raises instead)."""
    from evaltui.query.aggregates import with_aggregates, with_custom_columns

    for d in aggregates:
        try:
            frame = with_aggregates(frame, [d])
        except Exception:  # noqa: BLE001 - a bad stored definition must not stop the table
            if strict:
                raise
            continue
    for d in customs:
        try:
            frame = with_custom_columns(frame, [d])
        except Exception:  # noqa: BLE001 - e.g. a path this experiment does not have
            if strict:
                raise
            continue
    return frame


class ComputedColumns:
    """Experiment screen mixin: computed columns on trace rows, and the palette forms."""

    _aggregate_defs: list[dict[str, Any]] | None = None

    def computed_defs(self, refresh: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """(aggregates, custom columns); the project settings are read once (in a worker)."""
        if self._aggregate_defs is None or refresh:
            from evaltui.store import project_settings

            try:
                settings = project_settings(self.app.store, self.experiment["project_id"])  # type: ignore[attr-defined]
                aggs = settings.get("aggregate_scores") or []
            except Exception:  # noqa: BLE001 - no settings: no aggregates
                aggs = []
            self._aggregate_defs = [d for d in aggs if isinstance(d, dict) and d.get("name")]
        return self._aggregate_defs, custom_defs(self.app.config, self.project)  # type: ignore[attr-defined]

    def with_computed(self, frame: pl.DataFrame, row_type: str = "traces", refresh: bool = False,
                      strict: bool = False) -> pl.DataFrame:
        """Trace rows with the computed columns (``strict``: raise when one cannot be computed)."""
        if row_type != "traces":
            return frame
        aggs, customs = self.computed_defs(refresh)
        if not aggs and not customs:
            return frame
        return apply_computed(frame, aggs, customs, strict)

    def _recompute_columns(self) -> None:
        self._aggregate_defs = None
        self._reload_rows(self.row_type, True)  # type: ignore[attr-defined]

    def with_custom_columns_of(self, view: Any) -> Any:
        """``view`` (a SavedView) carrying this project's custom columns (``custom_columns``)."""
        customs = custom_defs(self.app.config, self.project)  # type: ignore[attr-defined]
        if customs:
            view.extra["custom_columns"] = {d["name"]: d["expr"] for d in customs}
        return view

    def adopt_custom_columns(self, view: Any) -> bool:
        """Add the custom columns a saved view carries that this config lacks; True if any."""
        carried = view.extra.get("custom_columns") if isinstance(view.extra, dict) else None
        if not isinstance(carried, dict):
            return False
        config = self.app.config  # type: ignore[attr-defined]
        mine = config.extra.setdefault("custom_columns", {}).setdefault(self.project, {})  # type: ignore[attr-defined]
        added = {n: e for n, e in carried.items() if isinstance(n, str) and isinstance(e, str) and n not in mine}
        if not added:
            return False
        mine.update(added)
        self.app.save_config()  # type: ignore[attr-defined]
        return True

    def define_aggregate(self) -> None:
        def done(saved: Any) -> None:
            if saved is not None:
                self._recompute_columns()

        self.app.push_screen(DefineAggregateScreen(self), done)  # type: ignore[attr-defined]

    def add_custom_column(self) -> None:
        def done(saved: Any) -> None:
            if saved is not None:
                self._recompute_columns()

        self.app.push_screen(AddCustomColumnScreen(self), done)  # type: ignore[attr-defined]


    def remove_aggregate(self, name: str) -> None:
        """Drop the aggregate score ``name`` from the project settings (in a worker)."""
        self._remove_aggregate(name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="remove-aggregate")
    def _remove_aggregate(self, name: str) -> None:
        from evaltui.store import project_settings, update_project_settings

        store, pid = self.app.store, self.experiment["project_id"]  # type: ignore[attr-defined]
        try:
            existing = [d for d in project_settings(store, pid).get("aggregate_scores") or [] if isinstance(d, dict)]
            kept = [d for d in existing if d.get("name") != name]
            if len(kept) != len(existing):
                update_project_settings(store, pid, aggregate_scores=kept)
        except Exception as e:  # noqa: BLE001 - a locked or read-only database: say so, keep the column
            self.app.call_from_thread(self.app.notify, safe_text(f"could not remove {name!r}: {e}", 300),  # type: ignore[attr-defined]
                                      severity="error", markup=False)
            return
        self.app.call_from_thread(self._removed, f"Aggregate score {name!r} removed for everyone on this database")

    def remove_custom_column(self, name: str) -> None:
        """Drop the custom column ``name`` from this project's local config."""
        config = self.app.config  # type: ignore[attr-defined]
        per = (config.extra.get("custom_columns") or {}).get(self.project)  # type: ignore[attr-defined]
        if not isinstance(per, dict) or name not in per:
            return
        del per[name]
        self.app.save_config()  # type: ignore[attr-defined]
        self._removed(f"Custom column {name!r} removed")

    def _removed(self, message: str) -> None:
        self.app.notify(safe_text(message, 200), markup=False)  # type: ignore[attr-defined]
        self._recompute_columns()

    def computed_commands(self) -> list[tuple[str, Any, str]]:
        """Palette entries that remove each defined aggregate score and custom column."""
        from functools import partial

        out: list[tuple[str, Any, str]] = []
        for d in self._aggregate_defs or []:
            name = str(d["name"])
            out.append((f"Aggregate score: remove {name}", partial(self.remove_aggregate, name),
                        "delete this project setting (every user of the database loses the column)"))
        for d in custom_defs(self.app.config, self.project):  # type: ignore[attr-defined]
            out.append((f"Custom column: remove {d['name']}", partial(self.remove_custom_column, d["name"]),
                        f"= {d['expr']}"))
        return out


class DefineAggregateScreen(ModalScreen[dict[str, Any] | None]):
    """Name, kind and weighted scores; validated, then saved to the project settings."""

    DEFAULT_CSS = _FORM_CSS
    HELP_GROUP = "Define aggregate score"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="define-aggregate.cancel"),
        Binding("ctrl+s", "save", "Save", id="define-aggregate.save"),
    ]

    def __init__(self, owner: Any) -> None:
        super().__init__(id="define-aggregate-dialog")
        self.owner = owner

    def compose(self) -> ComposeResult:
        with Vertical(id="agg-box"):
            yield Static(Text.assemble(("New aggregate score", "bold"),
                                       ("  " + safe_text(self.owner.project, 40), "dim")), id="agg-title")
            yield Input(placeholder="name, e.g. overall", id="agg-name")
            yield Select([("weighted mean", "weighted_mean"), ("minimum", "min"), ("maximum", "max")],
                         value="weighted_mean", allow_blank=False, id="agg-kind")
            yield Input(placeholder="scores: Factuality=2, Helpfulness=1", id="agg-scores")
            yield Static("", id="agg-error")
            yield Static(Text("tab next · enter saves · esc cancels", "dim"), id="agg-help")

    def on_mount(self) -> None:
        self.query_one("#agg-name", Input).focus()

    def _error(self, message: str) -> None:
        self.query_one("#agg-error", Static).update(Text(safe_text(message, 300), "bold red"))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        try:
            scores = parse_weights(self.query_one("#agg-scores", Input).value)
        except ValueError as e:
            self._error(str(e))
            return
        definition = {"name": self.query_one("#agg-name", Input).value.strip(),
                      "kind": self.query_one("#agg-kind", Select).value, "scores": scores}
        self._save(definition)

    @work(thread=True, exclusive=True, exit_on_error=False, group="define-aggregate")
    def _save(self, definition: dict[str, Any]) -> None:
        from evaltui.query.aggregates import AggregateError, validate_aggregate
        from evaltui.store import project_settings, update_project_settings

        store, pid = self.app.store, self.owner.experiment["project_id"]  # type: ignore[attr-defined]
        frame = self.owner.frames.get("traces")
        names = [c[len("scores."):] for c in (frame.columns if frame is not None else []) if c.startswith("scores.")]
        try:
            existing = [d for d in project_settings(store, pid).get("aggregate_scores") or [] if isinstance(d, dict)]
            new = validate_aggregate([definition], [*names, *(str(d.get("name")) for d in existing)])
            defs = [*existing, *new]
            update_project_settings(store, pid, aggregate_scores=defs)
        except AggregateError as e:
            self.app.call_from_thread(self._error, str(e))
            return
        except Exception as e:  # noqa: BLE001
            self.app.call_from_thread(self._error, f"could not save: {e}")
            return
        self.app.call_from_thread(self._saved, defs[-1])

    def _saved(self, saved: dict[str, Any]) -> None:
        self.app.notify(safe_text(f"Aggregate score {saved['name']!r} saved: column scores.{saved['name']}", 200),
                        markup=False)
        self.dismiss(saved)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AddCustomColumnScreen(ModalScreen[dict[str, str] | None]):
    """Name and filter-language expression; validated, then saved in the local config."""

    DEFAULT_CSS = _FORM_CSS
    HELP_GROUP = "Add custom column"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="custom-column.cancel"),
        Binding("ctrl+s", "save", "Save", id="custom-column.save"),
    ]

    def __init__(self, owner: Any) -> None:
        super().__init__(id="custom-column-dialog")
        self.owner = owner

    def compose(self) -> ComposeResult:
        with Vertical(id="cc-box"):
            yield Static(Text.assemble(("New custom column", "bold"),
                                       ("  " + safe_text(self.owner.project, 40), "dim")), id="cc-title")
            yield Input(placeholder="name, e.g. ratio", id="cc-name")
            yield Input(placeholder="expression, e.g. metrics.completion_tokens / metrics.prompt_tokens",
                        id="cc-expr")
            yield Static("", id="cc-error")
            yield Static(Text("tab next · enter saves · esc cancels", "dim"), id="cc-help")

    def on_mount(self) -> None:
        self.query_one("#cc-name", Input).focus()

    def _error(self, message: str) -> None:
        # one line each: the message, the expression, a caret under where it went wrong
        lines = [safe_text(line, 300) for line in message.split("\n")]
        self.query_one("#cc-error", Static).update(Text("\n".join(lines), "bold red"))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        from evaltui.query.aggregates import CustomColumnError, validate_custom_columns

        name = self.query_one("#cc-name", Input).value.strip()
        expr = self.query_one("#cc-expr", Input).value.strip()
        frame = self.owner.frames.get("traces")
        schema = dict(frame.schema) if frame is not None else {}
        existing = custom_defs(self.app.config, self.owner.project)  # type: ignore[attr-defined]
        if any(d["name"] == name for d in existing):
            self._error(f"custom column {name!r}: there is already a column of that name")
            return
        try:
            validate_custom_columns([{"name": name, "expr": expr}], schema)
        except CustomColumnError as e:
            self._error(f"{e}\n{e.caret()}")
            return
        config = self.app.config  # type: ignore[attr-defined]
        per = config.extra.setdefault("custom_columns", {})
        per.setdefault(self.owner.project, {})[name] = expr
        self.app.save_config()  # type: ignore[attr-defined]
        self.app.notify(safe_text(f"Custom column {name!r} added: column custom.{name}", 200), markup=False)
        self.dismiss({"name": name, "expr": expr})

    def action_cancel(self) -> None:
        self.dismiss(None)
