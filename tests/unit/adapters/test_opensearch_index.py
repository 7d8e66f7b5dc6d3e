"""OpenSearchHashIndex against a stubbed transport: the exact request bodies and the handling of
the documented response shapes (no cluster, no network).

Every request the adapter sends in these tests is also checked against OpenSearch's own API
specification and the k-NN plugin's rules for the deployed engine version (tests/support/
opensearch_api.py, tests/data/opensearch-api/): a request they do not allow fails the test."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy import exceptions as os_exc

from dupcheck.adapters.opensearch import IndexBulkError, OpenSearchHashIndex
from dupcheck.adapters.opensearch.schema import (
    Hnsw,
    from_int8,
    index_body,
    part_field,
    score_to_distance,
    to_int8,
)
from dupcheck.core.errors import IndexUnavailable
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import HashPart, HashValue, IndexHit, version_of
from dupcheck.core.ports import HashIndex, ProvisionedIndex, VersionedIndex
from dupcheck.core.settings import Settings
from support.fakes import make_record
from support.opensearch_api import check_request
from support.opensearch_api import load as load_api

INDEX = "dupcheck-hashes"

Responder = Callable[[str, str, dict[str, Any], Any], Any]


class Recorder:
    """Stands in for `transport.perform_request`: checks each call against OpenSearch's API
    definition, records it and answers from a script."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], Any]] = []
        self.routes: list[tuple[str, str, Any]] = []
        self.operations: list[str] = []  # the specification's operation groups, in order
        self.mapping: dict[str, Any] | None = None  # the index's, for the vectors' checks

    def on(self, method: str, path_part: str, response: Any) -> Recorder:
        """`response`: a value, an exception instance to raise, or a list consumed in order."""
        self.routes.append((method, path_part, response))
        return self

    def __call__(self, method: str, url: str, params: Any = None, body: Any = None, **_: Any) -> Any:
        # The client escapes query params to bytes; decode them so assertions read naturally.
        plain = {k: v.decode() if isinstance(v, bytes) else v for k, v in (params or {}).items()}
        operation = check_request(method, url, plain, body, mapping=self.mapping)
        if operation.group == "indices.create":
            self.mapping = body["mappings"]
        self.operations.append(operation.group)
        self.calls.append((method, url, plain, body))
        for route_method, part, response in self.routes:
            if route_method == method and part in url:
                if isinstance(response, list):
                    response = response.pop(0)
                if isinstance(response, BaseException):
                    raise response
                if callable(response):
                    return response(method, url, params or {}, body)
                return response
        raise AssertionError(f"unexpected request {method} {url}")

    def bodies(self, method: str, path_part: str) -> list[Any]:
        return [body for m, url, _, body in self.calls if m == method and path_part in url]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> OpenSearch:
    client = OpenSearch(hosts=[{"host": "localhost", "port": 9200}])
    client.transport.perform_request = recorder  # type: ignore[method-assign]
    return client


HNSW = Hnsw(m=32, ef_construction=128, ef_search=128)


def adapter(client: OpenSearch, **options: Any) -> OpenSearchHashIndex:
    index = OpenSearchHashIndex(INDEX, lambda: client, bits=options.pop("bits", 64), hnsw=HNSW, **options)
    recorder = client.transport.perform_request
    if isinstance(recorder, Recorder):
        recorder.mapping = index.index_body()["mappings"]  # the index it would have created
    return index


@pytest.fixture
def index(client: OpenSearch) -> OpenSearchHashIndex:
    return adapter(client)


def ndjson(body: Any) -> list[dict[str, Any]]:
    text = body.decode() if isinstance(body, bytes) else body
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def search_response(*hits: tuple[str, float]) -> dict[str, Any]:
    return {
        "took": 3,
        "timed_out": False,
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": max((s for _, s in hits), default=None),
            "hits": [{"_index": INDEX, "_id": i, "_score": s} for i, s in hits],
        },
        "status": 200,
    }


# -- pure helpers --------------------------------------------------------------------------


def test_int8_packing_is_signed_and_reversible() -> None:
    data = bytes([0, 1, 127, 128, 200, 255])
    assert to_int8(data) == [0, 1, 127, -128, -56, -1]
    assert from_int8(to_int8(data)) == data
    assert all(-128 <= v <= 127 for v in to_int8(bytes(range(256))))


@pytest.mark.parametrize("d", [0, 1, 2, 5, 10, 31, 64])
def test_hamming_score_round_trips_to_distance(d: int) -> None:
    assert score_to_distance(1.0 / (1 + d)) == d
    assert score_to_distance(float(f"{1.0 / (1 + d):.7g}")) == d  # float32 precision from the server


def test_version_is_epoch_millis_of_updated_at() -> None:
    assert version_of("2025-03-12T10:00:00.000Z") == 1741773600000
    assert version_of("2025-03-12T10:00:00.001+00:00") == 1741773600001
    assert version_of("yesterday") is None


def test_rejects_hash_bits_not_multiple_of_8(client: OpenSearch) -> None:
    with pytest.raises(ValueError):
        adapter(client, bits=60)


def test_implements_the_port_and_its_capabilities(index: OpenSearchHashIndex) -> None:
    assert isinstance(index, HashIndex)
    assert isinstance(index, ProvisionedIndex) and isinstance(index, VersionedIndex)


def test_constructing_does_no_io() -> None:
    def connect() -> OpenSearch:
        raise AssertionError("connected at construction")

    OpenSearchHashIndex(INDEX, connect, bits=128, hnsw=HNSW)


# -- schema --------------------------------------------------------------------------------


def test_ensure_index_creates_the_documented_mapping(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("HEAD", INDEX, [False, True]).on("PUT", INDEX, {"acknowledged": True, "index": INDEX})

    assert index.ensure_index() is True
    assert index.ensure_index() is False  # exists now: no second create

    (body,) = recorder.bodies("PUT", f"/{INDEX}")
    assert body["settings"]["index"]["knn"] is True
    assert body["settings"]["index"]["knn.algo_param.ef_search"] == 128
    vector = body["mappings"]["properties"]["hash_vector"]
    assert vector == {
        "type": "knn_vector",
        "dimension": 64,
        "data_type": "binary",
        "method": {
            "name": "hnsw",
            "engine": "faiss",
            "space_type": "hamming",
            "parameters": {"m": 32, "ef_construction": 128},
        },
    }
    properties = body["mappings"]["properties"]
    for field in ("entity_id", "hash", "sku", "image_url", "hash_algo", "updated_at"):
        assert properties[field]["type"] == "keyword"
    assert "features" not in properties  # the views stay in the record store


def test_ensure_index_tolerates_a_concurrent_create(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("HEAD", INDEX, False).on(
        "PUT", INDEX, os_exc.RequestError(400, "resource_already_exists_exception", {})
    )
    assert index.ensure_index() is False


# -- writes --------------------------------------------------------------------------------


def test_upsert_indexes_int8_vector_with_external_version(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("PUT", "/_doc/", {"result": "created", "_id": "A1", "_version": 1})
    record = make_record("A1", hash_hex="ff00807f01000000")
    index.upsert(record)

    method, url, params, body = recorder.calls[0]
    assert (method, url) == ("PUT", f"/{INDEX}/_doc/A1")
    assert params["refresh"] == "false"
    assert params["version_type"] == "external_gte"
    assert int(params["version"]) == 1741773600000
    assert body["hash_vector"] == [-1, 0, -128, 127, 1, 0, 0, 0]
    assert body["entity_id"] == "A1" and body["hash"] == "ff00807f01000000"
    assert "features" not in body and body["sku"] == "SKU-A1"


def test_stale_upsert_is_ignored(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("PUT", "/_doc/", os_exc.ConflictError(409, "version_conflict_engine_exception", {}))
    index.upsert(make_record("A1"))  # no exception: the index already holds a newer version


def test_upsert_refuses_a_hash_of_the_wrong_size(index: OpenSearchHashIndex) -> None:
    with pytest.raises(ValueError):
        index.upsert(make_record("A1", hash_hex="ff00"))


def test_remove_is_idempotent(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on(
        "DELETE",
        "/_doc/",
        [
            {"result": "deleted"},
            os_exc.NotFoundError(404, "not_found", {"result": "not_found"}),
            os_exc.ConflictError(409, "version_conflict_engine_exception", {}),
        ],
    )
    index.remove("A1")
    index.remove("A1")  # 404: already gone
    index.remove_versioned("A1", 1741773600001)  # 409: a newer document exists, keep it
    _, url, params, _ = recorder.calls[-1]
    assert url == f"/{INDEX}/_doc/A1"
    assert params["version_type"] == "external" and int(params["version"]) == 1741773600001


def test_remove_on_missing_index_is_unavailable(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("DELETE", "/_doc/", os_exc.NotFoundError(404, "index_not_found_exception", {}))
    with pytest.raises(IndexUnavailable):
        index.remove("A1")


def _bulk_answer(statuses: dict[str, int]) -> Responder:
    def answer(method: str, url: str, params: dict[str, Any], body: Any) -> dict[str, Any]:
        lines = ndjson(body)
        items = []
        for action in lines[::2]:
            _id = action["index"]["_id"]
            status = statuses.get(_id, 201)
            item: dict[str, Any] = {"_index": INDEX, "_id": _id, "status": status}
            if status >= 300:
                kind = "version_conflict_engine_exception" if status == 409 else "mapper_parsing_exception"
                item["error"] = {"type": kind, "reason": "x"}
            else:
                item["result"] = "created"
            items.append({"index": item})
        return {"took": 5, "errors": any(s >= 300 for s in statuses.values()), "items": items}

    return answer


def test_upsert_many_sends_bulk_action_lines_in_chunks(client: OpenSearch, recorder: Recorder) -> None:
    index = adapter(client, bulk_chunk_size=2)
    recorder.on("POST", "/_bulk", _bulk_answer({}))
    records = [make_record(f"B{i}", hash_hex=f"{i:016x}") for i in range(5)]
    assert index.upsert_many(records) == 5

    bodies = recorder.bodies("POST", "/_bulk")
    assert len(bodies) == 3  # 2 + 2 + 1
    lines = ndjson(bodies[0])
    assert lines[0] == {
        "index": {"_index": INDEX, "_id": "B0", "version": 1741773600000, "version_type": "external_gte"}
    }
    assert lines[1]["hash_vector"] == [0, 0, 0, 0, 0, 0, 0, 0]
    assert lines[1]["entity_id"] == "B0"


def test_upsert_many_lists_failed_ids_and_counts_stale_as_done(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_bulk", _bulk_answer({"B1": 400, "B2": 409, "B3": 429}))
    records = [make_record(f"B{i}", hash_hex=f"{i:016x}") for i in range(4)]
    with pytest.raises(IndexBulkError) as excinfo:
        index.upsert_many(records)
    assert sorted(excinfo.value.failed_ids) == ["B1", "B3"]
    assert excinfo.value.written == 2  # B0 written, B2 already newer
    assert excinfo.value.status == 503


# -- search --------------------------------------------------------------------------------


def test_knn_search_body_merge_and_distance_conversion(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on(
        "POST",
        "/_msearch",
        {
            "took": 4,
            "responses": [
                search_response(("A1", 1 / 3), ("B2", 1 / 6)),
                search_response(("B2", 1 / 2), ("C3", 1 / 12)),
            ],
        },
    )
    query = HashValue.from_hex("ffffffffffffff03")
    mirrored = HashValue.from_hex("80ffffffffffffff")
    hits = index.search([query, mirrored], k=2)

    lines = ndjson(recorder.bodies("POST", "/_msearch")[0])
    assert lines[0] == {"index": INDEX}
    assert lines[1] == {
        "size": 2,  # only each hash's best k can be in the merged top k
        "query": {
            "knn": {
                "hash_vector": {
                    "vector": [-1, -1, -1, -1, -1, -1, -1, 3],
                    "k": 2,  # the service's candidate pool decides k; ef_search governs recall
                    "method_parameters": {"ef_search": 128},
                }
            }
        },
        "_source": False,  # ids and scores: the service reads the records from the store
    }
    assert lines[3]["query"]["knn"]["hash_vector"]["vector"] == [-128, -1, -1, -1, -1, -1, -1, -1]
    # B2 is at 5 from the first hash and 1 from the second: it keeps 1, and ranks first.
    assert [(h.entity_id, h.distance) for h in hits] == [("B2", 1), ("A1", 2)]


HALVES = (HashPart("whole", 0, 64), HashPart("trimmed", 64, 64))


def test_each_part_searches_its_own_vector_and_adds_its_nearest_not_found_before(
    client: OpenSearch, recorder: Recorder
) -> None:
    index = adapter(client, bits=128, parts=HALVES)
    query = HashValue.from_hex("ff" * 16)
    far = {"A1": "00" * 16, "B2": "ff" * 8 + "00" * 8, "C3": "0f" * 16, "D4": "00" * 8 + "ff" * 8, "E5": "f0" * 16}

    def hit(entity_id: str, score: float) -> dict[str, Any]:
        return {"_index": INDEX, "_id": entity_id, "_score": score, "_source": {"hash": far[entity_id]}}

    def answer(*hits: dict[str, Any]) -> dict[str, Any]:
        found = search_response()
        found["hits"]["hits"] = list(hits)
        return found

    by_whole_half = answer(hit("A1", 1.0), hit("C3", 1 / 5), hit("B2", 1 / 3))
    by_trimmed_half = answer(hit("B2", 1.0), hit("E5", 1 / 5), hit("D4", 1 / 2), hit("C3", 1.0))
    recorder.on("POST", "/_msearch", {"responses": [search_response(("A1", 1 / 129)), by_whole_half, by_trimmed_half]})
    hits = index.search([query], k=1, part_hashes=[HashValue.from_hex("ff" * 8)], part_k=2)
    lines = ndjson(recorder.bodies("POST", "/_msearch")[0])
    assert lines[3] == {
        "size": 3,  # k + part_k: the whole hash's hits are not counted twice
        "query": {"knn": {"hash_part": {"vector": [-1] * 8, "k": 3, "method_parameters": {"ef_search": 128}}}},
        "_source": ["hash"],  # a part's distance is not the whole hash's
    }
    # The trimmed half's: k + 2 part_k, for the whole hash's and the whole half's hits come back too.
    assert lines[5]["size"] == 5 and lines[5]["query"]["knn"]["hash_trimmed"]["vector"] == [-1] * 8
    # A1 came with the whole hash; then each part's nearest not found before, at whole distances.
    assert [(h.entity_id, h.distance) for h in hits] == [("A1", 128), ("B2", 64), ("C3", 64), ("D4", 64), ("E5", 64)]
    document = index._actions([make_record("D4", hash_hex="ff" * 8 + "01" * 8)]).__next__()["_source"]
    assert document["hash_vector"] == [-1] * 8 + [1] * 8
    assert document["hash_part"] == [-1] * 8 and document["hash_trimmed"] == [1] * 8


def test_a_part_an_index_was_made_without_leaves_the_other_searches_answer(
    client: OpenSearch, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """An index made before a part's vector field answers that part's searches with an error: one
    made before `hash_trimmed` (it has `hash_part`), and one made before both."""
    index = adapter(client, bits=128, parts=HALVES)
    cause = {"type": "query_shard_exception", "reason": "Field 'hash_trimmed' is not knn_vector type."}
    failed = {"error": {"type": "search_phase_execution_exception", "root_cause": [cause]}, "status": 400}
    whole_half = search_response()
    whole_half["hits"]["hits"] = [{"_index": INDEX, "_id": "B2", "_score": 1.0, "_source": {"hash": "00" * 16}}]
    answers = [
        {"responses": [search_response(("A1", 1 / 3)), whole_half, failed]},
        {"responses": [search_response(("A1", 1 / 3)), failed, failed]},
        {"responses": [failed, search_response(), search_response()]},
    ]
    recorder.on("POST", "/_msearch", answers)
    query, parts = [HashValue.from_hex("00" * 16)], [HashValue.from_hex("00" * 8)]
    assert index.search(query, k=5, part_hashes=parts, part_k=4) == [IndexHit("A1", 2), IndexHit("B2", 0)]
    assert index.search(query, k=5, part_hashes=parts, part_k=4) == [IndexHit("A1", 2)]
    assert caplog.text.count("an optional search") == 3 and "'hash_trimmed' is not knn_vector" in caplog.text
    with pytest.raises(IndexUnavailable):  # the whole hash's own search failing is still an outage
        index.search(query, k=5, part_hashes=parts, part_k=4)


def test_parts_must_fit_the_hash_and_share_a_width(client: OpenSearch) -> None:
    for wrong in ((HashPart("whole", 0, 64), HashPart("trimmed", 64, 128)),
                  (HashPart("whole", 0, 64), HashPart("quarter", 64, 32))):  # fmt: skip
        with pytest.raises(ValueError):
            adapter(client, bits=128, parts=wrong)
    index = adapter(client, bits=128, parts=HALVES)
    with pytest.raises(ValueError, match="64"):
        index.search([HashValue.from_hex("00" * 16)], k=1, part_hashes=[HashValue.from_hex("00" * 16)], part_k=1)


def test_the_field_deploy_md_adds_to_an_older_index_is_the_one_a_new_index_maps() -> None:
    """docs/deploy.md's PUT _mapping for an index made before `hash_trimmed`: the default
    pipeline's trimmed half as a new index maps it (settings' defaults), which the k-NN plugin accepts."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "deploy.md").read_text(encoding="utf-8")
    found = re.search(r"/_mapping\" --data '([^']*)'", text)
    assert found, "docs/deploy.md no longer shows the PUT _mapping that adds hash_trimmed"
    body = json.loads(found.group(1))
    settings = Settings.from_env({})
    hnsw = Hnsw(settings.opensearch_m, settings.opensearch_ef_construction, settings.opensearch_ef_search)
    pipeline = get_pipeline()
    mapped = index_body(pipeline.index_bits, hnsw, None, pipeline.index_parts)["mappings"]["properties"]
    trimmed = part_field(pipeline.index_parts[1])
    assert body == {"properties": {trimmed: mapped[trimmed]}} and trimmed == "hash_trimmed"
    assert load_api().knn_errors(body["properties"][trimmed], "knn_vector") == []


def test_max_distance_filters_and_prunes_server_side(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_msearch", {"responses": [search_response(("A1", 1 / 4), ("B2", 1 / 5))]})
    hits = index.search([HashValue.from_hex("00" * 8)], k=5, max_distance=3)
    assert [(h.entity_id, h.distance) for h in hits] == [("A1", 3)]
    body = ndjson(recorder.bodies("POST", "/_msearch")[0])[1]
    assert 1 / 5 < body["min_score"] < 1 / 4


def test_large_k_raises_ef_search_to_k(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_msearch", {"responses": [search_response()]})
    assert index.search([HashValue.from_hex("00" * 8)], k=400) == []
    knn = ndjson(recorder.bodies("POST", "/_msearch")[0])[1]["query"]["knn"]["hash_vector"]
    assert knn["k"] == 400 and knn["method_parameters"]["ef_search"] == 400


def test_exact_mode_uses_knn_score_script_with_hamming(client: OpenSearch, recorder: Recorder) -> None:
    index = adapter(client, search_mode="exact")
    recorder.on("POST", "/_msearch", {"responses": [search_response(("A1", 1.0), ("B2", 1 / 8))]})
    hits = index.search([HashValue.from_hex("ff00000000000000")], k=3)
    body = ndjson(recorder.bodies("POST", "/_msearch")[0])[1]
    assert body["size"] == 3
    assert body["query"] == {
        "script_score": {
            "query": {"match_all": {}},
            "script": {
                "source": "knn_score",
                "lang": "knn",
                "params": {
                    "field": "hash_vector",
                    "query_value": [-1, 0, 0, 0, 0, 0, 0, 0],
                    "space_type": "hamming",
                },
            },
        }
    }
    assert [(h.entity_id, h.distance) for h in hits] == [("A1", 0), ("B2", 7)]


def test_search_error_inside_msearch_is_unavailable(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on(
        "POST",
        "/_msearch",
        {"responses": [{"error": {"type": "search_phase_execution_exception"}, "status": 503}]},
    )
    with pytest.raises(IndexUnavailable):
        index.search([HashValue.from_hex("00" * 8)], k=1)


@pytest.mark.parametrize(
    "exc",
    [
        os_exc.ConnectionError("N/A", "Connection refused", Exception("refused")),
        os_exc.ConnectionTimeout("TIMEOUT", "Read timed out", Exception("timeout")),
        os_exc.TransportError(503, "unavailable", {}),
        os_exc.TransportError(429, "too_many_requests", {}),
        os_exc.NotFoundError(404, "index_not_found_exception", {}),
        os_exc.AuthorizationException(403, "security_exception", {}),
    ],
)
def test_outages_become_index_unavailable(index: OpenSearchHashIndex, recorder: Recorder, exc: Exception) -> None:
    recorder.on("POST", "/_msearch", exc).on("POST", "/_count", exc).on("PUT", "/_doc/", exc)
    for call in (
        lambda: index.search([HashValue.from_hex("00" * 8)], k=1),
        index.count,
        lambda: index.upsert(make_record("A1")),
    ):
        with pytest.raises(IndexUnavailable) as excinfo:
            call()
        assert excinfo.value.status == 503
        assert "OpenSearch" in excinfo.value.message


def test_bad_request_is_a_bug_not_503(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_msearch", os_exc.RequestError(400, "parsing_exception", {}))
    with pytest.raises(os_exc.RequestError):
        index.search([HashValue.from_hex("00" * 8)], k=1)


def test_count(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("POST", "/_count", {"count": 42, "_shards": {"total": 1}})
    assert index.count() == 42


def test_refresh_targets_the_index(index: OpenSearchHashIndex, recorder: Recorder) -> None:
    recorder.on("POST", f"/{INDEX}/_refresh", {"_shards": {"total": 2, "successful": 2, "failed": 0}})
    index.refresh()
    assert [(method, url) for method, url, _, _ in recorder.calls] == [("POST", f"/{INDEX}/_refresh")]


def test_unconfigured_endpoint_is_unavailable_not_a_hang() -> None:
    index = OpenSearchHashIndex.from_settings(Settings.from_env({}, index="opensearch"), bits=64)
    with pytest.raises(IndexUnavailable):
        index.count()


def test_builds_a_sigv4_client_with_short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    settings = Settings.from_env(
        {}, opensearch_endpoint="https://search-dupcheck-abc.us-east-1.es.amazonaws.com", aws_region="us-east-1"
    )
    index = OpenSearchHashIndex.from_settings(settings, bits=128)
    client = index.client
    (connection,) = client.transport.connection_pool.connections
    assert connection.host == "https://search-dupcheck-abc.us-east-1.es.amazonaws.com:443"
    assert connection.timeout == 5.0
    assert client.transport.max_retries == 1 and client.transport.retry_on_timeout is True
    from opensearchpy import AWSV4SignerAuth

    assert isinstance(connection.session.auth, AWSV4SignerAuth)
    assert connection.session.auth.service == "es"


# -- against OpenSearch's API specification ------------------------------------------------


def test_every_operation_the_adapter_sends_is_one_the_vendored_specification_holds(recorder: Recorder) -> None:
    """Each method of the adapter, in both search modes: what it sends is exactly the operations
    kept from the specification (scripts/opensearch_spec.py), each checked by the Recorder."""
    client = OpenSearch(hosts=[{"host": "localhost", "port": 9200}])
    client.transport.perform_request = recorder  # type: ignore[method-assign]
    recorder.on("HEAD", INDEX, False).on("PUT", f"/{INDEX}/_doc/", {"result": "created"})
    recorder.on("PUT", INDEX, {"acknowledged": True}).on("DELETE", "/_doc/", {"result": "deleted"})
    recorder.on("POST", "/_bulk", _bulk_answer({})).on("POST", "/_msearch", {"responses": [search_response()]})
    recorder.on("POST", "/_count", {"count": 0}).on("POST", "/_refresh", {"_shards": {"total": 1}})
    for mode in ("approximate", "exact"):
        index = adapter(client, bits=128, parts=HALVES, search_mode=mode)
        index.ensure_index()
        index.upsert(make_record("A1", hash_hex="ff" * 16))
        index.upsert_many([make_record("B1", hash_hex="80" * 16), make_record("B2", hash_hex="7f" * 16)])
        index.remove("A1")
        index.remove_versioned("B1", 1741773600001)
        index.search([HashValue.from_hex("ff" * 16), HashValue.from_hex("0f" * 16)], k=32, max_distance=12)
        index.search([HashValue.from_hex("ff" * 16)], k=32, part_hashes=[HashValue.from_hex("0f" * 8)], part_k=16)
        index.count()
        index.refresh()
    kept = load_api().info["x-source"]["operation_groups"]
    assert sorted(set(recorder.operations)) == sorted(kept)
    assert recorder.mapping is not None and recorder.mapping["properties"]["hash_vector"]["dimension"] == 128
    assert recorder.mapping["properties"]["hash_part"]["dimension"] == 64
    assert recorder.mapping["properties"]["hash_trimmed"]["dimension"] == 64
