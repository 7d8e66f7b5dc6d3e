"""Fakes that implement the ports in memory, canned Lambda events and record factories.

One of each: every test that needs a fake fetcher, index or record uses these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dupcheck.core.errors import DupcheckError, UpstreamError
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashPart, HashRecord, HashValue, IndexHit, version_of

EVENTS = Path(__file__).parents[1] / "events"
INDEX_PARTS = get_pipeline().index_parts  # what FakeIndex searches on their own, as served


class FakeFetcher:
    """ImageFetcher over a dict: the service's view of the web. Unknown URLs answer like a 404;
    `errors` maps a URL to the error its fetch raises. Every fetched URL is recorded in `calls`."""

    def __init__(self, images: dict[str, bytes] | None = None, errors: dict[str, DupcheckError] | None = None) -> None:
        self.images = dict(images or {})
        self.errors = dict(errors or {})
        self.calls: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.calls.append(url)
        if url in self.errors:
            raise self.errors[url]
        if url not in self.images:
            raise UpstreamError(f"{url} answered 404")
        return self.images[url]


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class FakeIndex:
    """In-memory HashIndex (exact scan) that also records every call, for handler tests."""

    def __init__(self, parts: Sequence[HashPart] = INDEX_PARTS) -> None:
        self.docs: dict[str, HashRecord] = {}
        self.calls: list[tuple[str, str]] = []
        self.parts = tuple(parts)  # searched on their own, as LocalHashIndex does

    def upsert(self, record: HashRecord) -> None:
        self.calls.append(("upsert", record.entity_id))
        self.docs[record.entity_id] = record

    def upsert_many(self, records: Iterable[HashRecord]) -> int:
        n = 0
        for record in records:
            self.upsert(record)
            n += 1
        return n

    def remove(self, entity_id: str) -> None:
        self.calls.append(("remove", entity_id))
        self.docs.pop(entity_id, None)

    def search(
        self,
        hashes: Sequence[HashValue],
        k: int,
        max_distance: int | None = None,
        part_hashes: Sequence[HashValue] = (),
        part_k: int = 0,
    ) -> list[IndexHit]:
        best: dict[str, int] = {}
        for record in self.docs.values():
            d = min(record.hash - h for h in hashes)
            if max_distance is None or d <= max_distance:
                best[record.entity_id] = d
        ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:k]
        found = [e for e, _ in ranked]
        for part in self.parts if part_hashes and part_k > 0 else ():
            on_part = {
                e: min(part.of(r.hash) - h for h in part_hashes)
                for e, r in self.docs.items()
                if e in best and e not in found
            }
            found += sorted(on_part, key=lambda e: (on_part[e], e))[:part_k]
        return [IndexHit(e, best[e]) for e in found]

    def count(self) -> int:
        return len(self.docs)


class VersionedFakeIndex(FakeIndex):
    """Mimics OpenSearch external versioning: upserts are `external_gte` on updated_at (ms),
    removes are `external` and leave a tombstone; stale writes are ignored, as the adapter does."""

    def __init__(self) -> None:
        super().__init__()
        self.versions: dict[str, int] = {}

    def upsert(self, record: HashRecord) -> None:
        version = version_of(record.updated_at) or 0
        if version < self.versions.get(record.entity_id, -1):
            self.calls.append(("stale-upsert", record.entity_id))
            return
        self.versions[record.entity_id] = version
        super().upsert(record)

    def remove_versioned(self, entity_id: str, version: int) -> None:
        if version <= self.versions.get(entity_id, -1):
            self.calls.append(("stale-remove", entity_id))
            return
        self.versions[entity_id] = version
        super().remove(entity_id)


def make_record(entity_id: str, hash_hex: str = "c3d1a0f08e7c1b2a", **changes: Any) -> HashRecord:
    fields: dict[str, Any] = {
        "entity_id": entity_id,
        "sku": f"SKU-{entity_id}",
        "image_url": f"https://images.example.com/{entity_id}.jpg",
        "hash": HashValue.from_hex(hash_hex),
        "hash_algo": "phash64-v1",
        "updated_at": "2025-03-12T10:00:00.000Z",
        "features": {"colour": b"\x0a\x1b\x2c"},
    }
    fields.update(changes)
    return HashRecord(**fields)


def raw_views(views: Any) -> bytes:
    """Views as `dualphash128-v2` stored them: uint8 luma, then int8 a*b*, uncompressed."""
    luma = np.clip(np.rint(views.luma), 0, 255).astype(np.uint8).tobytes()
    return luma + np.clip(np.rint(views.chroma), -127, 127).astype(np.int8).tobytes()
