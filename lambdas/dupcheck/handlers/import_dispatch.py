"""Lambda: the imports' starts queue -> Dispatcher (core/jobs/import_runs.py).

A message is one of: S3's `Object Created` event for `catalogs/<job_id>` (through EventBridge:
a catalog uploaded with the presigned POST, or kept by the API), `{"job_id"}` (a catalog_url
job), or `{"job_id", "token"}` (the dispatcher's own continuation). The start message's id is the
dispatch token: a redelivery of the same message resumes the job it claimed, any other start of
a claimed job is dropped. A failure (the table or the queue unreachable) raises, so the message
comes back after its visibility timeout and resumes from the last position saved; after
MAX_RECEIVES it lands in the imports' dead-letter queue (an alarm).

The handler is decorators plus one call; `ImportDispatch` holds the logic so tests build one
around moto or fakes.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from dupcheck.adapters.s3_files import job_of_catalog_key
from dupcheck.core.jobs.import_runs import Dispatcher
from dupcheck.observability import lambda_entry, logger, record_metric

WITHOUT_A_CONTEXT_S = 900.0  # time left when called without a Lambda context (tests, scripts)


def start_of(record: SQSRecord) -> tuple[str | None, str, bool]:
    """(job_id or None when the message names no job, dispatch token, whether it resumes)."""
    body = json.loads(record.body)
    if not isinstance(body, dict):
        return None, record.message_id, False
    if body.get("source") == "aws.s3":
        key = str(((body.get("detail") or {}).get("object") or {}).get("key") or "")
        return job_of_catalog_key(key), record.message_id, False
    token = body.get("token")
    return (str(body["job_id"]) if body.get("job_id") else None), str(token or record.message_id), bool(token)


class ImportDispatch:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def handle(self, event: dict[str, Any], context: LambdaContext | None) -> PartialItemFailureResponse:
        def time_left_s() -> float:
            return context.get_remaining_time_in_millis() / 1000 if context is not None else WITHOUT_A_CONTEXT_S

        def record_handler(record: SQSRecord) -> None:
            job_id, token, resumed = start_of(record)
            if job_id is None:
                logger.warning("a start message that names no import job", extra={"body": record.body[:500]})
                return
            result = self.dispatcher.dispatch(job_id, token, resumed=resumed, time_left_s=time_left_s)
            record_metric(f"ImportDispatch{result.value.capitalize()}", 1, "Count")
            logger.info("import dispatch", extra={"job_id": job_id, "result": result.value, "resumed": resumed})

        # A batch whose every row comes back later is an answer, not an error of the function (which
        # would raise its Errors alarm): the failures are reported item by item all the same.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)  # fmt: skip


def _build() -> ImportDispatch:
    from dupcheck.bootstrap import build_dispatcher
    from dupcheck.core.settings import Settings

    return ImportDispatch(build_dispatcher(Settings.from_env()))


dispatch = _build()


@lambda_entry()
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return dispatch.handle(event, context)
