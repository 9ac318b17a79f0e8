"""Opening the store: one SQLite file in WAL mode, migrated on open."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from evaltui.store.errors import SchemaError, StoreError
from evaltui.store.schema import migrate

BUSY_TIMEOUT_MS = 10_000


def _bind_none_fast() -> None:
    """Let Python's sqlite3 bind None without its adaptation protocol.

    Python 3.11's sqlite3 binds int, float, str and bytes directly, but sends every other
    value, None included, through the adapter lookup, whose failed ``__adapt__`` lookup
    raises and clears an AttributeError: about 0.35 µs per None, and a span or trace row
    binds a dozen of them (a fifth of the SQL time of an ingest). A registered adapter is
    found first; ``{}.get`` is a C function that returns None for None, so it costs 0.1 µs
    and binds exactly what was bound before (NULL). An adapter the application registered
    for None is left alone.
    """
    key = (type(None), sqlite3.PrepareProtocol)
    if key not in sqlite3.adapters:
        sqlite3.register_adapter(type(None), {}.get)


_bind_none_fast()


def default_db_path() -> Path:
    """``$EVALTUI_DB`` if set, else ``evaltui.db`` in the user data directory."""
    env = os.environ.get("EVALTUI_DB")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_data_path("evaltui") / "evaltui.db"


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), so a
    # batch is atomic and no statement is silently wrapped in a transaction of Python's.
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    # The default 4 KB pages: 16 KB pages were measured (bench ingest at 15-20k traces, CPU
    # time) 15-20% slower, probably because every commit writes each page it touched whole.
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal" and path != ":memory:":
        raise StoreError(f"{path}: could not switch the database to WAL mode (got {mode})")
    # NORMAL is durable in WAL mode except for the last commits on power loss
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MB page cache
    # Checkpoints (copying the WAL into the database file) are the background
    # checkpointer's job (see _Checkpointer): the connection's own automatic checkpoint,
    # which would stop the writer inside its COMMIT, is only the last resort for a WAL
    # that has grown to 1 GB (the thread cannot keep up, or could not start).
    conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    return conn


AUTOCHECKPOINT_PAGES = 262_144  # 1 GB of 4 KB pages
# A store whose WAL file has grown past this starts its background checkpointer; a smaller
# WAL is left as it is (SQLite checkpoints it when the last connection closes).
CHECKPOINT_AFTER_BYTES = 4 * 1024 * 1024


class _Checkpointer(threading.Thread):
    """Copies committed WAL frames into the database file, on its own connection and thread.

    Otherwise the writing connection would checkpoint by itself whenever a commit takes
    the WAL past a threshold: the write stops while SQLite copies those pages into the
    database file and syncs it (a third of the time of a bulk ingest; a whole import's
    pages at its one COMMIT). SQLite releases the GIL while it checkpoints, so on a machine
    with a spare core this runs beside the writer, which meanwhile prepares and writes its
    next batch (or the next file). A PASSIVE checkpoint never blocks a reader or a writer
    and only copies committed frames: what it does to the files is what the writer's own
    checkpoint would have done, crash-safe the same way. ``Store.close()`` waits for it.

    It wakes when the store commits (at most every ``interval`` seconds) and exits after
    ``idle`` seconds without a commit; the store starts it again when needed.
    """

    def __init__(self, path: str, interval: float = 0.1, idle: float = 2.0):
        super().__init__(name="evaltui-checkpointer", daemon=True)
        self.path = path
        self.interval = interval
        self.idle = idle
        self.wake = threading.Event()
        self.idle_now = threading.Event()  # set while no checkpoint runs or is asked for
        self.idle_now.set()
        self._state = threading.Lock()
        self.stopping = False
        self.ran = 0  # checkpoints done (tests look at it)

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            return
        try:
            conn.execute("PRAGMA busy_timeout = 0")  # a busy checkpoint is skipped, not waited for
            conn.execute("PRAGMA synchronous = NORMAL")
            while not self.stopping:
                if not self.wake.wait(self.idle):
                    break
                if self.stopping:
                    break
                self.wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.ran += 1
                except sqlite3.Error:
                    pass  # busy or locked: the next commit asks again
                with self._state:
                    if not self.wake.is_set():
                        self.idle_now.set()
                time.sleep(self.interval)
        finally:
            self.idle_now.set()
            conn.close()

    def request(self) -> None:
        with self._state:
            self.idle_now.clear()
            self.wake.set()

    def stop(self) -> None:
        self.stopping = True
        self.wake.set()


class Store:
    """A connection to one evaltui database.

    Safe to share between threads: every use of the connection holds ``self.lock``.
    Readers in other connections (other processes) keep reading while a writer writes.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None):
        p = Path(path).expanduser() if path is not None else default_db_path()
        self.path = p
        if str(p) != ":memory:":
            if p.exists() and p.is_dir():
                raise StoreError(f"{p}: is a directory, not a database file")
            p.parent.mkdir(parents=True, exist_ok=True)
            _check_sqlite_header(p)
        self.lock = threading.RLock()
        self._depth = 0  # nesting of transaction() in the thread that holds the lock
        self._checkpointer: _Checkpointer | None = None
        self._wal = None if str(p) == ":memory:" else str(p) + "-wal"
        try:
            self.conn = _connect(str(p))
            migrate(self.conn, str(p))
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{p}: not a usable evaltui database ({e})") from None
        except SchemaError:
            self.conn.close()
            raise

    def close(self) -> None:
        with self.lock:
            cp, self._checkpointer = self._checkpointer, None
            if cp is not None:
                cp.stop()
                cp.join()
            self.conn.close()

    def _committed(self) -> None:
        """After a commit: have the background checkpointer copy the WAL once it is big."""
        cp = self._checkpointer
        if cp is not None and cp.is_alive() and not cp.stopping:
            cp.request()
            return
        if self._wal is None:
            return
        try:
            if os.stat(self._wal).st_size < CHECKPOINT_AFTER_BYTES:
                return
        except OSError:
            return
        cp = _Checkpointer(str(self.path))
        self._checkpointer = cp
        cp.request()
        cp.start()

    def checkpoint_wait(self, timeout: float | None = None) -> bool:
        """Wait until the background checkpointer has copied every commit so far into the
        database file (True), or ``timeout`` seconds passed (False)."""
        cp = self._checkpointer
        if cp is None or not cp.is_alive():
            return True
        return cp.idle_now.wait(timeout)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits (for live refresh)."""
        with self.lock:
            return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def in_transaction(self) -> bool:
        """Whether this thread is inside :meth:`transaction` (call it holding ``self.lock``)."""
        return self._depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE write transaction: all of it commits, or none of it.

        ``BEGIN IMMEDIATE`` takes the write lock up front, so two writers queue on the busy
        timeout instead of failing half-way with "database is locked". Nested use (in the
        same thread) is a savepoint of the outer transaction, so an importer can wrap a
        whole file (experiment and every batch) in one transaction.
        """
        with self.lock:
            if self._depth:
                name = f"sp{self._depth}"
                self.conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                    raise
                else:
                    self.conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            _begin_immediate(self.conn)
            self._depth = 1
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
                self._committed()
            finally:
                self._depth = 0

    def read(self, sql: str, params: tuple | list | dict = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()


def _begin_immediate(conn: sqlite3.Connection) -> None:
    # The busy handler already waits up to BUSY_TIMEOUT_MS; a few more tries cover
    # a writer that holds the lock longer than that (a huge import).
    deadline = time.monotonic() + 3 * BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise StoreError(
                    "the database is busy: another evaltui process has held the write lock "
                    f"for more than {3 * BUSY_TIMEOUT_MS // 1000} s; try again"
                ) from None
            time.sleep(0.05)


def _check_sqlite_header(p: Path) -> None:
    if not p.exists() or p.stat().st_size == 0:
        return
    with open(p, "rb") as f:
        head = f.read(16)
    if head != b"SQLite format 3\x00":
        raise StoreError(f"{p}: not an SQLite database (it may be a file to import: try `evaltui import {p}`)")
