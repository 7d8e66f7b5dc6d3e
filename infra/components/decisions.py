"""The decisions on duplicate groups on AWS: one DynamoDB table (adapters/dynamodb_decisions.py).

    POST/DELETE /duplicates/decisions, GET /duplicates, find_similar (API function) --> decisions table

A table of its own, not the jobs table: jobs and scans expire after 30 days, decisions are the
shop's record of what was settled (and hold the copies an undo puts back), so they never expire
and outlive the stack (RETAIN, point-in-time recovery), as the records do.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from dupcheck.adapters.dynamodb_decisions import MEMBER_INDEX, RECENT_INDEX
from dupcheck.core.settings import Settings


class DuplicateDecisions(Construct):
    """The decisions table and its two indexes; `grant_api` lets the API read and write it."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self, "Table",
            partition_key=dynamodb.Attribute(name="decision_id", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="item", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.RETAIN,
        )  # fmt: skip
        self.table.add_global_secondary_index(
            index_name=RECENT_INDEX,
            partition_key=dynamodb.Attribute(name="listed", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="position", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.table.add_global_secondary_index(
            index_name=MEMBER_INDEX,
            partition_key=dynamodb.Attribute(name="member", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="decision_id", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
        self.environment = {Settings.env_name("decisions_table"): self.table.table_name}

    def grant_api(self, function: lambda_.IFunction) -> None:
        self.table.grant_read_write_data(function)
        NagSuppressions.add_resource_suppressions(
            function,
            [NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="The decisions table's indexes (index/*, as grant_read_write_data writes it): the recent and "
                "member indexes of the table the API owns, no wider.",
                applies_to=[RegexAppliesTo(regex=r"/^Resource::<DuplicateDecisionsTable[A-Za-z0-9]*\.Arn>\/index\/\*$/")],
            )],
            apply_to_children=True,
        )  # fmt: skip
