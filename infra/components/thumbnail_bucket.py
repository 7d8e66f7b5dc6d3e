"""The S3 bucket of thumbnails: one small picture per catalog record, kept beside the table.

The look-alike check (lambdas/dupcheck/core/matching/photograph.py) reads the thumbnails of the one or two
candidates a query would call duplicates; registering writes one, deleting an item deletes it
(adapters/s3_thumbnails.py). Objects live under `thumbnails/`, keyed by a hash of the entity id.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

PREFIX = "thumbnails/"  # adapters/s3_thumbnails.py writes here and nowhere else


class ThumbnailBucket(Construct):
    """Private, S3-managed encryption, TLS only, no versioning (a thumbnail is re-made from its
    image by `reindex`). RETAIN: re-making them means downloading every catalog image again."""

    def __init__(
        self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy,
        )
        NagSuppressions.add_resource_suppressions(
            self.bucket,
            [
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="Only the find_similar function and the operator's tools read and write this bucket "
                    "(derived thumbnails of catalog images); server access logs would log every query's reads.",
                )
            ],
        )

    def grant_read_write_delete(self, role: iam.IRole) -> None:
        """Get, put and delete objects under the prefix, and list it (find_similar: it registers
        and removes items)."""
        self._grant(role, ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"])

    def grant_read_write(self, role: iam.IRole) -> None:
        """Get and put objects under the prefix, and list it (the import worker: it writes
        thumbnails and asks which are missing, never deletes)."""
        self._grant(role, ["s3:GetObject", "s3:PutObject"])

    def grant_read(self, role: iam.IRole) -> None:
        """Get objects under the prefix, and list it (the duplicate scan: it judges with them)."""
        self._grant(role, ["s3:GetObject"])

    def _grant(self, role: iam.IRole, object_actions: list[str]) -> None:
        # Listing too: without s3:ListBucket S3 answers 403 rather than 404 for a thumbnail
        # that is not there.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=object_actions, resources=[self.bucket.arn_for_objects(PREFIX + "*")])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [PREFIX + "*"]}},
            )
        )
        NagSuppressions.add_resource_suppressions(
            role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="Objects under thumbnails/ in this one bucket: one object per catalog entity, "
                    "whose keys (hashes of entity ids) no policy can list in advance.",
                    applies_to=[RegexAppliesTo(regex=r"/^Resource::<Thumbnails[A-Za-z0-9]*\.Arn>\/thumbnails\/\*$/")],
                )
            ],
            apply_to_children=True,
        )
