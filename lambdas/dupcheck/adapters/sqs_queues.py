"""The SQS queues of imports, starts (the dispatcher's) and rows (the worker's), and of duplicate
scans (the scan function's).

* The starts queue receives S3's `Object Created` events for `catalogs/<job_id>` (through an
  EventBridge rule), a start message for a catalog_url job (which has no object until the
  dispatcher downloads it), and the dispatcher's own continuation when a catalog takes longer
  than one invocation to send.
* The rows queue receives one message per row: `{"job_id", "row", "entity_id", "sku",
  "image_url"}`. Sent ten to a SendMessageBatch call (SQS's limit); entries SQS reports as
  failed are sent again a few times, then the batch fails as a whole (the dispatcher's retry
  resumes from its last saved position, and counting is idempotent).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dupcheck.core.errors import StoreUnavailable
from dupcheck.core.models import CatalogRow, ImportJob, JobStatus, ScanJob, Source

if TYPE_CHECKING:  # pragma: no cover
    from dupcheck.core.settings import Settings

SEND_BATCH = 10  # SQS SendMessageBatch's limit
SEND_ATTEMPTS = 4


def _client(region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("sqs", region_name=region or None,
                        config=Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard"}))  # fmt: skip


class _Queue:
    def __init__(self, queue_url: str, *, client: Any = None, region: str | None = None) -> None:
        if not queue_url:
            raise ValueError("queue_url is required")
        self.queue_url = queue_url
        self.client = client if client is not None else _client(region)

    def _send(self, body: dict[str, Any]) -> None:
        try:
            self.client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"SQS SendMessage failed: {type(exc).__name__}") from exc


class SqsImportStarter(_Queue):
    """ImportStarter on AWS: a catalog_url job is started by a message; any other job is started by
    the S3 event of its catalog (or, cancelled, needs nothing: the dispatcher and the worker
    read the job's status)."""

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> SqsImportStarter:
        return cls(settings.import_starts_queue_url, client=client, region=settings.aws_region or None)

    def start(self, job: ImportJob) -> None:
        if job.status is JobStatus.QUEUED and job.source is Source.CATALOG_URL and job.catalog_url:
            self._send({"job_id": job.job_id})

    def continue_later(self, job_id: str, token: str) -> None:
        """The dispatcher's hand-over: the next invocation goes on with `token`'s lease."""
        self._send({"job_id": job_id, "token": token})


class SqsScanStarter(_Queue):
    """ScanStarter on AWS: `{"scan_id"}` starts a scan; `{"scan_id", "token"}` is the scan
    function's hand-over to its next invocation, under the same lease."""

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> SqsScanStarter:
        return cls(settings.scans_queue_url, client=client, region=settings.aws_region or None)

    def start(self, job: ScanJob) -> None:
        self._send({"scan_id": job.scan_id})

    def continue_later(self, scan_id: str, token: str) -> None:
        self._send({"scan_id": scan_id, "token": token})


class SqsRowQueue(_Queue):
    """RowQueue on AWS: one message per row."""

    def __init__(self, queue_url: str, *, client: Any = None, region: str | None = None,
                 sleep: Any = time.sleep) -> None:  # fmt: skip
        super().__init__(queue_url, client=client, region=region)
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings, *, client: Any = None) -> SqsRowQueue:
        return cls(settings.import_rows_queue_url, client=client, region=settings.aws_region or None)

    def send(self, job_id: str, rows: Sequence[CatalogRow]) -> None:
        for start in range(0, len(rows), SEND_BATCH):
            entries = {
                str(i): json.dumps(
                    {"job_id": job_id, "row": r.row, "entity_id": r.entity_id, "sku": r.sku, "image_url": r.image_url}
                )  # fmt: skip
                for i, r in enumerate(rows[start : start + SEND_BATCH])
            }
            self._send_batch(entries)

    def _send_batch(self, entries: dict[str, str]) -> None:
        for attempt in range(SEND_ATTEMPTS):
            try:
                answer = self.client.send_message_batch(
                    QueueUrl=self.queue_url, Entries=[{"Id": i, "MessageBody": body} for i, body in entries.items()]
                )
            except (ClientError, BotoCoreError) as exc:
                raise StoreUnavailable(f"SQS SendMessageBatch failed: {type(exc).__name__}") from exc
            failed = {f["Id"] for f in answer.get("Failed", [])}
            entries = {i: body for i, body in entries.items() if i in failed}
            if not entries:
                return
            self._sleep(0.1 * 2**attempt)
        raise StoreUnavailable(f"SQS refused {len(entries)} rows after {SEND_ATTEMPTS} attempts")


def row_of_message(body: str) -> tuple[str, CatalogRow]:
    """(job_id, row) of a rows-queue message; ValueError/KeyError when it is not one."""
    data = json.loads(body)
    return str(data["job_id"]), CatalogRow(int(data["row"]), str(data["entity_id"]), str(data.get("sku") or ""),
                                           str(data["image_url"]))  # fmt: skip
