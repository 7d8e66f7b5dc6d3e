"""Lambda: DynamoDB stream (NEW_AND_OLD_IMAGES) -> HashIndex.

The table is the source of truth; this function keeps the search index a mirror of it. It
must be safe to replay and tolerant of disorder, because Lambda retries whole batches from the
first failed record and a retried batch overlaps records already applied:

* Per record (Powertools BatchProcessor): INSERT/MODIFY upserts the NewImage, REMOVE removes
  the key. A malformed record raises inside the record handler, so it is reported in
  `batchItemFailures` (and, after the event source mapping's retries, lands in the DLQ) while
  the rest of the batch still applies.
* Within a batch, only the latest change per entity_id (highest SequenceNumber) is applied;
  earlier ones are superseded and skipped, so an INSERT followed by a REMOVE in one batch never
  briefly resurrects the document.
* Across batches, the index's external versioning (version = `updated_at` in epoch ms; a
  REMOVE gets a version just above the image it removes) rejects stale writes: a REMOVE then a
  replayed, older INSERT does not resurrect the document. Indexes without versioning (the
  local one) simply apply records in order, which a replay also converges.

The handler is decorators plus one call; `StreamSync` holds the logic so tests can build one
around a fake index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.adapters.dynamodb_store import KEY, item_to_record
from dupcheck.core.models import HashRecord
from dupcheck.core.ports import HashIndex
from dupcheck.observability import logger, metrics, record_metric, tracer


@runtime_checkable
class VersionedIndex(Protocol):
    """An index that can refuse a delete older than the document it holds (OpenSearch)."""

    def remove_versioned(self, entity_id: str, version: int) -> None: ...


def _entity_id(raw: Mapping[str, Any]) -> str:
    keys = (raw.get("dynamodb") or {}).get("Keys") or {}
    value = (keys.get(KEY) or {}).get("S")
    if not value:
        raise ValueError(f"stream record has no {KEY!r} key")
    return str(value)


def _sequence(raw: Mapping[str, Any]) -> int:
    # DynamoDB sequence numbers are decimal strings of up to 40 digits, increasing per key.
    return int((raw.get("dynamodb") or {})["SequenceNumber"])


def remove_version(old_image: Mapping[str, Any] | None, approximate_creation: float | None) -> int | None:
    """External version for a REMOVE: just above the removed image, and not before the event.

    `updated_at + 1 ms` beats the document the delete removes; the event time (seconds,
    floored by DynamoDB) keeps the delete newer than any stale image replayed later. A record
    registered again after the delete gets a fresh `updated_at`, which is later still.
    """
    from dupcheck.adapters.opensearch_index import version_of

    candidates: list[int] = []
    if old_image and "updated_at" in old_image:
        version = version_of(str(old_image["updated_at"].get("S", "")))
        if version is not None:
            candidates.append(version + 1)
    if approximate_creation:
        candidates.append(int(float(approximate_creation) * 1000))
    return max(candidates) if candidates else None


class StreamSync:
    """Applies one stream batch to `index` (see module docstring)."""

    def __init__(self, index: HashIndex) -> None:
        self.index = index
        self._index_ready = False

    def ensure_index(self) -> None:
        """Create the search index on first use if the adapter can (OpenSearch): a fresh
        deployment then heals itself on its first stream batch. A failure raises and the whole
        batch is retried by Lambda."""
        if not self._index_ready:
            ensure = getattr(self.index, "ensure_index", None)
            if callable(ensure):
                ensure()
            self._index_ready = True

    @staticmethod
    def latest_sequences(records: list[Mapping[str, Any]]) -> dict[str, int]:
        """entity_id -> highest SequenceNumber in this batch. Malformed records are left out:
        they fail on their own in the record handler."""
        latest: dict[str, int] = {}
        for raw in records:
            try:
                entity_id, sequence = _entity_id(raw), _sequence(raw)
            except (KeyError, TypeError, ValueError):
                continue
            if sequence > latest.get(entity_id, -1):
                latest[entity_id] = sequence
        return latest

    def handle(self, event: Mapping[str, Any], context: LambdaContext | None) -> PartialItemFailureResponse:
        records = list(event.get("Records") or [])
        self.ensure_index()
        latest = self.latest_sequences(records)
        counts = {"applied": 0, "superseded": 0}

        def record_handler(record: DynamoDBRecord) -> None:
            outcome = self.apply(record.raw_event, latest)
            counts[outcome] += 1

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
        response = process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )
        failed = len(response.get("batchItemFailures", []))
        record_metric("StreamRecordsApplied", counts["applied"], "Count")
        record_metric("StreamRecordsSuperseded", counts["superseded"], "Count")
        record_metric("StreamRecordsFailed", failed, "Count")
        logger.info("stream batch done", extra={"records": len(records), **counts, "failed": failed})
        return response

    def apply(self, raw: Mapping[str, Any], latest: Mapping[str, int]) -> str:
        """Apply one stream record; returns "applied" or "superseded". Raises when malformed."""
        entity_id = _entity_id(raw)
        stream = raw.get("dynamodb") or {}
        if latest.get(entity_id, _sequence(raw)) != _sequence(raw):
            logger.debug("superseded within batch", extra={"entity_id": entity_id})
            return "superseded"
        event_name = raw.get("eventName")
        if event_name in ("INSERT", "MODIFY"):
            image = stream.get("NewImage")
            if not image:
                raise ValueError(f"{event_name} record for {entity_id!r} has no NewImage (stream view type?)")
            record: HashRecord = item_to_record(image)
            if record.entity_id != entity_id:
                raise ValueError(f"NewImage entity_id {record.entity_id!r} does not match key {entity_id!r}")
            self.index.upsert(record)
        elif event_name == "REMOVE":
            version = remove_version(stream.get("OldImage"), stream.get("ApproximateCreationDateTime"))
            if version is not None and isinstance(self.index, VersionedIndex):
                self.index.remove_versioned(entity_id, version)
            else:
                self.index.remove(entity_id)
        else:
            raise ValueError(f"unknown stream eventName {event_name!r}")
        return "applied"


def _build() -> StreamSync:
    # Settings are validated at cold start: a mis-configured function fails on its first
    # invocation with a clear SettingsError rather than on some later record.
    from dupcheck.bootstrap import build_index
    from dupcheck.core.hashing import get_pipeline
    from dupcheck.core.settings import Settings

    # No store: the stream carries full images, so the index never needs to read the table.
    return StreamSync(build_index(Settings.from_env(), get_pipeline()))


sync = _build()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sync.handle(event, context)
