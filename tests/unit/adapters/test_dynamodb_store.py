"""DynamoDBRecordStore against moto: conversions, batching limits, retries and error mapping."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dupcheck.adapters import dynamodb_store
from dupcheck.adapters.dynamodb_store import (
    DynamoDBRecordStore,
    item_to_record,
    record_to_item,
)
from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.ports import RecordStore
from support.aws import TABLE
from support.fakes import make_record


def test_implements_the_port(ddb_store: DynamoDBRecordStore) -> None:
    assert isinstance(ddb_store, RecordStore)


def test_roundtrip_and_typed_conversion(ddb_store: DynamoDBRecordStore, ddb_client: Any) -> None:
    record = make_record("A1", features={"views": b"\x00\xffcompact", "other": b"\x01"})
    ddb_store.put(record)

    assert ddb_store.get("A1") == record
    assert ddb_store.get("missing") is None
    raw = ddb_client.get_item(TableName=TABLE, Key={"entity_id": {"S": "A1"}})["Item"]
    # Strings stay strings (a hex hash of digits must not become a number); features are binary,
    # so an item costs the bytes, not their base64.
    assert raw["hash"] == {"S": record.hash.hex}
    assert raw["features"] == {"M": {"views": {"B": b"\x00\xffcompact"}, "other": {"B": b"\x01"}}}


def test_items_written_before_v3_keep_their_features() -> None:
    # dualphash128-v2 items hold each feature as a base64 string.
    item = record_to_item(make_record("OLD"))
    item["features"] = {"M": {"views": {"S": base64.b64encode(b"raw views").decode()}}}
    assert item_to_record(item).features == {"views": b"raw views"}
    item["features"] = {"M": {"views": {"S": "not base64!"}}}
    with pytest.raises(ValueError, match="base64"):
        item_to_record(item)


def test_numbers_written_by_others_do_not_leak_decimal() -> None:
    item = {
        "entity_id": {"S": "X"},
        "hash": {"S": "00000000000000ff"},
        "hash_algo": {"S": "phash64-v1"},
        "sku": {"N": "1234"},
        "features": {"M": {"views": {"B": b"v"}}},
        "extra_attribute": {"N": "7"},
    }
    record = item_to_record(item)
    assert record.sku == "1234" and isinstance(record.sku, str)
    assert not any(isinstance(v, Decimal) for v in record.to_dict().values())
    assert item_to_record(record_to_item(record)) == record
    # A feature that is not binary is not a dupcheck record: the stream handler reports it.
    item["features"] = {"M": {"score": {"N": "0.5"}}}
    with pytest.raises(ValueError, match="binary"):
        item_to_record(item)


def test_item_without_hash_is_rejected() -> None:
    with pytest.raises(ValueError):
        item_to_record({"entity_id": {"S": "X"}, "hash_algo": {"S": "phash64-v1"}})


def test_upsert_is_idempotent(ddb_store: DynamoDBRecordStore) -> None:
    ddb_store.put(make_record("A1"))
    ddb_store.put(make_record("A1"))
    updated = make_record("A1", hash_hex="ffffffffffffffff", updated_at="2025-03-13T00:00:00.000Z")
    ddb_store.put(updated)
    assert ddb_store.count() == 1
    assert ddb_store.get("A1") == updated


def test_delete_reports_whether_there_was_a_record(ddb_store: DynamoDBRecordStore) -> None:
    ddb_store.put(make_record("A1"))
    assert ddb_store.delete("A1") is True
    assert ddb_store.delete("A1") is False
    assert ddb_store.get("A1") is None


def test_put_many_60_items_in_batches_of_25(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = ddb_store.client.batch_write_item

    def spy(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["RequestItems"][TABLE]))
        return real(**kwargs)

    monkeypatch.setattr(ddb_store.client, "batch_write_item", spy)
    records = (make_record(f"E{i:03d}", hash_hex=f"{i:016x}") for i in range(60))  # a generator is fine
    assert ddb_store.put_many(records) == 60
    assert sizes == [25, 25, 10]
    assert ddb_store.count() == 60


def test_put_many_collapses_duplicate_ids_in_a_batch(ddb_store: DynamoDBRecordStore) -> None:
    first = make_record("D1", hash_hex="0000000000000001")
    last = make_record("D1", hash_hex="0000000000000002")
    assert ddb_store.put_many([first, last]) == 1
    assert ddb_store.get("D1") == last


def test_put_many_retries_unprocessed_items(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ddb_store.client.batch_write_item
    calls: list[int] = []

    def flaky(**kwargs: Any) -> Any:
        requests = kwargs["RequestItems"][TABLE]
        calls.append(len(requests))
        if len(calls) == 1:  # DynamoDB accepted the first 5 and throttled the rest
            real(RequestItems={TABLE: requests[:5]})
            return {"UnprocessedItems": {TABLE: requests[5:]}}
        return real(**kwargs)

    sleeps: list[float] = []
    ddb_store._sleep = sleeps.append
    monkeypatch.setattr(ddb_store.client, "batch_write_item", flaky)
    assert ddb_store.put_many(make_record(f"U{i}", hash_hex=f"{i:016x}") for i in range(12)) == 12
    assert calls == [12, 7]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= ddb_store.base_delay  # full jitter, first step
    assert ddb_store.count() == 12


def test_put_many_gives_up_and_names_the_unwritten_count(ddb_client: Any, ddb_table: str) -> None:
    store = DynamoDBRecordStore(TABLE, client=ddb_client, max_attempts=3, sleep=lambda _s: None)
    real = ddb_client.batch_write_item

    def always_throttled(**kwargs: Any) -> Any:
        requests = kwargs["RequestItems"][TABLE]
        real(RequestItems={TABLE: requests[:1]})
        return {"UnprocessedItems": {TABLE: requests[1:]}}

    store._client = type("C", (), {"batch_write_item": staticmethod(always_throttled)})()
    with pytest.raises(StoreUnavailable) as excinfo:
        store.put_many(make_record(f"T{i:02d}", hash_hex=f"{i:016x}") for i in range(30))
    # chunk 1: 25 items, 1 written per attempt x3 -> 22 left; chunk 2 (5 items) never attempted.
    assert "27 items were not written" in excinfo.value.message
    assert excinfo.value.status == 503


def test_get_many_over_100_keys(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ddb_store.put_many(make_record(f"G{i:03d}", hash_hex=f"{i:016x}") for i in range(150))
    sizes: list[int] = []
    real = ddb_store.client.batch_get_item

    def spy(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["RequestItems"][TABLE]["Keys"]))
        return real(**kwargs)

    monkeypatch.setattr(ddb_store.client, "batch_get_item", spy)
    wanted = [f"G{i:03d}" for i in range(150)] + ["G000", "nope"]  # duplicates and misses are fine
    found = ddb_store.get_many(wanted)
    assert sorted(sizes) == [51, 100]  # 150 ids + "nope"; the duplicate G000 is sent once
    assert len(found) == 150 and "nope" not in found
    assert found["G149"].hash.hex == f"{149:016x}"


def test_get_many_retries_unprocessed_keys(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ddb_store.put_many(make_record(f"K{i}", hash_hex=f"{i:016x}") for i in range(4))
    real = ddb_store.client.batch_get_item
    calls = {"n": 0}

    def flaky(**kwargs: Any) -> Any:
        calls["n"] += 1
        request = kwargs["RequestItems"][TABLE]
        if calls["n"] == 1:
            keys = request["Keys"]
            response = real(RequestItems={TABLE: {**request, "Keys": keys[:1]}})
            response["UnprocessedKeys"] = {TABLE: {**request, "Keys": keys[1:]}}
            return response
        return real(**kwargs)

    monkeypatch.setattr(ddb_store.client, "batch_get_item", flaky)
    assert set(ddb_store.get_many([f"K{i}" for i in range(4)])) == {"K0", "K1", "K2", "K3"}
    assert calls["n"] == 2


@pytest.mark.parametrize("segments", [1, 4])
def test_scan_all_records(ddb_store: DynamoDBRecordStore, segments: int) -> None:
    ddb_store.put_many(make_record(f"S{i:03d}", hash_hex=f"{i:016x}") for i in range(120))
    records = list(ddb_store.scan(segments=segments))
    assert len(records) == 120
    assert {r.entity_id for r in records} == {f"S{i:03d}" for i in range(120)}


def test_scan_paginates(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ddb_store.put_many(make_record(f"P{i:02d}", hash_hex=f"{i:016x}") for i in range(30))
    real = ddb_store.client.scan
    pages = {"n": 0}

    def small_pages(**kwargs: Any) -> Any:
        pages["n"] += 1
        return real(Limit=7, **kwargs)

    monkeypatch.setattr(ddb_store.client, "scan", small_pages)
    assert len(list(ddb_store.scan())) == 30
    assert pages["n"] >= 5


def test_pages_continue_from_the_last_record_without_its_views(ddb_store: DynamoDBRecordStore) -> None:
    ddb_store.put_many(make_record(f"P{i:02d}", hash_hex=f"{i:016x}") for i in range(25))
    seen: list[str] = []
    after, pages = None, 0
    while True:
        records, after = ddb_store.page(after, 10)
        seen += [r.entity_id for r in records]
        pages += 1
        assert all(r.features == {} and r.hash_algo == "phash64-v1" for r in records)  # projected
        if after is None:
            break
    assert sorted(seen) == [f"P{i:02d}" for i in range(25)] and len(seen) == 25 and pages == 3


def test_a_search_reads_a_bounded_share_per_call_and_goes_on_from_there(
    ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dynamodb_store, "PAGE_READ_LIMIT", 8)
    ddb_store.put_many(make_record(f"R{i:02d}", hash_hex=f"{i:016x}", sku="BLUE" if i % 5 == 0 else "red")
                       for i in range(30))  # fmt: skip
    found: list[str] = []
    after, calls = None, 0
    while True:
        records, after = ddb_store.page(after, 4, "blue")
        assert len(records) <= 4
        found += [r.entity_id for r in records]
        calls += 1
        if after is None:
            break
    assert sorted(found) == ["R00", "R05", "R10", "R15", "R20", "R25"]
    assert calls >= 30 // 8  # no call read more than 8 records


def test_a_page_can_start_after_any_key(ddb_store: DynamoDBRecordStore) -> None:
    ddb_store.put_many(make_record(f"K{i}", hash_hex=f"{i:016x}") for i in range(5))
    records, after = ddb_store.page(None, 2)
    rest, _ = ddb_store.page(after, 10)
    assert {r.entity_id for r in records} | {r.entity_id for r in rest} == {f"K{i}" for i in range(5)}
    assert after is not None and not {r.entity_id for r in records} & {r.entity_id for r in rest}


def test_parallel_scan_surfaces_worker_errors(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Scan")

    monkeypatch.setattr(ddb_store.client, "scan", boom)
    with pytest.raises(StoreUnavailable):
        list(ddb_store.scan(segments=3))


def test_parallel_scan_can_stop_early(ddb_store: DynamoDBRecordStore) -> None:
    ddb_store.put_many(make_record(f"Q{i:03d}", hash_hex=f"{i:016x}") for i in range(80))
    iterator = ddb_store.scan(segments=4)
    first = next(iterator)
    iterator.close()  # must not hang on blocked workers
    assert first.entity_id.startswith("Q")


@pytest.mark.parametrize(
    "exc",
    [
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem"),
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem"),
        ClientError({"Error": {"Code": "InternalServerError"}}, "GetItem"),
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"),
    ],
)
def test_throttling_and_outages_become_store_unavailable(
    ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch, exc: Exception
) -> None:
    def fail(**kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(ddb_store.client, "get_item", fail)
    with pytest.raises(StoreUnavailable) as excinfo:
        ddb_store.get("A1")
    assert excinfo.value.status == 503
    assert TABLE in excinfo.value.message


def test_validation_errors_are_bugs_not_503(ddb_store: DynamoDBRecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ValidationException"}}, "GetItem")

    monkeypatch.setattr(ddb_store.client, "get_item", fail)
    with pytest.raises(ClientError):
        ddb_store.get("A1")


def test_missing_table_is_unavailable(ddb_client: Any, ddb_table: str) -> None:
    store = DynamoDBRecordStore("no-such-table", client=ddb_client)
    with pytest.raises(StoreUnavailable):
        store.get("A1")


def test_approximate_count(ddb_store: DynamoDBRecordStore) -> None:
    assert ddb_store.approximate_count() >= 0


def test_builds_its_own_client_only_when_none_given(aws_env: None) -> None:
    store = DynamoDBRecordStore(TABLE, region="us-east-1")
    assert store.client.meta.region_name == "us-east-1"
    assert store.client.meta.config.connect_timeout == 2
