"""The three ports the service depends on. Adapters implement them; `bootstrap` picks which."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from dupcheck.core.models import HashRecord, HashValue, IndexHit


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

    def scan(self) -> Iterator[HashRecord]: ...

    def count(self) -> int: ...


@runtime_checkable
class HashIndex(Protocol):
    """Nearest-neighbour search over record hashes in Hamming space."""

    def upsert(self, record: HashRecord) -> None: ...

    def upsert_many(self, records: Iterable[HashRecord]) -> int: ...

    def remove(self, entity_id: str) -> None:
        """Remove if present; removing an absent id is not an error (replays are safe)."""
        ...

    def search(
        self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None
    ) -> list[IndexHit]:
        """The k nearest records to any of `hashes`, each at its smallest distance, nearest first."""
        ...

    def count(self) -> int: ...


@runtime_checkable
class ImageFetcher(Protocol):
    """Downloads an image from an untrusted URL, enforcing address, size and time limits."""

    def fetch(self, url: str) -> bytes: ...
