"""polars, imported on first use.

``from evaltui.lazy_polars import pl`` gives a module object that imports polars the first
time one of its names is looked up, then holds all of polars' names itself (later look-ups
cost what ``import polars as pl`` would). The modules the TUI needs for its first frame use
it, so the first page of a table paints before polars' ~150 ms import (see
``evaltui.store.page``); the import then runs in a worker thread.
"""

from __future__ import annotations

import gc
import sys
import threading
import types
from typing import Any

_lock = threading.Lock()


class _LazyModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:  # only names not set yet reach here
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # (copy, pickle and inspect probe these)
        return getattr(load(), name)


pl: Any = _LazyModule("polars", "polars, imported on first use (evaltui.lazy_polars)")


def load() -> types.ModuleType:
    """Import polars (once) and give the lazy module its names.

    The import makes ~18,000 objects that live as long as the process and no garbage: the
    garbage collector is paused while it runs (its passes over them cost 10-40 ms more) and
    they are then frozen (left out of later passes), as the app does with its own start-up."""
    with _lock:
        if "DataFrame" in pl.__dict__:
            return sys.modules["polars"]
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            import polars
        finally:
            if was_enabled:
                gc.freeze()
                gc.enable()
        pl.__dict__.update({k: v for k, v in vars(polars).items() if not k.startswith("__")})
        return polars
