"""Catalog imports on AWS: jobs table, bucket, two queues, a dispatcher and a worker function.

    POST /imports (API function) --> jobs table (the job), bucket catalogs/<job_id> (the catalog)
    presigned POST (client) -------> bucket catalogs/<job_id>
    bucket "Object Created" --EventBridge rule--> starts queue --> dispatcher (batch 1, 15 min)
    catalog_url job (API function) --------------> starts queue      |  counts the rows, sends each
                                                                     v
                                          rows queue (one row a message) --> worker (batches of 10,
                                          ReportBatchItemFailures, at most `concurrency` at once)
                                          both queues, after 5 deliveries --> imports DLQ (alarm)

Why EventBridge for the bucket's events: S3's own notifications are written by CDK through a
custom-resource Lambda (the bucket and its destination's policy would otherwise depend on each
other); EventBridge needs only the bucket's `EventBridgeConfiguration` and a rule, and S3's
events cost nothing there. Why the worker's concurrency is capped twice: the event source
mapping's `MaximumConcurrency` keeps SQS from invoking more workers than that (no throttled
batches bouncing back to the queue), and reserved concurrency guarantees the capacity and keeps
the worker from taking the account's whole pool; together they bound the load on image hosts
and on the record table.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from dupcheck.adapters.dynamodb_jobs import RECENT_INDEX
from dupcheck.adapters.s3_files import CATALOGS, EXPORTS, IMAGES, UNCLAIMED_TAG
from dupcheck.core.catalog.kept_images import UNCLAIMED_FOR_S
from dupcheck.core.jobs.import_runs import MAX_ATTEMPTS
from dupcheck.core.jobs.imports import RETENTION_DAYS
from dupcheck.core.settings import Settings
from infra.components.function import dupcheck_function

DISPATCH_HANDLER = "dupcheck.handlers.import_dispatch.handler"
WORKER_HANDLER = "dupcheck.handlers.import_worker.handler"
DISPATCH_TIMEOUT = Duration.minutes(15)  # Lambda's longest; the dispatcher hands over before it
WORKER_TIMEOUT = Duration.seconds(60)  # a batch of 10 rows: 8 downloads at once, 20 s deadline each
MEMORY_MB = 1024
WORKER_BATCH = 10
MAX_RECEIVES = MAX_ATTEMPTS + 2  # the worker records a row's failure on its 3rd delivery; the DLQ
# only ever holds messages the functions could not handle at all (a crash, a timeout, malformed)
DLQ_RETENTION = Duration.days(14)


class Imports(Construct):
    """The import jobs' storage, queues and functions (see module docstring)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        environment: Mapping[str, str],
        records_table: dynamodb.ITable,
        concurrency: int,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:
        super().__init__(scope, construct_id)
        if concurrency < 2:
            raise ValueError("importConcurrency must be at least 2 (the event source mapping's minimum)")

        self.table = dynamodb.Table(
            self, "JobsTable",
            partition_key=dynamodb.Attribute(name="job_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="item", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.DESTROY,  # job history, not the catalog: it expires anyway
        )  # fmt: skip
        self.table.add_global_secondary_index(
            index_name=RECENT_INDEX,
            partition_key=dynamodb.Attribute(name="listed", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )

        self.bucket = s3.Bucket(
            self, "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            # Kept images are records' pictures: never deleted with the stack.
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(id="CatalogsExpire", prefix=CATALOGS, expiration=Duration.days(RETENTION_DAYS)),
                # A job's results CSV, written for a download link: written again when asked for again.
                s3.LifecycleRule(id="ExportsExpire", prefix=EXPORTS, expiration=Duration.days(1)),
                s3.LifecycleRule(id="AbortIncompleteUploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
                # A kept image no record has claimed (adapters/s3_files.py): an upload whose import
                # never came, or whose record's write failed. Claimed ones lose the tag.
                s3.LifecycleRule(id="UnclaimedPicturesExpire", prefix=IMAGES, tag_filters=dict([UNCLAIMED_TAG]),
                                 expiration=Duration.seconds(UNCLAIMED_FOR_S)),
            ],
            # The web app posts a large catalog straight to S3 with the presigned form: a cross-origin
            # POST. The form's policy is the permission (one key, a size range, an hour). It fetches a
            # results CSV from the presigned link the API redirects it to: a cross-origin GET.
            cors=[s3.CorsRule(allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET], allowed_origins=["*"],
                              allowed_headers=["*"], max_age=3600)],
        )  # fmt: skip
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.add_property_override("NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True)

        self.dlq = self._queue("DeadLetterQueue", retention=DLQ_RETENTION)
        # A message is out of sight for longer than the function that holds it may run (AWS's advice
        # for a Lambda-fed queue is six times the timeout: the worker's; the dispatcher hands over
        # before its 15 minutes are up, so a little more than that is enough).
        self.starts = self._queue("StartsQueue", visibility=Duration.minutes(DISPATCH_TIMEOUT.to_minutes() + 1))
        self.rows = self._queue("RowsQueue", visibility=Duration.seconds(WORKER_TIMEOUT.to_seconds() * 6))

        events.Rule(
            self, "CatalogUploaded",
            description="A catalog landed in the imports bucket: start its job",
            event_pattern=events.EventPattern(
                source=["aws.s3"], detail_type=["Object Created"],
                detail={"bucket": {"name": [self.bucket.bucket_name]}, "object": {"key": [{"prefix": CATALOGS}]}},
            ),
            targets=[targets.SqsQueue(self.starts, dead_letter_queue=self.dlq, retry_attempts=8)],
        )  # fmt: skip

        self.environment = {
            Settings.env_name("imports_table"): self.table.table_name,
            Settings.env_name("imports_bucket"): self.bucket.bucket_name,
            Settings.env_name("import_starts_queue_url"): self.starts.queue_url,
            Settings.env_name("import_rows_queue_url"): self.rows.queue_url,
        }
        env = {**environment, **self.environment}
        self.dispatcher = dupcheck_function(
            self, "DispatchFunction", description="dupcheck imports: a catalog's rows -> the rows queue",
            handler=DISPATCH_HANDLER, code=code, environment=env, memory_mb=MEMORY_MB, timeout=DISPATCH_TIMEOUT,
            log_retention=log_retention,
        )  # fmt: skip
        self.dispatcher.add_event_source(event_sources.SqsEventSource(
            self.starts, batch_size=1, report_batch_item_failures=True))  # fmt: skip
        self.worker = dupcheck_function(
            self, "WorkerFunction", description="dupcheck imports: rows -> downloaded, hashed, stored",
            handler=WORKER_HANDLER, code=code, environment=env, memory_mb=MEMORY_MB, timeout=WORKER_TIMEOUT,
            log_retention=log_retention, reserved_concurrency=concurrency,
        )  # fmt: skip
        self.worker.add_event_source(event_sources.SqsEventSource(
            self.rows, batch_size=WORKER_BATCH, report_batch_item_failures=True, max_concurrency=concurrency,
        ))  # fmt: skip

        # Grants: each function what it touches, no more.
        self.table.grant_read_write_data(self.dispatcher)
        self.table.grant_read_write_data(self.worker)
        self.grant_objects(self.dispatcher, ["s3:GetObject", "s3:PutObject"], CATALOGS)  # reads; keeps a URL's
        self.grant_objects(self.worker, ["s3:GetObject"], IMAGES)  # kept images that rows name
        self.rows.grant_send_messages(self.dispatcher)
        self.starts.grant_send_messages(self.dispatcher)  # its own continuation
        records_table.grant_read_write_data(self.worker)
        NagSuppressions.add_resource_suppressions(self.dlq, [NagPackSuppression(
            id="AwsSolutions-SQS3", reason="This queue is itself the imports' dead-letter queue (of both queues "
            "and of the EventBridge rule's target).")])  # fmt: skip
        NagSuppressions.add_resource_suppressions(self.bucket, [NagPackSuppression(
            id="AwsSolutions-S1",
            reason="No server access logs: the bucket holds catalogs a job reads once and pictures the API "
            "serves behind its key; who called is in the API's access logs and CloudTrail data events. A logs "
            "bucket would cost more than this one.",
        )])  # fmt: skip

    def grant_api(self, function: lambda_.Function) -> None:
        """What the API function needs: record and cancel jobs, keep catalogs and pictures, sign
        upload forms (a presigned POST carries the signer's permission to put that key), and start
        a catalog_url job."""
        self.table.grant_read_write_data(function)
        self.grant_objects(function, ["s3:GetObject", "s3:PutObject"], CATALOGS)
        # Kept images: written tagged unclaimed, deleted on request (DELETE /images/{name}).
        self.grant_kept_images(function, ["s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"])
        # Results CSVs: written a part at a time (their progress beside them), then signed for download;
        # the listing of exports/ alone, without which S3 answers one not written yet with 403.
        self.grant_objects(function, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                      "s3:ListMultipartUploadParts"], EXPORTS)  # fmt: skip
        self.grant_listing(function, EXPORTS)
        self.starts.grant_send_messages(function)

    def grant_kept_images(self, function: lambda_.Function, actions: list[str]) -> None:
        """Read kept images, and `actions` on them; the listing of images/ alone, without which S3
        answers a missing picture with 403 rather than 404."""
        self.grant_objects(function, ["s3:GetObject", *actions], IMAGES)
        self.grant_listing(function, IMAGES)

    def grant_listing(self, function: lambda_.Function, prefix: str) -> None:
        """The listing of the bucket under `prefix` alone: what lets S3 answer a missing object 404."""
        function.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}))  # fmt: skip

    def grant_objects(self, function: lambda_.Function, actions: list[str], *prefixes: str) -> None:
        """`actions` on the bucket's objects under `prefixes` (the imports' and the duplicate
        scans'), and the reason cdk-nag may accept their wildcard (a key prefix) and the jobs
        table's index wildcard."""
        function.add_to_role_policy(iam.PolicyStatement(
            actions=actions, resources=[self.bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]))  # fmt: skip
        NagSuppressions.add_resource_suppressions(
            function,
            [NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Objects under one key prefix of the imports bucket (catalogs/*, images/*: any job's "
                "catalog, any kept image; reports/*, scans/*: the duplicate report, a running scan's work "
                "file; exports/*: jobs' results CSVs), and the jobs table's indexes (index/*, as "
                "grant_read_write_data writes it): no wider than the data these functions own.",
                applies_to=[RegexAppliesTo(
                    regex=r"/^Resource::<ImportsBucket[A-Za-z0-9]*\.Arn>\/(catalogs|images|reports|scans|exports)"
                    r"\/\*$/"),
                            RegexAppliesTo(regex=r"/^Resource::<ImportsJobsTable[A-Za-z0-9]*\.Arn>\/index\/\*$/")],
            )],
            apply_to_children=True,
        )  # fmt: skip

    def _queue(self, construct_id: str, *, visibility: Duration | None = None,
               retention: Duration | None = None) -> sqs.Queue:  # fmt: skip
        dead_letter = None if retention else sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVES, queue=self.dlq)
        return sqs.Queue(
            self, construct_id, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=visibility, retention_period=retention, dead_letter_queue=dead_letter,
        )  # fmt: skip
