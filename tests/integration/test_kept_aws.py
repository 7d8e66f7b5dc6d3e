"""Kept images on AWS, with moto: a delete and a write that names the picture never both succeed,
whichever comes first; holds keep a picture a decision or an import needs; the stream sync function
lets it go with its last record (adapters/dynamodb_claims.py, DynamoDBKeptUses)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from dupcheck.core.catalog.gate import KEPT_GONE
from dupcheck.core.catalog.kept_images import kept_name, rendition
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import Conflict, KeptImageGone
from dupcheck_tools.samples import encode, product_image
from support.aws import REGION
from support.fakes import make_record

RECORDS, CLAIMS, BUCKET = "dupcheck-records", "dupcheck-claims", "dupcheck-kept"
BASE = "https://abc.execute-api.test/v1"


@pytest.fixture
def service(mock_aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[DupcheckService]:
    import boto3

    from dupcheck.adapters.dynamodb_claims import create_claims_table
    from dupcheck.adapters.dynamodb_store import create_table
    from dupcheck.bootstrap import build_service

    ddb, s3 = boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION)
    create_table(ddb, RECORDS)
    create_claims_table(ddb, CLAIMS)
    s3.create_bucket(Bucket=BUCKET)
    for name, value in {"STORE": "dynamodb", "INDEX": "local", "TABLE_NAME": RECORDS, "CLAIMS_TABLE": CLAIMS,
                        "THUMBNAIL_BUCKET": BUCKET, "IMPORTS_BUCKET": BUCKET, "DATA_DIR": str(tmp_path),
                        "DYNAMODB_CONSISTENT_READ": "true"}.items():  # fmt: skip
        monkeypatch.setenv(f"DUPCHECK_{name}", value)
    from dupcheck.core.settings import Settings

    yield build_service(Settings.from_env())


def pictures(service: DupcheckService) -> Any:
    from dupcheck.bootstrap import build_kept_image_lifecycle
    from dupcheck.core.settings import Settings

    kept = build_kept_image_lifecycle(Settings.from_env(), service.parts.store)
    assert kept is not None
    return kept


def test_a_write_naming_a_picture_and_its_delete_never_both_succeed(service: DupcheckService) -> None:
    kept = pictures(service)
    data = rendition(encode(product_image(11)), max_pixels=10**8)

    # The write first: the picture has a user, so the delete is refused.
    url = kept.keep(data, BASE)
    claims = service.parts.gate.claims
    assert claims is not None
    assert claims.commit([(make_record("A", image_url=url), None)]) == [None]
    with pytest.raises(Conflict):
        kept.delete(kept_name(url))
    assert kept.images.exists(kept_name(url))

    # The delete first (it marks the picture, then deletes it): the write stores nothing.
    other = kept.keep(rendition(encode(product_image(12)), max_pixels=10**8), BASE)
    kept.delete(kept_name(other))
    assert not kept.images.exists(kept_name(other))
    assert claims.commit([(make_record("B", image_url=other), None)]) == [KEPT_GONE]
    assert service.parts.store.get("B") is None
    # Through the service's write path the same write answers kept_image_gone.
    with pytest.raises(KeptImageGone):
        service.records.save(service.records.entry_for(entity_id="B", sku="", image_url=other, data=data))

    # Kept again (the same picture uploaded again): writes naming it are stored again.
    assert kept.keep(rendition(encode(product_image(12)), max_pixels=10**8), BASE) == other
    assert claims.commit([(make_record("B", image_url=other), None)]) == [None]


def test_a_delete_under_way_refuses_the_write_that_meets_it(service: DupcheckService) -> None:
    """The interleaving a lock would forbid: the delete has marked the picture, the write commits."""
    from dupcheck.adapters.dynamodb_claims import DynamoDBKeptUses

    kept = pictures(service)
    url = kept.keep(rendition(encode(product_image(13)), max_pixels=10**8), BASE)
    uses = kept.uses
    assert isinstance(uses, DynamoDBKeptUses)
    assert uses.begin_delete(kept_name(url), time.time())
    assert service.parts.gate.claims.commit([(make_record("C", image_url=url), None)]) == [KEPT_GONE]  # type: ignore[union-attr]
    uses.end_delete(kept_name(url), False, time.time())  # the delete found a use after all: kept
    assert service.parts.gate.claims.commit([(make_record("C", image_url=url), None)]) == [None]  # type: ignore[union-attr]


def test_holds_keep_a_picture_until_let_go_and_the_last_record_takes_it_with_it(service: DupcheckService) -> None:
    from dupcheck.handlers.stream_sync import StreamSync

    kept = pictures(service)
    url = kept.keep(rendition(encode(product_image(14)), max_pixels=10**8), BASE)
    name = kept_name(url)
    kept.pin([url], "decision:1")
    with pytest.raises(Conflict):
        kept.delete(name)
    assert kept.sweep(0) == 0 and kept.images.exists(name)  # S3's lifecycle is the sweep here: nothing listed
    kept.unpin("decision:1")

    # A record names it, then is removed: the stream sync function drops its use and deletes it.
    assert service.parts.gate.claims.commit([(make_record("D", image_url=url), None)]) == [None]  # type: ignore[union-attr]
    assert service.parts.store.delete("D")
    sync = StreamSync(service.parts.index, kept)
    removed = {"eventName": "REMOVE", "dynamodb": {"Keys": {"entity_id": {"S": "D"}}, "SequenceNumber": "1",
               "OldImage": {"entity_id": {"S": "D"}, "image_url": {"S": url}}}}  # fmt: skip
    sync.follow_pictures(DynamoDBRecord(removed))
    assert not kept.images.exists(name)
