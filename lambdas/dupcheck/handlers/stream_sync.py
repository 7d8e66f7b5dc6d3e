"""Lambda: DynamoDB stream (NEW_AND_OLD_IMAGES) -> HashIndex, and kept images' life.

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
* Across batches, the index's external versioning (`VersionedIndex`: version = `updated_at` in
  epoch ms; a REMOVE gets a version just above the image it removes) refuses stale writes: a
  REMOVE then a replayed, older INSERT does not resurrect the document. Indexes without
  versioning (the local one) simply apply records in order, which a replay also converges.

The duplicate gate's claims (core/catalog/gate.py, adapters/dynamodb_claims.py): a record a gated write
stored names its claim (`gate_claim`); once the batch is applied and the index refreshed, so that
a search shows those records, their claims are confirmed (their live items deleted): until then a
check reads them beside the index. A replay confirms again, which changes nothing.

Kept images (core/catalog/kept_images.py) follow the records that name them, from every record of a
batch, superseded or not (each change may let a picture go): a record stored naming one claims
it (it no longer expires), and a record removed, or replaced by one naming another picture, lets
its picture go: deleted when no record names it any more. Both are idempotent, so replays are safe.

The handler is decorators plus one call; `StreamSync` holds the logic so tests can build one
around a fake index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
    StreamRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.adapters.dynamodb_claims import GATE_CLAIM, DynamoDBClaims
from dupcheck.adapters.dynamodb_store import KEY, record_from_values
from dupcheck.core.catalog.kept_images import KeptImageLifecycle, kept_name
from dupcheck.core.models import version_of
from dupcheck.core.ports import HashIndex, ProvisionedIndex, VersionedIndex
from dupcheck.observability import lambda_entry, logger, record_metric


def stream_change(record: DynamoDBRecord) -> tuple[StreamRecord, str, int]:
    """The record's stream data, entity_id and sequence number; ValueError when malformed."""
    stream = record.dynamodb
    if stream is None or not stream.sequence_number:
        raise ValueError("stream record has no dynamodb data or SequenceNumber")
    entity_id = stream.keys.get(KEY)
    if not entity_id:
        raise ValueError(f"stream record has no {KEY!r} key")
    # DynamoDB sequence numbers are decimal strings of up to 40 digits, increasing per key.
    return stream, str(entity_id), int(stream.sequence_number)


def remove_version(old_image: Mapping[str, Any], approximate_creation: int | None) -> int | None:
    """External version for a REMOVE: just above the removed image, and not before the event.

    `updated_at + 1 ms` beats the document the delete removes; the event time (seconds,
    floored by DynamoDB) keeps the delete newer than any stale image replayed later. A record
    registered again after the delete gets a fresh `updated_at`, which is later still.
    """
    candidates: list[int] = []
    version = version_of(str(old_image.get("updated_at") or ""))
    if version is not None:
        candidates.append(version + 1)
    if approximate_creation:
        candidates.append(approximate_creation * 1000)
    return max(candidates) if candidates else None


class StreamSync:
    """Applies one stream batch to `index` (see module docstring)."""

    def __init__(
        self, index: HashIndex, pictures: KeptImageLifecycle | None = None, claims: DynamoDBClaims | None = None
    ) -> None:
        self.index, self.pictures, self.claims = index, pictures, claims
        self._index_ready = False

    def ensure_index(self) -> None:
        """Create the search index on first use where it lives in a service (OpenSearch): a
        fresh deployment then heals itself on its first stream batch. A failure raises and the
        whole batch is retried by Lambda."""
        if not self._index_ready:
            if isinstance(self.index, ProvisionedIndex):
                self.index.ensure_index()
            self._index_ready = True

    @staticmethod
    def latest_sequences(records: list[DynamoDBRecord]) -> dict[str, int]:
        """entity_id -> highest SequenceNumber in this batch. Malformed records are left out:
        they fail on their own in the record handler."""
        latest: dict[str, int] = {}
        for record in records:
            try:
                _, entity_id, sequence = stream_change(record)
            except (TypeError, ValueError):
                continue
            latest[entity_id] = max(sequence, latest.get(entity_id, -1))
        return latest

    def handle(self, event: Mapping[str, Any], context: LambdaContext | None) -> PartialItemFailureResponse:
        records = [DynamoDBRecord(raw) for raw in event.get("Records") or []]
        self.ensure_index()
        latest = self.latest_sequences(records)
        counts = {"applied": 0, "superseded": 0}
        claimed: list[str] = []

        def record_handler(record: DynamoDBRecord) -> None:
            counts[self.apply(record, latest)] += 1
            self.follow_pictures(record)
            claimed.extend(claims_of(record))

        processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
        response = process_partial_response(
            event=dict(event), record_handler=record_handler, processor=processor, context=context
        )
        self.confirm(claimed)
        failed = len(response.get("batchItemFailures", []))
        record_metric("StreamRecordsApplied", counts["applied"], "Count")
        record_metric("StreamRecordsSuperseded", counts["superseded"], "Count")
        record_metric("StreamRecordsFailed", failed, "Count")
        logger.info("stream batch done", extra={"records": len(records), **counts, "failed": failed})
        return response

    def apply(self, record: DynamoDBRecord, latest: Mapping[str, int]) -> str:
        """Apply one stream record; returns "applied" or "superseded". Raises when malformed."""
        stream, entity_id, sequence = stream_change(record)
        if latest.get(entity_id, sequence) != sequence:
            logger.debug("superseded within batch", extra={"entity_id": entity_id})
            return "superseded"
        event_name = record.event_name
        if event_name in (DynamoDBRecordEventName.INSERT, DynamoDBRecordEventName.MODIFY):
            if not stream.new_image:
                raise ValueError(f"{event_name.name} record for {entity_id!r} has no NewImage (stream view type?)")
            hash_record = record_from_values(stream.new_image)
            if hash_record.entity_id != entity_id:
                raise ValueError(f"NewImage entity_id {hash_record.entity_id!r} does not match key {entity_id!r}")
            self.index.upsert(hash_record)
        elif event_name is DynamoDBRecordEventName.REMOVE:
            version = remove_version(stream.old_image, stream.approximate_creation_date_time)
            if version is not None and isinstance(self.index, VersionedIndex):
                self.index.remove_versioned(entity_id, version)
            else:
                self.index.remove(entity_id)
        else:
            raise ValueError(f"unknown stream eventName {record.raw_event.get('eventName')!r}")
        return "applied"

    def confirm(self, claimed: list[str]) -> None:
        """The gate's claims of the records this batch indexed: confirmed once a search shows them (a
        refresh of an index that lives in a service). A failure raises: the batch is retried."""
        if not claimed or self.claims is None:
            return
        if isinstance(self.index, ProvisionedIndex):
            self.index.refresh()
        self.claims.confirm_indexed(claimed)
        record_metric("GateClaimsConfirmed", len(claimed), "Count")

    def follow_pictures(self, record: DynamoDBRecord) -> None:
        """Claim the kept image a record's new image names; let go of the one its old image named
        (see the module docstring). A failure raises: the record is retried."""
        if self.pictures is None:
            return
        stream, entity_id, _ = stream_change(record)
        new_url = str((stream.new_image or {}).get("image_url") or "")
        old_url = str((stream.old_image or {}).get("image_url") or "")
        if new_url and not self.pictures.claim(new_url) and kept_name(new_url):
            logger.warning("a record names a kept image that is not there", extra={"entity_id": entity_id})
        if old_url and old_url != new_url and self.pictures.release(old_url, just_changed=entity_id):
            logger.info("kept image deleted with its last record", extra={"entity_id": entity_id})


def claims_of(record: DynamoDBRecord) -> list[str]:
    """The gate claim a stored record names, if a gated write stored it."""
    stream = record.dynamodb
    claim = (stream.new_image or {}).get(GATE_CLAIM) if stream is not None else None
    return [str(claim)] if claim else []


def _build() -> StreamSync:
    # Settings are validated at cold start: a mis-configured function fails on its first
    # invocation with a clear SettingsError rather than on some later record.
    from dupcheck.bootstrap import build_gate, build_index, build_kept_image_lifecycle, build_store
    from dupcheck.core.fingerprint.hashing import get_pipeline
    from dupcheck.core.settings import Settings

    # No store for the index: the stream carries full images. The store answers only whether a
    # record still names a kept image (its index by picture), where the deployment keeps them.
    settings = Settings.from_env()
    store = build_store(settings)
    pictures = build_kept_image_lifecycle(settings, store) if settings.imports_bucket else None
    claims = build_gate(settings, store).claims
    return StreamSync(build_index(settings, get_pipeline()), pictures,
                      claims if isinstance(claims, DynamoDBClaims) else None)  # fmt: skip


sync = _build()


@lambda_entry()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sync.handle(event, context)
