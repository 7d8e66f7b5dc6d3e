"""A duplicate scan job (core/jobs/scans.py) run by the report's engine (`find_duplicates`): what the
local server's scan worker and the AWS scan function share.

The run's folder holds the engine's work file while it runs, so a run stopped by `should_stop`
(a server shutting down, a function out of time) is resumed from there, reading nothing twice.
When it ends, its three files are published where `GET /duplicates` reads the report, and the
scan is done with the report's counts; a failure of the store or of the engine fails the scan
with the reason (the previous report stays published).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dupcheck.adapters.report_file import REPORT_NAME
from dupcheck.core.errors import DupcheckError
from dupcheck.core.models import ScanJob, ScanStatus
from dupcheck.core.ports import DuplicateReports, RecordStore, ScanJobs, ThumbnailStore
from dupcheck_tools.duplicates import DuplicatesSummary, Stop, UsageError, find_duplicates
from dupcheck_tools.duplicates.report import CSV_NAME, HTML_NAME
from dupcheck_tools.worker_pool import WorkerDied

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # a running scan's progress reaches its job this often (and at each new phase)
REPORT_FILES = (CSV_NAME, HTML_NAME, REPORT_NAME)


class JobProgress:
    """The engine's progress listener for a scan job: writes where the run is to the job (at most
    every PROGRESS_EVERY_S, and at each new phase), and stops the run when `should_stop` says so
    or the job is no longer running (cancelled)."""

    def __init__(
        self, jobs: ScanJobs, scan_id: str, should_stop: Callable[[], bool], *,
        every_s: float = PROGRESS_EVERY_S, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.jobs, self.scan_id, self.should_stop = jobs, scan_id, should_stop
        self.every_s, self.clock = every_s, clock
        self._phase: str | None = None
        self._told = float("-inf")

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if self.should_stop():
            raise Stop
        now = self.clock()
        if phase == self._phase and now - self._told < self.every_s and done != total:
            return
        self._phase, self._told = phase, now
        try:
            running = self.jobs.progress(self.scan_id, phase, done, total)
        except DupcheckError:  # the job's store, briefly: the run goes on, the next report catches up
            log.warning("could not record the progress of scan %s", self.scan_id, exc_info=True)
            return
        if not running:
            raise Stop


def run_scan(
    job: ScanJob, jobs: ScanJobs, store: RecordStore, *, work_dir: Path, source: str, reports: DuplicateReports,
    thumbnails: ThumbnailStore | None = None, resume: bool = False, should_stop: Callable[[], bool] = lambda: False,
    workers: int = 0, niceness: int = 0,
) -> ScanJob | None:  # fmt: skip
    """Run (or, `resume`, go on with) the running scan `job` to its end: its report published to
    `reports`, the job done (or failed, with the reason), or cancelled meanwhile (its work dropped).
    None when `should_stop` stopped it: the job stays running and `work_dir` keeps the work, for a
    run with `resume`."""
    try:
        summary = find_duplicates(
            store, work_dir, source=source, resume=resume, workers=workers, thumbnails=thumbnails,
            on_progress=JobProgress(jobs, job.scan_id, should_stop), niceness=niceness, marks=job.marks,
        )  # fmt: skip
        if summary.interrupted:
            current = jobs.get(job.scan_id)
            if current is None or current.status is not ScanStatus.CANCELLED:
                return None
            shutil.rmtree(work_dir, ignore_errors=True)
            return current
        reports.publish({name: (work_dir / name).read_bytes() for name in REPORT_FILES})
    except (DupcheckError, UsageError, OSError, WorkerDied) as exc:
        reason = exc.message if isinstance(exc, DupcheckError) else str(exc)
        log.warning("duplicate scan %s failed: %s", job.scan_id, reason)
        return fail(jobs, job, f"the scan could not finish: {reason}")
    shutil.rmtree(work_dir, ignore_errors=True)
    return jobs.transition(job.scan_id, ScanStatus.DONE, allowed_from={ScanStatus.RUNNING}, result=result_of(summary))


def fail(jobs: ScanJobs, job: ScanJob, reason: str) -> ScanJob | None:
    return jobs.transition(job.scan_id, ScanStatus.FAILED, allowed_from={ScanStatus.QUEUED, ScanStatus.RUNNING},
                           error=reason)  # fmt: skip


def result_of(summary: DuplicatesSummary) -> dict[str, Any]:
    """The counts a finished scan keeps (ScanResult in the API)."""
    return {
        "records": summary.records, "compared": summary.compared, "groups": summary.groups,
        "duplicates": summary.duplicates, "pairs": summary.pairs, "related": summary.related,
        "elapsed_s": summary.elapsed_s,
        # What the report leaves out, in words: records not compared, records not verified.
        "skipped": " ".join(m for m in (summary.skipped.get("message"), summary.not_verified.get("message")) if m)
        or None,
    }  # fmt: skip
