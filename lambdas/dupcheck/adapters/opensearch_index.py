"""HashIndex on OpenSearch k-NN binary vectors (faiss HNSW, Hamming space).

Why OpenSearch: the catalog must be searchable by Hamming distance at scale from a stateless
Lambda; OpenSearch >= 2.16 indexes `knn_vector` fields with `data_type: binary` directly in
Hamming space, so a 64-bit perceptual hash is an 8-byte vector and the score `1/(1+d)`
converts back to the exact integer distance.

Choices, each checked against the OpenSearch k-NN documentation and plugin source:
* Mapping: `knn_vector`, `dimension` = hash bits (multiple of 8), `data_type: binary`,
  `method: {name: hnsw, engine: faiss, space_type: hamming, parameters: {m, ef_construction}}`.
  `space_type` sits inside `method`, which 2.16 accepts (top-level `space_type` only from 2.17).
* Values: the hash bytes as *signed* int8 (byte b -> b-256 when b > 127), as the docs require.
* Approximate search: a `knn` query per query hash (all sent in one `_msearch`), with k
  oversampled and `method_parameters.ef_search` (2.16+); the index setting
  `knn.algo_param.ef_search` is the fallback for queries that do not pass it.
* Exact search (`search_mode="exact"`): `script_score` with the k-NN plugin's `knn_score`
  script and `space_type: "hamming"`. Not `hammingbit`: in the plugin, `hammingbit` only
  accepts `long` or `binary` (base64) fields and rejects a `knn_vector`
  ("Incompatible field_type for hammingbit space"), while `hamming` is the space for a binary
  `knn_vector` and takes the same int8 array. Its score is also `1/(1+d)`.
* Versioning: documents carry an external version derived from `updated_at` (epoch ms), so a
  stale stream record (an old INSERT replayed after a REMOVE or a newer MODIFY) is rejected by
  OpenSearch with 409 and ignored here, instead of resurrecting or downgrading a document.
  Upserts use `external_gte` (a replay of the same record rewrites it: idempotent), deletes use
  `external` with a version the stream handler derives. Delete tombstones are kept for
  `index.gc_deletes` (set to 1h here; OpenSearch default 60s), which bounds how late a stale
  INSERT may arrive and still be rejected.

All failures that mean "the index cannot answer now" (connection errors, timeouts, 429, 5xx,
missing index, denied access) become IndexUnavailable (HTTP 503). The client is built with a
short timeout and few retries so a request never hangs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.models import HashRecord, HashValue, IndexHit

if TYPE_CHECKING:  # pragma: no cover - opensearch-py is imported lazily to keep cold starts light
    from opensearchpy import OpenSearch

    from dupcheck.core.settings import Settings

log = logging.getLogger(__name__)

VECTOR_FIELD = "hash_vector"

# Defaults measured with scripts/bench/hnsw_recall.py (docs/hnsw.md), faiss IndexBinaryHNSW on
# 200k random 64-bit hashes with planted near-duplicates at distance 0..10: m=16 reached only
# 0.99 recall of the true nearest at ef_search=128, m=32 reached 1.000 (2000/2000) at
# ef_search=128 and 0.9995 at 64. Random hashes are a hard case for HNSW (no cluster structure),
# so m=32 is worth its memory: ~1.1*(8+8*32) = 290 bytes/vector, 2.9 GB per 10M hashes.
# Oversampling k barely moves recall in faiss (ef is max(ef_search, k)); 4x / at least 50 is a
# cheap margin for OpenSearch's per-segment search and for hits the service filters out.
DEFAULT_M = 32
DEFAULT_EF_CONSTRUCTION = 128
DEFAULT_EF_SEARCH = 128
DEFAULT_OVERSAMPLE = 4
DEFAULT_MIN_CANDIDATES = 50
# OpenSearch caps `k` and `size` at 10,000 per query (index.max_result_window).
MAX_CANDIDATES = 10_000

SearchMode = Literal["approximate", "exact"]


class IndexBulkError(IndexUnavailable):
    """Some documents of a bulk upsert were rejected; `failed_ids` names them (retry those)."""

    def __init__(self, message: str, failed_ids: Sequence[str], written: int) -> None:
        super().__init__(message)
        self.failed_ids = list(failed_ids)
        self.written = written


@dataclass(frozen=True, slots=True)
class BulkResult:
    written: int
    stale: int  # rejected by external versioning: the index already holds a newer version


def to_int8(data: bytes) -> list[int]:
    """Packed hash bytes -> the signed int8 list a binary knn_vector expects."""
    return [b - 256 if b > 127 else b for b in data]


def from_int8(values: Sequence[int]) -> bytes:
    return bytes(v & 0xFF for v in values)


def score_to_distance(score: float) -> int:
    """Hamming score `1/(1+d)` -> integer distance d."""
    if score <= 0:
        raise ValueError(f"not a hamming score: {score}")
    return max(0, round(1.0 / score - 1.0))


def version_of(updated_at: str) -> int | None:
    """`updated_at` (ISO 8601) -> epoch milliseconds, the external version of a document."""
    try:
        moment = datetime.fromisoformat(updated_at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if moment.tzinfo is None:  # naive timestamps are written by dupcheck as UTC
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def build_client(endpoint: str, region: str, *, timeout: float = 5.0, max_retries: int = 1) -> OpenSearch:
    """An OpenSearch client for an AWS domain, signed with SigV4 from the boto3 credential chain.

    No password anywhere: the Lambda role's credentials sign every request (service "es").
    An `http://` endpoint (a local OpenSearch container) is used unsigned.
    """
    from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection

    if not endpoint:
        raise IndexUnavailable("OpenSearch endpoint is not configured (DUPCHECK_OPENSEARCH_ENDPOINT)")
    parsed = urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    secure = parsed.scheme != "http"
    host = parsed.hostname or endpoint
    port = parsed.port or (443 if secure else 9200)
    auth = None
    if secure:
        import boto3

        session = boto3.Session()
        credentials = session.get_credentials()
        region = region or session.region_name or ""
        if credentials is None or not region:
            raise IndexUnavailable("no AWS credentials/region to sign OpenSearch requests")
        auth = AWSV4SignerAuth(credentials, region, "es")
    return OpenSearch(
        hosts=[{"host": host, "port": port}],
        http_auth=auth,
        use_ssl=secure,
        verify_certs=secure,
        connection_class=RequestsHttpConnection,
        timeout=timeout,
        max_retries=max_retries,
        retry_on_timeout=True,
        http_compress=False,
        pool_maxsize=10,
    )


class OpenSearchHashIndex:
    """HashIndex over one OpenSearch index (see module docstring).

    `client` is an `opensearchpy.OpenSearch`; when omitted it is built on first use from
    `endpoint`/`region` (SigV4), so constructing the adapter does no network I/O.
    """

    def __init__(
        self,
        index_name: str,
        *,
        client: OpenSearch | None = None,
        endpoint: str = "",
        region: str = "",
        hash_bits: int = 64,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        oversample: int = DEFAULT_OVERSAMPLE,
        min_candidates: int = DEFAULT_MIN_CANDIDATES,
        search_mode: SearchMode = "approximate",
        timeout: float = 5.0,
        max_retries: int = 1,
        versioning: bool = True,
        bulk_chunk_size: int = 500,
        gc_deletes: str | None = "1h",
        approximate_threshold: int | None = None,
    ) -> None:
        if hash_bits <= 0 or hash_bits % 8:
            raise ValueError(f"hash_bits must be a positive multiple of 8, got {hash_bits}")
        if search_mode not in ("approximate", "exact"):
            raise ValueError(f"search_mode must be 'approximate' or 'exact', got {search_mode!r}")
        self.index_name = index_name
        self._client = client
        self.endpoint = endpoint
        self.region = region
        self.hash_bits = hash_bits
        self.m = m
        self.ef_construction = ef_construction
        self.ef_search = ef_search
        self.oversample = max(1, oversample)
        self.min_candidates = max(1, min_candidates)
        self.search_mode: SearchMode = search_mode
        self.timeout = timeout
        self.max_retries = max_retries
        self.versioning = versioning
        self.bulk_chunk_size = bulk_chunk_size
        self.gc_deletes = gc_deletes
        self.approximate_threshold = approximate_threshold

    @classmethod
    def from_settings(
        cls, settings: Settings, *, bits: int = 64, client: OpenSearch | None = None
    ) -> OpenSearchHashIndex:
        """Built by `bootstrap` from the validated settings."""
        return cls(
            settings.opensearch_index,
            client=client,
            endpoint=settings.opensearch_endpoint,
            region=settings.aws_region,
            hash_bits=bits,
            m=settings.opensearch_m,
            ef_construction=settings.opensearch_ef_construction,
            ef_search=settings.opensearch_ef_search,
            oversample=settings.opensearch_oversample,
            min_candidates=settings.opensearch_min_candidates,
            search_mode=settings.opensearch_search_mode,
            timeout=settings.opensearch_timeout,
            max_retries=settings.opensearch_max_retries,
        )

    # -- client and errors --------------------------------------------------------------------

    @property
    def client(self) -> OpenSearch:
        if self._client is None:
            self._client = build_client(
                self.endpoint, self.region, timeout=self.timeout, max_retries=self.max_retries
            )
        return self._client

    def _unavailable(self, exc: Exception, action: str) -> IndexUnavailable:
        from opensearchpy import exceptions as os_exc

        if isinstance(exc, os_exc.ConnectionTimeout):
            why = f"timed out after {self.timeout:g}s"
        elif isinstance(exc, os_exc.ConnectionError):
            why = "cannot connect"
        elif isinstance(exc, os_exc.NotFoundError):
            why = f"index {self.index_name!r} does not exist (run ensure_index)"
        elif isinstance(exc, os_exc.AuthorizationException | os_exc.AuthenticationException):
            why = "access denied (check the IAM role and the domain access policy)"
        elif isinstance(exc, os_exc.TransportError):
            why = f"HTTP {exc.status_code} {exc.error}"
        else:
            why = type(exc).__name__
        return IndexUnavailable(f"OpenSearch {action} failed: {why}")

    def _is_unavailable(self, exc: Exception) -> bool:
        from opensearchpy import exceptions as os_exc

        if isinstance(exc, os_exc.ConnectionError | os_exc.NotFoundError):  # ConnectionTimeout included
            return True
        if isinstance(exc, os_exc.AuthorizationException | os_exc.AuthenticationException):
            return True
        if isinstance(exc, os_exc.TransportError):
            status = exc.status_code
            return isinstance(status, int) and (status == 429 or status >= 500) or status == "N/A"
        return False

    def _run(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IndexUnavailable:
            raise
        except Exception as exc:
            if self._is_unavailable(exc):
                raise self._unavailable(exc, action) from exc
            raise  # a 400 means our request is wrong: a bug to surface, not a 503

    # -- schema -------------------------------------------------------------------------------

    def index_body(self) -> dict[str, Any]:
        """Settings and mappings of the index (see module docstring for each choice)."""
        settings: dict[str, Any] = {
            "knn": True,
            # Fallback for queries that do not pass method_parameters.ef_search.
            "knn.algo_param.ef_search": self.ef_search,
        }
        if self.gc_deletes:
            settings["gc_deletes"] = self.gc_deletes
        if self.approximate_threshold is not None:  # 2.18+: segments smaller than this are searched exactly
            settings["knn.advanced.approximate_threshold"] = self.approximate_threshold
        keyword = {"type": "keyword"}
        return {
            "settings": {"index": settings},
            "mappings": {
                # Unknown fields are kept in _source but not indexed: no mapping explosion.
                "dynamic": False,
                "properties": {
                    VECTOR_FIELD: {
                        "type": "knn_vector",
                        "dimension": self.hash_bits,
                        "data_type": "binary",
                        "method": {
                            "name": "hnsw",
                            "engine": "faiss",
                            "space_type": "hamming",
                            "parameters": {"m": self.m, "ef_construction": self.ef_construction},
                        },
                    },
                    "entity_id": keyword,
                    "hash": keyword,
                    "sku": keyword,
                    "image_url": {"type": "keyword", "ignore_above": 2048},
                    "hash_algo": keyword,
                    "updated_at": keyword,
                    "features": {"type": "object", "enabled": False},
                },
            },
        }

    def ensure_index(self) -> bool:
        """Create the index if it is missing; returns True when it was created."""
        if self._run("index exists", self.client.indices.exists, index=self.index_name):
            return False
        from opensearchpy import exceptions as os_exc

        try:
            self._run(
                "create index", self.client.indices.create, index=self.index_name, body=self.index_body()
            )
        except os_exc.RequestError as exc:
            # Another instance created it between our check and our create: that is fine.
            if "resource_already_exists_exception" in str(exc.error):
                return False
            raise
        return True

    # -- writes -------------------------------------------------------------------------------

    def document(self, record: HashRecord) -> dict[str, Any]:
        data = record.hash_value.data
        if len(data) * 8 != self.hash_bits:
            raise ValueError(
                f"record {record.entity_id!r} has a {len(data) * 8}-bit hash; index holds {self.hash_bits}"
            )
        body = record.to_dict()
        body[VECTOR_FIELD] = to_int8(data)
        return body

    def _version_params(self, record: HashRecord) -> dict[str, Any]:
        if not self.versioning:
            return {}
        version = version_of(record.updated_at)
        if version is None:
            log.warning("record %s has an unparsable updated_at; indexing unversioned", record.entity_id)
            return {}
        return {"version": version, "version_type": "external_gte"}

    def upsert(self, record: HashRecord) -> None:
        from opensearchpy import exceptions as os_exc

        try:
            self._run(
                "index",
                self.client.index,
                index=self.index_name,
                id=record.entity_id,
                body=self.document(record),
                refresh=False,
                **self._version_params(record),
            )
        except os_exc.ConflictError:
            log.info("stale upsert of %s ignored: the index holds a newer version", record.entity_id)

    def remove(self, entity_id: str, version: int | None = None) -> None:
        """Delete; absent is fine. With `version`, a delete older than the document is ignored."""
        from opensearchpy import exceptions as os_exc

        params: dict[str, Any] = {}
        if version is not None and self.versioning:
            params = {"version": version, "version_type": "external"}
        try:
            self.client.delete(index=self.index_name, id=entity_id, refresh=False, **params)
        except os_exc.NotFoundError as exc:
            # 404 for a missing *document* is the idempotent case; a missing *index* is not.
            if "index_not_found_exception" in str(exc.error):
                raise self._unavailable(exc, "delete") from exc
        except os_exc.ConflictError:
            log.info("stale remove of %s ignored: the index holds a newer version", entity_id)
        except Exception as exc:
            if self._is_unavailable(exc):
                raise self._unavailable(exc, "delete") from exc
            raise

    def remove_versioned(self, entity_id: str, version: int) -> None:
        """Stream-handler entry point (see handlers/stream_sync.py `VersionedIndex`)."""
        self.remove(entity_id, version=version)

    def _actions(self, records: Iterable[HashRecord]) -> Iterator[dict[str, Any]]:
        for record in records:
            action: dict[str, Any] = {
                "_op_type": "index",
                "_index": self.index_name,
                "_id": record.entity_id,
                "_source": self.document(record),
            }
            action.update(self._version_params(record))
            yield action

    def upsert_many(self, records: Iterable[HashRecord]) -> int:
        """Bulk upsert in chunks; returns how many documents were written (stale ones count as
        done). Raises IndexBulkError listing the ids OpenSearch rejected for another reason."""
        return self.upsert_many_detailed(records).written

    def upsert_many_detailed(self, records: Iterable[HashRecord]) -> BulkResult:
        from opensearchpy import helpers

        ok, errors = self._run(
            "bulk",
            helpers.bulk,
            self.client,
            self._actions(records),
            chunk_size=self.bulk_chunk_size,
            raise_on_error=False,
            refresh=False,
        )
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
            reasons.setdefault(
                str(info.get("status")), str(reason.get("type") if isinstance(reason, dict) else reason)
            )
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
        response = self._run("count", self.client.count, index=self.index_name)
        return int(response["count"])

    def refresh(self) -> None:
        """Make every write visible to search and count (writes use refresh=false)."""
        self._run("refresh", self.client.indices.refresh, index=self.index_name)

    def candidates(self, k: int) -> int:
        """How many neighbours to ask HNSW for, so the true k nearest survive its approximation."""
        return min(MAX_CANDIDATES, max(k * self.oversample, self.min_candidates, k))

    def query_body(self, hash_value: HashValue, k: int, max_distance: int | None = None) -> dict[str, Any]:
        vector = to_int8(hash_value.data)
        body: dict[str, Any]
        if self.search_mode == "exact":
            body = {
                "size": min(k, MAX_CANDIDATES),
                "query": {
                    "script_score": {
                        "query": {"match_all": {}},
                        "script": {
                            "source": "knn_score",
                            "lang": "knn",
                            "params": {"field": VECTOR_FIELD, "query_value": vector, "space_type": "hamming"},
                        },
                    }
                },
            }
        else:
            n = self.candidates(k)
            body = {
                # HNSW looks at n neighbours for recall, but only each hash's best k can be in
                # the merged top k: returning more would only ship more _source (4 KB each).
                "size": min(k, n),
                "query": {
                    "knn": {
                        VECTOR_FIELD: {
                            "vector": vector,
                            "k": n,
                            # ef_search below k would cap the result count: never go under it.
                            "method_parameters": {"ef_search": max(self.ef_search, n)},
                        }
                    }
                },
            }
        body["_source"] = {"excludes": [VECTOR_FIELD]}
        if max_distance is not None:
            # Server-side pruning; halfway to the next distance so float rounding keeps d itself.
            body["min_score"] = 1.0 / (1.0 + max_distance + 0.5)
        return body

    def search(self, hashes: Sequence[HashValue], k: int, max_distance: int | None = None) -> list[IndexHit]:
        if not hashes or k <= 0:
            return []
        for h in hashes:
            if h.bits != self.hash_bits:
                raise ValueError(f"query hash has {h.bits} bits; the index holds {self.hash_bits}")
        lines: list[dict[str, Any]] = []
        for h in hashes:
            lines.append({"index": self.index_name})
            lines.append(self.query_body(h, k, max_distance))
        response = self._run("search", self.client.msearch, body=lines)
        best: dict[str, IndexHit] = {}
        for item in response.get("responses", []):
            if "error" in item:
                status = item.get("status")
                error = item["error"]
                reason = error.get("type") if isinstance(error, dict) else error
                raise IndexUnavailable(f"OpenSearch search failed: HTTP {status} {reason}")
            for hit in item.get("hits", {}).get("hits", []):
                distance = score_to_distance(float(hit["_score"]))
                if max_distance is not None and distance > max_distance:
                    continue
                entity_id = str(hit["_id"])
                current = best.get(entity_id)
                if current is None or distance < current.distance:
                    best[entity_id] = IndexHit(
                        entity_id, distance, self._record(entity_id, hit.get("_source"))
                    )
        hits = sorted(best.values(), key=lambda h: (h.distance, h.entity_id))
        return hits[:k]

    @staticmethod
    def _record(entity_id: str, source: Any) -> HashRecord | None:
        if not isinstance(source, dict):
            return None
        try:
            return HashRecord.from_dict({"entity_id": entity_id, **source})
        except (KeyError, ValueError, TypeError):
            return None  # the service falls back to the store for this one
