"""Local config: TOML round trip, EVALTUI_CONFIG, atomic writes, a broken file moved aside."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from evaltui.config import ColumnSettings, Config, config_path, dumps_toml, load_config, save_config


@pytest.fixture(autouse=True)
def _config_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("EVALTUI_CONFIG", str(path))
    return path


def test_evaltui_config_overrides_the_path(tmp_path: Path) -> None:
    assert config_path() == tmp_path / "cfg" / "config.toml"


def test_default_path_is_in_the_user_config_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("EVALTUI_CONFIG")
    assert config_path() == platformdirs.user_config_path("evaltui") / "config.toml"


def test_missing_file_gives_defaults() -> None:
    loaded = load_config()
    assert loaded.config == Config()
    assert loaded.warnings == []
    assert not loaded.path.exists()  # reading never creates the file


def test_round_trip_keeps_every_setting() -> None:
    cfg = Config(density="tall", clipboard="osc52", theme="nord", user="alice",
                 last_experiment="support-bot/new prompt", keymap={"experiment.toggle-rows": "T"})
    cfg.set_column_settings("support bot/ü \"quoted\"", "traces", ColumnSettings(
        order=["input", "scores.Fact uality", "metadata.a.b"], hidden=["tags"], pinned=["input"],
        widths={"scores.Fact uality": 12, "input": 40},
    ))
    cfg.set_column_settings("p2", "spans", ColumnSettings(hidden=["type"]))
    path = save_config(cfg)
    assert path == config_path()
    again = load_config()
    assert again.warnings == []
    assert again.config == cfg
    # the file is plain TOML any tool can read
    data = tomllib.loads(path.read_text())
    assert data["keymap"] == {"experiment.toggle-rows": "T"}
    assert data["columns"]["support bot/ü \"quoted\""]["traces"]["widths"]["input"] == 40


def test_unknown_keys_survive_a_write(_config_env: Path) -> None:
    _config_env.parent.mkdir(parents=True)
    _config_env.write_text('density = "tall"\n[views.default]\nfilter = "scores.x < 0.5"\nlimit = 3\n')
    loaded = load_config()
    assert loaded.config.density == "tall"
    save_config(loaded.config)
    data = tomllib.loads(_config_env.read_text())
    assert data["views"] == {"default": {"filter": "scores.x < 0.5", "limit": 3}}


def test_write_is_atomic_and_leaves_no_temp_files(_config_env: Path) -> None:
    save_config(Config(density="tall"))
    save_config(Config(density="compact"))
    assert sorted(p.name for p in _config_env.parent.iterdir()) == ["config.toml"]
    assert load_config().config.density == "compact"


def test_failed_write_keeps_the_old_file(_config_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_config(Config(density="tall"))

    def boom(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_config(Config(density="compact"))
    assert load_config().config.density == "tall"
    assert sorted(p.name for p in _config_env.parent.iterdir()) == ["config.toml"]


def test_broken_file_is_moved_aside_and_reported(_config_env: Path) -> None:
    _config_env.parent.mkdir(parents=True)
    _config_env.write_text("density = \n[[[ not toml")
    loaded = load_config()
    assert loaded.config == Config()
    assert len(loaded.warnings) == 1
    assert "does not parse" in loaded.warnings[0]
    aside = [p for p in _config_env.parent.iterdir() if p.name.startswith("config.toml.broken-")]
    assert len(aside) == 1
    assert aside[0].read_text() == "density = \n[[[ not toml"  # the user's text is kept
    assert str(aside[0]) in loaded.warnings[0]
    assert not _config_env.exists()
    # a second broken file on the same second gets its own name
    _config_env.write_text("also [ broken")
    load_config()
    assert len([p for p in _config_env.parent.iterdir() if ".broken-" in p.name]) == 2


def test_non_utf8_file_is_moved_aside(_config_env: Path) -> None:
    _config_env.parent.mkdir(parents=True)
    _config_env.write_bytes(b"density = \"\xff\xfe\"\n")
    loaded = load_config()
    assert loaded.warnings and loaded.config == Config()


def test_bad_values_are_ignored_with_warnings(_config_env: Path) -> None:
    _config_env.parent.mkdir(parents=True)
    _config_env.write_text(
        'density = "huge"\nclipboard = "carrier-pigeon"\ntheme = 3\n'
        '[keymap]\n"app.help" = ""\n"experiment.density" = "z"\n'
        '[columns.p.traces]\norder = ["a", 1]\nwidths = {a = -3, b = 7, c = true}\n'
        '[columns.p.bogus]\nhidden = ["x"]\n'
    )
    loaded = load_config()
    cfg = loaded.config
    assert cfg.density == "compact" and cfg.clipboard == "auto" and cfg.theme is None
    assert cfg.keymap == {"experiment.density": "z"}
    assert cfg.column_settings("p", "traces") == ColumnSettings(order=["a"], widths={"b": 7})
    assert "bogus" not in cfg.columns["p"]
    assert len(loaded.warnings) == 4
    assert all(str(_config_env) in w for w in loaded.warnings)


def test_empty_column_settings_are_dropped() -> None:
    cfg = Config()
    cfg.set_column_settings("p", "traces", ColumnSettings(hidden=["x"]))
    cfg.set_column_settings("p", "traces", None)
    assert cfg.columns == {}
    assert "columns" not in cfg.to_dict()


@pytest.mark.parametrize("value", [
    "plain", "", "quote \" and backslash \\", "tab\tnewline\nbell\x07 del\x7f", "unicode ✓ 日本",
    1, -7, 0.5, 1e100, True, False, [1, "a", [2.5]], {"nested": {"deep": ["x"]}},
])
def test_toml_writer_round_trips_values(value: object) -> None:
    text = dumps_toml({"k": value, "tbl": {"x y": value}})
    assert tomllib.loads(text) == {"k": value, "tbl": {"x y": value}}


def test_config_module_does_not_import_textual() -> None:
    code = "import evaltui.config, sys; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- saved views and filter history (issue 4) ------------------------------------------------


def test_saved_views_defaults_and_history_round_trip() -> None:
    from evaltui.config import SavedView

    cfg = Config()
    for text in ("a = 1", "b = 2", "a = 1"):
        cfg.remember_filter(text)
    assert cfg.filter_history == ["b = 2", "a = 1"]  # once, the latest last
    view = SavedView("late & \"broken\"", row_type="spans", view="Errors", filter="metadata.x = 'y\\n'",
                     search="sorry", sort=[("scores.acc", True), ("duration", False)], group="metadata.category",
                     group_sort="score:scores.acc", columns=ColumnSettings(order=["input", "scores.acc"],
                                                                           hidden=["input"], widths={"input": 40}),
                     density="tall", layout={"split": "vertical"}, comparisons=["exp-1"])
    cfg.save_view("my project", view)
    cfg.default_views["my project"] = view.name
    save_config(cfg)
    loaded = load_config()
    assert loaded.warnings == []
    back = loaded.config
    assert back.filter_history == ["b = 2", "a = 1"]
    assert back.views["my project"][view.name] == view
    assert back.default_views == {"my project": view.name}
    # rename carries the default; delete clears it
    assert back.rename_view("my project", view.name, "new")
    assert back.default_views["my project"] == "new"
    assert back.delete_view("my project", "new")
    assert back.views == {} and back.default_views == {}


def test_bad_saved_view_is_reported_and_bad_fields_fall_back(_config_env: Path) -> None:
    _config_env.parent.mkdir(parents=True, exist_ok=True)
    _config_env.write_text('views.p.bad = 3\n[views.p.ok]\nrow_type = "rows"\ndensity = "huge"\n'
                           'sort = [["a", "desc"], "junk"]\nfilter_history = 1\n')
    loaded = load_config()
    assert any("views.p.bad is not a table" in w for w in loaded.warnings)
    save_config(loaded.config)
    assert tomllib.loads(_config_env.read_text())["views"]["p"]["bad"] == 3  # kept, never lost
    ok = loaded.config.views["p"]["ok"]
    assert (ok.row_type, ok.density, ok.sort, ok.view) == ("traces", None, [("a", True)], "Default")


def test_filter_history_keeps_the_last_hundred() -> None:
    cfg = Config()
    for i in range(150):
        cfg.remember_filter(f"x = {i}")
    assert len(cfg.filter_history) == 100 and cfg.filter_history[-1] == "x = 149"
