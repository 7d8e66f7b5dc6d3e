"""ProductIndex on OpenSearch: product vectors as k-NN `byte` vectors (faiss HNSW, inner product).

Its own index (`DUPCHECK_OPENSEARCH_PRODUCTS_INDEX`), not a second field of the hash index: the
product sync function writes it from the table's stream, apart from stream_sync's hash documents,
so neither write waits for or overwrites the other, and a deployment without similar products has
no such index at all. A document is the vector and what an operator looks for (~0.9 KB of _source):
the SKU and address of a hit are read from the record store, as for the hash index.

Shapes (k-NN plugin 2.19; tests/support/opensearch_api.py checks every request against its API
specification, docs/deploy.md lists what only a real cluster confirms):
* Mapping: `knn_vector`, dimension 256, `data_type: byte` (int8, 256 bytes a vector in the graph
  where float would be 1 KB), `method: {name: hnsw, engine: faiss, space_type: innerproduct}`.
  The vectors are unit length times SCALE, so the inner product orders them as cosine does.
* Score: faiss's inner product score is `dot + 1` for dot >= 0 and `1 / (1 - dot)` below; turned
  back into the dot product, then into the similarity every index reports (core/catalog/products.py).
* Versioning as the hash index's: a document's version is its record's `updated_at` in epoch ms.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dupcheck.adapters.opensearch.base import OpenSearchIndex, connector
from dupcheck.adapters.opensearch.schema import MAX_RESULTS, Hnsw, knn_settings
from dupcheck.core.models import DIMENSIONS, PRODUCT_MODEL, ProductHit, ProductVector, similarity_of

if TYPE_CHECKING:  # pragma: no cover
    from opensearchpy import OpenSearch

    from dupcheck.core.settings import Settings

VECTOR_FIELD = "product_vector"


def score_to_dot(score: float) -> float:
    """faiss's inner-product score back to the inner product."""
    if score <= 0:
        raise ValueError(f"not an inner-product score: {score}")
    return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score


def product_index_body(hnsw: Hnsw, gc_deletes: str | None) -> dict[str, Any]:
    keyword = {"type": "keyword"}
    return {
        "settings": knn_settings(hnsw, gc_deletes),
        "mappings": {
            "dynamic": False,
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": DIMENSIONS,
                    "data_type": "byte",
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": "innerproduct",
                        "parameters": {"m": hnsw.m, "ef_construction": hnsw.ef_construction},
                    },
                },
                "entity_id": keyword,
                "model": keyword,
            },
        },
    }


def product_document(entity_id: str, vector: ProductVector) -> dict[str, Any]:
    return {"entity_id": entity_id, "model": vector.model, VECTOR_FIELD: vector.values().tolist()}


class OpenSearchProductIndex(OpenSearchIndex):
    """ProductIndex over one OpenSearch index (the shared plumbing: base.py)."""

    def __init__(
        self, index_name: str, connect: Callable[[], OpenSearch], *, hnsw: Hnsw, model: str = PRODUCT_MODEL,
        versioning: bool = True, gc_deletes: str | None = "1h",
    ) -> None:  # fmt: skip
        super().__init__(index_name, connect, versioning=versioning, gc_deletes=gc_deletes)
        self.hnsw = hnsw
        self.model = model

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenSearchProductIndex:
        # The hash index's HNSW settings: both graphs are searched for a few dozen neighbours.
        hnsw = Hnsw(settings.opensearch_m, settings.opensearch_ef_construction, settings.opensearch_ef_search)
        return cls(settings.opensearch_products_index, connector(settings), hnsw=hnsw)

    def index_body(self) -> dict[str, Any]:
        return product_index_body(self.hnsw, self.gc_deletes)

    # -- writes -------------------------------------------------------------------------------

    def put(self, entity_id: str, vector: ProductVector, version: int | None = None) -> None:
        """One vector; with `version` (its record's), an older write than the document is ignored."""
        self._index_document(entity_id, product_document(entity_id, vector), version)

    def put_many(self, vectors: Mapping[str, ProductVector]) -> int:
        return self._bulk(
            {"_op_type": "index", "_index": self.index_name, "_id": entity_id,
             "_source": product_document(entity_id, vector)}
            for entity_id, vector in vectors.items()
        ).written  # fmt: skip

    # -- reads --------------------------------------------------------------------------------

    def search(self, vector: ProductVector, k: int) -> list[ProductHit]:
        if k <= 0 or vector.model != self.model:
            return []
        k = min(k, MAX_RESULTS)
        query = {VECTOR_FIELD: {"vector": vector.values().tolist(), "k": k,
                                "method_parameters": {"ef_search": max(self.hnsw.ef_search, k)}}}  # fmt: skip
        (hits,) = self._msearch([{"size": k, "query": {"knn": query}, "_source": False}])
        found = [ProductHit(str(hit["_id"]), similarity_of(score_to_dot(float(hit["_score"])))) for hit in hits]
        return sorted(found, key=lambda hit: (-hit.similarity, hit.entity_id))[:k]

    def missing(self, entity_ids: Sequence[str]) -> set[str]:
        ids = list(dict.fromkeys(entity_ids))
        found: set[str] = set()
        for start in range(0, len(ids), MAX_RESULTS):
            chunk = ids[start : start + MAX_RESULTS]
            body = {"size": len(chunk), "query": {"bool": {"filter": [{"ids": {"values": chunk}},
                                                                      {"term": {"model": self.model}}]}},
                    "_source": False}  # fmt: skip
            (hits,) = self._msearch([body])
            found.update(str(hit["_id"]) for hit in hits)
        return set(ids) - found
