"""The failures file of a batch run: one line per failed row, with its reason."""

from __future__ import annotations

import contextlib
import csv
import json
import threading
from collections import Counter
from pathlib import Path
from typing import IO, Protocol

from dupcheck_tools.catalog import CatalogError, CatalogRow
from dupcheck_tools.spreadsheet import safe_row

FAILURE_FIELDS = ("row", "entity_id", "image_url", "code", "message")
REASONS_SHOWN = 3  # the most frequent failure codes a run names on stderr
# What to do about each failure code, said under its first message (docs/backfill.md, failures file).
FIXES = {
    "missing_entity_id": "every row needs an id: name its column with --id-column",
    "missing_image_url": "name the image column with --url-column",
    "relative_image_url": "give the shop's media base URL with --image-base-url",
    "invalid_image_url": "correct these rows' image URLs in the catalog",
    "invalid_entity_id": "correct these ids in the catalog (docs/api.md says what an id may hold)",
    "invalid_row": "each line of a JSON Lines catalog must be one JSON object",
    "url_not_allowed": "only public http(s) hosts are fetched (and only those of DUPCHECK_ALLOWED_HOSTS when "
    "set); pictures served from this machine for a demo or a test need DUPCHECK_ALLOW_LOOPBACK_URLS=true",
    "image_unreachable": "open one of these URLs from this machine: its host must answer with the picture",
    "upstream_error": "the image host failed or was busy: run again later (only failed rows are fetched), "
    "or lower --per-host",
    "upstream_timeout": "the image host is slow: run again later, or lower --workers and --per-host",
    "image_too_large": "raise DUPCHECK_MAX_IMAGE_BYTES, DUPCHECK_MAX_IMAGE_PIXELS or DUPCHECK_MAX_DECODE_MB, "
    "or give smaller pictures",
    "unsupported_media_type": "the URLs must give JPEG, PNG, WebP, GIF, BMP or TIFF pictures",
    "invalid_image": "the URLs give broken picture data: check them in a browser",
    "store_unavailable": "the store refused the writes: check the table, region and credentials, then run again",
}


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
        self.codes: Counter[str] = Counter()
        self.examples: dict[str, str] = {}  # each code's first message

    def add(self, row: CatalogRow, code: str, message: str) -> None:
        values = (row.row, row.entity_id, row.image_url, code, message)
        with self._lock:
            self.codes[code] += 1
            self.examples.setdefault(code, message)
            if self._csv is not None:
                self._csv.writerow(safe_row(values))
            else:
                self._file.write(json.dumps(dict(zip(FAILURE_FIELDS, values, strict=True))) + "\n")
            self._file.flush()
            self.count += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


def explain_failures(log: FailureLog, rows: int) -> str:
    """Why the rows failed, for stderr: the most frequent codes, each with its first message and
    what to do, and where every failed row is listed. Empty when none failed."""
    if not log.count:
        return ""
    whole = "every row" if log.count == rows else f"{log.count} of {rows} rows"
    lines = [f"backfill: {whole} failed; each is listed in {log.path}:"]
    for code, count in log.codes.most_common(REASONS_SHOWN):
        lines.append(f"  {count} x {code}, e.g. {log.examples[code]}")
        if fix := FIXES.get(code):
            lines.append(f"    fix: {fix}")
    if rest := log.count - sum(count for _, count in log.codes.most_common(REASONS_SHOWN)):
        lines.append(f"  {rest} more, for {len(log.codes) - REASONS_SHOWN} other reasons")
    return "\n".join(lines)


def default_failures_path(catalog: Path) -> Path:
    """`catalog.csv` -> `catalog.failures.csv`, next to the catalog."""
    name = catalog.name
    for suffix in (".gz", ".csv", ".tsv", ".jsonl", ".ndjson", ".json"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return catalog.with_name(f"{name}.failures.csv")
