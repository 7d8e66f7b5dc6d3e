"""HashIndex on OpenSearch k-NN binary vectors (faiss HNSW, Hamming space).

Why OpenSearch: the catalog must be searchable by Hamming distance at scale from a stateless
Lambda; OpenSearch >= 2.16 indexes `knn_vector` fields with `data_type: binary` in Hamming
space, and the score `1/(1+d)` converts back to the exact integer distance (schema.py).

Versioning: documents carry an external version derived from `updated_at` (epoch ms), so a
stale stream record (an old INSERT replayed after a REMOVE or a newer MODIFY) is refused by
OpenSearch with 409 and ignored here, instead of resurrecting or downgrading a document.
Upserts use `external_gte` (a replay of the same record rewrites it: idempotent); deletes use
`external` with a version the stream handler derives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dupcheck.adapters.opensearch.base import BulkResult, IndexBulkError, OpenSearchIndex, connector
from dupcheck.adapters.opensearch.schema import (
    Hnsw,
    SearchMode,
    document,
    index_body,
    part_field,
    query_body,
    score_to_distance,
)
from dupcheck.core.models import HashPart, HashRecord, HashValue, IndexHit, check_parts, version_of

if TYPE_CHECKING:  # pragma: no cover
    from opensearchpy import OpenSearch

    from dupcheck.core.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["BulkResult", "IndexBulkError", "OpenSearchHashIndex"]


class OpenSearchHashIndex(OpenSearchIndex):
    """HashIndex over one OpenSearch index (the shared plumbing: base.py)."""

    def __init__(
        self,
        index_name: str,
        connect: Callable[[], OpenSearch],
        *,
        bits: int,
        hnsw: Hnsw,
        parts: Sequence[HashPart] = (),
        search_mode: SearchMode = "approximate",
        versioning: bool = True,
        bulk_chunk_size: int = 500,
        gc_deletes: str | None = "1h",
    ) -> None:
        if bits <= 0 or bits % 8:
            raise ValueError(f"bits must be a positive multiple of 8, got {bits}")
        checked = check_parts(parts, bits)
        if search_mode not in ("approximate", "exact"):
            raise ValueError(f"search_mode must be 'approximate' or 'exact', got {search_mode!r}")
        super().__init__(
            index_name, connect, versioning=versioning, bulk_chunk_size=bulk_chunk_size, gc_deletes=gc_deletes
        )
        self.bits, self.parts = bits, checked
        self.hnsw = hnsw
        self.search_mode: SearchMode = search_mode

    @classmethod
    def from_settings(cls, settings: Settings, *, bits: int, parts: Sequence[HashPart] = ()) -> OpenSearchHashIndex:
        """Built by `bootstrap` from the validated settings; the client is built on first use."""
        hnsw = Hnsw(settings.opensearch_m, settings.opensearch_ef_construction, settings.opensearch_ef_search)
        return cls(
            settings.opensearch_index, connector(settings), bits=bits, hnsw=hnsw, parts=parts,
            search_mode=settings.opensearch_search_mode,
        )  # fmt: skip

    def index_body(self) -> dict[str, Any]:
        return index_body(self.bits, self.hnsw, self.gc_deletes, self.parts)

    # -- writes -------------------------------------------------------------------------------

    def _version(self, record: HashRecord) -> int | None:
        version = version_of(record.updated_at)
        if version is None and self.versioning:
            log.warning("record %s has an unparsable updated_at; indexing unversioned", record.entity_id)
        return version

    def upsert(self, record: HashRecord) -> None:
        self._index_document(record.entity_id, document(record, self.bits, self.parts), self._version(record))

    def _actions(self, records: Iterable[HashRecord]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield {
                "_op_type": "index",
                "_index": self.index_name,
                "_id": record.entity_id,
                "_source": document(record, self.bits, self.parts),
                **self._versioned(self._version(record)),
            }

    def upsert_many(self, records: Iterable[HashRecord]) -> int:
        """Bulk upsert in chunks; returns how many documents were written (stale ones count as
        done). Raises IndexBulkError listing the ids OpenSearch rejected for another reason."""
        return self.upsert_many_detailed(records).written

    def upsert_many_detailed(self, records: Iterable[HashRecord]) -> BulkResult:
        return self._bulk(self._actions(records))

    # -- reads --------------------------------------------------------------------------------

    def search(
        self,
        hashes: Sequence[HashValue],
        k: int,
        max_distance: int | None = None,
        part_hashes: Sequence[HashValue] = (),
        part_k: int = 0,
    ) -> list[IndexHit]:
        """The k nearest documents to any of `hashes`, each at its best distance, then, part after
        part, up to `part_k` not found before, nearest on the part to one of `part_hashes` (one
        `_msearch`; the parts' searches optional: an index made before a part's field has none)."""
        if not hashes or k <= 0:
            return []
        bodies = []
        for h in hashes:
            if h.bits != self.bits:
                raise ValueError(f"query hash has {h.bits} bits; the index holds {self.bits}")
            bodies.append(
                query_body(h, k, mode=self.search_mode, ef_search=self.hnsw.ef_search, max_distance=max_distance)
            )
        on_part = list(dict.fromkeys(part_hashes)) if part_k > 0 and self.parts else []
        for h in on_part:
            if h.bits != self.parts[0].bits:
                raise ValueError(f"part hash has {h.bits} bits; the index's parts hold {self.parts[0].bits}")
        for number, part in enumerate(self.parts if on_part else (), start=1):
            # The hits found before this part (the whole hash's k, each earlier part's part_k) come
            # back here too: asked for as many more, so that none is counted twice.
            bodies += [
                query_body(h, k + number * part_k, mode=self.search_mode, ef_search=self.hnsw.ef_search,
                           max_distance=None, field=part_field(part))
                for h in on_part
            ]  # fmt: skip
        answers = self._msearch(bodies, optional=len(bodies) - len(hashes))
        found = self._nearest(answers[: len(hashes)], k, max_distance)
        for number in range(len(self.parts) if on_part else 0):
            first = len(hashes) + number * len(on_part)
            found += self._nearest_on_part(answers[first : first + len(on_part)], hashes, part_k, found, max_distance)
        return found

    def _nearest_on_part(
        self,
        answers: Sequence[Sequence[dict[str, Any]]],
        hashes: Sequence[HashValue],
        part_k: int,
        found: Sequence[IndexHit],
        max_distance: int | None,
    ) -> list[IndexHit]:
        """One part's searches' documents, nearest on the part first, not among `found`, each at
        its whole hash's distance to the nearest of `hashes` (from the `hash` they return)."""
        seen = {hit.entity_id for hit in found}
        by_part: dict[str, tuple[int, int]] = {}  # id -> (part distance, whole distance)
        for hits in answers:
            for hit in hits:
                entity_id = str(hit["_id"])
                stored = (hit.get("_source") or {}).get("hash")
                if entity_id in seen or not isinstance(stored, str):
                    continue
                try:
                    whole = min(HashValue.from_hex(stored) - h for h in hashes)
                except ValueError:
                    continue  # a document of another width (a pipeline being replaced)
                part = score_to_distance(float(hit["_score"]))
                if (max_distance is None or whole <= max_distance) and (
                    entity_id not in by_part or part < by_part[entity_id][0]
                ):
                    by_part[entity_id] = (part, whole)
        ranked = sorted(by_part.items(), key=lambda item: (item[1][0], item[0]))[:part_k]
        return [IndexHit(entity_id, whole) for entity_id, (_, whole) in ranked]

    def _nearest(self, answers: Sequence[Sequence[dict[str, Any]]], k: int, max_distance: int | None) -> list[IndexHit]:
        best: dict[str, IndexHit] = {}
        for hits in answers:
            for hit in hits:
                distance = score_to_distance(float(hit["_score"]))
                entity_id = str(hit["_id"])
                if (max_distance is not None and distance > max_distance) or (
                    entity_id in best and best[entity_id].distance <= distance
                ):
                    continue
                best[entity_id] = IndexHit(entity_id, distance)
        return sorted(best.values(), key=lambda h: (h.distance, h.entity_id))[:k]
