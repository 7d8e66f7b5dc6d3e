"""The dupcheck stack: reads its configuration, wires one construct per concern, and grants.

No resource details live here (they belong to `infra/components/`); this module decides
what talks to what, and which `DUPCHECK_*` settings each function receives. Environment
variable names come from `Settings.env_name`, the same place the code reads them from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from dupcheck.adapters.s3_files import IMAGES
from dupcheck.core.models import Marks
from dupcheck.core.settings import Settings
from infra.bundling import dupcheck_code, products_code
from infra.components import (
    Alarms,
    Api,
    DuplicateDecisions,
    DuplicateScans,
    GateClaims,
    HashTable,
    Imports,
    SearchDomain,
    SimilarProducts,
    StreamSync,
    ThumbnailBucket,
)  # fmt: skip

CONTEXT_PREFIX = "dupcheck:"
SERVICE_NAME = "dupcheck"

# Defaults per profile (`-c dupcheck:profile=dev`); any single key can still be overridden.
# prod: two general-purpose Graviton nodes in two AZs (no burstable CPU credits to run out).
# dev: one t3.small.search node (free-tier eligible, single AZ, no replicas possible).
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "prod": {
        "searchInstanceType": "m6g.large.search",
        "searchNodeCount": 2,
        "searchVolumeGiB": 20,
        "searchDomainName": "dupcheck",
    },
    "dev": {
        "searchInstanceType": "t3.small.search",
        "searchNodeCount": 1,
        "searchVolumeGiB": 10,
        "searchDomainName": "dupcheck-dev",
    },
}
COMMON_DEFAULTS: dict[str, Any] = {
    "opensearchIndex": Settings.model_fields["opensearch_index"].default,
    "apiRateLimit": 50,  # requests per second, steady state, per API key
    "apiBurstLimit": 100,  # requests, token bucket size
    "apiQuotaPerDay": 200_000,  # requests per API key per day
    "apiKeyVersion": 1,  # bump to replace the API key on the next deploy
    "logLevel": "INFO",
    "allowedHosts": "",  # DUPCHECK_ALLOWED_HOSTS: comma-separated; empty allows every public host
    "alarmEmail": "",  # subscribe this address to the alarm topic when set
    # Import workers at once: 10 x 8 downloads keeps a shop's image host and the table unflooded
    # (docs/deploy.md, imports); raise it for faster imports of catalogs on a CDN.
    "importConcurrency": 10,
    # Similar products (docs/lab/similar-products.md): two functions with the model, a stream reader
    # and an OpenSearch index. `false` deploys none of them; /similar_products then answers 503.
    "similarProducts": True,
    # What a mark that lies on the product means (DUPCHECK_MARKS, docs/api.md "marks"): photo or product.
    "marks": Settings.model_fields["marks"].default,
}


@dataclass(frozen=True, kw_only=True)
class DupcheckConfig:
    """Everything that varies between deployments, read from CDK context (`dupcheck:*`)."""

    profile: str = "prod"
    search_instance_type: str
    search_node_count: int
    search_volume_gib: int
    search_domain_name: str
    opensearch_index: str
    api_rate_limit: float
    api_burst_limit: int
    api_quota_per_day: int
    api_key_version: int
    log_level: str
    allowed_hosts: str
    alarm_email: str
    import_concurrency: int
    similar_products: bool
    marks: str

    @classmethod
    def context_keys(cls) -> list[str]:
        """The context keys (without `dupcheck:`) this configuration reads."""
        return [_camel(field.name) for field in fields(cls)]

    @classmethod
    def from_context(cls, node: Any) -> DupcheckConfig:
        """`node` is any construct node (`app.node`); values from `-c` arrive as strings."""
        profile = str(node.try_get_context(CONTEXT_PREFIX + "profile") or "prod")
        if profile not in PROFILE_DEFAULTS:
            raise ValueError(f"dupcheck:profile must be one of {sorted(PROFILE_DEFAULTS)}, not {profile!r}")
        defaults = {**COMMON_DEFAULTS, **PROFILE_DEFAULTS[profile]}
        values: dict[str, Any] = {"profile": profile}
        for field in fields(cls):
            if field.name == "profile":
                continue
            key = _camel(field.name)
            raw = node.try_get_context(CONTEXT_PREFIX + key)
            default = defaults[key]
            value = default if raw is None else raw
            try:
                values[field.name] = _parse(value, default)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"context {CONTEXT_PREFIX}{key}={raw!r}: {exc}") from exc
        if values["marks"] not in {m.value for m in Marks}:
            raise ValueError(
                f"context {CONTEXT_PREFIX}marks must be one of {', '.join(Marks)}, not {values['marks']!r}"
            )
        return cls(**values)


def _parse(value: Any, default: Any) -> Any:
    """A context value (a string from `-c`) as its default's type; a boolean is true or false."""
    if isinstance(default, bool):
        if str(value).lower() not in ("true", "false"):
            raise ValueError("expected true or false")
        return str(value).lower() == "true"
    return str(value) if isinstance(default, str) else type(default)(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join("GiB" if part == "gib" else part.capitalize() for part in rest)


class DupcheckStack(Stack):
    """Table -> stream -> stream_sync -> OpenSearch; API -> find_similar -> table + OpenSearch + thumbnails;
    imports: API -> jobs table + bucket -> starts queue -> dispatcher -> rows queue -> worker -> table + thumbnails;
    duplicate scans: API -> jobs table -> scans queue -> scan function -> report in the imports bucket;
    decisions on duplicate groups: API -> decisions table; the duplicate gate's claims: API, import worker,
    dispatcher, stream_sync -> claims table."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DupcheckConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        hashes = HashTable(self, "HashTable")
        thumbnails = ThumbnailBucket(self, "Thumbnails")
        search = SearchDomain(
            self,
            "SearchDomain",
            domain_name=config.search_domain_name,
            instance_type=config.search_instance_type,
            node_count=config.search_node_count,
            volume_gib=config.search_volume_gib,
            # The index is derived data (rebuilt from the table by `reindex`): a dev domain must
            # not outlive its stack and keep billing; prod keeps it to avoid a long rebuild.
            removal_policy=RemovalPolicy.DESTROY if config.profile == "dev" else RemovalPolicy.RETAIN,
        )

        claims = GateClaims(self, "GateClaims")
        env = (
            function_environment(
                config=config,
                table_name=hashes.table.table_name,
                opensearch_endpoint=search.endpoint,
                thumbnail_bucket=thumbnails.bucket.bucket_name,
            )
            | claims.environment
        )
        code = dupcheck_code()  # one asset, bound by every function
        imports = Imports(
            self, "Imports", code=code, environment=env, records_table=hashes.table,
            concurrency=config.import_concurrency,
        )  # fmt: skip
        scans = DuplicateScans(
            self, "DuplicateScans", code=code, environment=env, records_table=hashes.table, thumbnails=thumbnails,
            imports=imports,
        )  # fmt: skip
        decisions = DuplicateDecisions(self, "DuplicateDecisions")
        api = Api(
            self,
            "Api",
            code=code,
            environment={**env, **imports.environment, **scans.environment, **decisions.environment},
            rate_limit=config.api_rate_limit,
            burst_limit=config.api_burst_limit,
            quota_per_day=config.api_quota_per_day,
            api_key_version=config.api_key_version,
        )
        kept_pictures = {Settings.env_name("imports_bucket"): imports.bucket.bucket_name}  # stream_sync deletes them
        sync = StreamSync(self, "StreamSync", code=code, table=hashes.table, environment={**env, **kept_pictures})
        # Similar products: functions of their own, with the product model (docs/lab/similar-products.md).
        products = None
        if config.similar_products:
            products = SimilarProducts(
                self, "SimilarProducts", code=products_code(), table=hashes.table,
                environment={**env, Settings.env_name("imports_bucket"): imports.bucket.bucket_name},
            )  # fmt: skip
            api.route("similar_products", products.search_function)
        product_functions = products.functions if products is not None else ()

        # Grants. find_similar registers and deletes items (POST/DELETE /items) and reads them,
        # with their thumbnails; stream_sync's stream read and DLQ send come with its event
        # source mapping (it never touches thumbnails).
        hashes.table.grant_read_write_data(api.function)
        thumbnails.grant_read_write_delete(_role(api.function))
        thumbnails.grant_read_write(_role(imports.worker))  # the rows it imports keep theirs too
        imports.grant_api(api.function)
        # stream_sync claims kept images and deletes them with their last record, which it looks
        # for in the table's index by picture (and the record just changed, read consistently).
        imports.grant_kept_images(sync.function, ["s3:DeleteObject", "s3:DeleteObjectTagging"])
        hashes.table.grant(sync.function, "dynamodb:Query", "dynamodb:GetItem")
        scans.grant_api(api.function)
        decisions.grant_api(api.function)
        # The gate's claims: the writers claim and commit (API, import worker), the dispatcher holds an
        # import's kept images, stream_sync confirms what it indexed and lets kept images go.
        claims.grant(api.function, imports.worker, imports.dispatcher, sync.function)
        # The import worker reads the index too: its duplicate gate looks each row up as find_similar does.
        search.allow_roles(_role(api.function), _role(sync.function), _role(imports.worker),
                           *(_role(f) for f in product_functions))  # fmt: skip
        for function in product_functions:  # a kept image's address is read from the bucket
            imports.grant_objects(function, ["s3:GetObject"], IMAGES)

        alarms = Alarms(
            self,
            "Alarms",
            dlq=sync.dlq,
            import_dlq=imports.dlq,
            products_dlq=products.dlq if products is not None else None,
            functions={
                "FindSimilar": api.function,
                "StreamSync": sync.function,
                "ImportDispatch": imports.dispatcher,
                "ImportWorker": imports.worker,
                "DuplicateScan": scans.function,
                **(
                    {"SimilarProducts": products.search_function, "ProductSync": products.sync_function}
                    if products is not None
                    else {}
                ),
            },
            rest_api=api.rest_api,
            domain=search.domain,
            email=config.alarm_email or None,
        )

        CfnOutput(self, "ApiUrl", value=api.url, description="Base URL of stage v1")
        CfnOutput(
            self,
            "ApiKeyId",
            value=api.api_key.key_id,
            description="Value: aws apigateway get-api-key --api-key <id> --include-value --query value --output text",
        )
        CfnOutput(self, "TableName", value=hashes.table.table_name)
        CfnOutput(
            self,
            "ThumbnailBucketName",
            value=thumbnails.bucket.bucket_name,
            description="DUPCHECK_THUMBNAIL_BUCKET for the tools (backfill, reindex, import, export)",
        )
        CfnOutput(self, "SearchDomainEndpoint", value=search.endpoint)
        CfnOutput(self, "DeadLetterQueueUrl", value=sync.dlq.queue_url)
        CfnOutput(self, "AlarmTopicArn", value=alarms.topic.topic_arn)
        CfnOutput(self, "ImportsBucketName", value=imports.bucket.bucket_name)
        CfnOutput(self, "ImportsDeadLetterQueueUrl", value=imports.dlq.queue_url)
        if products is not None:
            CfnOutput(self, "ProductsDeadLetterQueueUrl", value=products.dlq.queue_url)


def function_environment(
    *, config: DupcheckConfig, table_name: str, opensearch_endpoint: str, thumbnail_bucket: str
) -> dict[str, str]:
    """The environment both functions share; `DUPCHECK_*` names come from Settings."""
    env = {
        Settings.env_name("store"): "dynamodb",
        Settings.env_name("index"): "opensearch",
        Settings.env_name("table_name"): table_name,
        Settings.env_name("thumbnail_bucket"): thumbnail_bucket,
        Settings.env_name("opensearch_endpoint"): opensearch_endpoint,
        Settings.env_name("opensearch_index"): config.opensearch_index,
        Settings.env_name("log_level"): config.log_level,
        Settings.env_name("marks"): config.marks,
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": SERVICE_NAME,
        "LOG_LEVEL": config.log_level,
    }
    if config.allowed_hosts:
        env[Settings.env_name("allowed_hosts")] = config.allowed_hosts
    return env


def _role(function: Any) -> iam.IRole:
    role = function.role
    assert role is not None, "functions create their own role"
    return role
