"""How the embedded mode opens its SQLite files (records, thumbnails, products, import jobs, scans):
one way, in one place.

WAL journaling lets many server threads read while one writes, and a crash loses nothing the
WAL holds; `synchronous=NORMAL` makes that durable at checkpoints; a busy file is waited for
(30 s) rather than failed at once. Every connection reads through a memory map (MMAP_BYTES).
Connections are per thread (sqlite3's rule), autocommit: callers open their own transactions.
`SqliteFile` is that shape for an adapter: a connection per thread, one lock that serialises its
writers, the schema created on first open.

Sized to the data: each file gets the page size that fits its rows (PAGE_SIZE for the records,
SMALL_PAGE_SIZE for the rest), the WAL is checkpointed every WAL_BYTES and cut back to that after
a checkpoint (it grew to 50-65 MB and stayed), and a new file is made with incremental
auto-vacuum, so `tidy()` (the local server's housekeeping, in a quiet moment) hands the pages of
deleted rows back to the file system and truncates the WAL. A file made before without
auto-vacuum is converted by `tidy()` with one VACUUM once a quarter of it is free pages.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import utc_now

BUSY_TIMEOUT_S = 30
# The records' file: a record is ~1.3 KB: in SQLite's default 4 KiB pages a fifth of the file was
# slack, and a bulk import spent its time splitting pages and writing them one system call each
# (1M records: 1,589 MB, ~14% more CPU than 64 KiB pages; docs/lab/benchmarks.md, "Import of a
# records file"). But each page a write touches is written whole, twice (WAL, then checkpoint): in
# 64 KiB pages one upload wrote ~960 KB (its record, its id's two indexes, the change log). 16 KiB
# pages keep the import (200k records: the same records/s, +4% CPU, +3.7% size against 64 KiB)
# and write ~350 KB an upload, kept image and thumbnail included. A file keeps the page size
# SQLite gave it when it wrote its first page.
PAGE_SIZE = 16 * 1024
# Every other file: SQLite's default. A thumbnail (~15-20 KB) is longer than a page, and SQLite
# fills its overflow pages whole and keeps the rest in the leaf, so a file of them is within a few
# percent of the JPEGs' own bytes; in 64 KiB pages, whole rows had to fit in the leaves, and
# thumbnails.sqlite3 held 27.5 KB a record for a 19.5 KB mean picture (1M records). A job's,
# scan's or product vector's row is a few hundred bytes: a 64 KiB page per small write was 16x
# the bytes written for nothing.
SMALL_PAGE_SIZE = 4 * 1024
# The WAL: checkpointed whenever it holds this much (SQLite's default, 1,000 pages, was 64 MB in
# 64 KiB pages), and truncated back to it after a checkpoint instead of keeping its largest size.
WAL_BYTES = 4 * 1024 * 1024
# `tidy` converts a file made without auto-vacuum (a VACUUM rewrites it whole) once this much of it
# is free pages: the rewrite then pays for itself.
CONVERT_WHEN_FREE = 0.25
TIDY_WAIT_S = 1.0  # what `tidy` waits for a busy file before leaving it for the next quiet moment
# Reads go through a memory map instead of a copy of each page: with 64 KiB pages the copies
# made a query's 32-record read 1.8x slower; mapped, it is as fast as with 4 KiB pages. Address
# space, not memory: the OS keeps what is used in its page cache either way. (SQLite caps it at
# its compile-time maximum, 2 GB in the usual builds; beyond, pages are read as before.)
MMAP_BYTES = 1 << 40


def connect(path: Path, *, page_size: int = PAGE_SIZE, busy_timeout_s: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    # Both take effect when the file's first page is written (tidy converts older files). On a file
    # that has pages, setting auto_vacuum would write its header: a write lock for every connection.
    conn.execute(f"PRAGMA page_size={page_size}")
    if int(conn.execute("PRAGMA page_count").fetchone()[0]) == 0:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL survives crashes
    conn.execute(f"PRAGMA busy_timeout={round(busy_timeout_s * 1000)}")
    actual = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.execute(f"PRAGMA wal_autocheckpoint={max(1, WAL_BYTES // actual)}")
    conn.execute(f"PRAGMA journal_size_limit={WAL_BYTES}")
    return conn


def tidy(conn: sqlite3.Connection) -> None:
    """Hand the free pages of deleted rows back to the file system and truncate the WAL: for a
    quiet moment (a conversion rewrites the whole file). It waits TIDY_WAIT_S at most for the
    file's other readers and writers (a truncating checkpoint holds new writers back while it
    waits): a busy file is tidied at the next quiet moment instead."""
    waits = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    conn.execute(f"PRAGMA busy_timeout={round(TIDY_WAIT_S * 1000)}")
    try:
        pages, free = (int(conn.execute(f"PRAGMA {name}").fetchone()[0]) for name in ("page_count", "freelist_count"))
        if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:  # INCREMENTAL
            if free:
                conn.executescript("PRAGMA incremental_vacuum;")  # run to its end: execute() frees one page
        elif free and free >= CONVERT_WHEN_FREE * pages:
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("VACUUM")  # takes the setting, and gives the free pages back
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # (1, ...) when busy: left for next time
    finally:
        conn.execute(f"PRAGMA busy_timeout={waits}")


class SqliteFile:
    """The base of an adapter over one SQLite file shared by threads (see module docstring)."""

    page_size = SMALL_PAGE_SIZE  # a new file's pages (the records' store takes PAGE_SIZE)
    busy_timeout_s: float = BUSY_TIMEOUT_S

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
            conn = self._local.conn = connect(self.path, page_size=self.page_size, busy_timeout_s=self.busy_timeout_s)
            self._prepare(conn)
        return conn

    def tidy(self) -> None:
        """`tidy` on this file, between its writers; a busy or failing file is the store's (503)."""
        with self._write_lock:
            try:
                tidy(self._conn())
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot tidy {self.path.name}: {exc}") from exc

    def _prepare(self, conn: sqlite3.Connection) -> None:
        """What a new connection needs besides the pragmas (SQL functions); nothing by default."""

    what = "the local store"  # named in a failure: "the local store failed: ..."

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the writers' lock; any SQLite failure is the store's
        (503, naming `what`), never a 500."""
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


class SqliteBookkeeping(SqliteFile):
    """A file of jobs (imports, scans): writes in IMMEDIATE transactions under the writers' lock,
    and any SQLite failure is the store's (503, naming `what`), never a 500."""

    def _query(self, sql: str, params: Sequence[object]) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.what} failed: {exc}") from exc

    def _set_status(
        self, table: str, key: tuple[str, str], columns: str, status: str, *, allowed_from: Sequence[str],
        starts: bool, ends: bool, keep: Mapping[str, object],
    ) -> tuple | None:  # fmt: skip
        """A job's status update (an import's, a scan's), one transaction: the row whose `key`
        (column, value) it is goes to `status` if its status is one of `allowed_from`; `updated_at`
        is now, `started_at` too the first time it `starts`, `finished_at` when it `ends`, and each
        column of `keep` takes its value unless that is None. The row (its `columns`) after, or None
        when its status was not one of them (or it is gone)."""
        now = utc_now()
        column, value = key
        kept = "".join(f", {name} = COALESCE(?, {name})" for name in keep)
        with self._transaction() as conn:
            cursor = conn.execute(
                f"""UPDATE {table} SET status = ?, updated_at = ?,
                        started_at = CASE WHEN ? AND started_at IS NULL THEN ? ELSE started_at END,
                        finished_at = CASE WHEN ? THEN ? ELSE finished_at END{kept}
                    WHERE {column} = ? AND status IN ({", ".join("?" * len(allowed_from))})""",
                (status, now, starts, now, ends, now, *keep.values(), value, *allowed_from),
            )
            if cursor.rowcount == 0:
                return None
            found: tuple = conn.execute(f"SELECT {columns} FROM {table} WHERE {column} = ?", (value,)).fetchone()
        return found
