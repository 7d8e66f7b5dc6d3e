"""The local server's check jobs (`mode: check`): a catalog's rows looked up, nothing stored.

Run by the import worker's thread (imports.py) like any job: the rows a batch at a time through
RowChecker (core/jobs/import_runs.py: its threads download and look each row up as find_similar does),
each batch's results recorded, cancellation and the worker's stop looked at between batches. A
resumed job skips the rows that already have their result; a row another row of the same id
replaces is recorded as replaced, as an import does.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager
from itertools import islice
from typing import IO, Protocol

from dupcheck.core.jobs.import_runs import Retry, RowChecker
from dupcheck.core.jobs.imports import Survey, catalog_rows
from dupcheck.core.models import ImportJob, RowResult

ROWS_PER_THREAD = 4  # rows a batch gives each checking thread: enough that a slow host does not idle the others


class Results(Protocol):
    def record(self, result: RowResult) -> None: ...


def check_catalog_rows(
    checker: RowChecker, job: ImportJob, open_catalog: Callable[[], ContextManager[IO[bytes]]], found: Survey,
    finished: bytearray, results: Results, *, stopping: Callable[[], bool],
) -> None:  # fmt: skip
    """Check every unfinished row of the job's catalog (see module)."""
    with open_catalog() as raw:
        rows = (row for row in catalog_rows(raw, job.options) if not (row.row < len(finished) and finished[row.row]))
        while not stopping() and (batch := list(islice(rows, checker.threads * ROWS_PER_THREAD))):
            todo = []
            for row in batch:
                if replaced := found.replaced(row):
                    results.record(replaced)
                else:
                    todo.append(row)
            for result in checker.check_rows(job.job_id, todo, final=lambda _row: True, marks=job.options.marks):
                if not isinstance(result, Retry):  # (none: every attempt here is the last)
                    results.record(result)
