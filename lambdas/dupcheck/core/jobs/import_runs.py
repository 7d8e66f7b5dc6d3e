"""How an import runs on AWS: a dispatcher sends the catalog's rows to a queue, a worker imports
them a few at a time. Both talk to ports only; the Lambda handlers wire SQS, S3 and DynamoDB.

Dispatching (one invocation per job, continued by itself past Lambda's 15 minutes):
* a start message claims the job (queued -> running, with the message's id as the dispatch
  token): a second start of the same job (a duplicate message, the S3 event of a catalog the
  dispatcher kept itself) finds it claimed by another token and is dropped, while a retry of
  the winning message (same id) resumes it;
* the catalog is read through first (`survey`: so the job has its total, an oversize one fails
  before any row is imported, and the rows a later row of the same id replaces are known; a
  continued dispatch reads it again), then its rows are sent, from `dispatched` on: a row the
  catalog itself makes invalid (no id, a relative path) is recorded as a failure here, a
  replaced one as replaced; the others go to the queue.

Importing a row follows backfill's rule, with the record store as the journal: a row whose
record exists with the same image_url and the current pipeline is skipped without a download;
the same picture with a new SKU is rewritten without one. A transient failure (the image host's
429/5xx, a timeout, the store) is retried by the queue itself (the message comes back after its
visibility timeout) until the last attempt, where it becomes the row's failure like any other.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from typing import Protocol

from dupcheck.core.catalog.gate import EXPIRED, Passage
from dupcheck.core.catalog.kept_images import KeptImageLifecycle, kept_gone_message
from dupcheck.core.catalog.records import build_entry
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.catalog.writer import RecordWriter, Saved
from dupcheck.core.errors import (
    DupcheckError,
    IndexUnavailable,
    KeptImageGone,
    ServerBusy,
    StoreUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from dupcheck.core.fingerprint.hashing import HashPipeline
from dupcheck.core.jobs.catalog_rows import row_failure
from dupcheck.core.jobs.imports import (
    DUPLICATE_CODE,
    STARTABLE,
    RowVerdict,
    Survey,
    catalog_rows,
    check_catalog,
    job_holder,
    survey,
)
from dupcheck.core.models import (
    DEFAULT_MARKS,
    CatalogRow,
    Claim,
    Entry,
    FindResult,
    Fingerprint,
    HashRecord,
    ImportJob,
    JobStatus,
    Marks,
    Match,
    OnDuplicate,
    Outcome,
    RowResult,
    Source,
    Verdict,
    utc_now,
)
from dupcheck.core.ports import (
    CatalogFiles,
    CheckedPictures,
    DispatchedJobs,
    HashIndex,
    ImageFetcher,
    ImportJobs,
    RecordStore,
    RowQueue,
    ThumbnailStore,
)

log = logging.getLogger(__name__)

SEND_BATCH = 100  # rows sent (and progress saved) per step; cancellation is checked every step
ENOUGH_TIME_S = 60.0  # the dispatcher hands over to a fresh invocation when less is left
MAX_ATTEMPTS = 3  # deliveries of a row before a transient failure is its outcome (infra's queue keeps 5)


class Continuation(Protocol):
    """Hands an unfinished dispatch over to a fresh invocation."""

    def __call__(self, job_id: str, token: str) -> None: ...


class Dispatch(StrEnum):
    SENT = "sent"  # every row is sent or recorded
    CONTINUED = "continued"  # handed over to a fresh invocation
    DROPPED = "dropped"  # not this message's job to dispatch (claimed, cancelled, gone)
    FAILED = "failed"  # the catalog cannot be read: the job failed


@dataclass
class Dispatcher:
    jobs: DispatchedJobs
    catalogs: CatalogFiles
    queue: RowQueue
    fetch_catalog: Callable[[str], bytes]  # the safe fetcher, with the catalog's byte limit
    max_catalog_bytes: int
    continue_later: Continuation
    pictures: KeptImageLifecycle | None = None  # the kept images rows name: held before the rows are sent

    def dispatch(self, job_id: str, token: str, *, resumed: bool, time_left_s: Callable[[], float]) -> Dispatch:
        """Dispatch one job: `token` is the start message's id (or, `resumed`, the token a
        continuation message carries)."""
        job = self.jobs.claim(job_id, token, {JobStatus.RUNNING} if resumed else STARTABLE)
        if job is None:
            log.info("import %s is not this message's to dispatch", job_id)
            return Dispatch.DROPPED
        try:
            if job.rows is None and job.source is Source.CATALOG_URL and job.catalog_url:
                data = self.fetch_catalog(job.catalog_url)
                check_catalog(data, job.options, self.max_catalog_bytes)
                self.catalogs.put(job.job_id, data)
            found = survey(lambda: self.catalogs.open(job_id), job.options)
            if job.rows is None:
                counted = self.jobs.transition(job_id, JobStatus.RUNNING, allowed_from={JobStatus.RUNNING},
                                               rows=found.rows)  # fmt: skip
                if counted is None:
                    return Dispatch.DROPPED  # cancelled while the catalog was read
                job = counted
        except DupcheckError as exc:
            self.jobs.transition(job_id, JobStatus.FAILED, allowed_from={JobStatus.RUNNING}, error=exc.message)
            return Dispatch.FAILED
        return self._send(job, token, found, time_left_s)

    def _send(self, job: ImportJob, token: str, found: Survey, time_left_s: Callable[[], float]) -> Dispatch:
        start = self.jobs.dispatched(job.job_id)
        with self.catalogs.open(job.job_id) as raw:
            rows = islice(catalog_rows(raw, job.options), start, None)
            sent = start
            while batch := list(islice(rows, SEND_BATCH)):
                current = self.jobs.get(job.job_id)
                if current is None or current.status is not JobStatus.RUNNING:
                    return Dispatch.DROPPED  # cancelled: stop sending
                outcomes = [found.settled(r) for r in batch]  # replaced, or failed by the catalog itself
                settled = [outcome for outcome in outcomes if outcome is not None]
                if self.pictures is not None:  # a picture uploaded a day before its import must not expire
                    self.pictures.pin((r.image_url for r in batch), job_holder(job.job_id))
                self.queue.send(job.job_id, [r for r, outcome in zip(batch, outcomes, strict=True) if outcome is None])
                if settled:
                    finish_if_complete(self.jobs, self.jobs.record(job.job_id, settled))
                sent += len(batch)
                self.jobs.mark_dispatched(job.job_id, token, sent)
                if time_left_s() < ENOUGH_TIME_S:
                    self.continue_later(job.job_id, token)
                    return Dispatch.CONTINUED
        finish_if_complete(self.jobs, self.jobs.get(job.job_id))  # an empty catalog is done at once
        return Dispatch.SENT


def finish_if_complete(jobs: ImportJobs, job: ImportJob | None) -> ImportJob | None:
    """Mark a running job done once every row has its outcome (whoever records the last one)."""
    if job is not None and job.status is JobStatus.RUNNING and job.complete:
        return jobs.transition(job.job_id, JobStatus.DONE, allowed_from={JobStatus.RUNNING}) or job
    return job


# -- importing rows (the worker) ------------------------------------------------------------------


class Retry(Exception):
    """A row that failed for a reason that may pass (the queue delivers it again)."""

    def __init__(self, cause: DupcheckError) -> None:
        super().__init__(cause.message)
        self.cause = cause


def transient(exc: DupcheckError) -> bool:
    """Worth another attempt: the store or the index, a timeout, a connection error, the image
    host's 429 or 5xx (UpstreamStatusError says which statuses), as backfill retries them, or no
    decoding memory free in this invocation (other rows held it)."""
    if isinstance(exc, StoreUnavailable | IndexUnavailable | UpstreamTimeout | ServerBusy):
        return True
    return isinstance(exc, UpstreamError) and bool(getattr(exc, "retryable", True))


# -- the duplicate gate of a job's rows (core/catalog/gate.py) ---------------------------------------------


@dataclass
class JobGate:
    """One job's duplicate gate for its rows: each hashed row goes through the service's gate
    (`Registrar.admit`, core/catalog/gate.py) against the catalog, the writes in flight (other rows
    of this job among them, whichever worker holds them) and those the index does not show yet;
    the first row to claim a picture in the jobs store (its hash, so every worker agrees) names a
    later row of the same picture by its row number."""

    service: DupcheckService
    jobs: ImportJobs
    job_id: str
    policy: OnDuplicate
    marks: Marks = DEFAULT_MARKS  # the job's: what a mark on the product means

    def admit(self, entry: Entry) -> Passage:
        """The gate's passage for a row's picture (the costly half: run on many threads). A row does
        not wait for the writes in flight it lost to (a batch's rows commit together): its outcome
        names the one it lost to."""
        return self.service.registrar.admit(entry, self.policy, settle_s=0, marks=self.marks)

    def decide(self, row: CatalogRow, entry: Entry, passage: Passage) -> RowResult | None:
        """The row's outcome from its passage. None: store it, nothing to say. `done`: store it,
        then record this, which names its duplicates (warn). `skipped`/`failed`: it was refused
        (skip, reject): nothing to store."""
        if not passage.checked:
            return None
        found = check_row(self.service, self.jobs, self.job_id, row, entry.record.hash.hex, passage.duplicates)
        if passage.passed:
            if self.policy.rule.stores:
                return found
            if found is None or self.service.parts.gate.claims is not None:
                return None  # the claims decided which row of a picture is stored
            # No claims kept (a deployment without a claims table): the row that claimed the picture
            # first in the jobs store is the one stored, as before claims.
        return self.refused(row, found or duplicate_of(row, passage.duplicates[0].entity_id))

    def beaten(self, row: CatalogRow, beaten_by: str) -> RowResult:
        """A row that passed the gate but whose claim another write fenced before it was stored."""
        if beaten_by == EXPIRED:
            return RowResult.failure(row, "gate_expired", "the duplicate check took longer than its lease and "
                                     "another write took over: import the row again")  # fmt: skip
        return self.refused(row, duplicate_of(row, beaten_by))

    def refused(self, row: CatalogRow, found: RowResult) -> RowResult:
        if not self.policy.rule.fails:
            return dataclasses.replace(found, outcome=Outcome.SKIPPED, code=DUPLICATE_CODE)
        return dataclasses.replace(found, outcome=Outcome.FAILED, code="duplicate_image")


def duplicate_of(row: CatalogRow, entity_id: str) -> RowResult:
    """A row found a duplicate of `entity_id`: a write of the same picture stored at the same moment."""
    return RowResult(row.row, Outcome.DONE, row.entity_id, row.image_url, "",
                     f"row {row.row}: {entity_id!r} has its picture (stored at the same moment)",
                     verdict=RowVerdict.DUPLICATE, duplicate_of=entity_id)  # fmt: skip


def check_row(
    service: DupcheckService, jobs: ImportJobs, job_id: str, row: CatalogRow, picture: str, matches: Sequence[Match]
) -> RowResult | None:
    """The row as a duplicate (outcome `done`): of the job's first row with the same picture when
    that is what it found (or found nothing else), else of its best match with the verdict duplicate
    (a catalog item, or a write of it in flight); None when it is neither."""
    first_row, first_id = jobs.claim_picture(job_id, picture, row.row, row.entity_id)
    earlier = first_row != row.row and first_id != row.entity_id
    best = next((m for m in matches if m.verdict is Verdict.DUPLICATE), None)
    if best is None and not earlier:
        return None
    if best is not None and not (earlier and first_id == best.entity_id):
        of, of_row = best.entity_id, 0
        message = f"row {row.row}: the catalog already has its picture as {of!r}: {best.edit_summary or 'duplicate'}"
    else:
        of, of_row, best = first_id, first_row, None
        message = f"row {row.row}: row {first_row} ({first_id!r}) of the same catalog has the same picture"
    return RowResult(row.row, Outcome.DONE, row.entity_id, row.image_url, "", message,
                     verdict=RowVerdict.DUPLICATE, duplicate_of=of, duplicate_row=of_row,
                     match=best.to_dict() if best is not None else None)  # fmt: skip


@dataclass
class EarlierRows:
    """A check job's rows checked so far, as its later rows are judged against them: an import
    stores its rows, so a later row of the same file meets an earlier one in the catalog (the gate
    judges it there); a check job stores nothing, so it keeps each row's picture here (a port,
    `CheckedPictures`) and searches them in an index of their hashes keyed by row number (built
    from what is kept when the job resumes). Only rows that duplicate nothing are kept: a later
    copy names the first row of its picture. One caller at a time, batches in catalog order."""

    pictures: CheckedPictures
    index: HashIndex  # empty: filled from `pictures` on first use
    job_id: str
    marks: Marks = DEFAULT_MARKS  # the job's: what a mark on the product means
    _loaded: bool = field(default=False, init=False)

    def resume_at(self, row: int) -> None:
        """The job goes on at `row`: forget what a stopped run kept from there on (checked again)."""
        self.pictures.forget_from(self.job_id, row)
        self._loaded = False

    def duplicates(
        self, service: DupcheckService, batch: Sequence[tuple[CatalogRow, Fingerprint, Entry]], threads: int
    ) -> list[RowResult | None]:
        """Each row of `batch` (in catalog order) as a duplicate of an earlier row of the file, the
        kept ones and those before it in the batch, or None; the rows that are none are kept. The
        rows are judged on `threads` threads, each against as many of the nearest earlier rows as
        the gate judges of the catalog (`candidate_pool`), then decided in order."""
        self._load()
        pending = {row.row: entry for row, _, entry in batch}
        for number, entry in pending.items():  # searchable by the rows after them in the batch
            self.index.upsert(dataclasses.replace(entry.record, entity_id=str(number)))
        with ThreadPoolExecutor(max_workers=max(1, min(threads, len(batch)))) as pool:
            judged = list(pool.map(lambda item: self._judge(service, item[0], item[1], pending, len(batch)), batch))
        out: list[RowResult | None] = []
        kept: set[int] = set()
        for (row, _, entry), matches in zip(batch, judged, strict=True):
            # A batch row before it that is a duplicate itself is not kept: its original is named instead.
            best = next(((n, m) for n, m in matches if m.verdict is Verdict.DUPLICATE
                         and (n not in pending or n in kept)), None)  # fmt: skip
            if best is None:
                self.pictures.add(self.job_id, row.row, entry)
                kept.add(row.row)
                out.append(None)
                continue
            earlier, match = best
            message = (f"row {row.row}: row {earlier} ({match.entity_id!r}) of the same catalog has the same picture: "
                       f"{match.edit_summary or 'duplicate'}")  # fmt: skip
            out.append(RowResult(row.row, Outcome.DONE, row.entity_id, row.image_url, "", message,
                                 verdict=RowVerdict.DUPLICATE, duplicate_of=match.entity_id, duplicate_row=earlier,
                                 match=match.to_dict()))  # fmt: skip
        for number in pending.keys() - kept:
            self.index.remove(str(number))
        return out

    def _judge(
        self, service: DupcheckService, row: CatalogRow, query: Fingerprint, pending: Mapping[int, Entry], extra: int
    ) -> list[tuple[int, Match]]:
        """The earlier rows nearest to the row's picture, judged: (row number, match), best first."""
        pipeline = service.parts.pipeline
        pool = pipeline.candidate_pool(CHECK_TOP)
        # `extra` more: the batch's later rows are in the index too, and left out here.
        hits = self.index.search(query.search_hashes, pool + extra, part_hashes=pipeline.part_hashes(query),
                                 part_k=pipeline.part_pool)  # fmt: skip
        wanted = pool + pipeline.part_pool * len(pipeline.index_parts)
        earlier = sorted(((int(h.entity_id), h.distance) for h in hits if int(h.entity_id) < row.row),
                         key=lambda found: found[1])[:wanted]  # fmt: skip
        if not earlier:
            return []
        kept = self.pictures.entries(self.job_id, [n for n, _ in earlier if n not in pending])
        # (A row the index holds but the file not: one a failed batch left behind, passed over.)
        entries = {n: entry for n, _ in earlier if (entry := pending.get(n) or kept.get(n)) is not None}
        found = [(n, d) for n, d in earlier if n in entries]
        named = {entries[n].record.entity_id: n for n, _ in found}
        matches = service.lookups.judge_pictures(query, [(entries[n], d) for n, d in found], self.marks)
        return [(named[m.entity_id], m) for m in matches]

    def _load(self) -> None:
        if not self._loaded:
            for number, picture in self.pictures.hashes(self.job_id):
                self.index.upsert(HashRecord(str(number), "", "", picture, ""))
            self._loaded = True


@dataclass(frozen=True)
class _Looked:
    """A checked row's look-up: its catalog matches, and (with earlier rows kept) the query and the
    entry to keep of it, from the same hashing."""

    found: FindResult
    query: Fingerprint | None = None
    entry: Entry | None = None


@dataclass
class RowChecker:
    """A check job's rows (`mode: check`): each downloaded and looked up as find_similar does,
    nothing stored. A row's result is its verdict, its best match (with its edits) and what it
    duplicates: a catalog item, or an earlier row of the same file with the same picture: the
    same hash (any deployment), or judged the same picture as an imported row would be against
    the rows before it (where `earlier` keeps them: the local server)."""

    service: DupcheckService
    jobs: ImportJobs
    threads: int = 8  # downloads (and look-ups) at once
    earlier: EarlierRows | None = None

    def check_rows(
        self, job_id: str, rows: Sequence[CatalogRow], final: Callable[[CatalogRow], bool], marks: Marks | None = None
    ) -> list[RowResult | Retry]:
        """Each row checked (`marks`: the job's, what a mark on the product means)."""
        if not rows:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.threads, len(rows)))) as pool:
            looked = list(pool.map(lambda row: self._look(row, final, marks), rows))
        # The pictures claimed in catalog order: of two rows of the batch with one picture, the earlier claims it.
        out: dict[int, RowResult | Retry] = {}
        unmatched: list[tuple[int, _Looked]] = []
        for i, (row, found) in enumerate(zip(rows, looked, strict=True)):
            if not isinstance(found, _Looked):
                out[i] = found
                continue
            try:
                duplicate = check_row(self.service, self.jobs, job_id, row, found.found.query_hash.hex,
                                      found.found.matches)  # fmt: skip
            except DupcheckError as exc:
                out[i] = RowImporter._retry_or_fail(row, exc, final)
                continue
            if duplicate is not None:
                out[i] = duplicate
            else:
                unmatched.append((i, found))
        earlier = self._earlier(rows, unmatched, final)
        for i, found in unmatched:
            out[i] = earlier.get(i) or self._verdict(rows[i], found.found)
        return [out[i] for i in range(len(rows))]

    def _earlier(
        self, rows: Sequence[CatalogRow], unmatched: Sequence[tuple[int, _Looked]], final: Callable[[CatalogRow], bool]
    ) -> dict[int, RowResult | Retry]:
        """The rows that duplicate no catalog item, judged against the earlier rows (where kept)."""
        if self.earlier is None:
            return {}
        batch = [(i, rows[i], found.query, found.entry) for i, found in unmatched
                 if found.query is not None and found.entry is not None]  # fmt: skip
        if not batch:
            return {}
        try:
            judged = self.earlier.duplicates(self.service, [(row, q, e) for _, row, q, e in batch], self.threads)
        except DupcheckError as exc:  # the kept images cannot be read or written: the batch tries again
            return {i: RowImporter._retry_or_fail(row, exc, final) for i, row, _, _ in batch}
        return {i: result for (i, _, _, _), result in zip(batch, judged, strict=True) if result is not None}

    def _look(
        self, row: CatalogRow, final: Callable[[CatalogRow], bool], marks: Marks | None
    ) -> _Looked | RowResult | Retry:
        if row.error is not None:
            return RowResult.failure(row, *row.error)
        try:
            data = self.service.lookups.fetch(row.image_url)
            if self.earlier is None:
                return _Looked(self.service.lookups.find_similar_bytes(data, top=CHECK_TOP, marks=marks))
            entry, query = self.service.registrar.query_entry(entity_id=row.entity_id, sku=row.sku,
                                                              image_url=row.image_url, data=data)  # fmt: skip
            return _Looked(self.service.lookups.find_similar_query(query, CHECK_TOP, marks), query, entry)
        except DupcheckError as exc:
            return RowImporter._retry_or_fail(row, exc, final)
        except Exception as exc:  # noqa: BLE001 - one row's bug is that row's failure, logged
            log.exception("check of row %s (%s) failed", row.row, row.entity_id)
            return RowResult.failure(row, "internal_error", f"{type(exc).__name__}: {exc}")

    @staticmethod
    def _verdict(row: CatalogRow, result: FindResult) -> RowResult:
        """A row that duplicates nothing: similar (its best catalog match is alike) or new."""
        best = result.matches[0] if result.matches else None
        verdict = RowVerdict.SIMILAR if best is not None and best.verdict is Verdict.SIMILAR else RowVerdict.NEW
        return RowResult(row.row, Outcome.DONE, row.entity_id, row.image_url, verdict=verdict,
                         match=best.to_dict() if best is not None else None)  # fmt: skip


CHECK_TOP = 3  # matches a checked row is judged against: its best is kept


def unchanged(record: HashRecord | None, row: CatalogRow, algo: str) -> bool:
    """The store already holds this row's picture, hashed by the current pipeline."""
    return record is not None and record.image_url == row.image_url and record.hash_algo == algo


@dataclass
class RowImporter:
    writer: RecordWriter  # the one write path (core/catalog/writer.py), with the gate's claims where kept
    fetcher: ImageFetcher
    pipeline: HashPipeline
    max_pixels: int
    threads: int = 8  # downloads at once within one invocation

    @property
    def store(self) -> RecordStore:
        return self.writer.store

    @property
    def thumbnails(self) -> ThumbnailStore | None:
        return self.writer.thumbnails  # kept beside the records (None: the check is off)

    def import_rows(
        self, rows: Sequence[CatalogRow], final: Callable[[CatalogRow], bool],
        gate_of: Callable[[CatalogRow], JobGate | None] = lambda _row: None,
    ) -> list[RowResult | Retry]:  # fmt: skip
        """Each row's outcome, in order; a transient failure is a Retry unless `final(row)` says
        this was its last attempt, where it is the row's failure. `gate_of` gives a row's job's
        duplicate gate (None: unchecked)."""
        try:
            existing = self.store.get_many(list(dict.fromkeys(r.entity_id for r in rows)))
            # A record without the thumbnail its pipeline keeps is hashed again, as backfill does.
            for entity_id in self._without_thumbnail(existing, rows):
                del existing[entity_id]
        except StoreUnavailable as exc:
            return [self._retry_or_fail(row, exc, final) for row in rows]
        with ThreadPoolExecutor(max_workers=max(1, min(self.threads, len(rows)))) as pool:
            looked = list(pool.map(lambda row: self._prepare(row, existing.get(row.entity_id), final,
                                                             gate_of(row)), rows))  # fmt: skip
        prepared = [self._decide(row, item, gate_of(row), final) for row, item in zip(rows, looked, strict=True)]
        outcome: dict[int, RowResult | Retry] = {
            i: item for i, item in enumerate(prepared) if isinstance(item, RowResult | Retry)
        }
        writes = {i: item for i, item in enumerate(prepared) if isinstance(item, _Write)}
        if not writes:
            return [outcome[i] for i in range(len(rows))]
        try:
            saved = self.writer.save_many([(w.entry, w.claim) for w in writes.values()])
        except StoreUnavailable as exc:
            for write in writes.values():
                _withdraw(write)
            outcome.update((i, self._retry_or_fail(rows[i], exc, final)) for i in writes)
            return [outcome[i] for i in range(len(rows))]
        for i, write in writes.items():
            outcome[i] = write.outcome(rows[i], saved)
        return [outcome[i] for i in range(len(rows))]

    def _without_thumbnail(self, existing: dict[str, HashRecord], rows: Sequence[CatalogRow]) -> set[str]:
        if self.thumbnails is None or not self.pipeline.keeps_thumbnails:
            return set()
        current = [row.entity_id for row in rows if unchanged(existing.get(row.entity_id), row, self.pipeline.algo)]
        return self.thumbnails.missing(current) if current else set()

    def _decide(
        self, row: CatalogRow, item: Entry | tuple[Entry, Passage] | RowResult | Retry, gate: JobGate | None,
        final: Callable[[CatalogRow], bool],
    ) -> _Write | RowResult | Retry:  # fmt: skip
        """What to write for `row` (its record with its claim, and the outcome to record once it is
        written when the gate warns of a duplicate), or its outcome when nothing is to be written."""
        if isinstance(item, Entry):
            return _Write(item)
        if not isinstance(item, tuple) or gate is None:
            return item if not isinstance(item, tuple) else _Write(item[0], item[1].claim)
        entry, passage = item
        try:
            screened = gate.decide(row, entry, passage)
        except DupcheckError as exc:
            gate.service.parts.gate.withdraw(passage.claim)
            return self._retry_or_fail(row, exc, final)
        if screened is not None and screened.outcome is not Outcome.DONE:
            return screened  # refused: the gate withdrew its claim
        return _Write(entry, passage.claim, warned=screened, gate=gate)

    def _prepare(
        self, row: CatalogRow, record: HashRecord | None, final: Callable[[CatalogRow], bool],
        gate: JobGate | None = None,
    ) -> Entry | tuple[Entry, Passage] | RowResult | Retry:  # fmt: skip
        """The row hashed (with its passage through its job's gate, when it has one), or its outcome
        when nothing is to be written."""
        if unchanged(record, row, self.pipeline.algo):
            assert record is not None
            if record.sku == row.sku:
                return RowResult(row.row, Outcome.SKIPPED)
            return Entry(dataclasses.replace(record, sku=row.sku, updated_at=utc_now()))  # thumbnail kept
        try:
            data = self.fetcher.fetch(row.image_url)
            entry = build_entry(self.pipeline, data, entity_id=row.entity_id, sku=row.sku,
                                image_url=row.image_url, max_pixels=self.max_pixels)  # fmt: skip
            passage = gate.admit(entry) if gate is not None else None
        except DupcheckError as exc:
            return self._retry_or_fail(row, exc, final)
        except Exception as exc:  # noqa: BLE001 - one row's bug is that row's failure, logged
            log.exception("import of row %s (%s) failed", row.row, row.entity_id)
            return RowResult.failure(row, "internal_error", f"{type(exc).__name__}: {exc}")
        return entry if passage is None else (entry, passage)

    @staticmethod
    def _retry_or_fail(row: CatalogRow, exc: DupcheckError, final: Callable[[CatalogRow], bool]) -> RowResult | Retry:
        if transient(exc) and not final(row):
            return Retry(exc)
        return RowResult.failure(row, *row_failure(exc))


@dataclass(frozen=True)
class _Write:
    """A row to store: its entry, the claim it passed the gate with, and what to record once it is
    stored (the duplicates the gate named, with warn)."""

    entry: Entry
    claim: Claim | None = None
    warned: RowResult | None = None
    gate: JobGate | None = None

    def outcome(self, row: CatalogRow, saved: Saved) -> RowResult:
        if self.claim is not None and self.claim.claim_id in saved.beaten and self.gate is not None:
            return self.gate.beaten(row, saved.beaten[self.claim.claim_id])
        if self.entry.record.entity_id in saved.gone:
            return RowResult.failure(row, KeptImageGone.code, kept_gone_message(row.image_url))
        return self.warned or RowResult(row.row, Outcome.DONE)


def _withdraw(write: _Write) -> None:
    if write.gate is not None:
        write.gate.service.parts.gate.withdraw(write.claim)


def results_by_job(pairs: Iterable[tuple[str, RowResult]]) -> dict[str, list[RowResult]]:
    grouped: dict[str, list[RowResult]] = {}
    for job_id, result in pairs:
        grouped.setdefault(job_id, []).append(result)
    return grouped
