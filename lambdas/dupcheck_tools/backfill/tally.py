"""A backfill run's reporting: its summary (the counts, the JSON printed at the end, the throughput
for a plot) and the tally every thread of the run counts its rows through (engine.py)."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dupcheck.core.models import HashRecord
from dupcheck_tools.backfill.failures import FailureSink
from dupcheck_tools.catalog import CatalogRow
from dupcheck_tools.exit_codes import ExitCode

# Told of every row stored or skipped: ("done" | "updated" | "skipped", row, its record). Failed
# rows go to the FailureSink. (The API's import jobs count rows with it; backfill does not.)
RowListener = Callable[[str, CatalogRow, HashRecord], None]


@dataclass
class BackfillSummary:
    rows: int = 0
    done: int = 0  # downloaded, hashed and written
    updated: int = 0  # unchanged image, new sku: written without a download
    skipped: int = 0  # unchanged: already in the store with this image_url and pipeline
    failed: int = 0
    would_fetch: int = 0  # dry run only
    elapsed_s: float = 0.0
    images_per_s: float = 0.0
    hash_algo: str = ""
    failures_file: str = ""
    on_duplicate: str = ""  # the duplicate gate's policy ("allow": not checked)
    duplicates: int = 0  # rows found duplicates of the catalog or of each other (stored, skipped or refused)
    duplicates_file: str = ""  # one line per duplicate found (backfill/gate.py)
    interrupted: bool = False
    error: str | None = None  # a fatal error (e.g. the store stayed unreachable) ended the run early
    timeline: list[tuple[float, int]] = field(default_factory=list, repr=False)
    # Why rows failed, for stderr (failures.explain_failures); not part of the JSON summary.
    failure_report: str = field(default="", repr=False)

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.FAILED if self.failed or self.error else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("timeline")
        data.pop("failure_report")
        return data

    def table_markdown(self) -> str:
        """The summary as a Markdown table (the notebook displays this)."""
        lines = ["| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in self.to_dict().items()]
        return "\n".join(lines)

    def throughput(self) -> tuple[list[float], list[float]]:
        """(seconds, rows finished per second) between timeline samples, for a plot."""
        times, rates = [], []
        for (t0, n0), (t1, n1) in zip(self.timeline, self.timeline[1:], strict=False):
            if t1 > t0:
                times.append(t1)
                rates.append((n1 - n0) / (t1 - t0))
        return times, rates


class RunTally:
    """The run's counts, progress bar and throughput samples under one lock, so that the reader,
    download, hashing and writer threads each count the rows they end without racing."""

    def __init__(self, summary: BackfillSummary, failures: FailureSink, on_row: RowListener | None) -> None:
        self.summary = summary
        self.failures = failures
        self._on_row = on_row
        self.lock = threading.Lock()
        self._bar: Any = None
        self._started = 0.0
        self._last_sample = 0.0

    def start(self, total: int | None, progress: bool) -> None:
        self._started = self._last_sample = time.monotonic()
        self.summary.timeline.append((0.0, 0))
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

    def read(self, n: int) -> None:
        with self.lock:
            self.summary.rows += n

    def advance(self, kind: str, n: int = 1) -> None:
        with self.lock:
            setattr(self.summary, kind, getattr(self.summary, kind) + n)
            if self._bar is not None:
                self._bar.update(n)
            now = time.monotonic()
            if now - self._last_sample >= 0.5:
                self._last_sample = now
                self._sample(now)

    def _sample(self, now: float) -> None:
        s = self.summary
        s.timeline.append((round(now - self._started, 3), s.done + s.updated + s.skipped + s.failed))

    def stored(self, kind: str, row: CatalogRow, record: HashRecord) -> None:
        self.advance(kind)
        if self._on_row is not None:
            self._on_row(kind, row, record)

    def fail(self, row: CatalogRow, code: str, message: str) -> None:
        self.failures.add(row, code, message)
        self.advance("failed")

    def finish(self) -> None:
        s = self.summary
        now = time.monotonic()
        s.elapsed_s = round(now - self._started, 3)
        s.images_per_s = round(s.done / s.elapsed_s, 2) if s.elapsed_s > 0 else 0.0
        self._sample(now)
        if self._bar is not None:
            self._bar.close()
