"""What dupcheck sends to OpenSearch: the index mapping, documents and k-NN queries.

Each shape follows the k-NN plugin's documentation and source (docs/deploy.md lists what only a
real cluster can confirm, with the smoke-test check for each):
* Mapping: `knn_vector`, `dimension` = hash bits (a multiple of 8), `data_type: binary`,
  `method: {name: hnsw, engine: faiss, space_type: hamming, parameters: {m, ef_construction}}`.
  `space_type` sits inside `method`, which 2.16 accepts (top-level `space_type` only from 2.17).
* Values: the hash bytes as *signed* int8 (byte b -> b-256 when b > 127), as the docs require.
* Approximate search: a `knn` query per query hash, with `method_parameters.ef_search` (2.16+),
  never below k; the index setting `knn.algo_param.ef_search` is the fallback.
* Parts: an index built with `parts` (the pipeline's `index_parts`) also maps each part of the
  hash as a `knn_vector` of its own (the default pipeline's halves: `hash_part`, the whole
  picture's, and `hash_trimmed`), searched the same way; those searches return the document's
  `hash`, so a hit is measured on the whole hash. An index made before a part's field answers
  that part's searches with an error, which the adapter treats as no hits (docs/deploy.md says
  how to add the field).
* Exact search: `script_score` with the plugin's `knn_score` script and `space_type: "hamming"`.
  Not `hammingbit`: in the plugin it only accepts `long` or `binary` (base64) fields and
  rejects a `knn_vector` ("Incompatible field_type for hammingbit space"). Its score is also
  `1/(1+d)`.

Documents hold what search needs and what an operator looks for (ids, SKU, URL, pipeline), not
the verification views: those stay in DynamoDB, the record store, which the service reads the
candidates from in one BatchGetItem. A document is then ~350 bytes of _source, a third of a
record, which is what sizes the cluster (docs/deploy.md); searches return ids only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dupcheck.core.models import HashPart, HashRecord, HashValue

VECTOR_FIELD = "hash_vector"
# Each part's own vector (a part of another name: `hash_<name>`). The whole-picture half keeps the
# name it had as the only part, `hash_part`: indexes made then hold it so.
PART_FIELDS = {"whole": "hash_part", "trimmed": "hash_trimmed"}
# OpenSearch caps `k` and `size` at 10,000 per query (index.max_result_window).
MAX_RESULTS = 10_000

SearchMode = Literal["approximate", "exact"]


@dataclass(frozen=True, slots=True)
class Hnsw:
    """HNSW graph parameters (values and their measurement: Settings, docs/lab/hnsw.md)."""

    m: int
    ef_construction: int
    ef_search: int


def to_int8(data: bytes) -> list[int]:
    """Packed hash bytes -> the signed int8 list a binary knn_vector expects."""
    return [b - 256 if b > 127 else b for b in data]


def from_int8(values: Sequence[int]) -> bytes:
    return bytes(v & 0xFF for v in values)


def score_to_distance(score: float) -> int:
    """Hamming score `1/(1+d)` -> integer distance d (scores come back as float32)."""
    if score <= 0:
        raise ValueError(f"not a hamming score: {score}")
    return max(0, round(1.0 / score - 1.0))


def part_field(part: HashPart) -> str:
    """The vector field that holds `part` of every document's hash."""
    return PART_FIELDS.get(part.name, f"hash_{part.name}")


def vector_mapping(dimension: int, hnsw: Hnsw) -> dict[str, Any]:
    """A binary `knn_vector` of `dimension` bits in Hamming space: the hash's field, and a part's
    (what docs/deploy.md's PUT _mapping adds to an index made before the part)."""
    return {
        "type": "knn_vector",
        "dimension": dimension,
        "data_type": "binary",
        "method": {
            "name": "hnsw",
            "engine": "faiss",
            "space_type": "hamming",
            "parameters": {"m": hnsw.m, "ef_construction": hnsw.ef_construction},
        },
    }


def knn_settings(hnsw: Hnsw, gc_deletes: str | None) -> dict[str, Any]:
    """The index settings of a k-NN index that a stream keeps: `gc_deletes` keeps delete tombstones
    that long (OpenSearch's default is 60 s), which bounds how late a stale stream INSERT may arrive
    and still be refused by external versioning."""
    settings: dict[str, Any] = {"knn": True, "knn.algo_param.ef_search": hnsw.ef_search}
    if gc_deletes:
        settings["gc_deletes"] = gc_deletes
    return {"index": settings}


def index_body(bits: int, hnsw: Hnsw, gc_deletes: str | None, parts: Sequence[HashPart] = ()) -> dict[str, Any]:
    """Settings and mappings of the index."""
    keyword = {"type": "keyword"}
    return {
        "settings": knn_settings(hnsw, gc_deletes),
        "mappings": {
            # Unknown fields are kept in _source but not indexed: no mapping explosion.
            "dynamic": False,
            "properties": {
                VECTOR_FIELD: vector_mapping(bits, hnsw),
                **{part_field(part): vector_mapping(part.bits, hnsw) for part in parts},
                "entity_id": keyword,
                "hash": keyword,
                "sku": keyword,
                "image_url": {"type": "keyword", "ignore_above": 2048},
                "hash_algo": keyword,
                "updated_at": keyword,
            },
        },
    }


def document(record: HashRecord, bits: int, parts: Sequence[HashPart] = ()) -> dict[str, Any]:
    """The record's fields but its features, plus its hash as the binary vector (and each part's)."""
    if record.hash.bits != bits:
        raise ValueError(f"record {record.entity_id!r} has a {record.hash.bits}-bit hash; the index holds {bits}")
    fields = {name: value for name, value in record.to_dict().items() if name != "features"}
    by_part = {part_field(part): to_int8(part.of(record.hash).data) for part in parts}
    return {**fields, VECTOR_FIELD: to_int8(record.hash.data), **by_part}


def query_body(
    hash_value: HashValue,
    k: int,
    *,
    mode: SearchMode,
    ef_search: int,
    max_distance: int | None,
    field: str = VECTOR_FIELD,
) -> dict[str, Any]:
    """One search of the k nearest documents to `hash_value` on `field` (a part's: they come back
    with their `hash`, which the part's distance does not give)."""
    k = min(k, MAX_RESULTS)
    vector = to_int8(hash_value.data)
    query: dict[str, Any]
    if mode == "exact":
        script = {"field": field, "query_value": vector, "space_type": "hamming"}
        query = {
            "script_score": {
                "query": {"match_all": {}},
                "script": {"source": "knn_score", "lang": "knn", "params": script},
            }
        }
    else:
        # ef_search below k would cap the result count: never go under it.
        query = {"knn": {field: {"vector": vector, "k": k, "method_parameters": {"ef_search": max(ef_search, k)}}}}
    body: dict[str, Any] = {"size": k, "query": query, "_source": False if field == VECTOR_FIELD else ["hash"]}
    if max_distance is not None:
        # Server-side pruning; halfway to the next distance so float rounding keeps d itself.
        body["min_score"] = 1.0 / (1.0 + max_distance + 0.5)
    return body
