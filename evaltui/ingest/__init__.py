"""Importing results from other tools into the store: one module per format, plus sniffing.

Public API: :func:`import_paths` (what ``evaltui import`` calls) and :class:`ImportReport`.
Every file is imported in one transaction: a broken file imports nothing, and its error
names the file, the line (or zip member / record) and the field. Re-importing a file
updates its experiment in place: experiment and span ids are derived from the source.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaltui.ingest._common import (
    ExperimentResult,
    FileResult,
    IngestError,
    Options,
    Sink,
    file_size,
)
from evaltui.ingest.sniff import FORMATS, SniffError, module_for, sniff
from evaltui.store import Store, StoreError

ProgressCallback = Callable[[int, int, str], None]


@dataclass
class ImportReport:
    """What an import did, file by file."""

    files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file imported (skipped folder entries are not failures)."""
        return all(f.ok or f.skipped for f in self.files)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error and not f.skipped]

    @property
    def warnings(self) -> list[str]:
        return [f"{f.path}: {w}" for f in self.files for w in f.warnings]

    @property
    def experiments(self) -> list[ExperimentResult]:
        return [e for f in self.files for e in f.experiments]

    @property
    def traces(self) -> int:
        return sum(f.traces for f in self.files)

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": [f.to_dict() for f in self.files],
            "traces": self.traces,
            "spans": self.spans,
            "errors": self.errors,
        }

    def lines(self) -> list[str]:
        """A human summary: one line per file and experiment, then warnings and errors."""
        out = []
        for f in self.files:
            if f.skipped:
                out.append(f"skipped {f.path}: {f.error or 'not in a known format'}")
                continue
            if f.error:
                out.append(f"error   {f.error}")
                continue
            for e in f.experiments:
                out.append(f"{e.action:<7} {e.ref}  {e.traces} traces, {e.spans} spans  ({f.format}: {f.path})")
            if not f.experiments:
                out.append(f"empty   {f.path}: nothing to import ({f.format})")
            for w in f.warnings:
                out.append(f"warning {f.path}: {w}")
        return out


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, bool]]:
    """Files to import, in order: (path, came from a folder or glob).

    Folders are searched recursively (an Inspect log directory); globs are expanded
    (``**`` recursive). A path that does not exist raises IngestError.
    """
    out: list[tuple[Path, bool]] = []
    seen: set[Path] = set()

    def add(p: Path, implicit: bool) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append((p, implicit))

    for raw in paths:
        text = os.fspath(raw)
        p = Path(text).expanduser()
        if p.is_dir():
            for sub in sorted(q for q in p.rglob("*") if q.is_file() and not _hidden(q.relative_to(p))):
                add(sub, True)
        elif p.exists():
            add(p, False)
        elif glob.has_magic(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                raise IngestError(f"no file matches {text!r}")
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    for sub in sorted(q for q in mp.rglob("*") if q.is_file() and not _hidden(q.relative_to(mp))):
                        add(sub, True)
                else:
                    add(mp, True)
        else:
            raise IngestError(f"{text}: no such file or folder")
    return out


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def import_paths(
    store: Store,
    paths: Iterable[str | os.PathLike[str]],
    *,
    format: str = "auto",
    project: str | None = None,
    experiment: str | None = None,
    mapping: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Import files, folders and globs into ``store``; each file atomically.

    ``format``: "auto" (sniffed per file) or one of :data:`FORMATS`. ``project`` and
    ``experiment`` override the names taken from the source (a file holding several
    experiments suffixes the experiment name). ``mapping`` renames columns of generic
    JSONL/CSV files ({"input": "question", "expected": "answer", "scores.acc": "correct"}).
    ``progress(done, total, label)`` is called as bytes are read (total = all files' size).

    A file that fails is rolled back and reported in its FileResult's ``error``; the other
    files still import. Files in a folder or glob that are in no known format are skipped
    (listed with ``skipped=True``); a named file in no known format is an error.
    """
    if format != "auto" and format not in FORMATS:
        raise IngestError(f"unknown format {format!r} (one of auto, {', '.join(FORMATS)})")
    files = expand_paths(paths)
    options = Options(project=project, experiment=experiment, mapping=mapping)
    sizes = [file_size(p) for p, _ in files]
    total = sum(sizes) or 1
    report = ImportReport()
    done = 0
    for (path, implicit), size in zip(files, sizes, strict=True):
        label = str(path)
        result = FileResult(label)
        report.files.append(result)
        try:
            fmt = format if format != "auto" else sniff(path)
        except SniffError as e:
            result.error = str(e)
            result.skipped = implicit
            done += size
            if progress:
                progress(done, total, label)
            continue
        result.format = fmt

        def file_progress(fraction: float, _base: int = done, _size: int = size, _label: str = label) -> None:
            if progress:
                progress(_base + int(fraction * _size), total, _label)

        _import_one(store, path, fmt, result, options, file_progress)
        done += size
        if progress:
            progress(done, total, label)
    return report


def import_file(store: Store, path: str | os.PathLike[str], *, format: str = "auto", **options: Any) -> FileResult:
    """Import one file (see :func:`import_paths`); raises IngestError when it fails."""
    report = import_paths(store, [path], format=format, **options)
    result = report.files[0]
    if result.error:
        raise IngestError(result.error)
    return result


def _import_one(
    store: Store, path: Path, fmt: str, result: FileResult, options: Options, progress: Callable[[float], None]
) -> None:
    module = module_for(fmt)
    source = "csv" if fmt == "csv" else fmt
    try:
        _check_not_empty(path)
        with store.transaction():
            sink = Sink(store, result, options, source=source, progress=progress)
            try:
                module.import_file(path, sink)
                sink.close()
            except BaseException:
                sink.abandon()
                raise
    except IngestError as e:
        e.located(path=str(path))
        _fail(result, str(e))
    except StoreError as e:
        _fail(result, f"{path}: {e}")
    except (OSError, UnicodeDecodeError, MemoryError, RecursionError) as e:
        _fail(result, f"{path}: {type(e).__name__}: {e}")


def _check_not_empty(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(65536)
    if not head.strip() and len(head) < 65536:
        raise IngestError("the file is empty")


def _fail(result: FileResult, message: str) -> None:
    result.error = message
    result.experiments.clear()  # rolled back: nothing of the file was written
    result.warnings.clear()


__all__ = [
    "FORMATS",
    "ExperimentResult",
    "FileResult",
    "ImportReport",
    "IngestError",
    "SniffError",
    "expand_paths",
    "import_file",
    "import_paths",
    "sniff",
]
