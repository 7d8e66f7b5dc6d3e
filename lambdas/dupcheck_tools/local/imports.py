"""The local server's import worker: one thread that runs import jobs with the backfill engine.

Jobs run one at a time, oldest first, inside the server process, with bounded concurrency
(DUPCHECK_IMPORT_WORKERS downloads at once, DUPCHECK_IMPORT_HASH_WORKERS hashing processes: one
by default, at nice +10 (DUPCHECK_IMPORT_HASH_NICENESS), so `find_similar` gets the CPU first;
docs/lab/benchmarks.md measures it).
Records are written to the server's own store; its index follows them within half a second
(sync.py), as it follows any other writer.

Progress is kept in the import store: every row's outcome is recorded (a few times a second, in
one transaction with the job's counters), so a job survives the server: at the next start the
worker resumes every job left `running`, reads its catalog again and skips the rows that already
have an outcome. A row that was written but not yet recorded when the server died is found in
the record store by the engine's own check and not downloaded again; it is counted `done` when
its record was written after the job started (this job wrote it), else `skipped`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from dupcheck.adapters.local_files import LocalCatalogFiles
from dupcheck.adapters.local_index import LocalHashIndex
from dupcheck.adapters.sqlite_checked import FILE_NAME as CHECKED_FILE
from dupcheck.adapters.sqlite_checked import SqliteCheckedPictures
from dupcheck.adapters.sqlite_jobs import SqliteImportJobs
from dupcheck.bootstrap import build_catalog_fetcher, build_imports
from dupcheck.core.catalog.gate import Passage
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import DupcheckError, StoreUnavailable
from dupcheck.core.jobs.import_runs import EarlierRows, JobGate, RowChecker, finish_if_complete
from dupcheck.core.jobs.imports import FINAL, ImportService, Survey, catalog_rows, check_catalog, job_holder, survey
from dupcheck.core.models import CatalogRow, Entry, HashRecord, ImportJob, JobStatus, Mode, Outcome, RowResult, Source
from dupcheck.core.ports import ImageFetcher
from dupcheck.core.settings import Settings
from dupcheck_tools.backfill.engine import Backfill, BackfillOptions
from dupcheck_tools.local.checks import check_catalog_rows
from dupcheck_tools.local.job_loop import run_jobs
from dupcheck_tools.local.memory import Activity

logger = logging.getLogger(__name__)

POLL_S = 2.0  # queued jobs recorded by another process are found within this
# A job with fewer rows left hashes in its download threads: starting a hashing process costs
# ~2 s of imports (numpy, Pillow, the pipeline), more than hashing 200 small pictures.
SMALL_JOB_ROWS = 200
FLUSH_S = 0.25  # row outcomes reach the import store (and GET /imports/{id}) within this


class ImportWorker:
    """Runs the server's import jobs (see module docstring). It is also the jobs' `ImportStarter`:
    a new or cancelled job wakes it at once."""

    def __init__(
        self, service: DupcheckService, settings: Settings, *, catalog_fetcher: ImageFetcher | None = None,
        poll_s: float = POLL_S,
    ) -> None:  # fmt: skip
        self.service = service
        self.settings = settings
        self.imports: ImportService = build_imports(settings, starter=self)
        if not isinstance(self.imports.jobs, SqliteImportJobs):
            raise TypeError("the local import worker runs jobs of the embedded store (DUPCHECK_STORE=sqlite)")
        self.jobs: SqliteImportJobs = self.imports.jobs
        # A check job's rows' pictures, its later rows judged against them (core/jobs/import_runs.py).
        self.checked = SqliteCheckedPictures(settings.data_dir / CHECKED_FILE)
        self.catalog_fetcher = catalog_fetcher
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.activity = Activity()  # its jobs, for the server's idle trim
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._running: tuple[str, Backfill | _Recorder, _Recorder] | None = None

    # -- ImportStarter ------------------------------------------------------------------------

    def start(self, job: ImportJob) -> None:
        if job.status is JobStatus.CANCELLED:
            self._stop_engine(job.job_id, cancelled=True)
        self._wake.set()

    @property
    def running_job(self) -> str | None:
        """The id of the job the engine is running, None between jobs."""
        with self._lock:
            return self._running[0] if self._running is not None else None

    # -- lifecycle ----------------------------------------------------------------------------

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dupcheck-imports", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop now: the rows already hashed are written and recorded, those in flight are left
        out (no outcome: the next server downloads them again, as after a kill -9); a running job
        stays `running` and is resumed by the next server."""
        self._stopping.set()
        self._wake.set()
        self._stop_engine(None)

    def stop(self, timeout: float = 30.0) -> None:
        """request_stop(), then wait for the worker's thread (at most `timeout` seconds)."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _stop_engine(self, job_id: str | None, *, cancelled: bool = False) -> None:
        with self._lock:
            if self._running is not None and job_id in (None, self._running[0]):
                if cancelled:
                    self._running[2].cancelled.set()
                engine = self._running[1]
                if isinstance(engine, Backfill):
                    engine.stop(now=True)
                else:  # a check job: its recorder stops its rows
                    engine.stop()

    def _loop(self) -> None:
        try:
            for job_id in self.jobs.prune():
                if isinstance(self.imports.catalogs, LocalCatalogFiles):
                    self.imports.catalogs.remove(job_id)
                self.checked.drop(job_id)
        except Exception:  # noqa: BLE001 - housekeeping must not keep jobs from running
            logger.exception("could not prune old import jobs")
        run_jobs(
            stopping=self._stopping, wake=self._wake, poll_s=self.poll_s, runnable=self.jobs.runnable, run=self.run,
            fail=lambda job, reason: self.jobs.transition(job.job_id, JobStatus.FAILED, allowed_from={
                JobStatus.QUEUED, JobStatus.RUNNING}, error=reason),
            activity=self.activity, name=lambda job: f"import {job.job_id}",
        )  # fmt: skip

    # -- one job ------------------------------------------------------------------------------

    def run(self, job: ImportJob) -> ImportJob | None:
        """Run (or resume) one job to its end, or until it is cancelled or the worker stops; once
        it has ended, the kept images its catalog named are no longer held for it."""
        ended = self._run(job)
        current = self.jobs.get(job.job_id)
        if current is None or current.status in FINAL:
            if self.service.parts.kept is not None:
                self.service.parts.kept.unpin(job_holder(job.job_id))
            if job.options.mode is Mode.CHECK:
                self.checked.drop(job.job_id)
        return ended

    def _run(self, job: ImportJob) -> ImportJob | None:
        resumed = job.status is JobStatus.RUNNING
        try:
            if job.rows is None:
                self._keep_fetched_catalog(job)
            # Counted, and the rows a later one replaces found, before any row runs (read again
            # when a job resumes: the same file gives the same answer).
            found = survey(lambda: self.imports.catalogs.open(job.job_id), job.options)
            rows = found.rows if job.rows is None else job.rows
        except DupcheckError as exc:
            return self.jobs.transition(job.job_id, JobStatus.FAILED, allowed_from={JobStatus.QUEUED,
                                        JobStatus.RUNNING}, error=exc.message)  # fmt: skip
        started = self.jobs.transition(job.job_id, JobStatus.RUNNING, allowed_from={JobStatus.QUEUED,
                                       JobStatus.RUNNING}, rows=rows)  # fmt: skip
        if started is None:
            return None  # cancelled meanwhile
        finished = self.jobs.finished_rows(job.job_id, rows)
        recorder = _Recorder(self.jobs, started, resumed=resumed)
        if job.options.mode is Mode.CHECK:
            return self._check(started, found, finished, recorder)
        gate = JobGate(self.service, self.jobs, job.job_id, job.options.on_duplicate, job.options.marks)
        left = rows - sum(finished)
        hash_workers = -1 if left < SMALL_JOB_ROWS else self.settings.import_hash_workers
        parts = self.service.parts
        engine = Backfill(
            self.settings, parts.store, recorder, fetcher=parts.fetcher, on_row=recorder.stored,
            thumbnails=parts.thumbnails, embedder=parts.embedder, products=parts.products,
            screen=lambda row, entry: recorder.screened(row, gate, entry),
            lost=lambda row, beaten_by: recorder.lost(gate.beaten(row, beaten_by)),
            # The server's write path (its id locks, kept images, claims); its index follows the store.
            writer=dataclasses.replace(self.service.records.writer, index=None),
            options=BackfillOptions(workers=self.settings.import_workers, hash_workers=hash_workers,
                                    per_host=self.settings.import_workers,
                                    hash_niceness=self.settings.import_hash_niceness, progress=False),
        )  # fmt: skip
        with self._lock:
            self._running = (job.job_id, engine, recorder)
        recorder.start(on_cancel=lambda: self._stop_engine(job.job_id, cancelled=True))
        try:
            with self.imports.catalogs.open(job.job_id) as raw:
                summary = engine.run(_to_import(catalog_rows(raw, job.options), finished, found, recorder))
        finally:
            with self._lock:
                self._running = None
            recorder.close()
        if summary.error:
            return self.jobs.transition(job.job_id, JobStatus.FAILED, allowed_from={JobStatus.RUNNING},
                                        error=summary.error)  # fmt: skip
        return self._ended(job)

    def _check(self, job: ImportJob, found: Survey, finished: bytearray, recorder: _Recorder) -> ImportJob | None:
        """A check job (`mode: check`): its rows looked up a batch at a time, nothing stored."""
        pipeline = self.service.parts.pipeline
        earlier = EarlierRows(self.checked, LocalHashIndex(pipeline.index_bits, parts=pipeline.index_parts),
                              job.job_id, job.options.marks)  # fmt: skip
        with self._lock:
            self._running = (job.job_id, recorder, recorder)
        recorder.start(on_cancel=recorder.stop)
        try:
            # A stopped run's rows with no outcome are checked again: what it kept of them goes.
            earlier.resume_at(next((row for row in range(1, len(finished)) if not finished[row]), len(finished)))
            check_catalog_rows(
                RowChecker(self.service, self.jobs, threads=self.settings.import_workers, earlier=earlier), job,
                lambda: self.imports.catalogs.open(job.job_id), found, finished, recorder,
                stopping=lambda: recorder.stopped.is_set() or self._stopping.is_set(),
            )  # fmt: skip
        except DupcheckError as exc:
            return self.jobs.transition(job.job_id, JobStatus.FAILED, allowed_from={JobStatus.RUNNING},
                                        error=exc.message)  # fmt: skip
        finally:
            with self._lock:
                self._running = None
            recorder.close()
        return self._ended(job)

    def _ended(self, job: ImportJob) -> ImportJob | None:
        ended = finish_if_complete(self.jobs, self.jobs.get(job.job_id))
        if ended is not None and ended.status is JobStatus.RUNNING and not self._stopping.is_set():
            # Every row went through the engine, yet some have no outcome: never loop on it.
            missing = (ended.rows or 0) - ended.processed
            return self.jobs.transition(job.job_id, JobStatus.FAILED, allowed_from={JobStatus.RUNNING},
                                        error=f"{missing} rows could not be recorded; import them again")  # fmt: skip
        return ended

    def _keep_fetched_catalog(self, job: ImportJob) -> None:
        """A catalog_url job's catalog, downloaded once through the safe fetcher and kept with
        the job (a resumed job reads the same file)."""
        if job.source is not Source.CATALOG_URL or not job.catalog_url:
            return
        try:
            with self.imports.catalogs.open(job.job_id):
                return  # already downloaded by an earlier run
        except DupcheckError:
            pass
        fetcher = self.catalog_fetcher or build_catalog_fetcher(self.settings)
        data = fetcher.fetch(job.catalog_url)
        check_catalog(data, job.options, self.settings.max_catalog_bytes)
        self.imports.catalogs.put(job.job_id, data)


def _to_import(rows: Iterator[CatalogRow], finished: bytearray, found: Survey, recorder: _Recorder
               ) -> Iterator[CatalogRow]:  # fmt: skip
    """The rows the engine is to import: not finished by an earlier run, and not replaced by a
    later row (recorded as replaced here, without a download)."""
    for row in rows:
        if row.row < len(finished) and finished[row.row]:
            continue
        if replaced := found.replaced(row):
            recorder.record(replaced)
            continue
        yield row


class _Recorder:
    """The engine's outcomes, recorded in batches by a thread of its own: the engine's threads
    only append to a list. Each flush also notices a cancellation made elsewhere."""

    def __init__(self, jobs: SqliteImportJobs, job: ImportJob, *, resumed: bool) -> None:
        self.jobs, self.job, self.resumed = jobs, job, resumed
        self.path = Path(jobs.path)  # the FailureSink's: where failures are written
        self.stopped = threading.Event()  # a check job's: cancelled, or the worker stops
        self._warned: dict[int, RowResult] = {}  # rows stored with a duplicate named: their outcome
        self._pending: list[RowResult] = []
        self._after_cancel = 0  # rows stored since `cancelled`, not yet recorded
        self.cancelled = threading.Event()  # set when the job's cancel is answered
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # -- from the engine's threads ------------------------------------------------------------

    def stored(self, kind: str, row: CatalogRow, record: HashRecord) -> None:
        outcome = Outcome.SKIPPED if kind == "skipped" else Outcome.DONE
        if outcome is Outcome.SKIPPED and self.resumed and self._written_by_this_job(record):
            outcome = Outcome.DONE
        warned = self._warned.pop(row.row, None) if outcome is Outcome.DONE else None
        with self._lock:
            self._pending.append(warned or RowResult(row.row, outcome))
            if kind != "skipped" and self.cancelled.is_set():
                self._after_cancel += 1  # hashed before the cancel, stored after it

    def screened(self, row: CatalogRow, gate: JobGate, entry: Entry) -> Passage | None:
        """The duplicate gate's word on a row: the passage to store it with, or None (refused,
        recorded here)."""
        passage = gate.admit(entry)
        try:
            result = gate.decide(row, entry, passage)
        except BaseException:
            gate.service.parts.gate.withdraw(passage.claim)
            raise
        if result is None:
            return passage
        if result.outcome is Outcome.DONE:  # warn: stored, and its outcome names the duplicate
            self._warned[row.row] = result
            return passage
        self.record(result)
        return None

    def lost(self, result: RowResult) -> str:
        """A row the gate let through but another write of its picture beat to the store."""
        self.record(result)
        return "skipped" if result.outcome is Outcome.SKIPPED else "failed"

    def stop(self) -> None:
        self.stopped.set()

    def add(self, row: CatalogRow, code: str, message: str) -> None:
        self.record(RowResult.failure(row, code, message))

    def record(self, result: RowResult) -> None:
        with self._lock:
            self._pending.append(result)

    def _written_by_this_job(self, record: HashRecord) -> bool:
        return bool(self.job.started_at) and record.updated_at >= str(self.job.started_at)

    # -- its own thread -----------------------------------------------------------------------

    def start(self, on_cancel: Callable[[], None]) -> None:
        def run() -> None:
            while not self._done.wait(FLUSH_S):
                if self.flush() is JobStatus.CANCELLED:
                    on_cancel()

        self._thread = threading.Thread(target=run, name="dupcheck-import-recorder", daemon=True)
        self._thread.start()

    def flush(self) -> JobStatus | None:
        with self._lock:
            pending, self._pending = self._pending, []
            after_cancel, self._after_cancel = self._after_cancel, 0
        try:
            if pending:
                return self.jobs.record(self.job.job_id, pending, after_cancel=after_cancel).status
            current = self.jobs.get(self.job.job_id)
            return current.status if current else None
        except StoreUnavailable:
            logger.exception("could not record import progress; trying again")
            with self._lock:
                self._pending[:0] = pending
                self._after_cancel += after_cancel
            return None

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()
