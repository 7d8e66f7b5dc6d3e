"""OpenSearchProductIndex against a stubbed transport: every request checked against OpenSearch's
API specification and the k-NN plugin's rules (byte vectors, faiss, inner product), the scores
turned back into the similarity the local index reports, versioned writes from the stream."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc
from test_opensearch_index import HNSW, Recorder, ndjson, search_response

from dupcheck.adapters.opensearch import OpenSearchProductIndex
from dupcheck.adapters.opensearch.products import VECTOR_FIELD, score_to_dot
from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.models import DIMENSIONS, PRODUCT_MODEL, SCALE, ProductVector
from dupcheck.core.ports import ProductIndex, ProvisionedIndex, VersionedIndex
from dupcheck.core.settings import Settings

INDEX = "dupcheck-products"


def vector(seed: int) -> ProductVector:
    values = np.random.default_rng(seed).normal(size=DIMENSIONS)
    return ProductVector.of_unit(values / np.linalg.norm(values))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def index(recorder: Recorder) -> OpenSearchProductIndex:
    client = OpenSearch(hosts=[{"host": "localhost", "port": 9200}])
    client.transport.perform_request = recorder  # type: ignore[method-assign]
    adapter = OpenSearchProductIndex(INDEX, lambda: client, hnsw=HNSW)
    recorder.mapping = adapter.index_body()["mappings"]
    return adapter


def test_it_is_a_product_index_that_creates_itself_and_refuses_stale_deletes(index: OpenSearchProductIndex) -> None:
    assert isinstance(index, ProductIndex) and isinstance(index, ProvisionedIndex)
    assert isinstance(index, VersionedIndex)
    settings = Settings.from_env({}, opensearch_products_index="shop-products", index="opensearch")
    assert OpenSearchProductIndex.from_settings(settings).index_name == "shop-products"


def test_the_mapping_is_a_byte_vector_in_faiss_inner_product_space(
    index: OpenSearchProductIndex, recorder: Recorder
) -> None:
    recorder.mapping = None
    recorder.on("HEAD", f"/{INDEX}", False).on("PUT", f"/{INDEX}", {"acknowledged": True})
    assert index.ensure_index() is True
    (body,) = recorder.bodies("PUT", f"/{INDEX}")
    field = body["mappings"]["properties"][VECTOR_FIELD]
    assert field == {
        "type": "knn_vector", "dimension": DIMENSIONS, "data_type": "byte",
        "method": {"name": "hnsw", "engine": "faiss", "space_type": "innerproduct",
                   "parameters": {"m": 32, "ef_construction": 128}},
    }  # fmt: skip
    assert body["settings"]["index"]["knn"] is True and body["mappings"]["dynamic"] is False


def test_a_vector_is_written_as_its_int8_values_with_its_records_version(
    index: OpenSearchProductIndex, recorder: Recorder
) -> None:
    recorder.on("PUT", f"/{INDEX}/_doc/A1", {"result": "created"})
    v = vector(1)
    index.put("A1", v, version=1_741_773_600_000)
    (method, url, params, body) = recorder.calls[-1]
    assert body == {"entity_id": "A1", "model": PRODUCT_MODEL, VECTOR_FIELD: v.values().tolist()}
    assert params["version"] == "1741773600000" and params["version_type"] == "external_gte"
    recorder.on("PUT", f"/{INDEX}/_doc/A2", os_exc.ConflictError(409, "version_conflict_engine_exception", {}))
    index.put("A2", v, version=1)  # older than what the index holds: ignored


def test_bulk_writes_and_versioned_removes(index: OpenSearchProductIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_bulk", {"took": 1, "errors": False, "items": [
        {"index": {"_id": i, "status": 201}} for i in ("a", "b")]})  # fmt: skip
    assert index.put_many({"a": vector(1), "b": vector(2)}) == 2
    lines = ndjson(recorder.bodies("POST", "/_bulk")[0])
    assert lines[0] == {"index": {"_index": INDEX, "_id": "a"}} and len(lines[1][VECTOR_FIELD]) == DIMENSIONS
    recorder.on("DELETE", f"/{INDEX}/_doc/a", {"result": "deleted"})
    index.remove_versioned("a", 5)
    assert recorder.calls[-1][2] == {"refresh": "false", "version": "5", "version_type": "external"}


def test_a_knn_search_returns_the_similarity_the_local_index_would(
    index: OpenSearchProductIndex, recorder: Recorder
) -> None:
    query, near = vector(1), vector(2)
    dot = int(query.values().astype(np.int32) @ near.values().astype(np.int32))
    score = dot + 1.0 if dot >= 0 else 1.0 / (1.0 - dot)  # faiss's inner-product score
    recorder.on("POST", "/_msearch", {"took": 2, "responses": [search_response(("far", 0.5), ("near", score))]})
    hits = index.search(query, 3)
    assert [h.entity_id for h in hits] == ["near", "far"]
    assert hits[0].similarity == pytest.approx(query.similarity(near), abs=1e-6)
    assert hits[1].similarity == pytest.approx(-1.0 / (SCALE * SCALE), abs=1e-9)
    header, body = ndjson(recorder.bodies("POST", "/_msearch")[0])
    assert header == {"index": INDEX}
    assert body["query"]["knn"][VECTOR_FIELD] == {"vector": query.values().tolist(), "k": 3,
                                                   "method_parameters": {"ef_search": 128}}  # fmt: skip
    assert index.search(ProductVector(query.data, "another-model"), 3) == []


@pytest.mark.parametrize("dot", [-500.0, -1.0, 0.0, 0.5, 1.0, 64_000.0])
def test_scores_turn_back_into_inner_products(dot: float) -> None:
    score = dot + 1.0 if dot >= 0 else 1.0 / (1.0 - dot)
    assert score_to_dot(score) == pytest.approx(dot)


def test_missing_asks_which_ids_hold_a_vector_of_this_model(index: OpenSearchProductIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_msearch", {"took": 1, "responses": [search_response(("a", 0.0))]})
    assert index.missing(["a", "b", "a"]) == {"b"}
    _, body = ndjson(recorder.bodies("POST", "/_msearch")[0])
    assert body["query"] == {"bool": {"filter": [{"ids": {"values": ["a", "b"]}}, {"term": {"model": PRODUCT_MODEL}}]}}


def test_an_outage_is_index_unavailable(index: OpenSearchProductIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_msearch", os_exc.ConnectionError("N/A", "refused", Exception()))
    with pytest.raises(IndexUnavailable):
        index.search(vector(1), 5)


def test_a_misspelt_mapping_is_caught_by_the_specification_check(recorder: Recorder) -> None:
    """The check this file relies on refuses what OpenSearch refuses: faiss byte vectors in Hamming space."""
    from support.opensearch_api import RequestRejected

    body: dict[str, Any] = OpenSearchProductIndex(INDEX, lambda: None, hnsw=HNSW).index_body()  # type: ignore[arg-type, return-value]
    body["mappings"]["properties"][VECTOR_FIELD]["method"]["space_type"] = "hamming"
    with pytest.raises(RequestRejected):
        recorder("PUT", f"/{INDEX}", None, body)
