"""A page of trace rows as plain Python values: what the TUI paints before polars is imported.

At start-up the experiment table's first page (200 rows) is read in a thread while Textual
starts; holding it as Python lists lets the first frame be painted without importing polars
(about 150 ms of CPU on the machine the targets are measured on). ``to_polars`` gives the
frame every other reader returns, with the same dtypes, once polars is wanted.

Only the few frame methods the table's first paint uses are here, with polars' names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NUMERIC = frozenset({"int", "float"})


class Kind(str):
    """A column's kind ("str", "int", "float", "bool") answering ``is_numeric`` as a dtype does."""

    def is_numeric(self) -> bool:
        return self in NUMERIC


class Page:
    """Columns of plain values: ``names[i]`` holds ``values[i]`` (one list per column)."""

    def __init__(self, names: Sequence[str], kinds: Sequence[str], values: Sequence[Sequence[Any]]) -> None:
        if not (len(names) == len(kinds) == len(values)):
            raise ValueError("a page needs a kind and a value list for each column")
        self.columns = list(names)
        self.schema = {n: Kind(k) for n, k in zip(names, kinds, strict=True)}
        # values as the frame would hold them (SQLite gives 1 for a score of 1.0, 0/1 for a flag)
        self._values = {n: _coerce(k, v) for n, k, v in zip(names, kinds, values, strict=True)}
        self.height = len(values[0]) if values else 0

    def get_column(self, name: str) -> list[Any]:
        return self._values[name]

    def row(self, index: int, *, named: bool = False) -> Any:
        values = [self._values[n][index] for n in self.columns]
        return dict(zip(self.columns, values, strict=True)) if named else tuple(values)

    def to_polars(self) -> Any:
        """The same rows as a polars frame (dtypes as the store's readers give them)."""
        from evaltui.lazy_polars import pl

        return pl.DataFrame([
            pl.Series(n, self._values[n], dtype=polars_dtype(self.schema[n]), strict=False) for n in self.columns
        ])


def polars_dtype(kind: str) -> Any:
    """The polars dtype of a column kind (imports polars)."""
    from evaltui.lazy_polars import pl

    return {"str": pl.Utf8, "float": pl.Float64, "int": pl.Int64, "bool": pl.Boolean}[kind]


def _cast(kind: str, value: Any) -> Any:
    if value is None or kind == "str":
        return value
    try:
        if kind == "float":
            return float(value)
        if kind == "int":
            return value if type(value) is int else int(value)
        return bool(value)
    except (TypeError, ValueError):  # what polars' non-strict cast gives: null
        return None


def _coerce(kind: str, values: Sequence[Any]) -> list[Any]:
    if kind == "str":
        return [None if v is None else v if type(v) is str else str(v) for v in values]
    return [_cast(kind, v) for v in values]
