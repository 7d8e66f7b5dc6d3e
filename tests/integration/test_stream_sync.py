"""End to end through moto: store writes -> DynamoDB stream -> stream_sync.handler -> index.

The records are the ones moto's DynamoDB Streams API returns (describe_stream,
get_shard_iterator TRIM_HORIZON, get_records), wrapped as Lambda delivers them, so the handler
sees the real image format the table produces.
"""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dupcheck.adapters.dynamodb_store import DynamoDBRecordStore
from support.aws import REGION
from support.fakes import (
    FakeIndex,
    VersionedFakeIndex,
    load_event,
    make_record,
)


@pytest.fixture
def stream_sync(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, aws_env: None) -> Any:
    monkeypatch.setenv("DUPCHECK_DATA_DIR", str(tmp_path))
    from dupcheck.handlers import stream_sync as module

    return module


def use_index(module: Any, monkeypatch: pytest.MonkeyPatch, index: Any) -> Any:
    monkeypatch.setattr(module, "sync", module.StreamSync(index))
    return index


def read_stream(stream_arn: str) -> list[dict[str, Any]]:
    """Every record on the table's stream, shaped as in a Lambda event."""
    import boto3

    streams = boto3.client("dynamodbstreams", region_name=REGION)
    records: list[dict[str, Any]] = []
    shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    for shard in shards:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator)
            for record in page["Records"]:
                record = copy.deepcopy(record)
                created = record["dynamodb"].get("ApproximateCreationDateTime")
                if isinstance(created, datetime):  # the SDK parses it; Lambda sends epoch seconds
                    record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
                record["eventSourceARN"] = stream_arn
                records.append(record)
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def test_stream_end_to_end(
    stream_sync: Any,
    ddb_store: DynamoDBRecordStore,
    ddb_table: str,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = use_index(stream_sync, monkeypatch, FakeIndex())
    ddb_store.put(make_record("A1", hash_hex="00000000000000ff"))
    ddb_store.put(make_record("B2", hash_hex="ff00000000000000"))
    ddb_store.put(make_record("A1", hash_hex="000000000000ffff", updated_at="2025-03-12T11:00:00.000Z"))
    ddb_store.delete("B2")
    ddb_store.put_many([make_record("C3", hash_hex="0f0f0f0f0f0f0f0f"), make_record("D4")])

    records = read_stream(ddb_table)
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "MODIFY", "REMOVE", "INSERT", "INSERT"]
    event = {"Records": records}

    response = stream_sync.handler(event, lambda_context)

    assert response == {"batchItemFailures": []}
    assert set(index.docs) == {"A1", "C3", "D4"}
    assert index.docs["A1"].hash.hex == "000000000000ffff"  # the MODIFY, not the first INSERT
    assert index.docs["A1"] == ddb_store.get("A1")  # same record, typed identically
    # Only the latest change per entity is applied: A1's first INSERT and B2's INSERT are skipped.
    assert ("upsert", "B2") not in index.calls
    assert index.calls.count(("upsert", "A1")) == 1

    # A replayed batch (Lambda retry) converges to the same state.
    before = dict(index.docs)
    assert stream_sync.handler(copy.deepcopy(event), lambda_context) == {"batchItemFailures": []}
    assert index.docs == before


def test_malformed_record_is_a_partial_failure(
    stream_sync: Any,
    ddb_store: DynamoDBRecordStore,
    ddb_table: str,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = use_index(stream_sync, monkeypatch, FakeIndex())
    ddb_store.put(make_record("A1"))
    ddb_store.put(make_record("B2", hash_hex="ff00000000000000"))
    ddb_store.put(make_record("C3", hash_hex="0f0f0f0f0f0f0f0f"))
    records = read_stream(ddb_table)
    bad = records[1]
    del bad["dynamodb"]["NewImage"]["hash"]  # an item that is not a hash record

    response = stream_sync.handler({"Records": records}, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["dynamodb"]["SequenceNumber"]}]}
    assert set(index.docs) == {"A1", "C3"}


def test_remove_then_stale_insert_does_not_resurrect(
    stream_sync: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across batches: REMOVE applied, then the older INSERT is redelivered (a retry)."""
    index = use_index(stream_sync, monkeypatch, VersionedFakeIndex())
    batch = load_event("ddb_stream_batch.json")
    insert = batch["Records"][0]  # A1 INSERT, updated_at 10:00:00
    remove = copy.deepcopy(insert)
    remove["eventName"] = "REMOVE"
    remove["dynamodb"]["OldImage"] = remove["dynamodb"].pop("NewImage")
    remove["dynamodb"]["SequenceNumber"] = "111900000000000000009"
    remove["dynamodb"]["ApproximateCreationDateTime"] = 1741773900

    assert stream_sync.handler({"Records": [insert]}, lambda_context)["batchItemFailures"] == []
    assert "A1" in index.docs
    assert stream_sync.handler({"Records": [remove]}, lambda_context)["batchItemFailures"] == []
    assert "A1" not in index.docs
    assert stream_sync.handler({"Records": [insert]}, lambda_context)["batchItemFailures"] == []
    assert "A1" not in index.docs
    assert ("stale-upsert", "A1") in index.calls


def test_canned_batch_insert_modify_remove(
    stream_sync: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = use_index(stream_sync, monkeypatch, FakeIndex())
    index.docs["C3"] = make_record("C3")

    response = stream_sync.handler(load_event("ddb_stream_batch.json"), lambda_context)

    assert response == {"batchItemFailures": []}
    assert set(index.docs) == {"A1", "B2"}
    assert index.docs["A1"].features == {"colour": bytes.fromhex("0a1b2c")}  # stream images carry binary as base64
    assert index.docs["B2"].image_url.endswith("MH02-RED.jpg")


def test_unknown_event_name_fails_only_that_record(
    stream_sync: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = use_index(stream_sync, monkeypatch, FakeIndex())
    batch = load_event("ddb_stream_batch.json")
    batch["Records"][1]["eventName"] = "TRUNCATE"
    response = stream_sync.handler(batch, lambda_context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "111200000000000000002"}]}
    assert "A1" in index.docs


def test_index_outage_fails_the_records_for_retry(
    stream_sync: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dupcheck.core.errors import IndexUnavailable

    class Down(FakeIndex):
        def upsert(self, record: Any) -> None:
            raise IndexUnavailable("OpenSearch index failed: cannot connect")

    use_index(stream_sync, monkeypatch, Down())
    batch = load_event("ddb_stream_batch.json")
    batch["Records"] = batch["Records"][:2]  # two upserts, both fail
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    # Every record failed: Powertools raises so Lambda retries the whole batch.
    with pytest.raises(BatchProcessingError):
        stream_sync.handler(batch, lambda_context)


def test_ensure_index_is_called_once(stream_sync: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Ensuring(FakeIndex):
        ensured = 0

        def ensure_index(self) -> bool:
            self.ensured += 1
            return True

        def refresh(self) -> None:
            pass

    index = use_index(stream_sync, monkeypatch, Ensuring())
    stream_sync.handler(load_event("ddb_stream_batch.json"), lambda_context)
    stream_sync.handler(load_event("ddb_stream_batch.json"), lambda_context)
    assert index.ensured == 1


def test_kept_pictures_follow_their_records_through_the_stream_replayed_or_not(
    ddb_store: DynamoDBRecordStore, ddb_table: str, lambda_context: Any
) -> None:
    """A picture named again by its record in the same batch as its REMOVE stays; the last record
    naming one removed deletes it; a replayed batch changes nothing and fails nothing."""
    import boto3

    from dupcheck.adapters.s3_files import S3KeptImages
    from dupcheck.core.catalog.kept_images import KeptImageLifecycle
    from dupcheck.handlers.stream_sync import StreamSync

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="kept")
    images = S3KeptImages("kept", client=s3)
    a_name, b_name = "a" * 64 + ".jpg", "b" * 64 + ".jpg"
    for name in (a_name, b_name):
        images.put(name, b"picture " + name.encode())
    url = "https://api.test/v1/images/{}".format
    sync = StreamSync(FakeIndex(), KeptImageLifecycle(images, ddb_store))

    ddb_store.put(make_record("A", image_url=url(a_name)))
    ddb_store.put(make_record("B", image_url=url(b_name)))
    ddb_store.delete("A")  # removed, then registered again with the same picture: it stays
    ddb_store.put(make_record("A", image_url=url(a_name), updated_at="2025-03-12T11:00:00.000Z"))
    ddb_store.put(make_record("B", image_url="https://shop.test/b.jpg"))  # B names another picture now
    batch = {"Records": read_stream(ddb_table)}
    for _ in range(2):  # delivered, then replayed
        assert sync.handle(batch, lambda_context)["batchItemFailures"] == []
        assert images.get(a_name) is not None and images.get(b_name) is None
        assert s3.get_object_tagging(Bucket="kept", Key=f"images/{a_name}")["TagSet"] == []  # claimed

    ddb_store.delete("A")
    assert sync.handle({"Records": read_stream(ddb_table)[len(batch["Records"]):]}, lambda_context)[
        "batchItemFailures"] == []  # fmt: skip
    assert images.get(a_name) is None
