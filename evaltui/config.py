"""Local settings: one TOML file, read with tomllib, written atomically.

The file lives at ``platformdirs.user_config_path("evaltui")/config.toml``; ``EVALTUI_CONFIG``
points elsewhere (tests use it so they never touch the user's file). A file that does not
parse is moved aside (``config.toml.broken-<timestamp>``) and reported; the app then starts
with defaults and never overwrites what the user wrote.

This module never imports textual (DESIGN.md, rules of the house).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DENSITIES = ("compact", "tall")
CLIPBOARD_MODES = ("auto", "osc52", "system")
ROW_TYPES = ("traces", "spans")


def config_path() -> Path:
    """``$EVALTUI_CONFIG`` if set, else config.toml in the user config directory."""
    env = os.environ.get("EVALTUI_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_config_path("evaltui") / "config.toml"


@dataclass
class ColumnSettings:
    """How one table (a project's trace or span rows) lays out its columns."""

    order: list[str] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    pinned: list[str] = field(default_factory=list)
    widths: dict[str, int] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (self.order or self.hidden or self.pinned or self.widths)

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "hidden": list(self.hidden), "pinned": list(self.pinned),
                "widths": dict(self.widths)}

    @classmethod
    def from_dict(cls, data: Any) -> ColumnSettings:
        if not isinstance(data, dict):
            return cls()

        def names(key: str) -> list[str]:
            v = data.get(key)
            return [s for s in v if isinstance(s, str)] if isinstance(v, list) else []

        widths = data.get("widths")
        return cls(
            order=names("order"),
            hidden=names("hidden"),
            pinned=names("pinned"),
            widths={k: int(v) for k, v in widths.items() if isinstance(v, int) and not isinstance(v, bool) and v > 0}
            if isinstance(widths, dict) else {},
        )


HISTORY_SIZE = 100  # filter-bar entries remembered
ARRANGEMENT_FIELDS = ("row_type", "view", "filter", "search", "sort", "group", "group_sort", "columns", "density",
                      "layout", "comparisons")


@dataclass
class SavedView:
    """A named arrangement of an experiment's table (issue 4), saved in config or shared.

    ``view`` is a built-in view's name; ``sort`` holds (column, descending) pairs, most
    significant first; ``columns`` the column settings (None: the project's own). ``layout``
    and ``comparisons`` are kept for the comparison screens (issue 5) and written back as read.
    """

    name: str
    row_type: str = "traces"
    view: str = "Default"
    filter: str | None = None
    search: str | None = None
    sort: list[tuple[str, bool]] = field(default_factory=list)
    group: str | None = None
    group_sort: str = "size"
    columns: ColumnSettings | None = None
    density: str | None = None
    layout: dict[str, Any] = field(default_factory=dict)
    comparisons: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # fields this version does not know, kept

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML and JSON friendly; empty fields left out), without the name."""
        out: dict[str, Any] = {**self.extra, "row_type": self.row_type, "view": self.view}
        for key in ("filter", "search", "group", "density"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.group:
            out["group_sort"] = self.group_sort
        if self.sort:
            out["sort"] = [[k, "desc" if d else "asc"] for k, d in self.sort]
        if self.columns is not None and not self.columns.is_empty():
            out["columns"] = self.columns.to_dict()
        if self.layout:
            out["layout"] = dict(self.layout)
        if self.comparisons:
            out["comparisons"] = list(self.comparisons)
        return out

    @classmethod
    def from_dict(cls, name: str, data: Any) -> SavedView | None:
        """A view from stored data; None when it is not a table. Bad fields fall back."""
        if not isinstance(data, dict):
            return None

        def text(key: str) -> str | None:
            v = data.get(key)
            return v if isinstance(v, str) and v else None

        sort: list[tuple[str, bool]] = []
        raw_sort = data.get("sort")
        if isinstance(raw_sort, list):
            for item in raw_sort:
                if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
                    sort.append((item[0], item[1] in ("desc", True)))
        columns = ColumnSettings.from_dict(data.get("columns")) if isinstance(data.get("columns"), dict) else None
        layout = data.get("layout")
        comparisons = data.get("comparisons")
        return cls(
            name=name,
            row_type=data.get("row_type") if data.get("row_type") in ROW_TYPES else "traces",
            view=text("view") or "Default",
            filter=text("filter"),
            search=text("search"),
            sort=sort,
            group=text("group"),
            group_sort=text("group_sort") or "size",
            columns=None if columns is None or columns.is_empty() else columns,
            density=data.get("density") if data.get("density") in DENSITIES else None,
            layout=dict(layout) if isinstance(layout, dict) else {},
            comparisons=[c for c in comparisons if isinstance(c, str)] if isinstance(comparisons, list) else [],
            extra={k: v for k, v in data.items() if k not in ARRANGEMENT_FIELDS and k != "group_sort"},
        )



@dataclass
class Config:
    """Everything evaltui remembers between runs. Unknown keys are kept and written back."""

    density: str = "compact"
    clipboard: str = "auto"
    theme: str | None = None
    user: str | None = None
    last_experiment: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    # project -> row type ("traces" | "spans") -> column settings
    columns: dict[str, dict[str, ColumnSettings]] = field(default_factory=dict)
    # the filter bar's history, oldest first
    filter_history: list[str] = field(default_factory=list)
    # project -> view name -> personal saved view; project -> name of my default view
    views: dict[str, dict[str, SavedView]] = field(default_factory=dict)
    default_views: dict[str, str] = field(default_factory=dict)
    # entries under [views] that are not views (kept as written, never lost)
    views_raw: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def remember_filter(self, text: str) -> None:
        """Put ``text`` last in the filter history (once; the oldest entries drop off)."""
        text = text.strip()
        if not text:
            return
        if text in self.filter_history:
            self.filter_history.remove(text)
        self.filter_history.append(text)
        del self.filter_history[:-HISTORY_SIZE]

    def project_views(self, project: str) -> dict[str, SavedView]:
        return dict(self.views.get(project, {}))

    def save_view(self, project: str, view: SavedView) -> None:
        self.views.setdefault(project, {})[view.name] = view

    def delete_view(self, project: str, name: str) -> bool:
        per = self.views.get(project, {})
        found = per.pop(name, None) is not None
        if not per:
            self.views.pop(project, None)
        if self.default_views.get(project) == name:
            self.default_views.pop(project, None)
        return found

    def rename_view(self, project: str, old: str, new: str) -> bool:
        per = self.views.get(project, {})
        view = per.pop(old, None)
        if view is None:
            return False
        view.name = new
        per[new] = view
        if self.default_views.get(project) == old:
            self.default_views[project] = new
        return True

    def column_settings(self, project: str, row_type: str) -> ColumnSettings:
        return self.columns.get(project, {}).get(row_type, ColumnSettings())

    def set_column_settings(self, project: str, row_type: str, settings: ColumnSettings | None) -> None:
        per = self.columns.setdefault(project, {})
        if settings is None or settings.is_empty():
            per.pop(row_type, None)
            if not per:
                self.columns.pop(project, None)
        else:
            per[row_type] = settings

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out["density"] = self.density
        out["clipboard"] = self.clipboard
        for key in ("theme", "user", "last_experiment"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.keymap:
            out["keymap"] = dict(self.keymap)
        columns = {
            project: {rt: cs.to_dict() for rt, cs in per.items() if not cs.is_empty()}
            for project, per in self.columns.items()
        }
        columns = {p: v for p, v in columns.items() if v}
        if columns:
            out["columns"] = columns
        if self.filter_history:
            out["filter_history"] = list(self.filter_history)
        views: dict[str, Any] = {}
        for p, raw in self.views_raw.items():
            views[p] = dict(raw) if isinstance(raw, dict) else raw
        for p, per in self.views.items():
            if per:
                target = views.setdefault(p, {})
                if not isinstance(target, dict):
                    continue
                target.update({n: v.to_dict() for n, v in per.items()})
        if views:
            out["views"] = views
        if self.default_views:
            out["default_views"] = dict(self.default_views)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> tuple[Config, list[str]]:
        """A config from parsed TOML, and warnings for values that were ignored."""
        warnings: list[str] = []
        cfg = cls()
        known = {"density", "clipboard", "theme", "user", "last_experiment", "keymap", "columns", "filter_history",
                 "views", "default_views"}
        cfg.extra = {k: v for k, v in data.items() if k not in known}
        density = data.get("density", cfg.density)
        if density in DENSITIES:
            cfg.density = density
        else:
            warnings.append(f"density {density!r} is not one of {', '.join(DENSITIES)}; using compact")
        clip = data.get("clipboard", cfg.clipboard)
        if clip in CLIPBOARD_MODES:
            cfg.clipboard = clip
        else:
            warnings.append(f"clipboard {clip!r} is not one of {', '.join(CLIPBOARD_MODES)}; using auto")
        for key in ("theme", "user", "last_experiment"):
            value = data.get(key)
            if value is None or isinstance(value, str):
                setattr(cfg, key, value)
            else:
                warnings.append(f"{key} must be a string; ignored")
        keymap = data.get("keymap", {})
        if isinstance(keymap, dict):
            for binding_id, keys in keymap.items():
                if isinstance(keys, str) and keys.strip():
                    cfg.keymap[binding_id] = keys
                else:
                    warnings.append(f"keymap.{binding_id} must be a key string such as 'ctrl+o'; ignored")
        else:
            warnings.append("keymap must be a table of binding id = 'keys'; ignored")
        columns = data.get("columns", {})
        if isinstance(columns, dict):
            for project, per in columns.items():
                if not isinstance(per, dict):
                    continue
                for row_type, settings in per.items():
                    if row_type in ROW_TYPES:
                        cs = ColumnSettings.from_dict(settings)
                        if not cs.is_empty():
                            cfg.columns.setdefault(project, {})[row_type] = cs
        history = data.get("filter_history", [])
        if isinstance(history, list):
            cfg.filter_history = [h for h in history if isinstance(h, str) and h.strip()][-HISTORY_SIZE:]
        views = data.get("views", {})
        if isinstance(views, dict):
            for project, per in views.items():
                if not isinstance(per, dict):
                    cfg.views_raw[project] = per
                    warnings.append(f"views.{project} is not a table of views; kept as it is")
                    continue
                for name, raw in per.items():
                    view = SavedView.from_dict(name, raw)
                    if view is None:
                        cfg.views_raw.setdefault(project, {})[name] = raw
                        warnings.append(f"views.{project}.{name} is not a table; kept as it is, not used")
                    else:
                        cfg.views.setdefault(project, {})[name] = view
        defaults = data.get("default_views", {})
        if isinstance(defaults, dict):
            cfg.default_views = {p: n for p, n in defaults.items() if isinstance(n, str) and n}
        return cfg, warnings


@dataclass
class LoadedConfig:
    config: Config
    path: Path
    warnings: list[str]


def load_config(path: Path | None = None) -> LoadedConfig:
    """Read the config file; defaults when it is missing.

    A file that does not parse is renamed to ``<name>.broken-<timestamp>`` and a warning
    says where it went, so the user's text is never lost nor silently overwritten.
    """
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return LoadedConfig(Config(), path, [])
    except OSError as e:
        return LoadedConfig(Config(), path, [f"could not read {path}: {e}; using defaults"])
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = path.with_name(f"{path.name}.broken-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = path.with_name(f"{path.name}.broken-{stamp}-{n}")
        try:
            path.rename(aside)
            where = f"moved to {aside}"
        except OSError as move_error:
            where = f"could not move it aside ({move_error})"
        return LoadedConfig(Config(), path, [f"{path} does not parse ({e}); {where}; using defaults"])
    cfg, warnings = Config.from_dict(data)
    return LoadedConfig(cfg, path, [f"{path}: {w}" for w in warnings])


def save_config(config: Config, path: Path | None = None) -> Path:
    """Write the config atomically: a temp file in the same directory, then rename."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# evaltui settings; written by evaltui (comments are not kept)\n" + dumps_toml(config.to_dict())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# -- a small TOML writer ------------------------------------------------------------------
# Enough TOML for this file (strings, numbers, booleans, arrays of those, inline tables and
# nested tables), so no writer dependency is needed. The round trip is tested against tomllib.

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(data: dict[str, Any]) -> str:
    """TOML text for a dict: scalars first, then one [table] per nested dict (None skipped)."""
    lines: list[str] = []
    _table(data, [], lines)
    return "\n".join(lines).strip() + "\n"


def _table(data: dict[str, Any], prefix: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if v is not None and not isinstance(v, dict)}
    # small leaf tables (e.g. widths) read better inline; any other dict becomes a [section]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    inline = {k: v for k, v in tables.items() if k == "widths"}
    tables = {k: v for k, v in tables.items() if k not in inline}
    if prefix and (scalars or inline or not tables):
        lines.append("")
        lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in inline.items():
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in tables.items():
        _table(v, [*prefix, k], lines)
