"""`/similar_products` through the Powertools resolver with the real model, fed API Gateway events:
by URL and by upload, the answer's shape, and every refusal in the API's error format; and the
AWS function that answers it, as Lambda starts it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dupcheck.api import build_resolver
from dupcheck.bootstrap import build_embedder, build_product_search, build_service
from dupcheck.core.models import PRODUCT_MODEL
from dupcheck.core.settings import Settings
from dupcheck_tools.samples import encode, product_image
from support.api_events import call, event
from support.fakes import FakeFetcher
from support.garments import garment

MAX_BYTES = 400_000


@pytest.fixture
def app(settings: Settings) -> Any:
    on = settings.model_copy(update={"products": "on"})
    images = {"https://img.test/zip.jpg": encode(garment("zip")), "https://img.test/text.jpg": b"not an image"}
    images |= {f"https://img.test/{i}.jpg": encode(product_image(300 + i)) for i in range(3)}
    service = build_service(on, fetcher=FakeFetcher(images, {}), embedder=build_embedder(on))
    service.registrar.register_bytes(entity_id="print-tee", sku="TEE-P", image_url="https://shop.example/p.jpg",
                                     data=encode(garment("print")))  # fmt: skip
    for i in range(3):
        service.registrar.register(f"blob{i}", f"B{i}", f"https://img.test/{i}.jpg")
    return build_resolver(service, max_body_bytes=MAX_BYTES, products=build_product_search(on, service))


def test_by_url_the_same_style_comes_first_with_a_similarity(app: Any) -> None:
    status, body = call(app, event("GET", "/similar_products", {"image_url": "https://img.test/zip.jpg", "top": "2"}))
    assert status == 200
    assert body["query"] == {"image_url": "https://img.test/zip.jpg", "model": PRODUCT_MODEL}
    first, second = body["products"]
    assert first == {"entity_id": "print-tee", "sku": "TEE-P", "image_url": "https://shop.example/p.jpg",
                     "similarity": first["similarity"]}  # fmt: skip
    assert 0.8 < first["similarity"] <= 1 and second["similarity"] < first["similarity"]


def test_an_upload_is_searched_as_an_address_is(app: Any) -> None:
    data = encode(garment("zip"))
    status, body = call(app, event("POST", "/similar_products", body=data, content_type="image/jpeg"))
    assert status == 200 and body["query"]["image_url"] is None
    assert [p["entity_id"] for p in body["products"]][0] == "print-tee" and len(body["products"]) == 4


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        (("GET", "/similar_products", {"image_url": "https://img.test/zip.jpg", "top": "0"}), 400, "invalid_request"),
        (("GET", "/similar_products", {"image_url": "ftp://img.test/zip.jpg"}), 400, "invalid_request"),
        (("GET", "/similar_products", None), 400, "invalid_request"),
        (("GET", "/similar_products", {"image_url": "https://img.test/text.jpg"}), 415, "unsupported_media_type"),
        (("GET", "/similar_products", {"image_url": "https://img.test/missing.jpg"}), 502, "upstream_error"),
    ],
)
def test_refusals_are_the_apis_json_errors(app: Any, request_args: tuple, status: int, code: str) -> None:
    got, body = call(app, event(*request_args))
    assert (got, body["error"]["code"]) == (status, code), body


def test_an_upload_too_large_or_not_an_image_is_refused(app: Any) -> None:
    got, body = call(app, event("POST", "/similar_products", body=b"x" * (MAX_BYTES + 1), content_type="image/jpeg"))
    assert (got, body["error"]["code"]) == (413, "image_too_large")
    got, body = call(app, event("POST", "/similar_products", body=b"GIF89a broken", content_type="image/gif"))
    assert got in (415, 422) and body["error"]["message"]


def test_where_similar_products_are_off_the_route_says_so(settings: Settings) -> None:
    app = build_resolver(build_service(settings), max_body_bytes=MAX_BYTES)
    got, body = call(app, event("GET", "/similar_products", {"image_url": "https://img.test/zip.jpg"}))
    assert (got, body["error"]["code"]) == (503, "products_unavailable")
    assert "DUPCHECK_PRODUCTS" in body["error"]["message"]


def test_the_aws_function_answers_from_the_product_index_and_the_records_table(
    monkeypatch: pytest.MonkeyPatch, ddb_table: str, lambda_context: Any
) -> None:
    """Lambda's start: settings read, the real model loaded, OpenSearch and DynamoDB adapters built;
    a hit of the product index is described from the records table."""
    from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore
    from dupcheck.core.models import ProductHit
    from support.aws import TABLE
    from support.fakes import make_record

    deployed = {"DUPCHECK_PRODUCTS": "on", "DUPCHECK_STORE": "dynamodb", "DUPCHECK_TABLE_NAME": TABLE,
                "DUPCHECK_INDEX": "opensearch", "DUPCHECK_OPENSEARCH_ENDPOINT": "https://os.example.com"}  # fmt: skip
    for name, value in deployed.items():
        monkeypatch.setenv(name, value)
    from dupcheck.handlers import similar_products

    settings = Settings.from_env()
    DynamoDBRecordStore.from_settings(settings).put(make_record("A1", sku="MH01-BLK"))

    class Index:
        def search(self, vector: Any, k: int) -> list[ProductHit]:
            assert vector.model == PRODUCT_MODEL and k == 5
            return [ProductHit("A1", 0.93), ProductHit("removed-meanwhile", 0.9)]

    assert similar_products.search is not None and similar_products.search.embedder.name == PRODUCT_MODEL
    monkeypatch.setattr(similar_products.search, "index", Index())
    data = encode(garment("zip"))
    response = similar_products.handler(event("POST", "/similar_products", body=data, content_type="image/jpeg"),
                                        lambda_context)  # fmt: skip
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["products"] == [
        {"entity_id": "A1", "sku": "MH01-BLK", "image_url": "https://images.example.com/A1.jpg", "similarity": 0.93}
    ]
