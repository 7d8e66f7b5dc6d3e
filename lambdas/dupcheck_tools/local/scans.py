"""The local server's duplicate scans: one thread that runs them, one at a time, with the report's
engine (dupcheck_tools.duplicates.scan_runs), over the server's own store.

A scan's verification runs in worker processes at nice +10 (the import worker's hashing process
has the same), so `find_similar` gets the CPU first; a catalog of a few hundred records is
judged in this thread. The work lives in DATA_DIR/scans/<scan_id>/ while the scan runs: a server
stopped mid-scan leaves it `running`, and the next one resumes it from there. The report is
published to DATA_DIR/duplicates/, where `GET /duplicates` (and `python -m dupcheck duplicates`)
put it.
"""

from __future__ import annotations

import logging
import threading

from dupcheck.adapters.sqlite_scans import SqliteScanJobs
from dupcheck.bootstrap import build_reports, build_scans
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.jobs.scans import ScanService
from dupcheck.core.models import ScanJob, ScanStatus
from dupcheck.core.settings import Settings
from dupcheck_tools.duplicates.scan_runs import fail, run_scan
from dupcheck_tools.local.job_loop import run_jobs
from dupcheck_tools.local.memory import Activity

logger = logging.getLogger(__name__)

POLL_S = 2.0  # a scan recorded by another process is found within this
NICENESS = 10  # added to the verification processes' nice value: the server's requests come first
SCANS_DIR = "scans"


class ScanWorker:
    """Runs the server's duplicate scans (module docstring). It is also their `ScanStarter`: a new
    scan wakes it at once."""

    def __init__(self, service: DupcheckService, settings: Settings, *, poll_s: float = POLL_S) -> None:
        self.service = service
        self.settings = settings
        self.scans: ScanService = build_scans(settings, starter=self)
        if not isinstance(self.scans.jobs, SqliteScanJobs):
            raise TypeError("the local scan worker runs the embedded store's scans (DUPCHECK_STORE=sqlite)")
        self.jobs: SqliteScanJobs = self.scans.jobs
        self.reports = service.parts.reports or build_reports(settings)
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.activity = Activity()  # its jobs, for the server's idle trim
        self._thread: threading.Thread | None = None

    def start(self, job: ScanJob) -> None:
        self._wake.set()

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="dupcheck-scans", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Stop the running scan at its next step (a few records at most; the verification
        processes are killed, not waited for): it stays `running`, the next server resumes it."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """request_stop(), then wait for the worker's thread (at most `timeout` seconds)."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                run_jobs(
                    stopping=self._stopping, wake=self._wake, poll_s=self.poll_s, runnable=self.jobs.runnable,
                    run=self.run, fail=lambda job, reason: fail(self.jobs, job, reason),
                    activity=self.activity, name=lambda job: f"duplicate scan {job.scan_id}",
                )  # fmt: skip
            except BaseException as exc:
                # What run_jobs does not catch would end the thread and leave its scan `running`
                # until a restart: the scan fails now, with the reason, and the worker goes on.
                logger.exception("the duplicate scan worker's loop ended")
                for job in self.jobs.runnable():
                    if job.status is ScanStatus.RUNNING:
                        fail(self.jobs, job, f"the scan's worker stopped ({type(exc).__name__}: {exc}); it has been "
                             "logged: start the scan again")  # fmt: skip
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise

    def run(self, job: ScanJob) -> ScanJob | None:
        """Run (or resume) one scan to its end, or until the worker stops."""
        resumed = job.status is ScanStatus.RUNNING
        started = self.jobs.transition(job.scan_id, ScanStatus.RUNNING, allowed_from={ScanStatus.QUEUED,
                                       ScanStatus.RUNNING})  # fmt: skip
        if started is None:
            return None
        parts = self.service.parts
        return run_scan(
            started, self.jobs, parts.store, work_dir=self.settings.data_dir / SCANS_DIR / job.scan_id,
            source=f"sqlite:{self.settings.sqlite_path}", reports=self.reports, thumbnails=parts.thumbnails,
            resume=resumed, should_stop=self._stopping.is_set, niceness=NICENESS,
        )  # fmt: skip
