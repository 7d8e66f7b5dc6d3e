"""Lambda: the imports' rows queue -> RowImporter (core/jobs/import_runs.py), a batch at a time.

Each message is one catalog row. The rows of a batch are imported together: one store look-up
for the batch, downloads on a few threads, each picture through its job's duplicate gate
(JobGate: the catalog in OpenSearch, the job's other rows in the jobs table), one batched write;
then each job's outcomes are recorded in one transaction (counted once per row, whatever is
redelivered) and a job whose last row this was is marked done. A check job's rows (`mode:
check`) are only looked up (RowChecker), nothing stored.

Partial batch failures (ReportBatchItemFailures): a row that failed for a reason that may pass
(the image host's 429/5xx, a timeout, the store) is reported failed and comes back after the
queue's visibility timeout; on its MAX_ATTEMPTS-th delivery it is recorded as the row's failure
instead, so it reaches the dead-letter queue only if this function cannot handle it at all (a
malformed message, a crash). Rows of a job that is not running (cancelled, gone) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.adapters.sqs_queues import row_of_message
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import DupcheckError
from dupcheck.core.jobs.import_runs import MAX_ATTEMPTS, JobGate, Retry, RowChecker, RowImporter, finish_if_complete
from dupcheck.core.models import CatalogRow, ImportJob, JobStatus, Mode, RowResult
from dupcheck.core.ports import ImportJobs
from dupcheck.observability import lambda_entry, logger, record_metric


class ImportRowsWorker:
    def __init__(self, importer: RowImporter, jobs: ImportJobs, service: DupcheckService) -> None:
        self.importer, self.jobs, self.service = importer, jobs, service
        self.checker = RowChecker(service, jobs, threads=importer.threads)

    def handle(self, event: dict[str, Any], context: LambdaContext | None) -> PartialItemFailureResponse:
        records = [SQSRecord(raw) for raw in event.get("Records") or []]
        failed = self.run(records)

        def record_handler(record: SQSRecord) -> None:
            if record.message_id in failed:
                raise RuntimeError(failed[record.message_id])

        # A batch whose every row comes back later is an answer, not an error of the function (which
        # would raise its Errors alarm): the failures are reported item by item all the same.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)  # fmt: skip

    def run(self, records: Sequence[SQSRecord]) -> dict[str, str]:
        """Import the batch; the ids of the messages to deliver again, with why."""
        failed: dict[str, str] = {}
        rows: list[tuple[str, str, CatalogRow, int]] = []  # (message id, job id, row, deliveries)
        for record in records:
            try:
                job_id, row = row_of_message(record.body)
            except (ValueError, KeyError, TypeError) as exc:
                failed[record.message_id] = f"not a row message: {exc}"
                continue
            rows.append((record.message_id, job_id, row, int(record.attributes.approximate_receive_count or 1)))
        running = self._running_jobs({job_id for _, job_id, _, _ in rows}, failed, rows)
        rows = [entry for entry in rows if entry[1] in running and entry[0] not in failed]
        if not rows:
            return failed
        deliveries = {id(row): count for _, _, row, count in rows}
        job_of = {id(row): running[job_id] for _, job_id, row, _ in rows}
        gates = {job.job_id: JobGate(self.service, self.jobs, job.job_id, job.options.on_duplicate, job.options.marks)
                 for job in running.values()}  # fmt: skip

        def final(row: CatalogRow) -> bool:
            return deliveries[id(row)] >= MAX_ATTEMPTS

        imported = [row for _, _, row, _ in rows if job_of[id(row)].options.mode is Mode.IMPORT]
        done = dict(zip(map(id, imported), self.importer.import_rows(
            imported, final, gate_of=lambda row: gates[job_of[id(row)].job_id]), strict=True))  # fmt: skip
        for job in running.values():
            if job.options.mode is Mode.CHECK:
                checked = [row for _, _, row, _ in rows if job_of[id(row)] is job]
                results_of = self.checker.check_rows(job.job_id, checked, final, job.options.marks)
                done.update(zip(map(id, checked), results_of, strict=True))
        results = [done[id(row)] for _, _, row, _ in rows]
        by_job: dict[str, list[tuple[str, RowResult]]] = {}
        for (message_id, job_id, _, _), result in zip(rows, results, strict=True):
            if isinstance(result, Retry):
                failed[message_id] = result.cause.message
            else:
                by_job.setdefault(job_id, []).append((message_id, result))
        for job_id, outcomes in by_job.items():
            try:
                finish_if_complete(self.jobs, self.jobs.record(job_id, [result for _, result in outcomes]))
            except DupcheckError as exc:
                failed.update((message_id, exc.message) for message_id, _ in outcomes)
        self._count(results, failed)
        return failed

    def _running_jobs(self, job_ids: set[str], failed: dict[str, str], rows: list[tuple[str, str, CatalogRow, int]]
                      ) -> dict[str, ImportJob]:  # fmt: skip
        running = {}
        for job_id in job_ids:
            try:
                job: ImportJob | None = self.jobs.get(job_id)
            except DupcheckError as exc:  # the table cannot be read: these rows come back later
                failed.update((m, exc.message) for m, j, _, _ in rows if j == job_id)
                continue
            if job is not None and job.status is JobStatus.RUNNING:
                running[job_id] = job
            else:
                logger.info("rows of an import that is not running are dropped",
                            extra={"job_id": job_id, "status": job.status.value if job else None})  # fmt: skip
        return running

    @staticmethod
    def _count(results: Sequence[RowResult | Retry], failed: dict[str, str]) -> None:
        outcomes = [r.outcome.value for r in results if isinstance(r, RowResult)]
        for outcome in ("done", "skipped", "failed"):
            record_metric(f"ImportRows{outcome.capitalize()}", outcomes.count(outcome), "Count")
        record_metric("ImportRowsRetried", len(failed), "Count")


def _build() -> ImportRowsWorker:
    from dupcheck.bootstrap import build_imports, build_row_importer, build_service
    from dupcheck.core.settings import Settings

    settings = Settings.from_env()
    # The gate's look-ups: the same store and OpenSearch index as find_similar (never loaded here).
    service = build_service(settings, load_index=False)
    return ImportRowsWorker(build_row_importer(settings, service), build_imports(settings).jobs, service)


worker = _build()


@lambda_entry()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return worker.handle(event, context)
