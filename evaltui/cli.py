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
    """A mistake the user can fix; shown as one line, exit status 2."""

    exit_code = EXIT_USER_ERROR


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
    database file, or `evaltui demo` to write and open a demo project.
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


def _open_tui(ctx: click.Context, db_path: Path, *, note: str | None = None) -> None:
    """Open the TUI on ``db_path``; without a TUI (or a terminal), print `evaltui ls` instead."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
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
    run_app(db_path)


@cli.command("open", short_help="Open the TUI on a database.")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@_db_option
@click.pass_context
def open_cmd(ctx: click.Context, path: Path | None, db: Path | None) -> None:
    """Open the TUI on a database (PATH, or --db, or the default database)."""
    if path is None:
        _open_tui(ctx, _resolve_db(ctx, db))
        return
    path = path.expanduser()
    if not path.exists():
        commands = ", ".join(c for c in cli.list_commands(ctx) if c != "open")
        raise UserError(f"{path}: no such file, and not a command ({commands})")
    if path.is_file() and _is_sqlite_file(path):
        _open_tui(ctx, path)
        return
    if path.is_file() and path.stat().st_size == 0:
        raise UserError(f"{path}: the file is empty (not a database)")
    raise UserError(
        f"{path}: not an SQLite database; importing files is not available yet "
        "(`evaltui import` is planned, see README)"
    )


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


def ls_rows(db_path: Path, project: str | None = None) -> list[dict[str, Any]]:
    """Experiments as plain dicts, projects with the newest experiment first, then newest first.

    A database file that does not exist yet has no experiments (and is not created).
    """
    if not db_path.exists():
        if project:
            raise UserError(f"no project {project!r}: {db_path} does not exist yet")
        return []
    from evaltui.store import Store, load_experiments, load_projects

    with Store(db_path) as store:
        if project and project not in load_projects(store)["name"].to_list():
            raise UserError(f"no project {project!r} in {db_path}; `evaltui ls` lists them")
        frame = load_experiments(store, project)
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
    newest: dict[str, str] = {}
    for r in rows:
        newest[r["project"]] = max(newest.get(r["project"], ""), r["created"] or "")
    # stable sorts: newest experiment first, then projects by their newest experiment
    rows.sort(key=lambda r: (r["created"] or "", r["name"]), reverse=True)
    rows.sort(key=lambda r: newest[r["project"]], reverse=True)
    return rows


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


def _print_ls(db_path: Path, project: str | None, as_json: bool) -> None:
    rows = ls_rows(db_path, project)
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
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list of experiments.")
@_db_option
@click.pass_context
def ls_cmd(ctx: click.Context, project: str | None, as_json: bool, db: Path | None) -> None:
    """Projects and experiments (newest first) with trace counts, errors and score means."""
    _print_ls(_resolve_db(ctx, db), project, as_json)


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
@_db_option
@click.pass_context
def bench_cmd(ctx: click.Context, traces: int | None, spans_per_trace: int | None, as_json: bool, db: Path | None) -> None:
    """Write a synthetic experiment and time every hot path side by side."""
    try:
        from evaltui.bench import run_bench
    except ModuleNotFoundError as e:
        if e.name not in ("evaltui.bench",):
            raise
        raise UserError("`evaltui bench` is not available in this build (evaltui/bench.py is missing)") from None
    kwargs: dict[str, Any] = {"as_json": as_json}
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


if __name__ == "__main__":  # pragma: no cover
    main()
