"""The failures file of a batch run: one line per failed row, with its reason."""

from __future__ import annotations

import contextlib
import csv
import json
import threading
from pathlib import Path
from typing import IO, Protocol

from dupcheck_tools.catalog import CatalogError, CatalogRow
from dupcheck_tools.spreadsheet import safe_row

FAILURE_FIELDS = ("row", "entity_id", "image_url", "code", "message")


class FailureSink(Protocol):
    """Where a run's failed rows go (this file; an import job's store). Thread-safe."""

    path: Path

    def add(self, row: CatalogRow, code: str, message: str) -> None: ...


class FailureLog:
    """Failures as CSV (default) or JSON Lines (`.jsonl`/`.json`), one line per failed row,
    flushed at once so a crash keeps what was written. Thread-safe. A CSV cell a spreadsheet would
    evaluate is written as text (dupcheck_tools/spreadsheet.py)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._jsonl = self.path.suffix.lower() in (".jsonl", ".json", ".ndjson")
        self._lock = threading.Lock()
        try:
            self._file: IO[str] = open(self.path, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise CatalogError(f"cannot write the failures file {self.path}: {exc} (use --failures)") from exc
        self._csv = None if self._jsonl else csv.writer(self._file)
        if self._csv is not None:
            self._csv.writerow(FAILURE_FIELDS)
            self._file.flush()
        self.count = 0

    def add(self, row: CatalogRow, code: str, message: str) -> None:
        values = (row.row, row.entity_id, row.image_url, code, message)
        with self._lock:
            if self._csv is not None:
                self._csv.writerow(safe_row(values))
            else:
                self._file.write(json.dumps(dict(zip(FAILURE_FIELDS, values, strict=True))) + "\n")
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


def default_failures_path(catalog: Path) -> Path:
    """`catalog.csv` -> `catalog.failures.csv`, next to the catalog."""
    name = catalog.name
    for suffix in (".gz", ".csv", ".tsv", ".jsonl", ".ndjson", ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return catalog.with_name(f"{name}.failures.csv")
