"""How the embedded mode opens its SQLite files (records, import jobs): one way, in one place.

WAL journaling lets many server threads read while one writes, and a crash loses nothing the
WAL holds; `synchronous=NORMAL` makes that durable at checkpoints; a busy file is waited for
(30 s) rather than failed at once. Connections are per thread (sqlite3's rule), autocommit:
callers open their own transactions. `SqliteFile` is that shape for an adapter: a connection
per thread, one lock that serialises its writers, the schema created on first open.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

BUSY_TIMEOUT_S = 30


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
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
