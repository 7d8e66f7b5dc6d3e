"""The two ThumbnailStores, held to one contract: SQLite in the data dir, S3 (moto) on AWS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dupcheck.adapters.s3_thumbnails import S3Thumbnails, thumbnail_key
from dupcheck.adapters.sqlite_thumbnails import SqliteThumbnails
from dupcheck.bootstrap import build_thumbnails
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.ports import ThumbnailStore
from dupcheck.core.settings import Settings
from support.aws import REGION

BUCKET = "dupcheck-test-thumbnails"


@pytest.fixture
def s3_client(mock_aws_env: None) -> Any:
    import boto3

    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(params=["sqlite", "s3"])
def thumbnails(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ThumbnailStore]:
    if request.param == "sqlite":
        yield SqliteThumbnails(tmp_path / "thumbnails.sqlite3")
        return
    store = S3Thumbnails(BUCKET, client=request.getfixturevalue("s3_client"))
    yield store
    store.close()


def test_put_get_missing_delete(thumbnails: ThumbnailStore) -> None:
    assert isinstance(thumbnails, ThumbnailStore)
    # Ids as the API allows them: any script, spaces, punctuation a path segment carries.
    ids = ["A1", "ünïcødé id", "x" * 512, "(odd)'id'!*"]
    assert thumbnails.put_many({entity_id: f"bytes of {entity_id}".encode() + b"\x00\xff" for entity_id in ids}) == 4
    found = thumbnails.get_many([*ids, "absent", "A1"])
    assert found == {entity_id: f"bytes of {entity_id}".encode() + b"\x00\xff" for entity_id in ids}
    assert thumbnails.missing(["A1", "absent", "other"]) == {"absent", "other"}
    assert thumbnails.put_many({"A1": b"replaced"}) == 1
    assert thumbnails.get_many(["A1"]) == {"A1": b"replaced"}
    thumbnails.delete("A1")
    thumbnails.delete("A1")  # idempotent
    thumbnails.delete("never there")
    assert thumbnails.get_many(["A1"]) == {} and thumbnails.missing(["A1"]) == {"A1"}
    assert thumbnails.put_many({}) == 0 and thumbnails.get_many([]) == {} and thumbnails.missing([]) == set()


def test_many_at_once_in_batches(thumbnails: ThumbnailStore) -> None:
    blobs = {f"E{i}": bytes([i % 256]) * 50 for i in range(1_000)}  # more than one SQL batch
    thumbnails.put_many(blobs)
    assert thumbnails.get_many(list(blobs)) == blobs
    assert thumbnails.missing([*blobs, "F"]) == {"F"}


def test_s3_keys_are_fixed_length_hashes_under_the_prefix(s3_client: Any) -> None:
    store = S3Thumbnails(BUCKET, client=s3_client)
    store.put_many({"x" * 512: b"long", "a/../b": b"slashes"})
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == sorted([thumbnail_key("x" * 512), thumbnail_key("a/../b")])
    assert all(k.startswith("thumbnails/") and len(k) == len("thumbnails/") + 32 for k in keys)
    assert thumbnail_key("A") != thumbnail_key("a")


def test_s3_failures_are_store_unavailable_and_absence_is_not(s3_client: Any, monkeypatch) -> None:  # noqa: ANN001
    store = S3Thumbnails("no-such-bucket", client=s3_client)
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        store.get_many(["A"])
    with pytest.raises(StoreUnavailable):
        store.put_many({"A": b"x"})

    store = S3Thumbnails(BUCKET, client=s3_client)

    def refused(**_kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    monkeypatch.setattr(s3_client, "get_object", refused)
    with pytest.raises(StoreUnavailable, match="AccessDenied"):
        store.get_many(["A"])

    def unreachable(**_kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://s3.example")

    monkeypatch.setattr(s3_client, "head_object", unreachable)
    with pytest.raises(StoreUnavailable, match="EndpointConnectionError"):
        store.missing(["A", "B"])


def test_sqlite_failures_are_store_unavailable(tmp_path: Path) -> None:
    store = SqliteThumbnails(tmp_path / "t.sqlite3")
    store._conn().execute("DROP TABLE thumbnails")  # a damaged file, as a store sees it
    for call in (lambda: store.get_many(["A"]), lambda: store.put_many({"A": b"x"}), lambda: store.delete("A")):
        with pytest.raises(StoreUnavailable, match="local thumbnail store failed"):
            call()


def test_bootstrap_picks_the_store_by_settings(tmp_path: Path, s3_client: Any, caplog) -> None:  # noqa: ANN001
    local = build_thumbnails(Settings.from_env({}, data_dir=tmp_path))
    assert isinstance(local, SqliteThumbnails) and local.path == tmp_path / "thumbnails.sqlite3"
    aws = build_thumbnails(Settings.from_env({}, store="dynamodb", table_name="t", thumbnail_bucket=BUCKET))
    assert isinstance(aws, S3Thumbnails) and aws.bucket == BUCKET
    assert build_thumbnails(Settings.from_env({}, store="dynamodb", table_name="t")) is None
    assert "look-alike check is off" in caplog.text
