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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dupcheck.adapters.opensearch.client import build_client, unavailable_on_outage
from dupcheck.adapters.opensearch.schema import Hnsw, SearchMode, document, index_body, query_body, score_to_distance
from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.models import HashRecord, HashValue, IndexHit, version_of

if TYPE_CHECKING:  # pragma: no cover
    from opensearchpy import OpenSearch

    from dupcheck.core.settings import Settings

log = logging.getLogger(__name__)


class IndexBulkError(IndexUnavailable):
    """Some documents of a bulk upsert were rejected; `failed_ids` names them (retry those)."""

    def __init__(self, message: str, failed_ids: Sequence[str], written: int) -> None:
        super().__init__(message)
        self.failed_ids = list(failed_ids)
        self.written = written


@dataclass(frozen=True, slots=True)
class BulkResult:
    written: int
    stale: int  # refused by external versioning: the index already holds a newer version


class OpenSearchHashIndex:
    """HashIndex over one OpenSearch index.

    `connect` builds the `opensearchpy.OpenSearch` client on first use, so constructing the
    adapter (at a Lambda's cold start) does no I/O and imports nothing heavy; tests pass a client
    over a stubbed transport.
    """

    def __init__(
        self,
        index_name: str,
        connect: Callable[[], OpenSearch],
        *,
        bits: int,
        hnsw: Hnsw,
        search_mode: SearchMode = "approximate",
        versioning: bool = True,
        bulk_chunk_size: int = 500,
        gc_deletes: str | None = "1h",
    ) -> None:
        if bits <= 0 or bits % 8:
            raise ValueError(f"bits must be a positive multiple of 8, got {bits}")
        if search_mode not in ("approximate", "exact"):
            raise ValueError(f"search_mode must be 'approximate' or 'exact', got {search_mode!r}")
        self.index_name = index_name
        self._connect = connect
        self._client: OpenSearch | None = None
        self.bits = bits
        self.hnsw = hnsw
        self.search_mode: SearchMode = search_mode
        self.versioning = versioning
        self.bulk_chunk_size = bulk_chunk_size
        self.gc_deletes = gc_deletes

    @classmethod
    def from_settings(cls, settings: Settings, *, bits: int) -> OpenSearchHashIndex:
        """Built by `bootstrap` from the validated settings; the client is built on first use."""

        def connect() -> OpenSearch:
            return build_client(
                settings.opensearch_endpoint,
                settings.aws_region,
                timeout=settings.opensearch_timeout,
                max_retries=settings.opensearch_max_retries,
            )

        hnsw = Hnsw(settings.opensearch_m, settings.opensearch_ef_construction, settings.opensearch_ef_search)
        return cls(
            settings.opensearch_index, connect, bits=bits, hnsw=hnsw, search_mode=settings.opensearch_search_mode
        )

    @property
    def client(self) -> OpenSearch:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _outage(self, action: str) -> Any:
        return unavailable_on_outage(action, self.index_name)

    # -- schema (ProvisionedIndex) ------------------------------------------------------------

    def index_body(self) -> dict[str, Any]:
        return index_body(self.bits, self.hnsw, self.gc_deletes)

    def ensure_index(self) -> bool:
        """Create the index if it is missing; returns True when it was created."""
        from opensearchpy import exceptions as os_exc

        with self._outage("create index"):
            if self.client.indices.exists(index=self.index_name):
                return False
            try:
                self.client.indices.create(index=self.index_name, body=self.index_body())
            except os_exc.RequestError as exc:
                # Another instance created it between our check and our create: that is fine.
                if "resource_already_exists_exception" in str(exc.error):
                    return False
                raise
        return True

    def refresh(self) -> None:
        """Make every write visible to search and count (writes use refresh=false)."""
        with self._outage("refresh"):
            self.client.indices.refresh(index=self.index_name)

    # -- writes -------------------------------------------------------------------------------

    def _version(self, record: HashRecord) -> dict[str, Any]:
        if not self.versioning:
            return {}
        version = version_of(record.updated_at)
        if version is None:
            log.warning("record %s has an unparsable updated_at; indexing unversioned", record.entity_id)
            return {}
        return {"version": version, "version_type": "external_gte"}

    def upsert(self, record: HashRecord) -> None:
        from opensearchpy import exceptions as os_exc

        body = document(record, self.bits)
        with self._outage("index"):
            try:
                self.client.index(
                    index=self.index_name, id=record.entity_id, body=body, refresh=False, **self._version(record)
                )
            except os_exc.ConflictError:
                log.info("stale upsert of %s ignored: the index holds a newer version", record.entity_id)

    def remove(self, entity_id: str, version: int | None = None) -> None:
        """Delete; absent is fine. With `version`, a delete older than the document is ignored."""
        from opensearchpy import exceptions as os_exc

        params: dict[str, Any] = {}
        if version is not None and self.versioning:
            params = {"version": version, "version_type": "external"}
        with self._outage("delete"):
            try:
                self.client.delete(index=self.index_name, id=entity_id, refresh=False, **params)
            except os_exc.NotFoundError as exc:
                # 404 for a missing *document* is the idempotent case; a missing *index* is not.
                if "index_not_found_exception" in str(exc.error):
                    raise
            except os_exc.ConflictError:
                log.info("stale remove of %s ignored: the index holds a newer version", entity_id)

    def remove_versioned(self, entity_id: str, version: int) -> None:
        """VersionedIndex: the stream handler's delete (see handlers/stream_sync.py)."""
        self.remove(entity_id, version=version)

    def _actions(self, records: Iterable[HashRecord]) -> Iterator[dict[str, Any]]:
        for record in records:
            yield {
                "_op_type": "index",
                "_index": self.index_name,
                "_id": record.entity_id,
                "_source": document(record, self.bits),
                **self._version(record),
            }

    def upsert_many(self, records: Iterable[HashRecord]) -> int:
        """Bulk upsert in chunks; returns how many documents were written (stale ones count as
        done). Raises IndexBulkError listing the ids OpenSearch rejected for another reason."""
        return self.upsert_many_detailed(records).written

    def upsert_many_detailed(self, records: Iterable[HashRecord]) -> BulkResult:
        from opensearchpy import helpers

        with self._outage("bulk"):
            ok, errors = helpers.bulk(
                self.client, self._actions(records), chunk_size=self.bulk_chunk_size,
                raise_on_error=False, refresh=False,
            )  # fmt: skip
        failed: list[str] = []
        stale = 0
        reasons: dict[str, str] = {}
        for error in errors:
            info: dict[str, Any] = next(iter(error.values()), {}) if isinstance(error, dict) else {}
            if info.get("status") == 409:
                stale += 1
                continue
            failed.append(str(info.get("_id", "?")))
            reason = info.get("error")
            reasons.setdefault(str(info.get("status")), str(reason.get("type") if isinstance(reason, dict) else reason))
        if failed:
            summary = ", ".join(f"{status}: {why}" for status, why in reasons.items())
            raise IndexBulkError(
                f"OpenSearch bulk rejected {len(failed)} documents ({summary}): {failed[:20]}",
                failed_ids=failed,
                written=int(ok) + stale,
            )
        return BulkResult(written=int(ok) + stale, stale=stale)

    # -- reads --------------------------------------------------------------------------------

    def count(self) -> int:
        with self._outage("count"):
            return int(self.client.count(index=self.index_name)["count"])

    def search(self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None) -> list[IndexHit]:
        """The k nearest documents to any of `hashes` (one `_msearch`), each at its best distance."""
        if not hashes or k <= 0:
            return []
        lines: list[dict[str, Any]] = []
        for h in hashes:
            if h.bits != self.bits:
                raise ValueError(f"query hash has {h.bits} bits; the index holds {self.bits}")
            body = query_body(h, k, mode=self.search_mode, ef_search=self.hnsw.ef_search, max_distance=max_distance)
            lines += [{"index": self.index_name}, body]
        with self._outage("search"):
            response = self.client.msearch(body=lines)
        best: dict[str, IndexHit] = {}
        for item in response.get("responses", []):
            if "error" in item:
                error = item["error"]
                reason = error.get("type") if isinstance(error, dict) else error
                raise IndexUnavailable(f"OpenSearch search failed: HTTP {item.get('status')} {reason}")
            for hit in item.get("hits", {}).get("hits", []):
                distance = score_to_distance(float(hit["_score"]))
                entity_id = str(hit["_id"])
                if (max_distance is not None and distance > max_distance) or (
                    entity_id in best and best[entity_id].distance <= distance
                ):
                    continue
                best[entity_id] = IndexHit(entity_id, distance)
        return sorted(best.values(), key=lambda h: (h.distance, h.entity_id))[:k]
