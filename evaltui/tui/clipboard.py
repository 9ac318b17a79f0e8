"""Copying text to the clipboard, locally or over SSH.

Over SSH the machine's own clipboard is the wrong one, so the terminal is asked to copy
with OSC 52 (``App.copy_to_clipboard``). Locally pyperclip talks to the system clipboard,
and OSC 52 is the fallback when no clipboard tool is installed. ``clipboard`` in the config
forces either (``osc52`` or ``system``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

# Many terminals drop OSC 52 payloads over about 1 MB (tmux, xterm); refuse rather than
# fail silently. The system clipboard takes more, but a 50 MB paste helps no one.
OSC52_LIMIT = 1_000_000
SYSTEM_LIMIT = 50_000_000
MODES = ("auto", "osc52", "system")


class _CanCopy(Protocol):
    def copy_to_clipboard(self, text: str) -> None: ...


@dataclass(frozen=True)
class CopyResult:
    ok: bool
    method: str  # "OSC 52" | "system clipboard" | "" when nothing was copied
    message: str


def over_ssh(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("SSH_TTY") or env.get("SSH_CONNECTION") or env.get("SSH_CLIENT"))


def human_size(n: int) -> str:
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n} B"


def _describe(what: str, text: str) -> str:
    n = len(text)
    return f"{what} ({n:,} char{'s' if n != 1 else ''})"


def copy_text(app: _CanCopy, text: str, what: str, mode: str = "auto",
              environ: Mapping[str, str] | None = None) -> CopyResult:
    """Copy ``text`` and say how; ``what`` names it for the notification ("output of row 3")."""
    if mode not in MODES:
        mode = "auto"
    size = len(text.encode("utf-8", "surrogatepass"))
    use_osc52 = mode == "osc52" or (mode == "auto" and over_ssh(environ))
    if not use_osc52:
        if size > SYSTEM_LIMIT:
            return CopyResult(False, "", f"Not copied: {what} is {human_size(size)}, over the "
                                         f"{human_size(SYSTEM_LIMIT)} clipboard limit (e opens it in $EDITOR)")
        error = _system_copy(text)
        if error is None:
            return CopyResult(True, "system clipboard", f"Copied {_describe(what, text)} to the system clipboard")
        if mode == "system":
            return CopyResult(False, "", f"Not copied: the system clipboard failed ({error})")
        # auto: no clipboard tool (a bare Linux box); the terminal may still take OSC 52
    if size > OSC52_LIMIT:
        return CopyResult(False, "", f"Not copied: {what} is {human_size(size)}, over the "
                                     f"{human_size(OSC52_LIMIT)} limit of OSC 52 (e opens it in $EDITOR)")
    app.copy_to_clipboard(text)
    return CopyResult(True, "OSC 52", f"Copied {_describe(what, text)} via OSC 52 (terminal clipboard)")


def _system_copy(text: str) -> str | None:
    """Copy with pyperclip; the error text when it cannot."""
    try:
        import pyperclip

        pyperclip.copy(text)
    except Exception as e:  # pyperclip raises its own exception types, and OSError from tools
        return str(e).splitlines()[0][:120] if str(e) else type(e).__name__
    return None
