"""The duplicate gate of a backfill (the command line's `backfill`, `import` of a catalog file, the
notebook): each hashed row goes through the service's gate (core/catalog/gate.py) as an import job's row
does, by the run's `on_duplicate`, and every duplicate found is one line of the duplicates file.

* warn (the default, DUPCHECK_ON_DUPLICATE): the row is stored; its line names what it duplicates;
* skip: a duplicate row is not stored, counted `skipped`;
* reject: a duplicate row is not stored, counted `failed` (`duplicate_image` in the failures file);
* allow: no check (no gate is built).
"""

from __future__ import annotations

import contextlib
import csv
import threading
from pathlib import Path
from typing import IO

from dupcheck.core.catalog.gate import EXPIRED, Passage
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.models import Entry, Match, OnDuplicate
from dupcheck_tools.backfill.engine import Refusal
from dupcheck_tools.backfill.failures import FailureSink
from dupcheck_tools.catalog import CatalogError, CatalogRow
from dupcheck_tools.spreadsheet import safe_row

DUPLICATE_FIELDS = ("row", "entity_id", "image_url", "outcome", "duplicate_of", "match_percent", "edit")


def duplicates_path_for(failures: Path) -> Path:
    """The duplicates file beside the failures file: `<catalog>.duplicates.csv`."""
    name = failures.name.replace(".failures", "") if ".failures" in failures.name else failures.stem
    return failures.with_name(Path(name).stem + ".duplicates.csv")


class BackfillGate:
    """The engine's screen and lost hooks (engine.RowScreen, RowLost) for one run."""

    def __init__(self, service: DupcheckService, policy: OnDuplicate, failures: FailureSink, path: Path) -> None:
        self.service, self.policy, self.failures, self.path = service, policy, failures, Path(path)
        self.found = 0  # rows found duplicates (stored, skipped or refused)
        self._lock = threading.Lock()
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file: IO[str] = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CatalogError(f"cannot write the duplicates file {self.path}: {exc}") from exc
        self._csv = csv.writer(self._file)
        self._csv.writerow(DUPLICATE_FIELDS)
        self._file.flush()

    def screen(self, row: CatalogRow, entry: Entry) -> Passage | Refusal:
        """The row's passage (store it with its claim), or its refusal (skip, reject)."""
        passage = self.service.registrar.admit(entry, self.policy, settle_s=0)  # rows commit in batches: no wait
        if passage.passed:
            if passage.duplicates:
                self._note(row, "stored", passage.duplicates[0])
            return passage
        best = passage.duplicates[0]
        return self._refused(row, best.entity_id, best.match_percent, best.edit_summary or "duplicate")

    def lost(self, row: CatalogRow, beaten_by: str) -> str:
        """A row that passed but whose claim another write of its picture fenced first (the engine
        counts it as this says; a failure is written here)."""
        if beaten_by == EXPIRED:
            self.failures.add(row, "gate_expired", "the duplicate check took longer than its lease and another "
                              "write took over: run the backfill again")  # fmt: skip
            return "failed"
        refusal = self._refused(row, beaten_by, None, "stored at the same moment")
        if refusal.kind == "failed":
            self.failures.add(row, refusal.code, refusal.message)
        return refusal.kind

    def _refused(self, row: CatalogRow, of: str, percent: float | None, edit: str) -> Refusal:
        if not self.policy.rule.fails:
            self._write(row, "skipped", of, percent, edit)
            return Refusal("skipped")
        self._write(row, "refused", of, percent, edit)
        return Refusal("failed", "duplicate_image", f"the catalog already has its picture as {of!r}: {edit} "
                       "(on_duplicate=reject)")  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _note(self, row: CatalogRow, outcome: str, best: Match) -> None:
        self._write(row, outcome, best.entity_id, best.match_percent, best.edit_summary or "")

    def _write(self, row: CatalogRow, outcome: str, of: str, percent: float | None, edit: str) -> None:
        with self._lock:
            self.found += 1
            self._csv.writerow(safe_row((row.row, row.entity_id, row.image_url, outcome, of,
                                         "" if percent is None else percent, edit)))  # fmt: skip
            self._file.flush()
