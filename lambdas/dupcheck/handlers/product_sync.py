"""Lambda: DynamoDB stream (NEW_AND_OLD_IMAGES) -> the product vectors' index.

The second reader of the records table's stream, beside stream_sync (a stream shard serves two
readers at full speed). A record whose picture is new (INSERT, or a MODIFY whose hash or address
changed, or one rewritten without a vector yet: a catalog imported before similar products were
deployed gets its vectors when it is imported again) has its picture fetched (the safe fetcher;
a kept image from the imports bucket), embedded and written with its record's version; a REMOVE
deletes the vector with a version just above the removed record's, as stream_sync does for the
hash. Records are handled one by one:

* only the latest change of an entity in a batch is applied (StreamSync.latest_sequences);
* a picture that cannot be had or read (404, not an image, too large, an address refused) is
  logged and counted (`ProductVectorsSkipped`), never retried: the record stays without a vector
  until `reindex --products`;
* anything that may pass later (the image host or OpenSearch down, a timeout) fails the record,
  which Lambda retries and, after that, sends to the dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.adapters.dynamodb_store import record_from_values
from dupcheck.adapters.opensearch import OpenSearchProductIndex
from dupcheck.core.catalog.products import Embedder
from dupcheck.core.errors import DupcheckError
from dupcheck.core.models import version_of
from dupcheck.core.ports import ImageFetcher
from dupcheck.handlers.stream_sync import StreamSync, remove_version, stream_change
from dupcheck.observability import lambda_entry, logger, record_metric

METRIC_WRITTEN = "ProductVectorsWritten"
METRIC_SKIPPED = "ProductVectorsSkipped"


def permanent(exc: DupcheckError) -> bool:
    """A failure retrying cannot mend: the picture is gone, refused or unreadable (a 4xx)."""
    return 400 <= exc.status < 500 and exc.status != 429


class ProductSync:
    """Applies one stream batch to the product index (see module docstring)."""

    def __init__(self, index: OpenSearchProductIndex, embedder: Embedder, fetcher: ImageFetcher, *,
                 max_pixels: int) -> None:  # fmt: skip
        self.index, self.embedder, self.fetcher, self.max_pixels = index, embedder, fetcher, max_pixels
        self._index_ready = False

    def handle(self, event: Mapping[str, Any], context: LambdaContext | None) -> PartialItemFailureResponse:
        records = [DynamoDBRecord(raw) for raw in event.get("Records") or []]
        if not self._index_ready:
            self.index.ensure_index()  # a fresh deployment heals itself on its first batch
            self._index_ready = True
        latest = StreamSync.latest_sequences(records)
        counts = {"written": 0, "removed": 0, "unchanged": 0, "skipped": 0, "superseded": 0}

        def record_handler(record: DynamoDBRecord) -> None:
            counts[self.apply(record, latest)] += 1

        response = process_partial_response(
            event=dict(event), record_handler=record_handler, processor=BatchProcessor(EventType.DynamoDBStreams),
            context=context,
        )  # fmt: skip
        record_metric(METRIC_WRITTEN, counts["written"], "Count")
        record_metric(METRIC_SKIPPED, counts["skipped"], "Count")
        logger.info("product batch done", extra={"records": len(records), **counts,
                                                 "failed": len(response.get("batchItemFailures", []))})  # fmt: skip
        return response

    def apply(self, record: DynamoDBRecord, latest: Mapping[str, int]) -> str:
        """One stream record: "written", "removed", "unchanged", "skipped" or "superseded"; raises
        when it is malformed or may pass on a retry."""
        stream, entity_id, sequence = stream_change(record)
        if latest.get(entity_id, sequence) != sequence:
            return "superseded"
        if record.event_name is DynamoDBRecordEventName.REMOVE:
            version = remove_version(stream.old_image, stream.approximate_creation_date_time)
            self.index.remove(entity_id, version)
            return "removed"
        if record.event_name not in (DynamoDBRecordEventName.INSERT, DynamoDBRecordEventName.MODIFY):
            raise ValueError(f"unknown stream eventName {record.raw_event.get('eventName')!r}")
        if not stream.new_image:
            raise ValueError(f"{record.event_name.name} record for {entity_id!r} has no NewImage")
        new = record_from_values(stream.new_image)
        if stream.old_image:
            old = record_from_values(stream.old_image)
            if (old.hash, old.image_url) == (new.hash, new.image_url) and not self.index.missing([entity_id]):
                return "unchanged"  # the same picture (a new SKU, a re-import): its vector stands
        try:
            vector = self.embedder.embed_bytes(self.fetcher.fetch(new.image_url), max_pixels=self.max_pixels)
        except DupcheckError as exc:
            if not permanent(exc):
                raise
            logger.warning("no product vector for %s: %s %s", entity_id, exc.code, exc.message)
            return "skipped"
        self.index.put(entity_id, vector, version_of(new.updated_at))
        return "written"


def _build() -> ProductSync:
    # Settings are validated, and the model loaded, at cold start.
    from dupcheck.bootstrap import build_embedder, build_fetcher, configure_decoding
    from dupcheck.core.settings import Settings, SettingsError

    settings = Settings.from_env()
    configure_decoding(settings)
    embedder = build_embedder(settings)
    if embedder is None:
        raise SettingsError("the product sync function has no product model: its bundle is built with it")
    return ProductSync(OpenSearchProductIndex.from_settings(settings), embedder, build_fetcher(settings),
                       max_pixels=settings.max_image_pixels)  # fmt: skip


sync = _build()


@lambda_entry()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return sync.handle(event, context)
