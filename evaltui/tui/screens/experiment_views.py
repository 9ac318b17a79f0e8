"""The experiment screen's arrangement (issue 4): built-in and saved views, sort, group by
and text search. A mixin of ``ExperimentScreen`` so the screen module keeps its shape.

State: the built-in view (``view_name``), the typed filter (the screen's ``filter_text``),
``sort_keys``, ``group_by`` / ``group_sort``, ``search_text``, and the columns of a loaded
saved view. The screen's filter worker arranges the rows (view and filter, sort, group, in
that order, see :func:`arrange_rows`); search runs after, on the rows shown.

Sort keys: ``[`` / ``]`` on a column adds it as the next key (ascending / descending); the
other key on a sorted column flips it; the same key again removes it ("Sort: clear" in the
palette removes all). Group rows: enter collapses / expands one; the palette collapses or
expands all.

Saved views: personal ones in the config, shared ones in the project settings of the
database. The default applied when the experiment opens: my default (config) for the
project, else the project default (database), else the built-in Default.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.message import Message

from evaltui.config import ColumnSettings, SavedView
from evaltui.lazy_polars import pl
from evaltui.query.arrange import (
    BUILTIN_HELP,
    BUILTIN_VIEWS,
    Group,
    SearchIndex,
    builtin_filter,
    describe_sort,
    group_choices,
    group_frame,
    sort_frame,
    toggle_sort_key,
)
from evaltui.tui.widgets.experiment_table import ExperimentTable
from evaltui.tui.widgets.text_safety import safe_text

if TYPE_CHECKING:
    from evaltui.tui.screens.views import ViewEntry
    from evaltui.tui.widgets.search_bar import SearchBar


def arrange_rows(frame: pl.DataFrame, view_filter: str | None, text: str | None, row_type: str,
                 sort_keys: list[tuple[str, bool]], group_by: str | None, group_sort: str,
                 spans: Callable[[], pl.DataFrame] | None = None) -> tuple[pl.DataFrame, list[Group] | None]:
    """The rows to show: built-in view and typed filter, then sorted, then grouped."""
    from evaltui.query.filter import FilterError, filter_frame  # loaded when first used, not at start-up

    if view_filter:
        try:
            frame = filter_frame(frame, view_filter, row_type=row_type, spans=spans)
        except FilterError as e:
            raise ValueError(f"this view does not apply to {row_type} rows ({e.message})") from e
    if text and text.strip():
        frame = filter_frame(frame, text, row_type=row_type, spans=spans)
    frame = sort_frame(frame, sort_keys)
    groups = None
    if group_by:
        frame, groups = group_frame(frame, group_by, group_sort)
    return frame, groups


class ExperimentViews:
    """Sort, group, search and views for ``ExperimentScreen`` (see the module docstring)."""

    # provided by ExperimentScreen
    app: Any
    experiment: dict[str, Any]
    row_type: str
    frames: dict[str, pl.DataFrame]
    filtered: dict[str, pl.DataFrame]
    filter_text: str | None
    project: str

    class ViewsLoaded(Message):
        def __init__(self, shared: dict[str, Any], project_default: str | None, error: str | None = None) -> None:
            self.shared = shared
            self.project_default = project_default
            self.error = error
            super().__init__()

    class SearchDone(Message):
        def __init__(self, state: tuple, hits: list[int], jump: bool) -> None:
            self.state = state
            self.hits = hits
            self.jump = jump
            super().__init__()

    def _init_views(self) -> None:
        self.view_name = "Default"  # the built-in view
        self.sort_keys: list[tuple[str, bool]] = []
        self.group_by: str | None = None
        self.group_sort = "size"
        self.search_text: str | None = None
        self.search_hits: list[int] = []  # frame rows of the shown frame, ascending
        self._search_index: SearchIndex | None = None  # searches of the shown frame (typed ahead)
        self._search_ahead = None  # the timer of the search-as-you-type
        self._search_jump = False  # enter searched before the frame was in: jump when it is
        self.groups: dict[str, list[Group] | None] = {}
        self.saved_view: tuple[str, str] | None = None  # (kind, name) last applied
        self.view_columns: ColumnSettings | None = None  # columns of the applied saved view
        self.shared_views: dict[str, SavedView] = {}
        self.project_default: str | None = None
        self._default_applied = False
        self._seen: dict[str, tuple[int, dict[str, list[Any]]]] = {}

    # -- the arrangement ----------------------------------------------------------------------

    def _arranging(self) -> bool:
        """Whether the rows shown differ from the loaded frame (a worker prepares them)."""
        return bool(self.filter_text is not None or self.view_name != "Default" or self.sort_keys or self.group_by)

    def _arrange_state(self) -> tuple:
        return (self.view_name, tuple(self.sort_keys), self.group_by, self.group_sort)

    def _arrange(self, row_type: str, text: str, frame: pl.DataFrame,
                 spans: Callable[[], pl.DataFrame]) -> tuple[pl.DataFrame, list[Group] | None]:
        """Run in the filter worker: the frame to show for ``text`` and the current arrangement."""
        view_filter = builtin_filter(self.view_name, self.app.user, row_type)
        return arrange_rows(frame, view_filter, text, row_type, list(self.sort_keys), self.group_by, self.group_sort,
                            spans)

    def rearrange(self) -> None:
        """Arrange the current row type again (after a view, sort or group change)."""
        frame = self.frames.get(self.row_type)
        self.filtered.pop(self.row_type, None)
        for rt in list(self.filtered):
            if rt != self.row_type:
                self.filtered.pop(rt, None)
        if frame is None:
            return
        if not self._arranging():
            self.groups.clear()
            self._show_frame()  # type: ignore[attr-defined]
            self._update_title()  # type: ignore[attr-defined]
            return
        self.run_filter(self.row_type, self.filter_text or "", frame, quiet=True)  # type: ignore[attr-defined]

    def _after_show(self, table: ExperimentTable) -> None:
        """Called by ``_show_frame``: sort marks, search highlight, search hits."""
        table.set_sort_keys(self.sort_keys)
        table.set_search(self.search_text)
        self.sync_sub_rows(table)  # type: ignore[attr-defined]  # diff mode's sub-rows (compare_support.py)
        if self.search_text:
            self.run_search(jump=False)

    def _groups_for(self, row_type: str) -> list[Group] | None:
        return self.groups.get(row_type) if row_type in self.filtered else None

    def _title_extras(self, t: Text) -> None:
        """The arrangement in the title: view, sort, group, search."""
        if self.saved_view is not None:
            t.append(" · ", "dim")
            t.append("view: ", "dim")
            t.append(safe_text(self.saved_view[1], 40), "bold")
        if self.view_name != "Default":
            t.append(" · ", "dim")
            t.append(safe_text(self.view_name, 40), "bold")
        if self.sort_keys:
            t.append(" · ", "dim")
            t.append("sort: ", "dim")
            t.append(safe_text(describe_sort(self.sort_keys), 80))
        if self.group_by:
            t.append(" · ", "dim")
            t.append("group: ", "dim")
            t.append(safe_text(self.group_by, 40))
            groups = self.groups.get(self.row_type)
            if groups is not None:
                t.append(f" ({len(groups):,})", "dim")
        if self.search_text:
            t.append(" · ", "dim")
            t.append("search: ", "dim")
            t.append(safe_text(self.search_text, 60), "bold")
            t.append(f" ({len(self.search_hits):,} match{'es' if len(self.search_hits) != 1 else ''})", "dim")

    # -- sort -----------------------------------------------------------------------------------

    def action_sort(self, descending: bool) -> None:
        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        columns = table.visible_columns
        if not columns or self.rows_loading():  # type: ignore[attr-defined]
            return
        key = columns[table.cursor_column].key
        self.set_sort(toggle_sort_key(self.sort_keys, key, descending))

    def set_sort(self, keys: list[tuple[str, bool]]) -> None:
        self.sort_keys = list(keys)
        self.query_one(ExperimentTable).set_sort_keys(self.sort_keys)  # type: ignore[attr-defined]
        self.rearrange()

    def clear_sort(self) -> None:
        self.set_sort([])

    # -- group ----------------------------------------------------------------------------------

    def action_group(self) -> None:
        frame = self.frames.get(self.row_type)
        if frame is None:
            self.rows_loading()  # type: ignore[attr-defined]  # (says so)
            return
        from evaltui.tui.screens.views import GroupScreen

        scores = [c for c in frame.columns if c.startswith("scores.")]
        self.app.push_screen(GroupScreen(group_choices(frame), scores, self.group_by, self.group_sort),
                             self._group_chosen)

    def _group_chosen(self, choice: tuple[str | None, str] | None) -> None:
        if choice is None:
            return
        self.set_group(*choice)

    def set_group(self, path: str | None, group_sort: str = "size") -> None:
        self.group_by = path or None
        self.group_sort = group_sort
        self.rearrange()

    def set_all_groups(self, collapsed: bool) -> None:
        self.query_one(ExperimentTable).set_all_groups(collapsed)  # type: ignore[attr-defined]

    # -- search ---------------------------------------------------------------------------------

    async def action_search(self) -> None:
        bar = await self._bar("search")  # type: ignore[attr-defined]
        bar.open(self.search_text or "")

    def on_search_bar_applied(self, event: SearchBar.Applied) -> None:
        event.stop()
        self._close_search_bar()  # the table takes the keys: n / N at once
        if self._search_ahead is not None:
            self._search_ahead.stop()
        text = event.text.strip()
        self.search_text = text or None
        if not text:
            self.query_one(ExperimentTable).set_search(None)  # type: ignore[attr-defined]
            self.search_hits = []
            self._update_title()  # type: ignore[attr-defined]
            return
        # the highlights are set with the hits (one repaint of the table, not two)
        self.run_search(jump=True)

    def on_search_bar_typed(self, event: SearchBar.Typed) -> None:
        """Search ahead while the user types: after a short pause in the typing, the text is
        searched in a worker, so that enter shows its matches without waiting for them."""
        event.stop()
        if self._search_ahead is not None:
            self._search_ahead.stop()
        text = event.text.strip()
        if text and self.row_type in self.frames:  # (not on a first page: enter searches the frame)
            self._search_ahead = self.set_timer(0.1, lambda: self._search_ahead_worker(self._index(), text))

    @work(thread=True, exclusive=True, exit_on_error=False, group="search-ahead")
    def _search_ahead_worker(self, index: SearchIndex, text: str) -> None:
        index.hits(text)  # remembered by the index; a search for it meanwhile waits for this one

    def _index(self) -> SearchIndex:
        """The search index of the frame shown (a new one when the rows changed)."""
        frame = self.query_one(ExperimentTable).frame  # type: ignore[attr-defined]
        if self._search_index is None or self._search_index.frame is not frame:
            self._search_index = SearchIndex(frame)
        return self._search_index

    def on_search_bar_closed(self, event: SearchBar.Closed) -> None:
        event.stop()
        self._close_search_bar()
        if self.search_text:
            self.clear_search()  # esc in the bar clears, as esc on the table does

    def _close_search_bar(self) -> None:
        bar = self._open_bar("search")  # type: ignore[attr-defined]
        if bar is not None and bar.display:
            bar.display = False
            self.query_one(ExperimentTable).focus()  # type: ignore[attr-defined]

    def clear_search(self) -> None:
        self.search_text = None
        self.search_hits = []
        self.query_one(ExperimentTable).set_search(None)  # type: ignore[attr-defined]
        self._update_title()  # type: ignore[attr-defined]

    def run_search(self, jump: bool) -> None:
        if not self.search_text:
            return
        if self.row_type not in self.frames:  # only a first page is in: the search runs with the frame
            self._search_jump = self._search_jump or jump
            return
        jump, self._search_jump = jump or self._search_jump, False
        index = self._index()
        state = (id(index.frame), self.search_text)
        known = index.known(self.search_text)
        if known is not None:  # searched while it was typed: show it now
            self.on_experiment_views_search_done(self.SearchDone(state, known, jump))  # type: ignore[attr-defined]
        else:
            self._search_worker(index, self.search_text, state, jump)

    @work(thread=True, exclusive=True, exit_on_error=False, group="search")
    def _search_worker(self, index: SearchIndex, text: str, state: tuple, jump: bool) -> None:
        self.post_message(self.SearchDone(state, index.hits(text), jump))  # type: ignore[attr-defined]

    def on_experiment_views_search_done(self, message: SearchDone) -> None:
        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        if message.state != (id(table.frame), self.search_text):
            return  # the rows or the search changed meanwhile
        self.search_hits = message.hits
        table.set_search(self.search_text)
        self._update_title()  # type: ignore[attr-defined]
        if message.jump:
            if not message.hits:
                self.app.notify(f"No match for {safe_text(self.search_text or '', 60)!r}", severity="warning",
                                timeout=3, markup=False)
            else:
                self._jump_to_match(0, inclusive=True)

    async def action_search_next(self, step: int) -> None:
        if not self.search_text:
            await self.action_search()
            return
        if not self.search_hits:
            self.app.notify("No matches", severity="warning", timeout=2)
            return
        self._jump_to_match(step)

    def _jump_to_match(self, step: int, inclusive: bool = False) -> None:
        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        hits = self.search_hits
        row = table.cursor_row
        group = table.group_at(row)
        here = table._rows.frame_index(row)
        # a header row sits just before its group's first frame row
        position = (group.start - 0.5) if group is not None else (here if here is not None else -1)
        if step > 0 or inclusive:
            i = bisect.bisect_left(hits, position) if inclusive else bisect.bisect_right(hits, position)
            target = hits[i % len(hits)]
        else:
            i = bisect.bisect_left(hits, position) - 1
            target = hits[i % len(hits)]
        display = table.display_row(target)
        header = table.group_at(display)
        if header is not None and header.collapsed:
            table.toggle_group(display, collapsed=False)
            display = table.display_row(target)
        table.move_cursor(row=display)
        n = bisect.bisect_left(hits, target) + 1
        self.app.notify(f"match {n} of {len(hits)}", timeout=1.5)

    # -- built-in and saved views ---------------------------------------------------------------

    def current_view(self, name: str) -> SavedView:
        """The arrangement on screen now, as a view called ``name``."""
        from evaltui.tui.screens.experiment import settings_from

        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        columns = None
        if self.row_type in self.frames:
            _, defaults = self._columns_for(self.row_type)  # type: ignore[attr-defined]
            if [(s.key, s.visible, s.pinned, s.width) for s in table.columns] != [
                (s.key, s.visible, s.pinned, s.width) for s in defaults
            ]:
                columns = settings_from(table.columns, defaults)
        view = SavedView(name=name, row_type=self.row_type, view=self.view_name, filter=self.filter_text,
                         search=self.search_text, sort=list(self.sort_keys), group=self.group_by,
                         group_sort=self.group_sort, columns=columns, density=table.density)
        view = self.with_custom_columns_of(view)  # type: ignore[attr-defined]
        return self.with_comparison_of(view)  # type: ignore[attr-defined]  # layout, compared experiments

    def apply_view(self, view: SavedView, kind: str | None = None) -> None:
        """Show the table arranged as ``view`` (a saved one or a built-in's)."""
        self.saved_view = (kind, view.name) if kind in ("personal", "shared") else None
        self.apply_comparison_of(view)  # type: ignore[attr-defined]  # its comparison, diff mode, layout
        if self.adopt_custom_columns(view):  # type: ignore[attr-defined]
            self._recompute_columns()  # type: ignore[attr-defined]  # the view's custom columns, then its filter
        self.view_name = view.view if view.view in BUILTIN_VIEWS else "Default"
        self.filter_text = view.filter
        self.search_text = view.search
        self.search_hits = []
        self.sort_keys = list(view.sort)
        self.group_by = view.group
        self.group_sort = view.group_sort
        self.view_columns = view.columns
        table = self.query_one(ExperimentTable)  # type: ignore[attr-defined]
        if view.density and view.density != table.density:
            table.density = view.density
        table.set_sort_keys(self.sort_keys)
        table.set_search(self.search_text)
        if view.row_type != self.row_type:
            self.row_type = view.row_type
            if view.row_type not in self.frames:
                self.filtered.clear()
                self.load_rows(view.row_type)  # type: ignore[attr-defined]
                self._update_title()  # type: ignore[attr-defined]
                return
        if self.row_type in self.frames:
            self.rearrange()  # shows the frame (with the view's columns) or arranges it first
        self._update_title()  # type: ignore[attr-defined]

    def apply_builtin(self, name: str) -> None:
        """Switch the built-in view, keeping the typed filter, sort and group."""
        self.view_name = name
        self.rearrange()
        self._update_title()  # type: ignore[attr-defined]

    def _view_columns_or(self, settings: ColumnSettings) -> ColumnSettings:
        return self.view_columns if self.view_columns is not None else settings

    def action_views(self) -> None:
        self.load_views()
        from evaltui.tui.screens.views import ViewsScreen

        self.app.push_screen(ViewsScreen(self, self.project))

    def view_entries(self) -> list[ViewEntry]:
        from evaltui.tui.screens.views import ViewEntry

        config = self.app.config
        personal = config.project_views(self.project)
        # my default is a name: a view of mine, else a shared one, else a built-in (as it loads)
        mine = self._default_ref(config.default_views.get(self.project), ("personal", "shared", "builtin"))
        project = self._default_ref(self.project_default, ("shared", "builtin"))
        current = self.saved_view
        out = []
        for name in BUILTIN_VIEWS:
            out.append(ViewEntry("builtin", name, BUILTIN_HELP.get(name, ""),
                                 current=current is None and self.view_name == name,
                                 my_default=mine == ("builtin", name), project_default=project == ("builtin", name)))
        for kind, views in (("personal", personal), ("shared", self.shared_views)):
            for name, view in sorted(views.items()):
                out.append(ViewEntry(kind, name, _summary(view), current=current == (kind, name),
                                     my_default=mine == (kind, name), project_default=project == (kind, name)))
        return out

    def _default_ref(self, name: str | None, kinds: tuple[str, ...]) -> tuple[str, str] | None:
        """Which view a default name means: the first kind that has a view of that name."""
        if not name:
            return None
        for kind in kinds:
            if self._find_view(kind, name) is not None:
                return (kind, name)
        return None

    def _find_view(self, kind: str, name: str) -> SavedView | None:
        if kind == "builtin":
            return SavedView(name=name, view=name) if name in BUILTIN_VIEWS else None
        views = self.app.config.project_views(self.project) if kind == "personal" else self.shared_views
        return views.get(name)

    def apply_view_entry(self, kind: str, name: str) -> None:
        if kind == "builtin":
            self.saved_view = None
            self.apply_builtin(name)
            return
        view = self._find_view(kind, name)
        if view is None:
            self.app.notify(f"No view called {name!r}", severity="warning", markup=False)
            return
        self.apply_view(view, kind)

    def action_save_view(self) -> None:
        default = self.saved_view[1] if self.saved_view else ""

        def done(result: tuple[str, bool] | None) -> None:
            if result:
                self.save_view(result[0], shared=result[1])

        from evaltui.tui.screens.views import NamePrompt

        self.app.push_screen(NamePrompt("Save this arrangement as a view", default, ask_shared=True), done)

    def save_view(self, name: str, *, shared: bool = False) -> SavedView:
        """Save the arrangement on screen as ``name`` (personal: config; shared: database)."""
        if name in BUILTIN_VIEWS:
            name = f"{name} (mine)"
        view = self.current_view(name)
        if shared:
            self.shared_views[name] = view
            self._write_shared(name, view.to_dict(), None)
        else:
            self.app.config.save_view(self.project, view)
            self.app.save_config()
        self.saved_view = ("shared" if shared else "personal", name)
        self._update_title()  # type: ignore[attr-defined]
        self.app.notify(f"Saved view {name!r}{' (shared)' if shared else ''}", timeout=2, markup=False)
        return view

    def rename_view_entry(self, kind: str, old: str, new: str) -> None:
        if new in BUILTIN_VIEWS:
            self.app.notify("That name belongs to a built-in view", severity="warning")
            return
        if kind == "personal":
            self.app.config.rename_view(self.project, old, new)
            self.app.save_config()
        elif kind == "shared" and old in self.shared_views:
            view = self.shared_views.pop(old)
            view.name = new
            self.shared_views[new] = view
            if self.project_default == old:
                self.project_default = new
            self._write_shared(old, None, new)
        if self.saved_view == (kind, old):
            self.saved_view = (kind, new)
            self._update_title()  # type: ignore[attr-defined]

    def update_view_entry(self, kind: str, name: str) -> None:
        view = self.current_view(name)
        if kind == "personal":
            self.app.config.save_view(self.project, view)
            self.app.save_config()
        elif kind == "shared":
            self.shared_views[name] = view
            self._write_shared(name, view.to_dict(), None)
        self.app.notify(f"View {name!r} updated", timeout=2, markup=False)

    def delete_view_entry(self, kind: str, name: str) -> None:
        if kind == "personal":
            self.app.config.delete_view(self.project, name)
            self.app.save_config()
        elif kind == "shared":
            self.shared_views.pop(name, None)
            if self.project_default == name:
                self.project_default = None
            self._write_shared(name, None, None)
        if self.saved_view == (kind, name):
            self.saved_view = None
            self._update_title()  # type: ignore[attr-defined]
        self.app.notify(f"View {name!r} deleted", timeout=2, markup=False)

    def default_view_entry(self, kind: str, name: str, project: bool) -> None:
        """Make (or, if it is already, unmake) a view my default or the project default."""
        if project:
            new = None if self.project_default == name else name
            self.project_default = new
            self._write_project_default(new)
            self.app.notify(f"Project default view: {new or 'built-in Default'}", timeout=2, markup=False)
            return
        config = self.app.config
        if config.default_views.get(self.project) == name:
            config.default_views.pop(self.project, None)
        else:
            config.default_views[self.project] = name
        self.app.save_config()
        now = config.default_views.get(self.project)
        self.app.notify(f"My default view: {now or 'none (project default)'}", timeout=2, markup=False)

    # -- the database side (workers) --------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="views")
    def load_views(self) -> None:
        """Read the project's shared views and default (another process may have changed them)."""
        from evaltui.store import project_settings

        pid = self.experiment.get("project_id")
        try:
            settings = project_settings(self.app.store, pid) if pid else {}
        except Exception as e:
            self.post_message(self.ViewsLoaded({}, None, f"could not read shared views: {e}"))  # type: ignore[attr-defined]
            return
        shared = settings.get("shared_views") or {}
        default = settings.get("default_view")
        self.post_message(self.ViewsLoaded(shared if isinstance(shared, dict) else {},  # type: ignore[attr-defined]
                                           default if isinstance(default, str) else None))

    def on_experiment_views_views_loaded(self, message: ViewsLoaded) -> None:
        if message.error:
            self.app.notify(safe_text(message.error, 300), severity="warning", markup=False)
        else:
            views = {}
            for name, raw in message.shared.items():
                view = SavedView.from_dict(name, raw)
                if view is not None:
                    views[name] = view
            self.shared_views = views
            self.project_default = message.project_default
        if not self._default_applied:
            self._default_applied = True
            self._apply_default_view()
        views = sys.modules.get("evaltui.tui.screens.views")  # imported when the dialog first opens
        for screen in self.app.screen_stack if views is not None else ():
            if isinstance(screen, views.ViewsScreen) and screen.is_mounted:
                screen.refresh_entries()

    def _apply_default_view(self) -> None:
        """My default, else the project default, else the built-in Default (nothing to do)."""
        ref = self._default_ref(self.app.config.default_views.get(self.project), ("personal", "shared", "builtin"))
        ref = ref or self._default_ref(self.project_default, ("shared", "builtin"))
        if ref is None:
            return
        kind, name = ref
        view = self._find_view(kind, name)
        if view is None:
            return
        if kind == "builtin":
            if name != "Default":
                self.apply_builtin(name)
        else:
            self.apply_view(view, kind)

    @work(thread=True, exit_on_error=False, group="views-write")
    def _write_shared(self, name: str, view: dict[str, Any] | None, rename_to: str | None) -> None:
        from evaltui.store.writers import set_shared_view

        try:
            set_shared_view(self.app.store, self.experiment["project_id"], name, view, rename_to=rename_to)
        except Exception as e:
            self.app.call_from_thread(self.app.notify, safe_text(f"could not save the shared view: {e}", 300),
                                      severity="error", markup=False)

    @work(thread=True, exit_on_error=False, group="views-write")
    def _write_project_default(self, name: str | None) -> None:
        from evaltui.store import update_project_settings

        try:
            update_project_settings(self.app.store, self.experiment["project_id"], default_view=name)
        except Exception as e:
            self.app.call_from_thread(self.app.notify, safe_text(f"could not set the project default: {e}", 300),
                                      severity="error", markup=False)

    # -- filter bar helpers -----------------------------------------------------------------------

    def _completion_values(self, row_type: str) -> dict[str, list[Any]]:
        frame = self.frames.get(row_type)
        if frame is None:
            return {}
        cached = self._seen.get(row_type)
        if cached is None or cached[0] != id(frame):
            from evaltui.query.filter import seen_values

            cached = (id(frame), seen_values(frame))
            self._seen[row_type] = cached
        return cached[1]

    def remember_filter(self, text: str) -> None:
        self.app.config.remember_filter(text)
        self.app.save_config()


def _summary(view: SavedView) -> str:
    parts = []
    if view.view != "Default":
        parts.append(view.view)
    if view.filter:
        parts.append(view.filter)
    if view.sort:
        parts.append("sort " + describe_sort(view.sort))
    if view.group:
        parts.append("group " + view.group)
    if view.search:
        parts.append(f"search {view.search!r}")
    if view.row_type != "traces":
        parts.append(view.row_type)
    if view.comparisons:
        parts.append(f"compared with {len(view.comparisons)}")
    if view.layout and view.layout.get("name", "list") != "list":
        parts.append(f"layout {view.layout['name']}")
    if view.layout and view.layout.get("diff"):
        parts.append("diff mode")
    return " · ".join(parts) or "all rows"
