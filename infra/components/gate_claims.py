"""The duplicate gate's claims on AWS: one DynamoDB table (adapters/dynamodb_claims.py).

    POST/PUT /items, import rows (API, import worker) --claim, commit with the record--> claims table
    stream_sync --confirms what it indexed, drops a kept image's users--> claims table
    DELETE /images, the dispatcher, decisions (API, dispatcher) --kept images' holds--> claims table

Claims of writes in flight last seconds (a TTL attribute, `expires_at`, takes what a crash left);
the table also holds each kept image's users and holds (a decision's copies, an import's
catalog), which outlive any one write: so RETAIN and point-in-time recovery, as the records have.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from dupcheck.core.settings import Settings


class GateClaims(Construct):
    """The claims table; `grant` lets a function read and write it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self, "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        self.environment = {Settings.env_name("claims_table"): self.table.table_name}

    def grant(self, *functions: lambda_.IFunction) -> None:
        for function in functions:
            self.table.grant_read_write_data(function)
