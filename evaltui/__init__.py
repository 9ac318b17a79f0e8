"""evaltui: a keyboard-driven terminal workbench for LLM evaluation experiments.

The logging SDK's names are imported lazily, so ``import evaltui`` stays light and never
imports the TUI.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_SDK_NAMES = {
    "init": "evaltui.sdk.logger",
    "traced": "evaltui.sdk.logger",
    "current_span": "evaltui.sdk.logger",
    "flush": "evaltui.sdk.logger",
    "Experiment": "evaltui.sdk.logger",
    "Span": "evaltui.sdk.logger",
    "Eval": "evaltui.sdk.eval",
    "EvalResult": "evaltui.sdk.eval",
    "Score": "evaltui.sdk.eval",
}

__all__ = ["__version__", *_SDK_NAMES]


def __getattr__(name: str) -> Any:
    module = _SDK_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'evaltui' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
