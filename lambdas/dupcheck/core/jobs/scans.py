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
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dupcheck.core.errors import Conflict, NotFound
from dupcheck.core.models import is_hex_id, moment_of, utc_now

RETENTION_DAYS = 30  # scans (their progress and counts) are listed this long
DEFAULT_PAGE = 5
MAX_PAGE = 100


class ScanStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # the report is published
    FAILED = "failed"  # `error` says why; the report published before stays
    CANCELLED = "cancelled"  # DELETE /duplicates/scans/{id}: stopped at its next step, its work dropped


ACTIVE = frozenset({ScanStatus.QUEUED, ScanStatus.RUNNING})
FINAL = frozenset({ScanStatus.DONE, ScanStatus.FAILED, ScanStatus.CANCELLED})


@dataclass(frozen=True)
class ScanJob:
    scan_id: str
    status: ScanStatus
    created_at: str
    updated_at: str
    phase: str | None = None  # the engine's step: read, pair, thumbnails, verify, report
    done: int = 0  # of the phase's `total`
    total: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    # Once done: records, compared, groups, duplicates, pairs, related, elapsed_s, skipped.
    result: Mapping[str, Any] | None = field(default=None)

    def expires(self) -> datetime:
        return moment_of(self.created_at) + timedelta(days=RETENTION_DAYS)


@runtime_checkable
class ScanJobs(Protocol):
    """Where scans, their progress and their results live (SQLite; the imports' DynamoDB table)."""

    def create(self, job: ScanJob) -> ScanJob:
        """The scan that is active once this returns: `job`, recorded, or the one that was already
        queued or running (then `job` is not recorded)."""
        ...

    def get(self, scan_id: str) -> ScanJob | None: ...

    def recent(self, limit: int) -> list[ScanJob]:
        """The newest scans first."""
        ...

    def transition(
        self, scan_id: str, to: ScanStatus, *, allowed_from: Collection[ScanStatus], error: str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> ScanJob | None:  # fmt: skip
        """Move the scan to `to` if it is in one of `allowed_from` (atomically; started_at on the
        first RUNNING, finished_at on a final status). None when it is missing or elsewhere."""
        ...

    def progress(self, scan_id: str, phase: str, done: int, total: int | None) -> bool:
        """Where a running scan is; False when it is no longer running (cancelled: its run stops),
        and then it is left alone."""
        ...


@runtime_checkable
class ScanStarter(Protocol):
    """Makes a recorded scan run: wakes the server's scan worker; on AWS, a message to the scan function."""

    def start(self, job: ScanJob) -> None: ...


@dataclass
class ScanService:
    jobs: ScanJobs
    starter: ScanStarter
    # A scan that has said nothing for this long has stopped without finishing (on AWS: its
    # function failed past its retries). None: never (the local server resumes its own).
    stalled_after_s: float | None = None
    clock: Callable[[], str] = utc_now

    def start(self) -> ScanJob:
        """A new scan, queued; Conflict while another is queued or running."""
        for job in self.jobs.recent(DEFAULT_PAGE):
            self._stalled(job)
        now = self.clock()
        job = ScanJob(scan_id=uuid.uuid4().hex, status=ScanStatus.QUEUED, created_at=now, updated_at=now)
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
