"""`evaltui import --watch`: the polling loop in evaltui.ingest.watch."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from evaltui.ingest import IngestError
from evaltui.ingest._common import FileResult
from evaltui.ingest.watch import Watcher, watch
from evaltui.store import Store, load_experiments


def _line(i: int) -> str:
    return json.dumps({"id": f"r{i}", "input": f"q{i}", "output": str(i), "scores": {"s": 1}}) + "\n"


def _traces(store: Store) -> dict[str, int]:
    exps = load_experiments(store)
    return dict(zip(exps["name"].to_list(), exps["traces"].to_list(), strict=True))


def _wait(cond, timeout: float = 8.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_watch_new_growing_and_broken_files(store: Store, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    results: list[FileResult] = []
    lock = threading.Lock()

    def on_result(r: FileResult) -> None:
        with lock:
            results.append(r)

    stop = threading.Event()
    # the watcher gets its own connection, as the CLI's would be
    wstore = Store(store.path)
    thread = threading.Thread(
        target=watch,
        args=(wstore, logs),
        kwargs={"interval": 0.05, "settle": 0.1, "on_result": on_result, "stop": stop, "project": "w"},
        daemon=True,
    )
    started = time.monotonic()
    thread.start()
    try:
        run = logs / "sub" / "run.jsonl"
        run.parent.mkdir()
        run.write_text(_line(0) + _line(1))
        assert _wait(lambda: _traces(store).get("run") == 2)

        # a broken file is reported, and the watch keeps going
        (logs / "broken.jsonl").write_text('{"id": "x", "input": 1}\n{not json\n')
        assert _wait(lambda: any(r.error and "broken.jsonl" in r.error for r in list(results)))

        # the file grows: re-imported in place, no duplicates
        with open(run, "a") as f:
            f.write(_line(2))
        assert _wait(lambda: _traces(store).get("run") == 3)

        # a new file after the broken one
        (logs / "later.jsonl").write_text(_line(7))
        assert _wait(lambda: _traces(store).get("later") == 1)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10
    wstore.close()

    assert _traces(store) == {"run": 3, "later": 1}
    assert len(load_experiments(store)) == 2
    broken = [r for r in results if r.error]
    assert len(broken) == 1 and not broken[0].skipped  # reported once, not on every poll
    run_imports = [r for r in results if r.ok and r.path.endswith("run.jsonl")]
    assert next(e.action for r in run_imports for e in r.experiments) == "created"
    assert all(e.action == "updated" for r in run_imports[1:] for e in r.experiments)


def test_poll_once_settles_and_skips(store: Store, tmp_path: Path) -> None:
    clock = [100.0]
    # settle is long so that a stalled run cannot make the new file look settled by its mtime (real time)
    w = Watcher(store, tmp_path, interval=1, settle=30, clock=lambda: clock[0])
    (tmp_path / "empty.jsonl").write_text("")  # just created: waits
    (tmp_path / ".hidden.jsonl").write_text(_line(0))
    (tmp_path / "notes.txt").write_bytes(b"\x00\x01binary")
    assert [r for r in w.poll_once() if not r.skipped] == []  # nothing importable yet

    # a file written just now is not imported until it has been stable for `settle`
    p = tmp_path / "a.jsonl"
    p.write_text(_line(0))
    first = w.poll_once()
    assert all(not r.path.endswith("a.jsonl") for r in first)
    clock[0] += 31
    second = w.poll_once()
    assert [r.path for r in second if r.ok] == [str(p)]
    # unchanged: nothing to do; the binary file is reported skipped once only
    clock[0] += 5
    assert w.poll_once() == []
    assert w.summary.imports == 1 and w.summary.skipped == 1 and w.summary.failed == 0
    assert "1 import of 1 file" in w.summary.line()


def test_database_inside_watched_folder_is_ignored(tmp_path: Path) -> None:
    with Store(tmp_path / "evaltui.db") as store:
        w = Watcher(store, tmp_path, settle=0)
        assert w.poll_once() == []


def test_watch_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such"):
        Watcher(store, tmp_path / "missing")
    with pytest.raises(IngestError, match="unknown format"):
        Watcher(store, tmp_path, format="nope")


def test_watch_stops_when_event_already_set(store: Store, tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    summary = watch(store, tmp_path, interval=5, stop=stop)
    assert summary.polls == 0


def test_cli_watch_ctrl_c_exits_0_with_summary(tmp_path: Path) -> None:
    import queue
    import signal
    import subprocess
    import sys

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "run.jsonl").write_text(_line(0) + _line(1))
    db = tmp_path / "w.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from evaltui.cli import main; main()", "import", "--watch", str(logs),
         "--project", "w", "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=30)  # a cold subprocess on a loaded machine
        assert first.startswith("created w/run: 2 traces")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped watching: 1 import of 1 file (2 traces" in err
