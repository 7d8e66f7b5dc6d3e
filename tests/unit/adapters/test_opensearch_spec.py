"""The check of requests against OpenSearch's API definition (tests/support/opensearch_api.py)
refuses what OpenSearch would refuse: each case is one of the adapter's own requests with one
mistake in it, and the message names the mistake. (The adapter's requests themselves pass:
tests/unit/adapters/test_opensearch_index.py checks every one.)"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from dupcheck.adapters.opensearch.schema import Hnsw, index_body, query_body
from dupcheck.core.models import HashValue
from support.opensearch_api import DATA, RequestRejected, check_request, load

INDEX = "dupcheck-hashes"
CREATE = index_body(128, Hnsw(m=32, ef_construction=128, ef_search=128), "1h")
MAPPING = CREATE["mappings"]
QUERY_HASH = HashValue.from_hex("ff00" * 8)
DOCUMENT = {"entity_id": "A1", "hash": "ff00" * 8, "hash_vector": [-1, 0] * 8}


def ndjson(*lines: Any) -> str:
    return "".join(json.dumps(line) + "\n" for line in lines)


def search(mode: str, change: Callable[[dict[str, Any]], None] = lambda body: None) -> str:
    body = query_body(QUERY_HASH, 32, mode=mode, ef_search=128, max_distance=12)  # type: ignore[arg-type]
    change(body)
    return ndjson({"index": INDEX}, body)


def created(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = copy.deepcopy(CREATE)
    change(body)
    return body


def vector_field(body: dict[str, Any]) -> dict[str, Any]:
    return body["mappings"]["properties"]["hash_vector"]


VALID: list[tuple[str, str, dict[str, Any], Any]] = [
    ("PUT", f"/{INDEX}", {}, CREATE),
    ("HEAD", f"/{INDEX}", {}, None),
    ("PUT", f"/{INDEX}/_doc/A%201", {"refresh": "false", "version": "1741773600000", "version_type": "external_gte"},
     DOCUMENT),
    ("DELETE", f"/{INDEX}/_doc/A1", {"refresh": "false", "version": "1741773600001", "version_type": "external"}, None),
    ("POST", "/_bulk", {"refresh": "false"},
     ndjson({"index": {"_index": INDEX, "_id": "A1", "version": 1, "version_type": "external_gte"}}, DOCUMENT)),
    ("POST", "/_msearch", {}, search("approximate")),
    ("POST", "/_msearch", {}, search("exact")),
    ("POST", f"/{INDEX}/_count", {}, None),
    ("POST", f"/{INDEX}/_refresh", {}, None),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "params", "body"), VALID)
def test_the_adapters_requests_pass(method: str, path: str, params: dict[str, Any], body: Any) -> None:
    check_request(method, path, params, body, mapping=MAPPING)


def _set(path: list[str], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        node = body
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _rename(getter: Callable[[dict[str, Any]], dict[str, Any]], old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        node = getter(body)
        node[new] = node.pop(old)

    return change


WRONG: list[tuple[str, tuple[str, str, dict[str, Any], Any], str]] = [
    # The mapping: the specification's part, then the k-NN plugin's.
    ("misspelt knn_vector key", ("PUT", f"/{INDEX}", {}, created(_rename(vector_field, "dimension", "dimensoin"))),
     "'dimensoin' was unexpected"),
    ("misspelt mapping key", ("PUT", f"/{INDEX}", {}, created(_set(["mappings", "dynamc"], False))),
     "'dynamc' was unexpected"),
    ("misspelt HNSW parameter", ("PUT", f"/{INDEX}", {}, created(
        _rename(lambda b: vector_field(b)["method"]["parameters"], "ef_construction", "ef_constrution"))),
     "'ef_constrution' was unexpected"),
    ("binary vectors in the wrong space", ("PUT", f"/{INDEX}", {}, created(
        _set(["mappings", "properties", "hash_vector", "method", "space_type"], "l2"))), "'hamming' was expected"),
    ("binary dimension not a multiple of 8", ("PUT", f"/{INDEX}", {}, created(
        _set(["mappings", "properties", "hash_vector", "dimension"], 100))), "not a multiple of 8"),
    ("unknown engine", ("PUT", f"/{INDEX}", {}, created(
        _set(["mappings", "properties", "hash_vector", "method", "engine"], "fais"))), "'fais' is not one of"),
    ("misspelt setting", ("PUT", f"/{INDEX}", {}, created(_rename(lambda b: b["settings"]["index"], "gc_deletes",
                                                                   "gc_delete"))),
     "gc_delete: not a setting"),
    ("duration without a unit", ("PUT", f"/{INDEX}", {}, created(_set(["settings", "index", "gc_deletes"], "1 hour"))),
     "does not match"),
    # Documents and their parameters.
    ("unknown query parameter", ("PUT", f"/{INDEX}/_doc/A1", {"version_typ": "external_gte"}, DOCUMENT),
     "'version_typ' is not a parameter"),
    ("unknown version type", ("PUT", f"/{INDEX}/_doc/A1", {"version": "1", "version_type": "externel"}, DOCUMENT),
     "version_type=externel"),
    ("a method the path lacks", ("PATCH", f"/{INDEX}/_doc/A1", {}, DOCUMENT), "not a method of this path"),
    ("vector values over int8", ("PUT", f"/{INDEX}/_doc/A1", {}, {**DOCUMENT, "hash_vector": [255] * 16}),
     "greater than the maximum of 127"),
    ("vector of the wrong length", ("PUT", f"/{INDEX}/_doc/A1", {}, {**DOCUMENT, "hash_vector": [1] * 8}),
     "8 values, the binary dimension 128 needs 16"),
    ("misspelt bulk action", ("POST", "/_bulk", {}, ndjson({"indx": {"_index": INDEX, "_id": "A1"}}, DOCUMENT)),
     "'indx' was unexpected"),
    ("misspelt bulk metadata", ("POST", "/_bulk", {}, ndjson({"index": {"_index": INDEX, "versoin": 1}}, DOCUMENT)),
     "'versoin' was unexpected"),
    # Searches.
    ("misspelt msearch header", ("POST", "/_msearch", {}, ndjson({"indx": INDEX}, {"query": {"match_all": {}}})),
     "'indx' was unexpected"),
    ("misspelt search key", ("POST", "/_msearch", {}, search("approximate", _set(["_sorce"], False))),
     "'_sorce' was unexpected"),
    ("misspelt knn key", ("POST", "/_msearch", {}, search(
        "approximate", _rename(lambda b: b["query"]["knn"]["hash_vector"], "k", "kk"))), "'kk' was unexpected"),
    ("misspelt method parameter", ("POST", "/_msearch", {}, search(
        "approximate", _set(["query", "knn", "hash_vector", "method_parameters"], {"ef_serch": 128}))),
     "'ef_serch' was unexpected"),
    ("knn on a field that is no knn_vector", ("POST", "/_msearch", {}, search(
        "approximate", _rename(lambda b: b["query"]["knn"], "hash_vector", "hash"))),
     "'hash' is not a knn_vector field"),
    ("query vector of the wrong length", ("POST", "/_msearch", {}, search(
        "approximate", _set(["query", "knn", "hash_vector", "vector"], [1] * 8))), "needs 16"),
    ("hammingbit on a knn_vector", ("POST", "/_msearch", {}, search(
        "exact", _set(["query", "script_score", "script", "params", "space_type"], "hammingbit"))),
     "hammingbit refuses"),
    ("misspelt script parameter", ("POST", "/_msearch", {}, search(
        "exact", _rename(lambda b: b["query"]["script_score"]["script"]["params"], "query_value", "query_values"))),
     "'query_values' was unexpected"),
    ("misspelt script_score key", ("POST", "/_msearch", {}, search(
        "exact", _rename(lambda b: b["query"]["script_score"], "script", "scrpt"))), "'script' is a required property"),
    ("a body where none is taken", ("POST", f"/{INDEX}/_refresh", {}, {"force": True}), "takes no body"),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "expected"), [(r, e) for _, r, e in WRONG], ids=[name for name, _, _ in WRONG])
def test_a_wrong_request_is_refused_naming_the_mistake(
    request_: tuple[str, str, dict[str, Any], Any], expected: str
) -> None:
    method, path, params, body = request_
    with pytest.raises(RequestRejected) as excinfo:
        check_request(method, path, params, body, mapping=MAPPING)
    assert expected in str(excinfo.value)


def test_the_vendored_specification_is_the_one_written_down_beside_it() -> None:
    """The subset's recorded source and the README agree (tests/infra checks that its version is
    the one the stack deploys)."""
    source = load().info["x-source"]
    readme = (DATA / "README.md").read_text()
    assert source["commit"] in readme
    assert source["built_with"] in readme
