"""RecordStore on DynamoDB: the durable home of hash records in the AWS deployment.

The table is keyed by `entity_id` alone and has a NEW_AND_OLD_IMAGES stream, which the
stream_sync Lambda mirrors into OpenSearch. Everything here is an idempotent upsert or an
idempotent delete, so callers (API, backfill, replays) can retry freely.

Why the batch code is hand-written rather than `Table.batch_writer()`: the resource API hides
how many items were left unprocessed, retries forever and cannot tell the caller "N items were
not written". Backfill needs that number, and the API needs a bounded time before it answers
503 instead of hanging.

Item conversion goes through boto3's TypeSerializer/TypeDeserializer (`record_to_item` /
`item_to_record`), shared with the stream handler, so a record looks the same whether it was
read with GetItem or arrived as a stream image. No `Decimal` escapes: HashRecord fields are all
strings, and `features` is a map of binary values (the compact views; items written before v3
hold base64 strings there, which are still read).

The store is three layers, one class each: DynamoDBTable (the client, error mapping, backoff),
DynamoDBTableScans (the whole-table reads) and DynamoDBRecordStore (items, batches, and the keep
decision's transaction).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.core.catalog.kept_images import kept_name
from dupcheck.core.errors import RecordsChanged, StoreUnavailable
from dupcheck.core.models import HashRecord, features_from_text

if TYPE_CHECKING:  # pragma: no cover - typing only; the client is built lazily or injected
    from mypy_boto3_dynamodb import DynamoDBClient  # type: ignore[import-not-found]

    from dupcheck.core.settings import Settings
else:
    DynamoDBClient = Any

log = logging.getLogger(__name__)

KEY = "entity_id"
# The name of the kept image a record's image_url addresses (core/catalog/kept_images.py), on those
# records alone, and the sparse index over it (infra/components/hash_table.py): whether any record
# still uses a kept image is one Query (`uses_kept_image`).
KEPT_IMAGE = "kept_image"
KEPT_IMAGE_INDEX = "by_kept_image"
# DynamoDB API limits (documented service quotas, not tunables).
BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
TRANSACT_LIMIT = 100  # actions in one TransactWriteItems
# A catalog search filters a Scan: it reads at most this many items per request (~9 MB, a few
# seconds) and answers what it found with a cursor to go on from, so a rare term cannot hold a
# request until API Gateway's 29 s are up.
PAGE_READ_LIMIT = 2_000
# A page needs every field but the verification views.
_PAGE_FIELDS: dict[str, Any] = {
    "ProjectionExpression": "entity_id, sku, image_url, #hash, hash_algo, updated_at",
    "ExpressionAttributeNames": {"#hash": "hash"},  # HASH is a reserved word
}

# Error codes that mean "try again later", not "your request is wrong": they map to 503.
# ResourceNotFoundException is included because, for a configured table, it means the table is
# being created/deleted or the deployment is mis-wired; either way the caller cannot fix it.
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "LimitExceededException",
        "ResourceNotFoundException",
        "ResourceInUseException",
        "TransactionInProgressException",
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "AccessDeniedException",
    }
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

T = TypeVar("T")


def _plain(value: Any) -> Any:
    """Turn deserialized DynamoDB values into plain str-friendly values (no Decimal, no set)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset, list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | bool):
        return value
    # Decimal (DynamoDB numbers) and anything else: a string, which is what HashRecord stores.
    text = str(value)
    return text


def record_to_item(record: HashRecord) -> dict[str, dict[str, Any]]:
    """HashRecord -> DynamoDB low-level item (`{"attr": {"S": ...}}`)."""
    data = record.to_dict()
    data["features"] = {str(k): bytes(v) for k, v in record.features.items()}
    if kept := kept_name(record.image_url):
        data[KEPT_IMAGE] = kept
    return {name: _serializer.serialize(value) for name, value in data.items()}


def item_to_record(item: Mapping[str, Any]) -> HashRecord:
    """DynamoDB low-level item (GetItem, Scan) -> HashRecord."""
    return record_from_values({name: _deserializer.deserialize(value) for name, value in item.items()})


def record_from_values(values: Mapping[str, Any]) -> HashRecord:
    """A deserialized item (Python values: what Powertools' stream records hold) -> HashRecord.

    Raises ValueError/KeyError on an item that is not a hash record; the stream handler relies
    on that to report the record as a partial failure.
    """
    features = values.get("features") or {}
    if not isinstance(features, Mapping):
        raise ValueError(f"features must be a map, got {type(features).__name__}")
    plain = {str(name): _plain(value) for name, value in values.items() if name != "features"}
    for required in (KEY, "hash", "hash_algo"):
        if not plain.get(required):
            raise ValueError(f"item has no {required!r}")
    return replace(HashRecord.from_dict(plain), features={str(k): _feature(v) for k, v in features.items()})


def _feature(value: Any) -> bytes:
    """A stored feature: binary (boto3's Binary, or bytes from a stream record), or the base64
    string of an item written before v3."""
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return features_from_text({"feature": value})["feature"]
    raise ValueError(f"a feature must be binary, got {type(value).__name__}")


def key_of(entity_id: str) -> dict[str, dict[str, str]]:
    return {KEY: {"S": entity_id}}


def _as_read(record: HashRecord) -> dict[str, Any]:
    """A write's condition that the record is as `record` was read (KeepingDeletes.delete_keeping)."""
    values = {"hash": record.hash.hex, "updated_at": record.updated_at, "image_url": record.image_url,
              "sku": record.sku}  # fmt: skip
    return {
        "ConditionExpression": " AND ".join(f"#{name} = :{name}" for name in values),
        "ExpressionAttributeNames": {f"#{name}": name for name in values},
        "ExpressionAttributeValues": {f":{name}": {"S": value} for name, value in values.items()},
    }


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def create_table(client: DynamoDBClient, table_name: str, *, wait: bool = True) -> str:
    """Create the records table as infra/ does (for tests and local experiments).

    PK `entity_id` (S), on-demand billing, stream NEW_AND_OLD_IMAGES. Returns the stream ARN.
    """
    response = client.create_table(
        TableName=table_name,
        AttributeDefinitions=[
            {"AttributeName": KEY, "AttributeType": "S"},
            {"AttributeName": KEPT_IMAGE, "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": KEPT_IMAGE_INDEX,
                "KeySchema": [{"AttributeName": KEPT_IMAGE, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    if wait:
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return str(response["TableDescription"].get("LatestStreamArn", ""))


class DynamoDBTable:
    """The table's client, its error mapping (what is worth retrying later is a 503) and the backoff
    between retries: what the store's whole-table reads and its item and batch calls share."""

    def __init__(
        self,
        table_name: str,
        *,
        client: DynamoDBClient | None = None,
        region: str | None = None,
        consistent_read: bool = False,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not table_name:
            raise ValueError("table_name is required for the DynamoDB store")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.table_name = table_name
        self._client = client if client is not None else self._build_client(region)
        self.consistent_read = consistent_read
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._rng = rng or random.Random()

    @staticmethod
    def _build_client(region: str | None) -> DynamoDBClient:
        import boto3
        from botocore.config import Config

        # Adaptive retries absorb short throttling bursts inside botocore; the timeouts keep a
        # dead endpoint from eating the Lambda's whole budget.
        config = Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "adaptive", "max_attempts": 4},
        )
        return boto3.client("dynamodb", region_name=region or None, config=config)

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    # -- error mapping ------------------------------------------------------------------------

    def _unavailable(self, exc: Exception, action: str) -> StoreUnavailable:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            return StoreUnavailable(f"DynamoDB {action} on {self.table_name!r} failed: {code}")
        return StoreUnavailable(f"DynamoDB {action} on {self.table_name!r} failed: {type(exc).__name__}")

    def _call(self, action: str, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _UNAVAILABLE_CODES:
                raise self._unavailable(exc, action) from exc
            raise  # a malformed request is a bug: let it surface as a logged 500
        except BotoCoreError as exc:  # endpoint/connection/timeout/credentials problems
            raise self._unavailable(exc, action) from exc

    def _backoff(self, attempt: int) -> None:
        """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter")."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        self._sleep(self._rng.uniform(0, ceiling))


class DynamoDBTableScans(DynamoDBTable):
    """The store's whole-table reads (scans, pages of the catalog, counts): the Scan paging they
    share and no item or batch call."""

    def _scan_pages(self, segment: int | None, total: int | None, **extra: Any) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "ConsistentRead": self.consistent_read,
            **extra,
        }
        if total is not None:
            kwargs.update(Segment=segment, TotalSegments=total)
        while True:
            page = self._call("Scan", self._client.scan, **kwargs)
            yield page
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last

    def scan(self, segments: int = 1) -> Iterator[HashRecord]:
        """Every record, page by page. `segments > 1` runs a parallel scan on a thread pool.

        Parallel records arrive in no particular order. Closing the generator early stops the
        workers at their next page boundary.
        """
        if segments <= 1:
            for page in self._scan_pages(None, None):
                for item in page.get("Items", []):
                    yield item_to_record(item)
            return
        yield from self._parallel_scan(segments)

    def _parallel_scan(self, segments: int) -> Iterator[HashRecord]:
        done = object()
        # Bounded so a slow consumer applies back-pressure instead of buffering the table.
        results: queue.Queue[Any] = queue.Queue(maxsize=segments * 4)
        stop = threading.Event()

        def put(value: Any) -> bool:
            while not stop.is_set():
                try:
                    results.put(value, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def worker(segment: int) -> None:
            try:
                for page in self._scan_pages(segment, segments):
                    if stop.is_set() or not put([item_to_record(i) for i in page.get("Items", [])]):
                        return
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer thread
                put(exc)
            finally:
                put(done)

        pool = ThreadPoolExecutor(max_workers=segments, thread_name_prefix="ddb-scan")
        try:
            for segment in range(segments):
                pool.submit(worker, segment)
            finished = 0
            while finished < segments:
                value = results.get()
                if value is done:
                    finished += 1
                elif isinstance(value, BaseException):
                    raise value
                else:
                    yield from value
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def page(self, after: str | None, limit: int, query: str | None = None) -> tuple[list[HashRecord], str | None]:
        """Records in the table's own order (by key hash, not alphabetical), continued from any
        key: `ExclusiveStartKey` is the last record returned, or the last one read (searches)."""
        start = {"ExclusiveStartKey": key_of(after)} if after else {}
        # Without a query, one item more than asked says whether any is left.
        batch = limit + 1 if query is None else PAGE_READ_LIMIT
        found: list[HashRecord] = []
        read = 0
        for page in self._scan_pages(None, None, Limit=batch, **_PAGE_FIELDS, **start):
            for item in page.get("Items", []):
                record = item_to_record(item)
                if query is None or record.mentions(query):
                    if len(found) == limit:
                        return found, found[-1].entity_id  # at least one more is left
                    found.append(record)
                read += 1
                if read >= PAGE_READ_LIMIT:
                    return found, record.entity_id
        return found, None

    def count(self) -> int:
        """Exact item count (a Select=COUNT scan: O(table), fine for tests and backfill checks).

        Use `approximate_count()` on hot paths such as a health check.
        """
        return sum(int(page.get("Count", 0)) for page in self._scan_pages(None, None, Select="COUNT"))

    def approximate_count(self) -> int:
        """DescribeTable's ItemCount: free, but refreshed by DynamoDB only every ~6 hours."""
        response = self._call("DescribeTable", self._client.describe_table, TableName=self.table_name)
        return int(response["Table"].get("ItemCount", 0))


class DynamoDBRecordStore(DynamoDBTableScans):
    """RecordStore over one DynamoDB table (see module docstring).

    `client` is a boto3 DynamoDB *client* (low-level API); when omitted one is built with short
    timeouts so a request never hangs past the Lambda deadline. `max_attempts` bounds the
    UnprocessedItems/UnprocessedKeys retries (full-jitter exponential backoff between
    `base_delay` and `max_delay` seconds); `sleep` and `rng` are injectable for tests.
    """

    @classmethod
    def from_settings(cls, settings: Settings, *, client: DynamoDBClient | None = None) -> DynamoDBRecordStore:
        """Built by `bootstrap` from the validated settings."""
        return cls(
            settings.table_name,
            client=client,
            region=settings.aws_region or None,
            consistent_read=settings.dynamodb_consistent_read,
            max_attempts=settings.dynamodb_max_attempts,
        )

    # -- single items -------------------------------------------------------------------------

    def get(self, entity_id: str) -> HashRecord | None:
        response = self._call(
            "GetItem",
            self._client.get_item,
            TableName=self.table_name,
            Key=key_of(entity_id),
            ConsistentRead=self.consistent_read,
        )
        item = response.get("Item")
        return item_to_record(item) if item else None

    def get_consistent(self, entity_id: str) -> HashRecord | None:
        """`get`, strongly consistent whatever the store's setting (the gate's reads)."""
        response = self._call("GetItem", self._client.get_item, TableName=self.table_name, Key=key_of(entity_id),
                              ConsistentRead=True)  # fmt: skip
        item = response.get("Item")
        return item_to_record(item) if item else None

    def put(self, record: HashRecord) -> None:
        self._call("PutItem", self._client.put_item, TableName=self.table_name, Item=record_to_item(record))

    def uses_kept_image(self, name: str, *, just_changed: str = "") -> bool:
        """Whether any record names the kept image `name` (KeptImageUses). The index is eventually
        consistent: it may still list `just_changed` (read again, consistently, from the table) and
        may not list a record written within about a second (docs/deploy.md)."""
        response = self._call(
            "Query", self._client.query, TableName=self.table_name, IndexName=KEPT_IMAGE_INDEX, Limit=2,
            KeyConditionExpression="#kept = :name", ExpressionAttributeNames={"#kept": KEPT_IMAGE},
            ExpressionAttributeValues={":name": {"S": name}},
        )  # fmt: skip
        if any(item[KEY]["S"] != just_changed for item in response.get("Items", [])):
            return True
        if not just_changed:
            return False
        item = self._call("GetItem", self._client.get_item, TableName=self.table_name, Key=key_of(just_changed),
                          ConsistentRead=True, ProjectionExpression="image_url").get("Item") or {}  # fmt: skip
        return kept_name(str(item.get("image_url", {}).get("S", ""))) == name

    def delete(self, entity_id: str) -> bool:
        response = self._call(
            "DeleteItem",
            self._client.delete_item,
            TableName=self.table_name,
            Key=key_of(entity_id),
            ReturnValues="ALL_OLD",
        )
        return bool(response.get("Attributes"))

    def delete_keeping(self, records: Sequence[HashRecord], keep: str) -> list[str] | None:
        """Delete these records only while `keep` exists and each is as read (KeepingDeletes: a keep
        decision's removal; another Lambda may have registered one again): one TransactWriteItems,
        a ConditionCheck on `keep` and a Delete of each conditional on what was read. A Delete whose
        condition failed is read again: gone, it is left out and the rest tried again; there,
        it changed (RecordsChanged)."""
        present = [r for r in {r.entity_id: r for r in records}.values() if r.entity_id != keep]
        if len(present) > TRANSACT_LIMIT - 1:
            raise ValueError(f"at most {TRANSACT_LIMIT - 1} records are removed in one step, not {len(present)}")
        while present:
            actions: list[dict[str, Any]] = [{"ConditionCheck": {
                "TableName": self.table_name, "Key": key_of(keep), "ConditionExpression": "attribute_exists(#k)",
                "ExpressionAttributeNames": {"#k": KEY}}}]  # fmt: skip
            actions += [{"Delete": {"TableName": self.table_name, "Key": key_of(r.entity_id), **_as_read(r)}}
                        for r in present]  # fmt: skip
            try:
                self._client.transact_write_items(TransactItems=actions)
            except ClientError as exc:
                reasons = exc.response.get("CancellationReasons") or []
                failed = [i for i, r in enumerate(reasons) if r.get("Code") == "ConditionalCheckFailed"]
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException" or not failed:
                    raise self._unavailable(exc, "TransactWriteItems") from exc
                if 0 in failed:
                    return None  # `keep` is gone: nothing is removed
                missed = [present[i - 1].entity_id for i in failed]
                if changed := [e for e in missed if self.get_consistent(e) is not None]:
                    raise RecordsChanged(f"changed since they were read: {', '.join(map(repr, changed))}",
                                         changed) from exc  # fmt: skip
                present = [r for r in present if r.entity_id not in missed]  # removed by someone else meanwhile
                continue
            except BotoCoreError as exc:
                raise self._unavailable(exc, "TransactWriteItems") from exc
            break
        return [r.entity_id for r in present]

    # -- batches ------------------------------------------------------------------------------

    def get_many(self, entity_ids: Sequence[str]) -> dict[str, HashRecord]:
        """BatchGetItem, 100 keys per call, retrying UnprocessedKeys with backoff."""
        return self._get_many(entity_ids, self.consistent_read)

    def get_many_consistent(self, entity_ids: Sequence[str]) -> dict[str, HashRecord]:
        return self._get_many(entity_ids, True)

    def _get_many(self, entity_ids: Sequence[str], consistent: bool) -> dict[str, HashRecord]:
        unique = list(dict.fromkeys(entity_ids))  # BatchGetItem rejects duplicate keys
        found: dict[str, HashRecord] = {}
        for chunk in _chunks(unique, BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {"Keys": [key_of(e) for e in chunk], "ConsistentRead": consistent}
            }
            for attempt in range(self.max_attempts):
                response = self._call("BatchGetItem", self._client.batch_get_item, RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    record = item_to_record(item)
                    found[record.entity_id] = record
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                self._backoff(attempt)
            else:
                missing = len(request.get(self.table_name, {}).get("Keys", []))
                raise StoreUnavailable(
                    f"DynamoDB BatchGetItem on {self.table_name!r}: {missing} keys still unprocessed "
                    f"after {self.max_attempts} attempts"
                )
        return found

    def put_many(self, records: Iterable[HashRecord]) -> int:
        """BatchWriteItem, 25 puts per call, retrying UnprocessedItems with backoff.

        Returns how many records were written. If a chunk still has unprocessed items after
        `max_attempts`, raises StoreUnavailable naming how many items (that chunk's leftovers
        plus every record not yet attempted) were not written; earlier chunks stay written,
        which is safe because every write is an idempotent upsert.
        """
        written = 0
        iterator = iter(records)
        for chunk in _chunks(iterator, BATCH_WRITE_LIMIT):
            # BatchWriteItem rejects two requests for one key in a call: the last one wins, as
            # it would with sequential puts.
            by_id = {r.entity_id: r for r in chunk}
            pending: list[dict[str, Any]] = [{"PutRequest": {"Item": record_to_item(r)}} for r in by_id.values()]
            for attempt in range(self.max_attempts):
                response = self._call(
                    "BatchWriteItem", self._client.batch_write_item, RequestItems={self.table_name: pending}
                )
                unprocessed = (response.get("UnprocessedItems") or {}).get(self.table_name, [])
                written += len(pending) - len(unprocessed)
                pending = list(unprocessed)
                if not pending:
                    break
                log.info("DynamoDB returned %d unprocessed items, retrying", len(pending))
                self._backoff(attempt)
            else:
                not_attempted = sum(1 for _ in iterator)
                lost = len(pending) + not_attempted
                raise StoreUnavailable(
                    f"DynamoDB BatchWriteItem on {self.table_name!r}: {lost} items were not written "
                    f"({len(pending)} still unprocessed after {self.max_attempts} attempts, "
                    f"{not_attempted} not attempted); {written} were written"
                )
        return written
