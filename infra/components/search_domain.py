"""The OpenSearch domain holding the k-NN index of binary hashes.

Access is IAM only: the domain's resource policy names the function roles that may call it
(`allow_roles`), and each role gets `es:ESHttp*` on the domain in its own policy. The
resource policy is written straight onto the CloudFormation resource rather than through
`Domain(access_policies=...)`, which would add a custom-resource Lambda to update it.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

ENGINE_VERSION = opensearch.EngineVersion.OPENSEARCH_2_19
HTTP_ACTIONS = "es:ESHttp*"


class SearchDomain(Construct):
    """Encrypted, HTTPS-only (TLS 1.2+) domain; zone awareness when it has 2+ data nodes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_name: str,
        instance_type: str,
        node_count: int,
        volume_gib: int,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        if node_count < 1:
            raise ValueError("node_count must be at least 1")
        self._principals: list[iam.IRole] = []

        # Slow logs and application (error) logs, with the Logs resource policy created here
        # as a plain AWS::Logs::ResourcePolicy (suppress_logs_resource_policy) instead of the
        # default custom-resource Lambda.
        log_groups = {
            kind: logs.LogGroup(self, f"{kind}Logs", retention=log_retention, removal_policy=removal_policy)
            for kind in ("SlowSearch", "SlowIndex", "App")
        }
        zone_aware = node_count >= 2
        self.domain = opensearch.Domain(
            self,
            "Domain",
            version=ENGINE_VERSION,
            domain_name=domain_name,
            capacity=opensearch.CapacityConfig(
                data_nodes=node_count,
                data_node_instance_type=instance_type,
                multi_az_with_standby_enabled=False,
            ),
            ebs=opensearch.EbsOptions(volume_size=volume_gib, volume_type=ec2.EbsDeviceVolumeType.GP3),
            zone_awareness=opensearch.ZoneAwarenessConfig(
                enabled=zone_aware, availability_zone_count=2 if zone_aware else None
            ),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            logging=opensearch.LoggingOptions(
                slow_search_log_enabled=True,
                slow_search_log_group=log_groups["SlowSearch"],
                slow_index_log_enabled=True,
                slow_index_log_group=log_groups["SlowIndex"],
                app_log_enabled=True,
                app_log_group=log_groups["App"],
            ),
            suppress_logs_resource_policy=True,
            enable_auto_software_update=True,
            removal_policy=removal_policy,
        )
        logs.ResourcePolicy(
            self,
            "LogsResourcePolicy",
            policy_statements=[
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal("es.amazonaws.com")],
                    actions=["logs:PutLogEvents", "logs:CreateLogStream"],
                    resources=[group.log_group_arn for group in log_groups.values()],
                )
            ],
        )

        # The domain's own ARN cannot be referenced from its own policy (a self-reference),
        # so it is built from the explicit domain name.
        self._policy_resource = Stack.of(self).format_arn(
            service="es",
            resource="domain",
            resource_name=f"{domain_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        cfn_domain = self.domain.node.default_child
        assert isinstance(cfn_domain, opensearch.CfnDomain)
        self._cfn_domain = cfn_domain
        self._suppress_nag(zone_aware=zone_aware)

    @property
    def endpoint(self) -> str:
        """Host name without scheme, as the OpenSearch adapter expects (`DUPCHECK_OPENSEARCH_ENDPOINT`)."""
        return self.domain.domain_endpoint

    def allow_roles(self, *roles: iam.IRole) -> None:
        """Let these roles call the domain's HTTP API: resource policy plus identity policy."""
        for role in roles:
            self._principals.append(role)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=[HTTP_ACTIONS],
                    resources=[self.domain.domain_arn, f"{self.domain.domain_arn}/*"],
                )
            )
            NagSuppressions.add_resource_suppressions(
                role,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason="es:ESHttp* on this one domain and its paths (index/_doc/_search...): "
                        "the OpenSearch HTTP API cannot be scoped tighter by IAM; the domain policy lists "
                        "the roles.",
                        applies_to=[
                            "Action::es:ESHttp*",
                            RegexAppliesTo(regex=r"/^Resource::<SearchDomain[A-Za-z0-9]*\.Arn>\/\*$/"),
                        ],
                    )
                ],
                apply_to_children=True,
            )
        self._cfn_domain.access_policies = self._access_policy()

    def _suppress_nag(self, *, zone_aware: bool) -> None:
        suppressions = [
            NagPackSuppression(
                id="AwsSolutions-OS1",
                reason="Public endpoint with IAM-only access (SigV4, the function roles named in the "
                "domain policy, HTTPS/TLS 1.2 enforced). A VPC would put those Lambdas in a VPC with NAT "
                "for image downloads, for no gain in who can reach the index.",
            ),
            NagPackSuppression(
                id="AwsSolutions-OS3",
                reason="Callers are Lambda functions without fixed IP addresses; access is limited by IAM "
                "principals (the function roles named in the domain policy) instead of an IP allow-list.",
            ),
            NagPackSuppression(
                id="AwsSolutions-OS4",
                reason="Small cluster (1-2 data nodes by default, see docs/deploy.md); AWS recommends "
                "dedicated master nodes from 3+ data nodes. Add them with master_node_* when scaling out.",
            ),
        ]
        if not zone_aware:
            suppressions.append(
                NagPackSuppression(
                    id="AwsSolutions-OS7",
                    reason="Single-node dev profile (dupcheck:searchNodeCount=1): zone awareness needs 2+ "
                    "nodes. The prod default (2 nodes) enables it.",
                )
            )
        NagSuppressions.add_resource_suppressions(self.domain, suppressions, apply_to_children=True)

    def _access_policy(self) -> dict:
        return iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    principals=[iam.ArnPrincipal(role.role_arn) for role in self._principals],
                    actions=[HTTP_ACTIONS],
                    resources=[self._policy_resource],
                )
            ]
        ).to_json()
