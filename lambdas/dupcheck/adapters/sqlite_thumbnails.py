"""ThumbnailStore on SQLite: the embedded mode's thumbnails, in their own file beside the records.

A file of its own (`thumbnails.sqlite3` in the data dir) rather than a table in the records'
file: the records file stays small enough to load the index from quickly, and the thumbnails
(~2-5 KB each, ten times a record) are read a few at a time, by key. WAL and one connection per
thread, as every embedded file (adapters/sqlite_files.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from dupcheck.adapters.sqlite_files import SqliteFile
from dupcheck.core.errors import StoreUnavailable

_SCHEMA = "CREATE TABLE IF NOT EXISTS thumbnails (entity_id TEXT PRIMARY KEY, data BLOB NOT NULL);"
_BATCH = 900  # bound parameters per statement, under SQLite's default limit of 999


class SqliteThumbnails(SqliteFile):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)

    def put_many(self, thumbnails: Mapping[str, bytes]) -> int:
        rows = list(thumbnails.items())
        if not rows:
            return 0
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO thumbnails (entity_id, data) VALUES (?, ?)", rows)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreUnavailable(f"local thumbnail store failed: {exc}") from exc
        return len(rows)

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, bytes]:
        return dict(self._select("entity_id, data", entity_ids))

    def missing(self, entity_ids: Sequence[str]) -> set[str]:
        return set(entity_ids) - {entity_id for (entity_id,) in self._select("entity_id", entity_ids)}

    def delete(self, entity_id: str) -> None:
        with self._write_lock:
            try:
                self._conn().execute("DELETE FROM thumbnails WHERE entity_id = ?", (entity_id,))
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"local thumbnail store failed: {exc}") from exc

    def _select(self, columns: str, entity_ids: Sequence[str]) -> list[tuple]:
        ids = list(dict.fromkeys(entity_ids))
        rows: list[tuple] = []
        try:
            for start in range(0, len(ids), _BATCH):
                chunk = ids[start : start + _BATCH]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {columns} FROM thumbnails WHERE entity_id IN ({marks})"
                rows += self._conn().execute(sql, chunk).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"local thumbnail store failed: {exc}") from exc
        return rows
