"""The product sync Lambda on canned stream events: a new picture is fetched, embedded and written
with its record's version, a new SKU on the same picture is left alone, a REMOVE deletes with a
version above the removed record's; a picture that cannot be had is skipped, an outage retried."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from dupcheck.core.catalog.products import Embedder
from dupcheck.core.errors import ImageUnreachable, IndexUnavailable, UpstreamTimeout
from dupcheck.core.models import PRODUCT_MODEL, ProductVector, version_of
from support.fakes import load_event


class Model:
    name = PRODUCT_MODEL

    def run(self, pictures: np.ndarray) -> np.ndarray:
        return np.tile(np.eye(256, dtype=np.float32)[:1], (len(pictures), 1))


class Fetcher:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure, self.urls = failure, []

    def fetch(self, url: str) -> bytes:
        self.urls.append(url)
        if self.failure is not None:
            raise self.failure
        from dupcheck_tools.samples import encode, product_image

        return encode(product_image(1, size=(64, 64)))


class Index:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.calls: list[tuple[Any, ...]] = []

    def ensure_index(self) -> bool:
        self.calls.append(("ensure",))
        return False

    def put(self, entity_id: str, vector: ProductVector, version: int | None = None) -> None:
        if self.failure is not None:
            raise self.failure
        self.calls.append(("put", entity_id, vector.model, version))

    def remove(self, entity_id: str, version: int | None = None) -> None:
        self.calls.append(("remove", entity_id, version))

    def missing(self, entity_ids: list[str]) -> set[str]:
        self.calls.append(("missing", *entity_ids))
        return {e for e in entity_ids if e.startswith("new-")}


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The handler module as Lambda imports it: settings read, the real model loaded."""
    monkeypatch.setenv("DUPCHECK_PRODUCTS", "on")
    monkeypatch.setenv("DUPCHECK_INDEX", "opensearch")
    monkeypatch.setenv("DUPCHECK_OPENSEARCH_ENDPOINT", "https://search.example.com")
    from dupcheck.handlers import product_sync

    return product_sync


def use(module: Any, monkeypatch: pytest.MonkeyPatch, *, index: Index, fetcher: Fetcher) -> None:
    monkeypatch.setattr(module, "sync", module.ProductSync(index, Embedder(Model()), fetcher, max_pixels=10**6))


def test_the_canned_batch_writes_the_new_pictures_and_removes_the_gone_one(
    module: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    assert module.sync.embedder.name == PRODUCT_MODEL  # cold start loaded the real model
    index, fetcher = Index(), Fetcher()
    use(module, monkeypatch, index=index, fetcher=fetcher)
    response = module.handler(load_event("ddb_stream_batch.json"), lambda_context)
    assert response == {"batchItemFailures": []}
    assert fetcher.urls == ["https://images.example.com/catalog/MH01-BLK.jpg",
                            "https://images.example.com/catalog/MH02-RED.jpg"]  # fmt: skip
    (ensure, a1, b2, c3) = index.calls
    assert ensure == ("ensure",)
    assert a1 == ("put", "A1", PRODUCT_MODEL, version_of("2025-03-12T10:00:00.000Z"))
    assert b2[:3] == ("put", "B2", PRODUCT_MODEL)
    assert c3[:2] == ("remove", "C3") and c3[2] > 0


def test_a_new_sku_on_the_same_picture_keeps_its_vector(
    module: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    event = load_event("ddb_stream_batch.json")
    modify = copy.deepcopy(event["Records"][1])
    modify["dynamodb"]["NewImage"]["image_url"] = modify["dynamodb"]["OldImage"]["image_url"]
    modify["dynamodb"]["NewImage"]["hash"] = modify["dynamodb"]["OldImage"]["hash"]
    modify["dynamodb"]["NewImage"]["sku"] = {"S": "RENAMED"}
    index, fetcher = Index(), Fetcher()
    use(module, monkeypatch, index=index, fetcher=fetcher)
    assert module.handler({"Records": [modify]}, lambda_context) == {"batchItemFailures": []}
    assert fetcher.urls == [] and index.calls == [("ensure",), ("missing", "B2")]
    # The same picture rewritten (a catalog imported again) whose record has no vector yet gets one.
    for image in ("NewImage", "OldImage"):
        modify["dynamodb"][image]["entity_id"] = {"S": "new-B2"}
    modify["dynamodb"]["Keys"]["entity_id"] = {"S": "new-B2"}
    assert module.handler({"Records": [modify]}, lambda_context) == {"batchItemFailures": []}
    assert index.calls[-1][:2] == ("put", "new-B2") and len(fetcher.urls) == 1


@pytest.mark.parametrize(
    ("fetch_failure", "index_failure", "retried"),
    [
        (ImageUnreachable("the host said 404"), None, False),  # gone for good: skipped, never retried
        (UpstreamTimeout("the host did not answer"), None, True),  # may pass later
        (None, IndexUnavailable("OpenSearch is down"), True),
    ],
)
def test_only_what_may_pass_later_fails_the_record(
    module: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any,
    fetch_failure: Exception | None, index_failure: Exception | None, retried: bool,
) -> None:  # fmt: skip
    event = load_event("ddb_stream_batch.json")
    event["Records"] = [event["Records"][0], event["Records"][2]]  # A1's new picture; C3 removed
    use(module, monkeypatch, index=Index(index_failure), fetcher=Fetcher(fetch_failure))
    failures = module.handler(event, lambda_context)["batchItemFailures"]
    assert failures == ([{"itemIdentifier": "111100000000000000001"}] if retried else [])


def test_a_malformed_record_fails_alone(module: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    event = load_event("ddb_stream_batch.json")
    del event["Records"][0]["dynamodb"]["NewImage"]
    index = Index()
    use(module, monkeypatch, index=index, fetcher=Fetcher())
    failures = module.handler(event, lambda_context)["batchItemFailures"]
    assert failures == [{"itemIdentifier": "111100000000000000001"}]
    assert [c[:2] for c in index.calls[1:]] == [("put", "B2"), ("remove", "C3")]
