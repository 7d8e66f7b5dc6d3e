"""What every dupcheck index in OpenSearch shares: the client made on first use, creating the index,
refresh, count, versioned deletes, bulk writes and `_msearch`, each failure an IndexUnavailable.

The hash index (index.py) and the product index (products.py) differ only in their mapping,
their documents and their queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dupcheck.adapters.opensearch.client import build_client, unavailable_on_outage
from dupcheck.core.errors import IndexUnavailable

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


def connector(settings: Settings) -> Callable[[], OpenSearch]:
    """The client of the configured domain, built when first needed (no I/O at a cold start)."""

    def connect() -> OpenSearch:
        return build_client(
            settings.opensearch_endpoint,
            settings.aws_region,
            timeout=settings.opensearch_timeout,
            max_retries=settings.opensearch_max_retries,
        )

    return connect


class OpenSearchIndex:
    """One OpenSearch index: `index_body()` is the subclass's mapping.

    `connect` builds the `opensearchpy.OpenSearch` client on first use, so constructing the
    adapter (at a Lambda's cold start) does no I/O and imports nothing heavy; tests pass a client
    over a stubbed transport.
    """

    def __init__(
        self,
        index_name: str,
        connect: Callable[[], OpenSearch],
        *,
        versioning: bool = True,
        bulk_chunk_size: int = 500,
        gc_deletes: str | None = "1h",
    ) -> None:
        self.index_name = index_name
        self._connect = connect
        self._client: OpenSearch | None = None
        self.versioning = versioning
        self.bulk_chunk_size = bulk_chunk_size
        self.gc_deletes = gc_deletes

    @property
    def client(self) -> OpenSearch:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _outage(self, action: str) -> Any:
        return unavailable_on_outage(action, self.index_name)

    def index_body(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- schema (ProvisionedIndex) ------------------------------------------------------------

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

    def _versioned(self, version: int | None, version_type: str = "external_gte") -> dict[str, Any]:
        """Upserts use `external_gte` (a replay of the same version rewrites it: idempotent)."""
        if version is None or not self.versioning:
            return {}
        return {"version": version, "version_type": version_type}

    def _index_document(self, entity_id: str, body: dict[str, Any], version: int | None) -> None:
        from opensearchpy import exceptions as os_exc

        with self._outage("index"):
            try:
                self.client.index(
                    index=self.index_name, id=entity_id, body=body, refresh=False, **self._versioned(version)
                )
            except os_exc.ConflictError:
                log.info("stale upsert of %s ignored: the index holds a newer version", entity_id)

    def remove(self, entity_id: str, version: int | None = None) -> None:
        """Delete; absent is fine. With `version`, a delete older than the document is ignored."""
        from opensearchpy import exceptions as os_exc

        with self._outage("delete"):
            try:
                self.client.delete(
                    index=self.index_name, id=entity_id, refresh=False, **self._versioned(version, "external")
                )
            except os_exc.NotFoundError as exc:
                # 404 for a missing *document* is the idempotent case; a missing *index* is not.
                if "index_not_found_exception" in str(exc.error):
                    raise
            except os_exc.ConflictError:
                log.info("stale remove of %s ignored: the index holds a newer version", entity_id)

    def remove_versioned(self, entity_id: str, version: int) -> None:
        """VersionedIndex: a stream handler's delete (handlers/stream_sync.py says how it is versioned)."""
        self.remove(entity_id, version=version)

    def _bulk(self, actions: Iterable[dict[str, Any]]) -> BulkResult:
        """Bulk writes in chunks; stale ones (409) count as done. Raises IndexBulkError listing the
        ids OpenSearch rejected for another reason."""
        from opensearchpy import helpers

        with self._outage("bulk"):
            ok, errors = helpers.bulk(
                self.client, actions, chunk_size=self.bulk_chunk_size, raise_on_error=False, refresh=False
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

    def _msearch(self, bodies: Sequence[dict[str, Any]], optional: int = 0) -> list[list[dict[str, Any]]]:
        """Each body's hits, in one `_msearch`; an error in any is the index's (503), but in the
        last `optional` bodies, which answer none (logged: an index made before their fields)."""
        lines: list[dict[str, Any]] = []
        for body in bodies:
            lines += [{"index": self.index_name}, body]
        with self._outage("search"):
            response = self.client.msearch(body=lines)
        found: list[list[dict[str, Any]]] = []
        for position, item in enumerate(response.get("responses", [])):
            if "error" in item:
                error = item["error"]
                reason = error.get("type") if isinstance(error, dict) else error
                if position < len(bodies) - optional:
                    raise IndexUnavailable(f"OpenSearch search failed: HTTP {item.get('status')} {reason}")
                log.warning("an optional search of %s failed (HTTP %s %s: %s): answered without it",
                            self.index_name, item.get("status"), reason, _first_cause(error))  # fmt: skip
                found.append([])
                continue
            found.append(item.get("hits", {}).get("hits", []))
        return found


def _first_cause(error: Any) -> str:
    """The reason of an error's first root cause: it names what failed (a field the index does not map)."""
    causes = error.get("root_cause") if isinstance(error, dict) else None
    first = causes[0] if isinstance(causes, list) and causes else None
    return str(first.get("reason", "")) if isinstance(first, dict) else ""
