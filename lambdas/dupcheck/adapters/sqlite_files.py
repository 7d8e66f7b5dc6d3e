"""How the embedded mode opens its SQLite files (records, import jobs, scans): one way, in one place.

WAL journaling lets many server threads read while one writes, and a crash loses nothing the
WAL holds; `synchronous=NORMAL` makes that durable at checkpoints; a busy file is waited for
(30 s) rather than failed at once. A new file gets 64 KiB pages and every connection reads
through a memory map (PAGE_SIZE and MMAP_BYTES say why). Connections are per thread (sqlite3's
rule), autocommit: callers open their own transactions. `SqliteFile` is that shape for an
adapter: a connection per thread, one lock that serialises its writers, the schema created on
first open.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from dupcheck.core.errors import StoreUnavailable

BUSY_TIMEOUT_S = 30
# A record is ~1.3 KB: in SQLite's default 4 KiB pages a fifth of the file was slack, and a
# bulk import spent its time splitting pages and writing them one system call each. With 64 KiB
# pages a 1M-record store is 1,292 MB instead of 1,589, and its import takes ~14% less CPU (49.9
# against 57.8 s; docs/lab/benchmarks.md, "Import of a records file"). SQLite fixes the page size
# when it writes a file's first page: files made before keep 4 KiB pages, and work as they did.
PAGE_SIZE = 64 * 1024
# Reads go through a memory map instead of a copy of each page: with 64 KiB pages the copies
# made a query's 32-record read 1.8x slower; mapped, it is as fast as with 4 KiB pages. Address
# space, not memory: the OS keeps what is used in its page cache either way. (SQLite caps it at
# its compile-time maximum, 2 GB in the usual builds; beyond, pages are read as before.)
MMAP_BYTES = 1 << 40


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a no-op once the file exists
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL survives crashes
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    return conn


class SqliteFile:
    """The base of an adapter over one SQLite file shared by threads (see module docstring)."""

    def __init__(self, path: Path | str, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._write_lock:
            self._conn().executescript(schema)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
            self._prepare(conn)
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """What a new connection needs besides the pragmas (SQL functions); nothing by default."""


class SqliteBookkeeping(SqliteFile):
    """A file of jobs (imports, scans): writes in IMMEDIATE transactions under the writers' lock,
    and any SQLite failure is the store's (503, naming `what`), never a 500."""

    what = "the local store"

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreUnavailable(f"{self.what} failed: {exc}") from exc
                raise

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.what} failed: {exc}") from exc
