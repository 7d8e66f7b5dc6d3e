"""The catalog-wide duplicate scan as a background job: started from the API (the web app's
button, `POST /duplicates/scans`), followed while it runs, published as the report
`GET /duplicates` answers when it ends.

One scan at a time: a scan reads the whole store, and two would publish over each other.
`ScanJobs.create` records a new scan only when none is active, atomically (a SQLite
transaction; a DynamoDB transaction with a lock item), so two clicks at once start one scan.

What runs a scan is the engine of `python -m dupcheck duplicates` (dupcheck_tools.duplicates):
locally a thread of the server, on AWS the scan function, started through a queue and handing
itself over before Lambda's 15 minutes are up (docs/architecture.md, "Duplicate scans"). Both
report each phase's progress here and, at the end, the report's counts (`result`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dupcheck.core.errors import Conflict, NotFound
from dupcheck.core.models import (
    DEFAULT_MARKS,
    SCAN_RETENTION_DAYS,
    Marks,
    ScanJob,
    ScanStatus,
    is_hex_id,
    moment_of,
    utc_now,
)
from dupcheck.core.ports import ScanJobs, ScanStarter

RETENTION_DAYS = SCAN_RETENTION_DAYS  # core/models.py: ScanJob.expires
DEFAULT_PAGE = 5
MAX_PAGE = 100
# A scan's values (ScanJob, ScanStatus) are core/models.py's, its ports (ScanJobs, ScanStarter) core/ports.py's.

ACTIVE = frozenset({ScanStatus.QUEUED, ScanStatus.RUNNING})
FINAL = frozenset({ScanStatus.DONE, ScanStatus.FAILED, ScanStatus.CANCELLED})


@dataclass
class ScanService:
    jobs: ScanJobs
    starter: ScanStarter
    # A scan that has said nothing for this long has stopped without finishing (on AWS: its
    # function failed past its retries). None: never (the local server resumes its own).
    stalled_after_s: float | None = None
    clock: Callable[[], str] = utc_now

    def start(self, marks: Marks = DEFAULT_MARKS) -> ScanJob:
        """A new scan, queued, reading a mark on the product as `marks` says; Conflict while
        another is queued or running."""
        for job in self.jobs.recent(DEFAULT_PAGE):
            self._stalled(job)
        now = self.clock()
        job = ScanJob(scan_id=uuid.uuid4().hex, status=ScanStatus.QUEUED, created_at=now, updated_at=now, marks=marks)
        active = self.jobs.create(job)
        if active.scan_id != job.scan_id:
            raise Conflict(f"a duplicate scan is already {active.status} (scan_id {active.scan_id}): its groups "
                           "show when it ends")  # fmt: skip
        self.starter.start(job)
        return job

    def get(self, scan_id: str) -> ScanJob:
        job = self.jobs.get(check_scan_id(scan_id))
        if job is None:
            raise NotFound(f"no duplicate scan with scan_id {scan_id!r}")
        return self._stalled(job)

    def cancel(self, scan_id: str) -> ScanJob:
        """Stop a queued or running scan: it ends at its next progress report (about a second),
        its work is dropped and the report published before stays. Conflict when it has ended."""
        self.get(scan_id)
        cancelled = self.jobs.transition(scan_id, ScanStatus.CANCELLED, allowed_from=ACTIVE,
                                         error="cancelled: the report published before stays")  # fmt: skip
        if cancelled is None:
            raise Conflict(f"duplicate scan {scan_id} is {self.get(scan_id).status}: there is nothing to cancel")
        return cancelled  # its runner sees it at its next progress report (ScanJobs.progress)

    def recent(self, limit: int | None = None) -> list[ScanJob]:
        return [self._stalled(job) for job in self.jobs.recent(DEFAULT_PAGE if limit is None else limit)]

    def _stalled(self, job: ScanJob) -> ScanJob:
        if job.status not in ACTIVE or self.stalled_after_s is None:
            return job
        if datetime.now(UTC) - moment_of(job.updated_at) < timedelta(seconds=self.stalled_after_s):
            return job
        failed = self.jobs.transition(
            job.scan_id, ScanStatus.FAILED, allowed_from=ACTIVE,
            error=f"the scan stopped answering {self.stalled_after_s / 60:.0f} minutes ago without finishing (the "
            "scan function's logs say why): start another",
        )  # fmt: skip
        return failed or self.jobs.get(job.scan_id) or job


def check_scan_id(scan_id: str) -> str:
    if not is_hex_id(scan_id):
        raise NotFound(f"no duplicate scan with scan_id {scan_id!r}")
    return scan_id


def expires_epoch(job: ScanJob) -> int:
    """When the scan may be forgotten, in epoch seconds (DynamoDB's TTL)."""
    return int(job.expires().timestamp())
