"""The evaltui application: the experiment list, experiments, traces; config and clipboard."""

from __future__ import annotations

import gc
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Start-up makes a few hundred thousand objects that live as long as the app (modules, classes,
# styles, the screen) and almost no garbage (about 3,000 objects): the garbage collector's passes
# over them cost about 50 ms before the first frame. It is paused while these imports run and
# from the app's start to its first frame; what exists then is frozen (not scanned again).
_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

# polars is imported here, in this thread, with the rest (by evaltui.store): imported in a thread
# of its own beside Textual's import it overlapped nothing (both hold the GIL) and the switching
# between the two cost about 40 ms more CPU before the first frame
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message

from evaltui.config import CLIPBOARD_MODES, Config, load_config, save_config
from evaltui.store import NotFound, Store, find_experiment
from evaltui.tui.commands import AppCommands, binding_entries
from evaltui.tui.live import LiveWatcher
from evaltui.tui.screens.experiment import ExperimentScreen, FirstPage
from evaltui.tui.screens.experiment_list import ExperimentListScreen
from evaltui.tui.widgets.text_safety import safe_text

if TYPE_CHECKING:
    from evaltui.tui.live import LiveChanged

gc.freeze()
if _GC_WAS_ENABLED:
    gc.enable()


def _stylesheet() -> str:
    return str(files("evaltui.styles").joinpath("app.tcss"))


class EvalTUI(App[None]):
    """evaltui's terminal UI over one database."""

    TITLE = "evaltui"
    CSS_PATH = _stylesheet()
    COMMANDS = App.COMMANDS | {AppCommands}
    HELP_GROUP = "Global"
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit"),
    ]

    class ExperimentFound(Message):
        def __init__(self, experiment: dict[str, Any] | None, error: str | None = None) -> None:
            self.experiment = experiment
            self.error = error
            super().__init__()

    def __init__(self, store: Store | str | os.PathLike[str], experiment: str | None = None,
                 *, config_path: Path | None = None) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        loaded = load_config(config_path)
        self.config: Config = loaded.config
        self.config_path: Path = loaded.path
        self._config_warnings = loaded.warnings
        self._initial_experiment = experiment
        self.opening_experiment = False
        # read while Textual starts: the experiment and its first rows are there when its screen mounts
        self.first_page: FirstPage | None = FirstPage(self.store, experiment) if experiment else None
        super().__init__()
        if self.config.theme and self.config.theme in self.available_themes:
            self.theme = self.config.theme
        if self.config.keymap:
            self.set_keymap(self.config.keymap)

    @property
    def user(self) -> str:
        """Who is using evaltui (for reviews): the config's user, else the login name."""
        if self.config.user:
            return self.config.user
        import getpass

        try:
            return getpass.getuser()
        except Exception:
            return "unknown"

    def on_load(self) -> None:
        if gc.isenabled():  # paused until the first frame (see the imports)
            gc.disable()
            self._gc_paused = True

    def _resume_gc(self) -> None:
        if getattr(self, "_gc_paused", False):
            self._gc_paused = False
            self.freeze_heap()
            gc.enable()

    def on_mount(self) -> None:
        # opened on an experiment: the list below it is built when the user goes back to it
        self.opening_experiment = bool(self._initial_experiment)
        self.push_screen(ExperimentListScreen(deferred=self.opening_experiment))
        if not self.opening_experiment:
            # once the list's first frame is written. (An after-refresh callback waits for a
            # repaint of the screen on top when it is handled: asked for here while opening an
            # experiment, it could wait on the list, covered, until the user went back to it.)
            self.call_after_refresh(self._resume_gc)
        for warning in self._config_warnings:
            self.notify(safe_text(warning, 400), title="config", severity="warning", timeout=15, markup=False)
        if self._initial_experiment:
            preload = self.first_page
            found = preload.found(timeout=0) if preload is not None and preload.ref == self._initial_experiment else None
            if found is not None:  # read while Textual started (usually): open it without a worker's round trip
                self.on_eval_tui_experiment_found(self.ExperimentFound(found))
            else:
                self.open_experiment(self._initial_experiment)
        self.live = LiveWatcher(self)  # other processes' changes show without a restart
        self.live.start()

    def on_live_changed(self, message: LiveChanged) -> None:
        self.live.dispatch(message.change)

    def freeze_heap(self) -> None:
        """Objects made so far (the DOM, caches) live as long as the app: keep the garbage
        collector from rescanning them (a full collection over them was a 40 ms pause in the
        middle of opening a trace). Undone when the app ends."""
        gc.freeze()
        self._heap_frozen = True

    def on_unmount(self) -> None:
        if getattr(self, "_config_unsaved", False):  # quit before the deferred write ran
            self._config_unsaved = False
            try:
                save_config(self.config, self.config_path)
            except OSError:
                pass  # the app is closing: nowhere left to say so
        if getattr(self, "_gc_paused", False):  # ended before its first frame
            self._gc_paused = False
            gc.enable()
        if hasattr(self, "live"):
            self.live.stop()
        if getattr(self, "_heap_frozen", False):
            gc.unfreeze()
            self._heap_frozen = False

    def watch_theme(self, theme: str) -> None:
        # remember the theme chosen in the palette (the constructor's own choice is not a change)
        if self.is_mounted and theme != self.config.theme:
            self.config.theme = theme
            self.save_config()

    # -- opening experiments ---------------------------------------------------------------

    def open_experiment(self, ref: str) -> None:
        """Open an experiment by ``project/name`` or id (resolved in a worker)."""
        self._find_experiment(ref)

    @work(thread=True, exclusive=True, exit_on_error=False, group="find-experiment")
    def _find_experiment(self, ref: str) -> None:
        try:
            preload = self.first_page
            exp = preload.found() if preload is not None and preload.ref == ref else None
            if exp is None:
                exp = find_experiment(self.store, ref)
        except NotFound as e:
            self.post_message(self.ExperimentFound(None, str(e)))
            return
        except Exception as e:
            self.post_message(self.ExperimentFound(None, f"could not open {ref!r}: {e}"))
            return
        self.post_message(self.ExperimentFound(exp))

    def on_eval_tui_experiment_found(self, message: ExperimentFound) -> None:
        self.opening_experiment = False
        self.call_after_refresh(self._resume_gc)  # (at start-up) once the screen shown now is painted
        if message.experiment is None:
            self.notify(safe_text(message.error or "not found", 400), severity="error", markup=False)
            if isinstance(self.screen, ExperimentListScreen):
                self.call_later(self.screen.ensure_built)
            return
        exp = message.experiment
        ref = f"{exp['project']}/{exp['name']}"
        if self.config.last_experiment != ref:
            self.config.last_experiment = ref
            self._config_unsaved = True  # (written at exit if the app ends before that)
            self.call_after_refresh(self.save_config)  # written (and synced) once the screen shows
        for screen in self.screen_stack:
            if isinstance(screen, ExperimentListScreen):
                screen.select_experiment(exp["id"])
        self.push_screen(ExperimentScreen(exp))

    # -- help ------------------------------------------------------------------------------

    def action_help(self) -> None:
        from evaltui.tui.screens.help import HelpScreen  # imported when first asked for

        screen = self.screen
        if isinstance(screen, HelpScreen):
            screen.dismiss(None)
            return
        entries = binding_entries(screen)  # what the keys do now, from the focused widget up
        title = getattr(screen, "HELP_GROUP", type(screen).__name__)
        if isinstance(screen, ExperimentScreen):
            title = f"{title} · {screen.ref}"
        self.push_screen(HelpScreen(title, entries, self.get_key_display(Binding(self.COMMAND_PALETTE_BINDING, "")),
                                    str(self.config_path)))

    # -- config ----------------------------------------------------------------------------

    def save_config(self) -> None:
        """Write the config now (changes persist at once); a failure is shown, not raised."""
        self._config_unsaved = False
        try:
            save_config(self.config, self.config_path)
        except OSError as e:
            self.notify(safe_text(f"could not save settings to {self.config_path}: {e}", 400),
                        severity="error", markup=False)

    def set_clipboard_mode(self, mode: str) -> None:
        if mode not in CLIPBOARD_MODES:
            return
        self.config.clipboard = mode
        self.save_config()
        self.notify(f"Clipboard: {mode}", timeout=3)

    # -- clipboard and editor --------------------------------------------------------------

    def copy_text(self, text: str, what: str) -> bool:
        """Copy ``text`` (mode from config) and say what was copied and how."""
        from evaltui.tui.clipboard import copy_text  # imported on the first copy

        result = copy_text(self, text, what, self.config.clipboard)
        self.notify(safe_text(result.message, 300), severity="information" if result.ok else "error",
                    timeout=4 if result.ok else 8, markup=False)
        return result.ok

    def open_in_editor(self, text: str, name: str, suffix: str = ".txt") -> None:
        """Show ``text`` in ``$EDITOR`` (``$VISUAL``, else vi) as a read-only temporary copy."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        try:
            command = shlex.split(editor)
        except ValueError:
            command = [editor]
        if not command or shutil.which(command[0]) is None:
            self.notify(safe_text(f"Editor {editor!r} not found: set $EDITOR", 200), severity="error", markup=False)
            return
        folder = tempfile.mkdtemp(prefix="evaltui-")
        safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "field"
        path = Path(folder) / f"{safe_name}{suffix}"
        try:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
            path.chmod(0o444)  # a copy to read, not to edit back
            try:
                with self.suspend():
                    subprocess.run([*command, str(path)], check=False)
            except Exception as e:  # SuspendNotSupported (e.g. textual-web) and editor failures
                self.notify(safe_text(f"Could not open the editor: {e}", 300), severity="error", markup=False)
            self.refresh()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def run_app(db_path: str | os.PathLike[str], experiment: str | None = None) -> None:
    """Open the TUI on ``db_path``; with ``experiment`` (``project/name`` or id) open it at once."""
    app = EvalTUI(Store(db_path), experiment)
    app.run()
