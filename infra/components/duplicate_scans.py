"""Duplicate scans on AWS: a queue, the scan function, and the layer that gives it the engine.

    POST /duplicates/scans (API function) --> imports' jobs table (the scan and its lock)
                                          --> scans queue --> scan function (batch 1, 15 min)
    scan function: reads the records table and the thumbnails, runs the report's engine in /tmp,
                   and either publishes the report (imports bucket, reports/: GET /duplicates reads it)
                   or, before its 15 minutes are up, keeps its work file (scans/<id>/) and sends
                   itself a hand-over message on the same queue
    the queue, after 5 deliveries --> the imports' dead-letter queue (and its alarm)

Why a layer: the engine is the operator tools' (`dupcheck_tools.duplicates`, with tqdm), which
the shared code asset leaves out by construction (infra/bundling.py). The scan function alone
gets it, as a layer of plain source files (pure Python: nothing to build for the platform),
so the API and the other functions still load nothing of the tools. Why one function with
hand-overs rather than a fan-out: the pairing is one self-join in memory, and the verification
of 1M records is minutes of CPU (docs/lab/benchmarks.md), which a chain of 15-minute invocations
covers while the work file keeps every finished step (docs/architecture.md, "Duplicate scans").
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsii
import tqdm
from aws_cdk import AssetHashType, BundlingOptions, Duration, FileSystem, ILocalBundling
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from dupcheck.adapters.s3_reports import REPORTS, SCANS
from dupcheck.core.jobs.scans import RETENTION_DAYS
from dupcheck.core.settings import Settings
from infra.bundling import ARCHITECTURE, REPO_ROOT, RUNTIME
from infra.components.function import dupcheck_function
from infra.components.imports import MAX_RECEIVES, Imports
from infra.components.thumbnail_bucket import ThumbnailBucket

HANDLER = "dupcheck_tools.duplicates.scan_function.handler"
TIMEOUT = Duration.minutes(15)  # Lambda's longest; the function hands over before it
MEMORY_MB = 4096  # 1M records peaked at 1.6 GB (docs/lab/benchmarks.md); this also buys ~2.3 vCPUs for numpy
EPHEMERAL_MIB = 10240  # /tmp: the work file (~1.4 GB at 1M records) and the report
TOOLS_DIR = REPO_ROOT / "lambdas" / "dupcheck_tools"
# What the scan function imports of the tools: the engine's package and the modules it uses.
LAYER_FILES = ("__init__.py", "exit_codes.py", "spreadsheet.py", "worker_process.py", "worker_pool.py", "duplicates")


class DuplicateScans(Construct):
    """The scans' queue and function (module docstring); `grant_api` lets the API start scans and read reports."""

    def __init__(
        self, scope: Construct, construct_id: str, *, code: lambda_.Code, environment: Mapping[str, str],
        records_table: dynamodb.ITable, thumbnails: ThumbnailBucket, imports: Imports,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
    ) -> None:  # fmt: skip
        super().__init__(scope, construct_id)
        self.imports = imports
        # Out of sight for longer than an invocation may run.
        self.queue = sqs.Queue(
            self, "Queue", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.minutes(TIMEOUT.to_minutes() + 1),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVES, queue=imports.dlq),
        )  # fmt: skip
        self.environment = {Settings.env_name("scans_queue_url"): self.queue.queue_url}
        self.layer = lambda_.LayerVersion(
            self, "EngineLayer", code=engine_layer_code(), compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="dupcheck's duplicate report engine (dupcheck_tools.duplicates) and tqdm: the scan function's",
        )  # fmt: skip
        self.function = dupcheck_function(
            self, "Function", description="dupcheck duplicate scans: the catalog -> the duplicate report",
            handler=HANDLER, code=code, environment={**environment, **imports.environment, **self.environment},
            memory_mb=MEMORY_MB, timeout=TIMEOUT, log_retention=log_retention,
        )  # fmt: skip
        self.function.add_layers(self.layer)
        cfn = self.function.node.default_child
        assert isinstance(cfn, lambda_.CfnFunction)
        cfn.ephemeral_storage = lambda_.CfnFunction.EphemeralStorageProperty(size=EPHEMERAL_MIB)
        self.function.add_event_source(event_sources.SqsEventSource(self.queue, batch_size=1,
                                                                    report_batch_item_failures=True))  # fmt: skip
        imports.bucket.add_lifecycle_rule(id="ScanWorkExpires", prefix=SCANS, expiration=Duration.days(RETENTION_DAYS))

        # Grants: the scan reads the catalog and its thumbnails, keeps its job and lock in the jobs
        # table, its work file and the report in the bucket, and sends its own hand-over.
        records_table.grant_read_data(self.function)
        thumbnails.grant_read(_role(self.function))
        imports.table.grant_read_write_data(self.function)
        self.imports.grant_objects(self.function, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], SCANS)
        self.imports.grant_objects(self.function, ["s3:PutObject"], REPORTS)
        self.queue.grant_send_messages(self.function)

    def grant_api(self, function: lambda_.Function) -> None:
        """Start a scan (its job and lock are in the jobs table, which the API writes for imports
        already) and read the published report."""
        self.queue.grant_send_messages(function)
        self.imports.grant_objects(function, ["s3:GetObject"], REPORTS)


def _role(function: lambda_.Function) -> iam.IRole:
    role = function.role
    assert role is not None, "functions create their own role"
    return role


@jsii.implements(ILocalBundling)
class EngineLayerBundler:
    """Copies the engine's sources and tqdm (this environment's, pinned by uv.lock) under python/,
    where Lambda's Python runtime finds a layer's packages. Plain copies: no network, no build."""

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:  # noqa: ARG002 - jsii signature
        site = Path(output_dir) / "python"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in LAYER_FILES:
            source, target = TOOLS_DIR / name, site / "dupcheck_tools" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)
        shutil.copytree(Path(tqdm.__file__).parent, site / "tqdm", ignore=ignore, dirs_exist_ok=True)
        return True


def engine_layer_code() -> lambda_.Code:
    """The layer's asset: hashed by the engine's sources and tqdm's version."""
    fingerprint = FileSystem.fingerprint(str(TOOLS_DIR), exclude=["**/__pycache__", "**/*.pyc"])
    return lambda_.Code.from_asset(
        str(TOOLS_DIR),  # unbundled (skipBundling): the tools' sources as they are
        exclude=["**/__pycache__", "**/*.pyc"],
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=f"{fingerprint}-tqdm{tqdm.__version__}",
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,  # required by CDK; unused: the local bundler always succeeds
            command=["bash", "-c", "echo 'the engine layer bundles locally (duplicate_scans.py)' >&2; exit 1"],
            local=EngineLayerBundler(),
        ),
    )  # fmt: skip
