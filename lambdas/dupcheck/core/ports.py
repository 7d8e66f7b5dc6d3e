"""The ports the service depends on, and the optional capabilities some adapters add.

Adapters implement them; `bootstrap` picks which. A capability an adapter may or may not have
(an index that creates itself, one that refuses stale deletes) is its own protocol, checked
with `isinstance`, never discovered by `getattr` or by catching a TypeError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from dupcheck.core.models import (
    Decision,
    HashRecord,
    HashValue,
    IndexHit,
    ProductHit,
    ProductVector,
    PutCounts,
    RemovedCopy,
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
    """A store that deletes records only while another exists, atomically (SQLite: one
    transaction; DynamoDB: TransactWriteItems with a ConditionCheck): a keep decision's removal."""

    def delete_keeping(self, entity_ids: Sequence[str], keep: str) -> list[str] | None:
        """The ids deleted (those that existed); None when `keep` was gone (nothing deleted)."""
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
        then up to `part_k` others whose hash begins nearest to one of `part_hashes` (the index's
        first part: the default pipeline's whole-picture half), each at its distance to `hashes`.
        An index kept without that part, or one made before it kept it, adds fewer or none."""
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
