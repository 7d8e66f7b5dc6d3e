"""The ports the service depends on, and the optional capabilities some adapters add.

Adapters implement them; `bootstrap` picks which. A capability an adapter may or may not have
(an index that creates itself, one that refuses stale deletes) is its own protocol, checked
with `isinstance`, never discovered by `getattr` or by catching a TypeError.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import IO, Any, Protocol, runtime_checkable

import numpy as np

from dupcheck.core.models import (
    CatalogRow,
    Claim,
    Claimed,
    ClaimState,
    Decision,
    Entry,
    HashRecord,
    HashValue,
    ImportJob,
    IndexHit,
    JobStatus,
    Position,
    ProductHit,
    ProductVector,
    PutCounts,
    RemovedCopy,
    RowResult,
    ScanJob,
    ScanStatus,
    UploadTarget,
)


@runtime_checkable
class RecordStore(Protocol):
    """Durable home of hash records, keyed by entity_id. Writes are idempotent upserts."""

    def get(self, entity_id: str) -> HashRecord | None: ...

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, HashRecord]: ...

    def put(self, record: HashRecord) -> None: ...

    def put_many(self, records: Iterable[HashRecord]) -> int:
        """Upsert all records; returns how many were written."""
        ...

    def delete(self, entity_id: str) -> bool:
        """Remove a record; False when there was none."""
        ...

    def scan(self, segments: int = 1) -> Iterator[HashRecord]:
        """Every record. `segments` > 1 lets a store that can read in parallel do so (records
        then arrive in no particular order); others ignore it."""
        ...

    def page(self, after: str | None, limit: int, query: str | None = None) -> tuple[list[HashRecord], str | None]:
        """Up to `limit` records after the one with entity_id `after` (None: from the start), in
        the store's own order, keeping those `HashRecord.mentions(query)` when a query is given;
        and the entity_id to continue after, None when nothing is left. A store that reads a
        bounded share of itself per call may return fewer records, even none, with an id to
        continue after (DynamoDB, searching)."""
        ...

    def count(self) -> int:
        """The exact number of records (may read the whole store)."""
        ...

    def approximate_count(self) -> int:
        """A cheap count for hot paths such as a health check (DynamoDB's is hours old)."""
        ...


@runtime_checkable
class NewestPuts(Protocol):
    """A store that keeps the newest version of each record itself, in the write: each record is
    written unless the store holds the same one or one `written_after` it (SQLite: an UPSERT
    whose update has a WHERE), so a bulk import need not read every record first."""

    def put_newest(
        self,
        records: Sequence[HashRecord],
        *,
        overwrite: bool = False,
        before_commit: Callable[[], object] | None = None,
    ) -> PutCounts:
        """Write `records` in their order, as one at a time would (a later one of the same id meets
        the earlier one); `overwrite` writes every one. Counts are per record given.
        `before_commit` runs inside the write, before any of its records can be read: what must
        be stored first (their thumbnails) can be written meanwhile and waited for there; if it
        raises, nothing is written."""
        ...


@runtime_checkable
class KeepingDeletes(Protocol):
    """A store that deletes records only while another exists and each is as it was read,
    atomically (SQLite: one transaction; DynamoDB: one TransactWriteItems, a ConditionCheck and
    conditional deletes): a keep decision's removal."""

    def get_many_consistent(self, entity_ids: Sequence[str]) -> dict[str, HashRecord]:
        """`get_many`, strongly consistent whatever the store's setting: what `delete_keeping` is given."""
        ...

    def delete_keeping(self, records: Sequence[HashRecord], keep: str) -> list[str] | None:
        """Delete these records, each only while it is as read (the same hash, updated_at,
        image_url and sku), and only while the record `keep` exists, in one step. The ids deleted
        (a record gone meanwhile is left out); None when `keep` was gone; RecordsChanged naming
        those changed since they were read (nothing deleted). At most 99 records (DynamoDB's
        transaction: 100 actions)."""
        ...


@runtime_checkable
class HashIndex(Protocol):
    """Nearest-neighbour search over record hashes in Hamming space."""

    def upsert(self, record: HashRecord) -> None: ...

    def upsert_many(self, records: Iterable[HashRecord]) -> int: ...

    def remove(self, entity_id: str) -> None:
        """Remove if present; removing an absent id is not an error (replays are safe)."""
        ...

    def search(
        self,
        hashes: Sequence[HashValue],
        k: int,
        max_distance: int | None = None,
        part_hashes: Sequence[HashValue] = (),
        part_k: int = 0,
    ) -> list[IndexHit]:
        """The k nearest records to any of `hashes`, each at its smallest distance, nearest first;
        then, for each part the index keeps (the pipeline's `index_parts`: the default's two
        halves), in their order, up to `part_k` others not found before whose part is nearest to
        one of `part_hashes`, each at its distance to `hashes`. An index kept without parts, or one
        made before it kept a part, adds fewer or none."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class ProvisionedIndex(Protocol):
    """An index that lives in a service of its own (OpenSearch): it is created on first use, and
    writes become visible to search and count only after a refresh."""

    def ensure_index(self) -> bool:
        """Create the index if it is missing; True when it was created."""
        ...

    def refresh(self) -> None: ...


@runtime_checkable
class LoadingIndex(Protocol):
    """An index that may still be loading its contents (the in-process one, which a server loads
    in the background so it answers at once): until `ready`, a search raises IndexUnavailable."""

    @property
    def ready(self) -> bool: ...


@runtime_checkable
class FollowsStore(Protocol):
    """An index loaded from the store it searches and kept in step with the store's change log
    (the in-process one, adapters/sqlite_store.py's log): the version it reflects, None when it
    was not loaded from such a log. A write logged after it may not be searchable yet
    (core/catalog/gate.py reads those writes beside the index)."""

    source_version: int | None

    def catch_up(self) -> int:
        """Apply what the store logged since `source_version`; how many ids (0: not following)."""
        ...


@runtime_checkable
class VersionedIndex(Protocol):
    """An index that can refuse a delete older than the document it holds (OpenSearch's
    external versioning), so a replayed stream cannot resurrect or remove the wrong version."""

    def remove_versioned(self, entity_id: str, version: int) -> None: ...


@runtime_checkable
class DuplicateReports(Protocol):
    """Where the catalog-wide duplicate report (a scan's, `python -m dupcheck duplicates`') is published."""

    def latest(self) -> Mapping[str, Any] | None:
        """The newest report as its JSON object, or None when none has been published."""
        ...

    def publish(self, files: Mapping[str, bytes]) -> None:
        """Replace the published report with these files (name -> bytes: the JSON `latest` reads,
        written last, and the CSV and page beside it)."""
        ...


@runtime_checkable
class ThumbnailStore(Protocol):
    """A small picture of each catalog image, kept beside its record rather than in it: the
    look-alike check (core/matching/photograph.py) reads it for the one or two candidates a query would call
    duplicates, and the record stays compact for the store and the index. Keyed by entity_id;
    the bytes are the pipeline's own (they name the record hash they were made with)."""

    def put_many(self, thumbnails: Mapping[str, bytes]) -> int:
        """Store (or replace) each entity's thumbnail; returns how many were written."""
        ...

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, bytes]:
        """The thumbnails there are among `entity_ids` (absent ones are left out)."""
        ...

    def missing(self, entity_ids: Sequence[str]) -> set[str]:
        """Those of `entity_ids` without a thumbnail (reindex makes them)."""
        ...

    def delete(self, entity_id: str) -> None:
        """Remove if present; removing an absent one is not an error."""
        ...


@runtime_checkable
class ImageFetcher(Protocol):
    """Downloads an image from an untrusted URL, enforcing address, size and time limits."""

    def fetch(self, url: str) -> bytes: ...


class EmbeddingModel(Protocol):
    """The network: square uint8 RGB pictures (n, INPUT_SIDE, INPUT_SIDE, 3) -> unit vectors (n, DIMENSIONS)."""

    name: str

    def run(self, pictures: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ProductIndex(Protocol):
    """Product vectors by entity_id, and the nearest of them to a query vector."""

    def put_many(self, vectors: Mapping[str, ProductVector]) -> int:
        """Store (or replace) each entity's vector; returns how many were written."""
        ...

    def remove(self, entity_id: str) -> None:
        """Remove if present; removing an absent one is not an error."""
        ...

    def search(self, vector: ProductVector, k: int) -> list[ProductHit]:
        """The k most similar vectors of the same model, most similar first."""
        ...

    def missing(self, entity_ids: Sequence[str]) -> set[str]:
        """Those of `entity_ids` without a vector of the current model (backfill and reindex make them)."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class DuplicateDecisions(Protocol):
    """Where decisions live (SQLite; a DynamoDB table of their own), with the copies of the
    records they removed."""

    def add(self, decision: Decision, removed: Sequence[RemovedCopy]) -> None:
        """Store the decision and the copies, together."""
        ...

    def get(self, decision_id: str) -> Decision | None: ...

    def page(self, limit: int, after: str | None = None) -> tuple[list[Decision], str | None]:
        """The newest decisions first, from after the position `after` (a previous page's); the
        position of the next page, None after the last."""
        ...

    def involving(self, entity_id: str) -> list[Decision]:
        """The decisions not undone that name `entity_id` (as item or other)."""
        ...

    def take_back(self, decision_id: str, at: str) -> tuple[Decision, list[RemovedCopy]] | None:
        """Mark the decision undone at `at` and hand back (and forget) the copies it kept; None when
        there is no such decision or it was undone already (of two undos at once, one gets it)."""
        ...

    def withdraw(self, decision_id: str) -> None:
        """Forget a decision (and its copies) whose removal could not happen."""
        ...


# -- import jobs (their use cases: core/jobs/imports.py; on AWS import_runs.py) ------------------


@runtime_checkable
class ImportJobs(Protocol):
    """Where jobs, their counters and their rows' outcomes live (SQLite; DynamoDB)."""

    def create(self, job: ImportJob) -> None: ...

    def get(self, job_id: str) -> ImportJob | None: ...

    def recent(self, limit: int, after: Position | None = None) -> tuple[list[ImportJob], Position | None]:
        """Jobs newest first, and the position of the next page (None after the last)."""
        ...

    def transition(
        self, job_id: str, to: JobStatus, *, allowed_from: Collection[JobStatus],
        rows: int | None = None, error: str | None = None,
    ) -> ImportJob | None:  # fmt: skip
        """Move the job to `to` if it is in one of `allowed_from` (atomically); sets started_at
        on the first RUNNING, finished_at on a final status, and `rows`/`error` when given.
        None when the job is missing or in another status."""
        ...

    def record(self, job_id: str, results: Sequence[RowResult]) -> ImportJob:
        """Count each row's outcome once (a row already counted is ignored) and keep failures;
        returns the job as it now is."""
        ...

    def failures(self, job_id: str, limit: int, after_row: int = 0) -> tuple[list[RowResult], int | None]:
        """Failed rows in row order after `after_row`, and the row to go on after (None: no more)."""
        ...

    def results(
        self, job_id: str, limit: int, after_row: int = 0, *, duplicates_only: bool = False
    ) -> tuple[list[RowResult], int | None]:
        """Checked rows (those with a `RowResult.verdict`: a check job's rows that were checked, an
        import's duplicates) in row order after `after_row`; only those with a `duplicate_of` with
        `duplicates_only`. (A check job's rows that could not be checked are its `failures`.)"""
        ...

    def claim_picture(self, job_id: str, picture: str, row: int, entity_id: str) -> tuple[int, str]:
        """The first row of the job to claim this picture (a hash's hex): (row, entity_id), now
        this row's when none had claimed it. Atomic across processes: two rows with one picture
        agree on which came first."""
        ...


@runtime_checkable
class CheckedPictures(Protocol):
    """A check job's rows' pictures, kept as the catalog would keep them had the rows been imported
    (the record with its views, the thumbnail), by row: a check job stores nothing in the catalog,
    so its later rows are judged against these, as an import's rows are against the earlier rows it
    stored. Kept while the job runs (a resumed job reads them again), then dropped. Locally a file
    of the data dir; AWS keeps none (a check job there matches rows of one file by their hash only)."""

    def add(self, job_id: str, row: int, entry: Entry) -> None:
        """Keep row `row`'s picture (again: the same row replaces what it kept)."""
        ...

    def hashes(self, job_id: str) -> Iterator[tuple[int, HashValue]]:
        """Every kept row and its record's hash (what an index of them is built from)."""
        ...

    def entries(self, job_id: str, rows: Sequence[int]) -> dict[int, Entry]:
        """The pictures kept for these rows (a row with none is left out)."""
        ...

    def forget_from(self, job_id: str, row: int) -> None:
        """Forget the rows from `row` on: a resumed job checks them again."""
        ...

    def drop(self, job_id: str) -> None:
        """Forget the job's pictures (it has ended)."""
        ...


@runtime_checkable
class CatalogFiles(Protocol):
    """Where a job's catalog is kept while it runs (the data dir; an S3 bucket)."""

    def put(self, job_id: str, data: bytes) -> None: ...

    def open(self, job_id: str) -> ContextManager[IO[bytes]]:
        """The catalog as a seekable binary file; NotFound when none was kept."""
        ...


@runtime_checkable
class PresignedUploads(Protocol):
    """Catalog files a client can upload straight to storage, around the API (S3's presigned
    POST: API Gateway takes at most 10 MB per request)."""

    def upload_target(self, job_id: str, max_bytes: int, expires_s: int) -> UploadTarget: ...


@runtime_checkable
class ResultFiles(Protocol):
    """Where a job's results CSV is written for its client to download, and handed out as a link:
    on AWS the imports bucket (a Lambda's answer holds 6 MB, a results CSV up to a GB). Locally
    there is none: the server streams the CSV as its answer."""

    def link(self, name: str) -> str | None:
        """A download link of the whole file `name`, or None when there is none (yet)."""
        ...

    def write(self, name: str, pieces: Callable[[int], Iterator[tuple[int, bytes]]], *, until: float) -> str | None:
        """Write the file `name` from `pieces(after_row)` (the CSV after that row, each piece with the
        last row it holds), going on from where an earlier call stopped. Its link once whole; None
        when time.monotonic() reached `until` first (what was written is kept for the next call)."""
        ...


@runtime_checkable
class ImportStarter(Protocol):
    """Makes a recorded job run: wakes the local worker; on AWS, sends a catalog URL's job to the
    dispatcher (a kept catalog starts its job itself: S3 announces the new object)."""

    def start(self, job: ImportJob) -> None: ...


# -- duplicate scans (core/jobs/scans.py) -------------------------------------------------------


@runtime_checkable
class ScanJobs(Protocol):
    """Where scans, their progress and their results live (SQLite; the imports' DynamoDB table)."""

    def create(self, job: ScanJob) -> ScanJob:
        """The scan that is active once this returns: `job`, recorded, or the one that was already
        queued or running (then `job` is not recorded)."""
        ...

    def get(self, scan_id: str) -> ScanJob | None: ...

    def recent(self, limit: int) -> list[ScanJob]:
        """The newest scans first."""
        ...

    def transition(
        self, scan_id: str, to: ScanStatus, *, allowed_from: Collection[ScanStatus], error: str | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> ScanJob | None:  # fmt: skip
        """Move the scan to `to` if it is in one of `allowed_from` (atomically; started_at on the
        first RUNNING, finished_at on a final status). None when it is missing or elsewhere."""
        ...

    def progress(self, scan_id: str, phase: str, done: int, total: int | None) -> bool:
        """Where a running scan is; False when it is no longer running (cancelled: its run stops),
        and then it is left alone."""
        ...


@runtime_checkable
class ScanStarter(Protocol):
    """Makes a recorded scan run: wakes the server's scan worker; on AWS, a message to the scan function."""

    def start(self, job: ScanJob) -> None: ...


# -- the duplicate gate's claims (core/catalog/gate.py) -----------------------------------------


@runtime_checkable
class WriteClaims(Protocol):
    """Where claims live, beside the records (SQLite: the records' own file; AWS: a DynamoDB table
    written in one transaction with the records table). Reads are strongly consistent."""

    def open(self, claim: Claim, entry: Entry) -> None:
        """Record a pending claim, with what judging needs of its picture (record and thumbnail)."""
        ...

    def live(self, indexed_through: int | None) -> list[Claim]:
        """Every pending claim (but one whose writer is known gone: SQLite fences it, the process
        that made it no longer runs), and every write an index may not show yet: committed claims
        the index has not confirmed (AWS), or the records changed after the store's change-log
        version `indexed_through` (SQLite; None: the index shows every committed write)."""
        ...

    def entries(self, claims: Sequence[Claim]) -> dict[str, Claimed]:
        """What judging needs of each claim, read consistently: a pending claim's picture (record
        and thumbnail), and for one committed (or committed since it was read) the record it wrote,
        while the store holds it with the claim's hash (its thumbnail is the thumbnail store's).
        Claims that store nothing (withdrawn, beaten) are left out."""
        ...

    def fence(self, claim: Claim, beaten_by: str, now: float) -> ClaimState:
        """Move a pending claim that gives way, or whose lease passed before `now`, to beaten; the
        claim's state after the attempt (committed: it was too late)."""
        ...

    def withdraw(self, claim_id: str) -> None: ...

    def states(self, claims: Sequence[Claim]) -> dict[str, ClaimState]:
        """Where each claim stands now, read consistently (one gone from the claims: committed when
        the store holds its record with its hash, else withdrawn)."""
        ...

    def commit(self, writes: Sequence[tuple[HashRecord, Claim | None]]) -> list[str | None]:
        """Write each record, with its claim's commit in the same transaction (a write without a
        claim, `allow`'s, is recorded as committed where the index lags). Per write, None when it
        was written, else why not: its claim is no longer pending (its `beaten_by`: the entity_id
        that fenced it, or EXPIRED), or KEPT_GONE: the kept image it names is being deleted (where
        the claims hold kept images too: DynamoDB)."""
        ...


@runtime_checkable
class RowQueue(Protocol):
    """Where the dispatcher sends rows, one message each (SQS)."""

    def send(self, job_id: str, rows: Sequence[CatalogRow]) -> None: ...


@runtime_checkable
class DispatchedJobs(ImportJobs, Protocol):
    """Jobs that a dispatcher claims and reports its progress on."""

    def claim(self, job_id: str, token: str, allowed_from: Collection[JobStatus]) -> ImportJob | None:
        """The job, now running under `token`: moved there from `allowed_from`, or already
        running under the same token (a retried message). None otherwise."""
        ...

    def mark_dispatched(self, job_id: str, token: str, rows: int) -> None:
        """Rows sent so far, by the holder of `token`."""
        ...

    def dispatched(self, job_id: str) -> int: ...


# -- kept images (core/catalog/kept_images.py) ------------------------------------------------


@runtime_checkable
class KeptImages(Protocol):
    """Kept images by name. Writes are idempotent (a name is its content)."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes | None: ...

    def exists(self, name: str) -> bool: ...

    def delete(self, name: str) -> bool:
        """Delete the picture; whether there was one."""
        ...


@runtime_checkable
class LockedKeptImages(Protocol):
    """Kept images with a lock of their own, held across every process that keeps or deletes them
    (the data dir's: a file lock), re-entrant within a thread."""

    def lock(self) -> contextlib.AbstractContextManager[object]: ...


@runtime_checkable
class ListedKeptImages(Protocol):
    """Kept images that can be listed with their age: the local sweep's (on AWS, a lifecycle rule)."""

    def names_older_than(self, seconds: float) -> Iterator[str]: ...


@runtime_checkable
class ClaimedKeptImages(Protocol):
    """Kept images that expire unless claimed (S3: a tag its lifecycle rule reads)."""

    def claim(self, name: str) -> bool:
        """A record names the picture: it no longer expires. Whether it was there to claim."""
        ...


@runtime_checkable
class KeptImageUses(Protocol):
    """A record store that can tell whether any record's image_url names a kept image."""

    def uses_kept_image(self, name: str, *, just_changed: str = "") -> bool:
        """`just_changed`: an id whose record was just removed or replaced, read at its latest
        where the store's lookup by picture may lag behind (DynamoDB's index)."""
        ...


@runtime_checkable
class KeptImagePins(Protocol):
    """Holds on kept images by what names them outside the catalog's records (a decision's copy,
    an import job's catalog): `uses_kept_image` counts them, so a held picture is never deleted."""

    def pin_kept(self, names: Collection[str], holder: str) -> None: ...

    def unpin_kept(self, holder: str) -> None: ...

    def pin_holders(self, prefix: str) -> set[str]:
        """The holders whose name starts with `prefix` ("job:"): what a sweep of stale holds reads."""
        ...


@runtime_checkable
class GuardedDeletes(Protocol):
    """Uses of kept images that also guard their deletion where no lock spans the writers (AWS:
    conditional writes, adapters/dynamodb_claims.py): a delete first marks the picture, on the
    condition that nothing uses or holds it; a write naming it is refused while it is marked."""

    def begin_delete(self, name: str, now: float) -> bool: ...

    def end_delete(self, name: str, deleted: bool, now: float) -> None: ...

    def drop_user(self, name: str, entity_id: str) -> None:
        """The record `entity_id` no longer names the picture."""
        ...

    def kept_again(self, name: str) -> None: ...
