"""The core runs without the TUI: data packages never import textual (DESIGN.md "Layout")."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

CORE_MODULES = ["evaltui", "evaltui.store", "evaltui.ingest", "evaltui.sdk", "evaltui.query", "evaltui.config"]
# the SDK's public modules too, once they exist
OPTIONAL_CORE = ["evaltui.sdk.logger", "evaltui.sdk.eval", "evaltui.demo"]


def _exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _loaded_after_import(module: str, watch: list[str]) -> list[str]:
    """Import ``module`` in a fresh interpreter; return which of ``watch`` got imported."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([m for m in {watch!r} if m in sys.modules]))\n"
    )
    p = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", CORE_MODULES + OPTIONAL_CORE)
def test_core_module_does_not_import_textual(module):
    if module not in ("evaltui", "evaltui.store", "evaltui.sdk") and not _exists(module):
        pytest.skip(f"{module} does not exist yet")
    assert _loaded_after_import(module, ["textual"]) == []


def test_import_evaltui_is_light():
    """`import evaltui` (the SDK's entry point) pulls in neither textual nor polars."""
    assert _loaded_after_import("evaltui", ["textual", "polars", "evaltui.store", "evaltui.tui"]) == []


def test_sdk_names_resolve_lazily():
    code = (
        "import sys, evaltui\n"
        "assert 'evaltui.sdk.logger' not in sys.modules\n"
        "print(sorted(evaltui.__all__))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for name in ("Eval", "init", "traced", "Score"):
        assert name in p.stdout


def test_styles_ship_with_the_package():
    spec = importlib.util.find_spec("evaltui.styles")
    assert spec is not None and spec.submodule_search_locations
    from pathlib import Path

    assert any(Path(d, "app.tcss").is_file() for d in spec.submodule_search_locations)


def test_tui_start_up_leaves_the_trace_views_and_filter_language_for_later():
    """Opening the app imports what the first screen needs; the rest loads when first used."""
    later = ["evaltui.query.filter", "evaltui.tui.widgets.trace_tree", "evaltui.tui.widgets.timeline",
             "evaltui.tui.widgets.thread_view", "evaltui.tui.widgets.span_detail", "evaltui.tui.screens.columns"]
    assert _loaded_after_import("evaltui.tui.app", later) == []
