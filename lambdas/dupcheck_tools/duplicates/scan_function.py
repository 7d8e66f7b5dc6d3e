"""Lambda: the duplicate scans' queue -> one scan, run in this function by the report's engine.

The AWS deployment's scan function (infra/components/duplicate_scans.py). It is the one function
that runs an operator tool: its code is the runtime's asset plus this package as a layer; the
API and the other functions never load it.

A message is `{"scan_id"}` (POST /duplicates/scans) or `{"scan_id", "token"}` (this function's
own hand-over). The start message's id is the scan's lease (`token`): a duplicate delivery of
the start finds the scan claimed by another token and is dropped; a redelivery of the same
message (after a crash) resumes it.

Within Lambda's limits (docs/architecture.md, "Duplicate scans"): the engine runs in this one
process (no process pool: Lambda has no /dev/shm), its work file in /tmp. When less than
HANDOVER_S is left, the run stops at its next step, its work file goes to the imports bucket and
a hand-over message starts the next invocation, which downloads it and goes on: the read, the
pairing, the thumbnails and every record judged are kept, so a catalog of any size that one
invocation can take one step further finishes. An invocation that got nowhere (one step is too
long for 15 minutes) fails the scan, saying to run the command line instead.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.adapters.dynamodb_scans import DynamoDBScanJobs
from dupcheck.adapters.s3_reports import S3ScanCheckpoints
from dupcheck.core.ports import DuplicateReports, RecordStore, ThumbnailStore
from dupcheck.observability import lambda_entry, logger, record_metric
from dupcheck_tools.duplicates.scan_runs import fail, run_scan
from dupcheck_tools.duplicates.workfile import WORK_NAME, WorkFile

HANDOVER_S = 120.0  # time left when a run stops: the work file's upload (~1.4 GB at 1M records) and the message
WITHOUT_A_CONTEXT_S = 900.0  # time left when called without a Lambda context (tests, scripts)
WORK_ROOT = Path(tempfile.gettempdir()) / "dupcheck-scans"


def start_of(record: SQSRecord) -> tuple[str | None, str]:
    """(scan_id or None when the message names none, the lease's token)."""
    body = json.loads(record.body)
    if not isinstance(body, dict) or not body.get("scan_id"):
        return None, record.message_id
    return str(body["scan_id"]), str(body.get("token") or record.message_id)


class ScanFunction:
    def __init__(
        self, *, jobs: DynamoDBScanJobs, store: RecordStore, thumbnails: ThumbnailStore | None,
        reports: DuplicateReports, checkpoints: S3ScanCheckpoints, continue_later: Callable[[str, str], None],
        source: str, work_root: Path = WORK_ROOT,
    ) -> None:  # fmt: skip
        self.jobs, self.store, self.thumbnails, self.reports = jobs, store, thumbnails, reports
        self.checkpoints, self.continue_later, self.source, self.work_root = (
            checkpoints,
            continue_later,
            source,
            work_root,
        )

    def handle(self, event: dict[str, Any], context: LambdaContext | None) -> PartialItemFailureResponse:
        def time_left_s() -> float:
            return context.get_remaining_time_in_millis() / 1000 if context is not None else WITHOUT_A_CONTEXT_S

        def record_handler(record: SQSRecord) -> None:
            scan_id, token = start_of(record)
            if scan_id is None:
                logger.warning("a scan message that names no scan", extra={"body": record.body[:500]})
                return
            outcome = self.scan(scan_id, token, time_left_s)
            record_metric(f"DuplicateScan{outcome.capitalize()}", 1, "Count")
            logger.info("duplicate scan", extra={"scan_id": scan_id, "outcome": outcome})

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)  # fmt: skip

    def scan(self, scan_id: str, token: str, time_left_s: Callable[[], float]) -> str:
        """Run the scan as far as this invocation can: done, failed, continued (handed over) or
        dropped (not this message's scan to run)."""
        job = self.jobs.claim(scan_id, token)
        if job is None:
            return "dropped"
        work_dir = self.work_root / scan_id
        shutil.rmtree(work_dir, ignore_errors=True)  # a warm container's leftovers: the checkpoint is the truth
        try:
            resumed = self.checkpoints.restore(scan_id, work_dir / WORK_NAME)
            before = milestones(work_dir / WORK_NAME)
            ended = run_scan(
                job, self.jobs, self.store, work_dir=work_dir, source=self.source, reports=self.reports,
                thumbnails=self.thumbnails, resume=resumed, should_stop=lambda: time_left_s() < HANDOVER_S, workers=1,
            )  # fmt: skip
            if ended is not None:
                self.checkpoints.discard(scan_id)
                return ended.status.value
            if milestones(work_dir / WORK_NAME) <= before:
                fail(self.jobs, job, "the catalog is too large for the scan function: one of its steps takes more "
                     "than 15 minutes; run `python -m dupcheck duplicates --target dynamodb --publish` on a machine "
                     "near the table instead (docs/architecture.md, Duplicate scans)")  # fmt: skip
                self.checkpoints.discard(scan_id)
                return "failed"
            self.checkpoints.save(scan_id, work_dir / WORK_NAME)
            self.continue_later(scan_id, token)
            return "continued"
        except Exception:
            logger.exception("duplicate scan failed", extra={"scan_id": scan_id})
            fail(self.jobs, job, "internal error; it has been logged")
            return "failed"
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)


def milestones(work_file: Path) -> tuple[bool, bool, bool, int]:
    """How far a scan's work file has got, in what a resumed run keeps: read, paired, thumbnails
    copied, records judged (compared as a tuple: larger is further)."""
    if not work_file.exists():
        return False, False, False, 0
    work = WorkFile(work_file, read_only=True)
    try:
        return work.read_summary() is not None, work.paired(), work.thumbnails_copied(), len(work.judged())
    except sqlite3.Error:
        return False, False, False, 0
    finally:
        work.close()


def _build() -> ScanFunction:
    from dupcheck.adapters.s3_reports import S3DuplicateReports
    from dupcheck.adapters.sqs_queues import SqsScanStarter
    from dupcheck.bootstrap import build_store, build_thumbnails, one_blas_thread
    from dupcheck.core.settings import Settings

    one_blas_thread()
    settings = Settings.from_env()
    return ScanFunction(
        jobs=DynamoDBScanJobs.from_settings(settings), store=build_store(settings),
        thumbnails=build_thumbnails(settings), reports=S3DuplicateReports.from_settings(settings),
        checkpoints=S3ScanCheckpoints.from_settings(settings),
        continue_later=SqsScanStarter.from_settings(settings).continue_later,
        source=f"dynamodb:{settings.table_name}",
    )  # fmt: skip


function: ScanFunction | None = None


@lambda_entry()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    global function
    if function is None:  # built at the first event: importing the module (tests, the layer's check) costs nothing
        function = _build()
    return function.handle(event, context)
