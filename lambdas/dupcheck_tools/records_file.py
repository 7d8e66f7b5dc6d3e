"""Records as JSON Lines: `export` writes a store's records to a file, `import` reads them back.

    python -m dupcheck export --out catalog.jsonl[.gz] [--target local|dynamodb]
    python -m dupcheck import catalog.jsonl[.gz] [--target local|dynamodb] [--overwrite]

One JSON object per line, with the fields `GET /items/{id}?include=features` returns
(`entity_id, sku, image_url, hash, hash_algo, updated_at, features` with base64 values), and
`thumbnail` (base64) when the thumbnail store keeps one for the record: a backup, a way to move
a catalog between the embedded store and AWS, and how benchmarks build large stores. Nothing is
downloaded or re-hashed: a record is imported as it was exported, its thumbnail written before
it (`reindex` upgrades records of an older pipeline afterwards, and re-hashes those whose
thumbnail a file did not carry).

Import is idempotent and keeps the newest version of each record: a record the store already
holds with a later `updated_at` is kept (`kept_newer`), an identical one is not rewritten
(`unchanged`), unless `--overwrite`. It writes in batches, shows progress on a terminal, and
never stops on a bad line: each one goes to the failures file with its line number and reason.
Export writes to `FILE.partial` and renames it at the end, so a file under the final name is
always whole; `.gz` names are gzip-compressed.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from tqdm import tqdm

from dupcheck.core.ids import id_problem
from dupcheck.core.models import Entry, HashRecord, features_from_text, features_to_text, version_of
from dupcheck.core.ports import RecordStore, ThumbnailStore
from dupcheck_tools.backfill import FailureLog
from dupcheck_tools.catalog import CatalogError, CatalogRow, local_catalog
from dupcheck_tools.exit_codes import ExitCode

BATCH = 500  # records per read-compare-write round trip
_FIELDS = ("entity_id", "sku", "image_url", "hash", "hash_algo", "updated_at", "features", "thumbnail")


def _open(path: Path, mode: str, *, named: Path | None = None) -> IO[str]:
    """A text file, gzip-compressed when its name (or `named`'s, for a partial file) ends .gz."""
    if (named or path).name.lower().endswith(".gz"):
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8", compresslevel=6))
    return open(path, mode, encoding="utf-8")  # noqa: SIM115 - returned to a with statement


@dataclass
class ExportSummary:
    out: str
    records: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    interrupted: bool = False

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.INTERRUPTED if self.interrupted else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_records(
    store: RecordStore,
    out: Path,
    *,
    segments: int = 4,
    progress: bool = False,
    thumbnails: ThumbnailStore | None = None,
) -> ExportSummary:
    """Every record of `store` (and its thumbnail, from `thumbnails`), one JSON object per line,
    into `out` (whole or not at all)."""
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    summary = ExportSummary(out=str(out))
    started = time.monotonic()
    bar = tqdm(total=store.approximate_count(), unit="rec", desc="export", disable=not progress, dynamic_ncols=True)
    try:
        with _open(partial, "w", named=out) as file:
            records = iter(store.scan(segments))
            while batch := list(itertools.islice(records, BATCH)):
                kept = thumbnails.get_many([r.entity_id for r in batch]) if thumbnails is not None else {}
                for record in batch:
                    line = record.to_dict()
                    if record.entity_id in kept:
                        line["thumbnail"] = features_to_text({"thumbnail": kept[record.entity_id]})["thumbnail"]
                    file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
                summary.records += len(batch)
                bar.update(len(batch))
    except KeyboardInterrupt:
        summary.interrupted = True
        partial.unlink(missing_ok=True)
    else:
        os.replace(partial, out)
        summary.bytes = out.stat().st_size
    finally:
        bar.close()
        summary.elapsed_s = round(time.monotonic() - started, 3)
    return summary


@dataclass
class ImportSummary:
    source: str
    lines: int = 0
    imported: int = 0
    unchanged: int = 0
    kept_newer: int = 0
    failed: int = 0
    elapsed_s: float = 0.0
    records_per_s: float = 0.0
    failures_file: str = ""
    interrupted: bool = False
    by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return ExitCode.FAILED if self.failed else ExitCode.OK

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BadLine(ValueError):
    def __init__(self, code: str, message: str, entity_id: str = "", image_url: str = "") -> None:
        super().__init__(message)
        self.code, self.entity_id, self.image_url = code, entity_id, image_url


def parse_line(text: str) -> Entry:
    """One line of an export file -> a record (and its thumbnail), or BadLine saying why not."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadLine("invalid_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadLine("invalid_record", f"a record is a JSON object, not {type(data).__name__}")
    entity_id, image_url = data.get("entity_id"), data.get("image_url")
    named = {"entity_id": str(entity_id or ""), "image_url": str(image_url or "")}
    if (problem := id_problem(entity_id)) is not None:
        raise BadLine("invalid_id", problem, **named)
    missing = [name for name in ("hash", "hash_algo") if not data.get(name)]
    if missing:
        raise BadLine("invalid_record", f"missing {', '.join(missing)}", **named)
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise BadLine("invalid_record", f"unknown fields {unknown} (an export has {', '.join(_FIELDS)})", **named)
    if not isinstance(data.get("features") or {}, dict):
        raise BadLine("invalid_record", "features must be an object of base64 strings", **named)
    try:
        thumbnail = features_from_text({"thumbnail": data.pop("thumbnail", None) or ""})["thumbnail"]
        return Entry(HashRecord.from_dict(data), thumbnail)
    except (ValueError, TypeError) as exc:
        raise BadLine("invalid_record", str(exc), **named) from None


def import_records(
    store: RecordStore,
    source: str | os.PathLike[str],
    *,
    failures: Path,
    overwrite: bool = False,
    progress: bool = False,
    region: str | None = None,
    thumbnails: ThumbnailStore | None = None,
) -> ImportSummary:
    """Library entry point of `import` (source: a path, .gz or not, or an s3:// URI); the lines'
    thumbnails go to `thumbnails` (None: the file's thumbnails are not kept)."""
    summary = ImportSummary(source=str(source), failures_file=str(failures))
    started = time.monotonic()
    failure_log = FailureLog(failures)
    try:
        with local_catalog(source, region=region) as path:
            if not path.is_file():
                raise CatalogError(f"no such file: {source}")
            size = path.stat().st_size
            bar = tqdm(total=size, unit="B", unit_scale=True, desc="import", disable=not progress, dynamic_ncols=True)
            try:
                with _open(path, "r") as file:
                    for batch in _batches(_records(file, summary, failure_log, bar)):
                        _write(store, thumbnails, batch, summary, overwrite)
            except KeyboardInterrupt:
                summary.interrupted = True
            finally:
                bar.close()
    finally:
        failure_log.close()
        summary.failed = failure_log.count
        summary.elapsed_s = round(time.monotonic() - started, 3)
        done = summary.imported + summary.unchanged + summary.kept_newer
        summary.records_per_s = round(done / summary.elapsed_s, 1) if summary.elapsed_s else 0.0
    return summary


def _records(file: IO[str], summary: ImportSummary, failures: FailureLog, bar: Any) -> Iterator[Entry]:
    for number, line in enumerate(file, start=1):
        summary.lines = number
        bar.update(len(line))  # characters: bytes for the ASCII an export mostly is
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except BadLine as bad:
            failures.add(CatalogRow(number, bad.entity_id, "", bad.image_url), bad.code, str(bad))
            summary.by_reason[bad.code] = summary.by_reason.get(bad.code, 0) + 1


def _batches(entries: Iterator[Entry]) -> Iterator[list[Entry]]:
    while batch := list(itertools.islice(entries, BATCH)):
        # Within a batch the last line of an id wins, as it would line by line.
        yield list({entry.record.entity_id: entry for entry in batch}.values())


def _write(
    store: RecordStore, thumbnails: ThumbnailStore | None, batch: list[Entry], summary: ImportSummary, overwrite: bool
) -> None:
    stored = {} if overwrite else store.get_many([entry.record.entity_id for entry in batch])
    fresh = []
    for entry in batch:
        existing = stored.get(entry.record.entity_id)
        if existing == entry.record:
            summary.unchanged += 1
        elif existing is not None and _newer(existing, entry.record):
            summary.kept_newer += 1
        else:
            fresh.append(entry)
    kept = {entry.record.entity_id: entry.thumbnail for entry in fresh if entry.thumbnail}
    if kept and thumbnails is not None:  # before the records (DupcheckService.save says why)
        thumbnails.put_many(kept)
    if fresh:
        summary.imported += store.put_many(entry.record for entry in fresh)


def _newer(a: HashRecord, b: HashRecord) -> bool:
    """Whether `a` was written after `b` (by their `updated_at`; text order when unparseable)."""
    va, vb = version_of(a.updated_at), version_of(b.updated_at)
    return va > vb if va is not None and vb is not None else a.updated_at > b.updated_at
