"""ImportJobs on SQLite: the embedded mode's import jobs, in a file of their own under the data dir.

Why a second file (`imports.sqlite3`) rather than tables next to the records: a job writes its
progress several times a second while it runs, and SQLite has one writer per file. In a file of
its own that bookkeeping never waits for, nor delays, the records the job is writing, nor the
writes of the API; and the records file keeps its one purpose.

Each row's outcome is a row of `import_rows`, keyed by (job, row): recording an outcome is an
INSERT OR IGNORE, and the job's counters grow by what was actually inserted, in the same
transaction. So a row is counted once however often it is reported, and a job resumed after a
crash knows exactly which rows are finished. Only failed, replaced and checked rows (a check job's,
an import's duplicates) keep their details (id, URL, code, message; the check's as JSON): what
GET /imports/{id}/failures and /results list; the others are a few bytes each.

`import_pictures` holds each picture's first row (by its hash), so two rows of one file with one
picture agree on which came first (`claim_picture`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dupcheck.adapters.sqlite_files import SqliteBookkeeping
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.jobs.imports import RETENTION_DAYS
from dupcheck.core.models import ImportJob, ImportOptions, JobStatus, Outcome, Position, RowResult, Source, utc_now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS import_jobs (
    job_id      TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    source      TEXT NOT NULL,
    options     TEXT NOT NULL,
    catalog_url TEXT,
    rows        INTEGER,
    done        INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    replaced    INTEGER NOT NULL DEFAULT 0,
    after_cancel INTEGER NOT NULL DEFAULT 0,
    duplicates  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS import_jobs_recent ON import_jobs (created_at, job_id);
CREATE TABLE IF NOT EXISTS import_rows (
    job_id    TEXT NOT NULL,
    row       INTEGER NOT NULL,
    outcome   TEXT NOT NULL,
    entity_id TEXT,
    image_url TEXT,
    code      TEXT,
    message   TEXT,
    checked   TEXT,
    duplicate INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, row)
) WITHOUT ROWID;
DROP INDEX IF EXISTS import_rows_failed;
CREATE INDEX IF NOT EXISTS import_rows_listed ON import_rows (job_id, row) WHERE outcome IN ('failed', 'replaced');
CREATE INDEX IF NOT EXISTS import_rows_checked ON import_rows (job_id, duplicate, row) WHERE checked IS NOT NULL;
CREATE TABLE IF NOT EXISTS import_pictures (
    job_id    TEXT NOT NULL,
    picture   TEXT NOT NULL,
    row       INTEGER NOT NULL,
    entity_id TEXT NOT NULL,
    PRIMARY KEY (job_id, picture)
) WITHOUT ROWID;
"""
_JOB_COLUMNS = ("job_id, status, source, options, catalog_url, rows, done, skipped, failed, replaced, after_cancel, "
                "duplicates, created_at, updated_at, started_at, finished_at, error")  # fmt: skip
_ROW_COLUMNS = "row, outcome, entity_id, image_url, code, message, checked"
_FINAL = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class SqliteImportJobs(SqliteBookkeeping):
    what = "the local import store"

    def __init__(self, path: Path | str) -> None:
        _add_columns(Path(path))
        super().__init__(path, _SCHEMA)

    # -- ImportJobs port ---------------------------------------------------------------------

    def create(self, job: ImportJob) -> None:
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO import_jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                (job.job_id, job.status.value, job.source.value, json.dumps(job.options.to_dict()), job.catalog_url,
                 job.rows, job.done, job.skipped, job.failed, job.replaced, job.after_cancel or 0, job.duplicates,
                 job.created_at,
                 job.updated_at,
                 job.started_at,
                 job.finished_at, job.error),
            )  # fmt: skip

    def get(self, job_id: str) -> ImportJob | None:
        rows = self._query(f"SELECT {_JOB_COLUMNS} FROM import_jobs WHERE job_id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def recent(self, limit: int, after: Position | None = None) -> tuple[list[ImportJob], Position | None]:
        where, params = "", []
        if after is not None:
            where, params = "WHERE (created_at, job_id) < (?, ?)", list(after)
        rows = self._query(
            f"SELECT {_JOB_COLUMNS} FROM import_jobs {where} ORDER BY created_at DESC, job_id DESC LIMIT ?",
            [*params, limit + 1],
        )
        jobs = [_job(row) for row in rows[:limit]]
        more = len(rows) > limit
        return jobs, (jobs[-1].created_at, jobs[-1].job_id) if more else None

    def transition(
        self, job_id: str, to: JobStatus, *, allowed_from: Collection[JobStatus],
        rows: int | None = None, error: str | None = None,
    ) -> ImportJob | None:  # fmt: skip
        found = self._set_status(
            "import_jobs", ("job_id", job_id), _JOB_COLUMNS, to.value, allowed_from=[s.value for s in allowed_from],
            starts=to is JobStatus.RUNNING, ends=to in _FINAL, keep={"rows": rows, "error": error},
        )  # fmt: skip
        return None if found is None else _job(found)

    def record(self, job_id: str, results: Sequence[RowResult], *, after_cancel: int = 0) -> ImportJob:
        """ImportJobs.record; `after_cancel` of the rows are stored ones whose write ended after the
        job's cancel was answered (ImportJob.after_cancel)."""
        with self._transaction() as conn:
            added = {outcome: 0 for outcome in Outcome}
            duplicates = 0
            for result in results:
                detail = result.detailed
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO import_rows (job_id, row, outcome, entity_id, image_url, code, message, "
                    "checked, duplicate) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, result.row, result.outcome.value, *(
                        (result.entity_id, result.image_url, result.code, result.message) if detail else (None,) * 4
                    ), json.dumps(result.detail()) if result.verdict else None, int(bool(result.duplicate_of))),
                )  # fmt: skip
                added[result.outcome] += cursor.rowcount
                duplicates += cursor.rowcount if result.duplicate_of else 0
            conn.execute(
                "UPDATE import_jobs SET done = done + ?, skipped = skipped + ?, failed = failed + ?, "
                "replaced = replaced + ?, after_cancel = after_cancel + ?, duplicates = duplicates + ?, "
                "updated_at = ? WHERE job_id = ?",
                (added[Outcome.DONE], added[Outcome.SKIPPED], added[Outcome.FAILED], added[Outcome.REPLACED],
                 min(after_cancel, added[Outcome.DONE]), duplicates, utc_now(), job_id),
            )  # fmt: skip
            found = conn.execute(f"SELECT {_JOB_COLUMNS} FROM import_jobs WHERE job_id = ?", (job_id,)).fetchone()
        if found is None:
            raise StoreUnavailable(f"import {job_id} vanished while its rows were recorded")
        return _job(found)

    def failures(self, job_id: str, limit: int, after_row: int = 0) -> tuple[list[RowResult], int | None]:
        rows = self._query(
            f"SELECT {_ROW_COLUMNS} FROM import_rows "
            "WHERE job_id = ? AND outcome IN ('failed', 'replaced') AND row > ? ORDER BY row LIMIT ?",
            (job_id, after_row, limit + 1),
        )
        return _page([_row(found) for found in rows], limit)

    def results(
        self, job_id: str, limit: int, after_row: int = 0, *, duplicates_only: bool = False
    ) -> tuple[list[RowResult], int | None]:
        rows = self._query(
            f"SELECT {_ROW_COLUMNS} FROM import_rows WHERE job_id = ? AND checked IS NOT NULL AND duplicate >= ? "
            "AND row > ? ORDER BY row LIMIT ?",
            (job_id, int(duplicates_only), after_row, limit + 1),
        )
        return _page([_row(found) for found in rows], limit)

    def claim_picture(self, job_id: str, picture: str, row: int, entity_id: str) -> tuple[int, str]:
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO import_pictures (job_id, picture, row, entity_id) VALUES (?, ?, ?, ?)",
                         (job_id, picture, row, entity_id))  # fmt: skip
            first = conn.execute("SELECT row, entity_id FROM import_pictures WHERE job_id = ? AND picture = ?",
                                 (job_id, picture)).fetchone()  # fmt: skip
        return int(first[0]), str(first[1])

    # -- for the local worker ----------------------------------------------------------------

    def runnable(self) -> list[ImportJob]:
        """Jobs to run, oldest first: those a stopped server left running, then the queued."""
        rows = self._query(
            f"SELECT {_JOB_COLUMNS} FROM import_jobs WHERE status IN (?, ?) "
            "ORDER BY status = ? DESC, created_at, job_id",
            (JobStatus.RUNNING.value, JobStatus.QUEUED.value, JobStatus.RUNNING.value),
        )
        return [_job(row) for row in rows]

    def finished_rows(self, job_id: str, rows: int) -> bytearray:
        """One byte per row of the catalog (index = row number), 1 where the row has its outcome:
        what a resumed job must not import again (1 MB for a million rows)."""
        finished = bytearray(rows + 1)
        try:
            cursor = self._conn().execute("SELECT row FROM import_rows WHERE job_id = ?", (job_id,))
            while chunk := cursor.fetchmany(10_000):
                for (row,) in chunk:
                    if row <= rows:
                        finished[row] = 1
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the local import store failed: {exc}") from exc
        return finished

    def prune(self, now: datetime | None = None) -> list[str]:
        """Forget finished jobs older than RETENTION_DAYS (and their rows); their ids."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=RETENTION_DAYS)).isoformat().replace("+00:00", "Z")
        final = [s.value for s in _FINAL]
        with self._transaction() as conn:
            found = conn.execute(
                "SELECT job_id FROM import_jobs WHERE created_at < ? AND status IN (?, ?, ?)", (cutoff, *final)
            )
            old = [job_id for (job_id,) in found]
            for job_id in old:
                conn.execute("DELETE FROM import_rows WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM import_pictures WHERE job_id = ?", (job_id,))
                conn.execute("DELETE FROM import_jobs WHERE job_id = ?", (job_id,))
        return old


def _row(found: Sequence) -> RowResult:
    row, outcome, entity_id, image_url, code, message, checked = found
    result = RowResult(row, Outcome(outcome), entity_id or "", image_url or "", code or "", message or "")
    return result.with_detail(json.loads(checked) if checked else None)


def _page(found: list[RowResult], limit: int) -> tuple[list[RowResult], int | None]:
    return found[:limit], found[limit - 1].row if len(found) > limit else None


def _job(row: Sequence) -> ImportJob:
    (job_id, status, source, options, catalog_url, rows, done, skipped, failed, replaced, after_cancel, duplicates,
     created_at, updated_at, started_at, finished_at, error) = row  # fmt: skip
    return ImportJob(
        job_id=job_id, status=JobStatus(status), source=Source(source),
        options=ImportOptions.from_dict(json.loads(options)),
        catalog_url=catalog_url, rows=rows, done=done, skipped=skipped, failed=failed, replaced=replaced,
        after_cancel=after_cancel, duplicates=duplicates, created_at=created_at,
        updated_at=updated_at, started_at=started_at, finished_at=finished_at, error=error,
    )  # fmt: skip


# Columns added since the first version of the file: (table, column, its definition).
_ADDED_COLUMNS = (
    ("import_jobs", "replaced", "INTEGER NOT NULL DEFAULT 0"),
    ("import_jobs", "after_cancel", "INTEGER NOT NULL DEFAULT 0"),
    ("import_jobs", "duplicates", "INTEGER NOT NULL DEFAULT 0"),
    ("import_rows", "checked", "TEXT"),
    ("import_rows", "duplicate", "INTEGER NOT NULL DEFAULT 0"),
)


def _add_columns(path: Path) -> None:
    """A data dir from an earlier version: its tables gain the columns added since (0 or NULL for
    what they hold)."""
    if not path.exists():
        return
    conn = sqlite3.connect(path)
    try:
        for table, column, definition in _ADDED_COLUMNS:
            columns = [name for _, name, *_ in conn.execute(f"PRAGMA table_info({table})")]
            if columns and column not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        conn.commit()
    finally:
        conn.close()
