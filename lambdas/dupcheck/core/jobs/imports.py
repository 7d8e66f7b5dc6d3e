"""Bulk catalog imports: a job that loads a whole catalog, with progress, failures and cancel.

One shape, two runners. The API (`ImportService`) validates a request, keeps the catalog
(`CatalogFiles`: a file in the data dir, an S3 object), records the job (`ImportJobs`: SQLite,
DynamoDB) and starts it (`ImportStarter`). Locally a worker thread of the server runs the job
with the backfill engine (dupcheck_tools/local/imports.py); on AWS a dispatcher function reads
the catalog and sends its rows through SQS to a worker function (core/jobs/import_runs.py).

Every row ends in exactly one outcome, `done` (stored), `skipped` (already stored unchanged),
`failed` (with the backfill's failure codes) or `replaced` (a later row of the same catalog has
the same entity_id: that one is imported instead), and `ImportJobs.record` counts a row once
however often it is delivered: a retried SQS message or a job resumed after a crash cannot
count a row twice. A job is `done` when every row of its catalog has an outcome.

Which rows are replaced is known before any is imported: the first read of a kept catalog
(`survey`), which counts its rows, keeps a 16-byte digest of each row's id, so a million rows
cost 20 MB however long their ids, and sorts them once. Rows then run concurrently, so without
this whichever download finished last would win.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import uuid
import zlib
from array import array
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import IO, Any

import numpy as np

from dupcheck.core.catalog.kept_images import KeptImageLifecycle, kept_names_in
from dupcheck.core.errors import (
    CatalogTooLarge,
    Conflict,
    InvalidCatalog,
    InvalidRequest,
    NotFound,
    StoreUnavailable,
)
from dupcheck.core.ids import id_problem
from dupcheck.core.jobs.catalog_rows import CatalogError, csv_rows, jsonl_rows, sniff_format
from dupcheck.core.models import (
    DEFAULT_MARKS,
    DEFAULT_POLICY,
    IMPORT_RETENTION_DAYS,
    CatalogRow,
    Columns,
    ImportJob,
    ImportOptions,
    JobStatus,
    Marks,
    Mode,
    OnDuplicate,
    Position,
    RowResult,
    Source,
    UploadTarget,
    is_hex_id,
    moment_of,
    utc_now,
)
from dupcheck.core.ports import CatalogFiles, ImportJobs, ImportStarter, PresignedUploads, ResultFiles
from dupcheck.core.spreadsheet import csv_text

MAX_ITEMS = 1_000  # rows in one `{"items": [...]}` request; a larger catalog is a file
MAX_ROWS = 1_000_000  # rows in one import: a catalog export of a large shop; split anything larger
# A gzipped catalog may unpack to at most this much text: a 100 MB upload of repeated bytes must
# not become hours of parsing (a million rows of long URLs is ~1 GB).
MAX_TEXT_BYTES = 2 * 1024**3
UPLOAD_EXPIRES_S = 3600  # an `{"upload": true}` job waits this long for its catalog
RETENTION_DAYS = IMPORT_RETENTION_DAYS  # core/models.py: ImportJob.expires
MAX_PAGE = 1_000  # failures per page (and rows of a results CSV read at a time)
DEFAULT_PAGE = 100
_SNIFF_BYTES = 64 * 1024
# The jobs' values (ImportJob, RowResult, ...) are core/models.py's, their ports core/ports.py's.

ACTIVE = frozenset({JobStatus.AWAITING_UPLOAD, JobStatus.QUEUED, JobStatus.RUNNING})
STARTABLE = frozenset({JobStatus.AWAITING_UPLOAD, JobStatus.QUEUED})
FINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED})
DUPLICATE_CODE = "duplicate"  # on_duplicate=skip: left out of the catalog (its outcome is skipped)


class RowVerdict(StrEnum):
    """A checked row's answer (a check job's rows, and an import's duplicates)."""

    DUPLICATE = "duplicate"  # the catalog (or an earlier row of the file) has its picture
    SIMILAR = "similar"  # the best match is similar, not the same picture
    NEW = "new"  # nothing alike in the catalog


RESULT_COLUMNS = ("row", "entity_id", "image_url", "outcome", "verdict", "duplicate_of", "duplicate_of_row",
                  "match_entity_id", "match_sku", "match_image_url", "match_percent", "match_verdict", "edits",
                  "code", "message")  # fmt: skip


def result_line(result: RowResult) -> list[str | int | float]:
    """A checked row as a line of the results CSV (RESULT_COLUMNS)."""
    match = result.match or {}
    return [result.row, result.entity_id, result.image_url, result.outcome.value, result.verdict,
            result.duplicate_of, result.duplicate_row or "", match.get("entity_id", ""), match.get("sku", ""),
            match.get("image_url", ""), match.get("match_percent", ""), match.get("verdict", ""),
            match.get("edit_summary") or "", result.code, result.message]  # fmt: skip


# -- use cases -----------------------------------------------------------------------------------


@dataclass
class ImportService:
    jobs: ImportJobs
    catalogs: CatalogFiles
    starter: ImportStarter
    max_catalog_bytes: int
    clock: Callable[[], str] = utc_now
    on_duplicate: OnDuplicate = DEFAULT_POLICY  # a job's policy when its request names none (the settings')
    marks: Marks = DEFAULT_MARKS  # what a mark on the product means when its request names none (the settings')
    # The kept images a job's catalog names are held from the moment it is kept until the job ends
    # (the local worker lets them go; housekeeping, those of jobs that ended without a word).
    pictures: KeptImageLifecycle | None = None
    result_files: ResultFiles | None = None  # where results CSVs are written for download (AWS); None: streamed

    def submit_catalog(self, data: bytes, options: ImportOptions) -> ImportJob:
        """A catalog sent in the request: checked (its columns, at least one row), kept, started."""
        check_catalog(data, options, self.max_catalog_bytes)
        job = self._create(Source.UPLOAD, JobStatus.QUEUED, options)
        return self._keep_and_start(job, data)

    def submit_items(self, items: Sequence[Mapping[str, str]], options: ImportOptions) -> ImportJob:
        """Rows sent as JSON: kept as a JSON Lines catalog, so they run as any catalog does."""
        if not items:
            raise InvalidRequest("items is empty: send at least one item")
        if len(items) > MAX_ITEMS:
            raise InvalidRequest(f"at most {MAX_ITEMS} items per request; upload a larger catalog as a file")
        lines = (json.dumps({"entity_id": i.get("entity_id", ""), "sku": i.get("sku", ""),
                             "image_url": i.get("image_url", "")}) for i in items)  # fmt: skip
        data = ("\n".join(lines) + "\n").encode()
        job = self._create(Source.ITEMS, JobStatus.QUEUED, replace(options, columns=Columns()))
        return self._keep_and_start(job, data)

    def submit_url(self, catalog_url: str, options: ImportOptions) -> ImportJob:
        """A catalog the service downloads itself (through the safe fetcher, when the job runs)."""
        job = self._create(Source.CATALOG_URL, JobStatus.QUEUED, options, catalog_url=catalog_url)
        self.starter.start(job)
        return job

    def submit_for_upload(self, options: ImportOptions) -> ImportJob:
        """A job whose catalog is uploaded afterwards (`upload_target`), then it starts."""
        return self._create(Source.UPLOAD, JobStatus.AWAITING_UPLOAD, options)

    def upload_target(self, job: ImportJob) -> UploadTarget | None:
        """Storage's own upload form for the job's catalog, or None where there is none (the
        client then PUTs it to /imports/{job_id}/catalog)."""
        if isinstance(self.catalogs, PresignedUploads):
            return self.catalogs.upload_target(job.job_id, self.max_catalog_bytes, UPLOAD_EXPIRES_S)
        return None

    def receive_catalog(self, job_id: str, data: bytes) -> ImportJob:
        """The catalog of a job that was waiting for it."""
        job = self.get(job_id)
        if job.status is not JobStatus.AWAITING_UPLOAD:
            raise Conflict(f"import {job_id} is {job.status}: its catalog was already given")
        check_catalog(data, job.options, self.max_catalog_bytes)
        self.catalogs.put(job_id, data)
        self.hold_pictures(job_id, data)
        started = self.jobs.transition(job_id, JobStatus.QUEUED, allowed_from={JobStatus.AWAITING_UPLOAD})
        if started is None:  # cancelled (or expired) while the file was on its way
            raise Conflict(f"import {job_id} is {self.get(job_id).status}: its catalog is not used")
        self.starter.start(started)
        return started

    def get(self, job_id: str) -> ImportJob:
        job = self.jobs.get(check_job_id(job_id))
        if job is None:
            raise NotFound(f"no import with job_id {job_id!r}")
        return self._expired(job)

    def recent(self, limit: int, after: Position | None) -> tuple[list[ImportJob], Position | None]:
        jobs, position = self.jobs.recent(limit, after)
        return [self._expired(job) for job in jobs], position

    def failures(self, job_id: str, limit: int | None, after_row: int) -> tuple[list[RowResult], int | None]:
        limit = DEFAULT_PAGE if limit is None else limit
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        self.get(job_id)
        return self.jobs.failures(job_id, limit, after_row)

    def results(
        self, job_id: str, limit: int | None, after_row: int, *, duplicates_only: bool = False
    ) -> tuple[list[RowResult], int | None]:
        """A page of the job's results: a check job's every row (those it could not check too: failed or
        replaced, without a verdict), an import's checked rows (its duplicates)."""
        limit = DEFAULT_PAGE if limit is None else limit
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        job = self.get(job_id)
        checked = self.jobs.results(job_id, limit, after_row, duplicates_only=duplicates_only)
        if job.options.mode is not Mode.CHECK or duplicates_only:
            return checked
        return _merged(checked, self.jobs.failures(job_id, limit, after_row), limit)

    def results_csv(
        self, job_id: str, *, duplicates_only: bool = False, after_row: int = 0
    ) -> Iterator[tuple[int, bytes]]:
        """The results as CSV (RESULT_COLUMNS; the header first when `after_row` is 0), read a page at a
        time and given a page at a time (each piece with the last row it holds): never held whole. A
        cell a spreadsheet would evaluate is written as text (core/spreadsheet.py)."""
        after: int | None = after_row
        if after_row == 0:
            yield 0, csv_text([RESULT_COLUMNS]).encode()
        while after is not None:
            found, after = self.results(job_id, MAX_PAGE, after, duplicates_only=duplicates_only)
            if found:
                yield found[-1].row, csv_text(result_line(r) for r in found).encode()

    def results_file(self, job_id: str, *, duplicates_only: bool = False, until: float) -> str | None:
        """A download link of the finished job's results CSV, written to `result_files` (or written on
        from where an earlier call stopped) until time.monotonic() reaches `until`; None when it is not
        whole by then. A job still active has no such file yet (Conflict): its rows are still coming."""
        files = self.result_files
        if files is None:
            raise StoreUnavailable("results files are not set up on this server")
        job = self.get(job_id)
        if job.status in ACTIVE:
            raise Conflict(f"import {job_id} is {job.status}: its CSV is written once it has finished; until then "
                           "page its results as JSON (cursor)")  # fmt: skip
        # Named by the job's last change and its rows counted: a row recorded after the job ended (a
        # batch that was running when it was cancelled) makes a new file, never a stale one, even
        # within the millisecond its clock reads.
        kind = "duplicates" if duplicates_only else "results"
        name = f"{job_id}/{kind}-{''.join(c for c in job.updated_at if c.isdigit())}-{job.processed}.csv"
        return files.link(name) or files.write(
            name, lambda after: self.results_csv(job_id, duplicates_only=duplicates_only, after_row=after), until=until
        )

    def cancel(self, job_id: str) -> ImportJob:
        """Stop a job: queued rows are not imported; rows already stored stay stored."""
        job = self.get(job_id)
        cancelled = self.jobs.transition(job_id, JobStatus.CANCELLED, allowed_from=ACTIVE)
        if cancelled is None:
            raise Conflict(f"import {job_id} is {self.get(job_id).status}: there is nothing to cancel")
        if job.status is not JobStatus.AWAITING_UPLOAD:
            self.starter.start(cancelled)  # the local worker stops at once rather than at its next check
        return cancelled

    def hold_pictures(self, job_id: str, catalog: bytes) -> None:
        """Hold the kept images the catalog names for the job (KeptImageLifecycle.pin): no sweep or
        delete takes them while it waits or runs."""
        if self.pictures is not None:
            self.pictures.pin_names(kept_names_in(catalog), job_holder(job_id))

    # -- pieces ------------------------------------------------------------------------------

    def _create(self, source: Source, status: JobStatus, options: ImportOptions, **fields: Any) -> ImportJob:
        now = self.clock()
        job = ImportJob(job_id=uuid.uuid4().hex, status=status, source=source, created_at=now, updated_at=now,
                        options=options, **fields)  # fmt: skip
        self.jobs.create(job)
        return job

    def _keep_and_start(self, job: ImportJob, data: bytes) -> ImportJob:
        try:
            self.catalogs.put(job.job_id, data)
            self.hold_pictures(job.job_id, data)
        except Exception:
            self.jobs.transition(job.job_id, JobStatus.FAILED, allowed_from=ACTIVE,
                                 error="the catalog could not be kept; send it again")  # fmt: skip
            raise
        self.starter.start(job)
        return job

    def _expired(self, job: ImportJob) -> ImportJob:
        """An upload that never came fails the job, when it is next looked at."""
        if job.status is not JobStatus.AWAITING_UPLOAD:
            return job
        if datetime.now(UTC) - moment_of(job.created_at) < timedelta(seconds=UPLOAD_EXPIRES_S):
            return job
        failed = self.jobs.transition(
            job.job_id, JobStatus.FAILED, allowed_from={JobStatus.AWAITING_UPLOAD},
            error=f"no catalog was uploaded within {UPLOAD_EXPIRES_S // 60} minutes",
        )  # fmt: skip
        return failed or self.jobs.get(job.job_id) or job


def job_holder(job_id: str) -> str:
    """The name an import job holds kept images under (KeptImageLifecycle.pin)."""
    return f"{JOB_HOLDER}{job_id}"


JOB_HOLDER = "job:"


def _merged(
    first: tuple[list[RowResult], int | None], second: tuple[list[RowResult], int | None], limit: int
) -> tuple[list[RowResult], int | None]:
    """Two pages of rows after the same row, as one page of at most `limit` in row order (a row in
    both: the first's) and the row to go on after. Each holds every row of its kind up to its last,
    so the merged page's rows are every row of either kind up to its own last."""
    by_row = {r.row: r for r in second[0]} | {r.row: r for r in first[0]}
    rows = [by_row[row] for row in sorted(by_row)]
    page = rows[:limit]
    more = len(rows) > limit or first[1] is not None or second[1] is not None
    return page, page[-1].row if more and page else None


def check_job_id(job_id: str) -> str:
    if not is_hex_id(job_id):
        raise NotFound(f"no import with job_id {job_id!r}")
    return job_id


# -- reading a kept catalog -------------------------------------------------------------------


def catalog_rows(raw: IO[bytes], options: ImportOptions, *, name: str = "the catalog") -> Generator[CatalogRow]:
    """The rows of a kept catalog: CSV or JSON Lines, UTF-8, optionally gzipped (by its magic
    bytes). `raw` must be seekable. A catalog that cannot be read raises InvalidCatalog (when
    iteration reaches the problem), one over MAX_TEXT_BYTES of text CatalogTooLarge."""
    gzipped = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw  # type: ignore[assignment]
    buffered = io.BufferedReader(_Capped(stream, MAX_TEXT_BYTES), buffer_size=_SNIFF_BYTES)
    try:
        head = buffered.peek(_SNIFF_BYTES)[:_SNIFF_BYTES].decode("utf-8", "ignore")
        text = io.TextIOWrapper(buffered, encoding="utf-8-sig", newline="")
        columns, base = options.columns, options.image_base_url
        if sniff_format(head) == "jsonl":
            yield from jsonl_rows(text, columns, base, name=name)
        else:
            yield from csv_rows(text, columns, base, name=name, id_hint="name it with id_column",
                                url_hint="name it with url_column")  # fmt: skip
    except CatalogError as exc:
        raise InvalidCatalog(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise InvalidCatalog(f"{name} is not UTF-8 text: save it as UTF-8 ({exc.reason})") from exc
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InvalidCatalog(f"{name} is not a complete gzip file: {exc}") from exc


def check_catalog(data: bytes, options: ImportOptions, max_bytes: int) -> None:
    """A catalog in a request: within the byte limit, readable, with at least one row (the rest
    is read when the job runs, and every bad row is a failure of its own)."""
    if not data:
        raise InvalidCatalog("the catalog is empty")
    if len(data) > max_bytes:
        raise CatalogTooLarge(f"the catalog is {len(data)} bytes; the limit is {max_bytes} bytes (upload: true "
                              "takes the same limit; split a larger catalog)")  # fmt: skip
    with contextlib.closing(catalog_rows(io.BytesIO(data), options)) as rows:
        if next(rows, None) is None:
            raise InvalidCatalog("the catalog has no rows")


@dataclass(frozen=True)
class Survey:
    """What the first read of a kept catalog found: its rows, and for each row number the later
    row that replaces it (0: none)."""

    rows: int
    later: np.ndarray  # int32, indexed by row number

    def replaced(self, row: CatalogRow) -> RowResult | None:
        """The row's outcome when a later row of the same id replaces it, else None."""
        later = int(self.later[row.row]) if row.row < len(self.later) else 0
        return RowResult.replaced_by(row, later) if later else None

    def settled(self, row: CatalogRow) -> RowResult | None:
        """The outcome the catalog itself gives a row (replaced by a later one; failed, when the
        row cannot be imported), or None: the row is to be imported."""
        if replaced := self.replaced(row):
            return replaced
        return RowResult.failure(row, *row.error) if row.error is not None else None


def survey(open_catalog: Callable[[], ContextManager[IO[bytes]]], options: ImportOptions) -> Survey:
    """Count a kept catalog's rows (so progress has a total, and an oversize catalog fails before
    any row is imported) and find the rows a later one with the same entity_id replaces. Only
    rows with an id that can be stored take part: a row without one replaces nothing."""
    digests = bytearray()
    numbers = array("i")
    count = 0
    with open_catalog() as raw:
        for count, row in enumerate(catalog_rows(raw, options), start=1):
            if count > MAX_ROWS:
                raise CatalogTooLarge(f"the catalog has more than {MAX_ROWS} rows; split it into several imports")
            if id_problem(row.entity_id) is None:
                digests += hashlib.blake2b(row.entity_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                numbers.append(row.row)
    return Survey(count, _later_rows(np.frombuffer(bytes(digests), dtype=np.uint64).reshape(-1, 2),
                                     np.frombuffer(numbers, dtype=np.int32), count))  # fmt: skip


def _later_rows(keys: np.ndarray, rows: np.ndarray, count: int) -> np.ndarray:
    """For each row number, the last row with the same key when that is a later one, else 0."""
    later = np.zeros(count + 1, dtype=np.int32)
    if len(rows) < 2:
        return later
    order = np.lexsort((rows, keys[:, 1], keys[:, 0]))  # by id, then by row
    keys, rows = keys[order], rows[order]
    starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
    last = np.r_[starts[1:], len(rows)] - 1  # each group's last position: its winning row
    winner = rows[np.repeat(last, np.diff(np.r_[starts, len(rows)]))]
    replaced = winner != rows
    later[rows[replaced]] = winner[replaced]
    return later


class _Capped(io.RawIOBase):
    """A read-only stream that refuses to give more than `limit` bytes."""

    def __init__(self, inner: IO[bytes], limit: int) -> None:
        self._inner, self._left = inner, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        if len(data) > self._left:
            raise CatalogTooLarge(f"the catalog unpacks to more than {MAX_TEXT_BYTES} bytes")
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


def expires_epoch(job: ImportJob) -> int:
    """When the job and everything it kept may be deleted, in epoch seconds (DynamoDB's TTL)."""
    return int(job.expires().timestamp())
