"""The ``evaltui`` command line (DESIGN.md "Command line").

Importing this module stays cheap (click only): the store, polars and the TUI are imported
inside the commands that need them, so ``evaltui --help`` and ``--version`` answer at once.

Errors a user can act on (bad flags, missing files, an unknown experiment, any
``StoreError``) are printed as one line ``evaltui: error: ...`` on stderr with exit status 2,
never as a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from evaltui import __version__

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# OSErrors that mean "the path you gave is wrong", not "evaltui has a bug"
_USER_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class UserError(click.ClickException):
    """A mistake the user can fix; shown as one line, exit status 2.

    ``detail`` lines follow the error line as they are (a bad filter and its caret line).
    """

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str, detail: Sequence[str] = ()):
        super().__init__(message)
        self.detail = list(detail)


def _printable(text: Any) -> str:
    """Text from the database made safe for a terminal: control characters shown escaped."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def _is_store_error(exc: BaseException) -> bool:
    # the store is imported lazily; if it was never imported, no StoreError can exist
    errors = sys.modules.get("evaltui.store.errors")
    return errors is not None and isinstance(exc, errors.StoreError)


def _fail(message: str) -> int:
    click.echo(f"evaltui: error: {message}", err=True)
    return EXIT_USER_ERROR


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _filter_error(exc: Any, text: str, option: str = "--filter") -> UserError:
    """A bad filter as the TUI shows it: the message, then the filter with a caret under the
    column where it went wrong (control characters shown as one visible character each, so
    the caret stays in place)."""
    shown = "".join(c if c.isprintable() else (" " if c == "\t" else "\ufffd") for c in text)
    caret = exc.caret(shown) if hasattr(exc, "caret") else shown
    return UserError(f"{option}: {_printable(exc)}", ["  " + line for line in caret.split("\n")])


def _existing_db(db_path: Path, what: str) -> Path:
    """``db_path`` when it exists; else the error a missing ``what`` gets (nothing is created)."""
    if not db_path.exists():
        raise UserError(f"no experiment {what!r}: {db_path} does not exist yet; `evaltui ls` lists experiments")
    return db_path


class EvaltuiGroup(click.Group):
    """The ``evaltui`` group: one-line errors, and ``evaltui PATH`` as ``evaltui open PATH``."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if self.get_command(ctx, name) is None and name and not name.startswith("-"):
            # not a command: a database (or later, a file to import) to open
            return "open", self.get_command(ctx, "open"), args
        return super().resolve_command(ctx, args)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.UsageError as e:
            hint = ""
            if e.ctx is not None and not isinstance(e, click.BadParameter):
                hint = f" (see `{e.ctx.command_path} --help`)"
            message = _one_line(e.format_message())
            code = _fail((message.rstrip(".") if hint else message) + hint)
        except click.ClickException as e:
            code = _fail(_one_line(e.format_message()))
            for line in getattr(e, "detail", ()):
                click.echo(line, err=True)
        except (click.Abort, KeyboardInterrupt):
            click.echo("evaltui: interrupted", err=True)
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            # `evaltui ls | head`: the reader left; say nothing
            _silence_stdout()
            code = 0
        except _USER_OS_ERRORS as e:
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            code = _fail(f"{where}{e.strerror or e}")
        except Exception as e:
            if not _is_store_error(e):
                raise
            code = _fail(_one_line(str(e)))
        sys.exit(code)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# -- --db: accepted on the group and on every command ---------------------------------------

_DB_HELP = "SQLite database file (default: $EVALTUI_DB, else evaltui.db in the user data dir)."


def _db_option(f: Any) -> Any:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="PATH",
        help=_DB_HELP,
    )(f)


def _resolve_db(ctx: click.Context, db: Path | None) -> Path:
    """--db on the command, else --db on the group, else $EVALTUI_DB / the user data dir."""
    if db is None:
        db = (ctx.find_root().obj or {}).get("db")
    if db is not None:
        return Path(db).expanduser()
    from evaltui.store.connection import default_db_path

    return default_db_path()


@click.group(cls=EvaltuiGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@_db_option
@click.version_option(__version__, "--version", "-V", prog_name="evaltui", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, db: Path | None) -> None:
    """A keyboard-driven terminal workbench for LLM evaluation experiments.

    Run `evaltui` to open the TUI on the default database, `evaltui PATH` to open a
    database file (or to import a results file or folder and open it), or `evaltui demo`
    to write and open a demo project.
    """
    ctx.obj = {"db": db}
    if ctx.invoked_subcommand is None:
        ctx.invoke(open_cmd, path=None, db=None)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="evaltui")


# -- open ----------------------------------------------------------------------------------


def _is_sqlite_file(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _interactive() -> bool:
    """stdin and stdout are a terminal (the TUI can run)."""
    try:
        return sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _open_tui(ctx: click.Context, db_path: Path, *, note: str | None = None, experiment: str | None = None) -> None:
    """Open the TUI on ``db_path`` (at ``experiment`` when given); without a TUI (or a
    terminal), print `evaltui ls` instead."""
    if not _interactive():
        if note:
            click.echo(note, err=True)
        click.echo("(not a terminal: showing `evaltui ls` instead of opening the TUI)", err=True)
        _print_ls(db_path, project=None, as_json=False)
        return
    try:
        from evaltui.tui.app import run_app
    except ImportError as e:
        click.echo(f"(the TUI could not be loaded: {_one_line(str(e))}; showing `evaltui ls` instead)", err=True)
        _print_ls(db_path, project=None, as_json=False)
        return
    if experiment is None:
        run_app(db_path)
    else:
        run_app(db_path, experiment=experiment)


@cli.command("open", short_help="Open the TUI on a database, or import a file and open it.")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@_db_option
@click.pass_context
def open_cmd(ctx: click.Context, path: Path | None, db: Path | None) -> int | None:
    """Open the TUI on a database (PATH, or --db, or the default database).

    A PATH that is not an SQLite database (a results file or a folder of them) is imported
    into the database (--db, or the default one) first, then opened at the experiment.
    """
    if path is None:
        _open_tui(ctx, _resolve_db(ctx, db))
        return None
    path = path.expanduser()
    if not path.exists():
        commands = ", ".join(c for c in cli.list_commands(ctx) if c != "open")
        raise UserError(f"{path}: no such file, and not a command ({commands})")
    if path.is_file() and _is_sqlite_file(path):
        _open_tui(ctx, path)
        return None
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (not a database)")
    if path.is_file():
        from evaltui.ingest import SniffError, sniff

        try:
            sniff(path)
        except SniffError as e:
            problem = str(e).removeprefix(f"{path}: ").split("; pass --format")[0]
            raise UserError(f"{path}: not an SQLite database, nor a file evaltui can import: {problem}") from None
    db_path = _resolve_db(ctx, db)
    report = _run_import(db_path, [path], fmt="auto", out_err=True)
    if not report.ok:
        return EXIT_USER_ERROR
    refs = list(dict.fromkeys(e.ref for e in report.experiments))
    if not refs:
        raise UserError(f"{path}: nothing to import (no file in a format evaltui knows)")
    note = f"Imported into {db_path}: " + ", ".join(_printable(r) for r in refs)
    _open_tui(ctx, db_path, note=note, experiment=refs[0] if len(refs) == 1 else None)
    return None


# -- import --------------------------------------------------------------------------------

IMPORT_FORMATS = ("auto", "braintrust", "inspect", "promptfoo", "otel", "phoenix", "langfuse", "jsonl", "csv")
# fields a generic JSONL/CSV column can be mapped to (evaltui.ingest.jsonl), besides scores./metadata./metrics.
_MAP_FIELDS = ("id", "input", "output", "expected", "error", "tags", "name", "created")


def _map_target_ok(name: str) -> bool:
    group, dot, rest = name.partition(".")
    return name in _MAP_FIELDS or (bool(dot) and bool(rest) and group in ("scores", "metadata", "metrics"))


def _parse_mapping(items: Sequence[str]) -> dict[str, str] | None:
    """``--map SRC=DST`` options as the importers' mapping {evaltui field: source column}."""
    mapping: dict[str, str] = {}
    for item in items:
        src, eq, dst = item.partition("=")
        src, dst = src.strip(), dst.strip()
        if not eq or not src or not dst:
            raise UserError(f"--map {item!r}: expected SRC=DST (a source column, then an evaltui field)")
        if not _map_target_ok(dst):
            hint = f"; did you mean --map {dst}={src}?" if _map_target_ok(src) else ""
            raise UserError(
                f"--map {item!r}: {dst!r} is not an evaltui field (one of {', '.join(_MAP_FIELDS)},"
                f" scores.NAME, metadata.KEY, metrics.NAME){hint}"
            )
        if dst in mapping:
            raise UserError(f"--map: {dst!r} is mapped twice")
        mapping[dst] = src
    return mapping or None


class _ProgressLine:
    """A one-line progress display on stderr (a terminal only), redrawn at most 10 times a second."""

    def __init__(self) -> None:
        import shutil
        import time

        self._clock = time.monotonic
        self._last = 0.0
        self._width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)
        self.shown = False

    def __call__(self, done: int, total: int, label: str) -> None:
        now = self._clock()
        if now - self._last < 0.1 and done < total:
            return
        self._last = now
        frac = min(1.0, done / total) if total else 1.0
        bar_w = 20
        fill = int(frac * bar_w)
        text = f"importing [{'#' * fill}{'.' * (bar_w - fill)}] {frac * 100:3.0f}%  {_printable(label)}"
        if len(text) > self._width:
            text = text[: self._width - 1] + "…"
        click.echo("\r" + text.ljust(self._width), err=True, nl=False)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r" + " " * self._width + "\r", err=True, nl=False)
            self.shown = False


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _run_import(
    db_path: Path,
    paths: Sequence[Path | str],
    *,
    fmt: str,
    project: str | None = None,
    experiment: str | None = None,
    mapping: dict[str, str] | None = None,
    as_json: bool = False,
    out_err: bool = False,
) -> Any:
    """Import ``paths`` into ``db_path`` and report file by file; returns the ImportReport.

    What was written goes to stdout (stderr with ``out_err``, when stdout is for something
    else); a file that failed is reported on stderr, naming the file and the place.
    """
    from evaltui.ingest import import_paths
    from evaltui.store import Store

    progress = _ProgressLine() if _stderr_is_tty() else None
    try:
        with Store(db_path) as store:
            report = import_paths(
                store, paths, format=fmt, project=project, experiment=experiment, mapping=mapping, progress=progress
            )
    finally:
        if progress is not None:
            progress.clear()
    if as_json:
        click.echo(json.dumps({"db": str(db_path), **report.to_dict()}, indent=2, ensure_ascii=False))
    for f in report.files:
        if f.skipped:
            click.echo(f"evaltui: skipped {_printable(f.error or f.path)}", err=True)
        elif f.error:
            click.echo(f"evaltui: error: {_printable(_one_line(f.error))}", err=True)
        elif not as_json:
            for e in f.experiments:
                click.echo(
                    f"{e.action} {_printable(e.ref)}: {e.traces} traces, {e.spans} spans"
                    f"  ({f.format}: {_printable(f.path)})",
                    err=out_err,
                )
            if not f.experiments:
                click.echo(f"empty {_printable(f.path)}: nothing to import ({f.format})", err=out_err)
            for w in f.warnings:
                click.echo(f"  warning: {_printable(_one_line(w))}", err=out_err)
    return report


@cli.command("import", short_help="Import results files (Braintrust, Inspect, promptfoo, OTel, ...).")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--format", "fmt", type=click.Choice(IMPORT_FORMATS), default="auto", show_default=True,
              help="Format of the files (auto: sniffed per file).")
@click.option("--project", metavar="P", help="Import into this project (default: from the source).")
@click.option("--experiment", metavar="E", help="Name of the experiment (default: from the source).")
@click.option("--map", "maps", multiple=True, metavar="SRC=DST",
              help="JSONL/CSV: read the evaltui field DST (input, expected, scores.acc, ...) from column SRC."
                   " Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@click.option("--watch", is_flag=True,
              help="Keep watching the folder(s): import new and growing logs as an eval runs (Ctrl+C stops).")
@_db_option
@click.pass_context
def import_cmd(
    ctx: click.Context,
    paths: tuple[str, ...],
    fmt: str,
    project: str | None,
    experiment: str | None,
    maps: tuple[str, ...],
    as_json: bool,
    watch: bool,
    db: Path | None,
) -> int:
    """Import results files, folders or globs into the database.

    Each file is imported atomically: a broken file writes nothing (it is reported with the
    line or record where it broke) and the other files still import; the exit status is
    then 2. Re-importing a file updates its experiment, never duplicates it.

    With --watch DIR, DIR is polled every second: a file that is new or has changed is
    (re-)imported once it has been stable for half a second, and reported; a broken file is
    reported and the watch goes on. Ctrl+C stops it with a summary (exit status 0).
    """
    mapping = _parse_mapping(maps)
    db_path = _resolve_db(ctx, db)
    if watch:
        return _watch_import(db_path, list(paths), fmt=fmt, project=project, experiment=experiment,
                             mapping=mapping, as_json=as_json)
    report = _run_import(db_path, list(paths), fmt=fmt, project=project, experiment=experiment, mapping=mapping,
                         as_json=as_json)
    if not as_json:
        failed = len(report.errors)
        n_files = sum(1 for f in report.files if not f.skipped and not f.error)
        summary = f"{n_files} file{'s' if n_files != 1 else ''} imported into {db_path}: {report.traces} traces"
        summary += f", {report.spans} spans"
        if failed:
            summary += f"; {failed} file{'s' if failed != 1 else ''} failed"
        click.echo(summary, err=True)
    return 0 if report.ok else EXIT_USER_ERROR


def _watch_import(
    db_path: Path,
    paths: Sequence[str],
    *,
    fmt: str,
    project: str | None,
    experiment: str | None,
    mapping: dict[str, str] | None,
    as_json: bool,
    interval: float = 1.0,
    settle: float = 0.5,
    stop: Any = None,
) -> int:
    """`evaltui import --watch`: a thin wrapper over evaltui.ingest.watch.Watcher."""
    from evaltui.ingest import IngestError
    from evaltui.ingest.watch import Watcher
    from evaltui.store import Store

    def on_result(f: Any) -> None:
        if as_json:
            click.echo(json.dumps(f.to_dict(), ensure_ascii=False))
        elif f.skipped:
            click.echo(f"evaltui: skipped {_printable(_one_line(f.error or f.path))}", err=True)
        elif f.error:
            click.echo(f"evaltui: error: {_printable(_one_line(f.error))}", err=True)
        else:
            for e in f.experiments:
                click.echo(
                    f"{e.action} {_printable(e.ref)}: {e.traces} traces, {e.spans} spans"
                    f"  ({f.format}: {_printable(f.path)})"
                )
            if not f.experiments:
                click.echo(f"empty {_printable(f.path)}: nothing to import ({f.format})")
            for w in f.warnings:
                click.echo(f"  warning: {_printable(_one_line(w))}")
        sys.stdout.flush()

    with Store(db_path) as store:
        try:
            watcher = Watcher(store, paths, interval=interval, settle=settle, on_result=on_result, stop=stop,
                              format=fmt, project=project, experiment=experiment, mapping=mapping)
        except IngestError as e:
            raise UserError(_one_line(str(e))) from None
        where = ", ".join(_printable(p) for p in paths)
        click.echo(f"watching {where} into {db_path} (Ctrl+C to stop)", err=True)
        try:
            watcher.run()
        except KeyboardInterrupt:
            pass
    click.echo(f"stopped watching: {watcher.summary.line()}", err=True)
    return 0


# -- ls ------------------------------------------------------------------------------------


def _local_time(iso: str | None) -> str:
    if not iso:
        return ""
    import datetime as dt

    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16]
    if t.tzinfo is not None:
        t = t.astimezone()
    return t.strftime("%Y-%m-%d %H:%M")


def ls_rows(db_path: Path, project: str | None = None, filter_text: str | None = None) -> list[dict[str, Any]]:
    """Experiments as plain dicts, projects with the newest experiment first, then newest first.

    A database file that does not exist yet has no experiments (and is not created). With
    ``filter_text``, each row gets ``matching``: how many of its traces match the filter
    (None where the filter names a score or key the experiment does not have).
    """
    if filter_text is not None and filter_text.strip():
        from evaltui.query.filter import FilterError, parse_filter

        try:
            parse_filter(filter_text)  # syntax errors before anything else
        except FilterError as e:
            raise _filter_error(e, filter_text) from None
    if not db_path.exists():
        if project:
            raise UserError(f"no project {project!r}: {db_path} does not exist yet")
        return []
    from evaltui.store import Store, load_experiments, load_projects

    matching: dict[str, int | None] = {}
    with Store(db_path) as store:
        if project and project not in load_projects(store)["name"].to_list():
            raise UserError(f"no project {project!r} in {db_path}; `evaltui ls` lists them")
        frame = load_experiments(store, project)
        if filter_text is not None:
            matching = _count_matching_all(store, frame["id"].to_list(), filter_text)
    rows = []
    for r in frame.iter_rows(named=True):
        rows.append(
            {
                "project": r["project"],
                "id": r["id"],
                "name": r["name"],
                "created": r["created"],
                "description": r["description"],
                "source": r["source"],
                "base_exp_id": r["base_exp_id"],
                "traces": r["traces"],
                "errors": r["errors"],
                "scorer_errors": r["scorer_errors"],
                "reviewed": r["reviewed"],
                "scores": json.loads(r["score_means"] or "{}"),
            }
        )
        if filter_text is not None:
            rows[-1]["matching"] = matching.get(r["id"])
    newest: dict[str, str] = {}
    for r in rows:
        newest[r["project"]] = max(newest.get(r["project"], ""), r["created"] or "")
    # stable sorts: newest experiment first, then projects by their newest experiment
    rows.sort(key=lambda r: (r["created"] or "", r["name"]), reverse=True)
    rows.sort(key=lambda r: newest[r["project"]], reverse=True)
    return rows


def _count_matching_all(store: Any, experiment_ids: list[str], text: str) -> dict[str, int | None]:
    """count_matching per experiment; None where the filter does not apply to an experiment
    (a score it lacks). When it applies to none, its first error is the user's error."""
    from evaltui.query.filter import FilterError, count_matching

    out: dict[str, int | None] = {}
    first: FilterError | None = None
    for eid in experiment_ids:
        try:
            out[eid] = count_matching(store, eid, text)
        except FilterError as e:
            out[eid] = None
            first = first or e
    if first is not None and all(v is None for v in out.values()):
        raise _filter_error(first, text)
    return out


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _fmt_score(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def format_ls(rows: list[dict[str, Any]], width: int = 80) -> str:
    """The `evaltui ls` table: one block per project; score means as columns when they fit,
    else on an indented line under each experiment."""
    lines: list[str] = []
    projects: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        projects.setdefault(r["project"], []).append(r)
    for project, exps in projects.items():
        if lines:
            lines.append("")
        n = len(exps)
        lines.append(f"{_printable(project)} · {n} experiment{'s' if n != 1 else ''}")
        names = [_printable(e["name"]) for e in exps]
        name_w = min(max(len("experiment"), *(len(s) for s in names)), 32)
        score_names: list[str] = []
        for e in exps:
            score_names += [s for s in e["scores"] if s not in score_names]
        fixed = [("experiment", name_w, "<"), ("created", 16, "<"), ("traces", 6, ">"), ("errors", 6, ">"),
                 ("scorer err", 10, ">")]
        with_matching = any("matching" in e for e in exps)
        if with_matching:
            fixed.insert(3, ("matching", 8, ">"))
        score_cols = [(_printable(s), max(len(_printable(s)), 5), ">") for s in score_names]
        gap = "  "
        fixed_w = 2 + sum(w for _, w, _ in fixed) + len(gap) * (len(fixed) - 1)
        inline = fixed_w + sum(len(gap) + w for _, w, _ in score_cols) <= width
        cols = fixed + (score_cols if inline else [])
        lines.append("  " + gap.join(f"{h:{a}{w}}" if a == "<" else f"{h:>{w}}" for h, w, a in cols).rstrip())
        for e, name in zip(exps, names, strict=True):
            cells = [
                _clip(name, name_w),
                _local_time(e["created"]),
                str(e["traces"]),
                str(e["errors"]),
                str(e["scorer_errors"]),
            ]
            if with_matching:
                cells.insert(3, "—" if e.get("matching") is None else str(e["matching"]))
            if inline:
                cells += [_fmt_score(e["scores"].get(s)) for s in score_names]
            lines.append("  " + gap.join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, cols, strict=True)).rstrip())
            if not inline and e["scores"]:
                lines += _wrap_scores(e["scores"], width, indent=" " * 4)
    return "\n".join(lines)


def _wrap_scores(scores: dict[str, Any], width: int, indent: str) -> list[str]:
    parts = [f"{_printable(k)} {_fmt_score(v)}" for k, v in scores.items()]
    out, line = [], indent
    for p in parts:
        sep = "" if line == indent else " · "
        if line != indent and len(line) + len(sep) + len(p) > width:
            out.append(line)
            line, sep = indent, ""
        line += sep + p
    if line != indent:
        out.append(line)
    return out


def _print_ls(db_path: Path, project: str | None, as_json: bool, filter_text: str | None = None) -> None:
    rows = ls_rows(db_path, project, filter_text)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        where = f"project {project!r} in {db_path}" if project else str(db_path)
        click.echo(f"No experiments in {where} yet. Try `evaltui demo` to write a demo project.")
        return
    import shutil

    width = max(60, shutil.get_terminal_size((80, 24)).columns)
    click.echo(format_ls(rows, width))


@cli.command("ls", short_help="Projects and experiments with trace counts and score means.")
@click.option("--project", "-p", metavar="P", help="Only this project.")
@click.option("--filter", "filter_text", metavar="EXPR",
              help="Also count each experiment's traces matching EXPR (the filter language).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list of experiments.")
@_db_option
@click.pass_context
def ls_cmd(ctx: click.Context, project: str | None, filter_text: str | None, as_json: bool, db: Path | None) -> None:
    """Projects and experiments (newest first) with trace counts, errors and score means.

    With --filter, a "matching" column counts the traces that match (— where the filter
    names a score or key the experiment does not have).
    """
    _print_ls(_resolve_db(ctx, db), project, as_json, filter_text)


# -- export --------------------------------------------------------------------------------

EXPORT_FORMATS = ("csv", "json", "jsonl", "parquet")


def _export_format(fmt: str | None, output: Path | None) -> str:
    """--format, else what -o's extension says, else JSONL."""
    if fmt is not None:
        return fmt
    if output is None:
        return "jsonl"
    from evaltui.query.export import EXTENSIONS, format_for_path

    found = format_for_path(output)
    if found is None:
        known = ", ".join(EXTENSIONS)
        raise UserError(f"-o {output}: cannot tell the format from the file name (one of {known}); pass --format")
    return found


@cli.command("export", short_help="Write the rows of one experiment as CSV, JSON, JSONL or Parquet.")
@click.argument("experiment", metavar="EXP")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default=None,
              help="Output format (default: from -o's extension, else jsonl).")
@click.option("--filter", "filter_text", metavar="EXPR", help="Only rows matching EXPR (the filter language).")
@click.option("--all-fields", is_flag=True,
              help="Every span field, span records as stored (JSONL re-imports with --format braintrust).")
@click.option("--rows", type=click.Choice(["traces", "spans"]), default="traces", show_default=True,
              help="One row per trace, or per span (also what --filter selects).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write to FILE (atomically) instead of stdout.")
@_db_option
@click.pass_context
def export_cmd(
    ctx: click.Context,
    experiment: str,
    fmt: str | None,
    filter_text: str | None,
    all_fields: bool,
    rows: str,
    output: Path | None,
    db: Path | None,
) -> None:
    """Write every row of experiment EXP (project/experiment or id) to stdout or -o FILE.

    Trace rows carry input, output, expected, scores.*, metrics.*, metadata.*, tags, the
    review fields, error and ids; JSON/JSONL keep nested objects, CSV/Parquet flatten them.
    """
    from evaltui.query.export import plan_export, write_atomically, write_export
    from evaltui.query.filter import FilterError
    from evaltui.store import Store, find_experiment

    fmt = _export_format(fmt, output)
    if output is None and fmt == "parquet" and _stdout_is_tty():
        raise UserError("Parquet is binary: write it to a file with -o FILE (or redirect stdout)")
    db_path = _existing_db(_resolve_db(ctx, db), experiment)
    with Store(db_path) as store:
        exp = find_experiment(store, experiment)
        try:
            plan = plan_export(store, exp["id"], rows=rows, all_fields=all_fields, filter_text=filter_text)
        except FilterError as e:
            raise _filter_error(e, filter_text or "") from None
        if output is None:
            sys.stdout.flush()
            stream = sys.stdout.buffer
            write_export(store, plan, stream, fmt)
            stream.flush()
            return
        n = write_atomically(output.expanduser(), lambda f: write_export(store, plan, f, fmt))
    what = ("span" if all_fields or rows == "spans" else "trace") + ("" if n == 1 else "s")
    click.echo(f"Wrote {n} {what} of {_printable(exp['project'])}/{_printable(exp['name'])} to {output} ({fmt})",
               err=True)


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# -- summary -------------------------------------------------------------------------------


@cli.command("summary", short_help="Scores and metrics compared with a baseline; for CI.")
@click.argument("experiment", metavar="EXP")
@click.option("--compare", "base", metavar="BASE",
              help="Baseline experiment (default: the experiment's base, the project's baseline, or the previous one).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.option("--fail-on-regression", "gates", multiple=True, is_flag=False, flag_value="*",
              metavar="[SCORE[:MIN_DROP]]",
              help="Exit 1 when SCORE's mean drops by more than MIN_DROP (0.05, or 5pp); without SCORE,"
                   " when any score's mean drops. Repeatable.")
@_db_option
@click.pass_context
def summary_cmd(
    ctx: click.Context, experiment: str, base: str | None, fmt: str, gates: tuple[str, ...], db: Path | None
) -> int:
    """Summarize experiment EXP: each score's and metric's mean, the baseline's mean, the
    diff, and improvements / regressions over the rows matched with the baseline.

    Exit status 1 when a --fail-on-regression check fails, 2 on errors, else 0 (also when
    there is no baseline to compare with: the experiment's own summary is printed).
    """
    from evaltui.query import export as ex

    try:
        parsed = [ex.parse_gate(g) for g in gates]
    except ValueError as e:
        raise UserError(str(e)) from None
    from evaltui.query.compare import summarize, summary_text
    from evaltui.store import Store

    db_path = _existing_db(_resolve_db(ctx, db), experiment)
    with Store(db_path) as store:
        summary = summarize(store, experiment, base)
    try:
        failures = ex.regression_failures(summary, parsed)
    except ValueError as e:
        raise UserError(str(e)) from None
    compared = summary["base_experiment"] is not None
    if fmt == "json":
        doc = {**summary, "compared": compared}
        if parsed:
            doc["regression_check"] = {
                "checked": compared,
                "gates": [{"score": g.score, "min_drop": g.min_drop} for g in parsed],
                "failed": bool(failures),
                "failures": failures,
            }
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "markdown":
        click.echo(ex.summary_markdown(summary, failures, parsed), nl=False)
    else:
        text = _printable_lines(summary_text(summary))
        if not compared:
            text += "\nNo baseline to compare with: this is the experiment's own summary."
        click.echo(text)
    if parsed and not compared:
        click.echo("evaltui: note: no baseline to compare with; --fail-on-regression checked nothing", err=True)
    for f in failures:
        click.echo(f"evaltui: regression: {_printable(ex.failure_text(f))}", err=True)
    return 1 if failures else 0


@cli.command("analyze", short_help="Offline insights: what changed, error clusters, low-score patterns.")
@click.argument("experiment", metavar="EXP")
@click.option("--compare", "base", metavar="BASE",
              help="Baseline experiment (default: the experiment's base, the project's baseline, or the previous one).")
@click.option("--no-compare", is_flag=True, help="Analyze the experiment alone.")
@click.option("--filter", "filter_text", metavar="EXPR", help="Only rows matching EXPR (the filter language).")
@click.option("--json", "as_json", is_flag=True, help="Every finding with the ids of its rows, as JSON.")
@_db_option
@click.pass_context
def analyze_cmd(
    ctx: click.Context, experiment: str, base: str | None, no_compare: bool, filter_text: str | None,
    as_json: bool, db: Path | None,
) -> None:
    """Offline insights into experiment EXP: summary, what changed against the baseline,
    error clusters, low-score patterns, scorer agreement and trends (no network)."""
    from evaltui.query.filter import FilterError
    from evaltui.query.insights import analysis_text, analyze
    from evaltui.store import Store

    db_path = _existing_db(_resolve_db(ctx, db), experiment)
    with Store(db_path) as store:
        try:
            result = analyze(store, experiment, base_eid=base, filter_text=filter_text, compare=not no_compare)
        except FilterError as e:
            raise _filter_error(e, filter_text or "") from None
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        click.echo(_printable_lines(analysis_text(result)))


def _printable_lines(text: str) -> str:
    return "\n".join(_printable(line) for line in text.split("\n"))


# -- demo ----------------------------------------------------------------------------------


@cli.command("demo")
@click.option("--no-open", is_flag=True, help="Write the demo, do not open the TUI.")
@_db_option
@click.pass_context
def demo_cmd(ctx: click.Context, no_open: bool, db: Path | None) -> None:
    """Write a realistic demo project with the SDK, then open it.

    Running it again replaces the demo project (nothing is duplicated).
    """
    from evaltui.demo import DEMO_PROJECT, write_demo

    db_path = _resolve_db(ctx, db)
    click.echo(f"Writing the demo project {DEMO_PROJECT!r} to {db_path} …", err=True)
    info = write_demo(db_path, progress=False)
    verb = "Replaced" if info.get("replaced") else "Wrote"
    click.echo(f"{verb} project {info['project']!r} in {db_path} ({info['seconds']:.1f} s):")
    for e in info["experiments"]:
        click.echo(
            f"  {_printable(e['name']):<26} {e['traces']:>4} traces  {e['errors']:>2} errors"
            f"  {e['scorer_errors']:>2} scorer errors  {e['reviewed']:>3} reviewed"
        )
    click.echo(
        "Look for: gpt-4o-mini's regression on technical tickets (filter metadata.category = 'technical'),"
        "\n  failed traces (error is not null), and the rows alice and bob already reviewed."
    )
    from evaltui.store.connection import default_db_path

    same = db_path.expanduser().resolve() == default_db_path().expanduser().resolve()
    click.echo("Open it again with: evaltui" + ("" if same else f" --db {_shell_quote(str(db_path))}"))
    if not no_open:
        _open_tui(ctx, db_path)


def _shell_quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# -- bench ---------------------------------------------------------------------------------


@cli.command("bench")
@click.option("--traces", type=click.IntRange(min=1), default=None, metavar="N", help="Traces in the synthetic experiment.")
@click.option("--spans-per-trace", type=click.IntRange(min=1), default=None, metavar="K", help="Spans per trace.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable timings.")
@click.option("--only", default=None, metavar="PARTS",
              help="Run only these parts, comma-separated: store, query, compare, insights, review, import, tui, "
                   "tui_arrange, review_tui, ...")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Work (and keep the synthetic store) here; with --only, reuse a store left there.")
@_db_option
@click.pass_context
def bench_cmd(ctx: click.Context, traces: int | None, spans_per_trace: int | None, as_json: bool,
              only: str | None, workdir: Path | None, db: Path | None) -> None:
    """Write a synthetic experiment and time every hot path side by side."""
    try:
        from evaltui.bench import run_bench
    except ModuleNotFoundError as e:
        if e.name not in ("evaltui.bench",):
            raise
        raise UserError("`evaltui bench` is not available in this build (evaltui/bench.py is missing)") from None
    kwargs: dict[str, Any] = {"as_json": as_json}
    if only is not None:
        kwargs["only"] = only
    if workdir is not None:
        kwargs["workdir"] = workdir
    if traces is not None:
        kwargs["traces"] = traces
    if spans_per_trace is not None:
        kwargs["spans_per_trace"] = spans_per_trace
    db = db if db is not None else (ctx.find_root().obj or {}).get("db")
    if db is not None:
        import inspect

        params = inspect.signature(run_bench).parameters
        key = next((k for k in ("db_path", "db") if k in params), None)
        if key is None:
            click.echo("evaltui: note: bench always uses a temporary database; --db is ignored", err=True)
        else:
            kwargs[key] = Path(db).expanduser()
    try:
        result = run_bench(**kwargs)
    except ValueError as e:  # run_bench's check of its arguments
        raise UserError(str(e)) from None
    # run_bench prints its own table / JSON; a text result is printed for it
    if isinstance(result, str):
        click.echo(result)


# -- dataset -------------------------------------------------------------------------------


@cli.group("dataset", short_help="Datasets made from experiment rows: create, ls, export, rm.")
def dataset_group() -> None:
    """Datasets: named lists of cases (input, expected, metadata, tags) in a project.

    Make one from the traces of an experiment (optionally filtered), list them, and export
    one as JSONL ready for `evaltui.Eval(data=...)`.
    """


@dataset_group.command("create", short_help="Create a dataset from an experiment's (filtered) traces.")
@click.argument("experiment", metavar="EXP")
@click.argument("name")
@click.option("--filter", "filter_text", metavar="EXPR", help="Only traces matching EXPR (the filter language).")
@click.option("--description", metavar="TEXT", help="A description of the dataset.")
@_db_option
@click.pass_context
def dataset_create_cmd(
    ctx: click.Context, experiment: str, name: str, filter_text: str | None, description: str | None, db: Path | None
) -> None:
    """Create dataset NAME in EXP's project from the traces of EXP (project/experiment or id).

    Each record is a trace's full root input, expected, metadata and tags.
    """
    from evaltui.query.filter import FilterError, matching_ids
    from evaltui.store import Store, find_experiment
    from evaltui.store.datasets import dataset_from_experiment

    db_path = _existing_db(_resolve_db(ctx, db), experiment)
    with Store(db_path) as store:
        exp = find_experiment(store, experiment)
        ids = None
        if filter_text is not None:
            try:
                ids = matching_ids(store, exp["id"], filter_text)
            except FilterError as e:
                raise _filter_error(e, filter_text) from None
        _, n = dataset_from_experiment(store, exp["id"], name, root_span_ids=ids, description=description)
    click.echo(
        f"created dataset {_printable(exp['project'])}/{_printable(name)}: {n} record{'s' if n != 1 else ''}"
        f" from {_printable(exp['project'])}/{_printable(exp['name'])}"
    )


@dataset_group.command("ls", short_help="List datasets with their record counts.")
@click.option("--project", "-p", metavar="P", help="Only this project.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list.")
@_db_option
@click.pass_context
def dataset_ls_cmd(ctx: click.Context, project: str | None, as_json: bool, db: Path | None) -> None:
    """List the datasets of every project (or of one)."""
    db_path = _resolve_db(ctx, db)
    rows: list[dict[str, Any]] = []
    if db_path.exists():  # a missing database is not created by listing it
        from evaltui.store import Store
        from evaltui.store.datasets import list_datasets

        with Store(db_path) as store:
            rows = list_datasets(store, project)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no datasets" + (f" in project {_printable(project)}" if project else ""), err=True)
        return
    for r in rows:
        line = f"{_printable(r['project'])}/{_printable(r['name'])}  {r['records']} records  {_local_time(r['created'])}"
        if r.get("description"):
            line += f"  {_printable(_one_line(r['description']))}"
        click.echo(line)


def _find_dataset(store: Any, name: str, project: str | None) -> dict[str, Any]:
    from evaltui.store.datasets import find_dataset

    return find_dataset(store, name, project)


@dataset_group.command("export", short_help="Write a dataset as JSONL (input, expected, metadata, tags).")
@click.argument("name")
@click.option("--project", "-p", metavar="P", help="The dataset's project (needed when the name is in several).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write to FILE (atomically) instead of stdout.")
@_db_option
@click.pass_context
def dataset_export_cmd(ctx: click.Context, name: str, project: str | None, output: Path | None,
                       db: Path | None) -> None:
    """Write dataset NAME (or project/name, or id) as JSONL: one {input, expected, metadata,
    tags} object a line, ready for `evaltui.Eval(data=...)`."""
    from evaltui.store import Store
    from evaltui.store.datasets import iter_dataset_records

    db_path = _resolve_db(ctx, db)
    if not db_path.exists():
        raise UserError(f"no dataset {name!r}: {db_path} does not exist yet; `evaltui dataset ls` lists datasets")
    with Store(db_path) as store:
        ds = _find_dataset(store, name, project)

        def write(f: Any) -> int:
            n = 0
            for rec in iter_dataset_records(store, ds["id"]):
                f.write(json.dumps(rec, ensure_ascii=False).encode() + b"\n")
                n += 1
            return n

        if output is None:
            sys.stdout.flush()
            write(sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        from evaltui.query.export import write_atomically

        n = write_atomically(output.expanduser(), write)
    click.echo(f"Wrote {n} record{'s' if n != 1 else ''} of dataset {_printable(ds['project'])}/"
               f"{_printable(ds['name'])} to {output}", err=True)


@dataset_group.command("rm", short_help="Delete a dataset.")
@click.argument("name")
@click.option("--project", "-p", metavar="P", help="The dataset's project (needed when the name is in several).")
@_db_option
@click.pass_context
def dataset_rm_cmd(ctx: click.Context, name: str, project: str | None, db: Path | None) -> None:
    """Delete dataset NAME (or project/name, or id) and its records."""
    from evaltui.store import Store
    from evaltui.store.datasets import delete_dataset

    db_path = _resolve_db(ctx, db)
    if not db_path.exists():
        raise UserError(f"no dataset {name!r}: {db_path} does not exist yet")
    with Store(db_path) as store:
        ds = _find_dataset(store, name, project)
        delete_dataset(store, ds["id"])
    click.echo(f"deleted dataset {_printable(ds['project'])}/{_printable(ds['name'])} ({ds['records']} records)",
               err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
