"""ScanJobs on SQLite: the embedded mode's duplicate scans, in `scans.sqlite3` under the data dir
(a file of its own, as import jobs have: a scan's progress is written every second while it
runs, and must not wait for, nor delay, the records' writers).

`create` checks for an active scan and inserts in one IMMEDIATE transaction: of two requests at
once, the second sees the first's scan.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from dupcheck.adapters.sqlite_files import SqliteBookkeeping
from dupcheck.core.jobs.scans import ACTIVE, FINAL
from dupcheck.core.models import Marks, ScanJob, ScanStatus, utc_now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    scan_id     TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    phase       TEXT,
    done        INTEGER NOT NULL DEFAULT 0,
    total       INTEGER,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT,
    result      TEXT,
    marks       TEXT
);
CREATE INDEX IF NOT EXISTS scans_recent ON scans (created_at, scan_id);
"""
_COLUMNS = "scan_id, status, phase, done, total, created_at, updated_at, started_at, finished_at, error, result, marks"


class SqliteScanJobs(SqliteBookkeeping):
    what = "the local scan store"

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)
        with self._transaction() as conn:  # a file from before scans kept their `marks`: its scans ran as photo
            if "marks" not in {row[1] for row in conn.execute("PRAGMA table_info(scans)")}:
                conn.execute("ALTER TABLE scans ADD COLUMN marks TEXT")

    # -- ScanJobs port -----------------------------------------------------------------------

    def create(self, job: ScanJob) -> ScanJob:
        active = [s.value for s in ACTIVE]
        with self._transaction() as conn:
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM scans WHERE status IN (?, ?) ORDER BY created_at LIMIT 1", active
            ).fetchone()
            if found is not None:
                return _job(found)
            conn.execute(
                f"INSERT INTO scans ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                (job.scan_id, job.status.value, job.phase, job.done, job.total, job.created_at, job.updated_at,
                 job.started_at, job.finished_at, job.error, _text(job.result), job.marks.value),
            )  # fmt: skip
        return job

    def get(self, scan_id: str) -> ScanJob | None:
        rows = self._query(f"SELECT {_COLUMNS} FROM scans WHERE scan_id = ?", (scan_id,))
        return _job(rows[0]) if rows else None

    def recent(self, limit: int) -> list[ScanJob]:
        # Two scans can start within a millisecond (a stalled one giving way): the later insert
        # (a larger rowid) comes first, not the larger random id.
        rows = self._query(f"SELECT {_COLUMNS} FROM scans ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))
        return [_job(row) for row in rows]

    def transition(
        self, scan_id: str, to: ScanStatus, *, allowed_from: Collection[ScanStatus], error: str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> ScanJob | None:  # fmt: skip
        found = self._set_status(
            "scans", ("scan_id", scan_id), _COLUMNS, to.value, allowed_from=[s.value for s in allowed_from],
            starts=to is ScanStatus.RUNNING, ends=to in FINAL, keep={"error": error, "result": _text(result)},
        )  # fmt: skip
        return None if found is None else _job(found)

    def progress(self, scan_id: str, phase: str, done: int, total: int | None) -> bool:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE scans SET phase = ?, done = ?, total = ?, updated_at = ? WHERE scan_id = ? AND status = ?",
                (phase, done, total, utc_now(), scan_id, ScanStatus.RUNNING.value),
            )
            return cursor.rowcount > 0

    # -- for the local worker ----------------------------------------------------------------

    def runnable(self) -> list[ScanJob]:
        """Scans to run, oldest first: one a stopped server left running, then the queued."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM scans WHERE status IN (?, ?) ORDER BY status = ? DESC, created_at",
            (ScanStatus.RUNNING.value, ScanStatus.QUEUED.value, ScanStatus.RUNNING.value),
        )
        return [_job(row) for row in rows]


def _text(result: Mapping[str, Any] | None) -> str | None:
    return json.dumps(dict(result)) if result is not None else None


def _job(row: Sequence) -> ScanJob:
    scan_id, status, phase, done, total, created_at, updated_at, started_at, finished_at, error, result, marks = row
    return ScanJob(
        scan_id=scan_id, status=ScanStatus(status), phase=phase, done=done, total=total, created_at=created_at,
        updated_at=updated_at, started_at=started_at, finished_at=finished_at, error=error,
        result=json.loads(result) if result else None, marks=Marks(marks or Marks.PHOTO),
    )  # fmt: skip
