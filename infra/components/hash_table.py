"""The DynamoDB table of hash records: the source of truth, whose stream feeds OpenSearch."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from dupcheck.adapters.dynamodb_store import KEPT_IMAGE, KEPT_IMAGE_INDEX

PARTITION_KEY = "entity_id"


class HashTable(Construct):
    """On-demand table keyed by `entity_id`, with PITR, a NEW_AND_OLD_IMAGES stream and the
    keys-only index of records by the kept image they name.

    RETAIN: deleting the stack must never delete the catalog's hashes.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=removal_policy,
        )
        # Sparse: only records that name a kept image; whether one still does is a Query (the
        # stream sync function, when it lets a picture go: adapters/dynamodb_store.py).
        self.table.add_global_secondary_index(
            index_name=KEPT_IMAGE_INDEX,
            partition_key=dynamodb.Attribute(name=KEPT_IMAGE, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )
