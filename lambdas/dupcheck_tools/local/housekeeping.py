"""The local server's housekeeping: what a crash left, kept images nobody uses, files sized to their data.

A pass runs at start, again CONFIRM_S later, then every HOUSEKEEPING_S, in a thread of its own:

* thumbnails and product vectors of ids that hold no record (a crash between a save's writes,
  core/catalog/service.py) are found by one join across the files, and deleted when the next pass finds
  them again (a save in flight writes its thumbnail a moment before its record), each under the
  service's lock for its id;
* the gate's claims of writers that no longer run (killed between a claim and its commit) are
  fenced (adapters/sqlite_claims.py): they store nothing and no check reads them again;
* kept images that no record names and nothing holds, kept UNCLAIMED_FOR_S ago or more, are
  deleted (`KeptImageLifecycle.sweep`: uploads whose import never came, a picture a crash left); first,
  the holds of import jobs that ended (or are gone) without letting go of them are dropped;
* every SQLite file of the service is tidied (adapters/sqlite_files.py): the pages of deleted
  rows handed back to the file system, the WAL truncated.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from dupcheck.adapters.sqlite_claims import SqliteClaims
from dupcheck.adapters.sqlite_files import SqliteFile
from dupcheck.adapters.sqlite_jobs import SqliteImportJobs
from dupcheck.core.catalog.kept_images import UNCLAIMED_FOR_S, KeptImageLifecycle
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.jobs.imports import FINAL, JOB_HOLDER
from dupcheck_tools.local.job_loop import Repeating

logger = logging.getLogger(__name__)

CONFIRM_S = 60.0  # the second pass, after the first at start: what a crash left goes within a minute
HOUSEKEEPING_S = 3600.0  # then hourly: a tidy of every file is cheap when there is little to reclaim
MAX_ORPHANS = 10_000  # ids taken per pass: a pass's memory stays small whatever a crash left

# Rows of a file beside the records (attached as `rec`) whose id holds no record.
_ORPHANS = {
    "thumbnails": "SELECT entity_id FROM thumbnails WHERE entity_id NOT IN (SELECT entity_id FROM rec.records) LIMIT ?",
    "products": "SELECT entity_id FROM products WHERE vector IS NOT NULL "
    "AND entity_id NOT IN (SELECT entity_id FROM rec.records) LIMIT ?",
}


class Housekeeping:
    def __init__(
        self, service: DupcheckService, files: Sequence[object], *, unclaimed_s: float = UNCLAIMED_FOR_S
    ) -> None:
        """`files`: the server's stores; those on SQLite are tidied."""
        self.service, self.unclaimed_s = service, unclaimed_s
        parts = service.parts
        self.files = [f for f in dict.fromkeys([parts.store, parts.thumbnails, parts.products, *files])
                      if isinstance(f, SqliteFile)]  # fmt: skip
        self._suspects: set[str] = set()
        self._repeating = Repeating("dupcheck-housekeeping", self.run_once, [CONFIRM_S, HOUSEKEEPING_S])

    def start(self) -> None:
        self._repeating.start()

    def stop(self) -> None:
        self._repeating.stop()

    def run_once(self) -> dict[str, int]:
        """One pass; how many orphans, kept images and dead writers' claims it cleared."""
        found = self._orphans()
        confirmed = found & self._suspects
        orphans = sum(1 for entity_id in sorted(confirmed) if self.service.records.forget_orphan(entity_id))
        self._suspects = found - confirmed
        claims = self.service.parts.gate.claims
        cleared = claims.clear_gone() if isinstance(claims, SqliteClaims) else 0
        pictures = 0
        if self.service.parts.kept is not None:
            self._release_ended_jobs(self.service.parts.kept)
            pictures = self.service.parts.kept.sweep(self.unclaimed_s)
        for file in self.files:
            if self._repeating.stopping.is_set():
                break
            try:
                file.tidy()  # type: ignore[attr-defined]  # SqliteFile, above
            except StoreUnavailable as exc:  # busy: tidied at the next pass
                logger.info("housekeeping left a file for the next pass: %s", exc.message)
        if orphans or pictures or cleared:
            logger.info("housekeeping deleted %d orphan ids' rows and %d kept images, and cleared %d claims of "
                        "writers gone", orphans, pictures, cleared)  # fmt: skip
        return {"orphans": orphans, "pictures": pictures, "claims": cleared}

    def _release_ended_jobs(self, kept: KeptImageLifecycle) -> None:
        """Holds of import jobs that ended without letting go (the server stopped in between)."""
        jobs = next((f for f in self.files if isinstance(f, SqliteImportJobs)), None)
        if jobs is None:
            return
        for holder in kept.holders(JOB_HOLDER):
            job = jobs.get(holder[len(JOB_HOLDER) :])
            if job is None or job.status in FINAL:
                kept.unpin(holder)

    def _orphans(self) -> set[str]:
        records = _path_of(self.service.parts.store)
        if records is None:
            return set()
        found: set[str] = set()
        for part, sql in _ORPHANS.items():
            path = _path_of(getattr(self.service.parts, part))
            if path is not None and path.exists():
                found |= _ids(path, records, sql)
        return found


def _path_of(part: object) -> Path | None:
    return part.path if isinstance(part, SqliteFile) else None


def _ids(path: Path, records: Path, sql: str) -> set[str]:
    with closing(sqlite3.connect(path, timeout=5, isolation_level=None)) as conn:
        conn.execute("ATTACH DATABASE ? AS rec", (str(records),))
        return {str(row[0]) for row in conn.execute(sql, (MAX_ORPHANS,))}
