"""The one way dupcheck creates a Lambda function, so both functions agree on the basics.

Runtime and architecture match the bundle (`infra/bundling.py`); X-Ray tracing is active;
each function logs to its own log group with a fixed retention. With `snap_start`, Lambda
initialises each published version once and starts new environments from its snapshot (the
handler's runtime hooks make that safe: dupcheck/handlers/find_similar.py); callers must then
invoke a version or an alias, never $LATEST, which SnapStart does not cover.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME


def dupcheck_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    code: lambda_.Code,
    environment: Mapping[str, str],
    memory_mb: int,
    timeout: Duration,
    description: str,
    log_retention: logs.RetentionDays,
    reserved_concurrency: int | None = None,
    snap_start: bool = False,
) -> lambda_.Function:
    function = lambda_.Function(
        scope,
        construct_id,
        description=description,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=code,
        memory_size=memory_mb,
        timeout=timeout,
        environment=dict(environment),
        tracing=lambda_.Tracing.ACTIVE,
        reserved_concurrent_executions=reserved_concurrency,
        log_group=logs.LogGroup(scope, f"{construct_id}Logs", retention=log_retention),
        snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
        # Each version kept alive keeps its snapshot cached, and billed: the one the alias names is enough.
        current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY) if snap_start else None,
    )
    _suppress_nag(function)
    return function


def _suppress_nag(function: lambda_.Function) -> None:
    """cdk-nag findings every dupcheck function shares, with the reasons they are accepted."""
    NagSuppressions.add_resource_suppressions(
        function,
        [
            NagPackSuppression(
                id="AwsSolutions-L1",
                reason="Python 3.12 on purpose: the bundle's binary wheels are built for it "
                "(pip --python-version 3.12, infra/bundling.py). Upgrade runtime and bundle together.",
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch logs.",
                applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Resource '*' only where the API has no resource-level permissions: X-Ray "
                "PutTraceSegments/PutTelemetryRecords, and dynamodb:ListStreams for the stream mapping.",
                applies_to=["Resource::*"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The records table's indexes (index/*, as the table's grants write it): its one index, "
                "by_kept_image, holds only the keys of records that name a kept image.",
                applies_to=[RegexAppliesTo(regex=r"/^Resource::<HashTable[A-Za-z0-9]*\.Arn>\/index\/\*$/")],
            ),
        ],
        apply_to_children=True,
    )
