"""CheckedPictures on SQLite: a check job's rows' pictures, in a file of the data dir
(`checked.sqlite3`), so that its later rows are judged against its earlier ones (core/jobs/import_runs.py,
`EarlierRows`).

A file of its own, as the jobs have theirs (sqlite_jobs.py): a check job writes one row here per
row it checks (its record as JSON, its thumbnail, a few KB) while it records outcomes there, and
neither waits for the other. Rows are kept while the job runs, so a resumed job judges its next
rows against the ones checked before the stop; the worker drops them when the job ends.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from dupcheck.adapters.sqlite_files import SqliteFile
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import Entry, HashRecord, HashValue

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checked_pictures (
    job_id    TEXT NOT NULL,
    row       INTEGER NOT NULL,
    hash      TEXT NOT NULL,
    record    TEXT NOT NULL,
    thumbnail BLOB NOT NULL,
    PRIMARY KEY (job_id, row)
) WITHOUT ROWID;
"""
FILE_NAME = "checked.sqlite3"
_READ_BATCH = 500  # rows per SELECT ... IN (...): under SQLite's parameter limit


class SqliteCheckedPictures(SqliteFile):
    what = "the check jobs' pictures"

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)

    def add(self, job_id: str, row: int, entry: Entry) -> None:
        record = entry.record
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO checked_pictures (job_id, row, hash, record, thumbnail) VALUES (?, ?, ?, ?, ?)",
                (job_id, row, record.hash.hex, json.dumps(record.to_dict()), entry.thumbnail),
            )

    def hashes(self, job_id: str) -> Iterator[tuple[int, HashValue]]:
        for row, hex_hash in self._read("SELECT row, hash FROM checked_pictures WHERE job_id = ? ORDER BY row",
                                        (job_id,)):  # fmt: skip
            yield int(row), HashValue.from_hex(hex_hash)

    def entries(self, job_id: str, rows: Sequence[int]) -> dict[int, Entry]:
        found: dict[int, Entry] = {}
        wanted = list(dict.fromkeys(rows))
        for start in range(0, len(wanted), _READ_BATCH):
            part = wanted[start : start + _READ_BATCH]
            sql = (f"SELECT row, record, thumbnail FROM checked_pictures WHERE job_id = ? "
                   f"AND row IN ({', '.join('?' * len(part))})")  # fmt: skip
            for row, record, thumbnail in self._read(sql, (job_id, *part)):
                found[int(row)] = Entry(HashRecord.from_dict(json.loads(record)), bytes(thumbnail))
        return found

    def forget_from(self, job_id: str, row: int) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM checked_pictures WHERE job_id = ? AND row >= ?", (job_id, row))

    def drop(self, job_id: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM checked_pictures WHERE job_id = ?", (job_id,))

    def _read(self, sql: str, params: Sequence[object]) -> list[tuple]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.what} failed: {exc}") from exc
