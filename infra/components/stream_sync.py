"""Keeps the OpenSearch index in step with the table: stream -> stream_sync Lambda (+ DLQ).

Records are processed one by one and failures are reported per record
(ReportBatchItemFailures); a batch is bisected on error and retried, and what still fails
(or is older than a day) is described in a message on the dead-letter queue, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.components.function import dupcheck_function

HANDLER = "dupcheck.handlers.stream_sync.handler"
MEMORY_MB = 512
TIMEOUT = Duration.seconds(60)
BATCH_SIZE = 100
RETRY_ATTEMPTS = 3
MAX_RECORD_AGE = Duration.days(1)
PARALLELIZATION_FACTOR = 1  # in order per shard: an upsert and a later delete never race
DLQ_RETENTION = Duration.days(14)  # SQS maximum: time to notice, fix and replay


class StreamSync(Construct):
    """stream_sync function, its event source mapping on the table stream, and the DLQ."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        table: dynamodb.ITable,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)

        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        NagSuppressions.add_resource_suppressions(
            self.dlq,
            [
                NagPackSuppression(
                    id="AwsSolutions-SQS3",
                    reason="This queue is itself the dead-letter queue: the on-failure destination of the "
                    "stream event source mapping (cdk-nag only recognises SQS redrive DLQs).",
                )
            ],
        )
        self.function = dupcheck_function(
            self,
            "StreamSyncFunction",
            description="dupcheck: DynamoDB stream -> OpenSearch index",
            handler=HANDLER,
            code=code,
            environment=environment,
            memory_mb=MEMORY_MB,
            timeout=TIMEOUT,
            log_retention=log_retention,
        )
        # Also grants the function read access to the stream and SendMessage on the DLQ.
        self.function.add_event_source(
            event_sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=BATCH_SIZE,
                bisect_batch_on_error=True,
                retry_attempts=RETRY_ATTEMPTS,
                max_record_age=MAX_RECORD_AGE,
                on_failure=event_sources.SqsDlq(self.dlq),
                report_batch_item_failures=True,
                parallelization_factor=PARALLELIZATION_FACTOR,
            )
        )
