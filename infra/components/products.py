"""Similar products on AWS: the `/similar_products` function and the product sync function (+ DLQ).

Both run the product model, so both get the products asset (infra/bundling.py: the shared asset
plus onnxruntime and the model), and no other function loads it: the find_similar function's
bundle and cold start stay what they were. API Gateway routes `/similar_products` to the first
(Api.route); the second is the records table stream's second reader, beside stream_sync: it
embeds each new picture and writes the product index in OpenSearch, record by record, failures
reported per record, retried, then described on its dead-letter queue (docs/lab/similar-products.md).
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

from dupcheck.core.settings import Settings
from infra.components.function import dupcheck_function

SEARCH_HANDLER = "dupcheck.handlers.similar_products.handler"
SYNC_HANDLER = "dupcheck.handlers.product_sync.handler"
# 1,769 MB is one whole vCPU: the model runs one picture on one core (~20 ms here, docs/lab/benchmarks.md).
MEMORY_MB = 1769
SEARCH_TIMEOUT = Duration.seconds(29)  # API Gateway's integration timeout
# A record is one download (up to DUPCHECK_FETCH_DEADLINE, 20 s) and one run of the model: a
# batch of 10 stays inside the timeout even when every image host is slow.
SYNC_BATCH = 10
SYNC_TIMEOUT = Duration.minutes(5)
# Batches of one shard at once; records of one entity still arrive in order (Lambda keeps a
# partition key on one of them), which a download-bound reader needs to keep up with imports.
SYNC_PARALLELIZATION = 5
RETRY_ATTEMPTS = 3
MAX_RECORD_AGE = Duration.days(1)
DLQ_RETENTION = Duration.days(14)


class SimilarProducts(Construct):
    """The two similar-products functions, the stream mapping and its DLQ."""

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
        # Refuse to start without the model, rather than answer 503 products_unavailable forever.
        env = {**environment, Settings.env_name("products"): "on"}
        self.search_function = dupcheck_function(
            self, "SearchFunction", description="dupcheck: /similar_products (the product model)",
            handler=SEARCH_HANDLER, code=code, environment=env, memory_mb=MEMORY_MB, timeout=SEARCH_TIMEOUT,
            log_retention=log_retention,
        )  # fmt: skip
        self.dlq = sqs.Queue(
            self, "DeadLetterQueue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )  # fmt: skip
        NagSuppressions.add_resource_suppressions(self.dlq, [NagPackSuppression(
            id="AwsSolutions-SQS3", reason="This queue is itself the dead-letter queue: the on-failure "
            "destination of the product sync's stream event source mapping (cdk-nag only recognises SQS "
            "redrive DLQs).")])  # fmt: skip
        self.sync_function = dupcheck_function(
            self, "SyncFunction", description="dupcheck: DynamoDB stream -> product vectors in OpenSearch",
            handler=SYNC_HANDLER, code=code, environment=env, memory_mb=MEMORY_MB, timeout=SYNC_TIMEOUT,
            log_retention=log_retention,
        )  # fmt: skip
        self.sync_function.add_event_source(event_sources.DynamoEventSource(
            table, starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=SYNC_BATCH,
            bisect_batch_on_error=True, retry_attempts=RETRY_ATTEMPTS, max_record_age=MAX_RECORD_AGE,
            on_failure=event_sources.SqsDlq(self.dlq), report_batch_item_failures=True,
            parallelization_factor=SYNC_PARALLELIZATION,
        ))  # fmt: skip
        table.grant_read_data(self.search_function)  # the hits' SKU and address

    @property
    def functions(self) -> tuple[lambda_.Function, lambda_.Function]:
        return self.search_function, self.sync_function
