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

Import is idempotent and keeps the newest version of each record, as if the file were written
line by line: a record the store holds with a later `updated_at` is kept (`kept_newer`), an
identical one is not rewritten (`unchanged`), unless `--overwrite`. It writes in batches (into
SQLite, comparing on write: docs/architecture.md, "Records files"), shows progress on a
terminal, and never stops on a bad line: each one goes to the failures file with its line
number and reason.
Export writes to `FILE.partial` and renames it at the end, so a file under the final name is
always whole; `.gz` names are gzip-compressed.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import gzip
import itertools
import json
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import msgspec
from tqdm import tqdm

from dupcheck.core.ids import id_problem
from dupcheck.core.models import Entry, HashRecord, HashValue, PutCounts, features_to_text, utc_now, written_after
from dupcheck.core.ports import NewestPuts, RecordStore, ThumbnailStore
from dupcheck_tools.backfill import FailureLog
from dupcheck_tools.catalog import CatalogError, CatalogRow, local_catalog
from dupcheck_tools.exit_codes import ExitCode

# Records per write: one SQLite transaction, below the change log's 100,000. Each transaction
# rewrites most pages of the id_key index (its keys are random): at 1M records, 10,000 a batch
# wrote 8.4 GB for a 1.3 GB file and 50,000 6.6 GB, for a quarter less CPU (peak RSS 315 -> 476 MB).
BATCH = 50_000
# ...or fewer: a batch ends once its lines' thumbnails hold this much (pictures of ~20 KB: ~13,000
# records), so a batch in memory stays a few hundred MB whatever the file carries.
BATCH_THUMBNAIL_BYTES = 256 * 1024 * 1024
EXPORT_BATCH = 500  # records per read of their thumbnails (one request each on S3, in parallel)
READ_BUFFER = 1 << 20  # bytes per read of the file: Python's 8 KiB made 122,165 read calls for 300,000 lines


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
            while batch := list(itertools.islice(records, EXPORT_BATCH)):
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


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    """A line of an export file as msgspec decodes it: the JSON, the fields' types and the
    features' base64 in one pass in C (a quarter of the time of json, hand checks and binascii).
    Its fields are an export's, in that order."""

    entity_id: Any = None  # any JSON: id_problem says what is wrong with it, as the API would
    sku: str | None = None
    image_url: str | None = None
    hash: str = ""
    hash_algo: str = ""
    updated_at: str | None = None
    features: dict[str, bytes] | None = None
    thumbnail: bytes | None = None  # present when the thumbnail store kept one for the record


_DECODE_LINE = msgspec.json.Decoder(_Line).decode
_FIELDS = ", ".join(_Line.__struct_fields__)


def parse_line(line: bytes | str) -> Entry:
    """One line of an export file -> a record and its thumbnail, or BadLine saying why not."""
    try:
        data = _DECODE_LINE(line)
    except msgspec.ValidationError as exc:  # JSON, but not a record's fields
        raise BadLine("invalid_record", f"{exc} (an export has {_FIELDS})", **_named(line)) from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadLine("invalid_json", f"not JSON: {exc}") from None
    if (problem := id_problem(data.entity_id)) is not None:
        raise BadLine("invalid_id", problem, **_named_in(data))
    if not (data.hash and data.hash_algo):
        missing = ", ".join(name for name in ("hash", "hash_algo") if not getattr(data, name))
        raise BadLine("invalid_record", f"missing {missing}", **_named_in(data))
    try:
        hash_value = HashValue.from_hex(data.hash)
    except ValueError as exc:
        raise BadLine("invalid_record", str(exc), **_named_in(data)) from None
    record = HashRecord(entity_id=data.entity_id, sku=data.sku or "", image_url=data.image_url or "", hash=hash_value,
                        hash_algo=data.hash_algo, updated_at=data.updated_at or utc_now(),
                        features=data.features or {})  # fmt: skip
    return Entry(record, data.thumbnail or b"")


def _named_in(data: _Line) -> dict[str, str]:
    """The id and URL of a line refused after decoding, for its report (built only then)."""
    return {"entity_id": str(data.entity_id or ""), "image_url": data.image_url or ""}


def _named(line: bytes | str) -> dict[str, str]:
    """The id and URL of a line that is JSON but no record, when it has them: for its report."""
    try:
        data = msgspec.json.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {"entity_id": str(data.get("entity_id") or ""), "image_url": str(data.get("image_url") or "")}


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a command's import runs. Its records, lines and
    batches hold no reference cycles (reference counting frees each as the next arrives; a test
    holds that), but every few thousand of them start a collection that walks all the objects
    alive: about a tenth of the parsing thread's time. For a process of its own (the `import`
    command), not a library call: the switch is process-wide."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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
                with open(path, "rb", buffering=READ_BUFFER) as raw, _lines(raw, path) as lines:
                    batches = _batches(_records(lines, summary, failure_log), raw, bar)
                    _write_behind(store, thumbnails, batches, summary, overwrite)
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


def _lines(raw: IO[bytes], path: Path) -> IO[bytes]:
    """The file's lines as bytes (msgspec reads UTF-8 itself), through gzip for a .gz name."""
    if path.name.lower().endswith(".gz"):
        return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def _records(lines: IO[bytes], summary: ImportSummary, failures: FailureLog) -> Iterator[Entry]:
    for number, line in enumerate(lines, start=1):
        summary.lines = number
        if line.isspace():  # a blank line (strip() would copy every line to find out)
            continue
        try:
            yield parse_line(line)
        except BadLine as bad:
            failures.add(CatalogRow(number, bad.entity_id, "", bad.image_url), bad.code, str(bad))
            summary.by_reason[bad.code] = summary.by_reason.get(bad.code, 0) + 1


def _batches(entries: Iterator[Entry], raw: IO[bytes], bar: Any) -> Iterator[list[Entry]]:
    """BATCH records at a time, fewer when their thumbnails reach BATCH_THUMBNAIL_BYTES; the bar
    follows the bytes read of the file (compressed, for .gz)."""
    done = 0
    while batch := _batch(entries):
        bar.update(raw.tell() - done)
        done = raw.tell()
        yield batch
    bar.update(raw.tell() - done)  # what followed the last record: blank or failed lines


def _batch(entries: Iterator[Entry]) -> list[Entry]:
    batch: list[Entry] = []
    thumbnail_bytes = 0
    for entry in entries:
        batch.append(entry)
        thumbnail_bytes += len(entry.thumbnail)
        if len(batch) == BATCH or thumbnail_bytes >= BATCH_THUMBNAIL_BYTES:
            break
    return batch


def _write_behind(store: RecordStore, thumbnails: ThumbnailStore | None, batches: Iterator[list[Entry]],
                  summary: ImportSummary, overwrite: bool) -> None:  # fmt: skip
    """Each batch is written by a thread of its own while the next one is parsed (SQLite works
    without the GIL, DynamoDB waits on the network); at most one more batch waits its turn. On
    an interrupt or an error, batches not started are dropped and the one being written ends.
    A batch's thumbnails are stored before its records can be read (CatalogRecords.save says
    why): into a store that writes the newest itself (SQLite), by a third thread while its
    records' transaction runs, which waits for them before it commits (a v4 export's thumbnails
    are four times its records' bytes: one after the other, the import took twice as long);
    elsewhere, first."""
    newest = store if isinstance(store, NewestPuts) else None

    def put(entries: list[Entry], *, overwrite: bool) -> PutCounts:
        records = [entry.record for entry in entries]
        if newest is None:
            if thumbnails is not None:
                _put_thumbnails(store, thumbnails, entries, overwrite=overwrite)
            return put_newest_by_reading(store, records, overwrite=overwrite)
        if thumbnails is None:
            return newest.put_newest(records, overwrite=overwrite)
        # The thumbnails' choice reads the records as stored before this batch, as it would first.
        stored = thumbnail_writer.submit(_put_thumbnails, store, thumbnails, entries, overwrite=overwrite)
        try:
            return newest.put_newest(records, overwrite=overwrite, before_commit=stored.result)
        finally:
            wait([stored])  # a records write that failed first still lets its thumbnails end

    pending: collections.deque[Future[PutCounts]] = collections.deque()
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="dupcheck-import-thumbnails") as thumbnail_writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="dupcheck-import-writer") as writer,
    ):
        try:
            for batch in batches:
                pending.append(writer.submit(put, batch, overwrite=overwrite))
                if len(pending) > 1:
                    _count(summary, pending.popleft().result())
            while pending:
                _count(summary, pending.popleft().result())
        finally:
            for future in pending:
                if not future.cancel() and future.exception() is None:
                    _count(summary, future.result())  # written after all: counted


def _count(summary: ImportSummary, counts: PutCounts) -> None:
    summary.imported += counts.written
    summary.unchanged += counts.unchanged
    summary.kept_newer += counts.kept_newer


def _put_thumbnails(store: RecordStore, thumbnails: ThumbnailStore, entries: list[Entry], *, overwrite: bool) -> None:
    """The thumbnails of the lines whose records the store will hold, by the rule the write
    applies: a record the store holds in a later version keeps its own thumbnail (the same record
    gets its line's, which it may lack). Only lines that carry a thumbnail are looked up (an
    export of v3 records has none: nothing is read)."""
    carrying = [entry for entry in entries if entry.thumbnail]
    if not carrying:
        return
    current = {} if overwrite else store.get_many(list(dict.fromkeys(e.record.entity_id for e in carrying)))
    winners: dict[str, bytes] = {}
    for entry in entries:  # in order: a later line of an id meets the earlier one, as the records do
        record, held = entry.record, current.get(entry.record.entity_id)
        if overwrite or held is None or not written_after(held.updated_at, record.updated_at):
            current[record.entity_id] = record
            if entry.thumbnail:
                winners[record.entity_id] = entry.thumbnail
            else:
                winners.pop(record.entity_id, None)
    if winners:
        thumbnails.put_many(winners)


def put_newest_by_reading(store: RecordStore, records: Sequence[HashRecord], *, overwrite: bool = False) -> PutCounts:
    """NewestPuts for any store: read the stored versions, compare, write the newer ones (as one
    at a time would: a later record of an id meets the earlier one)."""
    if overwrite:
        store.put_many(records)  # a store's batch keeps the last record of an id, as one at a time would
        return PutCounts(written=len(records))
    stored = store.get_many([record.entity_id for record in records])
    fresh: dict[str, HashRecord] = {}
    unchanged = kept_newer = 0
    for record in records:
        existing = stored.get(record.entity_id)
        if existing == record:
            unchanged += 1
        elif existing is not None and written_after(existing.updated_at, record.updated_at):
            kept_newer += 1
        else:
            fresh[record.entity_id] = stored[record.entity_id] = record
    written = len(records) - unchanged - kept_newer
    if fresh:
        store.put_many(fresh.values())
    return PutCounts(written, unchanged, kept_newer)
