"""Small terminal charts drawn with block characters: column charts for trends and histograms.

Pure functions returning ``rich.text.Text`` (no widget state), so a chart can sit inside an
OptionList option, a Static or a test's assertion. Heights are in lines; each line holds
eight levels (``▁`` … ``█``), so a four-line chart resolves 32 steps.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

__all__ = ["BLOCKS", "column_chart", "sparkline"]

BLOCKS = " ▁▂▃▄▅▆▇█"


def _level(value: float, lo: float, hi: float, steps: int) -> int:
    if hi <= lo:
        return steps if value > lo else 0
    frac = (value - lo) / (hi - lo)
    return max(0, min(steps, round(frac * steps)))


def sparkline(values: Sequence[float | None], lo: float = 0.0, hi: float = 1.0) -> str:
    """One character per value on a ``lo``..``hi`` scale; a missing value is ``·``."""
    out = []
    for v in values:
        if v is None:
            out.append("·")
        else:
            level = _level(v, lo, hi, 8)
            out.append(BLOCKS[level] if level else "▁" if v > lo else " ")
    return "".join(out)


def column_chart(
    values: Sequence[float | None],
    *,
    height: int = 4,
    lo: float = 0.0,
    hi: float = 1.0,
    bar_width: int = 2,
    gap: int = 1,
    style: str = "",
    highlight: int | None = None,
    highlight_style: str = "bold",
    axis: tuple[str, str] | None = None,
) -> Text:
    """Vertical bars, one per value, ``height`` lines tall, scaled ``lo``..``hi``.

    A value above ``lo`` always shows at least a sliver, so "small" and "none" differ; a
    missing value is a ``·`` on the bottom line. ``highlight`` draws one bar in
    ``highlight_style`` (the current experiment). ``axis`` = (top label, bottom label) is
    written left of the first and last line, padded to one width.
    """
    steps = height * 8
    levels = []
    for v in values:
        if v is None:
            levels.append(None)
        else:
            level = _level(v, lo, hi, steps)
            levels.append(max(level, 1) if v > lo else level)
    pad = max((len(a) for a in axis), default=0) if axis else 0
    text = Text(no_wrap=True, overflow="crop", end="")
    for row in range(height):
        if row:
            text.append("\n")
        if axis:
            label = axis[0] if row == 0 else axis[1] if row == height - 1 else ""
            text.append(f"{label:>{pad}} ", "dim")
        floor = (height - 1 - row) * 8  # levels below this line
        for i, level in enumerate(levels):
            if i:
                text.append(" " * gap)
            if level is None:
                cell = "·" if row == height - 1 else " "
            else:
                cell = BLOCKS[max(0, min(8, level - floor))]
            text.append(cell * bar_width, highlight_style if i == highlight else style)
    return text
